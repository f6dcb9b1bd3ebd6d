//! OSC for the soak: hostile senders that send as fast as their sockets let them, and one
//! legitimate client that says hello, subscribes, joins and moves its mood every second.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rosc::{encoder, OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tapestry::input::osc::{
    ACK, BEND, CUE, EXPR, HELLO, JOIN, LEAVE, MOOD, NOTE, RELEASE, STATUS, SUBSCRIBE,
};

/// The legitimate client's participant. Hostile senders send it notes, bends and expressive
/// controls (OSC has no ownership), never moods, so that its mood moves can be told apart.
pub const LEGIT_PARTICIPANT: i32 = 77;
/// The archetype the legitimate client joins as.
pub const LEGIT_ARCHETYPE: &str = "warp";
/// The dimension the legitimate client moves.
pub const LEGIT_DIMENSION: &str = "energy";

const DIMENSIONS: [&str; 4] = ["energy", "tension", "brightness", "unity"];
const SECTIONS: [&str; 5] = ["dusk", "weave", "split-screen", "mosaic", "afterglow"];
/// Values hostile moods carry: never one the legitimate client sends ([`legit_value`]).
const HOSTILE_VALUES: [f32; 3] = [0.0, 0.5, 1.0];
/// How long the legitimate client waits for a reply before it sends again.
const REPLY_WAIT: Duration = Duration::from_millis(300);
/// Messages in a full bundle (about 45 KB, under the 65 507-byte UDP limit).
const FULL_BUNDLE_MESSAGES: usize = 1000;

/// The value of the legitimate client's `i`-th mood move: 61 distinct values in 0.1..0.9.
pub fn legit_value(i: usize) -> f32 {
    0.1 + 0.8 * ((i * 37) % 61) as f32 / 61.0
}

/// A tiny seeded generator (SplitMix64): the senders' datagrams are the same every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a hostile datagram is, sent in turn by every hostile socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hostile {
    /// Random bytes.
    Garbage,
    /// A valid message cut short.
    Truncated,
    /// A datagram of no bytes.
    Empty,
    /// A bundle of 1000 valid mood messages (conductor and MIDI participants), due now.
    FullBundle,
    /// A bundle of 20 valid moods time-tagged a year ahead.
    YearAhead,
    /// A bundle of 50 valid moods time-tagged 5 s ahead (inside the horizon: the schedule
    /// share budget).
    NearFuture,
    /// Commands for participants the sender does not own: notes, bends and expressive
    /// controls for the legitimate client's participant; joins, leaves and moods for the
    /// MIDI participants.
    Foreign,
    /// Conductor commands: communal moods, cues, releases.
    Conductor,
    /// Requests that need the handshake: status without one, a hello smaller than its
    /// answer, a subscribe with a wrong cookie.
    Unasked,
}

impl Hostile {
    pub const ALL: [Hostile; 9] = [
        Hostile::Garbage,
        Hostile::Truncated,
        Hostile::Empty,
        Hostile::FullBundle,
        Hostile::YearAhead,
        Hostile::NearFuture,
        Hostile::Foreign,
        Hostile::Conductor,
        Hostile::Unasked,
    ];

