//! Hostile MIDI for the soak: a JACK client of the bench's own whose output port, connected to
//! tapestry's virtual MIDI port, carries a dense flood every period — notes and controllers
//! on the mapped channels, running-status garbage, truncated and undefined messages, and
//! SysEx of kilobytes, well-formed or never closed.
//!
//! It writes its events in its own process callback with the `jack` crate rather than through
//! a midir virtual output: midir's JACK output has no back-pressure (its `send` writes into a
//! 16 KiB ring without checking room, and its process callback copies into the port buffer
//! through a reservation that is null once the buffer is full), so a flood would corrupt its
//! stream or crash the bench. Here a full port buffer is an error that is counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use jack::{AsyncClient, Client, ClientOptions, Control, MidiOut, Port, ProcessScope, RawMidi};

use crate::osc::Rng;

/// What a hostile MIDI event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MidiKind {
    /// Note on, or note off of the channel's sounding note, on the participants' channels 1..4.
    Note,
    /// A controller the patch maps: CC 74 (participant brightness), CC 7 on the conductor
    /// channel 16 (communal energy).
    MappedCc,
    /// A controller nothing maps (CC 20 on channel 5).
    UnmappedCc,
    /// Pitch bend on a participant's channel.
    PitchBend,
    /// A cue: note 36 on the conductor channel.
    Cue,
    /// Two data bytes with no status byte.
    StrayData,
    /// One data byte, as a sender relying on running status across events would send.
    RunningStatus,
    /// A note-on missing its velocity.
    TruncatedNote,
    /// An undefined or misplaced status byte alone (0xF4, 0xF5, 0xFD, a lone 0xF7).
    InvalidStatus,
    /// A short SysEx with a note-on inside it.
    StatusInsideSysex,
    /// A 4096-byte well-formed SysEx.
    LongSysex,
    /// A 3000-byte SysEx that never closes.
    UnterminatedSysex,
}

impl MidiKind {
    pub const ALL: [MidiKind; 12] = [
        MidiKind::Note,
        MidiKind::MappedCc,
        MidiKind::UnmappedCc,
        MidiKind::PitchBend,
        MidiKind::Cue,
        MidiKind::StrayData,
        MidiKind::RunningStatus,
        MidiKind::TruncatedNote,
        MidiKind::InvalidStatus,
        MidiKind::StatusInsideSysex,
        MidiKind::LongSysex,
        MidiKind::UnterminatedSysex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MidiKind::Note => "note on/off (mapped channels)",
            MidiKind::MappedCc => "mapped controller",
            MidiKind::UnmappedCc => "unmapped controller",
            MidiKind::PitchBend => "pitch bend",
            MidiKind::Cue => "conductor cue note",
            MidiKind::StrayData => "stray data bytes",
            MidiKind::RunningStatus => "running-status data byte",
            MidiKind::TruncatedNote => "truncated note",
            MidiKind::InvalidStatus => "undefined status byte",
            MidiKind::StatusInsideSysex => "status inside SysEx",
            MidiKind::LongSysex => "4 KiB SysEx",
            MidiKind::UnterminatedSysex => "3000-byte unterminated SysEx",
        }
    }

    /// Whether tapestry can only call it malformed.
    pub fn malformed(self) -> bool {
        matches!(
            self,
            MidiKind::StrayData
                | MidiKind::RunningStatus
                | MidiKind::TruncatedNote
                | MidiKind::StatusInsideSysex
                | MidiKind::UnterminatedSysex
        )
    }
}

/// The events of every period, in order (24: 4500 a second at 48 kHz / 256); every 8th
/// period adds a long SysEx (alternately closed and not), every 64th a cue.
const PATTERN: [MidiKind; 24] = {
    use MidiKind::*;
    [
        Note,
        MappedCc,
        Note,
        StrayData,
        Note,
        PitchBend,
        Note,
        RunningStatus,
        Note,
        MappedCc,
        Note,
        TruncatedNote,
        Note,
        UnmappedCc,
        Note,
        InvalidStatus,
        Note,
        MappedCc,
        Note,
        StatusInsideSysex,
        Note,
        PitchBend,
        Note,
        MappedCc,
    ]
};

