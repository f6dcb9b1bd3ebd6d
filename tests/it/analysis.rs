//! Room analysis measured on real signals: generated here, and recorded with tools nobody here
//! wrote (sox tones, noise bursts and clicks; espeak-ng speech).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::measure;
use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
use tapestry::analysis::{
    analyze_samples, read_wav, Analyzer, Feature, FeatureFrame, WavStream, LOUDNESS_FLOOR_LUFS,
    MAX_CHANNELS,
};
use tapestry::rng::Rng;

const SR: u32 = 48_000;

// ---------------------------------------------------------------------------
// Signals and tools
// ---------------------------------------------------------------------------

fn temp(name: &str) -> PathBuf {
    crate::common::temp_file("analysis", name)
}

/// Whether `tool` runs; outside CI a missing tool skips the test with a message, in CI
/// (`CI` set) it fails.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is needed in CI (scripts/test.sh installs it)"
        );
        eprintln!("SKIPPED: {tool} is not installed (apt-get install {tool})");
    }
    found
}

/// Runs sox with `args`, the output file being `name` in the temp dir; returns its samples.
fn sox(name: &str, args: &[&str]) -> (Vec<f32>, u16) {
    let out = temp(name);
    let status = Command::new("sox")
        .args(["-R", "-n", "-r", "48000", "-b", "16"]) // -R: the same noise every run
        .arg(&out)
        .args(args)
        .status()
        .expect("sox runs");
    assert!(status.success(), "sox {args:?} failed");
    read_wav(&out, Some(SR)).unwrap()
}

fn sine(freq_hz: f32, amplitude: f32, secs: f32) -> Vec<f32> {
    (0..(secs * SR as f32) as usize)
        .map(|i| amplitude * (std::f32::consts::TAU * freq_hz * i as f32 / SR as f32).sin())
        .collect()
}

/// A sung-like tone: f0 and 7 harmonics falling 1/k, with optional vibrato (depth as a ratio).
fn sung(f0: f32, secs: f32, vibrato_depth: f32) -> Vec<f32> {
    let mut phase = 0.0f64;
    (0..(secs * SR as f32) as usize)
        .map(|i| {
            let t = i as f32 / SR as f32;
            let f = f0 * (1.0 + vibrato_depth * (std::f32::consts::TAU * 5.0 * t).sin());
            phase += f64::from(f) / f64::from(SR);
            (1..=8)
                .map(|k| 0.3 / k as f32 * (std::f64::consts::TAU * phase * k as f64).sin() as f32)
                .sum()
        })
        .collect()
}

/// Claps (noise bursts with a 1 ms attack and a 30 ms decay) at `per_sec` per second, over a
/// -60 dBFS noise floor; returns the signal and the true onset positions.
fn claps(per_sec: f32, secs: f32, seed: u64) -> (Vec<f32>, Vec<u64>) {
    human_claps(per_sec, secs, seed, 0.0, 0.0)
}

/// Like [`claps`], each clap moved by up to ±`jitter_secs` and its level varied by up to
/// ±`level_spread` (a ratio), as people clap.
fn human_claps(
    per_sec: f32,
    secs: f32,
    seed: u64,
    jitter_secs: f32,
    level_spread: f32,
) -> (Vec<f32>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let len = (secs * SR as f32) as usize;
    let mut x: Vec<f32> = (0..len).map(|_| 0.001 * rng.next_bipolar()).collect();
    let period = SR as f32 / per_sec;
    let mut truth = Vec::new();
    let mut k = 0;
    loop {
        let jitter = jitter_secs * SR as f32 * rng.next_bipolar();
        let level = 0.5 * (1.0 + level_spread * rng.next_bipolar());
        let start = (0.1 * SR as f32 + k as f32 * period + jitter).round() as usize;
        if start + SR as usize / 10 > len {
            break;
        }
        truth.push(start as u64);
        for i in 0..(0.2 * SR as f32) as usize {
            if start + i >= len {
                break;
            }
            let t = i as f32 / SR as f32;
            let envelope = (t / 0.001).min(1.0) * (-t / 0.03).exp();
            x[start + i] += level * envelope * rng.next_bipolar();
        }
        k += 1;
    }
    (x, truth)
}

fn onsets(frames: &[FeatureFrame]) -> Vec<u64> {
    frames
        .iter()
        .flat_map(|f| f.onset_times.as_slice().to_vec())
        .collect()
}

/// Every true onset has a detected one within `tol_ms`, and the counts agree within 10 %.
fn assert_onsets_match(found: &[u64], truth: &[u64], tol_ms: f64, what: &str) {
    let tol = (tol_ms * 1e-3 * f64::from(SR)) as u64;
    let count_error = (found.len() as f64 - truth.len() as f64).abs() / truth.len() as f64;
    assert!(
        count_error <= 0.1,
        "{what}: {} onsets found, {} true",
        found.len(),
        truth.len()
    );
    let mut worst_ms = 0.0f64;
    for &t in truth {
        let nearest = found
            .iter()
            .map(|&f| f.abs_diff(t))
            .min()
            .unwrap_or(u64::MAX);
        assert!(
            nearest <= tol,
            "{what}: onset at {:.3} s found only {:.1} ms away",
            t as f64 / f64::from(SR),
            nearest as f64 * 1e3 / f64::from(SR)
        );
        worst_ms = worst_ms.max(nearest as f64 * 1e3 / f64::from(SR));
    }
    eprintln!(
        "{what}: {} of {} onsets, worst timing error {worst_ms:.2} ms",
        found.len(),
        truth.len()
    );
}

