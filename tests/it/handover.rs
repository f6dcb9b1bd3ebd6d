//! The hand-over between a participant's played notes and its generated part, measured on
//! rendered audio for every timbre (docs/formats.md, "Played notes and the generated part"):
//! the generated part sounds before the first played note, yields while notes are played
//! (its held notes release, nothing new starts), and is back `resume_bars` after the last
//! played note is released, on its own grid, at its former level and without a click.
//!
//! Played notes are put two octaves above the voice's register, so the generated part is
//! measured alone in its own band (from an octave below the register to an octave above it)
//! while the played notes sound: a saw, pulse, FM or formant voice has no partial below its
//! fundamental.
//!
//! In the shipped pieces each player is rendered alone, every other voice muted, as performed
//! and without their notes: after every rest the two carry the same generated part.

use std::path::Path;

use rustfft::{num_complex::Complex, FftPlanner};

use crate::common::measure::*;
use crate::common::*;
use tapestry::control::{Command, Notice, Timing};
use tapestry::score::midi_to_hz;
use tapestry::{Engine, Patch, Performance};

/// One voice of the probe patch.
struct Voice {
    id: &'static str,
    low: u8,
    high: u8,
    grid_beats: f64,
    /// The archetype's release time (the timbre's default).
    release_secs: f64,
    /// Short attacks whose onsets mark the grid.
    percussive: bool,
    /// Non-sustaining envelope: a played note ends when it has decayed.
    decaying: bool,
}

const VOICES: [Voice; 8] = [
    voice("pad", 52, 67, 4.0, 2.5, false, false),
    voice("pluck", 60, 72, 0.5, 0.3, true, true),
    voice("bell", 67, 79, 1.0, 2.0, true, true),
    voice("drone", 45, 57, 4.0, 5.0, false, false),
    voice("choir", 55, 67, 2.0, 1.8, false, false),
    voice("bass", 36, 48, 1.0, 0.15, true, false),
    voice("wind", 60, 72, 4.0, 2.5, false, false),
    voice("lead", 60, 72, 1.0, 0.5, true, false),
];

const fn voice(
    id: &'static str,
    low: u8,
    high: u8,
    grid_beats: f64,
    release_secs: f64,
    percussive: bool,
    decaying: bool,
) -> Voice {
    Voice {
        id,
        low,
        high,
        grid_beats,
        release_secs,
        percussive,
        decaying,
    }
}

/// 120 BPM in 4/4: a beat is 0.5 s, a bar 2 s; the chords change every bar.
const BEAT_SECS: f64 = 0.5;
/// The generated part alone, before anything is played.
const PLAY_FROM: f64 = 16.0;
/// The last note-off of the played passages.
const PLAY_TO: f64 = 24.0;
/// `resume_bars = 2` (the default) after the last note-off: beat 48 + 8 = 56.
const RESUME: f64 = 28.0;
const END: f64 = 38.0;
/// Whole chord cycles (I IV V vi, one bar each) of generated part before and after.
const BEFORE: (f64, f64) = (6.0, 14.0);
/// How close the generated part's level after the hand-over is to its level before.
const LEVEL_MARGIN_DB: f32 = 3.0;
/// How far below its own level the generated part is while it yields.
const YIELD_DB: f32 = 30.0;
/// Onsets within this of the voice's grid (the detector reports 0–8 ms early; the lead's
/// 40 ms attack peaks later).
const GRID_TOLERANCE_SECS: f64 = 0.03;
/// The progression of the probe's one section, as pitch classes.
const CHORDS: [[u8; 3]; 4] = [[0, 4, 7], [5, 9, 0], [7, 11, 2], [9, 0, 4]];

/// The probe patch with `hold_bars = 2`: no played note sounds longer than two bars.
fn probe_patch() -> Patch {
    probe_patch_with("hold_bars = 2")
}

/// The probe patch with `extra` lines in every archetype.
fn probe_patch_with(extra: &str) -> Patch {
    patch_text(&probe_text(extra))
}

fn probe_text(extra: &str) -> String {
    let mut text = String::from(
        r#"
version = 1
[piece]
name = "hand-over probe"
seed = 11
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "C"
mode = "major"
tempo_bpm = 120
[[score.sections]]
name = "a"
chords = ["I", "IV", "V", "vi"]
[mood.energy]
default = 0.7
[mood.tension]
default = 0.0
[mood.brightness]
default = 0.5
[mood.unity]
default = 1.0
[[mappings]]
from = "energy"
to = "density"
range = [1.0, 1.0]
[[mappings]]
from = "unity"
to = "timing_spread"
range = [0.0, 0.0]
[[mappings]]
from = "tension"
to = "non_chord"
range = [0.0, 0.0]
"#,
    );
    for v in &VOICES {
        text += &format!(
            "[[archetypes]]\nid = \"{}\"\ntimbre = \"{}\"\nregister = [{}, {}]\n\
             grid_beats = {}\nmotif = {{ steps = 8, density = 1.0 }}\n{extra}\n",
            v.id, v.id, v.low, v.high, v.grid_beats
        );
    }
    text
}

