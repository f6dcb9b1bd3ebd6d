//! The voices of every designed instrument: preallocated graphs, handed to kernel lanes of
//! their instrument's kind as lanes start, ticked at control rate, rendered per span.

use fundsp::prelude32::{AudioUnit, BufferVec};

use super::super::config::MAX_DIMS;
use super::super::voice::{LaneFrame, LaneSlot, VoicePool, LANES, NO_VOICE};
use super::super::CONTROL_PERIOD;
use super::bind::VoiceInputs;
use super::nodes::{build, Channel, VoiceGraph};
use super::{InstrumentDef, Value};

/// What a participant contributes to its voices' bindings at a control tick.
#[derive(Clone, Copy, Debug, Default)]
pub struct ParticipantInputs {
    /// Its voice mood, normalized per dimension.
    pub mood: [f32; MAX_DIMS],
    /// Pitch bend in semitones.
    pub bend: f32,
    /// Vibrato depth 0..1.
    pub vibrato: f32,
    /// Brightness 0..1.
    pub brightness: f32,
}

/// What every voice shares at a control tick.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickInputs {
    /// The communal mood, normalized per dimension.
    pub communal: [f32; MAX_DIMS],
    /// Position inside the beat.
    pub beat_phase: f32,
    /// Position inside the bar.
    pub bar_phase: f32,
    /// Section index / (sections − 1).
    pub section: f32,
}

struct Voice {
    graph: VoiceGraph,
    /// The lane it sounds on, or `NO_SLOT`.
    slot: LaneSlot,
    onset: u32,
    age_ticks: u32,
    /// Smoothed parameter values, flat over the nodes.
    values: Vec<f32>,
    /// Channel values at the previous and at this control tick (ramped between).
    prev: Vec<f32>,
    cur: Vec<f32>,
    /// Its graph's output over the control period since the last tick.
    block: [f32; CONTROL_PERIOD as usize],
}

const NO_SLOT: LaneSlot = LaneSlot::MAX;

struct Runtime {
    def: InstrumentDef,
    /// The pool kind its lanes are allocated with.
    kind: u8,
    /// First flat parameter index of each node.
    offsets: Vec<usize>,
    voices: Vec<Voice>,
    input: BufferVec,
    output: BufferVec,
    /// Lanes that found no free voice (polyphony exceeded): they stay silent.
    starved: u64,
}

/// Every designed instrument's voices.
pub struct Rack {
    instruments: Vec<Runtime>,
    sample_rate: f32,
    tick_secs: f32,
}

