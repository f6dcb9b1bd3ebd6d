//! The audio thread's contract, proven on the real engine: no allocation or free inside
//! `process` with messages in flight, and output that depends only on patch, performance
//! and seed — never on the block size.

use std::sync::atomic::Ordering;
use std::thread;

use crate::common::*;
use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
use tapestry::control::{Command, MoodTarget, VoiceSelector};
use tapestry::engine::config::{Param, Role, Timbre};
use tapestry::Engine;

#[test]
fn process_never_allocates_while_64_participants_join_leave_sing_and_change_mood() {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let archetypes = patch.archetypes.len() as u16;
    let dims = patch.dims.len() as u8;
    // a control thread keeps messages in flight while the audio thread runs
    let sender = {
        let controller = controller.clone();
        thread::spawn(move || {
            let mut sent = 0;
            for round in 0..6u32 {
                for id in 1..=64u32 {
                    let archetype = if id % 3 == 0 {
                        None
                    } else {
                        Some((id as u16) % archetypes)
                    };
                    let commands = [
                        Command::Join {
                            participant: id,
                            archetype,
                        },
                        Command::Mood {
                            target: MoodTarget::Participant(id),
                            dim: (id % dims as u32) as u8,
                            value: (id as f32 * 0.37 + round as f32 * 0.2) % 1.0,
                            ramp_secs: 0.5,
                        },
                        Command::NoteOn {
                            participant: id,
                            pitch: 48 + (id % 24) as u8,
                            velocity: 100,
                        },
                        Command::Mood {
                            target: MoodTarget::Communal,
                            dim: 0,
                            value: (round % 2) as f32,
                            ramp_secs: 1.0,
                        },
                        Command::NoteOff {
                            participant: id,
                            pitch: 48 + (id % 24) as u8,
                        },
                        Command::Cue { section: 0 },
                        Command::RoomParam {
                            param: (id % 12) as u8,
                            voices: match id % 3 {
                                0 => VoiceSelector::All,
                                1 => VoiceSelector::Role(Role::ALL[id as usize % 4].0),
                                _ => VoiceSelector::Timbre(Timbre::ALL[id as usize % 8].0),
                            },
                            value: (id as f32 * 0.13) % 1.0,
                        },
                    ];
                    for c in commands {
                        while controller.command(c).is_err() {
                            thread::yield_now();
                        }
                        sent += 1;
                    }
                }
                thread::sleep(std::time::Duration::from_millis(30));
                for id in 1..=64u32 {
                    while controller.leave(id).is_err() {
                        thread::yield_now();
                    }
                    sent += 1;
                }
                thread::sleep(std::time::Duration::from_millis(30));
            }
            sent
        })
    };
    let mut block = vec![0.0f32; 2 * 256];
    reset_violation_count();
    let mut peak_present = 0;
    let mut blocks = 0;
    while !sender.is_finished() || blocks < 2000 {
        assert_no_alloc(|| engine.process(&mut block));
        peak_present = peak_present.max(controller.status().participants.load(Ordering::Relaxed));
        blocks += 1;
        assert!(blocks < 200_000, "sender never finished");
    }
    // odd block lengths, single frames and the largest block too
    for frames in [1usize, 7, 333, 8192] {
        let mut b = vec![0.0f32; 2 * frames];
        assert_no_alloc(|| engine.process(&mut b));
    }
    let sent = sender.join().unwrap();
    assert_eq!(violation_count(), 0, "process allocated or freed memory");
    assert!(sent >= 64 * 8 * 6);
    assert!(
        peak_present >= 48,
        "participants really were present together: {peak_present}"
    );
    assert!(block.iter().all(|x| x.is_finite()));
}

#[test]
fn the_detector_does_catch_an_allocation() {
    reset_violation_count();
    assert_no_alloc(|| {
        let v: Vec<u8> = Vec::with_capacity(16);
        drop(v);
    });
    assert!(violation_count() > 0);
    reset_violation_count();
}

fn busy_performance(patch: &tapestry::Patch) -> tapestry::Performance {
    let energy = dim(patch, "energy");
    let tension = dim(patch, "tension");
    let mut s = Script::default();
    for id in 1..=10u32 {
        s = s.join(
            0.1 + id as f64 * 0.37,
            id,
            if id % 4 == 0 {
                None
            } else {
                Some((id % 4) as u16)
            },
        );
    }
    s = s
        .communal(2.0, energy, 0.9)
        .at(
            3.3,
            Command::NoteOn {
                participant: 2,
                pitch: 61,
                velocity: 90,
            },
        )
        .at(
            4.1,
            Command::NoteOff {
                participant: 2,
                pitch: 61,
            },
        )
        .communal(5.0, tension, 0.95)
        .leave(6.5, 3)
        .leave(7.25, 7)
        .join(8.0, 11, None)
        .communal(8.5, energy, 0.2)
        .at(
            2.5,
            Command::RoomParam {
                param: Param::BrightnessOct.index() as u8,
                voices: VoiceSelector::Role(Role::Melody),
                value: 1.5,
            },
        )
        .at(
            6.0,
            Command::RoomParam {
                param: Param::LoudnessDb.index() as u8,
                voices: VoiceSelector::Timbre(Timbre::Bass),
                value: 4.0,
            },
        );
    s.performance(10.0)
}

