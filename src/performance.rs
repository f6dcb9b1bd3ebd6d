//! Performance files: a timeline of joins, leaves, moods, notes and cues at exact times
//! (seconds, bar:beat or sample), resolved against a patch into sample-stamped commands.
//!
//! A file is read one `[[events]]` table at a time (see `layout`) and each event is resolved as
//! soon as it is parsed, so memory grows with the compact commands (about 40 bytes each), not
//! with a document tree. A session recording (`recording = true`) cut short by a crash keeps
//! everything up to its last complete event: the unfinished one is dropped with a warning.

mod layout;

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::control::{Command, Expression, MoodTarget, VoiceSelector};
use crate::diagnostic::{Diagnostic, Diagnostics, Reporter};
use crate::engine::config::{Param, Role, Timbre};
use crate::engine::{MAX_TEMPO_BPM, MIN_TEMPO_BPM};
use crate::patch::Patch;
use layout::Tables;

/// Current performance format version.
pub const PERFORMANCE_VERSION: i64 = 1;
/// Latest moment of a performance, in seconds (24 h): event times in any unit, the
/// `duration_secs`, a recording's end and `--duration` on the command line.
pub const MAX_SHOW_SECS: f64 = 86_400.0;
/// Shortest `duration_secs`.
pub const MIN_DURATION_SECS: f64 = 0.1;
/// Longest `ramp_secs` of a mood or room event (1 h).
pub const MAX_RAMP_SECS: f64 = 3_600.0;
/// Tail rendered after the last event when the file gives no length.
pub const DEFAULT_TAIL_SECS: u64 = 8;
/// Most `[[events]]` in one file (a recording stops recording events at this count).
pub const MAX_EVENTS: usize = 4_000_000;
/// Largest performance file read, in bytes (512 MiB).
pub const MAX_PERFORMANCE_BYTES: usize = 512 << 20;
/// Most text outside the `[[events]]` tables (the header, `[session]`, inline events): it is
/// parsed as one tree, so it is kept small.
pub const MAX_HEAD_BYTES: usize = 1 << 20;

/// The part of a performance file outside its `[[events]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceFile {
    /// Format version; must be 1.
    pub version: Spanned<i64>,
    /// Length of the render; default: the recording's end, else the last event plus 8 s.
    pub duration_secs: Option<Spanned<f64>>,
    /// Seed overriding the patch's.
    pub seed: Option<Spanned<i64>>,
    /// Free text.
    pub description: Option<String>,
    /// Written by session recordings: an unfinished last entry is dropped with a warning.
    pub recording: Option<bool>,
    /// Events given as an inline array (`events = [...]`) rather than `[[events]]` tables.
    #[serde(default)]
    pub events: Vec<EventFile>,
    /// Written at the end of a recorded session.
    pub session: Option<SessionFile>,
    /// Written by live session recordings: the gain (dB) the live master leveler started
    /// from. Such a file renders through the live master chain, so it re-renders to what was
    /// played.
    pub live_leveler_start_db: Option<Spanned<f64>>,
}

/// `[session]`: what a recording notes when it ends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// Sample at which the session stopped; the render lasts exactly as long.
    pub end_sample: Spanned<i64>,
}

/// One `[[events]]` entry: one time field, a `type` and that type's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFile {
    /// Seconds from the start, 0 to [`MAX_SHOW_SECS`].
    pub time: Option<Spanned<f64>>,
    /// Bar number from 1 (with optional `beat`); the moment must be within [`MAX_SHOW_SECS`].
    pub bar: Option<Spanned<i64>>,
    /// Beat within the bar from 1 (fractions allowed).
    pub beat: Option<Spanned<f64>>,
    /// Exact sample index (what live recordings write), up to [`MAX_SHOW_SECS`] × the rate.
    pub sample: Option<Spanned<i64>>,
    /// "join", "leave", "mood", "release", "note_on", "note_off", "cue", "room", "room_param",
    /// "tempo", an expressive control ("bend", "vibrato", "brightness"), or "position" (how
    /// far a recorded show had got).
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
    /// Mood ramp time, 0 to [`MAX_RAMP_SECS`].
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
#[derive(Clone, Debug, Default)]
pub struct Performance {
    /// Commands in time order (stable for equal times).
    pub commands: Vec<TimedCommand>,
    /// Frames to render.
    pub duration_frames: u64,
    /// Seed override.
    pub seed: Option<u64>,
    /// Most participants present at once.
    pub peak_participants: usize,
    /// Harmless oddities found while reading (printed by `check`, `render` and `play`).
    pub warnings: Vec<Diagnostic>,
    /// `Some` for a recorded live session: it renders through the live master chain, its
    /// leveler starting at this gain (dB), so it re-renders to what was played.
    pub live_start_gain_db: Option<f32>,
}

