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
//! - **Proven and unproven addresses.** UDP source addresses can be forged: a sender that
//!   forges a new one per datagram would get a fresh budget every time. So every address
//!   that has not proved itself (see Replies) is judged twice, by its own budgets and by
//!   budgets all of them share (`UNPROVEN_*`: datagrams, bytes, messages, participants,
//!   future-dated messages), and the table of their budgets is bounded ([`MAX_CLIENTS`],
//!   forgetting the least recently heard in batches). An address that proved itself has
//!   budgets of its own outside both, so forged floods cannot crowd it out. The handshake's
//!   own datagrams are judged by a shared budget of their own ([`HANDSHAKES_PER_SEC`]).
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
    HANDSHAKES_PER_SEC, HANDSHAKE_BURST, HORIZON_MARGIN_SECS, MAX_CLIENTS, MAX_SUBSCRIBERS,
    NEAR_SECS, SCHEDULED_TOTAL, SUBSCRIPTION_SECS, UNPROVEN_BURST, UNPROVEN_BYTES_PER_SEC,
    UNPROVEN_BYTE_BURST, UNPROVEN_DATAGRAMS_PER_SEC, UNPROVEN_DATAGRAM_BURST,
    UNPROVEN_PARTICIPANTS, UNPROVEN_RATE_PER_SEC, UNPROVEN_SCHEDULED,
};
use crate::control::ParticipantId;

/// The rates and bursts of one budget.
#[derive(Clone, Copy, Debug)]
struct Rates {
    datagrams_per_sec: f64,
    datagram_burst: f64,
    bytes_per_sec: f64,
    byte_burst: f64,
    messages_per_sec: f64,
    message_burst: f64,
}

/// One client address's rates.
const CLIENT: Rates = Rates {
    datagrams_per_sec: CLIENT_DATAGRAMS_PER_SEC,
    datagram_burst: CLIENT_DATAGRAM_BURST,
    bytes_per_sec: CLIENT_BYTES_PER_SEC,
    byte_burst: CLIENT_BYTE_BURST,
    messages_per_sec: CLIENT_RATE_PER_SEC,
    message_burst: CLIENT_BURST,
};

/// The rates all unproven addresses share.
const UNPROVEN: Rates = Rates {
    datagrams_per_sec: UNPROVEN_DATAGRAMS_PER_SEC,
    datagram_burst: UNPROVEN_DATAGRAM_BURST,
    bytes_per_sec: UNPROVEN_BYTES_PER_SEC,
    byte_burst: UNPROVEN_BYTE_BURST,
    messages_per_sec: UNPROVEN_RATE_PER_SEC,
    message_burst: UNPROVEN_BURST,
};

/// The rate of handshake datagrams all unproven addresses share (they carry no messages).
const HANDSHAKES: Rates = Rates {
    datagrams_per_sec: HANDSHAKES_PER_SEC,
    datagram_burst: HANDSHAKE_BURST,
    bytes_per_sec: f64::INFINITY,
    byte_burst: f64::INFINITY,
    messages_per_sec: 0.0,
    message_burst: 0.0,
};

/// Token buckets for datagrams, bytes and messages, refilled together.
#[derive(Debug)]
struct Budget {
    rates: Rates,
    datagrams: f64,
    bytes: f64,
    messages: f64,
    refilled: Instant,
}

impl Budget {
    fn new(rates: Rates, now: Instant) -> Budget {
        Budget {
            rates,
            datagrams: rates.datagram_burst,
            bytes: rates.byte_burst,
            messages: rates.message_burst,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let r = self.rates;
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = self.refilled.max(now);
        let fill = |level: f64, rate: f64, burst: f64| (level + elapsed * rate).min(burst);
        self.datagrams = fill(self.datagrams, r.datagrams_per_sec, r.datagram_burst);
        self.bytes = fill(self.bytes, r.bytes_per_sec, r.byte_burst);
        self.messages = fill(self.messages, r.messages_per_sec, r.message_burst);
    }

    /// Whether a datagram of `len` bytes fits (refilled to `now` first).
    fn allows_datagram(&mut self, len: usize, now: Instant) -> bool {
        self.refill(now);
        self.datagrams >= 1.0 && self.bytes >= len as f64
    }

    fn take_datagram(&mut self, len: usize) {
        self.datagrams -= 1.0;
        self.bytes -= len as f64;
    }

    /// Whether one message fits (refilled to `now` first).
    fn allows_message(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.messages >= 1.0
    }
}

/// One client address's budget, or the one all unproven addresses share.
#[derive(Debug)]
struct Client {
    budget: Budget,
    last_heard: Instant,
    /// Due samples of its future-dated messages handed over and not yet due.
    scheduled: BinaryHeap<Reverse<u64>>,
    /// Participants it holds (see [`Gate::join`]).
    joined: u32,
}

impl Client {
    fn new(rates: Rates, now: Instant) -> Client {
        Client {
            budget: Budget::new(rates, now),
            last_heard: now,
            scheduled: BinaryHeap::new(),
            joined: 0,
        }
    }

