//! Parameter bindings: a source read at a control tick, normalized to 0..1, shaped by a curve
//! onto a range, then smoothed. Real-time safe.

use super::super::config::MAX_DIMS;

/// What a bound parameter follows. Every source is normalized to 0..1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    /// The note's MIDI pitch / 127.
    Pitch,
    /// The note's velocity.
    Velocity,
    /// 1 while the note is held, 0 once released.
    Gate,
    /// Seconds since the note's onset over the binding's `span` (1 from then on).
    Age,
    /// A mood dimension of the participant's own voice (its mood blended in as unity allows).
    Mood(u8),
    /// A dimension of the communal mood.
    Communal(u8),
    /// Pitch bend, −24..24 semitones onto 0..1 (0.5 at rest).
    Bend,
    /// Mod-wheel vibrato depth.
    Vibrato,
    /// The brightness control.
    Brightness,
    /// Position inside the beat.
    BeatPhase,
    /// Position inside the bar.
    BarPhase,
    /// Current section index / (sections − 1).
    Section,
    /// A sine LFO from the note's onset at `span` Hz, 0..1.
    Lfo,
}

/// Shape of a binding from its normalized source onto its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BindCurve {
    /// Straight line.
    Linear,
    /// Equal ratios for equal steps (`low × (high/low)^x`): for Hz, times and gains; both
    /// ends of the range positive.
    Exp,
    /// Smoothstep S-curve.
    Smooth,
    /// `x^p`.
    Power(f32),
}

/// A bound parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binding {
    /// What it follows.
    pub source: Source,
    /// Value at source 0.
    pub low: f32,
    /// Value at source 1.
    pub high: f32,
    /// Curve between them.
    pub curve: BindCurve,
    /// One-pole smoothing time constant at control rate (0 = none beyond the per-tick ramp).
    pub smoothing_secs: f32,
    /// `Age`: seconds to reach 1; `Lfo`: rate in Hz; unused otherwise.
    pub span: f32,
}

/// Everything a binding can read for one voice at one control tick.
#[derive(Clone, Copy, Debug, Default)]
pub struct VoiceInputs {
    /// MIDI pitch of the note.
    pub pitch: f32,
    /// Velocity 0..1.
    pub velocity: f32,
    /// Held.
    pub gate: bool,
    /// Seconds since onset.
    pub age_secs: f32,
    /// The participant's voice mood, normalized per dimension.
    pub mood: [f32; MAX_DIMS],
    /// The communal mood, normalized per dimension.
    pub communal: [f32; MAX_DIMS],
    /// Pitch bend in semitones.
    pub bend: f32,
    /// Vibrato depth 0..1.
    pub vibrato: f32,
    /// Brightness 0..1.
    pub brightness: f32,
    /// Beat phase 0..1.
    pub beat_phase: f32,
    /// Bar phase 0..1.
    pub bar_phase: f32,
    /// Section 0..1.
    pub section: f32,
}

impl Binding {
    /// The source's normalized value for a voice.
    #[inline]
    pub fn source_value(&self, v: &VoiceInputs) -> f32 {
        let x = match self.source {
            Source::Pitch => v.pitch / 127.0,
            Source::Velocity => v.velocity,
            Source::Gate => f32::from(u8::from(v.gate)),
            Source::Age => v.age_secs / self.span.max(1e-3),
            Source::Mood(d) => v.mood[d as usize % MAX_DIMS],
            Source::Communal(d) => v.communal[d as usize % MAX_DIMS],
            Source::Bend => 0.5 + v.bend / 48.0,
            Source::Vibrato => v.vibrato,
            Source::Brightness => v.brightness,
            Source::BeatPhase => v.beat_phase,
            Source::BarPhase => v.bar_phase,
            Source::Section => v.section,
            Source::Lfo => {
                let phase = (v.age_secs * self.span).fract();
                0.5 - 0.5 * (std::f32::consts::TAU * phase).cos()
            }
        };
        x.clamp(0.0, 1.0)
    }

    /// The parameter value for a normalized source value.
    #[inline]
    pub fn map(&self, x: f32) -> f32 {
        let x = x.clamp(0.0, 1.0);
        match self.curve {
            BindCurve::Linear => self.low + (self.high - self.low) * x,
            BindCurve::Smooth => self.low + (self.high - self.low) * (x * x * (3.0 - 2.0 * x)),
            BindCurve::Power(p) => self.low + (self.high - self.low) * x.powf(p),
            BindCurve::Exp => {
                let lo = self.low.max(1e-6);
                lo * (self.high.max(1e-6) / lo).powf(x)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(curve: BindCurve) -> Binding {
        Binding {
            source: Source::Velocity,
            low: 100.0,
            high: 1600.0,
            curve,
            smoothing_secs: 0.0,
            span: 1.0,
        }
    }

    #[test]
    fn curves_meet_their_ends_and_shape_the_middle() {
        for c in [
            BindCurve::Linear,
            BindCurve::Exp,
            BindCurve::Smooth,
            BindCurve::Power(2.0),
        ] {
            let b = binding(c);
            assert!((b.map(0.0) - 100.0).abs() < 1e-3, "{c:?}");
            assert!((b.map(1.0) - 1600.0).abs() < 1e-2, "{c:?}");
        }
        assert!((binding(BindCurve::Exp).map(0.5) - 400.0).abs() < 0.1);
        assert!((binding(BindCurve::Linear).map(0.5) - 850.0).abs() < 1e-3);
        assert!((binding(BindCurve::Power(2.0)).map(0.5) - 475.0).abs() < 1e-3);
    }

    #[test]
    fn sources_are_normalized() {
        let v = VoiceInputs {
            pitch: 127.0,
            bend: -24.0,
            age_secs: 0.25,
            ..Default::default()
        };
        let with = |source, span| Binding {
            source,
            span,
            ..binding(BindCurve::Linear)
        };
        assert_eq!(with(Source::Pitch, 1.0).source_value(&v), 1.0);
        assert_eq!(with(Source::Bend, 1.0).source_value(&v), 0.0);
        assert_eq!(with(Source::Age, 0.5).source_value(&v), 0.5);
        assert!((with(Source::Lfo, 2.0).source_value(&v) - 1.0).abs() < 1e-6);
    }
}
