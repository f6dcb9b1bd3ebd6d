//! One MIDI source, one delivery: `tapestry play` with the default `[midi] ports = ["*"]` on a
//! private JACK server, and python-rtmidi ports (tests/senders/live_senders.py, `once`) that
//! its watcher listens to and that are also connected to its virtual port, as the README tells
//! a performer to connect a controller: one port connected there before the watcher finds it,
//! one after. Every note must reach the engine once (the MIDI counters, the session
//! recording) and be heard once (the capture equals the offline render of that recording);
//! the port that leaves the virtual port must be heard directly again; SysEx on both sides of
//! the bytes a port callback copies must be counted, not lost. Needs `--features jack`.
#![cfg(feature = "jack")]

use crate::common;
use crate::common::jack::{
    align, number_after, read_capture, run_within, test_python, Helper, JackServer,
    CAPTURE_TOLERANCE,
};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tapestry::control::Command as EngineCommand;
use tapestry::render::{render, RenderOptions};
use tapestry::{Patch, Performance};

fn temp(name: &str) -> PathBuf {
    common::temp_file("midi-once", name)
}

/// Two channels, two participants playing a pluck; every port is listened to (no `ports`).
const MIDI_SECTION: &str = r#"
[[archetypes]]
id = "keys"
timbre = "pluck"
register = [48, 84]
free = true

[midi]
virtual_port = "once"

[[midi.participants]]
channel = 1
participant = 1
archetype = "keys"

[[midi.participants]]
channel = 2
participant = 2
archetype = "keys"
"#;

/// The pitches participant `who` played, in order.
fn played(commands: &[EngineCommand], who: u32) -> Vec<u8> {
    commands
        .iter()
        .filter_map(|c| match *c {
            EngineCommand::NoteOn {
                participant, pitch, ..
            } if participant == who => Some(pitch),
            _ => None,
        })
        .collect()
}

#[test]
fn a_port_also_connected_to_the_virtual_port_is_heard_once() {
    let Some(python) = test_python() else { return };
    // synchronous mode: the capture is compared sample for sample, and a late timer wake-up
    // of the dummy driver on a busy machine must delay a cycle, not drop one from the capture
    let server = JackServer::start_with("tapestry-once", &["--sync"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let minimal = common::patch_text_without_midi("minimal.toml");
    let patch_path = temp("once.toml");
    std::fs::write(&patch_path, format!("{minimal}\n{MIDI_SECTION}")).unwrap();
    let recording = temp("once-show.performance.toml");
    let capture = temp("once-capture.wav");

    let mut play = Helper(
        server
            .command(env!("CARGO_BIN_EXE_tapestry"))
            .current_dir(root)
            .arg("play")
            .arg(&patch_path)
            .args(["--host", "JACK", "--buffer", "256", "--duration", "11"])
            .args(["--no-osc", "--record"])
            .arg(&recording)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (play_log, reader) = common::jack::read_log(&mut play.0);
    common::jack::wait_until_playing(&play_log);
    let virtual_port = server
        .wait_ports("tapestry's virtual MIDI port", |p| p.ends_with(":once"))
        .remove(0);
    let audio = server.wait_port_count("tapestry's audio ports", 2, |p| {
        p.starts_with("cpal_client") && p.contains(":out_")
    });
    let rec = server.capture(&capture, 7, &audio[..2]);
    let script = root.join("tests/senders/live_senders.py");
    let sent = run_within(
        server
            .command(python.to_str().unwrap())
            .arg(script)
            .args(["once", "0", &virtual_port]),
        Duration::from_secs(60),
    );
    println!("{}{}", sent.stdout, sent.stderr);
    // python-rtmidi's JACK client may get stuck closing at exit (jackaudio/jack2#395) after
    // printing everything: that loses nothing
    assert!(
        sent.stdout.contains("midi messages") && sent.status.is_none_or(|s| s.success()),
        "the sender failed"
    );
    let sent_messages = number_after(&sent.stdout, "midi messages");
    rec.finish();

    let status = play.0.wait().unwrap();
    reader.join().unwrap();
    let log = play_log.lock().unwrap().clone();
    println!("{log}");
    assert!(status.success(), "tapestry play failed: {log}");
    for port in ["once-early:out", "once-late:out"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("\"{port}\"")) && l.contains("heard there only")),
            "the watcher did not leave {port} to the virtual port: {log}"
        );
    }
    assert!(
        log.contains("\"once-late:out\" left the virtual port: listening to it directly"),
        "{log}"
    );

    // the engine got each message once
    let line = log
        .lines()
        .rfind(|l| l.contains(" participants "))
        .unwrap_or_else(|| panic!("status lines in {log}"));
    let midi = &line[line.find("midi ports").unwrap()..];
    println!("sent {sent_messages} messages; tapestry: {midi}");
    assert_eq!(number_after(midi, "msgs"), sent_messages, "{midi}");
    assert_eq!(number_after(midi, "routed"), sent_messages - 4.0, "{midi}");
    assert_eq!(
        (number_after(midi, "malformed"), number_after(midi, "lost")),
        (0.0, 0.0),
        "the SysEx were counted, not lost: {midi}"
    );
    let patch = Patch::load(&patch_path).unwrap();
    let perf = Performance::load(&recording, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
    let commands: Vec<EngineCommand> = perf.commands.iter().map(|c| c.command).collect();
    assert_eq!(
        played(&commands, 1),
        [60, 64, 67, 72, 65, 69],
        "{commands:?}"
    );
    assert_eq!(played(&commands, 2), [55, 59, 62], "{commands:?}");

    // and heard once: the capture is the offline render of that recording
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let (ol, or) = common::measure::deinterleave(&offline);
    let (cl, cr) = read_capture(&capture);
    let alignment = align((&cl, &cr), (&ol, &or));
    println!("capture vs offline render: {alignment:?}");
    assert!(
        alignment.worst <= CAPTURE_TOLERANCE && alignment.compared > 4 * 48_000,
        "the capture is not the render of the recording: {alignment:?}"
    );
}
