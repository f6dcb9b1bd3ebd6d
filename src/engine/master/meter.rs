//! ITU-R BS.1770-4 loudness: a K-weighted, gated meter that never allocates after `new`.

use super::{finite_or_zero, sanitize_sample_rate};
use crate::filters::{k_weighting, Biquad};

/// Offset of the BS.1770 loudness formula, in LU.
const LOUDNESS_OFFSET_LU: f64 = -0.691;
/// Absolute gating threshold, in LUFS.
pub(super) const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// Relative gating threshold, in LU below the absolutely gated mean.
const RELATIVE_GATE_LU: f64 = -10.0;
/// Lower edge of the loudness histogram, in LUFS (equal to the absolute gate).
const HISTOGRAM_MIN_LUFS: f64 = -70.0;
/// Width of one histogram bin, in LU.
const HISTOGRAM_STEP_LU: f64 = 0.1;
/// Number of histogram bins: -70 LUFS to +30 LUFS, as in libebur128.
const HISTOGRAM_BINS: usize = 1000;
/// Filter states smaller than this are flushed to zero (denormal guard).
const FLUSH_F64: f64 = 1e-30;

/// One transposed direct form II step of `b` on both channels at once: the same arithmetic as
/// `Biquad::tick` per channel. `z` is `[z1, z2]`, each per channel.
#[inline(always)]
fn tick2(b: &Biquad, x: [f64; 2], z: &mut [[f64; 2]; 2]) -> [f64; 2] {
    let mut y = [0.0; 2];
    for c in 0..2 {
        y[c] = b.b0 * x[c] + z[0][c];
        z[0][c] = b.b1 * x[c] - b.a1 * y[c] + z[1][c];
        z[1][c] = b.b2 * x[c] - b.a2 * y[c];
    }
    y
}

#[inline]
fn energy_to_lufs(energy: f64) -> f64 {
    if energy > 0.0 {
        10.0 * energy.log10() + LOUDNESS_OFFSET_LU
    } else {
        f64::NEG_INFINITY
    }
}

/// ITU-R BS.1770-4 stereo loudness meter (K-weighted, gated).
///
/// Momentary loudness is measured over 400 ms blocks with 75 % overlap
/// (a new block every 100 ms). Every block at or above the absolute gate
/// (-70 LUFS) is stored in a fixed 0.1 LU histogram (-70..+30 LUFS, as in
/// libebur128's histogram mode, but each bin also keeps the exact energy sum
/// so that only the relative-gate boundary is quantised). The gated integrated
/// loudness (relative gate -10 LU) is refreshed once per block without
/// allocating.
#[derive(Clone, Debug)]
pub struct KWeightedMeter {
    shelf: Biquad,
    highpass: Biquad,
    /// Filter state per stage (shelf, high-pass), per delay (z1, z2), per channel.
    state: [[[f64; 2]; 2]; 2],
    /// Samples per 100 ms hop.
    hop_len: usize,
    /// Samples accumulated in the current hop.
    hop_pos: usize,
    /// Sum of squared K-weighted samples (both channels) in the current hop.
    hop_energy: f64,
    /// Energy sums of the last four hops (ring).
    sub_energy: [f64; 4],
    sub_index: usize,
    /// Hops completed since the last reset (saturates at 4).
    subs_filled: usize,
    /// Mean square of the last 400 ms block.
    momentary_energy: f64,
    /// Loudness of the last complete 400 ms block, in LUFS.
    last_block_lufs: f64,
    hist_count: Box<[u64]>,
    hist_energy: Box<[f64]>,
    gated_count: u64,
    gated_energy_sum: f64,
    integrated_lufs: f64,
}

