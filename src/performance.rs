//! Performance files: a timeline of joins, leaves, moods, notes and cues at exact times
//! (seconds, bar:beat or sample), resolved against a patch into sample-stamped commands.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::control::{Command, Expression, MoodTarget, VoiceSelector};
use crate::diagnostic::{Diagnostic, Diagnostics, Reporter};
use crate::engine::config::{Param, Role, Timbre};
use crate::engine::{MAX_TEMPO_BPM, MIN_TEMPO_BPM};
use crate::patch::Patch;

/// Current performance format version.
pub const PERFORMANCE_VERSION: i64 = 1;

/// A performance file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceFile {
    /// Format version; must be 1.
    pub version: Spanned<i64>,
    /// Length of the render; default: last event plus 8 seconds of tail.
    pub duration_secs: Option<Spanned<f64>>,
    /// Seed overriding the patch's.
    pub seed: Option<Spanned<i64>>,
    /// Free text.
    pub description: Option<String>,
    /// Events.
    #[serde(default)]
    pub events: Vec<EventFile>,
    /// Written at the end of a recorded session.
    pub session: Option<SessionFile>,
}

/// `[session]`: what a recording notes when it ends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// Sample at which the session stopped; the render lasts exactly as long.
    pub end_sample: Spanned<i64>,
    /// Gain the live leveler started from, in dB (default 0).
    pub leveler_start_db: Option<Spanned<f64>>,
}

/// One `[[events]]` entry: one time field, a `type` and that type's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFile {
    /// Seconds from the start.
    pub time: Option<Spanned<f64>>,
    /// Bar number from 1 (with optional `beat`).
    pub bar: Option<Spanned<i64>>,
    /// Beat within the bar from 1 (fractions allowed).
    pub beat: Option<Spanned<f64>>,
    /// Exact sample index (what live recordings write).
    pub sample: Option<Spanned<i64>>,
    /// "join", "leave", "mood", "release", "note_on", "note_off", "cue", "room", "room_param",
    /// "tempo", or an expressive control: "bend", "vibrato", "brightness".
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Participant id (0 = the conductor, for moods).
    pub participant: Option<Spanned<i64>>,
    /// Archetype id for a join (absent: the engine balances the ensemble).
    pub archetype: Option<Spanned<String>>,
    /// Mood dimension.
    pub dimension: Option<Spanned<String>>,
    /// Mood value, or an expressive control's value.
    pub value: Option<Spanned<f64>>,
    /// Mood ramp time.
    pub ramp_secs: Option<Spanned<f64>>,
    /// MIDI pitch.
    pub pitch: Option<Spanned<i64>>,
    /// MIDI velocity.
    pub velocity: Option<Spanned<i64>>,
    /// Section name for a cue.
    pub section: Option<Spanned<String>>,
    /// Sound parameter name for a "room_param" event.
    pub param: Option<Spanned<String>>,
    /// A "room_param" event reaching only the voices of this role (or `timbre`).
    pub role: Option<Spanned<String>>,
    /// A "room_param" event reaching only the voices of this timbre (or `role`).
    pub timbre: Option<Spanned<String>>,
    /// Tempo for a "tempo" event.
    pub bpm: Option<Spanned<f64>>,
}

/// A command at a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedCommand {
    /// Absolute sample index.
    pub sample: u64,
    /// The command.
    pub command: Command,
}

/// A resolved performance.
#[derive(Clone, Debug)]
pub struct Performance {
    /// Commands in time order (stable for equal times).
    pub commands: Vec<TimedCommand>,
    /// Frames to render.
    pub duration_frames: u64,
    /// Seed override.
    pub seed: Option<u64>,
    /// Most participants present at once.
    pub peak_participants: usize,
    /// `Some` for a recorded live session (`[session]`): it renders through the live master
    /// chain, its leveler starting at this gain (dB), so it re-renders to what was played.
    pub live_start_gain_db: Option<f32>,
}

