//! Building one voice's fundsp [`Net`] from an [`InstrumentDef`], and the few nodes fundsp
//! lacks in the form a voice needs (an ADSR whose times are inputs and that retriggers from
//! its level, a phase-modulation pair, additive partials, mixing). Building allocates (call it
//! off the audio thread); every node's `tick` is real-time safe.

use fundsp::prelude32::*;

use super::{
    InstrumentDef, LfoShape, NodeKind, MAX_ENVELOPE_POINTS, MAX_NODE_INPUTS, MAX_PARTIALS,
};

/// What feeds one of a voice graph's global inputs, computed at every control tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Channel {
    /// The note's frequency × parameter `ratio` of node `node`.
    Freq { node: u16 },
    /// A filter's cutoff: its `cutoff_hz` moved by `key_track` towards following the note.
    Cutoff { node: u16 },
    /// A parameter as it is.
    Plain { node: u16, param: u8 },
    /// A gain in dB as an amplitude.
    DbToAmp { node: u16, param: u8 },
    /// 1 / a parameter (a band-pass's Q, to make its centre unity gain).
    Reciprocal { node: u16, param: u8 },
    /// 1 while the note is held, else 0.
    Gate,
    /// The note's onset count (an `adsr` restarts when it changes).
    Onset,
}

/// A voice graph and the channel list that feeds its inputs.
pub struct VoiceGraph {
    /// The graph: one input per channel, one output.
    pub net: Net,
    /// What each input carries.
    pub channels: Vec<Channel>,
}

/// Builds one voice of an instrument: every node, wired in patch order, each parameter a
/// global input. `hash` seeds the noise and the oscillators' phases. Allocates.
pub fn build(def: &InstrumentDef, sample_rate: f32, hash: u64) -> VoiceGraph {
    let units: Vec<(Box<dyn AudioUnit>, Vec<Channel>)> = def
        .nodes
        .iter()
        .enumerate()
        .map(|(n, node)| unit(node, n as u16))
        .collect();
    // gate and onset are inputs 0 and 1, shared; then one input per parameter channel, and
    // one per source's `level`
    let sources = def.nodes.iter().filter(|n| has_level(n.kind)).count();
    let params = units
        .iter()
        .flat_map(|(_, c)| c)
        .filter(|c| !matches!(c, Channel::Gate | Channel::Onset))
        .count();
    let bandpasses = def
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Bandpass)
        .count();
    let inputs = 2 + params + sources + bandpasses;
    let mut net = Net::new(inputs, 1);
    let mut channels = vec![Channel::Gate, Channel::Onset];
    let mut connect = |net: &mut Net, target: NodeId, port: usize, ch: Channel| {
        let index = match ch {
            Channel::Gate => 0,
            Channel::Onset => 1,
            _ => {
                channels.push(ch);
                channels.len() - 1
            }
        };
        net.connect_input(index, target, port);
    };
    let mut ids: Vec<NodeId> = Vec::with_capacity(def.nodes.len());
    for ((n, node), (unit, params)) in def.nodes.iter().enumerate().zip(units) {
        let id = net.push(unit);
        for (port, src) in node.inputs.iter().enumerate() {
            net.connect(ids[*src as usize], 0, id, port);
        }
        for (k, ch) in params.into_iter().enumerate() {
            connect(&mut net, id, node.inputs.len() + k, ch);
        }
        // a band-pass peaks at its Q: a gain of 1/Q after it makes its centre unity
        let id = if node.kind == NodeKind::Bandpass {
            let g = net.push(Box::new(An(Amount)));
            net.connect(id, 0, g, 0);
            connect(
                &mut net,
                g,
                1,
                Channel::Reciprocal {
                    node: n as u16,
                    param: 1,
                },
            );
            g
        } else {
            id
        };
        // a source's level is a gain stage after it
        let id = if has_level(node.kind) {
            let param = u8::from(!matches!(node.kind, NodeKind::Noise(_)));
            let g = net.push(Box::new(An(Amount)));
            net.connect(id, 0, g, 0);
            connect(
                &mut net,
                g,
                1,
                Channel::Plain {
                    node: n as u16,
                    param,
                },
            );
            g
        } else {
            id
        };
        ids.push(id);
    }
    net.connect_output(ids[def.output as usize], 0, 0);
    net.set_sample_rate(sample_rate as f64);
    net.ping(false, AttoHash::new(hash));
    net.allocate();
    net.reset();
    VoiceGraph { net, channels }
}

