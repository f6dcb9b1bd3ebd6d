//! The kernel's oscillators do not alias audibly: the reference voice (oscillator → low-pass
//! open at 15 kHz, through the voice pool's kernels) keeps its inharmonic energy at least
//! 50 dB below its harmonics up to C8, plays at its pitch, and renders the same bits
//! whatever the block size.

use tapestry::analysis::aliasing::{harmonic_split, FFT_LEN};

use crate::common::measure::dominant_pitch_hz;
use crate::common::reference_voice::{render, Wave, NOTES, SR};

/// Inharmonic energy allowed, relative to the harmonics.
const MAX_INHARMONIC_DB: f64 = -50.0;
/// Settling time skipped before the measured stretch.
const SETTLE_FRAMES: usize = 4_800;

const WAVES: [Wave; 7] = [
    Wave::Saw,
    Wave::Pulse(0.5),
    Wave::Pulse(0.25),
    Wave::Pulse(0.1),
    Wave::Pulse(0.05),
    Wave::Pulse(0.8),
    Wave::Saw2,
];

#[test]
fn the_reference_voice_keeps_aliasing_50_db_below_its_harmonics_up_to_c8() {
    let mut failures = Vec::new();
    for wave in WAVES {
        for (name, hz) in NOTES {
            let out = render(wave, hz as f32, SETTLE_FRAMES + FFT_LEN, 64);
            let db = harmonic_split(&out, SR, hz).unwrap().inharmonic_db();
            eprintln!("{wave:?} {name}: {db:.1} dB");
            if db > MAX_INHARMONIC_DB {
                failures.push(format!("{wave:?} {name}: {db:.1} dB"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "aliased above {MAX_INHARMONIC_DB} dB: {failures:?}"
    );
}

#[test]
fn the_reference_voice_plays_at_its_pitch() {
    for wave in [Wave::Saw, Wave::Pulse(0.5), Wave::Pulse(0.1), Wave::Saw2] {
        for (name, hz) in NOTES.into_iter().chain([("A2", 110.0), ("A4", 440.0)]) {
            let out = render(wave, hz as f32, SETTLE_FRAMES + FFT_LEN, 64);
            let heard = f64::from(dominant_pitch_hz(&out[SETTLE_FRAMES..], SR));
            let cents = 1200.0 * (heard / hz).log2();
            assert!(
                cents.abs() < 1.0,
                "{wave:?} {name}: {heard:.2} Hz, {cents:.2} cents off"
            );
        }
    }
}

#[test]
fn the_reference_voice_renders_the_same_bits_in_any_block_size() {
    for wave in [Wave::Saw, Wave::Pulse(0.3), Wave::Saw2] {
        let whole = render(wave, 3_951.066, 9_000, 512);
        for block in [1, 37, 64, 256] {
            let pieces = render(wave, 3_951.066, 9_000, block);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&pieces),
                bits(&whole),
                "{wave:?}, {block}-frame blocks"
            );
        }
        assert!(whole.iter().any(|x| x.abs() > 0.1));
    }
}