impl KWeightedMeter {
    /// Creates a meter for `sample_rate` Hz (invalid rates fall back to
    /// 48 kHz). Allocates the gating histogram.
    pub fn new(sample_rate: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let (shelf, highpass) = k_weighting(f64::from(sample_rate));
        // libebur128: samples_in_100ms = (rate + 5) / 10.
        let hop_len = ((sample_rate.round() as usize) + 5) / 10;
        Self {
            shelf,
            highpass,
            state: [[[0.0; 2]; 2]; 2],
            hop_len: hop_len.max(1),
            hop_pos: 0,
            hop_energy: 0.0,
            sub_energy: [0.0; 4],
            sub_index: 0,
            subs_filled: 0,
            momentary_energy: 0.0,
            last_block_lufs: f64::NEG_INFINITY,
            hist_count: vec![0; HISTOGRAM_BINS].into_boxed_slice(),
            hist_energy: vec![0.0; HISTOGRAM_BINS].into_boxed_slice(),
            gated_count: 0,
            gated_energy_sum: 0.0,
            integrated_lufs: f64::NEG_INFINITY,
        }
    }

    /// Feeds one stereo frame (non-finite samples count as silence).
    #[inline]
    pub fn push(&mut self, l: f32, r: f32) {
        self.push_frame(l, r);
    }

    /// Feeds one frame; returns `true` when it completed a 100 ms hop (and so
    /// possibly a new 400 ms gating block).
    #[inline]
    pub(super) fn push_frame(&mut self, l: f32, r: f32) -> bool {
        // both channels in lockstep, so the two filters run as one two-lane SIMD row
        let x = [f64::from(finite_or_zero(l)), f64::from(finite_or_zero(r))];
        let y = tick2(&self.shelf, x, &mut self.state[0]);
        let y = tick2(&self.highpass, y, &mut self.state[1]);
        self.hop_energy += y[0] * y[0] + y[1] * y[1];
        self.hop_pos += 1;
        if self.hop_pos < self.hop_len {
            return false;
        }
        self.end_hop();
        true
    }

    /// [`KWeightedMeter::push`] for every frame of interleaved stereo `samples`: the same
    /// arithmetic, with the filter state kept in locals between hops (stored and reloaded on
    /// every frame, it stalls the store-to-load forwarding).
    pub fn push_block(&mut self, samples: &[f32]) {
        let mut frames = samples.chunks_exact(2);
        loop {
            let mut state = self.state;
            let mut energy = self.hop_energy;
            let mut pos = self.hop_pos;
            let left = self.hop_len - pos;
            let mut taken = 0;
            for f in frames.by_ref().take(left) {
                let x = [
                    f64::from(finite_or_zero(f[0])),
                    f64::from(finite_or_zero(f[1])),
                ];
                let y = tick2(&self.shelf, x, &mut state[0]);
                let y = tick2(&self.highpass, y, &mut state[1]);
                energy += y[0] * y[0] + y[1] * y[1];
                taken += 1;
            }
            pos += taken;
            (self.state, self.hop_energy, self.hop_pos) = (state, energy, pos);
            if pos < self.hop_len {
                return;
            }
            self.end_hop();
        }
    }

    #[inline(never)]
    fn end_hop(&mut self) {
        // Denormal guard, once per hop is plenty.
        for z in self.state.iter_mut().flatten().flatten() {
            if z.abs() < FLUSH_F64 {
                *z = 0.0;
            }
        }
        self.sub_energy[self.sub_index] = self.hop_energy;
        self.sub_index = (self.sub_index + 1) % 4;
        self.hop_energy = 0.0;
        self.hop_pos = 0;
        self.subs_filled = (self.subs_filled + 1).min(4);
        let block_len = (4 * self.hop_len) as f64;
        self.momentary_energy = self.sub_energy.iter().sum::<f64>() / block_len;
        if self.subs_filled < 4 {
            return;
        }
        let lufs = energy_to_lufs(self.momentary_energy);
        self.last_block_lufs = lufs;
        if lufs < ABSOLUTE_GATE_LUFS {
            return;
        }
        let bin = ((lufs - HISTOGRAM_MIN_LUFS) / HISTOGRAM_STEP_LU).floor();
        let bin = if bin >= (HISTOGRAM_BINS - 1) as f64 {
            HISTOGRAM_BINS - 1
        } else if bin > 0.0 {
            bin as usize
        } else {
            0
        };
        self.hist_count[bin] += 1;
        self.hist_energy[bin] += self.momentary_energy;
        self.gated_count += 1;
        self.gated_energy_sum += self.momentary_energy;
        self.update_integrated();
    }