/// Frames whose end lies in `from..to` seconds.
fn between(frames: &[FeatureFrame], from: f64, to: f64) -> Vec<FeatureFrame> {
    frames
        .iter()
        .filter(|f| (from..to).contains(&f.end_secs(SR)))
        .copied()
        .collect()
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

fn assert_all_finite(frames: &[FeatureFrame], what: &str) {
    for f in frames {
        let values = Feature::ALL.map(|feature| f.get(feature));
        assert!(
            values.iter().chain(&f.chroma).all(|v| v.is_finite()),
            "{what}: non-finite feature at {:.3} s: {f:?}",
            f.end_secs(SR)
        );
    }
}

// ---------------------------------------------------------------------------
// Loudness
// ---------------------------------------------------------------------------

#[test]
fn loudness_of_a_1khz_sine_follows_a_10_db_step_and_matches_bs1770() {
    // -30 dBFS then -20 dBFS peak: BS.1770 gives -33.01 and -23.01 LUFS for a 1 kHz sine
    let mut x = sine(1000.0, 10f32.powf(-30.0 / 20.0), 5.0);
    x.extend(sine(1000.0, 10f32.powf(-20.0 / 20.0), 5.0));
    let frames = analyze_samples(&x, 1, SR);
    for (from, to, expected) in [(3.5, 5.0, -33.01), (8.5, 10.0, -23.01)] {
        for f in between(&frames, from, to) {
            assert!(
                (f.loudness_lufs - expected).abs() < 0.2,
                "short-term {} LUFS at {:.2} s, expected {expected}",
                f.loudness_lufs,
                f.end_secs(SR)
            );
        }
    }
    // momentary settles within 0.5 s, short-term within 3 s
    for f in between(&frames, 5.45, 6.0) {
        assert!((f.momentary_lufs + 23.01).abs() < 0.2, "{f:?}");
    }
    for f in between(&frames, 8.05, 10.0) {
        assert!((f.loudness_lufs + 23.01).abs() < 1.0, "{f:?}");
    }
}

#[test]
fn loudness_of_sox_pink_noise_steps_agrees_with_libebur128() {
    if !have("sox") {
        return;
    }
    let (quiet, _) = sox("pink30.wav", &["synth", "5", "pinknoise", "vol", "-30dB"]);
    let (loud, _) = sox("pink20.wav", &["synth", "5", "pinknoise", "vol", "-20dB"]);
    let x: Vec<f32> = quiet.iter().chain(&loud).copied().collect();
    let frames = analyze_samples(&x, 1, SR);
    // reference: the ebur128 crate's short-term loudness at the same instants
    let mut meter = ebur128::EbuR128::new(1, SR, ebur128::Mode::S).unwrap();
    let mut step_seen = (f32::NAN, f32::NAN);
    for (i, chunk) in x.chunks(SR as usize / 2).enumerate() {
        meter.add_frames_f32(chunk).unwrap();
        let t = (i + 1) as f64 * 0.5;
        if t < 3.0 {
            continue;
        }
        let reference = meter.loudness_shortterm().unwrap() as f32;
        let ours = frames
            .iter()
            .min_by_key(|f| f.end_frame.abs_diff((t * f64::from(SR)) as u64))
            .unwrap()
            .loudness_lufs;
        assert!(
            (ours - reference).abs() < 0.5,
            "at {t} s: {ours} LUFS, libebur128 {reference}"
        );
        if t == 5.0 {
            step_seen.0 = ours;
        }
        if t == 10.0 {
            step_seen.1 = ours;
        }
    }
    assert!(
        ((step_seen.1 - step_seen.0) - 10.0).abs() < 1.0,
        "step {step_seen:?}"
    );
}

// ---------------------------------------------------------------------------
// Onsets and tempo
// ---------------------------------------------------------------------------

#[test]
fn claps_at_2_4_and_8_per_second_are_counted_and_timed() {
    for per_sec in [2.0, 4.0, 8.0] {
        let (x, truth) = claps(per_sec, 8.0, per_sec as u64);
        let frames = analyze_samples(&x, 1, SR);
        assert_onsets_match(
            &onsets(&frames),
            &truth,
            10.0,
            &format!("{per_sec}/s claps"),
        );
        // reported within one analysis frame plus a hop of the onset
        let analyzer = Analyzer::new(SR, 1);
        let bound = (analyzer.frame_len() + analyzer.hop_frames()) as u64;
        let mut delays: Vec<u64> = frames
            .iter()
            .flat_map(|f| f.onset_times.as_slice().iter().map(|&t| f.end_frame - t))
            .collect();
        delays.sort();
        assert!(delays.iter().all(|&d| d <= bound), "{delays:?}");
        eprintln!(
            "{per_sec}/s claps reported {:.1} ms (median) after the onset",
            delays[delays.len() / 2] as f64 * 1e3 / f64::from(SR)
        );
        let rate = frames.last().unwrap().onset_rate;
        assert!(
            (rate - per_sec).abs() <= 0.1 * per_sec + 1.0 / 3.0,
            "{per_sec}/s claps: onset rate {rate}"
        );
    }
}

#[test]
fn quiet_claps_are_found_down_to_minus_40_dbfs_and_none_at_minus_80() {
    for (level_db, expected) in [(-40.0f32, true), (-80.0, false)] {
        let (x, truth) = claps(4.0, 4.0, 5);
        // claps peak at 0.5: scale so that their peak is `level_db`
        let gain = 10f32.powf(level_db / 20.0) / 0.5;
        let quiet: Vec<f32> = x.iter().map(|v| v * gain).collect();
        let found = onsets(&analyze_samples(&quiet, 1, SR));
        if expected {
            assert_onsets_match(&found, &truth, 10.0, &format!("claps at {level_db} dBFS"));
        } else {
            assert!(found.is_empty(), "{level_db} dBFS: {found:?}");
        }
    }
}

#[test]
fn a_generated_click_track_is_counted_and_timed() {
    for per_sec in [2.0f32, 4.0, 8.0] {
        let period = (SR as f32 / per_sec) as usize;
        let mut x = vec![0.0f32; 8 * SR as usize];
        let mut truth = Vec::new();
        for start in (SR as usize / 10..x.len() - 200).step_by(period) {
            truth.push(start as u64);
            for (i, v) in x[start..start + 96].iter_mut().enumerate() {
                *v = 0.8 * (1.0 - i as f32 / 96.0) * if i % 8 < 4 { 1.0 } else { -1.0 };
            }
        }
        let frames = analyze_samples(&x, 1, SR);
        assert_onsets_match(
            &onsets(&frames),
            &truth,
            10.0,
            &format!("{per_sec}/s clicks"),
        );
    }
}

#[test]
fn sox_noise_bursts_and_clicks_are_counted_and_timed() {
    if !have("sox") {
        return;
    }
    for per_sec in [2u32, 4, 8] {
        let period = 1.0 / per_sec as f64;
        let repeats = (8 * per_sec - 1).to_string();
        // a 60 ms noise burst with a fast decay, padded to the period, repeated
        let burst_pad = format!("{}", period - 0.06);
        let (x, _) = sox(
            &format!("bursts{per_sec}.wav"),
            &[
                "synth",
                "0.06",
                "whitenoise",
                "fade",
                "q",
                "0.001",
                "0.06",
                "0.05",
                "vol",
                "0.5",
                "pad",
                "0",
                &burst_pad,
                "repeat",
                &repeats,
                "pad",
                "0.1",
            ],
        );
        let click_pad = format!("{}", period - 0.002);
        let (clicks, _) = sox(
            &format!("clicks{per_sec}.wav"),
            &[
                "synth", "0.002", "square", "2000", "vol", "0.7", "pad", "0", &click_pad, "repeat",
                &repeats, "pad", "0.1",
            ],
        );
        for (what, signal) in [("sox bursts", x), ("sox clicks", clicks)] {
            let truth: Vec<u64> = (0..8 * per_sec)
                .map(|k| ((0.1 + k as f64 * period) * f64::from(SR)).round() as u64)
                .collect();
            let frames = analyze_samples(&signal, 1, SR);
            assert_onsets_match(
                &onsets(&frames),
                &truth,
                10.0,
                &format!("{what} at {per_sec}/s"),
            );
        }
    }
}

#[test]
fn tempo_of_steady_claps_at_90_120_150_bpm_within_2_bpm_after_8_seconds() {
    for bpm in [90.0f32, 120.0, 150.0] {
        let (x, _) = claps(bpm / 60.0, 10.0, bpm as u64);
        let frames = analyze_samples(&x, 1, SR);
        for f in between(&frames, 8.0, 10.0) {
            assert!(
                (f.tempo_bpm - bpm).abs() <= 2.0,
                "{bpm} BPM claps: tempo {} at {:.2} s",
                f.tempo_bpm,
                f.end_secs(SR)
            );
            assert!(f.pulse_steadiness > 0.5, "{bpm} BPM: {f:?}");
        }
        let last = frames.last().unwrap();
        eprintln!(
            "{bpm} BPM claps: {:.2} BPM, steadiness {:.2}",
            last.tempo_bpm, last.pulse_steadiness
        );
    }
}

#[test]
fn tempo_of_a_crowd_clapping_unevenly_within_2_bpm() {
    // ±15 ms timing jitter, levels ±50 %: onsets still all found, tempo still right
    for bpm in [90.0f32, 120.0, 150.0] {
        let (x, truth) = human_claps(bpm / 60.0, 10.0, 100 + bpm as u64, 0.015, 0.5);
        let frames = analyze_samples(&x, 1, SR);
        assert_onsets_match(&onsets(&frames), &truth, 10.0, &format!("uneven {bpm} BPM"));
        let tempo = median(
            between(&frames, 8.0, 10.0)
                .iter()
                .map(|f| f.tempo_bpm)
                .collect(),
        );
        let steadiness = frames.last().unwrap().pulse_steadiness;
        eprintln!("uneven {bpm} BPM claps: {tempo:.2} BPM, steadiness {steadiness:.2}");
        assert!((tempo - bpm).abs() <= 2.0, "uneven {bpm} BPM: {tempo}");
    }
}

#[test]
fn other_sample_rates_measure_the_same() {
    for rate in [44_100u32, 16_000, 96_000] {
        let n = |secs: f32| (secs * rate as f32) as usize;
        let mut phase = 0.0f64;
        let mut x: Vec<f32> = (0..n(2.0))
            .map(|_| {
                phase += 220.0 / f64::from(rate);
                (1..=6)
                    .map(|k| {
                        0.3 / k as f32 * (std::f64::consts::TAU * phase * k as f64).sin() as f32
                    })
                    .sum()
            })
            .collect();
        // then 8 clicks, 0.25 s apart
        let click_start = x.len();
        x.extend(vec![0.0; n(2.0)]);
        for k in 0..8 {
            let at = click_start + n(0.1) + k * n(0.25);
            x[at..at + n(0.002)].iter_mut().for_each(|v| *v = 0.7);
        }
        let mut analyzer = Analyzer::new(rate, 1);
        let mut frames = Vec::new();
        analyzer.process(&x, |f| frames.push(*f));
        let tone = frames
            .iter()
            .filter(|f| (0.3..1.9).contains(&(f.end_frame as f64 / f64::from(rate))))
            .collect::<Vec<_>>();
        assert!(
            tone.iter().all(|f| (f.pitch_hz / 220.0 - 1.0).abs() < 0.01),
            "{rate} Hz"
        );
        let found: Vec<u64> = frames
            .iter()
            .flat_map(|f| f.onset_times.as_slice().to_vec())
            .collect();
        let clicks = found.iter().filter(|&&t| t as usize >= click_start).count();
        assert_eq!(clicks, 8, "{rate} Hz: {found:?}");
        let hop_ms = analyzer.hop_frames() as f64 * 1e3 / f64::from(rate);
        assert!((5.0..=6.0).contains(&hop_ms), "{rate} Hz: hop {hop_ms} ms");
    }
}

#[test]
fn tempo_of_sox_clap_tracks_and_no_pulse_in_noise() {
    if !have("sox") {
        return;
    }
    for bpm in [90.0f64, 150.0] {
        let period = 60.0 / bpm;
        let pad = format!("{}", period - 0.06);
        let (x, _) = sox(
            &format!("tempo{bpm}.wav"),
            &[
                "synth",
                "0.06",
                "pinknoise",
                "fade",
                "q",
                "0.001",
                "0.06",
                "0.05",
                "pad",
                "0",
                &pad,
                "repeat",
                "16",
            ],
        );
        let frames = analyze_samples(&x, 1, SR);
        let last = frames.last().unwrap();
        assert!(
            (f64::from(last.tempo_bpm) - bpm).abs() <= 2.0,
            "sox {bpm} BPM: {last:?}"
        );
    }
    // steady noise has no pulse
    let (noise, _) = sox("steady.wav", &["synth", "10", "pinknoise", "vol", "0.3"]);
    let frames = analyze_samples(&noise, 1, SR);
    let steadiness = median(
        between(&frames, 8.0, 10.0)
            .iter()
            .map(|f| f.pulse_steadiness)
            .collect(),
    );
    assert!(steadiness < 0.3, "steady noise: steadiness {steadiness}");
}

// ---------------------------------------------------------------------------
// Pitch, chroma, spectrum
// ---------------------------------------------------------------------------

#[test]
fn pitch_of_sung_tones_within_1_percent_when_confident() {
    for f0 in [110.0f32, 155.0, 220.0, 330.0, 440.0, 660.0, 880.0] {
        let x = sung(f0, 1.0, 0.0);
        let frames = analyze_samples(&x, 1, SR);
        let steady = between(&frames, 0.1, 1.0);
        let confident: Vec<_> = steady.iter().filter(|f| f.pitch_confidence > 0.8).collect();
        assert!(
            confident.len() == steady.len(),
            "{f0} Hz: only {} of {} frames confident",
            confident.len(),
            steady.len()
        );
        for f in confident {
            assert!(
                (f.pitch_hz / f0 - 1.0).abs() < 0.01,
                "{f0} Hz: pitch {} (confidence {})",
                f.pitch_hz,
                f.pitch_confidence
            );
        }
        // chroma: the tone's pitch class is the strongest
        let class = ((69.0 + 12.0 * (f0 / 440.0).log2()).round() as usize) % 12;
        let f = steady.last().unwrap();
        assert_eq!(f.chroma[class], 1.0, "{f0} Hz chroma {:?}", f.chroma);
    }
}

#[test]
fn pitch_follows_vibrato_within_1_percent() {
    let f0 = 262.0;
    let depth = 0.01;
    let x = sung(f0, 2.0, depth);
    let frames = analyze_samples(&x, 1, SR);
    let frame_len = Analyzer::new(SR, 1).frame_len() as f64;
    for f in between(&frames, 0.1, 2.0) {
        // YIN integrates over the frame's first half and its lags: centre ≈ 3/8 of the frame
        let t = (f.end_frame as f64 - frame_len * 5.0 / 8.0) / f64::from(SR);
        let truth = f0 * (1.0 + depth * (std::f64::consts::TAU * 5.0 * t).sin() as f32);
        assert!(f.pitch_confidence > 0.8, "{f:?}");
        assert!(
            (f.pitch_hz / truth - 1.0).abs() < 0.01,
            "vibrato at {t:.3} s: {} Hz, truth {truth}",
            f.pitch_hz
        );
    }
}

#[test]
fn pitch_of_sox_tones_within_1_percent() {
    if !have("sox") {
        return;
    }
    for (wave, f0) in [
        ("sawtooth", 98.0f32),
        ("square", 247.0),
        ("triangle", 523.0),
        ("sine", 784.0),
    ] {
        let (x, _) = sox(
            &format!("{wave}{f0}.wav"),
            &["synth", "1", wave, &f0.to_string(), "vol", "0.5"],
        );
        let frames = analyze_samples(&x, 1, SR);
        for f in between(&frames, 0.1, 0.95) {
            assert!(f.pitch_confidence > 0.8, "sox {wave} {f0}: {f:?}");
            assert!(
                (f.pitch_hz / f0 - 1.0).abs() < 0.01,
                "sox {wave} {f0} Hz: {} Hz",
                f.pitch_hz
            );
        }
    }
}

#[test]
fn espeak_speech_is_confident_when_voiced_and_not_in_pauses_or_hiss() {
    if !have("espeak-ng") {
        return;
    }
    let path = temp("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-w"])
        .arg(&path)
        .arg("Hush now. Listen to the room, and sing along softly.")
        .status()
        .unwrap();
    assert!(status.success());
    let (x, channels) = read_wav(&path, Some(SR)).unwrap();
    let frames = analyze_samples(&x, channels, SR);
    let voiced: Vec<_> = frames
        .iter()
        .filter(|f| f.pitch_confidence > 0.8 && (60.0..400.0).contains(&f.pitch_hz))
        .collect();
    let silent: Vec<_> = frames.iter().filter(|f| f.centroid_hz == 0.0).collect();
    let hiss: Vec<_> = frames
        .iter()
        .filter(|f| f.flatness > 0.1 && f.centroid_hz > 3500.0)
        .collect();
    let mean = |v: &[&FeatureFrame]| {
        v.iter().map(|f| f.pitch_confidence).sum::<f32>() / v.len().max(1) as f32
    };
    eprintln!(
        "speech: {} frames, {} voiced, {} silent, {} hiss (mean confidence {:.2})",
        frames.len(),
        voiced.len(),
        silent.len(),
        hiss.len(),
        mean(&hiss)
    );
    assert!(voiced.len() * 4 > frames.len(), "too few voiced frames");
    assert!(silent.len() >= 10, "the pauses between words are found");
    assert!(silent
        .iter()
        .all(|f| f.pitch_confidence == 0.0 && f.pitch_hz == 0.0));
    assert!(hiss.len() >= 5, "the fricatives (sh, s, f) are found");
    assert!(mean(&hiss) < 0.5, "hiss confidence {}", mean(&hiss));
    // the voice is a voice: median pitch of confident frames in a speaking range
    let pitch = median(voiced.iter().map(|f| f.pitch_hz).collect());
    assert!((70.0..300.0).contains(&pitch), "median pitch {pitch}");
}

