//! The room steers the music offline: the same performance rendered with a quiet room
//! recording and with a loud, clap-dense one (both made by sox, at 44.1 kHz so the input is
//! resampled) comes out measurably louder and denser with the loud room; a NaN-filled or
//! clipped room never produces NaN; and a render with `--input` is deterministic.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::measure::*;
use crate::common::sox::{self, sox};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapestry-room-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A quiet room: faint pink noise.
fn quiet_room() -> PathBuf {
    let path = temp("quiet.wav");
    sox(&[
        "-n",
        "-r",
        "44100",
        path.to_str().unwrap(),
        "synth",
        "24",
        "pinknoise",
        "gain",
        "-50",
    ]);
    path
}

/// A lively room: loud noise-burst claps, 6 per second, over a murmur.
fn loud_room() -> PathBuf {
    let claps = temp("claps.wav");
    let murmur = temp("murmur.wav");
    let path = temp("loud.wav");
    let p = |x: &PathBuf| x.to_str().unwrap().to_string();
    sox::claps(&claps, "44100", "-4", "0.14666", "143");
    sox(&[
        "-n",
        "-r",
        "44100",
        &p(&murmur),
        "synth",
        "24",
        "brownnoise",
        "gain",
        "-28",
    ]);
    sox(&["-m", &p(&claps), &p(&murmur), &p(&path), "trim", "0", "24"]);
    path
}

fn patch_without_leveler() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("patches/minimal.toml")).unwrap();
    let path = temp("minimal-raw.toml");
    std::fs::write(&path, format!("{text}\n[master]\nleveler = false\n")).unwrap();
    path
}

fn render(patch: &Path, input: &Path, out: &str, block: &str) -> Vec<f32> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = temp(out);
    let status = Command::new(env!("CARGO_BIN_EXE_tapestry"))
        .arg("render")
        .arg(patch)
        .arg("-p")
        .arg(root.join("patches/minimal.performance.toml"))
        .arg("--input")
        .arg(input)
        .args([
            "--duration",
            "24",
            "--format",
            "float32",
            "--block",
            block,
            "-o",
        ])
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut r = hound::WavReader::open(&output).unwrap();
    r.samples::<f32>().map(|s| s.unwrap()).collect()
}

#[test]
fn a_loud_clapping_room_makes_the_music_louder_and_denser() {
    let patch = patch_without_leveler();
    let quiet = render(&patch, &quiet_room(), "quiet-out.wav", "512");
    let loud_room = loud_room();
    let loud = render(&patch, &loud_room, "loud-out.wav", "512");
    // after the room has had time to move the mood
    let from = 2 * 48_000 * 8;
    let (q, l) = (mono(&quiet[from..]), mono(&loud[from..]));
    let (q_db, l_db) = (rms_db(&q), rms_db(&l));
    let (q_on, l_on) = (
        onset_rate_per_sec(&q, 48_000.0),
        onset_rate_per_sec(&l, 48_000.0),
    );
    println!(
        "quiet room: {q_db:.1} dB, {q_on:.2} onsets/s; loud room: {l_db:.1} dB, {l_on:.2} onsets/s"
    );
    assert!(
        l_db > q_db + 3.0,
        "louder music with a loud room: {l_db} vs {q_db}"
    );
    assert!(
        l_on > q_on * 1.2,
        "denser music with a clapping room: {l_on} vs {q_on}"
    );
    assert!(all_finite(&loud) && all_finite(&quiet));
    // deterministic whatever the block size
    assert_eq!(loud, render(&patch, &loud_room, "loud-out-2.wav", "333"));
}

#[test]
fn a_broken_room_signal_never_breaks_the_music() {
    let patch = patch_without_leveler();
    // clipped, DC-offset and NaN-filled rooms, written as float WAVs
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    type Signal = fn(usize) -> f32;
    let cases: [(&str, Signal); 3] = [
        ("clipped", |i| if (i / 100) % 2 == 0 { 1.0 } else { -1.0 }),
        ("dc", |_| 0.7),
        ("nan", |i| {
            if (i / 4800) % 2 == 0 {
                f32::NAN
            } else {
                f32::INFINITY
            }
        }),
    ];
    for (name, f) in cases {
        let path = temp(&format!("{name}.wav"));
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..48_000 * 24 {
            w.write_sample(f(i)).unwrap();
        }
        w.finalize().unwrap();
        let out = render(&patch, &path, &format!("{name}-out.wav"), "512");
        assert!(all_finite(&out), "{name}: non-finite output");
        let tail = mono(&out[2 * 48_000 * 16..]);
        assert!(rms_db(&tail) > -60.0, "{name}: the music went silent");
    }
}

#[test]
fn the_score_follows_a_steady_clap_within_the_patch_limits() {
    // claps at 120 BPM for 30 s; the score is written at 100 BPM and may follow from 80 to 140
    let claps = temp("tempo-claps.wav");
    sox::claps(&claps, "44100", "-6", "0.48", "59");
    let patch = common::patch_text(&format!(
        "{}\n[analysis.tempo]\nmin_bpm = 80\nmax_bpm = 140\nsmoothing_secs = 2\n",
        common::PULSE_PATCH
    ));
    let (samples, channels) = tapestry::analysis::read_wav(&claps, Some(48_000)).unwrap();
    let script = common::Script::default().join(0.0, 1, Some(0));
    let mut with_room = script.clone().performance(30.0);
    tapestry::room::add_room_input(&mut with_room, &patch, &samples, channels, 48_000);
    let tempi: Vec<f32> = with_room
        .commands
        .iter()
        .filter_map(|c| match c.command {
            tapestry::Command::Tempo { bpm } => Some(bpm),
            _ => None,
        })
        .collect();
    let last = *tempi.last().expect("the room's pulse must set the tempo");
    assert!(
        (last - 120.0).abs() <= 2.0,
        "the score's tempo ends at {last} BPM"
    );
    let followed = common::render_blocks(&patch, &with_room, 512, None);
    let rate = onset_rate_per_sec(&mono(&followed[2 * 48_000 * 20..]), 48_000.0);
    println!("score tempo ends at {last:.1} BPM; pulse {rate:.2}/s (120 BPM = 2.00/s)");
    assert!((rate - 2.0).abs() < 0.25, "{rate}");
}
