//! Designed instruments (`[instruments.<name>]`), measured on output: every node kind sounds
//! as docs/formats.md says (oscillator pitch, noise tilt, filter responses at their cutoff
//! ±10 %, envelope times, saturation, mixing), bindings move their parameter smoothly, and
//! an engine playing designed instruments stays deterministic, block-size independent and
//! allocation-free in `process`.

use crate::common::measure::*;
use crate::common::music::harmonic_levels_db;
use crate::common::*;
use rustfft::{num_complex::Complex, FftPlanner};
use tapestry::engine::instrument::{InstrumentDef, Solo, VoiceInputs};

/// A patch around one instrument `t` (its nodes given) and an archetype playing it.
fn patch_with(nodes: &str, role: &str) -> String {
    format!(
        r#"version = 1
[piece]
name = "probe"
seed = 5
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "C"
tempo_bpm = 120
[[score.sections]]
name = "a"
chords = ["I"]
bars_per_chord = 4
[mood.energy]
default = 0.5
[mood.tension]
default = 0.2
[mood.brightness]
default = 0.0
smoothing_secs = 0.05
[mood.unity]
default = 1.0
[instruments.t]
{nodes}
[[archetypes]]
id = "a"
instrument = "t"
role = "{role}"
register = [48, 72]
"#
    )
}

fn instrument(nodes: &str) -> InstrumentDef {
    patch_text(&patch_with(nodes, "melody"))
        .config(SR, None)
        .instruments[0]
        .clone()
}

fn held(pitch: f32) -> VoiceInputs {
    VoiceInputs {
        pitch,
        velocity: 1.0,
        gate: true,
        ..Default::default()
    }
}

/// `secs` of one voice holding a note at `hz`, the first 0.1 s (filters settling) dropped.
fn solo(def: &InstrumentDef, hz: f32, secs: f32) -> Vec<f32> {
    let mut voice = Solo::new(def, SR as f32, 1);
    let mut out = vec![0.0; ((secs + 0.1) * SR as f32) as usize];
    voice.render(hz, &held(69.0 + 12.0 * (hz / 440.0).log2()), &mut out);
    out.split_off((0.1 * SR as f32) as usize)
}

/// Power in `lo..hi` Hz over the whole signal (one FFT), in dB.
fn band_db(x: &[f32], lo: f32, hi: f32) -> f32 {
    let n = x.len().next_power_of_two();
    let mut buf: Vec<Complex<f32>> = (0..n)
        .map(|i| Complex::new(x.get(i).copied().unwrap_or(0.0), 0.0))
        .collect();
    FftPlanner::<f32>::new()
        .plan_fft_forward(n)
        .process(&mut buf);
    let bin = SR as f32 / n as f32;
    let p: f64 = buf[(lo / bin) as usize..(hi / bin) as usize]
        .iter()
        .map(|c| c.norm_sqr() as f64)
        .sum();
    (10.0 * p.max(1e-30).log10()) as f32
}

fn node(id: &str, kind: &str, extra: &str) -> String {
    format!("[[instruments.t.nodes]]\nid = \"{id}\"\nkind = \"{kind}\"\n{extra}\n")
}

#[test]
fn oscillators_sound_at_the_note_times_their_ratio() {
    let cases = [
        ("sine", "", 1.0),
        ("saw", "", 1.0),
        ("square", "", 1.0),
        ("triangle", "", 1.0),
        ("pulse", "width = 0.5", 1.0),
        ("fm", "index = 0.0", 1.0),
        ("additive", "partials = [1.0, 0.3, 0.2]", 1.0),
        ("sine", "ratio = 2.0", 2.0),
        ("saw", "ratio = 0.5", 0.5),
    ];
    for (kind, extra, ratio) in cases {
        let def = instrument(&node("osc", kind, extra));
        for hz in [110.0, 440.0, 1000.0] {
            let x = solo(&def, hz, 1.0);
            let found = dominant_pitch_hz(&x, SR as f32);
            let want = hz * ratio;
            assert!(
                (found / want - 1.0).abs() < 0.003,
                "{kind} {extra} at {hz} Hz: strongest partial {found} Hz, expected {want}"
            );
            assert!(peak(&x) <= 1.3 && rms(&x) > 0.2, "{kind}: full scale");
        }
    }
}