    fn expire(&mut self, now_sample: u64) {
        expire(&mut self.scheduled, now_sample);
    }
}

/// What all unproven addresses share: their budgets and a separate one for handshakes.
#[derive(Debug)]
struct Pool {
    shared: Client,
    handshakes: Budget,
}

fn expire(due: &mut BinaryHeap<Reverse<u64>>, now_sample: u64) {
    while due.peek().is_some_and(|Reverse(at)| *at <= now_sample) {
        due.pop();
    }
}

/// Who holds a participant joined through the server, and whether the unproven addresses'
/// shared count holds it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    addr: SocketAddr,
    pooled: bool,
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
    /// Addresses that proved themselves (subscribers), with budgets of their own.
    proven: HashMap<SocketAddr, Client>,
    /// Addresses that have not, bounded by [`MAX_CLIENTS`].
    unproven: HashMap<SocketAddr, Client>,
    /// What the unproven addresses share.
    pool: Pool,
    /// The budget shared by new unproven addresses when every tracked one has messages
    /// pending.
    overflow: Client,
    scheduled_total: BinaryHeap<Reverse<u64>>,
    /// Which address holds each participant joined through the server.
    owners: HashMap<ParticipantId, Owner>,
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
            proven: HashMap::new(),
            unproven: HashMap::new(),
            pool: Pool {
                shared: Client::new(UNPROVEN, now),
                handshakes: Budget::new(HANDSHAKES, now),
            },
            overflow: Client::new(CLIENT, now),
            scheduled_total: BinaryHeap::new(),
            owners: HashMap::new(),
            secret: RandomState::new(),
            horizon_samples: (horizon * sr) as u64,
            near_samples: (NEAR_SECS * sr) as u64,
        }
    }

    /// Notes that a packet came from `from` at `now`.
    pub fn heard(&mut self, from: SocketAddr, now: Instant) {
        self.parties(from, now, None).0.last_heard = now;
    }

    /// Judges a datagram of `len` bytes from `from` before it is decoded (and notes that it
    /// was heard): refused past the address's datagram or byte rate
    /// ([`DropKind::OverBudget`]) or, for an address that has not proved itself, past the
    /// rates all such addresses share ([`DropKind::Unproven`]). A `handshake` datagram (a
    /// hello or subscribe, recognized by its bytes) is judged by the unproven addresses'
    /// handshake budget instead of their other shared budgets.
    pub fn admit_datagram(
        &mut self,
        from: SocketAddr,
        len: usize,
        handshake: bool,
        now: Instant,
    ) -> Result<(), DropKind> {
        let (own, pool) = self.parties(from, now, None);
        own.last_heard = now;
        if !own.budget.allows_datagram(len, now) {
            return Err(DropKind::OverBudget);
        }
        if let Some(pool) = pool {
            let shared = if handshake {
                &mut pool.handshakes
            } else {
                &mut pool.shared.budget
            };
            if !shared.allows_datagram(len, now) {
                return Err(DropKind::Unproven);
            }
            shared.take_datagram(len);
        }
        own.budget.take_datagram(len);
        Ok(())
    }

    /// Judges a join of `participant` by `from`: refused ([`DropKind::ParticipantQuota`])
    /// when the address already holds [`CLIENT_PARTICIPANTS`], or ([`DropKind::Unproven`])
    /// when it has not proved itself and such addresses hold [`UNPROVEN_PARTICIPANTS`].
    /// Admitted, the address holds the id (taken over from whoever held it) until someone
    /// sends its leave ([`Gate::left`]).
    pub fn join(
        &mut self,
        from: SocketAddr,
        participant: ParticipantId,
        now: Instant,
    ) -> Result<(), DropKind> {
        if self.owners.get(&participant).map(|o| o.addr) == Some(from) {
            return Ok(()); // the engine says whether it is already present
        }
        let (own, pool) = self.parties(from, now, None);
        if own.joined >= CLIENT_PARTICIPANTS {
            return Err(DropKind::ParticipantQuota);
        }
        let pooled = pool.is_some();
        if let Some(pool) = pool {
            if pool.shared.joined >= UNPROVEN_PARTICIPANTS {
                return Err(DropKind::Unproven);
            }
            pool.shared.joined += 1;
        }
        own.joined += 1;
        let owner = Owner { addr: from, pooled };
        if let Some(previous) = self.owners.insert(participant, owner) {
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
        self.known(from).map_or(0, |c| c.joined)
    }

    /// Participants all unproven addresses hold together.
    pub fn joined_unproven(&self) -> u32 {
        self.pool.shared.joined
    }

    fn release(&mut self, owner: Owner) {
        if owner.pooled {
            let shared = &mut self.pool.shared;
            shared.joined = shared.joined.saturating_sub(1);
        }
        let client = match self.proven.get_mut(&owner.addr) {
            Some(client) => Some(client),
            None => self.unproven.get_mut(&owner.addr),
        };
        if let Some(client) = client {
            client.joined = client.joined.saturating_sub(1);
        }
    }

    fn known(&self, from: SocketAddr) -> Option<&Client> {
        self.proven.get(&from).or_else(|| self.unproven.get(&from))
    }

    /// Judges a message from `from` due at sample `at`, the clock saying `now_sample`
    /// (arrivals map there) at `now`: refused beyond the horizon, over the client's rate, or
    /// future-dated past the client's or everyone's share, and for an unproven address past
    /// what all unproven addresses share. Admitting spends one message of the rates.
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
        let (own, mut pool) = self.parties(from, now, Some(now_sample));
        own.expire(now_sample);
        if scheduled && (total_full || own.scheduled.len() >= CLIENT_SCHEDULED) {
            return Err(DropKind::ScheduleShare);
        }
        if let Some(pool) = pool.as_deref_mut() {
            pool.shared.expire(now_sample);
            if scheduled && pool.shared.scheduled.len() >= UNPROVEN_SCHEDULED {
                return Err(DropKind::Unproven);
            }
        }
        if !own.budget.allows_message(now) {
            return Err(DropKind::OverRate);
        }
        if let Some(pool) = pool {
            if !pool.shared.budget.allows_message(now) {
                return Err(DropKind::Unproven);
            }
            pool.shared.budget.messages -= 1.0;
        }
        own.budget.messages -= 1.0;
        Ok(Admitted { scheduled })
    }

    /// Records that an admitted message due at `at` was handed to the engine.
    pub fn handed(&mut self, from: SocketAddr, at: u64, admitted: Admitted, now: Instant) {
        if admitted.scheduled {
            let (own, pool) = self.parties(from, now, None);
            own.scheduled.push(Reverse(at));
            if let Some(pool) = pool {
                pool.shared.scheduled.push(Reverse(at));
            }
            self.scheduled_total.push(Reverse(at));
        }
    }

    /// Future-dated messages pending: from one client, and from all.
    pub fn scheduled(&self, from: SocketAddr) -> (usize, usize) {
        let own = self.known(from).map_or(0, |c| c.scheduled.len());
        (own, self.scheduled_total.len())
    }

    /// The budget of `from` and, when it has not proved itself, what all such addresses
    /// share. An unproven address is tracked if new ([`Gate::unproven_client`]).
    fn parties(
        &mut self,
        from: SocketAddr,
        now: Instant,
        now_sample: Option<u64>,
    ) -> (&mut Client, Option<&mut Pool>) {
        if let Some(client) = self.proven.get_mut(&from) {
            return (client, None);
        }
        let own = unproven_client(
            &mut self.unproven,
            &mut self.overflow,
            from,
            now,
            now_sample,
        );
        (own, Some(&mut self.pool))
    }

    /// The cookie of an address: a keyed hash of its IP and port, the key secret to this
    /// server. Non-negative, so it reads back the same from any OSC library.
    pub fn cookie(&self, from: SocketAddr) -> i64 {
        (self.secret.hash_one((from.ip(), from.port())) >> 1) as i64
    }

    /// Subscribes `from` to replies if `cookie` is its cookie; false otherwise. From then
    /// on the address has proved itself: budgets of its own, outside the unproven ones.
    pub fn subscribe(&mut self, from: SocketAddr, cookie: i64, now: Instant) -> bool {
        if cookie != self.cookie(from) {
            return false;
        }
        if let Some(client) = self.proven.get_mut(&from) {
            client.last_heard = now;
            return true;
        }
        if self.proven.len() >= MAX_SUBSCRIBERS {
            let oldest = self
                .proven
                .iter()
                .min_by_key(|(_, c)| c.last_heard)
                .map(|(addr, _)| *addr);
            if let Some(addr) = oldest {
                self.proven.remove(&addr);
            }
        }
        let mut client = self
            .unproven
            .remove(&from)
            .unwrap_or_else(|| Client::new(CLIENT, now));
        client.last_heard = now;
        self.proven.insert(from, client);
        true
    }

    /// Whether `from` gets replies: it subscribed and was heard from within
    /// [`SUBSCRIPTION_SECS`]. One silent for longer is unproven again.
    pub fn is_subscriber(&mut self, from: SocketAddr, now: Instant) -> bool {
        let window = Duration::from_secs(SUBSCRIPTION_SECS);
        match self.proven.get(&from) {
            Some(c) if now.saturating_duration_since(c.last_heard) <= window => true,
            Some(_) => {
                self.proven.remove(&from);
                false
            }
            None => false,
        }
    }

    /// Addresses subscribed to replies.
    pub fn subscribers(&self) -> usize {
        self.proven.len()
    }

    /// Unproven addresses with budgets of their own (at most [`MAX_CLIENTS`]).
    pub fn unproven_tracked(&self) -> usize {
        self.unproven.len()
    }
}

