use super::test_signals::*;
use super::*;
use ebur128::Mode;

#[global_allocator]
static A: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

// ---------------------------------------------------------------------------
// Meter
// ---------------------------------------------------------------------------

#[test]
fn meter_matches_ebur128() {
    for sr in [44_100u32, 48_000] {
        let sine = sine_stereo(sr, 10.0, 1000.0, db_to_gain(-20.0), 0.0);
        let pink = pink_stereo(sr, 10.0, 12345);
        for (name, sig) in [("sine -20 dBFS", &sine), ("pink", &pink)] {
            let mut m = KWeightedMeter::new(sr as f32);
            for &(l, r) in sig.iter() {
                m.push(l, r);
            }
            let ebu = reference(sr, sig, Mode::I | Mode::M);
            let ref_i = ebu.loudness_global().unwrap();
            let ref_m = ebu.loudness_momentary().unwrap();
            let err_i = m.integrated_lufs_f64() - ref_i;
            let err_m = f64::from(m.momentary_lufs()) - ref_m;
            println!(
                "meter {sr} Hz {name}: I {:.4} LUFS (ref {ref_i:.4}, err {err_i:+.2e} LU), \
                 M {:.4} (ref {ref_m:.4}, err {err_m:+.2e} LU), blocks {}",
                m.integrated_lufs(),
                m.momentary_lufs(),
                m.gated_blocks()
            );
            assert!(err_i.abs() < 0.01, "integrated error {err_i}");
            assert!(err_m.abs() < 0.01, "momentary error {err_m}");
        }
    }
}

#[test]
fn meter_silence_and_reset() {
    let mut m = KWeightedMeter::new(48_000.0);
    for _ in 0..48_000 {
        m.push(0.0, 0.0);
    }
    assert_eq!(m.integrated_lufs(), f32::NEG_INFINITY);
    assert_eq!(m.gated_blocks(), 0);
    for &(l, r) in &sine_stereo(48_000, 2.0, 1000.0, 0.1, 0.0) {
        m.push(l, r);
    }
    assert!(m.integrated_lufs().is_finite());
    assert!(m.gated_blocks() > 0);
    m.reset();
    assert_eq!(m.integrated_lufs(), f32::NEG_INFINITY);
    assert_eq!(m.gated_blocks(), 0);
    // Non-finite input is treated as silence, not propagated.
    m.push(f32::NAN, f32::INFINITY);
    for _ in 0..48_000 {
        m.push(0.0, 0.0);
    }
    assert_eq!(m.momentary_lufs(), f32::NEG_INFINITY);
}

#[test]
fn meter_blocks_of_any_size_read_as_frame_by_frame() {
    let sr = 48_000u32;
    let mut sig = pink_stereo(sr, 3.0, 9);
    scale_to(sr, &mut sig, -20.0);
    sig[1000].0 = f32::NAN;
    let interleaved: Vec<f32> = sig.iter().flat_map(|&(l, r)| [l, r]).collect();
    let mut framewise = KWeightedMeter::new(sr as f32);
    for &(l, r) in &sig {
        framewise.push(l, r);
    }
    for block in [1, 7, 4800, 4801, 100_000] {
        let mut blockwise = KWeightedMeter::new(sr as f32);
        for chunk in interleaved.chunks(2 * block) {
            blockwise.push_block(chunk);
        }
        let (a, b) = (
            framewise.integrated_lufs_f64(),
            blockwise.integrated_lufs_f64(),
        );
        assert_eq!(a.to_bits(), b.to_bits(), "blocks of {block}: {a} vs {b}");
        assert_eq!(framewise.momentary_lufs(), blockwise.momentary_lufs());
        assert_eq!(framewise.gated_blocks(), blockwise.gated_blocks());
    }
    assert!(framewise.integrated_lufs_f64().is_finite());
}

// ---------------------------------------------------------------------------
// Live leveler
// ---------------------------------------------------------------------------

fn run_leveler(input: &[(f32, f32)], start_gain_db: f32) -> (Vec<(f32, f32)>, LiveLeveler) {
    let mut lev = LiveLeveler::new(48_000.0, -16.0, start_gain_db);
    let out = input
        .iter()
        .map(|&(l, r)| lev.process_frame(l, r))
        .collect();
    (out, lev)
}

