//! Every parser fuzzed with a seeded generator: patches, performances, OSC packets, MIDI bytes
//! and WAV headers, 10,000 inputs each — mutations of valid inputs (the shipped patches and
//! performances, well-formed OSC packets, MIDI streams and WAV files) and random bytes.
//! For every input: no panic, no hang (each parse must finish within [`HANG_LIMIT`], watched
//! from another thread), and no more bytes held at once than the parser's stated bound,
//! counted by the binary's allocator (`alloc_count`). The seed is fixed, so a failure names
//! an input that reproduces.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use tapestry::input::midi::{parse_message, MidiParser};
use tapestry::input::osc::{OscDecoder, OscStats};
use tapestry::input::SampleClock;
use tapestry::{Patch, Performance};

use crate::alloc_count::peak_bytes;

/// Inputs per parser.
const INPUTS: usize = 10_000;
/// Longest one parse may take before the test calls it a hang (generous: the machine may be
/// loaded; a parse takes well under a millisecond).
const HANG_LIMIT: Duration = Duration::from_secs(20);

/// A seeded xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.below(list.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Tokens that break parsers: extreme numbers, brackets, quotes, headers, control bytes.
const TOML_TOKENS: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1e308",
    "-1e308",
    "1.7976931348623157e309",
    "nan",
    "-inf",
    "-1",
    "0",
    "0.0",
    "\"\"",
    "\"C##########\"",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "=",
    "\"",
    "'''",
    "\"\"\"",
    "#",
    "\n",
    "\r\n",
    "\t",
    "\\u0000",
    "\u{0}",
    "é",
    "[[events]]\n",
    "[[archetypes]]\n",
    "[[score.sections]]\n",
    "[[mappings]]\n",
    "[session]\n",
    "[mood.x]\n",
    "recording = true\n",
    "type = \"position\"\n",
    "sample = 4147200000\n",
    "bar = 100000\n",
    "register = [1, 2, 3]\n",
];

/// 1 to 4 mutations of a text: byte flips, deletions, duplications, insertions of
/// troublesome tokens, number swaps, line swaps, truncation.
fn mutate_text(rng: &mut Rng, base: &str) -> String {
    let mut b = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len).min(b.len().saturating_sub(1));
                if !b.is_empty() {
                    b[i] = rng.next() as u8;
                }
            }
            1 => {
                let start = rng.below(len);
                let end = (start + rng.below(64)).min(b.len());
                b.drain(start.min(end)..end);
            }
            2 => {
                let start = rng.below(len).min(b.len());
                let end = (start + rng.below(400)).min(b.len());
                let copy = b[start..end].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, copy);
            }
            3 | 4 => {
                let at = rng.below(b.len() + 1);
                let token = rng.pick(TOML_TOKENS).as_bytes().to_vec();
                b.splice(at..at, token);
            }
            5 => {
                // replace the digits of a number with an extreme value
                let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.below(digits.len())) {
                    let mut end = i;
                    while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
                        end += 1;
                    }
                    let token = rng.pick(&TOML_TOKENS[..10]).as_bytes().to_vec();
                    b.splice(i..end, token);
                }
            }
            6 => {
                let text = String::from_utf8_lossy(&b).to_string();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(i, j);
                b = lines.join("\n").into_bytes();
            }
            _ => {
                let at = rng.below(len).min(b.len());
                b.truncate(at);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// 1 to 4 mutations of binary data: byte flips, 32-bit fields set to extremes, deletions,
/// duplications, random insertions, truncation.
fn mutate_bytes(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if b.len() >= 4 => {
                let i = rng.below(b.len() - 3);
                let v: u32 = *rng.pick(&[
                    0,
                    1,
                    0x7F,
                    0x80,
                    0xFF,
                    0xFFFF,
                    0x7FFF_FFFF,
                    0x8000_0000,
                    u32::MAX,
                ]);
                let bytes = if rng.chance(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            2 => {
                let start = rng.below(len).min(b.len());
                let end = (start + rng.below(32)).min(b.len());
                b.drain(start..end);
            }
            3 => {
                let start = rng.below(len).min(b.len());
                let end = (start + rng.below(64)).min(b.len());
                let copy = b[start..end].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, copy);
            }
            4 => {
                let at = rng.below(b.len() + 1);
                let extra = rng.bytes(16);
                b.splice(at..at, extra);
            }
            _ => {
                let at = rng.below(len).min(b.len());
                b.truncate(at);
            }
        }
    }
    b
}

