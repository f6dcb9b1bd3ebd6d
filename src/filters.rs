//! Filters shared by the master bus's loudness meter and the room analysis: a biquad and
//! the BS.1770 K-weighting pair.

/// Biquad coefficients (normalised so that a0 = 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Biquad {
    pub(crate) b0: f64,
    pub(crate) b1: f64,
    pub(crate) b2: f64,
    pub(crate) a1: f64,
    pub(crate) a2: f64,
}

impl Biquad {
    /// One step of a transposed direct form II biquad.
    #[inline]
    pub(crate) fn tick(&self, x: f64, z: &mut [f64; 2]) -> f64 {
        let y = self.b0 * x + z[0];
        z[0] = self.b1 * x - self.a1 * y + z[1];
        z[1] = self.b2 * x - self.a2 * y;
        y
    }
}

/// K-weighting filters for any sample rate, derived from the analog
/// prototypes by the bilinear transform exactly as libebur128 does.
pub(crate) fn k_weighting(sample_rate_hz: f64) -> (Biquad, Biquad) {
    // Stage 1: high shelf ("pre-filter", head diffraction model).
    let f0 = 1_681.974_450_955_533;
    let gain_db = 3.999_843_853_973_347;
    let q = 0.707_175_236_955_419_6;
    let k = (std::f64::consts::PI * f0 / sample_rate_hz).tan();
    let vh = 10f64.powf(gain_db / 20.0);
    let vb = vh.powf(0.499_666_774_154_541_6);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b0: (vh + vb * k / q + k * k) / a0,
        b1: 2.0 * (k * k - vh) / a0,
        b2: (vh - vb * k / q + k * k) / a0,
        a1: 2.0 * (k * k - 1.0) / a0,
        a2: (1.0 - k / q + k * k) / a0,
    };
    // Stage 2: RLB high-pass. The numerator is the un-normalised
    // [1, -2, 1] of BS.1770 / libebur128.
    let f0 = 38.135_470_876_024_44;
    let q = 0.500_327_037_323_877_3;
    let k = (std::f64::consts::PI * f0 / sample_rate_hz).tan();
    let a0 = 1.0 + k / q + k * k;
    let highpass = Biquad {
        b0: 1.0,
        b1: -2.0,
        b2: 1.0,
        a1: 2.0 * (k * k - 1.0) / a0,
        a2: (1.0 - k / q + k * k) / a0,
    };
    (shelf, highpass)
}