/// Oscillators and noise have a `level` (envelopes and LFOs have none).
fn has_level(kind: NodeKind) -> bool {
    kind.arity() == super::Arity::Source
        && !matches!(
            kind,
            NodeKind::Adsr | NodeKind::Envelope { .. } | NodeKind::Lfo(_)
        )
}

/// One node's fundsp unit and the parameter channels after its audio inputs.
fn unit(node: &super::NodeDef, n: u16) -> (Box<dyn AudioUnit>, Vec<Channel>) {
    let plain = |param: u8| Channel::Plain { node: n, param };
    let freq = Channel::Freq { node: n };
    match node.kind {
        NodeKind::Sine => (Box::new(sine()), vec![freq]),
        NodeKind::Saw => (Box::new(saw()), vec![freq]),
        NodeKind::Square => (Box::new(square()), vec![freq]),
        NodeKind::Triangle => (Box::new(triangle()), vec![freq]),
        NodeKind::Pulse => (Box::new(pulse()), vec![freq, plain(2)]),
        NodeKind::Noise(c) => (noise_unit(c), vec![]),
        NodeKind::Fm => (
            Box::new(An(PmPair::default())),
            vec![freq, plain(2), plain(3)],
        ),
        NodeKind::Additive => (Box::new(An(Partials::new(&node.weights))), vec![freq]),
        NodeKind::Lowpass => filter(Box::new(lowpass()), n),
        NodeKind::Highpass => filter(Box::new(highpass()), n),
        NodeKind::Bandpass => filter(Box::new(bandpass()), n),
        NodeKind::Moog => filter(Box::new(moog()), n),
        NodeKind::Resonator => filter(Box::new(resonator()), n),
        NodeKind::Bell => eq(Box::new(bell()), n),
        NodeKind::Lowshelf => eq(Box::new(lowshelf()), n),
        NodeKind::Highshelf => eq(Box::new(highshelf()), n),
        NodeKind::Adsr => (
            Box::new(An(Adsr::default())),
            vec![
                Channel::Gate,
                Channel::Onset,
                plain(0),
                plain(1),
                plain(2),
                plain(3),
            ],
        ),
        NodeKind::Envelope { sustain } => (
            Box::new(An(Segments::new(&node.weights, sustain))),
            vec![Channel::Gate, Channel::Onset, plain(0)],
        ),
        NodeKind::Lfo(shape) => (
            Box::new(An(Lfo::new(shape))),
            vec![Channel::Onset, plain(0), plain(1), plain(2)],
        ),
        NodeKind::Shape => (Box::new(An(Drive)), vec![plain(0)]),
        NodeKind::Gain => (Box::new(An(Amount)), vec![plain(0)]),
        NodeKind::Mix => (Box::new(An(Mix::new(&node.weights))), vec![]),
        NodeKind::Multiply => (
            Box::new(An(Product {
                count: node.inputs.len(),
            })),
            vec![],
        ),
    }
}

fn noise_unit(colour: super::NoiseColour) -> Box<dyn AudioUnit> {
    match colour {
        super::NoiseColour::White => Box::new(noise()),
        super::NoiseColour::Pink => Box::new(pink()),
        super::NoiseColour::Brown => Box::new(brown()),
    }
}

fn filter(unit: Box<dyn AudioUnit>, n: u16) -> (Box<dyn AudioUnit>, Vec<Channel>) {
    (
        unit,
        vec![
            Channel::Cutoff { node: n },
            Channel::Plain { node: n, param: 1 },
        ],
    )
}

fn eq(unit: Box<dyn AudioUnit>, n: u16) -> (Box<dyn AudioUnit>, Vec<Channel>) {
    (
        unit,
        vec![
            Channel::Cutoff { node: n },
            Channel::Plain { node: n, param: 1 },
            Channel::DbToAmp { node: n, param: 3 },
        ],
    )
}

/// Linear attack (0 to 1 in `attack`), decay (1 to sustain in `decay`), release (from
/// wherever it starts to 0 in `release`), driven by a gate; a change of the onset input
/// restarts the attack from the current level (a stolen voice does not click).
/// Inputs: gate, onset, attack, decay (seconds), sustain (0..1), release (seconds).
#[derive(Clone, Default)]
pub struct Adsr {
    level: f32,
    /// Fall per second in the release.
    release_rate: f32,
    stage: u8,
    onset: f32,
    sample_rate: f32,
}

const IDLE: u8 = 0;
const ATTACK: u8 = 1;
const DECAY: u8 = 2;
const RELEASE: u8 = 3;