#[test]
fn centroid_rises_monotonically_from_low_passed_to_bright_sox_noise() {
    if !have("sox") {
        return;
    }
    let mut previous = 0.0;
    for cutoff in ["250", "500", "1000", "2000", "4000", "8000", "none"] {
        let mut args = vec!["synth", "2", "whitenoise", "vol", "0.3"];
        if cutoff != "none" {
            args.extend(["lowpass", cutoff]);
        }
        let (x, _) = sox(&format!("noise{cutoff}.wav"), &args);
        let frames = analyze_samples(&x, 1, SR);
        let centroid = median(
            between(&frames, 0.2, 2.0)
                .iter()
                .map(|f| f.centroid_hz)
                .collect(),
        );
        let flatness = median(
            between(&frames, 0.2, 2.0)
                .iter()
                .map(|f| f.flatness)
                .collect(),
        );
        eprintln!(
            "noise low-passed at {cutoff}: centroid {centroid:.0} Hz, flatness {flatness:.2}"
        );
        assert!(
            centroid > previous * 1.2,
            "{cutoff}: {centroid} after {previous}"
        );
        previous = centroid;
    }
    // white noise is flat, a sine is not
    assert!(previous > 10_000.0);
    let frames = analyze_samples(&sine(440.0, 0.5, 1.0), 1, SR);
    assert!(frames.last().unwrap().flatness < 0.01);
}

