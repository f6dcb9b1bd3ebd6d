//! OSC under attack, on a real loopback socket: a client flooding messages time-tagged far
//! ahead is refused (and its acks say why) while another client's join, mood and note land
//! and are heard; an address that has not proved itself never gets a reply larger than its
//! request; the datagrams the kernel drops in a real flood are counted exactly.

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::common::SR;
use crate::osc::{ack, client, encode, replies, s, setup_with, subscribed_client, Audio};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tapestry::control::limits::osc::{CLIENT_BYTE_BURST, CLIENT_SCHEDULED};
use tapestry::input::osc::{OscOptions, OscServer};
use tapestry::input::system_time_to_time_tag;

use OscType::{Float, Int, Long};

/// A bundle of `count` copies of one message, time-tagged `ahead` from now.
fn bundle(ahead: Duration, count: usize, addr: &str, args: Vec<OscType>) -> Vec<u8> {
    let message = OscPacket::Message(OscMessage {
        addr: addr.into(),
        args,
    });
    let tag = system_time_to_time_tag(SystemTime::now() + ahead);
    let packet = OscPacket::Bundle(OscBundle {
        timetag: OscTime::from(tag),
        content: vec![message; count],
    });
    rosc::encoder::encode(&packet).unwrap()
}

/// Waits (pumping audio) until the server has read `packets` datagrams in all.
fn read_all(audio: &mut Audio, server: &OscServer, packets: u64) {
    audio.until("the server reads every datagram", |_| {
        server.stats().packets.load(Ordering::Relaxed) >= packets
    });
}

#[test]
fn a_client_flooding_the_future_is_refused_and_another_client_still_lands_and_is_heard() {
    let (mut audio, controller, server) = setup_with(OscOptions::default());
    let status = controller.status().clone();
    let flood = subscribed_client(&server);
    let other = subscribed_client(&server);
    audio.pump(20);
    // six datagrams of 1500 messages time-tagged a year ahead: 9000 messages that would fill
    // the engine's schedule for the rest of the show
    let year = Duration::from_secs(365 * 86_400);
    let far = bundle(year, 1500, "/tapestry/leave", vec![Int(1)]);
    assert!(far.len() < 65_000);
    for _ in 0..6 {
        flood.send(&far).unwrap();
        // within the address's byte rate (a datagram of 64 KiB per quarter of a second)
        std::thread::sleep(Duration::from_millis(260));
    }
    let acks = replies(&flood, "/tapestry/ack", 6);
    assert!(
        acks.iter()
            .all(|a| a == &ack(0, 1500, "too far ahead 1500")),
        "{acks:?}"
    );
    // within the horizon: the client keeps its own share, the rest is refused and says so
    let near = bundle(
        Duration::from_secs(5),
        1000,
        "/tapestry/leave",
        vec![Int(1)],
    );
    flood.send(&near).unwrap();
    let refused = 1000 - CLIENT_SCHEDULED as i32;
    let expected = ack(
        CLIENT_SCHEDULED as i32,
        refused,
        &format!("schedule share full {refused}"),
    );
    assert_eq!(replies(&flood, "/tapestry/ack", 1)[0], expected);
    let counts = server.stats().snapshot();
    assert_eq!(counts.too_far_ahead, 9000);
    assert_eq!(counts.schedule_share, refused as u64);
    audio.pump(2);
    assert_eq!(status.refused_messages.load(Ordering::Relaxed), 0);

    // the other client's join, mood and note land, are acknowledged, and are heard
    let silent = audio.energy;
    for packet in [
        encode("/tapestry/join", vec![Int(5), s("pad")]),
        encode("/tapestry/mood", vec![Int(0), s("energy"), Float(0.9)]),
        encode("/tapestry/note", vec![Int(5), Int(64), Int(110)]),
    ] {
        other.send(&packet).unwrap();
    }
    let acks = replies(&other, "/tapestry/ack", 3);
    assert!(acks.iter().all(|a| a == &ack(1, 0, "")), "{acks:?}");
    audio.until("the other client's participant", |_| {
        status.participants.load(Ordering::Relaxed) == 1
    });
    let joined = audio.energy;
    audio.pump(SR as usize / 256);
    let heard = audio.energy - joined;
    println!("energy before the join {silent:.3e}, in the second after it {heard:.3e}");
    assert!(
        heard > 1.0 && heard > 1e3 * silent.max(1e-9),
        "{heard} vs {silent}"
    );
    assert_eq!(status.dropped_messages.load(Ordering::Relaxed), 0);
    server.stop();
}

/// Everything a socket receives within `wait`, in bytes.
fn bytes_received(socket: &UdpSocket, wait: Duration) -> usize {
    let mut buf = vec![0u8; 65_536];
    let mut total = 0;
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            total += n;
        }
    }
    total
}

