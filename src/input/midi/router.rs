//! [`MidiRouter`]: MIDI events to engine commands through a [`MidiMap`].

use std::collections::{HashMap, HashSet};

use super::map::{ControlTarget, CueTrigger, MidiMap};
use super::parser::MidiEvent;
use crate::control::{Command, Expression, MoodTarget, ParticipantId};

/// The mod wheel's controller number (coarse part).
const MOD_WHEEL: u8 = 1;
/// The mod wheel's fine part (LSB).
const MOD_WHEEL_LSB: u8 = 33;
/// "Reset all controllers": the wheels go back to rest.
const RESET_ALL_CONTROLLERS: u8 = 121;

/// Where a participant's wheels stand, kept across joins: a bend held before the first note
/// applies to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Wheels {
    /// Pitch bend, -8192..=8191.
    bend: i16,
    /// Mod wheel coarse (CC 1) and fine (CC 33) parts.
    mod_msb: u8,
    mod_lsb: u8,
    /// Whether the controller sends the fine part (then the wheel has 14 bits).
    fine: bool,
}

impl Wheels {
    /// The mod wheel's position, 0..=1.
    fn modulation(&self) -> f32 {
        if self.fine {
            ((self.mod_msb as u16) << 7 | self.mod_lsb as u16) as f32 / 16383.0
        } else {
            self.mod_msb as f32 / 127.0
        }
    }
}

/// Whether an event is tallied in [`RouterStats::routed`] or [`RouterStats::ignored`], or
/// (`Skip`) in [`RouterStats::absorbed`]: one only remembered, to be sent with a
/// participant's join, and a cue note's note-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tally {
    Count,
    Skip,
}

/// What a [`MidiRouter`] did with the events it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Events that produced at least one command.
    pub routed: u64,
    /// Joins emitted before a participant's first note.
    pub joins: u64,
    /// Events no mapping covers (unmapped channels and controllers, pressure, clock, …):
    /// the sum of the four `unmapped_*` kinds below.
    pub ignored: u64,
    /// Notes on a channel (or port) no participant route covers, and notes on the conductor
    /// channel that cue nothing.
    pub unmapped_notes: u64,
    /// Control changes no control maps (nor the mod wheel), or a participant control on a
    /// channel without a participant.
    pub unmapped_controllers: u64,
    /// Pitch bends on a channel without a participant.
    pub unmapped_bends: u64,
    /// Program changes that cue nothing, pressure, clock and transport.
    pub unmapped_other: u64,
    /// Events taken in with nothing to send: bends and mod-wheel moves before the
    /// participant's first note (sent with its join), releases of cue notes.
    pub absorbed: u64,
    /// Pitch bends on participant channels (also counted in `routed` once sent).
    pub pitch_bends: u64,
    /// Mod-wheel moves (CC 1 or CC 33) on participant channels (also counted in `routed`
    /// once sent).
    pub mod_wheel: u64,
}

/// Turns [`MidiEvent`]s into [`Command`]s with a patch's [`MidiMap`]. Runs on the thread
/// that receives MIDI (a port callback); the caller sends the commands through a
/// [`Controller`](crate::Controller), stamped as it likes.
///
/// - Notes on a participant's channel (or port) play that participant's voice, harmonized
///   or free as its archetype says. The first note-on joins the participant first (with the
///   route's archetype, or the engine's choice without one); call [`MidiRouter::forget`]
///   when the participant leaves or its join is refused, so the next note joins again.
/// - Control changes set mood dimensions of the channel's participant or of the whole room,
///   scaled into the route's range with a ramp of 0 (the dimension's smoothing on the audio
///   thread, at least 20 ms, takes the steps out).
/// - Notes and program changes on the conductor channel cue sections (note-offs of cue notes
///   are taken quietly).
/// - Pitch bend on a participant's channel bends its voice ([`Expression::PitchBend`], in
///   semitones over the map's `pitch_bend_cents`); the mod wheel (CC 1, refined by CC 33
///   when the controller sends it) drives what the map's `mod_wheel` says, when no control
///   maps that controller on that channel. Before the participant's first note they are
///   only remembered, and sent right after its join, so a bend held into the first note
///   bends it. "Reset all controllers" (CC 121) puts both back to rest.
///
/// Everything else is counted in [`RouterStats::ignored`].
#[derive(Clone, Debug)]
pub struct MidiRouter {
    map: MidiMap,
    joined: HashSet<ParticipantId>,
    wheels: HashMap<ParticipantId, Wheels>,
    stats: RouterStats,
}