    /// The short name `TAPESTRY_SOAK_OSC_KINDS` knows it by.
    pub fn key(self) -> &'static str {
        match self {
            Hostile::Garbage => "garbage",
            Hostile::Truncated => "truncated",
            Hostile::Empty => "empty",
            Hostile::FullBundle => "bundle",
            Hostile::YearAhead => "year",
            Hostile::NearFuture => "future",
            Hostile::Foreign => "foreign",
            Hostile::Conductor => "conductor",
            Hostile::Unasked => "unasked",
        }
    }

    /// The kinds a comma-separated list of [`key`](Self::key)s names (all when `None`).
    pub fn selected(list: Option<&str>) -> Vec<Hostile> {
        let Some(list) = list else {
            return Hostile::ALL.to_vec();
        };
        let keys: Vec<&str> = list.split(',').map(str::trim).collect();
        for key in &keys {
            assert!(
                Hostile::ALL.iter().any(|k| k.key() == *key),
                "unknown hostile kind {key:?}"
            );
        }
        Hostile::ALL
            .into_iter()
            .filter(|k| keys.contains(&k.key()))
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Hostile::Garbage => "random bytes",
            Hostile::Truncated => "truncated message",
            Hostile::Empty => "empty datagram",
            Hostile::FullBundle => "bundle of 1000 valid moods",
            Hostile::YearAhead => "bundle a year ahead",
            Hostile::NearFuture => "bundle 5 s ahead",
            Hostile::Foreign => "commands for others' participants",
            Hostile::Conductor => "conductor commands",
            Hostile::Unasked => "status/hello/subscribe without handshake",
        }
    }
}

fn message(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage {
        addr: addr.to_string(),
        args,
    })
}

fn encode(packet: &OscPacket) -> Vec<u8> {
    encoder::encode(packet).expect("an encodable packet")
}

fn mood(participant: i32, dim: &str, value: f32) -> OscPacket {
    message(
        MOOD,
        vec![
            OscType::Int(participant),
            OscType::String(dim.into()),
            OscType::Float(value),
        ],
    )
}

/// A mood for the conductor or a MIDI participant, with a hostile value.
fn hostile_mood(rng: &mut Rng) -> OscPacket {
    mood(
        rng.below(5) as i32,
        DIMENSIONS[rng.below(4)],
        HOSTILE_VALUES[rng.below(3)],
    )
}

fn bundle(timetag: OscTime, content: Vec<OscPacket>) -> Vec<u8> {
    encode(&OscPacket::Bundle(OscBundle { timetag, content }))
}

fn time_tag(at: SystemTime) -> OscTime {
    OscTime::try_from(at).expect("a time after 1970")
}

/// Writes the time tag of an encoded bundle (bytes 8..16, after `#bundle\0`).
fn set_time_tag(datagram: &mut [u8], tag: OscTime) {
    datagram[8..12].copy_from_slice(&tag.seconds.to_be_bytes());
    datagram[12..16].copy_from_slice(&tag.fractional.to_be_bytes());
}

fn foreign(rng: &mut Rng) -> OscPacket {
    let legit = OscType::Int(LEGIT_PARTICIPANT);
    let midi_participant = OscType::Int(1 + rng.below(4) as i32);
    match rng.below(6) {
        0 => message(NOTE, vec![legit, OscType::Int(60), OscType::Int(100)]),
        1 => message(BEND, vec![legit, OscType::Float(12.0)]),
        2 => message(
            EXPR,
            vec![
                legit,
                OscType::String("vibrato".into()),
                OscType::Float(1.0),
            ],
        ),
        3 => message(
            JOIN,
            vec![midi_participant, OscType::String("static".into())],
        ),
        4 => message(LEAVE, vec![midi_participant]),
        _ => mood(1 + rng.below(4) as i32, "tension", 1.0),
    }
}

fn conductor(rng: &mut Rng) -> OscPacket {
    match rng.below(3) {
        0 => mood(0, DIMENSIONS[rng.below(4)], HOSTILE_VALUES[rng.below(3)]),
        1 => message(CUE, vec![OscType::String(SECTIONS[rng.below(5)].into())]),
        _ => message(
            RELEASE,
            vec![OscType::String(DIMENSIONS[rng.below(4)].into())],
        ),
    }
}

fn unasked(rng: &mut Rng) -> OscPacket {
    match rng.below(3) {
        0 => message(STATUS, vec![]),
        1 => message(HELLO, vec![OscType::Int(7)]),
        _ => message(SUBSCRIBE, vec![OscType::Long(rng.next() as i64 & i64::MAX)]),
    }
}

