//! MIDI input: the patch's `[midi]` section (valid and malformed, every problem located by
//! line, column and key), the router from MIDI events to engine commands, MIDI learn, and
//! bytes played through an engine.

use std::path::Path;

use tapestry::input::midi::{
    ControlTarget, CueTrigger, MidiEvent, MidiLearn, MidiMap, MidiParser, MidiRouter, ModWheel,
};
use tapestry::{Command, Diagnostics, Engine, Expression, MoodTarget, Notice, Patch};

/// A small valid patch with two sections (no `[midi]`).
const BASE: &str = r#"version = 1

[piece]
name = "MIDI"
seed = 1

[score]
key = "C"
tempo_bpm = 96

[[score.sections]]
name = "main"
chords = ["I", "vi", "IV", "V"]

[[score.sections]]
name = "storm"
chords = ["i", "bVI"]

[mood.energy]
default = 0.5

[mood.tension]
default = 0.2

[mood.brightness]
range = [-1.0, 1.0]
default = 0.0

[mood.unity]
default = 0.6

[[archetypes]]
id = "pad"
timbre = "pad"
register = [52, 72]

[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 84]
"#;

/// A full `[midi]` section: controls[0] conductor energy on channel 16, [1] brightness of
/// any channel's participant, [2] tension of channel 1's participant with an inverted range.
const MIDI: &str = r#"
[midi]
ports = ["*"]
virtual_port = "tapestry"
conductor_channel = 16
pitch_bend_cents = 200
mod_wheel = "vibrato"

[[midi.participants]]
channel = 1
participant = 1
archetype = "pad"

[[midi.participants]]
channel = 2
participant = 2

[[midi.participants]]
port = "Launchkey"
participant = 3
archetype = "pluck"

[[midi.controls]]
channel = 16
cc = 1
dimension = "energy"
range = [0.0, 1.0]
target = "conductor"

[[midi.controls]]
cc = 74
dimension = "brightness"
target = "participant"

[[midi.controls]]
channel = 1
cc = 11
dimension = "tension"
range = [0.8, 0.2]
target = "participant"

[[midi.cues]]
note = 36
section = "storm"

[[midi.cues]]
program = 0
section = "main"
"#;

const FILE: &str = "patches/midi.toml";

fn full() -> String {
    format!("{BASE}{MIDI}")
}

fn parse(text: &str) -> Result<Patch, Diagnostics> {
    Patch::parse(Path::new(FILE), text)
}

fn full_patch() -> Patch {
    parse(&full()).unwrap_or_else(|d| panic!("the full [midi] patch must be valid:\n{d}"))
}

// ---------------------------------------------------------------------------------------
// the section parses

#[test]
fn a_full_midi_section_parses() {
    let patch = full_patch();
    let names = patch.names();
    let m = patch.midi();
    assert_eq!(m.ports, ["*"]);
    assert_eq!(m.virtual_port, "tapestry");
    assert_eq!(m.conductor_channel, Some(15));
    assert_eq!(m.pitch_bend_cents, 200.0);
    assert_eq!(m.mod_wheel, Some(ModWheel::Vibrato));
    let p: Vec<_> = m
        .participants
        .iter()
        .map(|p| (p.port.as_deref(), p.channel, p.participant, p.archetype))
        .collect();
    assert_eq!(
        p,
        [
            (None, Some(0), 1, names.archetype("pad")),
            (None, Some(1), 2, None),
            (Some("Launchkey"), None, 3, names.archetype("pluck")),
        ]
    );
    assert_eq!(m.controls.len(), 3);
    let c = &m.controls[1];
    assert_eq!(
        (c.channel, c.cc, Some(c.dim), c.range, c.target),
        (
            None,
            74,
            names.dim("brightness"),
            [-1.0, 1.0],
            ControlTarget::Participant
        ),
        "the range defaults to the dimension's"
    );
    assert_eq!(m.controls[2].range, [0.8, 0.2]);
    let cues: Vec<_> = m.cues.iter().map(|c| (c.trigger, c.section)).collect();
    assert_eq!(
        cues,
        [
            (CueTrigger::Note(36), names.section("storm").unwrap()),
            (CueTrigger::Program(0), names.section("main").unwrap()),
        ]
    );
}