const KINDS: [&str; 14] = [
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
    "position",
];

impl Performance {
    /// Reads and resolves a performance file against a patch at a sample rate.
    pub fn load(path: &Path, patch: &Patch, sample_rate: u32) -> Result<Performance, Diagnostics> {
        let whole = |message: String| Diagnostics(vec![Diagnostic::whole_file(path, message)]);
        let size = std::fs::metadata(path)
            .map_err(|e| whole(format!("cannot read the file: {e}")))?
            .len();
        if size > MAX_PERFORMANCE_BYTES as u64 {
            return Err(whole(too_long(size)));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| whole(format!("cannot read the file: {e}")))?;
        Self::parse(path, &text, patch, sample_rate)
    }

    /// Parses and resolves performance text.
    pub fn parse(
        path: &Path,
        text: &str,
        patch: &Patch,
        sample_rate: u32,
    ) -> Result<Performance, Diagnostics> {
        if text.len() > MAX_PERFORMANCE_BYTES {
            return Err(Diagnostics(vec![Diagnostic::whole_file(
                path,
                too_long(text.len() as u64),
            )]));
        }
        let mut r = Reporter::new(path, text);
        let resolver = Resolver::new(patch, sample_rate);
        let mut timeline = Timeline::default();
        let rest = read_tables(text, &resolver, &mut timeline, &mut r);
        if rest.text.len() > MAX_HEAD_BYTES {
            // one tree of that much text could take gigabytes: say where it went wrong instead
            let (at, what) = match rest.unclosed {
                Some(at) => (at, "a value opened here never closes, so the rest of the file is part of it; expected"),
                None => (rest.to_file(0), "expected"),
            };
            r.error(
                at..at,
                "",
                format!(
                    "{what} at most {MAX_HEAD_BYTES} bytes outside [[events]] tables, found {}",
                    rest.text.len()
                ),
            );
            return Err(r.finish().err().unwrap_or(Diagnostics(Vec::new())));
        }
        let head = r.deserialize_view::<PerformanceFile>(&rest.text, |o| rest.to_file(o));
        let mut perf = Performance::default();
        if let Some(head) = head {
            if !head.events.is_empty() {
                read_inline_events(&head, &rest, &resolver, &mut timeline, &mut r);
            }
            perf = finish(&head, &rest, timeline, &resolver, &mut r);
        }
        perf.warnings = r.finish()?;
        Ok(perf)
    }
}

fn too_long(bytes: u64) -> String {
    format!("expected a performance of at most {MAX_PERFORMANCE_BYTES} bytes, found {bytes} bytes")
}

/// The document without its `[[events]]` tables (small whatever the number of events), and
/// where its pieces come from in the file, so problems are located in the file itself.
struct Rest {
    text: String,
    /// (offset in `text`, offset in the file) where each copied piece starts.
    pieces: Vec<(usize, usize)>,
    /// Where a value that never closed opened (see [`Tables::unclosed`]).
    unclosed: Option<usize>,
}

impl Rest {
    fn copy(&mut self, file: &str, range: Range<usize>) {
        self.pieces.push((self.text.len(), range.start));
        self.text.push_str(&file[range]);
    }

