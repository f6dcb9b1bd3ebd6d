//! Designed instruments: the patch's `[instruments.<name>]` graphs, received here as plain
//! data ([`InstrumentDef`], built and validated by the patch module on the control thread)
//! and run as one fundsp [`Net`](fundsp::net::Net) per voice.
//!
//! A designed voice rides on a kernel lane of the [`VoicePool`](super::voice::VoicePool): the
//! lane gives it its note (pitch with detune, vibrato and bend; velocity; gate), its place in
//! the mix (level, loudness, pan) and the archetype's outer envelope, exactly as for a
//! built-in timbre, while the kernel itself skips the lane. Bound parameters are computed on
//! the engine's control ticks (fixed positions on the timeline), smoothed there, and ramped
//! linearly over the following control period, so the output does not depend on the block
//! size. Every voice, buffer and graph is allocated in [`Rack::new`]; ticking and rendering
//! never allocate or free.

mod bind;
mod nodes;
pub mod rack;

pub use bind::{BindCurve, Binding, Source, VoiceInputs};
pub use rack::{Rack, Solo};

/// Most nodes in one instrument.
pub const MAX_NODES: usize = 32;
/// Most voices of one instrument sounding at once (its `polyphony`).
pub const MAX_POLYPHONY: usize = 64;
/// Most `[instruments.<name>]` in a patch.
pub const MAX_INSTRUMENTS: usize = 32;
/// Most inputs of a `mix` or `multiply` node.
pub const MAX_NODE_INPUTS: usize = 8;
/// Most partials of an `additive` oscillator.
pub const MAX_PARTIALS: usize = 32;
/// Most points of a multi-segment `envelope`.
pub const MAX_ENVELOPE_POINTS: usize = 16;
/// Longest segment of an `envelope`, seconds.
pub const MAX_SEGMENT_SECS: f32 = 60.0;

/// The waveforms of an `lfo` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LfoShape {
    /// Sine.
    Sine,
    /// Triangle.
    Triangle,
    /// Rising ramp.
    Saw,
    /// Square.
    Square,
    /// A new random value every cycle (sample and hold), seeded per voice.
    Random,
}

/// Every LFO shape with its patch name.
pub const LFO_SHAPES: [(LfoShape, &str); 5] = [
    (LfoShape::Sine, "sine"),
    (LfoShape::Triangle, "triangle"),
    (LfoShape::Saw, "saw"),
    (LfoShape::Square, "square"),
    (LfoShape::Random, "random"),
];

/// The noise colours of a `noise` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseColour {
    /// Flat spectrum.
    White,
    /// −3 dB per octave.
    Pink,
    /// −6 dB per octave.
    Brown,
}

/// What a node computes. Each kind has its parameter list in [`NodeKind::params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Sine oscillator at the note's frequency × `ratio`.
    Sine,
    /// Band-limited saw.
    Saw,
    /// Band-limited square.
    Square,
    /// Band-limited triangle.
    Triangle,
    /// Pulse with a `width`.
    Pulse,
    /// Noise of a colour.
    Noise(NoiseColour),
    /// A sine carrier phase-modulated by a sine at `mod_ratio` × its frequency.
    Fm,
    /// A sum of harmonic sines with the node's `partials` amplitudes.
    Additive,
    /// Resonant state-variable low-pass.
    Lowpass,
    /// Resonant state-variable high-pass.
    Highpass,
    /// Resonant state-variable band-pass, unity gain at its centre.
    Bandpass,
    /// Moog ladder low-pass.
    Moog,
    /// Constant-gain band-pass resonator (a formant).
    Resonator,
    /// EQ bell.
    Bell,
    /// EQ low shelf.
    Lowshelf,
    /// EQ high shelf.
    Highshelf,
    /// Linear attack, decay, sustain, release on the note's gate (0..1 out).
    Adsr,
    /// Multi-segment envelope through the node's `points`, holding at point `sustain` (an
    /// index into them) while the note is held.
    Envelope {
        /// The point it holds at while the gate is on.
        sustain: u8,
    },
    /// A low-frequency oscillator restarted at each onset: `offset + depth × wave`.
    Lfo(LfoShape),
    /// `tanh` saturation with a `drive`.
    Shape,
    /// Its input times an `amount`.
    Gain,
    /// The sum of its inputs, each times its `gains` entry.
    Mix,
    /// The product of its inputs (ring modulation, or a sound times an envelope).
    Multiply,
}

