//! Side by side with SuperCollider for table (h) of `cargo bench`: scsynth's band-limited
//! `Saw` → `LPF` open at 15 kHz, rendered in non-real-time mode from an OSC score and read
//! with Tapestry's aliasing measure (`tapestry::analysis::aliasing`) at C6, C7 and C8; and
//! scsynth's cost per voice and sample for the reference voice (`Saw` → `RLPF` → `Pan2`, 256
//! voices, one core), the difference of a 12 s and a 2 s render so start-up does not count.
//!
//! Run by hand (not by CI); needs `scsynth` (Debian: `apt-get install supercollider-server`):
//! `cargo run --release --example scsynth_compare`. The SynthDefs are written directly in
//! SuperCollider's binary format (SCgf version 2), so sclang is not needed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tapestry::analysis::aliasing::{harmonic_split, FFT_LEN};

const SR: u32 = 48_000;
const NOTES: [(&str, f64); 3] = [("C6", 1046.502), ("C7", 2093.005), ("C8", 4186.009)];
const AUDIO: u8 = 2;
const CONTROL: u8 = 1;

/// One unit generator of a SynthDef: class, rate, inputs as (unit, output) pairs (unit −1:
/// the constant at that index), output rates.
struct Unit {
    class: &'static str,
    rate: u8,
    inputs: Vec<(i32, i32)>,
    outputs: Vec<u8>,
}

