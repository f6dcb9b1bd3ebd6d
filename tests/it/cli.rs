//! The command line as a user runs it: `check` reports problems with positions and a
//! non-zero exit; `render` writes the WAV format asked for, identical on every run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tapestry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapestry"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn temp(name: &str) -> PathBuf {
    crate::common::temp_file("cli", name)
}

#[test]
fn check_accepts_the_shipped_files() {
    let out = tapestry()
        .args([
            "check",
            "patches/minimal.toml",
            "patches/minimal.performance.toml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
}

#[test]
fn check_reports_every_problem_with_file_line_column_and_key() {
    let bad = temp("bad.toml");
    let text = std::fs::read_to_string("patches/minimal.toml")
        .unwrap()
        .replace("tempo_bpm = 96", "tempo_bpm = 900")
        .replace("timbre = \"bell\"", "timbre = \"gong\"");
    std::fs::write(&bad, &text).unwrap();
    let out = tapestry().arg("check").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| text[..text.find(needle).unwrap()].matches('\n').count() + 1;
    assert!(
        stderr.contains(&format!(
            "bad.toml:{}:13: score.tempo_bpm: expected a number from 20 to 300",
            line_of("tempo_bpm = 900")
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "bad.toml:{}:10: archetypes[3].timbre: unknown timbre \"gong\"",
            line_of("timbre = \"gong\"")
        )),
        "{stderr}"
    );
}

#[test]
fn check_names_a_missing_file() {
    let out = tapestry()
        .args(["check", "patches/no-such-piece.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

fn render(args: &[&str], output: &Path) -> std::process::Output {
    tapestry()
        .args([
            "render",
            "patches/minimal.toml",
            "--performance",
            "patches/minimal.performance.toml",
            "-o",
        ])
        .arg(output)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn render_writes_24_bit_pcm_or_32_bit_float_at_the_asked_rate_and_length() {
    let pcm = temp("pcm.wav");
    let out = render(&["--duration", "3", "--sample-rate", "44100"], &pcm);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = hound::WavReader::open(&pcm).unwrap();
    let spec = r.spec();
    assert_eq!(
        (
            spec.channels,
            spec.sample_rate,
            spec.bits_per_sample,
            spec.sample_format
        ),
        (2, 44_100, 24, hound::SampleFormat::Int)
    );
    assert_eq!(r.duration(), 3 * 44_100);
    let peak = r
        .into_samples::<i32>()
        .map(|s| s.unwrap().unsigned_abs())
        .max()
        .unwrap();
    assert!(
        peak > 1000 && (peak as f64) < 8_388_607.0 * 0.8913,
        "peak {peak}"
    );

    let float = temp("float.wav");
    let out = render(&["--duration", "2", "--format", "float32"], &float);
    assert!(out.status.success());
    let r = hound::WavReader::open(&float).unwrap();
    assert_eq!(
        (r.spec().bits_per_sample, r.spec().sample_format),
        (32, hound::SampleFormat::Float)
    );
    assert_eq!(r.duration(), 2 * 48_000);
}

#[test]
fn render_is_bit_identical_run_to_run_and_seed_dependent() {
    let (a, b, c) = (temp("a.wav"), temp("b.wav"), temp("c.wav"));
    for (path, seed) in [(&a, "3"), (&b, "3"), (&c, "4")] {
        let out = render(&["--duration", "4", "--seed", seed, "--block", "97"], path);
        assert!(out.status.success());
    }
    let (a, b, c) = (
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    assert!(a == b, "same seed, different files");
    assert!(a != c, "another seed, same file");
}

#[test]
fn render_refuses_bad_options_plainly() {
    let out = render(&["--sample-rate", "10"], &temp("x.wav"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sample-rate must be between"));
    let out = render(&["--block", "0"], &temp("x.wav"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--block must be between"));
}

#[cfg(feature = "live")]
#[test]
fn play_refuses_a_bad_reconnect_timeout_before_opening_anything() {
    for bad in ["-1", "nan", "1e9"] {
        let out = tapestry()
            .args(["play", "patches/minimal.toml", "--no-midi", "--no-osc"])
            .arg(format!("--reconnect-timeout={bad}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("--reconnect-timeout must be between 0 and 86400 seconds"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn input_gain_refuses_bad_values_plainly_on_every_command() {
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["analyze", "room.wav"],
        vec!["render", "patches/minimal.toml", "--input", "room.wav"],
    ];
    if cfg!(feature = "live") {
        commands.push(vec![
            "play",
            "patches/minimal.toml",
            "--no-midi",
            "--no-osc",
            "--input",
            "default",
        ]);
    }
    for command in &commands {
        for bad in ["loud", "75", "-60.5", "nan", "inf", ""] {
            let out = tapestry()
                .args(command)
                .arg(format!("--input-gain={bad}"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command:?} {bad}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{bad}' for '--input-gain <DB>'"))
                    && stderr.contains("expected a gain in dB from -60 to 60"),
                "{command:?} {bad}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    // a negative gain is a value, not an option; render's gain needs a room to apply to
    let out = tapestry()
        .args(["analyze", "no-such-room.wav", "--input-gain", "-12"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-room.wav"), "{stderr}");
    let out = tapestry()
        .args(["render", "patches/minimal.toml", "--input-gain", "6"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--input <INPUT>"), "{stderr}");
}

#[test]
fn check_prints_warnings_and_still_accepts_the_file() {
    let perf = temp("late.performance.toml");
    std::fs::write(
        &perf,
        "version = 1\nduration_secs = 2.0\n\n[[events]]\ntime = 0.5\ntype = \"join\"\nparticipant = 1\n\n[[events]]\ntime = 3.0\ntype = \"leave\"\nparticipant = 1\n",
    )
    .unwrap();
    let out = tapestry()
        .args(["check", "patches/minimal.toml"])
        .arg(&perf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("late.performance.toml:11:8: warning: events[1]: at 3.000 s, at or after the end of the performance (2.000 s): not played"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok — 2 events, 2.0 s"));
}

#[test]
fn check_reads_a_recording_cut_short_up_to_its_last_whole_event() {
    let rec = temp("torn.performance.toml");
    std::fs::write(
        &rec,
        "version = 1\nrecording = true\nseed = 1\n\n[[events]]\nsample = 0\ntype = \"join\"\nparticipant = 1\n\n[[events]]\nsample = 96000\ntype = \"position\"\n\n[[events]]\nsample = 96100\ntype = \"mood\"\nparticipant = 1\ndimension = \"ene",
    )
    .unwrap();
    let out = tapestry()
        .args(["check", "patches/minimal.toml"])
        .arg(&rec)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("torn.performance.toml:14:1: warning: events[2]: the recording ends in an unfinished entry"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dropped: `[[events]] ⏎ sample = 96100"),
        "{stderr}"
    );
    // it lasts until the last position the show wrote, 2 s, not the last event plus 8 s
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok — 1 events, 2.0 s"), "{stdout}");
}

#[test]
fn durations_past_a_day_are_refused_plainly() {
    for bad in ["86401", "0", "-3", "nan", "inf"] {
        let out = render(&[&format!("--duration={bad}")], &temp("d.wav"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("--duration must be more than 0 and at most 86400 seconds (24 h)"),
            "{stderr}"
        );
        if cfg!(feature = "live") {
            let out = tapestry()
                .args(["play", "patches/minimal.toml", "--no-midi", "--no-osc"])
                .arg(format!("--duration={bad}"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(
                stderr.contains("--duration must be more than 0"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn render_takes_a_room_recording_with_nan_and_huge_samples_at_another_rate() {
    // float samples that are not numbers or near f32::MAX made the resampler panic
    let room = temp("nan-room.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 96_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&room, spec).unwrap();
    for i in 0..96_000 {
        let s = match i {
            100 => f32::NAN,
            200 => f32::INFINITY,
            300 => 3.0e38,
            _ => 0.1 * (i as f32 * 0.05).sin(),
        };
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    let out = tapestry()
        .args([
            "render",
            "patches/minimal.toml",
            "--duration",
            "1",
            "--input",
        ])
        .arg(&room)
        .arg("-o")
        .arg(temp("nan-room-out.wav"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn render_writes_its_timeline_and_picture_identically_for_any_block_and_a_normal_file() {
    let (wav, json, png) = (temp("tl.wav"), temp("tl.json"), temp("tl.png"));
    let mut written = Vec::new();
    for block in ["64", "4096"] {
        let out = render(&["--duration", "20", "--block", block, "--timeline"], &wav);
        assert!(!out.status.success(), "--timeline needs a file");
        let out = tapestry()
            .args([
                "render",
                "patches/minimal.toml",
                "--performance",
                "patches/minimal.performance.toml",
                "--duration",
                "20",
                "--block",
                block,
                "--plot-width",
                "1200",
                "-o",
            ])
            .arg(&wav)
            .arg("--timeline")
            .arg(&json)
            .arg("--plot")
            .arg(&png)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("tl.json") && stderr.contains("1200 x 750"),
            "{stderr}"
        );
        let timeline: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(timeline["duration_samples"], 20 * 48_000);
        assert!(
            timeline["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "join"),
            "{timeline}"
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(std::fs::read(&png).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (1200, 750));
        written.push((
            std::fs::read(&wav).unwrap(),
            std::fs::read(&json).unwrap(),
            std::fs::read(&png).unwrap(),
        ));
    }
    assert!(written[0] == written[1], "the block size changed an output");

    // the WAV gets the permissions any new file gets here, not a private temporary's
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = temp("plain-file");
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&wav), mode(&plain));
    }
}