    fn update_integrated(&mut self) {
        if self.gated_count == 0 {
            self.integrated_lufs = f64::NEG_INFINITY;
            return;
        }
        let mean = self.gated_energy_sum / self.gated_count as f64;
        let threshold_lufs = energy_to_lufs(mean) + RELATIVE_GATE_LU;
        // First bin whose centre is at or above the relative threshold.
        let pos = ((threshold_lufs - HISTOGRAM_MIN_LUFS) / HISTOGRAM_STEP_LU - 0.5).ceil();
        let start = if pos >= HISTOGRAM_BINS as f64 {
            HISTOGRAM_BINS
        } else if pos > 0.0 {
            pos as usize
        } else {
            0
        };
        let (count, energy) = self.hist_count[start..]
            .iter()
            .zip(self.hist_energy[start..].iter())
            .fold((0u64, 0.0f64), |(c, e), (&bc, &be)| (c + bc, e + be));
        self.integrated_lufs = if count == 0 {
            f64::NEG_INFINITY
        } else {
            energy_to_lufs(energy / count as f64)
        };
    }

    /// Loudness of the most recent 400 ms window (updated every 100 ms), in
    /// LUFS. Before 400 ms have been pushed the missing part counts as
    /// silence; `NEG_INFINITY` for digital silence.
    pub fn momentary_lufs(&self) -> f32 {
        energy_to_lufs(self.momentary_energy) as f32
    }

    /// Gated integrated loudness (absolute gate -70 LUFS, relative gate
    /// -10 LU) of everything pushed since `new`/`reset`, in LUFS;
    /// `NEG_INFINITY` while no block has passed the gates.
    pub fn integrated_lufs(&self) -> f32 {
        self.integrated_lufs as f32
    }

    /// [`KWeightedMeter::integrated_lufs`] in full precision, for the offline whole-piece gain.
    pub fn integrated_lufs_f64(&self) -> f64 {
        self.integrated_lufs
    }

    /// Loudness of the last complete 400 ms block, in LUFS (`NEG_INFINITY` before the first
    /// or for silence).
    pub fn last_block_lufs(&self) -> f64 {
        self.last_block_lufs
    }

    /// Sum of the squared K-weighted samples (both channels) of the last complete 100 ms
    /// hop (0 before the first).
    pub fn last_hop_energy(&self) -> f64 {
        self.sub_energy[(self.sub_index + 3) % 4]
    }

    /// Counts a whole hop of this energy (a [`KWeightedMeter::last_hop_energy`]) as if its
    /// frames had been pushed: gating from hop energies alone. Only between hops (no frames
    /// of an unfinished hop pushed); the filter state is left as it is.
    pub fn push_hop(&mut self, energy: f64) {
        debug_assert_eq!(self.hop_pos, 0, "push_hop inside a hop");
        self.hop_energy = energy;
        self.end_hop();
    }

    /// Samples per 100 ms hop.
    pub fn hop_frames(&self) -> usize {
        self.hop_len
    }

    /// Number of 400 ms blocks (one every 100 ms) that passed the absolute
    /// gate so far.
    pub fn gated_blocks(&self) -> u32 {
        u32::try_from(self.gated_count).unwrap_or(u32::MAX)
    }

    /// Clears all filter state, blocks and the histogram. Never allocates.
    pub fn reset(&mut self) {
        self.state = [[[0.0; 2]; 2]; 2];
        self.hop_pos = 0;
        self.hop_energy = 0.0;
        self.sub_energy = [0.0; 4];
        self.sub_index = 0;
        self.subs_filled = 0;
        self.momentary_energy = 0.0;
        self.last_block_lufs = f64::NEG_INFINITY;
        self.hist_count.fill(0);
        self.hist_energy.fill(0.0);
        self.gated_count = 0;
        self.gated_energy_sum = 0.0;
        self.integrated_lufs = f64::NEG_INFINITY;
    }
}
