//! OSC under a full-rate flood, on a real loopback socket with a real-time-paced engine: one
//! socket sends bundles of 1000 valid messages as fast as it can while a second socket's
//! handshake, join and mood moves all reach the engine (each sent at most three times, as a
//! client that waits 300 ms for its ack would); one address that joins and leaves thousands
//! of participants, or joins more than its quota, does not keep another address out.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::osc::{ack, client, encode, s, setup_with, Audio};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tapestry::control::limits::osc::CLIENT_PARTICIPANTS;
use tapestry::input::osc::{OscOptions, OscServer};
use tapestry::{Command, MoodTarget};

use OscType::{Float, Int, Long};

/// Sends at most this many times before giving up on a reply.
const TRIES: usize = 3;
/// How long a client waits for a reply before it sends again.
const REPLY_WAIT: Duration = Duration::from_millis(300);

/// A bundle of `messages`, due at once.
pub fn bundle(messages: Vec<OscMessage>) -> Vec<u8> {
    let packet = OscPacket::Bundle(OscBundle {
        timetag: OscTime::from((0, 1)),
        content: messages.into_iter().map(OscPacket::Message).collect(),
    });
    rosc::encoder::encode(&packet).unwrap()
}

pub fn message(addr: &str, args: Vec<OscType>) -> OscMessage {
    OscMessage {
        addr: addr.into(),
        args,
    }
}

/// The engine on a thread of its own, one 256-frame block per 5.3 ms of wall time, keeping
/// the applied commands `keep` selects from its journal.
pub struct Paced {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Command>>,
}

impl Paced {
    pub fn start(mut audio: Audio, keep: fn(&Command) -> bool) -> Paced {
        let journal = audio.engine.enable_journal(1 << 16);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let block = Duration::from_secs_f64(256.0 / 48_000.0);
                let start = Instant::now();
                let mut kept = Vec::new();
                let mut blocks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    audio.pump(1);
                    blocks += 1;
                    kept.extend(journal.try_iter().map(|a| a.command).filter(keep));
                    let due = start + block * blocks;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                assert!(audio.all_finite, "the engine produced NaN or inf");
                kept
            })
        };
        Paced { stop, thread }
    }

    pub fn finish(self) -> Vec<Command> {
        std::thread::sleep(Duration::from_millis(100)); // what is queued lands
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Sends `packet` up to [`TRIES`] times until a reply at `address` comes back; the reply
/// and the number of sends.
pub fn request(socket: &UdpSocket, packet: &[u8], address: &str) -> (Option<Vec<OscType>>, usize) {
    let mut buf = vec![0u8; 65_536];
    for attempt in 1..=TRIES {
        socket.send(packet).unwrap();
        let until = Instant::now() + REPLY_WAIT;
        while Instant::now() < until {
            let Ok(len) = socket.recv(&mut buf) else {
                continue;
            };
            if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..len]) {
                if m.addr == address {
                    return (Some(m.args), attempt);
                }
            }
        }
    }
    (None, TRIES)
}

/// The hello/subscribe handshake with retries; whether it succeeded.
pub fn handshake(socket: &UdpSocket) -> bool {
    let hello = encode("/tapestry/hello", vec![Long(0x5EED)]);
    let Some(reply) = request(socket, &hello, "/tapestry/hello").0 else {
        return false;
    };
    let [Long(cookie)] = reply[..] else {
        return false;
    };
    let subscribe = encode("/tapestry/subscribe", vec![Long(cookie)]);
    request(socket, &subscribe, "/tapestry/ack").0 == Some(ack(1, 0, ""))
}

/// A thread sending `packet` from its own socket as fast as it can until `stop`.
fn flooder(server: &OscServer, packet: Vec<u8>, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    let socket = client(server);
    std::thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            if socket.send(&packet).is_ok() {
                sent += 1;
            }
        }
        sent
    })
}

pub const LEGIT: u32 = 5;

