//! MIDI devices (midir): listing input ports and listening to them live. The device side of
//! [`crate::input::midi`], whose parser, router and learn mode it feeds.
//!
//! [`MidiInputs::start`] connects to every input port a patch's `[midi]` `ports` select,
//! opens a virtual input port named after `virtual_port` where the platform has them (ALSA,
//! CoreMIDI, JACK), and keeps a watcher thread that re-scans the ports every
//! [`RESCAN_INTERVAL`]: ports that appear later are connected, ports that disappear are
//! closed (and connected again if they come back).
//!
//! Each port's callback runs on midir's thread (with the `jack` feature, a JACK client's
//! process thread — never the engine's audio thread). It parses the message with
//! [`parse_message`], routes it through one [`MidiRouter`] shared by every port behind a
//! mutex (so a participant joins once, whichever port plays it first), stamps every command
//! with [`Timing::At`] the sample its arrival maps to on the [`SampleClock`], and posts it
//! through the [`Controller`]. Nothing on the way allocates except what midir does itself.
//! Counters are atomics ([`MidiInputStats`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use midir::{Ignore, MidiInput, MidiInputConnection};

use crate::control::{Command, Controller, Message, Notice, Refusal, Timing};
use crate::input::midi::{parse_message, MidiLearn, MidiMap, MidiRouter};
use crate::input::SampleClock;

/// How often the watcher looks for new ports.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

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
            ports: r(&self.ports),
            connections: r(&self.connections),
            connect_errors: r(&self.connect_errors),
        }
    }
}

/// What every port's callback shares: the router (joins are remembered across ports) and
/// the learn state.
struct Routing {
    router: MidiRouter,
    learn: Option<MidiLearn>,
}

/// What one port's callback owns.
struct PortHandler {
    /// The port's name, as the map's `port` filters see it.
    port: String,
    routing: Arc<Mutex<Routing>>,
    controller: Controller,
    clock: Arc<SampleClock>,
    stats: Arc<MidiInputStats>,
}

