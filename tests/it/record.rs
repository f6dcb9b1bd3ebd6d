//! A session recording re-renders sample for sample: commands arrive from another thread at
//! arbitrary moments while the engine runs arbitrary block sizes; the journal of what the
//! engine applied, written as a performance file, renders offline to identical audio, pitch
//! bends and mod-wheel moves included.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::*;
use tapestry::control::{Command, Expression, Message, MoodTarget, Timing};
use tapestry::record::{Recorder, RecorderThread};
use tapestry::render::{render, RenderOptions};
use tapestry::{Engine, Performance};

#[test]
fn a_recorded_session_renders_offline_sample_for_sample() {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let journal = engine.enable_journal(65_536);
    let path = std::env::temp_dir().join(format!(
        "tapestry-session-{}.performance.toml",
        std::process::id()
    ));
    let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0).unwrap();
    let recording = RecorderThread::spawn(recorder, journal, path.clone());

    // a performer and the crowd, from another thread, at whatever moments the OS gives them
    let running = Arc::new(AtomicBool::new(true));
    let sender = {
        let controller = controller.clone();
        let running = running.clone();
        thread::spawn(move || {
            let mut x = 0x2545_F491u32;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x
            };
            let mut sent = 0;
            for round in 0..400u32 {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                let id = 1 + next() % 12;
                let command = match next() % 9 {
                    0 => Command::Join {
                        participant: id,
                        archetype: if next() % 2 == 0 {
                            None
                        } else {
                            Some((next() % 4) as u16)
                        },
                    },
                    1 => Command::Leave { participant: id },
                    2 => Command::Mood {
                        target: MoodTarget::Participant(id),
                        dim: (next() % 4) as u8,
                        value: (next() % 1000) as f32 / 999.0,
                        ramp_secs: (next() % 30) as f32 / 10.0,
                    },
                    3 => Command::Mood {
                        target: MoodTarget::Communal,
                        dim: (next() % 4) as u8,
                        value: (next() % 1000) as f32 / 999.0,
                        ramp_secs: 0.7,
                    },
                    4 => Command::NoteOn {
                        participant: id,
                        pitch: 48 + (next() % 36) as u8,
                        velocity: 1 + (next() % 127) as u8,
                    },
                    5 => Command::NoteOff {
                        participant: id,
                        pitch: 48 + (next() % 36) as u8,
                    },
                    6 => Command::Cue { section: 0 },
                    // wheels: in range, out of range (clamped) and not a number (refused)
                    _ => Command::Expression {
                        participant: id,
                        kind: [
                            Expression::PitchBend,
                            Expression::Vibrato,
                            Expression::Brightness,
                        ][(next() % 3) as usize],
                        value: match next() % 10 {
                            0 => f32::NAN,
                            1 => 30.0,
                            _ => (next() % 2001) as f32 / 1000.0 * 2.5 - 2.5,
                        },
                    },
                };
                if controller.command(command).is_ok() {
                    sent += 1;
                }
                thread::sleep(Duration::from_micros(200 + (round % 7) as u64 * 150));
            }
            sent
        })
    };

    // the "audio thread": irregular block sizes, as hosts and JACK period changes give them
    let total = 20 * SR as usize;
    let mut live = vec![0.0f32; 2 * total];
    let mut pos = 0;
    let mut y = 7u32;
    while pos < total {
        y = y.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let frames = (1 + (y >> 20) as usize % 2048).min(total - pos);
        engine.process(&mut live[2 * pos..2 * (pos + frames)]);
        pos += frames;
        if pos < total / 2 {
            thread::sleep(Duration::from_micros(300));
        }
    }
    running.store(false, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let events = recording.finish(engine.sample_position()).unwrap();
    assert!(sent > 100, "commands were sent ({sent})");
    assert!(events > 50, "commands were applied and recorded ({events})");
    let text = std::fs::read_to_string(&path).unwrap();
    for kind in ["bend", "vibrato", "brightness"] {
        assert!(
            text.contains(&format!("type = \"{kind}\"")),
            "the recording holds {kind} events"
        );
    }
    assert_eq!(
        controller.status().dropped_journal.load(Ordering::Relaxed),
        0
    );

    let perf = Performance::load(&path, &patch, SR)
        .unwrap_or_else(|e| panic!("the recording reads back: {e}"));
    assert_eq!(perf.duration_frames, total as u64);
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "offline render differs from the live session"
    );
    assert!(common::measure::rms(&live) > 1e-3, "the session made sound");
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------
// Floods: the recording is bounded (continuous changes coalesced per control tick) and still
// re-renders bit for bit.

