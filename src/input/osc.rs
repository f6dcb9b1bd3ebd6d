//! OSC over UDP: a documented address space (docs/formats.md, "OSC address space") decoded
//! into engine [`Message`]s, each stamped with the sample at which it applies.
//!
//! - [`OscDecoder`] is pure (no sockets): bytes and the instant they arrived in, messages and
//!   counters out. Names (archetypes, dimensions, sections) are resolved here with the
//!   patch's [`Names`], so the audio thread only sees indices.
//! - [`OscServer`] owns a thread with a UDP socket: it reads up to 32 datagrams per system
//!   call, drops unread those over their address's datagram or byte budget ([`gate`]),
//!   decodes the rest, keeps each client address within its message budgets, queues the
//!   messages per address and forwards the queues round-robin through one [`Controller`]
//!   as the engine's ring has room ([`forward`]; never blocking), and answers — acks and
//!   status replies — only addresses that proved themselves with the `/tapestry/hello`
//!   handshake; to anyone else it sends nothing larger than what they sent. The kernel's drops on the socket are counted.
//!
//! Timing: a message outside a bundle applies at the sample its packet arrived at
//! ([`SampleClock::sample_at`], which includes one block of safety offset); a bundle applies
//! its contents at its time tag (1 = immediately, past tags = now); a nested bundle never
//! applies before the bundle that contains it.
//!
//! What is dropped, and counted in [`OscStats`] by kind: datagrams over their address's
//! datagram or byte rate (`over_budget`, dropped unread), packets that do not decode
//! (`malformed`, the whole packet), messages to an address outside the address space
//! (`unknown_address`), with the wrong number or types of arguments or values out of range
//! (`bad_arguments`), naming an archetype, dimension or section the patch does not have
//! (`unknown_name`), messages refused by the client budgets (`too_far_ahead`, `over_rate`,
//! `schedule_share`, `participant_quota`), and messages their address's queue to the engine
//! had no room for (`undelivered`). A message for a participant who is not present cannot be
//! known here: the engine refuses it with a [`Notice::Refused`](crate::Notice::Refused)
//! (reason `UnknownParticipant`) and counts it in [`Status::refused_messages`].

pub mod forward;
pub mod gate;
mod socket;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType};

use super::SampleClock;
use crate::control::limits::osc::RECV_BUFFER_BYTES;
use crate::control::{
    Command, Controller, Expression, Message, MoodTarget, Names, ParticipantId, Status, Timing,
};
use forward::{Forwarder, QueueFull};
use gate::Gate;
use socket::{recv_batch, wait_readable, Batch, DropTotal, OscSocket};

/// Where the server listens unless the performer asks otherwise: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9000";
/// Largest datagram read (larger ones are truncated by the socket and fail to decode).
pub const MAX_PACKET_BYTES: usize = 65_536;
/// Deepest nesting of bundles accepted; deeper packets are malformed.
pub const MAX_BUNDLE_DEPTH: usize = 8;
/// How long the server's socket waits for a datagram before checking whether to stop.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// How long it waits while messages are queued for the engine, before it forwards more
/// (the audio thread makes room once per block, every few milliseconds).
pub const FORWARD_INTERVAL: Duration = Duration::from_millis(1);
/// At most one log line about dropped input per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Address of the join message: `i:participant [s:archetype]`.
pub const JOIN: &str = "/tapestry/join";
/// Address of the leave message: `i:participant`.
pub const LEAVE: &str = "/tapestry/leave";
/// Address of the mood message: `i:participant s:dimension f:value [f:ramp_secs]`.
pub const MOOD: &str = "/tapestry/mood";
/// Address that hands a dimension back from the conductor to the crowd: `s:dimension`.
pub const RELEASE: &str = "/tapestry/release";
/// Address of the note message: `i:participant i:pitch i:velocity` (velocity 0 = off).
pub const NOTE: &str = "/tapestry/note";
/// Address of the pitch bend: `i:participant f:semitones` (-24..24, 0 at rest).
pub const BEND: &str = "/tapestry/bend";
/// Address of the mod wheel: `i:participant f:depth` (0..1), the vibrato depth.
pub const MOD: &str = "/tapestry/mod";
/// Address of any expressive control: `i:participant s:kind f:value`, kind `bend`,
/// `vibrato` or `brightness`.
pub const EXPR: &str = "/tapestry/expr";
/// Address of the cue message: `s:section`.
pub const CUE: &str = "/tapestry/cue";
/// Address of the status query (no arguments) and of its reply.
pub const STATUS: &str = "/tapestry/status";
/// Address of the acknowledgement sent to subscribers after every packet:
/// `i:accepted i:dropped s:reasons`.
pub const ACK: &str = "/tapestry/ack";
/// Address of the handshake's first step, `h:nonce` (any 64-bit number; it makes the request
/// as large as the reply), answered to the sender with `/tapestry/hello h:cookie`.
pub const HELLO: &str = "/tapestry/hello";
/// Address of the handshake's second step, `h:cookie` as the hello reply gave it: the
/// sender gets acks and status replies from then on.
pub const SUBSCRIBE: &str = "/tapestry/subscribe";

/// Counters of the OSC input, by what happened; read from any thread.
#[derive(Debug, Default)]
pub struct OscStats {
    /// Datagrams received.
    pub packets: AtomicU64,
    /// Messages decoded into a command or a request (status, hello, subscribe).
    pub decoded: AtomicU64,
    /// Messages handed to the engine, and requests answered or granted.
    pub accepted: AtomicU64,
    /// Packets that did not decode as OSC (dropped whole).
    pub malformed: AtomicU64,
    /// Messages to an address outside the address space.
    pub unknown_address: AtomicU64,
    /// Messages with the wrong number or types of arguments, or values out of range.
    pub bad_arguments: AtomicU64,
    /// Messages naming an archetype, dimension or section the patch does not have.
    pub unknown_name: AtomicU64,
    /// Messages stamped further ahead than the engine's scheduling horizon allows.
    pub too_far_ahead: AtomicU64,
    /// Messages over their client address's rate.
    pub over_rate: AtomicU64,
    /// Future-dated messages past their client's (or all clients') share of the schedule.
    pub schedule_share: AtomicU64,
    /// Decoded messages their client's queue to the engine had no room for (or the engine
    /// was gone).
    pub undelivered: AtomicU64,
    /// Datagrams dropped unread: over their client address's datagram or byte rate.
    pub over_budget: AtomicU64,
    /// Joins past their client address's participant quota.
    pub participant_quota: AtomicU64,
    /// Datagrams dropped unread, and messages refused, from addresses that have not proved
    /// themselves: over what all such addresses share (datagrams, bytes, messages,
    /// participants, future-dated messages).
    pub unproven: AtomicU64,
    /// Datagrams the kernel dropped because the socket's receive buffer was full (Linux;
    /// reported with the next datagram that arrives).
    pub kernel_drops: AtomicU64,
    /// Receive buffer the kernel granted the socket, in bytes (0 if unknown).
    pub recv_buffer_bytes: AtomicU64,
    /// Requests (status, hello) left unanswered: the sender has not subscribed, or the
    /// answer would be larger than the request.
    pub unanswered: AtomicU64,
    /// Replies (acks, status, hello) that could not be sent.
    pub reply_errors: AtomicU64,
}

/// A plain copy of [`OscStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OscCounts {
    /// See [`OscStats::packets`].
    pub packets: u64,
    /// See [`OscStats::decoded`].
    pub decoded: u64,
    /// See [`OscStats::accepted`].
    pub accepted: u64,
    /// See [`OscStats::malformed`].
    pub malformed: u64,
    /// See [`OscStats::unknown_address`].
    pub unknown_address: u64,
    /// See [`OscStats::bad_arguments`].
    pub bad_arguments: u64,
    /// See [`OscStats::unknown_name`].
    pub unknown_name: u64,
    /// See [`OscStats::too_far_ahead`].
    pub too_far_ahead: u64,
    /// See [`OscStats::over_rate`].
    pub over_rate: u64,
    /// See [`OscStats::schedule_share`].
    pub schedule_share: u64,
    /// See [`OscStats::undelivered`].
    pub undelivered: u64,
    /// See [`OscStats::over_budget`].
    pub over_budget: u64,
    /// See [`OscStats::participant_quota`].
    pub participant_quota: u64,
    /// See [`OscStats::unproven`].
    pub unproven: u64,
    /// See [`OscStats::kernel_drops`].
    pub kernel_drops: u64,
    /// See [`OscStats::recv_buffer_bytes`].
    pub recv_buffer_bytes: u64,
    /// See [`OscStats::unanswered`].
    pub unanswered: u64,
    /// See [`OscStats::reply_errors`].
    pub reply_errors: u64,
}