/// A proven client's session through a flood: the handshake, a join of [`LEGIT`] and 10
/// tension moves 100 ms apart, each acknowledged as accepted; returns the values moved to and
/// the datagrams it took (join included).
pub fn legit_session(legit: &UdpSocket) -> (Vec<f32>, usize) {
    assert!(handshake(legit), "the handshake got through the flood");
    let join = encode("/tapestry/join", vec![Int(LEGIT as i32)]);
    let (reply, mut sends) = request(legit, &join, "/tapestry/ack");
    assert_eq!(reply, Some(ack(1, 0, "")), "the join was acknowledged");
    let values: Vec<f32> = (0..10).map(|i| 0.1 + 0.05 * i as f32).collect();
    for v in &values {
        let mood = encode(
            "/tapestry/mood",
            vec![Int(LEGIT as i32), s("tension"), Float(*v)],
        );
        let (reply, tries) = request(legit, &mood, "/tapestry/ack");
        sends += tries;
        assert_eq!(
            reply,
            Some(ack(1, 0, "")),
            "the move to {v} was acknowledged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (values, sends)
}

/// The mood values among `applied` commands, in order.
pub fn landed_moods(applied: &[Command]) -> Vec<f32> {
    applied
        .iter()
        .filter_map(|c| match c {
            Command::Mood { value, .. } => Some(*value),
            _ => None,
        })
        .collect()
}

pub fn legit_mood(c: &Command) -> bool {
    matches!(c, Command::Mood { target: MoodTarget::Participant(p), .. } if *p == LEGIT)
        || matches!(c, Command::Join { participant, .. } if *participant == LEGIT)
}

#[test]
fn a_full_rate_flood_of_bundles_from_one_socket_does_not_keep_another_clients_moves_out() {
    let (audio, _controller, server) = setup_with(OscOptions::default());
    let paced = Paced::start(audio, legit_mood);
    let stop = Arc::new(AtomicBool::new(false));
    let moods = vec![message("/tapestry/mood", vec![Int(0), s("energy"), Float(0.5)]); 1000];
    let full = bundle(moods);
    assert!(full.len() > 30_000 && full.len() < 65_000);
    let flood = flooder(&server, full, stop.clone());
    std::thread::sleep(Duration::from_millis(300)); // the flood is under way

    let (values, sends) = legit_session(&client(&server));
    stop.store(true, Ordering::Relaxed);
    let flooded = flood.join().unwrap();
    let applied = paced.finish();
    let c = server.stats().snapshot();
    println!(
        "flood: {flooded} datagrams of 1000 moods sent; server read {} ({} decoded, {} \
         dropped unread over the address's budget), kernel dropped {}; {} messages handed \
         over, {} over the message rate; the legitimate client's join and 10 moves took {sends} sends",
        c.packets,
        c.packets - c.over_budget,
        c.over_budget,
        c.kernel_drops,
        c.accepted,
        c.over_rate
    );
    assert!(
        matches!(applied.first(), Some(Command::Join { .. })),
        "{applied:?}"
    );
    assert_eq!(
        landed_moods(&applied),
        values,
        "every move reached the engine, in order"
    );
    assert!(c.over_budget > 0, "the flood was over its budget");
    assert_eq!(c.undelivered, 0, "no queue to the engine overflowed");
    server.stop();
}

#[test]
fn one_address_churning_or_joining_past_its_quota_does_not_keep_another_out() {
    let (audio, controller, server) = setup_with(OscOptions::default());
    let status = controller.status().clone();
    let joined_newcomer = |c: &Command| matches!(c, Command::Join { participant: 7, .. });
    let paced = Paced::start(audio, joined_newcomer);

    // one address joins, plays and leaves 3000 ids within its message rate: every join
    // lands, so every slot of the patch ends up holding a voice that fades
    let churn = client(&server);
    for first in (1000..4000).step_by(100) {
        let mut messages = Vec::new();
        for id in first..first + 100 {
            messages.push(message("/tapestry/join", vec![Int(id)]));
            messages.push(message("/tapestry/note", vec![Int(id), Int(60), Int(100)]));
            messages.push(message("/tapestry/leave", vec![Int(id)]));
        }
        churn.send(&bundle(messages)).unwrap();
        std::thread::sleep(Duration::from_millis(80)); // 300 messages: within 4000/s
    }
    // another address joins more ids than its quota, and keeps them
    let greedy = client(&server);
    let joins = (100..140).map(|id| message("/tapestry/join", vec![Int(id)]));
    greedy.send(&bundle(joins.collect())).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // a newcomer still joins
    let newcomer = client(&server);
    assert!(handshake(&newcomer));
    let join = encode("/tapestry/join", vec![Int(7)]);
    assert_eq!(
        request(&newcomer, &join, "/tapestry/ack").0,
        Some(ack(1, 0, ""))
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while status.participants.load(Ordering::Relaxed) < CLIENT_PARTICIPANTS + 1 {
        assert!(Instant::now() < deadline, "the newcomer did not join");
        std::thread::sleep(Duration::from_millis(10));
    }
    let applied = paced.finish();
    let c = server.stats().snapshot();
    let refused = status.refusals();
    println!(
        "churn: 3000 ids joined and left; greedy: 40 joins, {} over its quota; engine \
         refusals {refused:?}",
        c.participant_quota
    );
    assert_eq!(applied.len(), 1, "the newcomer's join landed");
    assert_eq!(c.participant_quota, 40 - CLIENT_PARTICIPANTS as u64);
    assert_eq!(c.over_rate + c.undelivered, 0, "{c:?}");
    assert_eq!(
        status.participants.load(Ordering::Relaxed),
        CLIENT_PARTICIPANTS + 1,
        "the greedy address's quota and the newcomer"
    );
    assert_eq!(
        status.refused_messages.load(Ordering::Relaxed),
        0,
        "{refused:?}"
    );
    server.stop();
}
