//! Joins and leaves make no clicks: every timbre enters with its envelope and leaves with a
//! fade, measured on the rendered audio around the join and the leave.

use crate::common::measure::*;
use crate::common::*;

const PATCH: &str = r#"
version = 1
[piece]
name = "click probe"
seed = 5
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "D"
mode = "dorian"
tempo_bpm = 120
[[score.sections]]
name = "a"
chords = ["i", "IV"]
[mood.energy]
default = 0.9
[mood.tension]
default = 0.3
[mood.brightness]
default = 0.6
[mood.unity]
default = 0.5
[[archetypes]]
id = "pad"
timbre = "pad"
register = [50, 70]
[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 84]
grid_beats = 0.25
motif = { steps = 8, density = 1.0 }
[[archetypes]]
id = "bell"
timbre = "bell"
register = [70, 88]
grid_beats = 0.5
motif = { steps = 8, density = 1.0 }
[[archetypes]]
id = "drone"
timbre = "drone"
register = [38, 50]
[[archetypes]]
id = "choir"
timbre = "choir"
register = [55, 74]
[[archetypes]]
id = "bass"
timbre = "bass"
register = [33, 48]
grid_beats = 0.5
motif = { steps = 4, density = 1.0 }
[[archetypes]]
id = "wind"
timbre = "wind"
register = [60, 80]
grid_beats = 1.0
motif = { steps = 4, density = 1.0 }
[[archetypes]]
id = "lead"
timbre = "lead"
register = [62, 82]
grid_beats = 0.5
motif = { steps = 8, density = 1.0 }
"#;

const JOIN: f64 = 1.0;
const LEAVE: f64 = 6.0;

/// RMS of consecutive 40 ms windows (several periods of the lowest notes).
fn window_rms(x: &[f32], from_secs: f64, to_secs: f64) -> Vec<f32> {
    let w = (SR as f64 * 0.040) as usize;
    let (a, b) = (
        (from_secs * SR as f64) as usize,
        (to_secs * SR as f64) as usize,
    );
    x[a..b.min(x.len())].chunks_exact(w).map(rms).collect()
}

#[test]
fn every_timbre_joins_and_leaves_without_a_click() {
    let patch = patch_text(PATCH);
    for id in patch.archetypes.clone() {
        let a = archetype(&patch, &id);
        // the participant plays notes right up to the leave (a played note is held through it)
        let perf = Script::default()
            .join(JOIN, 1, Some(a))
            .at(
                LEAVE - 0.2,
                tapestry::Command::NoteOn {
                    participant: 1,
                    pitch: 64,
                    velocity: 120,
                },
            )
            .leave(LEAVE, 1)
            .performance(LEAVE + 4.0);
        let out = render_blocks(&patch, &perf, 256, None);
        let x = mono(&out);
        let window = 256;
        let steady = max_jump_ratio(
            &x[(3.0 * SR as f64) as usize..(5.5 * SR as f64) as usize],
            window,
        );
        let join = max_jump_ratio(
            &x[(JOIN * SR as f64) as usize - 4800..(JOIN * SR as f64) as usize + 72_000],
            window,
        );
        let leave = max_jump_ratio(&x[(LEAVE * SR as f64) as usize - 480..], window);
        println!("{id:6}: jump/level steady {steady:.3}, join {join:.3}, leave {leave:.3}");
        // a click is a jump far above the material's own sample-to-sample motion
        assert!(
            join <= (steady * 2.0).max(0.5),
            "{id}: join jump {join:.3} vs steady {steady:.3}"
        );
        assert!(
            leave <= (steady * 2.0).max(0.5),
            "{id}: leave jump {leave:.3} vs steady {steady:.3}"
        );
        // the leave is a fade: from one 40 ms window to the next the level falls no faster
        // than 6 dB, or than the voice's own steady swells and vibrato already move it
        let level = rms(&x[(3.0 * SR as f64) as usize..(5.5 * SR as f64) as usize]);
        let steady_drop = window_rms(&x, 3.0, 5.5)
            .windows(2)
            .map(|p| p[1] / p[0].max(1e-9))
            .fold(1.0f32, f32::min);
        let allowed = 0.5f32.min(steady_drop * 0.7);
        let rms_after = window_rms(&x, LEAVE, LEAVE + 1.0);
        for pair in rms_after.windows(2) {
            if pair[0] > level * 0.05 {
                assert!(
                    pair[1] > pair[0] * allowed,
                    "{id}: level fell from {:.4} to {:.4} in 40 ms (steady playing moves it by {steady_drop:.2}x)",
                    pair[0],
                    pair[1]
                );
            }
        }
        // and it does end: silence a few seconds later
        let tail = rms(&x[((LEAVE + 3.5) * SR as f64) as usize..]);
        assert!(
            tail < level * 0.01,
            "{id}: still sounding after leaving ({tail} vs {level})"
        );
        assert!(level > 1e-3, "{id}: the voice was audible ({level})");
        assert!(
            join > 0.0,
            "{id}: the voice entered within 1.5 s of joining"
        );
    }
}

