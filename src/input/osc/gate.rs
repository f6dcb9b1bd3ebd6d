//! Who may put how much into the engine, and who gets answers: the OSC server's budgets per
//! client address and its reply handshake. Pure (no sockets; instants and samples are
//! given), so it is tested exactly.
//!
//! - **Datagram budget.** Before a datagram is decoded, its source address is checked
//!   against a datagram rate ([`CLIENT_DATAGRAMS_PER_SEC`]) and a byte rate
//!   ([`CLIENT_BYTES_PER_SEC`]); past either it is dropped unread. Decoding is what costs
//!   (a bundle of 1000 messages takes about 100 µs), so a flooder costs one table lookup per
//!   datagram and the server keeps reading what the kernel delivers, the other clients' too.
//! - **Participants.** Each client address may have at most [`CLIENT_PARTICIPANTS`] joined
//!   at once (the last address to join an id holds it; a leave from anyone frees it).
//! - **Budgets.** Each client address may hand the engine at most
//!   [`CLIENT_RATE_PER_SEC`] messages per second (bursts of [`CLIENT_BURST`]) and keep at most
//!   [`CLIENT_SCHEDULED`] future-dated messages pending, and all clients together at most
//!   [`SCHEDULED_TOTAL`]; nothing may be stamped beyond the engine's horizon. So one client
//!   cannot use up the OSC source's share of the engine's schedule for the others.
//! - **Replies.** A reply is never larger than the request that caused it unless the
//!   address proved it receives what is sent there: `/tapestry/hello` is answered with a
//!   cookie (a keyed hash of the address, no larger than the request); an address that sends
//!   it back with `/tapestry/subscribe` gets acks and status replies from then on. A spoofed
//!   source address never sees its cookie, so Tapestry cannot be used as an amplifier.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::DropKind;
use crate::control::limits::osc::{
    CLIENT_BURST, CLIENT_BYTES_PER_SEC, CLIENT_BYTE_BURST, CLIENT_DATAGRAMS_PER_SEC,
    CLIENT_DATAGRAM_BURST, CLIENT_PARTICIPANTS, CLIENT_RATE_PER_SEC, CLIENT_SCHEDULED,
    HORIZON_MARGIN_SECS, MAX_CLIENTS, MAX_SUBSCRIBERS, NEAR_SECS, SCHEDULED_TOTAL,
    SUBSCRIPTION_SECS,
};
use crate::control::ParticipantId;

/// One client address's budget.
#[derive(Debug)]
struct Client {
    tokens: f64,
    refilled: Instant,
    last_heard: Instant,
    /// Due samples of its future-dated messages handed over and not yet due.
    scheduled: BinaryHeap<Reverse<u64>>,
    /// Datagram and byte budgets, refilled at `datagrams_refilled`.
    datagrams: f64,
    bytes: f64,
    datagrams_refilled: Instant,
    /// Participants it holds (see [`Gate::join`]).
    joined: u32,
}

impl Client {
    fn new(now: Instant) -> Client {
        Client {
            tokens: CLIENT_BURST,
            refilled: now,
            last_heard: now,
            scheduled: BinaryHeap::new(),
            datagrams: CLIENT_DATAGRAM_BURST,
            bytes: CLIENT_BYTE_BURST,
            datagrams_refilled: now,
            joined: 0,
        }
    }

    /// Spends one datagram of `len` bytes from the budgets if both allow it.
    fn spend_datagram(&mut self, len: usize, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.datagrams_refilled)
            .as_secs_f64();
        self.datagrams_refilled = now;
        self.datagrams =
            (self.datagrams + elapsed * CLIENT_DATAGRAMS_PER_SEC).min(CLIENT_DATAGRAM_BURST);
        self.bytes = (self.bytes + elapsed * CLIENT_BYTES_PER_SEC).min(CLIENT_BYTE_BURST);
        let len = len as f64;
        if self.datagrams < 1.0 || self.bytes < len {
            return false;
        }
        self.datagrams -= 1.0;
        self.bytes -= len;
        true
    }

    fn expire(&mut self, now_sample: u64) {
        expire(&mut self.scheduled, now_sample);
    }
}

