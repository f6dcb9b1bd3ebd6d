//! Room parameter offsets that reach only some voices: a loud, clap-dense room (made by sox)
//! mapped to `loudness_db` or `brightness_oct` with `role = ...` or `timbre = ...` changes the
//! selected voice's band of the rendered spectrum and leaves the other voice's band alone; a
//! selected `room_param` survives a live recording and re-renders bit for bit.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::common::measure::*;
use crate::common::sox;
use crate::common::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use tapestry::control::{Command, Timing, VoiceSelector};
use tapestry::engine::config::{Param, Role, Timbre};
use tapestry::record::{Recorder, RecorderThread};
use tapestry::render::{render, RenderOptions};
use tapestry::room::add_room_input;
use tapestry::{Engine, Message, Patch, Performance};

/// A low bass-role voice (C2..C3, fundamentals 65..131 Hz) and a high melody-role pluck
/// (C6..C7, 1047..2093 Hz), no reverb, no leveler, fixed density: two bands apart.
const TWO_BANDS: &str = r#"
version = 1
[piece]
name = "two bands"
seed = 5
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "C"
tempo_bpm = 100
[[score.sections]]
name = "a"
chords = ["I"]
[mood.energy]
default = 0.5
[mood.tension]
default = 0.0
[mood.brightness]
default = 0.5
[mood.unity]
default = 1.0
[[archetypes]]
id = "low"
timbre = "bass"
register = [36, 48]
grid_beats = 1.0
level_db = -12.0
motif = { steps = 4, density = 1.0, range = 2 }
[[archetypes]]
id = "high"
timbre = "pluck"
register = [84, 96]
grid_beats = 0.5
level_db = -12.0
motif = { steps = 8, density = 1.0, range = 3 }
[[mappings]]
from = "energy"
to = "density"
range = [1.0, 1.0]
[[mappings]]
from = "unity"
to = "timing_spread"
range = [0.0, 0.0]
[[mappings]]
from = "energy"
to = "reverb_mix"
range = [0.0, 0.0]
"#;

/// Below this the bass voice lives (fundamentals and first harmonics).
const LOW_BAND: (f32, f32) = (40.0, 400.0);
/// Above this the pluck lives.
const HIGH_BAND: (f32, f32) = (900.0, 12_000.0);
const SECS: f64 = 14.0;
/// The room has moved the offsets fully by then (1 s smoothing).
const SETTLED_SECS: usize = 6;

/// The two-band patch with one `[[analysis.mappings]]` of the room's loudness to `target`.
fn with_mapping(target: &str) -> Patch {
    with_mapping_in(TWO_BANDS, target)
}

fn with_mapping_in(base: &str, target: &str) -> Patch {
    patch_text(&format!(
        "{base}\n[[analysis.mappings]]\nfeature = \"loudness\"\nfeature_range = [-50.0, -18.0]\nsmoothing_secs = 1.0\n{target}\n"
    ))
}

fn both_voices() -> Script {
    Script::default()
        .join(0.0, 1, Some(0))
        .join(0.0, 2, Some(1))
}

fn temp(name: &str) -> PathBuf {
    crate::common::temp_file("room-voices", name)
}

/// A loud, clap-dense room made by sox: 20 ms noise bursts at -2 dB, 6 per second, mono 48 kHz.
fn loud_room() -> Vec<f32> {
    let path = temp("claps.wav");
    sox::claps(&path, "48000", "-2", "0.14666", "100");
    tapestry::analysis::read_wav(&path, Some(SR)).unwrap().0
}

/// Renders the two voices, with the room's commands from `room` when given.
fn render_room(patch: &Patch, room: Option<&[f32]>) -> Vec<f32> {
    let mut perf = both_voices().performance(SECS);
    if let Some(samples) = room {
        add_room_input(&mut perf, patch, samples, 1, SR);
    }
    render_blocks(patch, &perf, 512, None)
}

/// Energy (dB) of a mono signal inside `[lo, hi)` Hz: Hann-windowed 8192-point frames, hop 4096.
fn band_db(x: &[f32], (lo, hi): (f32, f32)) -> f32 {
    let n = 8192;
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
    let bin_hz = SR as f32 / n as f32;
    let (k_lo, k_hi) = ((lo / bin_hz).ceil() as usize, (hi / bin_hz) as usize);
    let mut energy = 0.0f64;
    let mut buf = vec![Complex::new(0.0f32, 0.0); n];
    for frame in x.windows(n).step_by(n / 2) {
        for (i, (b, &s)) in buf.iter_mut().zip(frame).enumerate() {
            let w = (std::f32::consts::PI * i as f32 / n as f32).sin().powi(2);
            *b = Complex::new(s * w, 0.0);
        }
        fft.process(&mut buf);
        energy += buf[k_lo..k_hi]
            .iter()
            .map(|c| c.norm_sqr() as f64)
            .sum::<f64>();
    }
    (10.0 * energy.max(1e-30).log10()) as f32
}

