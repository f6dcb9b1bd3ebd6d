//! Every shipped patch plays from MIDI out of the box: a stream of MIDI bytes through the
//! real parser, the patch's `[midi]` mapping and the router joins participants with the
//! patch's archetypes, plays their notes at their pitches and moves the communal mood the
//! way the mapping says, measured on the rendered output. MIDI learn output pasted into
//! each shipped patch merges with its `[midi]` section and passes `tapestry check`.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use crate::common::measure::*;
use crate::common::*;
use tapestry::input::midi::{ControlTarget, MidiEvent, MidiLearn, MidiParser, MidiRouter};
use tapestry::{Command, MoodTarget, Patch};

const PORT: &str = "Keystation 49 MIDI 1";

/// Each shipped patch with the archetypes its channels 1, 2 and 3 play and the fifth and
/// third of its opening chord (played notes snap to the chord: these stay where they are).
struct Shipped {
    file: &'static str,
    channels: &'static [&'static str],
    fifth: u8,
    third: u8,
}

const SHIPPED: [Shipped; 3] = [
    Shipped {
        file: "minimal.toml",
        channels: &["pluck", "pad", "bass", "bell"],
        fifth: 67, // G4 over C major
        third: 76, // E5
    },
    Shipped {
        file: "kaleidoscope-nights.toml",
        channels: &[
            "dissent",
            "loom",
            "foundation",
            "prisms",
            "chorus",
            "stories",
            "warp",
            "static",
        ],
        fifth: 69, // A4 over D major (D lydian I)
        third: 78, // F#5
    },
    Shipped {
        file: "sleep-gathering.toml",
        channels: &[
            "cyrus",
            "hearth",
            "roots",
            "stars",
            "sleepers",
            "fireflies",
            "ancients",
            "gale",
        ],
        fifth: 69, // A4 over D minor (D dorian i)
        third: 77, // F5
    },
];

fn patches_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("patches")
}

/// Bytes through a parser and the router, into the commands the engine gets.
fn route(parser: &mut MidiParser, router: &mut MidiRouter, bytes: &[u8]) -> Vec<Command> {
    let mut out = Vec::new();
    parser.feed(bytes, &mut |e| router.route(PORT, e, &mut |c| out.push(c)));
    out
}

#[test]
fn every_shipped_patch_maps_its_channels_controllers_and_cues() {
    for s in &SHIPPED {
        let patch = patch(s.file);
        let map = patch.midi();
        assert_eq!(map.conductor_channel, Some(15), "{}: channel 16", s.file);
        let mut parser = MidiParser::new();
        let mut router = MidiRouter::new(map.clone());
        for (i, archetype) in s.channels.iter().enumerate() {
            let ch = i as u8;
            let got = route(
                &mut parser,
                &mut router,
                &[0x90 | ch, 60, 100, 0x80 | ch, 60, 0],
            );
            let id = 101 + i as u32;
            assert_eq!(
                got[0],
                Command::Join {
                    participant: id,
                    archetype: Some(crate::common::archetype(&patch, archetype))
                },
                "{}: channel {}",
                s.file,
                i + 1
            );
            assert!(
                matches!(got[1], Command::NoteOn { participant, pitch: 60, velocity: 100 } if participant == id),
                "{}: {got:?}",
                s.file
            );
            // expression, resonance and brightness move this participant's own mood
            for (cc, name) in [(11, "energy"), (71, "tension"), (74, "brightness")] {
                let got = route(&mut parser, &mut router, &[0xB0 | ch, cc, 127]);
                assert_eq!(
                    got,
                    [Command::Mood {
                        target: MoodTarget::Participant(id),
                        dim: dim(&patch, name),
                        value: 1.0,
                        ramp_secs: 0.0
                    }],
                    "{}: CC {cc} on channel {}",
                    s.file,
                    i + 1
                );
            }
        }
        // the conductor channel: communal mood and cues, never a participant
        for (cc, name) in [
            (1, "energy"),
            (11, "unity"),
            (71, "tension"),
            (74, "brightness"),
        ] {
            let got = route(&mut parser, &mut router, &[0xBF, cc, 0]);
            assert_eq!(
                got,
                [Command::Mood {
                    target: MoodTarget::Communal,
                    dim: dim(&patch, name),
                    value: 0.0,
                    ramp_secs: 0.0
                }],
                "{}: conductor CC {cc}",
                s.file
            );
        }
        for (i, section) in patch.sections.iter().enumerate() {
            let want = [Command::Cue { section: i as u16 }];
            let note = route(
                &mut parser,
                &mut router,
                &[0x9F, 36 + i as u8, 100, 0x8F, 36 + i as u8, 0],
            );
            assert_eq!(note, want, "{}: note {} cues {section}", s.file, 36 + i);
            let program = route(&mut parser, &mut router, &[0xCF, i as u8]);
            assert_eq!(program, want, "{}: program {i} cues {section}", s.file);
        }
    }
}

