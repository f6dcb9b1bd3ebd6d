//! Onsets: peaks of the spectral flux above an adaptive threshold (a multiple of the recent
//! median, and a fraction of a decaying peak-hold), at least
//! [`MIN_ONSET_GAP_SECS`] apart, each placed inside its frame by the sharpest rise of a
//! 0.5 ms energy envelope.

/// Shortest time between two onsets, in seconds.
pub const MIN_ONSET_GAP_SECS: f64 = 0.05;
/// Length of the flux history whose median sets the threshold, in seconds.
pub const MEDIAN_SECS: f64 = 0.25;
/// Threshold = `MEDIAN_FACTOR × median + FLUX_DELTA`.
const MEDIAN_FACTOR: f32 = 1.5;
/// Absolute part of the threshold (mean log-compressed flux per bin).
const FLUX_DELTA: f32 = 0.02;
/// The threshold also stays above this fraction of a peak-hold of the flux…
const HOLD_FACTOR: f32 = 0.5;
/// …that decays with this time constant, in seconds, so that a loud sound's decaying tail
/// does not count as new onsets.
const HOLD_DECAY_SECS: f64 = 0.06;
/// Sliding window of the onset rate, in seconds.
pub const ONSET_RATE_SECS: f64 = 3.0;
/// Length of one block of the refining energy envelope, in seconds.
const REFINE_BLOCK_SECS: f64 = 0.0005;
/// Blocks before a candidate that form its baseline.
const REFINE_BASELINE_BLOCKS: usize = 8;
/// Onsets remembered for the rate (more than 20 per second are never expected).
const RATE_CAPACITY: usize = 128;

/// Peak picker and onset-time refiner.
pub struct OnsetDetector {
    flux_history: Box<[f32]>,
    sorted: Box<[f32]>,
    flux_next: usize,
    flux_filled: usize,
    /// Flux and threshold of the previous two hops: `[k-2, k-1]`.
    previous: [(f32, f32); 2],
    last_onset: Option<u64>,
    recent: Box<[u64]>,
    recent_next: usize,
    recent_filled: usize,
    min_gap_frames: u64,
    rate_frames: u64,
    block: usize,
    /// Current median of the flux (the tempo envelope's reference).
    median: f32,
    /// Decaying peak-hold of the flux, and its decay per hop.
    hold: f32,
    hold_decay: f32,
}

impl OnsetDetector {
    /// A detector for hops of `hop_frames` at `sample_rate`.
    pub fn new(sample_rate: u32, hop_frames: usize) -> Self {
        let rate = f64::from(sample_rate);
        let median_len = ((MEDIAN_SECS * rate / hop_frames as f64).round() as usize).max(3);
        Self {
            flux_history: vec![0.0; median_len].into_boxed_slice(),
            sorted: vec![0.0; median_len].into_boxed_slice(),
            flux_next: 0,
            flux_filled: 0,
            previous: [(0.0, f32::INFINITY); 2],
            last_onset: None,
            recent: vec![0; RATE_CAPACITY].into_boxed_slice(),
            recent_next: 0,
            recent_filled: 0,
            min_gap_frames: (MIN_ONSET_GAP_SECS * rate).round() as u64,
            rate_frames: (ONSET_RATE_SECS * rate).round() as u64,
            block: ((REFINE_BLOCK_SECS * rate).round() as usize).max(1),
            median: 0.0,
            hold: 0.0,
            hold_decay: (-(hop_frames as f64) / (HOLD_DECAY_SECS * rate)).exp() as f32,
        }
    }

    /// Samples of history [`OnsetDetector::step`] needs for frames of `frame_len`.
    pub fn history_len(&self, frame_len: usize, hop_frames: usize) -> usize {
        frame_len + hop_frames + (REFINE_BASELINE_BLOCKS + 2) * self.block
    }

    /// The median flux over the last [`MEDIAN_SECS`].
    pub fn median(&self) -> f32 {
        self.median
    }

