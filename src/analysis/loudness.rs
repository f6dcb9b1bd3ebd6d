//! ITU-R BS.1770 K-weighted loudness over sliding windows (momentary 400 ms, short-term 3 s).

use crate::filters::{k_weighting, Biquad};

/// Offset of the BS.1770 loudness formula, in LU.
const LOUDNESS_OFFSET_LU: f64 = -0.691;
/// Loudness reported for silence and anything quieter, in LUFS.
pub const LOUDNESS_FLOOR_LUFS: f32 = -70.0;
/// Window of momentary loudness, in seconds.
pub const MOMENTARY_SECS: f64 = 0.4;
/// Window of short-term loudness, in seconds.
pub const SHORT_TERM_SECS: f64 = 3.0;

/// Second-order Butterworth high-pass (RBJ cookbook), used to remove DC before the features.
pub struct HighPass {
    filter: Biquad,
    state: [f64; 2],
}

impl HighPass {
    /// A high-pass at `cutoff_hz`.
    pub fn new(sample_rate_hz: f64, cutoff_hz: f64) -> Self {
        let w0 = std::f64::consts::TAU * cutoff_hz / sample_rate_hz;
        let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        let filter = Biquad {
            b0: (1.0 + cos) / 2.0 / a0,
            b1: -(1.0 + cos) / a0,
            b2: (1.0 + cos) / 2.0 / a0,
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
        };
        Self {
            filter,
            state: [0.0; 2],
        }
    }

    /// Filters one sample.
    #[inline]
    pub fn tick(&mut self, x: f32) -> f32 {
        let y = self.filter.tick(f64::from(x), &mut self.state);
        flush(&mut self.state);
        y as f32
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.state = [0.0; 2];
    }
}

#[inline]
fn flush(z: &mut [f64; 2]) {
    for v in z {
        if v.abs() < 1e-30 {
            *v = 0.0;
        }
    }
}

/// Sliding-window K-weighted loudness of any number of channels (each weighted 1.0, since the
/// layout of a room recording is unknown), updated once per hop.
pub struct Loudness {
    shelf: Biquad,
    highpass: Biquad,
    /// Per channel: `[shelf state, high-pass state]`.
    state: Box<[[[f64; 2]; 2]]>,
    /// Sum over channels of squared K-weighted samples in the current hop.
    hop_energy: f64,
    /// Mean square (summed over channels) of each of the last hops, oldest overwritten.
    hops: Box<[f64]>,
    next: usize,
    filled: usize,
    momentary_hops: usize,
}

impl Loudness {
    /// A meter for `channels` channels whose hops are `hop_frames` long.
    pub fn new(sample_rate: u32, channels: usize, hop_frames: usize) -> Self {
        let (shelf, highpass) = k_weighting(f64::from(sample_rate));
        let hops_per_sec = f64::from(sample_rate) / hop_frames as f64;
        let short_hops = (SHORT_TERM_SECS * hops_per_sec).round().max(1.0) as usize;
        let momentary_hops = (MOMENTARY_SECS * hops_per_sec).round().max(1.0) as usize;
        Self {
            shelf,
            highpass,
            state: vec![[[0.0; 2]; 2]; channels].into_boxed_slice(),
            hop_energy: 0.0,
            hops: vec![0.0; short_hops].into_boxed_slice(),
            next: 0,
            filled: 0,
            momentary_hops: momentary_hops.min(short_hops),
        }
    }

    /// Feeds one sample of channel `ch` (finite, bounded).
    #[inline]
    pub fn push(&mut self, ch: usize, x: f32) {
        let z = &mut self.state[ch];
        let y = self.shelf.tick(f64::from(x), &mut z[0]);
        let y = self.highpass.tick(y, &mut z[1]);
        flush(&mut z[0]);
        flush(&mut z[1]);
        self.hop_energy += y * y;
    }

    /// Closes a hop of `frames` frames; returns (momentary, short-term) loudness in LUFS, each
    /// the mean over its window, or over the hops seen so far while the window fills.
    pub fn end_hop(&mut self, frames: usize) -> (f32, f32) {
        self.hops[self.next] = self.hop_energy / frames.max(1) as f64;
        self.hop_energy = 0.0;
        self.next = (self.next + 1) % self.hops.len();
        self.filled = (self.filled + 1).min(self.hops.len());
        let len = self.hops.len();
        let mean_of_last = |n: usize| {
            let n = n.min(self.filled).max(1);
            let sum: f64 = (1..=n)
                .map(|i| self.hops[(self.next + len - i) % len])
                .sum();
            sum / n as f64
        };
        (
            energy_to_lufs(mean_of_last(self.momentary_hops)),
            energy_to_lufs(mean_of_last(len)),
        )
    }

    /// Clears all state.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|s| *s = [[0.0; 2]; 2]);
        self.hop_energy = 0.0;
        self.hops.iter_mut().for_each(|h| *h = 0.0);
        self.next = 0;
        self.filled = 0;
    }
}

fn energy_to_lufs(mean_square: f64) -> f32 {
    if mean_square > 0.0 {
        ((10.0 * mean_square.log10() + LOUDNESS_OFFSET_LU) as f32).max(LOUDNESS_FLOOR_LUFS)
    } else {
        LOUDNESS_FLOOR_LUFS
    }
}
