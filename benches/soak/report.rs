//! The soak's report: gathered from play's log, `/proc`, the senders, the server's log and the
//! session recording; printed as a table and serialized to JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tapestry::control::{Command, MoodTarget};
use tapestry::{Patch, Performance};

use crate::jack::ServerXruns;
use crate::log::{self, MidiStatus, OscStatus, Status};
use crate::osc::{legit_value, LEGIT_DIMENSION, LEGIT_PARTICIPANT};
use crate::{ProcessFigures, Sent};

/// The callback's deadline: 256 frames at 48 kHz, the private server's period.
const DEADLINE_US: f64 = 256.0 / 48_000.0 * 1e6;

/// Everything the report is made from.
pub struct Inputs<'a> {
    pub lines: &'a [String],
    pub before: &'a ProcessFigures,
    pub after: &'a ProcessFigures,
    pub sent: &'a Sent,
    pub server: &'a ServerXruns,
    pub patch: &'a Path,
    pub recording: &'a Path,
}

#[derive(Serialize)]
pub struct Callback {
    pub deadline_us: f64,
    /// play's peak load (% of the deadline) when the flood began, and at the end.
    pub peak_load_percent_before_flood: f64,
    pub peak_load_percent_at_end: f64,
    /// The worst callback over the whole run: the peak at the end × the deadline.
    pub worst_callback_us: f64,
    /// Whether the worst callback fell during the flood (the peak rose).
    pub worst_during_flood: bool,
    /// The last callback's load, sampled once a second during the flood: median and largest.
    pub sampled_load_percent_median: f64,
    pub sampled_load_percent_max: f64,
}

#[derive(Serialize)]
pub struct Xruns {
    /// Xruns JACK reported to tapestry, over the whole run and during the flood.
    pub tapestry_total: f64,
    pub tapestry_during_flood: f64,
    /// The server's log over the whole run: the dummy driver's late wake-ups (the machine's
    /// scheduling, before any client ran), their largest lateness, cycles begun while a client
    /// was unfinished, and "client was not finished" lines by client.
    pub server_driver_late: usize,
    pub server_driver_late_max_us: u64,
    pub server_graph_xruns: usize,
    pub server_unfinished: BTreeMap<String, usize>,
    /// Tapestry's count beyond the driver's late wake-ups (as tests/live/live_e2e_jack.rs
    /// reasons), and the server's "not finished" lines naming tapestry's clients: still
    /// running at the next cycle (their own work, or a late start), or triggered and not yet
    /// woken (the machine's scheduling).
    pub beyond_driver_late: f64,
    pub unfinished_tapestry_running: usize,
    pub unfinished_tapestry_triggered: usize,
}

#[derive(Serialize)]
pub struct OscReport {
    /// The hostile senders' rate limit in all, datagrams/s (`None`: full rate).
    pub rate_limit: Option<f64>,
    pub hostile_threads: usize,
    pub hostile_sockets: usize,
    /// Datagrams and bytes sent, by kind.
    pub sent: BTreeMap<String, (u64, u64)>,
    pub sent_datagrams: u64,
    pub sent_per_sec: f64,
    pub sent_mib: f64,
    pub send_errors: u64,
    /// play's counters at the end (packets read, messages accepted/dropped, kernel drops).
    pub server: OscStatus,
    /// The OSC server's drop lines, summed by kind.
    pub dropped_by_kind: BTreeMap<String, u64>,
    pub receive_buffer: Option<String>,
}

#[derive(Serialize)]
pub struct MidiReport {
    /// Events and bytes written into the flood's port, by kind.
    pub sent: BTreeMap<String, (u64, u64)>,
    pub sent_events: u64,
    pub sent_per_sec: f64,
    pub sent_kib: f64,
    /// Events that did not fit the JACK port buffer (never sent).
    pub port_full: u64,
    /// Periods the flood ran, and whether its JACK client closed in time.
    pub periods: u64,
    pub client_closed: bool,
    /// Events only a broken parser could call anything but malformed.
    pub certainly_malformed: u64,
    /// play's counters at the end.
    pub tapestry: MidiStatus,
}

#[derive(Serialize)]
pub struct Engine {
    pub dropped: f64,
    pub refused: f64,
    pub stream_errors: f64,
    pub participants_at_end: f64,
}