/// A flood of continuous changes (jumps and ramps of personal, communal and room moods,
/// bends, room parameters) with a few notes and joins, from two threads, while the engine
/// runs irregular blocks. Returns the live audio, the recording's path, what the recorder
/// kept and how many commands the engine applied.
fn flooded_session(
    name: &str,
    seconds: usize,
) -> (Vec<f32>, std::path::PathBuf, tapestry::record::Summary, u64) {
    use tapestry::engine::config::Param;
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let journal = engine.enable_journal(1 << 20);
    let path = std::env::temp_dir().join(format!(
        "tapestry-{name}-{}.performance.toml",
        std::process::id()
    ));
    let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0)
        .unwrap()
        .with_clock(controller.status().clone(), SR);
    let recording = RecorderThread::spawn(recorder, journal, path.clone());
    for id in 1..=6 {
        controller
            .command(Command::Join {
                participant: id,
                archetype: Some((id % 4) as u16),
            })
            .unwrap();
    }
    let running = Arc::new(AtomicBool::new(true));
    let senders: Vec<_> = (0..2u32)
        .map(|t| {
            let controller = controller.clone();
            let running = running.clone();
            thread::spawn(move || {
                let mut x = 0x1234_5678u32 + t;
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x
                };
                while running.load(Ordering::Relaxed) {
                    let id = 1 + next() % 6;
                    let value = (next() % 1000) as f32 / 999.0;
                    let command = match next() % 16 {
                        0..=5 => Command::Mood {
                            target: MoodTarget::Participant(id),
                            dim: (next() % 4) as u8,
                            value,
                            ramp_secs: 0.0,
                        },
                        6 | 7 => Command::Mood {
                            target: MoodTarget::Communal,
                            dim: (next() % 4) as u8,
                            value,
                            ramp_secs: [0.0, 0.0001, 0.5][(next() % 3) as usize],
                        },
                        8 => Command::Mood {
                            target: MoodTarget::Room,
                            dim: 0,
                            value,
                            ramp_secs: 0.02,
                        },
                        9 | 10 => Command::Expression {
                            participant: id,
                            kind: Expression::PitchBend,
                            value: value * 4.0 - 2.0,
                        },
                        11 => Command::RoomParam {
                            param: Param::BrightnessOct.index() as u8,
                            voices: tapestry::control::VoiceSelector::All,
                            value: value - 0.5,
                        },
                        12 => Command::NoteOn {
                            participant: id,
                            pitch: 48 + (next() % 24) as u8,
                            velocity: 90,
                        },
                        13 => Command::NoteOff {
                            participant: id,
                            pitch: 48 + (next() % 24) as u8,
                        },
                        _ => Command::Mood {
                            target: MoodTarget::Participant(id),
                            dim: 1,
                            value,
                            ramp_secs: 1.5,
                        },
                    };
                    // half land at the start of a block, half on their own sample inside
                    // the next ones, as OSC stamps them
                    let now = controller.status().sample_position.load(Ordering::Relaxed);
                    let at = match next() % 2 {
                        0 => Timing::Immediate,
                        _ => Timing::At(now + 1024 + u64::from(next() % 1024)),
                    };
                    let _ = controller.send(Message { at, command });
                    // bursts of 32: tens of thousands of commands a second
                    if next() % 32 == 0 {
                        thread::sleep(Duration::from_micros(300));
                    }
                }
            })
        })
        .collect();
    let total = seconds * SR as usize;
    let mut live = vec![0.0f32; 2 * total];
    let mut pos = 0;
    let mut y = 11u32;
    while pos < total {
        y = y.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let frames = (1 + (y >> 20) as usize % 1024).min(total - pos);
        engine.process(&mut live[2 * pos..2 * (pos + frames)]);
        pos += frames;
        thread::sleep(Duration::from_micros(500));
    }
    running.store(false, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let summary = recording.finish_summary(engine.sample_position()).unwrap();
    assert_eq!(
        controller.status().dropped_journal.load(Ordering::Relaxed),
        0
    );
    let applied = summary.events + summary.coalesced;
    (live, path, summary, applied)
}

