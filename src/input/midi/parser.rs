//! MIDI 1.0 bytes to [`MidiEvent`]s: a streaming parser for raw byte streams and
//! [`parse_message`] for the whole messages a port API delivers.

use std::fmt;

/// One MIDI message Tapestry can use. Channels are wire values 0..=15 (channel 1 is 0);
/// keys, velocities, controllers and values are 0..=127.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MidiEvent {
    /// A key goes down (velocity 1..=127; a note-on with velocity 0 arrives as [`MidiEvent::NoteOff`]).
    NoteOn {
        /// Channel, 0..=15.
        channel: u8,
        /// Key (MIDI pitch).
        key: u8,
        /// Velocity, 1..=127.
        velocity: u8,
    },
    /// A key comes up.
    NoteOff {
        /// Channel, 0..=15.
        channel: u8,
        /// Key (MIDI pitch).
        key: u8,
        /// Release velocity (0 when it was a note-on with velocity 0).
        velocity: u8,
    },
    /// Polyphonic key pressure (aftertouch).
    PolyPressure {
        /// Channel, 0..=15.
        channel: u8,
        /// Key.
        key: u8,
        /// Pressure.
        pressure: u8,
    },
    /// A control change (controllers 120..=127 are channel-mode messages).
    ControlChange {
        /// Channel, 0..=15.
        channel: u8,
        /// Controller number.
        controller: u8,
        /// Value.
        value: u8,
    },
    /// A program change.
    ProgramChange {
        /// Channel, 0..=15.
        channel: u8,
        /// Program number, 0..=127.
        program: u8,
    },
    /// Channel pressure (aftertouch).
    ChannelPressure {
        /// Channel, 0..=15.
        channel: u8,
        /// Pressure.
        pressure: u8,
    },
    /// Pitch bend.
    PitchBend {
        /// Channel, 0..=15.
        channel: u8,
        /// -8192..=8191, 0 at rest.
        value: i16,
    },
    /// Timing clock (24 per quarter note), a real-time byte.
    Clock,
    /// Start, a real-time byte.
    Start,
    /// Continue, a real-time byte.
    Continue,
    /// Stop, a real-time byte.
    Stop,
}

impl MidiEvent {
    /// The channel of a channel message (0..=15); `None` for real-time messages.
    pub fn channel(&self) -> Option<u8> {
        match *self {
            MidiEvent::NoteOn { channel, .. }
            | MidiEvent::NoteOff { channel, .. }
            | MidiEvent::PolyPressure { channel, .. }
            | MidiEvent::ControlChange { channel, .. }
            | MidiEvent::ProgramChange { channel, .. }
            | MidiEvent::ChannelPressure { channel, .. }
            | MidiEvent::PitchBend { channel, .. } => Some(channel),
            MidiEvent::Clock | MidiEvent::Start | MidiEvent::Continue | MidiEvent::Stop => None,
        }
    }
}

/// Why [`parse_message`] returned no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MidiError {
    /// A well-formed message that carries nothing Tapestry uses: SysEx, MTC quarter frame,
    /// song position, song select, tune request, active sensing, reset, the undefined
    /// real-time bytes 0xF9 and 0xFD. Not an error in the stream; drop it quietly.
    #[error("well-formed message with status {0:#04X} that Tapestry does not use")]
    Unsupported(u8),
    /// No bytes.
    #[error("empty message")]
    Empty,
    /// The first byte is a data byte (running status is not accepted for whole messages).
    #[error("message starts with data byte {0:#04X} instead of a status byte")]
    NoStatus(u8),
    /// The undefined system-common status 0xF4 or 0xF5, or an end of SysEx (0xF7) with no
    /// SysEx before it.
    #[error("undefined or stray status byte {0:#04X}")]
    BadStatus(u8),
    /// A byte at `index` should have been a data byte (< 0x80).
    #[error(
        "byte {index} of a message with status {status:#04X} is {byte:#04X}, expected a data byte"
    )]
    DataExpected {
        /// The message's status byte.
        status: u8,
        /// Position of the offending byte.
        index: usize,
        /// The byte.
        byte: u8,
    },
    /// The message has the wrong number of bytes for its status.
    #[error("message with status {status:#04X} has {found} bytes, expected {expected}")]
    Length {
        /// The message's status byte.
        status: u8,
        /// Bytes expected, status included.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// A SysEx message without its closing 0xF7.
    #[error("SysEx message without its closing 0xF7")]
    UnterminatedSysEx,
}