#[test]
fn leveler_starts_at_its_calibration_and_holds_while_evidence_gathers() {
    let sr = 48_000;
    let mut sig = pink_stereo(sr, 19.0, 5);
    scale_to(sr, &mut sig, -30.0);
    let (out, lev) = run_leveler(&sig, 6.0);
    assert!((lev.gain_db() - 6.0).abs() < 1e-4, "{}", lev.gain_db());
    let measured = ref_integrated(sr, &out);
    println!("leveler, first 19 s: -30 LUFS in, {measured:.2} LUFS out at +6 dB");
    assert!((measured + 24.0).abs() < 0.05, "{measured}");
}

#[test]
fn leveler_keeps_the_arc_and_stays_in_its_range() {
    // a hushed minute, then a storm 10 LU louder, calibrated for the whole: the storm stays
    // about 10 LU louder
    let sr = 48_000;
    let mut hush = pink_stereo(sr, 60.0, 3);
    let mut storm = pink_stereo(sr, 60.0, 4);
    scale_to(sr, &mut hush, -30.0);
    scale_to(sr, &mut storm, -20.0);
    let n = hush.len();
    let input: Vec<_> = hush.into_iter().chain(storm).collect();
    let start = -16.0 - ref_integrated(sr, &input) as f32;
    let (out, lev) = run_leveler(&input, start);
    let (a, b) = (ref_integrated(sr, &out[..n]), ref_integrated(sr, &out[n..]));
    let whole = ref_integrated(sr, &out);
    println!(
        "leveler arc: start gain {start:.2} dB, hush {a:.2} LUFS, storm {b:.2} LUFS ({:.2} LU), \
         whole {whole:.2} LUFS, final gain {:.2} dB",
        b - a,
        lev.gain_db()
    );
    assert!(b - a >= 9.0, "arc flattened: {a} -> {b}");
    assert!((whole + 16.0).abs() <= 1.0, "whole {whole}");
    let max_move = LiveLeveler::SLEW_DB_PER_SEC * 120.0 + 0.01;
    assert!(
        (lev.gain_db() - start).abs() <= max_move,
        "{}",
        lev.gain_db()
    );
}

#[test]
fn leveler_corrects_a_wrong_calibration_slowly_within_its_range() {
    let sr = 48_000u32;
    let mut sig = pink_stereo(sr, 200.0, 11);
    scale_to(sr, &mut sig, -40.0); // wants +24 dB; calibrated at 0
    let mut lev = LiveLeveler::new(sr as f32, -16.0, 0.0);
    let mut prev = lev.gain_db();
    let max_step = LiveLeveler::SLEW_DB_PER_SEC / sr as f32 * 1.05 + 1e-5;
    for (i, &(l, r)) in sig.iter().enumerate() {
        lev.process_frame(l, r);
        let g = lev.gain_db();
        assert!((g - prev).abs() <= max_step, "step {} dB at {i}", g - prev);
        if i < (LiveLeveler::EVIDENCE_SECS * sr as f32) as usize {
            assert_eq!(g, 0.0, "gain moved before the evidence");
        }
        prev = g;
    }
    println!("leveler after 200 s of a -40 LUFS program: {:.2} dB", prev);
    // 180 s of slew at 0.02 dB/s: 3.6 dB, then it would go on to the range's edge
    assert!((prev - 3.6).abs() < 0.2, "{prev}");
    let mut lev = LiveLeveler::new(sr as f32, -16.0, 0.0);
    for _ in 0..4 {
        for &(l, r) in &sig {
            lev.process_frame(l, r);
        }
    }
    let g = lev.gain_db();
    assert!(
        (LiveLeveler::RANGE_DB - LiveLeveler::DEADBAND_DB - 0.01..=LiveLeveler::RANGE_DB)
            .contains(&g),
        "{g}"
    );
    // silence freezes it
    let frozen = lev.gain_db();
    for _ in 0..(60 * sr) {
        lev.process_frame(0.0, 0.0);
    }
    assert_eq!(lev.gain_db(), frozen);
    lev.reset();
    assert_eq!(lev.gain_db(), 0.0);
}