impl Rack {
    /// Builds `polyphony` voice graphs for each instrument; instrument `i` sounds on pool
    /// lanes of kind `first_kind + i`. Allocates; call off the audio thread.
    pub fn new(defs: &[InstrumentDef], sample_rate: f32, seed: u64, first_kind: u8) -> Self {
        let instruments = defs
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let mut offsets = Vec::with_capacity(def.nodes.len());
                let mut count = 0;
                for n in &def.nodes {
                    offsets.push(count);
                    count += n.params.len();
                }
                let voices: Vec<Voice> = (0..def.polyphony as u64)
                    .map(|v| {
                        let hash = crate::rng::Rng::derive(seed ^ i as u64, v).next_u64();
                        let graph = build(def, sample_rate, hash);
                        let channels = graph.channels.len();
                        Voice {
                            graph,
                            slot: NO_SLOT,
                            onset: 0,
                            age_ticks: 0,
                            values: vec![0.0; count],
                            prev: vec![0.0; channels],
                            cur: vec![0.0; channels],
                            block: [0.0; CONTROL_PERIOD as usize],
                        }
                    })
                    .collect();
                let inputs = voices.first().map_or(0, |v| v.graph.net.inputs());
                Runtime {
                    def: def.clone(),
                    kind: first_kind + i as u8,
                    offsets,
                    voices,
                    input: BufferVec::new(inputs),
                    output: BufferVec::new(1),
                    starved: 0,
                }
            })
            .collect();
        Self {
            instruments,
            sample_rate,
            tick_secs: CONTROL_PERIOD as f32 / sample_rate,
        }
    }

    /// Releases every voice (engine reset). Real-time safe.
    pub fn reset(&mut self) {
        for r in &mut self.instruments {
            for v in &mut r.voices {
                v.slot = NO_SLOT;
            }
            r.starved = 0;
        }
    }

    /// Voices sounding, over all instruments.
    pub fn voices_in_use(&self) -> usize {
        let busy = |r: &Runtime| r.voices.iter().filter(|v| v.slot != NO_SLOT).count();
        self.instruments.iter().map(busy).sum()
    }

    /// Lane starts that found every voice of their instrument busy (they stayed silent).
    pub fn starved(&self) -> u64 {
        self.instruments.iter().map(|r| r.starved).sum()
    }

    /// A control tick: frees voices whose lanes ended, gives free voices to new lanes of
    /// their instrument, restarts the envelopes of lanes that took a new note, and computes
    /// every bound parameter. Real-time safe.
    pub fn tick(&mut self, pool: &mut VoicePool, shared: &TickInputs, who: &[ParticipantInputs]) {
        let (sr, tick_secs) = (self.sample_rate, self.tick_secs);
        for r in &mut self.instruments {
            r.follow_lanes(pool);
            r.assign_lanes(pool);
            for v in r.voices.iter_mut().filter(|v| v.slot != NO_SLOT) {
                let note = *pool.note(v.slot);
                let p = who
                    .get(note.participant as usize)
                    .copied()
                    .unwrap_or_default();
                let inputs = VoiceInputs {
                    pitch: note.note,
                    velocity: note.velocity,
                    gate: note.gate,
                    age_secs: v.age_ticks as f32 * tick_secs,
                    mood: p.mood,
                    communal: shared.communal,
                    bend: p.bend,
                    vibrato: p.vibrato,
                    brightness: p.brightness,
                    beat_phase: shared.beat_phase,
                    bar_phase: shared.bar_phase,
                    section: shared.section,
                };
                let (bank, lane) = pool.lane(v.slot);
                let note_hz = bank.params.dt[lane] * sr;
                v.evaluate(
                    &r.def, &r.offsets, &inputs, note_hz, note.onset, sr, tick_secs,
                );
                // the whole period at once: fundsp's block and per-sample paths differ in
                // the last bits, so the graph always runs in the same 32-sample blocks at
                // the same timeline positions, whatever the host's block size
                v.process(&mut r.input, &mut r.output);
            }
        }
    }

    /// Adds every sounding voice's output for one span starting at absolute sample `time`
    /// (inside one control period; computed at its tick) through its lane's envelope, level
    /// and pan into the lane frames. Real-time safe.
    pub fn render_add(
        &mut self,
        pool: &mut VoicePool,
        time: u64,
        out_l: &mut [LaneFrame],
        out_r: &mut [LaneFrame],
    ) {
        let n = out_l.len();
        let first = (time % CONTROL_PERIOD) as usize;
        for r in &mut self.instruments {
            let level = r.def.level;
            for v in r.voices.iter_mut().filter(|v| v.slot != NO_SLOT) {
                let y = &v.block[first..first + n];
                let (bank, i) = pool.lane(v.slot);
                let (p, st) = (&bank.params, &mut bank.state);
                for ((ol, or), y) in out_l.iter_mut().zip(out_r.iter_mut()).zip(y) {
                    let env = st.env[i] + (p.env_target[i] - st.env[i]) * p.env_coef[i];
                    st.env[i] = env;
                    let y = y * env * level;
                    ol[i % LANES] += y * p.gain_l[i];
                    or[i % LANES] += y * p.gain_r[i];
                }
            }
        }
    }
}

impl Runtime {
    /// Frees voices whose lane was freed or handed to another voice; notes new onsets.
    fn follow_lanes(&mut self, pool: &VoicePool) {
        for (index, v) in self.voices.iter_mut().enumerate() {
            if v.slot == NO_SLOT {
                continue;
            }
            let note = pool.note(v.slot);
            if !pool.is_used(v.slot, self.kind) || note.voice != index as u16 {
                v.slot = NO_SLOT;
            }
        }
    }

    /// Gives each lane of this instrument without a voice a free one (reset, so it starts
    /// from silence); a lane finding none stays silent and is counted.
    fn assign_lanes(&mut self, pool: &mut VoicePool) {
        for chunk in 0..pool.chunk_count() {
            if pool.chunk_kind(chunk) != self.kind {
                continue;
            }
            for lane in 0..LANES {
                let slot = (chunk * LANES + lane) as LaneSlot;
                if !pool.is_used(slot, self.kind) || pool.note(slot).voice != NO_VOICE {
                    continue;
                }
                let Some(index) = self.voices.iter().position(|v| v.slot == NO_SLOT) else {
                    self.starved += 1;
                    // marked so it is counted once
                    pool.set_note_voice(slot, NO_VOICE - 1);
                    continue;
                };
                let v = &mut self.voices[index];
                v.slot = slot;
                v.onset = pool.note(slot).onset;
                v.age_ticks = 0;
                v.graph.net.reset();
                v.values.fill(f32::NAN);
                pool.set_note_voice(slot, index as u16);
            }
        }
    }
}

impl Voice {
    /// Ramps the channels over a control period and runs the graph into `block`.
    fn process(&mut self, input: &mut BufferVec, output: &mut BufferVec) {
        let n = CONTROL_PERIOD as usize;
        for (c, ch) in self.graph.channels.iter().enumerate() {
            let out = &mut input.channel_f32_mut(c)[..n];
            let (from, to) = (self.prev[c], self.cur[c]);
            if from == to || matches!(ch, Channel::Gate | Channel::Onset) {
                out.fill(to);
            } else {
                for (k, x) in out.iter_mut().enumerate() {
                    let t = (k + 1) as f32 / CONTROL_PERIOD as f32;
                    *x = from + (to - from) * t;
                }
            }
        }
        self.graph
            .net
            .process(n, &input.buffer_ref(), &mut output.buffer_mut());
        self.block.copy_from_slice(&output.channel_f32(0)[..n]);
    }

