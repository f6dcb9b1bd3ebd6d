//! Test signals and the independent reference meter (the `ebur128` crate) for the master bus's
//! unit tests.

use ebur128::{EbuR128, Mode};

/// Deterministic xorshift white noise in [-1, 1).
pub struct Noise(pub u32);

impl Noise {
    pub fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x as f32 / u32::MAX as f32) * 2.0 - 1.0
    }
}

/// Pink-ish noise (Paul Kellet's refined filter).
pub struct Pink {
    white: Noise,
    b: [f32; 7],
}

impl Pink {
    pub fn new(seed: u32) -> Self {
        Self {
            white: Noise(seed),
            b: [0.0; 7],
        }
    }

    pub fn next(&mut self) -> f32 {
        let w = self.white.next();
        let b = &mut self.b;
        b[0] = 0.99886 * b[0] + w * 0.0555179;
        b[1] = 0.99332 * b[1] + w * 0.0750759;
        b[2] = 0.96900 * b[2] + w * 0.153852;
        b[3] = 0.86650 * b[3] + w * 0.3104856;
        b[4] = 0.55000 * b[4] + w * 0.5329522;
        b[5] = -0.7616 * b[5] - w * 0.0168980;
        let out = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362;
        b[6] = w * 0.115926;
        out * 0.11
    }
}

pub fn pink_stereo(sr: u32, secs: f32, seed: u32) -> Vec<(f32, f32)> {
    let mut a = Pink::new(seed);
    let mut b = Pink::new(seed.wrapping_mul(2_654_435_761).max(1));
    (0..(sr as f32 * secs) as usize)
        .map(|_| (a.next(), b.next()))
        .collect()
}

/// A sine on both channels, `phase` in radians at sample 0.
pub fn sine_stereo(sr: u32, secs: f32, hz: f64, amp: f32, phase: f64) -> Vec<(f32, f32)> {
    (0..(sr as f32 * secs) as usize)
        .map(|i| {
            let x =
                amp * (std::f64::consts::TAU * hz * i as f64 / f64::from(sr) + phase).sin() as f32;
            (x, x)
        })
        .collect()
}

pub fn reference(sr: u32, frames: &[(f32, f32)], mode: Mode) -> EbuR128 {
    let mut ebu = EbuR128::new(2, sr, mode).unwrap();
    let inter: Vec<f32> = frames.iter().flat_map(|&(l, r)| [l, r]).collect();
    ebu.add_frames_f32(&inter).unwrap();
    ebu
}

/// Integrated loudness by the reference meter, in LUFS.
pub fn ref_integrated(sr: u32, frames: &[(f32, f32)]) -> f64 {
    reference(sr, frames, Mode::I).loudness_global().unwrap()
}

/// True peak (both channels) by the reference meter, in dBTP.
pub fn ref_true_peak_dbtp(sr: u32, frames: &[(f32, f32)]) -> f64 {
    let ebu = reference(sr, frames, Mode::TRUE_PEAK | Mode::SAMPLE_PEAK);
    let peak = (0..2)
        .map(|c| ebu.true_peak(c).unwrap())
        .fold(0.0f64, f64::max);
    20.0 * peak.max(1e-12).log10()
}

/// Scales `frames` to `lufs` by the reference meter.
pub fn scale_to(sr: u32, frames: &mut [(f32, f32)], lufs: f64) {
    let g = 10f64.powf((lufs - ref_integrated(sr, frames)) / 20.0) as f32;
    for f in frames.iter_mut() {
        *f = (f.0 * g, f.1 * g);
    }
}