/// Inputs for one parser: mostly mutations of the valid ones, a tenth random bytes.
fn inputs(seed: u64, valid: &[Vec<u8>], text: bool) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let mut out: Vec<Vec<u8>> = valid.to_vec();
    while out.len() < INPUTS {
        let input = if rng.chance(10) {
            rng.bytes(512)
        } else {
            let base = rng.pick(valid);
            if text {
                mutate_text(&mut rng, &String::from_utf8_lossy(base)).into_bytes()
            } else {
                mutate_bytes(&mut rng, base)
            }
        };
        out.push(input);
    }
    out
}

/// Runs `parse` on every input on a watched thread: fails on a panic, on a parse that holds
/// more than `bound(input length)` bytes at once, and on one that does not finish within
/// [`HANG_LIMIT`]. Returns the largest bytes-held to input-length figure seen.
fn fuzz<P>(name: &str, inputs: Vec<Vec<u8>>, bound: fn(usize) -> usize, mut parse: P) -> usize
where
    P: FnMut(&[u8]) + Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel::<(usize, Option<String>)>();
    let count = inputs.len();
    let inputs = Arc::new(inputs);
    let worker = {
        let inputs = inputs.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            for (i, input) in inputs.iter().enumerate() {
                let (outcome, held) =
                    peak_bytes(|| catch_unwind(AssertUnwindSafe(|| parse(input))));
                most = most.max(held);
                let problem = match outcome {
                    Err(_) => Some("panicked".to_string()),
                    Ok(()) if held > bound(input.len()) => Some(format!(
                        "held {held} bytes at once, over the bound of {} for {} input bytes",
                        bound(input.len()),
                        input.len()
                    )),
                    Ok(()) => None,
                };
                if done_tx.send((i, problem)).is_err() {
                    break;
                }
            }
            most
        })
    };
    let mut failures = Vec::new();
    for expected in 0..count {
        match done_rx.recv_timeout(HANG_LIMIT) {
            Ok((_, None)) => {}
            Ok((i, Some(problem))) => {
                let kept = keep_failure(name, i, &inputs[i]);
                failures.push(format!(
                    "{name} input #{i} {problem} (saved as {kept}): {:?}",
                    shown(&inputs[i])
                ))
            }
            Err(_) => panic!(
                "{name} input #{expected} did not finish within {HANG_LIMIT:?}: {:?}",
                shown(&inputs[expected])
            ),
        }
    }
    let most = worker.join().expect("the worker reports panics itself");
    assert!(
        failures.is_empty(),
        "{} of {count} {name} inputs failed:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    most
}