    /// Takes the flux of the hop that ended at `end` (absolute frames) whose analysis frame was
    /// `frame_len` long; `history` holds the last mono samples, ending at `end`. Returns an
    /// onset position if the previous hop was a peak.
    pub fn step(
        &mut self,
        flux: f32,
        end: u64,
        hop_frames: usize,
        frame_len: usize,
        history: &[f32],
    ) -> Option<u64> {
        self.hold *= self.hold_decay;
        let threshold = (MEDIAN_FACTOR * self.median + FLUX_DELTA).max(HOLD_FACTOR * self.hold);
        self.hold = self.hold.max(flux);
        let [(before, _), (peak, peak_threshold)] = self.previous;
        self.previous = [self.previous[1], (flux, threshold)];
        self.push_flux(flux);

        if !(peak > before && peak >= flux && peak > peak_threshold) {
            return None;
        }
        // the peak frame ended one hop ago; the onset lies inside its window
        let peak_end = end.checked_sub(hop_frames as u64)?;
        let onset = self.refine(peak_end, frame_len, end, history);
        if self
            .last_onset
            .is_some_and(|last| onset < last + self.min_gap_frames)
        {
            return None;
        }
        self.last_onset = Some(onset);
        self.recent[self.recent_next] = onset;
        self.recent_next = (self.recent_next + 1) % self.recent.len();
        self.recent_filled = (self.recent_filled + 1).min(self.recent.len());
        Some(onset)
    }

    /// Onsets per second over the last [`ONSET_RATE_SECS`] before `end`.
    pub fn rate(&self, end: u64, sample_rate: u32) -> f32 {
        let since = end.saturating_sub(self.rate_frames);
        let count = self.recent[..self.recent_filled]
            .iter()
            .filter(|&&t| t >= since)
            .count();
        (count as f64 / (self.rate_frames as f64 / f64::from(sample_rate))) as f32
    }

    fn push_flux(&mut self, flux: f32) {
        self.flux_history[self.flux_next] = flux;
        self.flux_next = (self.flux_next + 1) % self.flux_history.len();
        self.flux_filled = (self.flux_filled + 1).min(self.flux_history.len());
        let n = self.flux_filled;
        self.sorted[..n].copy_from_slice(&self.flux_history[..n]);
        let (_, median, _) = self.sorted[..n].select_nth_unstable_by(n / 2, f32::total_cmp);
        self.median = *median;
    }

    /// The start of the 0.5 ms block with the largest energy rise over its baseline, searched
    /// from the start of the peak frame's window to `end`.
    fn refine(&self, peak_end: u64, frame_len: usize, end: u64, history: &[f32]) -> u64 {
        let b = self.block;
        // absolute position of history[0]; negative before the input started (zeros there)
        let history_start = end as i64 - history.len() as i64;
        let search_start = peak_end as i64 - frame_len as i64;
        let first = (search_start - history_start).max(0) as usize;
        let energy = |start: usize| -> f32 {
            history[start..start + b].iter().map(|x| x * x).sum::<f32>() + 1e-12
        };
        let mut best = (0.0f32, search_start.max(0));
        let mut start = first.max(REFINE_BASELINE_BLOCKS * b);
        while start + b <= history.len() {
            let baseline = (1..=REFINE_BASELINE_BLOCKS)
                .map(|i| energy(start - i * b))
                .sum::<f32>()
                / REFINE_BASELINE_BLOCKS as f32;
            let ratio = energy(start) / baseline;
            if ratio > best.0 {
                best = (ratio, history_start + start as i64);
            }
            start += b;
        }
        best.1.max(0) as u64
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.flux_history.iter_mut().for_each(|f| *f = 0.0);
        self.flux_next = 0;
        self.flux_filled = 0;
        self.previous = [(0.0, f32::INFINITY); 2];
        self.last_onset = None;
        self.recent.iter_mut().for_each(|t| *t = 0);
        self.recent_next = 0;
        self.recent_filled = 0;
        self.median = 0.0;
        self.hold = 0.0;
    }
}
