//! [`MidiLearn`]: watch what a performer plays and moves, print `[midi]` lines for it that
//! merge into the patch's own `[midi]` section.

use std::fmt::Write;

use super::map::MidiMap;
use super::parser::MidiEvent;

/// The mod wheel's coarse and fine controller numbers: on a participant's channel they
/// drive the map's `mod_wheel`, so learn leaves them there.
const MOD_WHEEL_CCS: [u8; 2] = [1, 33];

/// One controller seen, with the values it took.
#[derive(Clone, Copy, Debug)]
struct SeenControl {
    channel: u8,
    cc: u8,
    low: u8,
    high: u8,
}

/// MIDI-learn mode: collects the channels notes are played on and the controllers moved,
/// in the order first seen, and prints TOML to paste into a patch
/// ([`MidiLearn::mapping_lines`]).
///
/// Made with [`MidiLearn::for_map`], it learns only what the patch's `[midi]` section does
/// not map yet, so the lines merge into it and the patch still passes `check`: channels
/// that already play a participant are not proposed again, new participants get ids above
/// the patch's, notes and program changes on the conductor channel become (commented-out)
/// cues and never participants, and controllers on the conductor channel target the
/// conductor. Controllers the patch maps already are left out, and so is the mod wheel on a
/// participant's channel (it drives the patch's `mod_wheel` there).
///
/// The lines parse as they are in any patch (every patch has an `energy` dimension); each
/// `[[midi.controls]]` block names `energy` as a placeholder to replace. A controller on a
/// participant's channel targets that participant, others the conductor (communal mood).
/// Channel-mode controllers (120..=127) are left out.
#[derive(Clone, Debug)]
pub struct MidiLearn {
    map: MidiMap,
    /// The first id a learned participant gets.
    first_id: u32,
    note_channels: Vec<u8>,
    controls: Vec<SeenControl>,
    programs: Vec<(u8, u8)>,
    cue_notes: Vec<u8>,
    /// Events the patch maps already (not learned).
    known: u64,
}

impl Default for MidiLearn {
    fn default() -> Self {
        Self::new()
    }
}

impl MidiLearn {
    /// Nothing seen yet, for a patch without a `[midi]` section.
    pub fn new() -> Self {
        Self::for_map(&MidiMap::default())
    }

    /// Nothing seen yet, for a patch whose `[midi]` section resolved to `map`: learns only
    /// what `map` leaves unmapped.
    pub fn for_map(map: &MidiMap) -> Self {
        let highest = map.participants.iter().map(|p| p.participant).max();
        Self {
            map: map.clone(),
            first_id: highest.map_or(1, |id| id.saturating_add(1)),
            note_channels: Vec::new(),
            controls: Vec::new(),
            programs: Vec::new(),
            cue_notes: Vec::new(),
            known: 0,
        }
    }

    /// Takes note of an event that arrived on `port`.
    pub fn observe(&mut self, port: &str, event: MidiEvent) {
        let conductor = event.channel().is_some() && event.channel() == self.map.conductor_channel;
        match event {
            MidiEvent::NoteOn { key, .. } if conductor => {
                if self.cues_note(key) {
                    self.known += 1;
                } else if !self.cue_notes.contains(&key) {
                    self.cue_notes.push(key);
                }
            }
            MidiEvent::NoteOn { channel, .. } => {
                if self.map.participant(port, channel).is_some() {
                    self.known += 1;
                } else if !self.note_channels.contains(&channel) {
                    self.note_channels.push(channel);
                }
            }
            MidiEvent::ControlChange {
                channel,
                controller,
                value,
            } if controller < 120 => self.control(port, channel, controller, value),
            MidiEvent::ProgramChange { channel, program } => {
                if conductor && self.cues_program(program) {
                    self.known += 1;
                } else if !self.programs.contains(&(channel, program)) {
                    self.programs.push((channel, program));
                }
            }
            _ => {}
        }
    }

