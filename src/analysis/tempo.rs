//! Tempo of a shared pulse: autocorrelation of the onset-strength envelope over the last
//! [`TEMPO_WINDOW_SECS`], with a comb (harmonic) score, an explicit octave guard and a
//! sub-lag refinement on the highest multiple of the period in the window.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Length of the onset-strength envelope analysed, in seconds.
pub const TEMPO_WINDOW_SECS: f64 = 8.0;
/// Slowest tempo reported, in BPM.
pub const TEMPO_MIN_BPM: f64 = 60.0;
/// Fastest tempo reported, in BPM.
pub const TEMPO_MAX_BPM: f64 = 200.0;
/// Envelope needed before a tempo is estimated, in seconds.
pub const TEMPO_MIN_SECS: f64 = 3.0;
/// Tempo is re-estimated this often, in seconds.
pub const TEMPO_UPDATE_SECS: f64 = 0.25;
/// Below this steadiness the tempo is reported as 0 (no pulse).
pub const MIN_STEADINESS: f32 = 0.2;
/// The octave guard takes half the period when the autocorrelation there reaches this
/// fraction of the chosen peak's.
const OCTAVE_GUARD_RATIO: f64 = 0.6;
/// Highest multiple of the period used to refine it.
const REFINE_MULTIPLES: usize = 4;

/// The tempo estimator's state.
pub struct TempoTracker {
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    spectrum: Box<[Complex<f64>]>,
    scratch: Box<[Complex<f64>]>,
    /// Zero-padded envelope, then its autocorrelation (FFT length).
    padded: Box<[f64]>,
    envelope: Box<[f32]>,
    next: usize,
    filled: usize,
    linear: Box<[f64]>,
    acf: Box<[f64]>,
    hops_per_sec: f64,
    min_lag: usize,
    max_lag: usize,
    update_every: usize,
    since_update: usize,
    tempo_bpm: f32,
    steadiness: f32,
}

impl TempoTracker {
    /// A tracker fed once per hop of `hop_frames` at `sample_rate`.
    pub fn new(sample_rate: u32, hop_frames: usize) -> Self {
        let hops_per_sec = f64::from(sample_rate) / hop_frames as f64;
        let len = (TEMPO_WINDOW_SECS * hops_per_sec).round() as usize;
        let min_lag = (hops_per_sec * 60.0 / TEMPO_MAX_BPM).floor().max(1.0) as usize;
        let max_lag = (hops_per_sec * 60.0 / TEMPO_MIN_BPM).ceil() as usize;
        let acf_len = (REFINE_MULTIPLES * (max_lag + 2)).min(len - 1) + 1;
        // linear (not circular) correlation up to every lag needs twice the length
        let fft_len = (2 * len).next_power_of_two();
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(fft_len);
        let inverse = planner.plan_fft_inverse(fft_len);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        Self {
            spectrum: forward.make_output_vec().into_boxed_slice(),
            scratch: vec![Complex::default(); scratch_len].into_boxed_slice(),
            padded: vec![0.0; fft_len].into_boxed_slice(),
            forward,
            inverse,
            envelope: vec![0.0; len].into_boxed_slice(),
            next: 0,
            filled: 0,
            linear: vec![0.0; len].into_boxed_slice(),
            acf: vec![0.0; acf_len].into_boxed_slice(),
            hops_per_sec,
            min_lag,
            max_lag,
            update_every: ((TEMPO_UPDATE_SECS * hops_per_sec).round() as usize).max(1),
            since_update: 0,
            tempo_bpm: 0.0,
            steadiness: 0.0,
        }
    }

    /// Adds one hop's onset strength; returns (tempo in BPM, steadiness 0..1).
    pub fn push(&mut self, strength: f32) -> (f32, f32) {
        self.envelope[self.next] = strength;
        self.next = (self.next + 1) % self.envelope.len();
        self.filled = (self.filled + 1).min(self.envelope.len());
        self.since_update += 1;
        if self.since_update >= self.update_every {
            self.since_update = 0;
            (self.tempo_bpm, self.steadiness) = self.estimate();
        }
        (self.tempo_bpm, self.steadiness)
    }

