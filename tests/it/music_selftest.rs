//! Self-tests of the musical measures (`tests/common/music.rs`) on synthetic signals: notes
//! land in their pitch classes down to the bass, a plain triad is heard as clearly as it
//! should be, the key finder names scales and cadences in many keys and both modes, band
//! shares and loudness figures match what was synthesized.

use crate::common::music::*;
use std::f64::consts::TAU;

const SR: u32 = 48_000;

fn midi_hz(m: f64) -> f64 {
    440.0 * 2f64.powf((m - 69.0) / 12.0)
}

/// A band-limited tone: `harmonics` partials at amplitude `amp / n^tilt` (tilt 1 = a saw).
fn tone(midi: f64, secs: f64, amp: f64, harmonics: usize, tilt: f64) -> Vec<f32> {
    let f0 = midi_hz(midi);
    let n = (secs * SR as f64) as usize;
    let mut out = vec![0.0f32; n];
    for h in 1..=harmonics {
        let f = f0 * h as f64;
        if f > 0.45 * SR as f64 {
            break;
        }
        let a = amp / (h as f64).powf(tilt);
        for (i, o) in out.iter_mut().enumerate() {
            *o += (a * (TAU * (f * i as f64 / SR as f64).fract()).sin()) as f32;
        }
    }
    out
}

fn sine(hz: f64, secs: f64, amp: f64) -> Vec<f32> {
    let n = (secs * SR as f64) as usize;
    (0..n)
        .map(|i| (amp * (TAU * (hz * i as f64 / SR as f64).fract()).sin()) as f32)
        .collect()
}