const KINDS: [&str; 13] = [
    "join",
    "leave",
    "mood",
    "release",
    "note_on",
    "note_off",
    "cue",
    "room",
    "room_param",
    "tempo",
    "bend",
    "vibrato",
    "brightness",
];

impl Performance {
    /// Reads and resolves a performance file against a patch at a sample rate.
    pub fn load(path: &Path, patch: &Patch, sample_rate: u32) -> Result<Performance, Diagnostics> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Self::parse(path, &text, patch, sample_rate)
    }

    /// Parses and resolves performance text.
    pub fn parse(
        path: &Path,
        text: &str,
        patch: &Patch,
        sample_rate: u32,
    ) -> Result<Performance, Diagnostics> {
        let mut r = Reporter::new(path, text);
        let Some(file) = r.deserialize::<PerformanceFile>() else {
            return Err(Diagnostics(r.found));
        };
        let perf = resolve(&file, patch, sample_rate, &mut r);
        r.finish()?;
        Ok(perf)
    }
}

/// The voices a "room_param" event reaches: all, or one `role` or one `timbre`.
fn voice_selector(
    r: &mut Reporter,
    key: &str,
    e: &EventFile,
    param: Param,
) -> Option<VoiceSelector> {
    let (spanned, name, voices) = match (&e.role, &e.timbre) {
        (None, None) => return Some(VoiceSelector::All),
        (Some(_), Some(t)) => {
            r.error(
                t.span(),
                key.to_string(),
                "expected either `role` or `timbre` to select voices, not both",
            );
            return None;
        }
        (Some(x), None) => (
            x,
            "role",
            Role::from_name(x.get_ref()).map(VoiceSelector::Role),
        ),
        (None, Some(x)) => (
            x,
            "timbre",
            Timbre::from_name(x.get_ref()).map(VoiceSelector::Timbre),
        ),
    };
    let Some(voices) = voices else {
        let known = if name == "role" {
            Role::ALL.map(|x| format!("\"{}\"", x.1)).join(", ")
        } else {
            Timbre::ALL.map(|x| format!("\"{}\"", x.1)).join(", ")
        };
        r.error(
            spanned.span(),
            format!("{key}.{name}"),
            format!(
                "unknown {name} \"{}\"; expected one of {known}",
                spanned.get_ref()
            ),
        );
        return None;
    };
    if !param.is_per_voice() {
        r.error(
            spanned.span(),
            format!("{key}.{name}"),
            format!(
                "`{}` is ensemble-wide, not a voice parameter: it takes no `{name}`",
                param.name()
            ),
        );
        return None;
    }
    Some(voices)
}

