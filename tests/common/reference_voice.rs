//! The reference voice — an oscillator → 2-pole low-pass open at 15 kHz — rendered through
//! the voice pool's kernels as the engine plays a lane (a lane allocated for the timbre's
//! feature set, its parameters set as `Participant::start_lane` sets them), for the
//! aliasing measure (`tapestry::analysis::aliasing`) and pitch checks.

use tapestry::engine::voice::{features, fold_lanes, svf_coefficients, LaneFrame, VoicePool};

/// Sample rate of the renders.
pub const SR: f32 = 48_000.0;
/// The low-pass's cut-off ("open at 15 kHz") and Q (Butterworth, no resonant peak).
pub const CUTOFF_HZ: f32 = 15_000.0;
pub const Q: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// C6, C7, C8 (equal temperament, A4 = 440 Hz).
pub const NOTES: [(&str, f64); 3] = [("C6", 1046.502), ("C7", 2093.005), ("C8", 4186.009)];

/// The oscillator the voice plays.
#[derive(Clone, Copy, Debug)]
pub enum Wave {
    /// The main saw.
    Saw,
    /// The pulse at this width (0.05..0.95).
    Pulse(f32),
    /// The second (detuned) saw alone.
    Saw2,
}

impl Wave {
    fn needs(self) -> u32 {
        match self {
            Wave::Saw => features::SAW | features::F1,
            Wave::Pulse(_) => features::PULSE | features::F1,
            Wave::Saw2 => features::SAW2 | features::F1,
        }
    }
}

/// `frames` mono samples of the reference voice playing `wave` at `hz`, rendered in blocks
/// of `block` frames (the left channel; the voice is panned centre).
pub fn render(wave: Wave, hz: f32, frames: usize, block: usize) -> Vec<f32> {
    let mut pool = VoicePool::new(1, 7);
    let slot = pool.allocate(wave.needs()).expect("a free lane");
    let (bank, i) = pool.lane(slot);
    bank.set_increments(i, hz / SR, hz / SR);
    let p = &mut bank.params;
    match wave {
        Wave::Saw => p.saw[i] = 0.5,
        Wave::Pulse(width) => (p.pulse[i], p.width[i]) = (0.5, width),
        Wave::Saw2 => p.saw2[i] = 0.5,
    }
    for (k, c) in svf_coefficients(CUTOFF_HZ, Q, SR).into_iter().enumerate() {
        p.f1[k][i] = c;
    }
    p.lp[i] = 1.0;
    (p.env_target[i], p.env_coef[i]) = (1.0, 1.0);
    (p.gain_l[i], p.gain_r[i]) = (
        std::f32::consts::FRAC_1_SQRT_2,
        std::f32::consts::FRAC_1_SQRT_2,
    );
    let mut out = Vec::with_capacity(frames);
    let (mut wl, mut wr) = (
        vec![LaneFrame::default(); block],
        vec![LaneFrame::default(); block],
    );
    let mut mono = vec![0.0; block];
    while out.len() < frames {
        let n = block.min(frames - out.len());
        wl[..n].fill(LaneFrame::default());
        wr[..n].fill(LaneFrame::default());
        pool.render_add(&mut wl[..n], &mut wr[..n]);
        fold_lanes(&wl[..n], &mut mono[..n]);
        out.extend_from_slice(&mono[..n]);
    }
    out
}