impl PortHandler {
    fn handle(&mut self, bytes: &[u8]) {
        let received = Instant::now();
        let stats = &self.stats;
        stats.messages.fetch_add(1, Ordering::Relaxed);
        let event = match parse_message(bytes) {
            Ok(event) => event,
            Err(e) => {
                if e.is_malformed() {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        let at = Timing::At(self.clock.sample_at(received));
        // a poisoned lock only means another port's callback panicked; the state is plain data
        let mut routing = self.routing.lock().unwrap_or_else(|p| p.into_inner());
        let Routing { router, learn } = &mut *routing;
        if let Some(learn) = learn {
            learn.observe(event);
        }
        let mut produced = false;
        let controller = &self.controller;
        router.route(&self.port, event, &mut |command| {
            produced = true;
            match controller.send(Message { at, command }) {
                Ok(()) => stats.commands.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.dropped.fetch_add(1, Ordering::Relaxed),
            };
        });
        if produced {
            stats.routed.fetch_add(1, Ordering::Relaxed);
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

/// Live MIDI input: connections to the selected ports, a virtual port and the watcher
/// thread. Stops when [`stop`](Self::stop)ped or dropped.
pub struct MidiInputs {
    stats: Arc<MidiInputStats>,
    routing: Arc<Mutex<Routing>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    virtual_port: Option<String>,
}

/// The watcher thread's state.
struct Watcher {
    map: MidiMap,
    scanner: MidiInput,
    routing: Arc<Mutex<Routing>>,
    controller: Controller,
    clock: Arc<SampleClock>,
    stats: Arc<MidiInputStats>,
    /// Open connections by port id, with the port's name.
    connections: HashMap<String, (String, MidiInputConnection<PortHandler>)>,
    virtual_connection: Option<MidiInputConnection<PortHandler>>,
}

impl Watcher {
    fn handler(&self, port: &str) -> PortHandler {
        PortHandler {
            port: port.to_string(),
            routing: self.routing.clone(),
            controller: self.controller.clone(),
            clock: self.clock.clone(),
            stats: self.stats.clone(),
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
            if let Some((name, connection)) = self.connections.remove(&id) {
                connection.close();
                self.stats.ports.fetch_sub(1, Ordering::Relaxed);
                eprintln!("tapestry: MIDI port \"{name}\" is gone");
            }
        }
        for (id, name) in now {
            if self.connections.contains_key(&id) || !self.map.listens_to(&name) {
                continue;
            }
            let port = self.scanner.ports().into_iter().find(|p| p.id() == id);
            let (Some(port), Ok(mut input)) = (port, MidiInput::new(INPUT_CLIENT)) else {
                self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            input.ignore(Ignore::None);
            let handler = self.handler(&name);
            match input.connect(&port, "in", |_, bytes, h| h.handle(bytes), handler) {
                Ok(connection) => {
                    self.stats.ports.fetch_add(1, Ordering::Relaxed);
                    self.stats.connections.fetch_add(1, Ordering::Relaxed);
                    eprintln!("tapestry: listening to MIDI port \"{name}\"");
                    self.connections.insert(id, (name, connection));
                }
                Err(e) => {
                    self.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("tapestry: cannot connect MIDI port \"{name}\": {e}");
                }
            }
        }
    }

    fn close_all(&mut self) {
        for (_, (_, connection)) in self.connections.drain() {
            connection.close();
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
    /// ports appearing later. Commands go through `controller`, stamped with `clock`. With
    /// `learn`, every event also feeds a [`MidiLearn`] (see [`learn_lines`](Self::learn_lines)).
    pub fn start(
        map: MidiMap,
        controller: Controller,
        clock: Arc<SampleClock>,
        learn: bool,
    ) -> Result<MidiInputs, MidiDeviceError> {
        let scanner =
            MidiInput::new(SCAN_CLIENT).map_err(|e| MidiDeviceError::Init(e.to_string()))?;
        let stats = Arc::new(MidiInputStats::default());
        let routing = Arc::new(Mutex::new(Routing {
            router: MidiRouter::new(map.clone()),
            learn: learn.then(MidiLearn::new),
        }));
        let mut watcher = Watcher {
            map,
            scanner,
            routing: routing.clone(),
            controller,
            clock,
            stats: stats.clone(),
            connections: HashMap::new(),
            virtual_connection: None,
        };
        let virtual_port = open_virtual(&mut watcher);
        watcher.scan();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tapestry-midi".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                        if last.elapsed() >= RESCAN_INTERVAL {
                            last = Instant::now();
                            watcher.scan();
                        }
                    }
                    watcher.close_all();
                })?
        };
        Ok(MidiInputs {
            stats,
            routing,
            stop,
            thread: Some(thread),
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
        let mut routing = self.routing.lock().unwrap_or_else(|p| p.into_inner());
        routing.router.forget(participant);
    }

    /// In learn mode, the `[midi]` lines for what was played so far.
    pub fn learn_lines(&self) -> Option<String> {
        let routing = self.routing.lock().unwrap_or_else(|p| p.into_inner());
        routing.learn.as_ref().map(MidiLearn::mapping_lines)
    }

    /// Closes every connection and stops the watcher. Returns the learn lines in learn mode.
    pub fn stop(mut self) -> Option<String> {
        self.shutdown();
        self.learn_lines()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MidiInputs {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens the virtual port; its name, or `None` where the platform has none or it failed.
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
    let handler = watcher.handler(&name);
    match input.create_virtual(&name, |_, bytes, h| h.handle(bytes), handler) {
        Ok(connection) => {
            watcher.stats.ports.fetch_add(1, Ordering::Relaxed);
            watcher.stats.connections.fetch_add(1, Ordering::Relaxed);
            watcher.virtual_connection = Some(connection);
            Some(name)
        }
        Err(e) => {
            eprintln!("tapestry: cannot open the virtual MIDI port \"{name}\": {e}");
            None
        }
    }
}

/// No virtual ports on this platform.
#[cfg(not(unix))]
fn open_virtual(_watcher: &mut Watcher) -> Option<String> {
    None
}
