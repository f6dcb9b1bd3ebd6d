//! The audio server goes away under `tapestry play`: killed, stopped for good, or frozen.
//! Play must say so, keep the recording, never hang, and either play on when the server is
//! back (the engine's timeline paused meanwhile, so the recording still re-renders to what was
//! played) or stop with an error after `--reconnect-timeout`. Needs `--features jack` and
//! jackd2.
#![cfg(feature = "jack")]

use crate::common;

use crate::common::jack::{number_after, read_capture, read_log, JackServer, CAPTURE_TOLERANCE};

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tapestry::render::{render, RenderOptions};
use tapestry::{Patch, Performance};

fn temp(name: &str) -> PathBuf {
    common::temp_file("recovery", name)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tapestry play` on the server with its stderr collected line by line as it comes.
struct Play {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Play {
    fn start(server: &JackServer, recording: &Path, extra: &[&str]) -> Play {
        let mut child = server
            .command(env!("CARGO_BIN_EXE_tapestry"))
            .current_dir(root())
            .args([
                "play",
                "--no-midi",
                "--no-osc",
                "patches/minimal.toml",
                "--host",
                "JACK",
                "-p",
                "patches/minimal.performance.toml",
                "--record",
            ])
            .arg(recording)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (log, _reader) = read_log(&mut child);
        Play { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has a line containing `what`; returns that line.
    fn wait_for(&self, what: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(what)) {
                return line.to_string();
            }
            assert!(
                started.elapsed() < limit,
                "no \"{what}\" within {limit:?}; log:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to end, at most `limit` (a hang fails the test).
    fn wait(mut self, limit: Duration) -> (ExitStatus, String, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                sleep(Duration::from_millis(100)); // the last lines
                return (status, self.log(), started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("tapestry play hung; log:\n{}", self.log());
            }
            sleep(Duration::from_millis(20));
        }
    }
}

/// The engine's two JACK output ports, once they are there.
fn engine_ports(server: &JackServer) -> Vec<String> {
    let mut ports = server.wait_port_count("tapestry's JACK ports", 2, |p| {
        p.starts_with("cpal_client") && p.contains(":out_")
    });
    ports.truncate(2);
    ports
}

/// Renders the recording offline with the shipped renderer.
fn render_recording(recording: &Path) -> (Performance, Vec<f32>) {
    let patch = Patch::load(&root().join("patches/minimal.toml")).unwrap();
    let perf = Performance::load(recording, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    (perf, offline)
}

#[test]
fn play_resumes_when_a_killed_jack_server_comes_back_and_the_recording_re_renders_the_show() {
    // synchronous mode (restarts keep it): the capture is compared sample for sample, so a
    // late timer wake-up on a busy machine must delay a cycle, not drop one from the capture
    let mut server = JackServer::start_with("tapestry-recovery", &["--sync"]);
    let recording = temp("resumed.performance.toml");
    let capture = temp("resumed.wav");
    let play = Play::start(
        &server,
        &recording,
        &["--duration", "12", "--reconnect-timeout", "20"],
    );
    engine_ports(&server);
    play.wait_for(" 2 participants", Duration::from_secs(10));
    sleep(Duration::from_millis(1500));

    // the server dies as in a crash
    server.stop("KILL");
    let lost = play.wait_for("audio lost:", Duration::from_secs(5));
    println!("{lost}");
    let stopped_at = number_after(&lost, "stopped at");
    assert!(stopped_at > 1.0, "{lost}");
    play.wait_for("AUDIO LOST", Duration::from_secs(3));
    // what was played so far is on disk already
    sleep(Duration::from_millis(600));
    let so_far = std::fs::read_to_string(&recording).unwrap();
    assert_eq!(so_far.matches("type = \"join\"").count(), 2, "{so_far}");

    sleep(Duration::from_secs(1));
    server.restart();
    let ports = engine_ports(&server);
    let back = play.wait_for("audio back:", Duration::from_secs(5));
    println!("{back}");
    server.capture(&capture, 4, &ports).finish();
    let (status, log, _) = play.wait(Duration::from_secs(20));
    assert!(status.success(), "tapestry play failed: {log}");
    let last = log
        .lines()
        .rfind(|l| l.contains("stream errors"))
        .expect("status lines");
    assert!(!last.contains("AUDIO LOST"), "{last}");
    assert!(number_after(last, "stream errors") >= 1.0, "{last}");

    // the capture after the restart is the offline render of the recording, sample for
    // sample, from a point after the timeline stopped: the clock paused and went on
    let (perf, offline) = render_recording(&recording);
    assert_eq!(
        perf.commands.len(),
        3,
        "two joins before the loss, one after"
    );
    let (ol, or) = common::measure::deinterleave(&offline);
    let (cl, cr) = read_capture(&capture);
    assert!(cl.len() > 3 * 48_000, "captured {} frames", cl.len());
    assert!(common::measure::rms(&cl) > 1e-3, "the capture is silent");
    let probe_at = cl.iter().position(|x| x.abs() > 1e-3).expect("sound") + 4800;
    let probe = &cl[probe_at..probe_at + 512];
    let tolerance = CAPTURE_TOLERANCE;
    let offset = (0..ol.len() - 512)
        .find(|&k| {
            ol[k..k + 512]
                .iter()
                .zip(probe)
                .all(|(a, b)| (a - b).abs() <= tolerance)
        })
        .expect("the audio played after the restart appears in the offline render")
        as i64
        - probe_at as i64;
    let compared = cl.len().min((ol.len() as i64 - offset) as usize) - 256;
    let mut worst = 0.0f32;
    for n in 0..compared {
        let k = (n as i64 + offset) as usize;
        worst = worst.max((cl[n] - ol[k]).abs()).max((cr[n] - or[k]).abs());
    }
    println!(
        "timeline stopped at {stopped_at:.2} s; the capture after the restart starts at {:.3} s of the offline render; {compared} frames compared, largest difference {worst:e}",
        offset as f64 / 48_000.0
    );
    assert!(
        offset as f64 / 48_000.0 >= stopped_at - 0.01,
        "the capture after the restart maps to {offset}, before the stop at {stopped_at} s"
    );
    assert!(worst <= tolerance, "live and offline differ by {worst}");
}

#[test]
fn play_stops_cleanly_with_a_kept_recording_when_the_server_does_not_come_back() {
    let mut server = JackServer::start("tapestry-recovery");
    let recording = temp("gone.performance.toml");
    let play = Play::start(
        &server,
        &recording,
        &["--duration", "60", "--reconnect-timeout", "2"],
    );
    engine_ports(&server);
    play.wait_for(" 2 participants", Duration::from_secs(10));
    server.stop("TERM");
    let gone = Instant::now();
    let (status, log, _) = play.wait(Duration::from_secs(15));
    let took = gone.elapsed();
    println!(
        "stopped {:.1} s after the server; log:\n{log}",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("audio lost: JACK server shut down"), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error line");
    assert!(error.contains("did not come back within 2 s"), "{error}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(!log.contains("panicked"), "{log}");

    // the recording is complete and the renderer takes it
    let text = std::fs::read_to_string(&recording).unwrap();
    let end = number_after(&text, "end_sample =");
    let stopped_at = number_after(error, "stopped at");
    assert!(
        (end / 48_000.0 - stopped_at).abs() < 0.01,
        "{end} vs {stopped_at}"
    );
    let wav = temp("gone.wav");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root())
        .args(["render", "patches/minimal.toml", "--performance"])
        .arg(&recording)
        .arg("-o")
        .arg(&wav)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (l, _) = read_capture(&wav);
    assert_eq!(l.len() as f64, end, "the render lasts until the end sample");
    assert!(common::measure::rms(&l) > 1e-3);
}

#[test]
fn a_frozen_server_is_noticed_by_its_silence_and_play_does_not_hang() {
    let server = JackServer::start("tapestry-recovery");
    let recording = temp("frozen.performance.toml");
    let play = Play::start(
        &server,
        &recording,
        &["--duration", "60", "--reconnect-timeout", "2"],
    );
    engine_ports(&server);
    play.wait_for(" 2 participants", Duration::from_secs(10));
    server.freeze();
    let frozen = Instant::now();
    let lost = play.wait_for("audio lost:", Duration::from_secs(4));
    let noticed = frozen.elapsed();
    println!("{lost} (noticed after {:.2} s)", noticed.as_secs_f64());
    assert!(lost.contains("no audio callback for"), "{lost}");
    // one second of silence makes a stall; closing the frozen stream must not delay the news
    assert!(
        noticed < Duration::from_millis(2500),
        "noticed after {noticed:?}"
    );
    let (status, log, _) = play.wait(Duration::from_secs(15));
    server.thaw();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("did not come back within 2 s"), "{log}");
    let text = std::fs::read_to_string(&recording).unwrap();
    assert!(text.contains("end_sample ="), "{text}");
}

#[test]
fn a_zero_reconnect_timeout_stops_at_once_even_on_a_frozen_server() {
    let server = JackServer::start("tapestry-recovery");
    let recording = temp("frozen-zero.performance.toml");
    let play = Play::start(
        &server,
        &recording,
        &["--duration", "60", "--reconnect-timeout", "0"],
    );
    engine_ports(&server);
    play.wait_for(" 2 participants", Duration::from_secs(10));
    server.freeze();
    let frozen = Instant::now();
    let (status, log, _) = play.wait(Duration::from_secs(15));
    let took = frozen.elapsed();
    server.thaw();
    println!("stopped {:.1} s after the freeze", took.as_secs_f64());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("did not come back within 0 s"), "{log}");
    // one second to call it a stall, at most two to let go of the frozen stream
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let text = std::fs::read_to_string(&recording).unwrap();
    assert!(text.contains("end_sample ="), "{text}");
}