    /// The file offset of an offset in `text`.
    fn to_file(&self, offset: usize) -> usize {
        let i = self.pieces.partition_point(|&(at, _)| at <= offset);
        match i.checked_sub(1).map(|i| self.pieces[i]) {
            Some((at, from)) => from + (offset - at),
            None => offset,
        }
    }
}

/// Resolves every `[[events]]` table as it is found; returns the rest of the document.
fn read_tables(text: &str, resolver: &Resolver, timeline: &mut Timeline, r: &mut Reporter) -> Rest {
    let preamble_end = Tables::preamble_end(text);
    let mut rest = Rest {
        text: String::new(),
        pieces: Vec::new(),
        unclosed: None,
    };
    rest.copy(text, 0..preamble_end);
    let torn = is_recording(&text[..preamble_end]) && !ends_with_blank_line(text);
    // one allocation for every command, rather than a vector doubling as it grows
    timeline
        .entries
        .reserve_exact(text.matches("[[events]]").count().min(MAX_EVENTS));
    let mut tables = Tables::new(text);
    let mut next = tables.next();
    let mut index = 0;
    while let Some(table) = next {
        next = tables.next();
        let key = if table.events {
            format!("events[{index}]")
        } else {
            text[table.header.clone()]
                .trim_matches(['[', ']', ' '])
                .to_string()
        };
        if torn && next.is_none() {
            r.warning(
                table.header.clone(),
                key,
                format!(
                    "the recording ends in an unfinished entry (the show stopped while it was being written); dropped: {}",
                    excerpt(&text[table.start..table.end])
                ),
            );
            break;
        }
        if !table.events {
            rest.copy(text, table.start..table.end);
            continue;
        }
        if index == MAX_EVENTS {
            r.error(
                table.header.clone(),
                key.clone(),
                format!("expected at most {MAX_EVENTS} events"),
            );
        }
        index += 1;
        if index > MAX_EVENTS {
            continue;
        }
        let body = table.body();
        let Some(event) = r.deserialize_part::<EventFile>(body.clone(), &key, table.header) else {
            continue;
        };
        let mut spans = Spans {
            r,
            to_file: &|o| o + body.start,
        };
        timeline.add(resolver.event(&event, &key, &mut spans));
    }
    rest.unclosed = tables.unclosed();
    rest
}

/// Events written as an inline `events = [...]` array.
fn read_inline_events(
    head: &PerformanceFile,
    rest: &Rest,
    resolver: &Resolver,
    timeline: &mut Timeline,
    r: &mut Reporter,
) {
    let to_file = |o| rest.to_file(o);
    let mut spans = Spans {
        r,
        to_file: &to_file,
    };
    if !timeline.entries.is_empty() || timeline.positions > 0 {
        let at = head.events[0].kind.span();
        spans.error(
            at,
            "events",
            "expected events either as an inline array or as [[events]] tables, not both",
        );
        return;
    }
    if head.events.len() > MAX_EVENTS {
        let at = head.events[MAX_EVENTS].kind.span();
        spans.error(
            at,
            format!("events[{MAX_EVENTS}]"),
            format!("expected at most {MAX_EVENTS} events"),
        );
    }
    for (i, e) in head.events.iter().enumerate().take(MAX_EVENTS) {
        timeline.add(resolver.event(e, &format!("events[{i}]"), &mut spans));
    }
}

/// Whether the text before the first table says `recording = true`.
fn is_recording(preamble: &str) -> bool {
    #[derive(Deserialize)]
    struct Preamble {
        recording: Option<bool>,
    }
    if preamble.len() > MAX_HEAD_BYTES {
        return false;
    }
    toml::from_str::<Preamble>(preamble)
        .ok()
        .and_then(|p| p.recording)
        .unwrap_or(false)
}

/// Whether the text ends with an empty line: how a recording ends every entry it writes.
fn ends_with_blank_line(text: &str) -> bool {
    let trimmed = text.trim_end();
    text[trimmed.len()..].matches('\n').count() >= 2
}