fn expire(due: &mut BinaryHeap<Reverse<u64>>, now_sample: u64) {
    while due.peek().is_some_and(|Reverse(at)| *at <= now_sample) {
        due.pop();
    }
}

/// A message judged admissible: whether it is future-dated (counted against the shares
/// once it has been handed over, see [`Gate::handed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Due more than [`NEAR_SECS`] ahead.
    pub scheduled: bool,
}

/// Budgets per client address and the reply handshake.
#[derive(Debug)]
pub struct Gate {
    clients: HashMap<SocketAddr, Client>,
    /// The budget shared by new addresses when every tracked one has messages pending.
    overflow: Client,
    scheduled_total: BinaryHeap<Reverse<u64>>,
    /// Which address holds each participant joined through the server.
    owners: HashMap<ParticipantId, SocketAddr>,
    subscribers: HashMap<SocketAddr, Instant>,
    secret: RandomState,
    horizon_samples: u64,
    near_samples: u64,
}

impl Gate {
    /// A gate for an engine at `sample_rate` Hz that schedules at most `horizon_secs` ahead.
    /// Its cookie secret is drawn from the operating system's randomness.
    pub fn new(sample_rate: u32, horizon_secs: f64, now: Instant) -> Gate {
        let sr = sample_rate as f64;
        let horizon = (horizon_secs - HORIZON_MARGIN_SECS).max(0.0);
        Gate {
            clients: HashMap::new(),
            overflow: Client::new(now),
            scheduled_total: BinaryHeap::new(),
            owners: HashMap::new(),
            subscribers: HashMap::new(),
            secret: RandomState::new(),
            horizon_samples: (horizon * sr) as u64,
            near_samples: (NEAR_SECS * sr) as u64,
        }
    }

    /// Notes that a packet came from `from` at `now`.
    pub fn heard(&mut self, from: SocketAddr, now: Instant) {
        self.client(from, now, None).last_heard = now;
        if let Some(seen) = self.subscribers.get_mut(&from) {
            *seen = now;
        }
    }

    /// Judges a datagram of `len` bytes from `from` before it is decoded (and notes that it
    /// was heard): refused ([`DropKind::OverBudget`]) past the address's datagram or byte
    /// rate.
    pub fn admit_datagram(
        &mut self,
        from: SocketAddr,
        len: usize,
        now: Instant,
    ) -> Result<(), DropKind> {
        self.heard(from, now);
        if self.client(from, now, None).spend_datagram(len, now) {
            Ok(())
        } else {
            Err(DropKind::OverBudget)
        }
    }

    /// Judges a join of `participant` by `from`: refused ([`DropKind::ParticipantQuota`])
    /// when the address already holds [`CLIENT_PARTICIPANTS`]. Admitted, the address holds
    /// the id (taken over from whoever held it) until someone sends its leave ([`Gate::left`]).
    pub fn join(
        &mut self,
        from: SocketAddr,
        participant: ParticipantId,
        now: Instant,
    ) -> Result<(), DropKind> {
        if self.owners.get(&participant) == Some(&from) {
            return Ok(()); // the engine says whether it is already present
        }
        let client = self.client(from, now, None);
        if client.joined >= CLIENT_PARTICIPANTS {
            return Err(DropKind::ParticipantQuota);
        }
        client.joined += 1;
        if let Some(previous) = self.owners.insert(participant, from) {
            self.release(previous);
        }
        Ok(())
    }

    /// Notes that `participant` was sent its leave: its holder's place is free.
    pub fn left(&mut self, participant: ParticipantId) {
        if let Some(owner) = self.owners.remove(&participant) {
            self.release(owner);
        }
    }

    /// Participants `from` holds.
    pub fn joined(&self, from: SocketAddr) -> u32 {
        self.clients.get(&from).map_or(0, |c| c.joined)
    }

    fn release(&mut self, owner: SocketAddr) {
        let client = self.clients.get_mut(&owner).unwrap_or(&mut self.overflow);
        client.joined = client.joined.saturating_sub(1);
    }

