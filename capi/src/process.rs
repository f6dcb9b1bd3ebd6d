//! The audio thread's calls: interleaved and planar stereo of any length.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::slice;
use std::sync::atomic::Ordering;

use tapestry::engine::MAX_BLOCK_FRAMES;

use crate::handle::{AudioSide, TapestryEngine, PLANAR_CHUNK_FRAMES};
use crate::TapestryResult;

/// Runs `render` on the engine's audio side with a panic caught, publishes the engine's load
/// afterwards; a caught panic (never expected: the engine's `process` does not panic) marks
/// the engine broken. On any failure the output is left for the caller to silence.
fn run(engine: &TapestryEngine, render: impl FnOnce(&mut AudioSide)) -> TapestryResult {
    if engine.broken.load(Ordering::Relaxed) {
        return TapestryResult::InternalError;
    }
    let done = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: only `process` reaches the audio side, and the API's contract allows one
        // `process` call at a time per engine.
        let audio = unsafe { &mut *engine.audio.get() };
        render(audio);
        publish(engine, audio);
    }));
    match done {
        Ok(()) => TapestryResult::Ok,
        Err(_) => {
            engine.broken.store(true, Ordering::Relaxed);
            TapestryResult::InternalError
        }
    }
}

/// Publishes what only the engine knows (lock-free, no allocation) for `tapestry_status`.
fn publish(engine: &TapestryEngine, audio: &AudioSide) {
    let p = &engine.published;
    let (lanes, chunks) = audio.engine.voice_load();
    let (voices, starved) = audio.engine.instrument_load();
    p.voice_lanes.store(lanes as u32, Ordering::Relaxed);
    p.voice_chunks.store(chunks as u32, Ordering::Relaxed);
    p.instrument_voices.store(voices as u32, Ordering::Relaxed);
    p.instrument_starved.store(starved, Ordering::Relaxed);
    let bpm = audio.engine.tempo_bpm() as f32;
    p.tempo_bpm.store(bpm.to_bits(), Ordering::Relaxed);
}

/// Renders interleaved stereo (left, right, left, right, ...) into `out`, `frames` frames,
/// any number (0 only applies pending messages; `out` may then be NULL). Long buffers are
/// rendered in blocks of the engine's; the output does not depend on how a performance is
/// cut into calls (bit for bit).
///
/// Thread: the audio thread, one call at a time per engine (never two at once). Real-time
/// safe: never allocates, frees, locks, blocks, waits on another thread or does I/O.
/// On an error the buffer is filled with silence.
///
/// # Safety
/// `engine` is NULL or live; `out` is NULL or writable for `2 * frames` floats.
#[no_mangle]
pub unsafe extern "C" fn tapestry_process_interleaved(
    engine: *mut TapestryEngine,
    out: *mut f32,
    frames: usize,
) -> TapestryResult {
    let Some(len) = frames
        .checked_mul(2)
        .filter(|&l| l <= isize::MAX as usize / 4)
    else {
        return TapestryResult::InvalidArgument;
    };
    if out.is_null() && frames > 0 {
        return TapestryResult::NullArgument;
    }
    let out: &mut [f32] = if frames == 0 {
        &mut []
    } else {
        // SAFETY: non-null and writable for `len` floats by the caller's contract.
        unsafe { slice::from_raw_parts_mut(out, len) }
    };
    // SAFETY: NULL or live by the caller's contract; only `run` reaches the audio side.
    let Some(engine) = (unsafe { engine.as_ref() }) else {
        out.fill(0.0);
        return TapestryResult::NullArgument;
    };
    let result = run(engine, |audio| {
        if out.is_empty() {
            audio.engine.process(&mut []);
        }
        for block in out.chunks_mut(2 * MAX_BLOCK_FRAMES) {
            audio.engine.process(block);
        }
    });
    if result != TapestryResult::Ok {
        out.fill(0.0);
    }
    result
}

/// Renders planar stereo: `frames` frames into `left` and `right`, two separate buffers.
/// Otherwise as `tapestry_process_interleaved` (same output, bit for bit); the engine
/// renders through an interleaved scratch buffer allocated at creation.
///
/// Thread: the audio thread, one call at a time per engine. Real-time safe.
///
/// # Safety
/// `engine` is NULL or live; `left` and `right` are NULL or each writable for `frames`
/// floats, and do not overlap (overlap is refused with `TAPESTRY_RESULT_INVALID_ARGUMENT`).
#[no_mangle]
pub unsafe extern "C" fn tapestry_process_planar(
    engine: *mut TapestryEngine,
    left: *mut f32,
    right: *mut f32,
    frames: usize,
) -> TapestryResult {
    if frames > isize::MAX as usize / 4 {
        return TapestryResult::InvalidArgument;
    }
    if frames > 0 && (left.is_null() || right.is_null()) {
        return TapestryResult::NullArgument;
    }
    let (l_start, r_start) = (left as usize, right as usize);
    let bytes = 4 * frames;
    if frames > 0
        && l_start < r_start.saturating_add(bytes)
        && r_start < l_start.saturating_add(bytes)
    {
        return TapestryResult::InvalidArgument;
    }
    let (left, right): (&mut [f32], &mut [f32]) = if frames == 0 {
        (&mut [], &mut [])
    } else {
        // SAFETY: non-null, writable for `frames` floats each and disjoint (checked above).
        unsafe {
            (
                slice::from_raw_parts_mut(left, frames),
                slice::from_raw_parts_mut(right, frames),
            )
        }
    };
    // SAFETY: NULL or live by the caller's contract.
    let Some(engine) = (unsafe { engine.as_ref() }) else {
        left.fill(0.0);
        right.fill(0.0);
        return TapestryResult::NullArgument;
    };
    let result = run(engine, |audio| render_planar(audio, left, right));
    if result != TapestryResult::Ok {
        left.fill(0.0);
        right.fill(0.0);
    }
    result
}

fn render_planar(audio: &mut AudioSide, left: &mut [f32], right: &mut [f32]) {
    if left.is_empty() {
        audio.engine.process(&mut []);
    }
    let chunks = left
        .chunks_mut(PLANAR_CHUNK_FRAMES)
        .zip(right.chunks_mut(PLANAR_CHUNK_FRAMES));
    for (l, r) in chunks {
        let scratch = &mut audio.planar[..2 * l.len()];
        audio.engine.process(scratch);
        for ((frame, xl), xr) in scratch.chunks_exact(2).zip(l.iter_mut()).zip(r.iter_mut()) {
            (*xl, *xr) = (frame[0], frame[1]);
        }
    }
}
