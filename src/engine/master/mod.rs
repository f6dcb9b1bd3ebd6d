//! # Real-time contract
//!
//! Every type in this module has two phases:
//!
//! * **Construction** (`new`) may allocate: ring buffers, the loudness histogram and the
//!   reverb's delay lines are all sized and allocated there.
//! * **Processing** (`process_frame`, [`KWeightedMeter::push`], `reset`, `take_peaks` and every
//!   accessor) never allocates, locks, blocks, logs or panics. All state lives in fixed-size
//!   buffers created by `new`, the work per frame is bounded, and non-finite input samples are
//!   mapped to `0.0` before they can reach any recursive state.
//!
//! Everything is processed one stereo frame at a time, so the output is bit-identical whatever
//! block size the host uses.
//!
//! # Contents
//!
//! * [`KWeightedMeter`]: ITU-R BS.1770-4 momentary and gated integrated loudness, with a fixed
//!   histogram so that gating never allocates.
//! * [`LiveLeveler`]: live loudness normalization from a calibrated start gain, slow and bounded.
//! * [`Limiter`]: a look-ahead, stereo-linked true-peak limiter (BS.1770-4 Annex 2, 4x).
//! * [`MasterBus`]: DC blocker → reverb (equal-power mix), then as its [`MasterChain`] says:
//!   [`LiveLeveler`] → [`Limiter`] live, or nothing (the *program*, which the offline renderer
//!   measures whole, sets on its target with one gain and limits itself, see `crate::render`).

mod leveler;
mod limiter;
mod meter;

use fundsp::prelude::{reverb_stereo, AudioUnit};

use super::reverb::Hall;
pub use leveler::LiveLeveler;
pub use limiter::{
    Limiter, TruePeakDetector, DETECTOR_DELAY_FRAMES, PEAK_WINDOW_FRAMES, TRUE_PEAK_MARGIN_DB,
    TRUE_PEAK_TAPS,
};
pub use meter::KWeightedMeter;

/// Filter states smaller than this are flushed to zero (denormal guard).
const FLUSH_F32: f32 = 1e-25;
/// Tiny DC added to the reverb input so that its feedback network never decays into denormal
/// range on CPUs without flush-to-zero.
const REVERB_ANTI_DENORMAL: f32 = 1e-18;
/// Bus input samples are clamped to ±this (+120 dBFS) so that no recursive state (DC blocker,
/// reverb) can overflow to infinity.
const MAX_BUS_INPUT: f32 = 1e6;
/// Fallback sample rate for invalid constructor arguments, in Hz.
const FALLBACK_SAMPLE_RATE_HZ: f32 = 48_000.0;

#[inline]
pub(crate) fn finite_or_zero(x: f32) -> f32 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

#[inline]
fn sanitize_sample_rate(sample_rate: f32) -> f32 {
    if sample_rate.is_finite() && sample_rate >= 1000.0 {
        sample_rate
    } else {
        FALLBACK_SAMPLE_RATE_HZ
    }
}

#[inline]
fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

#[inline]
fn gain_to_db(gain: f32) -> f32 {
    if gain > 0.0 {
        20.0 * gain.log10()
    } else {
        f32::NEG_INFINITY
    }
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// User-facing settings of the [`MasterBus`].
#[derive(Clone, Debug, PartialEq)]
pub struct MasterSettings {
    /// Integrated loudness the piece is normalized to, in LUFS.
    pub loudness_target_lufs: f32,
    /// True-peak ceiling of the [`Limiter`], in dBTP.
    pub ceiling_dbtp: f32,
    /// Whether loudness is normalized at all (offline: the whole-piece gain; live: the
    /// [`LiveLeveler`]). Without it the program is only limited.
    pub leveler: bool,
    /// Reverb room size, roughly in metres (clamped to 10..30).
    pub room_size: f32,
    /// Reverb decay time to -60 dB, in seconds (clamped to 0.1..30).
    pub reverb_time_secs: f32,
    /// Reverb high-frequency damping, 0 (bright) ..= 1 (dark).
    pub reverb_damping: f32,
    /// Which reverb the bus runs.
    pub reverb: ReverbKind,
    /// What follows the reverb.
    pub chain: MasterChain,
}

/// What the master bus does after the reverb.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MasterChain {
    /// Live (a device, an embedding host, the re-render of a recorded session): the
    /// [`LiveLeveler`] from this start gain, then the true-peak [`Limiter`]. The start gain is
    /// a calibration, `tapestry::render::calibrate_live_gain_db`.
    Live {
        /// Gain the leveler starts from, in dB.
        start_gain_db: f32,
    },
    /// The program alone, neither leveled nor limited: the offline renderer's first pass.
    Program,
}

