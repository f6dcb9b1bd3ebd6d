//! # Real-time contract
//!
//! This folder holds the only code the audio callback runs. [`Engine::new`] allocates
//! everything up front; [`Engine::process`] and [`Engine::reset`] never allocate, free, lock,
//! block, do I/O, log or panic. Messages arrive from [`Controller`]s over
//! single-producer rings, one per controller, drained round-robin with a budget per source
//! and per block (a stalled producer only holds back its own unpublished message); status
//! leaves through atomics, notices and the journal through single-producer rings the engine
//! fills. Nothing here ever spins on, or waits for, another thread.
//!
//! Timing: everything is computed on an absolute sample timeline. Control work (score, mood,
//! envelopes) runs every [`CONTROL_PERIOD`] samples on that timeline and messages apply at
//! their exact sample, so the output does not depend on the host's block size.

pub mod config;
pub mod instrument;
pub mod master;
pub mod mood;
pub mod participant;
pub mod reverb;
mod schedule;
pub mod voice;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rtrb::{Consumer, Producer};

use crate::control::limits::DRAIN_ROUND;
use crate::control::{
    channels, Command, ControlLimits, Controller, Expression, Journal, Message, MoodTarget, Names,
    Notice, Refusal, Status, Timing, VoiceSelector,
};
use crate::rng::Rng;
use crate::score::{darker, Chord, Scale};
use config::{Comparison, EngineConfig, Param, Role, Timbre, MAX_DIMS};
pub use master::{MasterBus, MasterSpan};
use mood::{CrowdCenter, MoodState, ParamsMemo};
use participant::{coef, Participant, ScoreContext};
use schedule::Schedule;
use voice::{fold_lanes, LaneFrame, VoicePool, LANES};

/// Samples between control ticks (score, envelopes, mood).
pub const CONTROL_PERIOD: u64 = 32;
/// Time constant of the fade of a voice cut short for a newcomer (silent after about 5.5 of
/// them), so the takeover does not click.
pub const CUT_FADE_SECS: f32 = 0.004;
/// Control ticks between full voice-parameter updates of one participant (staggered).
pub const VOICE_UPDATE_TICKS: u64 = 8;
/// Longest span rendered in one go.
pub const MAX_SPAN: usize = 64;
/// Most frames `process` accepts per call.
pub const MAX_BLOCK_FRAMES: usize = 8192;
/// Slowest tempo a `Command::Tempo` may set.
pub const MIN_TEMPO_BPM: f32 = 20.0;
/// Fastest tempo a `Command::Tempo` may set.
pub const MAX_TEMPO_BPM: f32 = 400.0;
/// Shortest smoothing of any mood dimension, against zipper noise.
pub const MIN_SMOOTHING_SECS: f32 = 0.02;

/// The engine: owns every voice, the score clock, mood and master bus.
pub struct Engine {
    cfg: EngineConfig,
    limits: ControlLimits,
    sources: Exclusive<Vec<Consumer<Message>>>,
    next_source: usize,
    horizon_samples: u64,
    applied_this_tick: usize,
    notice_tx: Exclusive<Producer<Notice>>,
    status: Arc<Status>,
    schedule: Schedule,
    participants: Vec<Participant>,
    /// The id of each slot's participant while present (joined, not leaving): a compact
    /// copy that lookups scan instead of the participants themselves.
    present_ids: Vec<Option<u32>>,
    /// The sample at which each slot's participant left (meaningful while it fades).
    left_at: Vec<u64>,
    /// Participants present per archetype, for balancing joins in O(archetypes²).
    present_per_archetype: Vec<u32>,
    pool: VoicePool,
    /// Lanes of voices cut short for a newcomer, fading out over [`CUT_FADE_SECS`]: freed
    /// at the first control tick that finds them silent. Reserved for every lane of every
    /// slot; past that a lane is freed at once.
    cut_lanes: Vec<voice::LaneSlot>,
    /// The per-sample coefficient of that fade.
    cut_fade_coef: f32,
    /// Designed instruments' voices, riding on pool lanes of their kinds.
    rack: instrument::Rack,
    /// Each participant slot's contribution to its designed voices' bindings.
    voice_inputs: Vec<instrument::rack::ParticipantInputs>,
    present: usize,
    time: u64,
    conductor: MoodState,
    room: MoodState,
    room_params: RoomOffsets,
    tempo_bpm: f64,
    tempo_base_beat: f64,
    tempo_base_time: u64,
    communal: [f32; MAX_DIMS],
    communal_params: [f32; Param::COUNT],
    smoothing: [f32; MAX_DIMS],
    scratch: Vec<f32>,
    /// The crowd's center per mood dimension, the communal parameters and each participant
    /// slot's voice parameters, each recomputed only when what it is computed from changed.
    crowd_centers: Vec<CrowdCenter>,
    communal_memo: ParamsMemo,
    voice_memos: Vec<ParamsMemo>,
    section: u16,
    section_start_bar: u64,
    cued: Option<u16>,
    bar: u64,
    chord_serial: u32,
    chord: Chord,
    scale: Scale,
    reverb_mix: f32,
    reverb_coef: f32,
    master: MasterBus,
    /// The reverb width last given to the master bus.
    reverb_width: f32,
    /// Offline: the spans of the last `process` call when the caller runs the master bus
    /// itself ([`Engine::defer_master`]).
    deferred_spans: Option<Vec<MasterSpan>>,
    lanes_l: [LaneFrame; MAX_SPAN],
    lanes_r: [LaneFrame; MAX_SPAN],
    buf_l: [f32; MAX_SPAN],
    buf_r: [f32; MAX_SPAN],
    block_peak: (f32, f32),
    journal_tx: Option<Exclusive<Producer<Applied>>>,
    /// The command being applied, as it will be journaled (None once refused).
    journal_entry: Option<Command>,
}