#[test]
fn roughness_is_higher_for_a_semitone_cluster_than_for_a_fifth() {
    let mix = |a: f32, b: f32| -> Vec<f32> {
        sine(a, 0.3, 1.0)
            .iter()
            .zip(sine(b, 0.3, 1.0))
            .map(|(x, y)| x + y)
            .collect()
    };
    let rough = |x: &[f32]| {
        median(
            analyze_samples(x, 1, SR)
                .iter()
                .skip(20)
                .map(|f| f.roughness)
                .collect(),
        )
    };
    let semitone = rough(&mix(440.0, 466.2));
    let fifth = rough(&mix(440.0, 660.0));
    let single = rough(&sine(440.0, 0.5, 1.0));
    eprintln!("roughness: single {single:.3}, fifth {fifth:.3}, semitone {semitone:.3}");
    assert!(
        semitone > 0.5 && semitone > 3.0 * fifth,
        "{semitone} vs {fifth}"
    );
    assert!(single < 0.05, "{single}");
}

// ---------------------------------------------------------------------------
// Robustness, streaming, real-time
// ---------------------------------------------------------------------------

#[test]
fn silence_reports_the_documented_floor_values() {
    let frames = analyze_samples(&vec![0.0; 10 * SR as usize], 2, SR);
    assert_all_finite(&frames, "silence");
    for f in &frames {
        assert_eq!(f.loudness_lufs, LOUDNESS_FLOOR_LUFS);
        assert_eq!(f.momentary_lufs, LOUDNESS_FLOOR_LUFS);
        assert_eq!(
            (
                f.centroid_hz,
                f.flatness,
                f.roughness,
                f.pitch_hz,
                f.pitch_confidence
            ),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(
            (f.tempo_bpm, f.pulse_steadiness, f.onset_rate),
            (0.0, 0.0, 0.0)
        );
        assert!(f.onset_times.is_empty() && f.chroma == [0.0; 12]);
    }
}

#[test]
fn clipped_dc_offset_and_huge_inputs_give_finite_features() {
    let tone = sung(220.0, 4.0, 0.0);
    let clipped: Vec<f32> = tone.iter().map(|x| (x * 20.0).clamp(-1.0, 1.0)).collect();
    let dc: Vec<f32> = tone.iter().map(|x| 0.5 + 0.3 * x).collect();
    let pure_dc = vec![0.9f32; 4 * SR as usize];
    let huge: Vec<f32> = tone.iter().map(|x| x * 1e30).collect();
    let extremes: Vec<f32> = (0..4 * SR as usize)
        .map(|i| [f32::MAX, f32::MIN, 0.0, f32::MIN_POSITIVE][i % 4])
        .collect();
    for (what, x) in [
        ("clipped", &clipped),
        ("dc offset", &dc),
        ("pure dc", &pure_dc),
        ("huge", &huge),
        ("extremes", &extremes),
    ] {
        let frames = analyze_samples(x, 1, SR);
        assert_all_finite(&frames, what);
    }
    // DC is removed before pitch: the tone under an offset is still found
    let frames = analyze_samples(&dc, 1, SR);
    let f = frames.last().unwrap();
    assert!((f.pitch_hz / 220.0 - 1.0).abs() < 0.01, "{f:?}");
    // a pure DC offset is silence to the mono features once the high-pass settles
    let frames = analyze_samples(&pure_dc, 1, SR);
    assert_eq!(frames.last().unwrap().pitch_confidence, 0.0);
}

#[test]
fn features_recover_after_a_burst_of_nan_and_inf() {
    let before = sung(330.0, 4.0, 0.0);
    let mut x = before.clone();
    x.extend((0..SR as usize).map(|i| [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3]));
    x.extend(&before);
    let mut analyzer = Analyzer::new(SR, 1);
    let mut frames = Vec::new();
    analyzer.process(&x, |f| frames.push(*f));
    assert_eq!(analyzer.replaced_samples(), u64::from(SR));
    assert_all_finite(&frames, "nan burst");
    let settled = between(&frames, 3.5, 4.0);
    let during = between(&frames, 4.5, 5.0);
    let after = between(&frames, 8.5, 9.0);
    assert!(during.iter().all(|f| f.pitch_confidence == 0.0));
    for (a, b) in settled.iter().zip(&after) {
        assert!(
            (a.loudness_lufs - b.loudness_lufs).abs() < 0.5,
            "{a:?} vs {b:?}"
        );
        assert!((b.pitch_hz / 330.0 - 1.0).abs() < 0.01 && b.pitch_confidence > 0.8);
        assert!((a.centroid_hz - b.centroid_hz).abs() < 0.01 * a.centroid_hz);
    }
}

#[test]
fn output_is_identical_for_any_chunking_and_after_reset() {
    let (claps, _) = claps(4.0, 6.0, 7);
    let tone = sung(196.0, 6.0, 0.01);
    // stereo, so that chunks of odd length split frames
    let stereo: Vec<f32> = claps
        .iter()
        .zip(&tone)
        .flat_map(|(a, b)| [*a, *b])
        .collect();
    let reference = analyze_samples(&stereo, 2, SR);
    assert!(reference.iter().any(|f| !f.onset_times.is_empty()));
    let mut analyzer = Analyzer::new(SR, 2);
    for chunk in [1, 37, 4096] {
        analyzer.reset();
        let mut frames = Vec::new();
        for part in stereo.chunks(chunk) {
            analyzer.process(part, |f| frames.push(*f));
        }
        assert!(frames == reference, "chunks of {chunk} differ");
    }
}

#[test]
fn process_never_allocates() {
    for channels in [1u16, 8] {
        let (claps, _) = claps(8.0, 10.0, 3);
        let tone = sung(147.0, 10.0, 0.01);
        let input: Vec<f32> = claps
            .iter()
            .zip(&tone)
            .flat_map(|(a, b)| {
                (0..channels).map(move |c| if c % 2 == 0 { *a + *b } else { f32::NAN })
            })
            .collect();
        let mut analyzer = Analyzer::new(SR, channels);
        let mut count = 0usize;
        let mut onsets = 0usize;
        reset_violation_count();
        assert_no_alloc(|| {
            for part in input.chunks(999) {
                analyzer.process(part, |f| {
                    count += 1;
                    onsets += f.onset_times.len();
                });
            }
            analyzer.reset();
        });
        assert_eq!(violation_count(), 0, "{channels} channels allocated");
        assert!(
            count > 1000 && onsets > 50,
            "{count} frames, {onsets} onsets"
        );
    }
}

#[test]
fn feature_names_round_trip() {
    for f in Feature::ALL {
        assert_eq!(f.name().parse::<Feature>().unwrap(), f);
        assert!(!f.unit().is_empty());
    }
    let err = "brightness".parse::<Feature>().unwrap_err().to_string();
    assert!(
        err.contains("brightness") && err.contains("onset_rate"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Reading recordings
// ---------------------------------------------------------------------------

fn write_wav(path: &Path, rate: u32, channels: u16, float: bool, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        if float {
            w.write_sample(s).unwrap();
        } else {
            w.write_sample((s * 32767.0).round() as i16).unwrap();
        }
    }
    w.finalize().unwrap();
}

#[test]
fn read_wav_resamples_44100_to_48000_keeping_frequency_and_level() {
    for (channels, float) in [(1u16, false), (3, true)] {
        let secs = 2.0;
        let n = (44_100.0 * secs) as usize;
        let tone: Vec<f32> = (0..n)
            .map(|i| 0.5 * (std::f32::consts::TAU * 1000.0 * i as f32 / 44_100.0).sin())
            .collect();
        let interleaved: Vec<f32> = tone
            .iter()
            .flat_map(|&s| std::iter::repeat_n(s, usize::from(channels)))
            .collect();
        let path = temp(&format!("tone44k-{channels}.wav"));
        write_wav(&path, 44_100, channels, float, &interleaved);
        let (x, got_channels) = read_wav(&path, Some(48_000)).unwrap();
        assert_eq!(got_channels, channels);
        let frames = x.len() / usize::from(channels);
        assert!(
            (frames as f64 / (secs * 48_000.0) - 1.0).abs() < 0.001,
            "{frames} frames"
        );
        let mono: Vec<f32> = x.chunks(usize::from(channels)).map(|f| f[0]).collect();
        let middle = &mono[frames / 4..frames * 3 / 4];
        let freq = measure::dominant_pitch_hz(middle, 48_000.0);
        assert!((freq / 1000.0 - 1.0).abs() < 0.001, "{freq} Hz");
        let level_db = measure::rms_db(middle);
        let expected_db = 20.0 * (0.5f32 / 2f32.sqrt()).log10();
        assert!((level_db - expected_db).abs() < 0.1, "{level_db} dB");
    }
}

#[test]
fn read_wav_reports_missing_and_invalid_files() {
    let missing = read_wav(Path::new("/nonexistent/room.wav"), None).unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/room.wav"),
        "{missing}"
    );
    let text = temp("not.wav");
    std::fs::write(&text, "this is not audio").unwrap();
    let invalid = read_wav(&text, None).unwrap_err();
    assert!(invalid.to_string().contains("not.wav"), "{invalid}");
    let ok = temp("ok.wav");
    write_wav(&ok, 48_000, 1, true, &[0.0; 100]);
    assert!(read_wav(&ok, Some(0)).is_err());
    assert_eq!(read_wav(&ok, None).unwrap().0.len(), 100);
}

/// A WAV of `frames` frames (a chirp on channel 0, seeded noise on the others) in the given
/// format; returns the samples as a reader decodes them (-1..1).
fn write_format(path: &Path, rate: u32, channels: u16, bits: u16, frames: usize) -> Vec<f32> {
    let float = bits == 32;
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let full_scale = (1i64 << (bits - 1)) as f64;
    let mut rng = Rng::new(u64::from(bits) + u64::from(channels));
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut decoded = Vec::new();
    for i in 0..frames {
        let t = i as f32 / rate as f32;
        for c in 0..channels {
            let x = if c == 0 {
                0.6 * (std::f32::consts::TAU * (200.0 + 900.0 * t) * t).sin()
            } else {
                0.3 * (rng.next_f32() * 2.0 - 1.0)
            };
            if float {
                w.write_sample(x).unwrap();
                decoded.push(x);
            } else {
                let v = (f64::from(x) * (full_scale - 1.0)).round() as i32;
                w.write_sample(v).unwrap();
                decoded.push((f64::from(v) / full_scale) as f32);
            }
        }
    }
    w.finalize().unwrap();
    decoded
}

/// How reading a recording worked before it streamed: everything decoded, then resampled
/// whole by rubato's `process_all`.
fn resampled_whole(samples: &[f32], channels: u16, from: u32, to: u32) -> Vec<f32> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};
    let (channels, frames) = (usize::from(channels), samples.len() / usize::from(channels));
    if frames == 0 || from == to {
        return samples.to_vec();
    }
    let input = InterleavedSlice::new(samples, channels, frames).unwrap();
    let mut resampler =
        Fft::<f32>::new(from as usize, to as usize, 1024, channels, FixedSync::Input).unwrap();
    resampler
        .process_all(&input, frames, None)
        .unwrap()
        .take_data()
}

