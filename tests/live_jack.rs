//! Live on a real audio server: `tapestry play` on a private JACK server (dummy backend, real
//! time), captured by `jack_rec` — a client nobody here wrote — while the session is recorded.
//! The offline render of the recording must equal the captured audio sample for sample, up
//! to a constant latency offset found by alignment. Needs `--features jack` and jackd2.
#![cfg(feature = "jack")]

mod common;

use common::jack::JackServer;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tapestry::render::{render, RenderOptions};
use tapestry::{Patch, Performance};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapestry-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read_wav(path: &Path) -> (Vec<f32>, Vec<f32>) {
    let mut r = hound::WavReader::open(path).expect("capture file");
    let spec = r.spec();
    assert_eq!(spec.channels, 2);
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 * scale)
                .collect()
        }
    };
    common::measure::deinterleave(&samples)
}

#[test]
fn a_live_show_on_jack_re_renders_offline_sample_for_sample() {
    let report = live_show();
    println!("{report}");
}

/// Plays, captures and compares; returns what it measured.
fn live_show() -> String {
    let server = JackServer::start("tapestry-test");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recording = temp("show.performance.toml");
    let capture = temp("capture.wav");
    let play = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root)
        .args([
            "play",
            "--no-midi",
            "--no-osc",
            "patches/minimal.toml",
            "--host",
            "JACK",
            "--duration",
            "9",
            "-p",
            "patches/minimal.performance.toml",
            "--record",
        ])
        .arg(&recording)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for the engine's ports, then capture what really leaves it
    let started = Instant::now();
    let ports = loop {
        let ports: Vec<String> = server
            .ports()
            .into_iter()
            .filter(|p| p.starts_with("cpal_client") && p.contains(":out_"))
            .collect();
        if ports.len() >= 2 {
            break ports;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tapestry's JACK ports never appeared"
        );
        sleep(Duration::from_millis(50));
    };
    let rec = server
        .command("jack_rec")
        .arg("-f")
        .arg(&capture)
        .args(["-d", "5", "-b", "32"])
        .args(&ports[..2])
        .status()
        .unwrap();
    assert!(rec.success(), "jack_rec failed");
    let out = play.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tapestry play failed: {log}");
    assert!(
        log.contains("stream errors 0"),
        "the stream reported errors: {log}"
    );
    let last = log
        .lines()
        .rfind(|l| l.contains("xruns"))
        .expect("status lines");
    let xruns: f64 = last[last.find("xruns").unwrap() + 5..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let patch = Patch::load(&root.join("patches/minimal.toml")).unwrap();
    let perf = Performance::load(&recording, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let (ol, or) = common::measure::deinterleave(&offline);
    let (cl, cr) = read_wav(&capture);
    assert!(cl.len() > 4 * 48_000, "captured {} frames", cl.len());

    // align: the capture started somewhere inside the show; find where, exactly
    let probe_at = cl
        .iter()
        .position(|x| x.abs() > 1e-3)
        .expect("the capture has sound")
        + 4800;
    let probe = &cl[probe_at..probe_at + 512];
    let tolerance = 1e-6; // jack_rec's 32-bit integer quantization
    let offset = (0..ol.len() - 512)
        .find(|&k| {
            ol[k..k + 512]
                .iter()
                .zip(probe)
                .all(|(a, b)| (a - b).abs() <= tolerance)
        })
        .expect("the captured audio appears in the offline render") as i64
        - probe_at as i64;
    let compared = cl.len().min((ol.len() as i64 - offset) as usize) - 256;
    let mut worst = 0.0f32;
    for n in 0..compared {
        let k = (n as i64 + offset) as usize;
        worst = worst.max((cl[n] - ol[k]).abs()).max((cr[n] - or[k]).abs());
    }
    // (the dummy server reports xruns around port connections and jack_rec's start; they
    // do not change what the engine produced, which is what is compared)
    let report = format!(
        "capture starts at offline sample {offset}; {compared} frames compared, largest difference {worst:e}; server xruns {xruns}"
    );
    assert!(
        worst <= tolerance,
        "live capture and offline render differ by {worst}"
    );
    assert!(common::measure::rms(&cl) > 1e-3);
    report
}

#[test]
fn sixty_four_participants_play_on_jack_at_256_frames_within_the_deadline() {
    let server = JackServer::start("tapestry-test");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // 64 participants arrive within two seconds, then the room heats up
    let mut perf = String::from("version = 1\n");
    for id in 1..=64 {
        perf += &format!(
            "[[events]]\ntime = {:.3}\ntype = \"join\"\nparticipant = {id}\n",
            id as f64 * 0.03
        );
    }
    perf += "[[events]]\ntime = 3.0\ntype = \"mood\"\nparticipant = 0\ndimension = \"energy\"\nvalue = 1.0\nramp_secs = 2.0\n";
    let perf_path = temp("crowd.performance.toml");
    std::fs::write(&perf_path, perf).unwrap();
    let out = server
        .command(env!("CARGO_BIN_EXE_tapestry"))
        .current_dir(root)
        .args([
            "play",
            "--no-midi",
            "--no-osc",
            "patches/minimal.toml",
            "--host",
            "JACK",
            "--buffer",
            "256",
            "--duration",
            "8",
            "-p",
        ])
        .arg(&perf_path)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let last = log
        .lines()
        .rfind(|l| l.contains("participants"))
        .expect("status lines");
    println!("{last}");
    assert!(last.contains(" 64 participants"), "{last}");
    assert!(last.contains("stream errors 0"), "stream errors: {last}");
    let number_after = |key: &str| -> f64 {
        let rest = &last[last.find(key).unwrap_or_else(|| panic!("{key} in {last}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (xruns, peak_load) = (number_after("xruns"), number_after("(peak"));
    // the callback stays far inside its deadline. On this VM the JACK dummy server still
    // reports an isolated late cycle now and then with the callback at a few % of its
    // deadline (not yet run down), so the xrun count is reported, not yet asserted to be 0.
    println!("xruns: {xruns}");
    assert!(
        peak_load < 50.0,
        "callback peak load {peak_load}% of the deadline"
    );
}