impl Default for MasterChain {
    /// Live, from 0 dB.
    fn default() -> Self {
        MasterChain::Live { start_gain_db: 0.0 }
    }
}

/// What the master bus needs for one span of a deferring engine's frames
/// ([`MasterBus::process_spans`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MasterSpan {
    /// Frames in the span (at most the engine's `MAX_SPAN`).
    pub frames: usize,
    /// The reverb's dry/wet mix over the span.
    pub reverb_mix: f32,
    /// The reverb's stereo width over the span.
    pub reverb_width: f32,
}

/// The master reverb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReverbKind {
    /// Tapestry's 8-line SIMD FDN hall (about 30 ns per frame).
    Hall,
    /// fundsp's 32-line FDN `reverb_stereo` (denser, about 200 ns per frame).
    Fundsp,
}

enum Reverb {
    Hall(Box<Hall>),
    Fundsp(Box<dyn AudioUnit>),
}

impl Default for MasterSettings {
    /// -16 LUFS, -1 dBTP, leveling on, 20 m room, 3 s decay, 0.5 damping, live from 0 dB.
    fn default() -> Self {
        Self {
            loudness_target_lufs: -16.0,
            ceiling_dbtp: -1.0,
            leveler: true,
            room_size: 20.0,
            reverb_time_secs: 3.0,
            reverb_damping: 0.5,
            reverb: ReverbKind::Hall,
            chain: MasterChain::default(),
        }
    }
}

// ---------------------------------------------------------------------------
// Master bus
// ---------------------------------------------------------------------------

/// A bus input sample: non-finite becomes 0, the rest is clamped to ±[`MAX_BUS_INPUT`].
#[inline(always)]
fn bus_input(x: f32) -> f32 {
    finite_or_zero(x).clamp(-MAX_BUS_INPUT, MAX_BUS_INPUT)
}

/// One DC-blocker step: the output for input `x` after `x1` and `y1`, and `x` as the next
/// `x1`.
#[inline(always)]
fn dc_step(pole: f32, x1: f32, y1: f32, x: f32) -> (f32, f32) {
    let mut y = x - x1 + pole * y1;
    if y.abs() < FLUSH_F32 {
        y = 0.0;
    }
    (y, x)
}

/// Stereo one-pole DC blocker (about 5 Hz).
#[derive(Clone, Debug)]
struct DcBlocker {
    pole: f32,
    x1: [f32; 2],
    y1: [f32; 2],
}

impl DcBlocker {
    fn new(sample_rate: f32) -> Self {
        Self {
            pole: (-std::f32::consts::TAU * 5.0 / sample_rate).exp(),
            x1: [0.0; 2],
            y1: [0.0; 2],
        }
    }

    #[inline]
    fn tick(&mut self, ch: usize, x: f32) -> f32 {
        let (y, _) = dc_step(self.pole, self.x1[ch], self.y1[ch], x);
        self.x1[ch] = x;
        self.y1[ch] = y;
        y
    }