impl AudioNode for Adsr {
    const ID: u64 = 0x7a9e_0001;
    type Inputs = U6;
    type Outputs = U1;

    fn reset(&mut self) {
        self.level = 0.0;
        self.stage = IDLE;
        self.onset = f32::NAN;
    }

    fn set_sample_rate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate as f32;
    }

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U6>) -> Frame<f32, U1> {
        let dt = 1.0 / self.sample_rate.max(1.0);
        let (gate, onset) = (input[0] > 0.5, input[1]);
        let sustain = input[4].clamp(0.0, 1.0);
        if gate && (onset != self.onset || self.stage == IDLE || self.stage == RELEASE) {
            self.stage = ATTACK;
        }
        self.onset = onset;
        if !gate && self.stage != IDLE && self.stage != RELEASE {
            self.stage = RELEASE;
            self.release_rate = self.level / input[5].max(1e-3);
        }
        match self.stage {
            ATTACK => {
                self.level += dt / input[2].max(1e-3);
                if self.level >= 1.0 {
                    self.level = 1.0;
                    self.stage = DECAY;
                }
            }
            DECAY => {
                let step = (1.0 - sustain) * dt / input[3].max(1e-3);
                self.level = (self.level - step).max(sustain);
            }
            RELEASE => {
                self.level -= dt * self.release_rate;
                if self.level <= 0.0 {
                    self.level = 0.0;
                    self.stage = IDLE;
                }
            }
            _ => {}
        }
        [self.level].into()
    }
}

/// A multi-segment envelope: from wherever it is, straight lines to each point's level in
/// that point's time. While the gate is on it holds at point `sustain`; when the gate falls,
/// the points after `sustain` play from wherever it is (the release), or, when `sustain` is
/// the last point, it falls to 0 in `release` seconds. A change of the onset input restarts
/// it from the current level, as [`Adsr`] does. Inputs: gate, onset, release (seconds).
#[derive(Clone)]
pub struct Segments {
    /// (seconds, level) per point.
    points: [(f32, f32); MAX_ENVELOPE_POINTS],
    count: usize,
    sustain: usize,
    level: f32,
    /// Level where the current segment started, and seconds into it.
    from: f32,
    elapsed: f32,
    /// The point the envelope moves to; `count` once past the last one.
    segment: usize,
    /// The gate has fallen since the last start.
    released: bool,
    /// Fall per second after the gate fell at the last point.
    release_rate: f32,
    onset: f32,
    sample_rate: f32,
}

impl Segments {
    /// `flat` holds the points as seconds, level pairs.
    fn new(flat: &[f32], sustain: u8) -> Self {
        let mut points = [(0.0, 0.0); MAX_ENVELOPE_POINTS];
        let count = Ord::min(flat.len() / 2, MAX_ENVELOPE_POINTS);
        for (p, pair) in points.iter_mut().zip(flat.chunks_exact(2)) {
            *p = (pair[0], pair[1]);
        }
        Self {
            points,
            count,
            sustain: Ord::min(sustain as usize, count.saturating_sub(1)),
            level: 0.0,
            from: 0.0,
            elapsed: 0.0,
            segment: count,
            released: true,
            release_rate: 0.0,
            onset: f32::NAN,
            sample_rate: 48_000.0,
        }
    }

    /// Moves on to point `segment` from the current level.
    fn start_segment(&mut self, segment: usize) {
        self.segment = segment;
        self.from = self.level;
        self.elapsed = 0.0;
    }

    /// The gate fell: the points after the sustain point, or the linear release.
    fn release(&mut self, release_secs: f32) {
        self.released = true;
        if self.sustain + 1 < self.count {
            self.start_segment(self.sustain + 1);
        } else {
            self.segment = self.count;
            self.release_rate = self.level / release_secs.max(1e-3);
        }
    }

    /// One sample along the points.
    fn advance(&mut self, dt: f32) {
        let Some(&(secs, target)) = self.points[..self.count].get(self.segment) else {
            if self.released {
                self.level = (self.level - dt * self.release_rate).max(0.0);
            }
            return;
        };
        self.elapsed += dt;
        if self.elapsed < secs {
            self.level = self.from + (target - self.from) * (self.elapsed / secs);
            return;
        }
        self.level = target;
        let holding = self.segment == self.sustain && !self.released;
        if !holding {
            self.start_segment(self.segment + 1);
            if self.segment == self.count {
                // past the last point: it stays at its level
                self.release_rate = 0.0;
            }
        }
    }
}