#[test]
fn a_flooded_session_is_coalesced_per_control_tick_and_still_renders_sample_for_sample() {
    let (live, path, summary, applied) = flooded_session("flood", 6);
    let text = std::fs::read_to_string(&path).unwrap();
    eprintln!(
        "flood: {applied} commands applied, {} recorded, {} coalesced, {} bytes",
        summary.events,
        summary.coalesced,
        text.len()
    );
    assert!(applied > 20_000, "a flood was applied ({applied})");
    assert!(
        summary.coalesced > applied / 4,
        "the flood was coalesced ({} of {applied})",
        summary.coalesced
    );
    assert_eq!(summary.unrecorded, 0);

    // at most one jump and one ramp per target per control tick (no join, leave, cue, tempo
    // or release after the first joins: nothing else stops coalescing)
    let patch = patch("minimal.toml");
    let perf = Performance::load(&path, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    assert!(perf.warnings.is_empty(), "{:?}", perf.warnings);
    let mut per_tick = std::collections::HashMap::new();
    for c in &perf.commands {
        let tick = c.sample.div_ceil(tapestry::engine::CONTROL_PERIOD);
        let target = match c.command {
            Command::Mood { target, dim, .. } => format!("{target:?} {dim}"),
            Command::Expression {
                participant, kind, ..
            } => format!("{participant} {kind:?}"),
            Command::RoomParam { param, .. } => format!("room {param}"),
            _ => continue,
        };
        *per_tick.entry((tick, target)).or_insert(0) += 1;
    }
    let most = per_tick.values().copied().max().unwrap_or(0);
    assert!(
        most <= 2,
        "{most} changes of one mood target in one control tick"
    );

    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    assert_eq!(offline.len(), live.len());
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "the coalesced recording renders differently from the live session"
    );
    assert!(common::measure::rms(&live) > 1e-3, "the session made sound");
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------
// Memory: a performance loads in memory proportional to what it holds.

/// A recording-like performance of `n` mood and note events.
fn long_recording(n: usize) -> String {
    let mut text = String::from("version = 1\nrecording = true\nseed = 1\n\n[[events]]\nsample = 0\ntype = \"join\"\nparticipant = 1\n\n");
    for i in 1..n {
        let sample = i as u64 * 7;
        if i.is_multiple_of(5) {
            text.push_str(&format!("[[events]]\nsample = {sample}\ntype = \"note_on\"\nparticipant = 1\npitch = {}\nvelocity = 90\n\n", 48 + i % 24));
        } else {
            text.push_str(&format!("[[events]]\nsample = {sample}\ntype = \"mood\"\nparticipant = 1\ndimension = \"energy\"\nvalue = {}\n\n", (i % 1000) as f32 / 999.0));
        }
    }
    text
}

/// The whole file as one serde tree and one vector of event structs: how performances were
/// read before they were read table by table.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct WholeFile {
    version: i64,
    recording: Option<bool>,
    seed: Option<i64>,
    events: Vec<tapestry::performance::EventFile>,
}

#[test]
fn a_recording_loads_in_memory_proportional_to_its_events() {
    use crate::alloc_count::peak_bytes;
    let patch = patch("minimal.toml");
    let n = 200_000;
    let text = long_recording(n);
    let (perf, held) = peak_bytes(|| {
        Performance::parse(std::path::Path::new("long.toml"), &text, &patch, SR).unwrap()
    });
    assert_eq!(perf.commands.len(), n);
    let (whole, held_whole) = peak_bytes(|| toml::from_str::<WholeFile>(&text).unwrap());
    assert_eq!(whole.events.len(), n);
    drop(whole);
    let per_event = held as f64 / n as f64;
    let per_event_whole = held_whole as f64 / n as f64;
    eprintln!(
        "{n} events, {} bytes of text ({:.0} per event): loading holds {per_event:.0} bytes per event at most; one tree of the whole file held {per_event_whole:.0}",
        text.len(),
        text.len() as f64 / n as f64
    );
    // the commands themselves (24 bytes each, in a vector that may double while it grows)
    // and the document without its events
    assert!(per_event < 80.0, "{per_event:.0} bytes per event");
    assert!(
        per_event * 10.0 < per_event_whole,
        "{per_event:.0} against {per_event_whole:.0}"
    );
}

// ---------------------------------------------------------------------------------------
// kill -9: a show killed at any moment leaves a recording that loads up to its last complete
// event and renders to where the show was killed.

/// Set (to a file path) when this binary runs as the killed show.
const DRIVER_ENV: &str = "TAPESTRY_RECORD_DRIVER";

