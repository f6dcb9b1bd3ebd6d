//! The C API from the outside: its header is what cbindgen generates, a C program compiled
//! with the system compiler renders what the Rust renderer renders (bit for bit), process
//! never allocates, and bad input gets error codes and messages, never a crash.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count, AllocDisabler};
use tapestry::render::{render, RenderOptions};
use tapestry::{Patch, Performance};
use tapestry_capi::*;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const RATE: u32 = 48_000;

/// The performance render.c plays, as a performance file: through the live master chain
/// from 0 dB (what an engine made with the default options runs), six seconds.
const PERFORMANCE: &str = r#"
version = 1
duration_secs = 6.0
live_leveler_start_db = 0.0
events = [
  { sample = 0, type = "join", participant = 1, archetype = "warp" },
  { sample = 0, type = "join", participant = 2, archetype = "stories" },
  { sample = 0, type = "join", participant = 3 },
  { sample = 0, type = "mood", participant = 0, dimension = "energy", value = 0.8, ramp_secs = 2.0 },
  { sample = 24000, type = "mood", participant = 2, dimension = "tension", value = 0.7, ramp_secs = 0.5 },
  { sample = 48000, type = "note_on", participant = 1, pitch = 67, velocity = 100 },
  { sample = 60000, type = "vibrato", participant = 1, value = 0.6 },
  { sample = 72000, type = "bend", participant = 1, value = 2.0 },
  { sample = 96000, type = "note_off", participant = 1, pitch = 67 },
  { sample = 100000, type = "tempo", bpm = 110.0 },
  { sample = 120000, type = "leave", participant = 3 },
  { sample = 144000, type = "cue", section = "weave" },
  { sample = 192000, type = "join", participant = 4, archetype = "chorus" },
  { sample = 192000, type = "mood", participant = 0, dimension = "brightness", value = 0.9, ramp_secs = 1.0 },
]
"#;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn patch_path() -> PathBuf {
    crate_dir().join("../patches/kaleidoscope-nights.toml")
}