/// The MIDI a performer plays into a shipped patch, at seconds: a pad (channel 2) holds the
/// opening chord's fifth and the lead (channel 1) its third for 3 s; the conductor (channel
/// 16) sets unity to 0 (CC 11: the opening section stays, no transition moves on), energy
/// to 0.31 (the mod wheel at 40) and brightness to 0 (CC 74), and the two participants do
/// the same to their own moods (CC 11 and CC 74 on their channels: at unity 0 each voice
/// follows its owner's mood too). Their generated parts come back after a rest (by 11 s);
/// at 15 s the conductor's mod wheel and the participants' CC 11 take energy to 1, at 21 s
/// CC 74 takes brightness to 1.
fn performance_bytes(s: &Shipped) -> Vec<(f64, Vec<u8>)> {
    vec![
        (0.0, vec![0x91, s.fifth, 100]),
        (0.0, vec![0x90, s.third, 100]),
        (0.0, vec![0xBF, 11, 0, 1, 40, 74, 0]),
        (0.0, vec![0xB0, 11, 40, 74, 0, 0xB1, 11, 40, 74, 0]),
        (3.0, vec![0x81, s.fifth, 0, 0x80, s.third, 0]),
        (15.0, vec![0xBF, 1, 127, 0xB0, 11, 127, 0xB1, 11, 127]),
        (21.0, vec![0xBF, 74, 127, 0xB0, 74, 127, 0xB1, 74, 127]),
    ]
}

fn render_midi(patch: &Patch, bytes: &[(f64, Vec<u8>)], secs: f64) -> Vec<f32> {
    let mut parser = MidiParser::new();
    let mut router = MidiRouter::new(patch.midi().clone());
    let mut script = Script::default();
    for (at, chunk) in bytes {
        for c in route(&mut parser, &mut router, chunk) {
            script = script.at(*at, c);
        }
    }
    let perf = script.performance(secs);
    render_blocks(patch, &perf, 512, None)
}