/// Variants of each kind, built before the flood so that sending costs only the send.
struct Pool {
    variants: BTreeMap<Hostile, Vec<Vec<u8>>>,
}

impl Pool {
    fn new(seed: u64) -> Pool {
        let mut rng = Rng::new(seed);
        let mut variants = BTreeMap::new();
        let year_ahead = time_tag(SystemTime::now() + Duration::from_secs(365 * 86_400));
        for kind in Hostile::ALL {
            let count = if kind == Hostile::FullBundle { 2 } else { 16 };
            let list = (0..count)
                .map(|_| Self::build(kind, &mut rng, year_ahead))
                .collect();
            variants.insert(kind, list);
        }
        Pool { variants }
    }

    fn build(kind: Hostile, rng: &mut Rng, year_ahead: OscTime) -> Vec<u8> {
        let moods = |rng: &mut Rng, n: usize| (0..n).map(|_| hostile_mood(rng)).collect();
        match kind {
            Hostile::Garbage => (0..1 + rng.below(300)).map(|_| rng.next() as u8).collect(),
            Hostile::Truncated => {
                let whole = encode(&hostile_mood(rng));
                whole[..1 + rng.below(whole.len() - 1)].to_vec()
            }
            Hostile::Empty => Vec::new(),
            Hostile::FullBundle => bundle(OscTime::from((0, 1)), moods(rng, FULL_BUNDLE_MESSAGES)),
            Hostile::YearAhead => bundle(year_ahead, moods(rng, 20)),
            // the time tag is written just before each send
            Hostile::NearFuture => bundle(OscTime::from((0, 1)), moods(rng, 50)),
            Hostile::Foreign => encode(&foreign(rng)),
            Hostile::Conductor => encode(&conductor(rng)),
            Hostile::Unasked => encode(&unasked(rng)),
        }
    }
}

/// What one hostile sender sent, by kind.
#[derive(Debug, Default)]
pub struct HostileSent {
    /// Datagrams and bytes sent, by kind.
    pub by_kind: BTreeMap<Hostile, (u64, u64)>,
    /// Sends the local socket refused (its send buffer full).
    pub send_errors: u64,
    /// Source addresses used.
    pub sockets: usize,
}

impl HostileSent {
    pub fn merge(&mut self, other: HostileSent) {
        for (kind, (n, bytes)) in other.by_kind {
            let e = self.by_kind.entry(kind).or_default();
            e.0 += n;
            e.1 += bytes;
        }
        self.send_errors += other.send_errors;
        self.sockets += other.sockets;
    }

    pub fn datagrams(&self) -> u64 {
        self.by_kind.values().map(|v| v.0).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.by_kind.values().map(|v| v.1).sum()
    }
}

/// How the hostile senders send: which kinds, and at most how many datagrams per second
/// each (`None`: as fast as the sockets take them).
#[derive(Clone)]
pub struct HostilePlan {
    pub kinds: Vec<Hostile>,
    pub rate: Option<f64>,
}

/// Sends hostile datagrams to `target` from `sockets` source addresses, every kind of `plan`
/// in turn on every socket, until `stop`.
pub fn hostile_sender(
    target: SocketAddr,
    sockets: usize,
    seed: u64,
    plan: HostilePlan,
    stop: Arc<AtomicBool>,
) -> HostileSent {
    let rate = plan.rate;
    let sockets: Vec<UdpSocket> = (0..sockets)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("a local UDP socket"))
        .collect();
    let mut pool = Pool::new(seed);
    let mut sent = HostileSent {
        sockets: sockets.len(),
        ..HostileSent::default()
    };
    let mut n = 0usize;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if rate.is_some_and(|r| n as f64 > r * started.elapsed().as_secs_f64()) {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let socket = &sockets[n % sockets.len()];
        let kind = plan.kinds[(n / sockets.len()) % plan.kinds.len()];
        let variants = pool.variants.get_mut(&kind).unwrap();
        let count = variants.len();
        let datagram = &mut variants[n % count];
        if kind == Hostile::NearFuture {
            set_time_tag(
                datagram,
                time_tag(SystemTime::now() + Duration::from_secs(5)),
            );
        }
        match socket.send_to(datagram, target) {
            Ok(_) => {
                let e = sent.by_kind.entry(kind).or_default();
                e.0 += 1;
                e.1 += datagram.len() as u64;
            }
            Err(_) => sent.send_errors += 1,
        }
        n += 1;
    }
    sent
}