#[test]
fn fm_index_and_additive_partials_shape_the_harmonics() {
    let levels = |nodes: &str| {
        harmonic_levels_db(&solo(&instrument(nodes), 220.0, 1.0), SR as f32, 220.0, 4).0
    };
    let pure = levels(&node("osc", "fm", "mod_ratio = 1.0\nindex = 0.0"));
    let rich = levels(&node("osc", "fm", "mod_ratio = 1.0\nindex = 0.3"));
    assert!(pure[1] < -50.0, "index 0 is a pure sine: {pure:?}");
    assert!(
        rich[1] > -20.0,
        "index 0.3 adds the second harmonic: {rich:?}"
    );
    let partials = levels(&node("osc", "additive", "partials = [1.0, 0.0, 0.5]"));
    assert!(partials[1] < -50.0, "no second partial: {partials:?}");
    let third = partials[2] - partials[0];
    assert!(
        (third + 6.02).abs() < 0.5,
        "third partial at half amplitude: {third} dB"
    );
}

#[test]
fn noise_colours_tilt_as_documented() {
    // octaves 500..1000 Hz and 4..8 kHz: white +9 dB (3 octaves wider band, same density),
    // pink 0 dB (equal power per octave), brown -9 dB
    for (colour, tilt) in [("white", 9.03), ("pink", 0.0), ("brown", -9.03)] {
        let def = instrument(&node("n", "noise", &format!("colour = \"{colour}\"")));
        let x = solo(&def, 440.0, 2.0);
        let measured =
            (band_db(&x, 4000.0, 8000.0) - band_db(&x, 4000.0 / 8.0, 8000.0 / 8.0)) / 3.0 * 3.0;
        assert!(
            (measured - tilt).abs() < 2.0,
            "{colour}: {measured} dB from the 500 Hz octave to the 4 kHz octave, expected {tilt}"
        );
    }
}

/// Gain in dB of a filter node (`params`) on a full-scale sine at `hz`.
fn gain_db(kind: &str, params: &str, hz: f32) -> f32 {
    gain_at_level_db(kind, params, hz, 1.0)
}

/// Gain in dB of a filter node on a sine of amplitude `level` at `hz`.
fn gain_at_level_db(kind: &str, params: &str, hz: f32, level: f32) -> f32 {
    let sine = node("s", "sine", &format!("level = {level}"));
    let dry = instrument(&sine);
    let wet = instrument(&(sine + &node("f", kind, &format!("input = \"s\"\n{params}"))));
    let (d, w) = (solo(&dry, hz, 0.5), solo(&wet, hz, 0.5));
    rms_db(&w) - rms_db(&d)
}

#[test]
fn state_variable_filters_turn_at_their_cutoff_within_10_percent() {
    let p = "cutoff_hz = 1000\nq = 0.707";
    // the -3 dB point lies between 0.9 and 1.1 × the cutoff
    assert!(gain_db("lowpass", p, 900.0) > -3.0);
    assert!(gain_db("lowpass", p, 1100.0) < -3.0);
    assert!(gain_db("lowpass", p, 250.0).abs() < 0.3);
    assert!(gain_db("lowpass", p, 4000.0) < -22.0, "12 dB per octave");
    assert!(gain_db("highpass", p, 1100.0) > -3.0);
    assert!(gain_db("highpass", p, 900.0) < -3.0);
    assert!(gain_db("highpass", p, 4000.0).abs() < 0.3);
    // band-pass: unity at the centre, symmetric skirts
    let bp = "cutoff_hz = 1000\nq = 5.0";
    let centre = gain_db("bandpass", bp, 1000.0);
    assert!(centre.abs() < 0.5, "band-pass centre {centre} dB");
    for f in [900.0, 1100.0] {
        let g = gain_db("bandpass", bp, f);
        assert!(g < -1.0 && g > -6.0, "band-pass at {f} Hz: {g} dB");
    }
    // key tracking: with key_track 1 the cutoff is the note (cutoff_hz names middle C's)
    for hz in [220.0, 880.0] {
        let g = gain_db("lowpass", "cutoff_hz = 261.626\nkey_track = 1.0", hz);
        assert!((g + 3.0).abs() < 0.5, "tracked cutoff at {hz} Hz: {g} dB");
    }
}

