//! The room live on JACK: `sndfile-jackplay` (Debian's sndfile-tools, a client nobody here
//! wrote) plays a recording of a room into Tapestry's input port, named with `--input`, while
//! the session is recorded. The room's mood the engine applied live must follow what the
//! offline analysis of the same file says, within tolerance. Needs `--features jack`.
#![cfg(feature = "jack")]

mod common;

use common::jack::JackServer;
use common::sox::{claps, sox};

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tapestry::control::{Command as EngineCommand, MoodTarget, VoiceSelector};
use tapestry::engine::config::{Param, Role};
use tapestry::{Patch, Performance};

const SR: u32 = 48_000;
/// Grid on which the two mood curves are compared.
const STEP: u64 = SR as u64 / 50;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapestry-room-jack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// 2 s of silence (time to connect), 3 s of a hushed room, 6 s of loud claps, 3 s of hush.
fn room_file() -> PathBuf {
    let p = |name: &str| temp(name).to_str().unwrap().to_string();
    sox(&[
        "-n",
        "-r",
        "48000",
        "-c",
        "1",
        &p("lead.wav"),
        "trim",
        "0",
        "2",
    ]);
    sox(&[
        "-n",
        "-r",
        "48000",
        "-c",
        "1",
        &p("hush.wav"),
        "synth",
        "3",
        "pinknoise",
        "gain",
        "-48",
    ]);
    claps(&temp("claps.wav"), "48000", "-3", "0.105", "47");
    sox(&[
        &p("lead.wav"),
        &p("hush.wav"),
        &p("claps.wav"),
        &p("hush.wav"),
        &p("room.wav"),
    ]);
    temp("room.wav")
}

/// The default energy mappings, and the room's loudness lifting only the melody voices.
const ANALYSIS: &str = r#"
[analysis]

[[analysis.mappings]]
feature = "loudness"
mood = "energy"
feature_range = [-50.0, -18.0]
weight = 0.6

[[analysis.mappings]]
feature = "onset_rate"
mood = "energy"
feature_range = [0.0, 6.0]
weight = 0.4

[[analysis.mappings]]
feature = "loudness"
param = "loudness_db"
role = "melody"
feature_range = [-50.0, -18.0]
range = [0.0, 6.0]
"#;

/// The room's energy as a step function on the comparison grid, from (sample, value) pairs.
fn curve(points: &[(u64, f32)], start: f32, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    let mut v = start;
    for k in 0..len as u64 {
        while i < points.len() && points[i].0 <= k * STEP {
            v = points[i].1;
            i += 1;
        }
        out.push(v);
    }
    out
}

/// What the room sends to one target: the energy dimension, or the melodies' loudness.
#[derive(Clone, Copy)]
enum Target {
    Mood(u8),
    MelodyLoudness,
}

fn room_values(
    commands: impl Iterator<Item = (u64, EngineCommand)>,
    target: Target,
) -> Vec<(u64, f32)> {
    let melody = VoiceSelector::Role(Role::Melody);
    let loudness = Param::LoudnessDb.index() as u8;
    commands
        .filter_map(|(sample, c)| match (c, target) {
            (
                EngineCommand::Mood {
                    target: MoodTarget::Room,
                    dim,
                    value,
                    ..
                },
                Target::Mood(d),
            ) if dim == d => Some((sample, value)),
            (
                EngineCommand::RoomParam {
                    param,
                    voices,
                    value,
                },
                Target::MelodyLoudness,
            ) if param == loudness && voices == melody => Some((sample, value)),
            _ => None,
        })
        .collect()
}

