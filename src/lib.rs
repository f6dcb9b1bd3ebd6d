//! # Tapestry
//!
//! An audio-reactive, collective soundscape synthesizer. Every participant at a gathering
//! gets a voice of their own (a timbre, a register, a personal motif); Tapestry weaves those
//! voices into one communal score — shared key, chords, tempo and sections — and the mood of
//! the room (energy, tension, brightness, unity, …) steers it.
//!
//! ## Threads
//!
//! ```text
//!  control threads (CLI, MIDI, OSC, game logic …)            audio thread (cpal, host, renderer)
//!  ┌─────────────────────────┐  one SPSC ring per controller ┌────────────────────────────────┐
//!  │ Controller (Send+Clone) │ ─ Message{at, Command} ─────▶ │ Engine::process(&mut [f32])    │
//!  │  each clone: own ring   │   (Copy; written, then        │  drain rings round-robin,      │
//!  │  join / leave / mood /  │    published by one store)    │  budget per source and block   │
//!  │  note / cue             │                               │  → schedule (heap, share per   │
//!  │                         │ ◀── Notice ring ───────────── │    source, horizon)            │
//!  │ Status (atomics)        │ ◀── levels, section, mood ─── │  apply ≤ 64 per 32 samples     │
//!  └─────────────────────────┘                               │  voices → reverb → limiter     │
//!                                                            └────────────────────────────────┘
//! ```
//!
//! The audio thread never waits on another thread: a producer preempted (or stalled) in the
//! middle of a send holds back only its own unpublished message, never the rings of others
//! and never the audio thread. The bounds are [`ControlLimits`].
//!
//! ## Lifecycle
//!
//! 1. Parse and validate a [`Patch`] (control thread; TOML never reaches the audio thread).
//! 2. [`Engine::new`] allocates everything and returns the first [`Controller`].
//! 3. Move the engine to the audio thread and call [`Engine::process`] with interleaved
//!    stereo buffers of any length; it never allocates, locks, blocks or panics.
//! 4. Drive it from any thread through clones of the controller.
//!
//! ## Embedding
//!
//! ```
//! use tapestry::{Engine, MoodTarget, Patch};
//! use std::path::Path;
//!
//! let patch = Patch::load(Path::new("patches/minimal.toml")).expect("valid patch");
//! let (mut engine, controller) = Engine::new(patch.config(48_000, None), patch.names());
//!
//! // any thread: participants join, the room's mood rises
//! controller.join(1, None).unwrap();
//! controller.join(2, None).unwrap();
//! controller.set_mood(MoodTarget::Communal, "energy", 0.8, 2.0).unwrap();
//!
//! // the audio thread: buffers of any length
//! let mut block = vec![0.0f32; 2 * 256];
//! for _ in 0..200 {
//!     engine.process(&mut block);
//! }
//! assert!(block.iter().all(|x| x.is_finite()));
//! assert_eq!(controller.status().participants.load(std::sync::atomic::Ordering::Relaxed), 2);
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod console;
pub mod control;
pub mod diagnostic;
pub mod engine;
mod filters;
pub mod input;
#[cfg(feature = "live")]
pub mod io;
pub mod patch;
pub mod performance;
pub mod plot;
pub mod record;
pub mod render;
pub mod rng;
pub mod room;
pub mod score;
pub mod status_view;
pub mod timeline;
#[cfg(feature = "web")]
pub mod web;

pub use control::{
    Command, ControlError, ControlLimits, Controller, Expression, Journal, Message, MoodTarget,
    Notice, ParticipantId, Refusal, Status, Timing, VoiceSelector,
};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use engine::Engine;
pub use patch::Patch;
pub use performance::Performance;

/// `Engine` and `Controller` cross threads.
const _: () = {
    const fn assert_send<T: Send>() {}
    const fn assert_sync<T: Sync>() {}
    assert_send::<Engine>();
    assert_sync::<Engine>();
    assert_send::<Controller>();
    assert_sync::<Status>();
};
