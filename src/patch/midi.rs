//! The `[midi]` section: validated with every problem located, resolved into a [`MidiMap`].

use toml::Spanned;

use super::name_list;
use super::schema::{
    MidiControlFile, MidiCueFile, MidiFile, MidiParticipantFile, MAX_MIDI_PORTS, MAX_MIDI_ROUTES,
};
use crate::diagnostic::Reporter;
use crate::engine::config::MoodDimConfig;
use crate::input::midi::{
    ControlRoute, ControlTarget, CueRoute, CueTrigger, MidiMap, ModWheel, ParticipantRoute,
};

/// `mod_wheel` value that leaves CC 1 unmapped.
const MOD_WHEEL_OFF: &str = "off";

/// What the rest of the patch defines, for the names `[midi]` refers to.
pub(super) struct Defined<'a> {
    /// Mood dimensions, by index.
    pub dims: &'a [MoodDimConfig],
    /// Their names.
    pub dim_names: &'a [String],
    /// Section names.
    pub sections: &'a [String],
    /// Archetype ids.
    pub archetypes: &'a [String],
}

fn names(list: &[String]) -> String {
    name_list(&list.iter().map(String::as_str).collect::<Vec<_>>())
}

fn lookup(
    r: &mut Reporter,
    v: &Spanned<String>,
    key: &str,
    what: &str,
    list: &[String],
) -> Option<usize> {
    let pos = list.iter().position(|n| n == v.get_ref());
    if pos.is_none() {
        r.error(
            v.span(),
            key,
            format!(
                "unknown {what} \"{}\"; expected one of {}",
                v.get_ref(),
                names(list)
            ),
        );
    }
    pos
}

/// A channel 1..16 as its wire value 0..15.
fn channel(r: &mut Reporter, v: &Spanned<i64>, key: &str) -> u8 {
    let c = *v.get_ref();
    if !(1..=16).contains(&c) {
        r.error(
            v.span(),
            key,
            format!("expected a MIDI channel from 1 to 16, found {c}"),
        );
    }
    (c.clamp(1, 16) - 1) as u8
}

fn int_in(r: &mut Reporter, v: &Spanned<i64>, key: &str, lo: i64, hi: i64, what: &str) -> i64 {
    let x = *v.get_ref();
    if !(lo..=hi).contains(&x) {
        r.error(
            v.span(),
            key,
            format!("expected {what} from {lo} to {hi}, found {x}"),
        );
    }
    x.clamp(lo, hi)
}

fn port(r: &mut Reporter, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
    let v = v.as_ref()?;
    if v.get_ref().trim().is_empty() {
        r.error(
            v.span(),
            key,
            "expected part of a port name, found an empty string",
        );
    }
    Some(v.get_ref().clone())
}

/// Channel as written in messages: 1..16.
fn shown(channel: Option<u8>) -> String {
    channel.map_or("any channel".into(), |c| format!("channel {}", c + 1))
}

/// Resolves `[midi]`; a patch without one gets [`MidiMap::default`].
pub(super) fn resolve(f: Option<&MidiFile>, defined: &Defined, r: &mut Reporter) -> MidiMap {
    let mut map = MidiMap::default();
    let Some(f) = f else {
        return map;
    };
    if let Some(ports) = &f.ports {
        map.ports = port_list(ports, r);
    }
    if let Some(v) = &f.virtual_port {
        if v.get_ref().trim().is_empty() {
            r.error(
                v.span(),
                "midi.virtual_port",
                "expected a port name, found an empty string",
            );
        }
        map.virtual_port = v.get_ref().clone();
    }
    map.conductor_channel = f
        .conductor_channel
        .as_ref()
        .map(|c| channel(r, c, "midi.conductor_channel"));
    check_route_counts(f, r);
    for (i, p) in f.participants.iter().enumerate().take(MAX_MIDI_ROUTES) {
        let route = participant(p, &format!("midi.participants[{i}]"), &map, defined, r);
        map.participants.push(route);
    }
    for (i, c) in f.controls.iter().enumerate().take(MAX_MIDI_ROUTES) {
        if let Some(route) = control(c, &format!("midi.controls[{i}]"), &map, defined, r) {
            map.controls.push(route);
        }
    }
    for (i, c) in f.cues.iter().enumerate().take(MAX_MIDI_ROUTES) {
        if let Some(route) = cue(c, &format!("midi.cues[{i}]"), &map, f, defined, r) {
            map.cues.push(route);
        }
    }
    if let Some(v) = &f.pitch_bend_cents {
        map.pitch_bend_cents =
            super::in_range(r, v, "midi.pitch_bend_cents", 0.0, 2400.0, " cents");
    }
    if let Some(v) = &f.mod_wheel {
        map.mod_wheel = mod_wheel(v, r);
    }
    map
}

