//! What `tapestry play` shows while it plays: a [`Snapshot`] of the live figures, drawn
//! either as a full-screen ratatui view ([`draw`], into any backend's frame) or as plain log
//! lines ([`plain_line`], [`Event::line`]). Pure functions of the snapshot: the caller reads
//! the engine's atomics and the inputs' counters into it, and draws the result wherever it
//! wants. ratatui keeps the last frame and writes only the cells that changed, so nothing
//! printed between frames is left half-erased and the last row is drawn like any other.

use std::fmt::Write;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

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
    /// Current section's index in the patch.
    pub section_index: usize,
    /// Current bar, from 1.
    pub bar: u64,
    /// Beats into the bar, from 0 (fractional).
    pub beat_in_bar: f32,
    /// The score's tempo, BPM.
    pub tempo_bpm: f32,
    /// The piece's key ("D dorian").
    pub key: String,
    /// The sounding chord's symbol.
    pub chord: String,
    /// What would move the score on from this section, one entry per transition
    /// ("storm when tension > 0.60, after 4 bars").
    pub next_sections: Vec<String>,
    /// Peak of the last block, dBFS, left and right.
    pub peak_dbfs: [f32; 2],
    /// Momentary loudness, LUFS.
    pub momentary_lufs: f32,
    /// Audio callback load, % of its deadline.
    pub load_percent: f32,
    /// Highest callback load seen, % of the deadline.
    pub peak_load_percent: f32,
    /// Recent load peak, % of the deadline: follows a rise at once and decays
    /// ([`decay_peak`]), so a spike stays readable for a few seconds.
    pub held_load_percent: f32,
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
    /// The engine refused a message (its line names the reason first, so that a narrow
    /// screen cuts the details, not the why).
    Refused {
        /// What was asked, in words.
        what: String,
        /// Why it was refused.
        reason: String,
        /// Show time, seconds.
        at_secs: f64,
    },
    /// Something the performer should know that is none of the above.
    Notice {
        /// The sentence.
        text: String,
        /// Show time, seconds.
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
            Event::Refused {
                what,
                reason,
                at_secs,
            } => format!("refused: {reason}: {what}, at {at_secs:.2} s"),
            Event::Notice { text, at_secs } => format!("note: {text} at {at_secs:.2} s"),
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

/// Width of the bars on a wide screen, in cells.
const BAR_CELLS: usize = 24;
/// Width of the bars below [`WIDE_SCREEN`] columns.
const NARROW_BAR_CELLS: usize = 12;
/// Columns from which the wide bars are used.
const WIDE_SCREEN: u16 = 100;
/// A peak at or above this many dBFS is shown as clipping.
pub const CLIP_DBFS: f32 = -0.1;
/// Callback load (% of the deadline) from which the load shows yellow.
const LOAD_WARN_PERCENT: f32 = 50.0;
/// Callback load (% of the deadline) from which the load shows red.
const LOAD_ALARM_PERCENT: f32 = 80.0;
/// Newest events kept on screen, under their title.
const EVENT_ROWS: usize = 4;
/// The held load peak halves in this many seconds once the load is lower.
pub const LOAD_PEAK_HALF_LIFE_SECS: f32 = 2.0;

/// The held load peak after `dt_secs` in which the load was `now`: a rise is taken at once, a
/// fall decays with a half-life of [`LOAD_PEAK_HALF_LIFE_SECS`].
pub fn decay_peak(held: f32, now: f32, dt_secs: f32) -> f32 {
    let decayed = held * 0.5f32.powf(dt_secs.max(0.0) / LOAD_PEAK_HALF_LIFE_SECS);
    if now.is_finite() {
        now.max(decayed)
    } else {
        decayed
    }
}

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

/// What the performer has selected on the console, and whether the key help is up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// The selected participant's id.
    pub participant: Option<u32>,
    /// The selected mood dimension's index.
    pub dim: usize,
    /// The key help is shown over the view.
    pub help: bool,
}

/// The console's keys and what they do, as `?` shows them.
pub const KEYS: &[(&str, &str)] = &[
    (
        "n / p",
        "cue the next / previous section (at the next bar line)",
    ),
    ("↑ / ↓", "select a mood dimension"),
    (
        "+ / -",
        "nudge its communal value up / down (5 % of its range)",
    ),
    ("r", "hand that dimension back to the crowd"),
    ("q / Ctrl-C", "quit"),
    ("? / Esc", "show / hide these keys"),
];

