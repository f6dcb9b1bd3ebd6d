//! The engine handle: options, creation from a patch path or text, destruction, the error
//! strings and the name look-ups.

use std::cell::UnsafeCell;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tapestry::analysis::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use tapestry::engine::master::MasterChain;
use tapestry::render::MAX_GAIN_DB;
use tapestry::{Controller, Diagnostics, Engine, Patch};

use crate::{guarded, TapestryResult};

/// Frames the planar path renders at a time through its interleaved scratch buffer.
pub(crate) const PLANAR_CHUNK_FRAMES: usize = 512;

/// How an engine is built. Start from `tapestry_options_default()` and change fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TapestryOptions {
    /// Output sample rate in Hz, 8000 to 384000 (default 48000).
    pub sample_rate: u32,
    /// Nonzero: use `seed` instead of the patch's own seed (default 0).
    pub override_seed: u32,
    /// The seed used when `override_seed` is nonzero.
    pub seed: u64,
    /// Gain the live loudness leveler starts from, in dB, -40 to 40 (default 0): a host that
    /// calibrated its patch (as `tapestry play` does) starts on its loudness target at once.
    pub leveler_start_gain_db: f32,
}

impl TapestryOptions {
    fn validate(&self) -> Result<(), String> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(format!(
                "options.sample_rate: expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, found {}",
                self.sample_rate
            ));
        }
        let gain = f64::from(self.leveler_start_gain_db);
        if !(-MAX_GAIN_DB..=MAX_GAIN_DB).contains(&gain) {
            return Err(format!(
                "options.leveler_start_gain_db: expected -{MAX_GAIN_DB} to {MAX_GAIN_DB} dB, found {gain}"
            ));
        }
        Ok(())
    }
}

/// An engine and its controller behind one opaque pointer. The audio side sits in an
/// `UnsafeCell`: only `process` (one thread at a time, by the API's contract) reaches it;
/// every other call touches only the controller, the names and the atomics.
pub struct TapestryEngine {
    pub(crate) audio: UnsafeCell<AudioSide>,
    pub(crate) controller: Controller,
    pub(crate) labels: Labels,
    pub(crate) published: Published,
    /// Set when a panic was caught in `process`: the engine outputs silence from then on.
    pub(crate) broken: AtomicBool,
}

/// What only the audio thread touches.
pub(crate) struct AudioSide {
    pub(crate) engine: Engine,
    /// Interleaved scratch for the planar path, allocated once here.
    pub(crate) planar: Box<[f32]>,
}

/// Figures only the engine knows, published by `process` after every call for other threads.
#[derive(Default)]
pub(crate) struct Published {
    pub(crate) voice_lanes: AtomicU32,
    pub(crate) voice_chunks: AtomicU32,
    pub(crate) instrument_voices: AtomicU32,
    pub(crate) instrument_starved: AtomicU64,
    pub(crate) tempo_bpm: AtomicU32,
}

/// The patch's names as C strings, by index (dimension, archetype, section ids).
pub(crate) struct Labels {
    pub(crate) dims: Vec<CString>,
    pub(crate) archetypes: Vec<CString>,
    pub(crate) sections: Vec<CString>,
}

impl Labels {
    fn new(patch: &Patch) -> Labels {
        // patch names come from TOML strings, which cannot hold NUL; should one ever, it is
        // cut there rather than lost
        let c = |names: &[String]| -> Vec<CString> {
            names
                .iter()
                .map(|n| CString::new(n.split('\0').next().unwrap_or("")).unwrap_or_default())
                .collect()
        };
        Labels {
            dims: c(&patch.dims),
            archetypes: c(&patch.archetypes),
            sections: c(&patch.sections),
        }
    }
}