/// The budget of unproven `from` in `table`, created if new. Past [`MAX_CLIENTS`] the least
/// recently heard quarter of the addresses with nothing scheduled is forgotten (those
/// holding participants last; their participants stay counted in the shared pool); if every
/// one has something scheduled, `overflow` is used.
fn unproven_client<'a>(
    table: &'a mut HashMap<SocketAddr, Client>,
    overflow: &'a mut Client,
    from: SocketAddr,
    now: Instant,
    now_sample: Option<u64>,
) -> &'a mut Client {
    if !table.contains_key(&from) && table.len() >= MAX_CLIENTS {
        if let Some(now_sample) = now_sample {
            for c in table.values_mut() {
                c.expire(now_sample);
            }
        }
        let mut idle: Vec<((bool, Instant), SocketAddr)> = table
            .iter()
            .filter(|(_, c)| c.scheduled.is_empty())
            .map(|(addr, c)| ((c.joined > 0, c.last_heard), *addr))
            .collect();
        if idle.is_empty() {
            return overflow;
        }
        let forget = (MAX_CLIENTS / 4).clamp(1, idle.len());
        if forget < idle.len() {
            idle.select_nth_unstable(forget - 1);
        }
        for (_, addr) in &idle[..forget] {
            table.remove(addr);
        }
    }
    table
        .entry(from)
        .or_insert_with(|| Client::new(CLIENT, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: u32 = 48_000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// `from` as an address that proved itself.
    fn proven(g: &mut Gate, from: SocketAddr, t: Instant) -> SocketAddr {
        assert!(g.subscribe(from, g.cookie(from), t));
        from
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
        // and another client has its own share (one that proved itself: the unproven ones
        // share one, which addr(1) used up)
        assert_eq!(g.admit(addr(3), later, now, t), Err(DropKind::Unproven));
        proven(&mut g, addr(2), t);
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
            proven(&mut g, addr(port), t);
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
            .filter(|_| g.admit_datagram(addr(1), 40, false, t).is_ok())
            .count();
        assert_eq!(small, CLIENT_DATAGRAM_BURST as usize);
        assert_eq!(
            g.admit_datagram(addr(1), 40, false, t),
            Err(DropKind::OverBudget)
        );
        assert!(
            g.admit_datagram(addr(2), 40, false, t).is_ok(),
            "others unaffected"
        );
        // full-size datagrams: one burst's worth, then the byte rate
        let big = 45_000;
        let passed = (0..100)
            .filter(|_| g.admit_datagram(addr(3), big, false, t).is_ok())
            .count();
        assert_eq!(passed, 1);
        let second = t + Duration::from_secs(1);
        let passed = (0..100)
            .filter(|_| g.admit_datagram(addr(3), big, false, second).is_ok())
            .count();
        assert_eq!(passed, 1, "the burst caps what a second refills");
        let later = second + Duration::from_millis(100);
        let refilled = (0..5000)
            .filter(|_| g.admit_datagram(addr(1), 40, false, later).is_ok())
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
        assert_eq!(
            g.join(addr(2), 1000, t),
            Err(DropKind::Unproven),
            "unproven addresses share one quota"
        );
        proven(&mut g, addr(2), t);
        assert!(
            g.join(addr(2), 1000, t).is_ok(),
            "proven ones have their own"
        );
        // a leave, from anyone, frees the place
        g.left(3);
        assert_eq!(g.joined(addr(1)), quota - 1);
        assert!(g.join(addr(1), 1001, t).is_ok());
        // churn: thousands of ids joined and left stay within the quota
        proven(&mut g, addr(4), t);
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
        let a = g.admit(addr(1000), now + secs(3.0), now, t).unwrap();
        g.handed(addr(1000), now + secs(3.0), a, t);
        g.heard(addr(5000), t + Duration::from_secs(1));
        // a quarter forgotten at once, so a churn costs a constant time per address
        assert_eq!(g.unproven_tracked(), MAX_CLIENTS - MAX_CLIENTS / 4 + 1);
        assert!(
            !g.unproven.contains_key(&addr(1001)),
            "the oldest idle one went"
        );
        assert!(
            g.unproven
                .contains_key(&addr(1000 + MAX_CLIENTS as u16 / 4 + 1)),
            "younger ones stay"
        );
        assert!(
            g.unproven.contains_key(&addr(1000)),
            "one with pending messages stays"
        );
    }

    /// A distinct source address per `i`, as a sender forging them would use.
    fn forged(i: u32) -> SocketAddr {
        let [a, b, c, d] = (0x7f01_0000 | (i >> 16)).to_be_bytes();
        SocketAddr::from(([a, b, c, d], (i & 0xffff) as u16))
    }

    #[test]
    fn forged_source_addresses_share_one_budget_and_a_proven_address_keeps_its_own() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let legit = proven(&mut g, addr(7), t);
        let unproven_joiner = addr(8);
        let now = secs(1.0);
        // 100 000 datagrams over one second, each from a new address: each would pass its
        // own fresh budget, but together they get the shared rate and burst only
        let (mut passed, mut legit_passed, mut handed) = (0u32, 0u32, 0u32);
        for i in 0..100_000u32 {
            let at = t + Duration::from_micros(i as u64 * 10);
            let from = forged(i);
            if g.admit_datagram(from, 40, false, at).is_ok() {
                passed += 1;
                if g.admit(from, now, now, at).is_ok() {
                    handed += 1;
                }
                let _ = g.join(from, 100_000 + i, at);
            }
            if i % 100 == 0 && g.admit_datagram(legit, 40, false, at).is_ok() {
                legit_passed += 1;
            }
        }
        let most = (UNPROVEN_DATAGRAM_BURST + UNPROVEN_DATAGRAMS_PER_SEC) as u32;
        assert!(
            passed <= most && passed > most * 9 / 10,
            "{passed} of at most {most}"
        );
        assert!(handed <= passed);
        assert_eq!(legit_passed, 1000, "every datagram of the proven address");
        assert!(g.unproven_tracked() <= MAX_CLIENTS);
        // participants: the forged addresses hold the shared quota, the proven one its own
        assert_eq!(g.joined_unproven(), UNPROVEN_PARTICIPANTS);
        let later = t + Duration::from_secs(2);
        assert_eq!(g.join(unproven_joiner, 1, later), Err(DropKind::Unproven));
        for id in 1..=CLIENT_PARTICIPANTS {
            assert!(g.join(legit, id, later).is_ok());
        }
        // messages: over the shared rate, refused; the proven address is not
        for i in 0..(UNPROVEN_BURST as u32) {
            let _ = g.admit(forged(200_000 + i), now, now, later);
        }
        assert_eq!(g.admit(addr(9), now, now, later), Err(DropKind::Unproven));
        assert!(g.admit(legit, now, now, later).is_ok());
    }

    #[test]
    fn handshakes_have_a_shared_budget_of_their_own() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        // the other shared budgets spent by forged senders
        let spent = (0..10_000u32)
            .filter(|i| g.admit_datagram(forged(*i), 40, false, t).is_ok())
            .count();
        assert_eq!(spent, UNPROVEN_DATAGRAM_BURST as usize);
        assert_eq!(
            g.admit_datagram(addr(1), 28, false, t),
            Err(DropKind::Unproven)
        );
        // a hello still gets through, up to the handshake burst
        assert!(g.admit_datagram(addr(1), 28, true, t).is_ok());
        let hellos = (0..10_000u32)
            .filter(|i| g.admit_datagram(forged(20_000 + i), 28, true, t).is_ok())
            .count();
        assert_eq!(hellos + 1, HANDSHAKE_BURST as usize);
    }

    #[test]
    fn a_subscription_that_lapses_makes_the_address_unproven_again() {
        let t = Instant::now();
        let mut g = Gate::new(SR, 10.0, t);
        let a = proven(&mut g, addr(1), t);
        assert!(g.is_subscriber(a, t));
        let later = t + Duration::from_secs(SUBSCRIPTION_SECS + 1);
        assert!(!g.is_subscriber(a, later));
        for i in 0..10_000u32 {
            let _ = g.admit_datagram(forged(i), 40, false, later);
        }
        assert_eq!(
            g.admit_datagram(a, 40, false, later),
            Err(DropKind::Unproven)
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
