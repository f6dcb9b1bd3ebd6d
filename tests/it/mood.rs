//! Mood is audible: each core dimension, set high against low with everything else equal,
//! changes the rendered audio by a clear margin, measured on the output.

use crate::common::measure::*;
use crate::common::*;
use tapestry::Patch;

/// One held chord (C major) so harmony measurements have a fixed reference; the leveler is
/// off so loudness changes reach the output unnormalized.
const PATCH: &str = r#"
version = 1
[piece]
name = "mood probe"
seed = 11
[master]
leveler = false
reverb_mix = 0.15
[score]
key = "C"
mode = "major"
tempo_bpm = 100
[[score.sections]]
name = "held"
chords = ["I"]
[mood.energy]
default = 0.5
smoothing_secs = 0.2
[mood.tension]
default = 0.2
smoothing_secs = 0.2
[mood.brightness]
default = 0.5
smoothing_secs = 0.2
[mood.unity]
default = 0.5
smoothing_secs = 0.2
[[archetypes]]
id = "pad"
timbre = "pad"
register = [52, 72]
[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 84]
grid_beats = 0.5
motif = { steps = 8, density = 0.6, range = 4 }
[[archetypes]]
id = "bell"
timbre = "bell"
register = [72, 90]
grid_beats = 1.0
motif = { steps = 8, density = 0.5, range = 3 }
[[archetypes]]
id = "bass"
timbre = "bass"
register = [36, 50]
grid_beats = 1.0
motif = { steps = 4, density = 0.75, range = 2 }
[[archetypes]]
id = "lead"
timbre = "lead"
register = [64, 84]
grid_beats = 1.0
motif = { steps = 8, density = 0.5, range = 4 }
"#;

const SECS: f64 = 24.0;
const SETTLE: f32 = 6.0;

/// Renders 10 participants with every core dimension at a base value except `dimension`.
fn render_with(patch: &Patch, dimension: &str, value: f32) -> Vec<f32> {
    let mut s = Script::default();
    for (d, base) in [
        ("energy", 0.5),
        ("tension", 0.2),
        ("brightness", 0.5),
        ("unity", 0.5),
    ] {
        s = s.communal(
            0.0,
            dim(patch, d),
            if d == dimension { value } else { base },
        );
    }
    let arch = [
        "pad", "pluck", "bell", "bass", "lead", "pluck", "pad", "bell", "pluck", "lead",
    ];
    for (i, a) in arch.iter().enumerate() {
        s = s.join(0.05 * i as f64, i as u32 + 1, Some(archetype(patch, a)));
    }
    let out = render_blocks(patch, &s.performance(SECS), 512, None);
    segment(&out, SR, SETTLE, SECS as f32).to_vec()
}

fn low_high(dimension: &str) -> (Vec<f32>, Vec<f32>) {
    let patch = patch_text(PATCH);
    (
        render_with(&patch, dimension, 0.05),
        render_with(&patch, dimension, 0.95),
    )
}

#[test]
fn higher_energy_is_louder_and_denser() {
    let (low, high) = low_high("energy");
    let (rms_low, rms_high) = (rms_db(&mono(&low)), rms_db(&mono(&high)));
    let (on_low, on_high) = (
        onset_rate_per_sec(&mono(&low), SR as f32),
        onset_rate_per_sec(&mono(&high), SR as f32),
    );
    println!("energy: RMS {rms_low:.1} → {rms_high:.1} dB, onsets {on_low:.2} → {on_high:.2} /s");
    assert!(
        rms_high > rms_low + 4.0,
        "RMS {rms_low:.1} → {rms_high:.1} dB"
    );
    assert!(
        on_high > on_low * 1.4 + 0.3,
        "onsets {on_low:.2} → {on_high:.2} /s"
    );
}

#[test]
fn higher_brightness_raises_the_spectral_centroid() {
    let (low, high) = low_high("brightness");
    let (c_low, c_high) = (
        spectral_centroid_hz(&mono(&low), SR as f32),
        spectral_centroid_hz(&mono(&high), SR as f32),
    );
    println!("brightness: centroid {c_low:.0} → {c_high:.0} Hz");
    assert!(c_high > c_low * 1.5, "centroid {c_low:.0} → {c_high:.0} Hz");
}

#[test]
fn higher_tension_puts_more_energy_outside_the_chord() {
    let (low, high) = low_high("tension");
    let c_major = [0u8, 4, 7];
    let (out_low, out_high) = (
        1.0 - pitch_class_share(&chroma(&mono(&low), SR as f32), &c_major),
        1.0 - pitch_class_share(&chroma(&mono(&high), SR as f32), &c_major),
    );
    println!("tension: energy outside C-E-G {out_low:.3} → {out_high:.3}");
    assert!(
        out_high > out_low + 0.1 && out_high > out_low * 1.5,
        "outside share {out_low:.3} → {out_high:.3}"
    );
}