impl TapestryEngine {
    fn build(patch: &Patch, options: &TapestryOptions) -> TapestryEngine {
        let seed = (options.override_seed != 0).then_some(options.seed);
        let mut cfg = patch.config(options.sample_rate, seed);
        cfg.master.chain = MasterChain::Live {
            start_gain_db: options.leveler_start_gain_db,
        };
        let (engine, controller) = Engine::new(cfg, patch.names());
        let published = Published::default();
        published
            .tempo_bpm
            .store((engine.tempo_bpm() as f32).to_bits(), Ordering::Relaxed);
        TapestryEngine {
            audio: UnsafeCell::new(AudioSide {
                engine,
                planar: vec![0.0; 2 * PLANAR_CHUNK_FRAMES].into_boxed_slice(),
            }),
            controller,
            labels: Labels::new(patch),
            published,
            broken: AtomicBool::new(false),
        }
    }
}

/// The default options: 48000 Hz, the patch's seed, the leveler starting at 0 dB.
///
/// Thread: any.
#[no_mangle]
pub extern "C" fn tapestry_options_default() -> TapestryOptions {
    TapestryOptions {
        sample_rate: 48_000,
        override_seed: 0,
        seed: 0,
        leveler_start_gain_db: 0.0,
    }
}

/// Reads a C string as UTF-8.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that lives as long as the result is used.
pub(crate) unsafe fn utf8<'a>(s: *const c_char) -> Result<&'a str, TapestryResult> {
    if s.is_null() {
        return Err(TapestryResult::NullArgument);
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str().map_err(|_| TapestryResult::InvalidArgument)
}

/// Hands an error message to C (when the caller asked for one).
///
/// # Safety
/// `error_out` is NULL or points to a writable `char*`.
unsafe fn set_error(error_out: *mut *mut c_char, message: &str) {
    if error_out.is_null() {
        return;
    }
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: non-null and writable by the caller's contract.
    unsafe { *error_out = text.into_raw() };
}

/// What a patch's diagnostics say, one per line: `file:line:column: key: message`.
fn describe(diagnostics: &Diagnostics) -> String {
    diagnostics.to_string()
}

/// The shared end of both create functions.
///
/// # Safety
/// As for [`tapestry_engine_create_from_path`].
unsafe fn create(
    patch: impl FnOnce() -> Result<Patch, Diagnostics>,
    options: *const TapestryOptions,
    engine_out: *mut *mut TapestryEngine,
    error_out: *mut *mut c_char,
) -> TapestryResult {
    if !error_out.is_null() {
        // SAFETY: writable by the caller's contract.
        unsafe { *error_out = ptr::null_mut() };
    }
    if engine_out.is_null() {
        return TapestryResult::NullArgument;
    }
    // SAFETY: writable by the caller's contract.
    unsafe { *engine_out = ptr::null_mut() };
    let options = if options.is_null() {
        tapestry_options_default()
    } else {
        // SAFETY: non-null and readable by the caller's contract.
        unsafe { *options }
    };
    if let Err(message) = options.validate() {
        // SAFETY: as above.
        unsafe { set_error(error_out, &message) };
        return TapestryResult::InvalidArgument;
    }
    match patch() {
        Ok(patch) => {
            let engine = Box::new(TapestryEngine::build(&patch, &options));
            // SAFETY: as above.
            unsafe { *engine_out = Box::into_raw(engine) };
            TapestryResult::Ok
        }
        Err(diagnostics) => {
            // SAFETY: as above.
            unsafe { set_error(error_out, &describe(&diagnostics)) };
            TapestryResult::PatchError
        }
    }
}

/// Builds an engine from a patch file.
///
/// `options` may be NULL for the defaults. On success `*engine_out` holds the engine (destroy
/// it with `tapestry_engine_destroy`); on failure it is NULL and, when `error_out` is not
/// NULL, `*error_out` holds a message (free it with `tapestry_string_free`): for a patch,
/// every problem on a line of its own as `file:line:column: key: what was expected`.
///
/// Thread: any thread but the audio thread: it reads the file and allocates.
///
/// # Safety
/// `path` is a NUL-terminated UTF-8 string; `options` is NULL or readable; `engine_out` is
/// writable; `error_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tapestry_engine_create_from_path(
    path: *const c_char,
    options: *const TapestryOptions,
    engine_out: *mut *mut TapestryEngine,
    error_out: *mut *mut c_char,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let path = match unsafe { utf8(path) } {
            Ok(path) => path,
            Err(e) => return e,
        };
        // SAFETY: the caller's contract.
        unsafe {
            create(
                || Patch::load(Path::new(path)),
                options,
                engine_out,
                error_out,
            )
        }
    })
}

