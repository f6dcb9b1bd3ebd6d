//! Self-tests of the measurement tools the engine tests rely on, on synthetic signals.

use crate::common::measure::*;
use std::f32::consts::TAU;

const SR: f32 = 48_000.0;

/// Tiny deterministic xorshift32 PRNG.
struct XorShift(u32);
impl XorShift {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

fn noise(seed: u32, len: usize, amp: f32) -> Vec<f32> {
    let mut r = XorShift(seed);
    (0..len).map(|_| amp * r.uniform()).collect()
}

fn sine_sr(freq: f32, secs: f32, amp: f32, sr: f32) -> Vec<f32> {
    let n = (secs * sr) as usize;
    (0..n)
        .map(|i| amp * (TAU * (freq as f64 * i as f64 / sr as f64).fract() as f32).sin())
        .collect()
}

fn sine(freq: f32, secs: f32, amp: f32) -> Vec<f32> {
    sine_sr(freq, secs, amp, SR)
}

fn midi_hz(m: f32) -> f32 {
    440.0 * 2f32.powf((m - 69.0) / 12.0)
}

fn mix(parts: &[Vec<f32>]) -> Vec<f32> {
    let n = parts.iter().map(|p| p.len()).max().unwrap_or(0);
    let mut out = vec![0.0; n];
    for p in parts {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

fn chord(midis: &[f32], secs: f32, amp_each: f32) -> Vec<f32> {
    let parts: Vec<Vec<f32>> = midis
        .iter()
        .map(|&m| sine(midi_hz(m), secs, amp_each))
        .collect();
    mix(&parts)
}

fn interleave(l: &[f32], r: &[f32]) -> Vec<f32> {
    l.iter().zip(r).flat_map(|(&a, &b)| [a, b]).collect()
}

fn scaled(x: &[f32], g: f32) -> Vec<f32> {
    x.iter().map(|v| v * g).collect()
}

/// Decaying notes: `rate` per second from `start` until `secs`, 2 ms attack, exponential
/// decay `tau`, pitch cycled from `midis`, `harmonics` partials with 1/h amplitudes.
/// Returns (signal, onset times).
fn notes(
    rate: f32,
    secs: f32,
    midis: &[f32],
    tau: f32,
    harmonics: usize,
    start: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0.0f32; (secs * SR) as usize];
    let mut times = Vec::new();
    for k in 0.. {
        let t0 = start + k as f32 / rate;
        if t0 >= secs - 0.05 {
            break;
        }
        times.push(t0);
        let f = midi_hz(midis[k % midis.len()]);
        let s0 = (t0 * SR) as usize;
        for (i, o) in out[s0..].iter_mut().enumerate() {
            let t = i as f32 / SR;
            let env = (t / 0.002).min(1.0) * (-t / tau).exp();
            if t > 0.01 && env < 1e-5 {
                break;
            }
            let v: f32 = (1..=harmonics)
                .map(|h| (TAU * f * h as f32 * t).sin() / h as f32)
                .sum();
            *o += 0.3 * env * v;
        }
    }
    (out, times)
}

/// 1 ms alternating-sign decaying bursts (a click track). Returns (signal, click times).
fn click_track(rate: f32, secs: f32, start: f32, sr: f32) -> (Vec<f32>, Vec<f32>) {
    let mut out = vec![0.0f32; (secs * sr) as usize];
    let len = (sr / 1000.0) as usize;
    let mut times = Vec::new();
    let mut t = start;
    while t < secs - 0.01 {
        let i = (t * sr) as usize;
        for j in 0..len {
            let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
            out[i + j] += 0.8 * (1.0 - j as f32 / len as f32) * sign;
        }
        times.push(t);
        t += 1.0 / rate;
    }
    (out, times)
}

/// PolyBLEP (band-limited-ish) saw with start phase `ph` in [0, 1).
fn blep_saw(f: f64, ph: f64, secs: f32, amp: f32) -> Vec<f32> {
    let dt = f / SR as f64;
    let mut p = ph;
    (0..(secs * SR) as usize)
        .map(|_| {
            let mut v = 2.0 * p - 1.0;
            if p < dt {
                let t = p / dt;
                v -= t + t - t * t - 1.0;
            } else if p > 1.0 - dt {
                let t = (p - 1.0) / dt;
                v -= t * t + t + t + 1.0;
            }
            p = (p + dt).fract();
            amp * v as f32
        })
        .collect()
}

fn one_pole_lowpass(x: &[f32], cutoff: f32) -> Vec<f32> {
    let a = (-TAU * cutoff / SR).exp();
    let mut y = 0.0;
    x.iter()
        .map(|&v| {
            y = (1.0 - a) * v + a * y;
            y
        })
        .collect()
}

/// Slow-attack pad: 4 chords, one per second, 300 ms attack, 300 ms release.
fn slow_pad() -> Vec<f32> {
    let chords = [
        [48.0, 52.0, 55.0],
        [45.0, 48.0, 52.0],
        [41.0, 45.0, 48.0],
        [43.0, 47.0, 50.0],
    ];
    let mut pad = vec![0.0f32; 4 * SR as usize];
    for (c, ch) in chords.iter().enumerate() {
        let s0 = c * SR as usize;
        for &m in ch {
            let f = midi_hz(m);
            for (i, o) in pad.iter_mut().enumerate().skip(s0) {
                let t = (i - s0) as f32 / SR;
                let rel = if t > 1.0 {
                    (-(t - 1.0) / 0.3).exp()
                } else {
                    1.0
                };
                let env = (t / 0.3).min(1.0) * rel;
                *o += 0.15 * env * ((TAU * f * t).sin() + 0.5 * (TAU * 2.0 * f * t).sin());
            }
        }
    }
    pad
}

/// 110 Hz band-limited saw (harmonics below 20 kHz).
fn saw(f: f32, secs: f32, amp: f32) -> Vec<f32> {
    let parts: Vec<Vec<f32>> = (1..)
        .take_while(|h| f * (*h as f32) < 20_000.0)
        .map(|h| sine(f * h as f32, secs, amp * 0.6 / h as f32))
        .collect();
    mix(&parts)
}

/// `n_on` samples of a 440 Hz sine starting at a phase where it is at 0.7 of peak when cut,
/// then silence.
fn gated_sine(freq: f32, cut_at: usize, fade: usize, total: usize) -> Vec<f32> {
    (0..total)
        .map(|i| {
            let g = if i < cut_at {
                1.0
            } else if i < cut_at + fade {
                1.0 - (i - cut_at) as f32 / fade as f32
            } else {
                0.0
            };
            0.5 * g * (TAU * freq * i as f32 / SR).sin()
        })
        .collect()
}

/// First sample index >= `from` where a sine of `freq` (phase 0 at 0) has value `v` rising.
fn index_at_value(freq: f32, from: usize, v: f32) -> usize {
    (from..)
        .find(|&i| {
            let a = (TAU * freq * i as f32 / SR).sin();
            let b = (TAU * freq * (i + 1) as f32 / SR).sin();
            a <= v && b > v
        })
        .unwrap()
        + 1
}

fn assert_onsets_match(found: &[f32], truth: &[f32], tol_secs: f32) {
    for t in truth {
        assert!(
            found.iter().any(|f| (f - t).abs() <= tol_secs),
            "no onset near {t}: {found:?}"
        );
    }
}

fn count_within(found: usize, expected: usize, frac: f32) -> bool {
    (found as f32 - expected as f32).abs() <= (expected as f32 * frac).max(0.5)
}

// ----- channels / segment -----

#[test]
fn channel_helpers() {
    let st = [1.0, -1.0, 0.5, 0.25, 3.0];
    let (l, r) = deinterleave(&st);
    assert_eq!(l, vec![1.0, 0.5]);
    assert_eq!(r, vec![-1.0, 0.25]);
    assert_eq!(mono(&st), vec![0.0, 0.375]);
    assert!(deinterleave(&[]).0.is_empty());
}

#[test]
fn segment_clamps() {
    let st: Vec<f32> = (0..20).map(|i| i as f32).collect(); // 10 frames
    assert_eq!(segment(&st, 10, 0.2, 0.5), &st[4..10]);
    assert_eq!(segment(&st, 10, -1.0, 0.1), &st[0..2]);
    assert_eq!(segment(&st, 10, 0.5, 99.0), &st[10..20]);
    assert!(segment(&st, 10, 0.6, 0.3).is_empty());
    assert!(segment(&st, 10, f32::NAN, f32::NAN).is_empty());
    assert_eq!(segment(&st, 10, 0.0, f32::INFINITY).len(), 20);
    assert_eq!(segment(&st[..19], 10, 0.0, 99.0).len(), 18);
}

// ----- level -----

#[test]
fn level_measures() {
    let s = sine(1000.0, 1.0, 0.5);
    assert!((rms(&s) - 0.5 / 2f32.sqrt()).abs() < 1e-3);
    assert!((rms_db(&s) - (-9.03)).abs() < 0.02);
    assert!((peak(&s) - 0.5).abs() < 1e-3);
    assert!((sample_peak_dbfs(&s) - (-6.02)).abs() < 0.02);
    assert_eq!(rms(&[]), 0.0);
    assert_eq!(rms_db(&[0.0; 10]), -200.0);
    assert_eq!(sample_peak_dbfs(&[]), -200.0);
    assert!(all_finite(&s));
    assert!(!all_finite(&[0.0, f32::NAN]));
    assert!(!all_finite(&[f32::INFINITY]));
    assert_eq!(peak(&[0.1, f32::NAN, -0.3]), 0.3);
}

#[test]
fn integrated_lufs_reference() {
    // Stereo 1 kHz sine at -20 dBFS peak in both channels ~ -20 LUFS.
    let s = sine(1000.0, 3.0, 0.1);
    let st = interleave(&s, &s);
    let l = integrated_lufs(&st, SR as u32);
    assert!((l - (-20.0)).abs() < 0.3, "{l}");
    let quieter = integrated_lufs(&scaled(&st, 0.316_227_8), SR as u32);
    assert!((l - quieter - 10.0).abs() < 0.1, "{l} {quieter}");
    // One channel only: -3 LU.
    let z = vec![0.0; s.len()];
    let one = integrated_lufs(&interleave(&s, &z), SR as u32);
    assert!((l - one - 3.01).abs() < 0.1, "{one}");
    assert_eq!(
        integrated_lufs(&vec![0.0; 96_000], SR as u32),
        f64::NEG_INFINITY
    );
    assert_eq!(integrated_lufs(&[], SR as u32), f64::NEG_INFINITY);
    let short = sine(1000.0, 0.2, 0.1);
    let short_l = integrated_lufs(&interleave(&short, &short), SR as u32);
    assert_eq!(short_l, f64::NEG_INFINITY);
    assert_eq!(integrated_lufs(&st, 0), f64::NEG_INFINITY);
}

// ----- spectrum -----

#[test]
fn centroid_tracks_brightness() {
    let white = noise(1, SR as usize * 2, 0.5);
    let c_white = spectral_centroid_hz(&white, SR);
    assert!((c_white - 12_000.0).abs() < 600.0, "{c_white}");
    let mut dark = white.clone();
    for _ in 0..4 {
        dark = one_pole_lowpass(&dark, 400.0);
    }
    let c_dark = spectral_centroid_hz(&dark, SR);
    assert!(c_dark < 1000.0, "{c_dark}");
    let c_sine = spectral_centroid_hz(&sine(1000.0, 1.0, 0.3), SR);
    assert!((c_sine - 1000.0).abs() < 10.0, "{c_sine}");
    // Level-independent; a near-silent tail does not pull it.
    let c_quiet = spectral_centroid_hz(&scaled(&white, 0.01), SR);
    assert!((c_quiet - c_white).abs() < 50.0);
    let mut with_tail = sine(1000.0, 1.0, 0.3);
    with_tail.extend(noise(2, SR as usize * 3, 1e-6));
    assert!((spectral_centroid_hz(&with_tail, SR) - 1000.0).abs() < 10.0);
    assert_eq!(spectral_centroid_hz(&[0.0; 10_000], SR), 0.0);
    assert_eq!(spectral_centroid_hz(&[], SR), 0.0);
    // Shorter than one frame still works.
    let short = spectral_centroid_hz(&sine(2000.0, 0.05, 0.3), SR);
    assert!((short - 2000.0).abs() < 50.0, "{short}");
}

#[test]
fn dominant_pitch_is_accurate() {
    for f in [61.74f32, 220.0, 440.0, 1234.5, 5000.0] {
        let p = dominant_pitch_hz(&sine(f, 1.0, 0.3), SR);
        assert!((p - f).abs() < 0.1, "{f} -> {p}");
    }
    let p = dominant_pitch_hz(&sine_sr(440.0, 0.5, 0.3, 44_100.0), 44_100.0);
    assert!((p - 440.0).abs() < 0.1, "{p}");
    // Strongest partial of a saw is the fundamental.
    let p = dominant_pitch_hz(&saw(110.0, 1.0, 0.5), SR);
    assert!((p - 110.0).abs() < 0.1, "{p}");
    // Short note (100 ms) still within 1 Hz; DC offset ignored.
    let short: Vec<f32> = sine(330.0, 0.1, 0.3).iter().map(|v| v + 0.5).collect();
    let p = dominant_pitch_hz(&short, SR);
    assert!((p - 330.0).abs() < 1.0, "{p}");
    assert_eq!(dominant_pitch_hz(&[0.0; 4096], SR), 0.0);
    assert_eq!(dominant_pitch_hz(&[], SR), 0.0);
}

// ----- pitch content -----

#[test]
fn chroma_of_triads() {
    // A major triad A3 C#4 E4 -> classes 9, 1, 4.
    let a_major = chord(&[57.0, 61.0, 64.0], 2.0, 0.2);
    let c = chroma(&a_major, SR);
    assert!((c.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    let mut idx: Vec<usize> = (0..12).collect();
    idx.sort_by(|&a, &b| c[b].total_cmp(&c[a]));
    let mut top3 = idx[..3].to_vec();
    top3.sort();
    assert_eq!(top3, vec![1, 4, 9], "{c:?}");
    assert!(pitch_class_share(&c, &[9, 1, 4]) >= 0.9);
    // C major triad C4 E4 G4 (+ C5) -> share of {C, E, G} >= 0.9.
    let c_major = chord(&[60.0, 64.0, 67.0, 72.0], 2.0, 0.2);
    let cc = chroma(&c_major, SR);
    let share = pitch_class_share(&cc, &[0, 4, 7]);
    assert!(share >= 0.9, "{share} {cc:?}");
    // mod 12 and duplicates
    assert_eq!(pitch_class_share(&cc, &[12, 16, 7, 7]), share);
    assert!(pitch_class_share(&cc, &[1, 3, 6, 8, 10]) < 0.05);
    // Low register smears (Hann main lobe wider than a semitone below ~200 Hz at 48 kHz):
    // C3 E3 G3 measures ~0.73, still clearly the top three classes.
    let low = chroma(&chord(&[48.0, 52.0, 55.0], 2.0, 0.2), SR);
    let low_share = pitch_class_share(&low, &[0, 4, 7]);
    assert!(low_share > 0.65, "{low_share} {low:?}");
    // Silence.
    assert_eq!(chroma(&[0.0; 20_000], SR), [0.0; 12]);
    assert_eq!(pitch_class_share(&[0.0; 12], &[0]), 0.0);
}

#[test]
fn chroma_concentration_orders_signals() {
    let tone = chroma_concentration(&chroma(&sine(440.0, 2.0, 0.3), SR));
    let triad = chroma_concentration(&chroma(&chord(&[57.0, 61.0, 64.0], 2.0, 0.2), SR));
    let white = chroma_concentration(&chroma(&noise(3, 2 * SR as usize, 0.5), SR));
    assert!(tone > 0.8, "{tone}");
    assert!(triad > 0.4 && triad < tone, "{triad}");
    assert!(white < 0.05, "{white}");
    let mut one = [0.0; 12];
    one[3] = 1.0;
    assert!((chroma_concentration(&one) - 1.0).abs() < 1e-6);
    assert!(chroma_concentration(&[1.0 / 12.0; 12]).abs() < 1e-6);
    assert_eq!(chroma_concentration(&[0.0; 12]), 0.0);
}

// ----- stereo -----

#[test]
fn lr_correlation_cases() {
    let a = noise(4, SR as usize, 0.5);
    let b = noise(5, SR as usize, 0.5);
    assert!((lr_correlation(&interleave(&a, &a)) - 1.0).abs() < 1e-5);
    assert!((lr_correlation(&interleave(&a, &scaled(&a, 0.3))) - 1.0).abs() < 1e-5);
    assert!((lr_correlation(&interleave(&a, &scaled(&a, -1.0))) + 1.0).abs() < 1e-5);
    let r = lr_correlation(&interleave(&a, &b));
    assert!(r.abs() < 0.03, "{r}");
    // 50/50 mix of common and independent noise -> ~0.5.
    let l = mix(&[a.clone(), b.clone()]);
    let c = noise(6, SR as usize, 0.5);
    let rr = mix(&[a.clone(), c]);
    let r = lr_correlation(&interleave(&l, &rr));
    assert!((r - 0.5).abs() < 0.05, "{r}");
    // DC offsets do not matter (Pearson).
    let ld: Vec<f32> = a.iter().map(|v| v + 0.3).collect();
    assert!((lr_correlation(&interleave(&ld, &a)) - 1.0).abs() < 1e-4);
    let z = vec![0.0; a.len()];
    assert_eq!(lr_correlation(&interleave(&a, &z)), 0.0);
    assert_eq!(lr_correlation(&interleave(&z, &z)), 1.0);
    assert_eq!(lr_correlation(&[]), 0.0);
}

// ----- clicks -----

#[test]
fn click_detector_gate_vs_fade() {
    let f = 440.0;
    let w = 256;
    let total = SR as usize;
    // Cut where the sine is at 0.7 of its peak, rising.
    let cut = index_at_value(f, total / 2, 0.7);
    let gated = gated_sine(f, cut, 0, total);
    let faded = gated_sine(f, cut, (0.02 * SR) as usize, total);
    let clean = sine(f, 1.0, 0.5);
    let (jg, jf, jc) = (
        max_jump_ratio(&gated, w),
        max_jump_ratio(&faded, w),
        max_jump_ratio(&clean, w),
    );
    assert!(jg > 1.0, "gate {jg}");
    assert!(jf < 0.3, "fade {jf}");
    assert!(jc < 0.15, "clean {jc}");
    let (dg, df, dc) = (
        max_second_difference_ratio(&gated, w),
        max_second_difference_ratio(&faded, w),
        max_second_difference_ratio(&clean, w),
    );
    assert!(dg > 1.0, "gate {dg}");
    assert!(df < 0.05, "fade {df}");
    assert!(dc < 0.02, "clean {dc}");
    // Gate at a zero crossing: invisible to a level jump, visible as a slope break.
    let zc = index_at_value(f, total / 2, 0.0);
    let gated_zc = gated_sine(f, zc, 0, total);
    let d_zc = max_second_difference_ratio(&gated_zc, w);
    assert!(
        d_zc > 4.0 * df && d_zc > 0.08,
        "zero-crossing gate {d_zc} vs fade {df}"
    );
    // Step in a low-frequency sine (60 Hz), 1% of full scale: second difference catches it.
    let mut low = sine(60.0, 1.0, 0.5);
    for v in &mut low[24_000..] {
        *v += 0.01;
    }
    let clean_low = max_second_difference_ratio(&sine(60.0, 1.0, 0.5), w);
    assert!(max_second_difference_ratio(&low, w) > 20.0 * clean_low);
    // Silence and very quiet material are floored.
    assert_eq!(max_jump_ratio(&[0.0; 1000], w), 0.0);
    assert!(max_jump_ratio(&noise(7, 1000, 1e-6), w) < 0.05);
    assert_eq!(max_jump_ratio(&[0.5], w), 0.0);
    assert_eq!(max_second_difference_ratio(&[0.5, 0.1], w), 0.0);
}

// ----- onsets -----

#[test]
fn onsets_click_track() {
    for rate in [2.0, 4.0, 8.0, 16.0] {
        let (x, truth) = click_track(rate, 4.0, 0.1, SR);
        let found = onsets(&x, SR);
        assert_eq!(found.len(), truth.len(), "rate {rate}: {found:?}");
        assert_onsets_match(&found, &truth, 0.015);
    }
    let sr = 44_100.0;
    let (x, truth) = click_track(5.0, 3.0, 0.25, sr);
    let found = onsets(&x, sr);
    assert_eq!(found.len(), truth.len());
    assert_onsets_match(&found, &truth, 0.015);
}

#[test]
fn onsets_decaying_notes() {
    let melody = [60.0, 64.0, 67.0, 72.0, 62.0, 65.0];
    for rate in [2.0, 4.0, 8.0] {
        let (x, truth) = notes(rate, 4.0, &melody, 0.15, 1, 0.1);
        let found = onsets(&x, SR);
        assert!(
            count_within(found.len(), truth.len(), 0.1),
            "rate {rate}: {found:?}"
        );
        assert_onsets_match(&found, &truth, 0.02);
        let per_sec = onset_rate_per_sec(&x, SR);
        assert!(
            (per_sec - rate).abs() <= 0.1 * rate + 0.25,
            "{rate}: {per_sec}"
        );
        // Same at -40 dB (level-independent).
        let quiet = onsets(&scaled(&x, 0.01), SR);
        assert!(count_within(quiet.len(), truth.len(), 0.1), "quiet {rate}");
        // Repeated same pitch, long decay (retriggers from ~-3.5..-15 dB).
        let (x, truth) = notes(rate, 4.0, &[57.0], 0.3, 1, 0.1);
        let n = onsets(&x, SR).len();
        assert!(count_within(n, truth.len(), 0.1), "same pitch {rate}: {n}");
        // Overlapping low harmonic notes (A2 E3 C3 G3, 6 partials).
        let (x, truth) = notes(rate, 4.0, &[45.0, 52.0, 48.0, 55.0], 0.3, 6, 0.1);
        let n = onsets(&x, SR).len();
        assert!(count_within(n, truth.len(), 0.1), "harmonic {rate}: {n}");
    }
}

#[test]
fn onsets_ignore_steady_sounds() {
    let len = 4 * SR as usize;
    // Sound starting at t=0 counts as (at most) one onset.
    for (name, x) in [
        ("white noise", noise(8, len, 0.3)),
        ("quiet noise", noise(9, len, 0.01)),
        (
            "low-passed noise",
            one_pole_lowpass(&noise(10, len, 0.5), 300.0),
        ),
        ("C major chord", chord(&[48.0, 52.0, 55.0, 60.0], 4.0, 0.2)),
        ("low chord", chord(&[33.0, 40.0, 45.0, 49.0], 4.0, 0.2)),
        (
            "cluster",
            chord(&[60.0, 61.0, 62.0, 63.0, 64.0, 65.0, 66.0], 4.0, 0.1),
        ),
    ] {
        let found = onsets(&x, SR);
        assert!(found.len() <= 1, "{name}: {found:?}");
        assert!(found.iter().all(|&t| t < 0.02), "{name}: {found:?}");
    }
    // Slow-attack pad with 4 chord changes: (almost) no onsets.
    let n = onsets(&slow_pad(), SR).len();
    assert!(n <= 1, "pad {n}");
    // Fade-in noise: no onset at all.
    let fade_in: Vec<f32> = noise(11, len, 0.3)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (i as f32 / SR).min(1.0))
        .collect();
    let fi = onsets(&fade_in, SR);
    assert!(
        fi.len() <= 1 && fi.iter().all(|&t| t < 0.02),
        "fade-in {fi:?}"
    );
    assert!(onsets(&[], SR).is_empty());
    assert!(onsets(&vec![0.0; len], SR).is_empty());
    assert_eq!(onset_rate_per_sec(&[], SR), 0.0);
}

#[test]
fn onsets_ignore_steady_bright_waveforms() {
    // Naive (hard-edged) and band-limited saws, pulse-like low bass: each waveform edge
    // must not count as an onset.
    for f in [41.2f32, 55.0, 82.4, 110.0, 220.0, 440.0] {
        let naive: Vec<f32> = (0..2 * SR as usize)
            .map(|i| 0.5 * (2.0 * (f as f64 * i as f64 / SR as f64).fract() as f32 - 1.0))
            .collect();
        let n = onsets(&naive, SR);
        assert!(n.len() <= 1, "naive saw {f}: {n:?}");
    }
    let n = onsets(&saw(110.0, 2.0, 0.5), SR);
    assert!(n.len() <= 1, "saw {n:?}");
    // 7-voice PolyBLEP supersaw at C3, irregular detune +-30 cents, random phases.
    let mut rng = XorShift(99);
    let voices: Vec<Vec<f32>> = [-31.0, -19.0, -7.0, 0.0, 9.0, 21.0, 33.0]
        .iter()
        .map(|c: &f64| {
            let f = 130.8 * 2f64.powf(c / 1200.0);
            blep_saw(f, 0.5 + 0.5 * rng.uniform() as f64, 4.0, 0.1)
        })
        .collect();
    let n = onsets(&mix(&voices), SR);
    assert!(n.len() <= 1, "supersaw {n:?}");
    let mut vib = vec![0.0f32; 4 * SR as usize];
    let mut ph = [0.0f32; 3];
    for (i, o) in vib.iter_mut().enumerate() {
        let t = i as f32 / SR;
        for (p, m) in ph.iter_mut().zip([57.0f32, 61.0, 64.0]) {
            *p = (*p + midi_hz(m) * (1.0 + 0.006 * (TAU * 5.5 * t).sin()) / SR).fract();
            *o += 0.2 * (TAU * *p).sin();
        }
    }
    let n = onsets(&vib, SR);
    assert!(n.len() <= 1, "vibrato {n:?}");
}

#[test]
fn onsets_steady_noise_many_seeds() {
    // 6 x 10 s of white, low-passed and quiet noise: no onsets after the start.
    for seed in 1..=6u32 {
        let mut x = noise(seed * 7919, 10 * SR as usize, 0.5);
        if seed % 2 == 0 {
            x = one_pole_lowpass(&x, 800.0);
        }
        if seed % 3 == 0 {
            x = scaled(&x, 0.01);
        }
        let found = onsets(&x, SR);
        assert!(
            found.len() <= 1 && found.iter().all(|&t| t < 0.02),
            "{seed}: {found:?}"
        );
    }
}

#[test]
fn onsets_notes_over_noise_bed() {
    let (x, truth) = notes(4.0, 4.0, &[60.0, 64.0, 67.0, 72.0], 0.15, 1, 0.1);
    let bed = noise(12, x.len(), 0.05);
    let found = onsets(&mix(&[x, bed]), SR);
    // +1 for the noise bed starting at t=0.
    assert!(count_within(found.len(), truth.len() + 1, 0.1), "{found:?}");
    assert_onsets_match(&found, &truth, 0.02);
}

/// Prints the typical values of the click and onset detectors (run with
/// `cargo test -- --ignored --nocapture print_calibration`).
#[test]
#[ignore]
fn print_calibration() {
    let w = 256;
    let f = 440.0;
    let total = SR as usize;
    let cut = index_at_value(f, total / 2, 0.7);
    let zc = index_at_value(f, total / 2, 0.0);
    let (pluck, _) = notes(4.0, 2.0, &[57.0, 64.0], 0.2, 6, 0.1);
    let cases: Vec<(String, Vec<f32>)> = vec![
        ("sine 110".into(), sine(110.0, 1.0, 0.5)),
        ("sine 440".into(), sine(440.0, 1.0, 0.5)),
        ("sine 1000".into(), sine(1000.0, 1.0, 0.5)),
        ("sine 4000".into(), sine(4000.0, 1.0, 0.5)),
        ("A3 triad".into(), chord(&[57.0, 61.0, 64.0], 1.0, 0.2)),
        ("slow pad".into(), slow_pad()),
        ("pluck notes 2ms attack".into(), pluck),
        ("bl saw 110".into(), saw(110.0, 1.0, 0.5)),
        ("white noise".into(), noise(1, total, 0.3)),
        ("440 fade 20ms".into(), gated_sine(f, cut, 960, total)),
        ("440 fade 5ms".into(), gated_sine(f, cut, 240, total)),
        ("440 fade 1ms".into(), gated_sine(f, cut, 48, total)),
        ("440 gate at 0.7".into(), gated_sine(f, cut, 0, total)),
        ("440 gate at zero".into(), gated_sine(f, zc, 0, total)),
    ];
    for (name, x) in &cases {
        println!(
            "{name:24} jump {:7.4}  second-diff {:7.4}  onsets/s {:5.2}",
            max_jump_ratio(x, w),
            max_second_difference_ratio(x, w),
            onset_rate_per_sec(x, SR)
        );
    }
    let mut rng = XorShift(5);
    for base in [65.4f64, 130.8] {
        let v: Vec<Vec<f32>> = [-31.0, -19.0, -7.0, 0.0, 9.0, 21.0, 33.0]
            .iter()
            .map(|c: &f64| {
                blep_saw(
                    base * 2f64.powf(c / 1200.0),
                    rng.uniform().abs() as f64,
                    20.0,
                    0.1,
                )
            })
            .collect();
        println!(
            "supersaw {base} Hz onsets/s over 20 s: {:.2}",
            onset_rate_per_sec(&mix(&v), SR)
        );
    }
    println!(
        "chroma concentration: sine A4 {:.3}, sine A2 {:.3}, A major triad {:.3}, C3 triad {:.3}, white noise {:.3}",
        chroma_concentration(&chroma(&sine(440.0, 2.0, 0.3), SR)),
        chroma_concentration(&chroma(&sine(110.0, 2.0, 0.3), SR)),
        chroma_concentration(&chroma(&chord(&[57.0, 61.0, 64.0], 2.0, 0.2), SR)),
        chroma_concentration(&chroma(&chord(&[48.0, 52.0, 55.0], 2.0, 0.2), SR)),
        chroma_concentration(&chroma(&noise(3, 2 * SR as usize, 0.5), SR))
    );
    let odf_peak = |x: &[f32]| {
        onset_envelope(x, SR)
            .iter()
            .skip(4)
            .fold(0.0f32, |m, &v| m.max(v))
    };
    println!(
        "ODF max after start: noise {:.1}, chord {:.1}, pad {:.1}, notes {:.1}",
        odf_peak(&noise(1, 4 * total, 0.3)),
        odf_peak(&chord(&[48.0, 52.0, 55.0, 60.0], 4.0, 0.2)),
        odf_peak(&slow_pad()),
        odf_peak(&notes(4.0, 4.0, &[60.0, 64.0], 0.15, 1, 0.1).0)
    );
}