#[test]
fn streamed_reading_gives_exactly_what_a_whole_read_and_resample_gave() {
    // lengths around the resampler's 1024-frame chunk and the 4096-frame pieces
    let lengths = [1, 500, 1023, 1024, 1025, 4096, 4097, 2 * 44_100 + 777];
    for (rate, to, channels, bits) in [
        (44_100, 48_000, 1, 16),
        (44_100, 48_000, 2, 24),
        (48_000, 44_100, 2, 32),
        (32_000, 48_000, 3, 16),
    ] {
        for frames in lengths {
            let path = temp(&format!("stream-{rate}-{channels}-{bits}-{frames}.wav"));
            let decoded = write_format(&path, rate, channels, bits, frames);
            let what = format!("{frames} frames, {channels} ch, {bits} bit, {rate} → {to} Hz");
            let (same_rate, _) = read_wav(&path, None).unwrap();
            assert!(same_rate == decoded, "{what}: decoding differs");
            let expected = resampled_whole(&decoded, channels, rate, to);
            let mut stream = WavStream::open(&path, Some(to)).unwrap();
            assert_eq!(stream.truncation(), None);
            assert_eq!(
                stream.frames() as usize * usize::from(channels),
                expected.len(),
                "{what}"
            );
            let mut pieces = Vec::new();
            let mut largest = 0;
            while let Some(piece) = stream.next_piece().unwrap() {
                assert_eq!(
                    piece.len() % usize::from(channels),
                    0,
                    "{what}: whole frames"
                );
                largest = largest.max(piece.len());
                pieces.extend_from_slice(piece);
            }
            // bit for bit, compared as bits so that a NaN could not hide
            let bits_of = |x: &[f32]| x.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            assert!(
                bits_of(&pieces) == bits_of(&expected),
                "{what}: samples differ"
            );
            assert!(
                largest <= 4096 * usize::from(channels),
                "{what}: a piece of {largest}"
            );
            assert!(read_wav(&path, Some(to)).unwrap().0 == expected, "{what}");
        }
    }
}

