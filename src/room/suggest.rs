//! Soundcheck calibration: from a recording of the room, the default mappings with each
//! `feature_range` set from what the recording's features actually did, printed as
//! `[[analysis.mappings]]` TOML a performer can paste into the patch.

use std::fmt::Write as _;

use super::{RoomMapping, RoomTarget};
use crate::analysis::{Feature, FeatureFrame, ONSET_RATE_SECS, SHORT_TERM_SECS};
use crate::control::VoiceSelector;
use crate::engine::config::{CoreDims, Curve, Role, Timbre};
use crate::patch::{default_mappings, is_hz_or_bpm};

/// Percentiles of the gated frames that become a suggested range's ends.
pub const SUGGEST_PERCENTILES: (f32, f32) = (0.10, 0.90);

/// A suggested range spans at least this share of the default range (on the mapping's
/// scale), so a steady room does not turn a mapping into a switch.
pub const MIN_SPAN_SHARE: f32 = 0.25;

/// The mood dimensions the default mappings drive, by name (the patch's core dimensions).
const CORE_NAMES: [&str; 4] = ["energy", "tension", "brightness", "unity"];

/// What one feature did over the gated frames of a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    /// Frames that passed the gate and had a finite value.
    pub frames: usize,
    /// Smallest value.
    pub min: f32,
    /// Median value.
    pub median: f32,
    /// Largest value.
    pub max: f32,
    /// Value at the lower suggestion percentile.
    pub low: f32,
    /// Value at the upper suggestion percentile.
    pub high: f32,
}

/// One default mapping with its range fitted to a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    /// The mapping, `low`/`high` set from the recording.
    pub mapping: RoomMapping,
    /// The feature's statistics; `None` if no frame passed the gate (defaults kept).
    pub observed: Option<Observed>,
    /// The observed spread was narrower than [`MIN_SPAN_SHARE`] of the default and was
    /// widened around the median.
    pub widened: bool,
}

/// Fits the default mappings' feature ranges to `frames` (a whole recording analysed at
/// `sample_rate`): the 10th..90th percentile of the frames whose momentary loudness reaches
/// `gate_lufs`, after the first 3 s (the loudness and onset windows filling) when the
/// recording is long enough.
pub fn suggest(frames: &[FeatureFrame], gate_lufs: f32, sample_rate: u32) -> Vec<Suggestion> {
    let mut suggester = Suggester::new(gate_lufs, sample_rate);
    frames.iter().for_each(|f| suggester.add(f));
    suggester.finish()
}

/// [`suggest`] for frames as they come, so a recording of any length can stream through it.
/// Memory: one `f32` per default mapping per frame above the gate (28 bytes per 5.3 ms hop,
/// about 19 MB for an hour of a room that is never silent).
pub struct Suggester {
    gate_lufs: f32,
    sample_rate: u32,
    defaults: Vec<RoomMapping>,
    /// Per default mapping: its feature's values in the frames above the gate, during the
    /// warm-up and after it.
    warm_up_values: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// End of the last frame, seconds.
    end_secs: f64,
}

impl Suggester {
    /// A suggester for frames of a recording at `sample_rate`, gated at `gate_lufs`.
    pub fn new(gate_lufs: f32, sample_rate: u32) -> Suggester {
        let defaults = default_mappings(&core(), &[]);
        Suggester {
            gate_lufs,
            sample_rate,
            warm_up_values: vec![Vec::new(); defaults.len()],
            values: vec![Vec::new(); defaults.len()],
            defaults,
            end_secs: 0.0,
        }
    }

    /// Takes the next frame.
    pub fn add(&mut self, f: &FeatureFrame) {
        let end_secs = f.end_secs(self.sample_rate);
        self.end_secs = end_secs;
        let above_gate = f.momentary_lufs >= self.gate_lufs;
        if !above_gate {
            return;
        }
        let into = if end_secs < warm_up_secs() {
            &mut self.warm_up_values
        } else {
            &mut self.values
        };
        for (m, values) in self.defaults.iter().zip(into) {
            let v = f.get(m.feature);
            if v.is_finite() && (!m.log || v > 0.0) {
                values.push(v);
            }
        }
    }

    /// The suggestions: the warm-up counts only in a recording too short to leave it out.
    pub fn finish(self) -> Vec<Suggestion> {
        let long = self.end_secs > 2.0 * warm_up_secs();
        self.defaults
            .into_iter()
            .zip(self.warm_up_values.into_iter().zip(self.values))
            .map(|(m, (mut warm_up, values))| {
                if long {
                    fit(m, values)
                } else {
                    warm_up.extend(values);
                    fit(m, warm_up)
                }
            })
            .collect()
    }
}

