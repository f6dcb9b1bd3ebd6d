//! A look-ahead, stereo-linked **true-peak** limiter: peaks are detected on the signal
//! oversampled 4x with the interpolation filter of ITU-R BS.1770-4 Annex 2, so the peaks
//! between samples (which a DAC and any lossy encoder reconstruct) stay under the ceiling too.

use super::{db_to_gain, finite_or_zero, gain_to_db, sanitize_sample_rate};

/// ITU-R BS.1770-4 Annex 2 interpolation filter, as published: 4 phases of 12 taps,
/// `y[4n + p] = Σ_k TRUE_PEAK_TAPS[p][k] · x[n − k]`.
// the published digits, kept: every coefficient is a multiple of 2^-13, exact in an f32
#[allow(clippy::excessive_precision)]
pub const TRUE_PEAK_TAPS: [[f32; PHASE_TAPS]; 4] = [
    [
        0.001_708_984_375,
        0.010_986_328_125,
        -0.019_653_320_312_5,
        0.033_203_125,
        -0.059_448_242_187_5,
        0.137_329_101_562_5,
        0.972_167_968_75,
        -0.102_294_921_875,
        0.047_607_421_875,
        -0.026_611_328_125,
        0.014_892_578_125,
        -0.008_300_781_25,
    ],
    [
        -0.029_174_804_687_5,
        0.029_296_875,
        -0.051_757_812_5,
        0.089_111_328_125,
        -0.166_503_906_25,
        0.465_087_890_625,
        0.779_785_156_25,
        -0.200_317_382_812_5,
        0.101_562_5,
        -0.058_227_539_062_5,
        0.033_081_054_687_5,
        -0.018_920_898_437_5,
    ],
    [
        -0.018_920_898_437_5,
        0.033_081_054_687_5,
        -0.058_227_539_062_5,
        0.101_562_5,
        -0.200_317_382_812_5,
        0.779_785_156_25,
        0.465_087_890_625,
        -0.166_503_906_25,
        0.089_111_328_125,
        -0.051_757_812_5,
        0.029_296_875,
        -0.029_174_804_687_5,
    ],
    [
        -0.008_300_781_25,
        0.014_892_578_125,
        -0.026_611_328_125,
        0.047_607_421_875,
        -0.102_294_921_875,
        0.972_167_968_75,
        0.137_329_101_562_5,
        -0.059_448_242_187_5,
        0.033_203_125,
        -0.019_653_320_312_5,
        0.010_986_328_125,
        0.001_708_984_375,
    ],
];

/// Taps per phase of the interpolation filters.
const PHASE_TAPS: usize = 12;
/// Oversampling factor.
const FACTOR: usize = 4;
/// Frames by which the detector lags its input: both 48-tap filters delay by 23.5 to 24
/// oversampled samples (5.875 to 6 frames), so the points computed when frame `n` arrives lie
/// between frames `n − 6` and `n − 5`; they are reported with frame `n − 6`.
pub const DETECTOR_DELAY_FRAMES: usize = 6;
/// Frames a detector's reading depends on (its window): after this many silent frames it
/// reads 0.
pub const PEAK_WINDOW_FRAMES: usize = PHASE_TAPS;
/// Frames on either side of a detected peak that the filters' support reaches: the gain is held
/// at the peak's reduction over all of them, so the peak is rebuilt from uniformly scaled samples.
const SUPPORT_FRAMES: usize = 6;
/// Headroom kept below the ceiling, in dB, for what the detector cannot know of another meter's
/// interpolator (measured with the `ebur128` crate's true-peak meter on adversarial signals in
/// the limiter tests).
pub const TRUE_PEAK_MARGIN_DB: f32 = 0.05;
/// Fixed-point scale of the limiter's moving-average accumulator.
const GAIN_FIXED_ONE: f64 = 4_294_967_296.0; // 2^32

