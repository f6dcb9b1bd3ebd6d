//! The hand-off from controllers to the audio thread: a producer stalled in the middle of a
//! send never holds the audio thread, one source flooding the schedule leaves every other
//! source its share, nothing is parked beyond the horizon, and the work applied per control
//! period is bounded without making renders depend on the block size.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::measure::rms;
use crate::common::*;
use tapestry::control::{Command, Message, MoodTarget, Notice, Refusal, Timing};
use tapestry::Engine;

const BLOCK: usize = 256;

fn join(participant: u32) -> Command {
    Command::Join {
        participant,
        archetype: Some(0),
    }
}

fn at(sample: u64, command: Command) -> Message {
    Message {
        at: Timing::At(sample),
        command,
    }
}

/// What one run with a producer parked mid-send measured.
struct StallRun {
    worst: Duration,
    blocks: u32,
    present_during: u32,
    stalled_joined_during: bool,
    rms_before: f32,
    rms_during: f32,
    present_after: u32,
}

/// Runs the engine at real-time pace for `stall` while one producer is parked between
/// claiming and publishing its slot, and another producer joins a participant who plays.
fn run_with_a_stalled_producer(stall: Duration) -> StallRun {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let (stalled, other) = (controller.clone(), controller.clone());
    assert_ne!(stalled.source(), other.source(), "each clone has a ring");
    let (parked_tx, parked_rx) = crossbeam_channel::bounded(1);
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let producer = thread::spawn(move || {
        let message = Message {
            at: Timing::Immediate,
            command: join(7),
        };
        stalled.send_stalling(message, || {
            parked_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        })
    });
    parked_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the producer parks mid-send");
    let period = Duration::from_secs_f64(BLOCK as f64 / SR as f64);
    let mut block = vec![0.0f32; 2 * BLOCK];
    let (mut worst, mut blocks) = (Duration::ZERO, 0u32);
    let (mut before, mut during) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < stall {
        if blocks == 20 {
            other.join(1, Some(0)).unwrap();
            other
                .set_mood(MoodTarget::Communal, "energy", 0.9, 0.0)
                .unwrap();
        }
        let t = Instant::now();
        engine.process(&mut block);
        worst = worst.max(t.elapsed());
        if blocks < 20 {
            &mut before
        } else {
            &mut during
        }
        .extend_from_slice(&block);
        blocks += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    let status = controller.status().clone();
    let present_during = status.participants.load(Ordering::Relaxed);
    let mut stalled_joined_during = false;
    while let Some(n) = controller.try_notice() {
        stalled_joined_during |= matches!(n, Notice::Joined { participant: 7, .. });
    }
    release_tx.send(()).unwrap();
    producer
        .join()
        .unwrap()
        .expect("the stalled send completes");
    engine.process(&mut block);
    StallRun {
        worst,
        blocks,
        present_during,
        stalled_joined_during,
        rms_before: rms(&before),
        rms_during: rms(&during[during.len() / 2..]),
        present_after: status.participants.load(Ordering::Relaxed),
    }
}

#[test]
fn a_producer_stalled_mid_send_never_holds_the_audio_thread() {
    // A shared multi-producer queue makes its consumer wait for a producer that claimed a
    // slot and was preempted before writing it. Here the producer is parked exactly there
    // (its slot claimed and written, not yet published) for 600 ms: the audio thread must go
    // on at full pace, the other producer's join must land and be heard, and the stalled
    // message must arrive once its producer resumes.
    let stall = Duration::from_millis(600);
    let deadline = Duration::from_secs_f64(BLOCK as f64 / SR as f64);
    // the worst block time is measured on a shared, loaded machine: a preemption of the test
    // thread can exceed a deadline by itself, so the run is retried, never the stall's size
    let mut runs = Vec::new();
    for _ in 0..3 {
        let run = run_with_a_stalled_producer(stall);
        let clean = run.worst < deadline / 2;
        runs.push(run);
        if clean {
            break;
        }
    }
    let run = runs.last().unwrap();
    println!(
        "stalled producer: {} blocks in {:?}, worst process() {:?} = {:.1} % of the {:?} deadline \
         (runs: {:?}); rms before the join {:.4}, during {:.4}",
        run.blocks,
        stall,
        run.worst,
        run.worst.as_secs_f64() / deadline.as_secs_f64() * 100.0,
        deadline,
        runs.iter().map(|r| r.worst).collect::<Vec<_>>(),
        run.rms_before,
        run.rms_during,
    );
    for r in &runs {
        // never anywhere near the stall: the audio thread did not wait for the producer
        assert!(r.worst < stall / 10, "process waited {:?}", r.worst);
        assert!(r.blocks as f64 >= 0.8 * stall.as_secs_f64() * SR as f64 / BLOCK as f64);
        assert_eq!(r.present_during, 1, "the other producer's join landed");
        assert!(
            !r.stalled_joined_during,
            "an unpublished message never applies"
        );
        assert!(
            r.rms_during > 10.0 * r.rms_before.max(1e-5),
            "the join is heard"
        );
        assert_eq!(
            r.present_after, 2,
            "the stalled message arrives once published"
        );
    }
    assert!(
        run.worst < deadline / 2,
        "worst process() {:?} against a {:?} deadline in every run",
        run.worst,
        deadline
    );
}

#[test]
fn one_source_flooding_the_schedule_leaves_the_others_their_share() {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let limits = *controller.limits();
    let (flood, live) = (controller.clone(), controller.clone());
    let status = controller.status().clone();
    let energy = dim(&patch, "energy");
    let mood = |value: f32| Command::Mood {
        target: MoodTarget::Communal,
        dim: energy,
        value,
        ramp_secs: 0.0,
    };
    let send_all = |engine: &mut Engine, sample: u64, count: usize| {
        for i in 0..count {
            let message = at(sample, mood((i % 2) as f32));
            while flood.send(message).is_err() {
                engine.process(&mut []); // the ring is full: the engine drains it
            }
        }
        engine.process(&mut []);
    };
    // 9000 messages a year ahead are refused at once: nothing parks past the horizon
    let year = 365 * 86_400 * SR as u64;
    send_all(&mut engine, year, 9000);
    assert_eq!(engine.scheduled(flood.source()), (0, 0));
    assert_eq!(status.refused_messages.load(Ordering::Relaxed), 9000);
    let mut too_far = 0;
    while let Some(n) = controller.try_notice() {
        too_far += matches!(
            n,
            Notice::Refused {
                reason: Refusal::TooFarAhead,
                ..
            }
        ) as usize;
    }
    assert_eq!(
        too_far, limits.notice_capacity,
        "as many as the notice ring holds"
    );
    // within the horizon: the flooding source keeps its share, the rest is refused
    let share = limits.schedule_share;
    send_all(&mut engine, 5 * SR as u64, share + 1000);
    assert_eq!(engine.scheduled(flood.source()), (share, share));
    assert_eq!(status.refused_messages.load(Ordering::Relaxed), 9000 + 1000);
    while controller.try_notice().is_some() {}
    // every other source still gets through, at once
    live.join(1, None).unwrap();
    live.set_mood(MoodTarget::Communal, "energy", 0.9, 0.0)
        .unwrap();
    let mut block = vec![0.0f32; 2 * BLOCK];
    engine.process(&mut block);
    assert_eq!(status.participants.load(Ordering::Relaxed), 1);
    let joined = std::iter::from_fn(|| controller.try_notice())
        .any(|n| matches!(n, Notice::Joined { participant: 1, .. }));
    assert!(joined);
    // the flood's scheduled messages apply from their sample on, 64 per control period,
    // and the share empties
    let spread = (share / limits.apply_per_tick) as u64 * 32;
    while engine.sample_position() < 5 * SR as u64 + spread + 32 {
        engine.process(&mut block);
    }
    assert_eq!(engine.scheduled(flood.source()), (0, 0));
}

#[test]
fn messages_applied_per_control_period_are_bounded_and_renders_stay_block_independent() {
    // 200 joins due at one sample apply 64 per 32-sample control period, in order, on the
    // engine's timeline: the same samples whatever the block size
    let patch = patch_text(&PULSE_PATCH.replace("seed = 3", "seed = 3\ncapacity = 256"));
    let start = 48_000u64;
    let joined_at = |block: usize| {
        let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
        assert_eq!(controller.limits().apply_per_tick, 64);
        for id in 1..=200 {
            controller.send(at(start + 5, join(id))).unwrap();
        }
        let mut out = vec![0.0f32; 2 * 60_000];
        for chunk in out.chunks_mut(2 * block) {
            engine.process(chunk);
        }
        let notices: Vec<(u32, u64)> = std::iter::from_fn(|| controller.try_notice())
            .filter_map(|n| match n {
                Notice::Joined {
                    participant,
                    at_sample,
                    ..
                } => Some((participant, at_sample)),
                _ => None,
            })
            .collect();
        (notices, out)
    };
    let (reference, audio) = joined_at(64);
    let ids: Vec<u32> = reference.iter().map(|j| j.0).collect();
    assert_eq!(ids, (1..=200).collect::<Vec<_>>(), "in order of arrival");
    let first_tick = start + 5;
    let next_tick = (start + 5).div_ceil(32) * 32;
    for (i, &(_, sample)) in reference.iter().enumerate() {
        let expected = match i / 64 {
            0 => first_tick,
            k => next_tick + 32 * (k as u64 - 1),
        };
        assert_eq!(sample, expected, "join {i}");
    }
    for block in [1usize, 100, 4096] {
        let (other, other_audio) = joined_at(block);
        assert_eq!(other, reference, "block {block}");
        assert!(other_audio == audio, "block {block}: the audio differs");
    }
}

#[test]
fn a_performance_as_dense_as_the_engine_applies_live_renders_alike_in_every_block_size() {
    // 64 messages in every 32-sample control period for a second (the most a live show can
    // apply, so the densest recording there can be): every block size, up to the largest,
    // hands them over without a refusal and renders the same bits
    let patch = patch("minimal.toml");
    let energy = dim(&patch, "energy");
    let mut script = Script::default().join(0.0, 1, Some(0)).join(0.0, 2, None);
    for i in 0..(SR as u64 * 2) {
        let sample = 4_800 + i / 2;
        let command = Command::Mood {
            target: MoodTarget::Communal,
            dim: energy,
            value: (i % 7) as f32 / 7.0,
            ramp_secs: 0.0,
        };
        script = script.at(sample as f64 / SR as f64, command);
    }
    let perf = script.performance(1.5);
    assert_eq!(perf.commands.len(), 2 + 2 * SR as usize);
    let reference = render_blocks(&patch, &perf, 64, None);
    for block in [512usize, tapestry::engine::MAX_BLOCK_FRAMES] {
        let other = render_blocks(&patch, &perf, block, None);
        assert!(other == reference, "block {block} differs");
    }
    assert!(rms(&reference) > 0.01);
}
