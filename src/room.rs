//! The room as a participant: turns the audio analysis's feature frames into the room's
//! mood, its offsets on sound parameters and (optionally) the score's tempo, as commands
//! for the engine. Runs off the audio thread (the analysis thread live, a pre-pass offline)
//! and is a pure function of the input, so an offline render with `--input` is deterministic
//! and a live show's room is recorded like any other input.

pub mod suggest;

use crate::analysis::{AnalysisError, Analyzer, Feature, FeatureFrame, WavStream};
use crate::control::{Command, MoodTarget, VoiceSelector};
use crate::engine::config::{Curve, Param};
use crate::patch::Patch;
use crate::performance::{Performance, TimedCommand};

/// What a mapping drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomTarget {
    /// A mood dimension (index), in the dimension's units.
    Mood(u8),
    /// An offset added to a sound parameter of the selected voices, in the parameter's units.
    Param(Param, VoiceSelector),
}

/// One feature → target mapping from the patch's `[analysis]` section.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoomMapping {
    /// Which feature.
    pub feature: Feature,
    /// What it drives.
    pub target: RoomTarget,
    /// Feature value mapped to `out_low`.
    pub low: f32,
    /// Feature value mapped to `out_high`.
    pub high: f32,
    /// Target value at `low`.
    pub out_low: f32,
    /// Target value at `high`.
    pub out_high: f32,
    /// Shape between the two.
    pub curve: Curve,
    /// Frequencies (Hz) and tempi are compared on a log scale.
    pub log: bool,
    /// One-pole smoothing time constant of the mapped value.
    pub smoothing_secs: f32,
    /// Share among the mappings to the same target.
    pub weight: f32,
}

/// Following the room's pulse with the score's tempo, within limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TempoFollow {
    /// Slowest tempo the score follows to.
    pub min_bpm: f32,
    /// Fastest tempo the score follows to.
    pub max_bpm: f32,
    /// Pulse steadiness (0..1) the room needs before the score follows.
    pub min_steadiness: f32,
    /// Time constant of the glide towards the room's tempo.
    pub smoothing_secs: f32,
}

/// The resolved `[analysis]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomMap {
    /// Share of the room in the communal mood, 0..1 (also in the engine configuration).
    pub weight: f32,
    /// Below this momentary loudness (LUFS) the room counts as silent: features of the
    /// spectrum and pitch are meaningless there, so their mappings return to neutral.
    pub gate_lufs: f32,
    /// Calibration of the room's input: gain in dB applied to the room's audio before the
    /// analysis (within ±[`INPUT_GAIN_DB_LIMIT`]).
    pub input_gain_db: f32,
    /// Feature mappings.
    pub mappings: Vec<RoomMapping>,
    /// Tempo following, if the patch asks for it.
    pub tempo: Option<TempoFollow>,
}

/// Momentary loudness below which the room counts as silent, unless the patch says.
pub const DEFAULT_GATE_LUFS: f32 = -60.0;

/// Largest input gain, in dB either way (`[analysis] input_gain_db`, `--input-gain`).
pub const INPUT_GAIN_DB_LIMIT: f32 = 60.0;

/// Seconds between the room's updates to the engine (each one ramps over this time).
pub const UPDATE_SECS: f32 = 0.02;

impl RoomMapping {
    fn normalized(&self, v: f32) -> f32 {
        let (v, lo, hi) = if self.log {
            (
                v.max(1e-3).ln(),
                self.low.max(1e-3).ln(),
                self.high.max(1e-3).ln(),
            )
        } else {
            (v, self.low, self.high)
        };
        let span = hi - lo;
        if span.abs() < 1e-12 {
            return 0.0;
        }
        ((v - lo) / span).clamp(0.0, 1.0)
    }

    /// The mapped value of a feature value.
    pub fn map(&self, v: f32) -> f32 {
        self.out_low + (self.out_high - self.out_low) * self.curve.apply(self.normalized(v))
    }

    /// Spectral and pitch features mean nothing in silence.
    fn gated(&self) -> bool {
        matches!(
            self.feature,
            Feature::Centroid
                | Feature::Flatness
                | Feature::Roughness
                | Feature::Pitch
                | Feature::PitchConfidence
        )
    }
}

/// Turns feature frames into engine commands. Allocates only in `new`.
pub struct RoomMapper {
    map: RoomMap,
    neutral: Vec<f32>,
    smoothed: Vec<f32>,
    coef: Vec<f32>,
    sent: Vec<Option<f32>>,
    targets: Vec<RoomTarget>,
    tempo: Option<f32>,
    tempo_coef: f32,
    sent_tempo: Option<f32>,
    frames_per_update: u32,
    frames_since_update: u32,
    update_secs: f32,
}