// ---------------------------------------------------------------------------
// True-peak detector and limiter
// ---------------------------------------------------------------------------

#[test]
fn leveler_is_slower_to_raise_a_quiet_opening_than_to_tame_a_loud_one() {
    // 120 s of a program 12 dB under the target, then the same 12 dB over it: a piece that
    // opens quietly keeps its opening; one that is too loud comes down sooner
    let sr = 48_000u32;
    let gain_after = |lufs: f64| {
        let mut sig = pink_stereo(sr, 120.0, 5);
        scale_to(sr, &mut sig, lufs);
        let mut lev = LiveLeveler::new(sr as f32, -16.0, 0.0);
        for &(l, r) in &sig {
            lev.process_frame(l, r);
        }
        lev.gain_db()
    };
    let (raised, lowered) = (gain_after(-28.0), -gain_after(-4.0));
    println!("after 120 s 12 dB off: raised {raised:.2} dB, lowered {lowered:.2} dB");
    // wanted: 12 × 120/(120+600) = 2 dB up, the gain stopping 1 dB short of it; 12 ×
    // 120/(120+180) = 4.8 dB down, as far as the slew allows in the 100 s after the evidence
    // (2 dB). Trusted alike, both would move 2 dB.
    assert!(raised < 1.5, "{raised}");
    assert!(lowered > 1.9, "{lowered}");
}

#[test]
fn annex_2_interpolator_rebuilds_a_sine_between_its_samples() {
    // a 1 kHz sine: the four points after frame m are the sine at m + 1/8, 3/8, 5/8, 7/8
    // (the filter's group delay is 5.875 frames), within the example filter's passband ripple
    // (its middle phases have a gain of 0.98 at 1 kHz: this is also how the coefficients, as
    // published, are checked here)
    let taps = TRUE_PEAK_TAPS;
    let sig: Vec<f32> = (0..200)
        .map(|i| (std::f64::consts::TAU * 1000.0 * i as f64 / 48_000.0).sin() as f32)
        .collect();
    let mut worst = 0.0f64;
    for n in 20..200 {
        for (p, phase) in taps.iter().enumerate() {
            let y: f64 = (0..12)
                .map(|k| f64::from(phase[k]) * f64::from(sig[n - k]))
                .sum();
            let t = n as f64 - 5.875 + p as f64 * 0.25;
            let want = (std::f64::consts::TAU * 1000.0 * t / 48_000.0).sin();
            worst = worst.max((y - want).abs());
        }
    }
    println!("annex 2 interpolator on a 1 kHz sine: largest error {worst:.2e}");
    assert!(worst < 0.025, "{worst}");
}

#[test]
fn detector_finds_the_peak_between_samples() {
    // fs/4 at 45°: every sample is ±0.707, the wave peaks at 1.0 halfway between them
    let sig = sine_stereo(48_000, 0.1, 12_000.0, 1.0, std::f64::consts::FRAC_PI_4);
    let mut det = TruePeakDetector::new();
    let peak = sig
        .iter()
        .map(|&(l, r)| det.push(l, r))
        .fold(0.0f32, f32::max);
    let sample_peak = sig.iter().fold(0.0f32, |m, f| m.max(f.0.abs()));
    let reference = ref_true_peak_dbtp(48_000, &sig);
    println!(
        "fs/4 at 45°: sample peak {:.2} dBFS, detector {:.2} dBTP, ebur128 {reference:.2} dBTP",
        gain_to_db(sample_peak),
        gain_to_db(peak)
    );
    assert!(gain_to_db(sample_peak) < -2.9);
    assert!(gain_to_db(peak) > -0.3, "{}", gain_to_db(peak));
}

