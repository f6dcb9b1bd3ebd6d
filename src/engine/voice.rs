//! The voice kernel: eight oscillator lanes computed together, so the compiler turns each
//! line into one SIMD instruction over all lanes (structure of arrays, branch-free inner loop).
//!
//! One lane = a phase-accumulator oscillator (polyBLEP saw, polyBLEP pulse, a second detuned
//! saw, an FM sine and noise), two TPT state-variable filters (low-pass/band-pass and a second
//! band-pass for formants), a one-pole amplitude envelope and equal-power pan gains.
//! Parameters change at control rate; the per-sample loop only reads them.

/// Lanes computed together.
pub const LANES: usize = 8;

type Lanes = [f32; LANES];

/// Per-lane parameters, written at control rate by the score logic.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaneParams {
    /// Phase increment per sample (frequency / sample rate).
    pub dt: Lanes,
    /// Phase increment of the second saw.
    pub dt2: Lanes,
    /// FM modulator frequency as a multiple of the carrier.
    pub mod_ratio: Lanes,
    /// FM index in cycles of phase deviation.
    pub fm_index: Lanes,
    /// Vibrato LFO phase increment per sample.
    pub vib_dt: Lanes,
    /// Vibrato depth as a fraction of frequency.
    pub vib_depth: Lanes,
    /// Saw level.
    pub saw: Lanes,
    /// Pulse level.
    pub pulse: Lanes,
    /// Pulse width, 0.05..0.95.
    pub width: Lanes,
    /// Second saw level.
    pub saw2: Lanes,
    /// FM sine level.
    pub sine: Lanes,
    /// Noise level.
    pub noise: Lanes,
    /// Filter 1 coefficients (TPT SVF a1, a2, a3) and damping k.
    pub f1: [Lanes; 4],
    /// Filter 2 coefficients.
    pub f2: [Lanes; 4],
    /// Filter 1 low-pass output level.
    pub lp: Lanes,
    /// Filter 1 band-pass output level (normalized to unity peak gain).
    pub bp: Lanes,
    /// Filter 2 band-pass output level (normalized to unity peak gain).
    pub bp2: Lanes,
    /// Envelope target.
    pub env_target: Lanes,
    /// Envelope one-pole coefficient per sample.
    pub env_coef: Lanes,
    /// Left gain (level × pan).
    pub gain_l: Lanes,
    /// Right gain (level × pan).
    pub gain_r: Lanes,
}

/// Per-lane state carried from sample to sample.
#[derive(Clone, Copy, Debug)]
pub struct LaneState {
    /// Oscillator phase in [0, 1).
    pub phase: Lanes,
    /// Second saw phase.
    pub phase2: Lanes,
    /// FM modulator phase.
    pub mod_phase: Lanes,
    /// Vibrato LFO phase.
    pub vib_phase: Lanes,
    /// Filter 1 integrator states.
    pub f1_ic: [Lanes; 2],
    /// Filter 2 integrator states.
    pub f2_ic: [Lanes; 2],
    /// Envelope level.
    pub env: Lanes,
    /// Noise generator state (xorshift32, never zero).
    pub noise: [u32; LANES],
}

impl LaneState {
    /// Silent state with noise seeds derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut noise = [0u32; LANES];
        for (i, n) in noise.iter_mut().enumerate() {
            let mixed = crate::rng::Rng::derive(seed, i as u64).next_u64();
            *n = (mixed as u32) | 1;
        }
        Self {
            phase: [0.0; LANES],
            phase2: [0.0; LANES],
            mod_phase: [0.0; LANES],
            vib_phase: [0.0; LANES],
            f1_ic: [[0.0; LANES]; 2],
            f2_ic: [[0.0; LANES]; 2],
            env: [0.0; LANES],
            noise,
        }
    }
}

/// Eight lanes: parameters and state.
#[derive(Clone, Copy, Debug)]
pub struct LaneBank {
    /// Parameters.
    pub params: LaneParams,
    /// State.
    pub state: LaneState,
}

