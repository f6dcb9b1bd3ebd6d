//! What `tapestry play` shows while it plays: a [`Snapshot`] of the live figures, rendered
//! either as a full-screen view ([`render`]) or as plain log lines ([`plain_line`],
//! [`Event::line`]). Pure functions of the snapshot: the caller reads the engine's atomics and
//! the inputs' counters into it, and draws the result wherever it wants.

use std::fmt::Write;

use crate::control::Refusal;
use crate::input::osc::DropKind;

/// A participant the view knows to be present.
#[derive(Clone, Debug, PartialEq)]
pub struct Participant {
    /// Their id.
    pub id: u32,
    /// Their archetype's name in the patch.
    pub archetype: String,
}

/// One communal mood dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct MoodRow {
    /// Dimension name.
    pub name: String,
    /// Current value.
    pub value: f32,
    /// Lowest value of the dimension.
    pub min: f32,
    /// Highest value of the dimension.
    pub max: f32,
}

/// A row of the room panel: a label, its value as text and an optional 0..1 bar.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomRow {
    /// What is measured.
    pub label: String,
    /// The value, formatted by the caller.
    pub value: String,
    /// Where the value sits in its range, 0..1, drawn as a bar.
    pub bar: Option<f32>,
}

/// MIDI input counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MidiCounters {
    /// Ports connected.
    pub ports: u64,
    /// Messages received.
    pub received: u64,
    /// Messages routed to the engine.
    pub routed: u64,
    /// Messages dropped.
    pub dropped: u64,
    /// Malformed byte sequences.
    pub malformed: u64,
    /// Messages lost before routing (too long, queue full).
    pub lost: u64,
    /// Notes no participant route or cue covers.
    pub unmapped_notes: u64,
    /// Control changes no control maps.
    pub unmapped_controllers: u64,
    /// Pitch bends on channels without a participant.
    pub unmapped_bends: u64,
    /// Program changes that cue nothing, pressure, clock and transport.
    pub unmapped_other: u64,
    /// SysEx messages (counted, not used).
    pub sysex: u64,
    /// Other system messages Tapestry does not use (MTC, song position, active sensing, …).
    pub unsupported: u64,
    /// Taken in with nothing to send yet (bends before a participant's first note, cue
    /// note releases).
    pub absorbed: u64,
}

impl MidiCounters {
    /// Messages no mapping covers, of every kind.
    pub fn unmapped(&self) -> u64 {
        self.unmapped_notes + self.unmapped_controllers + self.unmapped_bends + self.unmapped_other
    }
}

/// Allocations counted inside the live callbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Allocations {
    /// In the audio output callback.
    pub audio: u64,
    /// In the MIDI port callbacks.
    pub midi: u64,
    /// In the room input callback.
    pub room: u64,
}

impl Allocations {
    /// "allocations in audio callback: N  in MIDI callbacks: M  in room input callback: K"
    pub fn line(&self) -> String {
        format!(
            "allocations in audio callback: {}  in MIDI callbacks: {}  in room input callback: {}",
            self.audio, self.midi, self.room
        )
    }
}

/// OSC input counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OscCounters {
    /// Packets received.
    pub received: u64,
    /// Messages accepted.
    pub accepted: u64,
    /// Packets that did not decode.
    pub malformed: u64,
    /// Messages dropped (malformed, unknown, refused by the client budgets, undeliverable).
    pub dropped: u64,
    /// Datagrams the kernel dropped before the server read them (receive buffer full).
    pub kernel_drops: u64,
    /// What `dropped` holds, by kind, in [`DropKind::ALL`]'s order.
    pub drops: [u64; DropKind::ALL.len()],
}

/// The state of the audio output.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AudioState {
    /// Playing.
    #[default]
    Playing,
    /// The device went away; reopening it is being tried.
    Lost {
        /// What the device or the watchdog said.
        reason: String,
        /// Seconds since it went away.
        for_secs: f64,
        /// Seconds after which `play` gives up.
        timeout_secs: f64,
    },
}

