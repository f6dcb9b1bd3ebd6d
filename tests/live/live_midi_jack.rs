//! Live MIDI on a real audio server: `tapestry play` on a private JACK server (dummy backend,
//! real time) driven by `jack_midiseq` — a MIDI client nobody here wrote — both through a
//! port the patch's `[midi] ports` select (connected by tapestry's watcher after it appears)
//! and through tapestry's virtual port (connected with `jack_connect`); a controller on the
//! conductor channel comes from a midir output port. The session recording must hold the
//! join, the notes and the mood change, the audio captured by `jack_rec` must have sound, and
//! MIDI learn must print lines for the controller moved that the patch does not map, and
//! they must merge into the patch.
//! Needs `--features jack` and jackd2.
#![cfg(feature = "jack")]

use crate::common;

use crate::common::jack::{Helper, JackServer};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::sleep;
use std::time::Duration;

use tapestry::control::{Command as EngineCommand, MoodTarget};
use tapestry::{Patch, Performance};

fn temp(name: &str) -> PathBuf {
    common::temp_file("live-midi", name)
}

const MIDI_SECTION: &str = r#"
[[archetypes]]
id = "keys"
timbre = "pad"
register = [48, 84]
free = false

[midi]
ports = ["Seq"]
virtual_port = "tapestry"
conductor_channel = 16

[[midi.participants]]
channel = 1
participant = 1
archetype = "keys"

[[midi.controls]]
channel = 16
cc = 7
dimension = "energy"
target = "conductor"
"#;

