//! Every offline integration test, gathered in one binary (one link instead of one per file).
//! The live tests on a JACK server are in `tests/live`.

/// Counts allocations inside `assert_no_alloc` scopes (realtime, analysis and expressive tests).
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

#[path = "../common/mod.rs"]
mod common;

mod analysis;
mod cli;
mod clicks;
mod control;
mod expressive;
mod malformed;
mod measure_selftest;
mod midi;
mod mood;
mod music;
mod music_selftest;
mod notices;
mod osc;
mod patches;
mod realtime;
mod record;
mod room;
mod room_calibrate;
mod room_input;
mod room_voices;