    /// Judges a message from `from` due at sample `at`, the clock saying `now_sample`
    /// (arrivals map there) at `now`: refused beyond the horizon, over the client's rate, or
    /// future-dated past the client's or everyone's share. Admitting spends one message of
    /// the client's rate.
    pub fn admit(
        &mut self,
        from: SocketAddr,
        at: u64,
        now_sample: u64,
        now: Instant,
    ) -> Result<Admitted, DropKind> {
        let ahead = at.saturating_sub(now_sample);
        if ahead > self.horizon_samples {
            return Err(DropKind::TooFarAhead);
        }
        let scheduled = ahead > self.near_samples;
        expire(&mut self.scheduled_total, now_sample);
        let total_full = self.scheduled_total.len() >= SCHEDULED_TOTAL;
        let client = self.client(from, now, Some(now_sample));
        client.expire(now_sample);
        if scheduled && (total_full || client.scheduled.len() >= CLIENT_SCHEDULED) {
            return Err(DropKind::ScheduleShare);
        }
        let elapsed = now.saturating_duration_since(client.refilled).as_secs_f64();
        client.tokens = (client.tokens + elapsed * CLIENT_RATE_PER_SEC).min(CLIENT_BURST);
        client.refilled = now;
        if client.tokens < 1.0 {
            return Err(DropKind::OverRate);
        }
        client.tokens -= 1.0;
        Ok(Admitted { scheduled })
    }

    /// Records that an admitted message due at `at` was handed to the engine.
    pub fn handed(&mut self, from: SocketAddr, at: u64, admitted: Admitted, now: Instant) {
        if admitted.scheduled {
            self.client(from, now, None).scheduled.push(Reverse(at));
            self.scheduled_total.push(Reverse(at));
        }
    }

    /// Future-dated messages pending: from one client, and from all.
    pub fn scheduled(&self, from: SocketAddr) -> (usize, usize) {
        let own = self.clients.get(&from).map_or(0, |c| c.scheduled.len());
        (own, self.scheduled_total.len())
    }

    /// The budget of `from`, created if new: past [`MAX_CLIENTS`] the least recently heard
    /// address with nothing scheduled is forgotten, else the overflow budget is used.
    fn client(&mut self, from: SocketAddr, now: Instant, now_sample: Option<u64>) -> &mut Client {
        if !self.clients.contains_key(&from) && self.clients.len() >= MAX_CLIENTS {
            if let Some(now_sample) = now_sample {
                for c in self.clients.values_mut() {
                    c.expire(now_sample);
                }
            }
            let idle = self
                .clients
                .iter()
                .filter(|(_, c)| c.scheduled.is_empty())
                .min_by_key(|(_, c)| (c.joined > 0, c.last_heard))
                .map(|(addr, _)| *addr);
            match idle {
                Some(addr) => {
                    let forgotten = self.clients.remove(&addr);
                    if forgotten.is_some_and(|c| c.joined > 0) {
                        // its participants are no longer counted against anyone
                        self.owners.retain(|_, owner| *owner != addr);
                    }
                }
                None => return &mut self.overflow,
            }
        }
        self.clients.entry(from).or_insert_with(|| Client::new(now))
    }

    /// The cookie of an address: a keyed hash of its IP and port, the key secret to this
    /// server. Non-negative, so it reads back the same from any OSC library.
    pub fn cookie(&self, from: SocketAddr) -> i64 {
        (self.secret.hash_one((from.ip(), from.port())) >> 1) as i64
    }

    /// Subscribes `from` to replies if `cookie` is its cookie; false otherwise.
    pub fn subscribe(&mut self, from: SocketAddr, cookie: i64, now: Instant) -> bool {
        if cookie != self.cookie(from) {
            return false;
        }
        if !self.subscribers.contains_key(&from) && self.subscribers.len() >= MAX_SUBSCRIBERS {
            let oldest = self
                .subscribers
                .iter()
                .min_by_key(|(_, seen)| **seen)
                .map(|(addr, _)| *addr);
            if let Some(addr) = oldest {
                self.subscribers.remove(&addr);
            }
        }
        self.subscribers.insert(from, now);
        true
    }

    /// Whether `from` gets replies: it subscribed and was heard from within
    /// [`SUBSCRIPTION_SECS`].
    pub fn is_subscriber(&mut self, from: SocketAddr, now: Instant) -> bool {
        let window = Duration::from_secs(SUBSCRIPTION_SECS);
        match self.subscribers.get(&from) {
            Some(seen) if now.saturating_duration_since(*seen) <= window => true,
            Some(_) => {
                self.subscribers.remove(&from);
                false
            }
            None => false,
        }
    }

