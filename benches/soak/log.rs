//! Reading `tapestry play`'s stderr: its plain status lines (`status_view::plain_line`, once a
//! second when stderr is no terminal), the OSC server's drop lines and the closing summary.

use std::collections::BTreeMap;

use crate::jack::number_after;

/// MIDI input counters of a status line.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MidiStatus {
    pub ports: f64,
    pub msgs: f64,
    pub routed: f64,
    pub dropped: f64,
    pub malformed: f64,
    pub lost: f64,
    /// Messages no mapping covers (notes, controllers, bends, other).
    pub unmapped: f64,
    pub sysex: f64,
}

/// OSC input counters of a status line.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct OscStatus {
    pub packets: f64,
    pub accepted: f64,
    pub dropped: f64,
    pub kernel_drops: f64,
}

/// One plain status line.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Status {
    pub elapsed_secs: f64,
    pub participants: f64,
    pub load_percent: f64,
    pub peak_load_percent: f64,
    pub xruns: f64,
    pub stream_errors: f64,
    /// Messages the engine's queue had no room for.
    pub engine_dropped: f64,
    /// Messages the engine refused.
    pub engine_refused: f64,
    pub midi: MidiStatus,
    pub osc: OscStatus,
}

impl Status {
    /// Reads a status line with both MIDI and OSC counters; `None` for any other line.
    pub fn parse(line: &str) -> Option<Status> {
        if !line.contains(" participants ") || !line.contains("osc packets") {
            return None;
        }
        let midi = &line[line.find("midi ports")?..];
        let osc = &line[line.find("osc packets")?..];
        let elapsed = line.split_whitespace().next()?.trim_end_matches('s');
        Some(Status {
            elapsed_secs: elapsed.parse().ok()?,
            participants: line.split_whitespace().nth(1)?.parse().ok()?,
            load_percent: number_after(line, "load"),
            peak_load_percent: number_after(line, ", peak"),
            xruns: number_after(line, "xruns"),
            stream_errors: number_after(line, "stream errors"),
            engine_dropped: number_after(line, "dropped"),
            engine_refused: number_after(line, "refused"),
            midi: MidiStatus {
                ports: number_after(midi, "midi ports"),
                msgs: number_after(midi, "msgs"),
                routed: number_after(midi, "routed"),
                dropped: number_after(midi, "dropped"),
                malformed: number_after(midi, "malformed"),
                lost: number_after(midi, "lost"),
                unmapped: number_after(midi, "unmapped"),
                sysex: number_after(midi, "sysex"),
            },
            osc: OscStatus {
                packets: number_after(osc, "packets"),
                accepted: number_after(osc, "accepted"),
                dropped: number_after(osc, "dropped"),
                kernel_drops: number_after(osc, "kernel drops"),
            },
        })
    }
}

/// Every status line of `lines`, in order.
pub fn statuses(lines: &[String]) -> Vec<Status> {
    lines.iter().filter_map(|l| Status::parse(l)).collect()
}

/// The OSC server's drops by kind, summed over its lines
/// "tapestry: OSC input dropped N (kind n, kind n); last from …".
pub fn osc_drops_by_kind(lines: &[String]) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("tapestry: OSC input dropped ") else {
            continue;
        };
        let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) else {
            continue;
        };
        for part in rest[open + 1..close].split(", ") {
            let Some((kind, n)) = part.rsplit_once(' ') else {
                continue;
            };
            if let Ok(n) = n.parse::<u64>() {
                *kinds.entry(kind.to_string()).or_default() += n;
            }
        }
    }
    kinds
}

/// The first line starting with `prefix`.
pub fn line_starting<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .map(String::as_str)
}

/// Allocations counted in the audio, MIDI and room callbacks (`alloc-check` builds only).
pub fn allocations(lines: &[String]) -> Option<[f64; 3]> {
    let line = lines
        .iter()
        .rfind(|l| l.starts_with("allocations in audio callback"))?;
    Some([
        number_after(line, "audio callback:"),
        number_after(line, "MIDI callbacks:"),
        number_after(line, "room input callback:"),
    ])
}

/// The recording's summary: events written, and events not recorded (journal full).
pub fn recorded(lines: &[String]) -> Option<(f64, f64)> {
    let line = line_starting(lines, "recorded ")?;
    let events = number_after(line, "recorded");
    let unrecorded = if line.contains("NOT recorded") {
        number_after(line, ";")
    } else {
        0.0
    };
    Some((events, unrecorded))
}