impl OscStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> OscCounts {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OscCounts {
            packets: r(&self.packets),
            decoded: r(&self.decoded),
            accepted: r(&self.accepted),
            malformed: r(&self.malformed),
            unknown_address: r(&self.unknown_address),
            bad_arguments: r(&self.bad_arguments),
            unknown_name: r(&self.unknown_name),
            too_far_ahead: r(&self.too_far_ahead),
            over_rate: r(&self.over_rate),
            schedule_share: r(&self.schedule_share),
            undelivered: r(&self.undelivered),
            over_budget: r(&self.over_budget),
            participant_quota: r(&self.participant_quota),
            unproven: r(&self.unproven),
            kernel_drops: r(&self.kernel_drops),
            recv_buffer_bytes: r(&self.recv_buffer_bytes),
            unanswered: r(&self.unanswered),
            reply_errors: r(&self.reply_errors),
        }
    }

    fn counter(&self, kind: DropKind) -> &AtomicU64 {
        match kind {
            DropKind::Malformed => &self.malformed,
            DropKind::UnknownAddress => &self.unknown_address,
            DropKind::BadArguments => &self.bad_arguments,
            DropKind::UnknownName => &self.unknown_name,
            DropKind::TooFarAhead => &self.too_far_ahead,
            DropKind::OverRate => &self.over_rate,
            DropKind::ScheduleShare => &self.schedule_share,
            DropKind::Undelivered => &self.undelivered,
            DropKind::OverBudget => &self.over_budget,
            DropKind::ParticipantQuota => &self.participant_quota,
            DropKind::Unproven => &self.unproven,
        }
    }
}

impl OscCounts {
    /// Everything the server dropped or refused, of every kind (not the kernel's drops):
    /// datagrams dropped unread or undecodable, and messages.
    pub fn dropped(&self) -> u64 {
        self.over_budget
            + self.unproven
            + self.malformed
            + self.unknown_address
            + self.bad_arguments
            + self.unknown_name
            + self.refused()
    }

    /// Decoded messages refused: by the client budgets, or for want of room in the
    /// client's queue to the engine.
    pub fn refused(&self) -> u64 {
        self.too_far_ahead
            + self.over_rate
            + self.schedule_share
            + self.participant_quota
            + self.undelivered
    }

    /// Every kind of drop with its count, in [`DropKind::ALL`]'s order.
    pub fn by_kind(&self) -> [(DropKind, u64); DropKind::ALL.len()] {
        DropKind::ALL.map(|kind| {
            let n = match kind {
                DropKind::OverBudget => self.over_budget,
                DropKind::Malformed => self.malformed,
                DropKind::UnknownAddress => self.unknown_address,
                DropKind::BadArguments => self.bad_arguments,
                DropKind::UnknownName => self.unknown_name,
                DropKind::TooFarAhead => self.too_far_ahead,
                DropKind::OverRate => self.over_rate,
                DropKind::ScheduleShare => self.schedule_share,
                DropKind::ParticipantQuota => self.participant_quota,
                DropKind::Undelivered => self.undelivered,
                DropKind::Unproven => self.unproven,
            };
            (kind, n)
        })
    }
}

/// Why input was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropKind {
    /// The datagram came over its client address's datagram or byte rate (dropped unread).
    OverBudget,
    /// The packet did not decode as OSC.
    Malformed,
    /// The address is not in the address space.
    UnknownAddress,
    /// Wrong number or types of arguments, or a value out of range.
    BadArguments,
    /// An archetype, dimension or section the patch does not have.
    UnknownName,
    /// Stamped further ahead than the engine's scheduling horizon.
    TooFarAhead,
    /// Over the client address's message rate.
    OverRate,
    /// Future-dated, and the client's (or all clients') share of the schedule is full.
    ScheduleShare,
    /// A join past the client address's participant quota.
    ParticipantQuota,
    /// The client's queue to the engine was full (or the engine was gone).
    Undelivered,
    /// From an address that has not proved itself, over what all such addresses share.
    Unproven,
}

impl DropKind {
    /// Every kind, in the order counts are reported.
    pub const ALL: [DropKind; 11] = [
        DropKind::OverBudget,
        DropKind::Unproven,
        DropKind::Malformed,
        DropKind::UnknownAddress,
        DropKind::BadArguments,
        DropKind::UnknownName,
        DropKind::TooFarAhead,
        DropKind::OverRate,
        DropKind::ScheduleShare,
        DropKind::ParticipantQuota,
        DropKind::Undelivered,
    ];
}

impl DropKind {
    /// Its counter's name in [`OscStats`] (and in the status reply, after `osc:`).
    pub fn key(self) -> &'static str {
        match self {
            DropKind::OverBudget => "over_budget",
            DropKind::Unproven => "unproven",
            DropKind::Malformed => "malformed",
            DropKind::UnknownAddress => "unknown_address",
            DropKind::BadArguments => "bad_arguments",
            DropKind::UnknownName => "unknown_name",
            DropKind::TooFarAhead => "too_far_ahead",
            DropKind::OverRate => "over_rate",
            DropKind::ScheduleShare => "schedule_share",
            DropKind::ParticipantQuota => "participant_quota",
            DropKind::Undelivered => "undelivered",
        }
    }
}

impl fmt::Display for DropKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropKind::OverBudget => "over the client's datagram budget",
            DropKind::Malformed => "malformed",
            DropKind::UnknownAddress => "unknown address",
            DropKind::BadArguments => "bad arguments",
            DropKind::UnknownName => "unknown name",
            DropKind::TooFarAhead => "too far ahead",
            DropKind::OverRate => "over the client's rate",
            DropKind::ScheduleShare => "schedule share full",
            DropKind::ParticipantQuota => "client's participant quota reached",
            DropKind::Undelivered => "engine queue full",
            DropKind::Unproven => "over the unproven addresses' shared budget",
        })
    }
}

/// One dropped packet or message, with a short description for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: DropKind,
    /// What exactly (address and expectation, or the decoder's error), at most ~100 chars.
    pub detail: String,
}