fn mix(parts: &[Vec<f32>]) -> Vec<f32> {
    let n = parts.iter().map(|p| p.len()).max().unwrap_or(0);
    let mut out = vec![0.0; n];
    for p in parts {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

/// A chord of saw-like tones (8 harmonics, 1/n).
fn saw_chord(midis: &[f64], secs: f64, amp: f64) -> Vec<f32> {
    mix(&midis
        .iter()
        .map(|&m| tone(m, secs, amp, 8, 1.0))
        .collect::<Vec<_>>())
}

fn stereo(mono: &[f32]) -> Vec<f32> {
    mono.iter().flat_map(|v| [*v, *v]).collect()
}

fn frames(x: &[f32]) -> Frames {
    Frames::of(x, SR as f32)
}

#[test]
fn single_notes_land_in_their_pitch_class_down_to_the_bass() {
    // sines and saws from A0-ish bass to the top of a bell's register
    for midi in [31.0, 33.0, 38.0, 45.0, 52.0, 62.0, 69.0, 81.0, 96.0] {
        let pc = (midi as usize) % 12;
        let s = frames(&sine(midi_hz(midi), 2.0, 0.3)).chroma_between(0.0, 2.0);
        assert!(s[pc] > 0.99, "sine {midi}: share {:.3} ({s:?})", s[pc]);
        let saw = frames(&tone(midi, 2.0, 0.3, 12, 1.0)).chroma_between(0.0, 2.0);
        assert_eq!(
            ranked_classes(&saw)[0] as usize,
            pc,
            "saw {midi} is heard in its own class ({saw:?})"
        );
        // a saw's octaves hold most of its energy; its 3rd and 6th harmonics are the fifth
        assert!(saw[pc] > 0.75, "saw {midi}: own class {:.3}", saw[pc]);
    }
    // a quarter-tone off still goes to the nearest class
    let s = frames(&sine(midi_hz(60.4), 2.0, 0.3)).chroma_between(0.0, 2.0);
    assert!(s[0] > 0.99, "{s:?}");
    let s = frames(&sine(midi_hz(60.6), 2.0, 0.3)).chroma_between(0.0, 2.0);
    assert!(s[1] > 0.99, "{s:?}");
}

#[test]
fn top3_share_of_triads_clusters_and_noise() {
    let triad = frames(&saw_chord(&[60.0, 64.0, 67.0], 4.0, 0.1)).chroma_between(0.0, 4.0);
    let share = top3_share(&triad);
    let mut top: Vec<u8> = ranked_classes(&triad)[..3].to_vec();
    top.sort();
    println!("saw triad C4-E4-G4: top-3 share {share:.3}");
    assert_eq!(top, vec![0, 4, 7]);
    // 8-harmonic saws: the 3rd, 5th, 6th and 7th harmonics of E and G fall outside C-E-G
    assert!((0.80..0.92).contains(&share), "saw triad {share:.3}");
    let sines = frames(&mix(&[60.0, 64.0, 67.0].map(|m| sine(midi_hz(m), 4.0, 0.1))))
        .chroma_between(0.0, 4.0);
    assert!(top3_share(&sines) > 0.99);
    // four equal sines a semitone apart: 3 of 4 equal classes
    let cluster = frames(&mix(
        &[60.0, 61.0, 62.0, 63.0].map(|m| sine(midi_hz(m), 4.0, 0.1))
    ))
    .chroma_between(0.0, 4.0);
    assert!((top3_share(&cluster) - 0.75).abs() < 0.03, "{cluster:?}");
    // white noise spreads over every class
    let mut state = 0x1234_5678u32;
    let noise: Vec<f32> = (0..4 * SR)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    let n = frames(&noise).chroma_between(0.0, 4.0);
    println!("white noise: top-3 share {:.3}", top3_share(&n));
    assert!(top3_share(&n) < 0.35, "noise {:.3}", top3_share(&n));
    assert_eq!(top3_share(&[0.0; 12]), 0.0);
}

#[test]
fn top3_per_bar_follows_the_bars() {
    // C, F, G, C major, one per 2 s bar: every bar clear; the same chords shifted by half
    // a bar blur every bar into two chords
    let bar = 2.0;
    let chords = [
        [60.0, 64.0, 67.0],
        [65.0, 69.0, 72.0],
        [67.0, 71.0, 74.0],
        [60.0, 64.0, 67.0],
    ];
    let mut aligned = Vec::new();
    for c in &chords {
        aligned.extend(mix(&c.map(|m| sine(midi_hz(m), bar, 0.1))));
    }
    let f = frames(&aligned);
    let shares = f.top3_per_bar(bar as f32, 0.0, 8.0);
    assert_eq!(shares.len(), 4);
    assert!(shares.iter().all(|s| *s > 0.95), "{shares:?}");
    let shifted = f.top3_per_bar(bar as f32, 1.0, 7.0);
    assert_eq!(shifted.len(), 3);
    assert!(shifted.iter().all(|s| *s < 0.8), "{shifted:?}");
    // a silent bar is skipped, not counted as a zero
    let mut with_gap = aligned.clone();
    with_gap.extend(vec![0.0; (bar * SR as f64) as usize]);
    let shares = frames(&with_gap).top3_per_bar(bar as f32, 0.0, 10.0);
    assert_eq!(shares.len(), 4, "{shares:?}");
    assert!(mean(&shares) > 0.95);
}

/// A cadence in a key: tonic, subdominant, dominant (with the leading tone in minor),
/// tonic, then the scale up and down in the melody, over a bass on the roots.
fn cadence(tonic: u8, minor: bool) -> Vec<f32> {
    let t = 48.0 + tonic as f64;
    let third = if minor { 3.0 } else { 4.0 };
    let sixth = if minor { 8.0 } else { 9.0 };
    let chords: [[f64; 3]; 4] = [
        [0.0, third, 7.0],
        [5.0, sixth, 12.0],
        [7.0, 11.0, 14.0],
        [0.0, third, 7.0],
    ];
    let scale: Vec<f64> = if minor {
        vec![0.0, 2.0, 3.0, 5.0, 7.0, 8.0, 11.0, 12.0]
    } else {
        vec![0.0, 2.0, 4.0, 5.0, 7.0, 9.0, 11.0, 12.0]
    };
    let mut out = Vec::new();
    for (i, c) in chords.iter().enumerate() {
        let mut parts: Vec<Vec<f32>> = c
            .iter()
            .map(|iv| tone(t + 12.0 + iv, 1.5, 0.06, 6, 1.0))
            .collect();
        parts.push(tone(t - 12.0 + c[0], 1.5, 0.1, 6, 1.0));
        // melody: two scale notes per chord, up then down
        let m = if i < 2 { i * 2 } else { 7 - (i - 2) * 2 };
        let mut melody = tone(t + 24.0 + scale[m], 0.75, 0.07, 4, 1.0);
        melody.extend(tone(t + 24.0 + scale[(m + 1).min(7)], 0.75, 0.07, 4, 1.0));
        parts.push(melody);
        out.extend(mix(&parts));
    }
    out
}

#[test]
fn the_key_finder_names_cadences_in_many_keys_and_both_modes() {
    for (tonic, minor) in [
        (0, false),
        (2, false),
        (6, false),
        (10, false),
        (9, true),
        (4, true),
        (1, true),
        (5, true),
        (2, true),
    ] {
        let x = cadence(tonic, minor);
        let keys = key_ranking(&frames(&x).key_chroma());
        let best = keys[0];
        println!(
            "cadence in {}: heard {} (r {:.2}), next {} (r {:.2})",
            KeyMatch {
                tonic,
                minor,
                r: 0.0
            }
            .name(),
            best.name(),
            best.r,
            keys[1].name(),
            keys[1].r
        );
        assert_eq!((best.tonic, best.minor), (tonic, minor), "{}", best.name());
        assert!(best.r > 0.6, "weak match {:.2}", best.r);
        assert!(best.is_or_relative_of(tonic, minor));
    }
}

#[test]
fn the_key_finder_hears_modal_material_in_its_tonic_or_relative() {
    // over a D pedal: D dorian as i - VII - i - v - i (D minor or F major expected) and
    // D lydian as I - II - I - II - I (D major or B minor expected; its notes are A major's)
    let bars = |chords: &[[f64; 3]]| {
        let mut out = Vec::new();
        for c in chords {
            let mut parts: Vec<Vec<f32>> = c.iter().map(|m| tone(*m, 1.5, 0.06, 6, 1.0)).collect();
            parts.push(tone(38.0, 1.5, 0.12, 6, 1.0));
            parts.push(tone(50.0, 1.5, 0.06, 6, 1.0));
            out.extend(mix(&parts));
        }
        out
    };
    let dorian = bars(&[
        [62.0, 65.0, 69.0],
        [60.0, 64.0, 67.0],
        [62.0, 65.0, 69.0],
        [57.0, 60.0, 64.0],
        [62.0, 65.0, 69.0],
    ]);
    let chroma = frames(&dorian).key_chroma();
    let best = key_ranking(&chroma)[0];
    println!("D dorian heard as {} (r {:.2})", best.name(), best.r);
    assert!(best.is_or_relative_of(2, true), "{}", best.name());
    let lydian = bars(&[
        [62.0, 66.0, 69.0],
        [64.0, 68.0, 71.0],
        [62.0, 66.0, 69.0],
        [64.0, 68.0, 71.0],
        [62.0, 66.0, 69.0],
    ]);
    let best = key_ranking(&frames(&lydian).key_chroma())[0];
    println!("D lydian heard as {} (r {:.2})", best.name(), best.r);
    assert!(best.is_or_relative_of(2, false), "{}", best.name());
    assert!(key_ranking(&[0.0; 12]).iter().all(|k| k.r == 0.0));
    // and the relative pairs are what they should be
    let c_major = KeyMatch {
        tonic: 0,
        minor: false,
        r: 0.0,
    };
    assert_eq!(c_major.relative(), (9, true));
    assert!(c_major.is_or_relative_of(9, true) && !c_major.is_or_relative_of(0, true));
}

#[test]
fn band_shares_match_the_synthesized_powers() {
    // 60 Hz, 400 Hz and 3 kHz at amplitudes 0.2, 0.1, 0.05: powers 4 : 1 : 0.25
    let x = mix(&[
        sine(60.0, 4.0, 0.2),
        sine(400.0, 4.0, 0.1),
        sine(3000.0, 4.0, 0.05),
    ]);
    let s = frames(&x).band_shares_between(0.0, 4.0);
    let expected = [4.0 / 5.25, 1.0 / 5.25, 0.25 / 5.25];
    println!("band shares {s:?}, expected {expected:?}");
    for (a, e) in s.iter().zip(expected) {
        assert!((a - e).abs() < 0.01, "{s:?} vs {expected:?}");
    }
    // a stretch of time sees only its own content
    let mut two = sine(80.0, 3.0, 0.2);
    two.extend(sine(2000.0, 3.0, 0.2));
    let f = frames(&two);
    assert!(f.band_shares_between(0.0, 2.5)[0] > 0.99);
    assert!(f.band_shares_between(3.5, 6.0)[2] > 0.99);
    assert_eq!(frames(&[]).band_shares_between(0.0, 1.0), [0.0; 3]);
}

#[test]
fn loudness_of_sections_over_time_and_its_range() {
    // 1 kHz in both channels at -20 dBFS peak: about -20 LUFS (K-weighting adds ~0.7 dB at
    // 1 kHz, the stereo sum and the -0.691 offset take it back)
    let loud = sine(1000.0, 20.0, 0.1);
    let quiet = sine(1000.0, 20.0, 0.1 * 10f64.powf(-12.0 / 20.0));
    let l = integrated_lufs(&stereo(&loud), SR);
    let q = integrated_lufs(&stereo(&quiet), SR);
    println!("integrated: {l:.2} and {q:.2} LUFS");
    assert!((l + 20.0).abs() < 0.3, "{l}");
    assert!((l - q - 12.0).abs() < 0.05, "{l} {q}");
    // a 12 dB step half way: the loudness range is the step
    let mut step = loud.clone();
    step.extend(&quiet);
    let lra = loudness_range_lu(&stereo(&step), SR);
    println!("LRA of a 12 dB step: {lra:.2} LU");
    assert!((lra - 12.0).abs() < 0.6, "{lra}");
    assert!(loudness_range_lu(&stereo(&loud), SR) < 0.5);
    // short-term loudness follows the step once its 3 s window has passed it
    let st = short_term_lufs(&stereo(&step), SR, 0.5);
    assert_eq!(st.len(), 80);
    assert!(
        (st[15] - l).abs() < 0.2 && (st[60] - q).abs() < 0.2,
        "{st:?}"
    );
    assert!(st[41] < l - 1.0 && st[41] > q + 1.0, "mid-step {}", st[41]);
    // a 1 s hole: the momentary loudness drops into it, the short-term much less
    let mut holed = loud.clone();
    holed[5 * SR as usize..6 * SR as usize].fill(0.0);
    let m = momentary_lufs(&stereo(&holed), SR, 0.1);
    let min_m = m[52..62].iter().fold(f64::INFINITY, |a, b| a.min(*b));
    assert!(min_m < l - 20.0, "momentary in the hole {min_m}");
    assert_eq!(integrated_lufs(&[], SR), f64::NEG_INFINITY);
    assert_eq!(loudness_range_lu(&[0.0; 96_000], SR), 0.0);
}

#[test]
fn tonal_share_tells_notes_from_noise() {
    let chord = saw_chord(&[48.0, 60.0, 64.0, 67.0, 72.0], 4.0, 0.05);
    let mut state = 0x9e37_79b9u32;
    let noise: Vec<f32> = (0..4 * SR)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            0.1 * ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        })
        .collect();
    let (t_chord, t_noise) = (
        frames(&chord).tonal_share_between(0.0, 4.0),
        frames(&noise).tonal_share_between(0.0, 4.0),
    );
    // noise four times stronger (its power spread over the whole band) clouds the chord
    let both = mix(&[chord.clone(), noise.iter().map(|v| v * 4.0).collect()]);
    let t_both = frames(&both).tonal_share_between(0.0, 4.0);
    println!(
        "tonal share: chord {t_chord:.3}, noise {t_noise:.3}, chord under loud noise {t_both:.3}"
    );
    assert!(t_chord > 0.9, "{t_chord}");
    assert!(t_noise < 0.05, "{t_noise}");
    assert!(t_both < t_chord - 0.2 && t_both > t_noise + 0.2, "{t_both}");
}