/// The live curve's mean error against the offline one, at the best offset of the live
/// start into the file (the engine started during the player's silent lead-in).
fn best_alignment(reference: &[f32], live: &[f32]) -> (usize, f32) {
    let len = reference.len();
    (0..250)
        .map(|s| {
            let n = len - s;
            let e = reference[s..]
                .iter()
                .zip(&live[..n])
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / n as f32;
            (s, e)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

#[test]
fn a_room_played_into_the_input_port_moves_the_mood_as_the_offline_analysis_says() {
    let server = JackServer::start("tapestry-room");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = room_file();
    let minimal = std::fs::read_to_string(root.join("patches/minimal.toml")).unwrap();
    let patch_path = temp("room.toml");
    std::fs::write(&patch_path, format!("{minimal}\n{ANALYSIS}")).unwrap();
    let recording = temp("room.performance.toml");
    // the player starts first (its 2 s lead-in is silent), so its port exists for --input
    let mut player = server
        .command("sndfile-jackplay")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sndfile-jackplay (Debian package sndfile-tools) is needed");
    let source = server
        .wait_ports("sndfile-jackplay's port", |p| p.starts_with("jackplay"))
        .remove(0);
    let play = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root)
        .args(["play", "--no-midi", "--no-osc"])
        .arg(&patch_path)
        .args(["--host", "JACK", "--duration", "16", "--input", &source])
        .arg("--record")
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = play.wait_with_output().unwrap();
    let _ = player.kill(); // (sndfile-jackplay may be stuck closing: jackaudio/jack2#395)
    let _ = player.wait();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tapestry play failed: {log}");
    assert!(log.contains("listening to the room on JACK"), "{log}");
    // the analysis thread never holds up the audio callback
    let last = log
        .lines()
        .rfind(|l| l.contains("(peak "))
        .expect("status lines");
    let peak: f32 = last[last.find("(peak ").unwrap() + 6..]
        .split('%')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("a peak load");
    println!("callback peak load with the room input running: {peak:.1}% of the deadline");
    assert!(
        peak < 50.0,
        "the callback peaked at {peak}% of its deadline"
    );
    if tapestry::io::ALLOCATIONS_CHECKED {
        let line = log
            .lines()
            .rfind(|l| l.starts_with("allocations in audio callback"))
            .expect("an allocation report");
        for callback in ["audio callback:", "room input callback:"] {
            let n: u64 = line[line.find(callback).unwrap() + callback.len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a count");
            assert_eq!(n, 0, "allocations in the {callback} {line}");
        }
    }

    let patch = Patch::load(&patch_path).unwrap();
    let energy_dim = patch.dims.iter().position(|d| d == "energy").unwrap();
    let energy = Target::Mood(energy_dim as u8);
    let perf = Performance::load(&recording, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    let live = |target| room_values(perf.commands.iter().map(|c| (c.sample, c.command)), target);
    let (samples, channels) = tapestry::analysis::read_wav(&file, Some(SR)).unwrap();
    let offline_commands = tapestry::room::room_commands(
        patch.room(),
        &patch.dim_defaults(),
        patch.tempo_bpm(),
        &samples,
        channels,
        SR,
    );
    let offline = |target| {
        room_values(
            offline_commands.iter().map(|c| (c.sample, c.command)),
            target,
        )
    };
    assert!(
        !live(energy).is_empty(),
        "the live room sent nothing: {log}"
    );
    let default = patch.dim_defaults()[energy_dim];
    let len = samples.len() / channels as usize / STEP as usize;
    let reference = curve(&offline(energy), default, len);
    let (lo, hi) = reference
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert!(
        hi - lo > 0.3,
        "the file must move the room's energy: {lo}..{hi}"
    );
    let (shift, error) = best_alignment(&reference, &curve(&live(energy), default, len));
    println!(
        "live room energy follows the offline analysis: mean error {error:.3} (range {lo:.2}..{hi:.2}) at an offset of {:.0} ms",
        shift as f64 * STEP as f64 * 1000.0 / SR as f64
    );
    assert!(
        error < 0.05,
        "live and offline room moods differ by {error}"
    );

    // the melodies' loudness offset, recorded with its selector, at the same offset
    let reference = curve(&offline(Target::MelodyLoudness), 0.0, len);
    let swing = reference.iter().fold(0.0f32, |m, v| m.max(*v));
    assert!(
        swing > 3.0,
        "the claps must lift the melodies: up to {swing} dB"
    );
    let live_curve = curve(&live(Target::MelodyLoudness), 0.0, len);
    let n = len - shift;
    let error = reference[shift..]
        .iter()
        .zip(&live_curve[..n])
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / n as f32;
    println!("live melody loudness offset follows the offline analysis: mean error {error:.2} dB (up to {swing:.1} dB)");
    assert!(
        error < 0.3,
        "live and offline melody offsets differ by {error} dB"
    );
}

#[test]
fn devices_lists_the_inputs_the_room_can_be_heard_on() {
    let server = JackServer::start("tapestry-devices");
    let out = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .arg("devices")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let jack: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "host JACK")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        jack.iter()
            .any(|l| l.starts_with("  input ") && l.contains("(default)")),
        "no default JACK input listed:\n{text}"
    );
    assert!(
        jack.iter().any(|l| l.starts_with("  output ")),
        "no JACK output listed:\n{text}"
    );
}