#[test]
fn detector_reads_sines_close_to_their_true_peak() {
    // the true peak of a sine is its amplitude; the detector may read a little high (the
    // filters' ripple) and, near Nyquist, low (no 4x interpolator sees everything there)
    let mut report = String::new();
    for (hz, low_db, high_db) in [
        (100.0, -0.01, 0.02),
        (1_000.0, -0.01, 0.02),
        (5_000.0, -0.05, 0.2),
        (10_000.0, -0.1, 0.2),
        (15_000.0, -0.2, 0.2),
        (18_000.0, -0.4, 0.2),
    ] {
        let mut lowest = f32::INFINITY;
        let mut highest = 0.0f32;
        for phase in 0..16 {
            let sig = sine_stereo(48_000, 0.05, hz, 0.5, f64::from(phase) * 0.2);
            let mut det = TruePeakDetector::new();
            // (the abrupt start rings: only the steady sine is read)
            let peak = sig
                .iter()
                .map(|&(l, r)| det.push(l, r))
                .skip(24)
                .fold(0.0f32, f32::max);
            let db = gain_to_db(peak / 0.5);
            lowest = lowest.min(db);
            highest = highest.max(db);
        }
        report += &format!(" {hz} Hz {lowest:+.3}..{highest:+.3} dB;");
        assert!(
            lowest >= low_db && highest <= high_db,
            "{hz} Hz: {lowest}..{highest}"
        );
    }
    println!("detector reading against the true peak of sines:{report}");
}

/// Runs a limiter at -1 dBTP over `input` (and its tail) and checks, with the reference
/// meter, that the output's true peak is at or below -1 dBTP.
fn check_limiter(name: &str, sr: u32, input: &[(f32, f32)]) -> (Limiter, Vec<(f32, f32)>) {
    let mut lim = Limiter::new(sr as f32, -1.0);
    let c = lim.ceiling_linear();
    let mut out = Vec::with_capacity(input.len() + lim.latency_frames());
    for &(l, r) in input {
        out.push(lim.process_frame(l, r));
    }
    for _ in 0..lim.latency_frames() {
        out.push(lim.process_frame(0.0, 0.0));
    }
    let peak = out
        .iter()
        .fold(0.0f32, |m, f| m.max(f.0.abs()).max(f.1.abs()));
    assert!(out.iter().all(|f| f.0.is_finite() && f.1.is_finite()));
    let tp_in = ref_true_peak_dbtp(sr, input);
    let tp = ref_true_peak_dbtp(sr, &out);
    println!(
        "limiter {name} at {sr} Hz: input {tp_in:.2} dBTP -> {tp:.3} dBTP (sample peak {:.3} dBFS), \
         safety clamps {}",
        gain_to_db(peak),
        lim.safety_clamps()
    );
    assert!(peak <= c, "{name}: sample peak {peak} > {c}");
    assert!(tp <= -1.0, "{name}: true peak {tp:.3} dBTP");
    assert_eq!(lim.safety_clamps(), 0, "{name}: safety clamp engaged");
    (lim, out)
}

#[test]
fn limiter_holds_true_peak_on_full_scale_squares() {
    for sr in [44_100u32, 48_000] {
        for amp_db in [0.0f32, 12.0] {
            let amp = db_to_gain(amp_db);
            for hz in [50.0f32, 997.0, 4_000.0, 7_000.0, 11_025.0, 15_999.0] {
                let sig: Vec<_> = (0..sr / 2)
                    .map(|i| {
                        let ph = (i as f32 * hz / sr as f32).fract();
                        let x = if ph < 0.5 { amp } else { -amp };
                        (x, -x * 0.5)
                    })
                    .collect();
                check_limiter(&format!("square {hz} Hz {amp_db:+} dBFS"), sr, &sig);
            }
        }
    }
}

#[test]
fn limiter_holds_true_peak_on_near_nyquist_sines_at_odd_phases() {
    for sr in [44_100u32, 48_000] {
        let nyquist = sr as f64 / 2.0;
        for hz in [
            nyquist / 2.0,
            nyquist * 0.8,
            nyquist * 0.9,
            nyquist - 1_000.0,
        ] {
            for phase in [0.1f64, std::f64::consts::FRAC_PI_4, 1.3, 2.9] {
                let sig = sine_stereo(sr, 0.5, hz, 1.0, phase);
                check_limiter(&format!("sine {hz:.0} Hz phase {phase}"), sr, &sig);
            }
        }
    }
    // a sine that beats slowly against fs/4: its samples wander while the peaks stay
    let sig = sine_stereo(48_000, 1.0, 12_001.0, 1.4, 0.3);
    check_limiter("sine 12001 Hz +2.9 dBFS", 48_000, &sig);
}

