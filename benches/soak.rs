//! Soak benchmark (issue 8): 60 s of mixed hostile OSC and MIDI against `tapestry play` on a
//! private JACK server (dummy backend, 48 kHz, 256-frame periods, real-time pacing) while a
//! legitimate OSC client proves its address (hello/subscribe, once a second until it
//! succeeds), then joins and moves its mood every second.
//!
//! `cargo bench --features jack --bench soak` (needs jackd2). It builds the `tapestry` binary
//! with the bench profile and runs it with `play patches/kaleidoscope-nights.toml` plus a
//! `[midi]` section (virtual port only), `--record`, `--osc` on a free port. It reports the
//! audio callback's worst time (play's peak load × the 5.33 ms deadline), xruns seen by
//! tapestry against the server's own log, drops by kind (OSC, MIDI, engine), how many of the
//! legitimate client's moves were acknowledged and landed in the recording, play's RSS before
//! and after, and, in an `alloc-check` build, allocations in the callbacks. The report is
//! printed and written to `target/soak-report.json`. `TAPESTRY_SOAK_SECS` changes the length
//! (default 60); `TAPESTRY_SOAK_OSC_RATE` caps the hostile OSC senders at that many datagrams
//! per second in all (default: as fast as they can send); `TAPESTRY_SOAK_OSC_KINDS` (e.g.
//! `bundle,foreign`) sends only those kinds of hostile datagrams (see `soak/osc.rs`).
//!
//! Not a test (its figures go to the README), but it exits non-zero when the legitimate
//! client's handshake, join or any of its moves did not land.

#[path = "../tests/common/jack.rs"]
mod jack;
#[path = "../tests/common/measure.rs"]
mod measure;

#[path = "soak/log.rs"]
mod log;
#[path = "soak/midi.rs"]
mod midi;
#[path = "soak/osc.rs"]
mod osc;
#[path = "soak/report.rs"]
mod report;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use jack::{free_udp_port, Helper, JackServer};
use wait_timeout::ChildExt;

/// Hostile OSC sender threads, and source sockets per thread.
const HOSTILE_THREADS: usize = 3;
const SOCKETS_PER_THREAD: usize = 3;
/// The legitimate client starts this long after the flood.
const LEGIT_DELAY: Duration = Duration::from_secs(2);

/// The `[midi]` section appended to the piece: the virtual port only (the bench connects its
/// flood there), four participants on channels 1..4, a participant and a conductor control,
/// a cue on the conductor channel.
const MIDI_SECTION: &str = r#"
[midi]
ports = ["no-such-port"]
virtual_port = "soak"
conductor_channel = 16

[[midi.participants]]
channel = 1
participant = 1
archetype = "loom"

[[midi.participants]]
channel = 2
participant = 2
archetype = "prisms"

[[midi.participants]]
channel = 3
participant = 3
archetype = "chorus"

[[midi.participants]]
channel = 4
participant = 4
archetype = "stories"

[[midi.controls]]
cc = 74
dimension = "brightness"
target = "participant"

[[midi.controls]]
channel = 16
cc = 7
dimension = "energy"
target = "conductor"

[[midi.cues]]
note = 36
section = "mosaic"
"#;

/// A running `tapestry play`, its stderr collected line by line.
struct Play {
    child: Helper,
    lines: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
    midi_in: String,
    osc: SocketAddr,
}

impl Play {
    fn start(server: &JackServer, patch: &Path, recording: &Path, duration_secs: u64) -> Play {
        let osc: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let mut child = server
            .command(env!("CARGO_BIN_EXE_tapestry"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("play")
            .arg(patch)
            .args(["--host", "JACK", "--buffer", "256", "--duration"])
            .arg(duration_secs.to_string())
            .arg("--osc")
            .arg(osc.to_string())
            .arg("--record")
            .arg(recording)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tapestry play starts");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let child = Helper(child);
        // no JACK client of ours opens or closes while play opens its own: a client that
        // comes and goes then can leave play's MIDI client never woken (jackaudio/jack2#721:
        // a stale futex in libjack's per-process table), so the ports are asked for only
        // once play says it is playing
        wait_for_line(&lines, "playing \"");
        let midi_in = server
            .wait_ports("tapestry's virtual MIDI port", |p| p.ends_with(":soak"))
            .remove(0);
        server.wait_port_count("tapestry's audio ports", 2, |p| {
            p.starts_with("cpal_client") && p.contains(":out_")
        });
        Play {
            child,
            lines,
            reader,
            midi_in,
            osc,
        }
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until play has printed `n` status lines (at most 60 s).
    fn wait_statuses(&self, n: usize) {
        let started = Instant::now();
        while log::statuses(&self.lines()).len() < n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no status lines from play: {:?}",
                self.lines()
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Stops play as Ctrl-C would and returns everything it printed.
    fn finish(mut self) -> Vec<String> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status();
        let status = self.child.0.wait_timeout(Duration::from_secs(30)).unwrap();
        let _ = self.reader.join();
        let lines = self.lines.lock().unwrap().clone();
        match status {
            Some(s) if s.success() => {}
            other => eprintln!("soak: tapestry play ended with {other:?}"),
        }
        lines
    }
}

/// Waits (at most 60 s) until a line of `lines` starts with `prefix`.
fn wait_for_line(lines: &Mutex<Vec<String>>, prefix: &str) {
    let started = Instant::now();
    while !lines.lock().unwrap().iter().any(|l| l.starts_with(prefix)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "play never printed \"{prefix}…\": {:?}",
            lines.lock().unwrap()
        );
        sleep(Duration::from_millis(20));
    }
}

/// Figures of the play process at one moment, from `/proc/<pid>`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProcessFigures {
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far, KiB.
    pub peak_rss_kib: u64,
    /// CPU time used so far (user + system), s.
    pub cpu_secs: f64,
    /// The last status line printed so far.
    #[serde(skip)]
    pub status: Option<log::Status>,
    #[serde(skip)]
    pub at: Option<Instant>,
}

fn proc_status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn process_figures(play: &Play) -> ProcessFigures {
    let pid = play.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let cpu_ticks = ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0);
    ProcessFigures {
        rss_kib: proc_status_kib(&status, "VmRSS:"),
        peak_rss_kib: proc_status_kib(&status, "VmHWM:"),
        cpu_secs: cpu_ticks / clock_ticks_per_sec(),
        status: log::statuses(&play.lines()).pop(),
        at: Some(Instant::now()),
    }
}

