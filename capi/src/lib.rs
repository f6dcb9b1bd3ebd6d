//! # Tapestry from C
//!
//! A C API over [`tapestry::Engine`] and its [`tapestry::Controller`]: one opaque
//! `TapestryEngine*` per engine, created from a patch file or patch text, processed from the
//! audio thread, driven and read from any other. Only C types cross the boundary (opaque
//! pointers, integers, floats, NUL-terminated UTF-8 strings and plain structs); every call
//! checks its pointers and arguments and returns a [`TapestryResult`], and no panic ever
//! crosses it. The header, `include/tapestry.h`, is generated from this crate by cbindgen
//! (`cargo test -p tapestry-capi` fails when the checked-in one is stale; `TAPESTRY_BLESS=1`
//! rewrites it).
//!
//! ## Threads
//!
//! - create, destroy: any thread, never concurrently with another call on the same engine
//!   (destroy); they allocate and free.
//! - process: the audio thread, one call at a time per engine. Never allocates, frees,
//!   locks, blocks or does I/O.
//! - control (join, leave, mood, notes, expression, cue, tempo): any thread, concurrently
//!   with process; they post into a lock-free ring the audio thread drains and never wait
//!   for it. Several control threads posting at once serialize on a short control-side lock
//!   that the audio thread never takes.
//! - status and name look-ups: any thread, any time, lock-free.

mod control;
mod handle;
mod process;
mod status;

pub use control::*;
pub use handle::*;
pub use process::*;
pub use status::*;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call did. Every function that can fail returns one.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapestryResult {
    /// Done (for a control call: posted; the engine applies it at its sample, or refuses it
    /// then and counts the refusal in the status).
    Ok = 0,
    /// A required pointer was NULL.
    NullArgument = 1,
    /// A value outside its documented range, a string that is not UTF-8, or aliasing
    /// buffers.
    InvalidArgument = 2,
    /// No dimension, archetype or section of the patch has that name.
    UnknownName = 3,
    /// The patch could not be read or is not valid: the error message says where (file,
    /// line, column, key) and what was expected.
    PatchError = 4,
    /// The engine's message ring is full (the audio thread has not caught up): the message
    /// was dropped and counted in `TapestryStatus::dropped_messages`.
    QueueFull = 5,
    /// An internal error was caught at the boundary; the engine outputs silence from now on
    /// and should be destroyed.
    InternalError = 6,
}

/// Runs a call's body, turning a panic into [`TapestryResult::InternalError`] so none
/// unwinds into C.
fn guarded(body: impl FnOnce() -> TapestryResult) -> TapestryResult {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(TapestryResult::InternalError)
}
