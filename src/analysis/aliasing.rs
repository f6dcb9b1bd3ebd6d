//! Aliasing of a periodic tone: how much of its energy lies away from its harmonics.
//!
//! An oscillator at a known fundamental `f0` should put all its energy at `k · f0`; what a
//! digital oscillator folds back from above Nyquist (aliasing) lands between the harmonics.
//! [`harmonic_split`] windows the signal with a 7-term Blackman-Harris window (side lobes
//! below −180 dB, so leakage never reads as aliasing), takes one long FFT and sums the power
//! of the bins within [`GUARD_LOBES`] main-lobe half-widths of a harmonic apart from the
//! power of every other bin, both between [`BAND_HZ`] (what is audible). The ratio in dB is
//! the inharmonic energy relative to the harmonics. Not for the audio thread (allocates).

use realfft::RealFftPlanner;

/// Longest stretch analysed: the last this many samples (1.37 s at 48 kHz, bins 0.73 Hz).
pub const FFT_LEN: usize = 1 << 16;
/// Shortest signal [`harmonic_split`] measures.
pub const MIN_LEN: usize = 1 << 13;
/// The band measured, in Hz (the upper end is lowered to 0.49 × the sample rate below
/// 40.8 kHz).
pub const BAND_HZ: (f64, f64) = (20.0, 20_000.0);
/// A bin belongs to a harmonic within this many main-lobe half-widths of it (the window's
/// half-width is 7 bins of the analysed length).
pub const GUARD_LOBES: f64 = 8.0 / 7.0;

/// 7-term Blackman-Harris window coefficients (highest side lobe −180 dB, main lobe ±7 bins).
const BH7: [f64; 7] = [
    0.271_051_400_693_42,
    -0.433_297_939_234_48,
    0.218_122_999_543_11,
    -0.065_925_446_388_03,
    0.010_811_742_098_37,
    -0.000_776_584_825_22,
    0.000_013_887_217_35,
];
/// Main-lobe half-width of [`BH7`] in bins.
const BH7_HALF_WIDTH_BINS: f64 = 7.0;

/// The energy of a tone at its harmonics and elsewhere, in the same (arbitrary) unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HarmonicSplit {
    /// Power at the harmonics `k · f0` (k ≥ 1) inside [`BAND_HZ`].
    pub harmonic: f64,
    /// Power at every other bin inside [`BAND_HZ`].
    pub inharmonic: f64,
}

impl HarmonicSplit {
    /// Inharmonic energy relative to the harmonics, in dB (−300 for none at all).
    pub fn inharmonic_db(&self) -> f64 {
        10.0 * (self.inharmonic / self.harmonic).max(1e-30).log10()
    }
}

/// Splits the energy of the last [`FFT_LEN`] samples of `signal` (fewer if it is shorter,
/// at least [`MIN_LEN`]) into the part at the harmonics of `f0_hz` and the rest. `None` when
/// the signal is shorter than [`MIN_LEN`], the sample rate is not positive, `f0_hz` is not
/// between 20 Hz and the band's top, or no harmonic carries energy.
pub fn harmonic_split(signal: &[f32], sample_rate: f32, f0_hz: f64) -> Option<HarmonicSplit> {
    let sr = f64::from(sample_rate);
    let top_hz = BAND_HZ.1.min(0.49 * sr);
    let usable = sr > 0.0 && signal.len() >= MIN_LEN && (BAND_HZ.0..top_hz).contains(&f0_hz);
    if !usable {
        return None;
    }
    let n = signal.len().min(FFT_LEN);
    let tail = &signal[signal.len() - n..];
    let mut input: Vec<f64> = tail
        .iter()
        .enumerate()
        .map(|(i, &x)| f64::from(x) * blackman_harris_7(i, n))
        .collect();
    input.resize(FFT_LEN, 0.0);
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(FFT_LEN);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).ok()?;
    let bin_hz = sr / FFT_LEN as f64;
    let guard_hz = GUARD_LOBES * BH7_HALF_WIDTH_BINS * sr / n as f64;
    let mut split = HarmonicSplit {
        harmonic: 0.0,
        inharmonic: 0.0,
    };
    for (bin, x) in spectrum.iter().enumerate() {
        let hz = bin as f64 * bin_hz;
        if !(BAND_HZ.0..=top_hz).contains(&hz) {
            continue;
        }
        let k = (hz / f0_hz).round();
        let power = x.norm_sqr();
        if (hz - k * f0_hz).abs() > guard_hz {
            split.inharmonic += power;
        } else if k >= 1.0 {
            split.harmonic += power;
        }
    }
    (split.harmonic > 0.0).then_some(split)
}