#[test]
fn limiter_holds_true_peak_on_impulses_spikes_and_steps() {
    let (lim, _) = check_limiter(
        "single impulse",
        48_000,
        &[(0.0, 0.0), (100.0, 0.0), (0.0, 0.0)],
    );
    assert_eq!(lim.latency_frames(), (96 + 11) + (24 + 11));
    // alternating-sign impulse pairs ring the most between samples
    let mut pairs = vec![(0.0f32, 0.0f32); 4_800];
    for i in (100..4_700).step_by(300) {
        pairs[i] = (1.0, -1.0);
        pairs[i + 1] = (-1.0, 1.0);
    }
    check_limiter("impulse pairs", 48_000, &pairs);
    let mut noise = Noise(42);
    let mut sig = Vec::new();
    for i in 0..96_000 {
        let base = 0.3 * (i as f32 * 0.05).sin();
        let spike = noise.next();
        let x = if spike > 0.995 {
            100.0
        } else if spike < -0.995 {
            -100.0
        } else {
            base
        };
        sig.push(if i % 2 == 0 { (x, base) } else { (base, x) });
    }
    check_limiter("random spikes 100.0", 48_000, &sig);
    let mut steps = Vec::new();
    for &level in &[0.0f32, 0.2, 4.0, 0.5, 50.0, 0.0, 1.0, 0.9, 1e6, 0.01] {
        for _ in 0..4_800 {
            steps.push((level, -level));
        }
    }
    check_limiter("steps", 48_000, &steps);
    let mut loud_noise = pink_stereo(48_000, 5.0, 8);
    for f in loud_noise.iter_mut() {
        *f = (f.0 * 8.0, f.1 * 8.0);
    }
    check_limiter("pink noise +18 dB", 48_000, &loud_noise);
}

#[test]
fn limiter_passes_a_signal_under_the_ceiling_unchanged() {
    let mut lim = Limiter::new(48_000.0, -1.0);
    // a low sine whose true peak is its sample peak, just under the ceiling
    let input = sine_stereo(48_000, 1.0, 997.0, lim.ceiling_linear() * 0.99, 0.0);
    let lat = lim.latency_frames();
    let out: Vec<_> = input
        .iter()
        .map(|&(l, r)| lim.process_frame(l, r))
        .collect();
    for i in 0..input.len() - lat {
        assert_eq!(
            out[i + lat].0.to_bits(),
            input[i].0.to_bits(),
            "changed at {i}"
        );
        assert_eq!(out[i + lat].1.to_bits(), input[i].1.to_bits());
    }
    assert_eq!(lim.gain_reduction_db(), 0.0);
    assert_eq!(lim.safety_clamps(), 0);
}

#[test]
fn limiter_blocks_equal_frames_bit_for_bit() {
    // process_block runs the AVX2 build where the CPU has one, process_frame the portable one
    let mut sig: Vec<f32> = pink_stereo(48_000, 3.0, 21)
        .into_iter()
        .flat_map(|(l, r)| [6.0 * l, 6.0 * r])
        .collect();
    let mut by_frame = Limiter::new(48_000.0, -1.0);
    let expected: Vec<u32> = sig
        .chunks_exact(2)
        .flat_map(|f| {
            let (l, r) = by_frame.process_frame(f[0], f[1]);
            [l.to_bits(), r.to_bits()]
        })
        .collect();
    let mut by_block = Limiter::new(48_000.0, -1.0);
    for chunk in sig.chunks_mut(2 * 333) {
        by_block.process_block(chunk);
    }
    let got: Vec<u32> = sig.iter().map(|s| s.to_bits()).collect();
    assert!(got == expected, "blocks differ from frames");
    let mut a = TruePeakDetector::new();
    let mut b = TruePeakDetector::new();
    let frames = sig
        .chunks_exact(2)
        .map(|f| a.push(f[0], f[1]))
        .fold(0.0, f32::max);
    assert_eq!(b.push_block(&sig).to_bits(), frames.to_bits());
}