/// Everything the view shows, read at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Patch name.
    pub patch: String,
    /// Output device.
    pub device: String,
    /// Seconds since play started (wall clock).
    pub elapsed_secs: f64,
    /// Audio output state.
    pub audio: AudioState,
    /// Participants present, as the engine's notices told.
    pub participants: Vec<Participant>,
    /// Participants present, as the engine counts them.
    pub present: u32,
    /// Communal mood per dimension.
    pub mood: Vec<MoodRow>,
    /// Current section's name.
    pub section: String,
    /// Current bar, from 1.
    pub bar: u64,
    /// Peak of the last block, dBFS, left and right.
    pub peak_dbfs: [f32; 2],
    /// Momentary loudness, LUFS.
    pub momentary_lufs: f32,
    /// Audio callback load, % of its deadline.
    pub load_percent: f32,
    /// Highest callback load seen, % of the deadline.
    pub peak_load_percent: f32,
    /// Load that 99 % of the callbacks stayed under, % of the deadline.
    pub p99_load_percent: f32,
    /// Xruns the audio server reported.
    pub xruns: u64,
    /// Other stream errors.
    pub stream_errors: u64,
    /// Messages dropped because the engine's queue was full.
    pub dropped_messages: u64,
    /// Messages the engine refused.
    pub refused_messages: u64,
    /// The same by reason, in [`Refusal::ALL`]'s order.
    pub refusals: [u64; Refusal::ALL.len()],
    /// Engine notices lost (the view may then miss a join or leave).
    pub dropped_notices: u64,
    /// MIDI counters, when MIDI is on.
    pub midi: Option<MidiCounters>,
    /// OSC counters, when OSC is on.
    pub osc: Option<OscCounters>,
    /// The web pages' counters by name, when `--web` serves them.
    pub web: Option<Vec<(&'static str, u64)>>,
    /// Room analysis rows (empty when there is none).
    pub room: Vec<RoomRow>,
    /// Allocations counted inside the live callbacks (`alloc-check` builds only).
    pub allocations: Option<Allocations>,
    /// Recent events, oldest first.
    pub events: Vec<Event>,
}

/// Something that happened, shown in the view and logged as a line of its own.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A participant joined.
    Joined {
        /// Who.
        participant: u32,
        /// Archetype name.
        archetype: String,
        /// Show time, seconds (engine timeline).
        at_secs: f64,
    },
    /// A participant left.
    Left {
        /// Who.
        participant: u32,
        /// Show time, seconds.
        at_secs: f64,
    },
    /// The score moved to a section.
    Section {
        /// Section name.
        name: String,
        /// Bar, from 1.
        bar: u64,
        /// Show time, seconds.
        at_secs: f64,
    },
    /// The audio output went away.
    AudioLost {
        /// Why.
        reason: String,
        /// Show time, seconds, where the timeline stopped.
        at_secs: f64,
    },
    /// The audio output is back.
    AudioBack {
        /// Device.
        device: String,
        /// Seconds it was away.
        after_secs: f64,
    },
}

impl Event {
    /// The event as one plain log line.
    pub fn line(&self) -> String {
        match self {
            Event::Joined {
                participant,
                archetype,
                at_secs,
            } => format!("joined: participant {participant} as \"{archetype}\" at {at_secs:.2} s"),
            Event::Left {
                participant,
                at_secs,
            } => format!("left: participant {participant} at {at_secs:.2} s"),
            Event::Section { name, bar, at_secs } => {
                format!("section: \"{name}\" from bar {bar} at {at_secs:.2} s")
            }
            Event::AudioLost { reason, at_secs } => format!(
                "audio lost: {reason}; the show's clock stopped at {at_secs:.2} s, trying to reopen the device"
            ),
            Event::AudioBack { device, after_secs } => format!(
                "audio back: playing again on {device} after {after_secs:.1} s, the show's clock goes on"
            ),
        }
    }
}

