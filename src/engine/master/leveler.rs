//! The live leveler: loudness normalization for a show whose future is unknown. It starts
//! from a calibrated gain and only nudges it, slowly and within a bounded range, towards the
//! gain that would put the show so far on the target, so a storm stays louder than a hush.

use super::meter::{KWeightedMeter, ABSOLUTE_GATE_LUFS};
use super::{db_to_gain, finite_or_zero, gain_to_db, sanitize_sample_rate};

/// Slow, bounded live loudness normalizer.
///
/// It measures its *input* (the program) with a [`KWeightedMeter`] and, once a show has given
/// enough evidence, moves its gain towards the gain that would put everything heard so far on
/// the target, `target − input integrated loudness`, trusting that measure more as the show
/// goes on. Rules, evaluated once per 100 ms hop (the gain is ramped linearly over each hop, so
/// there are no steps):
/// * the gain starts at `start_gain_db` (a calibration: the gain that puts a render of the
///   patch, or of the show's performance, on the target);
/// * it holds until [`LiveLeveler::EVIDENCE_SECS`] of gated program have been heard;
/// * the gain it aims for is `start + w × (target − integrated − start)`, with
///   `w = t / (t + PRIOR_SECS)` after `t` seconds of gated program: the calibration weighs as
///   much as [`LiveLeveler::PRIOR_SECS`] of the show (a quiet opening says little about the
///   whole; an hour of show says a lot);
/// * it stays within [`LiveLeveler::RANGE_DB`] of the start gain;
/// * it moves only while the wanted gain is more than [`LiveLeveler::DEADBAND_DB`] away, at
///   most [`LiveLeveler::SLEW_DB_PER_SEC`]: a swell of a minute moves it by about a decibel;
/// * while the program is silent (below the absolute gate) the gain is frozen.
#[derive(Clone, Debug)]
pub struct LiveLeveler {
    meter: KWeightedMeter,
    target_lufs: f32,
    start_gain_db: f32,
    evidence_blocks: u32,
    hop_secs: f32,
    /// Gain (dB) that the current ramp ends at.
    control_gain_db: f32,
    /// Linear gain applied to the next sample (f64 so that the per-sample ramp does not drift).
    gain: f64,
    ramp_step: f64,
    ramp_target: f64,
    ramp_left: usize,
}

impl LiveLeveler {
    /// Gated program needed before the gain moves, in seconds.
    pub const EVIDENCE_SECS: f32 = 20.0;
    /// Seconds of gated show that weigh as much as the calibration when the show is louder
    /// than it...
    pub const PRIOR_SECS: f32 = 180.0;
    /// ...and when it is quieter: pieces open quietly and swell far more often than the
    /// reverse, so a quiet start is slow to raise the gain (which would flatten the swell).
    pub const PRIOR_QUIET_SECS: f32 = 600.0;
    /// Largest distance from the start gain, in dB.
    pub const RANGE_DB: f32 = 6.0;
    /// The gain moves only while the wanted gain is further away than this, in dB.
    pub const DEADBAND_DB: f32 = 1.0;
    /// Fastest gain change, in dB per second.
    pub const SLEW_DB_PER_SEC: f32 = 0.02;
    /// Largest start gain, either way, in dB.
    pub const MAX_START_GAIN_DB: f32 = 40.0;

    /// Creates a leveler for `sample_rate` Hz aiming at `target_lufs`, starting at
    /// `start_gain_db` (clamped to ±40 dB; not finite: 0).
    pub fn new(sample_rate: f32, target_lufs: f32, start_gain_db: f32) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let meter = KWeightedMeter::new(sample_rate);
        let hop_secs = meter.hop_frames() as f32 / sample_rate;
        let start_gain_db = if start_gain_db.is_finite() {
            start_gain_db.clamp(-Self::MAX_START_GAIN_DB, Self::MAX_START_GAIN_DB)
        } else {
            0.0
        };
        let target_lufs = if target_lufs.is_finite() {
            target_lufs
        } else {
            -16.0
        };
        let gain = f64::from(db_to_gain(start_gain_db));
        Self {
            meter,
            target_lufs,
            start_gain_db,
            evidence_blocks: (Self::EVIDENCE_SECS / hop_secs).ceil() as u32,
            hop_secs,
            control_gain_db: start_gain_db,
            gain,
            ramp_step: 0.0,
            ramp_target: gain,
            ramp_left: 0,
        }
    }

    /// Processes one stereo frame and returns the leveled frame.
    #[inline]
    pub fn process_frame(&mut self, l: f32, r: f32) -> (f32, f32) {
        let (l, r) = (finite_or_zero(l), finite_or_zero(r));
        let hop_done = self.meter.push_frame(l, r);
        let gain = self.gain as f32;
        let out = (l * gain, r * gain);
        if self.ramp_left > 0 {
            self.ramp_left -= 1;
            if self.ramp_left == 0 {
                self.gain = self.ramp_target;
            } else {
                self.gain += self.ramp_step;
            }
        }
        if hop_done {
            self.update_control();
        }
        out
    }

    fn update_control(&mut self) {
        if self.meter.last_block_lufs() < ABSOLUTE_GATE_LUFS
            || self.meter.gated_blocks() < self.evidence_blocks
        {
            return; // silence, or not enough of the show heard yet: hold
        }
        let integrated = self.meter.integrated_lufs();
        if !integrated.is_finite() {
            return;
        }
        let heard_secs = self.meter.gated_blocks() as f32 * self.hop_secs;
        let measured = self.target_lufs - integrated - self.start_gain_db;
        let prior = if measured > 0.0 {
            Self::PRIOR_QUIET_SECS
        } else {
            Self::PRIOR_SECS
        };
        let trust = heard_secs / (heard_secs + prior);
        let wanted = self.start_gain_db + (trust * measured).clamp(-Self::RANGE_DB, Self::RANGE_DB);
        let error = wanted - self.control_gain_db;
        if error.abs() <= Self::DEADBAND_DB {
            return;
        }
        let step = Self::SLEW_DB_PER_SEC * self.hop_secs;
        self.control_gain_db += error.clamp(-step, step);
        self.ramp_target = f64::from(db_to_gain(self.control_gain_db));
        self.ramp_left = self.meter.hop_frames();
        self.ramp_step = (self.ramp_target - self.gain) / self.ramp_left as f64;
    }

    /// Gain currently applied, in dB.
    pub fn gain_db(&self) -> f32 {
        gain_to_db(self.gain as f32)
    }

    /// The gain the leveler started from, in dB.
    pub fn start_gain_db(&self) -> f32 {
        self.start_gain_db
    }

    /// Momentary loudness of the leveled program (input momentary loudness plus the gain), in
    /// LUFS.
    pub fn output_momentary_lufs(&self) -> f32 {
        self.meter.momentary_lufs() + self.gain_db()
    }

    /// Integrated loudness of the input measured so far, in LUFS.
    pub fn input_integrated_lufs(&self) -> f32 {
        self.meter.integrated_lufs()
    }

    /// Returns to the freshly constructed state (gain back to the start gain, meter cleared).
    /// Never allocates.
    pub fn reset(&mut self) {
        self.meter.reset();
        self.control_gain_db = self.start_gain_db;
        self.gain = f64::from(db_to_gain(self.start_gain_db));
        self.ramp_step = 0.0;
        self.ramp_target = self.gain;
        self.ramp_left = 0;
    }
}