#[test]
fn low_end_overlap_tells_unisons_from_octaves() {
    let a = frames(&tone(33.0, 4.0, 0.2, 4, 1.0));
    let same = frames(&tone(33.0, 4.0, 0.1, 4, 1.0));
    let octave_up = frames(&tone(45.0, 4.0, 0.1, 1, 1.0));
    let two_up = frames(&tone(57.0, 4.0, 0.1, 1, 1.0));
    let silent = frames(&vec![0.0; 4 * SR as usize]);
    let (o_same, o_octave, o_two) = (
        low_end_overlap(&a, &same, 0.0, 4.0),
        low_end_overlap(&a, &octave_up, 0.0, 4.0),
        low_end_overlap(&frames(&sine(midi_hz(33.0), 4.0, 0.2)), &two_up, 0.0, 4.0),
    );
    println!("low-end overlap: unison {o_same:.3}, octave above a 4-harmonic tone {o_octave:.3}, sines two octaves apart {o_two:.3}");
    assert!(o_same > 0.95, "{o_same}");
    // a sine an octave above a bass note shares the band of its 2nd harmonic only
    assert!(o_octave < 0.4, "{o_octave}");
    assert!(o_two < 0.05, "{o_two}");
    assert_eq!(low_end_overlap(&a, &silent, 0.0, 4.0), 0.0);
}