/// The lanes the detector computes per channel: the Annex 2 filter's four phases, three phases
/// of a Hann-windowed sinc (the interpolator of libebur128, flatter at high frequencies where
/// the Annex 2 example filter reads up to 2.5 % low) and the sample itself.
const LANES: usize = 8;

/// The detector's taps, `[tap][lane]`.
fn detector_taps() -> [[f32; LANES]; PHASE_TAPS] {
    let mut taps = [[0.0f32; LANES]; PHASE_TAPS];
    let len = PHASE_TAPS * FACTOR;
    for (k, row) in taps.iter_mut().enumerate() {
        for (p, t) in row.iter_mut().take(FACTOR).enumerate() {
            *t = TRUE_PEAK_TAPS[p][k];
        }
        for p in 1..FACTOR {
            let j = (k * FACTOR + p) as f64;
            let window = 0.5 * (1.0 - (std::f64::consts::TAU * j / len as f64).cos());
            let m = (j - len as f64 / 2.0) * std::f64::consts::PI / FACTOR as f64;
            row[FACTOR + p - 1] = (window * m.sin() / m) as f32;
        }
        row[LANES - 1] = if k == DETECTOR_DELAY_FRAMES { 1.0 } else { 0.0 };
    }
    taps
}

/// Frames the detector and the gain stages take at a time (stack buffers of this size).
const SUB_BLOCK: usize = 64;
/// Samples per channel a frame's window reaches back (the 12 taps less the frame itself).
const PAST: usize = PHASE_TAPS - 1;

/// True-peak detector for a stereo stream, after ITU-R BS.1770-4 Annex 2 (4x oversampling):
/// for each frame, the largest magnitude of its samples and of the points interpolated after
/// them, on either channel. Each point is read by two interpolators, the Annex 2 example filter
/// and a Hann-windowed sinc, and the larger reading counts, so a meter built on either reads no
/// higher.
///
/// Frames are taken a sub-block at a time into a chronological buffer, so every window is read
/// from samples stored well before (a window read right after a sample was stored into it
/// would stall the store-to-load forwarding on every frame).
#[derive(Clone, Debug)]
pub struct TruePeakDetector {
    /// The detector's taps in time order, `[m][lane]`: tap `m` applies to the sample
    /// `PAST − m` frames before the newest.
    taps: [[f32; LANES]; PHASE_TAPS],
    /// No point can be larger than this times the largest sample under the filters (the
    /// largest sum of a lane's tap magnitudes, with room for rounding).
    gain_bound: f32,
    /// Per channel, the last [`PAST`] samples, oldest first.
    past: [[f32; PAST]; 2],
}