/// The periodic plain status line (stable format: scripts and tests read it).
pub fn plain_line(s: &Snapshot) -> String {
    let mut inputs = String::new();
    if let Some(m) = &s.midi {
        let _ = write!(
            inputs,
            "  midi ports {} msgs {} routed {} dropped {} malformed {} lost {} unmapped {} sysex {}",
            m.ports,
            m.received,
            m.routed,
            m.dropped,
            m.malformed,
            m.lost,
            m.unmapped(),
            m.sysex
        );
    }
    if let Some(o) = &s.osc {
        let _ = write!(
            inputs,
            "  osc packets {} accepted {} dropped {} kernel drops {}",
            o.received, o.accepted, o.dropped, o.kernel_drops
        );
    }
    if let Some(web) = &s.web {
        let _ = write!(inputs, "  web {}", web_counters(web, " "));
    }
    let mood: Vec<String> = s
        .mood
        .iter()
        .map(|m| format!("{} {:.2}", m.name, m.value))
        .collect();
    let why = if s.refused_messages > 0 {
        format!(" ({})", refusal_reasons(&s.refusals, ", "))
    } else {
        String::new()
    };
    let mut line = format!(
        "{:>6.1}s  {} participants  section {} bar {}  peak {:>6.1}/{:>6.1} dBFS  load {:>5.1}% (p99 {:>5.1}%, peak {:>5.1}%)  xruns {}  stream errors {}  dropped {}  refused {}{why}{inputs}  {}",
        s.elapsed_secs,
        s.present,
        s.section,
        s.bar,
        s.peak_dbfs[0],
        s.peak_dbfs[1],
        s.load_percent,
        s.p99_load_percent,
        s.peak_load_percent,
        s.xruns,
        s.stream_errors,
        s.dropped_messages,
        s.refused_messages,
        mood.join(", ")
    );
    if !s.room.is_empty() {
        let rows: Vec<String> = s
            .room
            .iter()
            .map(|r| format!("{} {}", r.label, r.value))
            .collect();
        let _ = write!(line, "  room {}", rows.join(", "));
    }
    if let Some(a) = &s.allocations {
        let _ = write!(line, "  {}", a.line());
    }
    if let AudioState::Lost {
        for_secs,
        timeout_secs,
        ..
    } = s.audio
    {
        let _ = write!(
            line,
            "  AUDIO LOST {for_secs:.1} s (giving up after {timeout_secs:.0} s)"
        );
    }
    line
}

/// Width of the bars, in cells.
const BAR_CELLS: usize = 24;

/// A bar of `cells` cells filled to `fraction` (0..1), in eighths of a cell.
pub fn bar(fraction: f32, cells: usize) -> String {
    const PARTIAL: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * (cells * 8) as f32).round() as usize;
    let mut out = String::with_capacity(cells * 3);
    for cell in 0..cells {
        let filled = eighths.saturating_sub(cell * 8).min(8);
        out.push(match filled {
            8 => '█',
            0 => '·',
            n => PARTIAL[n],
        });
    }
    out
}

/// Where a dBFS level sits on a -60..0 dB meter.
fn meter_fraction(dbfs: f32) -> f32 {
    (dbfs + 60.0) / 60.0
}