    fn control(&mut self, port: &str, channel: u8, cc: u8, value: u8) {
        let mapped = self
            .map
            .controls
            .iter()
            .any(|c| c.matches(port, channel, cc));
        let wheel = MOD_WHEEL_CCS.contains(&cc)
            && self.map.mod_wheel.is_some()
            && (self.map.participant(port, channel).is_some()
                || self.note_channels.contains(&channel));
        if mapped || wheel {
            self.known += 1;
            return;
        }
        match self
            .controls
            .iter_mut()
            .find(|c| c.channel == channel && c.cc == cc)
        {
            Some(c) => {
                c.low = c.low.min(value);
                c.high = c.high.max(value);
            }
            None => self.controls.push(SeenControl {
                channel,
                cc,
                low: value,
                high: value,
            }),
        }
    }

    fn cues_note(&self, key: u8) -> bool {
        self.map
            .cues
            .iter()
            .any(|c| c.trigger == super::CueTrigger::Note(key))
    }

    fn cues_program(&self, program: u8) -> bool {
        self.map
            .cues
            .iter()
            .any(|c| c.trigger == super::CueTrigger::Program(program))
    }

    /// Whether anything worth a mapping line was seen.
    pub fn is_empty(&self) -> bool {
        self.note_channels.is_empty()
            && self.controls.is_empty()
            && self.programs.is_empty()
            && self.cue_notes.is_empty()
    }

    /// Whether a channel plays a participant: in the patch (from any port) or learned.
    fn has_participant(&self, channel: u8) -> bool {
        self.note_channels.contains(&channel)
            || self
                .map
                .participants
                .iter()
                .any(|p| p.channel.is_none_or(|c| c == channel))
    }

    /// TOML lines for everything seen that the patch does not map yet, to paste at the end
    /// of the patch. New participants are numbered from above the patch's highest id (from 1
    /// without one) in the order their channels were first played.
    pub fn mapping_lines(&self) -> String {
        let mut s = String::new();
        if self.known > 0 {
            let _ = writeln!(
                s,
                "# MIDI learn: {} events were mapped by the patch already (not repeated here)",
                self.known
            );
        }
        if self.is_empty() {
            s.push_str("# MIDI learn: no unmapped notes, controllers or program changes seen\n");
            return s;
        }
        self.participant_lines(&mut s);
        self.control_lines(&mut s);
        self.cue_lines(&mut s);
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }

    fn participant_lines(&self, s: &mut String) {
        for (i, channel) in self.note_channels.iter().enumerate() {
            let _ = write!(
                s,
                "[[midi.participants]]\n\
                 channel = {}\n\
                 participant = {}\n\
                 # archetype = \"…\"         # optional: joins with this archetype on the first note\n\n",
                channel + 1,
                self.first_id.saturating_add(i as u32)
            );
        }
    }

    fn control_lines(&self, s: &mut String) {
        for c in &self.controls {
            let conductor = Some(c.channel) == self.map.conductor_channel;
            let (target, other) = if !conductor && self.has_participant(c.channel) {
                ("participant", "      # or \"conductor\" (communal mood)")
            } else if conductor {
                (
                    "conductor",
                    "        # the conductor channel: communal mood",
                )
            } else {
                (
                    "conductor",
                    "        # or \"participant\" (the channel's participant)",
                )
            };
            let moved = if c.low == c.high {
                format!("seen at {}", c.low)
            } else {
                format!("moved over {}..{}", c.low, c.high)
            };
            let _ = write!(
                s,
                "[[midi.controls]]           # {moved}\n\
                 channel = {}\n\
                 cc = {}\n\
                 dimension = \"energy\"        # placeholder: the mood dimension it drives\n\
                 target = \"{target}\"{other}\n\n",
                c.channel + 1,
                c.cc,
            );
        }
    }

    fn cue_lines(&self, s: &mut String) {
        let conductor = self.map.conductor_channel;
        for key in &self.cue_notes {
            let _ = write!(
                s,
                "# note {key} on the conductor channel: as a cue\n\
                 # [[midi.cues]]\n\
                 # note = {key}\n\
                 # section = \"…\"\n\n",
            );
        }
        for (channel, program) in &self.programs {
            let need = match conductor {
                Some(c) if c == *channel => "the conductor channel".to_string(),
                Some(c) => format!("cues are taken on the conductor channel, {}", c + 1),
                None => format!("needs conductor_channel = {} in [midi]", channel + 1),
            };
            let _ = write!(
                s,
                "# program change {program} on channel {}: as a cue ({need})\n\
                 # [[midi.cues]]\n\
                 # program = {program}\n\
                 # section = \"…\"\n\n",
                channel + 1,
            );
        }
    }
}