    fn estimate(&mut self) -> (f32, f32) {
        let n = self.filled;
        if (n as f64) < TEMPO_MIN_SECS * self.hops_per_sec {
            return (0.0, 0.0);
        }
        let len = self.envelope.len();
        let start = (self.next + len - n) % len;
        for i in 0..n {
            self.linear[i] = f64::from(self.envelope[(start + i) % len]);
        }
        let x = &mut self.linear[..n];
        let mean = x.iter().sum::<f64>() / n as f64;
        x.iter_mut().for_each(|v| *v -= mean);
        // autocorrelation by FFT: |X|², transformed back
        self.padded.iter_mut().for_each(|v| *v = 0.0);
        self.padded[..n].copy_from_slice(x);
        let _ = self.forward.process_with_scratch(
            &mut self.padded,
            &mut self.spectrum,
            &mut self.scratch,
        );
        for c in self.spectrum.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        let _ = self.inverse.process_with_scratch(
            &mut self.spectrum,
            &mut self.padded,
            &mut self.scratch,
        );
        let max_acf_lag = (self.acf.len() - 1).min(n - 1);
        let norm = 1.0 / (n as f64 * self.padded.len() as f64);
        for (a, &p) in self.acf[..=max_acf_lag].iter_mut().zip(self.padded.iter()) {
            *a = p * norm;
        }
        let energy = self.acf[0];
        if energy <= 1e-12 {
            return (0.0, 0.0);
        }
        let acf = |lag: usize| {
            if lag <= max_acf_lag {
                self.acf[lag]
            } else {
                0.0
            }
        };
        let max_lag = self.max_lag.min(max_acf_lag);
        // comb score: a true period is also supported by its double
        let score = |lag: usize| acf(lag) + 0.5 * acf(2 * lag);
        let Some(mut lag) = (self.min_lag..=max_lag)
            .filter(|&l| acf(l) >= acf(l - 1) && acf(l) >= acf(l + 1))
            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        else {
            return (0.0, 0.0);
        };
        // octave guard: take the double tempo when its pulse is really there
        let half = local_max_near(&acf, lag / 2, 1);
        if half >= self.min_lag && acf(half) >= OCTAVE_GUARD_RATIO * acf(lag) {
            lag = half;
        }
        let steadiness = (acf(lag) / energy).clamp(0.0, 1.0) as f32;
        if steadiness < MIN_STEADINESS {
            return (0.0, steadiness);
        }
        // refine on the highest multiple of the period inside the analysed lags
        let multiple = (1..=REFINE_MULTIPLES)
            .rev()
            .find(|k| k * lag + k < max_acf_lag)
            .unwrap_or(1);
        let peak = local_max_near(&acf, multiple * lag, multiple);
        let period = (peak as f64 + parabolic_offset(acf(peak - 1), acf(peak), acf(peak + 1)))
            / multiple as f64;
        let bpm = 60.0 * self.hops_per_sec / period;
        (
            bpm.clamp(TEMPO_MIN_BPM * 0.9, TEMPO_MAX_BPM * 1.1) as f32,
            steadiness,
        )
    }

    /// Forgets the envelope.
    pub fn reset(&mut self) {
        self.envelope.iter_mut().for_each(|e| *e = 0.0);
        self.next = 0;
        self.filled = 0;
        self.since_update = 0;
        self.tempo_bpm = 0.0;
        self.steadiness = 0.0;
    }
}

/// The lag of the largest value within `center ± radius`.
fn local_max_near(acf: &impl Fn(usize) -> f64, center: usize, radius: usize) -> usize {
    (center.saturating_sub(radius).max(1)..=center + radius)
        .max_by(|&a, &b| acf(a).total_cmp(&acf(b)))
        .unwrap_or(center)
}

fn parabolic_offset(a: f64, b: f64, c: f64) -> f64 {
    let denom = a - 2.0 * b + c;
    if denom.abs() > 1e-12 {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    }
}