/// The start of a dropped text, on one line.
fn excerpt(text: &str) -> String {
    const SHOWN: usize = 80;
    let shown: String = text.trim().chars().take(SHOWN).collect();
    let shown = shown.replace('\n', " ⏎ ");
    let more = text.trim().chars().count() > SHOWN;
    format!(
        "`{shown}{}` ({} bytes)",
        if more { "…" } else { "" },
        text.len()
    )
}

/// Reports problems of one event, whose spans are offsets in the text it was parsed from.
struct Spans<'x, 'a> {
    r: &'x mut Reporter<'a>,
    to_file: &'x dyn Fn(usize) -> usize,
}

impl Spans<'_, '_> {
    fn file_span(&self, span: Range<usize>) -> Range<usize> {
        (self.to_file)(span.start)..(self.to_file)(span.end)
    }

    fn error(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let span = self.file_span(span);
        self.r.error(span, key, message);
    }
}

/// An event as resolved: a command at a sample, or a recording's position mark.
struct Resolved {
    sample: u64,
    command: Option<Command>,
    /// File offset of the event's `type`, to locate later problems.
    at: usize,
}

/// One command kept for the whole file: compact (40 bytes), with what it takes to locate a
/// problem (offsets fit: a file is at most [`MAX_PERFORMANCE_BYTES`]).
struct Entry {
    sample: u64,
    command: Command,
    index: u32,
    at: u32,
}

/// Every command read so far, and the latest position mark.
#[derive(Default)]
struct Timeline {
    entries: Vec<Entry>,
    /// Latest `position` mark.
    reached: Option<u64>,
    positions: usize,
    /// Events read (commands and marks), for their index in diagnostics.
    read: u32,
}

impl Timeline {
    fn add(&mut self, resolved: Option<Resolved>) {
        let index = self.read;
        self.read += 1;
        let Some(resolved) = resolved else {
            return;
        };
        match resolved.command {
            Some(command) => self.entries.push(Entry {
                sample: resolved.sample,
                command,
                index,
                at: resolved.at as u32,
            }),
            None => {
                self.positions += 1;
                self.reached = self.reached.max(Some(resolved.sample));
            }
        }
    }
}

/// What events are resolved against: the patch's names and ranges, the score's timing.
struct Resolver<'p> {
    patch: &'p Patch,
    sample_rate: u32,
    secs_per_beat: f64,
    beats_per_bar: f64,
    /// Latest sample: [`MAX_SHOW_SECS`] at the sample rate.
    max_sample: u64,
}

impl<'p> Resolver<'p> {
    fn new(patch: &'p Patch, sample_rate: u32) -> Self {
        Resolver {
            patch,
            sample_rate,
            secs_per_beat: 60.0 / patch.tempo_bpm() as f64,
            beats_per_bar: patch.beats_per_bar() as f64,
            max_sample: max_sample(sample_rate),
        }
    }