impl MidiRouter {
    /// A router for a map (from [`Patch::midi`](crate::Patch::midi)).
    pub fn new(map: MidiMap) -> Self {
        Self {
            map,
            joined: HashSet::new(),
            wheels: HashMap::new(),
            stats: RouterStats::default(),
        }
    }

    /// The map it routes with.
    pub fn map(&self) -> &MidiMap {
        &self.map
    }

    /// What it did so far.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// Forgets that a participant joined: its next note-on emits a join again.
    pub fn forget(&mut self, participant: ParticipantId) {
        self.joined.remove(&participant);
    }

    /// Forgets every join (after the engine was reset, say).
    pub fn forget_all(&mut self) {
        self.joined.clear();
    }

    /// Routes one event that arrived on `port`, handing each resulting command to `out`
    /// in the order the engine must apply them.
    pub fn route(&mut self, port: &str, event: MidiEvent, out: &mut impl FnMut(Command)) {
        let mut emitted = 0usize;
        let mut emit = |c: Command| {
            emitted += 1;
            out(c)
        };
        let channel = event.channel();
        let conductor = channel.is_some() && channel == self.map.conductor_channel;
        let flow = match event {
            MidiEvent::NoteOn { key, .. } | MidiEvent::NoteOff { key, .. } if conductor => {
                let on = matches!(event, MidiEvent::NoteOn { .. });
                self.cue_note(on, key, &mut emit)
            }
            MidiEvent::ProgramChange { program, .. } if conductor => {
                if let Some(section) = self.cue(CueTrigger::Program(program)) {
                    emit(Command::Cue { section });
                }
                Tally::Count
            }
            MidiEvent::NoteOn {
                channel,
                key,
                velocity,
            } => {
                self.note_on(port, channel, key, velocity, &mut emit);
                Tally::Count
            }
            MidiEvent::NoteOff { channel, key, .. } => {
                if let Some(r) = self.map.participant(port, channel) {
                    emit(Command::NoteOff {
                        participant: r.participant,
                        pitch: key,
                    });
                }
                Tally::Count
            }
            MidiEvent::ControlChange {
                channel,
                controller,
                value,
            } => self.control_change(port, channel, controller, value, &mut emit),
            MidiEvent::PitchBend { channel, value } => {
                self.pitch_bend(port, channel, value, &mut emit)
            }
            MidiEvent::ProgramChange { .. }
            | MidiEvent::PolyPressure { .. }
            | MidiEvent::ChannelPressure { .. }
            | MidiEvent::Clock
            | MidiEvent::Start
            | MidiEvent::Continue
            | MidiEvent::Stop => Tally::Count,
        };
        if flow == Tally::Skip {
            self.stats.absorbed += 1;
            return;
        }
        if emitted > 0 {
            self.stats.routed += 1;
        } else {
            self.stats.ignored += 1;
            let kind = match event {
                MidiEvent::NoteOn { .. } | MidiEvent::NoteOff { .. } => {
                    &mut self.stats.unmapped_notes
                }
                MidiEvent::ControlChange { .. } => &mut self.stats.unmapped_controllers,
                MidiEvent::PitchBend { .. } => &mut self.stats.unmapped_bends,
                _ => &mut self.stats.unmapped_other,
            };
            *kind += 1;
        }
    }

    /// A note on the conductor channel: a cue note's note-on cues its section, its note-off
    /// is taken quietly.
    fn cue_note(&self, on: bool, key: u8, emit: &mut impl FnMut(Command)) -> Tally {
        let cue = self.cue(CueTrigger::Note(key));
        match (on, cue) {
            (true, Some(section)) => emit(Command::Cue { section }),
            (false, Some(_)) => return Tally::Skip,
            _ => {}
        }
        Tally::Count
    }

    /// A note-on on a participant's channel: the first one joins the participant and sends
    /// its wheels as they stand, then the note.
    fn note_on(
        &mut self,
        port: &str,
        channel: u8,
        key: u8,
        velocity: u8,
        emit: &mut impl FnMut(Command),
    ) {
        let Some(r) = self.map.participant(port, channel) else {
            return;
        };
        let participant = r.participant;
        if self.joined.insert(participant) {
            self.stats.joins += 1;
            emit(Command::Join {
                participant,
                archetype: r.archetype,
            });
            // the wheels as they stand, before the note
            let wheels = self.wheels.get(&participant).copied().unwrap_or_default();
            if wheels.bend != 0 {
                emit(self.bend(participant, wheels));
            }
            if let (Some(m), true) = (self.map.mod_wheel, wheels.modulation() > 0.0) {
                emit(Command::Expression {
                    participant,
                    kind: m.expression(),
                    value: wheels.modulation(),
                });
            }
        }
        emit(Command::NoteOn {
            participant,
            pitch: key,
            velocity,
        });
    }