/// Events and bytes written into the port, by kind, and events the port buffer had no room
/// for; shared with the process callback.
pub struct MidiCounts {
    written: [AtomicU64; MidiKind::ALL.len()],
    bytes: [AtomicU64; MidiKind::ALL.len()],
    port_full: AtomicU64,
    periods: AtomicU64,
}

impl MidiCounts {
    fn new() -> MidiCounts {
        MidiCounts {
            written: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes: std::array::from_fn(|_| AtomicU64::new(0)),
            port_full: AtomicU64::new(0),
            periods: AtomicU64::new(0),
        }
    }
}

/// What the flood sent.
#[derive(Debug, Default)]
pub struct MidiSent {
    /// Events and bytes written into the port, by kind.
    pub by_kind: BTreeMap<MidiKind, (u64, u64)>,
    /// Events not written: the port buffer was full.
    pub port_full: u64,
    /// Periods the flood ran.
    pub periods: u64,
    /// Whether the client closed within 5 s (jackaudio/jack2#395 can keep it stuck).
    pub closed: bool,
}

impl MidiSent {
    pub fn events(&self) -> u64 {
        self.by_kind.values().map(|v| v.0).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.by_kind.values().map(|v| v.1).sum()
    }
}

/// The generator of the flood's events (no allocation once built).
struct Generator {
    rng: Rng,
    /// The sounding note per participant channel (0 = none).
    sounding: [u8; 4],
    long_sysex: Box<[u8]>,
    unterminated_sysex: Box<[u8]>,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let mut rng = Rng::new(seed);
        let mut sysex = |len: usize, closed: bool| -> Box<[u8]> {
            let mut bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0x7F) as u8).collect();
            bytes[0] = 0xF0;
            if closed {
                bytes[len - 1] = 0xF7;
            }
            bytes.into_boxed_slice()
        };
        let long_sysex = sysex(4096, true);
        let unterminated_sysex = sysex(3000, false);
        Generator {
            rng,
            sounding: [0; 4],
            long_sysex,
            unterminated_sysex,
        }
    }

    /// The bytes of one event of `kind`, in `scratch` when short.
    fn event<'a>(&'a mut self, kind: MidiKind, scratch: &'a mut [u8; 6]) -> &'a [u8] {
        let r = self.rng.next();
        let channel = (r % 4) as usize;
        let data = |shift: u32| ((r >> shift) & 0x7F) as u8;
        let short: &[u8] = match kind {
            MidiKind::Note => {
                let sounding = self.sounding[channel];
                let pitch = 48 + (r >> 8) as u8 % 36;
                self.sounding[channel] = if sounding == 0 { pitch } else { 0 };
                if sounding == 0 {
                    &[0x90 | channel as u8, pitch, 1 + data(16) % 127]
                } else {
                    &[0x80 | channel as u8, sounding, 0]
                }
            }
            MidiKind::MappedCc if r & 0x100 == 0 => &[0xB0 | channel as u8, 74, data(16)],
            MidiKind::MappedCc => &[0xBF, 7, data(16)],
            MidiKind::UnmappedCc => &[0xB4, 20, data(16)],
            MidiKind::PitchBend => &[0xE0 | channel as u8, data(8), data(16)],
            MidiKind::Cue => &[0x9F, 36, 100],
            MidiKind::StrayData => &[data(8), data(16)],
            MidiKind::RunningStatus => &[data(8)],
            MidiKind::TruncatedNote => &[0x90 | channel as u8, 60],
            MidiKind::InvalidStatus => &[[0xF4, 0xF5, 0xFD, 0xF7][(r >> 8) as usize % 4]],
            MidiKind::StatusInsideSysex => &[0xF0, 0x7D, 0x90, 60, 100, 0xF7],
            MidiKind::LongSysex => return &self.long_sysex,
            MidiKind::UnterminatedSysex => return &self.unterminated_sysex,
        };
        scratch[..short.len()].copy_from_slice(short);
        &scratch[..short.len()]
    }

    /// The kinds of period `period`'s events: [`PATTERN`], and now and then one more.
    fn kinds(period: u64) -> impl Iterator<Item = MidiKind> {
        let extra = if period.is_multiple_of(64) {
            Some(MidiKind::Cue)
        } else if period.is_multiple_of(16) {
            Some(MidiKind::LongSysex)
        } else if period.is_multiple_of(8) {
            Some(MidiKind::UnterminatedSysex)
        } else {
            None
        };
        PATTERN.into_iter().chain(extra)
    }
}

