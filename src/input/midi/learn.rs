//! [`MidiLearn`]: watch what a performer plays and moves, print `[midi]` lines for it.

use std::fmt::Write;

use super::parser::MidiEvent;

/// One controller seen, with the values it took.
#[derive(Clone, Copy, Debug)]
struct SeenControl {
    channel: u8,
    cc: u8,
    low: u8,
    high: u8,
}

/// MIDI-learn mode: collects the channels notes are played on and the controllers moved,
/// in the order first seen, and prints TOML to paste into a patch's `[midi]` section
/// ([`MidiLearn::mapping_lines`]).
///
/// The lines parse as they are in any patch (every patch has an `energy` dimension); each
/// `[[midi.controls]]` block names `energy` as a placeholder to replace. A controller on a
/// channel where notes were also played targets that channel's participant, others the
/// conductor (communal mood). Channel-mode controllers (120..=127) are left out. Program
/// changes are listed as commented-out cues, which need a conductor channel.
#[derive(Clone, Debug, Default)]
pub struct MidiLearn {
    note_channels: Vec<u8>,
    controls: Vec<SeenControl>,
    programs: Vec<(u8, u8)>,
}

impl MidiLearn {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes note of an event.
    pub fn observe(&mut self, event: MidiEvent) {
        match event {
            MidiEvent::NoteOn { channel, .. } if !self.note_channels.contains(&channel) => {
                self.note_channels.push(channel);
            }
            MidiEvent::ControlChange {
                channel,
                controller,
                value,
            } if controller < 120 => {
                match self
                    .controls
                    .iter_mut()
                    .find(|c| c.channel == channel && c.cc == controller)
                {
                    Some(c) => {
                        c.low = c.low.min(value);
                        c.high = c.high.max(value);
                    }
                    None => self.controls.push(SeenControl {
                        channel,
                        cc: controller,
                        low: value,
                        high: value,
                    }),
                }
            }
            MidiEvent::ProgramChange { channel, program }
                if !self.programs.contains(&(channel, program)) =>
            {
                self.programs.push((channel, program));
            }
            _ => {}
        }
    }

    /// Whether anything worth a mapping line was seen.
    pub fn is_empty(&self) -> bool {
        self.note_channels.is_empty() && self.controls.is_empty() && self.programs.is_empty()
    }

    /// TOML lines for everything seen, to paste into the patch (after its `[midi]` table,
    /// if it has one). Participants are numbered from 1 in the order their channels were
    /// first played.
    pub fn mapping_lines(&self) -> String {
        let mut s = String::new();
        if self.is_empty() {
            s.push_str("# MIDI learn: no notes, controllers or program changes seen yet\n");
            return s;
        }
        for (i, channel) in self.note_channels.iter().enumerate() {
            let _ = write!(
                s,
                "[[midi.participants]]\n\
                 channel = {}\n\
                 participant = {}\n\
                 # archetype = \"…\"         # optional: joins with this archetype on the first note\n\n",
                channel + 1,
                i + 1
            );
        }
        for c in &self.controls {
            let target = if self.note_channels.contains(&c.channel) {
                "participant"
            } else {
                "conductor"
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
                 target = \"{target}\"{}\n\n",
                c.channel + 1,
                c.cc,
                if target == "participant" {
                    "      # or \"conductor\" (communal mood)"
                } else {
                    "        # or \"participant\" (the channel's participant)"
                },
            );
        }
        for (channel, program) in &self.programs {
            let _ = write!(
                s,
                "# program change {program} on channel {}: as a cue (needs conductor_channel = {} in [midi])\n\
                 # [[midi.cues]]\n\
                 # program = {program}\n\
                 # section = \"…\"\n\n",
                channel + 1,
                channel + 1,
            );
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }
}