impl Problem {
    fn new(kind: DropKind, detail: impl Into<String>) -> Problem {
        let mut detail = detail.into();
        if detail.len() > 100 {
            let mut cut = 100;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        Problem { kind, detail }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// What one packet decoded to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodeOutcome {
    /// Messages for the engine, in packet order, each with `Timing::At(sample)`.
    pub messages: Vec<Message>,
    /// How many `/tapestry/status` queries the packet held.
    pub status_queries: u32,
    /// The packet held a `/tapestry/hello`.
    pub hello: bool,
    /// The cookie of the packet's (last) `/tapestry/subscribe`.
    pub subscribe: Option<i64>,
    /// Everything dropped from the packet (a malformed packet is one problem).
    pub problems: Vec<Problem>,
}

impl DecodeOutcome {
    /// Messages decoded: commands plus requests.
    pub fn accepted(&self) -> usize {
        self.messages.len()
            + self.status_queries as usize
            + self.hello as usize
            + self.subscribe.is_some() as usize
    }
}

/// A decoded message: a command for the engine or a status query for the server.
enum Parsed {
    Command(Command),
    StatusQuery,
    Hello,
    Subscribe(i64),
}

/// Decodes OSC packets into engine messages. Pure: no sockets, no clock reads of its own
/// (the arrival instant is given), so it can be tested exactly.
pub struct OscDecoder {
    names: Names,
    clock: Arc<SampleClock>,
    stats: Arc<OscStats>,
}

impl OscDecoder {
    /// A decoder resolving names with `names` (from [`Controller::names`]), stamping times
    /// with `clock` and counting into `stats`.
    pub fn new(names: Names, clock: Arc<SampleClock>, stats: Arc<OscStats>) -> OscDecoder {
        OscDecoder {
            names,
            clock,
            stats,
        }
    }

    /// The counters this decoder adds to.
    pub fn stats(&self) -> &Arc<OscStats> {
        &self.stats
    }

    /// The names it resolves.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Decodes one datagram received at `received`. Never panics; every problem is counted
    /// in [`OscStats`] and listed in the outcome.
    pub fn decode(&mut self, packet: &[u8], received: Instant) -> DecodeOutcome {
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        let mut outcome = DecodeOutcome::default();
        let decoded = if bundles_deeper_than(packet, MAX_BUNDLE_DEPTH) {
            Err(format!("bundles nested deeper than {MAX_BUNDLE_DEPTH}"))
        } else {
            match rosc::decoder::decode_udp(packet) {
                Ok(([], decoded)) => Ok(decoded),
                Ok((rest, _)) => Err(format!("{} bytes after the packet", rest.len())),
                Err(e) => Err(e.to_string()),
            }
        };
        match decoded {
            Ok(decoded) => {
                let now = self.clock.sample_at(received);
                self.walk(&decoded, now, received, &mut outcome);
            }
            Err(detail) => self.reject(&mut outcome, Problem::new(DropKind::Malformed, detail)),
        }
        outcome
    }

    fn reject(&self, outcome: &mut DecodeOutcome, problem: Problem) {
        self.stats
            .counter(problem.kind)
            .fetch_add(1, Ordering::Relaxed);
        outcome.problems.push(problem);
    }

    fn walk(&self, packet: &OscPacket, at: u64, received: Instant, outcome: &mut DecodeOutcome) {
        match packet {
            OscPacket::Message(message) => {
                let parsed = self.parse(message);
                if parsed.is_ok() {
                    self.stats.decoded.fetch_add(1, Ordering::Relaxed);
                }
                match parsed {
                    Ok(Parsed::Command(command)) => outcome.messages.push(Message {
                        at: Timing::At(at),
                        command,
                    }),
                    Ok(Parsed::StatusQuery) => outcome.status_queries += 1,
                    Ok(Parsed::Hello) => outcome.hello = true,
                    Ok(Parsed::Subscribe(cookie)) => outcome.subscribe = Some(cookie),
                    Err(problem) => self.reject(outcome, problem),
                }
            }
            OscPacket::Bundle(bundle) => {
                let tag = bundle.timetag;
                let own = self
                    .clock
                    .sample_at_time_tag(tag.seconds, tag.fractional, received);
                // a contained bundle never applies before the one containing it
                let at = own.max(at);
                for inner in &bundle.content {
                    self.walk(inner, at, received, outcome);
                }
            }
        }
    }

    fn parse(&self, message: &OscMessage) -> Result<Parsed, Problem> {
        let m = Incoming {
            addr: message.addr.as_str(),
            args: message.args.as_slice(),
            names: &self.names,
        };
        let command = match m.addr {
            JOIN => m.join()?,
            LEAVE => match m.args {
                [p] => Command::Leave {
                    participant: player(p).ok_or_else(|| m.bad("i:participant"))?,
                },
                _ => return Err(m.bad("i:participant")),
            },
            MOOD => m.mood()?,
            RELEASE => Command::ReleaseCommunal {
                dim: m.named("s:dimension", "dimension", Names::dim)?,
            },
            NOTE => m.note()?,
            BEND | MOD | EXPR => m.expression()?,
            CUE => Command::Cue {
                section: m.named("s:section", "section", Names::section)?,
            },
            STATUS | HELLO | SUBSCRIBE => return m.request(),
            _ => {
                let addr = m.addr;
                return Err(Problem::new(DropKind::UnknownAddress, format!("{addr:?}")));
            }
        };
        Ok(Parsed::Command(command))
    }
}

/// One message being parsed: its address, arguments and the patch's names.
struct Incoming<'a> {
    addr: &'a str,
    args: &'a [OscType],
    names: &'a Names,
}

impl Incoming<'_> {
    /// Wrong arguments: what was expected.
    fn bad(&self, expected: &str) -> Problem {
        Problem::new(
            DropKind::BadArguments,
            format!(
                "{} {}: expected {expected}",
                self.addr,
                type_tags(self.args)
            ),
        )
    }

    /// A name the patch does not have.
    fn unknown(&self, what: &str, name: &str) -> Problem {
        Problem::new(
            DropKind::UnknownName,
            format!("{}: unknown {what} {name:?}", self.addr),
        )
    }

    /// A single name argument (`s:…`) resolved with `find`.
    fn named<T>(
        &self,
        expected: &str,
        what: &str,
        find: impl Fn(&Names, &str) -> Option<T>,
    ) -> Result<T, Problem> {
        let [arg] = self.args else {
            return Err(self.bad(expected));
        };
        let name = text(arg).ok_or_else(|| self.bad(expected))?;
        find(self.names, name).ok_or_else(|| self.unknown(what, name))
    }

    fn join(&self) -> Result<Command, Problem> {
        const EXPECTED: &str = "i:participant [s:archetype]";
        let (participant, archetype) = match self.args {
            [p] => (player(p), None),
            [p, a] => (player(p), Some(text(a).ok_or_else(|| self.bad(EXPECTED))?)),
            _ => return Err(self.bad(EXPECTED)),
        };
        let participant = participant.ok_or_else(|| self.bad(EXPECTED))?;
        let archetype = match archetype {
            Some(name) => Some(
                self.names
                    .archetype(name)
                    .ok_or_else(|| self.unknown("archetype", name))?,
            ),
            None => None,
        };
        Ok(Command::Join {
            participant,
            archetype,
        })
    }

    fn mood(&self) -> Result<Command, Problem> {
        const EXPECTED: &str = "i:participant s:dimension f:value [f:ramp_secs]";
        let bad = || self.bad(EXPECTED);
        let (p, d, v, r) = match self.args {
            [p, d, v] => (p, d, v, None),
            [p, d, v, r] => (p, d, v, Some(r)),
            _ => return Err(bad()),
        };
        let target = match integer(p) {
            Some(0) => MoodTarget::Communal,
            Some(id) => MoodTarget::Participant(id_in_range(id).ok_or_else(bad)?),
            None => return Err(bad()),
        };
        let name = text(d).ok_or_else(bad)?;
        let value = number(v).ok_or_else(bad)?;
        let ramp_secs = match r {
            Some(r) => number(r).filter(|r| *r >= 0.0).ok_or_else(bad)?,
            None => 0.0,
        };
        let dim = self
            .names
            .dim(name)
            .ok_or_else(|| self.unknown("dimension", name))?;
        Ok(Command::Mood {
            target,
            dim,
            value,
            ramp_secs,
        })
    }

    fn note(&self) -> Result<Command, Problem> {
        const EXPECTED: &str = "i:participant i:pitch(0..127) i:velocity(0..127)";
        let bad = || self.bad(EXPECTED);
        let [p, n, v] = self.args else {
            return Err(bad());
        };
        let participant = player(p).ok_or_else(bad)?;
        let midi = |a: &OscType| {
            integer(a)
                .filter(|x| (0..=127).contains(x))
                .map(|x| x as u8)
        };
        let pitch = midi(n).ok_or_else(bad)?;
        let velocity = midi(v).ok_or_else(bad)?;
        Ok(if velocity == 0 {
            Command::NoteOff { participant, pitch }
        } else {
            Command::NoteOn {
                participant,
                pitch,
                velocity,
            }
        })
    }

    fn expression(&self) -> Result<Command, Problem> {
        let bad = || self.bad(expression_arguments(self.addr));
        let (p, kind, v) = match (self.addr, self.args) {
            (BEND, [p, v]) => (p, Some(Expression::PitchBend), v),
            (MOD, [p, v]) => (p, Some(Expression::Vibrato), v),
            (EXPR, [p, k, v]) => (p, text(k).and_then(Expression::from_name), v),
            _ => return Err(bad()),
        };
        let participant = player(p).ok_or_else(bad)?;
        let kind = kind.ok_or_else(bad)?;
        let (lo, hi) = kind.range();
        let value = number(v)
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(bad)?;
        Ok(Command::Expression {
            participant,
            kind,
            value,
        })
    }

    /// A status query or a step of the handshake.
    fn request(&self) -> Result<Parsed, Problem> {
        match (self.addr, self.args) {
            (STATUS, []) => Ok(Parsed::StatusQuery),
            (STATUS, _) => Err(self.bad("no arguments")),
            (HELLO, [OscType::Long(_)]) => Ok(Parsed::Hello),
            (HELLO, _) => Err(self.bad("h:nonce")),
            (_, [OscType::Long(cookie)]) => Ok(Parsed::Subscribe(*cookie)),
            _ => Err(self.bad("h:cookie")),
        }
    }
}

/// What an expressive address takes, for problem reports.
fn expression_arguments(addr: &str) -> &'static str {
    match addr {
        BEND => "i:participant f:semitones(-24..24)",
        MOD => "i:participant f:depth(0..1)",
        _ => "i:participant s:kind(bend, vibrato, brightness) f:value",
    }
}