impl AudioNode for Segments {
    const ID: u64 = 0x7a9e_0008;
    type Inputs = U3;
    type Outputs = U1;

    fn reset(&mut self) {
        self.level = 0.0;
        self.segment = self.count;
        self.released = true;
        self.onset = f32::NAN;
    }

    fn set_sample_rate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate as f32;
    }

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U3>) -> Frame<f32, U1> {
        let dt = 1.0 / self.sample_rate.max(1.0);
        let (gate, onset) = (input[0] > 0.5, input[1]);
        if gate && (onset != self.onset || self.released) {
            self.released = false;
            self.start_segment(0);
        }
        self.onset = onset;
        if !gate && !self.released {
            self.release(input[2]);
        }
        self.advance(dt);
        [self.level].into()
    }
}

/// A low-frequency oscillator restarted at every onset: `offset + depth × wave`, the wave
/// within −1..1 and starting at 0 rising (a square starts at 1, a random one at its first
/// value). The stepped shapes (square, saw, random) glide through each step in about a
/// millisecond so that a tremolo does not click. Inputs: onset, rate (Hz), depth, offset.
#[derive(Clone)]
pub struct Lfo {
    shape: LfoShape,
    phase: f32,
    onset: f32,
    held: f32,
    smoothed: f32,
    rng: u64,
    hash: u64,
    sample_rate: f32,
    /// One-pole coefficient of the 1 ms glide.
    glide: f32,
}

impl Lfo {
    fn new(shape: LfoShape) -> Self {
        Self {
            shape,
            phase: 0.0,
            onset: f32::NAN,
            held: 0.0,
            smoothed: 0.0,
            rng: 1,
            hash: 1,
            sample_rate: 48_000.0,
            glide: 1.0 - (-1000.0f32 / 48_000.0).exp(),
        }
    }

    /// The next random value in −1..1 (xorshift64*: deterministic per voice).
    fn draw(&mut self) -> f32 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn wave(&self) -> f32 {
        let p = self.phase;
        match self.shape {
            LfoShape::Sine => (std::f32::consts::TAU * p).sin(),
            LfoShape::Triangle => {
                if p < 0.25 {
                    4.0 * p
                } else if p < 0.75 {
                    2.0 - 4.0 * p
                } else {
                    4.0 * p - 4.0
                }
            }
            LfoShape::Saw => 2.0 * (p + 0.5).fract() - 1.0,
            LfoShape::Square => {
                if p < 0.5 {
                    1.0
                } else {
                    -1.0
                }
            }
            LfoShape::Random => self.held,
        }
    }
}

impl AudioNode for Lfo {
    const ID: u64 = 0x7a9e_0009;
    type Inputs = U4;
    type Outputs = U1;

    fn reset(&mut self) {
        self.phase = 0.0;
        self.onset = f32::NAN;
        self.rng = self.hash | 1;
        self.held = 0.0;
        self.smoothed = 0.0;
    }

    fn set_hash(&mut self, hash: u64) {
        self.hash = hash;
        self.reset();
    }

    fn set_sample_rate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate as f32;
        self.glide = 1.0 - (-1000.0 / self.sample_rate.max(1.0)).exp();
    }

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U4>) -> Frame<f32, U1> {
        let sr = self.sample_rate.max(1.0);
        let restarted = input[0] != self.onset;
        self.onset = input[0];
        let next = self.phase + input[1] / sr;
        let wrapped = next >= 1.0;
        self.phase = if restarted { 0.0 } else { next.fract() };
        if self.shape == LfoShape::Random && (restarted || wrapped) {
            self.held = self.draw();
        }
        let target = self.wave();
        let stepped = matches!(
            self.shape,
            LfoShape::Square | LfoShape::Saw | LfoShape::Random
        );
        // a one-pole of 1 ms time constant on the stepped shapes
        self.smoothed = if stepped && !restarted {
            self.smoothed + (target - self.smoothed) * self.glide
        } else {
            target
        };
        [input[3] + input[2] * self.smoothed].into()
    }
}

/// A sine carrier whose phase a sine modulator moves (phase modulation, the DX7's "FM").
/// Inputs: carrier frequency (Hz), modulator ratio, index (radians of deviation / 2π).
#[derive(Clone, Default)]
pub struct PmPair {
    carrier: f32,
    modulator: f32,
    sample_rate: f32,
}

impl AudioNode for PmPair {
    const ID: u64 = 0x7a9e_0002;
    type Inputs = U3;
    type Outputs = U1;