/// The [`BH7`] window's value at sample `i` of `n`.
fn blackman_harris_7(i: usize, n: usize) -> f64 {
    let x = std::f64::consts::TAU * i as f64 / n as f64;
    BH7.iter()
        .enumerate()
        .map(|(k, c)| c * (k as f64 * x).cos())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;

    /// A sawtooth summed from its harmonics below Nyquist (exactly band-limited), plus a
    /// sine at `tone_hz` whose power is `tone_db` relative to the saw's harmonics in the band.
    fn additive_saw(f0: f64, tone_hz: f64, tone_db: f64) -> Vec<f32> {
        let harmonics = (0.5 * f64::from(SR) / f0).ceil() as usize - 1;
        let in_band = (1..=harmonics)
            .filter(|k| *k as f64 * f0 <= BAND_HZ.1)
            .map(|k| 0.5 * (1.0 / k as f64).powi(2))
            .sum::<f64>();
        let tone_amp = (2.0 * in_band * 10f64.powf(tone_db / 10.0)).sqrt();
        (0..FFT_LEN + 1000)
            .map(|i| {
                let t = i as f64 / f64::from(SR);
                let saw: f64 = (1..=harmonics)
                    .map(|k| (std::f64::consts::TAU * k as f64 * f0 * t).sin() / k as f64)
                    .sum();
                (saw + tone_amp * (std::f64::consts::TAU * tone_hz * t).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn an_exactly_band_limited_saw_reads_no_aliasing() {
        for f0 in [1046.502, 4186.009] {
            let db = harmonic_split(&additive_saw(f0, 1000.0, -300.0), SR, f0)
                .unwrap()
                .inharmonic_db();
            assert!(db < -100.0, "{f0} Hz: {db:.1} dB");
        }
    }

    #[test]
    fn an_inharmonic_tone_reads_at_its_level() {
        for (f0, tone_hz, tone_db) in [
            (2093.005, 7777.0, -50.0),
            (4186.009, 14_321.0, -60.0),
            (1046.502, 3_613.0, -35.0),
        ] {
            let db = harmonic_split(&additive_saw(f0, tone_hz, tone_db), SR, f0)
                .unwrap()
                .inharmonic_db();
            assert!(
                (db - tone_db).abs() < 1.0,
                "{f0} Hz + {tone_hz} Hz: {db:.2} dB"
            );
        }
    }

    #[test]
    fn a_tone_outside_the_band_does_not_count() {
        let f0 = 2093.005;
        let db = harmonic_split(&additive_saw(f0, 21_500.0, -20.0), SR, f0)
            .unwrap()
            .inharmonic_db();
        assert!(db < -100.0, "{db:.1} dB");
    }

    #[test]
    fn unusable_input_gives_none() {
        let saw = additive_saw(440.0, 1000.0, -300.0);
        assert!(harmonic_split(&saw[..MIN_LEN - 1], SR, 440.0).is_none());
        assert!(harmonic_split(&saw, SR, 10.0).is_none());
        assert!(harmonic_split(&saw, 0.0, 440.0).is_none());
        assert!(harmonic_split(&vec![0.0; MIN_LEN], SR, 440.0).is_none());
    }
}