/// One parameter a node kind takes: name, default, legal range, unit.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Patch key.
    pub name: &'static str,
    /// Value when the patch gives none.
    pub default: f32,
    /// Lowest legal value.
    pub min: f32,
    /// Highest legal value.
    pub max: f32,
}

const fn spec(name: &'static str, default: f32, min: f32, max: f32) -> ParamSpec {
    ParamSpec {
        name,
        default,
        min,
        max,
    }
}

const RATIO: ParamSpec = spec("ratio", 1.0, 0.0625, 16.0);
const LEVEL: ParamSpec = spec("level", 1.0, 0.0, 4.0);
const CUTOFF: ParamSpec = spec("cutoff_hz", 1000.0, 20.0, 20_000.0);
const Q: ParamSpec = spec("q", 0.707, 0.1, 30.0);
const KEY_TRACK: ParamSpec = spec("key_track", 0.0, 0.0, 1.0);
const GAIN_DB: ParamSpec = spec("gain_db", 0.0, -24.0, 24.0);
const FILTER: [ParamSpec; 3] = [CUTOFF, Q, KEY_TRACK];
const LADDER: [ParamSpec; 3] = [CUTOFF, spec("resonance", 0.1, 0.0, 0.95), KEY_TRACK];
const EQ: [ParamSpec; 4] = [CUTOFF, Q, KEY_TRACK, GAIN_DB];
const OSC: [ParamSpec; 2] = [RATIO, LEVEL];
const PULSE: [ParamSpec; 3] = [RATIO, LEVEL, spec("width", 0.5, 0.02, 0.98)];
const NOISE: [ParamSpec; 1] = [LEVEL];
const FM: [ParamSpec; 4] = [
    RATIO,
    LEVEL,
    spec("mod_ratio", 1.0, 0.0625, 16.0),
    spec("index", 1.0, 0.0, 20.0),
];
const ADSR: [ParamSpec; 4] = [
    spec("attack_secs", 0.01, 0.001, 20.0),
    spec("decay_secs", 0.3, 0.001, 20.0),
    spec("sustain", 0.7, 0.0, 1.0),
    spec("release_secs", 0.3, 0.001, 20.0),
];
const ENVELOPE: [ParamSpec; 1] = [spec("release_secs", 0.3, 0.001, 20.0)];
const LFO: [ParamSpec; 3] = [
    spec("rate_hz", 1.0, 0.01, 40.0),
    spec("depth", 1.0, 0.0, 4.0),
    spec("offset", 0.0, -4.0, 4.0),
];
const DRIVE: [ParamSpec; 1] = [spec("drive", 2.0, 0.1, 50.0)];
const AMOUNT: [ParamSpec; 1] = [spec("amount", 1.0, 0.0, 8.0)];

/// Every node kind with its patch name.
pub const NODE_KINDS: [(NodeKind, &str); 23] = [
    (NodeKind::Sine, "sine"),
    (NodeKind::Saw, "saw"),
    (NodeKind::Square, "square"),
    (NodeKind::Triangle, "triangle"),
    (NodeKind::Pulse, "pulse"),
    (NodeKind::Noise(NoiseColour::White), "noise"),
    (NodeKind::Fm, "fm"),
    (NodeKind::Additive, "additive"),
    (NodeKind::Lowpass, "lowpass"),
    (NodeKind::Highpass, "highpass"),
    (NodeKind::Bandpass, "bandpass"),
    (NodeKind::Moog, "moog"),
    (NodeKind::Resonator, "resonator"),
    (NodeKind::Bell, "bell"),
    (NodeKind::Lowshelf, "lowshelf"),
    (NodeKind::Highshelf, "highshelf"),
    (NodeKind::Adsr, "adsr"),
    (NodeKind::Envelope { sustain: 0 }, "envelope"),
    (NodeKind::Lfo(LfoShape::Sine), "lfo"),
    (NodeKind::Shape, "shape"),
    (NodeKind::Gain, "gain"),
    (NodeKind::Mix, "mix"),
    (NodeKind::Multiply, "multiply"),
];