/// A command as the engine applied it, with the sample it took effect at: what a session
/// recording writes, so an offline render can reproduce the session sample for sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Applied {
    /// Absolute sample at which the command took effect.
    pub sample: u64,
    /// The command; a join names the archetype the engine chose.
    pub command: Command,
}

impl Engine {
    /// Builds an engine and its first controller, with the default [`ControlLimits`].
    /// Allocates; call off the audio thread.
    pub fn new(cfg: EngineConfig, names: Names) -> (Engine, Controller) {
        Self::with_limits(cfg, names, ControlLimits::default())
    }

    /// Builds an engine and its first controller with these bounds of the control path
    /// (clamped into their documented ranges). Allocates; call off the audio thread.
    pub fn with_limits(
        cfg: EngineConfig,
        names: Names,
        limits: ControlLimits,
    ) -> (Engine, Controller) {
        let limits = limits.clamped();
        let status = Arc::new(Status::default());
        let (controller, ends) = channels(limits, status.clone(), Arc::new(names));
        let horizon_samples = (limits.horizon_secs * cfg.sample_rate as f64) as u64;
        let conductor = MoodState::new(&cfg.dims);
        let first = cfg.archetypes[0];
        let participants = vec![Participant::empty(first, conductor); cfg.capacity];
        let master = MasterBus::new(cfg.sample_rate, &cfg.master);
        let scale = cfg.key.scale();
        let tick_secs = CONTROL_PERIOD as f32 / cfg.sample_rate;
        let mut smoothing = [0.0; MAX_DIMS];
        for (s, d) in smoothing.iter_mut().zip(&cfg.dims) {
            *s = coef(d.smoothing_secs.max(MIN_SMOOTHING_SECS) / tick_secs, 1.0);
        }
        let mut engine = Engine {
            chord: cfg.sections[cfg.start_section as usize].chords[0],
            limits,
            sources: Exclusive(ends.sources),
            next_source: 0,
            horizon_samples,
            applied_this_tick: 0,
            notice_tx: Exclusive(ends.notices),
            status,
            schedule: Schedule::new(limits.sources, limits.schedule_share),
            scratch: Vec::with_capacity(cfg.capacity),
            crowd_centers: (0..MAX_DIMS)
                .map(|_| CrowdCenter::new(cfg.capacity))
                .collect(),
            communal_memo: ParamsMemo::EMPTY,
            voice_memos: vec![ParamsMemo::EMPTY; participants.len()],
            present_ids: vec![None; participants.len()],
            left_at: vec![0; participants.len()],
            present_per_archetype: vec![0; cfg.archetypes.len()],
            participants,
            pool: VoicePool::new(cfg.capacity + cfg.capacity / 4 + 8, cfg.seed),
            cut_lanes: Vec::with_capacity(cfg.capacity * LANES),
            cut_fade_coef: participant::coef(CUT_FADE_SECS, cfg.sample_rate),
            rack: instrument::Rack::new(
                &cfg.instruments,
                cfg.sample_rate,
                cfg.seed,
                Timbre::COUNT as u8,
            ),
            voice_inputs: vec![Default::default(); cfg.capacity],
            present: 0,
            time: 0,
            conductor,
            room: conductor,
            room_params: RoomOffsets::default(),
            tempo_bpm: cfg.tempo_bpm as f64,
            tempo_base_beat: 0.0,
            tempo_base_time: 0,
            communal: conductor.value,
            communal_params: [0.0; Param::COUNT],
            smoothing,
            section: cfg.start_section,
            section_start_bar: 0,
            cued: None,
            bar: 0,
            chord_serial: 0,
            scale,
            reverb_mix: 0.0,
            reverb_coef: coef(0.5 / tick_secs, 1.0),
            master,
            reverb_width: 1.0,
            deferred_spans: None,
            lanes_l: [[0.0; LANES]; MAX_SPAN],
            lanes_r: [[0.0; LANES]; MAX_SPAN],
            buf_l: [0.0; MAX_SPAN],
            buf_r: [0.0; MAX_SPAN],
            block_peak: (0.0, 0.0),
            journal_tx: None,
            journal_entry: None,
            cfg,
        };
        engine.reset();
        (engine, controller)
    }

    /// Starts a journal of every applied command (for session recording) and returns its
    /// receiving end; `capacity` bounds what may wait undrained (a full journal counts
    /// `Status::dropped_journal`). Allocates: call before moving the engine to the audio thread.
    pub fn enable_journal(&mut self, capacity: usize) -> Journal {
        let (tx, journal) = Journal::new(capacity);
        self.journal_tx = Some(Exclusive(tx));
        journal
    }

    /// The resolved configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The bounds of the control path (clamped).
    pub fn limits(&self) -> &ControlLimits {
        &self.limits
    }