#[test]
fn stereo_frames_add_the_channels_powers() {
    // a tone in antiphase vanishes from a mono sum, not from the stereo analysis
    let x = sine(440.0, 2.0, 0.2);
    let antiphase: Vec<f32> = x.iter().flat_map(|v| [*v, -*v]).collect();
    let f = Frames::of_stereo(&antiphase, SR as f32);
    assert!(f.chroma_between(0.0, 2.0)[9] > 0.99);
    let mono: Vec<f32> = antiphase
        .chunks_exact(2)
        .map(|c| 0.5 * (c[0] + c[1]))
        .collect();
    assert_eq!(frames(&mono).chroma_between(0.0, 2.0), [0.0; 12]);
}

#[test]
fn stereo_correlation_above_the_bass_measures_the_image() {
    let chord = saw_chord(&[60.0, 64.0, 67.0], 3.0, 0.05);
    let bass = tone(33.0, 3.0, 0.3, 1, 1.0);
    let mut state = 0x2545_f491u32;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        0.05 * ((state >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
    };
    let corr = |l: &[f32], r: &[f32]| {
        let x: Vec<f32> = l.iter().zip(r).flat_map(|(a, b)| [*a, *b]).collect();
        Frames::of_stereo(&x, SR as f32).correlation_between(0.0, 3.0)
    };
    let centre = corr(&chord, &chord);
    // the chord hard left, a different noise on each side, a polarity flip
    let silent = vec![0.0f32; chord.len()];
    let one_sided = corr(&chord, &silent);
    let (nl, nr): (Vec<f32>, Vec<f32>) = (0..chord.len()).map(|_| (noise(), noise())).unzip();
    let unrelated = corr(&nl, &nr);
    let flipped: Vec<f32> = chord.iter().map(|v| -v).collect();
    let antiphase = corr(&chord, &flipped);
    // two chords panned to opposite sides over a centred bass: the bass does not narrow
    // the measured image
    let other = saw_chord(&[62.0, 66.0, 69.0], 3.0, 0.05);
    let left: Vec<f32> = (0..chord.len())
        .map(|i| 0.9 * chord[i] + 0.2 * other[i] + bass[i])
        .collect();
    let right: Vec<f32> = (0..chord.len())
        .map(|i| 0.2 * chord[i] + 0.9 * other[i] + bass[i])
        .collect();
    let panned = corr(&left, &right);
    let expected = 2.0 * 0.9 * 0.2 / (0.81f32 + 0.04);
    println!(
        "correlation above 200 Hz: centred {centre:.3}, one-sided {one_sided:.3}, unrelated {unrelated:.3}, \
         antiphase {antiphase:.3}, panned over a centred bass {panned:.3} (expected {expected:.3})"
    );
    assert!(centre > 0.999 && antiphase < -0.999);
    assert!(one_sided.abs() < 1e-6 && unrelated.abs() < 0.05);
    assert!((panned - expected).abs() < 0.05, "{panned}");
}