/// Red and bold: something the performer must act on.
fn alarm() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Yellow: something lost or refused.
fn warn() -> Style {
    Style::new().fg(Color::Yellow)
}

/// `label n`, the number in `style` when it is not zero.
fn count(label: &str, n: u64, style: Style) -> [Span<'static>; 2] {
    let shown = if n > 0 { style } else { Style::new() };
    [
        Span::raw(format!("{label} ")),
        Span::styled(n.to_string(), shown),
    ]
}

/// A line from a label column and spans.
fn labelled(label: &str, spans: impl IntoIterator<Item = Span<'static>>) -> Line<'static> {
    let mut all = vec![Span::raw(format!("{label:<10}"))];
    all.extend(spans);
    Line::from(all)
}

/// Draws the full-screen view into `frame`: the header with the score, levels, load,
/// problems and inputs; the mood, room and participants; the newest events at the bottom.
pub fn draw(frame: &mut Frame, s: &Snapshot, selection: &Selection) {
    let area = frame.area();
    let bar_cells = if area.width >= WIDE_SCREEN {
        BAR_CELLS
    } else {
        NARROW_BAR_CELLS
    };
    let mut header = header_lines(s, bar_cells);
    header.extend(input_lines(s));
    // the events keep their rows first: the newest event is never the one cut off
    let events_height = if s.events.is_empty() {
        0
    } else {
        (1 + s.events.len().min(EVENT_ROWS)) as u16
    };
    let events_height = events_height.min(area.height);
    let header_height = (header.len() as u16).min(area.height - events_height);
    let body_height = area.height - events_height - header_height;
    let header_area = Rect::new(area.x, area.y, area.width, header_height);
    let body_area = Rect::new(area.x, area.y + header_height, area.width, body_height);
    let events_area = Rect::new(
        area.x,
        area.y + header_height + body_height,
        area.width,
        events_height,
    );
    frame.render_widget(Paragraph::new(header), header_area);
    let clock = format!("{:.1} s   ? keys", s.elapsed_secs);
    frame.render_widget(
        Paragraph::new(clock).alignment(Alignment::Right),
        Rect::new(area.x, area.y, area.width, header_height.min(1)),
    );
    draw_body(frame, s, selection, body_area, bar_cells);
    frame.render_widget(Paragraph::new(event_lines(s, events_height)), events_area);
    if selection.help {
        draw_help(frame, area);
    }
}

/// The title, audio state, score, levels, load and problems.
fn header_lines(s: &Snapshot, bar_cells: usize) -> Vec<Line<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::from(vec![
        Span::styled("TAPESTRY", bold),
        Span::raw(format!("  \"{}\" on {}", s.patch, s.device)),
    ])];
    lines.push(match &s.audio {
        AudioState::Playing => labelled("audio", [Span::styled("playing", Color::Green)]),
        AudioState::Lost {
            reason,
            for_secs,
            timeout_secs,
        } => labelled(
            "audio",
            [Span::styled(
                format!(
                    "LOST {for_secs:.1} s: {reason} (reopening; giving up after {timeout_secs:.0} s)"
                ),
                alarm(),
            )],
        ),
    });
    lines.push(labelled(
        "section",
        [
            Span::styled(s.section.clone(), bold),
            Span::raw(format!(
                "  bar {}:{}  {:.0} BPM  {}  chord ",
                s.bar,
                s.beat_in_bar.max(0.0).floor() as u64 + 1,
                s.tempo_bpm,
                s.key
            )),
            Span::styled(s.chord.clone(), bold),
        ],
    ));
    let next = if s.next_sections.is_empty() {
        "no transition leaves this section (cue with n / p)".to_string()
    } else {
        s.next_sections.join("; ")
    };
    lines.push(labelled("next", [Span::raw(next)]));
    lines.push(level_line(s, bar_cells));
    lines.push(load_line(s, bar_cells));
    lines.push(problem_line(s));
    if s.refused_messages > 0 {
        lines.push(Line::from(Span::styled(
            format!("  refused {}", refusal_reasons(&s.refusals, ", ")),
            warn(),
        )));
    }
    lines
}