/// Low-band and high-band energy (dB) and the high band's centroid (Hz) once settled.
fn bands(stereo: &[f32]) -> (f32, f32, f32) {
    let x = mono(&stereo[2 * SETTLED_SECS * SR as usize..]);
    (
        band_db(&x, LOW_BAND),
        band_db(&x, HIGH_BAND),
        band_centroid_hz(&x, HIGH_BAND),
    )
}

/// Power-weighted mean frequency inside `[lo, hi)` Hz (whole signal, 8192-point frames).
fn band_centroid_hz(x: &[f32], (lo, hi): (f32, f32)) -> f32 {
    let steps = 48;
    let ratio = (hi / lo).powf(1.0 / steps as f32);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for i in 0..steps {
        let (a, b) = (lo * ratio.powi(i), lo * ratio.powi(i + 1));
        let e = 10f64.powf(band_db(x, (a, b)) as f64 / 10.0);
        num += e * ((a * b).sqrt() as f64);
        den += e;
    }
    (num / den.max(1e-30)) as f32
}

/// How far the room moves the low and the high band (dB) against the same patch without it.
fn band_shifts(what: &str, patch: &Patch, room: &[f32]) -> (f32, f32) {
    let (base_low, base_high, _) = bands(&render_room(patch, None));
    let out = render_room(patch, Some(room));
    assert!(all_finite(&out), "{what}");
    let (low, high, _) = bands(&out);
    let (low, high) = (low - base_low, high - base_high);
    eprintln!("{what}: low band {low:+.2} dB, high band {high:+.2} dB");
    (low, high)
}

#[test]
fn the_sox_room_reaches_only_the_selected_voices_band() {
    let room = loud_room();
    assert!(rms_db(&room) > -25.0, "the room is loud: {}", rms_db(&room));

    // loudness_db +9 on the melody role: the pluck's band rises, the bass's band holds
    let melody = with_mapping("param = \"loudness_db\"\nrange = [0.0, 9.0]\nrole = \"melody\"");
    let (low, high) = band_shifts("role = melody, loudness_db +9", &melody, &room);
    assert!(high > 6.0, "the melody voice gets louder: {high:+.2} dB");
    assert!(
        low.abs() < 0.25,
        "the bass voice is untouched: {low:+.2} dB"
    );

    // the same offset on every voice (no selector) moves the low band too: the measure sees it
    let all = with_mapping("param = \"loudness_db\"\nrange = [0.0, 9.0]");
    let (low, high) = band_shifts("all voices, loudness_db +9", &all, &room);
    assert!(low > 6.0, "{low:+.2} dB");
    assert!(high > 6.0, "{high:+.2} dB");

    // timbre = "bass": the other way round
    let bass = with_mapping("param = \"loudness_db\"\nrange = [0.0, 9.0]\ntimbre = \"bass\"");
    let (low, high) = band_shifts("timbre = bass, loudness_db +9", &bass, &room);
    assert!(low > 6.0, "{low:+.2} dB");
    assert!(high.abs() < 1.0, "the pluck is untouched: {high:+.2} dB");
}

#[test]
fn brightness_opens_only_the_selected_timbre() {
    let room = loud_room();
    // a darker pluck than usual, so that its filter has room to open
    let dark = TWO_BANDS.replace(
        "level_db = -12.0\nmotif = { steps = 8",
        "level_db = -12.0\nbrightness_oct = -3.0\nmotif = { steps = 8",
    );
    assert_ne!(dark, TWO_BANDS);
    let with_mapping = |target: &str| with_mapping_in(&dark, target);
    let pluck = with_mapping("param = \"brightness_oct\"\nrange = [0.0, 3.0]\ntimbre = \"pluck\"");
    let (base_low, _, base_centroid) = bands(&render_room(&pluck, None));
    let (low, _, centroid) = bands(&render_room(&pluck, Some(&room)));
    eprintln!(
        "timbre = pluck, brightness_oct +3: high-band centroid {base_centroid:.0} -> {centroid:.0} Hz, low band {:+.2} dB",
        low - base_low
    );
    assert!(
        centroid > base_centroid * 1.3,
        "the pluck opens up: {base_centroid} -> {centroid} Hz"
    );
    assert!(
        (low - base_low).abs() < 0.25,
        "the bass voice is untouched: {:+.2} dB",
        low - base_low
    );
    // a role selector that matches the same voice gives the very same render
    let melody = with_mapping("param = \"brightness_oct\"\nrange = [0.0, 3.0]\nrole = \"melody\"");
    assert_eq!(
        render_room(&pluck, Some(&room)),
        render_room(&melody, Some(&room)),
        "role melody and timbre pluck select the same voice here"
    );
}