    fn event(&self, e: &EventFile, key: &str, r: &mut Spans) -> Option<Resolved> {
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
            return None;
        }
        let sample = self.moment(e, key, r)?;
        if !fields_fit(kind, e, key, r) {
            return None;
        }
        let command = if kind == "position" {
            None
        } else {
            Some(self.command(kind, e, key, r)?)
        };
        Some(Resolved {
            sample,
            command,
            at: r.file_span(e.kind.span()).start,
        })
    }

    /// The sample of an event's `time`, `bar`/`beat` or `sample`, within [`MAX_SHOW_SECS`].
    fn moment(&self, e: &EventFile, key: &str, r: &mut Spans) -> Option<u64> {
        let times = [e.time.is_some(), e.bar.is_some(), e.sample.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if times != 1 {
            r.error(e.kind.span(), key.to_string(), "expected exactly one of `time` (seconds), `bar` (with optional `beat`) or `sample`");
            return None;
        }
        if let (Some(beat), None) = (&e.beat, &e.bar) {
            r.error(beat.span(), format!("{key}.beat"), "`beat` goes with `bar`");
            return None;
        }
        let sr = self.sample_rate as f64;
        if let Some(t) = &e.time {
            let secs = *t.get_ref();
            if !(0.0..=MAX_SHOW_SECS).contains(&secs) {
                r.error(
                    t.span(),
                    format!("{key}.time"),
                    format!("expected seconds from 0 to {MAX_SHOW_SECS} (24 h), found {secs}"),
                );
                return None;
            }
            return Some(((secs * sr).round() as u64).min(self.max_sample));
        }
        if let Some(b) = &e.bar {
            let bar = *b.get_ref();
            let beat = e.beat.as_ref().map_or(1.0, |x| *x.get_ref());
            if bar < 1 {
                r.error(
                    b.span(),
                    format!("{key}.bar"),
                    format!("expected a bar number from 1, found {bar}"),
                );
                return None;
            }
            if !(1.0..self.beats_per_bar + 1.0).contains(&beat) {
                let span = e.beat.as_ref().map_or(b.span(), |x| x.span());
                r.error(
                    span,
                    format!("{key}.beat"),
                    format!(
                        "expected a beat from 1 to below {}, found {beat}",
                        self.beats_per_bar + 1.0
                    ),
                );
                return None;
            }
            let beats = (bar - 1) as f64 * self.beats_per_bar + (beat - 1.0);
            let secs = beats * self.secs_per_beat;
            if secs > MAX_SHOW_SECS {
                r.error(
                    b.span(),
                    format!("{key}.bar"),
                    format!(
                        "bar {bar} is {secs:.0} s into the piece at {} BPM; expected a moment within {MAX_SHOW_SECS} s (24 h)",
                        self.patch.tempo_bpm()
                    ),
                );
                return None;
            }
            return Some(((secs * sr).round() as u64).min(self.max_sample));
        }
        let s = e.sample.as_ref()?;
        let sample = *s.get_ref();
        if !(0..=self.max_sample as i64).contains(&sample) {
            r.error(
                s.span(),
                format!("{key}.sample"),
                format!(
                    "expected a sample index from 0 to {} ({MAX_SHOW_SECS} s at {} Hz), found {sample}",
                    self.max_sample, self.sample_rate
                ),
            );
            return None;
        }
        Some(sample as u64)
    }

    /// The command of an event whose fields fit its type.
    fn command(&self, kind: &str, e: &EventFile, key: &str, r: &mut Spans) -> Option<Command> {
        let participant = |r: &mut Spans, min: i64| participant(e, key, min, r);
        Some(match kind {
            "join" => Command::Join {
                participant: participant(r, 1)?,
                archetype: match &e.archetype {
                    Some(a) => Some(self.named(a, &self.patch.archetypes, "archetype", key, r)?),
                    None => None,
                },
            },
            "leave" => Command::Leave {
                participant: participant(r, 1)?,
            },
            "mood" | "room" => {
                let target = match kind {
                    "room" => MoodTarget::Room,
                    _ => match participant(r, 0)? {
                        0 => MoodTarget::Communal,
                        p => MoodTarget::Participant(p),
                    },
                };
                let dim = self.dimension(e, key, r)?;
                Command::Mood {
                    target,
                    dim,
                    value: self.mood_value(e, key, dim, r)?,
                    ramp_secs: ramp(e, key, r)?,
                }
            }
            "release" => Command::ReleaseCommunal {
                dim: self.dimension(e, key, r)?,
            },
            "note_on" => {
                let participant = participant(r, 1)?;
                let pitch = midi(e.pitch.as_ref(), "pitch", 0, key, r);
                let velocity = midi(e.velocity.as_ref(), "velocity", 1, key, r);
                Command::NoteOn {
                    participant,
                    pitch: pitch?,
                    velocity: velocity?,
                }
            }
            "note_off" => Command::NoteOff {
                participant: participant(r, 1)?,
                pitch: midi(e.pitch.as_ref(), "pitch", 0, key, r)?,
            },
            "room_param" => room_param(e, key, r)?,
            "tempo" => {
                let b = e.bpm.as_ref()?;
                let (lo, hi) = (MIN_TEMPO_BPM as f64, MAX_TEMPO_BPM as f64);
                if !(lo..=hi).contains(b.get_ref()) {
                    r.error(
                        b.span(),
                        format!("{key}.bpm"),
                        format!("expected {lo} to {hi} BPM, found {}", b.get_ref()),
                    );
                    return None;
                }
                Command::Tempo {
                    bpm: *b.get_ref() as f32,
                }
            }
            "bend" | "vibrato" | "brightness" => {
                let participant = participant(r, 1)?;
                let kind = Expression::from_name(kind)?;
                Command::Expression {
                    participant,
                    kind,
                    value: expression_value(e, kind, key, r)?,
                }
            }
            _ => Command::Cue {
                section: self.named(
                    e.section.as_ref()?,
                    &self.patch.sections,
                    "section",
                    key,
                    r,
                )?,
            },
        })
    }

    /// The index of a name in one of the patch's lists.
    fn named(
        &self,
        v: &Spanned<String>,
        list: &[String],
        what: &str,
        key: &str,
        r: &mut Spans,
    ) -> Option<u16> {
        let i = list.iter().position(|n| n == v.get_ref());
        if i.is_none() {
            r.error(
                v.span(),
                format!("{key}.{what}"),
                format!(
                    "unknown {what} \"{}\"; expected one of {}",
                    v.get_ref(),
                    list.join(", ")
                ),
            );
        }
        i.map(|i| i as u16)
    }

    fn dimension(&self, e: &EventFile, key: &str, r: &mut Spans) -> Option<u8> {
        let d = e.dimension.as_ref()?;
        let i = self.patch.dims.iter().position(|n| n == d.get_ref());
        if i.is_none() {
            r.error(
                d.span(),
                format!("{key}.dimension"),
                format!(
                    "unknown mood dimension \"{}\"; expected one of {}",
                    d.get_ref(),
                    self.patch.dims.join(", ")
                ),
            );
        }
        i.map(|i| i as u8)
    }

    /// A mood event's value, checked against its dimension's range.
    fn mood_value(&self, e: &EventFile, key: &str, dim: u8, r: &mut Spans) -> Option<f32> {
        let v = e.value.as_ref()?;
        let value = *v.get_ref();
        let (min, max) = self.patch.dim_range(dim as usize)?;
        if !(min as f64..=max as f64).contains(&value) {
            r.error(
                v.span(),
                format!("{key}.value"),
                format!("expected a value from {min} to {max}, found {value}"),
            );
            return None;
        }
        Some(value as f32)
    }
}

