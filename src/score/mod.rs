//! Score: the pure music logic behind Tapestry's generative parts — no audio.
//!
//! - [`theory`]: pitch classes, [`Mode`]s, [`Scale`]s, [`Key`]s and MIDI/Hz conversion.
//! - [`chord`]: [`Chord`]s parsed from roman numerals (`"V7"`, `"bVI"`) or absolute
//!   symbols (`"Am7"`), chord-tone walking, [`darker`] colourings for high tension and
//!   non-chord [`tension_tone`]s.
//! - [`motif`]: seeded step-grid [`Motif`]s (onsets, accents, chord-tone contour) with
//!   [`thin`] / [`fill`] variants so energy can control density.
//!
//! Every type is small and `Copy`. Everything except the `parse` functions is real-time
//! safe (no allocation, no panics for any input, deterministic) and may run on the audio
//! thread; parsing returns `Result<_, String>` with a short message saying what was
//! expected.

pub mod chord;
pub mod motif;
pub mod theory;

pub use chord::{darker, tension_tone, Chord};
pub use motif::{fill, thin, Motif, MotifStyle};
pub use theory::{hz_to_midi, midi_to_hz, parse_pitch_class, pitch_class_name, Key, Mode, Scale};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Hammers every real-time function with extreme and random inputs (debug build, so
    /// arithmetic overflow would panic) and the parsers with random strings.
    #[test]
    fn nothing_panics() {
        let mut rng = Rng::new(0xfeed);
        let ints = [
            i32::MIN,
            i32::MIN + 1,
            -1_000_000,
            -129,
            -1,
            0,
            1,
            60,
            127,
            i32::MAX,
        ];
        let key = Key::new(2, Mode::Dorian);
        let alphabet: Vec<char> = "IVivb#♭♯°ø+ABCDEFGmajdinugs245679o-Δ/ x".chars().collect();
        for round in 0..2000u64 {
            let mode = Mode::ALL[round as usize % Mode::ALL.len()];
            let scale = Scale::new((round % 256) as u8, mode);
            let a = ints[rng.below(ints.len() as u32) as usize];
            let b = if rng.chance(0.5) {
                ints[rng.below(ints.len() as u32) as usize]
            } else {
                rng.next_u64() as i32
            };
            let _ = (scale.contains(a), scale.nearest(a), scale.step(a, b));
            let _ = scale.degree_to_midi(b, a);

            let n = 1 + rng.below(8) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[rng.below(alphabet.len() as u32) as usize])
                .collect();
            let _ = parse_pitch_class(&s);
            let _ = Mode::parse(&s);
            let chord = Chord::parse(&s, &key).unwrap_or(Chord::from_intervals(0, &[0, 4, 7]));
            assert!((1..=6).contains(&chord.len()));
            let _ = (
                chord.tone_midi(b, a),
                chord.nearest_tone(a),
                chord.contains(b),
            );
            let d = darker(&chord, rng.next_f32() * 1.2);
            assert!((1..=6).contains(&d.len()) && d.root == chord.root);
            let t = tension_tone(&chord, &scale, a, &mut rng);
            assert!(!chord.contains(t));

            let style = MotifStyle {
                steps: rng.next_u64() as u8,
                density: rng.next_bipolar() * 2.0,
                range: rng.next_u64() as u8,
                leap_chance: rng.next_f32(),
                repeat_chance: rng.next_f32(),
            };
            let m = Motif::generate(round, &style);
            let m = fill(&thin(&m, rng.next_f32(), round), rng.next_f32(), round);
            let _ = (
                m.onset(usize::MAX),
                m.contour(usize::MAX),
                m.accent(usize::MAX),
            );
        }
    }
}