/// `midi.ports`: at least one and at most [`MAX_MIDI_PORTS`] port name substrings.
fn port_list(ports: &Spanned<Vec<Spanned<String>>>, r: &mut Reporter) -> Vec<String> {
    if ports.get_ref().is_empty() {
        r.error(
            ports.span(),
            "midi.ports",
            "expected at least one port name substring, or \"*\" for every port",
        );
    }
    if ports.get_ref().len() > MAX_MIDI_PORTS {
        r.error(
            ports.get_ref()[MAX_MIDI_PORTS].span(),
            format!("midi.ports[{MAX_MIDI_PORTS}]"),
            format!(
                "expected at most {MAX_MIDI_PORTS} port names, found {}",
                ports.get_ref().len()
            ),
        );
    }
    let mut list = Vec::new();
    for (i, p) in ports.get_ref().iter().enumerate().take(MAX_MIDI_PORTS) {
        if let Some(p) = port(r, &Some(p.clone()), &format!("midi.ports[{i}]")) {
            list.push(p);
        }
    }
    list
}

/// At most [`MAX_MIDI_ROUTES`] entries in each of `[[midi.participants]]`,
/// `[[midi.controls]]` and `[[midi.cues]]`.
fn check_route_counts(f: &MidiFile, r: &mut Reporter) {
    let routes = [
        (
            "midi.participants",
            f.participants.len(),
            f.participants
                .get(MAX_MIDI_ROUTES)
                .map(|p| p.participant.span()),
        ),
        (
            "midi.controls",
            f.controls.len(),
            f.controls.get(MAX_MIDI_ROUTES).map(|c| c.cc.span()),
        ),
        (
            "midi.cues",
            f.cues.len(),
            f.cues.get(MAX_MIDI_ROUTES).map(|c| c.section.span()),
        ),
    ];
    for (key, len, extra) in routes {
        if let Some(span) = extra {
            r.error(
                span,
                format!("{key}[{MAX_MIDI_ROUTES}]"),
                format!("expected at most {MAX_MIDI_ROUTES} [[{key}]] entries, found {len}"),
            );
        }
    }
}

/// `midi.mod_wheel`: what CC 1 drives, or "off".
fn mod_wheel(v: &Spanned<String>, r: &mut Reporter) -> Option<ModWheel> {
    match ModWheel::ALL.iter().find(|(_, n)| n == v.get_ref()) {
        Some((m, _)) => Some(*m),
        None if v.get_ref() == MOD_WHEEL_OFF => None,
        None => {
            let mut all: Vec<&str> = ModWheel::ALL.iter().map(|(_, n)| *n).collect();
            all.push(MOD_WHEEL_OFF);
            r.error(
                v.span(),
                "midi.mod_wheel",
                format!(
                    "unknown mod wheel use \"{}\"; expected one of {}",
                    v.get_ref(),
                    name_list(&all)
                ),
            );
            None
        }
    }
}