fn pstring(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// A SynthDef file (SCgf version 2) holding one definition.
fn synthdef(name: &str, constants: &[f32], params: &[(&str, f32)], units: &[Unit]) -> Vec<u8> {
    let mut b = b"SCgf".to_vec();
    b.extend_from_slice(&2i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    pstring(&mut b, name);
    b.extend_from_slice(&(constants.len() as i32).to_be_bytes());
    constants
        .iter()
        .for_each(|c| b.extend_from_slice(&c.to_be_bytes()));
    b.extend_from_slice(&(params.len() as i32).to_be_bytes());
    params
        .iter()
        .for_each(|(_, v)| b.extend_from_slice(&v.to_be_bytes()));
    b.extend_from_slice(&(params.len() as i32).to_be_bytes());
    for (i, (n, _)) in params.iter().enumerate() {
        pstring(&mut b, n);
        b.extend_from_slice(&(i as i32).to_be_bytes());
    }
    b.extend_from_slice(&(units.len() as i32).to_be_bytes());
    for u in units {
        pstring(&mut b, u.class);
        b.push(u.rate);
        b.extend_from_slice(&(u.inputs.len() as i32).to_be_bytes());
        b.extend_from_slice(&(u.outputs.len() as i32).to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        for (unit, index) in &u.inputs {
            b.extend_from_slice(&unit.to_be_bytes());
            b.extend_from_slice(&index.to_be_bytes());
        }
        b.extend(&u.outputs);
    }
    b.extend_from_slice(&0i16.to_be_bytes());
    b
}

/// `Out.ar(0, LPF.ar(Saw.ar(freq), 15000))`.
fn alias_def() -> Vec<u8> {
    let units = [
        unit("Control", CONTROL, vec![], vec![CONTROL]),
        unit("Saw", AUDIO, vec![(0, 0)], vec![AUDIO]),
        unit("LPF", AUDIO, vec![(1, 0), (-1, 0)], vec![AUDIO]),
        unit("Out", AUDIO, vec![(-1, 1), (2, 0)], vec![]),
    ];
    synthdef(
        "tapestry_alias",
        &[15_000.0, 0.0],
        &[("freq", 440.0)],
        &units,
    )
}

/// `Out.ar(0, Pan2.ar(RLPF.ar(Saw.ar(freq), cutoff, 0.5), pos))`: the reference voice.
fn reference_def() -> Vec<u8> {
    let units = [
        unit("Control", CONTROL, vec![], vec![CONTROL; 3]),
        unit("Saw", AUDIO, vec![(0, 0)], vec![AUDIO]),
        unit("RLPF", AUDIO, vec![(1, 0), (0, 1), (-1, 0)], vec![AUDIO]),
        unit("Pan2", AUDIO, vec![(2, 0), (0, 2), (-1, 1)], vec![AUDIO; 2]),
        unit("Out", AUDIO, vec![(-1, 2), (3, 0), (3, 1)], vec![]),
    ];
    let params = [("freq", 440.0), ("cutoff", 1760.0), ("pos", 0.0)];
    synthdef("tapestry_reference", &[0.5, 1.0, 0.0], &params, &units)
}

fn unit(class: &'static str, rate: u8, inputs: Vec<(i32, i32)>, outputs: Vec<u8>) -> Unit {
    Unit {
        class,
        rate,
        inputs,
        outputs,
    }
}

/// An NRT score: the definition at 0, one synth per argument list at 0, the end at `secs`.
fn score(def: Vec<u8>, name: &str, synths: &[Vec<(&str, f32)>], secs: f64) -> Vec<u8> {
    let msg = |addr: &str, args: Vec<OscType>| {
        OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        })
    };
    let at = |secs: f64, content: Vec<OscPacket>| {
        OscPacket::Bundle(OscBundle {
            timetag: OscTime {
                seconds: secs as u32,
                fractional: (secs.fract() * 4_294_967_296.0) as u32,
            },
            content,
        })
    };
    let mut notes = Vec::new();
    for (i, args) in synths.iter().enumerate() {
        let mut a = vec![
            OscType::String(name.into()),
            OscType::Int(1000 + i as i32),
            OscType::Int(0),
            OscType::Int(0),
        ];
        for (k, v) in args {
            a.extend([OscType::String((*k).into()), OscType::Float(*v)]);
        }
        notes.push(msg("/s_new", a));
    }
    let end = vec![msg("/c_set", vec![OscType::Int(0), OscType::Int(0)])];
    let mut out = Vec::new();
    for packet in [
        at(0.0, vec![msg("/d_recv", vec![OscType::Blob(def)])]),
        at(0.0, notes),
        at(secs, end),
    ] {
        let bytes = rosc::encoder::encode(&packet).expect("an encodable score");
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend(bytes);
    }
    out
}

/// Renders a score with scsynth in non-real-time mode; the wall time in seconds.
fn run_scsynth(dir: &Path, score_bytes: &[u8], channels: u32) -> (f64, std::path::PathBuf) {
    let score_path = dir.join("score.osc");
    let wav = dir.join("out.wav");
    std::fs::write(&score_path, score_bytes).expect("the score is written");
    let start = Instant::now();
    let status = Command::new("scsynth")
        .arg("-N")
        .arg(&score_path)
        .arg("_")
        .arg(&wav)
        .args([&SR.to_string(), "WAV", "float", "-o", &channels.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scsynth runs (apt-get install supercollider-server)");
    assert!(status.success(), "scsynth failed: {status}");
    (start.elapsed().as_secs_f64(), wav)
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("scsynth Saw → LPF 15 kHz: inharmonic energy relative to the harmonics\n");
    println!("| C6 | C7 | C8 |\n|---:|---:|---:|");
    let mut row = Vec::new();
    for (_, hz) in NOTES {
        let secs = (FFT_LEN + 9_600) as f64 / f64::from(SR);
        let s = score(
            alias_def(),
            "tapestry_alias",
            &[vec![("freq", hz as f32)]],
            secs,
        );
        let (_, wav) = run_scsynth(dir.path(), &s, 1);
        let samples: Vec<f32> = hound::WavReader::open(&wav)
            .expect("scsynth's WAV")
            .into_samples::<f32>()
            .map(|x| x.expect("a float sample"))
            .collect();
        let split = harmonic_split(&samples, SR as f32, hz).expect("a measurable tone");
        row.push(format!("{:.1} dB", split.inharmonic_db()));
    }
    println!("| {} |\n", row.join(" | "));
    let voices = 256;
    let synths: Vec<_> = (0..voices)
        .map(|v| {
            let hz = 55.0 * (1.0 + (v as f32 * 0.618).fract() * 7.0);
            let pos = (v as f32 * 0.37).fract() * 2.0 - 1.0;
            vec![("freq", hz), ("cutoff", hz * 4.0), ("pos", pos)]
        })
        .collect();
    let time = |secs: f64| {
        let s = score(reference_def(), "tapestry_reference", &synths, secs);
        (0..3)
            .map(|_| run_scsynth(dir.path(), &s, 2).0)
            .fold(f64::INFINITY, f64::min)
    };
    let (short, long) = (time(2.0), time(12.0));
    let ns = (long - short) / (voices as f64 * 10.0 * f64::from(SR)) * 1e9;
    println!(
        "scsynth reference voice (Saw → RLPF → Pan2), {voices} voices: {ns:.2} ns/voice-sample"
    );
}
