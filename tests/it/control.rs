//! The control pipeline and the score, observed from outside: refusals with reasons, a full
//! queue that refuses and counts, lock-free status, mood-driven section changes on bar lines,
//! cues, and played notes harmonized to the communal chord unless the voice is free.

use std::sync::atomic::Ordering;

use crate::common::measure::*;
use crate::common::*;
use tapestry::control::{Command, ControlError, Message, Notice, Refusal, Timing};
use tapestry::{Engine, MoodTarget};

const PATCH: &str = r#"
version = 1
[piece]
name = "control probe"
seed = 2
capacity = 3
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "C"
mode = "major"
tempo_bpm = 120
start = "calm"
[[score.sections]]
name = "calm"
chords = ["I"]
[[score.sections]]
name = "storm"
chords = ["vi"]
density = 1.4
[[score.sections]]
name = "dawn"
chords = ["IV"]
[[score.transitions]]
from = "calm"
to = "storm"
when = "tension > 0.7"
min_bars = 2
[[score.transitions]]
from = "storm"
to = "calm"
when = "tension < 0.3"
[mood.energy]
default = 0.5
smoothing_secs = 0.1
[mood.tension]
default = 0.1
smoothing_secs = 0.1
[mood.brightness]
default = 0.5
[mood.unity]
default = 1.0
[[archetypes]]
id = "keys"
timbre = "lead"
register = [48, 84]
motif = { steps = 4, density = 0.0 }
[[archetypes]]
id = "free"
timbre = "lead"
register = [48, 84]
free = true
motif = { steps = 4, density = 0.0 }
"#;

fn run(engine: &mut Engine, secs: f64) -> Vec<f32> {
    let mut out = vec![0.0f32; 2 * (secs * SR as f64) as usize];
    for chunk in out.chunks_mut(2 * 256) {
        engine.process(chunk);
    }
    out
}

#[test]
fn refusals_come_back_with_reasons_and_are_counted() {
    let patch = patch_text(PATCH);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    for id in 1..=4 {
        controller.join(id, Some(0)).unwrap();
    }
    controller.join(2, Some(0)).unwrap();
    controller.leave(77).unwrap();
    controller.cue("no such section").unwrap();
    controller.join(9, Some(42)).unwrap();
    run(&mut engine, 0.1);
    let mut reasons = Vec::new();
    while let Some(n) = controller.try_notice() {
        if let Notice::Refused { reason, .. } = n {
            reasons.push(reason);
        }
    }
    assert_eq!(
        reasons,
        vec![
            Refusal::CapacityReached,
            Refusal::AlreadyPresent,
            Refusal::UnknownParticipant,
            Refusal::OutOfRange,
            Refusal::OutOfRange
        ]
    );
    let status = controller.status();
    assert_eq!(status.refused_messages.load(Ordering::Relaxed), 5);
    assert_eq!(
        status.participants.load(Ordering::Relaxed),
        3,
        "the capacity of 3 holds"
    );
    assert!(Refusal::CapacityReached.to_string().contains("capacity"));
    let by_reason: Vec<(Refusal, u64)> = status
        .refusals()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        by_reason,
        vec![
            (Refusal::CapacityReached, 1),
            (Refusal::AlreadyPresent, 1),
            (Refusal::UnknownParticipant, 1),
            (Refusal::OutOfRange, 2)
        ],
        "counted by reason"
    );
}

#[test]
fn voices_fading_after_a_leave_never_keep_a_newcomer_out() {
    // a sender joins and leaves thousands of ids, faster than their voices fade (1.5 s):
    // every slot of the capacity of 3 holds a fading voice, and a newcomer still joins,
    // taking the slot of the voice that has faded longest
    let patch = patch_text(PATCH);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let newcomer = controller.clone();
    let mut joined = Vec::new();
    let mut refused = Vec::new();
    let take_notices = |joined: &mut Vec<u32>, refused: &mut Vec<(Refusal, Command)>| {
        while let Some(n) = controller.try_notice() {
            match n {
                Notice::Joined { participant, .. } => joined.push(participant),
                Notice::Refused {
                    reason, command, ..
                } => refused.push((reason, command)),
                _ => {}
            }
        }
    };
    let mut churned = 0;
    for id in 1000..4000 {
        controller.join(id, Some(0)).unwrap();
        controller.note(id, 60, 100).unwrap();
        controller.leave(id).unwrap();
        churned += 1;
        if churned % 100 == 0 {
            run(&mut engine, 256.0 / SR as f64);
            take_notices(&mut joined, &mut refused);
        }
    }
    newcomer.join(7, Some(0)).unwrap();
    newcomer.note(7, 67, 100).unwrap();
    run(&mut engine, 0.05);
    take_notices(&mut joined, &mut refused);
    assert!(refused.is_empty(), "{:?}", &refused[..refused.len().min(5)]);
    assert_eq!(joined.len(), churned + 1, "every join landed");
    assert_eq!(joined.last(), Some(&7));
    let status = controller.status();
    assert_eq!(status.participants.load(Ordering::Relaxed), 1);
    // and the newcomer is heard once the fading voices are gone
    let out = run(&mut engine, 2.0);
    let tail = &out[out.len() - SR as usize..];
    let rms = (tail.iter().map(|x| x * x).sum::<f32>() / tail.len() as f32).sqrt();
    assert!(rms > 1e-3, "the newcomer's voice: rms {rms}");
}