impl RoomMapper {
    /// A mapper for frames `hop_secs` apart; `dim_defaults` give the neutral values of
    /// mood mappings (parameter offsets are neutral at 0).
    pub fn new(map: &RoomMap, dim_defaults: &[f32], hop_secs: f32, patch_tempo: f32) -> Self {
        let neutral: Vec<f32> = map
            .mappings
            .iter()
            .map(|m| match m.target {
                RoomTarget::Mood(d) => dim_defaults.get(d as usize).copied().unwrap_or(0.0),
                RoomTarget::Param(..) => 0.0,
            })
            .collect();
        let coef = map
            .mappings
            .iter()
            .map(|m| one_pole(hop_secs, m.smoothing_secs))
            .collect();
        let mut targets: Vec<RoomTarget> = Vec::new();
        for m in &map.mappings {
            if !targets.contains(&m.target) {
                targets.push(m.target);
            }
        }
        let frames_per_update = (UPDATE_SECS / hop_secs.max(1e-6)).round().max(1.0) as u32;
        Self {
            smoothed: neutral.clone(),
            neutral,
            coef,
            sent: vec![None; targets.len()],
            targets,
            tempo: map.tempo.map(|_| patch_tempo),
            tempo_coef: map
                .tempo
                .map_or(0.0, |t| one_pole(hop_secs, t.smoothing_secs)),
            sent_tempo: None,
            frames_per_update,
            frames_since_update: frames_per_update - 1,
            update_secs: frames_per_update as f32 * hop_secs,
            map: map.clone(),
        }
    }

    /// Takes one frame; every [`UPDATE_SECS`] emits the targets that moved.
    pub fn frame(&mut self, f: &FeatureFrame, mut emit: impl FnMut(Command)) {
        let silent = f.momentary_lufs.is_nan() || f.momentary_lufs < self.map.gate_lufs;
        for (i, m) in self.map.mappings.iter().enumerate() {
            let v = f.get(m.feature);
            let goal = if (silent && m.gated()) || !v.is_finite() {
                self.neutral[i]
            } else {
                m.map(v)
            };
            self.smoothed[i] += (goal - self.smoothed[i]) * self.coef[i];
        }
        if let (Some(follow), Some(tempo)) = (self.map.tempo, self.tempo.as_mut()) {
            if f.pulse_steadiness >= follow.min_steadiness && f.tempo_bpm.is_finite() {
                if let Some(goal) = fold_tempo(f.tempo_bpm, follow.min_bpm, follow.max_bpm) {
                    *tempo += (goal - *tempo) * self.tempo_coef;
                }
            }
        }
        self.frames_since_update += 1;
        if self.frames_since_update < self.frames_per_update {
            return;
        }
        self.frames_since_update = 0;
        for (t, target) in self.targets.iter().enumerate() {
            let (mut sum, mut weights) = (0.0, 0.0);
            for (m, v) in self.map.mappings.iter().zip(&self.smoothed) {
                if m.target == *target {
                    sum += m.weight * v;
                    weights += m.weight;
                }
            }
            let value = if weights > 0.0 { sum / weights } else { 0.0 };
            let moved = self.sent[t].is_none_or(|s| (s - value).abs() > 1e-4);
            if !moved {
                continue;
            }
            self.sent[t] = Some(value);
            emit(match *target {
                RoomTarget::Mood(dim) => Command::Mood {
                    target: MoodTarget::Room,
                    dim,
                    value,
                    ramp_secs: self.update_secs,
                },
                RoomTarget::Param(p, voices) => Command::RoomParam {
                    param: p.index() as u8,
                    voices,
                    value,
                },
            });
        }
        if let Some(tempo) = self.tempo {
            let bpm = (tempo * 100.0).round() / 100.0;
            if self.sent_tempo.is_none_or(|s| (s - bpm).abs() >= 0.05) {
                self.sent_tempo = Some(bpm);
                emit(Command::Tempo { bpm });
            }
        }
    }
}

/// Brings a tempo into `min..=max` by octaves (a clap at 150 BPM pulls a 60–120 score to 75);
/// None if no octave of it fits.
pub fn fold_tempo(bpm: f32, min: f32, max: f32) -> Option<f32> {
    if bpm.is_nan() || bpm <= 0.0 || min <= 0.0 || max < min {
        return None;
    }
    let mut b = bpm;
    while b > max {
        b *= 0.5;
    }
    while b < min {
        b *= 2.0;
    }
    (b <= max).then_some(b)
}