fn participant(
    p: &MidiParticipantFile,
    key: &str,
    map: &MidiMap,
    defined: &Defined,
    r: &mut Reporter,
) -> ParticipantRoute {
    let port_filter = port(r, &p.port, &format!("{key}.port"));
    let ch = p
        .channel
        .as_ref()
        .map(|c| channel(r, c, &format!("{key}.channel")));
    // where a problem with the entry as a whole is shown
    let (at, at_key) = match (&p.channel, &p.port) {
        (Some(c), _) => (c.span(), format!("{key}.channel")),
        (None, Some(pt)) => (pt.span(), format!("{key}.port")),
        (None, None) => (p.participant.span(), key.to_string()),
    };
    if p.channel.is_none() && p.port.is_none() {
        r.error(
            at.clone(),
            at_key.clone(),
            "expected a channel, a port or both to take the participant's notes from",
        );
    }
    if let (Some(c), Some(cond)) = (ch, map.conductor_channel) {
        if c == cond {
            r.error(
                at.clone(),
                at_key.clone(),
                format!(
                    "channel {} is the conductor channel; expected another channel for a participant",
                    c + 1
                ),
            );
        }
    }
    let same_port = |other: &Option<String>| {
        other.as_deref().map(str::to_ascii_lowercase)
            == port_filter.as_deref().map(str::to_ascii_lowercase)
    };
    if let Some((j, other)) = map
        .participants
        .iter()
        .enumerate()
        .find(|(_, o)| o.channel == ch && same_port(&o.port))
    {
        r.error(
            at,
            at_key,
            format!(
                "{}{} is already mapped to participant {} by midi.participants[{j}]; expected each channel (and port) once",
                shown(ch),
                port_filter
                    .as_ref()
                    .map_or(String::new(), |p| format!(" of port \"{p}\"")),
                other.participant
            ),
        );
    }
    let id = int_in(
        r,
        &p.participant,
        &format!("{key}.participant"),
        1,
        u32::MAX as i64,
        "a participant id (0 is the conductor)",
    );
    let archetype = p.archetype.as_ref().and_then(|a| {
        lookup(
            r,
            a,
            &format!("{key}.archetype"),
            "archetype",
            defined.archetypes,
        )
        .map(|i| i as u16)
    });
    ParticipantRoute {
        port: port_filter,
        channel: ch,
        participant: id as u32,
        archetype,
    }
}

fn control(
    c: &MidiControlFile,
    key: &str,
    map: &MidiMap,
    defined: &Defined,
    r: &mut Reporter,
) -> Option<ControlRoute> {
    let port_filter = port(r, &c.port, &format!("{key}.port"));
    let ch = c
        .channel
        .as_ref()
        .map(|v| channel(r, v, &format!("{key}.channel")));
    let cc = cc_number(c, key, r);
    let dim = lookup(
        r,
        &c.dimension,
        &format!("{key}.dimension"),
        "mood dimension",
        defined.dim_names,
    );
    let target = control_target(c, key, r);
    if target == Some(ControlTarget::Participant) {
        check_served(c, key, ch, map, r);
    }
    let dim = dim?;
    let d = defined.dims.get(dim)?;
    let range = control_range(c, d, key, r);
    let route = ControlRoute {
        port: port_filter,
        channel: ch,
        cc,
        dim: dim as u8,
        range,
        target: target?,
    };
    check_unique_control(&route, c, key, map, r);
    Some(route)
}

/// `cc`: a controller number 0..119 (120..127 are channel-mode messages).
fn cc_number(c: &MidiControlFile, key: &str, r: &mut Reporter) -> u8 {
    let cc = *c.cc.get_ref();
    if !(0..=119).contains(&cc) {
        r.error(
            c.cc.span(),
            format!("{key}.cc"),
            format!(
                "expected a controller number from 0 to 119 (120..127 are channel-mode messages), found {cc}"
            ),
        );
    }
    cc.clamp(0, 119) as u8
}

/// `target`: "conductor" (the communal mood) or "participant" (the channel's participant).
fn control_target(c: &MidiControlFile, key: &str, r: &mut Reporter) -> Option<ControlTarget> {
    match c.target.get_ref().as_str() {
        "conductor" => Some(ControlTarget::Conductor),
        "participant" => Some(ControlTarget::Participant),
        other => {
            r.error(
                c.target.span(),
                format!("{key}.target"),
                format!(
                    "unknown target \"{other}\"; expected \"conductor\" (communal mood) or \"participant\" (the channel's participant)"
                ),
            );
            None
        }
    }
}

