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
use tapestry::control::{Command, Expression, MoodTarget};
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
    let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed()).unwrap();
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