/// Latest sample at a rate: [`MAX_SHOW_SECS`] of it.
pub fn max_sample(sample_rate: u32) -> u64 {
    (MAX_SHOW_SECS * sample_rate as f64) as u64
}

/// Checks the fields an event has against those its type takes and needs.
fn fields_fit(kind: &str, e: &EventFile, key: &str, r: &mut Spans) -> bool {
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
        "position" => &[],
        _ => &["section"],
    };
    let required: &[&str] = match kind {
        "mood" => &["participant", "dimension", "value"],
        "room" => &["dimension", "value"],
        "room_param" => &["param", "value"],
        "join" => &["participant"],
        _ => allowed,
    };
    let present: [(&str, Option<Range<usize>>); 12] = [
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
                let takes = if allowed.is_empty() {
                    "no fields but its time".to_string()
                } else {
                    allowed.join(", ")
                };
                r.error(
                    span.clone(),
                    format!("{key}.{name}"),
                    format!("`{name}` does not belong to a \"{kind}\" event; it takes {takes}"),
                );
                ok = false;
            }
        }
    }
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
    ok
}

fn participant(e: &EventFile, key: &str, min: i64, r: &mut Spans) -> Option<u32> {
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
}

fn midi(v: Option<&Spanned<i64>>, name: &str, lo: i64, key: &str, r: &mut Spans) -> Option<u8> {
    let v = v?;
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
}

