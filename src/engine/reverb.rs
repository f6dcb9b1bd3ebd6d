//! `Hall`: an 8-line feedback delay network reverb whose lines are processed together as one
//! SIMD row (Householder feedback, per-line damping), with allpass input diffusion.
//! `new` allocates the delay lines; `tick` and `reset` never allocate.

const LINES: usize = 8;
/// Line lengths in milliseconds for a 20 m room (mutually non-harmonic).
const LINE_MS: [f32; LINES] = [43.1, 49.7, 56.3, 63.1, 70.9, 78.3, 86.9, 94.1];
/// Input diffuser delays in milliseconds (left, right) and their gain.
const DIFFUSER_MS: [[f32; 2]; 2] = [[4.7, 6.1], [5.3, 7.3]];
const DIFFUSION: f32 = 0.62;

struct Allpass {
    buf: Vec<f32>,
    pos: usize,
}

impl Allpass {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; len.max(1)],
            pos: 0,
        }
    }

    #[inline]
    fn tick(&mut self, x: f32) -> f32 {
        let delayed = self.buf[self.pos];
        let v = x + DIFFUSION * delayed;
        self.buf[self.pos] = v;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        delayed - DIFFUSION * v
    }
}

/// Stereo FDN reverb.
pub struct Hall {
    lines: Vec<f32>,
    mask: usize,
    stride: usize,
    write: usize,
    delay: [usize; LINES],
    gain: [f32; LINES],
    damp: f32,
    lp: [f32; LINES],
    diffusers: [[Allpass; 2]; 2],
}

impl Hall {
    /// How many values of the reverb's state are subnormal (tests: none ever should be, as
    /// subnormal arithmetic is up to a hundred times slower).
    #[cfg(test)]
    pub(crate) fn subnormal_state(&self) -> usize {
        let diffusers = self.diffusers.iter().flatten().flat_map(|a| a.buf.iter());
        self.lines
            .iter()
            .chain(&self.lp)
            .chain(diffusers)
            .filter(|x| x.is_subnormal())
            .count()
    }

    /// A reverb for a room size (metres, 20 = medium hall), decay time to -60 dB and
    /// high-frequency damping (0..1). Allocates.
    pub fn new(sample_rate: f32, room_size: f32, time_secs: f32, damping: f32) -> Self {
        let scale = (room_size / 20.0).clamp(0.25, 5.0);
        let mut delay = [0usize; LINES];
        let mut gain = [0.0f32; LINES];
        for i in 0..LINES {
            let d = (LINE_MS[i] * scale * 0.001 * sample_rate).round().max(16.0);
            delay[i] = d as usize;
            // each pass through a line loses its share of 60 dB over `time_secs`
            gain[i] = 10f32.powf(-3.0 * d / (time_secs.max(0.05) * sample_rate));
        }
        let longest = delay.iter().copied().max().unwrap_or(16) + 1;
        let stride = longest.next_power_of_two();
        let ap = |ms: f32| Allpass::new((ms * 0.001 * sample_rate).round() as usize);
        Self {
            lines: vec![0.0; stride * LINES],
            mask: stride - 1,
            stride,
            write: 0,
            delay,
            gain,
            damp: damping.clamp(0.0, 1.0) * 0.6,
            lp: [0.0; LINES],
            diffusers: [
                [ap(DIFFUSER_MS[0][0]), ap(DIFFUSER_MS[0][1])],
                [ap(DIFFUSER_MS[1][0]), ap(DIFFUSER_MS[1][1])],
            ],
        }
    }

    /// One stereo frame in, the wet signal out. Real-time safe.
    #[inline]
    pub fn tick(&mut self, l: f32, r: f32) -> (f32, f32) {
        let [[l0, l1], [r0, r1]] = &mut self.diffusers;
        let l = l1.tick(l0.tick(l));
        let r = r1.tick(r0.tick(r));
        let mut out = [0.0f32; LINES];
        for (i, o) in out.iter_mut().enumerate() {
            let read = (self.write + self.stride - self.delay[i]) & self.mask;
            *o = self.lines[i * self.stride + read];
        }
        // damping and decay
        let mut v = [0.0f32; LINES];
        for i in 0..LINES {
            self.lp[i] = out[i] + self.damp * (self.lp[i] - out[i]);
            v[i] = self.lp[i] * self.gain[i];
        }
        // Householder reflection: v - 2/N * sum(v), lossless and fully mixing
        let sum = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
        let k = sum * (2.0 / LINES as f32);
        let input = [l, r, l, r, l, r, l, r];
        for i in 0..LINES {
            let sign = if i % 4 < 2 { 1.0 } else { -1.0 };
            self.lines[i * self.stride + self.write] = v[i] - k + sign * input[i] * 0.5;
        }
        self.write = (self.write + 1) & self.mask;
        let wl = (out[0] - out[2]) + (out[4] - out[6]);
        let wr = (out[1] - out[3]) + (out[5] - out[7]);
        (wl * 0.5, wr * 0.5)
    }

    /// Clears the tail. Real-time safe.
    pub fn reset(&mut self) {
        self.lines.fill(0.0);
        self.lp = [0.0; LINES];
        self.write = 0;
        for d in self.diffusers.iter_mut().flatten() {
            d.buf.fill(0.0);
            d.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impulse_decays_at_the_set_time() {
        let sr = 48_000.0;
        let mut hall = Hall::new(sr, 20.0, 2.0, 0.3);
        let mut energy = vec![0.0f64; 40];
        for n in 0..(4.0 * sr) as usize {
            let x = if n == 0 { 1.0 } else { 0.0 };
            let (l, r) = hall.tick(x, x);
            assert!(l.is_finite() && r.is_finite());
            energy[n / 4800] += (l * l + r * r) as f64;
        }
        // compare 0.5-0.6 s with 1.5-1.6 s: 1 s of a 2 s T60 is 30 dB
        let db = 10.0 * (energy[5] / energy[15]).log10();
        assert!((20.0..40.0).contains(&db), "decay over 1 s was {db:.1} dB");
    }

    #[test]
    fn left_and_right_tails_differ() {
        let mut hall = Hall::new(48_000.0, 20.0, 2.0, 0.3);
        let (mut sl, mut sr, mut slr) = (0.0f64, 0.0f64, 0.0f64);
        for n in 0..48_000 {
            let x = if n == 0 { 1.0 } else { 0.0 };
            let (l, r) = hall.tick(x, x);
            sl += (l * l) as f64;
            sr += (r * r) as f64;
            slr += (l * r) as f64;
        }
        let corr = slr / (sl * sr).sqrt();
        assert!(corr.abs() < 0.5, "correlation {corr}");
    }
}