#[test]
fn higher_unity_concentrates_pitch_and_narrows_the_stereo_image() {
    let (low, high) = low_high("unity");
    let (k_low, k_high) = (
        chroma_concentration(&chroma(&mono(&low), SR as f32)),
        chroma_concentration(&chroma(&mono(&high), SR as f32)),
    );
    let (r_low, r_high) = (lr_correlation(&low), lr_correlation(&high));
    println!("unity: pitch-class concentration {k_low:.3} → {k_high:.3}, L/R correlation {r_low:.3} → {r_high:.3}");
    assert!(
        k_high > k_low + 0.03,
        "concentration {k_low:.3} → {k_high:.3}"
    );
    assert!(
        r_high > r_low + 0.15,
        "correlation {r_low:.3} → {r_high:.3}"
    );
}

#[test]
fn one_participant_cannot_drag_the_communal_mood() {
    // 12 participants calm, one furious: the room's energy barely moves
    let patch = patch_text(PATCH);
    let energy = dim(&patch, "energy");
    let (mut engine, controller) = tapestry::Engine::new(patch.config(SR, None), patch.names());
    for id in 1..=13 {
        controller.join(id, None).unwrap();
    }
    let mut block = vec![0.0f32; 1024];
    engine.process(&mut block);
    for id in 1..=12 {
        controller
            .set_mood(tapestry::MoodTarget::Participant(id), "energy", 0.3, 0.0)
            .unwrap();
    }
    controller
        .set_mood(tapestry::MoodTarget::Participant(13), "energy", 1.0, 0.0)
        .unwrap();
    for _ in 0..(5 * SR as usize / 512) {
        engine.process(&mut block);
    }
    let communal = controller.status().mood(energy as usize);
    assert!((communal - 0.3).abs() < 0.05, "communal energy {communal}");
}

#[test]
fn at_the_height_of_tension_the_music_falters_in_timing_and_tuning() {
    // one voice on a one-beat grid, full unity: at moderate tension its notes sit on the
    // grid; at the height of tension they waver off it
    let patch = patch_text(PATCH);
    let step_secs = 60.0 / 100.0;
    let render = |tension: f32| {
        let mut s = Script::default();
        for (d, v) in [
            ("energy", 0.9),
            ("tension", tension),
            ("brightness", 0.6),
            ("unity", 1.0),
        ] {
            s = s.communal(0.0, dim(&patch, d), v);
        }
        s = s.join(0.0, 1, Some(archetype(&patch, "bell")));
        let out = render_blocks(&patch, &s.performance(40.0), 512, None);
        let x = mono(&out);
        let onsets: Vec<f32> = onsets(&x, SR as f32)
            .into_iter()
            .filter(|t| *t > 2.0)
            .collect();
        // distance of each onset from the beat grid, in seconds
        let offsets: Vec<f32> = onsets
            .iter()
            .map(|t| {
                let phase = t / step_secs;
                (phase - phase.round()).abs() * step_secs
            })
            .collect();
        assert!(
            offsets.len() > 10,
            "the voice played ({} onsets)",
            offsets.len()
        );
        offsets.iter().sum::<f32>() / offsets.len() as f32
    };
    let (steady, falter) = (render(0.5), render(1.0));
    println!("falter: mean distance of onsets from the beat grid {steady:.4} → {falter:.4} s");
    assert!(
        steady < 0.02,
        "at moderate tension notes sit on the grid ({steady:.4} s)"
    );
    assert!(
        falter > steady + 0.03,
        "timing wavers at the height of tension ({steady:.4} → {falter:.4} s)"
    );

    // tuning: a held note wanders in pitch at the height of tension
    let pitch_spread_cents = |tension: f32| {
        let mut s = Script::default();
        for (d, v) in [
            ("energy", 0.9),
            ("tension", tension),
            ("brightness", 0.5),
            ("unity", 1.0),
        ] {
            s = s.communal(0.0, dim(&patch, d), v);
        }
        s = s.join(0.0, 1, Some(archetype(&patch, "lead"))).at(
            0.5,
            tapestry::Command::NoteOn {
                participant: 1,
                pitch: 72,
                velocity: 110,
            },
        );
        let out = render_blocks(&patch, &s.performance(12.0), 512, None);
        let x = mono(&out);
        let cents: Vec<f32> = x[(2 * SR) as usize..]
            .chunks_exact(9600)
            .map(|w| 1200.0 * (dominant_pitch_hz(w, SR as f32) / 523.25).log2())
            .collect();
        let mean = cents.iter().sum::<f32>() / cents.len() as f32;
        (cents.iter().map(|c| (c - mean).powi(2)).sum::<f32>() / cents.len() as f32).sqrt()
    };
    let (steady_cents, falter_cents) = (pitch_spread_cents(0.5), pitch_spread_cents(1.0));
    println!("falter: held-note pitch spread {steady_cents:.1} → {falter_cents:.1} cents");
    assert!(
        steady_cents < 5.0,
        "a steady note holds its pitch ({steady_cents:.1} cents)"
    );
    assert!(
        falter_cents > steady_cents + 8.0,
        "tuning wavers ({steady_cents:.1} → {falter_cents:.1} cents)"
    );
}
