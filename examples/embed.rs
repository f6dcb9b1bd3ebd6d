//! Embedding Tapestry in a host program: an engine on an audio thread, a controller on
//! another, a game loop sending participants and mood, status read back without locks.
//!
//! Run: `cargo run --release --example embed`

use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use tapestry::{Engine, MoodTarget, Notice, Patch};

fn main() {
    let patch = Patch::load(Path::new("patches/minimal.toml")).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let (mut engine, controller) = Engine::new(patch.config(48_000, None), patch.names());

    // the "audio thread": a host calls process from its device callback; here a loop renders
    // six seconds in 256-frame blocks, as fast as it can, keeping the peak level
    let audio = thread::spawn(move || {
        let mut block = vec![0.0f32; 2 * 256];
        let mut peak = 0.0f32;
        for _ in 0..(48_000 * 6 / 256) {
            engine.process(&mut block);
            peak = block.iter().fold(peak, |m, s| m.max(s.abs()));
        }
        peak
    });

    // the "game": players arrive, the room heats up, one leaves. A clone gets a ring of its
    // own, so the game's messages never wait behind another sender's.
    let game = controller.clone();
    assert_ne!(game.source(), controller.source());
    for player in 1..=6 {
        game.join(player, None).expect("queue has room");
    }
    game.set_mood(MoodTarget::Communal, "energy", 0.9, 2.0)
        .unwrap();
    game.set_mood(MoodTarget::Participant(3), "tension", 0.8, 0.5)
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    game.leave(2).unwrap();
    game.join(99, Some(250)).unwrap(); // no such archetype: the engine refuses, says why

    let peak = audio.join().unwrap();
    let status = controller.status();
    let energy = controller.names().dim("energy").expect("core dimension") as usize;
    println!(
        "participants: {}, section: {}, bar: {}, energy: {:.2}, peak: {:.2}",
        status.participants.load(Ordering::Relaxed),
        controller.names().sections[status.section.load(Ordering::Relaxed) as usize],
        status.bar.load(Ordering::Relaxed),
        status.mood(energy),
        peak
    );
    while let Some(notice) = controller.try_notice() {
        match notice {
            Notice::Joined {
                participant,
                archetype,
                ..
            } => {
                println!(
                    "joined: participant {participant} as {}",
                    controller.names().archetypes[archetype as usize]
                )
            }
            Notice::Left { participant, .. } => println!("left: participant {participant}"),
            Notice::Refused {
                command, reason, ..
            } => println!("refused: {command:?}: {reason}"),
            Notice::SectionChanged { section, bar, .. } => {
                println!("section {section} at bar {bar}")
            }
        }
    }
}