    fn reset(&mut self) {
        self.carrier = 0.0;
        self.modulator = 0.0;
    }

    fn set_sample_rate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate as f32;
    }

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U3>) -> Frame<f32, U1> {
        let step = input[0] / self.sample_rate.max(1.0);
        self.carrier = (self.carrier + step).fract();
        self.modulator = (self.modulator + step * input[1]).fract();
        let m = (std::f32::consts::TAU * self.modulator).sin();
        [(std::f32::consts::TAU * (self.carrier + input[2] * m)).sin()].into()
    }
}

/// Harmonic partials: amplitude `weights[k]` at (k + 1) × the frequency; partials at or
/// above Nyquist are left out. Input: frequency (Hz).
#[derive(Clone)]
pub struct Partials {
    weights: [f32; MAX_PARTIALS],
    count: usize,
    phase: f32,
    sample_rate: f32,
}

impl Partials {
    fn new(weights: &[f32]) -> Self {
        let mut w = [0.0; MAX_PARTIALS];
        let count = Ord::min(weights.len(), MAX_PARTIALS);
        w[..count].copy_from_slice(&weights[..count]);
        Self {
            weights: w,
            count,
            phase: 0.0,
            sample_rate: 48_000.0,
        }
    }
}

impl AudioNode for Partials {
    const ID: u64 = 0x7a9e_0003;
    type Inputs = U1;
    type Outputs = U1;

    fn reset(&mut self) {
        self.phase = 0.0;
    }

    fn set_sample_rate(&mut self, sample_rate: f64) {
        self.sample_rate = sample_rate as f32;
    }

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U1>) -> Frame<f32, U1> {
        let step = input[0] / self.sample_rate.max(1.0);
        self.phase = (self.phase + step).fract();
        let audible = Ord::min((0.5 / step.max(1e-9)) as usize, self.count);
        // sines of k·θ by the Chebyshev recurrence: one sin and one cos per sample
        let theta = std::f32::consts::TAU * self.phase;
        let (s1, c1) = theta.sin_cos();
        let (mut prev, mut cur) = (0.0f32, s1);
        let mut y = 0.0;
        for w in &self.weights[..audible] {
            y += w * cur;
            let next = 2.0 * c1 * cur - prev;
            prev = cur;
            cur = next;
        }
        [y].into()
    }
}

/// `tanh(drive · x) / tanh(drive)`: a full-scale input stays at full scale.
/// Inputs: audio, drive.
#[derive(Clone, Default)]
pub struct Drive;

impl AudioNode for Drive {
    const ID: u64 = 0x7a9e_0004;
    type Inputs = U2;
    type Outputs = U1;

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U2>) -> Frame<f32, U1> {
        let d = input[1].max(1e-3);
        [(d * input[0]).tanh() / d.tanh()].into()
    }
}

/// Audio times an amount. Inputs: audio, amount.
#[derive(Clone, Default)]
pub struct Amount;

impl AudioNode for Amount {
    const ID: u64 = 0x7a9e_0005;
    type Inputs = U2;
    type Outputs = U1;

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U2>) -> Frame<f32, U1> {
        [input[0] * input[1]].into()
    }
}

/// A weighted sum of up to [`MAX_NODE_INPUTS`] inputs (unconnected ones are silent).
#[derive(Clone)]
pub struct Mix {
    gains: [f32; MAX_NODE_INPUTS],
}

impl Mix {
    fn new(weights: &[f32]) -> Self {
        let mut gains = [0.0; MAX_NODE_INPUTS];
        for (g, w) in gains.iter_mut().zip(weights) {
            *g = *w;
        }
        Self { gains }
    }
}

impl AudioNode for Mix {
    const ID: u64 = 0x7a9e_0006;
    type Inputs = U8;
    type Outputs = U1;

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U8>) -> Frame<f32, U1> {
        let mut y = 0.0;
        for (x, g) in input.iter().zip(&self.gains) {
            y += x * g;
        }
        [y].into()
    }
}

/// The product of the first `count` inputs.
#[derive(Clone)]
pub struct Product {
    count: usize,
}

impl AudioNode for Product {
    const ID: u64 = 0x7a9e_0007;
    type Inputs = U8;
    type Outputs = U1;

    #[inline]
    fn tick(&mut self, input: &Frame<f32, U8>) -> Frame<f32, U1> {
        [input[..Ord::min(self.count, MAX_NODE_INPUTS)]
            .iter()
            .product()]
        .into()
    }
}