#[test]
fn moog_ladder_and_resonator_respond_at_their_cutoff() {
    // the ladder saturates its last stage (tanh): measured at -20 dBFS, where it is linear
    let moog = |hz: f32| gain_at_level_db("moog", "cutoff_hz = 1000\nresonance = 0.0", hz, 0.1);
    // fundsp's ladder (Stilson–Smith) has a flat passband about 3.5 dB up, is about 10 dB
    // below it at the cutoff and crosses -12 dB within 10 % above it
    let (pass, low) = (moog(125.0), moog(60.0));
    assert!(
        (pass - low).abs() < 0.3 && (pass - 3.5).abs() < 1.0,
        "flat passband: {low}, {pass} dB"
    );
    let at = moog(1000.0) - pass;
    assert!((-13.0..-8.0).contains(&at), "moog at its cutoff: {at} dB");
    let (below, above) = (moog(900.0) - pass, moog(1150.0) - pass);
    assert!(
        below > -12.0 && above < -12.0,
        "moog -12 dB between 0.9 and 1.15 × cutoff: {below} / {above} dB"
    );
    let (octave, two) = (moog(2000.0), moog(4000.0));
    assert!(
        octave - two > 20.0,
        "moog falls 24 dB per octave: {octave} → {two}"
    );
    // the resonator: a peak at its centre (its skirts ±10 % off are far below it) …
    let res = "cutoff_hz = 1000\nq = 10.0";
    let centre = gain_db("resonator", res, 1000.0);
    for f in [900.0, 1100.0] {
        let g = gain_db("resonator", res, f);
        // half-power bandwidth centre / q: ±10 % is two half-bandwidths, -7 dB
        assert!(
            centre - g > 6.0,
            "resonator ±10 % off its centre: {g} vs {centre} dB"
        );
    }
    // … normalized for constant noise power: white noise keeps its loudness whatever the q
    let noise = |q: f32| {
        let def = instrument(
            &(node("n", "noise", "")
                + &node(
                    "f",
                    "resonator",
                    &format!("input = \"n\"\ncutoff_hz = 1000\nq = {q}"),
                )),
        );
        rms_db(&solo(&def, 440.0, 2.0))
    };
    let (wide, narrow) = (noise(2.0), noise(20.0));
    assert!(
        (wide - narrow).abs() < 1.0,
        "noise power: q 2 {wide} dB, q 20 {narrow} dB"
    );
}

#[test]
fn eq_bell_and_shelves_set_their_gain_where_documented() {
    let bell = "cutoff_hz = 1000\nq = 1.0\ngain_db = 6.0";
    assert!((gain_db("bell", bell, 1000.0) - 6.0).abs() < 0.5);
    assert!(gain_db("bell", bell, 125.0).abs() < 0.5);
    let shelf = "cutoff_hz = 1000\ngain_db = -6.0";
    assert!((gain_db("lowshelf", shelf, 100.0) + 6.0).abs() < 0.5);
    assert!(gain_db("lowshelf", shelf, 10_000.0).abs() < 0.5);
    assert!(
        (gain_db("lowshelf", shelf, 1000.0) + 3.0).abs() < 0.7,
        "half at the corner"
    );
    assert!((gain_db("highshelf", shelf, 10_000.0) + 6.0).abs() < 0.5);
    assert!(gain_db("highshelf", shelf, 100.0).abs() < 0.5);
}

/// RMS envelope in 5 ms steps.
fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(240)
        .map(|c| rms(c) * std::f32::consts::SQRT_2)
        .collect()
}

