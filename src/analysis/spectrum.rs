//! Features of one Hann-windowed FFT frame: spectral flux, centroid, flatness, roughness and
//! chroma.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Compression of magnitudes before the flux: `ln(1 + FLUX_GAMMA·|X|)` (|X| = 1 for a
/// full-scale sine).
const FLUX_GAMMA: f32 = 1000.0;
/// Flatness is measured over bins from this frequency…
const FLATNESS_MIN_HZ: f32 = 100.0;
/// …to this one (or 0.45 × the sample rate if lower), where speech and room sounds live and
/// band-limited recordings still have content.
const FLATNESS_MAX_HZ: f32 = 10_000.0;
/// Spectral peaks taken into the roughness sum.
const ROUGHNESS_PEAKS: usize = 16;
/// Roughness ignores peaks more than 50 dB below the loudest.
const ROUGHNESS_PEAK_FLOOR: f32 = 0.003_16;
/// Maximum of the Plomp-Levelt curve `e^(-3.5x) - e^(-5.75x)`, to scale roughness to 0..1.
const PLOMP_LEVELT_MAX: f32 = 0.180_8;
/// Chroma covers bins from this frequency…
const CHROMA_MIN_HZ: f32 = 50.0;
/// …to this one.
const CHROMA_MAX_HZ: f32 = 5_000.0;
/// Chroma ignores peaks more than 60 dB below the loudest bin.
const CHROMA_PEAK_FLOOR: f32 = 0.001;

/// The spectral features of one frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpectralFeatures {
    pub flux: f32,
    pub centroid_hz: f32,
    pub flatness: f32,
}

/// Reusable FFT state for frames of `size` samples.
pub struct Spectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Box<[f32]>,
    input: Box<[f32]>,
    output: Box<[Complex<f32>]>,
    scratch: Box<[Complex<f32>]>,
    magnitude: Box<[f32]>,
    log_magnitude: Box<[f32]>,
    bin_hz: f32,
    /// Bins `[first, last)` of the flatness band.
    flatness_bins: (usize, usize),
}