    /// Messages waiting in the schedule for their sample: from one source, and in all.
    pub fn scheduled(&self, source: usize) -> (usize, usize) {
        (self.schedule.pending(source), self.schedule.len())
    }

    /// Absolute sample position of the next sample `process` will produce.
    pub fn sample_position(&self) -> u64 {
        self.time
    }

    /// Silences everything and returns to the start of the piece with the same seed, so the
    /// next render reproduces the first. Pending messages are kept. Real-time safe.
    pub fn reset(&mut self) {
        let first = self.cfg.archetypes[0];
        let conductor = MoodState::new(&self.cfg.dims);
        for (i, p) in self.participants.iter_mut().enumerate() {
            *p = Participant::empty(first, conductor);
            p.index = i as u16;
        }
        self.pool.reset();
        self.cut_lanes.clear();
        self.rack.reset();
        self.voice_inputs.fill(Default::default());
        self.present = 0;
        self.present_ids.fill(None);
        self.present_per_archetype.fill(0);
        self.time = 0;
        self.conductor = conductor;
        self.room = conductor;
        self.room_params = RoomOffsets::default();
        self.tempo_bpm = self.cfg.tempo_bpm as f64;
        self.tempo_base_beat = 0.0;
        self.tempo_base_time = 0;
        self.communal = conductor.value;
        self.communal_params =
            self.communal_memo
                .evaluate(&self.communal, &self.cfg.dims, &self.cfg.mappings);
        self.reverb_mix = self.communal_params[Param::ReverbMix.index()];
        self.section = self.cfg.start_section;
        self.section_start_bar = 0;
        self.cued = None;
        self.bar = 0;
        self.chord_serial = 0;
        self.update_chord();
        self.master.reset();
        self.block_peak = (0.0, 0.0);
        self.publish_status();
    }

    /// Offline only: from now on [`Engine::process`] writes the voices' mix before the master
    /// bus and notes, span by span, what the bus needed ([`Engine::master_spans`]); the
    /// caller runs a [`MasterBus`] of its own over them ([`MasterBus::process_spans`]), e.g.
    /// on another thread, with the very arithmetic the engine would have done. Not real-time
    /// safe (the span list may grow for a block of more than [`MAX_BLOCK_FRAMES`] frames).
    pub fn defer_master(&mut self) {
        self.deferred_spans = Some(Vec::with_capacity(MAX_BLOCK_FRAMES));
    }

    /// The spans of the last [`Engine::process`] call after [`Engine::defer_master`] (empty
    /// otherwise).
    pub fn master_spans(&self) -> &[MasterSpan] {
        self.deferred_spans.as_deref().unwrap_or(&[])
    }

    /// Renders interleaved stereo frames into `out` (its length is 2 × frames; any number of
    /// frames from 1 to [`MAX_BLOCK_FRAMES`] and beyond). Real-time safe.
    pub fn process(&mut self, out: &mut [f32]) {
        let _denormals = DenormalGuard::new();
        if let Some(spans) = &mut self.deferred_spans {
            spans.clear();
        }
        self.drain_messages();
        let frames = out.len() / 2;
        if out.len() % 2 == 1 {
            out[out.len() - 1] = 0.0;
        }
        self.block_peak = (0.0, 0.0);
        let mut pos = 0;
        while pos < frames {
            if self.time.is_multiple_of(CONTROL_PERIOD) {
                self.applied_this_tick = 0;
            }
            self.apply_due_messages();
            if self.time.is_multiple_of(CONTROL_PERIOD) {
                self.control_tick();
            }
            let to_tick = CONTROL_PERIOD - self.time % CONTROL_PERIOD;
            let mut span = (frames - pos).min(to_tick as usize).min(MAX_SPAN);
            if let Some(at) = self.schedule.next_at() {
                if at > self.time {
                    span = span.min((at - self.time) as usize);
                }
            }
            self.render_span(&mut out[2 * pos..2 * (pos + span)]);
            self.time += span as u64;
            pos += span;
        }
        self.publish_status();
    }

    fn render_span(&mut self, out: &mut [f32]) {
        let n = out.len() / 2;
        let (wl, wr) = (&mut self.lanes_l[..n], &mut self.lanes_r[..n]);
        wl.fill([0.0; LANES]);
        wr.fill([0.0; LANES]);
        self.pool.render_add(wl, wr);
        self.rack.render_add(&mut self.pool, self.time, wl, wr);
        let (l, r) = (&mut self.buf_l[..n], &mut self.buf_r[..n]);
        fold_lanes(wl, l);
        fold_lanes(wr, r);
        match &mut self.deferred_spans {
            None => self.master.process_span(l, r, out, self.reverb_mix),
            Some(spans) => {
                for (frame, (&xl, &xr)) in out.chunks_exact_mut(2).zip(l.iter().zip(r.iter())) {
                    (frame[0], frame[1]) = (xl, xr);
                }
                spans.push(MasterSpan {
                    frames: n,
                    reverb_mix: self.reverb_mix,
                    reverb_width: self.reverb_width,
                });
            }
        }
        let (mut pl, mut pr) = self.block_peak;
        for frame in out.chunks_exact(2) {
            pl = pl.max(frame[0].abs());
            pr = pr.max(frame[1].abs());
        }
        self.block_peak = (pl, pr);
    }

