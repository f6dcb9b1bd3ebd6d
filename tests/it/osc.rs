//! OSC input from outside: a real UDP socket on loopback drives a running engine (joins, moods,
//! notes take effect, every packet of a subscribed client is acknowledged, status queries are
//! answered, floods of garbage are counted while the music goes on), and a message lands on
//! the sample its arrival maps to, inside the block rather than at its start.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;
use rosc::{OscMessage, OscPacket, OscType};
use tapestry::input::osc::{DropKind, OscDecoder, OscOptions, OscServer, OscStats};
use tapestry::input::SampleClock;
use tapestry::{Controller, Engine, Refusal};

const BLOCK: usize = 256;

pub fn encode(addr: &str, args: Vec<OscType>) -> Vec<u8> {
    rosc::encoder::encode(&OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    }))
    .unwrap()
}

pub fn s(v: &str) -> OscType {
    OscType::String(v.into())
}

use OscType::{Float, Int};

/// The audio side of the test: processes blocks and publishes the clock before each.
pub struct Audio {
    pub engine: Engine,
    pub clock: Arc<SampleClock>,
    pub block: Vec<f32>,
    pub all_finite: bool,
    pub energy: f64,
}

impl Audio {
    pub fn pump(&mut self, blocks: usize) {
        for _ in 0..blocks {
            self.clock
                .publish(self.engine.sample_position(), Instant::now());
            self.engine.process(&mut self.block);
            self.all_finite &= self.block.iter().all(|x| x.is_finite());
            self.energy += self.block.iter().map(|x| (x * x) as f64).sum::<f64>();
        }
    }

    /// Pumps until `done` holds (or panics after a few seconds of wall time).
    pub fn until(&mut self, what: &str, mut done: impl FnMut(&mut Audio) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            self.pump(4);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub fn replies(client: &UdpSocket, address: &str, count: usize) -> Vec<Vec<OscType>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} {address} replies",
            out.len()
        );
        let Ok(len) = client.recv(&mut buf) else {
            continue;
        };
        if let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..len]) {
            if m.addr == address {
                out.push(m.args);
            }
        }
    }
    out
}

/// A client socket connected to the server (no replies until it subscribes).
pub fn client(server: &OscServer) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    socket.connect(server.local_addr()).unwrap();
    socket
}

/// The handshake: hello with a nonce, the cookie back, subscribe with it; the subscribe's own
/// ack comes back.
pub fn subscribe(osc: &UdpSocket) {
    osc.send(&encode("/tapestry/hello", vec![OscType::Long(0x5EED)]))
        .unwrap();
    let cookie = match replies(osc, "/tapestry/hello", 1).remove(0)[..] {
        [OscType::Long(cookie)] => cookie,
        ref other => panic!("hello reply {other:?}"),
    };
    osc.send(&encode("/tapestry/subscribe", vec![OscType::Long(cookie)]))
        .unwrap();
    assert_eq!(replies(osc, "/tapestry/ack", 1)[0], ack(1, 0, ""));
}

/// An ack's arguments.
pub fn ack(accepted: i32, dropped: i32, reasons: &str) -> Vec<OscType> {
    vec![Int(accepted), Int(dropped), s(reasons)]
}

/// A subscribed client.
pub fn subscribed_client(server: &OscServer) -> UdpSocket {
    let socket = client(server);
    subscribe(&socket);
    socket
}

fn setup() -> (Audio, Controller, OscServer) {
    setup_with(OscOptions::default())
}