/// An integer argument: `i`, `h`, or `f`/`d` holding a whole number.
fn integer(arg: &OscType) -> Option<i64> {
    let whole =
        |v: f64| (v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64);
    match *arg {
        OscType::Int(v) => Some(v as i64),
        OscType::Long(v) => Some(v),
        OscType::Float(v) => whole(v as f64),
        OscType::Double(v) => whole(v),
        _ => None,
    }
}

/// A number argument: `f`, `d`, `i` or `h`, finite.
fn number(arg: &OscType) -> Option<f32> {
    let v = match *arg {
        OscType::Int(v) => v as f32,
        OscType::Long(v) => v as f32,
        OscType::Float(v) => v,
        OscType::Double(v) => v as f32,
        _ => return None,
    };
    v.is_finite().then_some(v)
}

fn text(arg: &OscType) -> Option<&str> {
    match arg {
        OscType::String(s) => Some(s),
        _ => None,
    }
}

fn id_in_range(id: i64) -> Option<ParticipantId> {
    ParticipantId::try_from(id).ok().filter(|&id| id > 0)
}

/// A participant with a voice: ids from 1 (0 is the conductor, who only sets moods).
fn player(arg: &OscType) -> Option<ParticipantId> {
    integer(arg).and_then(id_in_range)
}

/// The argument types as an OSC type tag string, for log lines.
fn type_tags(args: &[OscType]) -> String {
    let mut tags = String::from(",");
    for a in args.iter().take(16) {
        tags.push(match a {
            OscType::Int(_) => 'i',
            OscType::Float(_) => 'f',
            OscType::String(_) => 's',
            OscType::Blob(_) => 'b',
            OscType::Time(_) => 't',
            OscType::Long(_) => 'h',
            OscType::Double(_) => 'd',
            OscType::Char(_) => 'c',
            OscType::Color(_) => 'r',
            OscType::Midi(_) => 'm',
            OscType::Bool(true) => 'T',
            OscType::Bool(false) => 'F',
            OscType::Array(_) => '[',
            OscType::Nil => 'N',
            OscType::Inf => 'I',
        });
    }
    tags
}

/// Whether `packet` holds bundles nested more than `limit` deep. Checked before decoding so
/// the recursive decoder never meets a packet that could exhaust the thread's stack (a 64 KiB
/// datagram can nest about 3000 bundles, which overflows a 2 MiB stack in rosc 0.11). The
/// walk follows rosc's framing exactly, including its padding to 4-byte boundaries of the
/// whole datagram after the `#bundle` tag, so it sees the same nesting rosc would.
fn bundles_deeper_than(packet: &[u8], limit: usize) -> bool {
    fn nested(packet: &[u8], start: usize, end: usize, limit: usize) -> bool {
        const TAG: &[u8] = b"#bundle\0";
        if !packet[start..end].starts_with(TAG) {
            return false;
        }
        if limit == 0 {
            return true;
        }
        let after_tag = start + TAG.len();
        let mut pos = after_tag + (4 - after_tag % 4) % 4 + 8; // padding, time tag
        while pos.saturating_add(4) <= end {
            let size = u32::from_be_bytes([
                packet[pos],
                packet[pos + 1],
                packet[pos + 2],
                packet[pos + 3],
            ]) as usize;
            let element = pos + 4;
            let element_end = element.saturating_add(size).min(end);
            if nested(packet, element, element_end, limit - 1) {
                return true;
            }
            pos = element_end;
        }
        false
    }
    nested(packet, 0, packet.len(), limit)
}

/// The acknowledgement sent to a subscriber after every packet: messages of the packet
/// handed to the engine (requests answered count too), messages dropped or refused, and why
/// (`"too far ahead 3, schedule share full 9"`; empty when nothing was).
pub fn ack_message(accepted: u32, dropped: u32, reasons: &str) -> OscMessage {
    OscMessage {
        addr: ACK.to_string(),
        args: vec![
            OscType::Int(accepted.min(i32::MAX as u32) as i32),
            OscType::Int(dropped.min(i32::MAX as u32) as i32),
            OscType::String(reasons.to_string()),
        ],
    }
}

/// The reply to `/tapestry/hello`: `h:cookie`, exactly as large as a hello carrying its
/// `h:nonce`.
pub fn hello_message(cookie: i64) -> OscMessage {
    OscMessage {
        addr: HELLO.to_string(),
        args: vec![OscType::Long(cookie)],
    }
}

/// The reply to `/tapestry/status`: `i:participants i:section i:bar i:lost i:dropped`, then
/// for every mood dimension of the patch, in its order, `s:name f:communal_value`, then
/// counters as `s:key i:count`: the engine's refusals by reason (`refused:capacity`,
/// `refused:unknown_participant`, …), the server's drops by kind (`osc:malformed`,
/// `osc:unproven`, …, as in [`OscStats`]) and `extra` (e.g. `midi:sysex`, see
/// [`OscServer::report_counters`]). `lost` counts the datagrams the kernel dropped (receive
/// buffer full), `dropped` the messages the server dropped or refused. Only subscribers
/// get it, so it may be larger than the query.
pub fn status_message(
    status: &Status,
    names: &Names,
    osc: &OscCounts,
    extra: &[(String, u64)],
) -> OscMessage {
    let int = |v: u64| OscType::Int(v.min(i32::MAX as u64) as i32);
    let mut args = vec![
        int(status.participants.load(Ordering::Relaxed) as u64),
        int(status.section.load(Ordering::Relaxed) as u64),
        int(status.bar.load(Ordering::Relaxed)),
        int(osc.kernel_drops),
        int(osc.dropped()),
    ];
    for (i, name) in names.dims.iter().enumerate() {
        args.push(OscType::String(name.clone()));
        args.push(OscType::Float(status.mood(i)));
    }
    let refusals = status
        .refusals()
        .map(|(r, n)| (format!("refused:{}", r.key().replace(' ', "_")), n));
    let drops = osc.by_kind().map(|(k, n)| (format!("osc:{}", k.key()), n));
    for (key, n) in refusals.iter().chain(&drops).chain(extra) {
        args.push(OscType::String(key.clone()));
        args.push(int(*n));
    }
    OscMessage {
        addr: STATUS.to_string(),
        args,
    }
}