/// The `[midi]` example in docs/formats.md is a valid section.
#[test]
fn the_documented_example_parses() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/formats.md"))
            .unwrap();
    let start = docs
        .find("```toml\n[midi]\n")
        .expect("a [midi] example in docs/formats.md");
    let block = &docs[start + "```toml\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let text = format!("{BASE}\n{}", block.replace("\"dreamer-pad\"", "\"pad\""));
    let patch = parse(&text).unwrap_or_else(|d| panic!("{d}"));
    let m = patch.midi();
    assert_eq!(
        (m.participants.len(), m.controls.len(), m.cues.len()),
        (1, 1, 1)
    );
    assert_eq!(m.participants[0].port.as_deref(), Some("Launchkey"));
}

#[test]
fn patches_without_midi_get_the_defaults() {
    let patch = parse(BASE).unwrap();
    assert_eq!(patch.midi(), &MidiMap::default());
    assert_eq!(patch.midi().ports, ["*"]);
    assert_eq!(patch.midi().virtual_port, "tapestry");
    // the shipped patches all map MIDI: see `shipped_midi`
    // an empty [midi] table is the defaults too
    assert_eq!(
        parse(&format!("{BASE}\n[midi]\n")).unwrap().midi(),
        &MidiMap::default()
    );
}

// ---------------------------------------------------------------------------------------
// malformed sections: each located at the offending token (positions computed from the text)

fn edit(base: &str, from: &str, to: &str) -> String {
    assert_eq!(
        base.matches(from).count(),
        1,
        "anchor {from:?} must be unique"
    );
    base.replacen(from, to, 1)
}

fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, column)
}

/// The n-th (from 0) occurrence of `token` in `text`.
fn nth(text: &str, token: &str, n: usize) -> (usize, usize) {
    let (offset, _) = text
        .match_indices(token)
        .nth(n)
        .unwrap_or_else(|| panic!("{token:?} has no occurrence #{n}"));
    line_col(text, offset)
}

struct Case {
    name: &'static str,
    text: String,
    /// Token and which occurrence of it (from 0) the diagnostic points at.
    at: (&'static str, usize),
    key: &'static str,
    message: &'static [&'static str],
}

fn case(
    name: &'static str,
    text: String,
    at: (&'static str, usize),
    key: &'static str,
    message: &'static [&'static str],
) -> Case {
    Case {
        name,
        text,
        at,
        key,
        message,
    }
}