/// Both channels' peaks on a -60..0 dB meter, red from [`CLIP_DBFS`], and the loudness.
fn level_line(s: &Snapshot, bar_cells: usize) -> Line<'static> {
    let mut spans = Vec::new();
    for (name, db) in [("L", s.peak_dbfs[0]), ("R", s.peak_dbfs[1])] {
        let clipping = db >= CLIP_DBFS;
        let style = if clipping { alarm() } else { Style::new() };
        spans.push(Span::raw(format!("{name} ")));
        spans.push(Span::styled(bar(meter_fraction(db), bar_cells), style));
        spans.push(Span::styled(
            format!("{db:>6.1}{} ", if clipping { " CLIP" } else { "" }),
            style,
        ));
    }
    spans.push(Span::raw(format!("dBFS  {:.1} LUFS", s.momentary_lufs)));
    labelled("level", spans)
}

/// The callback load now, its decaying recent peak, p99 and the highest seen.
fn load_line(s: &Snapshot, bar_cells: usize) -> Line<'static> {
    let style_of = |percent: f32| {
        if percent >= LOAD_ALARM_PERCENT {
            alarm()
        } else if percent >= LOAD_WARN_PERCENT {
            warn()
        } else {
            Style::new().fg(Color::Green)
        }
    };
    labelled(
        "load",
        [
            Span::styled(
                bar(s.held_load_percent / 100.0, bar_cells),
                style_of(s.held_load_percent),
            ),
            Span::raw(format!(" {:.1} % now, ", s.load_percent)),
            Span::styled(
                format!("peak {:.1} %", s.held_load_percent),
                style_of(s.held_load_percent),
            ),
            Span::raw(format!(
                " (p99 {:.0} %, max {:.1} %)",
                s.p99_load_percent, s.peak_load_percent
            )),
        ],
    )
}

/// Xruns and stream errors in red, drops and refusals in yellow.
fn problem_line(s: &Snapshot) -> Line<'static> {
    let mut spans = Vec::new();
    for (label, n, style) in [
        ("xruns", s.xruns, alarm()),
        ("  stream errors", s.stream_errors, alarm()),
        ("  dropped", s.dropped_messages, warn()),
        ("  refused", s.refused_messages, warn()),
        ("  notices lost", s.dropped_notices, warn()),
    ] {
        spans.extend(count(label, n, style));
    }
    labelled("problems", spans)
}

/// The OSC and MIDI inputs' counters, drops by kind in yellow.
fn input_lines(s: &Snapshot) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(o) = &s.osc {
        let mut spans = vec![Span::raw(format!(
            "received {}  accepted {}  ",
            o.received, o.accepted
        ))];
        spans.extend(count("malformed", o.malformed, warn()));
        spans.extend(count("  dropped", o.dropped, warn()));
        spans.extend(count("  kernel drops", o.kernel_drops, warn()));
        lines.push(labelled("OSC", spans));
        let drops = kinds(DropKind::ALL.iter().map(|k| k.to_string()), &o.drops, ", ");
        if !drops.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("  dropped {drops}"),
                warn(),
            )));
        }
    }
    if let Some(m) = &s.midi {
        let mut spans = vec![Span::raw(format!(
            "ports {}  received {}  routed {}  ",
            m.ports, m.received, m.routed
        ))];
        spans.extend(count("malformed", m.malformed, warn()));
        spans.extend(count("  dropped", m.dropped, warn()));
        spans.extend(count("  lost", m.lost, warn()));
        lines.push(labelled("MIDI", spans));
        lines.push(Line::raw(format!(
            "  unmapped notes {}  controllers {}  bends {}  other {}  SysEx {}  unused system {}  held {}",
            m.unmapped_notes,
            m.unmapped_controllers,
            m.unmapped_bends,
            m.unmapped_other,
            m.sysex,
            m.unsupported,
            m.absorbed
        )));
    }
    if let Some(web) = &s.web {
        lines.push(labelled("web", [Span::raw(web_counters(web, "  "))]));
    }
    if s.osc.is_none() && s.midi.is_none() && s.web.is_none() {
        lines.push(labelled("inputs", [Span::raw("none")]));
    }
    if let Some(a) = &s.allocations {
        let total = a.audio + a.midi + a.room;
        lines.push(Line::from(Span::styled(
            a.line(),
            if total > 0 { alarm() } else { Style::new() },
        )));
    }
    lines
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