#[test]
fn adsr_takes_its_attack_decay_and_release_times() {
    let def = instrument(
        &(node("s", "sine", "")
            + &node(
                "e",
                "adsr",
                "attack_secs = 0.1\ndecay_secs = 0.2\nsustain = 0.5\nrelease_secs = 0.3",
            )
            + &node("v", "multiply", "inputs = [\"s\", \"e\"]")),
    );
    let mut voice = Solo::new(&def, SR as f32, 1);
    let mut on = vec![0.0; SR as usize];
    voice.render(440.0, &held(69.0), &mut on);
    let mut off = vec![0.0; SR as usize / 2];
    let released = VoiceInputs {
        gate: false,
        ..held(69.0)
    };
    voice.render(440.0, &released, &mut off);
    let env: Vec<f32> = envelope(&[on, off].concat());
    let secs = |i: usize| i as f32 * 0.005;
    let first_at = |from: usize, test: &dyn Fn(f32) -> bool| {
        (from..env.len()).find(|&i| test(env[i])).map(secs).unwrap()
    };
    let top = first_at(0, &|e| e >= 0.9);
    assert!((top - 0.09).abs() < 0.01, "90 % of the attack at {top} s");
    let sustain = env[(0.8 / 0.005) as usize];
    assert!((sustain - 0.5).abs() < 0.02, "sustain {sustain}");
    let half_decay = first_at(20, &|e| e <= 0.75);
    assert!(
        (half_decay - 0.2).abs() < 0.012,
        "decay halfway at {half_decay} s"
    );
    let gone = first_at(200, &|e| e <= 0.05) - 1.0;
    assert!(
        (gone - 0.27).abs() < 0.015,
        "release down to 10 % at {gone} s"
    );
}

/// The RMS envelope (5 ms steps) of a sine times envelope node `e` (its keys given), the
/// note held `held_secs` then released for `tail_secs`.
fn enveloped(keys: &str, held_secs: f32, tail_secs: f32) -> Vec<f32> {
    let def = instrument(
        &(node("s", "sine", "")
            + &node("e", "envelope", keys)
            + &node("v", "multiply", "inputs = [\"s\", \"e\"]")),
    );
    let mut voice = Solo::new(&def, SR as f32, 1);
    let mut on = vec![0.0; (held_secs * SR as f32) as usize];
    voice.render(440.0, &held(69.0), &mut on);
    let mut off = vec![0.0; (tail_secs * SR as f32) as usize];
    let released = VoiceInputs {
        gate: false,
        ..held(69.0)
    };
    voice.render(440.0, &released, &mut off);
    envelope(&[on, off].concat())
}

#[test]
fn a_multi_segment_envelope_walks_its_points_holds_at_sustain_and_releases_through_the_rest() {
    let points = "points = [[0.05, 1.0], [0.2, 0.3], [0.1, 0.6], [0.3, 0.0]]\nsustain_point = 2";
    let env = enveloped(points, 1.0, 0.5);
    let at = |secs: f32| env[(secs / 0.005) as usize];
    let near = |secs: f32, want: f32| {
        let got = at(secs);
        assert!((got - want).abs() < 0.04, "{want} at {secs} s, found {got}");
    };
    near(0.05, 1.0);
    near(0.15, 0.65); // halfway from 1.0 down to 0.3
    near(0.25, 0.3);
    near(0.30, 0.45); // halfway up to 0.6
    near(0.60, 0.6);
    near(0.99, 0.6); // held at the sustain point
    near(1.15, 0.3); // the last segment after the release: 0.6 to 0 in 0.3 s
    assert!(at(1.35) < 0.02, "silent after its last point: {}", at(1.35));

    // sustain_point at the last point: the linear release_secs
    let env = enveloped(
        "points = [[0.01, 1.0], [0.1, 0.5]]\nrelease_secs = 0.2",
        0.5,
        0.4,
    );
    let at = |secs: f32| env[(secs / 0.005) as usize];
    assert!(
        (at(0.45) - 0.5).abs() < 0.03,
        "holds the last point {}",
        at(0.45)
    );
    assert!(
        (at(0.6) - 0.25).abs() < 0.04,
        "halfway released {}",
        at(0.6)
    );
    assert!(at(0.75) < 0.02, "released in 0.2 s: {}", at(0.75));

    // a percussive envelope ending at 0 stays silent while held, and does not restart
    let env = enveloped("points = [[0.005, 1.0], [0.2, 0.0]]", 1.0, 0.1);
    assert!(env[(0.5 / 0.005) as usize..].iter().all(|e| *e < 0.01));
}