impl MidiError {
    /// `true` for a broken message (to count and drop), `false` for
    /// [`MidiError::Unsupported`] (to drop quietly).
    pub fn is_malformed(&self) -> bool {
        !matches!(self, MidiError::Unsupported(_))
    }
}

/// Counters of a [`MidiParser`]. Every byte pushed ends up in exactly one of: a complete
/// message (`messages`), a real-time byte (`realtime`), a SysEx (`sysex`), something
/// malformed (`malformed`), or the message still in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MidiStats {
    /// Bytes pushed.
    pub bytes: u64,
    /// Complete channel and system-common messages (only channel messages become events).
    pub messages: u64,
    /// Malformed pieces dropped: each data byte with no status to belong to, each message
    /// interrupted by a status byte before it was complete, each undefined status (0xF4,
    /// 0xF5) and each end of SysEx (0xF7) outside a SysEx.
    pub malformed: u64,
    /// SysEx messages dropped (closed by 0xF7 or by another status byte).
    pub sysex: u64,
    /// Real-time bytes (0xF8..=0xFF), wherever they arrived.
    pub realtime: u64,
}

/// Data bytes that follow a status byte; `None` for statuses that take none or are not
/// messages of their own (SysEx, its end, real-time bytes, undefined statuses).
fn data_len(status: u8) -> Option<usize> {
    match status {
        0x80..=0xBF | 0xE0..=0xEF | 0xF2 => Some(2),
        0xC0..=0xDF | 0xF1 | 0xF3 => Some(1),
        _ => None,
    }
}

/// A real-time byte's event, if Tapestry has one for it.
fn realtime_event(byte: u8) -> Option<MidiEvent> {
    match byte {
        0xF8 => Some(MidiEvent::Clock),
        0xFA => Some(MidiEvent::Start),
        0xFB => Some(MidiEvent::Continue),
        0xFC => Some(MidiEvent::Stop),
        _ => None,
    }
}

/// The event of a complete channel message (`status` 0x80..=0xEF, data bytes < 0x80).
fn channel_event(status: u8, d0: u8, d1: u8) -> MidiEvent {
    let channel = status & 0x0F;
    match status & 0xF0 {
        0x80 => MidiEvent::NoteOff {
            channel,
            key: d0,
            velocity: d1,
        },
        0x90 if d1 == 0 => MidiEvent::NoteOff {
            channel,
            key: d0,
            velocity: 0,
        },
        0x90 => MidiEvent::NoteOn {
            channel,
            key: d0,
            velocity: d1,
        },
        0xA0 => MidiEvent::PolyPressure {
            channel,
            key: d0,
            pressure: d1,
        },
        0xB0 => MidiEvent::ControlChange {
            channel,
            controller: d0,
            value: d1,
        },
        0xC0 => MidiEvent::ProgramChange {
            channel,
            program: d0,
        },
        0xD0 => MidiEvent::ChannelPressure {
            channel,
            pressure: d0,
        },
        _ => MidiEvent::PitchBend {
            channel,
            value: ((d1 as i16) << 7 | d0 as i16) - 8192,
        },
    }
}