    /// Moves messages from the controllers' rings into the schedule: round-robin, at most
    /// [`DRAIN_ROUND`] from each source per round, at most a ring's worth from one source and
    /// `drain_per_block` in all, so a flooding sender can neither make this block's work
    /// unbounded nor keep the others waiting. Each source's turn to go first rotates.
    fn drain_messages(&mut self) {
        let sources = self.sources.get_mut().len();
        let budget = self.limits.drain_per_block;
        let rounds = self.limits.ring_capacity.div_ceil(DRAIN_ROUND);
        let mut total = 0;
        for _ in 0..rounds {
            let mut this_round = 0;
            for k in 0..sources {
                let source = (self.next_source + k) % sources;
                let quota = DRAIN_ROUND.min(budget - total);
                let mut taken = 0;
                while taken < quota {
                    let Ok(message) = self.sources.get_mut()[source].pop() else {
                        break;
                    };
                    self.schedule_message(source, message);
                    taken += 1;
                }
                total += taken;
                this_round += taken;
                if total >= budget {
                    break;
                }
            }
            if this_round == 0 || total >= budget {
                break;
            }
        }
        self.next_source = (self.next_source + 1) % sources;
    }

    /// Puts one message in the schedule, or refuses it: stamped beyond the horizon, or its
    /// source's share of the schedule full.
    fn schedule_message(&mut self, source: usize, message: Message) {
        let at = match message.at {
            Timing::Immediate => self.time,
            Timing::At(t) => t,
        };
        if at.saturating_sub(self.time) > self.horizon_samples {
            return self.refuse(message.command, Refusal::TooFarAhead);
        }
        if let Err(reason) = self.schedule.insert(at, source, message.command) {
            self.refuse(message.command, reason);
        }
    }

