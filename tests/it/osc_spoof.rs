//! Forged source addresses, for real on loopback: Linux routes all of 127.0.0.0/8 to `lo`,
//! so sockets bound to 127.1.x.y are distinct sources. Thousands of them flood the server
//! (each datagram from a new address, as a sender forging its source would) while a client
//! that proved its address says hello, joins and moves its mood: every step lands, and the
//! forged addresses together hold no more than their shared share. And more client
//! addresses than the server keeps budgets for ([`MAX_CLIENTS`]) are all served.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::osc::{ack, client, encode, s, setup_with};
use crate::osc_flood::{
    bundle, handshake, landed_moods, legit_mood, legit_session, message, request, Paced, LEGIT,
};
use rosc::OscType;
use tapestry::control::limits::osc::{MAX_CLIENTS, UNPROVEN_PARTICIPANTS};
use tapestry::input::osc::OscOptions;
use tapestry::{Command, MoodTarget, Refusal};

use OscType::{Float, Int};

/// Source addresses the forging threads cycle through: 127.1.0.0 to 127.1.15.255.
const FORGED_IPS: u32 = 4096;

/// What one forging thread sent.
#[derive(Default)]
struct Forged {
    datagrams: u64,
    bind_errors: u64,
}

/// A thread sending, until `stop`, every datagram from a new socket on one of
/// [`FORGED_IPS`] addresses (a new port each time): bundles of 100 communal moods, joins of
/// ever new ids, and notes.
fn forger(target: SocketAddr, first: u32, stop: Arc<AtomicBool>) -> JoinHandle<Forged> {
    let moods = vec![message("/tapestry/mood", vec![Int(0), s("energy"), Float(0.3)]); 100];
    let moods = bundle(moods);
    std::thread::spawn(move || {
        let mut sent = Forged::default();
        let mut i = first;
        while !stop.load(Ordering::Relaxed) {
            i = i.wrapping_add(1);
            let n = i % FORGED_IPS;
            let ip = Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8);
            let Ok(socket) = UdpSocket::bind((ip, 0)) else {
                sent.bind_errors += 1;
                continue;
            };
            let id = 1000 + (i % 100_000) as i32;
            let packet = match i % 3 {
                0 => moods.clone(),
                1 => encode("/tapestry/join", vec![Int(id)]),
                _ => encode("/tapestry/note", vec![Int(id), Int(60), Int(90)]),
            };
            if socket.send_to(&packet, target).is_ok() {
                sent.datagrams += 1;
            }
        }
        sent
    })
}

#[test]
fn thousands_of_forged_source_addresses_do_not_keep_a_proven_client_out() {
    let (audio, controller, server) = setup_with(OscOptions::default());
    let status = controller.status().clone();
    let paced = Paced::start(audio, legit_mood);
    let stop = Arc::new(AtomicBool::new(false));
    let target = server.local_addr();
    let forgers: Vec<_> = (0..2)
        .map(|t| forger(target, t * 7919, stop.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(300)); // the flood is under way

    let (values, sends) = legit_session(&client(&server));
    stop.store(true, Ordering::Relaxed);
    let forged: Vec<Forged> = forgers.into_iter().map(|f| f.join().unwrap()).collect();
    let applied = paced.finish();
    let c = server.stats().snapshot();
    let datagrams: u64 = forged.iter().map(|f| f.datagrams).sum();
    let bind_errors: u64 = forged.iter().map(|f| f.bind_errors).sum();
    println!(
        "forged: {datagrams} datagrams, each from a new source address on {FORGED_IPS} IPs \
         ({bind_errors} binds failed); server read {}; refused or dropped unread by the shared budget \
         {} (and {} over an address's own), kernel dropped {}; {} messages handed over; the \
         proven client's join and 10 moves took {sends} sends; participants present {}",
        c.packets,
        c.unproven,
        c.over_budget,
        c.kernel_drops,
        c.accepted,
        status.participants.load(Ordering::Relaxed),
    );
    assert!(datagrams > 10_000, "a flood: {datagrams}");
    assert!(
        c.unproven > datagrams / 4,
        "the shared budget held them back"
    );
    assert!(
        matches!(applied.first(), Some(Command::Join { participant, .. }) if *participant == LEGIT),
        "{applied:?}"
    );
    assert_eq!(
        landed_moods(&applied),
        values,
        "every move reached the engine, in order"
    );
    let present = status.participants.load(Ordering::Relaxed);
    assert!(
        present <= UNPROVEN_PARTICIPANTS + 1,
        "forged addresses hold at most their shared quota: {present}"
    );
    let refusals = status.refusals();
    let full = refusals
        .iter()
        .find(|(r, _)| *r == Refusal::CapacityReached);
    assert_eq!(
        full.map(|(_, n)| *n),
        Some(0),
        "no join found the room full"
    );
    server.stop();
}

#[test]
fn more_client_addresses_than_the_server_keeps_budgets_for_are_all_served() {
    let (audio, _controller, server) = setup_with(OscOptions::default());
    let moods = |c: &Command| {
        matches!(
            c,
            Command::Mood {
                target: MoodTarget::Communal | MoodTarget::Participant(LEGIT),
                ..
            }
        )
    };
    let paced = Paced::start(audio, moods);
    let proven = client(&server);
    assert!(handshake(&proven));
    let join = encode("/tapestry/join", vec![Int(LEGIT as i32)]);
    assert_eq!(
        request(&proven, &join, "/tapestry/ack").0,
        Some(ack(1, 0, ""))
    );
    // MAX_CLIENTS + 44 addresses, each with one communal mood of its own value; the proven
    // client moves between them
    let clients = MAX_CLIENTS + 44;
    let sockets: Vec<UdpSocket> = (0..clients).map(|_| client(&server)).collect();
    let value = |i: usize| i as f32 / 1000.0;
    let mut legit_moves = Vec::new();
    for (i, socket) in sockets.iter().enumerate() {
        let mood = encode("/tapestry/mood", vec![Int(0), s("energy"), Float(value(i))]);
        socket.send(&mood).unwrap();
        if i % 50 == 49 {
            let v = 0.5 + legit_moves.len() as f32 / 100.0;
            let mine = encode(
                "/tapestry/mood",
                vec![Int(LEGIT as i32), s("tension"), Float(v)],
            );
            assert_eq!(
                request(&proven, &mine, "/tapestry/ack").0,
                Some(ack(1, 0, ""))
            );
            legit_moves.push(v);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let applied = paced.finish();
    let c = server.stats().snapshot();
    let mut communal: Vec<f32> = applied
        .iter()
        .filter_map(|c| match c {
            Command::Mood {
                target: MoodTarget::Communal,
                value,
                ..
            } => Some(*value),
            _ => None,
        })
        .collect();
    let mine: Vec<f32> = applied
        .iter()
        .filter_map(|c| match c {
            Command::Mood {
                target: MoodTarget::Participant(_),
                value,
                ..
            } => Some(*value),
            _ => None,
        })
        .collect();
    println!(
        "{clients} client addresses: {} of their moods applied, {} dropped; the proven \
         client's {} moves applied {}",
        communal.len(),
        c.dropped(),
        legit_moves.len(),
        mine.len()
    );
    // each address's own order holds; between addresses the server serves them in turn
    communal.sort_by(f32::total_cmp);
    let expected: Vec<f32> = (0..clients).map(value).collect();
    assert_eq!(communal, expected, "every address served");
    assert_eq!(mine, legit_moves);
    assert_eq!(c.dropped(), 0, "{c:?}");
    server.stop();
}