/// Parses one complete message, as a port API (midir, CoreMIDI, ALSA sequencer) delivers
/// them: a status byte and exactly its data bytes, no running status, no real-time bytes
/// inside. A real-time message is one byte; a SysEx runs from 0xF0 to 0xF7.
pub fn parse_message(bytes: &[u8]) -> Result<MidiEvent, MidiError> {
    let (&status, data) = bytes.split_first().ok_or(MidiError::Empty)?;
    if status < 0x80 {
        return Err(MidiError::NoStatus(status));
    }
    if status == 0xF0 {
        let Some((&last, payload)) = data.split_last() else {
            return Err(MidiError::UnterminatedSysEx);
        };
        if let Some(i) = payload.iter().position(|&b| b >= 0x80) {
            return Err(MidiError::DataExpected {
                status,
                index: i + 1,
                byte: payload[i],
            });
        }
        return if last == 0xF7 {
            Err(MidiError::Unsupported(status))
        } else if last >= 0x80 {
            Err(MidiError::DataExpected {
                status,
                index: bytes.len() - 1,
                byte: last,
            })
        } else {
            Err(MidiError::UnterminatedSysEx)
        };
    }
    if matches!(status, 0xF4 | 0xF5 | 0xF7) {
        return Err(MidiError::BadStatus(status));
    }
    let expected = data_len(status).unwrap_or(0);
    if data.len() != expected {
        return Err(MidiError::Length {
            status,
            expected: expected + 1,
            found: bytes.len(),
        });
    }
    if let Some(i) = data.iter().position(|&b| b >= 0x80) {
        return Err(MidiError::DataExpected {
            status,
            index: i + 1,
            byte: data[i],
        });
    }
    if status >= 0xF8 {
        return realtime_event(status).ok_or(MidiError::Unsupported(status));
    }
    if status >= 0xF0 {
        return Err(MidiError::Unsupported(status));
    }
    let d = |i: usize| data.get(i).copied().unwrap_or(0);
    Ok(channel_event(status, d(0), d(1)))
}

/// A MIDI 1.0 byte-stream parser (a serial port, a raw device, a file of bytes).
///
/// - Running status: data bytes after a complete channel message reuse its status.
/// - Real-time bytes (0xF8..=0xFF) are taken wherever they arrive, even between a status
///   and its data, without disturbing the message around them; clock, start, continue and
///   stop become events.
/// - SysEx (0xF0 … 0xF7, any length, real-time bytes allowed inside) is dropped and counted;
///   any status byte other than a real-time one also ends it.
/// - System-common messages (0xF1..=0xF6) are read with their lengths and ignored; they
///   cancel running status.
/// - Data bytes with no status, a message cut short by a new status byte, 0xF4, 0xF5 and a
///   stray 0xF7 are counted as malformed and dropped; the parser carries on with the next
///   message.
///
/// It never panics and keeps no more than one message; [`MidiStats`] counts what it saw.
#[derive(Clone, Debug, Default)]
pub struct MidiParser {
    /// Status of the message being read, or the running status; 0 = none.
    status: u8,
    /// Data bytes of the message being read.
    data: [u8; 2],
    /// How many of them have arrived.
    len: usize,
    /// A message has begun (status or data bytes) and is not complete.
    pending: bool,
    /// Inside a SysEx.
    in_sysex: bool,
    stats: MidiStats,
}

impl MidiParser {
    /// A parser with no running status.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the parser has seen so far.
    pub fn stats(&self) -> MidiStats {
        self.stats
    }

    /// `true` while a message or SysEx has begun and is not complete.
    pub fn in_message(&self) -> bool {
        self.pending || self.in_sysex
    }

    /// Takes one byte; returns the event it completes, if any.
    pub fn push(&mut self, byte: u8) -> Option<MidiEvent> {
        self.stats.bytes += 1;
        if byte >= 0xF8 {
            self.stats.realtime += 1;
            return realtime_event(byte);
        }
        if byte >= 0x80 {
            self.status_byte(byte);
            return None;
        }
        if self.in_sysex {
            return None;
        }
        let Some(needed) = data_len(self.status) else {
            self.stats.malformed += 1;
            return None;
        };
        self.data[self.len] = byte;
        self.len += 1;
        self.pending = true;
        if self.len < needed {
            return None;
        }
        self.len = 0;
        self.pending = false;
        self.stats.messages += 1;
        if self.status >= 0xF0 {
            // system common: read and ignored; no running status
            self.status = 0;
            return None;
        }
        Some(channel_event(self.status, self.data[0], self.data[1]))
    }