/// TPT state-variable filter coefficients `[a1, a2, a3, k]` for a cutoff and resonance.
/// Real-time safe.
#[inline]
pub fn svf_coefficients(cutoff_hz: f32, q: f32, sample_rate: f32) -> [f32; 4] {
    let w = (std::f32::consts::PI * cutoff_hz / sample_rate).clamp(1e-5, 1.50);
    let g = fast_tan(w);
    let k = 1.0 / q.max(0.05);
    let a1 = 1.0 / (1.0 + g * (g + k));
    let a2 = g * a1;
    let a3 = g * a2;
    [a1, a2, a3, k]
}

/// tan(x) for x in [0, 1.5], Padé [5/4] approximant (relative error < 1e-4 up to 1.4).
#[inline]
pub fn fast_tan(x: f32) -> f32 {
    let x2 = x * x;
    x * (945.0 - 105.0 * x2 + x2 * x2) / (945.0 - 420.0 * x2 + 15.0 * x2 * x2)
}

/// sin(2πt) for t in [0, 1): parabolic approximation with one refinement step.
#[inline(always)]
fn sin_unit(t: f32) -> f32 {
    // u in [-1, 1): sin(2πt) = -sin(πu)
    let u = 2.0 * t - 1.0;
    let y = 4.0 * u * (1.0 - u.abs());
    -(0.225 * (y * y.abs() - y) + y)
}

#[inline(always)]
fn poly_blep(t: f32, dt: f32) -> f32 {
    let dt = dt.max(1e-6);
    let a = t / dt;
    let b = (t - 1.0) / dt;
    if t < dt {
        a + a - a * a - 1.0
    } else if t > 1.0 - dt {
        b * b + b + b + 1.0
    } else {
        0.0
    }
}

#[inline(always)]
fn wrap(x: f32) -> f32 {
    // x >= 0 here; truncation is floor.
    x - (x as i32) as f32
}

impl LaneBank {
    /// A silent bank.
    pub fn new(seed: u64) -> Self {
        Self {
            params: LaneParams::default(),
            state: LaneState::new(seed),
        }
    }

    /// True when every lane is silent and heading to silence.
    pub fn is_silent(&self) -> bool {
        self.state
            .env
            .iter()
            .zip(self.params.env_target.iter())
            .all(|(e, t)| *e < 1e-5 && *t <= 0.0)
    }

    /// Clears filter memories and envelopes (used when a silent bank goes to sleep, so no
    /// denormal tail lingers). Real-time safe.
    pub fn quiet(&mut self) {
        self.state.f1_ic = [[0.0; LANES]; 2];
        self.state.f2_ic = [[0.0; LANES]; 2];
        self.state.env = [0.0; LANES];
    }