/// The flood's process handler: writes each period's events into the port while `running`.
struct Flood {
    port: Port<MidiOut>,
    generator: Generator,
    counts: Arc<MidiCounts>,
    running: Arc<AtomicBool>,
    period: u64,
}

impl jack::ProcessHandler for Flood {
    fn process(&mut self, _: &Client, scope: &ProcessScope) -> Control {
        let mut writer = self.port.writer(scope);
        if !self.running.load(Ordering::Relaxed) {
            return Control::Continue;
        }
        let frames = scope.n_frames();
        let count = Generator::kinds(self.period).count() as u32;
        for (k, kind) in Generator::kinds(self.period).enumerate() {
            let mut scratch = [0u8; 6];
            let bytes = self.generator.event(kind, &mut scratch);
            let time = k as u32 * frames / count;
            match writer.write(&RawMidi { time, bytes }) {
                Ok(()) => {
                    let i = kind as usize;
                    self.counts.written[i].fetch_add(1, Ordering::Relaxed);
                    let n = bytes.len() as u64;
                    self.counts.bytes[i].fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => {
                    self.counts.port_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.period += 1;
        self.counts.periods.fetch_add(1, Ordering::Relaxed);
        Control::Continue
    }
}

/// A running MIDI flood.
pub struct MidiFlood {
    client: AsyncClient<(), Flood>,
    counts: Arc<MidiCounts>,
    running: Arc<AtomicBool>,
}

/// The JACK client's name (its port is `soak-midi:out`).
const CLIENT: &str = "soak-midi";

impl MidiFlood {
    /// Opens the client on the server `JACK_DEFAULT_SERVER` names, connects its port to
    /// `destination` and starts the flood.
    pub fn start(destination: &str, seed: u64) -> MidiFlood {
        let (client, _) =
            Client::new(CLIENT, ClientOptions::NO_START_SERVER).expect("a JACK client");
        let port = client
            .register_port("out", MidiOut::default())
            .expect("a JACK MIDI output port");
        let source = port.name().expect("the port's name");
        let counts = Arc::new(MidiCounts::new());
        let running = Arc::new(AtomicBool::new(true));
        let flood = Flood {
            port,
            generator: Generator::new(seed),
            counts: counts.clone(),
            running: running.clone(),
            period: 0,
        };
        let client = client.activate_async((), flood).expect("activating");
        client
            .as_client()
            .connect_ports_by_name(&source, destination)
            .expect("connecting the flood to tapestry's virtual port");
        MidiFlood {
            client,
            counts,
            running,
        }
    }

    /// Stops the flood, closes the client (waiting at most 5 s: jackaudio/jack2#395) and
    /// returns what was sent.
    pub fn stop(self) -> MidiSent {
        self.running.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        let (done_tx, done_rx) = mpsc::channel();
        let client = self.client;
        std::thread::spawn(move || {
            let _ = client.deactivate();
            let _ = done_tx.send(());
        });
        let closed = done_rx.recv_timeout(Duration::from_secs(5)).is_ok();
        let c = &self.counts;
        let by_kind = MidiKind::ALL
            .iter()
            .map(|&k| {
                let i = k as usize;
                let n = c.written[i].load(Ordering::Relaxed);
                (k, (n, c.bytes[i].load(Ordering::Relaxed)))
            })
            .collect();
        MidiSent {
            by_kind,
            port_full: c.port_full.load(Ordering::Relaxed),
            periods: c.periods.load(Ordering::Relaxed),
            closed,
        }
    }
}