/// The mood and room on the left, the participants on the right.
fn draw_body(frame: &mut Frame, s: &Snapshot, selection: &Selection, area: Rect, bars: usize) {
    if area.height == 0 {
        return;
    }
    let [left, right] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(area);
    let mut lines = vec![Line::default(), Line::from("MOOD")];
    lines.extend(mood_lines(s, selection, bars));
    lines.push(Line::from("ROOM"));
    lines.extend(room_lines(s, bars));
    frame.render_widget(Paragraph::new(lines), left);
    let participants = participant_lines(s, selection, right.width as usize);
    let budget = (right.height as usize).saturating_sub(2);
    let mut lines = vec![Line::default(), participant_title(s)];
    push_limited(&mut lines, participants, budget);
    frame.render_widget(Paragraph::new(lines), right);
}

/// "PARTICIPANTS n", saying how many are not named when notices were lost.
fn participant_title(s: &Snapshot) -> Line<'static> {
    let unnamed = (s.present as usize).saturating_sub(s.participants.len());
    if unnamed > 0 {
        Line::from(vec![
            Span::raw(format!("PARTICIPANTS {} ", s.present)),
            Span::styled(format!("({unnamed} not named: notices lost)"), warn()),
        ])
    } else {
        Line::from(format!("PARTICIPANTS {}", s.present))
    }
}

/// The communal mood, one bar per dimension; the selected one marked.
fn mood_lines(s: &Snapshot, selection: &Selection, bars: usize) -> Vec<Line<'static>> {
    let name_width = s
        .mood
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0);
    s.mood
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let span = m.max - m.min;
            let fraction = if span > 0.0 {
                (m.value - m.min) / span
            } else {
                0.0
            };
            let text = format!(
                "{} {:<name_width$}  {} {:>6.2}",
                if i == selection.dim { '>' } else { ' ' },
                m.name,
                bar(fraction, bars),
                m.value
            );
            if i == selection.dim {
                Line::styled(text, Style::new().add_modifier(Modifier::BOLD))
            } else {
                Line::raw(text)
            }
        })
        .collect()
}

/// The room analysis rows.
fn room_lines(s: &Snapshot, bars: usize) -> Vec<Line<'static>> {
    if s.room.is_empty() {
        return vec![Line::raw("  (no room analysis)")];
    }
    let label_width = s
        .room
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    s.room
        .iter()
        .map(|r| {
            Line::raw(match r.bar {
                Some(f) => format!("  {:<label_width$}  {} {}", r.label, bar(f, bars), r.value),
                None => format!("  {:<label_width$}  {}", r.label, r.value),
            })
        })
        .collect()
}