#[test]
fn limiter_with_peaks_read_beforehand_limits_as_it_would_itself() {
    let program: Vec<f32> = pink_stereo(48_000, 4.0, 5)
        .into_iter()
        .flat_map(|(l, r)| [4.0 * l, 4.0 * r])
        .collect();
    let mut peaks = vec![0.0f32; program.len() / 2];
    TruePeakDetector::new().peaks(&program, &mut peaks);
    let loudest = peaks.iter().fold(0.0f32, |m, &p| m.max(p));
    assert!(loudest > 2.0, "the program must need limiting: {loudest}");
    let limit = |scale: f32, given: bool| -> (Vec<f32>, u64) {
        let mut lim = Limiter::new(48_000.0, -1.0);
        let mut out: Vec<f32> = program.iter().map(|s| s * scale).collect();
        for (chunk, peaks) in out.chunks_mut(2 * 1000).zip(peaks.chunks(1000)) {
            if given {
                lim.process_block_with_peaks(chunk, peaks, scale);
            } else {
                lim.process_block(chunk);
            }
        }
        (out, lim.safety_clamps())
    };
    // the very bits at scale 1, with heavy limiting
    let (own, _) = limit(1.0, false);
    let (given, _) = limit(1.0, true);
    assert!(own
        .iter()
        .zip(&given)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // scaled: every reduction within rounding of the limiter's own, the ceiling held
    for scale in [0.3f32, 0.7, 1.8] {
        let (own, _) = limit(scale, false);
        let (given, clamps) = limit(scale, true);
        let worst = own
            .iter()
            .zip(&given)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "scale {scale}: differs by {worst}");
        assert_eq!(clamps, 0);
        let tp = ref_true_peak_dbtp(48_000, &pairs(&given));
        assert!(tp <= -1.0 + 1e-3, "scale {scale}: true peak {tp} dBTP");
    }
}

fn pairs(samples: &[f32]) -> Vec<(f32, f32)> {
    samples.chunks_exact(2).map(|f| (f[0], f[1])).collect()
}

#[test]
fn limiter_recovers_after_a_peak() {
    let mut lim = Limiter::new(48_000.0, -1.0);
    lim.process_frame(10.0, 10.0);
    for _ in 0..lim.latency_frames() - 1 {
        lim.process_frame(0.1, 0.1);
    }
    // The peak leaves the delay line on the next frame: full reduction.
    assert!(
        lim.gain_reduction_db() > 20.0,
        "{}",
        lim.gain_reduction_db()
    );
    let (out, _) = lim.process_frame(0.1, 0.1);
    assert!(out <= lim.ceiling_linear() && out > 0.8, "{out}");
    for _ in 0..48_000 {
        lim.process_frame(0.1, 0.1);
    }
    assert!(
        lim.gain_reduction_db() < 0.01,
        "{}",
        lim.gain_reduction_db()
    );
}

#[test]
fn limiter_survives_non_finite_input() {
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN];
    let mut sig = Vec::new();
    for i in 0..10_000 {
        let x = 0.5 * (i as f32 * 0.01).sin();
        let s = specials[i % 4];
        sig.push(if i % 7 == 0 {
            (s, x)
        } else if i % 11 == 0 {
            (x, s)
        } else {
            (x, x)
        });
    }
    let mut lim = Limiter::new(48_000.0, -1.0);
    for &(l, r) in &sig {
        let (a, b) = lim.process_frame(l, r);
        assert!(a.is_finite() && b.is_finite());
    }
    assert!(lim.gain_reduction_db().is_finite());
    assert_eq!(lim.safety_clamps(), 0);
}

// ---------------------------------------------------------------------------
// Master bus
// ---------------------------------------------------------------------------