#[test]
fn the_checked_in_header_is_what_cbindgen_generates() {
    let config = cbindgen::Config::from_file(crate_dir().join("cbindgen.toml")).unwrap();
    // each file of src/ (cbindgen reads single sources without following `mod`), in order
    let mut sources: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("src"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    sources.sort();
    let bindings = sources
        .iter()
        .fold(cbindgen::Builder::new().with_config(config), |b, src| {
            b.with_src(src)
        })
        .generate()
        .expect("cbindgen reads the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header = crate_dir().join("include/tapestry.h");
    if std::env::var_os("TAPESTRY_BLESS").is_some() {
        std::fs::write(&header, &generated).unwrap();
    }
    let checked_in = std::fs::read(&header).unwrap_or_default();
    assert!(
        checked_in == generated,
        "capi/include/tapestry.h differs from what cbindgen generates: \
         TAPESTRY_BLESS=1 cargo test -p tapestry-capi --test capi header"
    );
    let text = String::from_utf8(generated).unwrap();
    for function in [
        "tapestry_process_planar",
        "tapestry_tempo",
        "tapestry_status",
    ] {
        assert!(
            text.contains(function),
            "{function} missing from the header"
        );
    }
}

/// The directory the library was built into (beside this test's `deps/`).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let found = [deps.parent().unwrap(), deps]
        .into_iter()
        .find(|d| d.join("libtapestry_capi.so").exists())
        .expect("libtapestry_capi.so built beside the tests")
        .to_path_buf();
    found
}

/// Builds render.c with the system C compiler (`CC`, else `cc`) against the shared library.
fn build_c_program(out_dir: &Path) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut words = cc.split_whitespace();
    let mut command = Command::new(words.next().expect("a compiler"));
    command.args(words);
    let lib = library_dir();
    let exe = out_dir.join("render");
    command
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/render.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-ltapestry_capi", "-lm"]);
    let output = command.output().expect("the C compiler runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn rust_render() -> Vec<f32> {
    let patch = Patch::load(&patch_path()).unwrap();
    let performance =
        Performance::parse(Path::new("c-program.toml"), PERFORMANCE, &patch, RATE).unwrap();
    let options = RenderOptions {
        sample_rate: RATE,
        ..RenderOptions::default()
    };
    render(&patch, &performance, &options, |_, _| {})
}

#[test]
fn a_c_program_renders_what_the_rust_renderer_renders_bit_for_bit() {
    let dir = tempfile_dir();
    let exe = build_c_program(&dir);
    let raw = dir.join("c.raw");
    let output = Command::new(&exe)
        .arg(patch_path())
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "render.c failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&raw).unwrap();
    let from_c: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    let from_rust = rust_render();
    assert_eq!(from_c.len(), 2 * 6 * RATE as usize);
    assert_eq!(from_c.len(), from_rust.len());
    assert!(from_c.iter().all(|x| x.is_finite()));
    let rms =
        (from_c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / from_c.len() as f64).sqrt();
    assert!(rms > 0.01, "the C render is silent: rms {rms}");
    let first_difference = from_c
        .iter()
        .zip(&from_rust)
        .position(|(c, r)| c.to_bits() != r.to_bits());
    assert_eq!(
        first_difference, None,
        "C and Rust renders differ (first at sample {first_difference:?})"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A fresh directory under the target's temporary folder.
fn tempfile_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("capi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An engine made through the C API (off the audio thread: this allocates).
fn create(path: &Path) -> *mut TapestryEngine {
    let path = CString::new(path.to_str().unwrap()).unwrap();
    let mut engine = ptr::null_mut();
    let mut error = ptr::null_mut();
    let options = tapestry_options_default();
    // SAFETY: valid strings and out-pointers.
    let result = unsafe {
        tapestry_engine_create_from_path(path.as_ptr(), &options, &mut engine, &mut error)
    };
    assert_eq!(result, TapestryResult::Ok);
    assert!(error.is_null());
    engine
}

fn id(
    engine: *mut TapestryEngine,
    lookup: unsafe extern "C" fn(*const TapestryEngine, *const c_char, *mut u32) -> TapestryResult,
    name: &str,
) -> u32 {
    let name = CString::new(name).unwrap();
    let mut id = 0;
    // SAFETY: a live engine, a valid string and out-pointer.
    assert_eq!(
        unsafe { lookup(engine, name.as_ptr(), &mut id) },
        TapestryResult::Ok
    );
    id
}

/// Where a second thread posts while the audio thread processes: the engine's address.
struct Shared(*const TapestryEngine);
// SAFETY: the C API allows control calls from any thread on a live engine.
unsafe impl Send for Shared {}

#[test]
fn process_never_allocates_with_a_control_thread_posting() {
    let engine = create(&patch_path());
    let energy = id(engine, tapestry_dimension_id, "energy");
    let weave = id(engine, tapestry_section_id, "weave");
    for p in 1..=12 {
        // SAFETY: a live engine.
        assert_eq!(
            unsafe { tapestry_join(engine, p, TAPESTRY_ANY_ARCHETYPE, TAPESTRY_NOW) },
            TapestryResult::Ok
        );
    }
    let stop = AtomicBool::new(false);
    let shared = Shared(engine);
    let mut interleaved = vec![0.0f32; 2 * 700];
    let (mut left, mut right) = (vec![0.0f32; 333], vec![0.0f32; 333]);
    reset_violation_count();
    thread::scope(|s| {
        s.spawn(|| {
            let engine = { shared }.0;
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                // SAFETY: a live engine; control calls from any thread.
                unsafe {
                    tapestry_mood(
                        engine,
                        1,
                        0,
                        energy,
                        (k % 10) as f32 / 10.0,
                        0.1,
                        TAPESTRY_NOW,
                    );
                    tapestry_note_on(engine, 1 + k % 12, 48 + k % 24, 90, TAPESTRY_NOW);
                    tapestry_expression(engine, 1 + k % 12, 1, 0.5, TAPESTRY_NOW);
                    tapestry_note_off(engine, 1 + k % 12, 48 + k % 24, TAPESTRY_NOW);
                    if k.is_multiple_of(50) {
                        tapestry_cue(engine, weave, TAPESTRY_NOW);
                        tapestry_tempo(engine, 90.0 + (k % 40) as f32, TAPESTRY_NOW);
                    }
                }
                thread::yield_now();
            }
        });
        for _ in 0..300 {
            // SAFETY: a live engine; buffers of the lengths given.
            assert_no_alloc(|| unsafe {
                tapestry_process_interleaved(engine, interleaved.as_mut_ptr(), 700);
                tapestry_process_planar(engine, left.as_mut_ptr(), right.as_mut_ptr(), 333);
            });
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(violation_count(), 0, "process allocated or freed memory");
    let mut status = TapestryStatus::default();
    // SAFETY: a live engine and a writable status.
    assert_eq!(
        unsafe { tapestry_status(engine, &mut status) },
        TapestryResult::Ok
    );
    assert_eq!(status.participants, 12);
    assert!(status.voice_lanes > 0);
    // SAFETY: created above, destroyed once.
    unsafe { tapestry_engine_destroy(engine) };
}

#[test]
fn the_allocation_detector_catches_an_allocation() {
    reset_violation_count();
    assert_no_alloc(|| drop(std::hint::black_box(vec![0u8; 64])));
    assert!(violation_count() > 0);
    reset_violation_count();
}

/// Creates from text; returns the result and the message.
fn create_from_text(text: &str, options: Option<TapestryOptions>) -> (TapestryResult, String) {
    let text = CString::new(text).unwrap();
    let name = CString::new("piece.toml").unwrap();
    let mut engine = ptr::null_mut();
    let mut error = ptr::null_mut();
    let options_ptr = options.as_ref().map_or(ptr::null(), |o| o as *const _);
    // SAFETY: valid strings, options and out-pointers.
    let result = unsafe {
        tapestry_engine_create_from_text(
            text.as_ptr(),
            name.as_ptr(),
            options_ptr,
            &mut engine,
            &mut error,
        )
    };
    let message = if error.is_null() {
        String::new()
    } else {
        // SAFETY: a string from the library, freed once right after.
        let m = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        unsafe { tapestry_string_free(error) };
        m
    };
    // SAFETY: NULL or created just above.
    unsafe { tapestry_engine_destroy(engine) };
    (result, message)
}

#[test]
fn bad_patches_and_options_are_refused_with_where_and_what() {
    let patch = std::fs::read_to_string(patch_path()).unwrap();
    assert_eq!(
        create_from_text(&patch, None),
        (TapestryResult::Ok, String::new())
    );

    let broken = patch.replacen("tempo_bpm = 88", "tempo_bpm = \"fast\"", 1);
    let (result, message) = create_from_text(&broken, None);
    assert_eq!(result, TapestryResult::PatchError);
    let line = 1 + patch
        .lines()
        .position(|l| l.starts_with("tempo_bpm"))
        .unwrap();
    assert!(
        message.starts_with(&format!("piece.toml:{line}:13: score.tempo_bpm")),
        "{message}"
    );

    let mut options = tapestry_options_default();
    options.sample_rate = 1_000_000;
    let (result, message) = create_from_text(&patch, Some(options));
    assert_eq!(result, TapestryResult::InvalidArgument);
    assert!(message.contains("sample_rate"), "{message}");

    let missing = CString::new("/no/such/patch.toml").unwrap();
    let mut engine = ptr::null_mut();
    let mut error = ptr::null_mut();
    // SAFETY: valid strings and out-pointers.
    let result = unsafe {
        tapestry_engine_create_from_path(missing.as_ptr(), ptr::null(), &mut engine, &mut error)
    };
    assert_eq!(result, TapestryResult::PatchError);
    assert!(engine.is_null());
    // SAFETY: a message from the library.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    assert!(
        message.contains("/no/such/patch.toml") && message.contains("cannot read"),
        "{message}"
    );
    // SAFETY: freed once.
    unsafe { tapestry_string_free(error) };
}

#[test]
fn null_pointers_and_bad_strings_get_error_codes() {
    let bad_utf8 = [0xffu8 as c_char, 0];
    let mut engine = ptr::null_mut();
    // SAFETY: each call is given NULLs or valid pointers, as the API allows.
    unsafe {
        assert_eq!(
            tapestry_engine_create_from_path(
                ptr::null(),
                ptr::null(),
                &mut engine,
                ptr::null_mut()
            ),
            TapestryResult::NullArgument
        );
        assert_eq!(
            tapestry_engine_create_from_path(
                bad_utf8.as_ptr(),
                ptr::null(),
                &mut engine,
                ptr::null_mut()
            ),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            tapestry_join(ptr::null(), 1, -1, TAPESTRY_NOW),
            TapestryResult::NullArgument
        );
        assert_eq!(
            tapestry_process_planar(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0),
            TapestryResult::NullArgument
        );
        assert_eq!(tapestry_dimension_count(ptr::null()), 0);
        assert!(tapestry_section_name(ptr::null(), 0).is_null());
        tapestry_engine_destroy(ptr::null_mut());
        tapestry_string_free(ptr::null_mut());
    }
    let engine = create(&patch_path());
    let mut id = 0;
    // SAFETY: a live engine; NULLs and bad strings as the API allows.
    unsafe {
        assert_eq!(
            tapestry_archetype_id(engine, bad_utf8.as_ptr(), &mut id),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            tapestry_archetype_id(engine, c"warp".as_ptr(), ptr::null_mut()),
            TapestryResult::NullArgument
        );
        assert_eq!(
            tapestry_process_interleaved(engine, ptr::null_mut(), 16),
            TapestryResult::NullArgument
        );
        assert_eq!(
            tapestry_process_interleaved(engine, ptr::null_mut(), usize::MAX),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            tapestry_expression(engine, 1, 3, 0.5, TAPESTRY_NOW),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            tapestry_expression(engine, 1, 0, 30.0, TAPESTRY_NOW),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            tapestry_mood_value(engine, 99, &mut 0.0),
            TapestryResult::InvalidArgument
        );
        assert_eq!(
            CStr::from_ptr(tapestry_archetype_name(engine, id)).to_str(),
            Ok("warp")
        );
        tapestry_engine_destroy(engine);
    }
}