    /// [`DcBlocker::tick`] over `samples` of channel `ch` (bus input, sanitized here), in
    /// place: the state stays in locals, not stored and reloaded every sample.
    fn run(&mut self, ch: usize, samples: &mut [f32]) {
        let (mut x1, mut y1) = (self.x1[ch], self.y1[ch]);
        for s in samples {
            let x = bus_input(*s);
            (y1, x1) = dc_step(self.pole, x1, y1, x);
            *s = y1;
        }
        (self.x1[ch], self.y1[ch]) = (x1, y1);
    }

    fn reset(&mut self) {
        self.x1 = [0.0; 2];
        self.y1 = [0.0; 2];
    }
}

/// The live part of the chain: leveler (gain fixed at 0 dB when leveling is off) and limiter.
struct LiveStage {
    leveler: LiveLeveler,
    leveling: bool,
    limiter: Limiter,
}

impl LiveStage {
    /// The leveler's frame (metered all the same when leveling is off, for the status's
    /// momentary loudness).
    #[inline(always)]
    fn level(&mut self, l: f32, r: f32) -> (f32, f32) {
        let leveled = self.leveler.process_frame(l, r);
        if self.leveling {
            leveled
        } else {
            (l, r)
        }
    }
}

/// The master chain: DC blocker → reverb (equal-power dry/wet) → as [`MasterChain`] says,
/// plus output peak meters.
///
/// The reverb is built and allocated in `new` and run per sample, which does not allocate.
pub struct MasterBus {
    dc: DcBlocker,
    reverb: Reverb,
    /// `None` for [`MasterChain::Program`].
    live: Option<Box<LiveStage>>,
    peak_l: f32,
    peak_r: f32,
    mix: f32,
    /// Side gain of the reverb return (1 = full width).
    wet_side: f32,
    dry_gain: f32,
    wet_gain: f32,
}

impl MasterBus {
    /// Builds the chain for `sample_rate` Hz. Allocates (reverb delay lines, limiter rings,
    /// meter histogram).
    pub fn new(sample_rate: f32, settings: &MasterSettings) -> Self {
        let sample_rate = sanitize_sample_rate(sample_rate);
        let live = match settings.chain {
            MasterChain::Program => None,
            MasterChain::Live { start_gain_db } => Some(Box::new(LiveStage {
                leveler: LiveLeveler::new(
                    sample_rate,
                    settings.loudness_target_lufs,
                    if settings.leveler { start_gain_db } else { 0.0 },
                ),
                leveling: settings.leveler,
                limiter: Limiter::new(sample_rate, settings.ceiling_dbtp),
            })),
        };
        Self {
            dc: DcBlocker::new(sample_rate),
            reverb: build_reverb(sample_rate, settings),
            live,
            peak_l: 0.0,
            peak_r: 0.0,
            mix: 0.0,
            wet_side: 1.0,
            dry_gain: 1.0,
            wet_gain: 0.0,
        }
    }

    /// Processes one stereo frame. `reverb_mix` (0..=1, clamped; non-finite counts as 0) sets
    /// the equal-power dry/wet balance; the caller smooths it. Non-finite input samples become
    /// 0; finite ones are clamped to ±1e6 (+120 dBFS). Live, the output is delayed by
    /// [`MasterBus::latency_frames`] frames and its true peak stays under the ceiling.
    ///
    /// The caller sets flush-to-zero once per block (`Engine::process` does), rather than
    /// paying for a floating-point mode switch on every frame.
    #[inline]
    pub fn process_frame(&mut self, l: f32, r: f32, reverb_mix: f32) -> (f32, f32) {
        let l = self.dc.tick(0, bus_input(l));
        let r = self.dc.tick(1, bus_input(r));
        self.after_dc(l, r, reverb_mix)
    }