fn resolve(f: &PerformanceFile, patch: &Patch, sample_rate: u32, r: &mut Reporter) -> Performance {
    if *f.version.get_ref() != PERFORMANCE_VERSION {
        r.error(
            f.version.span(),
            "version",
            format!(
                "expected version = {PERFORMANCE_VERSION}, found {}",
                f.version.get_ref()
            ),
        );
    }
    let sr = sample_rate as f64;
    let secs_per_beat = 60.0 / patch.tempo_bpm() as f64;
    let beats_per_bar = patch.beats_per_bar() as f64;
    let mut commands = Vec::new();
    for (i, e) in f.events.iter().enumerate() {
        let key = format!("events[{i}]");
        let kind = e.kind.get_ref().as_str();
        if !KINDS.contains(&kind) {
            r.error(
                e.kind.span(),
                format!("{key}.type"),
                format!(
                    "unknown event type \"{kind}\"; expected one of {}",
                    KINDS.map(|k| format!("\"{k}\"")).join(", ")
                ),
            );
            continue;
        }
        // time
        let times = [e.time.is_some(), e.bar.is_some(), e.sample.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if times != 1 {
            r.error(e.kind.span(), key.to_string(), "expected exactly one of `time` (seconds), `bar` (with optional `beat`) or `sample`");
            continue;
        }
        if let (Some(beat), None) = (&e.beat, &e.bar) {
            r.error(beat.span(), format!("{key}.beat"), "`beat` goes with `bar`");
            continue;
        }
        let sample = if let Some(t) = &e.time {
            let secs = *t.get_ref();
            if !(0.0..=86_400.0).contains(&secs) {
                r.error(
                    t.span(),
                    format!("{key}.time"),
                    format!("expected seconds from 0 to 86400, found {secs}"),
                );
                continue;
            }
            (secs * sr).round() as u64
        } else if let Some(b) = &e.bar {
            let bar = *b.get_ref();
            let beat = e.beat.as_ref().map_or(1.0, |x| *x.get_ref());
            if !(1..=100_000).contains(&bar) {
                r.error(
                    b.span(),
                    format!("{key}.bar"),
                    format!("expected a bar number from 1, found {bar}"),
                );
                continue;
            }
            if !(1.0..beats_per_bar + 1.0).contains(&beat) {
                let span = e.beat.as_ref().map_or(b.span(), |x| x.span());
                r.error(
                    span,
                    format!("{key}.beat"),
                    format!(
                        "expected a beat from 1 to below {}, found {beat}",
                        beats_per_bar + 1.0
                    ),
                );
                continue;
            }
            let beats = (bar - 1) as f64 * beats_per_bar + (beat - 1.0);
            (beats * secs_per_beat * sr).round() as u64
        } else {
            let s = e.sample.as_ref().unwrap();
            if *s.get_ref() < 0 {
                r.error(
                    s.span(),
                    format!("{key}.sample"),
                    "expected a sample index of 0 or more",
                );
                continue;
            }
            *s.get_ref() as u64
        };
        // fields each type needs / allows
        let allowed: &[&str] = match kind {
            "join" => &["participant", "archetype"],
            "leave" => &["participant"],
            "mood" => &["participant", "dimension", "value", "ramp_secs"],
            "release" => &["dimension"],
            "note_on" => &["participant", "pitch", "velocity"],
            "note_off" => &["participant", "pitch"],
            "room" => &["dimension", "value", "ramp_secs"],
            "room_param" => &["param", "value", "role", "timbre"],
            "tempo" => &["bpm"],
            "bend" | "vibrato" | "brightness" => &["participant", "value"],
            _ => &["section"],
        };
        let present: [(&str, Option<std::ops::Range<usize>>); 12] = [
            ("participant", e.participant.as_ref().map(|x| x.span())),
            ("archetype", e.archetype.as_ref().map(|x| x.span())),
            ("dimension", e.dimension.as_ref().map(|x| x.span())),
            ("value", e.value.as_ref().map(|x| x.span())),
            ("ramp_secs", e.ramp_secs.as_ref().map(|x| x.span())),
            ("pitch", e.pitch.as_ref().map(|x| x.span())),
            ("velocity", e.velocity.as_ref().map(|x| x.span())),
            ("section", e.section.as_ref().map(|x| x.span())),
            ("param", e.param.as_ref().map(|x| x.span())),
            ("bpm", e.bpm.as_ref().map(|x| x.span())),
            ("role", e.role.as_ref().map(|x| x.span())),
            ("timbre", e.timbre.as_ref().map(|x| x.span())),
        ];
        let mut ok = true;
        for (name, span) in &present {
            if let Some(span) = span {
                if !allowed.contains(name) {
                    r.error(
                        span.clone(),
                        format!("{key}.{name}"),
                        format!(
                            "`{name}` does not belong to a \"{kind}\" event; it takes {}",
                            allowed.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        let required: &[&str] = match kind {
            "join" | "leave" => &["participant"],
            "mood" => &["participant", "dimension", "value"],
            "release" => &["dimension"],
            "note_on" => &["participant", "pitch", "velocity"],
            "note_off" => &["participant", "pitch"],
            "room" => &["dimension", "value"],
            "room_param" => &["param", "value"],
            "tempo" => &["bpm"],
            "bend" | "vibrato" | "brightness" => &["participant", "value"],
            _ => &["section"],
        };
        for name in required {
            if present.iter().any(|(n, s)| n == name && s.is_none()) {
                r.error(
                    e.kind.span(),
                    format!("{key}.{name}"),
                    format!("a \"{kind}\" event needs `{name}`"),
                );
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        let participant = |r: &mut Reporter, min: i64| -> Option<u32> {
            let p = e.participant.as_ref()?;
            let v = *p.get_ref();
            if v < min || v > u32::MAX as i64 {
                r.error(
                    p.span(),
                    format!("{key}.participant"),
                    format!(
                        "expected a participant id from {min} to {}, found {v}",
                        u32::MAX
                    ),
                );
                return None;
            }
            Some(v as u32)
        };
        let dimension = |r: &mut Reporter| -> Option<u8> {
            let d = e.dimension.as_ref()?;
            let i = patch.dims.iter().position(|n| n == d.get_ref());
            if i.is_none() {
                r.error(
                    d.span(),
                    format!("{key}.dimension"),
                    format!(
                        "unknown mood dimension \"{}\"; expected one of {}",
                        d.get_ref(),
                        patch.dims.join(", ")
                    ),
                );
            }
            i.map(|i| i as u8)
        };
        let midi =
            |r: &mut Reporter, v: &Option<Spanned<i64>>, name: &str, lo: i64| -> Option<u8> {
                let v = v.as_ref()?;
                let x = *v.get_ref();
                if !(lo..=127).contains(&x) {
                    r.error(
                        v.span(),
                        format!("{key}.{name}"),
                        format!("expected {lo} to 127, found {x}"),
                    );
                    return None;
                }
                Some(x as u8)
            };
        let command = match kind {
            "join" => {
                let Some(participant) = participant(r, 1) else {
                    continue;
                };
                let archetype = match &e.archetype {
                    Some(a) => match patch.archetypes.iter().position(|n| n == a.get_ref()) {
                        Some(i) => Some(i as u16),
                        None => {
                            r.error(
                                a.span(),
                                format!("{key}.archetype"),
                                format!(
                                    "unknown archetype \"{}\"; expected one of {}",
                                    a.get_ref(),
                                    patch.archetypes.join(", ")
                                ),
                            );
                            continue;
                        }
                    },
                    None => None,
                };
                Command::Join {
                    participant,
                    archetype,
                }
            }
            "leave" => {
                let Some(participant) = participant(r, 1) else {
                    continue;
                };
                Command::Leave { participant }
            }
            "mood" => {
                let Some(p) = participant(r, 0) else { continue };
                let Some(dim) = dimension(r) else { continue };
                let Some(value) = mood_value(r, &key, e, patch, sample_rate, dim) else {
                    continue;
                };
                let Some(ramp_secs) = ramp(r, &key, e) else {
                    continue;
                };
                Command::Mood {
                    target: if p == 0 {
                        MoodTarget::Communal
                    } else {
                        MoodTarget::Participant(p)
                    },
                    dim,
                    value,
                    ramp_secs,
                }
            }
            "release" => {
                let Some(dim) = dimension(r) else { continue };
                Command::ReleaseCommunal { dim }
            }
            "note_on" => {
                let Some(participant) = participant(r, 1) else {
                    continue;
                };
                let (Some(pitch), Some(velocity)) = (
                    midi(r, &e.pitch, "pitch", 0),
                    midi(r, &e.velocity, "velocity", 1),
                ) else {
                    continue;
                };
                Command::NoteOn {
                    participant,
                    pitch,
                    velocity,
                }
            }
            "note_off" => {
                let Some(participant) = participant(r, 1) else {
                    continue;
                };
                let Some(pitch) = midi(r, &e.pitch, "pitch", 0) else {
                    continue;
                };
                Command::NoteOff { participant, pitch }
            }
            "room" => {
                let Some(dim) = dimension(r) else { continue };
                let Some(value) = mood_value(r, &key, e, patch, sample_rate, dim) else {
                    continue;
                };
                let Some(ramp_secs) = ramp(r, &key, e) else {
                    continue;
                };
                Command::Mood {
                    target: MoodTarget::Room,
                    dim,
                    value,
                    ramp_secs,
                }
            }
            "room_param" => {
                let p = e.param.as_ref().unwrap();
                let Some(&(param, name, low, high, _)) =
                    Param::ALL.iter().find(|x| x.1 == p.get_ref())
                else {
                    r.error(
                        p.span(),
                        format!("{key}.param"),
                        format!(
                            "unknown parameter \"{}\"; expected one of {}",
                            p.get_ref(),
                            Param::ALL.map(|x| x.1).join(", ")
                        ),
                    );
                    continue;
                };
                let v = e.value.as_ref().unwrap();
                let span = (high - low) as f64;
                if !(-span..=span).contains(v.get_ref()) {
                    r.error(
                        v.span(),
                        format!("{key}.value"),
                        format!(
                            "expected an offset on {name} from {} to {span}, found {}",
                            -span,
                            v.get_ref()
                        ),
                    );
                    continue;
                }
                let Some(voices) = voice_selector(r, &key, e, param) else {
                    continue;
                };
                Command::RoomParam {
                    param: param.index() as u8,
                    voices,
                    value: *v.get_ref() as f32,
                }
            }
            "tempo" => {
                let b = e.bpm.as_ref().unwrap();
                let (lo, hi) = (MIN_TEMPO_BPM as f64, MAX_TEMPO_BPM as f64);
                if !(lo..=hi).contains(b.get_ref()) {
                    r.error(
                        b.span(),
                        format!("{key}.bpm"),
                        format!("expected {lo} to {hi} BPM, found {}", b.get_ref()),
                    );
                    continue;
                }
                Command::Tempo {
                    bpm: *b.get_ref() as f32,
                }
            }
            "bend" | "vibrato" | "brightness" => {
                let (Some(participant), Some(kind)) =
                    (participant(r, 1), Expression::from_name(kind))
                else {
                    continue;
                };
                let (lo, hi) = kind.range();
                let v = e.value.as_ref().unwrap();
                let value = *v.get_ref();
                if !(lo as f64..=hi as f64).contains(&value) {
                    let unit = if kind == Expression::PitchBend {
                        " semitones"
                    } else {
                        ""
                    };
                    r.error(
                        v.span(),
                        format!("{key}.value"),
                        format!("expected a value from {lo} to {hi}{unit}, found {value}"),
                    );
                    continue;
                }
                Command::Expression {
                    participant,
                    kind,
                    value: value as f32,
                }
            }
            _ => {
                let s = e.section.as_ref().unwrap();
                match patch.sections.iter().position(|n| n == s.get_ref()) {
                    Some(i) => Command::Cue { section: i as u16 },
                    None => {
                        r.error(
                            s.span(),
                            format!("{key}.section"),
                            format!(
                                "unknown section \"{}\"; expected one of {}",
                                s.get_ref(),
                                patch.sections.join(", ")
                            ),
                        );
                        continue;
                    }
                }
            }
        };
        commands.push((sample, e.kind.span(), key, TimedCommand { sample, command }));
    }
    commands.sort_by_key(|c| c.0);
    // who is present when: leaves and notes need a participant, joins need room
    let mut present: Vec<u32> = Vec::new();
    let mut peak = 0;
    for (_, span, key, c) in &commands {
        match c.command {
            Command::Join { participant, .. } => {
                if present.contains(&participant) {
                    r.error(
                        span.clone(),
                        key.clone(),
                        format!("participant {participant} joins twice without leaving"),
                    );
                } else if present.len() >= patch.capacity() {
                    r.error(span.clone(), key.clone(), format!("participant {participant} would exceed the patch's capacity of {} participants", patch.capacity()));
                } else {
                    present.push(participant);
                }
            }
            Command::Leave { participant } => {
                if let Some(i) = present.iter().position(|p| *p == participant) {
                    present.swap_remove(i);
                } else {
                    r.error(
                        span.clone(),
                        key.clone(),
                        format!("participant {participant} leaves but is not present"),
                    );
                }
            }
            Command::NoteOn { participant, .. }
            | Command::NoteOff { participant, .. }
            | Command::Expression { participant, .. }
            | Command::Mood {
                target: MoodTarget::Participant(participant),
                ..
            } if !present.contains(&participant) => {
                r.error(
                    span.clone(),
                    key.clone(),
                    format!("participant {participant} is not present at this time"),
                );
            }
            _ => {}
        }
        peak = peak.max(present.len());
    }
    let last = commands.last().map_or(0, |c| c.0);
    let duration_frames = match (&f.duration_secs, &f.session) {
        (None, Some(session)) => {
            let end = *session.end_sample.get_ref();
            if end < 0 {
                r.error(
                    session.end_sample.span(),
                    "session.end_sample",
                    "expected a sample index of 0 or more",
                );
            }
            end.max(0) as u64
        }
        _ => match &f.duration_secs {
            Some(d) => {
                let secs = *d.get_ref();
                if !(0.1..=86_400.0).contains(&secs) {
                    r.error(
                        d.span(),
                        "duration_secs",
                        format!("expected 0.1 to 86400 seconds, found {secs}"),
                    );
                }
                (secs.clamp(0.1, 86_400.0) * sr).round() as u64
            }
            None => last + 8 * sample_rate as u64,
        },
    };
    let seed = f.seed.as_ref().map(|s| *s.get_ref() as u64);
    Performance {
        commands: commands.into_iter().map(|c| c.3).collect(),
        duration_frames,
        seed,
        peak_participants: peak,
        live_start_gain_db: f.session.as_ref().map(|s| leveler_start(r, s)),
    }
}

/// `[session] leveler_start_db`, within the live leveler's limits (default 0).
fn leveler_start(r: &mut Reporter, session: &SessionFile) -> f32 {
    let limit = crate::render::MAX_GAIN_DB;
    match &session.leveler_start_db {
        Some(db) if !(-limit..=limit).contains(db.get_ref()) => {
            r.error(
                db.span(),
                "session.leveler_start_db",
                format!(
                    "expected a gain from -{limit} to {limit} dB, found {}",
                    db.get_ref()
                ),
            );
            0.0
        }
        Some(db) => *db.get_ref() as f32,
        None => 0.0,
    }
}

/// A mood event's value, checked against its dimension's range.
fn mood_value(
    r: &mut Reporter,
    key: &str,
    e: &EventFile,
    patch: &Patch,
    sample_rate: u32,
    dim: u8,
) -> Option<f32> {
    let v = e.value.as_ref()?;
    let value = *v.get_ref();
    let d = &patch.config(sample_rate, None).dims[dim as usize];
    if !(d.min as f64..=d.max as f64).contains(&value) {
        r.error(
            v.span(),
            format!("{key}.value"),
            format!(
                "expected a value from {} to {}, found {value}",
                d.min, d.max
            ),
        );
        return None;
    }
    Some(value as f32)
}

/// A mood event's ramp time (default 0).
fn ramp(r: &mut Reporter, key: &str, e: &EventFile) -> Option<f32> {
    match &e.ramp_secs {
        Some(rs) if !(0.0..=3600.0).contains(rs.get_ref()) => {
            r.error(
                rs.span(),
                format!("{key}.ramp_secs"),
                format!("expected 0 to 3600 seconds, found {}", rs.get_ref()),
            );
            None
        }
        Some(rs) => Some(*rs.get_ref() as f32),
        None => Some(0.0),
    }
}