    /// A control change: the mood controls it is mapped to, else "reset all controllers"
    /// or the mod wheel of the channel's participant.
    fn control_change(
        &mut self,
        port: &str,
        channel: u8,
        controller: u8,
        value: u8,
        emit: &mut impl FnMut(Command),
    ) -> Tally {
        let participant = self.map.participant(port, channel).map(|r| r.participant);
        let mut mapped = false;
        for c in &self.map.controls {
            if !c.matches(port, channel, controller) {
                continue;
            }
            mapped = true;
            let target = match (c.target, participant) {
                (ControlTarget::Conductor, _) => MoodTarget::Communal,
                (ControlTarget::Participant, Some(p)) => MoodTarget::Participant(p),
                (ControlTarget::Participant, None) => continue,
            };
            emit(Command::Mood {
                target,
                dim: c.dim,
                value: c.value(value),
                ramp_secs: 0.0,
            });
        }
        // the fine part belongs to the mod wheel only while CC 1 is one
        let coarse_mapped = controller == MOD_WHEEL_LSB
            && self
                .map
                .controls
                .iter()
                .any(|c| c.matches(port, channel, MOD_WHEEL));
        if let (Some(p), RESET_ALL_CONTROLLERS) = (participant, controller) {
            self.reset_wheels(p, emit);
        } else if let (false, Some(p), MOD_WHEEL | MOD_WHEEL_LSB) =
            (mapped || coarse_mapped, participant, controller)
        {
            return self.mod_wheel(p, controller, value, emit);
        }
        Tally::Count
    }

    /// "Reset all controllers": the participant's wheels go back to rest.
    fn reset_wheels(&mut self, p: ParticipantId, emit: &mut impl FnMut(Command)) {
        let was = self.wheels.insert(p, Wheels::default()).unwrap_or_default();
        if self.joined.contains(&p) {
            if was.bend != 0 {
                emit(self.bend(p, Wheels::default()));
            }
            if let (Some(m), true) = (self.map.mod_wheel, was.modulation() > 0.0) {
                emit(Command::Expression {
                    participant: p,
                    kind: m.expression(),
                    value: 0.0,
                });
            }
        }
    }

    /// A mod wheel move (coarse or fine part) of a participant, when the map gives the
    /// wheel a use; remembered until the participant joins.
    fn mod_wheel(
        &mut self,
        p: ParticipantId,
        controller: u8,
        value: u8,
        emit: &mut impl FnMut(Command),
    ) -> Tally {
        let Some(m) = self.map.mod_wheel else {
            return Tally::Count;
        };
        self.stats.mod_wheel += 1;
        let w = self.wheels.entry(p).or_default();
        if controller == MOD_WHEEL {
            // a new coarse value starts the fine part from 0 (MIDI 1.0)
            (w.mod_msb, w.mod_lsb) = (value.min(127), 0);
        } else {
            (w.mod_lsb, w.fine) = (value.min(127), true);
        }
        let value = w.modulation();
        if !self.joined.contains(&p) {
            return Tally::Skip; // sent with the join
        }
        emit(Command::Expression {
            participant: p,
            kind: m.expression(),
            value,
        });
        Tally::Count
    }

    /// A pitch bend of a participant; remembered until the participant joins.
    fn pitch_bend(
        &mut self,
        port: &str,
        channel: u8,
        value: i16,
        emit: &mut impl FnMut(Command),
    ) -> Tally {
        if let Some(r) = self.map.participant(port, channel) {
            let p = r.participant;
            self.stats.pitch_bends += 1;
            let w = self.wheels.entry(p).or_default();
            w.bend = value.clamp(-8192, 8191);
            let wheels = *w;
            if !self.joined.contains(&p) {
                return Tally::Skip; // sent with the join
            }
            emit(self.bend(p, wheels));
        }
        Tally::Count
    }

    fn bend(&self, participant: ParticipantId, wheels: Wheels) -> Command {
        Command::Expression {
            participant,
            kind: Expression::PitchBend,
            value: self.map.bend_semitones(wheels.bend),
        }
    }

    fn cue(&self, trigger: CueTrigger) -> Option<u16> {
        self.map
            .cues
            .iter()
            .find(|c| c.trigger == trigger)
            .map(|c| c.section)
    }
}
