//! Status reads: what the engine publishes after every processed block, lock-free.

use std::sync::atomic::Ordering;

use tapestry::{Refusal, Status};

use crate::handle::{engine_ref, TapestryEngine};
use crate::{guarded, TapestryResult};

/// Number of refusal reasons, the length of `TapestryStatus::refused_by_reason`.
pub const TAPESTRY_REFUSAL_REASONS: usize = 6;

const _: () = assert!(TAPESTRY_REFUSAL_REASONS == Refusal::ALL.len());

/// Why the engine refused a message: the indices of `TapestryStatus::refused_by_reason`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapestryRefusal {
    /// The patch's participant capacity is reached.
    CapacityReached = 0,
    /// A participant with that id is already present.
    AlreadyPresent = 1,
    /// No participant with that id.
    UnknownParticipant = 2,
    /// An index or value out of the patch's range.
    OutOfRange = 3,
    /// The sender's share of the engine's schedule of future messages is full.
    ScheduleFull = 4,
    /// Stamped further ahead than the engine schedules (10 s).
    TooFarAhead = 5,
}

const _: () = {
    assert!(TapestryRefusal::CapacityReached as usize == Refusal::CapacityReached as usize);
    assert!(TapestryRefusal::AlreadyPresent as usize == Refusal::AlreadyPresent as usize);
    assert!(TapestryRefusal::UnknownParticipant as usize == Refusal::UnknownParticipant as usize);
    assert!(TapestryRefusal::OutOfRange as usize == Refusal::OutOfRange as usize);
    assert!(TapestryRefusal::ScheduleFull as usize == Refusal::ScheduleFull as usize);
    assert!(TapestryRefusal::TooFarAhead as usize == Refusal::TooFarAhead as usize);
};

/// A snapshot of the engine's live figures, as of its last processed block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TapestryStatus {
    /// Absolute sample position of the next sample the engine produces.
    pub sample_position: u64,
    /// Current bar, from 0.
    pub bar: u64,
    /// Current section id (`tapestry_section_name` names it).
    pub section: u32,
    /// Participants present.
    pub participants: u32,
    /// Voice lanes sounding (the engine's load).
    pub voice_lanes: u32,
    /// Eight-lane voice chunks being computed (the work per sample).
    pub voice_chunks: u32,
    /// Designed-instrument voices sounding.
    pub instrument_voices: u32,
    /// Designed-instrument notes that found every voice busy (they stayed silent).
    pub instrument_starved: u64,
    /// Messages the engine refused, in all.
    pub refused_messages: u64,
    /// The same by reason, indexed by `TapestryRefusal`.
    pub refused_by_reason: [u64; TAPESTRY_REFUSAL_REASONS],
    /// Messages dropped because the engine's ring was full (`TAPESTRY_RESULT_QUEUE_FULL`).
    pub dropped_messages: u64,
    /// The score's tempo, beats per minute.
    pub tempo_bpm: f32,
    /// Peak level of the last block, left, linear.
    pub peak_left: f32,
    /// Peak level of the last block, right, linear.
    pub peak_right: f32,
    /// Momentary loudness of the output (BS.1770, 400 ms), LUFS.
    pub momentary_lufs: f32,
}

impl TapestryStatus {
    fn read(engine: &TapestryEngine) -> TapestryStatus {
        let s: &Status = engine.controller.status();
        let p = &engine.published;
        let load = |cell: &std::sync::atomic::AtomicU64| cell.load(Ordering::Relaxed);
        let (peak_left, peak_right) = s.peaks();
        TapestryStatus {
            sample_position: load(&s.sample_position),
            bar: load(&s.bar),
            section: s.section.load(Ordering::Relaxed),
            participants: s.participants.load(Ordering::Relaxed),
            voice_lanes: p.voice_lanes.load(Ordering::Relaxed),
            voice_chunks: p.voice_chunks.load(Ordering::Relaxed),
            instrument_voices: p.instrument_voices.load(Ordering::Relaxed),
            instrument_starved: load(&p.instrument_starved),
            refused_messages: load(&s.refused_messages),
            refused_by_reason: s.refused_by_reason.each_ref().map(load),
            dropped_messages: load(&s.dropped_messages),
            tempo_bpm: Status::load_f32(&p.tempo_bpm),
            peak_left,
            peak_right,
            momentary_lufs: Status::load_f32(&s.momentary_lufs),
        }
    }
}

/// Fills `*status_out` with the engine's live figures (as of its last processed block).
///
/// Thread: any, any time, concurrently with process; lock-free (each figure is read
/// atomically, the snapshot as a whole is not one instant).
///
/// # Safety
/// `engine` is NULL or live; `status_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tapestry_status(
    engine: *const TapestryEngine,
    status_out: *mut TapestryStatus,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine_ref(engine) } {
            Ok(engine) => engine,
            Err(e) => return e,
        };
        if status_out.is_null() {
            return TapestryResult::NullArgument;
        }
        // SAFETY: non-null and writable by the caller's contract.
        unsafe { status_out.write(TapestryStatus::read(engine)) };
        TapestryResult::Ok
    })
}

/// The communal mood of dimension `dimension` (as the engine smooths it) in `*value_out`.
///
/// Thread: any, any time; lock-free.
///
/// # Safety
/// `engine` is NULL or live; `value_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tapestry_mood_value(
    engine: *const TapestryEngine,
    dimension: u32,
    value_out: *mut f32,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine_ref(engine) } {
            Ok(engine) => engine,
            Err(e) => return e,
        };
        if value_out.is_null() {
            return TapestryResult::NullArgument;
        }
        if dimension as usize >= engine.labels.dims.len() {
            return TapestryResult::InvalidArgument;
        }
        let value = engine.controller.status().mood(dimension as usize);
        // SAFETY: non-null and writable by the caller's contract.
        unsafe { value_out.write(value) };
        TapestryResult::Ok
    })
}