#[derive(Serialize)]
pub struct Legit {
    pub hello_tries: u32,
    pub subscribed: bool,
    /// Seconds from the client's start to its subscription's acknowledgement.
    pub subscribed_after_secs: Option<f64>,
    pub joins_sent: usize,
    pub join_acked: bool,
    pub join_recorded: bool,
    pub joined_line: bool,
    pub moves_sent: usize,
    pub moves_acked: usize,
    pub moves_acked_first_try: usize,
    /// Moves that the engine applied: found in the session recording (which holds what the
    /// engine applied), told apart from hostile moods by their values.
    pub moves_landed: usize,
    /// Moves whose ack said dropped, by the server's reasons, and moves never acknowledged.
    pub move_drop_reasons: BTreeMap<String, u64>,
    pub moves_unanswered: usize,
    pub datagrams: usize,
    pub ack_round_trip_ms_median: f64,
    pub ack_round_trip_ms_max: f64,
    pub status_asked: usize,
    pub status_answered: usize,
    pub last_status_lost_dropped: Option<(i32, i32)>,
}

#[derive(Serialize)]
pub struct Memory {
    pub rss_kib_before: u64,
    pub rss_kib_after: u64,
    pub peak_rss_kib: u64,
    /// play's CPU use during the flood, % of one core.
    pub cpu_percent_during_flood: f64,
}

#[derive(Serialize)]
pub struct Recording {
    pub events: f64,
    pub not_recorded: f64,
    pub bytes: u64,
}

#[derive(Serialize)]
pub struct Report {
    pub machine: String,
    pub flood_secs: f64,
    pub callback: Callback,
    pub xruns: Xruns,
    pub osc: OscReport,
    pub midi: MidiReport,
    pub engine: Engine,
    pub legit: Legit,
    pub memory: Memory,
    pub recording: Recording,
    /// Allocations in the audio, MIDI and room callbacks (`alloc-check` builds only).
    pub allocations: Option<[f64; 3]>,
    /// What makes this run's figures suspect or shows input that did not get through.
    pub warnings: Vec<String>,
}