/// What the legitimate client saw.
#[derive(Debug, Default)]
pub struct LegitFigures {
    /// Hellos sent (one a second until the handshake succeeds).
    pub hello_tries: u32,
    /// Whether the subscription was acknowledged.
    pub subscribed: bool,
    /// When the subscription was acknowledged, from the client's start.
    pub subscribed_after: Option<Duration>,
    /// Joins sent (in a bundle with a move, until one is acknowledged).
    pub joins_sent: usize,
    /// Whether a join was acknowledged as accepted.
    pub join_acked: bool,
    /// Mood moves made (each a distinct value, [`legit_value`]).
    pub moves: usize,
    /// Moves whose ack said all was accepted (the move, and the join with it), on any try.
    pub moves_acked: usize,
    /// Moves acknowledged as accepted on their first datagram.
    pub moves_acked_first_try: usize,
    /// Datagrams sent in all (moves, retries, handshake, status requests).
    pub datagrams: usize,
    /// Moves with no ack after 3 tries.
    pub moves_unanswered: usize,
    /// Acks of moves that dropped something: their figures and reasons, with counts.
    pub move_drop_reasons: BTreeMap<String, u64>,
    /// Round trips from a move's send to its ack, ms.
    pub round_trips_ms: Vec<f64>,
    /// Status requests made and answered.
    pub status_asked: usize,
    /// Status replies received.
    pub status_answered: usize,
    /// The last status reply's `lost` (kernel drops) and `dropped` counts.
    pub last_status_lost_dropped: Option<(i32, i32)>,
}

/// A connected client socket with a short read timeout.
struct Client {
    socket: UdpSocket,
    datagrams: usize,
}

impl Client {
    fn send(&mut self, packet: &OscPacket) {
        // a send error is a datagram lost like any other; the retries cover it
        let _ = self.socket.send(&encode(packet));
        self.datagrams += 1;
    }

    /// The next message whose address is `want`, within `wait`.
    fn receive(&self, want: &str, wait: Duration) -> Option<OscMessage> {
        let until = Instant::now() + wait;
        let mut buffer = [0u8; 65_536];
        while Instant::now() < until {
            let Ok(n) = self.socket.recv(&mut buffer) else {
                continue;
            };
            if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buffer[..n]) {
                if m.addr == want {
                    return Some(m);
                }
            }
        }
        None
    }

    /// Sends `packet` until a reply at `want` comes, at most `tries` times; returns the
    /// reply, the try (from 1) that got it and the round trip of that try.
    fn ask(
        &mut self,
        packet: &OscPacket,
        want: &str,
        tries: u32,
    ) -> Option<(OscMessage, u32, Duration)> {
        for attempt in 1..=tries {
            let sent = Instant::now();
            self.send(packet);
            if let Some(reply) = self.receive(want, REPLY_WAIT) {
                return Some((reply, attempt, sent.elapsed()));
            }
        }
        None
    }
}

/// An ack's `accepted`, `dropped` and `reasons`.
fn ack_fields(ack: &OscMessage) -> (i32, i32, String) {
    match &ack.args[..] {
        [OscType::Int(accepted), OscType::Int(dropped), OscType::String(reasons)] => {
            (*accepted, *dropped, reasons.clone())
        }
        _ => (0, 0, format!("an ack of another shape: {:?}", ack.args)),
    }
}