#[test]
fn selected_offsets_are_block_size_independent_and_independent_per_selector() {
    let p = patch_text(TWO_BANDS);
    let loud = |voices, value| Command::RoomParam {
        param: Param::LoudnessDb.index() as u8,
        voices,
        value,
    };
    let three = both_voices()
        .at(1.0, loud(VoiceSelector::Role(Role::Melody), 6.0))
        .at(2.0, loud(VoiceSelector::Timbre(Timbre::Bass), 6.0))
        .at(3.0, loud(VoiceSelector::All, 6.0));
    let melody_back = three
        .clone()
        .at(4.0, loud(VoiceSelector::Role(Role::Melody), 0.0));
    let perf = melody_back.performance(6.0);
    let out = render_blocks(&p, &perf, 512, None);
    for block in [1, 64, 333, 4096] {
        assert_eq!(out, render_blocks(&p, &perf, block, None), "block {block}");
    }
    // setting the melody's offset back to 0 leaves the bass's and everyone's in place
    let kept = render_blocks(&p, &three.performance(6.0), 512, None);
    let tail = |x: &[f32]| mono(&x[2 * 5 * SR as usize..]);
    let (back, kept) = (tail(&out), tail(&kept));
    let low = band_db(&back, LOW_BAND) - band_db(&kept, LOW_BAND);
    let high = band_db(&back, HIGH_BAND) - band_db(&kept, HIGH_BAND);
    eprintln!("melody's offset back to 0: low band {low:+.2} dB, high band {high:+.2} dB");
    assert!(
        (high + 6.0).abs() < 0.5,
        "the melody drops its 6 dB: {high:+.2}"
    );
    assert!(low.abs() < 0.25, "the bass keeps its offsets: {low:+.2}");
}

#[test]
fn ensemble_wide_parameters_refuse_a_selector_at_the_engine() {
    let p = patch_text(TWO_BANDS);
    let (mut engine, controller) = Engine::new(p.config(SR, None), p.names());
    for param in [Param::StereoWidth, Param::ReverbMix, Param::Darkness] {
        controller
            .command(Command::RoomParam {
                param: param.index() as u8,
                voices: VoiceSelector::Role(Role::Melody),
                value: 0.3,
            })
            .unwrap();
    }
    let mut block = vec![0.0f32; 256];
    engine.process(&mut block);
    assert_eq!(
        controller.status().refused_messages.load(Ordering::Relaxed),
        3
    );
}

#[test]
fn a_selected_room_param_records_and_re_renders_bit_for_bit() {
    let p = patch_text(TWO_BANDS);
    let (mut engine, controller) = Engine::new(p.config(SR, None), p.names());
    let journal = engine.enable_journal(4096);
    let path = temp("session.performance.toml");
    let recorder = Recorder::create(&path, &p.name, p.names(), p.seed(), 0.0).unwrap();
    let recording = RecorderThread::spawn(recorder, journal, path.clone());
    let commands = [
        (
            0,
            Command::Join {
                participant: 1,
                archetype: Some(0),
            },
        ),
        (
            0,
            Command::Join {
                participant: 2,
                archetype: Some(1),
            },
        ),
        (
            30_000,
            Command::RoomParam {
                param: Param::BrightnessOct.index() as u8,
                voices: VoiceSelector::Role(Role::Melody),
                value: 2.5,
            },
        ),
        (
            60_001,
            Command::RoomParam {
                param: Param::LoudnessDb.index() as u8,
                voices: VoiceSelector::Timbre(Timbre::Bass),
                value: -7.25,
            },
        ),
        (
            90_002,
            Command::RoomParam {
                param: Param::Density.index() as u8,
                voices: VoiceSelector::All,
                value: 0.3,
            },
        ),
        // refused: not journaled
        (
            100_000,
            Command::RoomParam {
                param: Param::StereoWidth.index() as u8,
                voices: VoiceSelector::Role(Role::Bass),
                value: 0.2,
            },
        ),
    ];
    for (at, command) in commands {
        controller
            .send(Message {
                at: Timing::At(at),
                command,
            })
            .unwrap();
    }
    let total = 4 * SR as usize;
    let mut live = vec![0.0f32; 2 * total];
    let mut pos = 0;
    for frames in [1, 127, 4096, 333].iter().cycle() {
        if pos >= total {
            break;
        }
        let n = (*frames).min(total - pos);
        engine.process(&mut live[2 * pos..2 * (pos + n)]);
        pos += n;
    }
    let events = recording.finish(engine.sample_position()).unwrap();
    assert_eq!(events, 5, "the refused command is not recorded");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("role = \"melody\""), "{text}");
    assert!(text.contains("timbre = \"bass\""), "{text}");
    let perf = Performance::load(&path, &p, SR).unwrap_or_else(|e| panic!("{e}"));
    assert!(perf.commands.iter().any(|c| c.command
        == Command::RoomParam {
            param: Param::LoudnessDb.index() as u8,
            voices: VoiceSelector::Timbre(Timbre::Bass),
            value: -7.25,
        }));
    let offline = render(&p, &perf, &RenderOptions::default(), |_, _| {});
    assert_eq!(offline.len(), live.len());
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "the re-render differs from the session"
    );
    assert!(rms(&live) > 1e-3, "the session made sound");
    // and the selector mattered: without it the session sounds different
    let mut unselected = perf.clone();
    for c in &mut unselected.commands {
        if let Command::RoomParam { voices, .. } = &mut c.command {
            *voices = VoiceSelector::All;
        }
    }
    let other = render(&p, &unselected, &RenderOptions::default(), |_, _| {});
    assert_ne!(other, offline);
    let _ = std::fs::remove_file(&path);
}