/// Non-zero counts with their names, "name n" joined by `separator`.
fn kinds(names: impl Iterator<Item = String>, counts: &[u64], separator: &str) -> String {
    names
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The engine's refusals by reason ("capacity 1, unknown participant 4").
fn refusal_reasons(counts: &[u64], separator: &str) -> String {
    kinds(
        Refusal::ALL.iter().map(|r| r.key().to_string()),
        counts,
        separator,
    )
}

/// The full-screen view: at most `height` lines of at most `width` characters.
pub fn render(s: &Snapshot, width: usize, height: usize) -> String {
    let mut lines = header_lines(s, width);
    push_input_lines(&mut lines, s);
    push_mood_lines(&mut lines, s);
    lines.push(String::new());
    let known = s.participants.len();
    let unnamed = (s.present as usize).saturating_sub(known);
    lines.push(if unnamed > 0 {
        format!(
            "PARTICIPANTS {} ({unnamed} not named: notices lost)",
            s.present
        )
    } else {
        format!("PARTICIPANTS {}", s.present)
    });
    let participant_lines = wrap_cells(
        s.participants
            .iter()
            .map(|p| format!("{:>4} {}", p.id, p.archetype)),
        width,
    );

    let room_lines = room_lines(s);

    // the room panel and a few events keep their place; the participants get the rest,
    // and the events whatever the participants leave
    let room_budget = room_lines
        .len()
        .min(height.saturating_sub(lines.len() + 2 + 1).max(1));
    let event_reserve = if s.events.is_empty() {
        0
    } else {
        2 + s.events.len().min(5)
    };
    let participant_budget = height.saturating_sub(lines.len() + 2 + room_budget + event_reserve);
    push_limited(&mut lines, participant_lines, participant_budget);
    lines.push(String::new());
    lines.push("ROOM".into());
    push_limited(&mut lines, room_lines, room_budget);
    let event_budget = height.saturating_sub(lines.len() + 2);
    if event_budget > 0 && !s.events.is_empty() {
        lines.push(String::new());
        lines.push("EVENTS".into());
        let skip = s.events.len().saturating_sub(event_budget);
        for e in &s.events[skip..] {
            lines.push(format!("  {}", e.line()));
        }
    }

    lines.truncate(height);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.extend(line.chars().take(width));
    }
    out
}

/// The title, the audio state, the section, levels, load and problems.
fn header_lines(s: &Snapshot, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let head = format!("TAPESTRY  \"{}\" on {}", s.patch, s.device);
    let clock = format!("{:.1} s", s.elapsed_secs);
    lines.push(format!(
        "{head}{}{clock}",
        " ".repeat(
            width
                .saturating_sub(head.chars().count() + clock.len())
                .max(2)
        )
    ));
    lines.push(match &s.audio {
        AudioState::Playing => "audio     playing".to_string(),
        AudioState::Lost {
            reason,
            for_secs,
            timeout_secs,
        } => format!(
            "audio     LOST {for_secs:.1} s: {reason} (reopening; giving up after {timeout_secs:.0} s)"
        ),
    });
    lines.push(format!("section   {}  bar {}", s.section, s.bar));
    for (name, db) in [("L", s.peak_dbfs[0]), ("R", s.peak_dbfs[1])] {
        lines.push(format!(
            "level {name}   {} {:>6.1} dBFS",
            bar(meter_fraction(db), BAR_CELLS),
            db
        ));
    }
    lines.push(format!(
        "loudness  {:>6.1} LUFS momentary",
        s.momentary_lufs
    ));
    lines.push(format!(
        "load      {} {:>5.1} % of the deadline (p99 {:.0} %, peak {:.1} %)",
        bar(s.load_percent / 100.0, BAR_CELLS),
        s.load_percent,
        s.p99_load_percent,
        s.peak_load_percent
    ));
    lines.push(format!(
        "problems  xruns {}  stream errors {}  dropped {}  refused {}  notices lost {}",
        s.xruns, s.stream_errors, s.dropped_messages, s.refused_messages, s.dropped_notices
    ));
    if s.refused_messages > 0 {
        lines.push(format!("  refused {}", refusal_reasons(&s.refusals, "  ")));
    }
    lines
}