impl Spectrum {
    /// Plans an FFT of `size` samples at `sample_rate`.
    pub fn new(sample_rate: u32, size: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(size);
        let window: Box<[f32]> = (0..size)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / size as f32).cos())
            .collect();
        let bins = size / 2 + 1;
        let bin_hz = sample_rate as f32 / size as f32;
        Self {
            input: vec![0.0; size].into_boxed_slice(),
            output: fft.make_output_vec().into_boxed_slice(),
            scratch: fft.make_scratch_vec().into_boxed_slice(),
            fft,
            window,
            magnitude: vec![0.0; bins].into_boxed_slice(),
            log_magnitude: vec![0.0; bins].into_boxed_slice(),
            bin_hz,
            flatness_bins: (
                ((FLATNESS_MIN_HZ / bin_hz).ceil() as usize).max(1),
                ((FLATNESS_MAX_HZ.min(0.45 * sample_rate as f32) / bin_hz) as usize).max(2),
            ),
        }
    }

    /// Windows `frame` (exactly the FFT size) and computes its magnitude spectrum.
    fn transform(&mut self, frame: &[f32]) {
        for ((dst, &x), &w) in self.input.iter_mut().zip(frame).zip(self.window.iter()) {
            *dst = x * w;
        }
        // Cannot fail: every buffer has the planned length.
        let _ = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        // |X| = 1 for a full-scale sine: scale by 2 / sum(window) = 4 / size.
        let scale = 4.0 / self.window.len() as f32;
        for (mag, c) in self.magnitude.iter_mut().zip(self.output.iter()) {
            *mag = c.norm() * scale;
        }
    }

    /// Flux, centroid and flatness of `frame` (exactly the FFT size). `silent` frames still
    /// update the flux reference but report zeros.
    pub fn analyse(&mut self, frame: &[f32], silent: bool) -> SpectralFeatures {
        self.transform(frame);
        let mut flux = 0.0;
        for (&mag, log_mag) in self.magnitude.iter().zip(self.log_magnitude.iter_mut()) {
            let compressed = (FLUX_GAMMA * mag).ln_1p();
            flux += (compressed - *log_mag).max(0.0);
            *log_mag = compressed;
        }
        let flux = flux / self.magnitude.len() as f32;
        if silent {
            return SpectralFeatures {
                flux,
                ..Default::default()
            };
        }
        let mut weighted = 0.0f64;
        let mut total = 0.0f64;
        for (k, &m) in self.magnitude.iter().enumerate().skip(1) {
            weighted += k as f64 * f64::from(m);
            total += f64::from(m);
        }
        let centroid_hz = if total > 0.0 {
            (weighted / total) as f32 * self.bin_hz
        } else {
            0.0
        };
        let mut log_power = 0.0f64;
        let mut power = 0.0f64;
        let band = &self.magnitude[self.flatness_bins.0..self.flatness_bins.1];
        for &m in band {
            let p = f64::from(m) * f64::from(m) + 1e-20;
            log_power += p.ln();
            power += p;
        }
        let n = band.len().max(1) as f64;
        let flatness = ((log_power / n).exp() / (power / n)).clamp(0.0, 1.0) as f32;
        SpectralFeatures {
            flux,
            centroid_hz,
            flatness,
        }
    }

    /// Roughness and chroma of `frame` (exactly the FFT size), from its spectral peaks.
    pub fn tonal(&mut self, frame: &[f32]) -> (f32, [f32; 12]) {
        self.transform(frame);
        (self.roughness(), self.chroma())
    }

    /// The interpolated (Hz, amplitude) of the local maximum at bin `k`, if there is one.
    #[inline]
    fn peak_at(&self, k: usize) -> Option<(f32, f32)> {
        let m = &self.magnitude;
        let (a, b, c) = (m[k - 1], m[k], m[k + 1]);
        if !(b > a && b >= c) {
            return None;
        }
        let denom = a - 2.0 * b + c;
        let offset = if denom.abs() > 1e-12 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        Some(((k as f32 + offset) * self.bin_hz, b))
    }

    /// Sethares' model of Plomp and Levelt's dissonance curve over the loudest spectral
    /// peaks: `2 Σ_{i<j} a_i a_j d(f_i, f_j) / Σ a_i² / d_max`, so that two equal partials at
    /// the roughest distance (about a quarter of a critical band) give 1 and a single tone 0;
    /// clamped to 0..1.
    fn roughness(&self) -> f32 {
        let mut peaks = [(0.0f32, 0.0f32); ROUGHNESS_PEAKS]; // (amplitude, Hz), loudest first
        let mut count = 0;
        for k in 1..self.magnitude.len() - 1 {
            let Some((hz, amplitude)) = self.peak_at(k) else {
                continue;
            };
            let at = peaks[..count].partition_point(|p| p.0 >= amplitude);
            if at < ROUGHNESS_PEAKS {
                let end = (count + 1).min(ROUGHNESS_PEAKS);
                peaks.copy_within(at..end - 1, at + 1);
                peaks[at] = (amplitude, hz);
                count = end;
            }
        }
        let Some(&(loudest, _)) = peaks[..count].first() else {
            return 0.0;
        };
        let count = peaks[..count]
            .iter()
            .take_while(|p| p.0 >= loudest * ROUGHNESS_PEAK_FLOOR)
            .count();
        let peaks = &peaks[..count];
        let mut rough = 0.0;
        for (i, &(a1, f1)) in peaks.iter().enumerate() {
            for &(a2, f2) in &peaks[i + 1..] {
                let s = 0.24 / (0.0207 * f1.min(f2) + 18.96);
                let x = s * (f1 - f2).abs();
                rough += a1 * a2 * ((-3.5 * x).exp() - (-5.75 * x).exp());
            }
        }
        let power: f32 = peaks.iter().map(|p| p.0 * p.0).sum();
        if power > 0.0 {
            (2.0 * rough / power / PLOMP_LEVELT_MAX).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Power of the spectral peaks (interpolated frequency) between 50 Hz and 5 kHz and
    /// within 60 dB of the loudest, per pitch class, the strongest class scaled to 1.
    fn chroma(&self) -> [f32; 12] {
        let mut chroma = [0.0f32; 12];
        let floor = self.magnitude.iter().copied().fold(0.0, f32::max) * CHROMA_PEAK_FLOOR;
        let first = ((CHROMA_MIN_HZ / self.bin_hz) as usize).max(1);
        let last = ((CHROMA_MAX_HZ / self.bin_hz) as usize + 1).min(self.magnitude.len() - 1);
        for k in first..last {
            let Some((hz, amplitude)) = self.peak_at(k) else {
                continue;
            };
            if amplitude > floor && (CHROMA_MIN_HZ..=CHROMA_MAX_HZ).contains(&hz) {
                // MIDI note number modulo 12: C = 0
                let note = 69.0 + 12.0 * (hz / 440.0).log2();
                chroma[(note.round() as i32).rem_euclid(12) as usize] += amplitude * amplitude;
            }
        }
        let max = chroma.iter().copied().fold(0.0, f32::max);
        if max > 0.0 {
            chroma.iter_mut().for_each(|c| *c /= max);
        }
        chroma
    }

    /// Forgets the previous frame (the flux reference).
    pub fn reset(&mut self) {
        self.log_magnitude.iter_mut().for_each(|m| *m = 0.0);
    }
}