#[test]
fn a_full_queue_refuses_the_caller_and_counts_while_the_engine_never_waits() {
    let patch = patch_text(PATCH);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let mut refused = 0;
    for i in 0..(controller.limits().ring_capacity + 100) {
        let m = Command::Mood {
            target: MoodTarget::Communal,
            dim: 0,
            value: (i % 2) as f32,
            ramp_secs: 0.0,
        };
        if let Err(e) = controller.command(m) {
            assert_eq!(e, ControlError::QueueFull);
            refused += 1;
        }
    }
    assert_eq!(refused, 100);
    assert_eq!(
        controller.status().dropped_messages.load(Ordering::Relaxed),
        100
    );
    run(&mut engine, 0.01); // drains without blocking
    assert!(controller.command(Command::Cue { section: 0 }).is_ok());
}

#[test]
fn status_reports_levels_participants_mood_and_position() {
    let patch = patch_text(PATCH);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    controller.join(1, Some(0)).unwrap();
    controller.note(1, 64, 110).unwrap();
    controller
        .set_mood(MoodTarget::Communal, "energy", 0.9, 0.0)
        .unwrap();
    run(&mut engine, 1.0);
    let s = controller.status();
    assert_eq!(s.participants.load(Ordering::Relaxed), 1);
    assert_eq!(s.sample_position.load(Ordering::Relaxed), SR as u64);
    let (l, r) = s.peaks();
    assert!(l > 0.01 && r > 0.01, "peaks {l} {r}");
    assert!((s.mood(controller.names().dim("energy").unwrap() as usize) - 0.9).abs() < 0.01);
    assert!(tapestry::Status::load_f32(&s.momentary_lufs) > -60.0);
}

#[test]
fn sections_follow_the_mood_on_bar_lines_and_cues() {
    let patch = patch_text(PATCH);
    let names = patch.names();
    let (storm, calm, dawn) = (
        names.section("storm").unwrap(),
        names.section("calm").unwrap(),
        names.section("dawn").unwrap(),
    );
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    controller.join(1, Some(0)).unwrap();
    run(&mut engine, 0.5);
    controller
        .set_mood(MoodTarget::Communal, "tension", 0.9, 0.0)
        .unwrap();
    run(&mut engine, 6.0);
    controller
        .set_mood(MoodTarget::Communal, "tension", 0.1, 0.0)
        .unwrap();
    run(&mut engine, 4.0);
    controller.cue("dawn").unwrap();
    run(&mut engine, 3.0);
    let samples_per_bar = 4.0 * 60.0 / 120.0 * SR as f64;
    let mut changes = Vec::new();
    while let Some(n) = controller.try_notice() {
        if let Notice::SectionChanged {
            section,
            bar,
            at_sample,
        } = n
        {
            // a bar line, to within one control period
            let offset = at_sample as f64 - bar as f64 * samples_per_bar;
            assert!(
                (0.0..32.0).contains(&offset),
                "section change {offset} samples after bar {bar}"
            );
            changes.push((section, bar));
        }
    }
    let sections: Vec<u16> = changes.iter().map(|c| c.0).collect();
    assert_eq!(sections, vec![storm, calm, dawn], "{changes:?}");
    // min_bars = 2: the storm could not start before bar 2
    assert!(changes[0].1 >= 2);
}

#[test]
fn played_notes_land_on_the_communal_chord_unless_the_voice_is_free() {
    let patch = patch_text(PATCH);
    let render_note = |archetype: u16| {
        let perf = Script::default()
            .join(0.0, 1, Some(archetype))
            .at(
                0.5,
                Command::NoteOn {
                    participant: 1,
                    pitch: 61,
                    velocity: 110,
                },
            )
            .at(
                2.5,
                Command::NoteOff {
                    participant: 1,
                    pitch: 61,
                },
            )
            .performance(3.0);
        let out = render_blocks(&patch, &perf, 128, None);
        chroma(&mono(segment(&out, SR, 0.8, 2.4)), SR as f32)
    };
    // C# is not in the C major chord: harmonized, it moves to a chord tone (C or E)
    let harmonized = render_note(archetype(&patch, "keys"));
    let free = render_note(archetype(&patch, "free"));
    let c_sharp = [1u8];
    println!(
        "C# share: harmonized {:.3}, free {:.3}",
        pitch_class_share(&harmonized, &c_sharp),
        pitch_class_share(&free, &c_sharp)
    );
    assert!(pitch_class_share(&harmonized, &[0, 4, 7]) > 0.7);
    assert!(pitch_class_share(&harmonized, &c_sharp) < 0.1);
    assert!(pitch_class_share(&free, &c_sharp) > 0.5);
}

#[test]
fn messages_land_on_their_sample_whatever_the_block() {
    // a note stamped at sample 12_345 changes the output from exactly there (plus the
    // limiter's look-ahead), in every block size
    let patch = patch_text(PATCH);
    let render = |block: usize, note: bool| {
        let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
        controller.join(1, Some(1)).unwrap();
        if note {
            let command = Command::NoteOn {
                participant: 1,
                pitch: 72,
                velocity: 127,
            };
            controller
                .send(Message {
                    at: Timing::At(12_345),
                    command,
                })
                .unwrap();
        }
        let mut out = vec![0.0f32; 2 * 20_000];
        for chunk in out.chunks_mut(2 * block) {
            engine.process(chunk);
        }
        out
    };
    let latency = Engine::new(patch.config(SR, None), patch.names())
        .0
        .latency_frames();
    for block in [1, 100, 4096] {
        let (with, without) = (render(block, true), render(block, false));
        let first = with
            .iter()
            .zip(&without)
            .position(|(a, b)| a != b)
            .map(|i| i / 2);
        assert_eq!(first, Some(12_345 + latency), "block {block}");
    }
}