    /// [`MasterBus::process_frame`] over a span: `l` and `r` in, interleaved `out` (as long as
    /// both together) out; `l` and `r` are used as scratch. The same arithmetic, with the DC
    /// blocker run over the whole span first so its state stays in registers.
    pub fn process_span(&mut self, l: &mut [f32], r: &mut [f32], out: &mut [f32], reverb_mix: f32) {
        for (ch, x) in [&mut *l, &mut *r].into_iter().enumerate() {
            self.dc.run(ch, x);
        }
        for (frame, (&xl, &xr)) in out.chunks_exact_mut(2).zip(l.iter().zip(r.iter())) {
            (frame[0], frame[1]) = self.wet_dry(xl, xr, reverb_mix);
        }
        // the leveler then the limiter, each over the span (the limiter works in sub-blocks)
        if let Some(live) = &mut self.live {
            for frame in out.chunks_exact_mut(2) {
                (frame[0], frame[1]) = live.level(frame[0], frame[1]);
            }
            live.limiter.process_block(out);
        }
        for frame in out.chunks_exact(2) {
            self.peak_l = self.peak_l.max(frame[0].abs());
            self.peak_r = self.peak_r.max(frame[1].abs());
        }
    }

    /// Runs the bus over the interleaved mix of an engine whose master is deferred
    /// ([`Engine::defer_master`](crate::Engine::defer_master)), in place: `spans` are that
    /// engine's [`master_spans`](crate::Engine::master_spans) for these frames, and each is
    /// processed exactly as the engine would have.
    pub fn process_spans(&mut self, samples: &mut [f32], spans: &[MasterSpan]) {
        let (mut l, mut r) = (
            [0.0f32; crate::engine::MAX_SPAN],
            [0.0f32; crate::engine::MAX_SPAN],
        );
        let mut at = 0;
        for span in spans {
            let out = &mut samples[2 * at..2 * (at + span.frames)];
            let (l, r) = (&mut l[..span.frames], &mut r[..span.frames]);
            for ((xl, xr), frame) in l.iter_mut().zip(r.iter_mut()).zip(out.chunks_exact(2)) {
                (*xl, *xr) = (frame[0], frame[1]);
            }
            self.set_reverb_width(span.reverb_width);
            self.process_span(l, r, out, span.reverb_mix);
            at += span.frames;
        }
    }

    /// The reverb's equal-power dry/wet mix of a DC-blocked frame.
    #[inline(always)]
    fn wet_dry(&mut self, l: f32, r: f32, reverb_mix: f32) -> (f32, f32) {
        let mix = if reverb_mix.is_finite() {
            reverb_mix.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if mix.to_bits() != self.mix.to_bits() {
            self.mix = mix;
            let angle = mix * std::f32::consts::FRAC_PI_2;
            self.dry_gain = angle.cos();
            self.wet_gain = angle.sin();
        }
        let input = [l + REVERB_ANTI_DENORMAL, r + REVERB_ANTI_DENORMAL];
        let mut wet = [0.0f32; 2];
        match &mut self.reverb {
            Reverb::Hall(h) => (wet[0], wet[1]) = h.tick(input[0], input[1]),
            Reverb::Fundsp(u) => u.tick(&input, &mut wet),
        }
        let (wl, wr) = (finite_or_zero(wet[0]), finite_or_zero(wet[1]));
        let (mid, side) = (0.5 * (wl + wr), 0.5 * (wl - wr) * self.wet_side);
        let l = self.dry_gain * l + self.wet_gain * (mid + side);
        let r = self.dry_gain * r + self.wet_gain * (mid - side);
        (l, r)
    }

    /// The chain after the DC blocker.
    #[inline(always)]
    fn after_dc(&mut self, l: f32, r: f32, reverb_mix: f32) -> (f32, f32) {
        let (l, r) = self.wet_dry(l, r, reverb_mix);
        let (l, r) = match &mut self.live {
            Some(live) => {
                let (l, r) = live.level(l, r);
                live.limiter.process_frame(l, r)
            }
            None => (l, r),
        };
        self.peak_l = self.peak_l.max(l.abs());
        self.peak_r = self.peak_r.max(r.abs());
        (l, r)
    }

    /// Sets the stereo width of the reverb return, 0..1 (a narrow ensemble gets a narrower
    /// room; some width always remains). Real-time safe.
    pub fn set_reverb_width(&mut self, width: f32) {
        self.wet_side = 0.35 + 0.65 * width.clamp(0.0, 1.0);
    }

    /// Clears all state (reverb tail, leveler, limiter, meters, peaks). Never allocates.
    pub fn reset(&mut self) {
        self.dc.reset();
        match &mut self.reverb {
            Reverb::Hall(h) => h.reset(),
            Reverb::Fundsp(u) => u.reset(),
        }
        if let Some(live) = &mut self.live {
            live.leveler.reset();
            live.limiter.reset();
        }
        self.peak_l = 0.0;
        self.peak_r = 0.0;
        self.mix = 0.0;
        self.wet_side = 1.0;
        self.dry_gain = 1.0;
        self.wet_gain = 0.0;
    }

    /// Delay of the whole chain (live: the limiter's look-ahead; the program: none), in frames.
    pub fn latency_frames(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.limiter.latency_frames())
    }