/// A "participant" control needs a `[[midi.participants]]` entry on its channel.
fn check_served(c: &MidiControlFile, key: &str, ch: Option<u8>, map: &MidiMap, r: &mut Reporter) {
    let served = map
        .participants
        .iter()
        .any(|p| ch.is_none() || p.channel.is_none() || p.channel == ch);
    if !served {
        let (at, at_key) = match &c.channel {
            Some(v) => (v.span(), format!("{key}.channel")),
            None => (c.target.span(), format!("{key}.target")),
        };
        r.error(
            at,
            at_key,
            format!(
                "{} has no [[midi.participants]] entry; a \"participant\" control needs one (or target = \"conductor\")",
                shown(ch)
            ),
        );
    }
}

/// `range`: the values at 0 and at 127, inside the dimension's range (all of it by default).
fn control_range(c: &MidiControlFile, d: &MoodDimConfig, key: &str, r: &mut Reporter) -> [f32; 2] {
    match &c.range {
        Some(v) => {
            let [a, b] = v.get_ref().0;
            let inside = |x: f64| x.is_finite() && (d.min as f64..=d.max as f64).contains(&x);
            if !inside(a) || !inside(b) || a == b {
                r.error(
                    v.span(),
                    format!("{key}.range"),
                    format!(
                        "expected [value at 0, value at 127], two different values within {} to {} for \"{}\", found [{a}, {b}]",
                        d.min,
                        d.max,
                        c.dimension.get_ref()
                    ),
                );
            }
            [a as f32, b as f32]
        }
        None => [d.min, d.max],
    }
}

/// Each controller drives one dimension once per port, channel and target.
fn check_unique_control(
    route: &ControlRoute,
    c: &MidiControlFile,
    key: &str,
    map: &MidiMap,
    r: &mut Reporter,
) {
    let (cc, ch) = (route.cc, route.channel);
    if let Some(j) = map.controls.iter().position(|o| {
        (o.port.as_deref(), o.channel, o.cc, o.dim, o.target)
            == (
                route.port.as_deref(),
                route.channel,
                route.cc,
                route.dim,
                route.target,
            )
    }) {
        r.error(
            c.cc.span(),
            format!("{key}.cc"),
            format!(
                "controller {cc} on {} already drives \"{}\" by midi.controls[{j}]; expected each mapping once",
                shown(ch),
                c.dimension.get_ref()
            ),
        );
    }
}

fn cue(
    c: &MidiCueFile,
    key: &str,
    map: &MidiMap,
    f: &MidiFile,
    defined: &Defined,
    r: &mut Reporter,
) -> Option<CueRoute> {
    let trigger = match (&c.note, &c.program) {
        (Some(n), None) => Some((
            n,
            CueTrigger::Note(int_in(r, n, &format!("{key}.note"), 0, 127, "a note") as u8),
            format!("{key}.note"),
        )),
        (None, Some(p)) => Some((
            p,
            CueTrigger::Program(int_in(r, p, &format!("{key}.program"), 0, 127, "a program") as u8),
            format!("{key}.program"),
        )),
        (Some(_), Some(p)) => {
            r.error(
                p.span(),
                format!("{key}.program"),
                "expected either note or program, not both",
            );
            None
        }
        (None, None) => {
            r.error(
                c.section.span(),
                key,
                "expected note = <0..127> or program = <0..127> on the conductor channel",
            );
            None
        }
    };
    let section = lookup(
        r,
        &c.section,
        &format!("{key}.section"),
        "section",
        defined.sections,
    );
    let (at, trigger, at_key) = trigger?;
    if f.conductor_channel.is_none() {
        r.error(
            at.span(),
            at_key.clone(),
            "cues are played on the conductor channel; expected midi.conductor_channel = <1..16>",
        );
    }
    if let Some(j) = map.cues.iter().position(|o| o.trigger == trigger) {
        r.error(
            at.span(),
            at_key,
            format!("this trigger already cues a section by midi.cues[{j}]; expected each once"),
        );
    }
    Some(CueRoute {
        trigger,
        section: section? as u16,
    })
}
