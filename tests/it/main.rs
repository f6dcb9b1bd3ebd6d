//! Every offline integration test, gathered in one binary (one link instead of one per file).
//! The live tests on a JACK server are in `tests/live`.

/// Counts allocations inside `assert_no_alloc` scopes (realtime, analysis and expressive tests)
/// and the bytes a measured thread holds (fuzz tests).
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

mod alloc_count;

#[path = "../common/mod.rs"]
mod common;

mod aliasing;
mod analysis;
mod cli;
mod clicks;
mod console;
mod control;
mod expressive;
mod fuzz;
mod handoff;
mod handover;
mod instruments;
mod loudness;
mod malformed;
mod measure_selftest;
mod midi;
mod mood;
mod music;
mod music_selftest;
mod notices;
mod osc;
mod osc_flood;
mod osc_hostile;
mod osc_spoof;
mod patches;
mod realtime;
mod record;
mod render_stream;
mod room;
mod room_calibrate;
mod room_input;
mod room_voices;
mod shipped_midi;
mod timeline;
#[cfg(feature = "web")]
mod web;