#[test]
fn a_wav_cut_short_is_read_as_far_as_it_goes() {
    for bits in [16u16, 24, 32] {
        let (channels, claimed) = (2u16, 10_000u64);
        let path = temp(&format!("cut-{bits}.wav"));
        let decoded = write_format(&path, SR, channels, bits, claimed as usize);
        let whole_bytes = std::fs::metadata(&path).unwrap().len();
        let frame_bytes = u64::from(channels * bits / 8);
        let data_start = whole_bytes - claimed * frame_bytes;
        for (held, extra) in [(3_000u64, 1u64), (0, 0), (1, frame_bytes - 1), (9_999, 0)] {
            let cut = temp(&format!("cut-{bits}-{held}.wav"));
            std::fs::copy(&path, &cut).unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
            file.set_len(data_start + held * frame_bytes + extra)
                .unwrap();
            let stream = WavStream::open(&cut, None).unwrap();
            let truncation = stream.truncation().expect("the cut is seen");
            assert_eq!(
                (truncation.claimed_frames, truncation.held_frames),
                (claimed, held),
                "{bits} bit"
            );
            assert_eq!(stream.frames(), held);
            let message = truncation.to_string();
            assert!(
                message.contains(cut.to_str().unwrap())
                    && message.contains(&format!("({held} frames)"))
                    && message.contains("(10000 frames)"),
                "{message}"
            );
            let n = held as usize * usize::from(channels);
            let (x, _) = read_wav(&cut, None).unwrap();
            assert!(
                x == decoded[..n],
                "{bits} bit, {held} frames: samples differ"
            );
            // resampled, it is what a whole file of those frames gives
            let (y, _) = read_wav(&cut, Some(44_100)).unwrap();
            assert!(y == resampled_whole(&decoded[..n], channels, SR, 44_100));
        }
    }
    // a header with nothing after it is not a WAV file
    let path = temp("cut-16.wav");
    let head = temp("cut-head.wav");
    std::fs::copy(&path, &head).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&head).unwrap();
    file.set_len(20).unwrap();
    let err = read_wav(&head, None).unwrap_err();
    assert!(err.to_string().contains("cannot read as WAV"), "{err}");
}