/// One try at the handshake: a hello, and when its cookie comes back, a subscribe (twice at
/// most); records how it went.
fn try_handshake(client: &mut Client, figures: &mut LegitFigures) {
    figures.hello_tries += 1;
    client.send(&message(HELLO, vec![OscType::Long(0x5EED)]));
    let Some(reply) = client.receive(HELLO, REPLY_WAIT) else {
        return;
    };
    let Some(OscType::Long(cookie)) = reply.args.first().cloned() else {
        return;
    };
    let subscribe = message(SUBSCRIBE, vec![OscType::Long(cookie)]);
    figures.subscribed = client.ask(&subscribe, ACK, 2).is_some();
}

/// One status request; records the reply's `lost` and `dropped`.
fn ask_status(client: &mut Client, figures: &mut LegitFigures) {
    figures.status_asked += 1;
    if let Some((reply, _, _)) = client.ask(&message(STATUS, vec![]), STATUS, 2) {
        figures.status_answered += 1;
        if let [_, _, _, OscType::Int(lost), OscType::Int(dropped), ..] = reply.args[..] {
            figures.last_status_lost_dropped = Some((lost, dropped));
        }
    }
}

/// The next mood move, sent up to 3 times until acknowledged. Until a join has been
/// acknowledged, the move travels in one bundle with the join: a client that cannot know
/// whether its join arrived sends it again (a second join is refused, harmlessly).
fn move_once(client: &mut Client, figures: &mut LegitFigures) {
    let value = legit_value(figures.moves);
    figures.moves += 1;
    let mood = mood(LEGIT_PARTICIPANT, LEGIT_DIMENSION, value);
    let with_join = !figures.join_acked;
    let packet = if with_join {
        let join = message(
            JOIN,
            vec![
                OscType::Int(LEGIT_PARTICIPANT),
                OscType::String(LEGIT_ARCHETYPE.into()),
            ],
        );
        figures.joins_sent += 1;
        OscPacket::Bundle(OscBundle {
            timetag: OscTime::from((0, 1)),
            content: vec![join, mood],
        })
    } else {
        mood
    };
    let Some((ack, attempt, round_trip)) = client.ask(&packet, ACK, 3) else {
        figures.moves_unanswered += 1;
        return;
    };
    let (accepted, dropped, reasons) = ack_fields(&ack);
    let whole = 1 + i32::from(with_join);
    if accepted == whole && dropped == 0 {
        figures.join_acked |= with_join;
        figures.moves_acked += 1;
        figures.moves_acked_first_try += usize::from(attempt == 1);
        figures.round_trips_ms.push(round_trip.as_secs_f64() * 1e3);
    } else {
        let reasons = format!("accepted {accepted} dropped {dropped}: {reasons}");
        *figures.move_drop_reasons.entry(reasons).or_default() += 1;
    }
}

/// The legitimate client, until `stop`, as docs/formats.md tells a client that must get
/// through a flood to behave: once a second a try at the hello/subscribe handshake until it
/// succeeds (from then on the server reads it from a socket of its own), then once a second a
/// mood move of [`LEGIT_PARTICIPANT`] (joined with the first moves, see [`move_once`]), and
/// every 5 s a status request. The acks show what the server did with each command.
pub fn legit_client(target: SocketAddr, stop: Arc<AtomicBool>) -> LegitFigures {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a local UDP socket");
    socket.connect(target).expect("connecting the UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut client = Client {
        socket,
        datagrams: 0,
    };
    let mut figures = LegitFigures::default();
    let started = Instant::now();
    let mut step = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = started + Duration::from_secs(step);
        while Instant::now() < due && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        step += 1;
        if !figures.subscribed {
            try_handshake(&mut client, &mut figures);
            if figures.subscribed {
                figures.subscribed_after = Some(started.elapsed());
            }
            continue;
        }
        move_once(&mut client, &mut figures);
        if figures.moves % 5 == 0 {
            ask_status(&mut client, &mut figures);
        }
    }
    figures.datagrams = client.datagrams;
    figures
}