/// One held note through a sine times an lfo node (its keys given), `secs` long.
fn tremolo(keys: &str, seed: u64, secs: f32) -> Vec<f32> {
    let def = instrument(
        &(node("s", "sine", "")
            + &node("l", "lfo", keys)
            + &node("v", "multiply", "inputs = [\"s\", \"l\"]")),
    );
    let mut voice = Solo::new(&def, SR as f32, seed);
    let mut x = vec![0.0; (secs * SR as f32) as usize];
    voice.render(440.0, &held(69.0), &mut x);
    x
}

#[test]
fn an_lfo_node_modulates_at_its_rate_with_its_shape_depth_and_offset() {
    // sine 2 Hz between 0 and 1: tops at 0.125, 0.625 s, bottoms at 0.375, 0.875 s
    let env = envelope(&tremolo("rate_hz = 2.0\ndepth = 0.5\noffset = 0.5", 1, 2.0));
    let at = |secs: f32| env[(secs / 0.005) as usize];
    for k in 0..4 {
        let top = 0.125 + 0.5 * k as f32;
        assert!(at(top) > 0.95, "top at {top} s: {}", at(top));
        assert!(at(top + 0.25) < 0.05, "bottom at {} s", top + 0.25);
    }
    // a square spends its time at its two levels, and its steps glide (no click)
    let x = tremolo(
        "shape = \"square\"\nrate_hz = 4.0\ndepth = 0.4\noffset = 0.5",
        1,
        2.0,
    );
    let env = envelope(&x);
    let at_levels = env
        .iter()
        .filter(|e| (**e - 0.9).abs() < 0.03 || (**e - 0.1).abs() < 0.03)
        .count();
    assert!(
        at_levels as f32 > 0.85 * env.len() as f32,
        "{at_levels} of {}",
        env.len()
    );
    // an unsmoothed step from 0.1 to 0.9 would jump by up to 0.8 in one sample; the sine
    // alone moves by at most 0.058 per sample at 440 Hz
    let jump = x
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    assert!(jump < 0.1, "a step glides: largest jump {jump}");
    // random: a new level each cycle, the same for the same seed, another for another voice
    let levels = |seed| {
        let env = envelope(&tremolo("shape = \"random\"\nrate_hz = 5.0", seed, 2.0));
        // mid-cycle: a cycle is 0.2 s, 40 steps of 5 ms
        (0..10).map(|k| env[20 + 40 * k]).collect::<Vec<f32>>()
    };
    let (a, again, other) = (levels(1), levels(1), levels(2));
    assert_eq!(a, again, "deterministic per voice");
    assert_ne!(a, other, "another voice draws other values");
    let spread = a.iter().cloned().fold(0.0, f32::max) - a.iter().cloned().fold(1.0, f32::min);
    assert!(spread > 0.3, "the held values vary: {a:?}");
}