/// Builds an engine from patch text (TOML, as in a patch file).
///
/// `name` names the text in error messages (NULL: `<text>`). Otherwise as
/// `tapestry_engine_create_from_path`; errors carry the line and column in the text.
///
/// Thread: any thread but the audio thread: it allocates.
///
/// # Safety
/// `text` is a NUL-terminated UTF-8 string; `name` is NULL or one; `options` is NULL or
/// readable; `engine_out` is writable; `error_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tapestry_engine_create_from_text(
    text: *const c_char,
    name: *const c_char,
    options: *const TapestryOptions,
    engine_out: *mut *mut TapestryEngine,
    error_out: *mut *mut c_char,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let text = match unsafe { utf8(text) } {
            Ok(text) => text,
            Err(e) => return e,
        };
        let name = if name.is_null() {
            "<text>"
        } else {
            // SAFETY: the caller's contract.
            match unsafe { utf8(name) } {
                Ok(name) => name,
                Err(e) => return e,
            }
        };
        let parse = || Patch::parse(Path::new(name), text);
        // SAFETY: the caller's contract.
        unsafe { create(parse, options, engine_out, error_out) }
    })
}

/// Destroys an engine and everything it holds. NULL is ignored.
///
/// Thread: any, once no other call on this engine runs or will run (stop the audio callback
/// first); it frees memory.
///
/// # Safety
/// `engine` is NULL or a pointer from a create function, not destroyed before.
#[no_mangle]
pub unsafe extern "C" fn tapestry_engine_destroy(engine: *mut TapestryEngine) {
    if engine.is_null() {
        return;
    }
    // SAFETY: created by `Box::into_raw` in `create` and not destroyed before.
    let engine = unsafe { Box::from_raw(engine) };
    // a panic while dropping must not cross into C; the memory is then leaked
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(engine)));
}

/// Frees a string this library returned (an error message). NULL is ignored.
///
/// Thread: any.
///
/// # Safety
/// `s` is NULL or a string from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn tapestry_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by `CString::into_raw` in `set_error`.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Which of the patch's name lists a look-up reads.
#[derive(Clone, Copy)]
enum List {
    Dimensions,
    Archetypes,
    Sections,
}

impl Labels {
    fn list(&self, list: List) -> &[CString] {
        match list {
            List::Dimensions => &self.dims,
            List::Archetypes => &self.archetypes,
            List::Sections => &self.sections,
        }
    }
}

/// Borrows an engine for a call that does not process.
///
/// # Safety
/// `engine` is NULL or a live engine from a create function.
pub(crate) unsafe fn engine_ref<'a>(
    engine: *const TapestryEngine,
) -> Result<&'a TapestryEngine, TapestryResult> {
    // SAFETY: NULL or live by the caller's contract; shared access reaches only the
    // controller, the labels and atomics (the audio side is behind an `UnsafeCell`).
    unsafe { engine.as_ref() }.ok_or(TapestryResult::NullArgument)
}

/// # Safety
/// As for [`tapestry_dimension_id`].
unsafe fn find_id(
    engine: *const TapestryEngine,
    list: List,
    name: *const c_char,
    id_out: *mut u32,
) -> TapestryResult {
    guarded(|| {
        // SAFETY: the caller's contract.
        let (engine, name) = match unsafe { (engine_ref(engine), utf8(name)) } {
            (Ok(e), Ok(n)) => (e, n),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        if id_out.is_null() {
            return TapestryResult::NullArgument;
        }
        let names = engine.labels.list(list);
        match names.iter().position(|n| n.to_bytes() == name.as_bytes()) {
            Some(id) => {
                // SAFETY: non-null and writable by the caller's contract.
                unsafe { *id_out = id as u32 };
                TapestryResult::Ok
            }
            None => TapestryResult::UnknownName,
        }
    })
}

/// # Safety
/// `engine` is NULL or live.
unsafe fn count(engine: *const TapestryEngine, list: List) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { engine_ref(engine) }.map_or(0, |e| e.labels.list(list).len() as u32)
}