    /// Computes every parameter and channel for this tick.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &mut self,
        def: &InstrumentDef,
        offsets: &[usize],
        inputs: &VoiceInputs,
        note_hz: f32,
        onset: u32,
        sample_rate: f32,
        tick_secs: f32,
    ) {
        if onset != self.onset {
            self.onset = onset;
            self.age_ticks = 0;
        }
        let fresh = self.values.first().is_some_and(|x| x.is_nan());
        for (node, &offset) in def.nodes.iter().zip(offsets) {
            for (k, value) in node.params.iter().enumerate() {
                let slot = &mut self.values[offset + k];
                let target = match value {
                    Value::Const(c) => *c,
                    Value::Bound(b) => b.map(b.source_value(inputs)),
                };
                let smoothing = match value {
                    Value::Bound(b) if b.smoothing_secs > 0.0 => {
                        1.0 - (-tick_secs / b.smoothing_secs).exp()
                    }
                    _ => 1.0,
                };
                *slot = if slot.is_nan() {
                    target
                } else {
                    *slot + (target - *slot) * smoothing
                };
            }
        }
        let nyquist_safe = 0.45 * sample_rate;
        for (c, ch) in self.graph.channels.iter().enumerate() {
            let param = |node: u16, k: usize| self.values[offsets[node as usize] + k];
            let value = match *ch {
                Channel::Gate => f32::from(u8::from(inputs.gate)),
                Channel::Onset => (onset % (1 << 24)) as f32,
                Channel::Freq { node } => (note_hz * param(node, 0)).min(nyquist_safe),
                Channel::Cutoff { node } => {
                    let follow = (note_hz.max(1.0) / 261.626).powf(param(node, 2));
                    (param(node, 0) * follow).clamp(20.0, nyquist_safe)
                }
                Channel::Plain { node, param: k } => param(node, k as usize),
                Channel::Reciprocal { node, param: k } => 1.0 / param(node, k as usize).max(1e-3),
                Channel::DbToAmp { node, param: k } => {
                    (param(node, k as usize) * 0.05 * std::f32::consts::LN_10).exp()
                }
            };
            self.prev[c] = if fresh { value } else { self.cur[c] };
            self.cur[c] = value;
        }
        self.age_ticks = self.age_ticks.saturating_add(1);
    }
}

/// One voice of an instrument on its own, outside the engine: for measuring what each node
/// kind sounds like (tests) and what a voice costs (benchmarks). The graph, bindings and
/// control-rate ramps are the engine's; there is no lane envelope, level or pan. `new`
/// allocates; `render` does not.
pub struct Solo {
    def: InstrumentDef,
    offsets: Vec<usize>,
    voice: Voice,
    input: BufferVec,
    output: BufferVec,
    sample_rate: f32,
    time: u64,
    onset: u32,
}

impl Solo {
    /// A voice of `def` at a sample rate.
    pub fn new(def: &InstrumentDef, sample_rate: f32, seed: u64) -> Self {
        let rack = Rack::new(std::slice::from_ref(def), sample_rate, seed, 0);
        let mut runtime = rack.instruments.into_iter().next().expect("one instrument");
        let mut voice = runtime.voices.swap_remove(0);
        voice.values.fill(f32::NAN);
        Self {
            def: def.clone(),
            offsets: runtime.offsets,
            voice,
            input: runtime.input,
            output: runtime.output,
            sample_rate,
            time: 0,
            onset: 1,
        }
    }

    /// Starts a new note (its envelopes restart).
    pub fn retrigger(&mut self) {
        self.onset += 1;
    }

    /// Renders `out.len()` samples of a note at `note_hz` (MIDI pitch `inputs.pitch` for
    /// bindings), the inputs held for the whole call, control ticks every
    /// [`CONTROL_PERIOD`] samples as in the engine.
    pub fn render(&mut self, note_hz: f32, inputs: &VoiceInputs, out: &mut [f32]) {
        let tick_secs = CONTROL_PERIOD as f32 / self.sample_rate;
        let mut pos = 0;
        while pos < out.len() {
            let first = (self.time % CONTROL_PERIOD) as usize;
            if first == 0 {
                let inputs = VoiceInputs {
                    age_secs: self.voice.age_ticks as f32 * tick_secs,
                    ..*inputs
                };
                self.voice.evaluate(
                    &self.def,
                    &self.offsets,
                    &inputs,
                    note_hz,
                    self.onset,
                    self.sample_rate,
                    tick_secs,
                );
            }
            if first == 0 {
                self.voice.process(&mut self.input, &mut self.output);
            }
            let n = (CONTROL_PERIOD as usize - first).min(out.len() - pos);
            out[pos..pos + n].copy_from_slice(&self.voice.block[first..first + n]);
            pos += n;
            self.time += n as u64;
        }
    }
}