/// Seconds before the loudness and onset windows have filled.
fn warm_up_secs() -> f64 {
    SHORT_TERM_SECS.max(ONSET_RATE_SECS)
}

fn core() -> CoreDims {
    CoreDims {
        energy: 0,
        tension: 1,
        brightness: 2,
        unity: 3,
    }
}

fn percentile(sorted: &[f32], p: f32) -> f32 {
    let x = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f32;
    let (i, t) = (x.floor() as usize, x.fract());
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    sorted[i] + (next - sorted[i]) * t
}

/// Steps per unit a feature's suggested range is rounded to (so it prints short).
fn steps_per_unit(f: Feature) -> f32 {
    match f {
        Feature::Loudness | Feature::MomentaryLoudness => 10.0,
        Feature::OnsetRate | Feature::Tempo | Feature::Pitch => 20.0,
        Feature::Centroid => 1.0,
        _ => 1000.0,
    }
}

/// The values a feature can take (on a linear scale; log features are unbounded in ln).
fn bounds(f: Feature) -> (f32, f32) {
    match f {
        Feature::Loudness | Feature::MomentaryLoudness => (f32::NEG_INFINITY, f32::INFINITY),
        Feature::Flatness
        | Feature::Roughness
        | Feature::PitchConfidence
        | Feature::PulseSteadiness => (0.0, 1.0),
        Feature::OnsetRate => (0.0, f32::INFINITY),
        Feature::Centroid | Feature::Pitch | Feature::Tempo => (f32::NEG_INFINITY, f32::INFINITY),
    }
}

/// `default` with its range fitted to `values` (finite, and positive on a log scale).
fn fit(default: RoomMapping, mut values: Vec<f32>) -> Suggestion {
    let feature = default.feature;
    let log = default.log;
    if values.is_empty() {
        return Suggestion {
            mapping: default,
            observed: None,
            widened: false,
        };
    }
    values.sort_by(f32::total_cmp);
    let (p_low, p_high) = SUGGEST_PERCENTILES;
    let observed = Observed {
        frames: values.len(),
        min: values[0],
        median: percentile(&values, 0.5),
        max: values[values.len() - 1],
        low: percentile(&values, p_low),
        high: percentile(&values, p_high),
    };
    // work on the mapping's scale: ln for Hz and BPM
    let to = |x: f32| if log { x.ln() } else { x };
    let from = |x: f32| if log { x.exp() } else { x };
    let (mut low, mut high) = (to(observed.low), to(observed.high));
    let min_span = MIN_SPAN_SHARE * (to(default.high) - to(default.low)).abs();
    let widened = high - low < min_span;
    if widened {
        let median = to(observed.median);
        low = median - min_span / 2.0;
        high = low + min_span;
        // keep within the values the feature can take
        let (floor, ceiling) = bounds(feature);
        if low < floor {
            (low, high) = (floor, floor + min_span);
        } else if high > ceiling {
            (low, high) = (ceiling - min_span, ceiling);
        }
    }
    let per_unit = steps_per_unit(feature);
    // dividing a whole number of steps gives the f32 nearest the decimal: it prints short
    let round = |x: f32| (from(x) * per_unit).round() / per_unit;
    let (low, mut high) = (round(low), round(high));
    if high <= low {
        high = ((low * per_unit).round() + 1.0) / per_unit;
    }
    Suggestion {
        mapping: RoomMapping {
            low,
            high,
            ..default
        },
        observed: Some(observed),
        widened,
    }
}