    /// Renders `out_l.len()` frames, adding into the outputs. Real-time safe.
    #[inline(never)]
    pub fn render_add(&mut self, out_l: &mut [f32], out_r: &mut [f32]) {
        let p = &self.params;
        let s = &mut self.state;
        for (ol, or) in out_l.iter_mut().zip(out_r.iter_mut()) {
            let mut yl = [0.0f32; LANES];
            let mut yr = [0.0f32; LANES];
            for i in 0..LANES {
                // vibrato
                let vp = wrap(s.vib_phase[i] + p.vib_dt[i]);
                s.vib_phase[i] = vp;
                let dt = p.dt[i] * (1.0 + p.vib_depth[i] * sin_unit(vp));
                // main phase
                let ph = wrap(s.phase[i] + dt);
                s.phase[i] = ph;
                let saw = 2.0 * ph - 1.0 - poly_blep(ph, dt);
                let ph_w = wrap(ph + p.width[i]);
                let saw_w = 2.0 * ph_w - 1.0 - poly_blep(ph_w, dt);
                let pulse = saw - saw_w;
                // second saw
                let dt2 = p.dt2[i] * (1.0 + p.vib_depth[i] * sin_unit(vp));
                let ph2 = wrap(s.phase2[i] + dt2);
                s.phase2[i] = ph2;
                let saw2 = 2.0 * ph2 - 1.0 - poly_blep(ph2, dt2);
                // FM sine
                let mp = wrap(s.mod_phase[i] + dt * p.mod_ratio[i]);
                s.mod_phase[i] = mp;
                let sine = sin_unit(wrap(ph + 8.0 + p.fm_index[i] * sin_unit(mp)));
                // noise
                let mut n = s.noise[i];
                n ^= n << 13;
                n ^= n >> 17;
                n ^= n << 5;
                s.noise[i] = n;
                let noise = ((n >> 9) as i32) as f32 * (2.0 / 8_388_608.0) - 1.0;
                let src = p.saw[i] * saw
                    + p.pulse[i] * pulse
                    + p.saw2[i] * saw2
                    + p.sine[i] * sine
                    + p.noise[i] * noise;
                // filter 1: low-pass + band-pass
                let [a1, a2, a3, k] = [p.f1[0][i], p.f1[1][i], p.f1[2][i], p.f1[3][i]];
                let v3 = src - s.f1_ic[1][i];
                let v1 = a1 * s.f1_ic[0][i] + a2 * v3;
                let v2 = s.f1_ic[1][i] + a2 * s.f1_ic[0][i] + a3 * v3;
                s.f1_ic[0][i] = 2.0 * v1 - s.f1_ic[0][i];
                s.f1_ic[1][i] = 2.0 * v2 - s.f1_ic[1][i];
                // filter 2: band-pass (formant)
                let [b1, b2, b3, k2] = [p.f2[0][i], p.f2[1][i], p.f2[2][i], p.f2[3][i]];
                let w3 = src - s.f2_ic[1][i];
                let w1 = b1 * s.f2_ic[0][i] + b2 * w3;
                let w2 = s.f2_ic[1][i] + b2 * s.f2_ic[0][i] + b3 * w3;
                s.f2_ic[0][i] = 2.0 * w1 - s.f2_ic[0][i];
                s.f2_ic[1][i] = 2.0 * w2 - s.f2_ic[1][i];
                // envelope and output
                let env = s.env[i] + (p.env_target[i] - s.env[i]) * p.env_coef[i];
                s.env[i] = env;
                let y = (p.lp[i] * v2 + p.bp[i] * k * v1 + p.bp2[i] * k2 * w1) * env;
                yl[i] = y * p.gain_l[i];
                yr[i] = y * p.gain_r[i];
            }
            *ol += yl.iter().sum::<f32>();
            *or += yr.iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tan_approximation_is_close() {
        for i in 1..140 {
            let x = i as f32 * 0.01;
            let rel = (fast_tan(x) - x.tan()).abs() / x.tan();
            assert!(rel < 1e-3, "x={x} rel={rel}");
        }
    }

    #[test]
    fn sine_approximation_is_close() {
        for i in 0..1000 {
            let t = i as f32 / 1000.0;
            let err = (sin_unit(t) - (std::f32::consts::TAU * t).sin()).abs();
            assert!(err < 0.002, "t={t} err={err}");
        }
    }

    #[test]
    fn a_lowpassed_saw_lane_sounds_at_its_pitch() {
        let sr = 48_000.0;
        let mut bank = LaneBank::new(1);
        bank.params.dt[0] = 220.0 / sr;
        bank.params.saw[0] = 1.0;
        bank.params.f1 = svf_coefficients(2000.0, 0.7, sr).map(|c| [c; LANES]);
        bank.params.f2 = svf_coefficients(1000.0, 0.7, sr).map(|c| [c; LANES]);
        bank.params.lp[0] = 1.0;
        bank.params.env_target[0] = 1.0;
        bank.params.env_coef[0] = 1.0;
        bank.params.gain_l[0] = 1.0;
        bank.params.gain_r[0] = 1.0;
        let mut l = vec![0.0; 4800];
        let mut r = vec![0.0; 4800];
        for (cl, cr) in l.chunks_mut(64).zip(r.chunks_mut(64)) {
            bank.render_add(cl, cr);
        }
        // count rising zero crossings over the last 0.05 s: 220 Hz → 11
        let tail = &l[2400..];
        let crossings = tail.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((10..=12).contains(&crossings), "{crossings}");
        assert!(l.iter().all(|x| x.is_finite()));
        assert_eq!(l, r);
    }
}