/// The show that gets killed: run only as a child of the kill test. It plays the minimal
/// patch in real time (blocks of 256 frames, paced by the clock) under a dense mood flood
/// (about 20,000 changes a second) from another thread, records to the file named in
/// [`DRIVER_ENV`], and prints its sample position every block.
#[test]
#[ignore = "run by records_survive_kill_9_at_any_moment as its child process"]
fn recording_driver() {
    use std::io::Write as _;
    let Ok(path) = std::env::var(DRIVER_ENV) else {
        return;
    };
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let journal = engine.enable_journal(1 << 20);
    let recorder = Recorder::create(path.as_ref(), &patch.name, patch.names(), patch.seed(), 0.0)
        .unwrap()
        .with_clock(controller.status().clone(), SR);
    let _recording = RecorderThread::spawn(recorder, journal, path.into());
    for id in 1..=4 {
        controller
            .command(Command::Join {
                participant: id,
                archetype: Some(id as u16 - 1),
            })
            .unwrap();
    }
    let flood = controller.clone();
    thread::spawn(move || {
        let mut i = 0u32;
        loop {
            i = i.wrapping_add(1);
            let _ = flood.command(Command::Mood {
                target: if i.is_multiple_of(3) {
                    MoodTarget::Communal
                } else {
                    MoodTarget::Participant(1 + i % 4)
                },
                dim: (i % 4) as u8,
                value: (i % 1000) as f32 / 999.0,
                ramp_secs: if i.is_multiple_of(7) { 0.25 } else { 0.0 },
            });
            if i.is_multiple_of(50) {
                let _ = flood.command(Command::NoteOn {
                    participant: 1 + i % 4,
                    pitch: 60 + (i % 12) as u8,
                    velocity: 100,
                });
            }
            thread::sleep(Duration::from_micros(50));
        }
    });
    let started = std::time::Instant::now();
    let mut block = vec![0.0f32; 2 * 256];
    let mut stdout = std::io::stdout();
    loop {
        engine.process(&mut block);
        let position = engine.sample_position();
        let _ = writeln!(stdout, "position {position}");
        let _ = stdout.flush();
        let due = Duration::from_secs_f64(position as f64 / SR as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            thread::sleep(wait);
        }
    }
}