    /// Applies the messages due now, at most `apply_per_tick` per control period; the rest
    /// wait for the next period, in order.
    fn apply_due_messages(&mut self) {
        while self.applied_this_tick < self.limits.apply_per_tick {
            let Some(command) = self.schedule.pop_due(self.time) else {
                break;
            };
            self.applied_this_tick += 1;
            self.journal_entry = Some(command);
            self.apply(command);
            if let (Some(tx), Some(entry)) = (&mut self.journal_tx, self.journal_entry) {
                let applied = Applied {
                    sample: self.time,
                    command: entry,
                };
                if tx.get_mut().push(applied).is_err() {
                    self.status.dropped_journal.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn score_context(&self) -> ScoreContext {
        let sr = self.cfg.sample_rate;
        ScoreContext {
            beat: self.beat(),
            chord: self.chord,
            scale: self.scale,
            tonic_pc: self.cfg.key.tonic,
            chord_serial: self.chord_serial,
            section: self.cfg.sections[self.section as usize],
            sample_rate: sr,
            tick_secs: CONTROL_PERIOD as f32 / sr,
            beat_secs: (60.0 / self.tempo_bpm) as f32,
            beats_per_bar: self.cfg.beats_per_bar.max(1) as f64,
        }
    }

    fn beat(&self) -> f64 {
        let elapsed = (self.time - self.tempo_base_time) as f64;
        self.tempo_base_beat + elapsed * self.tempo_bpm / (60.0 * self.cfg.sample_rate as f64)
    }

    /// The score's current tempo in BPM.
    pub fn tempo_bpm(&self) -> f64 {
        self.tempo_bpm
    }

    /// The slot of a present participant (joined, not leaving).
    fn find(&self, id: u32) -> Option<usize> {
        self.present_ids.iter().position(|&p| p == Some(id))
    }

    /// Applies one due command (or refuses it). Audio thread.
    fn apply(&mut self, command: Command) {
        match command {
            Command::Join {
                participant,
                archetype,
            } => self.join(participant, archetype, command),
            Command::Leave { participant } => self.leave(participant, command),
            Command::Mood {
                target,
                dim,
                value,
                ramp_secs,
            } => self.set_mood(target, dim, value, ramp_secs, command),
            Command::ReleaseCommunal { dim } => {
                if (dim as usize) < MAX_DIMS {
                    self.conductor.set[dim as usize] = false;
                }
            }
            Command::NoteOn {
                participant,
                pitch,
                velocity,
            } => match self.find(participant) {
                Some(i) if pitch < 128 && velocity > 0 => {
                    let ctx = self.score_context();
                    self.participants[i].note_on(pitch, velocity.min(127), &ctx, &mut self.pool);
                }
                Some(_) => self.refuse(command, Refusal::OutOfRange),
                None => self.refuse(command, Refusal::UnknownParticipant),
            },
            Command::NoteOff { participant, pitch } => match self.find(participant) {
                Some(i) => {
                    let ctx = self.score_context();
                    self.participants[i].note_off(pitch, &ctx, &mut self.pool);
                }
                None => self.refuse(command, Refusal::UnknownParticipant),
            },
            Command::Expression {
                participant,
                kind,
                value,
            } => self.express(participant, kind, value, command),
            Command::Cue { section } => {
                if (section as usize) < self.cfg.sections.len() {
                    self.cued = Some(section);
                } else {
                    self.refuse(command, Refusal::OutOfRange);
                }
            }
            Command::RoomParam {
                param,
                voices,
                value,
            } => self.set_room_param(param, voices, value, command),
            Command::Tempo { bpm } => self.set_tempo(bpm, command),
        }
    }

    /// A participant leaves: its voices release, its slot frees. Audio thread.
    #[inline]
    fn leave(&mut self, participant: u32, command: Command) {
        let Some(i) = self.find(participant) else {
            return self.refuse(command, Refusal::UnknownParticipant);
        };
        self.participants[i].leave(&mut self.pool);
        self.present -= 1;
        self.present_ids[i] = None;
        self.left_at[i] = self.time;
        let archetype = self.participants[i].archetype as usize;
        if let Some(n) = self.present_per_archetype.get_mut(archetype) {
            *n = n.saturating_sub(1);
        }
        self.notify(Notice::Left {
            participant,
            at_sample: self.time,
        });
    }

    /// Ramps a mood dimension (communal, the room's or a participant's) to a value clamped
    /// into its range. Audio thread.
    #[inline]
    fn set_mood(
        &mut self,
        target: MoodTarget,
        dim: u8,
        value: f32,
        ramp_secs: f32,
        command: Command,
    ) {
        let Some(d) = self.cfg.dims.get(dim as usize) else {
            return self.refuse(command, Refusal::OutOfRange);
        };
        if !value.is_finite() || !ramp_secs.is_finite() {
            return self.refuse(command, Refusal::OutOfRange);
        }
        let value = value.clamp(d.min, d.max);
        let ramp_secs = ramp_secs.clamp(0.0, 3600.0);
        let ticks = (ramp_secs * self.cfg.sample_rate / CONTROL_PERIOD as f32) as u32;
        // journaled as applied, so a recording re-reads within range
        self.journal_entry = Some(Command::Mood {
            target,
            dim,
            value,
            ramp_secs,
        });
        match target {
            MoodTarget::Communal => self.conductor.set(dim as usize, value, ticks),
            MoodTarget::Room => self.room.set(dim as usize, value, ticks),
            MoodTarget::Participant(id) => match self.find(id) {
                Some(i) => self.participants[i].mood.set(dim as usize, value, ticks),
                None => self.refuse(command, Refusal::UnknownParticipant),
            },
        }
    }

    /// Sets a participant's expression (bend, vibrato, ...) clamped into its range. Audio
    /// thread.
    #[inline]
    fn express(&mut self, participant: u32, kind: Expression, value: f32, command: Command) {
        match self.find(participant) {
            Some(i) if value.is_finite() => {
                let (lo, hi) = kind.range();
                let value = value.clamp(lo, hi);
                self.participants[i].express(kind, value);
                // journaled as applied, so a recording re-reads within range
                self.journal_entry = Some(Command::Expression {
                    participant,
                    kind,
                    value,
                });
            }
            Some(_) => self.refuse(command, Refusal::OutOfRange),
            None => self.refuse(command, Refusal::UnknownParticipant),
        }
    }

    /// Sets the room's offset of a parameter (for some voices, if it is per voice), clamped
    /// to ± the parameter's span. Audio thread.
    #[inline]
    fn set_room_param(&mut self, param: u8, voices: VoiceSelector, value: f32, command: Command) {
        match Param::ALL.get(param as usize) {
            Some(&(p, _, low, high, _))
                if value.is_finite() && (p.is_per_voice() || voices == VoiceSelector::All) =>
            {
                let span = high - low;
                let value = value.clamp(-span, span);
                *self.room_params.slot(voices, p) = value;
                // journaled as applied, so a recording re-reads within range
                self.journal_entry = Some(Command::RoomParam {
                    param,
                    voices,
                    value,
                });
            }
            _ => self.refuse(command, Refusal::OutOfRange),
        }
    }

    /// Changes the tempo from now on, keeping the beat continuous. Audio thread.
    #[inline]
    fn set_tempo(&mut self, bpm: f32, command: Command) {
        if !(MIN_TEMPO_BPM..=MAX_TEMPO_BPM).contains(&bpm) {
            return self.refuse(command, Refusal::OutOfRange);
        }
        self.tempo_base_beat = self.beat();
        self.tempo_base_time = self.time;
        self.tempo_bpm = bpm as f64;
    }

    fn join(&mut self, id: u32, archetype: Option<u16>, command: Command) {
        if self.find(id).is_some() {
            return self.refuse(command, Refusal::AlreadyPresent);
        }
        if archetype.is_some_and(|a| a as usize >= self.cfg.archetypes.len()) {
            return self.refuse(command, Refusal::OutOfRange);
        }
        // the cheap refusal first: a flood of joins at capacity costs little
        if self.present >= self.cfg.capacity {
            return self.refuse(command, Refusal::CapacityReached);
        }
        let Some(slot) = self.free_slot() else {
            return self.refuse(command, Refusal::CapacityReached);
        };
        let archetype = archetype.unwrap_or_else(|| self.balanced_archetype(id));
        let cfg = self.cfg.archetypes[archetype as usize];
        let mut mood = MoodState::new(&self.cfg.dims);
        for d in 0..self.cfg.dims.len() {
            mood.jump(d, self.communal[d]);
        }
        mood.set = [false; MAX_DIMS];
        let beat = self.beat();
        let sr = self.cfg.sample_rate;
        let seed = self.cfg.seed;
        let mut params = self.communal_params;
        add_offsets(
            &mut params,
            &self.room_params.selected(cfg.role, cfg.timbre),
        );
        self.participants[slot].start(id, archetype, cfg, seed, mood, params, beat, sr);
        self.present += 1;
        self.present_ids[slot] = Some(id);
        self.present_per_archetype[archetype as usize] += 1;
        self.journal_entry = Some(Command::Join {
            participant: id,
            archetype: Some(archetype),
        });
        let notice = Notice::Joined {
            participant: id,
            archetype,
            at_sample: self.time,
        };
        self.notify(notice);
    }

    /// A slot for a newcomer: an empty one, else (fewer present than the capacity, every
    /// slot still holding a voice that fades after its participant left) the one that has
    /// faded longest, cut short: fading voices never keep a newcomer out, so a sender that
    /// joins and leaves fast cannot fill the room. O(capacity), no allocation.
    fn free_slot(&mut self) -> Option<usize> {
        if let Some(slot) = self.participants.iter().position(|p| !p.active) {
            return Some(slot);
        }
        let slot = (0..self.participants.len())
            .filter(|&i| self.participants[i].leaving)
            .min_by_key(|&i| self.left_at[i])?;
        let cut = &mut self.cut_lanes;
        self.participants[slot].cut_short(&mut self.pool, self.cut_fade_coef, |lane| {
            let room = cut.len() < cut.capacity();
            if room {
                cut.push(lane);
            }
            room
        });
        Some(slot)
    }

    /// Frees the lanes of voices cut short once they are silent. Real-time safe.
    fn free_cut_lanes(&mut self) {
        let pool = &mut self.pool;
        self.cut_lanes.retain(|&lane| {
            let silent = pool.env(lane) <= 0.0;
            if silent {
                pool.free(lane);
            }
            !silent
        });
    }

    /// The archetype whose role and register are least represented, ties broken by a hash
    /// of the participant's id so the choice is deterministic. Counts participants per
    /// archetype (every participant of an archetype has its register), so the cost does not
    /// grow with the number present.
    fn balanced_archetype(&self, id: u32) -> u16 {
        const ROLE_SHARE: [(Role, f32); 4] = [
            (Role::Bass, 0.15),
            (Role::Harmony, 0.35),
            (Role::Melody, 0.3),
            (Role::Texture, 0.2),
        ];
        let mut best = 0u16;
        let mut best_score = f32::INFINITY;
        let archetypes = &self.cfg.archetypes;
        for (a, arch) in archetypes.iter().enumerate() {
            let share = ROLE_SHARE
                .iter()
                .find(|(r, _)| *r == arch.role)
                .map_or(0.25, |s| s.1);
            let same_role_archetypes =
                archetypes.iter().filter(|x| x.role == arch.role).count() as f32;
            let same = self.present_per_archetype[a] as f32;
            let mut near_register = 0.0;
            let centre = (arch.register_low as f32 + arch.register_high as f32) * 0.5;
            for (c, present) in archetypes.iter().zip(&self.present_per_archetype) {
                let pc = (c.register_low as f32 + c.register_high as f32) * 0.5;
                if (pc - centre).abs() < 7.0 {
                    near_register += *present as f32;
                }
            }
            let tie = Rng::derive(id as u64, a as u64).next_f32() * 0.01;
            let score = (same + 1.0) / (share / same_role_archetypes) + 0.5 * near_register + tie;
            if score < best_score {
                best_score = score;
                best = a as u16;
            }
        }
        best
    }

    fn refuse(&mut self, command: Command, reason: Refusal) {
        self.journal_entry = None;
        self.status.refused_messages.fetch_add(1, Ordering::Relaxed);
        self.status.refused_by_reason[reason.index()].fetch_add(1, Ordering::Relaxed);
        self.notify(Notice::Refused {
            command,
            reason,
            at_sample: self.time,
        });
    }

    fn notify(&mut self, notice: Notice) {
        if self.notice_tx.get_mut().push(notice).is_err() {
            self.status.dropped_notices.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn control_tick(&mut self) {
        if !self.cut_lanes.is_empty() {
            self.free_cut_lanes();
        }
        let tick = self.time / CONTROL_PERIOD;
        self.update_mood();
        let reverb_target = (self.communal_params[Param::ReverbMix.index()]
            + self.cfg.sections[self.section as usize].reverb)
            .clamp(0.0, 1.0);
        self.reverb_mix += (reverb_target - self.reverb_mix) * self.reverb_coef;
        self.reverb_width = self.communal_params[Param::StereoWidth.index()];
        self.master.set_reverb_width(self.reverb_width);
        // bar lines: cues and mood-driven transitions
        let beats_per_bar = self.cfg.beats_per_bar.max(1) as f64;
        let bar = (self.beat() / beats_per_bar).floor() as u64;
        if bar != self.bar {
            self.bar = bar;
            self.bar_line();
        }
        self.update_chord();
        let ctx = self.score_context();
        let communal_params = self.communal_params;
        let individuality = self.cfg.individuality;
        let unity = self.cfg.core.unity as usize;
        let unity_norm = self.normalized(unity, self.communal[unity]);
        let voice_smoothing = self.smoothing_for(VOICE_UPDATE_TICKS);
        let mut present = 0;
        for (i, p) in self.participants.iter_mut().enumerate() {
            if !p.active {
                continue;
            }
            let full = (tick + i as u64).is_multiple_of(VOICE_UPDATE_TICKS);
            if full && !p.leaving {
                p.mood.advance(&voice_smoothing, VOICE_UPDATE_TICKS as u32);
                let weight = individuality * (1.0 - unity_norm);
                let mut voice_mood = self.communal;
                for ((v, own), communal) in
                    voice_mood.iter_mut().zip(&p.mood.value).zip(&self.communal)
                {
                    *v += weight * (own - communal);
                }
                let mut params =
                    self.voice_memos[i].evaluate(&voice_mood, &self.cfg.dims, &self.cfg.mappings);
                let c = p.config();
                add_offsets(&mut params, &self.room_params.voice(c.role, c.timbre));
                // ensemble-wide parameters stay communal
                params[Param::StereoWidth.index()] = communal_params[Param::StereoWidth.index()];
                params[Param::ReverbMix.index()] = communal_params[Param::ReverbMix.index()];
                p.params = params;
                let inputs = &mut self.voice_inputs[i];
                for (d, (n, v)) in inputs.mood.iter_mut().zip(&voice_mood).enumerate() {
                    *n = normalized(&self.cfg.dims, d, *v);
                }
            }
            if p.control_tick(&ctx, full, &mut self.pool) && !p.leaving {
                present += 1;
            }
            let inputs = &mut self.voice_inputs[i];
            (inputs.bend, inputs.vibrato, inputs.brightness) = p.expression();
        }
        debug_assert!(present <= self.present);
        self.tick_instruments(&ctx);
    }

    /// The designed instruments' control tick, after every participant's.
    fn tick_instruments(&mut self, ctx: &ScoreContext) {
        let mut communal = [0.0; MAX_DIMS];
        for (d, c) in communal.iter_mut().enumerate() {
            *c = normalized(&self.cfg.dims, d, self.communal[d]);
        }
        let sections = self.cfg.sections.len().max(2) - 1;
        let shared = instrument::rack::TickInputs {
            communal,
            beat_phase: ctx.beat.fract() as f32,
            bar_phase: (ctx.beat / ctx.beats_per_bar.max(1.0)).fract() as f32,
            section: self.section as f32 / sections as f32,
        };
        self.rack.tick(&mut self.pool, &shared, &self.voice_inputs);
    }

    fn smoothing_for(&self, ticks: u64) -> [f32; MAX_DIMS] {
        let mut c = [0.0; MAX_DIMS];
        for (o, s) in c.iter_mut().zip(self.smoothing.iter()) {
            *o = 1.0 - (1.0 - s).powi(ticks as i32);
        }
        c
    }

    fn normalized(&self, dim: usize, v: f32) -> f32 {
        normalized(&self.cfg.dims, dim, v)
    }

    #[allow(clippy::needless_range_loop)] // parallel per-dimension arrays
    fn update_mood(&mut self) {
        let one = self.smoothing;
        self.conductor.advance(&one, 1);
        self.room.advance(&one, 1);
        let room_weight = self.cfg.room_weight;
        for d in 0..self.cfg.dims.len() {
            let target = if self.conductor.set[d] {
                self.conductor.ramp_value(d)
            } else {
                self.scratch.clear();
                for p in self.participants.iter().filter(|p| p.active && !p.leaving) {
                    self.scratch.push(p.mood.value[d]);
                }
                let crowd = self.crowd_centers[d]
                    .of(&mut self.scratch)
                    .unwrap_or(self.cfg.dims[d].default);
                if self.room.set[d] {
                    crowd + room_weight * (self.room.value[d] - crowd)
                } else {
                    crowd
                }
            };
            self.communal[d] += (target - self.communal[d]) * one[d];
        }
        self.communal_params =
            self.communal_memo
                .evaluate(&self.communal, &self.cfg.dims, &self.cfg.mappings);
        add_offsets(&mut self.communal_params, &self.room_params.all);
    }

    fn bar_line(&mut self) {
        let bars_in = self.bar - self.section_start_bar;
        let next = self.cued.take().or_else(|| {
            self.cfg.transitions.iter().find_map(|t| {
                let from_ok = t.from.is_none_or(|f| f == self.section);
                let conditions = &t.conditions[..t.condition_count as usize];
                let holds = conditions.iter().all(|c| {
                    let v = self.communal[c.dim as usize];
                    match c.comparison {
                        Comparison::Above => v > c.threshold,
                        Comparison::Below => v < c.threshold,
                    }
                });
                (from_ok && t.to != self.section && bars_in >= t.min_bars as u64 && holds)
                    .then_some(t.to)
            })
        });
        if let Some(section) = next {
            self.section = section;
            self.section_start_bar = self.bar;
            self.notify(Notice::SectionChanged {
                section,
                bar: self.bar,
                at_sample: self.time,
            });
        }
    }

    fn update_chord(&mut self) {
        let section = &self.cfg.sections[self.section as usize];
        let bars_in = self.bar.saturating_sub(self.section_start_bar);
        let index =
            (bars_in / section.bars_per_chord.max(1) as u64) % section.chord_count.max(1) as u64;
        let darkness = self.communal_params[Param::Darkness.index()];
        let chord = darker(&section.chords[index as usize], darkness);
        if chord != self.chord {
            self.chord = chord;
            self.chord_serial = self.chord_serial.wrapping_add(1);
        }
    }

    fn publish_status(&self) {
        let s = &self.status;
        s.sample_position.store(self.time, Ordering::Relaxed);
        s.section.store(self.section as u32, Ordering::Relaxed);
        s.bar.store(self.bar, Ordering::Relaxed);
        s.participants.store(self.present as u32, Ordering::Relaxed);
        s.peak_left
            .store(self.block_peak.0.to_bits(), Ordering::Relaxed);
        s.peak_right
            .store(self.block_peak.1.to_bits(), Ordering::Relaxed);
        s.momentary_lufs
            .store(self.master.momentary_lufs().to_bits(), Ordering::Relaxed);
        for (cell, v) in s.mood.iter().zip(self.communal.iter()) {
            cell.store(v.to_bits(), Ordering::Relaxed);
        }
        s.tempo_bpm
            .store((self.tempo_bpm as f32).to_bits(), Ordering::Relaxed);
        let beats_per_bar = self.cfg.beats_per_bar.max(1) as f64;
        let beat_in_bar = (self.beat() - self.bar as f64 * beats_per_bar).max(0.0) as f32;
        s.beat_in_bar
            .store(beat_in_bar.to_bits(), Ordering::Relaxed);
        s.chord
            .store(Status::pack_chord(&self.chord), Ordering::Relaxed);
    }

    /// Designed-instrument voices sounding, and lane starts that found their instrument's
    /// voices all busy (they stayed silent).
    pub fn instrument_load(&self) -> (usize, u64) {
        (self.rack.voices_in_use(), self.rack.starved())
    }

    /// Voice lanes sounding and 8-lane chunks being computed.
    pub fn voice_load(&self) -> (usize, usize) {
        (self.pool.lanes_in_use(), self.pool.chunks_in_use())
    }

    /// Latency of the master bus in frames (the limiter's look-ahead).
    pub fn latency_frames(&self) -> usize {
        self.master.latency_frames()
    }

    /// The status block shared with controllers.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }
}

/// A value only ever reached through `&mut`: sharing `&Exclusive<T>` between threads gives
/// access to nothing, so it is `Sync` whenever `T` is `Send` (the reasoning of the standard
/// library's unstable `Exclusive` and of the `sync_wrapper` crate). The engine keeps its ring
/// ends (single-producer, single-consumer, not `Sync`) in it and so stays `Sync` for hosts
/// that park it in a shared cell, as `play` does to take it back from a dead stream.
struct Exclusive<T>(T);

impl<T> Exclusive<T> {
    fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// SAFETY: `Exclusive` has no method taking `&self`; its contents are reached only through
// `&mut Exclusive`, which is unique, so no two threads ever touch them at once.
unsafe impl<T: Send> Sync for Exclusive<T> {}

/// Sets flush-to-zero and denormals-are-zero for the duration of a block (x86-64), so
/// decaying tails never fall into slow denormal arithmetic, and restores the caller's mode.
struct DenormalGuard {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl DenormalGuard {
    #[allow(deprecated)]
    fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading and writing MXCSR only changes floating-point modes of this thread.
            unsafe {
                let saved = std::arch::x86_64::_mm_getcsr();
                std::arch::x86_64::_mm_setcsr(saved | 0x8040);
                Self { saved }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for DenormalGuard {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the mode saved in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        }
    }
}

/// The room's parameter offsets: for every voice, and per role and per timbre.
#[derive(Clone, Copy, Default)]
struct RoomOffsets {
    all: [f32; Param::COUNT],
    role: [[f32; Param::COUNT]; Role::COUNT],
    timbre: [[f32; Param::COUNT]; Timbre::COUNT],
}

impl RoomOffsets {
    fn slot(&mut self, voices: VoiceSelector, param: Param) -> &mut f32 {
        let offsets = match voices {
            VoiceSelector::All => &mut self.all,
            VoiceSelector::Role(r) => &mut self.role[r.index()],
            VoiceSelector::Timbre(t) => &mut self.timbre[t.index()],
        };
        &mut offsets[param.index()]
    }

    /// The offsets only voices of this role and timbre get.
    fn selected(&self, role: Role, timbre: Timbre) -> [f32; Param::COUNT] {
        let mut out = self.role[role.index()];
        for (o, t) in out.iter_mut().zip(&self.timbre[timbre.index()]) {
            *o += t;
        }
        out
    }

    /// Everything a voice of this role and timbre gets.
    fn voice(&self, role: Role, timbre: Timbre) -> [f32; Param::COUNT] {
        let mut out = self.selected(role, timbre);
        for (o, a) in out.iter_mut().zip(&self.all) {
            *o += a;
        }
        out
    }
}

/// A mood value on its dimension's range, 0..1 (0.5 for a dimension the patch lacks).
fn normalized(dims: &[config::MoodDimConfig], dim: usize, v: f32) -> f32 {
    dims.get(dim).map_or(0.5, |d| {
        ((v - d.min) / (d.max - d.min).max(1e-9)).clamp(0.0, 1.0)
    })
}

/// Adds the room's parameter offsets and keeps every parameter in its legal range.
fn add_offsets(params: &mut [f32; Param::COUNT], offsets: &[f32; Param::COUNT]) {
    for ((p, o), spec) in params.iter_mut().zip(offsets).zip(Param::ALL.iter()) {
        *p = (*p + o).clamp(spec.2, spec.3);
    }
}
