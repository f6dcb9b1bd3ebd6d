//! Input calibration live on JACK: `sndfile-jackplay` (Debian's sndfile-tools) plays a room
//! recording attenuated by 20 dB into Tapestry's input port, and `play --input-gain 20` must
//! move the room's mood as the offline analysis of the unattenuated recording says; the
//! start-up line names the gain. Needs `--features jack`.
#![cfg(feature = "jack")]

mod common;

use common::jack::JackServer;
use common::sox::{claps, sox};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tapestry::control::{Command as EngineCommand, MoodTarget};
use tapestry::{Patch, Performance};

const SR: u32 = 48_000;
/// Grid on which mood curves are compared.
const STEP: u64 = SR as u64 / 50;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapestry-cal-jack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// 2 s of silence (time to connect), 3 s of murmur, 6 s of claps, 3 s of murmur; and the
/// same 20 dB quieter.
fn room_files() -> (PathBuf, PathBuf) {
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
        &p("murmur.wav"),
        "synth",
        "3",
        "pinknoise",
        "gain",
        "-30",
    ]);
    claps(&temp("claps.wav"), "48000", "-3", "0.105", "47");
    sox(&[
        &p("lead.wav"),
        &p("murmur.wav"),
        &p("claps.wav"),
        &p("murmur.wav"),
        &p("room.wav"),
    ]);
    sox(&[&p("room.wav"), &p("room-20.wav"), "gain", "-20"]);
    (temp("room.wav"), temp("room-20.wav"))
}

/// The room's energy as a step function on the comparison grid.
fn curve(points: &[(u64, f32)], start: f32, len: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let (mut i, mut v) = (0, start);
    for k in 0..len as u64 {
        while i < points.len() && points[i].0 <= k * STEP {
            v = points[i].1;
            i += 1;
        }
        out.push(v);
    }
    out
}

fn room_energy(commands: impl Iterator<Item = (u64, EngineCommand)>, dim: u8) -> Vec<(u64, f32)> {
    commands
        .filter_map(|(sample, c)| match c {
            EngineCommand::Mood {
                target: MoodTarget::Room,
                dim: d,
                value,
                ..
            } if d == dim => Some((sample, value)),
            _ => None,
        })
        .collect()
}

fn offline_energy(patch: &Patch, file: &Path, dim: u8) -> (Vec<(u64, f32)>, usize) {
    let (samples, channels) = tapestry::analysis::read_wav(file, Some(SR)).unwrap();
    let commands = tapestry::room::room_commands(
        patch.room(),
        &patch.dim_defaults(),
        patch.tempo_bpm(),
        &samples,
        channels,
        SR,
    );
    let len = samples.len() / channels as usize / STEP as usize;
    (
        room_energy(commands.iter().map(|c| (c.sample, c.command)), dim),
        len,
    )
}

/// Smallest mean absolute difference of `live` against `reference` shifted by 0..3 s.
fn aligned_error(reference: &[f32], live: &[f32]) -> (usize, f32) {
    (0..150)
        .map(|s| {
            let n = reference.len() - s;
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
fn input_gain_restores_an_attenuated_room_live() {
    let (room, quieter) = room_files();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let patch = Patch::load(&root.join("patches/minimal.toml")).unwrap();
    let energy = patch.dims.iter().position(|d| d == "energy").unwrap() as u8;
    let default = patch.dim_defaults()[energy as usize];
    let (reference, len) = offline_energy(&patch, &room, energy);
    let reference = curve(&reference, default, len);
    let (unrestored, _) = offline_energy(&patch, &quieter, energy);
    let unrestored = curve(&unrestored, default, len);
    // the attenuation alone moves the mood clearly, so a gain that is not applied shows
    let (_, apart) = aligned_error(&reference, &unrestored);
    assert!(
        apart > 0.1,
        "20 dB must matter to the room's energy: {apart}"
    );

    let server = JackServer::start("tapestry-cal");
    let recording = temp("room.performance.toml");
    let mut player = server
        .command("sndfile-jackplay")
        .arg(&quieter)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sndfile-jackplay (Debian package sndfile-tools) is needed");
    let started = Instant::now();
    let source = loop {
        if let Some(p) = server
            .ports()
            .into_iter()
            .find(|p| p.starts_with("jackplay"))
        {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no jackplay port"
        );
        sleep(Duration::from_millis(10));
    };
    let play = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root)
        .args([
            "play",
            "--no-midi",
            "--no-osc",
            "--plain",
            "patches/minimal.toml",
        ])
        .args(["--host", "JACK", "--duration", "16", "--input", &source])
        .args(["--input-gain", "20"])
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
    assert!(log.contains("input gain +20.0 dB)"), "{log}");
    // and the status lines' room panel says it too
    assert!(
        log.lines()
            .any(|l| l.contains("  room ") && l.contains("input gain +20.0 dB")),
        "{log}"
    );

    let perf = Performance::load(&recording, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    let live = room_energy(perf.commands.iter().map(|c| (c.sample, c.command)), energy);
    assert!(!live.is_empty(), "the live room sent nothing: {log}");
    let live = curve(&live, default, len);
    let (shift, error) = aligned_error(&reference, &live);
    let (_, error_unrestored) = aligned_error(&unrestored, &live);
    println!(
        "live room energy (room -20 dB, --input-gain 20) vs offline: original room {error:.3}, \
         attenuated room at gain 0 {error_unrestored:.3} (offset {:.0} ms; the two offline \
         curves differ by {apart:.3})",
        shift as f64 * STEP as f64 * 1000.0 / SR as f64
    );
    assert!(error < 0.05, "live with gain vs the original room: {error}");
    assert!(
        error_unrestored > 2.0 * error,
        "the live mood must follow the restored level: {error} vs {error_unrestored}"
    );
}
