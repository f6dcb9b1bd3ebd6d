//! MIDI input, pure logic with no device code: a byte-stream [`MidiParser`] (and
//! [`parse_message`] for whole messages as a port delivers them), the [`MidiMap`] a patch's
//! `[midi]` section resolves to, the [`MidiRouter`] that turns events into engine
//! [`Command`](crate::Command)s, and [`MidiLearn`], which prints mapping lines for the controls a
//! performer moves.
//!
//! ```text
//!  port bytes ─▶ MidiParser / parse_message ─▶ MidiEvent ─▶ MidiRouter (MidiMap) ─▶ Command
//!                                                     └──▶ MidiLearn ─▶ "[[midi.controls]] …"
//! ```
//!
//! Channels in [`MidiEvent`] and [`MidiMap`] are wire values, 0..=15; patches and learn output
//! number them 1..=16 as musicians do.
//!
//! ```
//! use tapestry::input::midi::{MidiEvent, MidiParser};
//!
//! let mut parser = MidiParser::new();
//! let mut events = Vec::new();
//! // note on, channel 1, with a clock byte inside it, then a second note by running status
//! parser.feed(&[0x90, 60, 0xF8, 100, 64, 0], &mut |e| events.push(e));
//! assert_eq!(
//!     events,
//!     [
//!         MidiEvent::Clock,
//!         MidiEvent::NoteOn { channel: 0, key: 60, velocity: 100 },
//!         MidiEvent::NoteOff { channel: 0, key: 64, velocity: 0 },
//!     ]
//! );
//! ```

mod learn;
mod map;
mod parser;
mod router;

pub use learn::MidiLearn;
pub use map::{
    ControlRoute, ControlTarget, CueRoute, CueTrigger, MidiMap, ModWheel, ParticipantRoute,
};
pub use parser::{parse_message, MidiError, MidiEvent, MidiParser, MidiStats};
pub use router::{MidiRouter, RouterStats};