/// The OSC and MIDI inputs' counters.
fn push_input_lines(lines: &mut Vec<String>, s: &Snapshot) {
    if let Some(o) = &s.osc {
        lines.push(format!(
            "OSC       received {}  accepted {}  malformed {}  dropped {}  kernel drops {}",
            o.received, o.accepted, o.malformed, o.dropped, o.kernel_drops
        ));
        let drops = kinds(DropKind::ALL.iter().map(|k| k.to_string()), &o.drops, "  ");
        if !drops.is_empty() {
            lines.push(format!("  dropped {drops}"));
        }
    }
    if let Some(m) = &s.midi {
        lines.push(format!(
            "MIDI      ports {}  received {}  routed {}  malformed {}  dropped {}",
            m.ports, m.received, m.routed, m.malformed, m.dropped
        ));
        lines.push(format!(
            "  unmapped notes {}  controllers {}  bends {}  other {}  SysEx {}  unused system {}  held {}",
            m.unmapped_notes,
            m.unmapped_controllers,
            m.unmapped_bends,
            m.unmapped_other,
            m.sysex,
            m.unsupported,
            m.absorbed
        ));
    }
    if let Some(web) = &s.web {
        lines.push(format!("web       {}", web_counters(web, "  ")));
    }
    if s.osc.is_none() && s.midi.is_none() && s.web.is_none() {
        lines.push("inputs    none".into());
    }
}

