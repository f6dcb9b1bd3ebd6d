//! Predicting the finished output's loudness at a gain without a finishing pass: where the
//! program's peaks say the limiter will not act, the output's loudness is the program's
//! scaled by the gain; only the regions the limiter reaches are limited and measured again,
//! from the stored program. So the whole-piece gain can be chosen before the one finishing
//! pass instead of after a first one.

use std::io;

use super::passes::{LimitedProgram, ProgramStore};
use crate::engine::master::{KWeightedMeter, Limiter};

/// Hops measured before a limited region (a fresh meter's and limiter's state settles).
const WARMUP_HOPS: usize = 5;
/// Hops after a limited hop that its reduction may still reach (the limiter's 80 ms release
/// leaves less than 1e-4 dB after 0.8 s).
const RELEASE_HOPS: usize = 8;

/// What the program pass notes per 100 ms hop for the prediction.
#[derive(Clone, Debug)]
pub(super) struct ProgramHops {
    hop_frames: usize,
    /// Frames of the hop under way.
    filled: usize,
    /// Each complete hop's K-weighted energy (the meter's).
    energy: Vec<f64>,
    /// Each hop's largest main-stage peak (the last, unfinished hop's too).
    peak: Vec<f32>,
}

impl ProgramHops {
    pub(super) fn new(hop_frames: usize) -> Self {
        Self {
            hop_frames: hop_frames.max(1),
            filled: 0,
            energy: Vec::new(),
            peak: Vec::new(),
        }
    }

    /// Meters `samples` with `meter` hop by hop, noting each hop's energy and (given the
    /// frames' peaks) its largest peak.
    pub(super) fn push(
        &mut self,
        meter: &mut KWeightedMeter,
        samples: &[f32],
        peaks: Option<&[f32]>,
    ) {
        let (mut samples, mut peaks) = (samples, peaks);
        while !samples.is_empty() {
            let take = (self.hop_frames - self.filled).min(samples.len() / 2);
            meter.push_block(&samples[..2 * take]);
            if let Some(frames) = peaks {
                if self.filled == 0 {
                    self.peak.push(0.0);
                }
                let last = self.peak.last_mut().expect("pushed above");
                *last = frames[..take].iter().fold(*last, |m, &p| m.max(p));
                peaks = Some(&frames[take..]);
            }
            self.filled += take;
            if self.filled == self.hop_frames {
                self.energy.push(meter.last_hop_energy());
                self.filled = 0;
            }
            samples = &samples[2 * take..];
        }
    }

    /// Runs of hops `[first, end)` the limiter may act on at `gain` (with their release),
    /// merged where their warm-ups would overlap.
    fn limited_regions(&self, gain: f32, ceiling: f32) -> Vec<(usize, usize)> {
        let mut regions: Vec<(usize, usize)> = Vec::new();
        let hops = self.energy.len();
        for (h, &peak) in self.peak.iter().enumerate().take(hops) {
            if peak * gain <= ceiling {
                continue;
            }
            let (first, end) = (h.saturating_sub(1), (h + 1 + RELEASE_HOPS).min(hops));
            match regions.last_mut() {
                Some(last) if first <= last.1 + WARMUP_HOPS => last.1 = last.1.max(end),
                _ => regions.push((first, end)),
            }
        }
        regions
    }
}

/// The integrated loudness (LUFS) a finishing pass at `gain` would measure: the program's hop
/// energies scaled by the gain, with the hops the limiter reaches limited and measured again.
pub(super) fn predicted_lufs(
    store: &mut dyn ProgramStore,
    hops: &ProgramHops,
    gain: f32,
    (sample_rate, ceiling_dbtp): (f32, f32),
) -> io::Result<f64> {
    let ceiling = Limiter::new(sample_rate, ceiling_dbtp).ceiling_linear();
    let scale = f64::from(gain) * f64::from(gain);
    let mut energy: Vec<f64> = hops.energy.iter().map(|e| e * scale).collect();
    for (first, end) in hops.limited_regions(gain, ceiling) {
        let measured = limited_energies(
            store,
            hops.hop_frames,
            (first, end),
            gain,
            (sample_rate, ceiling_dbtp),
        )?;
        energy[first..end].copy_from_slice(&measured[measured.len() - (end - first)..]);
    }
    let mut meter = KWeightedMeter::new(sample_rate);
    for e in energy {
        meter.push_hop(e);
    }
    Ok(meter.integrated_lufs_f64())
}

/// Frames read at a time from the store (bounded memory however long a region is).
const READ_FRAMES: usize = 16_384;

/// The hop energies of the finished output over hops `[first, end)` and the warm-up before
/// them: the stored program read from the warm-up's start, scaled, limited (latency taken
/// out) and metered afresh, a bounded chunk at a time.
fn limited_energies(
    store: &mut dyn ProgramStore,
    hop_frames: usize,
    (first, end): (usize, usize),
    gain: f32,
    (sample_rate, ceiling_dbtp): (f32, f32),
) -> io::Result<Vec<f64>> {
    let start = first.saturating_sub(WARMUP_HOPS);
    store.seek((start * hop_frames) as u64)?;
    let limiter = Limiter::new(sample_rate, ceiling_dbtp);
    let mut program = LimitedProgram::new(store, gain, limiter, READ_FRAMES);
    let mut meter = KWeightedMeter::new(sample_rate);
    let mut hops = ProgramHops::new(hop_frames);
    let mut wanted = (end - start) * hop_frames;
    while wanted > 0 {
        let output = program.next(wanted)?;
        wanted -= output.len() / 2;
        hops.push(&mut meter, output, None);
    }
    Ok(hops.energy)
}
