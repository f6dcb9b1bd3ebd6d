//! The phones' WebSocket protocol against a real server on an ephemeral port, with the engine
//! running in real time on a thread of the test (the live-less `play` path: the same
//! `Controller`, `SampleClock` and notices as `play --web`, no sound card). What the
//! engine made is measured; the recording re-renders bit for bit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message as WsMessage, WebSocket};

use crate::common::measure::rms;
use crate::common::*;
use tapestry::input::SampleClock;
use tapestry::record::{Recorder, RecorderThread};
use tapestry::render::{render, RenderOptions};
use tapestry::web::{WebOptions, WebPatch, WebServer};
use tapestry::{Controller, Engine, Notice, Patch, Performance};

const BLOCK: usize = 256;

/// The engine in real time on a thread, a web server driving it, the engine's notices fed
/// to the server (as `play`'s loop does) and kept for the test.
pub(crate) struct Stage {
    web: WebServer,
    controller: Controller,
    pub(crate) patch: Patch,
    running: Arc<AtomicBool>,
    engine: Option<JoinHandle<(Vec<f32>, Engine)>>,
    pub(crate) notices: Arc<Mutex<Vec<Notice>>>,
    recording: Option<(RecorderThread, PathBuf)>,
}

impl Stage {
    pub(crate) fn new(patch_name: &str, options: WebOptions, record: Option<&str>) -> Stage {
        let patch = patch(patch_name);
        let config = patch.config(SR, None);
        let web_patch = WebPatch::new(&config, &patch.names());
        let (mut engine, controller) = Engine::new(config, patch.names());
        let recording = record.map(|name| {
            let journal = engine.enable_journal(1 << 16);
            let path = temp_file("web", &format!("{name}.performance.toml"));
            let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0)
                .unwrap()
                .with_clock(controller.status().clone(), SR);
            (RecorderThread::spawn(recorder, journal, path.clone()), path)
        });
        let clock = Arc::new(SampleClock::new(SR, BLOCK as u64));
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let web =
            WebServer::spawn(addr, controller.clone(), clock.clone(), web_patch, options).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let notices = Arc::new(Mutex::new(Vec::new()));
        let engine = {
            let (running, notices) = (running.clone(), notices.clone());
            let (hub, controller) = (web.hub().clone(), controller.clone());
            thread::spawn(move || {
                let started = Instant::now();
                let mut out = Vec::new();
                let mut block = [0.0f32; 2 * BLOCK];
                while running.load(Ordering::Relaxed) {
                    clock.publish(engine.sample_position(), Instant::now());
                    engine.process(&mut block);
                    out.extend_from_slice(&block);
                    while let Some(notice) = controller.try_notice() {
                        hub.notice(&notice);
                        notices.lock().unwrap().push(notice);
                    }
                    let due = started
                        + Duration::from_secs_f64(engine.sample_position() as f64 / SR as f64);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                (out, engine)
            })
        };
        Stage {
            web,
            controller,
            patch,
            running,
            engine: Some(engine),
            notices,
            recording,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.web.local_addr()
    }

    fn phone(&self) -> Phone {
        Phone::connect(self.addr())
    }

    /// A phone that joined and learned its voice: (phone, participant, archetype).
    fn joined_phone(&self) -> (Phone, u32, String) {
        let mut phone = self.phone();
        let welcome = phone.join(None);
        let voice = phone.expect("voice");
        (
            phone,
            welcome["participant"].as_u64().unwrap() as u32,
            voice["archetype"].as_str().unwrap().to_string(),
        )
    }

    fn counter(&self, name: &str) -> u64 {
        let counters = self.web.stats().counters();
        counters.iter().find(|(n, _)| *n == name).unwrap().1
    }

    fn samples(&self) -> u64 {
        self.controller
            .status()
            .sample_position
            .load(Ordering::Relaxed)
    }

    /// Stops the engine; its output, and the recording's path once finished.
    pub(crate) fn stop(mut self) -> (Vec<f32>, Option<PathBuf>) {
        self.running.store(false, Ordering::Relaxed);
        let (out, engine) = self.engine.take().unwrap().join().unwrap();
        let path = self.recording.take().map(|(rec, path)| {
            rec.finish(engine.sample_position()).unwrap();
            path
        });
        (out, path)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// A browser's side of the protocol.
struct Phone {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl Phone {
    fn connect(addr: SocketAddr) -> Phone {
        let (ws, _) = tungstenite::connect(format!("ws://{addr}/ws")).unwrap();
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        Phone { ws }
    }

    fn send(&mut self, frame: &str) {
        self.ws.send(WsMessage::text(frame)).unwrap();
    }

    fn join(&mut self, token: Option<&str>) -> Value {
        match token {
            Some(t) => self.send(&format!(r#"{{"t":"join","token":"{t}"}}"#)),
            None => self.send(r#"{"t":"join"}"#),
        }
        self.expect("welcome")
    }

    /// The next frame of this kind (others are skipped); panics after 5 s.
    fn expect(&mut self, kind: &str) -> Value {
        self.next_of(kind, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no \"{kind}\" frame within 5 s"))
    }

    fn next_of(&mut self, kind: &str, within: Duration) -> Option<Value> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            match self.ws.read() {
                Ok(WsMessage::Text(text)) => {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                    if frame["t"] == kind {
                        return Some(frame);
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Whether the server closed the connection within `within`.
    fn closed_within(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            match self.ws.read() {
                Ok(WsMessage::Close(_)) => return true,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// A plain HTTP GET: status code and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < until, "{what} within {within:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn seconds(samples: u64) -> usize {
    2 * samples as usize
}

#[test]
fn a_phone_joins_with_a_voice_and_its_pad_changes_the_sound() {
    let stage = Stage::new("minimal.toml", WebOptions::default(), None);
    let (index_code, index) = http_get(stage.addr(), "/");
    assert_eq!(index_code, 200);
    assert!(index.contains("/app.js"), "the participant page is served");
    let (js_code, js) = http_get(stage.addr(), "/app.js");
    assert_eq!(js_code, 200);
    assert!(js.contains("\"tap\""));

    let (mut phone, participant, archetype) = stage.joined_phone();
    assert!(participant >= tapestry::web::hub::FIRST_WEB_PARTICIPANT);
    assert!(stage.patch.names().archetype(&archetype).is_some());
    let joined = stage
        .notices
        .lock()
        .unwrap()
        .iter()
        .any(|n| matches!(n, Notice::Joined { participant: p, .. } if *p == participant));
    assert!(joined, "the engine saw the phone's participant join");
    assert_eq!(phone.expect("state")["participants"], 1);

    // the pad high on energy for 3 s, then low for 3 s
    let window = 3 * SR as u64;
    let energy = |phone: &mut Phone, v: f32| {
        phone.send(&format!(
            r#"{{"t":"mood","values":{{"energy":{v},"tension":0.1}}}}"#
        ));
    };
    energy(&mut phone, 1.0);
    let high_from = stage.samples();
    wait_for("3 s of high energy", Duration::from_secs(6), || {
        stage.samples() >= high_from + window
    });
    let energy_dim = dim(&stage.patch, "energy") as usize;
    let communal_high = stage.controller.status().mood(energy_dim);
    energy(&mut phone, 0.0);
    let low_from = stage.samples();
    wait_for("3 s of low energy", Duration::from_secs(6), || {
        stage.samples() >= low_from + window
    });
    let communal_low = stage.controller.status().mood(energy_dim);
    let (out, _) = stage.stop();
    // the last 1.5 s of each window, after the mood's smoothing has settled
    let settled = |from: u64| {
        let start = seconds(from + window / 2);
        &out[start..start + seconds(window / 2)]
    };
    let (high, low) = (rms(settled(high_from)), rms(settled(low_from)));
    assert!(
        communal_high > 0.9 && communal_low < 0.1,
        "{communal_high} {communal_low}"
    );
    assert!(
        high > 1.5 * low && low > 0.0,
        "energy from the phone's pad: rms {high} at 1.0 against {low} at 0.0"
    );
}

#[test]
fn a_phone_that_comes_back_resumes_its_voice_and_one_that_stays_away_leaves() {
    let options = WebOptions {
        resume_timeout: Duration::from_millis(800),
        ..WebOptions::default()
    };
    let stage = Stage::new("minimal.toml", options, None);
    let mut phone = stage.phone();
    let welcome = phone.join(None);
    let token = welcome["token"].as_str().unwrap().to_string();
    let participant = &welcome["participant"];
    let voice = phone.expect("voice");
    assert_eq!(token.len(), 32, "a 128-bit token");
    drop(phone); // a network blip

    let mut back = stage.phone();
    let again = back.join(Some(&token));
    assert_eq!(again["resumed"], true);
    assert_eq!(&again["participant"], participant, "the same participant");
    assert_eq!(
        again["voice"]["archetype"], voice["archetype"],
        "the same voice"
    );
    assert_eq!(stage.counter("resumes"), 1);
    assert_eq!(
        stage
            .controller
            .status()
            .participants
            .load(Ordering::Relaxed),
        1,
        "no second voice"
    );

    // the same phone on two connections: the older one no longer acts
    let mut newer = stage.phone();
    newer.join(Some(&token));
    back.expect("removed");
    back.send(r#"{"t":"tap","x":0.5}"#);
    assert_eq!(back.expect("error")["reason"], "not_joined");

    // away past the timeout: the participant leaves with the usual fade
    drop(newer);
    drop(back);
    wait_for("the participant left", Duration::from_secs(3), || {
        stage.counter("timed out") == 1
    });
    let left = participant.as_u64().unwrap() as u32;
    wait_for("the engine's leave", Duration::from_secs(2), || {
        stage
            .notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| matches!(n, Notice::Left { participant: p, .. } if *p == left))
    });
    let mut late = stage.phone();
    let fresh = late.join(Some(&token));
    assert_eq!(
        fresh["resumed"], false,
        "a token past its timeout starts anew"
    );
    assert_ne!(&fresh["participant"], participant);
}

/// The conductor's view of each phone's mood: participant → energy.
fn energies(conductor: &mut Phone, energy: usize) -> Vec<(u64, f64)> {
    let state = conductor.expect("conductor_state");
    state["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["participant"].as_u64().unwrap(),
                p["mood"][energy].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_phone_acts_only_for_itself_and_the_conductor_needs_the_secret() {
    let stage = Stage::new("minimal.toml", WebOptions::default(), None);
    let (mut a_phone, a, _) = stage.joined_phone();
    let (mut b, b_id, _) = stage.joined_phone();

    // B names A: the frame has no such key, so it is malformed and dropped
    b.send(&format!(
        r#"{{"t":"mood","values":{{"energy":0.95}},"participant":{a}}}"#
    ));
    assert_eq!(b.expect("error")["reason"], "malformed");
    // B guesses a token: it gets a participant of its own, never A's
    let mut guesser = stage.phone();
    let guessed = guesser.join(Some("00000000000000000000000000000000"));
    assert_eq!(guessed["resumed"], false);
    assert_ne!(guessed["participant"], a);
    // B's own mood moves only B
    b.send(r#"{"t":"mood","values":{"energy":0.95}}"#);

    // the conductor's actions without the secret are refused
    let (code, _) = http_get(stage.addr(), "/conductor");
    assert_eq!(code, 403);
    let (code, _) = http_get(stage.addr(), "/conductor?key=guess");
    assert_eq!(code, 403);
    let mut intruder = stage.phone();
    intruder.send(r#"{"t":"communal","values":{"energy":0.0}}"#);
    assert_eq!(intruder.expect("error")["reason"], "conductor_only");
    intruder.send(r#"{"t":"conductor","key":"guess"}"#);
    assert_eq!(intruder.expect("conductor")["ok"], false);
    intruder.send(&format!(r#"{{"t":"remove","participant":{a}}}"#));
    assert_eq!(intruder.expect("error")["reason"], "conductor_only");
    assert!(stage.counter("unauthorized") >= 5);

    // with the secret
    let url = stage.web.conductor_url();
    let key = url.split("key=").nth(1).unwrap().to_string();
    let (code, page) = http_get(stage.addr(), &format!("/conductor?key={key}"));
    assert_eq!(code, 200);
    assert!(page.contains("conductor.js"));
    let mut conductor = stage.phone();
    conductor.send(&format!(r#"{{"t":"conductor","key":"{key}"}}"#));
    assert_eq!(conductor.expect("conductor")["ok"], true);
    wait_for(
        "B's mood in the conductor's view",
        Duration::from_secs(3),
        || {
            let moods = energies(&mut conductor, dim(&stage.patch, "energy") as usize);
            let of = |id: u32| moods.iter().find(|(p, _)| *p == id as u64).unwrap().1;
            (of(b_id) - 0.95).abs() < 1e-6 && (of(a) - 0.5).abs() < 1e-6
        },
    );
    conductor.send(r#"{"t":"communal","values":{"tension":0.9},"ramp_secs":0}"#);
    wait_for("the communal tension", Duration::from_secs(3), || {
        stage
            .controller
            .status()
            .mood(dim(&stage.patch, "tension") as usize)
            > 0.85
    });
    conductor.send(&format!(r#"{{"t":"remove","participant":{a}}}"#));
    a_phone.expect("removed");
    wait_for("A left", Duration::from_secs(2), || {
        stage
            .notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| matches!(n, Notice::Left { participant: p, .. } if *p == a))
    });
}

#[test]
fn floods_are_counted_and_dropped_and_the_server_stays_up() {
    let options = WebOptions {
        max_clients: 6,
        ..WebOptions::default()
    };
    let stage = Stage::new("minimal.toml", options, Some("flood"));
    let (mut flooder, flooder_id, _) = stage.joined_phone();
    // 2000 mood frames at once: the connection's burst passes, the rest is dropped unread;
    // what passes is coalesced (latest value per dimension, 20 times a second)
    for i in 0..2000 {
        flooder.send(&format!(
            r#"{{"t":"mood","values":{{"energy":{}}}}}"#,
            (i % 100) as f32 / 100.0
        ));
    }
    wait_for(
        "the over-rate frames counted",
        Duration::from_secs(3),
        || stage.counter("over rate") >= 2000 - 125,
    );
    // 100 taps at once from a fresh connection: 10 notes play, the rest is refused
    let (mut tapper, tapper_id, _) = stage.joined_phone();
    for _ in 0..100 {
        tapper.send(r#"{"t":"tap","x":0.3}"#);
    }
    // garbage, binary and oversized frames from a third
    let mut junk = stage.phone();
    let malformed_before = stage.counter("malformed");
    for bad in [
        "{",
        "null",
        r#"{"t":"mood","values":[1]}"#,
        "\u{1F600}",
        r#"{"t":"tap"}"#,
    ] {
        junk.send(bad);
    }
    junk.ws.send(WsMessage::binary(vec![0u8; 16])).unwrap();
    wait_for(
        "the malformed frames counted",
        Duration::from_secs(3),
        || stage.counter("malformed") == malformed_before + 6,
    );
    junk.send(&"x".repeat(4096));
    assert!(
        junk.closed_within(Duration::from_secs(3)),
        "an oversized frame closes"
    );

    // past max_clients, a connection is refused with 503
    let mut open: Vec<Phone> = (0..3).map(|_| stage.phone()).collect();
    wait_for(
        "the closed connection counted",
        Duration::from_secs(2),
        || stage.counter("connections") == 5,
    );
    open.push(stage.phone());
    match tungstenite::connect(format!("ws://{}/ws", stage.addr())) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    assert_eq!(stage.counter("refused connections"), 1);
    // the server still serves: a phone's join is answered
    drop(open);
    wait_for(
        "the closed connections counted",
        Duration::from_secs(3),
        || stage.counter("connections") <= 2,
    );
    let (_after, _, _) = stage.joined_phone();
    assert_eq!(
        stage
            .controller
            .status()
            .dropped_messages
            .load(Ordering::Relaxed),
        0,
        "the engine's ring never overflowed"
    );

    let (_, path) = stage.stop();
    let recorded = std::fs::read_to_string(path.unwrap()).unwrap();
    let notes = recorded
        .matches(&format!("type = \"note_on\"\nparticipant = {tapper_id}"))
        .count();
    let moods = recorded
        .matches(&format!("type = \"mood\"\nparticipant = {flooder_id}"))
        .count();
    assert!((10..=12).contains(&notes), "taps bounded: {notes} notes");
    assert!(
        moods <= 125,
        "moods coalesced: {moods} recorded of 2000 sent"
    );
}

#[test]
fn what_the_phones_did_re_renders_sample_for_sample_from_the_recording() {
    let stage = Stage::new("minimal.toml", WebOptions::default(), Some("rerender"));
    let (mut one, _, _) = stage.joined_phone();
    let (mut two, _, _) = stage.joined_phone();
    for step in 0..30 {
        let v = (step % 10) as f32 / 10.0;
        one.send(&format!(
            r#"{{"t":"mood","values":{{"energy":{v},"unity":0.3}}}}"#
        ));
        if step % 3 == 0 {
            two.send(&format!(r#"{{"t":"tap","x":{v}}}"#));
        }
        thread::sleep(Duration::from_millis(70));
    }
    two.send(r#"{"t":"leave"}"#);
    thread::sleep(Duration::from_millis(500));
    let patch = patch("minimal.toml");
    let (live, path) = stage.stop();
    let path = path.unwrap();
    let perf = Performance::load(&path, &patch, SR)
        .unwrap_or_else(|e| panic!("the recording reads back: {e}"));
    let text = std::fs::read_to_string(&path).unwrap();
    for kind in ["join", "mood", "note_on", "note_off", "leave"] {
        assert!(
            text.contains(&format!("type = \"{kind}\"")),
            "recorded {kind}"
        );
    }
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    assert_eq!(offline.len(), live.len());
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "the re-render differs from the show"
    );
    assert!(rms(&live) > 1e-3, "the phones made sound");
}