/// 10 000 generated WAV files — a valid one with its header bytes overwritten, its header
/// fields set to extreme values and its length cut anywhere — read whole: no panic, every
/// piece whole frames of at most 4096 frames, never more samples than the file has bytes
/// for, and an error (never a guess) when hound cannot read the header.
#[test]
fn ten_thousand_mutilated_wav_headers_read_safely() {
    let base = temp("fuzz-base.wav");
    write_format(&base, SR, 2, 16, 300);
    let valid = std::fs::read(&base).unwrap();
    let mut rng = Rng::new(11);
    let mut below = |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
    let (mut read, mut refused, mut cut) = (0, 0, 0);
    let path = temp("fuzz.wav");
    for _ in 0..10_000 {
        let mut bytes = valid.clone();
        match below(4) {
            // random bytes anywhere in the header
            0 => {
                for _ in 0..1 + below(4) {
                    let i = below(44);
                    bytes[i] = below(256) as u8;
                }
            }
            // a header field set to an extreme: channels, rate, block align, bits, data size
            1 => {
                let (at, width) = [(22, 2), (24, 4), (32, 2), (34, 2), (40, 4)][below(5)];
                let value: u32 = [0, 1, 3, 65_535, 0x7FFF_FFFF, u32::MAX][below(6)];
                bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            // the data size claims more than the file holds
            2 => {
                let claim = 4 * (below(1 << 20) as u32 + 300);
                bytes[40..44].copy_from_slice(&claim.to_le_bytes());
            }
            _ => {}
        }
        bytes.truncate(below(bytes.len() + 1));
        std::fs::write(&path, &bytes).unwrap();
        let mut stream = match WavStream::open(&path, None) {
            Ok(stream) => stream,
            Err(e) => {
                assert!(e.to_string().contains("fuzz.wav"), "{e}");
                refused += 1;
                continue;
            }
        };
        cut += usize::from(stream.truncation().is_some());
        let channels = usize::from(stream.channels());
        let mut samples = 0;
        loop {
            match stream.next_piece() {
                Ok(Some(piece)) => {
                    assert!(piece.len() % channels == 0 && piece.len() <= 4096 * channels);
                    samples += piece.len();
                }
                Ok(None) => break,
                Err(e) => panic!("an error after the header was read: {e}"),
            }
        }
        assert_eq!(samples as u64, stream.frames() * channels as u64);
        assert!(
            samples <= bytes.len(),
            "{samples} samples from {} bytes",
            bytes.len()
        );
        read += 1;
    }
    println!("10 000 mutilated WAVs: {read} read ({cut} cut short), {refused} refused");
    assert!(read > 2_000 && refused > 2_000 && cut > 1_000);
}

#[test]
fn a_recording_with_too_many_channels_is_refused_clearly() {
    let path = temp("65-channels.wav");
    write_format(&path, SR, MAX_CHANNELS + 1, 16, 10);
    let err = read_wav(&path, None).unwrap_err();
    assert!(err.to_string().contains("65 channels"), "{err}");
    let path = temp("64-channels.wav");
    write_format(&path, SR, MAX_CHANNELS, 16, 10);
    assert_eq!(read_wav(&path, None).unwrap().1, MAX_CHANNELS);
}

// ---------------------------------------------------------------------------
// `tapestry analyze`
// ---------------------------------------------------------------------------

fn tapestry_analyze(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapestry"))
        .arg("analyze")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_analyze_prints_a_timeline_and_summary_and_writes_csv() {
    // 20 claps at 120 BPM, stereo
    let (x, truth) = claps(2.0, 10.0, 11);
    let stereo: Vec<f32> = x.iter().flat_map(|&s| [s, 0.5 * s]).collect();
    let wav = temp("cli-claps.wav");
    write_wav(&wav, SR, 2, true, &stereo);
    let csv = temp("cli-claps.csv");
    let out = tapestry_analyze(&[
        wav.as_os_str(),
        "--csv".as_ref(),
        csv.as_os_str(),
        "--every".as_ref(),
        "1".as_ref(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a timeline line per second, then the summary
    let timeline = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(timeline, 10, "{stdout}");
    let onsets: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("onsets"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no onset count in {stdout}"));
    assert_eq!(onsets, truth.len(), "{stdout}");
    assert!(stdout.contains("tempo           120.0 BPM"), "{stdout}");
    // every frame in the CSV, with units in the header
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(header.contains(&"loudness_lufs") && header.contains(&"centroid_hz"));
    assert!(header.contains(&"tempo_bpm") && header.contains(&"onset_rate_per_s"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 10 * SR as usize / 256);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let onset_column = header.iter().position(|h| *h == "onset_times_s").unwrap();
    let csv_onsets: Vec<f64> = rows
        .iter()
        .filter(|r| !r[onset_column].is_empty())
        .flat_map(|r| {
            r[onset_column]
                .split(';')
                .map(|t| t.parse::<f64>().unwrap())
        })
        .collect();
    assert_eq!(csv_onsets.len(), truth.len());
    for (found, t) in csv_onsets.iter().zip(&truth) {
        assert!(
            (found - *t as f64 / f64::from(SR)).abs() < 0.01,
            "{found} vs {t}"
        );
    }
}

#[test]
fn cli_analyze_streams_a_long_recording_and_reads_one_cut_short() {
    // 30 s of 16 channels, 16-bit: 46 MB on disk, 92 MB decoded to f32
    let mono = temp("long-mono.wav");
    let long = temp("long-16ch.wav");
    let status = Command::new("sox")
        .args(["-R", "-n", "-r", "48000", "-b", "16", "-c", "1"])
        .arg(&mono)
        .args(["synth", "30", "pinknoise", "gain", "-12"])
        .status()
        .expect("sox runs");
    assert!(status.success());
    let status = Command::new("sox")
        .arg(&mono)
        .arg(&long)
        .arg("remix")
        .args(["1"; 16])
        .status()
        .expect("sox runs");
    assert!(status.success());
    let decoded_bytes = 30 * 48_000 * 16 * 4;
    let (out, peak_rss, took) = crate::common::rss::run_with_peak_rss(
        Command::new(env!("CARGO_BIN_EXE_tapestry"))
            .arg("analyze")
            .arg(&long),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "analyze of 30 s x 16 channels ({} MB decoded): peak RSS {:.1} MB, {:.1} s\n{stdout}",
        decoded_bytes >> 20,
        peak_rss as f64 / (1 << 20) as f64,
        took.as_secs_f64()
    );
    assert!(stdout.contains("16 channel(s)") && stdout.contains("duration        30.00 s"));
    assert!(peak_rss < 40 << 20, "peak RSS {peak_rss} bytes");
    for big in [&mono, &long] {
        let _ = std::fs::remove_file(big);
    }

    // cut in its data: what is there is analysed, and the warning says how much that is
    let (x, _) = claps(2.0, 4.0, 5);
    let wav = temp("cli-cut.wav");
    write_wav(&wav, SR, 1, false, &x);
    let whole = std::fs::metadata(&wav).unwrap().len();
    let cut = whole - 2 * 3 * u64::from(SR) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wav)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let out = tapestry_analyze(&[wav.as_os_str()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains("cli-cut.wav")
            && stderr.contains("(120000 frames)")
            && stderr.contains("(192000 frames)"),
        "{stderr}"
    );
    assert!(stdout.contains("duration        2.50 s"), "{stdout}");
}

#[test]
fn cli_analyze_fails_clearly_on_missing_or_invalid_input() {
    let missing = tapestry_analyze(&["/nonexistent/room.wav".as_ref()]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("/nonexistent/room.wav") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let text = temp("cli-not.wav");
    std::fs::write(&text, "RIFF but not really").unwrap();
    let invalid = tapestry_analyze(&[text.as_os_str()]);
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(!invalid.status.success());
    assert!(
        stderr.contains("cannot read as WAV") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let wav = temp("cli-ok.wav");
    write_wav(&wav, SR, 1, false, &sine(440.0, 0.5, 0.5));
    let bad_hop = tapestry_analyze(&[wav.as_os_str(), "--hop-ms".as_ref(), "500".as_ref()]);
    assert!(!bad_hop.status.success());
    assert!(String::from_utf8_lossy(&bad_hop.stderr).contains("--hop-ms"));
    let ok = tapestry_analyze(&[wav.as_os_str(), "--hop-ms".as_ref(), "10".as_ref()]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("hop 480 frames"));
}