    /// Addresses subscribed to replies.
    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: u32 = 48_000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn secs(s: f64) -> u64 {
        (s * SR as f64) as u64
    }

    #[test]
    fn messages_beyond_the_horizon_are_refused_and_near_ones_are_not_scheduled() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let now = secs(100.0);
        assert_eq!(
            g.admit(addr(1), now + secs(9.5), now, t),
            Err(DropKind::TooFarAhead),
            "within the margin below the engine's horizon"
        );
        assert_eq!(
            g.admit(addr(1), now + secs(365.0 * 86_400.0), now, t),
            Err(DropKind::TooFarAhead)
        );
        assert_eq!(
            g.admit(addr(1), now + secs(0.1), now, t),
            Ok(Admitted { scheduled: false })
        );
        assert_eq!(
            g.admit(addr(1), now + secs(8.0), now, t),
            Ok(Admitted { scheduled: true })
        );
        assert_eq!(
            g.admit(addr(1), 0, now, t),
            Ok(Admitted { scheduled: false })
        );
    }

    #[test]
    fn one_client_cannot_use_up_the_scheduled_share_of_the_others() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let now = secs(10.0);
        let later = now + secs(5.0);
        let mut passed = 0;
        for _ in 0..900 {
            if let Ok(a) = g.admit(addr(1), later, now, t) {
                g.handed(addr(1), later, a, t);
                passed += 1;
            }
        }
        assert_eq!(passed, CLIENT_SCHEDULED);
        assert_eq!(
            g.admit(addr(1), later, now, t),
            Err(DropKind::ScheduleShare)
        );
        // live messages of the same client still pass
        assert!(g.admit(addr(1), now, now, t).is_ok());
        // and another client has its own share
        let a = g.admit(addr(2), later, now, t).unwrap();
        g.handed(addr(2), later, a, t);
        assert_eq!(g.scheduled(addr(2)), (1, CLIENT_SCHEDULED + 1));
        // once due, the share is free again
        let due = later + 1;
        assert!(g.admit(addr(1), due + secs(1.0), due, t).is_ok());
        assert_eq!(g.scheduled(addr(1)).0, 0);
    }

    #[test]
    fn all_clients_together_keep_to_the_total_and_live_messages_still_pass() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let now = secs(10.0);
        let later = now + secs(5.0);
        let mut passed = 0;
        for port in 1..=10 {
            for _ in 0..CLIENT_SCHEDULED {
                if let Ok(a) = g.admit(addr(port), later, now, t) {
                    g.handed(addr(port), later, a, t);
                    passed += 1;
                }
            }
        }
        assert_eq!(passed, SCHEDULED_TOTAL);
        assert_eq!(
            g.admit(addr(11), later, now, t),
            Err(DropKind::ScheduleShare)
        );
        assert!(g.admit(addr(11), now + 10, now, t).is_ok());
    }

    #[test]
    fn each_client_has_a_rate_with_a_burst() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let now = secs(1.0);
        let passed = (0..5000)
            .filter(|_| g.admit(addr(1), now, now, t).is_ok())
            .count();
        assert_eq!(passed, CLIENT_BURST as usize);
        assert_eq!(g.admit(addr(1), now, now, t), Err(DropKind::OverRate));
        assert!(g.admit(addr(2), now, now, t).is_ok(), "others unaffected");
        // an eighth of a second refills 500
        let t2 = t + Duration::from_millis(125);
        let refilled = (0..5000)
            .filter(|_| g.admit(addr(1), now, now, t2).is_ok())
            .count();
        assert_eq!(refilled, (CLIENT_RATE_PER_SEC * 0.125) as usize);
    }

    #[test]
    fn datagrams_are_judged_by_count_and_bytes_before_decoding_per_address() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let small = (0..5000)
            .filter(|_| g.admit_datagram(addr(1), 40, t).is_ok())
            .count();
        assert_eq!(small, CLIENT_DATAGRAM_BURST as usize);
        assert_eq!(g.admit_datagram(addr(1), 40, t), Err(DropKind::OverBudget));
        assert!(
            g.admit_datagram(addr(2), 40, t).is_ok(),
            "others unaffected"
        );
        // full-size datagrams: one burst's worth, then the byte rate
        let big = 45_000;
        let passed = (0..100)
            .filter(|_| g.admit_datagram(addr(3), big, t).is_ok())
            .count();
        assert_eq!(passed, 1);
        let second = t + Duration::from_secs(1);
        let passed = (0..100)
            .filter(|_| g.admit_datagram(addr(3), big, second).is_ok())
            .count();
        assert_eq!(passed, 1, "the burst caps what a second refills");
        let later = second + Duration::from_millis(100);
        let refilled = (0..5000)
            .filter(|_| g.admit_datagram(addr(1), 40, later).is_ok())
            .count();
        assert_eq!(
            refilled, CLIENT_DATAGRAM_BURST as usize,
            "refilled up to the burst"
        );
    }

    #[test]
    fn each_address_holds_at_most_its_quota_of_participants_and_leaves_free_places() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let quota = CLIENT_PARTICIPANTS;
        for id in 1..=quota {
            assert!(g.join(addr(1), id, t).is_ok());
        }
        assert_eq!(g.join(addr(1), 1000, t), Err(DropKind::ParticipantQuota));
        assert!(
            g.join(addr(1), 1, t).is_ok(),
            "a repeated join costs nothing"
        );
        assert_eq!(g.joined(addr(1)), quota);
        assert!(g.join(addr(2), 1000, t).is_ok(), "others have their own");
        // a leave, from anyone, frees the place
        g.left(3);
        assert_eq!(g.joined(addr(1)), quota - 1);
        assert!(g.join(addr(1), 1001, t).is_ok());
        // churn: thousands of ids joined and left stay within the quota
        for id in 10_000..15_000 {
            assert!(g.join(addr(4), id, t).is_ok());
            g.left(id);
        }
        assert_eq!(g.joined(addr(4)), 0);
        // an id taken over by another address moves to its count
        assert!(g.join(addr(2), 5, t).is_ok());
        assert_eq!((g.joined(addr(1)), g.joined(addr(2))), (quota - 1, 2));
    }

    #[test]
    fn the_client_table_is_bounded_and_forgets_idle_addresses_first() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let now = secs(1.0);
        for port in 0..MAX_CLIENTS as u16 {
            let when = t + Duration::from_millis(port as u64);
            g.heard(addr(1000 + port), when);
        }
        let a = g.admit(addr(1001), now + secs(3.0), now, t).unwrap();
        g.handed(addr(1001), now + secs(3.0), a, t);
        g.heard(addr(5000), t + Duration::from_secs(1));
        assert_eq!(g.clients.len(), MAX_CLIENTS);
        assert!(
            !g.clients.contains_key(&addr(1000)),
            "the oldest idle one went"
        );
        assert!(
            g.clients.contains_key(&addr(1001)),
            "one with pending messages stays"
        );
    }

    #[test]
    fn replies_need_the_cookie_of_the_very_address() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let (a, b) = (addr(4000), addr(4001));
        assert!(!g.is_subscriber(a, t));
        let cookie = g.cookie(a);
        assert!(cookie >= 0);
        assert_ne!(cookie, g.cookie(b));
        assert_ne!(
            cookie,
            Gate::new(SR, 10.0, t).cookie(a),
            "secret per server"
        );
        assert!(!g.subscribe(b, cookie, t), "another address's cookie");
        assert!(!g.subscribe(a, cookie ^ 1, t));
        assert!(g.subscribe(a, cookie, t));
        assert!(g.is_subscriber(a, t) && !g.is_subscriber(b, t));
        // silence past the window ends the subscription
        let later = t + Duration::from_secs(SUBSCRIPTION_SECS + 1);
        assert!(!g.is_subscriber(a, later));
        assert_eq!(g.subscribers(), 0);
        // and the table is bounded
        for port in 0..(MAX_SUBSCRIBERS as u16 + 10) {
            let c = g.cookie(addr(port));
            assert!(g.subscribe(addr(port), c, t + Duration::from_millis(port as u64)));
        }
        assert_eq!(g.subscribers(), MAX_SUBSCRIBERS);
    }
}
