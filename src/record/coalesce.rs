//! Coalescing continuous changes per control tick, exactly.
//!
//! The engine applies a message at its sample but reads moods, expressive controls and room
//! parameters only at its control ticks (every [`CONTROL_PERIOD`] samples; messages due on
//! a tick's sample apply just before it). Between two ticks a later change to the same
//! target can therefore make an earlier one vanish without a trace:
//!
//! - a jump (a mood with no ramp, an expressive control, a room parameter) overwrites
//!   everything an earlier change to that target set;
//! - a ramp overwrites an earlier ramp to that target (both start from the same unchanged
//!   ramp value), but not a jump before it, whose value it starts from.
//!
//! Discrete events are kept exactly. A join, cue, tempo change or release may read any state,
//! so nothing before it merges with anything after it; a leave seals its participant's
//! changes. Notes are not barriers: starting or ending a note reads only what the last
//! control tick computed. The kept changes stay at their own samples and in their order, so
//! the recording re-renders bit for bit (the record → re-render tests prove it under floods).
//! Between barriers a recording thus holds at most two changes (a jump and a ramp) per target
//! per control tick.

use std::collections::HashMap;

use crate::control::{Command, MoodTarget, VoiceSelector};
use crate::engine::config::{Role, Timbre};
use crate::engine::{Applied, CONTROL_PERIOD};

/// The control tick before which a command at `sample` is read.
fn window(sample: u64) -> u64 {
    sample.div_ceil(CONTROL_PERIOD)
}

/// What a change sets: kind and target, packed.
type Target = (u8, u64);

/// How a command relates to the ones before it in its window.
enum Class {
    /// Overwrites every earlier change to its target.
    Jump(Target),
    /// Overwrites earlier ramps to its target back to the last jump.
    Ramp(Target),
    /// A ramp whose length in ticks is not known (no sample rate): merges with nothing.
    Kept(Target),
    /// A discrete event: nothing of this participant (or of anyone, `None`) before it
    /// merges with anything after it.
    Barrier(Option<u32>),
    /// A discrete event that reads no state a change sets before the next tick.
    Apart,
}

/// What is alive of one target in the current window.
#[derive(Default)]
struct Alive {
    /// Indices (in the window) of its changes still to be written.
    kept: Vec<usize>,
    /// The ramp that a later ramp would overwrite.
    ramp: Option<usize>,
}

/// Holds the commands of the control tick in progress and drops those the engine overwrote
/// before reading them.
pub struct Coalescer {
    /// Samples per second, to tell a ramp from a jump as the engine does.
    sample_rate: Option<u32>,
    window: u64,
    pending: Vec<Option<Applied>>,
    alive: HashMap<Target, Alive>,
    coalesced: u64,
}

impl Coalescer {
    /// A coalescer; without a sample rate, ramps are kept as applied.
    pub fn new(sample_rate: Option<u32>) -> Coalescer {
        Coalescer {
            sample_rate,
            window: 0,
            pending: Vec::new(),
            alive: HashMap::new(),
            coalesced: 0,
        }
    }

    /// Changes left out so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// Takes the next applied command (in the engine's order); commands of windows that are
    /// over are appended to `out`.
    pub fn push(&mut self, applied: Applied, out: &mut Vec<Applied>) {
        let w = window(applied.sample);
        if w != self.window {
            self.close(out);
            self.window = w;
        }
        let index = self.pending.len();
        self.pending.push(Some(applied));
        match self.class(&applied.command) {
            Class::Barrier(None) => self.alive.clear(),
            Class::Barrier(Some(p)) => self.alive.retain(|t, _| participant(*t) != Some(p)),
            Class::Apart => {}
            Class::Jump(t) => {
                let alive = self.alive.entry(t).or_default();
                for i in alive.kept.drain(..) {
                    self.pending[i] = None;
                    self.coalesced += 1;
                }
                alive.kept.push(index);
                alive.ramp = None;
            }
            Class::Ramp(t) => {
                let alive = self.alive.entry(t).or_default();
                if let Some(i) = alive.ramp.take() {
                    alive.kept.retain(|&k| k != i);
                    self.pending[i] = None;
                    self.coalesced += 1;
                }
                alive.kept.push(index);
                alive.ramp = Some(index);
            }
            Class::Kept(t) => {
                let alive = self.alive.entry(t).or_default();
                alive.kept.push(index);
                alive.ramp = None;
            }
        }
    }

    /// Appends the window in progress to `out` if the engine, at `position`, has passed its
    /// control tick (nothing more can arrive for it).
    pub fn close_before(&mut self, position: u64, out: &mut Vec<Applied>) {
        if self.window * CONTROL_PERIOD < position {
            self.close(out);
        }
    }

    /// Appends the window in progress to `out` (its commands are final from here on).
    pub fn close(&mut self, out: &mut Vec<Applied>) {
        out.extend(self.pending.drain(..).flatten());
        self.alive.clear();
    }