fn bus_input(frames: usize) -> Vec<(f32, f32, f32)> {
    let mut pink = Pink::new(5);
    (0..frames)
        .map(|i| {
            let env = if (i / 24_000) % 3 == 2 { 0.0 } else { 2.0 };
            let mix = (i as f32 / frames as f32).min(1.0);
            (env * pink.next(), env * pink.next() + 0.05, mix)
        })
        .collect()
}

#[test]
fn bus_bit_identical_after_reset() {
    for chain in [MasterChain::default(), MasterChain::Program] {
        let settings = MasterSettings {
            chain,
            ..MasterSettings::default()
        };
        let mut bus = MasterBus::new(48_000.0, &settings);
        let input = bus_input(5 * 48_000);
        let run = |bus: &mut MasterBus| -> Vec<(u32, u32)> {
            input
                .iter()
                .map(|&(l, r, m)| {
                    let (a, b) = bus.process_frame(l, r, m);
                    (a.to_bits(), b.to_bits())
                })
                .collect()
        };
        let first = run(&mut bus);
        bus.reset();
        let second = run(&mut bus);
        assert!(first == second, "output differs after reset");
        let mut fresh = MasterBus::new(48_000.0, &settings);
        assert!(run(&mut fresh) == first, "fresh instance differs");
    }
}

#[test]
fn live_bus_respects_its_ceiling_and_meters() {
    let settings = MasterSettings {
        chain: MasterChain::Live {
            start_gain_db: -3.0,
        },
        ..MasterSettings::default()
    };
    let mut bus = MasterBus::new(44_100.0, &settings);
    let c = db_to_gain(settings.ceiling_dbtp - TRUE_PEAK_MARGIN_DB);
    let mut pink = Pink::new(77);
    let mut out = Vec::new();
    for i in 0..(10 * 44_100) {
        let x = 8.0 * pink.next();
        let (a, b) = bus.process_frame(x, -x, if i % 2 == 0 { 1.0 } else { 0.3 });
        assert!(a.abs() <= c && b.abs() <= c);
        out.push((a, b));
    }
    assert!(ref_true_peak_dbtp(44_100, &out) <= -1.0);
    let (pl, pr) = bus.take_peaks();
    assert!(pl > 0.5 * c && pl <= c && pr <= c);
    assert_eq!((bus.peak_l(), bus.peak_r()), (0.0, 0.0));
    assert!(bus.momentary_lufs().is_finite());
    assert_eq!(
        bus.leveler_gain_db(),
        -3.0,
        "no evidence yet: the start gain"
    );
    assert_eq!(bus.limiter_safety_clamps(), 0);
    assert_eq!(bus.latency_frames(), (88 + 11) + (22 + 11));
    // NaN must not poison the reverb or anything after it.
    for _ in 0..100 {
        bus.process_frame(f32::NAN, f32::INFINITY, f32::NAN);
    }
    for _ in 0..44_100 {
        let (a, b) = bus.process_frame(0.1, 0.1, 0.5);
        assert!(a.is_finite() && b.is_finite());
    }
}

#[test]
fn program_bus_is_neither_leveled_nor_limited_nor_delayed() {
    let settings = MasterSettings {
        chain: MasterChain::Program,
        ..MasterSettings::default()
    };
    let mut bus = MasterBus::new(48_000.0, &settings);
    assert_eq!(bus.latency_frames(), 0);
    let (a, _) = bus.process_frame(4.0, 0.0, 0.0);
    assert_eq!(a, 4.0, "a loud sample passes as it is");
    assert_eq!(bus.leveler_gain_db(), 0.0);
    assert_eq!(bus.momentary_lufs(), f32::NEG_INFINITY);
}