    /// Left output sample peak (linear) since the last [`MasterBus::take_peaks`].
    pub fn peak_l(&self) -> f32 {
        self.peak_l
    }

    /// Right output sample peak (linear) since the last [`MasterBus::take_peaks`].
    pub fn peak_r(&self) -> f32 {
        self.peak_r
    }

    /// Returns `(peak_l, peak_r)` (linear) and restarts peak tracking.
    pub fn take_peaks(&mut self) -> (f32, f32) {
        let peaks = (self.peak_l, self.peak_r);
        self.peak_l = 0.0;
        self.peak_r = 0.0;
        peaks
    }

    /// Momentary loudness (400 ms) of the leveled program, before the limiter, in LUFS;
    /// `NEG_INFINITY` for the program chain, which offline rendering meters itself.
    pub fn momentary_lufs(&self) -> f32 {
        match &self.live {
            Some(live) if live.leveling => live.leveler.output_momentary_lufs(),
            Some(live) => live.leveler.output_momentary_lufs() - live.leveler.gain_db(),
            None => f32::NEG_INFINITY,
        }
    }

    /// Gain the leveler currently applies, in dB (0 when leveling is off or for the program).
    pub fn leveler_gain_db(&self) -> f32 {
        match &self.live {
            Some(live) if live.leveling => live.leveler.gain_db(),
            _ => 0.0,
        }
    }

    /// Current limiter gain reduction, in dB (positive; 0 for the program).
    pub fn limiter_gain_reduction_db(&self) -> f32 {
        self.live
            .as_ref()
            .map_or(0.0, |l| l.limiter.gain_reduction_db())
    }

    /// Number of times the limiter's last-resort clamp engaged (expected 0).
    pub fn limiter_safety_clamps(&self) -> u64 {
        self.live.as_ref().map_or(0, |l| l.limiter.safety_clamps())
    }
}

fn build_reverb(sample_rate: f32, settings: &MasterSettings) -> Reverb {
    let defaults = MasterSettings::default();
    let pick = |v: f32, d: f32| if v.is_finite() { v } else { d };
    let room = pick(settings.room_size, defaults.room_size).clamp(10.0, 30.0);
    let time = pick(settings.reverb_time_secs, defaults.reverb_time_secs).clamp(0.1, 30.0);
    let damping = pick(settings.reverb_damping, defaults.reverb_damping).clamp(0.0, 1.0);
    match settings.reverb {
        ReverbKind::Hall => Reverb::Hall(Box::new(Hall::new(sample_rate, room, time, damping))),
        ReverbKind::Fundsp => {
            let mut unit: Box<dyn AudioUnit> = Box::new(reverb_stereo(
                f64::from(room),
                f64::from(time),
                f64::from(damping),
            ));
            unit.set_sample_rate(f64::from(sample_rate));
            unit.allocate();
            unit.reset();
            Reverb::Fundsp(unit)
        }
    }
}

#[cfg(test)]
mod test_signals;
#[cfg(test)]
mod tests;