/// The shipped piece with its own `[midi]` tables replaced by [`MIDI_SECTION`], written to
/// `dir`.
fn write_patch(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let piece = std::fs::read_to_string(root.join("patches/kaleidoscope-nights.toml")).unwrap();
    let path = dir.join("kaleidoscope-nights-soak.toml");
    let patch = format!("{}\n{MIDI_SECTION}", without_midi(&piece));
    std::fs::write(&path, patch).unwrap();
    path
}

/// `piece` without its `[midi]` and `[[midi.*]]` tables (each runs to the next table header).
fn without_midi(piece: &str) -> String {
    let mut in_midi = false;
    let mut kept = String::new();
    for line in piece.lines() {
        let header = line.trim_start();
        if header.starts_with('[') {
            let name = header.trim_start_matches('[');
            in_midi = name.starts_with("midi]") || name.starts_with("midi.");
        }
        if !in_midi {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// What the senders did.
struct Sent {
    osc: osc::HostileSent,
    midi: midi::MidiSent,
    legit: osc::LegitFigures,
    flood_secs: f64,
    /// The hostile OSC senders' rate limit, datagrams/s (`None`: full rate).
    osc_rate: Option<f64>,
}

/// Runs the flood and the legitimate client for `soak` against `play`; the hostile OSC
/// senders send the kinds of `plan`, together at most `plan.rate` datagrams per second.
fn soak(play: &Play, soak: Duration, plan: osc::HostilePlan) -> Sent {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let hostile: Vec<JoinHandle<osc::HostileSent>> = (0..HOSTILE_THREADS)
        .map(|i| {
            let (stop, target) = (stop.clone(), play.osc);
            let plan = osc::HostilePlan {
                kinds: plan.kinds.clone(),
                rate: plan.rate.map(|r| r / HOSTILE_THREADS as f64),
            };
            std::thread::spawn(move || {
                osc::hostile_sender(target, SOCKETS_PER_THREAD, 100 + i as u64, plan, stop)
            })
        })
        .collect();
    let flood = midi::MidiFlood::start(&play.midi_in, 7);
    sleep(LEGIT_DELAY);
    let legit = {
        let (stop, target) = (stop.clone(), play.osc);
        std::thread::spawn(move || osc::legit_client(target, stop))
    };
    sleep(soak.saturating_sub(started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let flood_secs = started.elapsed().as_secs_f64();
    let mut sent = osc::HostileSent::default();
    for h in hostile {
        sent.merge(h.join().expect("a hostile sender"));
    }
    Sent {
        osc: sent,
        midi: flood.stop(),
        legit: legit.join().expect("the legitimate client"),
        flood_secs,
        osc_rate: plan.rate,
    }
}

fn main() {
    let soak_secs: u64 = std::env::var("TAPESTRY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let plan = osc::HostilePlan {
        kinds: osc::Hostile::selected(std::env::var("TAPESTRY_SOAK_OSC_KINDS").ok().as_deref()),
        rate: std::env::var("TAPESTRY_SOAK_OSC_RATE")
            .ok()
            .and_then(|s| s.parse().ok()),
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak");
    std::fs::create_dir_all(&dir).unwrap();
    let server = JackServer::start("tapestry-soak");
    // the bench's own JACK client (the MIDI flood) talks to this server; no thread runs yet
    std::env::set_var("JACK_DEFAULT_SERVER", server.name());
    std::env::set_var("JACK_NO_START_SERVER", "1");
    let patch = write_patch(&dir);
    let recording = dir.join("soak.performance.toml");
    let _ = std::fs::remove_file(&recording);
    let play = Play::start(&server, &patch, &recording, soak_secs + 60);
    play.wait_statuses(3);
    let before = process_figures(&play);
    eprintln!("soak: play is up; flooding for {soak_secs} s");
    let sent = soak(&play, Duration::from_secs(soak_secs), plan);
    let after = process_figures(&play);
    // the status lines of the next 2.5 s count everything the flood did
    sleep(Duration::from_millis(2500));
    let lines = play.finish();
    let server_xruns = server.xrun_report();
    // the logs stay beside the report, for a closer look
    std::fs::write(dir.join("play.log"), lines.join("\n")).unwrap();
    std::fs::write(dir.join("jackd.log"), server.log()).unwrap();
    drop(server);
    let report = report::Report::new(report::Inputs {
        lines: &lines,
        before: &before,
        after: &after,
        sent: &sent,
        server: &server_xruns,
        patch: &patch,
        recording: &recording,
    });
    report.print();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let json = target.join("soak-report.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("written to {}", json.display());
    let legit = &report.legit;
    let through = legit.subscribed && legit.join_recorded && legit.moves_landed == legit.moves_sent;
    if !through {
        eprintln!(
            "\nsoak: FAILED: the legitimate OSC client did not get through the flood \
             (subscribed {}, join recorded {}, {} of {} moves landed)",
            legit.subscribed, legit.join_recorded, legit.moves_landed, legit.moves_sent
        );
        std::process::exit(1);
    }
}