#[test]
fn sudden_mood_jumps_are_smoothed_without_zipper_noise() {
    // the conductor slams every dimension from low to high at once: loudness, filters and
    // stereo width follow smoothly, with no sample-to-sample jump above the music's own
    let patch = patch_text(PATCH);
    let mut s = Script::default();
    for (i, id) in ["pad", "drone", "choir", "wind"].iter().enumerate() {
        s = s.join(0.0, i as u32 + 1, Some(archetype(&patch, id)));
    }
    for d in ["energy", "brightness", "tension", "unity"] {
        s = s
            .communal(0.0, dim(&patch, d), 0.0)
            .communal(4.0, dim(&patch, d), 1.0);
    }
    let out = render_blocks(&patch, &s.performance(7.0), 256, None);
    let x = mono(&out);
    let steady = max_jump_ratio(
        &x[(2.0 * SR as f64) as usize..(3.9 * SR as f64) as usize],
        256,
    );
    let change = max_jump_ratio(
        &x[(3.95 * SR as f64) as usize..(5.0 * SR as f64) as usize],
        256,
    );
    let after = max_jump_ratio(
        &x[(5.5 * SR as f64) as usize..(6.9 * SR as f64) as usize],
        256,
    );
    println!("mood jump: steady {steady:.3}, during {change:.3}, after {after:.3}");
    assert!(
        change <= steady.max(after) * 1.5,
        "jump ratio {change:.3} while the mood moved"
    );
}

/// The voice of participant 1 (a drone: low and smooth, so a step stands out) leaves at 4.0 s and a newcomer joins at 4.1 s, while
/// it still fades; in a room of `capacity` 1 the newcomer takes its slot. Mono output.
fn takeover(capacity: u32) -> Vec<f32> {
    let text = PATCH.replace("seed = 5", &format!("seed = 5\ncapacity = {capacity}"));
    let patch = patch_text(&text);
    let drone = archetype(&patch, "drone");
    let perf = Script::default()
        .join(0.5, 1, Some(drone))
        .at(
            3.5,
            tapestry::Command::NoteOn {
                participant: 1,
                pitch: 45,
                velocity: 120,
            },
        )
        .leave(4.0, 1)
        .join(4.1, 2, Some(drone))
        .performance(5.0);
    mono(&render_blocks(&patch, &perf, 256, None))
}

#[test]
fn a_fading_voice_cut_off_for_a_newcomer_does_not_click() {
    // around the takeover, before the newcomer's first note (the next beat, 4.5 s)
    let at = |secs: f64| (secs * SR as f64) as usize;
    let full = takeover(1);
    let free = takeover(2);
    let span = at(4.1) - 480..at(4.4);
    let cut = max_second_difference_ratio(&full[span.clone()], 256);
    let faded = max_second_difference_ratio(&free[span.clone()], 256);
    let step = |x: &[f32]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max)
    };
    let (cut_step, faded_step) = (step(&full[span.clone()]), step(&free[span.clone()]));
    let level = rms(&free[at(3.6)..at(4.0)]);
    println!(
        "takeover: second-difference ratio {cut:.4} (a free slot: {faded:.4}); largest \
         sample step {cut_step:.5} ({faded_step:.5}); the voice's level before {level:.4}"
    );
    assert!(level > 1e-3, "the fading voice was audible ({level})");
    assert!(
        cut <= (faded * 3.0).max(0.05),
        "the takeover clicks: {cut:.4} against {faded:.4} with a free slot"
    );
    assert!(
        cut_step <= faded_step * 3.0,
        "sample step {cut_step:.5} against {faded_step:.5}"
    );
    // and the old voice was cut (what is left is the reverb's tail), not left to fade
    let after = rms(&full[at(4.1) + 960..at(4.4)]);
    let fading = rms(&free[at(4.1) + 960..at(4.4)]);
    println!("after the takeover: level {after:.5} (a free slot: {fading:.5})");
    assert!(
        after < fading * 0.8,
        "the cut voice still sounds: {after:.5} against {fading:.5}"
    );
}