/// # Safety
/// `engine` is NULL or live.
unsafe fn name(engine: *const TapestryEngine, list: List, id: u32) -> *const c_char {
    // SAFETY: the caller's contract.
    let Ok(engine) = (unsafe { engine_ref(engine) }) else {
        return ptr::null();
    };
    engine
        .labels
        .list(list)
        .get(id as usize)
        .map_or(ptr::null(), |n| n.as_ptr())
}

/// The id of the mood dimension `name` (as in the patch, e.g. "energy") in `*id_out`, for
/// `tapestry_mood`; `TAPESTRY_RESULT_UNKNOWN_NAME` if the patch has none of that name.
///
/// Thread: any, any time (reads tables fixed at creation).
///
/// # Safety
/// `engine` is NULL or live; `name` is NULL or a NUL-terminated string; `id_out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tapestry_dimension_id(
    engine: *const TapestryEngine,
    name: *const c_char,
    id_out: *mut u32,
) -> TapestryResult {
    // SAFETY: the caller's contract.
    unsafe { find_id(engine, List::Dimensions, name, id_out) }
}

/// The id of the archetype `name` (its `id` in the patch) in `*id_out`, for `tapestry_join`.
///
/// Thread: any, any time.
///
/// # Safety
/// As for `tapestry_dimension_id`.
#[no_mangle]
pub unsafe extern "C" fn tapestry_archetype_id(
    engine: *const TapestryEngine,
    name: *const c_char,
    id_out: *mut u32,
) -> TapestryResult {
    // SAFETY: the caller's contract.
    unsafe { find_id(engine, List::Archetypes, name, id_out) }
}

/// The id of the section `name` in `*id_out`, for `tapestry_cue`.
///
/// Thread: any, any time.
///
/// # Safety
/// As for `tapestry_dimension_id`.
#[no_mangle]
pub unsafe extern "C" fn tapestry_section_id(
    engine: *const TapestryEngine,
    name: *const c_char,
    id_out: *mut u32,
) -> TapestryResult {
    // SAFETY: the caller's contract.
    unsafe { find_id(engine, List::Sections, name, id_out) }
}

/// How many mood dimensions the patch has (ids 0 to count - 1); 0 for NULL.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_dimension_count(engine: *const TapestryEngine) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { count(engine, List::Dimensions) }
}

/// How many archetypes the patch has; 0 for NULL.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_archetype_count(engine: *const TapestryEngine) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { count(engine, List::Archetypes) }
}

/// How many sections the patch has; 0 for NULL.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_section_count(engine: *const TapestryEngine) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { count(engine, List::Sections) }
}

/// The name of mood dimension `id`, or NULL if out of range. The string belongs to the
/// engine and lives until it is destroyed.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_dimension_name(
    engine: *const TapestryEngine,
    id: u32,
) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { name(engine, List::Dimensions, id) }
}

/// The name of archetype `id`, or NULL; lives until the engine is destroyed.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_archetype_name(
    engine: *const TapestryEngine,
    id: u32,
) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { name(engine, List::Archetypes, id) }
}

/// The name of section `id` (e.g. the status's current section), or NULL; lives until the
/// engine is destroyed.
///
/// Thread: any, any time.
///
/// # Safety
/// `engine` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tapestry_section_name(
    engine: *const TapestryEngine,
    id: u32,
) -> *const c_char {
    // SAFETY: the caller's contract.
    unsafe { name(engine, List::Sections, id) }
}
