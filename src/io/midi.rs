//! MIDI devices (midir): listing input ports and listening to them live. The device side of
//! [`crate::input::midi`], whose parser, router and learn mode it feeds.
//!
//! [`MidiInputs::start`] connects to every input port a patch's `[midi]` `ports` select,
//! opens a virtual input port named after `virtual_port` where the platform has them (ALSA,
//! CoreMIDI, JACK), and keeps a watcher thread that re-scans the ports every
//! [`RESCAN_INTERVAL`]: ports that appear later are connected, ports that disappear are
//! closed (and connected again if they come back).
//!
//! **One source, one delivery.** A source port that is also connected to the virtual port
//! (by hand, a patchbay or a session manager) is heard there: the watcher mutes its own
//! connection to that source while the other connection lasts, checking every
//! [`PEER_CHECK_INTERVAL`] (on JACK and ALSA, which can list a port's connections; see
//! `peers.rs` for each platform), and listens to it directly again when it is gone.
//!
//! Each port's callback runs on midir's thread (with the `jack` feature, a JACK client's
//! real-time process thread — never the engine's audio thread, but just as strict). It only
//! copies the message's first [`MAX_MESSAGE_BYTES`] bytes, its length and its arrival
//! [`Instant`] into a fixed-size [`RawMessage`] and pushes it onto a bounded, preallocated
//! lock-free queue ([`ArrayQueue`]): no lock, no heap, no system call. A longer message (a
//! SysEx of any length: Tapestry maps none) is checked whole in the callback, in one pass
//! without copying, and handed over as its head, its length and the verdict. Messages that
//! find the queue full are counted and dropped.
//!
//! A router thread drains the queue: it parses each message with [`parse_message`], routes it
//! through one [`MidiRouter`] (so a participant joins once, whichever port plays it first),
//! feeds MIDI learn, stamps every command with [`Timing::At`] the sample the message's
//! arrival maps to on the [`SampleClock`], and posts it through the [`Controller`]. Counters
//! are atomics ([`MidiInputStats`]).

mod peers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_queue::ArrayQueue;
use midir::{Ignore, MidiInput, MidiInputConnection};

use crate::control::{Command, Controller, Message, Notice, ParticipantId, Refusal, Timing};
use crate::input::midi::{parse_message, MidiError, MidiEvent, MidiLearn, MidiMap, MidiRouter};
use crate::input::SampleClock;
use peers::VirtualPeers;