/// How many audio inputs a node kind takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// None: a source.
    Source,
    /// Exactly one (`input = "<id>"`).
    One,
    /// One to [`MAX_NODE_INPUTS`] (`inputs = ["<id>", …]`).
    Many,
}

impl NodeKind {
    /// The kind with this patch name (`noise` is white until its `colour` says otherwise, an
    /// `lfo` a sine until its `shape` does, an `envelope` holds at its first point until its
    /// `sustain` or `points` say).
    pub fn from_name(name: &str) -> Option<NodeKind> {
        NODE_KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    /// Its parameters, in the order of [`NodeDef::params`].
    pub fn params(self) -> &'static [ParamSpec] {
        use NodeKind::*;
        match self {
            Sine | Saw | Square | Triangle | Additive => &OSC,
            Pulse => &PULSE,
            Noise(_) => &NOISE,
            Fm => &FM,
            Lowpass | Highpass | Bandpass | Resonator => &FILTER,
            Moog => &LADDER,
            Bell | Lowshelf | Highshelf => &EQ,
            Adsr => &ADSR,
            Envelope { .. } => &ENVELOPE,
            Lfo(_) => &LFO,
            Shape => &DRIVE,
            Gain => &AMOUNT,
            Mix | Multiply => &[],
        }
    }

    /// How many audio inputs it takes.
    pub fn arity(self) -> Arity {
        use NodeKind::*;
        match self {
            Sine
            | Saw
            | Square
            | Triangle
            | Pulse
            | Noise(_)
            | Fm
            | Additive
            | Adsr
            | Envelope { .. }
            | Lfo(_) => Arity::Source,
            Mix | Multiply => Arity::Many,
            _ => Arity::One,
        }
    }
}

/// A parameter's value: a constant, or bound to a source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// Fixed.
    Const(f32),
    /// Computed at every control tick.
    Bound(Binding),
}

/// One node of an instrument graph.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDef {
    /// What it computes.
    pub kind: NodeKind,
    /// Indices of earlier nodes feeding it (empty for sources).
    pub inputs: Vec<u16>,
    /// One value per entry of [`NodeKind::params`].
    pub params: Vec<Value>,
    /// `additive`: partial amplitudes (harmonic 1, 2, …); `mix`: one gain per input;
    /// `envelope`: its points as seconds and level pairs, flattened.
    pub weights: Vec<f32>,
}

/// A designed instrument, resolved from the patch.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrumentDef {
    /// Patch name.
    pub name: String,
    /// Voices preallocated, 1..=[`MAX_POLYPHONY`].
    pub polyphony: u16,
    /// Output gain (linear).
    pub level: f32,
    /// Nodes in patch order; each feeds only later ones.
    pub nodes: Vec<NodeDef>,
    /// The node whose output is the voice.
    pub output: u16,
}

impl InstrumentDef {
    /// The longest release any `adsr` or `envelope` node may take (its constant or the top
    /// of its binding's range), or `None` without one: the archetype's default release.
    pub fn longest_release_secs(&self) -> Option<f32> {
        self.nodes
            .iter()
            .filter_map(|n| match n.kind {
                NodeKind::Adsr => Some(n.params[3]),
                NodeKind::Envelope { .. } => Some(n.params[0]),
                _ => None,
            })
            .map(|release| match release {
                Value::Const(v) => v,
                Value::Bound(b) => b.low.max(b.high),
            })
            .reduce(f32::max)
    }
}