/// Why a packet's messages were dropped, as "kind count" pairs.
fn reasons(problems: &[Problem]) -> String {
    DropKind::ALL
        .iter()
        .filter_map(|kind| {
            let n = problems.iter().filter(|p| p.kind == *kind).count();
            (n > 0).then(|| format!("{kind} {n}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Dropped input, logged to stderr at most once per [`LOG_INTERVAL`] with a count.
struct DropLog {
    last_line: Option<Instant>,
    pending: [u64; DropKind::ALL.len()],
    last: Option<(SocketAddr, Problem)>,
}

impl DropLog {
    fn new() -> DropLog {
        DropLog {
            last_line: None,
            pending: [0; DropKind::ALL.len()],
            last: None,
        }
    }

    fn add(&mut self, from: SocketAddr, problem: &Problem) {
        let i = DropKind::ALL
            .iter()
            .position(|k| *k == problem.kind)
            .unwrap_or(0);
        self.pending[i] += 1;
        self.last = Some((from, problem.clone()));
    }

    /// Counts a drop without building its description unless it is the first of its kind
    /// since the last line (floods pass here once per datagram).
    fn count(&mut self, from: SocketAddr, kind: DropKind) {
        let i = DropKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        if self.pending[i] == 0 {
            self.last = Some((from, Problem::new(kind, refusal_detail(kind, 0, 0))));
        }
        self.pending[i] += 1;
    }

    fn flush_if_due(&mut self, now: Instant) {
        if self.last_line.is_none_or(|t| now - t >= LOG_INTERVAL) {
            self.flush(now);
        }
    }

    fn flush(&mut self, now: Instant) {
        let total: u64 = self.pending.iter().sum();
        if total == 0 {
            return;
        }
        let kinds: Vec<String> = DropKind::ALL
            .iter()
            .zip(&self.pending)
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let last = self
            .last
            .as_ref()
            .map(|(from, p)| format!("; last from {from}: {p}"))
            .unwrap_or_default();
        eprintln!(
            "tapestry: OSC input dropped {total} ({}){last}",
            kinds.join(", ")
        );
        self.pending = [0; DropKind::ALL.len()];
        self.last_line = Some(now);
    }
}

/// Counters added to the status reply, as `(key, count)` pairs (see
/// [`OscServer::report_counters`]).
pub type CounterReport = Box<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;

/// Options of an [`OscServer`].
#[derive(Clone, Copy, Debug)]
pub struct OscOptions {
    /// Receive buffer asked of the kernel, in bytes (default
    /// [`RECV_BUFFER_BYTES`]).
    pub recv_buffer_bytes: usize,
}

impl Default for OscOptions {
    fn default() -> Self {
        OscOptions {
            recv_buffer_bytes: RECV_BUFFER_BYTES,
        }
    }
}

/// An OSC server on its own thread: receives datagrams, keeps each client address within
/// its budgets, posts their messages to the engine, and answers subscribed addresses (acks,
/// status) and hellos. Stops when [`stop`](Self::stop)ped or dropped.
pub struct OscServer {
    local_addr: SocketAddr,
    stats: Arc<OscStats>,
    extra: Arc<OnceLock<CounterReport>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OscServer {
    /// Binds a UDP socket to `addr` (port 0 picks a free port) and starts serving. Messages
    /// are stamped with `clock` and posted through `controller`.
    pub fn spawn(
        addr: SocketAddr,
        controller: Controller,
        clock: Arc<SampleClock>,
    ) -> io::Result<OscServer> {
        Self::spawn_with(addr, controller, clock, OscOptions::default())
    }

    /// [`spawn`](Self::spawn) with options.
    pub fn spawn_with(
        addr: SocketAddr,
        controller: Controller,
        clock: Arc<SampleClock>,
        options: OscOptions,
    ) -> io::Result<OscServer> {
        let socket = OscSocket::bind(addr, options.recv_buffer_bytes)?;
        socket.udp().set_read_timeout(Some(READ_TIMEOUT))?;
        socket
            .udp()
            .set_write_timeout(Some(Duration::from_millis(20)))?;
        let local_addr = socket.udp().local_addr()?;
        let stats = Arc::new(OscStats::default());
        let granted = socket.recv_buffer_bytes.unwrap_or(0) as u64;
        stats.recv_buffer_bytes.store(granted, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let names = clone_names(controller.names());
        let gate = Gate::new(
            clock.sample_rate(),
            controller.limits().horizon_secs,
            Instant::now(),
        );
        let decoder = OscDecoder::new(names, clock, stats.clone());
        let extra = Arc::new(OnceLock::new());
        let thread = {
            let server = Server {
                socket,
                decoder,
                controller,
                gate,
                forwarder: Forwarder::new(),
                stats: stats.clone(),
                drops: DropTotal::default(),
                private: Vec::new(),
                pruned: Instant::now(),
                extra: extra.clone(),
                log: DropLog::new(),
            };
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tapestry-osc".into())
                .spawn(move || server.run(&stop))?
        };
        Ok(OscServer {
            local_addr,
            stats,
            extra,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<OscStats> {
        &self.stats
    }

    /// Adds the counters `report` gives (called on the server's thread for each status
    /// reply) to the status reply, after the server's own: how `play` reports MIDI's. Only
    /// the first call counts; later ones are ignored.
    pub fn report_counters(&self, report: CounterReport) {
        let _ = self.extra.set(report);
    }

    /// Stops the thread (within [`READ_TIMEOUT`]) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OscServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn clone_names(names: &Names) -> Names {
    Names {
        dims: names.dims.clone(),
        archetypes: names.archetypes.clone(),
        sections: names.sections.clone(),
    }
}

/// A proven client's own socket (see [`socket`]), and its kernel drop counter.
struct Private {
    peer: SocketAddr,
    socket: std::net::UdpSocket,
    drops: DropTotal,
}

/// The server thread's state.
struct Server {
    socket: OscSocket,
    decoder: OscDecoder,
    controller: Controller,
    gate: Gate,
    forwarder: Forwarder,
    stats: Arc<OscStats>,
    drops: DropTotal,
    log: DropLog,
    /// Sockets of the proven clients (Linux), read before the server's socket.
    private: Vec<Private>,
    /// When sockets of clients no longer subscribed were last closed.
    pruned: Instant,
    /// More counters for the status reply (see [`OscServer::report_counters`]).
    extra: Arc<OnceLock<CounterReport>>,
}

/// How often sockets of clients whose subscription ended are closed.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

impl Server {
    fn run(mut self, stop: &AtomicBool) {
        let mut batch = Batch::new(MAX_PACKET_BYTES);
        let mut timeout = READ_TIMEOUT;
        while !stop.load(Ordering::Relaxed) {
            let wanted = if self.forwarder.queued() > 0 {
                FORWARD_INTERVAL
            } else {
                READ_TIMEOUT
            };
            if wanted != timeout && self.socket.udp().set_read_timeout(Some(wanted)).is_ok() {
                timeout = wanted;
            }
            let mut sockets = vec![self.socket.udp()];
            sockets.extend(self.private.iter().map(|p| &p.socket));
            let ready = wait_readable(&sockets, wanted);
            // proven clients first: a flood on the server's socket never delays them
            for i in 0..self.private.len() {
                if ready[i + 1] {
                    self.read_private(i, &mut batch);
                }
            }
            if ready[0] {
                self.read_shared(&mut batch);
            }
            self.forward();
            let now = Instant::now();
            self.log.flush_if_due(now);
            if now.saturating_duration_since(self.pruned) >= PRUNE_INTERVAL {
                self.prune(now);
            }
        }
        self.forward(); // what the ring still takes; the rest is counted, not lost silently
        let left = self.forwarder.clear() as u64;
        self.stats.undelivered.fetch_add(left, Ordering::Relaxed);
        self.log.flush(Instant::now()); // what is still pending when the server stops
    }

    /// Reads one batch from the server's socket and handles it.
    fn read_shared(&mut self, batch: &mut Batch) {
        // timeouts and would-block let the loop see `stop`; other errors (an ICMP "port
        // unreachable" from an earlier reply, on some systems) concern one datagram
        match recv_batch(self.socket.udp(), batch) {
            Ok(()) => {
                for i in 0..batch.datagrams.len() {
                    if let Some(counter) = batch.datagrams[i].kernel_drops {
                        count_kernel_drops(&mut self.drops, counter, &self.stats);
                    }
                    self.datagram(batch.data(i), batch.datagrams[i].from);
                }
            }
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    std::thread::sleep(Duration::from_millis(1)); // never spin on an error
                }
            }
        }
    }

    /// Reads one batch from the `i`-th proven client's socket and handles it.
    fn read_private(&mut self, i: usize, batch: &mut Batch) {
        let private = &mut self.private[i];
        if recv_batch(&private.socket, batch).is_err() {
            return; // would block, or an ICMP error about an earlier reply
        }
        for d in &batch.datagrams {
            if let Some(counter) = d.kernel_drops {
                count_kernel_drops(&mut private.drops, counter, &self.stats);
            }
        }
        // each datagram is its own sender's: between the socket's bind and its connect, the
        // kernel may have queued anyone's datagrams on it (seen in CI: a flooder's bundle
        // acknowledged to the proven client), so the peer's socket proves nothing about them
        for i in 0..batch.datagrams.len() {
            self.datagram(batch.data(i), batch.datagrams[i].from);
        }
    }

    /// Gives `peer`, which just proved its address, a socket of its own.
    fn open_private(&mut self, peer: SocketAddr) {
        if self.private.iter().any(|p| p.peer == peer) {
            return;
        }
        // where it cannot be opened, the client's datagrams keep coming on the shared socket
        if let Ok(socket) = self.socket.private(peer) {
            self.private.push(Private {
                peer,
                socket,
                drops: DropTotal::default(),
            });
        }
    }

    /// Closes the sockets of clients no longer subscribed.
    fn prune(&mut self, now: Instant) {
        let gate = &mut self.gate;
        self.private.retain(|p| gate.is_subscriber(p.peer, now));
        self.pruned = now;
    }

    /// Checks a datagram's source against its budgets before anything else: over them, it
    /// is counted and dropped unread (and unanswered).
    fn datagram(&mut self, packet: &[u8], from: SocketAddr) {
        let received = Instant::now();
        let handshake = is_handshake(packet);
        match self
            .gate
            .admit_datagram(from, packet.len(), handshake, received)
        {
            Ok(()) => self.packet(packet, from, received),
            Err(kind) => {
                self.stats.packets.fetch_add(1, Ordering::Relaxed);
                self.stats.counter(kind).fetch_add(1, Ordering::Relaxed);
                self.log.count(from, kind);
            }
        }
    }

    /// Posts queued messages into the engine's ring, round-robin by client, as far as it
    /// has room.
    fn forward(&mut self) {
        if self.forwarder.queued() == 0 {
            return;
        }
        let room = self.controller.room();
        if room == 0 && self.controller.is_disconnected() {
            let lost = self.forwarder.clear() as u64;
            self.stats.undelivered.fetch_add(lost, Ordering::Relaxed);
            return;
        }
        let (controller, stats) = (&self.controller, &self.stats);
        self.forwarder.forward(room, |_, message| {
            if controller.send(message).is_err() {
                stats.undelivered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// Decodes one datagram, queues what its sender's budgets allow for the engine, and
    /// answers as the handshake allows.
    fn packet(&mut self, packet: &[u8], from: SocketAddr, received: Instant) {
        let mut outcome = self.decoder.decode(packet, received);
        let now_sample = self.decoder.clock.sample_at(received);
        let mut accepted = outcome.status_queries;
        for message in std::mem::take(&mut outcome.messages) {
            match self.hand_over(from, message, now_sample, received) {
                Ok(()) => accepted += 1,
                Err(problem) => {
                    self.stats
                        .counter(problem.kind)
                        .fetch_add(1, Ordering::Relaxed);
                    outcome.problems.push(problem);
                }
            }
        }
        if let Some(cookie) = outcome.subscribe {
            if self.gate.subscribe(from, cookie, received) {
                accepted += 1;
                self.open_private(from);
            } else {
                let problem = Problem::new(
                    DropKind::BadArguments,
                    "/tapestry/subscribe: not this address's cookie",
                );
                self.stats.bad_arguments.fetch_add(1, Ordering::Relaxed);
                outcome.problems.push(problem);
            }
        }
        if outcome.hello {
            // answered whatever the subscription, but never with more bytes than it carried
            let reply = encode(hello_message(self.gate.cookie(from)));
            match reply {
                Some(bytes) if bytes.len() <= packet.len() => {
                    accepted += 1;
                    self.send(&bytes, from);
                }
                _ => {
                    self.stats.unanswered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.stats
            .accepted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        self.reply(&outcome, accepted, from, received);
        for problem in &outcome.problems {
            self.log.add(from, problem);
        }
    }

    /// Queues one decoded message for the engine if its sender's budgets allow.
    fn hand_over(
        &mut self,
        from: SocketAddr,
        message: Message,
        now_sample: u64,
        received: Instant,
    ) -> Result<(), Problem> {
        let at = match message.at {
            Timing::At(t) => t,
            Timing::Immediate => now_sample,
        };
        let refused = |kind| Problem::new(kind, refusal_detail(kind, at, now_sample));
        let admitted = self
            .gate
            .admit(from, at, now_sample, received)
            .map_err(refused)?;
        if let Command::Join { participant, .. } = message.command {
            self.gate
                .join(from, participant, received)
                .map_err(refused)?;
        }
        if let Err(full) = self.forwarder.push(from, message) {
            if let Command::Join { participant, .. } = message.command {
                self.gate.left(participant);
            }
            let detail = match full {
                QueueFull::Client => "the client's queue to the engine is full",
                QueueFull::Total => "the queues to the engine are full",
            };
            return Err(Problem::new(DropKind::Undelivered, detail));
        }
        if let Command::Leave { participant } = message.command {
            self.gate.left(participant);
        }
        self.gate.handed(from, at, admitted, received);
        Ok(())
    }

    /// Acks (and status replies) go to subscribers only; to anyone else nothing.
    fn reply(&mut self, outcome: &DecodeOutcome, accepted: u32, from: SocketAddr, now: Instant) {
        if !self.gate.is_subscriber(from, now) {
            if outcome.status_queries > 0 {
                self.stats.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let dropped = outcome.problems.len() as u32;
        if let Some(bytes) = encode(ack_message(accepted, dropped, &reasons(&outcome.problems))) {
            self.send(&bytes, from);
        }
        if outcome.status_queries > 0 {
            // once per packet, however many queries it holds
            let counts = self.stats.snapshot();
            let extra = self.extra.get().map(|report| report()).unwrap_or_default();
            let status = status_message(
                self.controller.status(),
                self.decoder.names(),
                &counts,
                &extra,
            );
            if let Some(bytes) = encode(status) {
                self.send(&bytes, from);
            }
        }
    }

    /// Sends from the client's own socket if it has one (the same port), else from the
    /// server's.
    fn send(&self, bytes: &[u8], to: SocketAddr) {
        let sent = match self.private.iter().find(|p| p.peer == to) {
            Some(p) => p.socket.send(bytes),
            None => self.socket.udp().send_to(bytes, to),
        };
        if sent.is_err() {
            self.stats.reply_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Adds what a socket's kernel drop `counter` grew by to the server's count.
fn count_kernel_drops(total: &mut DropTotal, counter: u32, stats: &OscStats) {
    let before = total.total();
    let after = total.update(counter);
    stats
        .kernel_drops
        .fetch_add(after - before, Ordering::Relaxed);
}

/// Whether `packet` is exactly a hello or a subscribe as the handshake sends them (one
/// message with one `h` argument), told by its bytes before it is decoded: such datagrams
/// are judged by the handshake's budget (see [`gate`]).
fn is_handshake(packet: &[u8]) -> bool {
    const HELLO_HEAD: &[u8] = b"/tapestry/hello\0,h\0\0";
    const SUBSCRIBE_HEAD: &[u8] = b"/tapestry/subscribe\0,h\0\0";
    [HELLO_HEAD, SUBSCRIBE_HEAD]
        .iter()
        .any(|head| packet.len() == head.len() + 8 && packet.starts_with(head))
}

fn encode(message: OscMessage) -> Option<Vec<u8>> {
    rosc::encoder::encode(&OscPacket::Message(message)).ok()
}

/// What a budget refusal says in the log.
fn refusal_detail(kind: DropKind, at: u64, now_sample: u64) -> String {
    let ahead = at.saturating_sub(now_sample);
    match kind {
        DropKind::TooFarAhead => format!("stamped {ahead} samples ahead, past the horizon"),
        DropKind::ScheduleShare => "too many future-dated messages pending".into(),
        DropKind::OverRate => "over the client's message rate".into(),
        DropKind::OverBudget => "over the client's datagram or byte rate, dropped unread".into(),
        DropKind::ParticipantQuota => "the client holds as many participants as it may".into(),
        DropKind::Unproven => {
            "over the budget shared by addresses that have not said hello (see the docs)".into()
        }
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Refusal;
    use rosc::{OscBundle, OscTime};
    use std::time::SystemTime;

    const SR: u32 = 48_000;

    fn names() -> Names {
        Names {
            dims: vec!["energy".into(), "tension".into(), "brightness".into()],
            archetypes: vec!["pad".into(), "pluck".into()],
            sections: vec!["calm".into(), "storm".into()],
        }
    }

    struct Fixture {
        decoder: OscDecoder,
        clock: Arc<SampleClock>,
        t0: Instant,
        sys0: SystemTime,
    }

    fn fixture() -> Fixture {
        let t0 = Instant::now();
        let sys0 = SystemTime::now();
        let clock = Arc::new(SampleClock::with_epoch(SR, 256, t0, sys0));
        clock.publish(0, t0);
        let decoder = OscDecoder::new(names(), clock.clone(), Arc::new(OscStats::default()));
        Fixture {
            decoder,
            clock,
            t0,
            sys0,
        }
    }

    fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
        OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        })
    }

    fn bytes(packet: &OscPacket) -> Vec<u8> {
        rosc::encoder::encode(packet).unwrap()
    }

    fn s(v: &str) -> OscType {
        OscType::String(v.into())
    }

    fn decode_one(f: &mut Fixture, packet: OscPacket) -> DecodeOutcome {
        f.decoder.decode(&bytes(&packet), f.t0)
    }

    fn command_of(f: &mut Fixture, packet: OscPacket) -> Command {
        let out = decode_one(f, packet);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.messages.len(), 1);
        assert_eq!(out.messages[0].at, Timing::At(256), "stamped at now");
        out.messages[0].command
    }

    #[test]
    fn every_address_decodes_into_its_command_with_names_resolved() {
        let mut f = fixture();
        use OscType::{Double, Float, Int, Long};
        let cases = [
            (
                msg(JOIN, vec![Int(3)]),
                Command::Join {
                    participant: 3,
                    archetype: None,
                },
            ),
            (
                msg(JOIN, vec![Float(4.0), s("pluck")]),
                Command::Join {
                    participant: 4,
                    archetype: Some(1),
                },
            ),
            (msg(LEAVE, vec![Long(3)]), Command::Leave { participant: 3 }),
            (
                msg(MOOD, vec![Int(0), s("tension"), Float(0.7)]),
                Command::Mood {
                    target: MoodTarget::Communal,
                    dim: 1,
                    value: 0.7,
                    ramp_secs: 0.0,
                },
            ),
            (
                msg(MOOD, vec![Int(5), s("brightness"), Int(1), Double(2.5)]),
                Command::Mood {
                    target: MoodTarget::Participant(5),
                    dim: 2,
                    value: 1.0,
                    ramp_secs: 2.5,
                },
            ),
            (
                msg(RELEASE, vec![s("energy")]),
                Command::ReleaseCommunal { dim: 0 },
            ),
            (
                msg(NOTE, vec![Int(2), Int(60), Int(100)]),
                Command::NoteOn {
                    participant: 2,
                    pitch: 60,
                    velocity: 100,
                },
            ),
            (
                msg(NOTE, vec![Int(2), Float(60.0), Int(0)]),
                Command::NoteOff {
                    participant: 2,
                    pitch: 60,
                },
            ),
            (msg(CUE, vec![s("storm")]), Command::Cue { section: 1 }),
            (
                msg(BEND, vec![Int(2), Float(-1.5)]),
                Command::Expression {
                    participant: 2,
                    kind: Expression::PitchBend,
                    value: -1.5,
                },
            ),
            (
                msg(MOD, vec![Int(2), Double(0.25)]),
                Command::Expression {
                    participant: 2,
                    kind: Expression::Vibrato,
                    value: 0.25,
                },
            ),
            (
                msg(EXPR, vec![Int(3), s("brightness"), Int(1)]),
                Command::Expression {
                    participant: 3,
                    kind: Expression::Brightness,
                    value: 1.0,
                },
            ),
            (
                msg(EXPR, vec![Int(3), s("bend"), Float(24.0)]),
                Command::Expression {
                    participant: 3,
                    kind: Expression::PitchBend,
                    value: 24.0,
                },
            ),
        ];
        let n = cases.len() as u64;
        for (packet, expected) in cases {
            assert_eq!(command_of(&mut f, packet.clone()), expected, "{packet:?}");
        }
        let out = decode_one(&mut f, msg(STATUS, vec![]));
        assert_eq!((out.status_queries, out.messages.len()), (1, 0));
        let counts = f.decoder.stats().snapshot();
        assert_eq!(counts.packets, n + 1);
        assert_eq!(counts.decoded, n + 1);
        assert_eq!(counts.dropped(), 0);
    }

    #[test]
    fn the_handshake_decodes_with_64_bit_arguments_only() {
        let mut f = fixture();
        let out = decode_one(&mut f, msg(HELLO, vec![OscType::Long(-3)]));
        assert!(out.hello && out.problems.is_empty());
        let out = decode_one(&mut f, msg(SUBSCRIBE, vec![OscType::Long(99)]));
        assert_eq!(out.subscribe, Some(99));
        assert_eq!(out.accepted(), 1);
        for bad in [
            msg(HELLO, vec![]),
            msg(HELLO, vec![OscType::Int(1)]), // smaller than the reply
            msg(SUBSCRIBE, vec![OscType::Int(99)]),
            msg(SUBSCRIBE, vec![OscType::Long(1), OscType::Long(2)]),
        ] {
            let out = decode_one(&mut f, bad.clone());
            assert_eq!(out.problems[0].kind, DropKind::BadArguments, "{bad:?}");
            assert!(!out.hello && out.subscribe.is_none());
        }
    }

    #[test]
    fn wrong_arguments_unknown_names_and_addresses_are_counted_by_kind() {
        let mut f = fixture();
        use OscType::{Bool, Float, Int, Nil};
        let bad_arguments = [
            msg(JOIN, vec![]),
            msg(JOIN, vec![Int(0)]),         // the conductor has no voice
            msg(JOIN, vec![Int(-1)]),        // negative id
            msg(JOIN, vec![Float(1.5)]),     // not a whole number
            msg(JOIN, vec![s("1")]),         // a string for a number
            msg(JOIN, vec![Int(1), Int(2)]), // archetype by index is not in the space
            msg(LEAVE, vec![Int(1), Int(2)]),
            msg(MOOD, vec![Int(1), s("energy")]),
            msg(MOOD, vec![Int(1), Int(0), Float(0.5)]),
            msg(MOOD, vec![Int(1), s("energy"), Float(f32::NAN)]),
            msg(MOOD, vec![Int(1), s("energy"), Float(0.5), Float(-1.0)]),
            msg(MOOD, vec![OscType::Long(1 << 40), s("energy"), Float(0.5)]),
            msg(NOTE, vec![Int(1), Int(128), Int(1)]),
            msg(NOTE, vec![Int(1), Int(60), Int(-1)]),
            msg(NOTE, vec![Int(1), Int(60)]),
            msg(NOTE, vec![Int(1), Bool(true), Int(1)]),
            msg(CUE, vec![Nil]),
            msg(STATUS, vec![Int(1)]),
            msg(RELEASE, vec![]),
            msg(BEND, vec![Int(1), Float(f32::NAN)]),
            msg(BEND, vec![Int(1), Float(f32::INFINITY)]),
            msg(BEND, vec![Int(1), Float(24.5)]), // wider than ±24 semitones
            msg(BEND, vec![Int(0), Float(1.0)]),  // the conductor has no voice
            msg(BEND, vec![Int(1)]),
            msg(MOD, vec![Int(1), Float(-0.1)]),
            msg(MOD, vec![Int(1), Float(1.5)]),
            msg(MOD, vec![Int(1), s("0.5")]),
            msg(EXPR, vec![Int(1), s("wah"), Float(0.5)]),
            msg(EXPR, vec![Int(1), Int(0), Float(0.5)]),
            msg(EXPR, vec![Int(1), s("vibrato")]),
        ];
        let unknown_names = [
            msg(JOIN, vec![Int(1), s("gong")]),
            msg(MOOD, vec![Int(0), s("joy"), Float(0.5)]),
            msg(CUE, vec![s("finale")]),
            msg(RELEASE, vec![s("joy")]),
        ];
        let unknown_addresses = [
            msg("/tapestry/jion", vec![Int(1)]),
            msg("/tapestry", vec![]),
            msg("/other/join", vec![Int(1)]),
            msg("/tapestry/join/", vec![Int(1)]),
        ];
        for p in bad_arguments.iter() {
            let out = decode_one(&mut f, p.clone());
            assert!(out.messages.is_empty(), "{p:?}");
            assert_eq!(out.problems.len(), 1);
            assert_eq!(out.problems[0].kind, DropKind::BadArguments, "{p:?}");
        }
        for p in unknown_names.iter() {
            let out = decode_one(&mut f, p.clone());
            assert_eq!(out.problems[0].kind, DropKind::UnknownName, "{p:?}");
        }
        for p in unknown_addresses.iter() {
            let out = decode_one(&mut f, p.clone());
            assert_eq!(out.problems[0].kind, DropKind::UnknownAddress, "{p:?}");
        }
        let c = f.decoder.stats().snapshot();
        assert_eq!(c.bad_arguments, bad_arguments.len() as u64);
        assert_eq!(c.unknown_name, unknown_names.len() as u64);
        assert_eq!(c.unknown_address, unknown_addresses.len() as u64);
        assert_eq!((c.malformed, c.decoded), (0, 0));
    }

    fn bundle(tag: (u32, u32), content: Vec<OscPacket>) -> OscPacket {
        OscPacket::Bundle(OscBundle {
            timetag: OscTime::from(tag),
            content,
        })
    }

    fn tag_at(f: &Fixture, secs: f64) -> (u32, u32) {
        crate::input::system_time_to_time_tag(f.sys0 + Duration::from_secs_f64(secs))
    }

    #[test]
    fn bundles_apply_at_their_time_tags_and_nested_ones_never_earlier_than_their_parent() {
        let mut f = fixture();
        let join = |id| msg(JOIN, vec![OscType::Int(id)]);
        let packet = bundle(
            tag_at(&f, 0.5),
            vec![
                join(1),
                bundle(tag_at(&f, 1.0), vec![join(2)]),
                bundle((0, 1), vec![join(3)]), // "immediately": the parent's time
                bundle(tag_at(&f, 0.1), vec![join(4)]), // before the parent: the parent's
                bundle(
                    tag_at(&f, 2.0),
                    vec![bundle(tag_at(&f, 1.5), vec![join(5)])],
                ),
            ],
        );
        let out = decode_one(&mut f, packet);
        assert!(out.problems.is_empty());
        let at: Vec<u64> = out
            .messages
            .iter()
            .map(|m| match m.at {
                Timing::At(t) => t,
                Timing::Immediate => panic!("not stamped"),
            })
            .collect();
        let expected = [0.5, 1.0, 0.5, 0.5, 2.0].map(|s: f64| (s * SR as f64) as u64 + 256);
        for (got, want) in at.iter().zip(expected) {
            assert!(got.abs_diff(want) <= 2, "{at:?} vs {expected:?}");
        }
        // immediately, and a tag in the past, are now (the arrival's sample)
        let later = f.t0 + Duration::from_secs(3);
        for tag in [(0, 1), tag_at(&f, 1.0)] {
            let out = f.decoder.decode(&bytes(&bundle(tag, vec![join(9)])), later);
            assert_eq!(out.messages[0].at, Timing::At(f.clock.sample_at(later)));
        }
    }

    #[test]
    fn one_bad_message_in_a_bundle_does_not_drop_the_others() {
        let mut f = fixture();
        let packet = bundle(
            (0, 1),
            vec![
                msg(JOIN, vec![OscType::Int(1)]),
                msg("/nope", vec![]),
                msg(CUE, vec![s("calm")]),
            ],
        );
        let out = decode_one(&mut f, packet);
        assert_eq!(out.messages.len(), 2);
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.accepted(), 2);
    }

    #[test]
    fn deeply_nested_bundles_are_malformed_not_a_stack_overflow() {
        let mut f = fixture();
        // a 64 KiB datagram of nested bundles, built by hand (the encoder recurses too)
        let inner = bytes(&msg(JOIN, vec![OscType::Int(1)]));
        let mut packet = inner;
        while packet.len() + 20 < MAX_PACKET_BYTES {
            let mut b = b"#bundle\0".to_vec();
            b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            b.extend_from_slice(&(packet.len() as u32).to_be_bytes());
            b.extend_from_slice(&packet);
            packet = b;
        }
        let out = f.decoder.decode(&packet, f.t0);
        assert_eq!(out.problems[0].kind, DropKind::Malformed);
        // the deepest accepted nesting still decodes
        let mut p = msg(JOIN, vec![OscType::Int(1)]);
        for _ in 0..MAX_BUNDLE_DEPTH {
            p = bundle((0, 1), vec![p]);
        }
        assert_eq!(decode_one(&mut f, p.clone()).messages.len(), 1);
        let too_deep = bundle((0, 1), vec![p]);
        assert_eq!(
            decode_one(&mut f, too_deep).problems[0].kind,
            DropKind::Malformed
        );
    }

    /// A tiny xorshift generator for reproducible garbage.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn garbage_truncations_and_bit_flips_never_panic_and_are_all_counted() {
        let mut f = fixture();
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let valid = [
            bytes(&msg(
                MOOD,
                vec![OscType::Int(0), s("energy"), OscType::Float(0.5)],
            )),
            bytes(&msg(
                NOTE,
                vec![OscType::Int(1), OscType::Int(60), OscType::Int(90)],
            )),
            bytes(&bundle(
                tag_at(&f, 0.2),
                vec![
                    msg(JOIN, vec![OscType::Int(1), s("pad")]),
                    bundle((0, 1), vec![msg(CUE, vec![s("storm")])]),
                ],
            )),
        ];
        let mut packets = 0u64;
        let mut problems = 0u64;
        let mut accepted = 0u64;
        let mut check = |f: &mut Fixture, data: &[u8]| {
            let out = f.decoder.decode(data, f.t0);
            packets += 1;
            problems += out.problems.len() as u64;
            accepted += out.accepted() as u64;
        };
        for _ in 0..4_000 {
            // random bytes, sometimes starting like OSC
            let len = rng.below(200);
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let prefix: &[u8] = match rng.below(3) {
                0 => b"/tapestry/mood\0\0,",
                1 => b"#bundle\0",
                _ => b"",
            };
            data.splice(0..0, prefix.iter().copied());
            check(&mut f, &data);
        }
        for v in &valid {
            // every truncation
            for cut in 0..v.len() {
                check(&mut f, &v[..cut]);
            }
            // random bit flips and byte overwrites
            for _ in 0..2_000 {
                let mut data = v.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(data.len());
                    if rng.below(2) == 0 {
                        data[i] ^= 1 << rng.below(8);
                    } else {
                        data[i] = rng.next() as u8;
                    }
                }
                check(&mut f, &data);
            }
        }
        let c = f.decoder.stats().snapshot();
        assert_eq!(c.packets, packets);
        assert_eq!(c.decoded, accepted);
        assert_eq!(
            c.malformed + c.unknown_address + c.bad_arguments + c.unknown_name,
            problems
        );
        assert!(c.malformed > 4_000, "{c:?}");
        assert!(c.unknown_address > 0 && c.bad_arguments > 0, "{c:?}");
    }

    #[test]
    fn status_and_ack_replies_have_the_documented_shape() {
        let status = Status::default();
        status.participants.store(3, Ordering::Relaxed);
        status.section.store(1, Ordering::Relaxed);
        status.bar.store(17, Ordering::Relaxed);
        status.mood[0].store(0.75f32.to_bits(), Ordering::Relaxed);
        let osc = OscCounts {
            kernel_drops: 12,
            malformed: 2,
            too_far_ahead: 5,
            ..OscCounts::default()
        };
        status.refused_by_reason[Refusal::UnknownParticipant.index()].store(4, Ordering::Relaxed);
        let extra = [("midi:sysex".to_string(), 9)];
        let m = status_message(&status, &names(), &osc, &extra);
        assert_eq!(m.addr, STATUS);
        assert_eq!(
            m.args[..7],
            [
                OscType::Int(3),
                OscType::Int(1),
                OscType::Int(17),
                OscType::Int(12),
                OscType::Int(7),
                s("energy"),
                OscType::Float(0.75)
            ]
        );
        let counters = Refusal::ALL.len() + DropKind::ALL.len() + extra.len();
        assert_eq!(m.args.len(), 5 + 2 * 3 + 2 * counters);
        let count = |key: &str| {
            let at = m.args.iter().position(|a| a == &s(key)).unwrap();
            m.args[at + 1].clone()
        };
        assert_eq!(count("refused:unknown_participant"), OscType::Int(4));
        assert_eq!(count("refused:capacity"), OscType::Int(0));
        assert_eq!(count("osc:malformed"), OscType::Int(2));
        assert_eq!(count("osc:too_far_ahead"), OscType::Int(5));
        assert_eq!(count("midi:sysex"), OscType::Int(9));
        let problems = [
            Problem::new(DropKind::TooFarAhead, "x"),
            Problem::new(DropKind::Malformed, "x"),
            Problem::new(DropKind::TooFarAhead, "x"),
        ];
        assert_eq!(
            ack_message(2, 3, &reasons(&problems)).args,
            vec![
                OscType::Int(2),
                OscType::Int(3),
                s("malformed 1, too far ahead 2")
            ]
        );
        // the hello reply is exactly as large as a hello carrying its nonce
        let hello = bytes(&msg(HELLO, vec![OscType::Long(7)]));
        let reply = encode(hello_message(i64::MAX)).unwrap();
        assert_eq!(reply.len(), hello.len());
    }

    #[test]
    fn the_drop_log_writes_at_most_once_per_interval() {
        let mut log = DropLog::new();
        let t = Instant::now();
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let p = Problem::new(DropKind::Malformed, "x".repeat(500));
        assert!(p.detail.chars().count() <= 101);
        log.add(from, &p);
        log.flush_if_due(t);
        assert_eq!(log.last_line, Some(t));
        log.add(from, &p);
        log.flush_if_due(t + Duration::from_millis(500));
        let malformed = DropKind::ALL
            .iter()
            .position(|k| *k == DropKind::Malformed)
            .unwrap();
        assert_eq!(log.pending[malformed], 1, "held back within the interval");
        log.flush_if_due(t + Duration::from_millis(1000));
        assert_eq!(log.pending[malformed], 0);
    }
}