/// A mood event's ramp time (default 0), 0 to [`MAX_RAMP_SECS`].
fn ramp(e: &EventFile, key: &str, r: &mut Spans) -> Option<f32> {
    match &e.ramp_secs {
        Some(rs) if !(0.0..=MAX_RAMP_SECS).contains(rs.get_ref()) => {
            r.error(
                rs.span(),
                format!("{key}.ramp_secs"),
                format!(
                    "expected 0 to {MAX_RAMP_SECS} seconds, found {}",
                    rs.get_ref()
                ),
            );
            None
        }
        Some(rs) => Some(*rs.get_ref() as f32),
        None => Some(0.0),
    }
}

fn expression_value(e: &EventFile, kind: Expression, key: &str, r: &mut Spans) -> Option<f32> {
    let (lo, hi) = kind.range();
    let v = e.value.as_ref()?;
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
        return None;
    }
    Some(value as f32)
}

fn room_param(e: &EventFile, key: &str, r: &mut Spans) -> Option<Command> {
    let p = e.param.as_ref()?;
    let Some(&(param, name, low, high, _)) = Param::ALL.iter().find(|x| x.1 == p.get_ref()) else {
        r.error(
            p.span(),
            format!("{key}.param"),
            format!(
                "unknown parameter \"{}\"; expected one of {}",
                p.get_ref(),
                Param::ALL.map(|x| x.1).join(", ")
            ),
        );
        return None;
    };
    let v = e.value.as_ref()?;
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
        return None;
    }
    Some(Command::RoomParam {
        param: param.index() as u8,
        voices: voice_selector(e, key, param, r)?,
        value: *v.get_ref() as f32,
    })
}