/// The web counters that are not zero, `name value` joined by `sep` (connections always).
fn web_counters(counters: &[(&'static str, u64)], sep: &str) -> String {
    counters
        .iter()
        .filter(|(name, n)| *n > 0 || *name == "connections")
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The communal mood, one bar per dimension.
fn push_mood_lines(lines: &mut Vec<String>, s: &Snapshot) {
    lines.push(String::new());
    lines.push("MOOD".into());
    let name_width = s
        .mood
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0);
    for m in &s.mood {
        let span = m.max - m.min;
        let fraction = if span > 0.0 {
            (m.value - m.min) / span
        } else {
            0.0
        };
        lines.push(format!(
            "  {:<name_width$}  {} {:>6.2}",
            m.name,
            bar(fraction, BAR_CELLS),
            m.value
        ));
    }
}

/// The room analysis panel.
fn room_lines(s: &Snapshot) -> Vec<String> {
    if s.room.is_empty() {
        vec!["  (no room analysis)".into()]
    } else {
        let label_width = s
            .room
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(0);
        s.room
            .iter()
            .map(|r| match r.bar {
                Some(f) => format!(
                    "  {:<label_width$}  {} {}",
                    r.label,
                    bar(f, BAR_CELLS),
                    r.value
                ),
                None => format!("  {:<label_width$}  {}", r.label, r.value),
            })
            .collect()
    }
}

/// Lays cells out in as many columns as fit in `width`.
fn wrap_cells(cells: impl Iterator<Item = String>, width: usize) -> Vec<String> {
    let cells: Vec<String> = cells.collect();
    let cell_width = cells.iter().map(|c| c.chars().count()).max().unwrap_or(0) + 2;
    let per_line = (width / cell_width.max(1)).max(1);
    cells
        .chunks(per_line)
        .map(|row| {
            row.iter()
                .map(|c| format!("{c:<cell_width$}"))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Appends at most `budget` lines, the last one saying how many were left out.
fn push_limited(out: &mut Vec<String>, lines: Vec<String>, budget: usize) {
    if lines.len() <= budget {
        out.extend(lines);
        return;
    }
    if budget == 0 {
        return;
    }
    let shown = budget - 1;
    let left = lines.len() - shown;
    out.extend(lines.into_iter().take(shown));
    out.push(format!("  … {left} more lines"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            patch: "Minimal".into(),
            device: "jack:output".into(),
            elapsed_secs: 12.34,
            participants: vec![
                Participant {
                    id: 1,
                    archetype: "pad".into(),
                },
                Participant {
                    id: 7,
                    archetype: "bell".into(),
                },
            ],
            present: 2,
            mood: vec![
                MoodRow {
                    name: "energy".into(),
                    value: 0.75,
                    min: 0.0,
                    max: 1.0,
                },
                MoodRow {
                    name: "tension".into(),
                    value: 0.0,
                    min: 0.0,
                    max: 1.0,
                },
            ],
            section: "main".into(),
            bar: 5,
            peak_dbfs: [-6.0, -60.0],
            momentary_lufs: -18.25,
            load_percent: 12.5,
            peak_load_percent: 40.0,
            p99_load_percent: 21.0,
            xruns: 3,
            stream_errors: 1,
            dropped_messages: 4,
            refused_messages: 5,
            refusals: [1, 0, 4, 0, 0, 0],
            dropped_notices: 0,
            midi: Some(MidiCounters {
                ports: 2,
                received: 100,
                routed: 90,
                dropped: 1,
                malformed: 9,
                lost: 0,
                unmapped_notes: 3,
                unmapped_controllers: 2,
                unmapped_bends: 1,
                unmapped_other: 0,
                sysex: 7,
                unsupported: 4,
                absorbed: 5,
            }),
            osc: Some(OscCounters {
                received: 50,
                accepted: 40,
                malformed: 8,
                dropped: 10,
                kernel_drops: 6,
                drops: [2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            }),
            ..Snapshot::default()
        }
    }

    fn line_with<'a>(view: &'a str, start: &str) -> &'a str {
        view.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{view}"))
    }

    #[test]
    fn bars_fill_in_eighths_and_clamp() {
        assert_eq!(bar(0.0, 4), "····");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██··");
        assert_eq!(bar(0.5 + 1.0 / 32.0, 4), "██▏·");
        assert_eq!(bar(7.0, 2), "██");
        assert_eq!(bar(f32::NAN, 2), "··");
        assert_eq!(bar(-1.0, 2), "··");
    }

    #[test]
    fn the_view_shows_names_bars_and_numbers() {
        let view = render(&snapshot(), 100, 50);
        assert!(view
            .lines()
            .next()
            .unwrap()
            .contains("\"Minimal\" on jack:output"));
        assert!(view.lines().next().unwrap().ends_with("12.3 s"));
        assert!(line_with(&view, "section").contains("main  bar 5"));
        // energy 0.75 of 0..1: 18 of 24 cells
        let energy = line_with(&view, "energy");
        assert_eq!(energy.matches('█').count(), 18, "{energy}");
        assert!(energy.ends_with("0.75"));
        assert_eq!(line_with(&view, "tension").matches('█').count(), 0);
        // -6 dBFS on a -60..0 meter: 90 % of 24 cells = 21.6 cells
        let left = line_with(&view, "level L");
        assert_eq!(left.matches('█').count(), 21, "{left}");
        assert!(left.ends_with("-6.0 dBFS"));
        assert_eq!(line_with(&view, "level R").matches('█').count(), 0);
        assert!(line_with(&view, "loudness").contains("-18.2 LUFS"));
        let load = line_with(&view, "load");
        assert!(
            load.contains("12.5 % of the deadline (p99 21 %, peak 40.0 %)"),
            "{load}"
        );
        assert_eq!(load.matches('█').count(), 3);
        let problems = line_with(&view, "problems");
        assert!(problems.contains("xruns 3  stream errors 1  dropped 4  refused 5"));
        assert!(line_with(&view, "OSC")
            .ends_with("received 50  accepted 40  malformed 8  dropped 10  kernel drops 6"));
        assert!(line_with(&view, "MIDI")
            .ends_with("ports 2  received 100  routed 90  malformed 9  dropped 1"));
        // why: refusals by reason, OSC drops by kind, unmapped MIDI by kind and SysEx
        assert_eq!(
            line_with(&view, "refused capacity").trim(),
            "refused capacity 1  unknown participant 4"
        );
        assert_eq!(
            line_with(&view, "dropped over").trim(),
            "dropped over the client's datagram budget 2  malformed 8"
        );
        assert_eq!(
            line_with(&view, "unmapped").trim(),
            "unmapped notes 3  controllers 2  bends 1  other 0  SysEx 7  unused system 4  held 5"
        );
        assert!(line_with(&view, "PARTICIPANTS").ends_with("PARTICIPANTS 2"));
        let people = line_with(&view, "1 pad");
        assert!(
            people.contains("7 bell"),
            "two participants on one line: {people}"
        );
        assert!(line_with(&view, "audio").contains("playing"));
        assert!(view.contains("(no room analysis)"));
    }

    #[test]
    fn the_room_panel_shows_the_callers_rows() {
        let mut s = snapshot();
        s.room = vec![
            RoomRow {
                label: "level".into(),
                value: "-32.0 dBFS".into(),
                bar: Some(0.5),
            },
            RoomRow {
                label: "tempo".into(),
                value: "118 BPM".into(),
                bar: None,
            },
        ];
        let view = render(&s, 100, 50);
        assert!(!view.contains("no room analysis"));
        let level = line_with(&view, "level  ");
        assert_eq!(level.matches('█').count(), 12, "{level}");
        assert!(level.ends_with("-32.0 dBFS"));
        assert!(line_with(&view, "tempo").ends_with("tempo  118 BPM"));
    }

    #[test]
    fn the_view_fits_the_screen_and_says_what_it_left_out() {
        let mut s = snapshot();
        s.participants = (1..=200)
            .map(|id| Participant {
                id,
                archetype: "pluck".into(),
            })
            .collect();
        s.present = 200;
        s.events = (0..50)
            .map(|i| Event::Left {
                participant: i,
                at_secs: i as f64,
            })
            .collect();
        let view = render(&s, 60, 30);
        assert_eq!(view.lines().count(), 30);
        assert!(view.lines().all(|l| l.chars().count() <= 60));
        assert!(view.contains("more lines"), "{view}");
        assert!(view.contains("ROOM"));
        let big = render(&s, 200, 200);
        assert!(big.contains(" 200 pluck"));
        // the newest events are the ones kept
        assert!(big.contains("left: participant 49 at 49.00 s"));
        assert!(!view.contains("left: participant 0 "));
    }

    #[test]
    fn a_lost_device_shows_in_the_view_and_the_plain_line() {
        let mut s = snapshot();
        s.audio = AudioState::Lost {
            reason: "JACK server shut down".into(),
            for_secs: 2.5,
            timeout_secs: 30.0,
        };
        let view = render(&s, 120, 40);
        assert!(line_with(&view, "audio")
            .contains("LOST 2.5 s: JACK server shut down (reopening; giving up after 30 s)"));
        assert!(plain_line(&s).ends_with("AUDIO LOST 2.5 s (giving up after 30 s)"));
    }

    #[test]
    fn notices_lost_show_as_unnamed_participants() {
        let mut s = snapshot();
        s.present = 5;
        let view = render(&s, 100, 50);
        assert!(view.contains("PARTICIPANTS 5 (3 not named: notices lost)"));
    }

    #[test]
    fn the_plain_line_keeps_its_format() {
        let line = plain_line(&snapshot());
        assert_eq!(
            line,
            "  12.3s  2 participants  section main bar 5  peak   -6.0/ -60.0 dBFS  load  12.5% (p99  21.0%, peak  40.0%)  xruns 3  stream errors 1  dropped 4  refused 5 (capacity 1, unknown participant 4)  midi ports 2 msgs 100 routed 90 dropped 1 malformed 9 lost 0 unmapped 6 sysex 7  osc packets 50 accepted 40 dropped 10 kernel drops 6  energy 0.75, tension 0.00"
        );
    }

    #[test]
    fn events_read_as_sentences() {
        let joined = Event::Joined {
            participant: 3,
            archetype: "bell".into(),
            at_secs: 1.5,
        };
        assert_eq!(joined.line(), "joined: participant 3 as \"bell\" at 1.50 s");
        let section = Event::Section {
            name: "storm".into(),
            bar: 9,
            at_secs: 20.0,
        };
        assert_eq!(section.line(), "section: \"storm\" from bar 9 at 20.00 s");
    }
}