    fn class(&self, command: &Command) -> Class {
        match *command {
            Command::Mood {
                target,
                dim,
                ramp_secs,
                ..
            } => {
                let who = match target {
                    MoodTarget::Participant(p) => u64::from(p),
                    MoodTarget::Communal => 1 << 32,
                    MoodTarget::Room => 2 << 32,
                };
                let t = (0, who << 8 | u64::from(dim));
                match self.sample_rate {
                    _ if ramp_secs == 0.0 => Class::Jump(t),
                    Some(sr) if ramp_ticks(ramp_secs, sr) == 0 => Class::Jump(t),
                    Some(_) => Class::Ramp(t),
                    None => Class::Kept(t),
                }
            }
            Command::Expression {
                participant, kind, ..
            } => Class::Jump((1, u64::from(participant) << 8 | kind as u64)),
            Command::RoomParam { param, voices, .. } => {
                Class::Jump((2, u64::from(param) << 16 | selector(voices)))
            }
            Command::Leave { participant } => Class::Barrier(Some(participant)),
            Command::NoteOn { .. } | Command::NoteOff { .. } => Class::Apart,
            Command::Join { .. }
            | Command::ReleaseCommunal { .. }
            | Command::Cue { .. }
            | Command::Tempo { .. } => Class::Barrier(None),
        }
    }
}

/// Ticks of a mood ramp, as `Engine::apply` counts them (0: the engine jumps).
fn ramp_ticks(ramp_secs: f32, sample_rate: u32) -> u32 {
    (ramp_secs.clamp(0.0, 3600.0) * sample_rate as f32 / CONTROL_PERIOD as f32) as u32
}

/// The participant whose state a target is, if any.
fn participant((kind, key): Target) -> Option<u32> {
    let who = key >> 8;
    match kind {
        0 if who < 1 << 32 => Some(who as u32),
        1 => Some(who as u32),
        _ => None,
    }
}

fn selector(voices: VoiceSelector) -> u64 {
    let index = |found: Option<usize>| found.map_or(0xFF, |i| i as u64);
    match voices {
        VoiceSelector::All => 0,
        VoiceSelector::Role(r) => 1 << 8 | index(Role::ALL.iter().position(|x| x.0 == r)),
        VoiceSelector::Timbre(t) => 2 << 8 | index(Timbre::ALL.iter().position(|x| x.0 == t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Expression;

    fn mood(sample: u64, p: u32, value: f32, ramp_secs: f32) -> Applied {
        Applied {
            sample,
            command: Command::Mood {
                target: MoodTarget::Participant(p),
                dim: 0,
                value,
                ramp_secs,
            },
        }
    }

    fn run(commands: &[Applied]) -> Vec<Applied> {
        let mut c = Coalescer::new(Some(48_000));
        let mut out = Vec::new();
        for a in commands {
            c.push(*a, &mut out);
        }
        c.close(&mut out);
        out
    }

    #[test]
    fn a_jump_overwrites_earlier_changes_within_a_tick_only() {
        // samples 1..=32 are read at the tick on 32; 33 at the tick on 64
        let out = run(&[
            mood(1, 1, 0.1, 0.0),
            mood(20, 1, 0.2, 1.0),
            mood(32, 1, 0.3, 0.0),
            mood(33, 1, 0.4, 0.0),
        ]);
        assert_eq!(out, vec![mood(32, 1, 0.3, 0.0), mood(33, 1, 0.4, 0.0)]);
    }

    #[test]
    fn a_ramp_keeps_the_jump_it_starts_from() {
        let out = run(&[
            mood(1, 1, 0.1, 0.0),
            mood(2, 1, 0.2, 1.0),
            mood(3, 1, 0.3, 2.0),
        ]);
        assert_eq!(out, vec![mood(1, 1, 0.1, 0.0), mood(3, 1, 0.3, 2.0)]);
        // a ramp too short for one tick is a jump to the engine
        let out = run(&[
            mood(1, 1, 0.1, 1.0),
            mood(2, 1, 0.2, 0.0001),
            mood(3, 1, 0.3, 1.0),
        ]);
        assert_eq!(out, vec![mood(2, 1, 0.2, 0.0001), mood(3, 1, 0.3, 1.0)]);
    }

    #[test]
    fn discrete_events_are_barriers_and_other_targets_are_apart() {
        let leave = Applied {
            sample: 5,
            command: Command::Leave { participant: 1 },
        };
        let bend = |sample, value| Applied {
            sample,
            command: Command::Expression {
                participant: 2,
                kind: Expression::PitchBend,
                value,
            },
        };
        let out = run(&[
            mood(1, 1, 0.1, 0.0),
            bend(2, 1.0),
            leave,
            mood(6, 1, 0.2, 0.0),
            bend(7, 2.0),
        ]);
        assert_eq!(
            out,
            vec![
                mood(1, 1, 0.1, 0.0),
                leave,
                mood(6, 1, 0.2, 0.0),
                bend(7, 2.0)
            ]
        );
        let out = run(&[
            mood(1, 2, 0.1, 0.0),
            mood(2, 3, 0.2, 0.0),
            mood(3, 2, 0.3, 0.0),
        ]);
        assert_eq!(out, vec![mood(2, 3, 0.2, 0.0), mood(3, 2, 0.3, 0.0)]);
        let note = Applied {
            sample: 8,
            command: Command::NoteOn {
                participant: 1,
                pitch: 60,
                velocity: 90,
            },
        };
        let out = run(&[mood(1, 1, 0.1, 0.0), note, mood(9, 1, 0.2, 0.0)]);
        assert_eq!(out, vec![note, mood(9, 1, 0.2, 0.0)]);
    }
}