#[test]
fn bus_reverb_mix_is_equal_power_and_wet() {
    let settings = MasterSettings {
        leveler: false,
        ..MasterSettings::default()
    };
    let tail_energy = |mix: f32| {
        let mut bus = MasterBus::new(48_000.0, &settings);
        bus.process_frame(0.5, 0.5, mix);
        let mut e = 0.0f64;
        for i in 0..48_000 {
            let (a, b) = bus.process_frame(0.0, 0.0, mix);
            if i > 4_800 {
                e += f64::from(a * a + b * b);
            }
        }
        e
    };
    let (dry, half, wet) = (tail_energy(0.0), tail_energy(0.5), tail_energy(1.0));
    println!("reverb tail energy after 100 ms: dry {dry:.3e}, mix 0.5 {half:.3e}, wet {wet:.3e}");
    // The dry path only has the DC blocker's short tail.
    assert!(dry < 1e-3 * wet, "dry path has a reverb tail");
    // Equal power: sin(pi/4)^2 = 0.5 of the wet tail.
    assert!((half / wet - 0.5).abs() < 0.01, "{}", half / wet);
    // Dry only: output is the (DC-blocked) input, delayed by the latency.
    let mut bus = MasterBus::new(48_000.0, &settings);
    let lat = bus.latency_frames();
    let mut out = Vec::new();
    for i in 0..2_000 {
        out.push(
            bus.process_frame(if i == 0 { 0.5 } else { 0.0 }, 0.0, 0.0)
                .0,
        );
    }
    assert!((out[lat] - 0.5).abs() < 1e-3, "{}", out[lat]);
}

#[test]
fn bus_does_not_allocate() {
    for chain in [MasterChain::default(), MasterChain::Program] {
        let settings = MasterSettings {
            chain,
            ..MasterSettings::default()
        };
        let mut bus = MasterBus::new(48_000.0, &settings);
        let input = bus_input(10_000);
        let before = assert_no_alloc::violation_count();
        let sum = assert_no_alloc::assert_no_alloc(|| {
            let mut sum = 0.0f32;
            for &(l, r, m) in &input {
                let (a, b) = bus.process_frame(l, r, m);
                sum += a + b;
            }
            bus.reset();
            let _ = bus.take_peaks();
            sum += bus.momentary_lufs() + bus.leveler_gain_db();
            sum
        });
        let violations = assert_no_alloc::violation_count() - before;
        assert!(sum.is_finite() || sum.is_infinite());
        assert_eq!(violations, 0, "allocations in the real-time path");
    }
}

#[test]
fn bus_is_send_and_survives_extreme_input() {
    fn assert_send<T: Send>() {}
    assert_send::<MasterBus>();
    let mut bus = MasterBus::new(48_000.0, &MasterSettings::default());
    for i in 0..4_800 {
        let x = if i % 2 == 0 { f32::MAX } else { -f32::MAX };
        let (a, b) = bus.process_frame(x, f32::MIN_POSITIVE, 1.0);
        assert!(a.is_finite() && b.is_finite());
    }
    for _ in 0..48_000 {
        let (a, b) = bus.process_frame(0.1, -0.1, 0.5);
        assert!(a.is_finite() && b.is_finite());
    }
    assert_eq!(bus.limiter_safety_clamps(), 0);
}

#[test]
fn no_alloc_detector_is_not_vacuous() {
    let before = assert_no_alloc::violation_count();
    let v = assert_no_alloc::assert_no_alloc(|| std::hint::black_box(vec![1u8; 64]));
    let after = assert_no_alloc::violation_count();
    drop(v);
    assert!(after > before, "allocation went unnoticed");
}

#[test]
fn reverb_tail_never_turns_subnormal() {
    // a decaying tail must not sink into subnormal numbers (slow on every CPU), even with
    // flush-to-zero off as here: the bus keeps its state and output at zero or normal
    let mut bus = MasterBus::new(48_000.0, &MasterSettings::default());
    let mut pink = Pink::new(9);
    for _ in 0..3 * 48_000 {
        let x = pink.next();
        bus.process_frame(x, x, 1.0);
    }
    let mut subnormal_out = 0;
    for _ in 0..(40 * 48_000) {
        let (l, r) = bus.process_frame(0.0, 0.0, 1.0);
        subnormal_out += usize::from(l.is_subnormal()) + usize::from(r.is_subnormal());
    }
    let Reverb::Hall(hall) = &bus.reverb else {
        panic!("the default reverb is the hall");
    };
    assert_eq!(hall.subnormal_state(), 0, "subnormal values in the reverb");
    assert_eq!(subnormal_out, 0, "subnormal output samples");
}