impl Default for TruePeakDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl TruePeakDetector {
    /// A detector with an empty (silent) history.
    pub fn new() -> Self {
        let mut taps = detector_taps();
        taps.reverse();
        let gain_bound = (0..LANES)
            .map(|lane| {
                taps.iter()
                    .map(|row| f64::from(row[lane]).abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        Self {
            taps,
            gain_bound: (gain_bound * (1.0 + 1e-4)) as f32,
            past: [[0.0; PAST]; 2],
        }
    }

    /// Takes frame `n` and returns the peak magnitude at frame `n − 6`
    /// ([`DETECTOR_DELAY_FRAMES`]): its samples and the points interpolated after them.
    #[inline]
    pub fn push(&mut self, l: f32, r: f32) -> f32 {
        let mut peak = [0.0f32];
        self.peaks_above(&[l, r], -1.0, &mut peak);
        peak[0]
    }

    /// The largest [`TruePeakDetector::push`] over interleaved stereo `samples` (with the
    /// AVX2 build of the same arithmetic where the CPU has it: identical results).
    pub fn push_block(&mut self, samples: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if crate::engine::voice::has_avx2() {
            // SAFETY: the CPU reports AVX2.
            return unsafe { self.push_block_avx2(samples) };
        }
        self.push_block_body(samples)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn push_block_avx2(&mut self, samples: &[f32]) -> f32 {
        self.push_block_body(samples)
    }

    #[inline(always)]
    fn push_block_body(&mut self, samples: &[f32]) -> f32 {
        let mut peak = 0.0f32;
        let mut peaks = [0.0f32; SUB_BLOCK];
        for chunk in samples.chunks(2 * SUB_BLOCK) {
            let peaks = &mut peaks[..chunk.len() / 2];
            self.peaks_above(chunk, -1.0, peaks);
            peak = peaks.iter().fold(peak, |m, &p| m.max(p));
        }
        peak
    }

    /// [`TruePeakDetector::push`] for every frame of interleaved stereo `samples` (any
    /// length), into `peaks` (one per frame; AVX2 where the CPU has it: identical results).
    pub fn peaks(&mut self, samples: &[f32], peaks: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if crate::engine::voice::has_avx2() {
            // SAFETY: the CPU reports AVX2.
            return unsafe { self.peaks_avx2(samples, peaks) };
        }
        self.peaks_body(samples, peaks)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn peaks_avx2(&mut self, samples: &[f32], peaks: &mut [f32]) {
        self.peaks_body(samples, peaks)
    }

    #[inline(always)]
    fn peaks_body(&mut self, samples: &[f32], peaks: &mut [f32]) {
        for (chunk, peaks) in samples
            .chunks(2 * SUB_BLOCK)
            .zip(peaks.chunks_mut(SUB_BLOCK))
        {
            self.peaks_above(chunk, -1.0, &mut peaks[..chunk.len() / 2]);
        }
    }

    /// [`TruePeakDetector::push`] for each frame of interleaved stereo `samples` (at most
    /// [`SUB_BLOCK`] frames) into `peaks`, except that a frame none of whose points can be
    /// above `threshold` gets 0 without interpolating: cheap where the signal is well under
    /// it, and the same answer for a limiter (no reduction).
    #[inline(always)]
    pub(super) fn peaks_above(&mut self, samples: &[f32], threshold: f32, peaks: &mut [f32]) {
        let n = samples.len() / 2;
        debug_assert!(n <= SUB_BLOCK && peaks.len() == n);
        let mut line = [[0.0f32; PAST + SUB_BLOCK]; 2];
        for (c, line) in line.iter_mut().enumerate() {
            line[..PAST].copy_from_slice(&self.past[c]);
            for (x, frame) in line[PAST..PAST + n].iter_mut().zip(samples.chunks_exact(2)) {
                *x = frame[c];
            }
        }
        // the largest sample magnitude under each frame's window (bits: the same order as
        // the floats'), a vectorizable running maximum
        let mut magnitude = [0u32; PAST + SUB_BLOCK];
        let lines = line[0][..PAST + n].iter().zip(&line[1][..PAST + n]);
        for (m, (l, r)) in magnitude.iter_mut().zip(lines) {
            *m = (l.to_bits() & 0x7fff_ffff).max(r.to_bits() & 0x7fff_ffff);
        }
        let mut largest = [0u32; SUB_BLOCK];
        for k in 0..PHASE_TAPS {
            for (w, &m) in largest[..n].iter_mut().zip(&magnitude[k..k + n]) {
                *w = (*w).max(m);
            }
        }
        for (j, peak) in peaks.iter_mut().enumerate() {
            *peak = if f32::from_bits(largest[j]) * self.gain_bound <= threshold {
                0.0
            } else {
                self.peak_of(&line[0][j..j + PHASE_TAPS], &line[1][j..j + PHASE_TAPS])
            };
        }
        for (past, line) in self.past.iter_mut().zip(&line) {
            past.copy_from_slice(&line[n..n + PAST]);
        }
    }

    /// The peak of one frame from its two windows (oldest sample first).
    #[inline(always)]
    fn peak_of(&self, left: &[f32], right: &[f32]) -> f32 {
        // four partial sums per lane, added at the end: short dependency chains instead of
        // one of twelve multiply-adds
        let mut lanes = [0u32; LANES];
        for window in [left, right] {
            let mut partial = [[0.0f32; LANES]; 4];
            for (rows, xs) in self.taps.chunks_exact(4).zip(window.chunks_exact(4)) {
                for ((sum, row), &x) in partial.iter_mut().zip(rows).zip(xs) {
                    for (s, &t) in sum.iter_mut().zip(row) {
                        *s += t * x;
                    }
                }
            }
            // magnitudes compared as integers (the same order as the floats'), lane by lane
            for (lane, m) in lanes.iter_mut().enumerate() {
                let point =
                    (partial[0][lane] + partial[1][lane]) + (partial[2][lane] + partial[3][lane]);
                *m = (*m).max(point.to_bits() & 0x7fff_ffff);
            }
        }
        f32::from_bits(lanes.into_iter().fold(0, u32::max))
    }

    /// Clears the history. Never allocates.
    pub fn reset(&mut self) {
        self.past = [[0.0; PAST]; 2];
    }
}

/// One look-ahead gain stage: detector, held minimum, release, moving average, delay.
#[derive(Clone, Debug)]
struct GainStage {
    detector: TruePeakDetector,
    /// Moving-average length `L`.
    average_len: usize,
    /// The running minimum spans arrivals `[n − hold_span, n]`.
    hold_span: u64,
    delay_l: Box<[f32]>,
    delay_r: Box<[f32]>,
    delay_pos: usize,
    /// Monotonic deque (ring) of `(frame index, required gain)`.
    deque_index: Box<[u64]>,
    deque_gain: Box<[f64]>,
    deque_head: usize,
    deque_len: usize,
    frame: u64,
    release_coeff: f64,
    released: f64,
    /// Moving-average ring in fixed point (`GAIN_FIXED_ONE` = unity).
    avg_ring: Box<[u64]>,
    avg_pos: usize,
    avg_sum: u64,
    /// `1 / (L × GAIN_FIXED_ONE)`.
    avg_scale: f64,
    /// `avg_sum` when every averaged gain is unity.
    avg_full: u64,
    /// The gain an all-unity average gives.
    unity_gain: f32,
    gain: f32,
}

/// `i + 1`, back to 0 at `len`.
#[inline(always)]
fn next_index(i: usize, len: usize) -> usize {
    if i + 1 == len {
        0
    } else {
        i + 1
    }
}

/// `i` brought back under `len` (`i < 2 len`).
#[inline(always)]
fn wrap_index(i: usize, len: usize) -> usize {
    if i >= len {
        i - len
    } else {
        i
    }
}

impl GainStage {
    fn new(sample_rate: f32, attack_secs: f32, release_secs: f32) -> Self {
        let average_len = ((attack_secs * sample_rate).round() as usize).max(1);
        let delay = average_len - 1 + DETECTOR_DELAY_FRAMES + SUPPORT_FRAMES;
        let hold_span = (average_len - 1 + 2 * SUPPORT_FRAMES) as u64;
        let deque_cap = hold_span as usize + 2;
        let release_coeff = 1.0 - (-1.0 / (f64::from(release_secs) * f64::from(sample_rate))).exp();
        let one = GAIN_FIXED_ONE as u64;
        let avg_scale = 1.0 / (average_len as f64 * GAIN_FIXED_ONE);
        Self {
            detector: TruePeakDetector::new(),
            average_len,
            hold_span,
            delay_l: vec![0.0; delay].into_boxed_slice(),
            delay_r: vec![0.0; delay].into_boxed_slice(),
            delay_pos: 0,
            deque_index: vec![0; deque_cap].into_boxed_slice(),
            deque_gain: vec![1.0; deque_cap].into_boxed_slice(),
            deque_head: 0,
            deque_len: 0,
            frame: 0,
            release_coeff,
            released: 1.0,
            avg_ring: vec![one; average_len].into_boxed_slice(),
            avg_pos: 0,
            avg_sum: one * average_len as u64,
            avg_scale,
            avg_full: one * average_len as u64,
            unity_gain: ((one * average_len as u64) as f64 * avg_scale) as f32,
            gain: 1.0,
        }
    }

    /// Interleaved stereo frames (at most [`SUB_BLOCK`]) in place: each leaves `latency`
    /// frames old, scaled.
    #[inline(always)]
    fn process_block(&mut self, samples: &mut [f32], ceiling: f32) {
        let mut peaks = [0.0f32; SUB_BLOCK];
        let peaks = &mut peaks[..samples.len() / 2];
        self.detector.peaks_above(samples, ceiling, peaks);
        if self.is_idle() && peaks.iter().all(|&p| p <= ceiling) {
            return self.idle_block(samples);
        }
        for (frame, &peak) in samples.chunks_exact_mut(2).zip(peaks.iter()) {
            (frame[0], frame[1]) = self.step(frame[0], frame[1], peak, ceiling);
        }
    }

    /// What [`GainStage::step`] does to an idle stage over frames none of which needs a
    /// reduction (each is then an [`GainStage::idle_step`]), at once: the frames pass the
    /// delay line at the unity gain, the deque becomes the last of them.
    #[inline(always)]
    fn idle_block(&mut self, samples: &mut [f32]) {
        let n = samples.len() / 2;
        if n == 0 {
            return;
        }
        let gain = self.unity_gain;
        for frame in samples.chunks_exact_mut(2) {
            let (dl, dr) = (self.delay_l[self.delay_pos], self.delay_r[self.delay_pos]);
            self.delay_l[self.delay_pos] = frame[0];
            self.delay_r[self.delay_pos] = frame[1];
            self.delay_pos = next_index(self.delay_pos, self.delay_l.len());
            (frame[0], frame[1]) = (dl * gain, dr * gain);
        }
        self.frame += n as u64;
        self.deque_index[self.deque_head] = self.frame - 1;
        self.deque_gain[self.deque_head] = 1.0;
        self.deque_len = 1;
        self.avg_pos = (self.avg_pos + n) % self.average_len;
        self.gain = gain;
    }

    /// [`GainStage::process_block`] with the detector's readings given: `peaks[i]` times
    /// `scale` is frame `i`'s (see [`Limiter::process_block_with_peaks`]).
    #[inline(always)]
    fn process_block_given(
        &mut self,
        samples: &mut [f32],
        (peaks, scale): (&[f32], f32),
        ceiling: f32,
    ) {
        if self.is_idle() && peaks.iter().all(|&p| p * scale <= ceiling) {
            return self.idle_block(samples);
        }
        for (frame, &peak) in samples.chunks_exact_mut(2).zip(peaks) {
            (frame[0], frame[1]) = self.step(frame[0], frame[1], peak * scale, ceiling);
        }
    }

    /// One frame in (with its peak from the detector), one frame out.
    #[inline(always)]
    fn step(&mut self, l: f32, r: f32, peak: f32, ceiling: f32) -> (f32, f32) {
        let gain = if peak <= ceiling && self.is_idle() {
            self.idle_step()
        } else {
            self.gain_step(peak, ceiling)
        };
        self.gain = gain;

        // Look-ahead delay.
        let dl = self.delay_l[self.delay_pos];
        let dr = self.delay_r[self.delay_pos];
        self.delay_l[self.delay_pos] = l;
        self.delay_r[self.delay_pos] = r;
        self.delay_pos = next_index(self.delay_pos, self.delay_l.len());
        (dl * gain, dr * gain)
    }

    /// No reduction held, releasing or averaging: a frame that needs none changes nothing but
    /// the positions ([`GainStage::idle_step`] is then exactly what `gain_step` would do).
    #[inline(always)]
    fn is_idle(&self) -> bool {
        (self.deque_len == 0 || self.deque_gain[self.deque_head] == 1.0)
            && self.released == 1.0
            && self.avg_sum == self.avg_full
    }

    /// `gain_step` for an idle stage and a frame that needs no reduction: the deque becomes
    /// that one frame, the averaging ring (all unity) moves on.
    #[inline(always)]
    fn idle_step(&mut self) -> f32 {
        let n = self.frame;
        self.frame = n + 1;
        self.deque_index[self.deque_head] = n;
        self.deque_gain[self.deque_head] = 1.0;
        self.deque_len = 1;
        self.avg_pos = next_index(self.avg_pos, self.average_len);
        self.unity_gain
    }

    /// The gain for the frame leaving the delay line, given the newest frame's peak.
    #[inline(always)]
    fn gain_step(&mut self, peak: f32, ceiling: f32) -> f32 {
        let required = if peak <= ceiling {
            1.0
        } else {
            f64::from(ceiling) / f64::from(peak) * (1.0 - 1e-6)
        };
        let held = self.hold(required);

        // Release: slows the rise only, never exceeds `held`; within 1e-6 of unity it is there
        // (an exponential never arrives, and an idle stage costs less)
        let mut released = self.released + self.release_coeff * (held - self.released);
        if released > 1.0 - 1e-6 {
            released = 1.0;
        }
        let smoothed = held.min(released);
        self.released = smoothed;

        // Moving average of length L, exact in fixed point (`as` truncates: the floor of a
        // non-negative gain).
        let q = (smoothed * GAIN_FIXED_ONE) as u64;
        self.avg_sum = self.avg_sum - self.avg_ring[self.avg_pos] + q;
        self.avg_ring[self.avg_pos] = q;
        self.avg_pos = next_index(self.avg_pos, self.average_len);
        (self.avg_sum as f64 * self.avg_scale) as f32
    }

    /// Running minimum of the required gain over arrivals `[n − hold_span, n]`.
    #[inline(always)]
    fn hold(&mut self, required: f64) -> f64 {
        let cap = self.deque_index.len();
        let n = self.frame;
        self.frame = n + 1;
        while self.deque_len > 0 && self.deque_index[self.deque_head] + self.hold_span < n {
            self.deque_head = next_index(self.deque_head, cap);
            self.deque_len -= 1;
        }
        while self.deque_len > 0 {
            let back = wrap_index(self.deque_head + self.deque_len - 1, cap);
            if self.deque_gain[back] >= required {
                self.deque_len -= 1;
            } else {
                break;
            }
        }
        let slot = wrap_index(self.deque_head + self.deque_len, cap);
        self.deque_index[slot] = n;
        self.deque_gain[slot] = required;
        self.deque_len += 1;
        self.deque_gain[self.deque_head]
    }

    fn latency(&self) -> usize {
        self.delay_l.len()
    }

    fn reset(&mut self) {
        let one = GAIN_FIXED_ONE as u64;
        self.detector.reset();
        self.delay_l.fill(0.0);
        self.delay_r.fill(0.0);
        self.delay_pos = 0;
        self.deque_head = 0;
        self.deque_len = 0;
        self.frame = 0;
        self.released = 1.0;
        self.avg_ring.fill(one);
        self.avg_pos = 0;
        self.avg_sum = one * self.average_len as u64;
        self.gain = 1.0;
    }
}

/// Look-ahead, stereo-linked brickwall true-peak limiter.
///
/// Keeps the output's true peak (BS.1770-4, 4x oversampled) at or below the ceiling less
/// [`TRUE_PEAK_MARGIN_DB`], and every output sample at or below it. Two gain stages in series,
/// each of them:
/// 1. finds each frame's peak with a [`TruePeakDetector`], samples and inter-sample points;
///    the gain that frame needs is `g = min(1, ceiling / peak)` (with a 1e-6 safety margin);
/// 2. holds a running minimum of `g` over the last `L + 12` detected frames (monotonic deque),
///    so each reduction covers the whole filter support around its peak;
/// 3. releases (one-pole) by slowing only the rise of that held minimum;
/// 4. smooths it with a moving average of length `L` while the signal waits `L + 11` frames,
///    so every frame within 6 frames of a peak leaves the delay line with the gain fully down to
///    (or below) the peak's: the peak is rebuilt from uniformly scaled samples. The average is
///    kept in exact fixed point (no drift).
///
/// The main stage (2 ms attack, 80 ms release) does the limiting. Where its gain still moves
/// within a cluster of peaks, the rebuilt peaks can overshoot by a fraction of a dB; the catch
/// stage (0.5 ms attack, 20 ms release) takes those small overshoots out, with gain changes so
/// small that they cannot overshoot in turn. A hard clamp of each sample to the ceiling is the
/// last line of defence; it should never engage ([`Limiter::safety_clamps`] counts it).
#[derive(Clone, Debug)]
pub struct Limiter {
    ceiling: f32,
    ceiling_dbtp: f32,
    main: GainStage,
    catch: GainStage,
    safety_clamps: u64,
}

impl Limiter {
    /// Attack (moving-average) time of the main stage, in seconds.
    pub const ATTACK_SECS: f32 = 0.002;
    /// Release time constant of the main stage, in seconds.
    pub const RELEASE_SECS: f32 = 0.080;
    /// Attack time of the catch stage, in seconds.
    pub const CATCH_ATTACK_SECS: f32 = 0.0005;
    /// Release time constant of the catch stage, in seconds.
    pub const CATCH_RELEASE_SECS: f32 = 0.020;
    /// Lowest ceiling accepted, in dBTP.
    pub const MIN_CEILING_DBTP: f32 = -20.0;
    /// Highest ceiling accepted, in dBTP.
    pub const MAX_CEILING_DBTP: f32 = 0.0;

    /// Creates a limiter for `sample_rate` Hz with its true-peak ceiling at `ceiling_dbtp`
    /// (clamped to -20..=0 dBTP; not finite: -1). Allocates its buffers.
    pub fn new(sample_rate: f32, ceiling_dbtp: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let ceiling_dbtp = if ceiling_dbtp.is_finite() {
            ceiling_dbtp.clamp(Self::MIN_CEILING_DBTP, Self::MAX_CEILING_DBTP)
        } else {
            -1.0
        };
        Self {
            ceiling: db_to_gain(ceiling_dbtp - TRUE_PEAK_MARGIN_DB),
            ceiling_dbtp,
            main: GainStage::new(sample_rate, Self::ATTACK_SECS, Self::RELEASE_SECS),
            catch: GainStage::new(
                sample_rate,
                Self::CATCH_ATTACK_SECS,
                Self::CATCH_RELEASE_SECS,
            ),
            safety_clamps: 0,
        }
    }

    /// Processes one stereo frame; the output is delayed by [`Limiter::latency_frames`] frames
    /// and its true peak stays under the ceiling.
    #[inline]
    pub fn process_frame(&mut self, l: f32, r: f32) -> (f32, f32) {
        self.frame_inline(l, r)
    }

    /// [`Limiter::process_frame`] over interleaved stereo `samples`, in place (with the AVX2
    /// build of the same arithmetic where the CPU has it: identical results).
    pub fn process_block(&mut self, samples: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if crate::engine::voice::has_avx2() {
            // SAFETY: the CPU reports AVX2.
            unsafe { self.process_block_avx2(samples) };
            return;
        }
        self.process_block_body(samples);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn process_block_avx2(&mut self, samples: &mut [f32]) {
        self.process_block_body(samples);
    }

    #[inline(always)]
    fn process_block_body(&mut self, samples: &mut [f32]) {
        for chunk in samples.chunks_mut(2 * SUB_BLOCK) {
            let even = chunk.len() / 2 * 2;
            let chunk = &mut chunk[..even];
            for s in chunk.iter_mut() {
                *s = finite_or_zero(*s);
            }
            self.main.process_block(chunk, self.ceiling);
            self.catch.process_block(chunk, self.ceiling);
            for s in chunk.iter_mut() {
                *s = self.safety_clamp(*s);
            }
        }
    }

    /// [`Limiter::process_block`] for a stream whose main-stage peaks were read beforehand:
    /// `samples` is a stream `x` already scaled by `scale`, and `peaks` (one per frame) are
    /// what a fresh [`TruePeakDetector`] fed the whole of `x` from its start read at these
    /// frames ([`TruePeakDetector::peaks`]) — so a finishing pass need not interpolate what
    /// its first pass did. With `scale` 1 the output is the very bits `process_block` gives;
    /// otherwise the main stage's readings differ from it only by rounding (`scale · peak(x)`
    /// for `peak(scale · x)`), which the catch stage and the margin cover. A limiter used this
    /// way must be used this way from its start.
    pub fn process_block_with_peaks(&mut self, samples: &mut [f32], peaks: &[f32], scale: f32) {
        debug_assert_eq!(samples.len() / 2, peaks.len());
        #[cfg(target_arch = "x86_64")]
        if crate::engine::voice::has_avx2() {
            // SAFETY: the CPU reports AVX2.
            unsafe { self.process_block_with_peaks_avx2(samples, peaks, scale) };
            return;
        }
        self.process_block_with_peaks_body(samples, peaks, scale);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn process_block_with_peaks_avx2(
        &mut self,
        samples: &mut [f32],
        peaks: &[f32],
        scale: f32,
    ) {
        self.process_block_with_peaks_body(samples, peaks, scale);
    }

    #[inline(always)]
    fn process_block_with_peaks_body(&mut self, samples: &mut [f32], peaks: &[f32], scale: f32) {
        for (chunk, peaks) in samples
            .chunks_mut(2 * SUB_BLOCK)
            .zip(peaks.chunks(SUB_BLOCK))
        {
            let even = chunk.len() / 2 * 2;
            let chunk = &mut chunk[..even];
            for s in chunk.iter_mut() {
                *s = finite_or_zero(*s);
            }
            self.main
                .process_block_given(chunk, (peaks, scale), self.ceiling);
            self.catch.process_block(chunk, self.ceiling);
            for s in chunk.iter_mut() {
                *s = self.safety_clamp(*s);
            }
        }
    }

    #[inline(always)]
    fn frame_inline(&mut self, l: f32, r: f32) -> (f32, f32) {
        let mut frame = [l, r];
        self.process_block_body(&mut frame);
        (frame[0], frame[1])
    }

    #[inline(always)]
    fn safety_clamp(&mut self, x: f32) -> f32 {
        if x.abs() > self.ceiling {
            self.safety_clamps += 1;
            self.ceiling.copysign(x)
        } else {
            x
        }
    }

    /// Current gain reduction as a positive number of dB (0 = no limiting).
    pub fn gain_reduction_db(&self) -> f32 {
        (-gain_to_db(self.main.gain * self.catch.gain)).max(0.0)
    }

    /// Delay the limiter adds, in frames (142 at 48 kHz).
    pub fn latency_frames(&self) -> usize {
        self.main.latency() + self.catch.latency()
    }

    /// The ceiling asked for, in dBTP.
    pub fn ceiling_dbtp(&self) -> f32 {
        self.ceiling_dbtp
    }

    /// Linear level the limiter holds peaks to: the ceiling less [`TRUE_PEAK_MARGIN_DB`].
    pub fn ceiling_linear(&self) -> f32 {
        self.ceiling
    }

    /// How many output samples the final hard clamp had to touch since `new`/`reset`. The
    /// design keeps this at 0; it exists so tests and diagnostics can prove it.
    pub fn safety_clamps(&self) -> u64 {
        self.safety_clamps
    }

    /// Clears the delay lines, detectors and gain state. Never allocates.
    pub fn reset(&mut self) {
        self.main.reset();
        self.catch.reset();
        self.safety_clamps = 0;
    }
}