#[test]
fn midi_from_jack_clients_plays_participants_and_sets_the_mood() {
    let server = JackServer::start("tapestry-midi-test");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let minimal = common::patch_text_without_midi("minimal.toml");
    let patch_path = temp("midi.toml");
    std::fs::write(&patch_path, format!("{minimal}\n{MIDI_SECTION}")).unwrap();
    let recording = temp("midi-show.performance.toml");
    let capture = temp("midi-capture.wav");

    let play = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root)
        .arg("play")
        .arg(&patch_path)
        .args([
            "--host",
            "JACK",
            "--duration",
            "10",
            "--no-osc",
            "--midi-learn",
        ])
        .arg("--record")
        .arg(&recording)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut play = Helper(play);
    let (play_log, log_reader) = common::jack::read_log(&mut play.0);
    common::jack::wait_until_playing(&play_log);
    let virtual_port = server
        .wait_ports("tapestry's virtual MIDI port", |p| {
            p.contains("tapestry") && !p.starts_with("cpal")
        })
        .remove(0);
    let audio = server.wait_port_count("tapestry's audio ports", 2, |p| {
        p.starts_with("cpal_client") && p.contains(":out_")
    });
    assert!(audio.len() >= 2, "audio ports: {audio:?}");

    // a sequencer the patch's `ports = ["Seq"]` selects: the watcher must find and connect it
    let _seq = Helper(
        server
            .command("jack_midiseq")
            .args(["Seq", "24000", "0", "60", "8000", "12000", "64", "8000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jack_midiseq (jackd2)"),
    );
    // a second one, not selected, connected by hand to the virtual port
    let _virt = Helper(
        server
            .command("jack_midiseq")
            .args(["Virt", "24000", "6000", "67", "6000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jack_midiseq (jackd2)"),
    );
    let virt_out = server
        .wait_ports("the second sequencer's port", |p| p.starts_with("Virt:"))
        .remove(0);
    server.connect(&virt_out, &virtual_port);

    // a controller on the conductor channel, from a midir output port of our own
    let cc_sender = {
        use midir::os::unix::VirtualOutput;
        // SAFETY of set_var: this test binary has a single test; nothing else reads the
        // environment concurrently
        std::env::set_var("JACK_DEFAULT_SERVER", server.name());
        std::env::set_var("JACK_NO_START_SERVER", "1");
        let out = midir::MidiOutput::new("cc-sender").expect("a midir JACK client");
        out.create_virtual("cc").expect("a virtual output port")
    };
    let cc_port = server
        .wait_ports("the controller's port", |p| p.contains("cc-sender"))
        .remove(0);
    server.connect(&cc_port, &virtual_port);
    // midir's JACK backend hands a message to its own process callback, which a loaded CI
    // machine (hundreds of dummy-backend xruns a second) may run late; the controller is
    // sent several times (same value, so idempotent) and its client stays open until the
    // capture has finished, so no message is dropped by closing the client early
    let mut cc_sender = cc_sender;
    for _ in 0..8 {
        sleep(Duration::from_millis(250));
        cc_sender.send(&[0xBF, 7, 127]).unwrap(); // channel 16, CC 7, full
        cc_sender.send(&[0xBF, 20, 64]).unwrap(); // channel 16, CC 20: not mapped, learned
    }

    server.capture(&capture, 4, &audio[..2]).finish();
    cc_sender.close();

    let status = play.0.wait().unwrap();
    let mut learned = String::new();
    use std::io::Read;
    play.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut learned)
        .unwrap();
    log_reader.join().unwrap();
    let log = play_log.lock().unwrap().clone();
    println!("{log}\n{learned}");
    assert!(status.success(), "tapestry play failed: {log}");
    assert!(
        log.contains("listening to MIDI port \"Seq:"),
        "the watcher did not pick up the sequencer: {log}"
    );
    // MIDI learn merges into the patch's [midi]: the notes on channel 1 and CC 7 on channel
    // 16 are mapped already and not proposed again; CC 20 on the conductor channel is
    // learned for the conductor, and the lines pasted into the patch pass its checks
    assert!(
        learned.contains("mapped by the patch already")
            && !learned.contains("[[midi.participants]]")
            && !learned.contains("cc = 7\n"),
        "learn lines: {learned}"
    );
    assert!(
        learned.contains("channel = 16\ncc = 20\n"),
        "learn lines: {learned}"
    );
    let patch_text = std::fs::read_to_string(&patch_path).unwrap();
    let merged = Patch::parse(&patch_path, &format!("{patch_text}\n{learned}"))
        .unwrap_or_else(|d| panic!("learned lines do not merge: {d}\n{learned}"));
    let learned_control = merged.midi().controls.last().unwrap();
    assert_eq!(
        (
            learned_control.channel,
            learned_control.cc,
            learned_control.target
        ),
        (
            Some(15),
            20,
            tapestry::input::midi::ControlTarget::Conductor
        )
    );

    let patch = Patch::load(&patch_path).unwrap();
    let perf = Performance::load(&recording, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
    let energy = patch
        .names()
        .dims
        .iter()
        .position(|d| d == "energy")
        .unwrap() as u8;
    let keys = patch.names().archetypes.iter().position(|a| a == "keys");
    let commands: Vec<EngineCommand> = perf.commands.iter().map(|c| c.command).collect();
    let joins: Vec<_> = commands
        .iter()
        .filter(|c| matches!(c, EngineCommand::Join { participant: 1, .. }))
        .collect();
    assert_eq!(joins.len(), 1, "one join of participant 1: {commands:?}");
    if let EngineCommand::Join { archetype, .. } = joins[0] {
        assert_eq!(archetype.map(|a| a as usize), keys, "joined as \"keys\"");
    }
    let pitches: Vec<u8> = commands
        .iter()
        .filter_map(|c| match c {
            EngineCommand::NoteOn {
                participant: 1,
                pitch,
                ..
            } => Some(*pitch),
            _ => None,
        })
        .collect();
    println!("participant 1 played {pitches:?}");
    assert!(
        pitches.contains(&60),
        "notes from the watched port: {pitches:?}"
    );
    assert!(
        pitches.contains(&67),
        "notes from the virtual port: {pitches:?}"
    );
    assert!(
        commands.iter().any(|c| matches!(c,
            EngineCommand::Mood { target: MoodTarget::Communal, dim, value, .. }
                if *dim == energy && (*value - 1.0).abs() < 1e-6)),
        "the conductor's controller set energy to 1: {commands:?}"
    );

    let mut r = hound::WavReader::open(&capture).expect("capture file");
    let bits = r.spec().bits_per_sample;
    let scale = 1.0 / (1u64 << (bits - 1)) as f32;
    let samples: Vec<f32> = r
        .samples::<i32>()
        .map(|s| s.unwrap() as f32 * scale)
        .collect();
    let (l, _) = common::measure::deinterleave(&samples);
    assert!(l.len() > 3 * 48_000, "captured {} frames", l.len());
    let rms = common::measure::rms(&l);
    println!("captured rms {rms}");
    assert!(rms > 1e-3, "the capture is silent (rms {rms})");
}
