//! Which source ports feed Tapestry's virtual input port directly, so that the watcher does
//! not hear them a second time through its own connection.
//!
//! A source connected to the virtual port (by the performer, a patchbay or a session
//! manager) delivers every message there; if `[midi] ports` also selects it, the watcher's
//! own connection delivers it again. Neither JACK nor midir tells a port callback which
//! source a message came from, so the watcher asks the MIDI system which sources are
//! connected to the virtual port and mutes its own connection to each of them:
//!
//! - **JACK** (`--features jack`): the connections of the virtual port
//!   (`jack_port_get_connections`, through the `jack` crate; it reads the server's shared
//!   graph, no round trip).
//! - **ALSA** (Linux without `jack`): the subscribers that write to the virtual port
//!   (`snd_seq_query_port_subscribers`, through the `alsa` crate), in midir's port id form
//!   `client:port`.
//! - **CoreMIDI** and elsewhere: nothing to ask. A CoreMIDI virtual destination has no
//!   connections: an app sends to it directly, and CoreMIDI does not say where that stream
//!   came from. Only an app that forwards a source `ports` also selects (a patchbay) makes
//!   it heard twice there; the docs say to leave such a source out of `ports`. (Windows has
//!   no virtual ports.)
//!
//! Which port is ours is found by listing the input ports with the virtual port's name
//! before and after midir creates it: the one that appeared.

/// A way to ask which sources are connected to the virtual port.
pub(super) struct VirtualPeers(imp::Peers);

impl VirtualPeers {
    /// Runs `create` (which opens the virtual port named `port_name`) and finds the port it
    /// made. The port comes back whatever happens; the peers only when the MIDI system can
    /// be asked and the new port was found.
    pub(super) fn around<R>(
        port_name: &str,
        create: impl FnOnce() -> Option<R>,
    ) -> (Option<R>, Option<VirtualPeers>) {
        let asker = imp::Asker::open();
        let before = asker.as_ref().map(|a| a.candidates(port_name));
        let created = create();
        let peers = match (asker, before, &created) {
            (Some(asker), Some(before), Some(_)) => {
                let mut new = asker.candidates(port_name);
                new.retain(|p| !before.contains(p));
                match new.len() {
                    1 => Some(VirtualPeers(asker.peers(new.remove(0)))),
                    _ => None,
                }
            }
            _ => None,
        };
        (created, peers)
    }

    /// The ids (as midir's `MidiInputPort::id` gives them) of the source ports connected to
    /// the virtual port now, into `out` (cleared first).
    pub(super) fn sources(&self, out: &mut Vec<String>) {
        out.clear();
        self.0.sources(out);
    }

    /// The virtual port's full name in the MIDI system.
    pub(super) fn name(&self) -> &str {
        self.0.name()
    }
}

#[cfg(feature = "jack")]
mod imp {
    use jack::{Client, ClientOptions, PortFlags};

    /// A JACK client that only reads the graph (never activated).
    pub(super) struct Asker(Client);

    pub(super) struct Peers {
        client: Client,
        port: String,
    }

    impl Asker {
        pub(super) fn open() -> Option<Asker> {
            Client::new("tapestry-peers", ClientOptions::NO_START_SERVER)
                .ok()
                .map(|(client, _)| Asker(client))
        }

        /// Full names of the MIDI input ports called `port_name`, of any client.
        pub(super) fn candidates(&self, port_name: &str) -> Vec<String> {
            let mut ports = self.0.ports(None, Some("midi"), PortFlags::IS_INPUT);
            ports.retain(|p| {
                p.rsplit_once(':')
                    .is_some_and(|(_, short)| short == port_name)
            });
            ports
        }

        pub(super) fn peers(self, port: String) -> Peers {
            Peers {
                client: self.0,
                port,
            }
        }
    }

    impl Peers {
        pub(super) fn sources(&self, out: &mut Vec<String>) {
            if let Some(port) = self.client.port_by_name(&self.port) {
                out.extend(port.get_connections());
            }
        }

        pub(super) fn name(&self) -> &str {
            &self.port
        }
    }
}

#[cfg(all(target_os = "linux", not(feature = "jack")))]
mod imp {
    use alsa::seq::{Addr, ClientIter, PortCap, PortIter, PortSubscribeIter, QuerySubsType, Seq};

    /// An ALSA sequencer client that only asks (no ports of its own).
    pub(super) struct Asker(Seq);

    pub(super) struct Peers {
        seq: Seq,
        port: Addr,
        name: String,
    }

    impl Asker {
        pub(super) fn open() -> Option<Asker> {
            let seq = Seq::open(None, None, false).ok()?;
            let _ = seq.set_client_name(c"tapestry-peers");
            Some(Asker(seq))
        }

        /// Addresses of the writable ports called `port_name`, of any client.
        pub(super) fn candidates(&self, port_name: &str) -> Vec<Addr> {
            let writable = PortCap::WRITE | PortCap::SUBS_WRITE;
            ClientIter::new(&self.0)
                .flat_map(|client| PortIter::new(&self.0, client.get_client()))
                .filter(|port| port.get_capability().contains(writable))
                .filter(|port| port.get_name().is_ok_and(|name| name == port_name))
                .map(|port| port.addr())
                .collect()
        }

        pub(super) fn peers(self, port: Addr) -> Peers {
            Peers {
                seq: self.0,
                port,
                name: format!("{}:{}", port.client, port.port),
            }
        }
    }

    impl Peers {
        pub(super) fn sources(&self, out: &mut Vec<String>) {
            let subscriptions = PortSubscribeIter::new(&self.seq, self.port, QuerySubsType::WRITE);
            out.extend(subscriptions.map(|s| {
                let sender = s.get_sender();
                format!("{}:{}", sender.client, sender.port)
            }));
        }

        pub(super) fn name(&self) -> &str {
            &self.name
        }
    }
}

#[cfg(not(any(feature = "jack", target_os = "linux")))]
mod imp {
    /// Nothing to ask on this platform (see the module doc).
    pub(super) struct Asker;

    pub(super) struct Peers;

    impl Asker {
        pub(super) fn open() -> Option<Asker> {
            None
        }

        pub(super) fn candidates(&self, _port_name: &str) -> Vec<()> {
            Vec::new()
        }

        pub(super) fn peers(self, _port: ()) -> Peers {
            Peers
        }
    }

    impl Peers {
        pub(super) fn sources(&self, _out: &mut Vec<String>) {}

        pub(super) fn name(&self) -> &str {
            ""
        }
    }
}
