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
    common::temp_file("room", name)
}

/// A quiet room: faint pink noise (made once per test run: the tests share it).
fn quiet_room() -> PathBuf {
    static ROOM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOM.get_or_init(|| {
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
    })
    .clone()
}

/// A lively room: loud noise-burst claps, 6 per second, over a murmur (made once per test
/// run: the tests share it).
fn loud_room() -> PathBuf {
    static ROOM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOM.get_or_init(|| {
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
    })
    .clone()
}

/// The minimal patch without its leveler (written once per test run: the tests share it).
fn patch_without_leveler() -> PathBuf {
    static PATCH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATCH
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(root.join("patches/minimal.toml")).unwrap();
            let path = temp("minimal-raw.toml");
            std::fs::write(&path, format!("{text}\n[master]\nleveler = false\n")).unwrap();
            path
        })
        .clone()
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

/// `tapestry render` of the minimal performance with `input` as the room for `secs`,
/// float32; the samples and what it said on stderr.
fn render_secs(patch: &Path, input: &Path, out: &str, secs: &str) -> (Vec<f32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = temp(out);
    let run = Command::new(env!("CARGO_BIN_EXE_tapestry"))
        .arg("render")
        .arg(patch)
        .arg("-p")
        .arg(root.join("patches/minimal.performance.toml"))
        .arg("--input")
        .arg(input)
        .args(["--duration", secs, "--format", "float32", "-o"])
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "render failed: {stderr}");
    let mut r = hound::WavReader::open(&output).unwrap();
    (r.samples::<f32>().map(|s| s.unwrap()).collect(), stderr)
}

/// The first `frames` frames of a WAV, as a whole WAV of the same format.
fn prefix(from: &Path, to: &Path, frames: u32) {
    let mut r = hound::WavReader::open(from).unwrap();
    let spec = r.spec();
    let mut w = hound::WavWriter::create(to, spec).unwrap();
    let n = (frames * u32::from(spec.channels)) as usize;
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in r.samples::<f32>().take(n) {
                w.write_sample(s.unwrap()).unwrap();
            }
        }
        hound::SampleFormat::Int => {
            for s in r.samples::<i32>().take(n) {
                w.write_sample(s.unwrap()).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

#[test]
fn a_room_recording_cut_short_renders_from_what_is_there_with_a_warning() {
    // what a crashed recorder leaves: the header claims 24 s, the data stops after 10.5 s
    let patch = patch_without_leveler();
    let room = loud_room();
    let spec = hound::WavReader::open(&room).unwrap().spec();
    let claimed = hound::WavReader::open(&room).unwrap().duration();
    let frame_bytes = u64::from(spec.channels * spec.bits_per_sample / 8);
    let whole_bytes = std::fs::metadata(&room).unwrap().len();
    let held = (10.5 * 44_100.0) as u32;
    let cut = temp("loud-cut.wav");
    std::fs::copy(&room, &cut).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(whole_bytes - u64::from(claimed - held) * frame_bytes + 1)
        .unwrap();
    // the same 10.5 s as a whole file
    let whole = temp("loud-10.5s.wav");
    prefix(&room, &whole, held);

    let (from_cut, said) = render_secs(&patch, &cut, "cut-out.wav", "16");
    let (from_whole, _) = render_secs(&patch, &whole, "whole-out.wav", "16");
    println!("{said}");
    let warning = said
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning in {said}"));
    assert!(warning.contains(cut.to_str().unwrap()), "{warning}");
    assert!(
        warning.contains(&format!("({held} frames)"))
            && warning.contains(&format!("({claimed} frames)")),
        "{warning}"
    );
    assert!(from_cut == from_whole, "the cut room renders as its data");
    // and the room was heard: louder than the same render with a quiet room
    let (quiet, _) = render_secs(&patch, &quiet_room(), "quiet-16-out.wav", "16");
    let from = 2 * 48_000 * 6;
    let (c_db, q_db) = (
        rms_db(&mono(&from_cut[from..])),
        rms_db(&mono(&quiet[from..])),
    );
    println!("cut loud room {c_db:.1} dB, quiet room {q_db:.1} dB");
    assert!(c_db > q_db + 3.0, "{c_db} vs {q_db}");
}

#[test]
fn a_twenty_minute_room_is_read_only_as_far_as_a_short_render_needs() {
    let patch = patch_without_leveler();
    // 20 minutes of a lively room, 44.1 kHz, so it is resampled: 24 s made by sox, repeated
    let room = temp("loud-16bit.wav");
    let long = temp("loud-20min.wav");
    let (r, l) = (room.to_str().unwrap(), long.to_str().unwrap());
    sox(&[loud_room().to_str().unwrap(), "-b", "16", r]);
    sox(&[r, l, "repeat", "49"]);
    let minutes = hound::WavReader::open(&long).unwrap().duration() as f64 / 44_100.0 / 60.0;
    assert!(minutes >= 20.0, "{minutes} minutes");
    let decoded_bytes = (minutes * 60.0 * 48_000.0 * 4.0) as u64;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = temp("long-out.wav");
    let (run, peak_rss, took) = common::rss::run_with_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_tapestry"))
            .arg("render")
            .arg(&patch)
            .arg("-p")
            .arg(root.join("patches/minimal.performance.toml"))
            .arg("--input")
            .arg(&long)
            .args(["--duration", "2", "--format", "float32", "-o"])
            .arg(&output),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "a 2 s render with a {minutes:.1}-minute room ({:.0} MB decoded at 48 kHz): peak RSS \
         {:.1} MB, {:.2} s",
        mb(decoded_bytes),
        mb(peak_rss),
        took.as_secs_f64()
    );
    assert!(
        peak_rss < 100 << 20 && peak_rss < decoded_bytes / 4,
        "peak RSS {:.1} MB",
        mb(peak_rss)
    );
    // what was read is what a whole read gave: the 24 s room renders the same 2 s
    let mut r = hound::WavReader::open(&output).unwrap();
    let from_long: Vec<f32> = r.samples::<f32>().map(|s| s.unwrap()).collect();
    let (from_short, _) = render_secs(&patch, &room, "short-out.wav", "2");
    assert_eq!(from_long.len(), 2 * 2 * 48_000);
    assert!(from_long == from_short);
    let _ = std::fs::remove_file(&long);
}

#[test]
fn streamed_room_commands_are_the_whole_recordings_up_to_the_render_end() {
    use tapestry::analysis::WavStream;
    let patch = common::patch_text(common::PULSE_PATCH);
    let room = loud_room();
    let (samples, channels) = tapestry::analysis::read_wav(&room, Some(48_000)).unwrap();
    let script = common::Script::default().join(0.0, 1, Some(0));
    let mut whole = script.clone().performance(30.0);
    tapestry::room::add_room_input(&mut whole, &patch, &samples, channels, 48_000);
    // shorter than the room, a frame more than a whole number of hops, and longer
    for frames in [5 * 48_000, 12 * 48_000 + 1, 40 * 48_000] {
        let mut streamed = script.clone().performance(30.0);
        let mut stream = WavStream::open(&room, Some(48_000)).unwrap();
        tapestry::room::add_room_recording(&mut streamed, &patch, &mut stream, frames).unwrap();
        let expected: Vec<_> = whole
            .commands
            .iter()
            .filter(|c| c.sample < frames)
            .collect();
        assert!(expected.len() > 100, "{} commands", expected.len());
        assert!(
            streamed.commands.iter().eq(expected.iter().copied()),
            "{frames} frames: {} commands streamed, {} expected",
            streamed.commands.len(),
            expected.len()
        );
    }
}