fn malformed_cases() -> Vec<Case> {
    let f = full();
    vec![
        case(
            "channel out of range",
            edit(
                &f,
                "channel = 1\nparticipant = 1",
                "channel = 17\nparticipant = 1",
            ),
            ("17", 0),
            "midi.participants[0].channel",
            &["expected a MIDI channel from 1 to 16", "found 17"],
        ),
        case(
            "conductor channel out of range",
            edit(&f, "conductor_channel = 16", "conductor_channel = 0"),
            ("0\npitch_bend_cents", 0),
            "midi.conductor_channel",
            &["expected a MIDI channel from 1 to 16", "found 0"],
        ),
        case(
            "unknown dimension",
            edit(&f, "dimension = \"tension\"", "dimension = \"anger\""),
            ("\"anger\"", 0),
            "midi.controls[2].dimension",
            &[
                "unknown mood dimension \"anger\"",
                "expected one of",
                "\"unity\"",
            ],
        ),
        case(
            "unknown section",
            edit(&f, "section = \"storm\"", "section = \"finale\""),
            ("\"finale\"", 0),
            "midi.cues[0].section",
            &["unknown section \"finale\"", "\"main\", \"storm\""],
        ),
        case(
            "unknown archetype",
            edit(
                &f,
                "archetype = \"pluck\"\n\n[[midi.controls]]",
                "archetype = \"harp\"\n\n[[midi.controls]]",
            ),
            ("\"harp\"", 0),
            "midi.participants[2].archetype",
            &["unknown archetype \"harp\"", "\"pad\", \"pluck\""],
        ),
        case(
            "duplicate channel mapping",
            edit(
                &f,
                "channel = 2\nparticipant = 2",
                "channel = 1\nparticipant = 2",
            ),
            ("1\nparticipant = 2", 0),
            "midi.participants[1].channel",
            &[
                "channel 1 is already mapped to participant 1",
                "midi.participants[0]",
            ],
        ),
        case(
            "controller out of range",
            edit(&f, "cc = 74", "cc = 120"),
            ("120", 0),
            "midi.controls[1].cc",
            &["expected a controller number from 0 to 119", "found 120"],
        ),
        case(
            "range outside the dimension's",
            edit(&f, "range = [0.8, 0.2]", "range = [0.8, 1.5]"),
            ("[0.8, 1.5]", 0),
            "midi.controls[2].range",
            &["within 0 to 1 for \"tension\"", "found [0.8, 1.5]"],
        ),
        case(
            "unknown target",
            edit(&f, "target = \"conductor\"", "target = \"room\""),
            ("\"room\"", 0),
            "midi.controls[0].target",
            &[
                "unknown target \"room\"",
                "\"conductor\"",
                "\"participant\"",
            ],
        ),
        case(
            "participant control on a channel with no participant",
            edit(
                &edit(&f, "port = \"Launchkey\"", "channel = 3"),
                "channel = 1\ncc = 11",
                "channel = 5\ncc = 11",
            ),
            ("5\ncc = 11", 0),
            "midi.controls[2].channel",
            &["channel 5 has no [[midi.participants]] entry"],
        ),
        case(
            "participant on the conductor channel",
            edit(
                &f,
                "channel = 2\nparticipant = 2",
                "channel = 16\nparticipant = 2",
            ),
            ("16\nparticipant = 2", 0),
            "midi.participants[1].channel",
            &["channel 16 is the conductor channel"],
        ),
        case(
            "participant 0",
            edit(&f, "participant = 2", "participant = 0"),
            ("0\n\n[[midi.participants]]", 0),
            "midi.participants[1].participant",
            &[
                "expected a participant id (0 is the conductor) from 1",
                "found 0",
            ],
        ),
        case(
            "participant with neither channel nor port",
            edit(&f, "channel = 2\nparticipant = 2", "participant = 2"),
            ("2\n\n[[midi.participants]]\nport", 0),
            "midi.participants[1]",
            &["expected a channel, a port or both"],
        ),
        case(
            "cues without a conductor channel",
            edit(&f, "conductor_channel = 16\n", ""),
            ("36", 0),
            "midi.cues[0].note",
            &["expected midi.conductor_channel"],
        ),
        case(
            "cue with both note and program",
            edit(&f, "note = 36\n", "note = 36\nprogram = 4\n"),
            ("4\nsection = \"storm\"", 0),
            "midi.cues[0].program",
            &["expected either note or program, not both"],
        ),
        case(
            "unknown mod wheel use",
            edit(&f, "mod_wheel = \"vibrato\"", "mod_wheel = \"tremolo\""),
            ("\"tremolo\"", 0),
            "midi.mod_wheel",
            &[
                "unknown mod wheel use \"tremolo\"",
                "\"vibrato\", \"brightness\"",
            ],
        ),
        case(
            "pitch bend range too wide",
            edit(&f, "pitch_bend_cents = 200", "pitch_bend_cents = 5000"),
            ("5000", 0),
            "midi.pitch_bend_cents",
            &["expected a number from 0 to 2400 cents", "found 5000"],
        ),
        case(
            "no ports",
            edit(&f, "ports = [\"*\"]", "ports = []"),
            ("[]", 0),
            "midi.ports",
            &["expected at least one port name substring"],
        ),
        case(
            "unknown key in [[midi.controls]]",
            edit(&f, "cc = 74\n", "cc = 74\ncurve = \"log\"\n"),
            ("curve", 0),
            "midi.controls[1].curve",
            &["unknown field `curve`", "expected one of", "`dimension`"],
        ),
        case(
            "unknown key in [midi]",
            edit(
                &f,
                "virtual_port = \"tapestry\"\n",
                "virtual_port = \"tapestry\"\nclock = true\n",
            ),
            ("clock", 0),
            "midi.clock",
            &["unknown field `clock`", "`conductor_channel`"],
        ),
        case(
            "channel of the wrong type",
            edit(&f, "channel = 2\n", "channel = \"two\"\n"),
            ("\"two\"", 0),
            "midi.participants[1].channel",
            &["invalid type: string \"two\"", "expected i64"],
        ),
    ]
}