/// The voices a "room_param" event reaches: all, or one `role` or one `timbre`.
fn voice_selector(e: &EventFile, key: &str, param: Param, r: &mut Spans) -> Option<VoiceSelector> {
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

/// Puts the commands in time order, checks who is present when, and settles the length.
fn finish(
    f: &PerformanceFile,
    rest: &Rest,
    mut timeline: Timeline,
    resolver: &Resolver,
    r: &mut Reporter,
) -> Performance {
    let to_file = |o| rest.to_file(o);
    let mut spans = Spans {
        r,
        to_file: &to_file,
    };
    if *f.version.get_ref() != PERFORMANCE_VERSION {
        spans.error(
            f.version.span(),
            "version",
            format!(
                "expected version = {PERFORMANCE_VERSION}, found {}",
                f.version.get_ref()
            ),
        );
    }
    // in time order, file order within a sample (sorting in place: no scratch memory)
    timeline
        .entries
        .sort_unstable_by_key(|e| (e.sample, e.index));
    let peak = check_presence(&timeline.entries, resolver.patch.capacity(), spans.r);
    let duration_frames = duration(f, &timeline, resolver, &mut spans);
    warn_unheard(
        &timeline.entries,
        duration_frames,
        resolver.sample_rate,
        spans.r,
    );
    Performance {
        commands: timeline
            .entries
            .into_iter()
            .map(|e| TimedCommand {
                sample: e.sample,
                command: e.command,
            })
            .collect(),
        duration_frames,
        seed: f.seed.as_ref().map(|s| *s.get_ref() as u64),
        peak_participants: peak,
        warnings: Vec::new(),
        live_start_gain_db: live_leveler_start(f, &mut spans),
    }
}

/// `live_leveler_start_db`, within the live leveler's limits; a recording without it started
/// from 0 dB (the live chain's default).
fn live_leveler_start(f: &PerformanceFile, r: &mut Spans) -> Option<f32> {
    let Some(db) = f.live_leveler_start_db.as_ref() else {
        return (f.recording == Some(true)).then_some(0.0);
    };
    let limit = crate::render::MAX_GAIN_DB;
    if !(-limit..=limit).contains(db.get_ref()) {
        r.error(
            db.span(),
            "live_leveler_start_db",
            format!(
                "expected a gain from -{limit} to {limit} dB, found {}",
                db.get_ref()
            ),
        );
        return Some(0.0);
    }
    Some(*db.get_ref() as f32)
}

/// Who is present when: leaves and notes need a participant, joins need room. Returns the
/// most participants present at once.
fn check_presence(entries: &[Entry], capacity: usize, r: &mut Reporter) -> usize {
    let mut present: Vec<u32> = Vec::new();
    let mut peak = 0;
    for e in entries {
        let problem = match e.command {
            Command::Join { participant, .. } => {
                if present.contains(&participant) {
                    Some(format!(
                        "participant {participant} joins twice without leaving"
                    ))
                } else if present.len() >= capacity {
                    Some(format!("participant {participant} would exceed the patch's capacity of {capacity} participants"))
                } else {
                    present.push(participant);
                    None
                }
            }
            Command::Leave { participant } => {
                match present.iter().position(|p| *p == participant) {
                    Some(i) => {
                        present.swap_remove(i);
                        None
                    }
                    None => Some(format!(
                        "participant {participant} leaves but is not present"
                    )),
                }
            }
            Command::NoteOn { participant, .. }
            | Command::NoteOff { participant, .. }
            | Command::Expression { participant, .. }
            | Command::Mood {
                target: MoodTarget::Participant(participant),
                ..
            } if !present.contains(&participant) => Some(format!(
                "participant {participant} is not present at this time"
            )),
            _ => None,
        };
        if let Some(message) = problem {
            let at = e.at as usize;
            r.error(at..at, format!("events[{}]", e.index), message);
        }
        peak = peak.max(present.len());
    }
    peak
}

/// Frames to render: `duration_secs`, else a recording's `[session] end_sample`, else how far
/// a recorded show got (its last `position`, or its last event), else the last event plus
/// [`DEFAULT_TAIL_SECS`].
fn duration(f: &PerformanceFile, timeline: &Timeline, resolver: &Resolver, r: &mut Spans) -> u64 {
    let sr = resolver.sample_rate as f64;
    let max = resolver.max_sample;
    let last = timeline.entries.last().map(|e| e.sample);
    if let Some(d) = &f.duration_secs {
        let secs = *d.get_ref();
        if !(MIN_DURATION_SECS..=MAX_SHOW_SECS).contains(&secs) {
            r.error(
                d.span(),
                "duration_secs",
                format!(
                    "expected {MIN_DURATION_SECS} to {MAX_SHOW_SECS} seconds (24 h), found {secs}"
                ),
            );
        }
        return (secs.clamp(MIN_DURATION_SECS, MAX_SHOW_SECS) * sr).round() as u64;
    }
    if let Some(session) = &f.session {
        let end = *session.end_sample.get_ref();
        if !(0..=max as i64).contains(&end) {
            r.error(
                session.end_sample.span(),
                "session.end_sample",
                format!("expected a sample index from 0 to {max} ({MAX_SHOW_SECS} s at {} Hz), found {end}", resolver.sample_rate),
            );
        }
        return end.clamp(0, max as i64) as u64;
    }
    if f.recording == Some(true) || timeline.reached.is_some() {
        let after_last = last.map_or(0, |s| s + 1);
        return timeline.reached.unwrap_or(0).max(after_last).min(max);
    }
    (last.unwrap_or(0) + DEFAULT_TAIL_SECS * resolver.sample_rate as u64).min(max)
}

/// One warning for the events at or after the end: they are never heard.
fn warn_unheard(entries: &[Entry], end: u64, sample_rate: u32, r: &mut Reporter) {
    let first = entries.partition_point(|e| e.sample < end);
    let Some(e) = entries.get(first) else {
        return;
    };
    let later = entries.len() - first - 1;
    let secs = |s: u64| s as f64 / sample_rate as f64;
    let at = e.at as usize;
    r.warning(
        at..at,
        format!("events[{}]", e.index),
        format!(
            "at {:.3} s, at or after the end of the performance ({:.3} s): not played{}",
            secs(e.sample),
            secs(end),
            if later > 0 {
                format!(", nor the {later} events after it")
            } else {
                String::new()
            }
        ),
    );
}