#[test]
fn resume_bars_and_hold_bars_are_checked_against_their_limits() {
    let problems = |extra: &str| match Patch::parse(Path::new("probe.toml"), &probe_text(extra)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    let bad = problems("resume_bars = 65\nhold_bars = 0.5");
    for expected in [
        "archetypes[0].resume_bars: expected a number from 0 to 64, found 65",
        "archetypes[0].hold_bars: expected a number from 1 to 256, found 0.5",
        "archetypes[7].hold_bars",
    ] {
        assert!(bad.contains(expected), "{expected:?} not in {bad}");
    }
    assert!(bad.contains("probe.toml:"), "file, line and column: {bad}");
    assert_eq!(
        problems("resume_bars = 0\nhold_bars = 256"),
        "",
        "the limits themselves"
    );
}

fn note_on(pitch: u8) -> Command {
    Command::NoteOn {
        participant: 1,
        pitch,
        velocity: 100,
    }
}

fn note_off(pitch: u8) -> Command {
    Command::NoteOff {
        participant: 1,
        pitch,
    }
}

/// Two octaves above the register, alternating between two pitches.
fn played_pitch(v: &Voice, k: usize) -> u8 {
    v.high + 24 + 2 * (k % 2) as u8
}

/// Sixteen detached notes, one a beat, each 0.4 s long: the last note-off at 23.9 s.
fn detached(v: &Voice, mut s: Script) -> Script {
    for k in 0..16 {
        let t = PLAY_FROM + k as f64 * BEAT_SECS;
        s = s
            .at(t, note_on(played_pitch(v, k)))
            .at(t + 0.4, note_off(played_pitch(v, k)));
    }
    s
}

/// Sixteen legato notes: each note-off at the same sample as the next note-on, in both
/// orders, and a repeated pitch among them; the last note-off at 24.0 s.
fn legato(v: &Voice, mut s: Script) -> Script {
    let pitch = |k: usize| {
        if k == 9 {
            played_pitch(v, 8)
        } else {
            played_pitch(v, k)
        }
    };
    s = s.at(PLAY_FROM, note_on(pitch(0)));
    for k in 1..16 {
        let t = PLAY_FROM + k as f64 * BEAT_SECS;
        s = if k % 2 == 0 {
            s.at(t, note_off(pitch(k - 1))).at(t, note_on(pitch(k)))
        } else {
            s.at(t, note_on(pitch(k))).at(t, note_off(pitch(k - 1)))
        };
    }
    s.at(PLAY_TO, note_off(pitch(15)))
}

/// Four legato notes of a bar each (note-off and note-on at one sample, in both orders), the
/// last note-off at 24.0 s: the played notes sound across chord changes.
fn slow_legato(v: &Voice, mut s: Script) -> Script {
    s = s.at(PLAY_FROM, note_on(played_pitch(v, 0)));
    for k in 1..4 {
        let t = PLAY_FROM + k as f64 * 2.0;
        let (off, on) = (
            note_off(played_pitch(v, k - 1)),
            note_on(played_pitch(v, k)),
        );
        s = if k % 2 == 0 {
            s.at(t, off).at(t, on)
        } else {
            s.at(t, on).at(t, off)
        };
    }
    s.at(PLAY_TO, note_off(played_pitch(v, 3)))
}

fn render_voice(
    patch: &Patch,
    v: &Voice,
    join_at: f64,
    play: impl Fn(Script) -> Script,
) -> Vec<f32> {
    let s = Script::default().join(join_at, 1, Some(archetype(patch, v.id)));
    mono(&render_blocks(patch, &play(s).performance(END), 256, None))
}

fn seg(x: &[f32], from: f64, to: f64) -> &[f32] {
    let a = ((from * SR as f64) as usize).min(x.len());
    let b = ((to * SR as f64) as usize).clamp(a, x.len());
    &x[a..b]
}

/// Power of the part of `x` between `lo_hz` and `hi_hz` in each Hann-windowed 8192-point
/// frame (hop 4096), scaled (Parseval, window power) so a steady sine inside the band
/// measures its own mean square.
fn band_power_frames(x: &[f32], lo_hz: f32, hi_hz: f32) -> Vec<f64> {
    const N: usize = 8192;
    let window: Vec<f32> = (0..N)
        .map(|i| (std::f32::consts::PI * i as f32 / N as f32).sin().powi(2))
        .collect();
    let window_power: f64 = window.iter().map(|w| (w * w) as f64).sum();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(N);
    let bin_hz = SR as f32 / N as f32;
    let first = ((lo_hz / bin_hz).ceil() as usize).max(1);
    let last = ((hi_hz / bin_hz) as usize).min(N / 2 - 1);
    let mut buf = vec![Complex::new(0.0f32, 0.0); N];
    let mut frames = Vec::new();
    let mut start = 0;
    while start + N <= x.len() {
        for (b, (s, w)) in buf.iter_mut().zip(x[start..start + N].iter().zip(&window)) {
            *b = Complex::new(s * w, 0.0);
        }
        fft.process(&mut buf);
        let power: f64 = (first..=last).map(|k| buf[k].norm_sqr() as f64).sum();
        frames.push(2.0 * power / (N as f64 * window_power));
        start += N / 2;
    }
    frames
}

fn power_db(mean_square: f64) -> f32 {
    (10.0 * mean_square.max(1e-20).log10()) as f32
}

/// RMS in dBFS of the part of `x` between `lo_hz` and `hi_hz` (mean over frames, -200 dB
/// for silence or a signal shorter than a frame).
fn band_rms_db(x: &[f32], lo_hz: f32, hi_hz: f32) -> f32 {
    let frames = band_power_frames(x, lo_hz, hi_hz);
    power_db(frames.iter().sum::<f64>() / frames.len().max(1) as f64)
}

/// The loudest frame of that band, in dBFS.
fn band_peak_db(x: &[f32], lo_hz: f32, hi_hz: f32) -> f32 {
    power_db(
        band_power_frames(x, lo_hz, hi_hz)
            .into_iter()
            .fold(0.0, f64::max),
    )
}

/// The generated part's band: from an octave below the register (the bass's sub octave)
/// to an octave above it; played notes start 21 semitones above the register at the lowest.
fn generated_band(v: &Voice) -> (f32, f32) {
    (
        midi_to_hz(v.low as f32 - 14.0),
        midi_to_hz(v.high as f32 + 12.0),
    )
}

#[test]
fn the_band_measure_sees_a_tone_in_its_band_and_nothing_outside() {
    let tone = |hz: f32, amp: f32| -> Vec<f32> {
        (0..SR as usize * 2)
            .map(|i| amp * (std::f32::consts::TAU * hz * i as f32 / SR as f32).sin())
            .collect()
    };
    let a = tone(220.0, 0.5);
    let inside = band_rms_db(&a, 100.0, 400.0);
    assert!(
        (inside - rms_db(&a)).abs() < 0.1,
        "in band {inside:.2} vs {:.2}",
        rms_db(&a)
    );
    assert!(band_rms_db(&a, 800.0, 4000.0) < -100.0, "outside the band");
    // two tones: each band sees only its own
    let mix: Vec<f32> = a
        .iter()
        .zip(tone(2000.0, 0.05))
        .map(|(x, y)| x + y)
        .collect();
    assert!((band_rms_db(&mix, 1500.0, 3000.0) - rms_db(&tone(2000.0, 0.05))).abs() < 0.1);
    assert!((band_rms_db(&mix, 100.0, 400.0) - inside).abs() < 0.1);
    // white noise: a band holds its share of the power
    let mut state = 1u32;
    let noise: Vec<f32> = (0..SR as usize * 2)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect();
    let quarter = band_rms_db(&noise, 0.0, SR as f32 / 8.0);
    assert!(
        (quarter - (rms_db(&noise) - 6.02)).abs() < 0.3,
        "noise quarter {quarter:.2}"
    );
    assert_eq!(band_rms_db(&[0.0; 20_000], 100.0, 400.0), -200.0);
    // one short burst in a silent second: the mean hides it, the peak frame does not
    let mut burst = vec![0.0f32; SR as usize];
    burst[24_000..26_000].copy_from_slice(&a[..2_000]);
    assert!(band_peak_db(&burst, 100.0, 400.0) > band_rms_db(&burst, 100.0, 400.0) + 6.0);
    assert!(band_peak_db(&burst, 100.0, 400.0) > inside - 20.0);
}

/// Onset times in a span of the signal, on the render's timeline.
fn onsets_in(x: &[f32], from: f64, to: f64) -> Vec<f64> {
    onsets(seg(x, from, to), SR as f32)
        .into_iter()
        .map(|t| from + t as f64)
        .filter(|&t| t > from + 0.01)
        .collect()
}

fn off_grid(times: &[f64], grid_secs: f64) -> Vec<f64> {
    times
        .iter()
        .copied()
        .filter(|t| {
            let k = (t / grid_secs).round();
            (t - k * grid_secs).abs() > GRID_TOLERANCE_SECS
        })
        .collect()
}

/// The generated part of `x` sounds before `PLAY_FROM`; from `quiet_from` until the expected
/// resume its band holds nothing but what the played notes alone put there (`played_alone`:
/// the same notes from a participant whose generated part never started: a played attack
/// or a wind's noise skirt reaches the band), not one generated note; after the resume it is
/// back at its former level and (percussive voices) on its grid.
fn assert_generated_returns(
    v: &Voice,
    x: &[f32],
    played_alone: &[f32],
    quiet_from: f64,
    resume: f64,
    label: &str,
) {
    let (lo, hi) = generated_band(v);
    let band = |a: f64, b: f64| band_rms_db(seg(x, a, b), lo, hi);
    let before = band(BEFORE.0, BEFORE.1);
    let quiet = |y: &[f32]| band_peak_db(seg(y, quiet_from, resume - 0.02), lo, hi);
    let (yielding, played_only) = (quiet(x), quiet(played_alone));
    let after_from = resume + 2.0;
    let after = band(after_from, after_from + 8.0);
    let level_before = rms_db(seg(x, BEFORE.0, BEFORE.1));
    let level_after = rms_db(seg(x, after_from, after_from + 8.0));
    println!(
        "{label} {:5}: generated band before {before:6.1} dB, yielding {yielding:6.1} (played \
         notes alone {played_only:6.1}), after {after:6.1}; level {level_before:6.1} → \
         {level_after:6.1} dBFS",
        v.id
    );
    assert!(
        before > -45.0,
        "{label} {}: generated part audible before ({before:.1} dB)",
        v.id
    );
    assert!(
        yielding < (before - YIELD_DB).max(played_only + 1.0),
        "{label} {}: the generated part did not yield ({yielding:.1} dB, played notes alone \
         {played_only:.1}, before {before:.1})",
        v.id
    );
    assert!(
        (after - before).abs() < LEVEL_MARGIN_DB && (level_after - level_before).abs() < LEVEL_MARGIN_DB,
        "{label} {}: generated part back at {after:.1} dB (level {level_after:.1}) vs {before:.1} ({level_before:.1}) before",
        v.id
    );
    if v.percussive {
        let grid = v.grid_beats * BEAT_SECS;
        let back = onsets_in(x, resume - 1.0, resume + 8.0);
        let first = back.first().copied().unwrap_or(f64::INFINITY);
        assert!(
            (resume - GRID_TOLERANCE_SECS..=resume + grid + GRID_TOLERANCE_SECS).contains(&first),
            "{label} {}: first generated onset at {first:.3} s, expected from {resume} s",
            v.id
        );
        // about as many onsets as the detector finds in as long a stretch before any played
        // note (a lead's soft 40 ms attacks over a still-sounding note are not all found,
        // and which are depends on the motif's pitches in each stretch)
        let earlier = onsets_in(x, BEFORE.0 - 1.0, BEFORE.0 + 8.0);
        let strays = off_grid(&back, grid);
        assert!(
            strays.is_empty() && earlier.len() >= 4 && back.len() * 10 >= earlier.len() * 8,
            "{label} {}: {} onsets in 9 s after the resume, {} before; off the grid: {strays:?}",
            v.id,
            back.len(),
            earlier.len()
        );
        assert!(
            off_grid(&earlier, grid).is_empty(),
            "{label} {}: the grid before",
            v.id
        );
    }
}

/// When the generated notes held at the first played note have faded (they release with
/// the voice's release time).
fn yielded_by(v: &Voice) -> f64 {
    PLAY_FROM + (1.5 * v.release_secs).max(1.0)
}

/// The hand-over adds no click to what the played notes themselves make: the jump ratio
/// around the yield and the resume stays within twice the larger of the generated part's
/// steady playing and a render of the same played notes alone (joining with the first of
/// them, with a generated part that never resumes).
fn assert_no_click(v: &Voice, x: &[f32], played_alone: &[f32], resume: f64, label: &str) {
    let steady = max_jump_ratio(seg(x, BEFORE.0, BEFORE.1), 256);
    for (at, what) in [(PLAY_FROM, "yield"), (resume, "resume")] {
        let (a, b) = (at - 0.1, at + 2.0);
        let here = max_jump_ratio(seg(x, a, b), 256);
        let reference = max_jump_ratio(seg(played_alone, a, b), 256).max(steady);
        println!(
            "{label} {:5}: {what} jump ratio {here:.3} (steady {steady:.3}, played alone {:.3})",
            v.id,
            max_jump_ratio(seg(played_alone, a, b), 256)
        );
        assert!(
            here <= (reference * 2.0).max(0.5),
            "{label} {}: {what} jump ratio {here:.3} vs {reference:.3} without a hand-over",
            v.id
        );
    }
}

/// Plays `play` on every timbre and checks the hand-over both ways; `resume` says when the
/// generated part is due back.
fn hand_over(label: &str, play: fn(&Voice, Script) -> Script, resume: fn(&Voice, &[f32]) -> f64) {
    let patch = probe_patch();
    let never_resumes = probe_patch_with("hold_bars = 2\nresume_bars = 64");
    for v in &VOICES {
        let x = render_voice(&patch, v, 0.0, |s| play(v, s));
        let played_alone = render_voice(&never_resumes, v, PLAY_FROM, |s| play(v, s));
        let resume = resume(v, &x);
        assert_generated_returns(v, &x, &played_alone, yielded_by(v), resume, label);
        assert_no_click(v, &x, &played_alone, resume, label);
    }
}

/// Two bars after the last note-off.
fn after_last_note_off(_: &Voice, _: &[f32]) -> f64 {
    RESUME
}

#[test]
fn every_timbre_yields_to_detached_played_notes_and_resumes_two_bars_after() {
    hand_over("detached", detached, after_last_note_off);
}

#[test]
fn every_timbre_yields_to_legato_played_notes_and_resumes_two_bars_after() {
    hand_over("legato", legato, after_last_note_off);
    // a note held for a bar on a pluck has decayed before its note-off: the part is back two
    // bars after whichever comes first, the note-off or the silence
    hand_over("slow legato", slow_legato, |v, x| {
        if v.decaying {
            resume_after(PLAY_TO.min(silent_from(x, PLAY_TO - 2.0 + 0.05)), v)
        } else {
            RESUME
        }
    });
}

/// The first sample from `from` on after which `x` stays below -140 dBFS for 0.1 s.
fn silent_from(x: &[f32], from: f64) -> f64 {
    let quiet = (0.1 * SR as f64) as usize;
    let mut run = 0;
    for (i, s) in x.iter().enumerate().skip((from * SR as f64) as usize) {
        run = if s.abs() < 1e-7 { run + 1 } else { 0 };
        if run == quiet {
            return (i + 1 - quiet) as f64 / SR as f64;
        }
    }
    f64::INFINITY
}

/// The first step of a grid from `rest` beats after `t` on (what docs/formats.md promises).
fn resume_after(t: f64, v: &Voice) -> f64 {
    let grid = v.grid_beats * BEAT_SECS;
    ((t + 8.0 * BEAT_SECS) / grid - 1e-9).ceil() * grid
}

#[test]
fn a_decaying_played_note_without_note_off_frees_its_voice_and_the_part_resumes() {
    let patch = probe_patch_with(""); // the default hold_bars (16) never comes into play
    for v in VOICES.iter().filter(|v| v.decaying) {
        let x = render_voice(&patch, v, 0.0, |s| {
            s.at(PLAY_FROM, note_on(played_pitch(v, 0)))
        });
        // the generated notes released at the note-on, then the played note decayed away
        let silent = silent_from(&x, PLAY_FROM + 0.05);
        let resume = resume_after(silent, v);
        println!(
            "{}: played note decayed to silence at {silent:.3} s, resume at {resume:.2} s",
            v.id
        );
        assert!(
            silent < PLAY_FROM + 6.0,
            "{}: the played note never ended",
            v.id
        );
        assert!(
            x[((silent + 0.1) * SR as f64) as usize..(resume * SR as f64) as usize - 480]
                .iter()
                .all(|s| s.abs() < 1e-7),
            "{}: something sounded before the resume",
            v.id
        );
        let first = onsets_in(&x, silent, resume + 4.0).first().copied();
        assert!(
            first.is_some_and(|t| (t - resume).abs() <= GRID_TOLERANCE_SECS),
            "{}: first generated onset at {first:?}, expected {resume:.3} s",
            v.id
        );
        let level_before = rms_db(seg(&x, BEFORE.0, BEFORE.1));
        let level_after = rms_db(seg(&x, resume + 2.0, resume + 10.0));
        assert!(
            (level_after - level_before).abs() < LEVEL_MARGIN_DB,
            "{}: back at {level_after:.1} dBFS vs {level_before:.1} before",
            v.id
        );
    }
}

#[test]
fn a_sustained_played_note_without_note_off_is_released_after_hold_bars() {
    // hold_bars = 2: the note played at beat 32 releases at beat 40 (20 s); resume_bars = 4
    // brings the generated part back at beat 56 (28 s), after the release has faded
    let patch = probe_patch_with("hold_bars = 2\nresume_bars = 4");
    let never_resumes = probe_patch_with("hold_bars = 2\nresume_bars = 64");
    for v in VOICES.iter().filter(|v| !v.decaying) {
        let pitch = played_pitch(v, 0);
        let x = render_voice(&patch, v, 0.0, |s| s.at(PLAY_FROM, note_on(pitch)));
        let alone = render_voice(&never_resumes, v, PLAY_FROM, |s| {
            s.at(PLAY_FROM, note_on(pitch))
        });
        let played = (
            midi_to_hz(pitch as f32 - 3.0),
            midi_to_hz(pitch as f32 + 3.0),
        );
        let held = band_rms_db(seg(&x, 18.0, 20.0), played.0, played.1);
        let faded = 20.0 + 1.4 * v.release_secs;
        let released = band_peak_db(seg(&x, faded, RESUME - 0.02), played.0, played.1);
        println!(
            "{}: played note held {held:.1} dB, after its release {released:.1} dB",
            v.id
        );
        assert!(
            held > -40.0,
            "{}: the played note sounded ({held:.1} dB)",
            v.id
        );
        assert!(
            released < held - 60.0,
            "{}: the held note was not released",
            v.id
        );
        assert_generated_returns(v, &x, &alone, yielded_by(v), RESUME, "no note-off");
    }
}

#[test]
fn every_sustaining_timbre_resumes_after_more_played_notes_than_it_has_lanes() {
    // twelve notes at once on an eight-lane voice: four steal lanes, and their note-offs
    // find nothing; when the last held note is released the part still comes back
    let patch = probe_patch_with("");
    let never_resumes = probe_patch_with("resume_bars = 64");
    for v in VOICES.iter().filter(|v| !v.decaying) {
        let cluster = |mut s: Script| {
            let top = v.high + 24;
            for p in top..top + 12 {
                s = s.at(PLAY_FROM, note_on(p));
            }
            for p in (top..top + 12).rev() {
                s = s.at(PLAY_TO - 4.0 + (top + 12 - p) as f64 * 0.01, note_off(p));
            }
            s
        };
        let x = render_voice(&patch, v, 0.0, cluster);
        let alone = render_voice(&never_resumes, v, PLAY_FROM, cluster);
        // last note-off at 20.12 s (beat 40.24): back at beat 52 (26 s) on a 4-beat grid
        let resume = resume_after(PLAY_TO - 4.0 + 0.12, v);
        assert_generated_returns(v, &x, &alone, yielded_by(v), resume, "cluster");
    }
}

/// The chroma of the second half of a bar (the last chord's release has faded by then).
fn bar_chroma(x: &[f32], bar: usize) -> [f32; 12] {
    chroma(
        seg(x, bar as f64 * 2.0 + 1.0, bar as f64 * 2.0 + 2.0),
        SR as f32,
    )
}

fn cosine(a: &[f32; 12], b: &[f32; 12]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32; 12]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

/// Bars 3..=6 (before any played note) and 15..=18 (after the played passage and the
/// resume at bar 14) hold the same chord cycle: vi I IV V.
const BARS_BEFORE: [usize; 4] = [3, 4, 5, 6];
const CYCLE_BARS: usize = 12;

#[test]
fn the_generated_pad_sings_the_chord_of_each_bar_before_and_after_a_played_passage() {
    let patch = probe_patch();
    let v = &VOICES[0];
    let x = render_voice(&patch, v, 0.0, |s| slow_legato(v, s));
    for bar in BARS_BEFORE.iter().flat_map(|b| [*b, b + CYCLE_BARS]) {
        let c = bar_chroma(&x, bar);
        let shares: Vec<f32> = CHORDS.iter().map(|ch| pitch_class_share(&c, ch)).collect();
        let heard = (0..4)
            .max_by(|&a, &b| shares[a].total_cmp(&shares[b]))
            .unwrap();
        println!(
            "pad: bar {bar}: chord {heard} holds {:.2} of the chroma",
            shares[heard]
        );
        assert!(
            heard == bar % 4 && shares[heard] > 0.7,
            "pad: bar {bar} sounds like chord {heard} ({:.2}), the score has {}",
            shares[heard],
            bar % 4
        );
    }
}

#[test]
fn generated_sustained_voices_follow_the_chords_again_after_a_played_passage() {
    // the choir's formants and the drone's low register colour the chroma, so each bar after
    // the passage is compared with the bar of the same chord before it; a voice frozen on one
    // chord would sound the same in every bar of the cycle
    let patch = probe_patch();
    for v in VOICES
        .iter()
        .filter(|v| ["pad", "choir", "drone"].contains(&v.id))
    {
        let x = render_voice(&patch, v, 0.0, |s| slow_legato(v, s));
        let after: Vec<[f32; 12]> = BARS_BEFORE
            .iter()
            .map(|b| bar_chroma(&x, b + CYCLE_BARS))
            .collect();
        for (k, bar) in BARS_BEFORE.iter().enumerate() {
            let same = cosine(&bar_chroma(&x, *bar), &after[k]);
            println!(
                "{}: bar {} vs bar {bar} (same chord): {same:.3}",
                v.id,
                bar + CYCLE_BARS
            );
            assert!(
                same > 0.9,
                "{}: bar {} does not sound like bar {bar}",
                v.id,
                bar + CYCLE_BARS
            );
        }
        let least_alike = (0..4)
            .flat_map(|a| (0..4).map(move |b| (a, b)))
            .map(|(a, b)| cosine(&after[a], &after[b]))
            .fold(1.0f32, f32::min);
        println!(
            "{}: least alike bars of the cycle after: {least_alike:.3}",
            v.id
        );
        if v.id == "drone" {
            // the drone's pedal holds the tonic and fifth where the chord has them and yields
            // to the chord's nearest tone where it has not: every bar sounds its own chord
            for (k, bar) in BARS_BEFORE.iter().map(|b| b + CYCLE_BARS).enumerate() {
                let share = pitch_class_share(&after[k], &CHORDS[bar % 4]);
                println!("drone: bar {bar}: its chord holds {share:.2} of the chroma");
                assert!(share > 0.6, "drone: bar {bar}: its chord holds {share:.2}");
            }
        } else {
            assert!(
                least_alike < 0.7,
                "{}: the chord did not move after the passage",
                v.id
            );
        }
    }
}

/// All hand-over cases at once: several participants of every timbre playing detached,
/// legato, clustered and never-released notes.
fn busy_script(patch: &Patch) -> Script {
    let mut s = Script::default();
    for (i, v) in VOICES.iter().enumerate() {
        let id = i as u32 + 1;
        s = s.join(0.0, id, Some(archetype(patch, v.id)));
        let mut played = match i % 3 {
            0 => detached(v, Script::default()),
            1 => legato(v, Script::default()),
            _ => Script::default().at(PLAY_FROM, note_on(played_pitch(v, 0))),
        };
        for c in &mut played.commands {
            match &mut c.command {
                Command::NoteOn { participant, .. } | Command::NoteOff { participant, .. } => {
                    *participant = id
                }
                _ => {}
            }
        }
        s.commands.extend(played.commands);
    }
    s
}

#[test]
fn hand_overs_do_not_depend_on_the_block_size() {
    let patch = probe_patch();
    let perf = busy_script(&patch).performance(32.0);
    let reference = render_blocks(&patch, &perf, 512, None);
    for block in [1usize, 37, 4096] {
        assert!(
            render_blocks(&patch, &perf, block, None) == reference,
            "block size {block} changed the output"
        );
    }
    assert!(rms(&reference) > 1e-3);
}

#[test]
fn hand_overs_never_allocate_in_process() {
    use assert_no_alloc::{assert_no_alloc, violation_count};
    let patch = probe_patch();
    let perf = busy_script(&patch).performance(32.0);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    for c in &perf.commands {
        controller
            .send(tapestry::control::Message {
                at: Timing::At(c.sample),
                command: c.command,
            })
            .unwrap();
    }
    let before = violation_count();
    let mut block = vec![0.0f32; 2 * 256];
    let mut energy = 0.0;
    for _ in 0..perf.duration_frames / 256 {
        assert_no_alloc(|| engine.process(&mut block));
        energy += rms(&block);
    }
    assert_eq!(
        violation_count(),
        before,
        "process allocated during hand-overs"
    );
    assert!(energy > 0.0);
}

// ---------------------------------------------------------------------------------------
// Whole pieces: every participant who plays notes is heard again afterwards
// ---------------------------------------------------------------------------------------

/// Renders a performance with the leveler off (so every voice keeps its own level) and
/// returns the mono mix and the archetype each participant joined with.
fn render_noting_joins(
    cfg: tapestry::engine::config::EngineConfig,
    patch: &Patch,
    perf: &Performance,
) -> (Vec<f32>, Vec<(u32, u16)>) {
    let (mut engine, controller) = Engine::new(cfg, patch.names());
    let mut out = vec![0.0f32; perf.duration_frames as usize * 2];
    let mut joins = Vec::new();
    let mut next = 0;
    for (b, chunk) in out.chunks_mut(1024).enumerate() {
        let end = (b * 512 + chunk.len() / 2) as u64;
        while next < perf.commands.len() && perf.commands[next].sample < end {
            let c = perf.commands[next];
            let message = tapestry::control::Message {
                at: Timing::At(c.sample),
                command: c.command,
            };
            if controller.send(message).is_ok() {
                next += 1;
            } else {
                engine.process(&mut []);
            }
        }
        engine.process(chunk);
        while let Some(notice) = controller.try_notice() {
            if let Notice::Joined {
                participant,
                archetype,
                ..
            } = notice
            {
                joins.push((participant, archetype));
            }
        }
    }
    (mono(&out), joins)
}

/// One participant alone: every event of the performance stays (so the communal mood,
/// sections, chords and every voice's choices are exactly those of the whole piece), but
/// every other voice is muted: all archetypes are turned down by 300 dB, and this
/// participant joins with a copy of its archetype at its own level. Joins name the
/// archetype the engine chose in the whole piece, so nobody's choice changes.
fn isolated(patch: &Patch, perf: &Performance, joins: &[(u32, u16)], who: u32) -> Vec<f32> {
    let mut cfg = patch.config(SR, perf.seed);
    cfg.master.leveler = false;
    let own = joins.iter().find(|j| j.0 == who).expect("joined").1;
    let copy = cfg.archetypes[own as usize];
    for a in &mut cfg.archetypes {
        a.level_db -= 300.0;
    }
    cfg.archetypes.push(copy);
    let mut perf = perf.clone();
    for c in &mut perf.commands {
        if let Command::Join {
            participant,
            archetype,
        } = &mut c.command
        {
            let chosen = joins.iter().find(|j| j.0 == *participant).map(|j| j.1);
            *archetype = if *participant == who {
                Some(copy_index(&cfg))
            } else {
                chosen
            };
        }
    }
    render_noting_joins(cfg, patch, &perf).0
}

fn copy_index(cfg: &tapestry::engine::config::EngineConfig) -> u16 {
    cfg.archetypes.len() as u16 - 1
}

/// The performance without one participant's notes: what their generated part would have
/// played had they never touched a key.
fn without_notes(perf: &Performance, who: u32) -> Performance {
    let mut perf = perf.clone();
    perf.commands.retain(|c| !is_note_of(&c.command, who));
    perf
}

fn is_note_of(command: &Command, who: u32) -> bool {
    matches!(*command, Command::NoteOn { participant, .. } | Command::NoteOff { participant, .. } if participant == who)
}

/// Every rest of a player long enough to hear their generated part: (when the last held
/// note ended, when the part is due back, until when it may play: the next note-on, the
/// leave or the end), in seconds. The part is due back after `resume_bars`, at most one step
/// of its grid and the voice's attack; the last rest is always listed.
fn rests(
    cfg: &tapestry::engine::config::EngineConfig,
    perf: &Performance,
    joins: &[(u32, u16)],
    who: u32,
) -> Vec<(f64, f64, f64)> {
    let secs = |sample: u64| sample as f64 / SR as f64;
    let a = cfg.archetypes[joins.iter().find(|j| j.0 == who).expect("joined").1 as usize];
    let beat_secs = 60.0 / cfg.tempo_bpm as f64;
    let due = (a.resume_bars * cfg.beats_per_bar as f32 + a.grid_beats) as f64 * beat_secs
        + a.attack_secs as f64;
    let (mut held, mut rests) = (Vec::new(), Vec::new());
    let mut ended: Option<f64> = None;
    for c in &perf.commands {
        match c.command {
            Command::NoteOn {
                participant, pitch, ..
            } if participant == who => {
                if let Some(end) = ended.take() {
                    if secs(c.sample) - (end + due) >= 2.0 {
                        rests.push((end, end + due, secs(c.sample)));
                    }
                }
                held.push(pitch);
            }
            Command::NoteOff { participant, pitch } if participant == who => {
                if let Some(k) = held.iter().position(|&p| p == pitch) {
                    held.remove(k);
                }
                if held.is_empty() {
                    ended = Some(secs(c.sample));
                }
            }
            Command::Leave { participant } if participant == who => {
                if let Some(end) = ended.take() {
                    rests.push((end, end + due, secs(c.sample)));
                }
            }
            _ => {}
        }
    }
    if let Some(end) = ended {
        rests.push((end, end + due, secs(perf.duration_frames)));
    }
    rests
}

/// The generated part after a played passage starts the same notes at the same times as if
/// nothing had been played (onsets come from the motif and the step), but the pitches and
/// velocities it draws from the participant's random sequence differ, which moves the level
/// of a few seconds of a sparse part by a few dB; a part that never came back would be 100 dB
/// down.
const PIECE_MARGIN_DB: f32 = 6.0;

#[test]
fn in_every_shipped_piece_each_player_gets_their_generated_part_back() {
    // Each player is rendered alone (see `isolated`) twice: as performed, and without their
    // notes. From their resume on, both renders must carry the same generated part: after
    // the last note the voice sounds exactly as loud as if it had never been played.
    for name in ["minimal", "sleep-gathering", "kaleidoscope-nights"] {
        let patch = patch(&format!("{name}.toml"));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("patches");
        let perf = Performance::load(&dir.join(format!("{name}.performance.toml")), &patch, SR)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = patch.config(SR, perf.seed);
        cfg.master.leveler = false;
        let (mix, joins) = render_noting_joins(cfg.clone(), &patch, &perf);
        let mut players: Vec<u32> = Vec::new();
        for c in &perf.commands {
            if let Command::NoteOn { participant, .. } = c.command {
                if !players.contains(&participant) {
                    players.push(participant);
                }
            }
        }
        assert!(!players.is_empty(), "{name}: nobody plays notes");
        for who in players {
            let played = isolated(&patch, &perf, &joins, who);
            let never = isolated(&patch, &without_notes(&perf, who), &joins, who);
            let rests = rests(&cfg, &perf, &joins, who);
            let archetype =
                &patch.archetypes[joins.iter().find(|j| j.0 == who).unwrap().1 as usize];
            for (k, &(ended, back, until)) in rests.iter().enumerate() {
                let level = |x: &[f32]| rms_db(seg(x, back, until));
                let (as_played, as_never, all) = (level(&played), level(&never), level(&mix));
                let heard = as_played > -50.0 && as_played > all - 24.0;
                println!(
                    "{name}: participant {who} ({archetype}) played until {ended:.1} s; from \
                     {back:.1} to {until:.1} s alone {as_played:.1} dBFS, never played \
                     {as_never:.1} dBFS, mix {all:.1} dBFS: {}",
                    if heard {
                        "heard"
                    } else {
                        "NOT HEARD (its generated part is silent there)"
                    }
                );
                assert!(
                    until - back >= 2.0,
                    "{name}: participant {who} leaves at {until:.1} s, before their part is back ({back:.1} s)"
                );
                assert!(
                    (as_played - as_never).abs() <= PIECE_MARGIN_DB
                        || as_played.max(as_never) < -100.0,
                    "{name}: participant {who}'s generated part from {back:.1} s: {as_played:.1} \
                     dBFS as performed, {as_never:.1} dBFS had they never played"
                );
                let last = k + 1 == rests.len();
                assert!(
                    !last || heard || as_never < -100.0,
                    "{name}: participant {who} not heard again after {ended:.1} s"
                );
            }
        }
    }
}
