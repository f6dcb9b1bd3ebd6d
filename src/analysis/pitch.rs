//! YIN pitch (de Cheveigné & Kawahara 2002) with the difference function computed by FFT
//! cross-correlation, and a pYIN-style confidence: 1 − the aperiodicity at the chosen lag.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Lowest pitch searched, in Hz.
pub const PITCH_MIN_HZ: f32 = 50.0;
/// Highest pitch searched, in Hz.
pub const PITCH_MAX_HZ: f32 = 2_000.0;
/// YIN's absolute threshold on the cumulative mean normalised difference.
const YIN_THRESHOLD: f32 = 0.15;

/// Pitch estimate of one frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct PitchEstimate {
    pub hz: f32,
    pub confidence: f32,
}

/// YIN over frames of `2 × window` samples (integration window `window`, lags up to
/// `window − 1`).
pub struct Yin {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    head: Box<[f32]>,
    padded: Box<[f32]>,
    head_spectrum: Box<[Complex<f32>]>,
    spectrum: Box<[Complex<f32>]>,
    scratch: Box<[Complex<f32>]>,
    correlation: Box<[f32]>,
    energy_prefix: Box<[f64]>,
    cmnd: Box<[f32]>,
    window: usize,
    min_lag: usize,
    max_lag: usize,
    sample_rate: f32,
}

impl Yin {
    /// YIN for frames of `frame_len` samples (even) at `sample_rate`.
    pub fn new(sample_rate: u32, frame_len: usize) -> Self {
        let window = frame_len / 2;
        let fft_len = 2 * frame_len;
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(fft_len);
        let inverse = planner.plan_fft_inverse(fft_len);
        let scratch_len = forward
            .get_scratch_len()
            .max(inverse.get_scratch_len())
            .max(1);
        let max_lag = ((sample_rate as f32 / PITCH_MIN_HZ).ceil() as usize).min(window - 1);
        let min_lag = ((sample_rate as f32 / PITCH_MAX_HZ).floor() as usize).clamp(2, max_lag - 1);
        Self {
            head: vec![0.0; fft_len].into_boxed_slice(),
            padded: vec![0.0; fft_len].into_boxed_slice(),
            head_spectrum: forward.make_output_vec().into_boxed_slice(),
            spectrum: forward.make_output_vec().into_boxed_slice(),
            scratch: vec![Complex::default(); scratch_len].into_boxed_slice(),
            correlation: vec![0.0; fft_len].into_boxed_slice(),
            energy_prefix: vec![0.0; frame_len + 1].into_boxed_slice(),
            cmnd: vec![1.0; max_lag + 2].into_boxed_slice(),
            forward,
            inverse,
            window,
            min_lag,
            max_lag,
            sample_rate: sample_rate as f32,
        }
    }

    /// Estimates the pitch of `frame` (length `2 × window`).
    pub fn estimate(&mut self, frame: &[f32]) -> PitchEstimate {
        let w = self.window;
        let n = frame.len();
        // r(τ) = Σ_{j<W} x_j x_{j+τ}: cross-correlation of the head with the frame.
        self.head.iter_mut().for_each(|v| *v = 0.0);
        self.head[..w].copy_from_slice(&frame[..w]);
        self.padded.iter_mut().for_each(|v| *v = 0.0);
        self.padded[..n].copy_from_slice(frame);
        let _ = self.forward.process_with_scratch(
            &mut self.head,
            &mut self.head_spectrum,
            &mut self.scratch,
        );
        let _ = self.forward.process_with_scratch(
            &mut self.padded,
            &mut self.spectrum,
            &mut self.scratch,
        );
        for (x, h) in self.spectrum.iter_mut().zip(self.head_spectrum.iter()) {
            *x *= h.conj();
        }
        let last = self.spectrum.len() - 1;
        self.spectrum[0].im = 0.0;
        self.spectrum[last].im = 0.0;
        let _ = self.inverse.process_with_scratch(
            &mut self.spectrum,
            &mut self.correlation,
            &mut self.scratch,
        );
        let norm = 1.0 / self.correlation.len() as f32;

        self.energy_prefix[0] = 0.0;
        for (i, &x) in frame.iter().enumerate() {
            self.energy_prefix[i + 1] = self.energy_prefix[i] + f64::from(x) * f64::from(x);
        }
        let e0 = self.energy_prefix[w];
        if e0 <= 1e-12 {
            return PitchEstimate::default();
        }
        // cumulative mean normalised difference d'(τ)
        let mut running = 0.0f64;
        self.cmnd[0] = 1.0;
        for tau in 1..=self.max_lag + 1 {
            let e_tau = self.energy_prefix[tau + w] - self.energy_prefix[tau];
            let d = (e0 + e_tau - 2.0 * f64::from(self.correlation[tau] * norm)).max(0.0);
            running += d;
            self.cmnd[tau] = if running > 0.0 {
                (d * tau as f64 / running) as f32
            } else {
                1.0
            };
        }
        let cmnd = &self.cmnd;
        let mut best = None;
        let mut tau = self.min_lag;
        while tau <= self.max_lag {
            if cmnd[tau] < YIN_THRESHOLD {
                while tau < self.max_lag && cmnd[tau + 1] < cmnd[tau] {
                    tau += 1;
                }
                best = Some(tau);
                break;
            }
            tau += 1;
        }
        // no dip under the threshold: the global minimum, with its (low) confidence
        let tau = best.unwrap_or_else(|| {
            (self.min_lag..=self.max_lag)
                .min_by(|&a, &b| cmnd[a].total_cmp(&cmnd[b]))
                .unwrap_or(self.min_lag)
        });
        let (a, b, c) = (cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]);
        let denom = a - 2.0 * b + c;
        let offset = if denom.abs() > 1e-12 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        PitchEstimate {
            hz: self.sample_rate / (tau as f32 + offset),
            confidence: (1.0 - b).clamp(0.0, 1.0),
        }
    }
}