fn one_pole(hop_secs: f32, tau_secs: f32) -> f32 {
    if tau_secs <= 0.0 {
        1.0
    } else {
        1.0 - (-hop_secs / tau_secs).exp()
    }
}

/// The room's ear, as a patch sets it up: the analysis of its sound (input gain included)
/// and the mapping of each frame onto commands. Live and offline both listen through it.
pub struct RoomListener {
    analyzer: Analyzer,
    mapper: RoomMapper,
}

impl RoomListener {
    /// A listener for `patch`'s `[analysis]` on input at `sample_rate` with `channels`.
    pub fn new(patch: &Patch, sample_rate: u32, channels: u16) -> RoomListener {
        let map = patch.room();
        let mut analyzer = Analyzer::new(sample_rate, channels);
        analyzer.set_input_gain_db(map.input_gain_db);
        let hop_secs = analyzer.hop_frames() as f32 / sample_rate as f32;
        let mapper = RoomMapper::new(map, &patch.dim_defaults(), hop_secs, patch.tempo_bpm());
        RoomListener { analyzer, mapper }
    }

    /// Analyses interleaved samples: every completed frame goes to `on_frame`, then each
    /// command the room sends for it to `emit`, with the input frame at which it completed.
    pub fn process(
        &mut self,
        samples: &[f32],
        mut on_frame: impl FnMut(&FeatureFrame),
        mut emit: impl FnMut(u64, Command),
    ) {
        let mapper = &mut self.mapper;
        self.analyzer.process(samples, |f| {
            on_frame(f);
            mapper.frame(f, |command| emit(f.end_frame, command));
        });
    }
}

/// Analyses a whole recording of the room (interleaved, at the render's sample rate) as
/// `patch` listens to it, and returns the commands the room sends, stamped with the sample
/// at which each frame of the analysis completes. Deterministic.
pub fn room_commands(
    patch: &Patch,
    samples: &[f32],
    channels: u16,
    sample_rate: u32,
) -> Vec<TimedCommand> {
    let mut out = Vec::new();
    RoomListener::new(patch, sample_rate, channels).process(
        samples,
        |_| {},
        |sample, command| out.push(TimedCommand { sample, command }),
    );
    out
}

/// Adds the room's commands from a recording of the room (interleaved, at the render's
/// sample rate) to a performance; at equal samples the performance's own events come first.
pub fn add_room_input(
    performance: &mut Performance,
    patch: &Patch,
    samples: &[f32],
    channels: u16,
    sample_rate: u32,
) {
    let room = room_commands(patch, samples, channels, sample_rate);
    performance.commands.extend(room);
    performance.commands.sort_by_key(|c| c.sample);
}