#[test]
fn shape_saturates_with_its_drive_and_gain_mix_multiply_combine() {
    let third = |drive: f32| {
        let def = instrument(
            &(node("s", "sine", "")
                + &node("d", "shape", &format!("input = \"s\"\ndrive = {drive}"))),
        );
        let x = solo(&def, 220.0, 1.0);
        assert!(peak(&x) <= 1.001, "full scale stays full scale");
        let l = harmonic_levels_db(&x, SR as f32, 220.0, 3).0;
        l[2] - l[0]
    };
    assert!(third(0.1) < -50.0, "a light drive is clean: {}", third(0.1));
    assert!(
        third(8.0) > -15.0,
        "a hard drive adds odd harmonics: {}",
        third(8.0)
    );
    let g = gain_db("gain", "amount = 0.5", 440.0);
    assert!((g + 6.02).abs() < 0.05, "gain 0.5 is -6 dB: {g}");
    let mix = instrument(
        &(node("a", "sine", "")
            + &node("b", "sine", "ratio = 2.0")
            + &node("m", "mix", "inputs = [\"a\", \"b\"]\ngains = [1.0, 0.25]")),
    );
    let l = harmonic_levels_db(&solo(&mix, 220.0, 1.0), SR as f32, 220.0, 2).0;
    assert!((l[1] - l[0] + 12.04).abs() < 0.3, "mix gains: {l:?}");
    let ring = instrument(
        &(node("a", "sine", "")
            + &node("b", "sine", "ratio = 0.25")
            + &node("m", "multiply", "inputs = [\"a\", \"b\"]")),
    );
    let x = solo(&ring, 440.0, 1.0);
    let (sum, carrier) = (band_db(&x, 540.0, 560.0), band_db(&x, 430.0, 450.0));
    assert!(
        sum - carrier > 40.0,
        "ring modulation: sidebands, no carrier"
    );
}

#[test]
fn an_lfo_binding_moves_its_parameter_at_its_rate() {
    let def = instrument(
        &(node("s", "sine", "")
            + &node(
                "g",
                "gain",
                "input = \"s\"\namount = { from = \"lfo\", rate_hz = 2.0, range = [0.0, 1.0] }",
            )),
    );
    let mut voice = Solo::new(&def, SR as f32, 1);
    let mut x = vec![0.0; 2 * SR as usize];
    voice.render(440.0, &held(69.0), &mut x);
    let env = envelope(&x);
    // minima at 0, 0.5, 1.0, 1.5 s; maxima at 0.25, 0.75 …
    for k in 0..4 {
        let at = |s: f32| env[(s / 0.005) as usize];
        assert!(
            at(k as f32 * 0.5 + 0.25) > 0.95,
            "LFO top at {}",
            k as f32 * 0.5 + 0.25
        );
        if k > 0 {
            assert!(
                at(k as f32 * 0.5) < 0.05,
                "LFO bottom at {}",
                k as f32 * 0.5
            );
        }
    }
}

/// One held-chord participant on a saw → low-pass instrument whose cutoff the communal
/// brightness opens (exp curve, 0.2 s smoothing); brightness jumps from 0 to 1 at 4 s.
fn brightness_sweep() -> (Vec<f32>, Vec<f32>) {
    let nodes = node("saw", "saw", "level = 0.3")
        + &node(
            "f",
            "lowpass",
            "input = \"saw\"\ncutoff_hz = { from = \"communal.brightness\", range = [300, 6000], curve = \"exp\", smoothing_secs = 0.2 }",
        );
    let patch = patch_text(&patch_with(&nodes, "harmony"));
    let brightness = dim(&patch, "brightness");
    let perf = |to: f32| {
        Script::default()
            .join(0.0, 1, Some(0))
            .communal(4.0, brightness, to)
            .performance(8.0)
    };
    (
        render_blocks(&patch, &perf(1.0), 256, None),
        render_blocks(&patch, &perf(0.0), 256, None),
    )
}

#[test]
fn a_mood_binding_opens_the_filter_audibly_smoothly_and_without_clicks() {
    let (moved, still) = brightness_sweep();
    let (moved, still) = (mono(&moved), mono(&still));
    let secs = |a: f32, b: f32| (a * SR as f32) as usize..(b * SR as f32) as usize;
    let before = spectral_centroid_hz(&moved[secs(2.5, 4.0)], SR as f32);
    let after = spectral_centroid_hz(&moved[secs(6.0, 8.0)], SR as f32);
    assert!(
        after > 1.8 * before,
        "brightness opens the filter: {before} → {after} Hz"
    );
    // smoothed: a quarter second in it is on its way, not there
    let early = spectral_centroid_hz(&moved[secs(4.0, 4.2)], SR as f32);
    assert!(
        early > before * 1.1 && early < after * 0.9,
        "gradual: {before}, {early}, {after} Hz"
    );
    // no clicks: the sweep's sharpest sample-to-sample step stays within what the open,
    // steady sound has anyway (a bright saw's edges), and nothing is non-finite
    let sweep = max_jump_ratio(&moved[secs(3.9, 5.5)], 256);
    let steady = max_jump_ratio(&moved[secs(6.0, 8.0)], 256);
    assert!(
        sweep <= steady * 1.2,
        "sweep {sweep} vs steady open sound {steady}"
    );
    assert!(all_finite(&moved));
    // before the change both renders are the same sound
    assert_eq!(moved[secs(0.0, 4.0)], still[secs(0.0, 4.0)]);
}

