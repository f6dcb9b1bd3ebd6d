//! Mood on the audio thread: ramps, smoothing, the crowd's robust aggregate and the
//! mapping from mood to parameters. Real-time safe throughout.

use super::config::{MappingConfig, MoodDimConfig, Param, MAX_DIMS};

/// One set of mood values with linear ramps and one-pole smoothing per dimension.
#[derive(Clone, Copy, Debug)]
pub struct MoodState {
    /// Smoothed values (what the music follows).
    pub value: [f32; MAX_DIMS],
    /// Ramp output before smoothing.
    ramp: [f32; MAX_DIMS],
    ramp_target: [f32; MAX_DIMS],
    ramp_step: [f32; MAX_DIMS],
    ramp_ticks: [u32; MAX_DIMS],
    /// Whether each dimension was ever set (for conductor overrides).
    pub set: [bool; MAX_DIMS],
}

impl MoodState {
    /// Every dimension at its default.
    pub fn new(dims: &[MoodDimConfig]) -> Self {
        let mut value = [0.0; MAX_DIMS];
        for (v, d) in value.iter_mut().zip(dims) {
            *v = d.default;
        }
        Self {
            value,
            ramp: value,
            ramp_target: value,
            ramp_step: [0.0; MAX_DIMS],
            ramp_ticks: [0; MAX_DIMS],
            set: [false; MAX_DIMS],
        }
    }

    /// Starts a ramp to `target` over `ticks` updates (0 = jump, then smoothing applies).
    pub fn set(&mut self, dim: usize, target: f32, ticks: u32) {
        if dim >= MAX_DIMS {
            return;
        }
        self.set[dim] = true;
        self.ramp_target[dim] = target;
        if ticks == 0 {
            self.ramp[dim] = target;
            self.ramp_ticks[dim] = 0;
        } else {
            self.ramp_step[dim] = (target - self.ramp[dim]) / ticks as f32;
            self.ramp_ticks[dim] = ticks;
        }
    }

    /// Jumps a dimension (ramp and smoothed value) to a value: used to seed a newcomer.
    pub fn jump(&mut self, dim: usize, v: f32) {
        if dim < MAX_DIMS {
            self.value[dim] = v;
            self.ramp[dim] = v;
            self.ramp_target[dim] = v;
            self.ramp_ticks[dim] = 0;
        }
    }

    /// Advances ramps by `ticks` updates and smooths with per-dimension coefficients.
    #[allow(clippy::needless_range_loop)] // parallel per-dimension arrays
    pub fn advance(&mut self, coef: &[f32; MAX_DIMS], ticks: u32) {
        for d in 0..MAX_DIMS {
            if self.ramp_ticks[d] > 0 {
                let n = ticks.min(self.ramp_ticks[d]);
                self.ramp_ticks[d] -= n;
                self.ramp[d] = if self.ramp_ticks[d] == 0 {
                    self.ramp_target[d]
                } else {
                    self.ramp[d] + self.ramp_step[d] * n as f32
                };
            }
            self.value[d] += (self.ramp[d] - self.value[d]) * coef[d];
        }
    }

    /// The unsmoothed ramp value of a dimension.
    pub fn ramp_value(&self, dim: usize) -> f32 {
        self.ramp.get(dim).copied().unwrap_or(0.0)
    }
}

/// Robust centre of a set of values: the interquartile mean (mean of the middle half) for
/// four or more values, the median below that. Sorts `values` in place; never allocates.
pub fn robust_center(values: &mut [f32]) -> Option<f32> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    values.sort_unstable_by(f32::total_cmp);
    if n < 4 {
        return Some(if n % 2 == 1 {
            values[n / 2]
        } else {
            0.5 * (values[n / 2 - 1] + values[n / 2])
        });
    }
    let lo = n / 4;
    let hi = n - lo;
    let mid = &values[lo..hi];
    Some(mid.iter().sum::<f32>() / mid.len() as f32)
}

/// [`evaluate_params`] remembered: the mapping is evaluated again only when the mood it is
/// given differs (bit for bit) from the last one, as a settled mood gives the same parameters
/// tick after tick. The patch's dimensions and mappings must stay those of the first call.
#[derive(Clone, Copy, Debug)]
pub struct ParamsMemo {
    mood: [u32; MAX_DIMS],
    params: [f32; Param::COUNT],
}

impl ParamsMemo {
    /// Nothing evaluated yet (NaN moods, which no evaluation remembers).
    pub const EMPTY: Self = ParamsMemo {
        mood: [0x7FC0_0000; MAX_DIMS],
        params: [0.0; Param::COUNT],
    };