/// The participants in as many columns as fit in `width`, the selected one reversed.
fn participant_lines(s: &Snapshot, selection: &Selection, width: usize) -> Vec<Line<'static>> {
    let cells: Vec<(u32, String)> = s
        .participants
        .iter()
        .map(|p| (p.id, format!("{:>4} {}", p.id, p.archetype)))
        .collect();
    let cell_width = cells
        .iter()
        .map(|(_, c)| c.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let per_line = (width / cell_width.max(1)).max(1);
    cells
        .chunks(per_line)
        .map(|row| {
            Line::from(
                row.iter()
                    .map(|(id, c)| {
                        let text = format!("{c:<cell_width$}");
                        if selection.participant == Some(*id) {
                            Span::styled(text, Style::new().add_modifier(Modifier::REVERSED))
                        } else {
                            Span::raw(text)
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// Appends at most `budget` lines, the last one saying how many were left out.
fn push_limited(out: &mut Vec<Line<'static>>, lines: Vec<Line<'static>>, budget: usize) {
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
    out.push(Line::raw(format!("  … {left} more lines")));
}

/// "EVENTS" and the newest events that fit in `height` rows, coloured by kind.
fn event_lines(s: &Snapshot, height: u16) -> Vec<Line<'static>> {
    if height == 0 {
        return Vec::new();
    }
    let rows = height as usize - 1;
    let skip = s.events.len().saturating_sub(rows);
    let mut lines = vec![Line::from("EVENTS")];
    lines.extend(s.events[skip..].iter().map(|e| {
        let style = match e {
            Event::Refused { .. } | Event::Notice { .. } => warn(),
            Event::AudioLost { .. } => alarm(),
            Event::AudioBack { .. } | Event::Joined { .. } => Style::new().fg(Color::Green),
            Event::Section { .. } => Style::new().fg(Color::Cyan),
            Event::Left { .. } => Style::new(),
        };
        Line::styled(format!("  {}", e.line()), style)
    }));
    lines
}

/// The keys, in a bordered box over the middle of the view.
fn draw_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| Line::raw(format!(" {key:<12} {what}")))
        .collect();
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = area.width.min(76);
    let boxed = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, boxed);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (? to close) ")),
        boxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;

    fn snapshot() -> Snapshot {
        Snapshot {
            patch: "Minimal".into(),
            device: "jack:output".into(),
            elapsed_secs: 12.34,
            participants: [(1, "pad"), (7, "bell"), (9, "drone"), (12, "pluck")]
                .into_iter()
                .map(|(id, archetype)| Participant {
                    id,
                    archetype: archetype.into(),
                })
                .collect(),
            present: 4,
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
            beat_in_bar: 2.5,
            tempo_bpm: 96.0,
            key: "D dorian".into(),
            chord: "Am7".into(),
            next_sections: vec!["storm when tension > 0.60, after 4 bars".into()],
            peak_dbfs: [0.0, -60.0],
            momentary_lufs: -18.25,
            load_percent: 12.5,
            held_load_percent: 85.0,
            peak_load_percent: 90.0,
            p99_load_percent: 21.0,
            xruns: 3,
            stream_errors: 0,
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
                unmapped_notes: 3,
                unmapped_controllers: 2,
                unmapped_bends: 1,
                sysex: 7,
                unsupported: 4,
                absorbed: 5,
                ..MidiCounters::default()
            }),
            osc: Some(OscCounters {
                received: 50,
                accepted: 40,
                malformed: 8,
                dropped: 10,
                kernel_drops: 6,
                drops: [2, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            }),
            events: (0..9)
                .map(|i| Event::Left {
                    participant: 100 + i,
                    at_secs: i as f64,
                })
                .chain([Event::Refused {
                    what: "join of participant 9".into(),
                    reason: Refusal::CapacityReached.to_string(),
                    at_secs: 11.5,
                }])
                .collect(),
            ..Snapshot::default()
        }
    }

    /// The view drawn on a `width` x `height` test terminal.
    fn drawn(s: &Snapshot, selection: &Selection, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, s, selection)).unwrap();
        terminal.backend().buffer().clone()
    }

    fn rows(b: &Buffer) -> Vec<String> {
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect())
            .collect()
    }

    /// Row and column of the first cell of `needle`.
    fn find(b: &Buffer, needle: &str) -> (u16, u16) {
        let rows = rows(b);
        for (y, row) in rows.iter().enumerate() {
            if let Some(byte) = row.find(needle) {
                return (row[..byte].chars().count() as u16, y as u16);
            }
        }
        panic!("no {needle:?} in\n{}", rows.join("\n"));
    }

    fn colour_of(b: &Buffer, needle: &str) -> Color {
        b[find(b, needle)].fg
    }

    fn row_with(b: &Buffer, needle: &str) -> String {
        rows(b)[find(b, needle).1 as usize].trim_end().to_string()
    }

    fn the_essentials_show(b: &Buffer) {
        let last_row = rows(b).last().unwrap().clone();
        assert!(
            last_row.contains(
                "refused: the patch's participant capacity is reached: join of participant 9"
            ),
            "the newest event is on the last row: {last_row:?}"
        );
        for name in ["1 pad", "7 bell", "9 drone", "12 pluck"] {
            find(b, name);
        }
        assert!(row_with(b, "section").contains("main  bar 5:3  96 BPM  D dorian  chord Am7"));
        assert!(row_with(b, "next").contains("storm when tension > 0.60, after 4 bars"));
        assert!(row_with(b, "refused capacity").contains("capacity 1, unknown participant 4"));
        assert!(row_with(b, "  dropped over")
            .contains("dropped over the client's datagram budget 2, malformed 8"));
        // colours: xruns and clipping red, drops and refusals yellow, a calm count plain
        assert_eq!(colour_of(b, "3  stream"), Color::Red);
        assert_eq!(b[find(b, "stream errors 0")].fg, Color::Reset);
        assert_eq!(colour_of(b, "0.0 CLIP"), Color::Red);
        assert_eq!(colour_of(b, "4  refused"), Color::Yellow);
        assert_eq!(colour_of(b, "refused capacity"), Color::Yellow);
        assert_eq!(colour_of(b, "peak 85.0 %"), Color::Red);
        assert_eq!(
            colour_of(b, "-60.0"),
            Color::Reset,
            "the quiet channel is not red"
        );
    }

    #[test]
    fn at_80_by_24_names_reasons_colours_and_the_newest_event_show() {
        let b = drawn(&snapshot(), &Selection::default(), 80, 24);
        the_essentials_show(&b);
        // the earlier events gave way to the newest
        assert!(!rows(&b).iter().any(|r| r.contains("participant 100 ")));
    }

    #[test]
    fn at_120_by_40_the_same_and_more_events() {
        let b = drawn(&snapshot(), &Selection::default(), 120, 40);
        the_essentials_show(&b);
        assert!(row_with(&b, "unmapped").contains(
            "unmapped notes 3  controllers 2  bends 1  other 0  SysEx 7  unused system 4  held 5"
        ));
        // energy 0.75 of 0..1 on a wide screen: 18 of 24 cells
        assert_eq!(row_with(&b, "energy").matches('█').count(), 18);
        assert!(row_with(&b, "TAPESTRY").ends_with("12.3 s   ? keys"));
    }

    #[test]
    fn many_participants_leave_a_count_not_a_lost_event_row() {
        let mut s = snapshot();
        s.participants = (1..=200)
            .map(|id| Participant {
                id,
                archetype: "pluck".into(),
            })
            .collect();
        s.present = 200;
        let b = drawn(&s, &Selection::default(), 80, 24);
        find(&b, "more lines");
        find(&b, "1 pluck");
        assert!(rows(&b).last().unwrap().contains("refused: "));
    }

    #[test]
    fn the_selection_and_the_help_show() {
        let selection = Selection {
            participant: Some(7),
            dim: 1,
            help: false,
        };
        let b = drawn(&snapshot(), &selection, 80, 24);
        assert!(b[find(&b, "7 bell")].modifier.contains(Modifier::REVERSED));
        assert!(!b[find(&b, "1 pad")].modifier.contains(Modifier::REVERSED));
        let marked = find(&b, "> tension");
        assert!(b[marked].modifier.contains(Modifier::BOLD));
        assert!(!row_with(&b, "  energy").contains('>'));
        let help = Selection {
            help: true,
            ..selection
        };
        let b = drawn(&snapshot(), &help, 80, 24);
        for (key, what) in KEYS {
            assert!(row_with(&b, what).contains(key), "{key} {what}");
        }
    }

    #[test]
    fn a_lost_device_shows_red_in_the_view_and_in_the_plain_line() {
        let mut s = snapshot();
        s.audio = AudioState::Lost {
            reason: "JACK server shut down".into(),
            for_secs: 2.5,
            timeout_secs: 30.0,
        };
        let b = drawn(&s, &Selection::default(), 120, 40);
        assert_eq!(
            colour_of(&b, "LOST 2.5 s: JACK server shut down"),
            Color::Red
        );
        assert!(plain_line(&s).ends_with("AUDIO LOST 2.5 s (giving up after 30 s)"));
    }

    #[test]
    fn notices_lost_show_as_unnamed_participants() {
        let mut s = snapshot();
        s.present = 6;
        let b = drawn(&s, &Selection::default(), 120, 40);
        find(&b, "PARTICIPANTS 6 (2 not named: notices lost)");
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
    fn the_load_peak_rises_at_once_and_halves_in_its_half_life() {
        assert_eq!(decay_peak(10.0, 60.0, 0.2), 60.0);
        let later = decay_peak(60.0, 5.0, LOAD_PEAK_HALF_LIFE_SECS);
        assert!((later - 30.0).abs() < 1e-4, "{later}");
        assert_eq!(decay_peak(60.0, f32::NAN, 0.0), 60.0);
    }

    #[test]
    fn the_plain_line_keeps_its_format() {
        let mut s = snapshot();
        s.participants.truncate(2);
        s.present = 2;
        s.peak_dbfs = [-6.0, -60.0];
        s.stream_errors = 1;
        s.peak_load_percent = 40.0;
        assert_eq!(
            plain_line(&s),
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
        let refused = Event::Refused {
            what: "cue of section \"storm\"".into(),
            reason: Refusal::OutOfRange.to_string(),
            at_secs: 2.0,
        };
        assert!(refused
            .line()
            .starts_with("refused: archetype, dimension or section index"));
    }
}