/// Adds the room's commands to a performance rendered for `frames` frames, from a recording
/// of the room streamed at the render's rate: only its first `frames` frames are read and
/// analysed (memory: one piece of the stream; time: in proportion to the render), and the
/// commands are exactly those [`add_room_input`] adds from the whole recording, less the
/// ones at or after `frames`, which no render of that length plays.
pub fn add_room_recording(
    performance: &mut Performance,
    patch: &Patch,
    room: &mut WavStream,
    frames: u64,
) -> Result<(), AnalysisError> {
    let channels = usize::from(room.channels());
    let mut listener = RoomListener::new(patch, room.sample_rate(), room.channels());
    let mut read = 0u64;
    while read < frames {
        let Some(piece) = room.next_piece()? else {
            break;
        };
        let take = ((piece.len() / channels) as u64).min(frames - read);
        let commands = &mut performance.commands;
        listener.process(
            &piece[..take as usize * channels],
            |_| {},
            |sample, command| {
                if sample < frames {
                    commands.push(TimedCommand { sample, command });
                }
            },
        );
        read += take;
    }
    performance.commands.sort_by_key(|c| c.sample);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(feature: Feature, target: RoomTarget, low: f32, high: f32) -> RoomMapping {
        RoomMapping {
            feature,
            target,
            low,
            high,
            out_low: 0.0,
            out_high: 1.0,
            curve: Curve::Linear,
            log: false,
            smoothing_secs: 0.0,
            weight: 1.0,
        }
    }

    fn frame(loudness: f32, onsets: f32, centroid: f32) -> FeatureFrame {
        FeatureFrame {
            loudness_lufs: loudness,
            momentary_lufs: loudness,
            onset_rate: onsets,
            centroid_hz: centroid,
            ..Default::default()
        }
    }

    fn last_mood(commands: &[Command], dim: u8) -> Option<f32> {
        commands.iter().rev().find_map(|c| match *c {
            Command::Mood {
                target: MoodTarget::Room,
                dim: d,
                value,
                ..
            } if d == dim => Some(value),
            _ => None,
        })
    }

    #[test]
    fn weighted_mappings_to_one_dimension_average() {
        let mut a = mapping(Feature::Loudness, RoomTarget::Mood(0), -50.0, -20.0);
        a.weight = 3.0;
        let b = mapping(Feature::OnsetRate, RoomTarget::Mood(0), 0.0, 8.0);
        let map = RoomMap {
            weight: 0.5,
            gate_lufs: -60.0,
            input_gain_db: 0.0,
            mappings: vec![a, b],
            tempo: None,
        };
        let mut m = RoomMapper::new(&map, &[0.5], 0.005, 100.0);
        let mut out = Vec::new();
        for _ in 0..8 {
            m.frame(&frame(-20.0, 0.0, 0.0), |c| out.push(c));
        }
        let v = last_mood(&out, 0).unwrap();
        assert!((v - 0.75).abs() < 1e-5, "{v}");
    }

    #[test]
    fn mappings_to_one_parameter_with_different_selectors_are_separate_targets() {
        use crate::engine::config::Role;
        let melody = RoomTarget::Param(Param::BrightnessOct, VoiceSelector::Role(Role::Melody));
        let all = RoomTarget::Param(Param::BrightnessOct, VoiceSelector::All);
        let map = RoomMap {
            weight: 0.5,
            gate_lufs: -60.0,
            input_gain_db: 0.0,
            mappings: vec![
                mapping(Feature::Loudness, melody, -50.0, -20.0),
                mapping(Feature::OnsetRate, all, 0.0, 8.0),
            ],
            tempo: None,
        };
        let mut m = RoomMapper::new(&map, &[0.5], 0.005, 100.0);
        let mut out = Vec::new();
        for _ in 0..8 {
            m.frame(&frame(-20.0, 0.0, 0.0), |c| out.push(c));
        }
        let last = |voices| {
            out.iter().rev().find_map(|c| match *c {
                Command::RoomParam {
                    voices: v, value, ..
                } if v == voices => Some(value),
                _ => None,
            })
        };
        // not averaged together: the melody gets the loudness's 1, everyone the onsets' 0
        assert_eq!(last(VoiceSelector::Role(Role::Melody)), Some(1.0));
        assert_eq!(last(VoiceSelector::All), Some(0.0));
    }

    #[test]
    fn silence_returns_spectral_mappings_to_neutral_and_nan_is_ignored() {
        let mut c = mapping(Feature::Centroid, RoomTarget::Mood(1), 100.0, 4000.0);
        c.log = true;
        let map = RoomMap {
            weight: 1.0,
            gate_lufs: -60.0,
            input_gain_db: 0.0,
            mappings: vec![c],
            tempo: None,
        };
        let mut m = RoomMapper::new(&map, &[0.0, 0.3], 0.005, 100.0);
        let mut out = Vec::new();
        for _ in 0..8 {
            m.frame(&frame(-20.0, 0.0, 4000.0), |c| out.push(c));
        }
        assert!((last_mood(&out, 1).unwrap() - 1.0).abs() < 1e-5);
        for _ in 0..8 {
            m.frame(&frame(-80.0, 0.0, 4000.0), |c| out.push(c));
        }
        assert!((last_mood(&out, 1).unwrap() - 0.3).abs() < 1e-5);
        for _ in 0..8 {
            m.frame(&frame(f32::NAN, f32::NAN, f32::NAN), |c| out.push(c));
        }
        assert!(out.iter().all(|c| match c {
            Command::Mood { value, .. } => value.is_finite(),
            _ => true,
        }));
    }

    #[test]
    fn tempo_folds_into_the_patch_limits() {
        assert_eq!(fold_tempo(150.0, 60.0, 120.0), Some(75.0));
        assert_eq!(fold_tempo(50.0, 80.0, 140.0), Some(100.0));
        assert_eq!(fold_tempo(100.0, 80.0, 140.0), Some(100.0));
        assert_eq!(fold_tempo(0.0, 80.0, 140.0), None);
        assert_eq!(fold_tempo(f32::NAN, 80.0, 140.0), None);
        // 100..110: 150 → 75 (too slow) → 150 (too fast): no octave fits
        assert_eq!(fold_tempo(150.0, 100.0, 110.0), None);
    }
}