#[test]
fn same_patch_performance_and_seed_render_bit_identical() {
    let patch = patch("minimal.toml");
    let perf = busy_performance(&patch);
    let a = render_blocks(&patch, &perf, 512, Some(7));
    let b = render_blocks(&patch, &perf, 512, Some(7));
    assert!(a == b, "two renders differ");
    let c = render_blocks(&patch, &perf, 512, Some(8));
    assert!(a != c, "the seed changes the music");
    assert!(measure::rms(&a) > 0.01, "the render is not silent");
}

#[test]
fn block_sizes_1_64_333_and_4096_give_identical_output() {
    let patch = patch("minimal.toml");
    let perf = busy_performance(&patch);
    let reference = render_blocks(&patch, &perf, 64, None);
    for block in [1usize, 333, 4096] {
        let other = render_blocks(&patch, &perf, block, None);
        let first_difference = reference
            .iter()
            .zip(&other)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_difference, None, "block size {block} differs from 64");
    }
}

#[test]
fn reset_reproduces_the_first_render() {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let run = |engine: &mut Engine| {
        controller.join(1, Some(0)).unwrap();
        controller.join(2, Some(1)).unwrap();
        let mut out = vec![0.0f32; 2 * 48_000];
        for chunk in out.chunks_mut(512) {
            engine.process(chunk);
        }
        out
    };
    let first = run(&mut engine);
    engine.reset();
    // the engine's clock restarts; old participants are gone
    let second = run(&mut engine);
    assert!(first == second);
}

#[test]
fn process_never_allocates_with_every_source_busy_and_every_queue_overflowing() {
    // every ring of the pool claimed (and two more controllers sharing one), each flooding
    // live, future and far-future messages; notices and the journal never drained
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let _journal = engine.enable_journal(64);
    let sources = controller.limits().sources;
    let senders: Vec<_> = (0..sources + 1).map(|_| controller.clone()).collect();
    let mut claimed: Vec<usize> = senders.iter().map(|c| c.source()).collect();
    claimed.push(controller.source());
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), sources, "the pool is used up, then shared");
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            let running = running.clone();
            thread::spawn(move || {
                let mut sent = 0u64;
                let mut i = 0u64;
                while running.load(Ordering::Relaxed) {
                    // each of its 8 participants in turn joins, leaves and gets moods
                    let id = (k as u32) * 8 + (i % 8) as u32 + 1;
                    let command = match (i / 8) % 4 {
                        0 => Command::Join {
                            participant: id,
                            archetype: None,
                        },
                        1 => Command::Leave { participant: id },
                        _ => Command::Mood {
                            target: MoodTarget::Participant(id),
                            dim: 0,
                            value: 0.5,
                            ramp_secs: 0.1,
                        },
                    };
                    let at = match i % 3 {
                        0 => tapestry::Timing::Immediate,
                        1 => tapestry::Timing::At(48_000 * (1 + i % 5)),
                        _ => tapestry::Timing::At(u64::MAX / 2),
                    };
                    if c.send(tapestry::Message { at, command }).is_ok() {
                        sent += 1;
                    } else {
                        thread::yield_now();
                    }
                    i += 1;
                }
                sent
            })
        })
        .collect();
    let mut block = vec![0.0f32; 2 * 256];
    reset_violation_count();
    for _ in 0..1500 {
        assert_no_alloc(|| engine.process(&mut block));
    }
    for frames in [1usize, 333, 8192] {
        let mut b = vec![0.0f32; 2 * frames];
        assert_no_alloc(|| engine.process(&mut b));
    }
    running.store(false, Ordering::Relaxed);
    let sent: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(violation_count(), 0, "process allocated or freed memory");
    let status = controller.status();
    let (refused, lost_notices, lost_journal) = (
        status.refused_messages.load(Ordering::Relaxed),
        status.dropped_notices.load(Ordering::Relaxed),
        status.dropped_journal.load(Ordering::Relaxed),
    );
    println!(
        "{sent} messages sent by {} producers; refused {refused}, notices lost {lost_notices}, \
         journal entries lost {lost_journal}",
        sources + 1
    );
    assert!(sent > 100_000, "the producers were busy: {sent}");
    assert!(refused > 0 && lost_notices > 0 && lost_journal > 0);
    assert!(block.iter().all(|x| x.is_finite()));
}
