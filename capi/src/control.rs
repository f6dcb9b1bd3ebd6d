//! The controller's calls: join, leave, mood, notes, expression, cue and tempo, each checked
//! here and posted into the engine's ring, to take effect now or at a sample.

use tapestry::control::MAX_BEND_SEMITONES;
use tapestry::engine::{MAX_TEMPO_BPM, MIN_TEMPO_BPM};
use tapestry::performance::MAX_RAMP_SECS;
use tapestry::{Command, ControlError, Expression, Message, MoodTarget, Timing};

use crate::handle::{engine_ref, TapestryEngine};
use crate::{guarded, TapestryResult};

/// `at_sample` meaning "at the start of the next processed block".
pub const TAPESTRY_NOW: u64 = u64::MAX;

/// `archetype` of `tapestry_join` meaning "let the engine balance roles and registers".
pub const TAPESTRY_ANY_ARCHETYPE: i32 = -1;

/// Whose mood `tapestry_mood` sets (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapestryMoodTarget {
    /// One participant's personal mood (`participant` says whose).
    Participant = 0,
    /// The conductor: overrides the crowd's aggregate for that dimension until released.
    Communal = 1,
    /// The room's own sound, as an analysis hears it (blended with the patch's weight).
    Room = 2,
}

/// Which expressive control `tapestry_expression` moves (pass as `uint32_t`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapestryExpression {
    /// Pitch bend in semitones, -24 to 24 (0 at rest).
    Bend = 0,
    /// Vibrato depth 0 to 1.
    Vibrato = 1,
    /// Extra filter brightness 0 to 1.
    Brightness = 2,
}

type Checked = Result<Command, TapestryResult>;

/// Checks a call's arguments into a command and posts it.
///
/// # Safety
/// `engine` is NULL or live.
unsafe fn post(
    engine: *const TapestryEngine,
    at_sample: u64,
    command: impl FnOnce(&TapestryEngine) -> Checked,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine_ref(engine) } {
            Ok(engine) => engine,
            Err(e) => return e,
        };
        let command = match command(engine) {
            Ok(command) => command,
            Err(e) => return e,
        };
        let at = match at_sample {
            TAPESTRY_NOW => Timing::Immediate,
            sample => Timing::At(sample),
        };
        match engine.controller.send(Message { at, command }) {
            Ok(()) => TapestryResult::Ok,
            Err(ControlError::QueueFull) => TapestryResult::QueueFull,
            // the engine lives as long as its handle: never expected
            Err(ControlError::Disconnected) => TapestryResult::InternalError,
        }
    })
}

fn check(valid: bool) -> Result<(), TapestryResult> {
    valid.then_some(()).ok_or(TapestryResult::InvalidArgument)
}

fn dimension_index(engine: &TapestryEngine, id: u32) -> Result<u8, TapestryResult> {
    check((id as usize) < engine.labels.dims.len())?;
    u8::try_from(id).map_err(|_| TapestryResult::InvalidArgument)
}

fn midi_pitch(pitch: u32) -> Result<u8, TapestryResult> {
    check(pitch <= 127)?;
    Ok(pitch as u8)
}

/// A participant joins, with archetype id `archetype` (from `tapestry_archetype_id`) or
/// `TAPESTRY_ANY_ARCHETYPE` to let the engine balance the ensemble. `at_sample` is
/// `TAPESTRY_NOW` or an absolute sample of the engine's timeline (see `tapestry_status`'s
/// `sample_position`); earlier samples apply at once, samples more than 10 s ahead are
/// refused by the engine. A join the engine refuses (full, id already present) is counted
/// in the status's refusals.
///
/// Thread: any, concurrently with process; never makes the audio thread wait.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_join(
    engine: *const TapestryEngine,
    participant: u32,
    archetype: i32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |e: &TapestryEngine| -> Checked {
        let archetype = match archetype {
            TAPESTRY_ANY_ARCHETYPE => None,
            a => {
                check(a >= 0 && (a as usize) < e.labels.archetypes.len())?;
                Some(a as u16)
            }
        };
        Ok(Command::Join {
            participant,
            archetype,
        })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// A participant leaves; its voice fades out.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_leave(
    engine: *const TapestryEngine,
    participant: u32,
    at_sample: u64,
) -> TapestryResult {
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, |_| Ok(Command::Leave { participant })) }
}