fn number(x: f32) -> String {
    // shortest text that reads back as the same f32, always with a decimal point
    let s = format!("{x}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn curve_name(c: Curve) -> String {
    match c {
        Curve::Linear => "linear".into(),
        Curve::Smooth => "smooth".into(),
        Curve::Power(p) => format!("pow:{p}"),
        Curve::Threshold(t) => format!("threshold:{t}"),
    }
}

/// The suggestions as `[[analysis.mappings]]` entries, each after a comment with the
/// feature's observed minimum, median and maximum.
pub fn suggestion_toml(suggestions: &[Suggestion]) -> String {
    let mut out = String::new();
    for s in suggestions {
        let m = &s.mapping;
        let unit = m.feature.unit();
        let p = steps_per_unit(m.feature).log10().ceil() as usize;
        let _ = match s.observed {
            Some(o) => writeln!(
                out,
                "# {}: min {:.p$}, median {:.p$}, max {:.p$} {unit} over {} frames{}",
                m.feature,
                o.min,
                o.median,
                o.max,
                o.frames,
                if s.widened {
                    "; too steady, range widened around the median"
                } else {
                    ""
                }
            ),
            None => writeln!(
                out,
                "# {}: no frame above the gate; default range kept",
                m.feature
            ),
        };
        out.push_str("[[analysis.mappings]]\n");
        let _ = writeln!(out, "feature = \"{}\"", m.feature);
        match m.target {
            RoomTarget::Mood(dim) => {
                let name = CORE_NAMES.get(dim as usize).copied().unwrap_or("energy");
                let _ = writeln!(out, "mood = \"{name}\"");
            }
            RoomTarget::Param(param, voices) => {
                let _ = writeln!(out, "param = \"{}\"", param.name());
                match voices {
                    VoiceSelector::All => {}
                    VoiceSelector::Role(r) => {
                        if let Some((_, name)) = Role::ALL.iter().find(|x| x.0 == r) {
                            let _ = writeln!(out, "role = \"{name}\"");
                        }
                    }
                    VoiceSelector::Timbre(t) => {
                        if let Some((_, name)) = Timbre::ALL.iter().find(|x| x.0 == t) {
                            let _ = writeln!(out, "timbre = \"{name}\"");
                        }
                    }
                }
                let _ = writeln!(
                    out,
                    "range = [{}, {}]",
                    number(m.out_low),
                    number(m.out_high)
                );
            }
        }
        let _ = writeln!(
            out,
            "feature_range = [{}, {}]",
            number(m.low),
            number(m.high)
        );
        if m.curve != Curve::Linear {
            let _ = writeln!(out, "curve = \"{}\"", curve_name(m.curve));
        }
        if m.log != is_hz_or_bpm(m.feature) {
            let _ = writeln!(out, "log = {}", m.log);
        }
        let _ = writeln!(out, "smoothing_secs = {}", number(m.smoothing_secs));
        let _ = writeln!(out, "weight = {}\n", number(m.weight));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(loudness: f32, onsets: f32, centroid: f32) -> FeatureFrame {
        FeatureFrame {
            loudness_lufs: loudness,
            momentary_lufs: loudness,
            onset_rate: onsets,
            centroid_hz: centroid,
            ..Default::default()
        }
    }

    fn find(s: &[Suggestion], f: Feature) -> Suggestion {
        *s.iter().find(|s| s.mapping.feature == f).unwrap()
    }

    #[test]
    fn ranges_follow_the_percentiles_of_gated_frames() {
        // loudness -40..-20 evenly, onsets 1..5, centroid 500..2000 Hz; and silent frames
        let mut frames: Vec<FeatureFrame> = (0..=100)
            .map(|i| {
                let t = i as f32 / 100.0;
                frame(-40.0 + 20.0 * t, 1.0 + 4.0 * t, 500.0 * 4f32.powf(t))
            })
            .collect();
        frames.extend((0..50).map(|_| frame(-80.0, 0.0, 100.0)));
        let s = suggest(&frames, -60.0, 48_000);
        let loud = find(&s, Feature::Loudness);
        assert_eq!((loud.mapping.low, loud.mapping.high), (-38.0, -22.0));
        let o = loud.observed.unwrap();
        assert_eq!(
            (o.frames, o.min, o.median, o.max),
            (101, -40.0, -30.0, -20.0)
        );
        let onsets = find(&s, Feature::OnsetRate);
        assert!((onsets.mapping.low - 1.4).abs() < 1e-4, "{onsets:?}");
        let centroid = find(&s, Feature::Centroid);
        let expected = 500.0 * 4f32.powf(0.1);
        assert!((centroid.mapping.low - expected.round()).abs() <= 1.0);
        // targets, weights and smoothing are the defaults'
        let defaults = default_mappings(&core(), &[]);
        for (s, d) in s.iter().zip(&defaults) {
            assert_eq!(
                (s.mapping.target, s.mapping.weight, s.mapping.smoothing_secs),
                (d.target, d.weight, d.smoothing_secs)
            );
        }
    }

    #[test]
    fn a_steady_room_gets_a_widened_range_and_silence_keeps_the_defaults() {
        let steady: Vec<FeatureFrame> = (0..100).map(|_| frame(-45.0, 0.0, 800.0)).collect();
        let s = suggest(&steady, -60.0, 48_000);
        let loud = find(&s, Feature::Loudness);
        assert!(loud.widened);
        assert_eq!((loud.mapping.low, loud.mapping.high), (-49.0, -41.0));
        let onsets = find(&s, Feature::OnsetRate);
        assert_eq!((onsets.mapping.low, onsets.mapping.high), (0.0, 1.5));
        let silent: Vec<FeatureFrame> = (0..100).map(|_| frame(-80.0, 0.0, 0.0)).collect();
        let s = suggest(&silent, -60.0, 48_000);
        assert!(s.iter().all(|s| s.observed.is_none()));
        assert_eq!(
            s.iter().map(|s| s.mapping).collect::<Vec<_>>(),
            default_mappings(&core(), &[])
        );
        assert!(suggestion_toml(&s).contains("default range kept"));
    }
}
