//! Fair forwarding from the OSC server to the engine: every client address has a bounded
//! queue of its own on the server's thread, and the queues are posted into the engine's ring
//! round-robin, one message per client in turn, as the audio thread makes room. All OSC
//! clients share one [`Controller`](crate::Controller) (one ring, whose room a flooding
//! client would otherwise take from everyone); here a flooder only fills its own queue.
//! Pure (the posting is a closure), so it is tested exactly.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::control::limits::osc::{CLIENT_QUEUE, QUEUED_TOTAL};
use crate::control::Message;

/// Per-client queues to the engine, forwarded round-robin.
#[derive(Debug, Default)]
pub struct Forwarder {
    queues: HashMap<SocketAddr, VecDeque<Message>>,
    /// Addresses with something queued, in the order they are served.
    turn: VecDeque<SocketAddr>,
    queued: usize,
}

/// Why a message could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFull {
    /// The client's own queue holds [`CLIENT_QUEUE`] messages.
    Client,
    /// All queues together hold [`QUEUED_TOTAL`].
    Total,
}

impl Forwarder {
    /// An empty forwarder.
    pub fn new() -> Forwarder {
        Forwarder::default()
    }

    /// Queues a message of `from` behind its earlier ones.
    pub fn push(&mut self, from: SocketAddr, message: Message) -> Result<(), QueueFull> {
        if self.queued >= QUEUED_TOTAL {
            return Err(QueueFull::Total);
        }
        let queue = self.queues.entry(from).or_default();
        if queue.len() >= CLIENT_QUEUE {
            return Err(QueueFull::Client);
        }
        if queue.is_empty() {
            self.turn.push_back(from);
        }
        queue.push_back(message);
        self.queued += 1;
        Ok(())
    }

    /// Messages waiting, in all queues.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Messages waiting from `from`.
    pub fn queued_from(&self, from: SocketAddr) -> usize {
        self.queues.get(&from).map_or(0, VecDeque::len)
    }

    /// Posts up to `room` messages, one per client in turn, each with `post`. A client
    /// whose queue empties leaves the turn (and its queue is freed). Returns how many were
    /// posted.
    pub fn forward(&mut self, room: usize, mut post: impl FnMut(SocketAddr, Message)) -> usize {
        let mut posted = 0;
        while posted < room {
            let Some(from) = self.turn.pop_front() else {
                break;
            };
            let Some(queue) = self.queues.get_mut(&from) else {
                continue;
            };
            if let Some(message) = queue.pop_front() {
                post(from, message);
                posted += 1;
                self.queued -= 1;
            }
            if queue.is_empty() {
                self.queues.remove(&from);
            } else {
                self.turn.push_back(from);
            }
        }
        posted
    }

    /// Drops everything queued (the engine is gone); returns how many messages that was.
    pub fn clear(&mut self) -> usize {
        let dropped = self.queued;
        self.queues.clear();
        self.turn.clear();
        self.queued = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Command, Timing};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn cue(n: u16) -> Message {
        Message {
            at: Timing::Immediate,
            command: Command::Cue { section: n },
        }
    }

    #[test]
    fn a_flooding_client_waits_in_its_own_queue_and_the_others_are_served_in_turn() {
        let mut f = Forwarder::new();
        for i in 0..CLIENT_QUEUE as u16 {
            f.push(addr(1), cue(i)).unwrap();
        }
        assert_eq!(f.push(addr(1), cue(0)), Err(QueueFull::Client));
        f.push(addr(2), cue(100)).unwrap();
        f.push(addr(2), cue(101)).unwrap();
        f.push(addr(3), cue(200)).unwrap();
        let mut out = Vec::new();
        assert_eq!(f.forward(5, |from, m| out.push((from.port(), m))), 5);
        let order: Vec<(u16, Message)> = vec![
            (1, cue(0)),
            (2, cue(100)),
            (3, cue(200)),
            (1, cue(1)),
            (2, cue(101)),
        ];
        assert_eq!(out, order, "one per client in turn, each in its own order");
        assert_eq!(f.queued_from(addr(2)), 0);
        assert_eq!(f.queued(), CLIENT_QUEUE - 2);
        // the flooder's queue drains as room frees, in its order
        let mut rest = Vec::new();
        f.forward(usize::MAX, |_, m| rest.push(m));
        assert_eq!(rest.len(), CLIENT_QUEUE - 2);
        assert_eq!(rest[0], cue(2));
        assert_eq!(f.queued(), 0);
        assert!(f.queues.is_empty() && f.turn.is_empty());
    }

    #[test]
    fn all_queues_together_are_bounded() {
        let mut f = Forwarder::new();
        let clients = QUEUED_TOTAL / CLIENT_QUEUE;
        for c in 0..clients as u16 {
            for _ in 0..CLIENT_QUEUE {
                f.push(addr(c), cue(0)).unwrap();
            }
        }
        assert_eq!(f.push(addr(9999), cue(0)), Err(QueueFull::Total));
        assert_eq!(f.forward(1, |_, _| {}), 1);
        assert!(f.push(addr(9999), cue(0)).is_ok());
        assert_eq!(f.clear(), QUEUED_TOTAL);
        assert_eq!(f.forward(10, |_, _| {}), 0);
    }
}