/// Sets (or ramps over `ramp_secs`, 0 to 3600) mood dimension `dimension` (an id from
/// `tapestry_dimension_id`) to `value` (finite, in the dimension's units) for `target`, a
/// `TapestryMoodTarget`; `participant` says whose for `TAPESTRY_MOOD_TARGET_PARTICIPANT`
/// and is ignored otherwise.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_mood(
    engine: *const TapestryEngine,
    target: u32,
    participant: u32,
    dimension: u32,
    value: f32,
    ramp_secs: f32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |e: &TapestryEngine| -> Checked {
        let target = match target {
            0 => MoodTarget::Participant(participant),
            1 => MoodTarget::Communal,
            2 => MoodTarget::Room,
            _ => return Err(TapestryResult::InvalidArgument),
        };
        let dim = dimension_index(e, dimension)?;
        check(value.is_finite())?;
        check((0.0..=MAX_RAMP_SECS).contains(&f64::from(ramp_secs)))?;
        Ok(Command::Mood {
            target,
            dim,
            value,
            ramp_secs,
        })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// Releases the conductor's override of mood dimension `dimension`, so the crowd's
/// aggregate drives it again.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_release_mood(
    engine: *const TapestryEngine,
    dimension: u32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |e: &TapestryEngine| -> Checked {
        let dim = dimension_index(e, dimension)?;
        Ok(Command::ReleaseCommunal { dim })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// A participant plays a note: MIDI `pitch` 0 to 127, `velocity` 1 to 127.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_note_on(
    engine: *const TapestryEngine,
    participant: u32,
    pitch: u32,
    velocity: u32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |_: &TapestryEngine| -> Checked {
        let pitch = midi_pitch(pitch)?;
        check((1..=127).contains(&velocity))?;
        Ok(Command::NoteOn {
            participant,
            pitch,
            velocity: velocity as u8,
        })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// A participant's note ends: MIDI `pitch` 0 to 127, as sent with its note-on.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_note_off(
    engine: *const TapestryEngine,
    participant: u32,
    pitch: u32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |_: &TapestryEngine| -> Checked {
        let pitch = midi_pitch(pitch)?;
        Ok(Command::NoteOff { participant, pitch })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// Moves an expressive control of a participant: `kind` a `TapestryExpression`, `value` in
/// its range (bend -24 to 24 semitones, vibrato and brightness 0 to 1). The engine smooths
/// every change and applies it to all the participant's sounding notes.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_expression(
    engine: *const TapestryEngine,
    participant: u32,
    kind: u32,
    value: f32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |_: &TapestryEngine| -> Checked {
        let kind = match kind {
            0 => Expression::PitchBend,
            1 => Expression::Vibrato,
            2 => Expression::Brightness,
            _ => return Err(TapestryResult::InvalidArgument),
        };
        let (low, high) = kind.range();
        check((low..=high).contains(&value))?;
        Ok(Command::Expression {
            participant,
            kind,
            value,
        })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// Moves the score to section `section` (an id from `tapestry_section_id`) at the next bar
/// line after `at_sample`.
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_cue(
    engine: *const TapestryEngine,
    section: u32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |e: &TapestryEngine| -> Checked {
        check((section as usize) < e.labels.sections.len())?;
        Ok(Command::Cue {
            section: section as u16,
        })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// Sets the score's tempo, 20 to 400 beats per minute, from `at_sample` on (the beat stays
/// continuous).
///
/// Thread: any, concurrently with process.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_tempo(
    engine: *const TapestryEngine,
    bpm: f32,
    at_sample: u64,
) -> TapestryResult {
    let checked = |_: &TapestryEngine| -> Checked {
        check((MIN_TEMPO_BPM..=MAX_TEMPO_BPM).contains(&bpm))?;
        Ok(Command::Tempo { bpm })
    };
    // SAFETY: the caller's contract.
    unsafe { post(engine, at_sample, checked) }
}

/// The expression ranges the header states are the engine's.
const _: () = assert!(MAX_BEND_SEMITONES == 24.0);