    fn status_byte(&mut self, byte: u8) {
        if self.in_sysex {
            self.in_sysex = false;
            self.stats.sysex += 1;
            if byte == 0xF7 {
                return;
            }
        }
        if self.pending {
            self.stats.malformed += 1;
        }
        self.pending = false;
        self.len = 0;
        self.status = 0;
        match byte {
            0xF0 => self.in_sysex = true,
            0xF6 => self.stats.messages += 1,
            0xF4 | 0xF5 | 0xF7 => self.stats.malformed += 1,
            _ => {
                self.status = byte;
                self.pending = true;
            }
        }
    }

    /// Takes a run of bytes, handing each event to `out` in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(MidiEvent)) {
        for &b in bytes {
            if let Some(e) = self.push(b) {
                out(e);
            }
        }
    }
}

impl fmt::Display for MidiStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} messages, {} malformed, {} SysEx, {} real-time ({} bytes)",
            self.messages, self.malformed, self.sysex, self.realtime, self.bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (Vec<MidiEvent>, MidiStats) {
        let mut p = MidiParser::new();
        let mut out = Vec::new();
        p.feed(bytes, &mut |e| out.push(e));
        (out, p.stats())
    }

    fn on(channel: u8, key: u8, velocity: u8) -> MidiEvent {
        MidiEvent::NoteOn {
            channel,
            key,
            velocity,
        }
    }

    fn off(channel: u8, key: u8, velocity: u8) -> MidiEvent {
        MidiEvent::NoteOff {
            channel,
            key,
            velocity,
        }
    }

    fn cc(channel: u8, controller: u8, value: u8) -> MidiEvent {
        MidiEvent::ControlChange {
            channel,
            controller,
            value,
        }
    }

    #[test]
    fn every_channel_message_kind() {
        let (events, stats) = parse(&[
            0x83, 60, 64, // note off ch 4
            0x9F, 61, 100, // note on ch 16
            0x90, 62, 0, // note on velocity 0
            0xA1, 63, 20, // poly pressure
            0xB2, 7, 127, // control change
            0xC3, 5, // program change
            0xD4, 90, // channel pressure
            0xE5, 0, 0, // pitch bend, lowest
            0xE5, 0x00, 0x40, // centre
            0xE5, 0x7F, 0x7F, // highest
        ]);
        assert_eq!(
            events,
            [
                off(3, 60, 64),
                on(15, 61, 100),
                off(0, 62, 0),
                MidiEvent::PolyPressure {
                    channel: 1,
                    key: 63,
                    pressure: 20
                },
                cc(2, 7, 127),
                MidiEvent::ProgramChange {
                    channel: 3,
                    program: 5
                },
                MidiEvent::ChannelPressure {
                    channel: 4,
                    pressure: 90
                },
                MidiEvent::PitchBend {
                    channel: 5,
                    value: -8192
                },
                MidiEvent::PitchBend {
                    channel: 5,
                    value: 0
                },
                MidiEvent::PitchBend {
                    channel: 5,
                    value: 8191
                },
            ]
        );
        assert_eq!(stats.messages, 10);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn running_status() {
        let (events, stats) = parse(&[
            0x91, 60, 100, 64, 90, 60, 0, // three notes on channel 2, the last one off
            0xC0, 1, 2, 3, // three program changes
            0xB0, 1, 10, 1, 20, // two control changes
        ]);
        assert_eq!(
            events,
            [
                on(1, 60, 100),
                on(1, 64, 90),
                off(1, 60, 0),
                MidiEvent::ProgramChange {
                    channel: 0,
                    program: 1
                },
                MidiEvent::ProgramChange {
                    channel: 0,
                    program: 2
                },
                MidiEvent::ProgramChange {
                    channel: 0,
                    program: 3
                },
                cc(0, 1, 10),
                cc(0, 1, 20),
            ]
        );
        assert_eq!(stats.messages, 8);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn realtime_bytes_inside_a_note_on_do_not_disturb_it() {
        let (events, stats) = parse(&[0xF8, 0x90, 0xFA, 60, 0xFE, 0xF8, 100, 0xFC, 62, 0xFF, 80]);
        assert_eq!(
            events,
            [
                MidiEvent::Clock,
                MidiEvent::Start,
                MidiEvent::Clock,
                on(0, 60, 100),
                MidiEvent::Stop,
                on(0, 62, 80),
            ]
        );
        assert_eq!(stats.realtime, 6);
        assert_eq!(stats.messages, 2);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn sysex_with_realtime_bytes_inside_is_dropped() {
        let mut bytes = vec![0x90, 60, 100, 0xF0, 0x7E];
        for i in 0..1000 {
            bytes.push((i % 128) as u8);
            if i % 100 == 0 {
                bytes.push(0xF8);
            }
        }
        bytes.extend([0xF7, 0x90, 61, 100]);
        let (events, stats) = parse(&bytes);
        let notes: Vec<_> = events
            .iter()
            .filter(|e| **e != MidiEvent::Clock)
            .copied()
            .collect();
        assert_eq!(notes, [on(0, 60, 100), on(0, 61, 100)]);
        assert_eq!(events.len(), 2 + 10);
        assert_eq!(stats.sysex, 1);
        assert_eq!(stats.realtime, 10);
        assert_eq!(stats.malformed, 0);
    }

    #[test]
    fn sysex_cancels_running_status_and_a_status_byte_ends_it() {
        // data after the SysEx has no status; a note-on status also closes an open SysEx
        let (events, stats) = parse(&[
            0x90, 60, 100, 0xF0, 1, 2, 0xF7, 61, 100, 0xF0, 3, 0x90, 62, 1,
        ]);
        assert_eq!(events, [on(0, 60, 100), on(0, 62, 1)]);
        assert_eq!(stats.sysex, 2);
        assert_eq!(stats.malformed, 2, "the two stray data bytes");
    }

    #[test]
    fn a_status_byte_mid_message_drops_the_incomplete_one() {
        let (events, stats) = parse(&[0x90, 60, 0xB0, 7, 100, 0xC0, 0x91, 61, 90]);
        assert_eq!(
            events,
            [cc(0, 7, 100), on(1, 61, 90)],
            "the cut note-on and the empty program change are dropped"
        );
        assert_eq!(stats.malformed, 2);
        assert_eq!(stats.messages, 2);
    }

    #[test]
    fn stray_data_bytes_and_stray_statuses_are_malformed() {
        let (events, stats) = parse(&[1, 2, 3, 0xF7, 4, 0xF4, 0xF5, 0x90, 60, 100]);
        assert_eq!(events, [on(0, 60, 100)]);
        assert_eq!(stats.malformed, 3 + 1 + 1 + 2);
        assert_eq!(stats.messages, 1);
    }

    #[test]
    fn system_common_messages_have_their_lengths_and_cancel_running_status() {
        let (events, stats) = parse(&[
            0x90, 60, 100, // note on
            0xF1, 0x23, // MTC quarter frame
            0xF2, 0x10, 0x20, // song position
            0xF3, 4,    // song select
            0xF6, // tune request
            61, 100, // no running status after system common: two stray bytes
            0x90, 62, 100,
        ]);
        assert_eq!(events, [on(0, 60, 100), on(0, 62, 100)]);
        assert_eq!(stats.messages, 6);
        assert_eq!(stats.malformed, 2);
    }

    #[test]
    fn whole_messages() {
        assert_eq!(parse_message(&[0x92, 60, 100]), Ok(on(2, 60, 100)));
        assert_eq!(parse_message(&[0x92, 60, 0]), Ok(off(2, 60, 0)));
        assert_eq!(parse_message(&[0xB0, 74, 3]), Ok(cc(0, 74, 3)));
        assert_eq!(
            parse_message(&[0xEF, 0, 0x40]),
            Ok(MidiEvent::PitchBend {
                channel: 15,
                value: 0
            })
        );
        assert_eq!(parse_message(&[0xF8]), Ok(MidiEvent::Clock));
        assert_eq!(parse_message(&[0xFE]), Err(MidiError::Unsupported(0xFE)));
        assert_eq!(
            parse_message(&[0xF0, 1, 2, 0xF7]),
            Err(MidiError::Unsupported(0xF0))
        );
        assert_eq!(
            parse_message(&[0xF0, 0xF7]),
            Err(MidiError::Unsupported(0xF0))
        );
        assert_eq!(
            parse_message(&[0xF2, 1, 2]),
            Err(MidiError::Unsupported(0xF2))
        );
        assert_eq!(parse_message(&[0xF6]), Err(MidiError::Unsupported(0xF6)));
        assert!(!MidiError::Unsupported(0xF6).is_malformed());
        for (bytes, err) in [
            (&[][..], MidiError::Empty),
            (&[60, 100], MidiError::NoStatus(60)),
            (&[0xF7], MidiError::BadStatus(0xF7)),
            (&[0xF4], MidiError::BadStatus(0xF4)),
            (&[0xF0, 1, 2], MidiError::UnterminatedSysEx),
            (&[0xF0], MidiError::UnterminatedSysEx),
            (
                &[0xF0, 1, 0x90, 0xF7],
                MidiError::DataExpected {
                    status: 0xF0,
                    index: 2,
                    byte: 0x90,
                },
            ),
            (
                &[0x90, 60],
                MidiError::Length {
                    status: 0x90,
                    expected: 3,
                    found: 2,
                },
            ),
            (
                &[0xC0, 1, 2],
                MidiError::Length {
                    status: 0xC0,
                    expected: 2,
                    found: 3,
                },
            ),
            (
                &[0xF8, 1],
                MidiError::Length {
                    status: 0xF8,
                    expected: 1,
                    found: 2,
                },
            ),
            (
                &[0x90, 0xF8, 100],
                MidiError::DataExpected {
                    status: 0x90,
                    index: 1,
                    byte: 0xF8,
                },
            ),
        ] {
            let got = parse_message(bytes);
            assert_eq!(got, Err(err), "{bytes:02X?}");
            assert!(err.is_malformed());
            assert!(!err.to_string().is_empty());
        }
    }

    /// A tiny xorshift so the fuzz test needs no dependency and is the same every run.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// What an independent reading of the stream expects: real-time bytes removed (they
    /// never disturb anything), the rest cut into runs that each start at a status byte.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Expected {
        events: Vec<MidiEvent>,
        messages: u64,
        malformed: u64,
        sysex: u64,
        realtime: u64,
    }

    fn oracle(bytes: &[u8]) -> Expected {
        let mut x = Expected::default();
        let mut rest = Vec::new();
        for &b in bytes {
            if b >= 0xF8 {
                x.realtime += 1;
                if let Ok(e) = parse_message(&[b]) {
                    x.events.push(e);
                }
            } else {
                rest.push(b);
            }
        }
        // leading data bytes belong to nothing
        let first = rest.iter().position(|&b| b >= 0x80).unwrap_or(rest.len());
        x.malformed += first as u64;
        let mut runs: Vec<&[u8]> = Vec::new();
        let mut start = first;
        for i in first + 1..=rest.len() {
            if i == rest.len() || rest[i] >= 0x80 {
                runs.push(&rest[start..i]);
                start = i;
            }
        }
        let mut sysex_open = false;
        for (n, run) in runs.iter().enumerate() {
            let last = n + 1 == runs.len();
            let (status, data) = (run[0], &run[1..]);
            let mut stray = data.len();
            if sysex_open {
                sysex_open = false;
                x.sysex += 1;
                if status == 0xF7 {
                    x.malformed += stray as u64;
                    continue;
                }
            }
            match status {
                0xF0 => {
                    sysex_open = true;
                    stray = 0;
                }
                0xF6 => x.messages += 1,
                0xF4 | 0xF5 | 0xF7 => x.malformed += 1,
                0x80..=0xEF => {
                    let len = if (0xC0..=0xDF).contains(&status) {
                        1
                    } else {
                        2
                    };
                    for chunk in data.chunks(len) {
                        if chunk.len() == len {
                            x.messages += 1;
                            let mut whole = vec![status];
                            whole.extend_from_slice(chunk);
                            x.events.push(parse_message(&whole).unwrap());
                        } else if !last {
                            x.malformed += 1; // cut short by the next status
                        }
                    }
                    if data.is_empty() && !last {
                        x.malformed += 1;
                    }
                    stray = 0;
                }
                _ => {
                    let len = if status == 0xF2 { 2 } else { 1 };
                    if data.len() >= len {
                        x.messages += 1;
                        stray = data.len() - len;
                    } else {
                        stray = 0;
                        if !last {
                            x.malformed += 1;
                        }
                    }
                }
            }
            x.malformed += stray as u64;
        }
        x
    }

    fn check_against_oracle(bytes: &[u8]) {
        let mut p = MidiParser::new();
        let mut events = Vec::new();
        p.feed(bytes, &mut |e| events.push(e));
        let s = p.stats();
        // the oracle lists real-time events first; compare each kind in order
        let split = |v: &[MidiEvent]| -> (Vec<MidiEvent>, Vec<MidiEvent>) {
            v.iter().partition(|e| e.channel().is_some())
        };
        let expected = oracle(bytes);
        let got = Expected {
            events: {
                let (mut channel, realtime) = split(&events);
                channel.extend(realtime);
                channel
            },
            messages: s.messages,
            malformed: s.malformed,
            sysex: s.sysex,
            realtime: s.realtime,
        };
        let expected = Expected {
            events: {
                let (mut channel, realtime) = split(&expected.events);
                channel.extend(realtime);
                channel
            },
            ..expected
        };
        assert_eq!(got, expected);
        assert_eq!(s.bytes, bytes.len() as u64);
        for e in &events {
            if let Some(c) = e.channel() {
                assert!(c < 16);
            }
            match *e {
                MidiEvent::NoteOn { key, velocity, .. } => assert!(key < 128 && velocity > 0),
                MidiEvent::PitchBend { value, .. } => assert!((-8192..=8191).contains(&value)),
                _ => {}
            }
        }
    }

    #[test]
    fn the_oracle_agrees_on_the_hand_written_cases() {
        for bytes in [
            &[0x90, 60, 100, 64, 90, 60, 0][..],
            &[0x90, 60, 0xB0, 7, 100, 0xC0, 0x91, 61, 90],
            &[1, 2, 3, 0xF7, 4, 0xF4, 0xF5, 0x90, 60, 100],
            &[
                0x90, 60, 100, 0xF0, 1, 2, 0xF7, 61, 100, 0xF0, 3, 0x90, 62, 1,
            ],
            &[
                0x90, 60, 100, 0xF1, 0x23, 0xF2, 0x10, 0x20, 0xF3, 4, 0xF6, 61, 100,
            ],
            &[0xF0, 1, 0xF7, 0xF7, 0xF0, 0xF0, 0xF7],
            &[0xF2, 1, 0xF2, 1, 2, 3],
        ] {
            check_against_oracle(bytes);
        }
    }

    #[test]
    fn random_bytes_never_panic_and_the_counts_add_up() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        // uniform bytes: mostly statuses and short runs
        let uniform: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
        check_against_oracle(&uniform);
        let s = parse(&uniform).1;
        assert!(s.messages > 1000 && s.malformed > 1000 && s.sysex > 100 && s.realtime > 1000);
        // MIDI-like bytes: mostly data, a status now and then, some real-time and SysEx
        let midi_like: Vec<u8> = (0..100_000)
            .map(|_| {
                let r = rng.next();
                match r % 100 {
                    0..=79 => (r >> 8) as u8 & 0x7F,
                    80..=89 => 0x80 + ((r >> 8) % 0x70) as u8,
                    90..=95 => 0xF8 | ((r >> 8) as u8 & 0x07),
                    _ => 0xF0 | ((r >> 8) as u8 & 0x07),
                }
            })
            .collect();
        check_against_oracle(&midi_like);
        let (events, s) = parse(&midi_like);
        assert!(events.len() > 10_000, "{s}");
        // the parser never stays stuck: a clean message after garbage comes through
        let mut p = MidiParser::new();
        p.feed(&uniform, &mut |_| {});
        let mut last = Vec::new();
        p.feed(&[0xF7, 0x95, 70, 80], &mut |e| last.push(e));
        assert_eq!(last, [on(5, 70, 80)]);
    }
}