    /// The parameters of `mood`, evaluated when it changed.
    pub fn evaluate(
        &mut self,
        mood: &[f32; MAX_DIMS],
        dims: &[MoodDimConfig],
        mappings: &[MappingConfig],
    ) -> [f32; Param::COUNT] {
        let bits = mood.map(f32::to_bits);
        if bits != self.mood {
            self.mood = bits;
            evaluate_params(mood, dims, mappings, &mut self.params);
        }
        self.params
    }
}

/// The robust center of the crowd on one dimension ([`robust_center`]), found again only when
/// the crowd's values differ (bit for bit, in order) from the last time. Holds up to the
/// capacity it is made with; never allocates after.
#[derive(Debug)]
pub struct CrowdCenter {
    values: Vec<f32>,
    center: Option<f32>,
}

impl CrowdCenter {
    /// Room for `capacity` participants. Allocates.
    pub fn new(capacity: usize) -> Self {
        CrowdCenter {
            values: Vec::with_capacity(capacity),
            center: None,
        }
    }

    /// The robust center of `values` (sorted in place when it is computed).
    pub fn of(&mut self, values: &mut [f32]) -> Option<f32> {
        let same = self.values.len() == values.len()
            && self
                .values
                .iter()
                .zip(values.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            self.values.clear();
            self.values.extend_from_slice(values);
            self.center = robust_center(values);
        }
        self.center
    }
}

/// Evaluates every parameter from a mood: mapped parameters add their mappings' outputs,
/// the rest keep their defaults; each is clamped to its legal range.
pub fn evaluate_params(
    mood: &[f32; MAX_DIMS],
    dims: &[MoodDimConfig],
    mappings: &[MappingConfig],
    out: &mut [f32; Param::COUNT],
) {
    let mut mapped = [false; Param::COUNT];
    for (o, p) in out.iter_mut().zip(Param::ALL.iter()) {
        *o = p.4;
    }
    for m in mappings {
        let Some(dim) = dims.get(m.dim as usize) else {
            continue;
        };
        let span = (dim.max - dim.min).max(1e-9);
        let x = (mood[m.dim as usize] - dim.min) / span;
        let y = m.out_low + (m.out_high - m.out_low) * m.curve.apply(x);
        let i = m.param.index();
        if !mapped[i] {
            mapped[i] = true;
            out[i] = 0.0;
        }
        out[i] += y;
    }
    for (o, p) in out.iter_mut().zip(Param::ALL.iter()) {
        *o = o.clamp(p.2, p.3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Curve;

    #[test]
    fn one_outlier_cannot_drag_the_crowd() {
        let mut v = [0.5f32; 16];
        v[3] = 1.0;
        let c = robust_center(&mut v).unwrap();
        assert!((c - 0.5).abs() < 1e-6, "{c}");
        let mut w = [0.2, 0.9, 0.3];
        assert_eq!(robust_center(&mut w), Some(0.3));
        assert_eq!(robust_center(&mut []), None);
    }

    #[test]
    fn ramps_reach_their_target_and_smoothing_follows() {
        let dims = [MoodDimConfig {
            min: 0.0,
            max: 1.0,
            default: 0.0,
            smoothing_secs: 0.1,
        }];
        let mut m = MoodState::new(&dims);
        m.set(0, 1.0, 10);
        let coef = [0.5; MAX_DIMS];
        m.advance(&coef, 5);
        assert!((m.ramp_value(0) - 0.5).abs() < 1e-6);
        for _ in 0..40 {
            m.advance(&coef, 1);
        }
        assert!((m.value[0] - 1.0).abs() < 1e-4);
    }

    #[test]
    fn mappings_add_and_clamp() {
        let dims = [MoodDimConfig {
            min: 0.0,
            max: 1.0,
            default: 0.5,
            smoothing_secs: 0.1,
        }; 2];
        let maps = [
            MappingConfig {
                dim: 0,
                param: Param::BrightnessOct,
                out_low: -1.0,
                out_high: 1.0,
                curve: Curve::Linear,
            },
            MappingConfig {
                dim: 1,
                param: Param::BrightnessOct,
                out_low: 0.0,
                out_high: 2.0,
                curve: Curve::Linear,
            },
        ];
        let mut out = [0.0; Param::COUNT];
        let mut mood = [0.0; MAX_DIMS];
        mood[0] = 1.0;
        mood[1] = 0.5;
        evaluate_params(&mood, &dims, &maps, &mut out);
        assert!((out[Param::BrightnessOct.index()] - 2.0).abs() < 1e-6);
        // unmapped parameters keep their default
        assert_eq!(out[Param::Density.index()], Param::ALL[0].4);
    }
}