/// Saves a failing input to reproduce it outside the test; returns where.
fn keep_failure(name: &str, i: usize, input: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let path = dir.join(format!("{name}-{i}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}

fn shown(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    text.chars().take(600).collect()
}

fn shipped(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("patches")
            .join(name),
    )
    .unwrap()
}

const PIECES: [&str; 4] = [
    "minimal",
    "kaleidoscope-nights",
    "sleep-gathering",
    "instruments",
];

/// Bytes a patch parse may hold: its tree and the resolved patch, within the 1 MiB input
/// limit (a longer input is refused before parsing).
fn patch_bound(len: usize) -> usize {
    (1 << 20) + 64 * len
}

#[test]
fn patches_never_panic_hang_or_balloon() {
    let valid: Vec<Vec<u8>> = PIECES
        .iter()
        .map(|p| shipped(&format!("{p}.toml")))
        .collect();
    let most = fuzz(
        "patch",
        inputs(0x5EED_0001, &valid, true),
        patch_bound,
        |input| {
            let text = String::from_utf8_lossy(input);
            let _ = Patch::parse(Path::new("fuzz.toml"), &text);
        },
    );
    eprintln!("patch parses held at most {most} bytes");
}

/// Bytes a performance parse may hold: one event's tree at a time, the compact commands
/// (40 bytes each, an event being at least 20 bytes of text) and the text outside the events
/// as one tree (about 35 bytes per byte of TOML, and at most 1 MiB of it: past that the file
/// is refused before parsing it).
fn performance_bound(len: usize) -> usize {
    (1 << 20) + 64 * len.min(1 << 20) + 2 * len
}

#[test]
fn performances_never_panic_hang_or_balloon() {
    let patches: Vec<Patch> = PIECES
        .iter()
        .map(|p| {
            Patch::parse(
                Path::new(p),
                &String::from_utf8_lossy(&shipped(&format!("{p}.toml"))),
            )
            .unwrap()
        })
        .collect();
    let mut valid: Vec<Vec<u8>> = PIECES
        .iter()
        .map(|p| shipped(&format!("{p}.performance.toml")))
        .collect();
    // a recording, with its position marks and a torn tail
    valid.push(
        b"version = 1\nrecording = true\nseed = 1\n\n[[events]]\nsample = 0\ntype = \"join\"\nparticipant = 1\n\n[[events]]\nsample = 300\ntype = \"mood\"\nparticipant = 0\ndimension = \"energy\"\nvalue = 0.8\n\n[[events]]\nsample = 48000\ntype = \"position\"\n\n[[events]]\nsample = 48001\ntype = \"mo"
            .to_vec(),
    );
    let patch = patches[0].clone();
    let most = fuzz(
        "performance",
        inputs(0x5EED_0002, &valid, true),
        performance_bound,
        move |input| {
            let text = String::from_utf8_lossy(input);
            let _ = Performance::parse(Path::new("fuzz.performance.toml"), &text, &patch, 48_000);
        },
    );
    eprintln!("performance parses held at most {most} bytes");
    // the shipped performances against their own patches, unmutated, parse
    for (p, patch) in PIECES.iter().zip(&patches) {
        let text = String::from_utf8(shipped(&format!("{p}.performance.toml"))).unwrap();
        Performance::parse(Path::new(p), &text, patch, 48_000).unwrap_or_else(|d| panic!("{d}"));
    }
}

fn osc_packets() -> Vec<Vec<u8>> {
    let message = |addr: &str, args: Vec<OscType>| {
        OscPacket::Message(OscMessage {
            addr: addr.to_string(),
            args,
        })
    };
    let s = |x: &str| OscType::String(x.to_string());
    let messages = vec![
        message("/tapestry/join", vec![OscType::Int(1), s("pad")]),
        message("/tapestry/leave", vec![OscType::Int(1)]),
        message(
            "/tapestry/mood",
            vec![
                OscType::Int(0),
                s("energy"),
                OscType::Float(0.8),
                OscType::Float(2.0),
            ],
        ),
        message(
            "/tapestry/mood",
            vec![OscType::Long(3), s("unity"), OscType::Double(0.1)],
        ),
        message("/tapestry/release", vec![s("tension")]),
        message(
            "/tapestry/note",
            vec![OscType::Int(1), OscType::Int(60), OscType::Int(100)],
        ),
        message(
            "/tapestry/bend",
            vec![OscType::Int(1), OscType::Float(-2.5)],
        ),
        message("/tapestry/mod", vec![OscType::Int(1), OscType::Float(0.5)]),
        message(
            "/tapestry/expr",
            vec![OscType::Int(1), s("brightness"), OscType::Float(0.3)],
        ),
        message("/tapestry/cue", vec![s("main")]),
        message("/tapestry/status", vec![]),
    ];
    let bundle = |timetag: OscTime, content: Vec<OscPacket>| {
        OscPacket::Bundle(OscBundle { timetag, content })
    };
    let now = OscTime::try_from(std::time::SystemTime::now()).unwrap();
    let mut packets: Vec<OscPacket> = messages.clone();
    packets.push(bundle(
        OscTime {
            seconds: 0,
            fractional: 1,
        },
        messages.clone(),
    ));
    packets.push(bundle(
        now,
        vec![bundle(now, messages[..3].to_vec()), messages[5].clone()],
    ));
    let mut deep = messages[2].clone();
    for _ in 0..9 {
        deep = bundle(now, vec![deep]);
    }
    packets.push(deep);
    packets
        .iter()
        .map(|p| rosc::encoder::encode(p).unwrap())
        .collect()
}

/// Bytes one OSC packet's decoding may hold: rosc's message tree and the outcome.
fn osc_bound(len: usize) -> usize {
    (64 << 10) + 64 * len
}

#[test]
fn osc_packets_never_panic_hang_or_balloon() {
    let names = tapestry::control::Names {
        dims: ["energy", "tension", "brightness", "unity"]
            .map(String::from)
            .to_vec(),
        archetypes: vec!["pad".into(), "pluck".into()],
        sections: vec!["main".into()],
    };
    let clock = Arc::new(SampleClock::new(48_000, 256));
    let mut decoder = OscDecoder::new(names, clock, Arc::new(OscStats::default()));
    let most = fuzz(
        "OSC",
        inputs(0x5EED_0003, &osc_packets(), false),
        osc_bound,
        move |input| {
            let _ = decoder.decode(input, Instant::now());
        },
    );
    eprintln!("OSC decoding held at most {most} bytes");
}

fn midi_streams() -> Vec<Vec<u8>> {
    vec![
        vec![
            0x90, 60, 100, 62, 90, 0x80, 60, 0, 0xB0, 1, 64, 33, 10, 0xE0, 0, 64,
        ],
        vec![
            0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF8, 0x10, 0x20, 0xF7, 0xC0, 5, 0xF2, 1, 2, 0xFE,
        ],
        vec![
            0x9F, 36, 127, 0xF8, 38, 0, 0xFA, 0xFC, 0xB0, 121, 0, 0xD0, 50, 0xA0, 60, 20,
        ],
        (0..64)
            .map(|i: u8| if i.is_multiple_of(3) { 0x90 } else { i & 0x7F })
            .collect(),
    ]
}

#[test]
fn midi_bytes_never_panic_hang_or_allocate() {
    let most = fuzz(
        "MIDI",
        inputs(0x5EED_0004, &midi_streams(), false),
        |_| 0,
        |input| {
            let mut parser = MidiParser::new();
            for &byte in input {
                let _ = parser.push(byte);
            }
            let _ = parser.stats();
            // as a port delivers them: one message per call, any slicing
            for chunk in input.chunks(3) {
                let _ = parse_message(chunk);
            }
            let _ = parse_message(input);
        },
    );
    assert_eq!(most, 0, "the MIDI parser never allocates");
}

fn wav_files() -> Vec<Vec<u8>> {
    let specs = [
        (1, 48_000, 16, hound::SampleFormat::Int),
        (2, 44_100, 24, hound::SampleFormat::Int),
        (1, 8_000, 8, hound::SampleFormat::Int),
        (6, 96_000, 32, hound::SampleFormat::Float),
        (2, 22_050, 32, hound::SampleFormat::Int),
    ];
    specs
        .iter()
        .map(|&(channels, sample_rate, bits_per_sample, sample_format)| {
            let spec = hound::WavSpec {
                channels,
                sample_rate,
                bits_per_sample,
                sample_format,
            };
            let mut cursor = std::io::Cursor::new(Vec::new());
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for i in 0..64 * channels as i32 {
                match sample_format {
                    hound::SampleFormat::Float => w.write_sample((i as f32 * 0.1).sin()).unwrap(),
                    hound::SampleFormat::Int => w.write_sample(i % 100 - 50).unwrap(),
                }
            }
            w.finalize().unwrap();
            cursor.into_inner()
        })
        .collect()
}

/// Bytes reading a WAV file may hold: the file's samples as f32 (at most 4 per byte, for
/// 8-bit files), doubled while the vector grows, plus hound's and the resampler's buffers.
fn wav_bound(len: usize) -> usize {
    (4 << 20) + 32 * len
}

#[test]
fn wav_headers_never_panic_hang_or_balloon() {
    let dir = std::env::temp_dir().join(format!("tapestry-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("room.wav");
    let file = path.clone();
    let mut calls = 0u64;
    let most = fuzz(
        "WAV",
        inputs(0x5EED_0005, &wav_files(), false),
        wav_bound,
        move |input| {
            std::fs::write(&file, input).unwrap();
            calls += 1;
            let _ = tapestry::analysis::wav_sample_rate(&file);
            // every tenth file is also resampled to 48 kHz, as `render --input` does
            let rate = (calls.is_multiple_of(10)).then_some(48_000);
            let _ = tapestry::analysis::read_wav(&file, rate);
        },
    );
    eprintln!("WAV reading held at most {most} bytes");
    let _ = std::fs::remove_dir_all(dir);
}