/// Share of the strongest pitch class and which it is.
fn strongest_class(x: &[f32]) -> (u8, f32) {
    let c = chroma(&mono(x), SR as f32);
    let (i, v) = c
        .iter()
        .enumerate()
        .fold((0, 0.0f32), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    (i as u8, v)
}

#[test]
fn midi_bytes_play_every_shipped_patch_at_their_pitches_and_move_its_mood() {
    for s in &SHIPPED {
        let patch = patch(s.file);
        let out = render_midi(&patch, &performance_bytes(s), 27.0);
        assert!(all_finite(&out), "{}", s.file);
        let held = segment(&out, SR, 0.3, 2.8);
        let c = chroma(&mono(held), SR as f32);
        let played = pitch_class_share(&c, &[s.fifth % 12, s.third % 12]);
        let (top, top_share) = strongest_class(held);
        let low = segment(&out, SR, 11.0, 15.0);
        let high = segment(&out, SR, 18.0, 21.0);
        let bright = segment(&out, SR, 24.0, 27.0);
        let each_second: Vec<String> = (0..27)
            .map(|t| {
                format!(
                    "{:.0}",
                    integrated_lufs(segment(&out, SR, t as f32, t as f32 + 1.0), SR)
                )
            })
            .collect();
        println!("{}: LUFS each second {}", s.file, each_second.join(" "));
        let (low_lufs, high_lufs) = (integrated_lufs(low, SR), integrated_lufs(high, SR));
        let (dark_hz, bright_hz) = (
            spectral_centroid_hz(&mono(high), SR as f32),
            spectral_centroid_hz(&mono(bright), SR as f32),
        );
        println!(
            "{}: held notes' classes {played:.2} of the chroma (strongest {top}, {top_share:.2}); \
             energy 0.31 → 1: {low_lufs:.1} → {high_lufs:.1} LUFS; brightness 0 → 1: centroid \
             {dark_hz:.0} → {bright_hz:.0} Hz",
            s.file
        );
        assert!(
            played >= 0.6 && (top == s.fifth % 12 || top == s.third % 12),
            "{}: the held notes' pitch classes hold {played:.2} of the chroma, strongest class {top}",
            s.file
        );
        assert!(
            low_lufs > -40.0 && high_lufs - low_lufs >= 6.0,
            "{}: energy 0.31 → 1 by the mod wheel on channel 16: {low_lufs:.1} → {high_lufs:.1} LUFS",
            s.file
        );
        assert!(
            bright_hz >= 1.25 * dark_hz,
            "{}: brightness 0 → 1 by CC 74 on channel 16: centroid {dark_hz:.0} → {bright_hz:.0} Hz",
            s.file
        );
    }
}

// ---------------------------------------------------------------------------------------
// MIDI learn merged into the shipped patches

fn note_on(channel: u8, key: u8) -> MidiEvent {
    MidiEvent::NoteOn {
        channel,
        key,
        velocity: 100,
    }
}

fn cc(channel: u8, controller: u8, value: u8) -> MidiEvent {
    MidiEvent::ControlChange {
        channel,
        controller,
        value,
    }
}

/// What a performer plays in learn mode on a patch with a full `[midi]` section: mapped
/// channels, controllers, cue notes and programs again, and new ones.
fn learn_session() -> Vec<MidiEvent> {
    vec![
        note_on(0, 60),  // channel 1: mapped
        note_on(8, 62),  // channel 9: new participant
        note_on(15, 36), // conductor: a mapped cue
        note_on(15, 50), // conductor: an unmapped note, a cue to name
        cc(0, 74, 10),   // mapped participant brightness
        cc(0, 20, 30),   // channel 1: new controller → its participant
        cc(0, 20, 90),
        cc(8, 1, 64),  // the mod wheel on the new participant's channel: left to vibrato
        cc(8, 74, 5),  // channel 9: mapped (any channel) participant brightness
        cc(15, 1, 64), // conductor energy: mapped
        cc(15, 21, 100), // conductor channel: new controller → the conductor
        cc(11, 7, 64), // channel 12, no participant → the conductor
        MidiEvent::ProgramChange {
            channel: 15,
            program: 0,
        }, // mapped cue
        MidiEvent::ProgramChange {
            channel: 15,
            program: 9,
        }, // unmapped
    ]
}

#[test]
fn learn_output_pasted_into_each_shipped_patch_merges_and_passes_check() {
    for s in &SHIPPED {
        let path = patches_dir().join(s.file);
        let text = std::fs::read_to_string(&path).unwrap();
        let patch = Patch::parse(&path, &text).unwrap();
        let mut learn = MidiLearn::for_map(patch.midi());
        for e in learn_session() {
            learn.observe(PORT, e);
        }
        let lines = learn.mapping_lines();
        let merged = format!("{text}\n{lines}");
        let file = temp_file("shipped-midi", s.file);
        std::fs::write(&file, &merged).unwrap();
        let out = Process::new(env!("CARGO_BIN_EXE_tapestry"))
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: check refused the merged patch:\n{}\n--- learned:\n{lines}",
            s.file,
            String::from_utf8_lossy(&out.stderr)
        );
        let merged = Patch::parse(&file, &merged).unwrap();
        let (before, after) = (patch.midi(), merged.midi());
        // one new participant, on channel 9, with an id above the patch's
        let new: Vec<_> = after.participants[before.participants.len()..]
            .iter()
            .map(|p| (p.channel, p.participant))
            .collect();
        let next = 101 + s.channels.len() as u32;
        assert_eq!(new, [(Some(8), next)], "{}:\n{lines}", s.file);
        assert!(
            after.participants.iter().all(|p| p.channel != Some(15)),
            "{}: the conductor channel became a participant:\n{lines}",
            s.file
        );
        let new: Vec<_> = after.controls[before.controls.len()..]
            .iter()
            .map(|c| (c.channel, c.cc, c.target))
            .collect();
        assert_eq!(
            new,
            [
                (Some(0), 20, ControlTarget::Participant),
                (Some(15), 21, ControlTarget::Conductor),
                (Some(11), 7, ControlTarget::Conductor),
            ],
            "{}:\n{lines}",
            s.file
        );
        assert_eq!(after.cues, before.cues, "{}: cues stay commented", s.file);
        assert!(
            lines.contains("# note = 50") && lines.contains("# program = 9"),
            "{lines}"
        );
        assert!(
            !lines.contains("# note = 36") && !lines.contains("program = 0"),
            "{lines}"
        );
        assert!(lines.contains("moved over 30..90"), "{lines}");
    }
}
