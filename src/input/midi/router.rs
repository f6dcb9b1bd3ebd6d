//! [`MidiRouter`]: MIDI events to engine commands through a [`MidiMap`].

use std::collections::HashSet;

use super::map::{ControlTarget, CueTrigger, MidiMap};
use super::parser::MidiEvent;
use crate::control::{Command, MoodTarget, ParticipantId};

/// The mod wheel's controller number.
const MOD_WHEEL: u8 = 1;

/// What a [`MidiRouter`] did with the events it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Events that produced at least one command.
    pub routed: u64,
    /// Joins emitted before a participant's first note.
    pub joins: u64,
    /// Events no mapping covers (unmapped channels and controllers, pressure, clock, …).
    pub ignored: u64,
    /// Pitch bends on participant channels, taken but not yet played (see [`MidiRouter`]).
    pub pitch_bends: u64,
    /// Mod-wheel moves on participant channels, taken but not yet played (see [`MidiRouter`]).
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
/// - Pitch bend and the mod wheel (when no control maps CC 1) are counted but produce no
///   command: the engine has no per-voice expressive input yet. That is the next step; the
///   map already carries `pitch_bend_cents` and `mod_wheel` for it.
///
/// Everything else is counted in [`RouterStats::ignored`].
#[derive(Clone, Debug)]
pub struct MidiRouter {
    map: MidiMap,
    joined: HashSet<ParticipantId>,
    stats: RouterStats,
}

impl MidiRouter {
    /// A router for a map (from [`Patch::midi`](crate::Patch::midi)).
    pub fn new(map: MidiMap) -> Self {
        Self {
            map,
            joined: HashSet::new(),
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
        match event {
            MidiEvent::NoteOn { key, .. } | MidiEvent::NoteOff { key, .. } if conductor => {
                let on = matches!(event, MidiEvent::NoteOn { .. });
                let cue = self.cue(CueTrigger::Note(key));
                match (on, cue) {
                    (true, Some(section)) => emit(Command::Cue { section }),
                    (false, Some(_)) => return,
                    _ => {}
                }
            }
            MidiEvent::ProgramChange { program, .. } if conductor => {
                if let Some(section) = self.cue(CueTrigger::Program(program)) {
                    emit(Command::Cue { section });
                }
            }
            MidiEvent::NoteOn {
                channel,
                key,
                velocity,
            } => {
                if let Some(r) = self.map.participant(port, channel) {
                    let participant = r.participant;
                    if self.joined.insert(participant) {
                        self.stats.joins += 1;
                        emit(Command::Join {
                            participant,
                            archetype: r.archetype,
                        });
                    }
                    emit(Command::NoteOn {
                        participant,
                        pitch: key,
                        velocity,
                    });
                }
            }
            MidiEvent::NoteOff { channel, key, .. } => {
                if let Some(r) = self.map.participant(port, channel) {
                    emit(Command::NoteOff {
                        participant: r.participant,
                        pitch: key,
                    });
                }
            }
            MidiEvent::ControlChange {
                channel,
                controller,
                value,
            } => {
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
                if !mapped
                    && controller == MOD_WHEEL
                    && self.map.mod_wheel.is_some()
                    && participant.is_some()
                {
                    self.stats.mod_wheel += 1;
                    return;
                }
            }
            MidiEvent::PitchBend { channel, .. } => {
                if self.map.participant(port, channel).is_some() {
                    self.stats.pitch_bends += 1;
                    return;
                }
            }
            MidiEvent::ProgramChange { .. }
            | MidiEvent::PolyPressure { .. }
            | MidiEvent::ChannelPressure { .. }
            | MidiEvent::Clock
            | MidiEvent::Start
            | MidiEvent::Continue
            | MidiEvent::Stop => {}
        }
        if emitted > 0 {
            self.stats.routed += 1;
        } else {
            self.stats.ignored += 1;
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