pub fn setup_with(options: OscOptions) -> (Audio, Controller, OscServer) {
    let patch = patch("minimal.toml");
    let (engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let clock = Arc::new(SampleClock::new(SR, BLOCK as u64));
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server =
        OscServer::spawn_with(loopback, controller.clone(), clock.clone(), options).unwrap();
    assert!(server.local_addr().ip().is_loopback());
    assert_ne!(server.local_addr().port(), 0);
    let audio = Audio {
        engine,
        clock,
        block: vec![0.0; 2 * BLOCK],
        all_finite: true,
        energy: 0.0,
    };
    (audio, controller, server)
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
}

#[test]
fn joins_moods_and_notes_over_udp_take_effect_and_garbage_floods_are_counted() {
    let (mut audio, controller, server) = setup();
    let status = controller.status().clone();
    let energy = controller.names().dim("energy").unwrap() as usize;
    let osc = subscribed_client(&server);

    // participants join, the conductor raises the energy, someone plays
    let packets = [
        encode("/tapestry/join", vec![Int(1), s("pad")]),
        encode("/tapestry/join", vec![Int(2)]),
        encode("/tapestry/join", vec![Float(3.0), s("bell")]),
        encode("/tapestry/mood", vec![Int(0), s("energy"), Float(0.9)]),
        encode(
            "/tapestry/mood",
            vec![Int(2), s("tension"), Float(0.4), Float(1.0)],
        ),
        encode("/tapestry/note", vec![Int(1), Int(64), Int(100)]),
    ];
    for p in &packets {
        osc.send(p).unwrap();
    }
    let acks = replies(&osc, "/tapestry/ack", packets.len());
    assert!(acks.iter().all(|a| a == &ack(1, 0, "")), "{acks:?}");
    audio.until("three participants", |_| {
        status.participants.load(Ordering::Relaxed) == 3
    });
    audio.pump(3 * SR as usize / BLOCK); // the mood's smoothing settles
    assert!(status.mood(energy) > 0.85, "energy {}", status.mood(energy));

    // a status query is answered with participants, section, bar and the communal mood
    osc.send(&encode("/tapestry/status", vec![])).unwrap();
    let reply = replies(&osc, "/tapestry/status", 1).remove(0);
    assert_eq!(reply[0], Int(3));
    assert_eq!(reply[1], Int(0), "the one section");
    assert!(matches!(reply[2], Int(bar) if bar > 0), "{reply:?}");
    let at = reply.iter().position(|a| a == &s("energy")).unwrap();
    assert!(matches!(reply[at + 1], Float(e) if e > 0.85), "{reply:?}");
    assert_eq!(reply[3], Int(0), "no datagram lost in the kernel");
    // then the counters: refusals by reason and OSC drops by kind
    let counters = Refusal::ALL.len() + DropKind::ALL.len();
    assert_eq!(
        reply.len(),
        5 + 2 * controller.names().dims.len() + 2 * counters
    );

    // a flood of garbage from 50 other sockets: 20 000 packets of four kinds, sent in bursts
    // (so the kernel's receive buffer never overflows and every one reaches the server),
    // 400 from each socket (within an address's datagram burst) and paced to 7700 a second
    // (within what all addresses that have not said hello share), so every one is decoded
    let floods: Vec<UdpSocket> = (0..50).map(|_| client(&server)).collect();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let valid = encode("/tapestry/mood", vec![Int(0), s("energy"), Float(0.2)]);
    let mut sent = [0u64; 4]; // malformed, unknown address, bad arguments, unknown name
    let before = server.stats().snapshot();
    let started = Instant::now();
    for i in 0..20_000u64 {
        let kind = (rng.next() % 4) as usize;
        let packet = match kind {
            0 if i % 2 == 0 => {
                // random bytes that never start an OSC address or bundle
                let len = 1 + (rng.next() % 120) as usize;
                let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                p[0] = b'a' + (p[0] % 26);
                p
            }
            0 => valid[..(rng.next() as usize % valid.len())].to_vec(), // truncated
            1 => encode("/tapestry/explode", vec![Int(1)]),
            2 => encode("/tapestry/note", vec![Int(1), s("C4"), Int(100)]),
            _ => encode("/tapestry/cue", vec![s("no such section")]),
        };
        sent[kind] += 1;
        floods[i as usize % floods.len()].send(&packet).unwrap();
        if i % 200 == 199 {
            let due = started + Duration::from_micros(130 * (i + 1));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let target = before.packets + i + 1;
            audio.until("the server catches up", |_| {
                server.stats().packets.load(Ordering::Relaxed) >= target
            });
        }
    }
    audio.until("all garbage counted", |_| {
        server.stats().snapshot().packets == before.packets + 20_000
    });
    let after = server.stats().snapshot();
    assert_eq!(after.malformed - before.malformed, sent[0], "{after:?}");
    assert_eq!(after.unknown_address - before.unknown_address, sent[1]);
    assert_eq!(after.bad_arguments - before.bad_arguments, sent[2]);
    assert_eq!(after.unknown_name - before.unknown_name, sent[3]);
    assert_eq!(after.accepted, before.accepted, "no garbage was accepted");
    assert_eq!(
        (after.over_budget, after.unproven),
        (before.over_budget, before.unproven),
        "every one was decoded"
    );

    // the music went on, and what is sent now still takes effect
    osc.send(&encode(
        "/tapestry/mood",
        vec![Int(0), s("energy"), Float(0.1)],
    ))
    .unwrap();
    osc.send(&encode("/tapestry/leave", vec![Int(3)])).unwrap();
    // an unknown participant passes the decoder and is refused (and counted) by the engine
    let refused = status.refused_messages.load(Ordering::Relaxed);
    osc.send(&encode("/tapestry/leave", vec![Int(77)])).unwrap();
    let acks = replies(&osc, "/tapestry/ack", 3);
    assert!(acks.iter().all(|a| a == &ack(1, 0, "")), "{acks:?}");
    audio.until("the leave and the mood", |_| {
        status.participants.load(Ordering::Relaxed) == 2 && status.mood(energy) < 0.2
    });
    assert_eq!(status.refused_messages.load(Ordering::Relaxed), refused + 1);
    assert!(audio.all_finite, "the engine produced NaN or inf");
    assert!(audio.energy > 1.0, "the engine went silent");
    assert_eq!(status.dropped_messages.load(Ordering::Relaxed), 0);

    // the status reply is as truthful as the console: the engine's refusals by reason, the
    // server's drops by kind, and the counters another input reports (as play does MIDI's)
    server.report_counters(Box::new(|| vec![("midi:sysex".into(), 526)]));
    osc.send(&encode("/tapestry/status", vec![])).unwrap();
    let reply = replies(&osc, "/tapestry/status", 1).remove(0);
    let count = |key: &str| {
        let at = reply.iter().position(|a| a == &s(key));
        at.map(|at| reply[at + 1].clone())
    };
    let c = server.stats().snapshot();
    let unknown = status.refusals()[Refusal::UnknownParticipant.index()].1;
    assert_eq!(unknown, 1);
    assert_eq!(count("refused:unknown_participant"), Some(Int(1)));
    assert_eq!(count("refused:capacity"), Some(Int(0)));
    assert_eq!(count("osc:malformed"), Some(Int(c.malformed as i32)));
    assert_eq!(count("osc:unknown_name"), Some(Int(c.unknown_name as i32)));
    assert_eq!(count("midi:sysex"), Some(Int(526)));
    server.stop();
}

#[test]
fn a_message_lands_at_the_sample_its_arrival_maps_to_inside_the_block() {
    // The clock is published at exact instants (block k starts at k × 256 samples and
    // k × 256 / SR seconds). A note received `offset` samples after block K−1 began maps to
    // K × 256 + offset (one block of latency), and the output first differs from a render
    // without the note there, plus the limiter's look-ahead: inside block K, not at its start.
    const K: u64 = 40;
    let patch = patch("minimal.toml");
    let t0 = Instant::now();
    let clock = Arc::new(SampleClock::with_epoch(
        SR,
        BLOCK as u64,
        t0,
        SystemTime::now(),
    ));
    let block_start =
        |k: u64| t0 + Duration::from_nanos(k * BLOCK as u64 * 1_000_000_000 / SR as u64);
    let render = |note_offset: Option<u64>| {
        let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
        let mut decoder = OscDecoder::new(
            tapestry::control::Names {
                dims: controller.names().dims.clone(),
                archetypes: controller.names().archetypes.clone(),
                sections: controller.names().sections.clone(),
            },
            clock.clone(),
            Arc::new(OscStats::default()),
        );
        let mut post = |packet: Vec<u8>, received: Instant| {
            let outcome = decoder.decode(&packet, received);
            assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
            for m in outcome.messages {
                controller.send(m).unwrap();
            }
        };
        let mut out = vec![0.0f32; 2 * BLOCK * (K as usize + 20)];
        for (k, chunk) in out.chunks_mut(2 * BLOCK).enumerate() {
            let k = k as u64;
            clock.publish(k * BLOCK as u64, block_start(k));
            if k == 0 {
                post(encode("/tapestry/join", vec![Int(1), s("pluck")]), t0);
            }
            engine.process(chunk);
            // arrivals during block k, posted before block k + 1 is processed
            if let Some(offset) = note_offset.filter(|_| k == K - 1) {
                let received =
                    block_start(k) + Duration::from_nanos(offset * 1_000_000_000 / SR as u64 + 1);
                assert_eq!(clock.sample_at(received), K * BLOCK as u64 + offset);
                post(
                    encode("/tapestry/note", vec![Int(1), Int(67), Int(120)]),
                    received,
                );
            }
        }
        (out, engine.latency_frames() as u64)
    };
    let (without, latency) = render(None);
    for offset in [1, 100, 250] {
        let (with, _) = render(Some(offset));
        let first = with
            .iter()
            .zip(&without)
            .position(|(a, b)| a != b)
            .map(|i| (i / 2) as u64);
        assert_eq!(
            first,
            Some(K * BLOCK as u64 + offset + latency),
            "note {offset} samples into the block"
        );
    }
}