fn instruments_performance(secs: f64) -> (tapestry::Patch, tapestry::Performance) {
    let patch = crate::common::patch("instruments.toml");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("patches/instruments.performance.toml");
    let mut perf = tapestry::Performance::load(&path, &patch, SR).unwrap();
    perf.duration_frames = (secs * SR as f64) as u64;
    (patch, perf)
}

#[test]
fn designed_instruments_render_bit_identically_whatever_the_block_size() {
    let (patch, perf) = instruments_performance(30.0);
    let reference = render_blocks(&patch, &perf, 64, None);
    assert!(rms(&reference) > 0.01, "it sounds");
    for block in [1usize, 333, 4096] {
        let out = render_blocks(&patch, &perf, block, None);
        assert!(out == reference, "block size {block} changed the output");
    }
    assert!(
        render_blocks(&patch, &perf, 64, None) == reference,
        "same seed, same bits"
    );
    let other = render_blocks(&patch, &perf, 64, Some(99));
    assert!(other != reference, "another seed, another render");
}

#[test]
fn process_never_allocates_with_designed_instruments_sounding() {
    use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
    use tapestry::control::{Command, Expression, MoodTarget};
    let (patch, _) = instruments_performance(1.0);
    let (mut engine, controller) = tapestry::Engine::new(patch.config(SR, None), patch.names());
    let archetypes = patch.archetypes.len() as u16;
    let mut block = vec![0.0f32; 2 * 256];
    reset_violation_count();
    let mut most_voices = 0;
    for round in 0..40u32 {
        for id in 1..=24u32 {
            let pitch = 50 + (id * 5 + round) as u8 % 30;
            let commands = [
                Command::Join {
                    participant: id,
                    archetype: Some(id as u16 % archetypes),
                },
                Command::NoteOn {
                    participant: id,
                    pitch,
                    velocity: 90,
                },
                Command::Expression {
                    participant: id,
                    kind: Expression::Brightness,
                    value: (round % 3) as f32 / 2.0,
                },
                Command::Mood {
                    target: MoodTarget::Communal,
                    dim: (round % 4) as u8,
                    value: (round % 2) as f32,
                    ramp_secs: 0.5,
                },
                // the previous round's note ends as this one starts
                Command::NoteOff {
                    participant: id,
                    pitch: 50 + (id * 5 + round.max(1) - 1) as u8 % 30,
                },
            ];
            for c in commands {
                if let Err(e) = controller.command(c) {
                    panic!("{c:?}: {e:?}");
                }
            }
            if round % 10 == 9 {
                let _ = controller.leave(id);
            }
            assert_no_alloc(|| engine.process(&mut block));
        }
        for _ in 0..20 {
            assert_no_alloc(|| engine.process(&mut block));
            most_voices = most_voices.max(engine.instrument_load().0);
        }
    }
    for frames in [1usize, 7, 333, 8192] {
        let mut b = vec![0.0f32; 2 * frames];
        assert_no_alloc(|| engine.process(&mut b));
    }
    assert_eq!(violation_count(), 0, "process allocated or freed memory");
    assert!(
        most_voices >= 24,
        "designed voices really sounded: {most_voices}, lanes {:?}, participants {}",
        engine.voice_load(),
        controller
            .status()
            .participants
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(block.iter().all(|x| x.is_finite()));
}