/// Seconds between two readings of the process.
fn between(before: &ProcessFigures, after: &ProcessFigures) -> f64 {
    match (before.at, after.at) {
        (Some(a), Some(b)) => (b - a).as_secs_f64().max(1e-3),
        _ => 1.0,
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}); JACK dummy backend 48 kHz, 256-frame periods; load average at the end {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

fn callback(inputs: &Inputs, statuses: &[Status], end: &Status) -> Callback {
    let before = inputs.before.status.clone().unwrap_or_default();
    let mut sampled: Vec<f64> = statuses
        .iter()
        .filter(|s| s.elapsed_secs > before.elapsed_secs)
        .filter(|s| s.elapsed_secs <= before.elapsed_secs + inputs.sent.flood_secs + 1.0)
        .map(|s| s.load_percent)
        .collect();
    let max = sampled.iter().copied().fold(0.0, f64::max);
    Callback {
        deadline_us: DEADLINE_US,
        peak_load_percent_before_flood: before.peak_load_percent,
        peak_load_percent_at_end: end.peak_load_percent,
        worst_callback_us: end.peak_load_percent / 100.0 * DEADLINE_US,
        worst_during_flood: end.peak_load_percent > before.peak_load_percent,
        sampled_load_percent_median: median(&mut sampled),
        sampled_load_percent_max: max,
    }
}

fn xruns(inputs: &Inputs, end: &Status) -> Xruns {
    let before = inputs.before.status.clone().unwrap_or_default();
    let server = inputs.server;
    let tapestry_unfinished = |state: &str| {
        server
            .unfinished
            .iter()
            .filter(|(c, _)| c.starts_with("cpal_client") || c.starts_with("tapestry"))
            .filter(|(c, _)| c.ends_with(state))
            .map(|(_, n)| n)
            .sum()
    };
    Xruns {
        tapestry_total: end.xruns,
        tapestry_during_flood: end.xruns - before.xruns,
        server_driver_late: server.driver_late,
        server_driver_late_max_us: server.driver_late_max_usecs,
        server_graph_xruns: server.graph_xruns,
        server_unfinished: server.unfinished.clone(),
        beyond_driver_late: (end.xruns - server.driver_late as f64).max(0.0),
        unfinished_tapestry_running: tapestry_unfinished("Running"),
        unfinished_tapestry_triggered: tapestry_unfinished("Triggered"),
    }
}

fn osc_report(inputs: &Inputs, end: &Status) -> OscReport {
    let sent = &inputs.sent.osc;
    OscReport {
        rate_limit: inputs.sent.osc_rate,
        hostile_threads: crate::HOSTILE_THREADS,
        hostile_sockets: sent.sockets,
        sent: sent
            .by_kind
            .iter()
            .map(|(k, v)| (k.name().to_string(), *v))
            .collect(),
        sent_datagrams: sent.datagrams(),
        sent_per_sec: sent.datagrams() as f64 / inputs.sent.flood_secs,
        sent_mib: sent.bytes() as f64 / (1 << 20) as f64,
        send_errors: sent.send_errors,
        server: end.osc,
        dropped_by_kind: log::osc_drops_by_kind(inputs.lines),
        receive_buffer: log::line_starting(inputs.lines, "OSC on ").map(str::to_string),
    }
}

fn midi_report(inputs: &Inputs, end: &Status) -> MidiReport {
    let sent = &inputs.sent.midi;
    MidiReport {
        sent: sent
            .by_kind
            .iter()
            .map(|(k, v)| (k.name().to_string(), *v))
            .collect(),
        sent_events: sent.events(),
        sent_per_sec: sent.events() as f64 / inputs.sent.flood_secs,
        sent_kib: sent.bytes() as f64 / 1024.0,
        port_full: sent.port_full,
        periods: sent.periods,
        client_closed: sent.closed,
        certainly_malformed: sent
            .by_kind
            .iter()
            .filter(|(k, _)| k.malformed())
            .map(|(_, v)| v.0)
            .sum(),
        tapestry: end.midi,
    }
}

/// The legitimate client's moves the recording holds (each counted once: consecutive moves
/// differ in value, a resent one repeats it), and whether its join is there.
fn landed(patch: &Path, recording: &Path, moves: usize) -> (usize, bool) {
    let patch = Patch::load(patch).unwrap_or_else(|e| panic!("{e}"));
    let perf = match Performance::load(recording, &patch, 48_000) {
        Ok(perf) => perf,
        Err(e) => {
            eprintln!("soak: the recording does not load: {e}");
            return (0, false);
        }
    };
    let dim = patch.names().dim(LEGIT_DIMENSION).unwrap();
    let legit = LEGIT_PARTICIPANT as u32;
    let values: Vec<f32> = (0..moves).map(legit_value).collect();
    let mut landed = 0;
    let mut last = None;
    let mut joined = false;
    for c in &perf.commands {
        match c.command {
            Command::Join { participant, .. } if participant == legit => joined = true,
            Command::Mood {
                target: MoodTarget::Participant(p),
                dim: d,
                value,
                ..
            } if p == legit && d == dim => {
                let legit_move = values.iter().any(|v| (v - value).abs() < 1e-4);
                if legit_move && last != Some(value) {
                    landed += 1;
                    last = Some(value);
                }
            }
            _ => {}
        }
    }
    (landed, joined)
}

fn legit_report(inputs: &Inputs) -> Legit {
    let f = &inputs.sent.legit;
    let (moves_landed, join_recorded) = landed(inputs.patch, inputs.recording, f.moves);
    let mut round_trips = f.round_trips_ms.clone();
    let joined = format!("joined: participant {LEGIT_PARTICIPANT} ");
    Legit {
        hello_tries: f.hello_tries,
        subscribed: f.subscribed,
        subscribed_after_secs: f.subscribed_after.map(|d| d.as_secs_f64()),
        joins_sent: f.joins_sent,
        join_acked: f.join_acked,
        join_recorded,
        joined_line: inputs.lines.iter().any(|l| l.starts_with(&joined)),
        moves_sent: f.moves,
        moves_acked: f.moves_acked,
        moves_acked_first_try: f.moves_acked_first_try,
        moves_landed,
        move_drop_reasons: f.move_drop_reasons.clone(),
        moves_unanswered: f.moves_unanswered,
        datagrams: f.datagrams,
        ack_round_trip_ms_median: median(&mut round_trips),
        ack_round_trip_ms_max: round_trips.iter().copied().fold(0.0, f64::max),
        status_asked: f.status_asked,
        status_answered: f.status_answered,
        last_status_lost_dropped: f.last_status_lost_dropped,
    }
}

impl Report {
    pub fn new(inputs: Inputs) -> Report {
        let statuses = log::statuses(inputs.lines);
        let end = statuses.last().cloned().unwrap_or_default();
        let (before, after) = (inputs.before, inputs.after);
        let flood_secs = inputs.sent.flood_secs;
        let (events, not_recorded) = log::recorded(inputs.lines).unwrap_or_default();
        Report {
            machine: machine(),
            flood_secs,
            callback: callback(&inputs, &statuses, &end),
            xruns: xruns(&inputs, &end),
            osc: osc_report(&inputs, &end),
            midi: midi_report(&inputs, &end),
            engine: Engine {
                dropped: end.engine_dropped,
                refused: end.engine_refused,
                stream_errors: end.stream_errors,
                participants_at_end: end.participants,
            },
            legit: legit_report(&inputs),
            memory: Memory {
                rss_kib_before: before.rss_kib,
                rss_kib_after: after.rss_kib,
                peak_rss_kib: after.peak_rss_kib,
                cpu_percent_during_flood: (after.cpu_secs - before.cpu_secs)
                    / between(before, after)
                    * 100.0,
            },
            recording: Recording {
                events,
                not_recorded,
                bytes: std::fs::metadata(inputs.recording).map_or(0, |m| m.len()),
            },
            allocations: log::allocations(inputs.lines),
            warnings: Vec::new(),
        }
        .with_warnings()
    }

    fn with_warnings(mut self) -> Report {
        let mut w = Vec::new();
        if self.midi.sent_events > 0 && self.midi.tapestry.msgs == 0.0 {
            w.push("play's MIDI input received nothing".to_string());
        }
        if self.xruns.unfinished_tapestry_triggered > 100 {
            w.push(format!(
                "play's JACK clients were not woken in {} cycles (a stale futex after a client \
                 came and went during play's start, jackaudio/jack2#721?)",
                self.xruns.unfinished_tapestry_triggered
            ));
        }
        if !self.legit.join_recorded {
            w.push("the legitimate client's join never landed".into());
        }
        if self.legit.moves_landed < self.legit.moves_sent {
            w.push(format!(
                "{} of the legitimate client's {} moves did not land",
                self.legit.moves_sent - self.legit.moves_landed,
                self.legit.moves_sent
            ));
        }
        self.warnings = w;
        self
    }
}

type Rows = Vec<(&'static str, String)>;

impl Report {
    /// Prints the report as a Markdown table of figures.
    pub fn print(&self) {
        let mut rows = vec![
            ("machine", self.machine.clone()),
            (
                "flood",
                format!(
                    "{:.1} s, hostile OSC {}",
                    self.flood_secs,
                    self.osc
                        .rate_limit
                        .map_or("at full rate".into(), |r| format!("capped at {r:.0}/s"))
                ),
            ),
        ];
        rows.extend(self.timing_rows());
        rows.extend(self.input_rows());
        rows.extend(self.client_rows());
        println!("| figure | value |\n|---|---|");
        for (name, value) in rows {
            println!("| {name} | {value} |");
        }
        for warning in &self.warnings {
            println!("\nWARNING: {warning}");
        }
        println!("\nOSC sent by kind (datagrams, bytes): {:?}", self.osc.sent);
        println!("MIDI sent by kind (events, bytes): {:?}", self.midi.sent);
    }

    fn timing_rows(&self) -> Rows {
        let (c, x) = (&self.callback, &self.xruns);
        let when = if c.worst_during_flood {
            "during the flood"
        } else {
            "before the flood; none worse during it"
        };
        vec![
            (
                "callback peak load",
                format!(
                    "{:.1}% of the deadline before the flood, {:.1}% at the end",
                    c.peak_load_percent_before_flood, c.peak_load_percent_at_end
                ),
            ),
            (
                "worst callback",
                format!(
                    "{:.0} µs of {:.0} µs ({when})",
                    c.worst_callback_us, c.deadline_us
                ),
            ),
            (
                "load sampled each second in the flood",
                format!(
                    "median {:.1}%, max {:.1}%",
                    c.sampled_load_percent_median, c.sampled_load_percent_max
                ),
            ),
            (
                "xruns",
                format!(
                    "tapestry saw {} ({} during the flood); server: {} late driver wake-ups \
                     (max {} µs), {} graph xruns, not finished: {:?}",
                    x.tapestry_total,
                    x.tapestry_during_flood,
                    x.server_driver_late,
                    x.server_driver_late_max_us,
                    x.server_graph_xruns,
                    x.server_unfinished
                ),
            ),
            (
                "xruns attributable to tapestry",
                format!(
                    "{} beyond the driver's late wake-ups; cycles tapestry's clients had not \
                     finished: {} still running, {} not yet woken",
                    x.beyond_driver_late,
                    x.unfinished_tapestry_running,
                    x.unfinished_tapestry_triggered
                ),
            ),
        ]
    }

    fn input_rows(&self) -> Rows {
        let (o, m, e) = (&self.osc, &self.midi, &self.engine);
        vec![
            (
                "OSC sent (hostile)",
                format!(
                    "{} datagrams ({:.0}/s, {:.0} MiB) from {} sockets; {} send errors",
                    o.sent_datagrams, o.sent_per_sec, o.sent_mib, o.hostile_sockets, o.send_errors
                ),
            ),
            (
                "OSC at tapestry",
                format!(
                    "packets {} accepted {} dropped {} kernel drops {}; {}",
                    o.server.packets,
                    o.server.accepted,
                    o.server.dropped,
                    o.server.kernel_drops,
                    o.receive_buffer.as_deref().unwrap_or("")
                ),
            ),
            ("OSC dropped by kind", format!("{:?}", o.dropped_by_kind)),
            (
                "MIDI sent (hostile)",
                format!(
                    "{} events ({:.0}/s, {:.0} KiB) in {} periods, {} certainly malformed; {} did \
                     not fit the port buffer",
                    m.sent_events,
                    m.sent_per_sec,
                    m.sent_kib,
                    m.periods,
                    m.certainly_malformed,
                    m.port_full
                ),
            ),
            (
                "MIDI at tapestry",
                format!(
                    "msgs {} routed {} dropped {} malformed {} lost {} unmapped {} SysEx {}",
                    m.tapestry.msgs,
                    m.tapestry.routed,
                    m.tapestry.dropped,
                    m.tapestry.malformed,
                    m.tapestry.lost,
                    m.tapestry.unmapped,
                    m.tapestry.sysex
                ),
            ),
            (
                "engine",
                format!(
                    "dropped {} refused {} stream errors {}; {} participants at the end",
                    e.dropped, e.refused, e.stream_errors, e.participants_at_end
                ),
            ),
        ]
    }

    fn client_rows(&self) -> Rows {
        let (l, mem, rec) = (&self.legit, &self.memory, &self.recording);
        let allocations = self
            .allocations
            .map_or("not counted (build with alloc-check)".into(), |a| {
                format!("{a:?}")
            });
        vec![
            (
                "legit client",
                format!(
                    "hello tries {}, subscribed {} (after {:.1?} s), joins sent {} (acked {}, recorded {}); moves sent {}, \
                     acked {} ({} first try), landed {}; dropped {:?}, unanswered {}; {} datagrams",
                    l.hello_tries,
                    l.subscribed,
                    l.subscribed_after_secs,
                    l.joins_sent,
                    l.join_acked,
                    l.join_recorded,
                    l.moves_sent,
                    l.moves_acked,
                    l.moves_acked_first_try,
                    l.moves_landed,
                    l.move_drop_reasons,
                    l.moves_unanswered,
                    l.datagrams
                ),
            ),
            (
                "legit ack round trip",
                format!(
                    "median {:.2} ms, max {:.2} ms; status answered {}/{}, last (lost, dropped) \
                     {:?}",
                    l.ack_round_trip_ms_median,
                    l.ack_round_trip_ms_max,
                    l.status_answered,
                    l.status_asked,
                    l.last_status_lost_dropped
                ),
            ),
            (
                "RSS",
                format!(
                    "{} KiB before, {} KiB after (peak {} KiB); play's CPU {:.0}% of a core",
                    mem.rss_kib_before,
                    mem.rss_kib_after,
                    mem.peak_rss_kib,
                    mem.cpu_percent_during_flood
                ),
            ),
            (
                "recording",
                format!(
                    "{} events, {} not recorded, {} bytes",
                    rec.events, rec.not_recorded, rec.bytes
                ),
            ),
            ("allocations in callbacks (audio, MIDI, room)", allocations),
        ]
    }
}