#[test]
fn addresses_that_have_not_proved_themselves_never_get_more_bytes_than_they_sent() {
    let (mut audio, controller, server) = setup_with(OscOptions::default());
    let status = controller.status().clone();
    let stranger = client(&server);
    let status_query = encode("/tapestry/status", vec![]);
    let probes: Vec<Vec<u8>> = vec![
        vec![], // an empty datagram
        status_query.clone(),
        bundle(Duration::ZERO, 2, "/tapestry/status", vec![]),
        encode("/tapestry/join", vec![Int(1)]),
        b"garbage that is not OSC".to_vec(),
        encode("/tapestry/hello", vec![Int(7)]), // smaller than the reply would be
        encode("/tapestry/subscribe", vec![Long(12_345)]), // not its cookie
    ];
    for p in &probes {
        stranger.send(p).unwrap();
    }
    read_all(&mut audio, &server, probes.len() as u64);
    assert_eq!(bytes_received(&stranger, Duration::from_millis(300)), 0);
    // commands need no handshake: the join played
    audio.until("the stranger's join", |_| {
        status.participants.load(Ordering::Relaxed) == 1
    });

    // a hello with a 64-bit nonce gets a reply exactly as large, holding the cookie
    let hello = encode("/tapestry/hello", vec![Long(99)]);
    stranger.send(&hello).unwrap();
    let mut buf = [0u8; 1024];
    let n = stranger.recv(&mut buf).expect("the hello is answered");
    assert_eq!(n, hello.len(), "no amplification");
    let cookie = match rosc::decoder::decode_udp(&buf[..n]).unwrap().1 {
        OscPacket::Message(m) if m.addr == "/tapestry/hello" => match m.args[..] {
            [Long(c)] => c,
            _ => panic!("{m:?}"),
        },
        other => panic!("{other:?}"),
    };
    // another address cannot use that cookie (a spoofer never sees its own)
    let thief = client(&server);
    thief
        .send(&encode("/tapestry/subscribe", vec![Long(cookie)]))
        .unwrap();
    thief.send(&status_query).unwrap();
    read_all(&mut audio, &server, probes.len() as u64 + 3);
    assert_eq!(bytes_received(&thief, Duration::from_millis(300)), 0);

    // the address that holds it subscribes: acks and status replies from then on
    stranger
        .send(&encode("/tapestry/subscribe", vec![Long(cookie)]))
        .unwrap();
    assert_eq!(replies(&stranger, "/tapestry/ack", 1)[0], ack(1, 0, ""));
    stranger.send(&status_query).unwrap();
    let reply = replies(&stranger, "/tapestry/status", 1).remove(0);
    assert_eq!(reply[0], Int(1));
    let counts = server.stats().snapshot();
    assert_eq!(counts.unanswered, 3, "three status queries: {counts:?}");
    server.stop();
}

#[test]
fn a_real_flood_on_loopback_counts_the_kernels_drops_exactly() {
    // a small receive buffer (the kernel's minimum) and datagrams that take the server far
    // longer to decode (bundles of 200 messages) than the sender to send make the kernel
    // drop most of them; every one is either read or counted lost
    let (mut audio, _controller, server) = setup_with(OscOptions {
        recv_buffer_bytes: 1,
    });
    let granted = server.stats().recv_buffer_bytes.load(Ordering::Relaxed);
    let watcher = subscribed_client(&server);
    let flood = client(&server);
    let before = server.stats().snapshot();
    let packet = bundle(Duration::ZERO, 200, "/tapestry/nowhere", vec![Int(1)]);
    const SENT: u64 = 5_000;
    for _ in 0..SENT {
        flood.send(&packet).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    // the kernel reports its count with the next datagram on the server's socket (the
    // subscribed watcher has a socket of its own): one from another address, then the
    // watcher's status query
    client(&server).send(b"x").unwrap();
    audio.until("every datagram read or counted lost", |_| {
        let now = server.stats().snapshot();
        now.packets - before.packets + now.kernel_drops - before.kernel_drops > SENT
    });
    watcher.send(&encode("/tapestry/status", vec![])).unwrap();
    let reply = replies(&watcher, "/tapestry/status", 1).remove(0);
    let after = server.stats().snapshot();
    let read = after.packets - before.packets;
    let lost = after.kernel_drops - before.kernel_drops;
    println!(
        "receive buffer {granted} bytes: {SENT} datagrams sent, {read} read (with the probe \
         and the query), {lost} dropped by the kernel"
    );
    assert!(lost > 0, "the flood overflowed the buffer");
    assert_eq!(read + lost, SENT + 2, "every datagram is read or counted");
    assert_eq!(
        reply[3],
        Int(after.kernel_drops as i32),
        "the status reply says so"
    );
    // the flood's datagrams within its address's budget were decoded, the rest dropped
    // unread
    let decoded = (after.unknown_address - before.unknown_address) / 200;
    let unread = after.over_budget + after.unproven - before.over_budget - before.unproven;
    println!("{decoded} decoded, {unread} dropped unread (over the address's budget)");
    assert_eq!(decoded + unread, read - 2);
    assert!(decoded > 0, "the budget's burst was decoded");
    // a machine busy elsewhere may read no more than the burst holds: then none is over
    let burst = (CLIENT_BYTE_BURST / packet.len() as f64) as u64;
    if read - 2 > 2 * burst {
        assert!(unread > 0, "past its burst, the flood is dropped unread");
    }
    audio.pump(1);
    server.stop();
}