/// `key` is `expected`, or `expected` followed by a serde-internal component (a wrong type
/// in a `Spanned` value is reported with `.$__serde_spanned_private_value` after the key).
fn key_is(key: &str, expected: &str) -> bool {
    key == expected
        || key
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with(".$__"))
}

#[test]
fn malformed_midi_sections_are_located() {
    let cases = malformed_cases();
    let mut failures = Vec::new();
    for c in &cases {
        let outcome = std::panic::catch_unwind(|| parse(&c.text));
        let diags = match outcome {
            Err(_) => {
                failures.push(format!("{}: panicked", c.name));
                continue;
            }
            Ok(Ok(_)) => {
                failures.push(format!("{}: parsed without error", c.name));
                continue;
            }
            Ok(Err(Diagnostics(d))) => d,
        };
        let all: String = diags.iter().map(|d| format!("\n    {d}")).collect();
        let Some(d) = diags.iter().find(|d| key_is(&d.key, c.key)) else {
            failures.push(format!(
                "{}: no diagnostic with key {:?}:{all}",
                c.name, c.key
            ));
            continue;
        };
        let (line, column) = nth(&c.text, c.at.0, c.at.1);
        if (d.line, d.column) != (line, column) {
            failures.push(format!(
                "{}: at {}:{}, expected {line}:{column}:{all}",
                c.name, d.line, d.column
            ));
        }
        if d.file != Path::new(FILE) {
            failures.push(format!("{}: file {:?}", c.name, d.file));
        }
        for m in c.message {
            if !d.message.contains(m) {
                failures.push(format!("{}: message lacks {m:?}:{all}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// the router

fn routed(router: &mut MidiRouter, port: &str, event: MidiEvent) -> Vec<Command> {
    let mut out = Vec::new();
    router.route(port, event, &mut |c| out.push(c));
    out
}

fn note_on(channel: u8, key: u8, velocity: u8) -> MidiEvent {
    MidiEvent::NoteOn {
        channel,
        key,
        velocity,
    }
}

fn note_off(channel: u8, key: u8) -> MidiEvent {
    MidiEvent::NoteOff {
        channel,
        key,
        velocity: 0,
    }
}

fn cc(channel: u8, controller: u8, value: u8) -> MidiEvent {
    MidiEvent::ControlChange {
        channel,
        controller,
        value,
    }
}

const PORT: &str = "USB MIDI Keyboard";

#[test]
fn notes_join_their_participant_and_play_its_voice() {
    let patch = full_patch();
    let names = patch.names();
    let mut router = MidiRouter::new(patch.midi().clone());
    assert_eq!(
        routed(&mut router, PORT, note_on(0, 60, 100)),
        [
            Command::Join {
                participant: 1,
                archetype: names.archetype("pad")
            },
            Command::NoteOn {
                participant: 1,
                pitch: 60,
                velocity: 100
            },
        ],
        "the first note joins with the route's archetype"
    );
    assert_eq!(
        routed(&mut router, PORT, note_on(0, 64, 90)),
        [Command::NoteOn {
            participant: 1,
            pitch: 64,
            velocity: 90
        }]
    );
    assert_eq!(
        routed(&mut router, PORT, note_off(0, 60)),
        [Command::NoteOff {
            participant: 1,
            pitch: 60
        }]
    );
    // no archetype: the engine picks one
    assert_eq!(
        routed(&mut router, PORT, note_on(1, 50, 70))[0],
        Command::Join {
            participant: 2,
            archetype: None
        }
    );
    // a note-off before any note-on does not join
    assert_eq!(
        routed(&mut router, "Launchkey Mini MK3", note_off(4, 50)),
        [Command::NoteOff {
            participant: 3,
            pitch: 50
        }]
    );
    // a port route: any channel of that port
    assert_eq!(
        routed(&mut router, "Launchkey Mini MK3", note_on(4, 72, 80)),
        [
            Command::Join {
                participant: 3,
                archetype: names.archetype("pluck")
            },
            Command::NoteOn {
                participant: 3,
                pitch: 72,
                velocity: 80
            },
        ]
    );
    // an unmapped channel of another port
    assert!(routed(&mut router, PORT, note_on(4, 72, 80)).is_empty());
    // forgetting a participant (it left) joins it again on its next note
    router.forget(1);
    assert_eq!(routed(&mut router, PORT, note_on(0, 60, 100)).len(), 2);
    let s = router.stats();
    assert_eq!((s.routed, s.joins, s.ignored), (7, 4, 1));
    assert_eq!(s.unmapped_notes, 1, "counted by kind");
}

#[test]
fn controls_set_participant_and_communal_mood() {
    let patch = full_patch();
    let names = patch.names();
    let mut router = MidiRouter::new(patch.midi().clone());
    let mood = |target, dim: &str, value| Command::Mood {
        target,
        dim: names.dim(dim).unwrap(),
        value,
        ramp_secs: 0.0,
    };
    // conductor channel, CC 1 → communal energy
    assert_eq!(
        routed(&mut router, PORT, cc(15, 1, 127)),
        [mood(MoodTarget::Communal, "energy", 1.0)]
    );
    // CC 74 on any participant's channel → that participant's brightness, over [-1, 1]
    assert_eq!(
        routed(&mut router, PORT, cc(1, 74, 0)),
        [mood(MoodTarget::Participant(2), "brightness", -1.0)]
    );
    assert_eq!(
        routed(&mut router, "Launchkey", cc(9, 74, 127)),
        [mood(MoodTarget::Participant(3), "brightness", 1.0)]
    );
    // ...but not on a channel without a participant
    assert!(routed(&mut router, PORT, cc(9, 74, 127)).is_empty());
    // channel 1's CC 11 → participant 1's tension, inverted range
    assert_eq!(
        routed(&mut router, PORT, cc(0, 11, 127)),
        [mood(MoodTarget::Participant(1), "tension", 0.2)]
    );
    let Command::Mood { value, .. } = routed(&mut router, PORT, cc(0, 11, 64))[0] else {
        panic!("expected a mood command");
    };
    assert!((value - 0.5).abs() < 0.01, "{value}");
    // unmapped controllers
    assert!(routed(&mut router, PORT, cc(0, 7, 100)).is_empty());
    assert!(routed(&mut router, PORT, cc(15, 7, 100)).is_empty());
    let s = router.stats();
    assert_eq!((s.routed, s.ignored), (5, 3));
    assert_eq!((s.unmapped_controllers, s.unmapped_notes), (3, 0));
}

#[test]
fn the_conductor_channel_cues_sections() {
    let patch = full_patch();
    let names = patch.names();
    let mut router = MidiRouter::new(patch.midi().clone());
    let storm = names.section("storm").unwrap();
    let main = names.section("main").unwrap();
    assert_eq!(
        routed(&mut router, PORT, note_on(15, 36, 100)),
        [Command::Cue { section: storm }]
    );
    // the cue note's release is taken quietly
    assert!(routed(&mut router, PORT, note_off(15, 36)).is_empty());
    let program = |channel, program| MidiEvent::ProgramChange { channel, program };
    assert_eq!(
        routed(&mut router, PORT, program(15, 0)),
        [Command::Cue { section: main }]
    );
    // other notes and programs on the conductor channel, programs elsewhere: ignored; the
    // conductor channel never plays a voice
    assert!(routed(&mut router, PORT, note_on(15, 37, 100)).is_empty());
    assert!(routed(&mut router, PORT, program(15, 1)).is_empty());
    assert!(routed(&mut router, PORT, program(0, 0)).is_empty());
    let s = router.stats();
    assert_eq!((s.routed, s.ignored, s.joins), (2, 3, 0));
    assert_eq!((s.unmapped_notes, s.unmapped_other), (1, 2), "by kind");
}

#[test]
fn pitch_bend_and_mod_wheel_move_the_channels_participant() {
    let patch = full_patch();
    let pad = patch.names().archetype("pad");
    let mut router = MidiRouter::new(patch.midi().clone());
    let bend = |channel, value| MidiEvent::PitchBend { channel, value };
    let expr = |kind, value| Command::Expression {
        participant: 1,
        kind,
        value,
    };
    // before the first note the wheels are only remembered ...
    assert!(routed(&mut router, PORT, bend(0, 4096)).is_empty());
    assert!(routed(&mut router, PORT, cc(0, 1, 64)).is_empty());
    // ... and sent with the join, before the note
    assert_eq!(
        routed(&mut router, PORT, note_on(0, 60, 100)),
        [
            Command::Join {
                participant: 1,
                archetype: pad
            },
            expr(Expression::PitchBend, 2.0 * 4096.0 / 8191.0),
            expr(Expression::Vibrato, 64.0 / 127.0),
            Command::NoteOn {
                participant: 1,
                pitch: 60,
                velocity: 100
            },
        ]
    );
    // 14-bit bends reach ±pitch_bend_cents at both extremes
    for (value, semitones) in [(8191, 2.0), (-8192, -2.0), (0, 0.0)] {
        assert_eq!(
            routed(&mut router, PORT, bend(0, value)),
            [expr(Expression::PitchBend, semitones)]
        );
    }
    // the mod wheel: 7 bits until the controller sends CC 33, then 14; a new CC 1 clears
    // the fine part
    for (controller, value, depth) in [
        (1, 127, 1.0),
        (33, 127, 1.0),
        (1, 64, 8192.0 / 16383.0),
        (33, 64, 8256.0 / 16383.0),
    ] {
        assert_eq!(
            routed(&mut router, PORT, cc(0, controller, value)),
            [expr(Expression::Vibrato, depth)],
            "CC {controller} = {value}"
        );
    }
    // CC 1 on the conductor channel is mapped to energy, not the mod wheel; a bend on a
    // channel without a participant does nothing
    assert!(matches!(
        routed(&mut router, PORT, cc(15, 1, 64))[..],
        [Command::Mood { .. }]
    ));
    assert!(routed(&mut router, PORT, bend(9, 100)).is_empty());
    let s = router.stats();
    assert_eq!(
        (s.pitch_bends, s.mod_wheel, s.ignored, s.routed),
        (4, 5, 1, 9)
    );
    // "reset all controllers" puts the wheels back to rest
    routed(&mut router, PORT, bend(0, 1000));
    assert_eq!(
        routed(&mut router, PORT, cc(0, 121, 0)),
        [
            expr(Expression::PitchBend, 0.0),
            expr(Expression::Vibrato, 0.0)
        ]
    );
    assert!(routed(&mut router, PORT, cc(0, 121, 0)).is_empty());

    // a control mapping CC 1 on every channel takes the wheel, and its fine part, for mood
    let text = edit(&full(), "channel = 16\ncc = 1\n", "cc = 1\n");
    let mut router = MidiRouter::new(parse(&text).unwrap().midi().clone());
    routed(&mut router, PORT, note_on(0, 60, 100));
    assert!(matches!(
        routed(&mut router, PORT, cc(0, 1, 64))[..],
        [Command::Mood { .. }]
    ));
    assert!(routed(&mut router, PORT, cc(0, 33, 64)).is_empty());
    assert_eq!(router.stats().mod_wheel, 0);

    // mod_wheel = "brightness", "off" and unset (vibrato); a wider bend range
    let variants = [
        ("mod_wheel = \"brightness\"\n", Some(Expression::Brightness)),
        ("mod_wheel = \"off\"\n", None),
        ("", Some(Expression::Vibrato)),
    ];
    for (line, kind) in variants {
        let text = edit(&full(), "mod_wheel = \"vibrato\"\n", line);
        let text = edit(&text, "pitch_bend_cents = 200", "pitch_bend_cents = 1200");
        let mut router = MidiRouter::new(parse(&text).unwrap().midi().clone());
        routed(&mut router, PORT, note_on(0, 60, 100));
        let got = routed(&mut router, PORT, cc(0, 1, 127));
        match kind {
            Some(kind) => assert_eq!(got, [expr(kind, 1.0)], "{line:?}"),
            None => assert!(got.is_empty(), "{line:?}"),
        }
        assert_eq!(
            routed(&mut router, PORT, bend(0, 8191)),
            [expr(Expression::PitchBend, 12.0)]
        );
    }
}

/// Raw bytes through the parser, the router and a controller into a running engine.
#[test]
fn midi_bytes_play_through_an_engine() {
    let patch = full_patch();
    let (mut engine, controller) = Engine::new(patch.config(48_000, None), patch.names());
    let mut parser = MidiParser::new();
    let mut router = MidiRouter::new(patch.midi().clone());
    let bytes = [
        0x90, 60, 100, 0xF8, 64, 100, // two notes by running status, a clock between
        0x91, 48, 90, // participant 2
        0xBF, 1, 127, // conductor energy
        0x9F, 36, 100, // cue "storm"
        0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7, // SysEx (GM on)
        0x80, 60, 0, // note off
    ];
    parser.feed(&bytes, &mut |e| {
        router.route(PORT, e, &mut |c| controller.command(c).unwrap())
    });
    let mut block = vec![0.0f32; 2 * 512];
    // a bar at 96 BPM is 2.5 s: run past the next bar line
    for _ in 0..300 {
        engine.process(&mut block);
        assert!(block.iter().all(|x| x.is_finite()));
    }
    let status = controller.status();
    assert_eq!(
        status
            .participants
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let energy = patch.names().dim("energy").unwrap() as usize;
    assert!(status.mood(energy) > 0.9, "{}", status.mood(energy));
    let mut changed = false;
    while let Some(n) = controller.try_notice() {
        match n {
            Notice::Refused {
                command, reason, ..
            } => panic!("refused {command:?}: {reason}"),
            Notice::SectionChanged { section, .. } => {
                changed |= Some(section) == patch.names().section("storm")
            }
            Notice::Joined { .. } | Notice::Left { .. } => {}
        }
    }
    assert!(changed, "the cue moved the score to the storm");
    assert_eq!(parser.stats().sysex, 1);
    assert_eq!(parser.stats().malformed, 0);
}

// ---------------------------------------------------------------------------------------
// MIDI learn

#[test]
fn learn_output_parses_back_as_a_midi_section() {
    let mut learn = MidiLearn::new();
    assert!(learn.is_empty());
    // nothing seen: a comment, which parses too
    parse(&format!("{BASE}\n{}", learn.mapping_lines())).unwrap();
    for e in [
        note_on(0, 60, 100),
        cc(0, 74, 10),
        cc(0, 74, 100),
        note_on(2, 40, 90),
        note_on(0, 62, 100),
        cc(4, 7, 64),
        cc(4, 121, 0), // reset all controllers: channel mode, left out
        MidiEvent::ProgramChange {
            channel: 15,
            program: 3,
        },
        MidiEvent::Clock,
    ] {
        learn.observe(PORT, e);
    }
    let lines = learn.mapping_lines();
    assert!(lines.contains("moved over 10..100"), "{lines}");
    assert!(lines.contains("# program = 3"), "{lines}");
    assert!(!lines.contains("cc = 121"), "{lines}");
    // pasted at the end of a patch without [midi], and after an existing [midi] table
    for text in [
        format!("{BASE}\n{lines}"),
        format!("{BASE}\n[midi]\nconductor_channel = 16\n\n{lines}"),
    ] {
        let patch = parse(&text).unwrap_or_else(|d| panic!("{d}\n---\n{text}"));
        let m = patch.midi();
        let p: Vec<_> = m
            .participants
            .iter()
            .map(|p| (p.channel, p.participant))
            .collect();
        assert_eq!(p, [(Some(0), 1), (Some(2), 2)]);
        let c: Vec<_> = m
            .controls
            .iter()
            .map(|c| (c.channel, c.cc, c.target))
            .collect();
        assert_eq!(
            c,
            [
                (Some(0), 74, ControlTarget::Participant),
                (Some(4), 7, ControlTarget::Conductor)
            ]
        );
    }
}