#[test]
fn records_survive_kill_9_at_any_moment() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command as Process, Stdio};
    let patch = patch("minimal.toml");
    let dir = std::env::temp_dir().join(format!("tapestry-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut torn = 0;
    let kills = 16;
    for k in 0..kills {
        let path = dir.join(format!("show-{k}.performance.toml"));
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args([
                "record::recording_driver",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DRIVER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // kill it at a different moment each time: 0.15 s to 2.4 s into the show
        let kill_at = 48_000 * (15 + k * 15) / 100;
        let mut last = 0u64;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(line) = line else { break };
            if let Some(p) = line.strip_prefix("position ") {
                last = p.trim().parse().unwrap();
                if last >= kill_at as u64 {
                    // SIGKILL: no destructor, no flush, no end written
                    child.kill().unwrap();
                    break;
                }
            }
        }
        child.wait().unwrap();
        let perf = Performance::load(&path, &patch, SR).unwrap_or_else(|e| {
            panic!("kill #{k} at sample {last}: the recording does not load:\n{e}")
        });
        for w in &perf.warnings {
            assert!(
                w.message
                    .contains("the recording ends in an unfinished entry"),
                "{w}"
            );
            torn += 1;
        }
        // it ends where the show was killed: at most a flush interval (0.5 s) before the
        // last position we read, and not after the kill (the show may have run a little past
        // what we had read when the signal landed), never with the 8 s tail of a performance
        // that gives no end
        let end = perf.duration_frames;
        assert!(
            end <= last + SR as u64 / 2 && end + SR as u64 * 6 / 10 >= last,
            "kill #{k}: the show reached sample {last}, its recording lasts {end} samples"
        );
        assert!(
            perf.commands.len() > 4,
            "kill #{k}: the joins and some of the flood are kept"
        );
        let audio = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
        assert_eq!(audio.len() as u64, 2 * end);
        assert!(audio.iter().all(|s| s.is_finite()));
    }
    eprintln!("{kills} shows killed with SIGKILL: every recording loaded and rendered ({torn} ended in a torn entry, dropped with a warning)");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The recorder alone under the flood: 160,000 changes a second to one mood target
/// (what filled 1.87 GB in 95 s) are written at most twice per control tick.
#[test]
fn a_one_target_flood_is_recorded_at_a_bounded_rate() {
    let patch = patch("minimal.toml");
    let path = std::env::temp_dir().join(format!(
        "tapestry-one-target-{}.performance.toml",
        std::process::id()
    ));
    let status = Arc::new(tapestry::control::Status::default());
    let mut recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0)
        .unwrap()
        .with_clock(status, SR);
    let seconds = 10u64;
    let per_second = 160_000u64;
    for i in 0..seconds * per_second {
        let sample = i * SR as u64 / per_second;
        let command = Command::Mood {
            target: MoodTarget::Participant(1),
            dim: 0,
            value: (i % 1000) as f32 / 999.0,
            ramp_secs: if i.is_multiple_of(3) { 0.5 } else { 0.0 },
        };
        recorder
            .write(&tapestry::engine::Applied { sample, command })
            .unwrap();
    }
    let summary = recorder.finish(seconds * SR as u64).unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let ticks = seconds * SR as u64 / tapestry::engine::CONTROL_PERIOD;
    eprintln!(
        "{} changes in {seconds} s: {} recorded ({:.0} a second), {bytes} bytes ({:.0} KB a second)",
        seconds * per_second,
        summary.events,
        summary.events as f64 / seconds as f64,
        bytes as f64 / seconds as f64 / 1e3
    );
    assert!(
        summary.events <= 2 * ticks,
        "{} events for {ticks} ticks",
        summary.events
    );
    assert_eq!(summary.events + summary.coalesced, seconds * per_second);
    assert!(bytes < 200 * 2 * ticks, "{bytes} bytes");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_long_file_broken_near_its_top_is_refused_at_the_break_in_little_memory() {
    use crate::alloc_count::peak_bytes;
    let patch = patch("minimal.toml");
    // an array that never closes swallows every table after it: as one TOML tree these
    // 50,000 events would take about 170 MB
    let text =
        long_recording(50_000).replacen("seed = 1\n", "seed = 1\ndescription = [\"a\",\n", 1);
    let (result, held) =
        peak_bytes(|| Performance::parse(std::path::Path::new("broken.toml"), &text, &patch, SR));
    let Err(tapestry::Diagnostics(d)) = result else {
        panic!("a broken file was accepted");
    };
    assert_eq!((d[0].line, d[0].column), (4, 15), "{}", d[0]);
    assert!(
        d[0].message.contains("a value opened here never closes"),
        "{}",
        d[0]
    );
    assert!(
        held < text.len() * 2,
        "{held} bytes held for {} bytes of text",
        text.len()
    );
}

/// Values the engine clamps (a mood past its range, a ramp over an hour, a room offset past
/// its span, as OSC and the API may send them) are recorded as applied: the recording loads
/// (the file format refuses them) and re-renders bit for bit.
#[test]
fn clamped_values_are_recorded_as_applied() {
    use tapestry::engine::config::Param;
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let journal = engine.enable_journal(1024);
    let path = std::env::temp_dir().join(format!(
        "tapestry-clamped-{}.performance.toml",
        std::process::id()
    ));
    let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0)
        .unwrap()
        .with_clock(controller.status().clone(), SR);
    let recording = RecorderThread::spawn(recorder, journal, path.clone());
    let commands = [
        (
            0,
            Command::Join {
                participant: 1,
                archetype: Some(0),
            },
        ),
        (
            0,
            Command::Join {
                participant: 2,
                archetype: Some(1),
            },
        ),
        (
            4_800,
            Command::Mood {
                target: MoodTarget::Participant(1),
                dim: 0,
                value: 1.5,
                ramp_secs: 1e9,
            },
        ),
        (
            9_600,
            Command::Mood {
                target: MoodTarget::Communal,
                dim: 2,
                value: -3.0,
                ramp_secs: 7_200.0,
            },
        ),
        (
            14_400,
            Command::RoomParam {
                param: Param::BrightnessOct.index() as u8,
                voices: tapestry::control::VoiceSelector::All,
                value: 100.0,
            },
        ),
    ];
    for (sample, command) in commands {
        controller
            .send(Message {
                at: Timing::At(sample),
                command,
            })
            .unwrap();
    }
    let total = 2 * SR as usize;
    let mut live = vec![0.0f32; 2 * total];
    for chunk in live.chunks_mut(2 * 300) {
        engine.process(chunk);
    }
    let events = recording.finish(engine.sample_position()).unwrap();
    assert_eq!(events, 5);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("value = 1.0\nramp_secs = 3600.0"), "{text}");
    let perf = Performance::load(&path, &patch, SR).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(first_difference, None);
    let _ = std::fs::remove_file(&path);
}