/// How often the watcher looks for new ports.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// How often the watcher asks which sources are connected to the virtual port: a source
/// connected there while the watcher also listens to it directly may be heard twice for at
/// most this long.
pub const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes of each message the port callbacks copy for the router (every channel, system
/// common and real-time message fits). A longer message — only a SysEx can be well-formed
/// and longer — is checked whole in the callback and handed over as its first
/// `MAX_MESSAGE_BYTES` bytes, its length and the verdict.
pub const MAX_MESSAGE_BYTES: usize = 16;

/// Messages the queue between the port callbacks and the router holds.
pub const QUEUE_CAPACITY: usize = 4096;

/// How long the router sleeps when the queue is empty. Latency only: every message keeps
/// the sample its arrival maps to.
const ROUTER_POLL: Duration = Duration::from_millis(1);

/// Client name of the virtual port (its full name on JACK is `<client>:<virtual_port>`).
const VIRTUAL_CLIENT: &str = "tapestry";
/// Client name used to list ports.
const SCAN_CLIENT: &str = "tapestry-scan";
/// Client name of each connection to a hardware or software port.
const INPUT_CLIENT: &str = "tapestry-in";

/// The MIDI system midir was built for, with a hint for when it cannot be opened.
const BACKEND: &str = if cfg!(feature = "jack") {
    "JACK; is a JACK server running?"
} else {
    "the platform's MIDI system; on Linux, the ALSA sequencer"
};

/// Errors starting MIDI input.
#[derive(Debug, thiserror::Error)]
pub enum MidiDeviceError {
    /// midir could not open the MIDI system (no ALSA sequencer, no JACK server, …).
    #[error("cannot open the MIDI system ({BACKEND}): {0}")]
    Init(String),
    /// The watcher thread could not be started.
    #[error("cannot start the MIDI watcher thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Live counters of MIDI input, written with relaxed atomics.
#[derive(Debug, Default)]
pub struct MidiInputStats {
    /// Messages received from every port.
    pub messages: AtomicU64,
    /// Malformed messages, counted and dropped.
    pub malformed: AtomicU64,
    /// Messages that produced at least one command.
    pub routed: AtomicU64,
    /// Commands posted to the engine.
    pub commands: AtomicU64,
    /// Commands the engine's queue did not take (full or gone).
    pub dropped: AtomicU64,
    /// Well-formed SysEx messages, any length (Tapestry maps none: counted, then dropped).
    pub sysex: AtomicU64,
    /// Other well-formed system messages Tapestry does not use (MTC quarter frames, song
    /// position and select, tune request, active sensing, reset): counted, then dropped.
    pub unsupported: AtomicU64,
    /// Notes no participant route (or cue) covers: counted, then dropped.
    pub unmapped_notes: AtomicU64,
    /// Control changes no control maps: counted, then dropped.
    pub unmapped_controllers: AtomicU64,
    /// Pitch bends on a channel without a participant: counted, then dropped.
    pub unmapped_bends: AtomicU64,
    /// Program changes that cue nothing, pressure, clock and transport: counted, then
    /// dropped.
    pub unmapped_other: AtomicU64,
    /// Messages taken in with nothing to send yet: bends and mod-wheel moves before the
    /// participant's first note (sent with its join), releases of cue notes.
    pub absorbed: AtomicU64,
    /// Messages from a source that also feeds the virtual port, taken from there only (not
    /// counted in `messages`).
    pub duplicates: AtomicU64,
    /// Messages dropped because the router's queue was full.
    pub queue_full: AtomicU64,
    /// Allocations made inside the port callbacks (counted only with the `alloc-check`
    /// feature and its allocator installed).
    pub callback_allocations: AtomicU64,
    /// Ports connected now (the virtual port included).
    pub ports: AtomicU64,
    /// Connections made so far (the virtual port included).
    pub connections: AtomicU64,
    /// Ports that could not be connected.
    pub connect_errors: AtomicU64,
}

/// A copy of [`MidiInputStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MidiCounts {
    /// See [`MidiInputStats::messages`].
    pub messages: u64,
    /// See [`MidiInputStats::malformed`].
    pub malformed: u64,
    /// See [`MidiInputStats::routed`].
    pub routed: u64,
    /// See [`MidiInputStats::commands`].
    pub commands: u64,
    /// See [`MidiInputStats::dropped`].
    pub dropped: u64,
    /// See [`MidiInputStats::sysex`].
    pub sysex: u64,
    /// See [`MidiInputStats::unsupported`].
    pub unsupported: u64,
    /// See [`MidiInputStats::unmapped_notes`].
    pub unmapped_notes: u64,
    /// See [`MidiInputStats::unmapped_controllers`].
    pub unmapped_controllers: u64,
    /// See [`MidiInputStats::unmapped_bends`].
    pub unmapped_bends: u64,
    /// See [`MidiInputStats::unmapped_other`].
    pub unmapped_other: u64,
    /// See [`MidiInputStats::absorbed`].
    pub absorbed: u64,
    /// See [`MidiInputStats::duplicates`].
    pub duplicates: u64,
    /// See [`MidiInputStats::queue_full`].
    pub queue_full: u64,
    /// See [`MidiInputStats::callback_allocations`].
    pub callback_allocations: u64,
    /// See [`MidiInputStats::ports`].
    pub ports: u64,
    /// See [`MidiInputStats::connections`].
    pub connections: u64,
    /// See [`MidiInputStats::connect_errors`].
    pub connect_errors: u64,
}

impl MidiInputStats {
    /// The counters now.
    pub fn snapshot(&self) -> MidiCounts {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MidiCounts {
            messages: r(&self.messages),
            malformed: r(&self.malformed),
            routed: r(&self.routed),
            commands: r(&self.commands),
            dropped: r(&self.dropped),
            sysex: r(&self.sysex),
            unsupported: r(&self.unsupported),
            unmapped_notes: r(&self.unmapped_notes),
            unmapped_controllers: r(&self.unmapped_controllers),
            unmapped_bends: r(&self.unmapped_bends),
            unmapped_other: r(&self.unmapped_other),
            absorbed: r(&self.absorbed),
            duplicates: r(&self.duplicates),
            queue_full: r(&self.queue_full),
            callback_allocations: r(&self.callback_allocations),
            ports: r(&self.ports),
            connections: r(&self.connections),
            connect_errors: r(&self.connect_errors),
        }
    }
}

impl MidiCounts {
    /// Messages dropped before routing: the queue was full.
    pub fn lost(&self) -> u64 {
        self.queue_full
    }

    /// Well-formed messages no mapping covers, of every kind.
    pub fn unmapped(&self) -> u64 {
        self.unmapped_notes + self.unmapped_controllers + self.unmapped_bends + self.unmapped_other
    }
}

/// One message as a port callback hands it to the router: plain bytes, no heap.
#[derive(Clone, Copy, Debug)]
pub struct RawMessage {
    /// Index of the port it came from (the router knows the names).
    port: u32,
    /// The message's length in bytes (saturating at `u32::MAX`).
    len: u32,
    /// Its first bytes (all of them up to [`MAX_MESSAGE_BYTES`]).
    head: [u8; MAX_MESSAGE_BYTES],
    /// For a message longer than `head`: why [`parse_message`] refused it, found in the
    /// callback while the whole message was there.
    long: Option<MidiError>,
    /// When the callback received it.
    received: Instant,
}

impl RawMessage {
    /// The message: copied whole up to [`MAX_MESSAGE_BYTES`]; a longer one is checked whole
    /// (one pass, no copy: real-time safe) and keeps its first bytes and the verdict.
    pub fn new(port: u32, bytes: &[u8], received: Instant) -> RawMessage {
        let kept = bytes.len().min(MAX_MESSAGE_BYTES);
        let mut head = [0; MAX_MESSAGE_BYTES];
        head[..kept].copy_from_slice(&bytes[..kept]);
        // only a SysEx can be longer and well-formed, and no SysEx is an event
        let long = if bytes.len() > MAX_MESSAGE_BYTES {
            parse_message(bytes).err()
        } else {
            None
        };
        RawMessage {
            port,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            head,
            long,
            received,
        }
    }

    /// Its bytes, or its first [`MAX_MESSAGE_BYTES`] when it is longer.
    pub fn bytes(&self) -> &[u8] {
        &self.head[..(self.len as usize).min(MAX_MESSAGE_BYTES)]
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` for a message of no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The event it carries, as [`parse_message`] finds it.
    pub fn parse(&self) -> Result<MidiEvent, MidiError> {
        match self.long {
            Some(e) => Err(e),
            None => parse_message(self.bytes()),
        }
    }
}

/// What one port's callback owns. Real-time safe: atomics and a lock-free push only.
struct PortHandler {
    port: u32,
    queue: Arc<ArrayQueue<RawMessage>>,
    stats: Arc<MidiInputStats>,
    /// Set by the watcher while this port's source also feeds the virtual port.
    muted: Arc<AtomicBool>,
}

impl PortHandler {
    fn handle(&mut self, bytes: &[u8]) {
        let (_, allocations) = super::count_allocations(|| self.hand_over(bytes));
        if allocations > 0 {
            let stats = &self.stats;
            stats
                .callback_allocations
                .fetch_add(allocations, Ordering::Relaxed);
        }
    }

    fn hand_over(&self, bytes: &[u8]) {
        let received = Instant::now();
        let stats = &self.stats;
        if self.muted.load(Ordering::Relaxed) {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        stats.messages.fetch_add(1, Ordering::Relaxed);
        let raw = RawMessage::new(self.port, bytes, received);
        if self.queue.push(raw).is_err() {
            stats.queue_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What the router thread is told besides the messages.
enum RouterControl {
    /// A port index and its name, sent before the port is connected.
    Port(u32, String),
    /// The participant left or was refused: join again on its next note.
    Forget(ParticipantId),
}

/// The router thread's state: everything that parses, maps, learns and sends.
struct Router {
    router: MidiRouter,
    learn: Option<MidiLearn>,
    port_names: HashMap<u32, String>,
    queue: Arc<ArrayQueue<RawMessage>>,
    control: Receiver<RouterControl>,
    controller: Controller,
    clock: Arc<SampleClock>,
    stats: Arc<MidiInputStats>,
}

impl Router {
    /// Routes until `stop`, then drains what is left; returns the learn state.
    fn run(mut self, stop: Arc<AtomicBool>) -> Option<MidiLearn> {
        loop {
            let stopping = stop.load(Ordering::Acquire);
            self.take_control();
            let mut routed = 0;
            while let Some(raw) = self.queue.pop() {
                self.route(raw);
                routed += 1;
            }
            if stopping {
                return self.learn;
            }
            if routed == 0 {
                std::thread::sleep(ROUTER_POLL);
            }
        }
    }

    fn take_control(&mut self) {
        while let Ok(c) = self.control.try_recv() {
            match c {
                RouterControl::Port(index, name) => {
                    self.port_names.insert(index, name);
                }
                RouterControl::Forget(participant) => self.router.forget(participant),
            }
        }
    }

    fn route(&mut self, raw: RawMessage) {
        let event = match raw.parse() {
            Ok(event) => event,
            Err(MidiError::Unsupported(0xF0)) => {
                self.stats.sysex.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                let counter = if e.is_malformed() {
                    &self.stats.malformed
                } else {
                    &self.stats.unsupported
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if !self.port_names.contains_key(&raw.port) {
            // its name was sent before the port was connected
            self.take_control();
        }
        let stats = &self.stats;
        let port = self.port_names.get(&raw.port).map_or("", String::as_str);
        let at = Timing::At(self.clock.sample_at(raw.received));
        if let Some(learn) = &mut self.learn {
            learn.observe(port, event);
        }
        let mut produced = false;
        let controller = &self.controller;
        self.router.route(port, event, &mut |command| {
            produced = true;
            match controller.send(Message { at, command }) {
                Ok(()) => stats.commands.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.dropped.fetch_add(1, Ordering::Relaxed),
            };
        });
        if produced {
            stats.routed.fetch_add(1, Ordering::Relaxed);
        } else {
            let r = self.router.stats();
            let store = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
            store(&stats.unmapped_notes, r.unmapped_notes);
            store(&stats.unmapped_controllers, r.unmapped_controllers);
            store(&stats.unmapped_bends, r.unmapped_bends);
            store(&stats.unmapped_other, r.unmapped_other);
            store(&stats.absorbed, r.absorbed);
        }
    }
}

/// Names of the MIDI input ports midir sees now, in its order.
pub fn input_port_names() -> Result<Vec<String>, MidiDeviceError> {
    let input = MidiInput::new(SCAN_CLIENT).map_err(|e| MidiDeviceError::Init(e.to_string()))?;
    Ok(port_names(&input)
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// A human-readable list of MIDI input ports (for `tapestry devices`).
pub fn list_midi_inputs() -> String {
    match input_port_names() {
        Ok(names) if names.is_empty() => "MIDI inputs\n  none\n".into(),
        Ok(names) => {
            let mut out = String::from("MIDI inputs\n");
            for n in names {
                out += &format!("  input {n}\n");
            }
            out
        }
        Err(e) => format!("MIDI inputs\n  {e}\n"),
    }
}

/// (id, name) of every input port.
fn port_names(input: &MidiInput) -> Vec<(String, String)> {
    input
        .ports()
        .iter()
        .filter_map(|p| input.port_name(p).ok().map(|name| (p.id(), name)))
        .collect()
}

/// Live MIDI input: connections to the selected ports, a virtual port, the watcher thread
/// and the router thread. Stops when [`stop`](Self::stop)ped or dropped.
pub struct MidiInputs {
    stats: Arc<MidiInputStats>,
    control: Sender<RouterControl>,
    stop_watcher: Arc<AtomicBool>,
    watcher: Option<JoinHandle<()>>,
    stop_router: Arc<AtomicBool>,
    router: Option<JoinHandle<Option<MidiLearn>>>,
    virtual_port: Option<String>,
}

/// The watcher thread's state.
struct Watcher {
    map: MidiMap,
    scanner: MidiInput,
    queue: Arc<ArrayQueue<RawMessage>>,
    control: Sender<RouterControl>,
    stats: Arc<MidiInputStats>,
    /// Index the next connection's messages carry.
    next_port: u32,
    /// Open connections by port id.
    connections: HashMap<String, Connection>,
    virtual_connection: Option<MidiInputConnection<PortHandler>>,
    /// Which sources feed the virtual port, where the platform can say.
    peers: Option<VirtualPeers>,
    /// The ids `peers` gave last (reused: no allocation per check once warm).
    peer_ids: Vec<String>,
}

/// One connection the watcher made to a source port.
struct Connection {
    name: String,
    connection: MidiInputConnection<PortHandler>,
    /// Its callback drops what it receives: the source also feeds the virtual port.
    muted: Arc<AtomicBool>,
}

impl Watcher {
    /// A callback state for a new connection to `port`; the router learns its name first.
    fn handler(&mut self, port: &str, muted: Arc<AtomicBool>) -> PortHandler {
        let index = self.next_port;
        self.next_port = self.next_port.wrapping_add(1);
        let _ = self
            .control
            .send(RouterControl::Port(index, port.to_string()));
        PortHandler {
            port: index,
            queue: self.queue.clone(),
            stats: self.stats.clone(),
            muted,
        }
    }

    /// Connects the selected ports that are new, closes the ones that are gone.
    fn scan(&mut self) {
        let now = port_names(&self.scanner);
        let gone: Vec<String> = self
            .connections
            .keys()
            .filter(|id| !now.iter().any(|(i, _)| i == *id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(c) = self.connections.remove(&id) {
                c.connection.close();
                self.stats.ports.fetch_sub(1, Ordering::Relaxed);
                eprintln!("tapestry: MIDI port \"{}\" is gone", c.name);
            }
        }
        self.ask_peers();
        for (id, name) in now {
            if !self.connections.contains_key(&id) && self.map.listens_to(&name) {
                self.connect(id, name);
            }
        }
    }

    /// Connects the source port `id`, muted from the start if it feeds the virtual port.
    fn connect(&mut self, id: String, name: String) {
        let port = self.scanner.ports().into_iter().find(|p| p.id() == id);
        let (Some(port), Ok(mut input)) = (port, MidiInput::new(INPUT_CLIENT)) else {
            self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        input.ignore(Ignore::None);
        let feeds_virtual = self.peer_ids.contains(&id);
        let muted = Arc::new(AtomicBool::new(feeds_virtual));
        let handler = self.handler(&name, muted.clone());
        match input.connect(&port, "in", |_, bytes, h| h.handle(bytes), handler) {
            Ok(connection) => {
                self.stats.ports.fetch_add(1, Ordering::Relaxed);
                self.stats.connections.fetch_add(1, Ordering::Relaxed);
                if feeds_virtual {
                    eprintln!(
                        "tapestry: MIDI port \"{name}\" is connected to the virtual port \"{}\": \
                         heard there only",
                        self.virtual_name()
                    );
                } else {
                    eprintln!("tapestry: listening to MIDI port \"{name}\"");
                }
                let c = Connection {
                    name,
                    connection,
                    muted,
                };
                self.connections.insert(id, c);
            }
            Err(e) => {
                self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("tapestry: cannot connect MIDI port \"{name}\": {e}");
            }
        }
    }

    /// Asks which sources feed the virtual port now, into `peer_ids`.
    fn ask_peers(&mut self) {
        if let Some(peers) = &self.peers {
            peers.sources(&mut self.peer_ids);
        }
    }

    fn virtual_name(&self) -> &str {
        self.peers.as_ref().map_or("", |p| p.name())
    }

    /// Mutes each connection whose source now also feeds the virtual port, and unmutes the
    /// ones whose source no longer does.
    fn follow_virtual_peers(&mut self) {
        if self.peers.is_none() {
            return;
        }
        self.ask_peers();
        for (id, c) in &self.connections {
            let feeds_virtual = self.peer_ids.contains(id);
            if c.muted.swap(feeds_virtual, Ordering::Relaxed) == feeds_virtual {
                continue;
            }
            let virtual_name = self.peers.as_ref().map_or("", |p| p.name());
            if feeds_virtual {
                eprintln!(
                    "tapestry: MIDI port \"{}\" is also connected to the virtual port \"{virtual_name}\": \
                     heard there only",
                    c.name
                );
            } else {
                eprintln!(
                    "tapestry: MIDI port \"{}\" left the virtual port: listening to it directly",
                    c.name
                );
            }
        }
    }

    fn close_all(&mut self) {
        for (_, c) in self.connections.drain() {
            c.connection.close();
            self.stats.ports.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(connection) = self.virtual_connection.take() {
            connection.close();
            self.stats.ports.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl MidiInputs {
    /// Connects to every input port `map.ports` selects, opens the virtual port
    /// `map.virtual_port` where the platform has them, and starts the watcher that picks up
    /// ports appearing later and the router that turns messages into commands. Commands go
    /// through `controller`, stamped with `clock`. With `learn`, every event also feeds a
    /// [`MidiLearn`] (its lines come back from [`stop`](Self::stop)).
    pub fn start(
        map: MidiMap,
        controller: Controller,
        clock: Arc<SampleClock>,
        learn: bool,
    ) -> Result<MidiInputs, MidiDeviceError> {
        let scanner =
            MidiInput::new(SCAN_CLIENT).map_err(|e| MidiDeviceError::Init(e.to_string()))?;
        let stats = Arc::new(MidiInputStats::default());
        let queue = Arc::new(ArrayQueue::new(QUEUE_CAPACITY));
        let (control, control_rx) = crossbeam_channel::unbounded();
        let router = Router {
            router: MidiRouter::new(map.clone()),
            learn: learn.then(|| MidiLearn::for_map(&map)),
            port_names: HashMap::new(),
            queue: queue.clone(),
            control: control_rx,
            controller,
            clock,
            stats: stats.clone(),
        };
        let stop_router = Arc::new(AtomicBool::new(false));
        let router = {
            let stop = stop_router.clone();
            std::thread::Builder::new()
                .name("tapestry-midi-router".into())
                .spawn(move || router.run(stop))?
        };
        let mut watcher = Watcher {
            map,
            scanner,
            queue,
            control: control.clone(),
            stats: stats.clone(),
            next_port: 0,
            connections: HashMap::new(),
            virtual_connection: None,
            peers: None,
            peer_ids: Vec::new(),
        };
        let virtual_port = open_virtual(&mut watcher);
        watcher.scan();
        let stop_watcher = Arc::new(AtomicBool::new(false));
        let watcher = {
            let stop = stop_watcher.clone();
            std::thread::Builder::new()
                .name("tapestry-midi".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(PEER_CHECK_INTERVAL);
                        if last.elapsed() >= RESCAN_INTERVAL {
                            last = Instant::now();
                            watcher.scan();
                        } else {
                            watcher.follow_virtual_peers();
                        }
                    }
                    watcher.close_all();
                })?
        };
        Ok(MidiInputs {
            stats,
            control,
            stop_watcher,
            watcher: Some(watcher),
            stop_router,
            router: Some(router),
            virtual_port,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<MidiInputStats> {
        &self.stats
    }

    /// The virtual port's name, if one was opened.
    pub fn virtual_port(&self) -> Option<&str> {
        self.virtual_port.as_deref()
    }

    /// Takes note of an engine notice (from [`Controller::try_notice`]): a join refused for
    /// any reason but "already present", or a note refused because its participant is
    /// unknown (it left, say), makes the router join that participant again on its next note.
    pub fn notice(&self, notice: &Notice) {
        let participant = match *notice {
            Notice::Refused {
                command: Command::Join { participant, .. },
                reason,
                ..
            } if reason != Refusal::AlreadyPresent => participant,
            Notice::Refused {
                command: Command::NoteOn { participant, .. },
                reason: Refusal::UnknownParticipant,
                ..
            } => participant,
            _ => return,
        };
        let _ = self.control.send(RouterControl::Forget(participant));
    }

    /// Closes every connection, routes what is still queued and stops the threads. Returns
    /// the `[midi]` lines for what was played in learn mode.
    pub fn stop(mut self) -> Option<String> {
        self.shutdown().as_ref().map(MidiLearn::mapping_lines)
    }

    /// Stops routing and returns the learn lines like [`MidiInputs::stop`], but leaves the
    /// ports open for the process's exit to reclaim: libjack crashes when midir closes a port
    /// whose JACK server went away.
    pub fn abandon(mut self) -> Option<String> {
        self.stop_router.store(true, Ordering::Release);
        let learned = self.router.take().and_then(|t| t.join().ok().flatten());
        std::mem::forget(self);
        learned.as_ref().map(MidiLearn::mapping_lines)
    }

    fn shutdown(&mut self) -> Option<MidiLearn> {
        self.stop_watcher.store(true, Ordering::Relaxed);
        if let Some(thread) = self.watcher.take() {
            let _ = thread.join();
        }
        self.stop_router.store(true, Ordering::Release);
        self.router.take().and_then(|t| t.join().ok().flatten())
    }
}

impl Drop for MidiInputs {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens the virtual port (and finds out how to ask which sources feed it); its name, or
/// `None` where the platform has none or it failed.
#[cfg(unix)]
fn open_virtual(watcher: &mut Watcher) -> Option<String> {
    use midir::os::unix::VirtualInput;
    let name = watcher.map.virtual_port.clone();
    let input = match MidiInput::new(VIRTUAL_CLIENT) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("tapestry: cannot open the virtual MIDI port \"{name}\": {e}");
            return None;
        }
    };
    let handler = watcher.handler(&name, Arc::new(AtomicBool::new(false)));
    let (connection, peers) = VirtualPeers::around(&name, || {
        match input.create_virtual(&name, |_, bytes, h| h.handle(bytes), handler) {
            Ok(connection) => Some(connection),
            Err(e) => {
                eprintln!("tapestry: cannot open the virtual MIDI port \"{name}\": {e}");
                None
            }
        }
    });
    let connection = connection?;
    watcher.stats.ports.fetch_add(1, Ordering::Relaxed);
    watcher.stats.connections.fetch_add(1, Ordering::Relaxed);
    watcher.virtual_connection = Some(connection);
    watcher.peers = peers;
    Some(name)
}

/// No virtual ports on this platform.
#[cfg(not(unix))]
fn open_virtual(_watcher: &mut Watcher) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, Patch};
    use std::path::Path;

    const PATCH: &str = r#"
version = 1
[piece]
name = "t"
[score]
key = "C"
mode = "major"
tempo_bpm = 120
meter = "4/4"
[[score.sections]]
name = "main"
chords = ["I"]
[mood.energy]
[mood.tension]
[mood.brightness]
[mood.unity]
[[archetypes]]
id = "lead"
timbre = "lead"
register = [48, 84]
free = true
[midi]
ports = ["*"]
[[midi.participants]]
channel = 1
participant = 7
archetype = "lead"
"#;

    struct Fixture {
        engine: Engine,
        journal: crate::control::Journal,
        handler: PortHandler,
        router: Router,
        control: Sender<RouterControl>,
        clock: Arc<SampleClock>,
        t0: Instant,
    }

    fn fixture(capacity: usize) -> Fixture {
        let patch = Patch::parse(Path::new("t.toml"), PATCH).unwrap();
        let (mut engine, controller) = Engine::new(patch.config(48_000, None), patch.names());
        let journal = engine.enable_journal(64);
        let t0 = Instant::now();
        let clock = Arc::new(SampleClock::new(48_000, 256));
        clock.publish(0, t0);
        let stats = Arc::new(MidiInputStats::default());
        let queue = Arc::new(ArrayQueue::new(capacity));
        let (control, control_rx) = crossbeam_channel::unbounded();
        let router = Router {
            router: MidiRouter::new(patch.midi().clone()),
            learn: None,
            port_names: HashMap::new(),
            queue: queue.clone(),
            control: control_rx,
            controller,
            clock: clock.clone(),
            stats: stats.clone(),
        };
        let handler = PortHandler {
            port: 3,
            queue,
            stats,
            muted: Arc::new(AtomicBool::new(false)),
        };
        Fixture {
            engine,
            journal,
            handler,
            router,
            control,
            clock,
            t0,
        }
    }

    #[test]
    fn messages_cross_the_queue_and_keep_the_sample_they_arrived_at() {
        let mut f = fixture(16);
        f.control
            .send(RouterControl::Port(3, "keys".into()))
            .unwrap();
        // arrival 10 ms after the published block start: sample 480 plus one block of safety
        let arrived = f.t0 + Duration::from_millis(10);
        let raw = RawMessage::new(3, &[0x90, 69, 100], arrived);
        f.handler.queue.push(raw).unwrap();
        // the router runs later; the stamp must not move
        std::thread::sleep(Duration::from_millis(5));
        while let Some(raw) = f.router.queue.pop() {
            f.router.route(raw);
        }
        let expected = f.clock.sample_at(arrived);
        assert_eq!(expected, 480 + 256);
        let mut out = vec![0.0f32; 2 * 1024];
        f.engine.process(&mut out);
        let applied: Vec<_> = f.journal.try_iter().collect();
        assert_eq!(applied.len(), 2, "{applied:?}");
        assert!(matches!(
            applied[0].command,
            Command::Join { participant: 7, .. }
        ));
        assert_eq!(
            applied[1].command,
            Command::NoteOn {
                participant: 7,
                pitch: 69,
                velocity: 100
            }
        );
        assert!(applied.iter().all(|a| a.sample == expected));
        let counts = f.router.stats.snapshot();
        assert_eq!((counts.routed, counts.commands), (1, 2));
    }

    /// A SysEx of `len` bytes in all (status and end included), data bytes 0x11.
    fn sysex(len: usize) -> Vec<u8> {
        let mut bytes = vec![0x11; len.max(2)];
        bytes[0] = 0xF0;
        *bytes.last_mut().unwrap() = 0xF7;
        bytes
    }

    fn route_all(f: &mut Fixture) {
        while let Some(raw) = f.router.queue.pop() {
            f.router.route(raw);
        }
    }

    #[test]
    fn messages_no_mapping_covers_are_counted_by_kind() {
        let mut f = fixture(64);
        f.control
            .send(RouterControl::Port(3, "keys".into()))
            .unwrap();
        let messages: [&[u8]; 11] = [
            &[0xE0, 0, 80],   // channel 1: a bend before the first note, sent with the join
            &[0x90, 60, 100], // channel 1: participant 7's note
            &[0x91, 60, 100], // channel 2: no participant
            &[0x81, 60, 0],
            &[0xB1, 7, 100], // a controller no control maps
            &[0xE1, 0, 64],  // a bend without a participant
            &[0xC0, 5],      // a program change that cues nothing
            &[0xD0, 10],     // channel pressure
            &[0xF8],         // clock
            &[0xF1, 0x10],   // MTC quarter frame: not used
            &[0xFE],         // active sensing: not used
        ];
        for m in messages {
            f.handler.handle(m);
        }
        route_all(&mut f);
        let c = f.router.stats.snapshot();
        assert_eq!((c.messages, c.routed, c.malformed), (11, 1, 0), "{c:?}");
        assert_eq!(c.absorbed, 1);
        assert_eq!(
            (
                c.unmapped_notes,
                c.unmapped_controllers,
                c.unmapped_bends,
                c.unmapped_other,
                c.unsupported
            ),
            (2, 1, 1, 3, 2),
            "{c:?}"
        );
        assert_eq!(c.unmapped(), 7);
        assert_eq!(
            c.routed + c.unmapped() + c.absorbed + c.unsupported + c.sysex + c.malformed + c.lost(),
            c.messages,
            "every message is counted once"
        );
    }

    #[test]
    fn sysex_of_any_length_is_counted_not_lost_and_notes_around_it_play() {
        let mut f = fixture(64);
        f.control
            .send(RouterControl::Port(3, "keys".into()))
            .unwrap();
        let lengths = [2, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 300, 1 << 20];
        f.handler.handle(&[0x90, 60, 100]);
        for len in lengths {
            f.handler.handle(&sysex(len));
        }
        f.handler.handle(&[0x80, 60, 0]);
        route_all(&mut f);
        let counts = f.router.stats.snapshot();
        assert_eq!(counts.messages, lengths.len() as u64 + 2);
        assert_eq!(counts.sysex, lengths.len() as u64, "{counts:?}");
        assert_eq!((counts.lost(), counts.malformed), (0, 0), "{counts:?}");
        assert_eq!(counts.routed, 2, "the note on and off around them");
    }

    #[test]
    fn broken_sysex_is_malformed_on_both_sides_of_the_copied_length() {
        let mut f = fixture(64);
        let mut broken = Vec::new();
        for len in [MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 5000] {
            // a status byte inside, a missing end, and a wrong last byte
            let mut inside = sysex(len);
            inside[len / 2] = 0x90;
            let mut unterminated = sysex(len);
            *unterminated.last_mut().unwrap() = 0x11;
            let mut wrong_end = sysex(len);
            *wrong_end.last_mut().unwrap() = 0xF8;
            broken.extend([inside, unterminated, wrong_end]);
        }
        for bytes in &broken {
            f.handler.handle(bytes);
        }
        // a long message that is not a SysEx is no message at all
        f.handler.handle(&[0x90; 40]);
        route_all(&mut f);
        let counts = f.router.stats.snapshot();
        assert_eq!(counts.malformed, broken.len() as u64 + 1, "{counts:?}");
        assert_eq!((counts.sysex, counts.lost(), counts.routed), (0, 0, 0));
    }

    #[test]
    fn a_long_message_keeps_its_head_its_length_and_the_verdict() {
        let t0 = Instant::now();
        let long = sysex(1000);
        let raw = RawMessage::new(0, &long, t0);
        assert_eq!(raw.len(), 1000);
        assert_eq!(raw.bytes(), &long[..MAX_MESSAGE_BYTES]);
        assert_eq!(raw.parse(), Err(MidiError::Unsupported(0xF0)));
        let whole = [0x11; MAX_MESSAGE_BYTES];
        let raw = RawMessage::new(0, &whole, t0);
        assert_eq!((raw.len(), raw.bytes()), (MAX_MESSAGE_BYTES, &whole[..]));
        assert_eq!(raw.parse(), Err(MidiError::NoStatus(0x11)));
        let empty = RawMessage::new(0, &[], t0);
        assert!(empty.is_empty());
        assert_eq!(empty.parse(), Err(MidiError::Empty));
    }

    #[test]
    fn a_megabyte_of_sysex_makes_no_allocation_in_the_callback() {
        let mut f = fixture(4);
        let long = sysex(1 << 20);
        f.handler.handle(&long);
        f.handler.handle(&long);
        assert_eq!(f.handler.stats.snapshot().callback_allocations, 0);
        if crate::io::ALLOCATIONS_CHECKED {
            // the detector is live in this test binary: an allocation in the same place counts
            let ((), n) =
                crate::io::count_allocations(|| drop(std::hint::black_box(vec![0u8; 64])));
            assert!(n >= 1, "the allocation detector saw nothing");
        }
    }

    #[test]
    fn a_muted_port_counts_duplicates_and_hands_nothing_over() {
        let mut f = fixture(16);
        f.handler.muted.store(true, Ordering::Relaxed);
        f.handler.handle(&[0x90, 60, 100]);
        f.handler.handle(&sysex(100));
        f.handler.muted.store(false, Ordering::Relaxed);
        f.handler.handle(&[0x80, 60, 0]);
        let counts = f.handler.stats.snapshot();
        assert_eq!((counts.duplicates, counts.messages), (2, 1));
        assert_eq!(f.router.queue.len(), 1);
    }

    /// 20 000 generated messages of 0 to 3000 bytes (SysEx with a stray status or no end now
    /// and then, channel messages, random bytes): what the router gets from a callback's copy
    /// is what parsing the whole message gives, and every message is counted exactly once.
    #[test]
    fn generated_messages_keep_their_verdict_through_the_callback() {
        let mut f = fixture(64);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut events, mut sysex, mut malformed) = (0, 0, 0);
        for i in 0..20_000 {
            let len = match next() % 4 {
                0 => (next() % 4) as usize,
                1 => (next() % (2 * MAX_MESSAGE_BYTES as u64)) as usize,
                _ => (next() % 3000) as usize,
            };
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            match i % 3 {
                // a SysEx, a status byte inside now and then, its end byte usually there
                0 if len >= 2 => {
                    bytes.iter_mut().for_each(|b| *b &= 0x7F);
                    bytes[0] = 0xF0;
                    if next() % 500 == 0 {
                        bytes[1 + (next() as usize) % (len - 1)] = 0x90;
                    }
                    if next() % 8 != 0 {
                        bytes[len - 1] = 0xF7;
                    }
                }
                // a channel message, most often of the right length
                1 => {
                    bytes = vec![
                        0x80 | next() as u8,
                        next() as u8 & 0x7F,
                        next() as u8 & 0x7F,
                    ];
                    bytes.truncate(if next() % 8 == 0 { len.min(3) } else { 3 });
                }
                // anything
                _ => {}
            }
            let raw = RawMessage::new(0, &bytes, f.t0);
            let whole = parse_message(&bytes);
            assert_eq!(raw.parse(), whole, "{} bytes", bytes.len());
            assert_eq!(raw.len(), bytes.len());
            match whole {
                Ok(_) => events += 1,
                Err(MidiError::Unsupported(0xF0)) => sysex += 1,
                Err(e) if e.is_malformed() => malformed += 1,
                Err(_) => {}
            }
            f.handler.handle(&bytes);
            route_all(&mut f);
        }
        let counts = f.router.stats.snapshot();
        assert_eq!((counts.messages, counts.lost()), (20_000, 0));
        assert_eq!((counts.sysex, counts.malformed), (sysex, malformed));
        assert!(counts.routed <= events, "{counts:?}");
        assert!(
            sysex > 2_000 && malformed > 2_000 && events > 2_000,
            "{counts:?}, {events} events"
        );
        assert_eq!(counts.callback_allocations, 0);
    }

    #[test]
    fn a_full_queue_is_counted_and_dropped() {
        let mut f = fixture(2);
        for _ in 0..5 {
            f.handler.handle(&[0x90, 60, 1]);
        }
        let counts = f.handler.stats.snapshot();
        assert_eq!(counts.messages, 5);
        assert_eq!(counts.queue_full, 3);
        assert_eq!(counts.lost(), 3);
        assert_eq!(f.router.queue.len(), 2);
        // a short malformed message is handed over and counted by the router
        while f.router.queue.pop().is_some() {}
        f.handler.handle(&[0x90, 0x90]);
        let raw = f.router.queue.pop().unwrap();
        f.router.route(raw);
        assert_eq!(f.router.stats.snapshot().malformed, 1);
    }
}
