//! Pitch classes, modes, scales and keys.
//!
//! Pitch classes are `u8` in `0..12` with C = 0. MIDI notes are `i32` (middle C = 60,
//! A4 = 69). Everything except the `parse` functions is real-time safe: no allocation,
//! no panics for any input, deterministic.

/// A musical mode (scale pattern) relative to a tonic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Ionian / major: 0 2 4 5 7 9 11.
    Major,
    /// Aeolian / natural minor: 0 2 3 5 7 8 10.
    Minor,
    /// Dorian: 0 2 3 5 7 9 10.
    Dorian,
    /// Phrygian: 0 1 3 5 7 8 10.
    Phrygian,
    /// Lydian: 0 2 4 6 7 9 11.
    Lydian,
    /// Mixolydian: 0 2 4 5 7 9 10.
    Mixolydian,
    /// Locrian: 0 1 3 5 6 8 10.
    Locrian,
    /// Harmonic minor: 0 2 3 5 7 8 11.
    HarmonicMinor,
    /// Melodic minor (ascending form): 0 2 3 5 7 9 11.
    MelodicMinor,
    /// Major pentatonic: 0 2 4 7 9.
    MajorPentatonic,
    /// Minor pentatonic: 0 3 5 7 10.
    MinorPentatonic,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 11] = [
        Mode::Major,
        Mode::Minor,
        Mode::Dorian,
        Mode::Phrygian,
        Mode::Lydian,
        Mode::Mixolydian,
        Mode::Locrian,
        Mode::HarmonicMinor,
        Mode::MelodicMinor,
        Mode::MajorPentatonic,
        Mode::MinorPentatonic,
    ];

    /// The names [`Mode::parse`] accepts (it also accepts them in any case, with `-` or a
    /// space instead of `_`).
    pub const NAMES: &'static [&'static str] = &[
        "major",
        "ionian",
        "minor",
        "aeolian",
        "dorian",
        "phrygian",
        "lydian",
        "mixolydian",
        "locrian",
        "harmonic_minor",
        "melodic_minor",
        "major_pentatonic",
        "minor_pentatonic",
    ];

    /// Parses a mode name such as `"dorian"` or `"harmonic_minor"` (see [`Mode::NAMES`]).
    pub fn parse(s: &str) -> Result<Mode, String> {
        let norm: String = s
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Ok(match norm.as_str() {
            "major" | "ionian" => Mode::Major,
            "minor" | "aeolian" => Mode::Minor,
            "dorian" => Mode::Dorian,
            "phrygian" => Mode::Phrygian,
            "lydian" => Mode::Lydian,
            "mixolydian" => Mode::Mixolydian,
            "locrian" => Mode::Locrian,
            "harmonic_minor" => Mode::HarmonicMinor,
            "melodic_minor" => Mode::MelodicMinor,
            "major_pentatonic" => Mode::MajorPentatonic,
            "minor_pentatonic" => Mode::MinorPentatonic,
            _ => {
                return Err(format!(
                    "expected a mode, one of: {} (got \"{}\")",
                    Mode::NAMES.join(", "),
                    s.trim()
                ))
            }
        })
    }

    /// The canonical name of this mode (one of [`Mode::NAMES`]).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Major => "major",
            Mode::Minor => "minor",
            Mode::Dorian => "dorian",
            Mode::Phrygian => "phrygian",
            Mode::Lydian => "lydian",
            Mode::Mixolydian => "mixolydian",
            Mode::Locrian => "locrian",
            Mode::HarmonicMinor => "harmonic_minor",
            Mode::MelodicMinor => "melodic_minor",
            Mode::MajorPentatonic => "major_pentatonic",
            Mode::MinorPentatonic => "minor_pentatonic",
        }
    }

    /// Semitones from the tonic, ascending, starting with 0.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Mode::Major => &[0, 2, 4, 5, 7, 9, 11],
            Mode::Minor => &[0, 2, 3, 5, 7, 8, 10],
            Mode::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Mode::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
            Mode::Lydian => &[0, 2, 4, 6, 7, 9, 11],
            Mode::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Mode::Locrian => &[0, 1, 3, 5, 6, 8, 10],
            Mode::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Mode::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
            Mode::MajorPentatonic => &[0, 2, 4, 7, 9],
            Mode::MinorPentatonic => &[0, 3, 5, 7, 10],
        }
    }

    /// The seven-note parent of this mode: pentatonics map to major / natural minor, the
    /// others to themselves. Roman numerals count degrees in this scale.
    pub fn heptatonic(self) -> Mode {
        match self {
            Mode::MajorPentatonic => Mode::Major,
            Mode::MinorPentatonic => Mode::Minor,
            m => m,
        }
    }

    /// True if the mode's third is minor (3 semitones above the tonic).
    pub fn is_minor(self) -> bool {
        self.heptatonic().intervals().get(2) == Some(&3)
    }
}

/// Parses a pitch class name: a letter `A`–`G` (either case) followed by any number of
/// accidentals `#`, `b`, `♯`, `♭`. Returns `0..12` with C = 0 (so `"Cb"` is 11).
pub fn parse_pitch_class(s: &str) -> Result<u8, String> {
    let err = || {
        format!(
            "expected a key like \"D\", \"F#\" or \"Bb\" (got \"{}\")",
            s.trim()
        )
    };
    let mut chars = s.trim().chars();
    let base: i32 = match chars.next().map(|c| c.to_ascii_uppercase()) {
        Some('C') => 0,
        Some('D') => 2,
        Some('E') => 4,
        Some('F') => 5,
        Some('G') => 7,
        Some('A') => 9,
        Some('B') => 11,
        _ => return Err(err()),
    };
    let mut shift = 0i32;
    for (i, c) in chars.enumerate() {
        match c {
            // at most a double sharp or flat: "C##########" is a typo, not a key
            _ if i >= 2 => return Err(err()),
            '#' | '♯' => shift += 1,
            'b' | '♭' => shift -= 1,
            _ => return Err(err()),
        }
    }
    Ok((base + shift).rem_euclid(12) as u8)
}

/// Conventional name of a pitch class (`pc` is taken modulo 12): C, C#, D, Eb, E, F, F#,
/// G, Ab, A, Bb, B.
pub fn pitch_class_name(pc: u8) -> &'static str {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
    ];
    NAMES[(pc % 12) as usize]
}

/// Clamps an `i64` into the `i32` range.
#[inline]
pub(crate) fn sat_i32(x: i64) -> i32 {
    x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// True if `x` fits in an `i32`.
#[inline]
pub(crate) fn fits_i32(x: i64) -> bool {
    x >= i32::MIN as i64 && x <= i32::MAX as i64
}

/// A concrete scale: a tonic pitch class plus a set of intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    tonic: u8,
    mask: u16,
    intervals: [u8; 12],
    len: u8,
}

impl Scale {
    /// The scale of `mode` on tonic pitch class `tonic_pc` (taken modulo 12).
    pub fn new(tonic_pc: u8, mode: Mode) -> Scale {
        let tonic = tonic_pc % 12;
        let mut intervals = [0u8; 12];
        let mut mask = 0u16;
        let mut len = 0u8;
        for (slot, &iv) in intervals.iter_mut().zip(mode.intervals()) {
            *slot = iv;
            mask |= 1 << ((tonic + iv) % 12);
            len += 1;
        }
        Scale {
            tonic,
            mask,
            intervals,
            len,
        }
    }

    /// Tonic pitch class, `0..12`.
    pub fn tonic(&self) -> u8 {
        self.tonic
    }

    /// Number of notes per octave (5 or 7 for the built-in modes).
    pub fn len(&self) -> usize {
        self.len.min(12) as usize
    }

    /// Always false for scales built by [`Scale::new`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Semitones above the tonic of each scale degree, ascending.
    pub fn intervals(&self) -> &[u8] {
        self.intervals.get(..self.len()).unwrap_or(&[])
    }

    /// Bit `i` is set when pitch class `i` belongs to the scale.
    pub fn mask(&self) -> u16 {
        self.mask
    }

    /// True if the pitch class of `midi_or_pc` (modulo 12) is in the scale.
    pub fn contains(&self, midi_or_pc: i32) -> bool {
        self.mask & (1 << midi_or_pc.rem_euclid(12)) != 0
    }

    /// The MIDI note of scale degree `degree`, where degree 0 is `tonic_midi` (assumed to
    /// be a tonic; it is not checked), degree `len()` is an octave above and negative
    /// degrees go down. Saturates at the `i32` limits.
    pub fn degree_to_midi(&self, degree: i32, tonic_midi: i32) -> i32 {
        sat_i32(self.degree_to_midi_i64(degree as i64, tonic_midi as i64))
    }

    fn degree_to_midi_i64(&self, degree: i64, tonic_midi: i64) -> i64 {
        let len = self.len() as i64;
        if len == 0 {
            return tonic_midi;
        }
        let oct = degree.div_euclid(len);
        let idx = degree.rem_euclid(len) as usize;
        let iv = self.intervals.get(idx).copied().unwrap_or(0) as i64;
        tonic_midi + oct * 12 + iv
    }

    /// Index of a pitch-class offset from the tonic in `intervals`, if present.
    fn index_of_offset(&self, offset: u8) -> Option<usize> {
        self.intervals().iter().position(|&iv| iv == offset)
    }

    /// Absolute scale degree of an in-scale note, counted from the tonic in MIDI octave
    /// -1 (the tonic pitch class as a MIDI number `0..12`).
    fn absolute_degree(&self, midi: i64) -> Option<i64> {
        let rel = midi - self.tonic as i64;
        let offset = rel.rem_euclid(12);
        let idx = self.index_of_offset(offset as u8)? as i64;
        Some(rel.div_euclid(12) * self.len() as i64 + idx)
    }

    /// The scale note nearest to `midi`; ties go down.
    pub fn nearest(&self, midi: i32) -> i32 {
        if self.mask & 0x0fff == 0 {
            return midi;
        }
        let m = midi as i64;
        for d in 0..=12i64 {
            for c in [m - d, m + d] {
                if fits_i32(c) && self.contains(c.rem_euclid(12) as i32) {
                    return c as i32;
                }
            }
        }
        midi
    }

    /// Moves `steps` scale steps from `midi`. If `midi` is in the scale this is plain
    /// degree arithmetic. If it is not, one step up lands on the first scale note above
    /// it and one step down on the first scale note below it (further steps continue from
    /// there); `steps == 0` returns [`Scale::nearest`]. Saturates at the `i32` limits.
    pub fn step(&self, midi: i32, steps: i32) -> i32 {
        if self.len == 0 {
            return midi;
        }
        if steps == 0 {
            return self.nearest(midi);
        }
        let m = midi as i64;
        let steps = steps as i64;
        let (start, remaining) = if self.contains(midi) {
            (m, steps)
        } else if steps > 0 {
            (self.search(m, 1), steps - 1)
        } else {
            (self.search(m, -1), steps + 1)
        };
        match self.absolute_degree(start) {
            Some(deg) => sat_i32(self.degree_to_midi_i64(deg + remaining, self.tonic as i64)),
            None => sat_i32(start),
        }
    }

    /// First scale note strictly beyond `m` in direction `dir` (±1), in `i64`.
    fn search(&self, m: i64, dir: i64) -> i64 {
        for d in 1..=12i64 {
            let c = m + d * dir;
            if self.contains(c.rem_euclid(12) as i32) {
                return c;
            }
        }
        m
    }
}

/// A key: tonic pitch class plus mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Tonic pitch class, `0..12` (C = 0).
    pub tonic: u8,
    /// The mode.
    pub mode: Mode,
}

impl Key {
    /// A key on `tonic` (taken modulo 12) in `mode`.
    pub const fn new(tonic: u8, mode: Mode) -> Key {
        Key {
            tonic: tonic % 12,
            mode,
        }
    }

    /// Parses a key from a tonic name (see [`parse_pitch_class`]) and a mode name (see
    /// [`Mode::parse`]), e.g. `Key::parse("D", "dorian")`.
    pub fn parse(tonic: &str, mode: &str) -> Result<Key, String> {
        Ok(Key::new(parse_pitch_class(tonic)?, Mode::parse(mode)?))
    }

    /// The scale of this key.
    pub fn scale(&self) -> Scale {
        Scale::new(self.tonic, self.mode)
    }
}

/// Frequency in Hz of a (fractional) MIDI note, A4 = 69 = 440 Hz.
pub fn midi_to_hz(midi: f32) -> f32 {
    440.0 * ((midi - 69.0) / 12.0).exp2()
}

/// (Fractional) MIDI note of a frequency in Hz, A4 = 69 = 440 Hz. Non-positive or NaN
/// input is treated as 1e-6 Hz, so the result is always finite for finite input.
pub fn hz_to_midi(hz: f32) -> f32 {
    69.0 + 12.0 * (hz.max(1e-6) / 440.0).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(s: &str) -> u8 {
        parse_pitch_class(s).unwrap()
    }

    #[test]
    fn pitch_class_parsing() {
        assert_eq!(pc("C"), 0);
        assert_eq!(pc("c"), 0);
        assert_eq!(pc("C#"), 1);
        assert_eq!(pc("Db"), 1);
        assert_eq!(pc("F#"), 6);
        assert_eq!(pc("f♯"), 6);
        assert_eq!(pc("Bb"), 10);
        assert_eq!(pc("B♭"), 10);
        assert_eq!(pc("bb"), 10);
        assert_eq!(pc("B"), 11);
        assert_eq!(pc("Cb"), 11);
        assert_eq!(pc(" E "), 4);
        for bad in ["", "H", "C+", "#C", "Do"] {
            let e = parse_pitch_class(bad).unwrap_err();
            assert!(e.contains("expected"), "{e}");
        }
        for p in 0..12 {
            assert_eq!(pc(pitch_class_name(p)), p);
        }
        assert_eq!(pitch_class_name(13), "C#");
    }

    #[test]
    fn mode_parsing() {
        for &name in Mode::NAMES {
            let m = Mode::parse(name).unwrap();
            assert!(Mode::NAMES.contains(&m.name()));
        }
        assert_eq!(Mode::parse("ionian").unwrap(), Mode::Major);
        assert_eq!(Mode::parse("aeolian").unwrap(), Mode::Minor);
        assert_eq!(Mode::parse("Harmonic Minor").unwrap(), Mode::HarmonicMinor);
        assert_eq!(Mode::parse("melodic-minor").unwrap(), Mode::MelodicMinor);
        let e = Mode::parse("blues").unwrap_err();
        assert!(e.contains("expected a mode") && e.contains("dorian"), "{e}");
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()).unwrap(), m);
            let iv = m.intervals();
            assert_eq!(iv[0], 0);
            assert!(iv.windows(2).all(|w| w[0] < w[1]));
            assert!(*iv.last().unwrap() < 12);
        }
        assert!(Mode::Dorian.is_minor());
        assert!(Mode::MinorPentatonic.is_minor());
        assert!(!Mode::Lydian.is_minor());
    }

    #[test]
    fn d_dorian_has_c_and_b_natural() {
        let s = Key::parse("D", "dorian").unwrap().scale();
        assert!(s.contains(0)); // C
        assert!(s.contains(11)); // B
        assert!(!s.contains(1)); // no C#
        assert!(!s.contains(10)); // no Bb
        assert!(s.contains(62) && s.contains(-10)); // D, and D below MIDI 0
        assert_eq!(s.mask(), Scale::new(0, Mode::Major).mask());
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn key_parse_errors() {
        assert!(Key::parse("X", "major")
            .unwrap_err()
            .contains("expected a key"));
        assert!(Key::parse("C", "nope")
            .unwrap_err()
            .contains("expected a mode"));
        let k = Key::parse("Eb", "minor").unwrap();
        assert_eq!(k, Key::new(3, Mode::Minor));
    }

    #[test]
    fn degrees() {
        let c = Scale::new(0, Mode::Major);
        assert_eq!(c.degree_to_midi(0, 60), 60);
        assert_eq!(c.degree_to_midi(2, 60), 64);
        assert_eq!(c.degree_to_midi(7, 60), 72);
        assert_eq!(c.degree_to_midi(-1, 60), 59);
        assert_eq!(c.degree_to_midi(-7, 60), 48);
        assert_eq!(c.degree_to_midi(-8, 60), 47);
        let p = Scale::new(9, Mode::MinorPentatonic);
        assert_eq!(p.degree_to_midi(5, 57), 69);
        assert_eq!(p.degree_to_midi(-1, 57), 55);
        // Extreme inputs saturate instead of panicking.
        let _ = c.degree_to_midi(i32::MAX, i32::MAX);
        let _ = c.degree_to_midi(i32::MIN, i32::MIN);
    }

    #[test]
    fn nearest_and_step() {
        let c = Scale::new(0, Mode::Major);
        assert_eq!(c.nearest(60), 60);
        assert_eq!(c.nearest(61), 60); // tie C/D goes down
        assert_eq!(c.nearest(66), 65); // F#: tie F/G goes down
        let p = Scale::new(0, Mode::MajorPentatonic); // C D E G A
        assert_eq!(p.nearest(65), 64); // F -> E (1) vs G (2)
        assert_eq!(p.nearest(66), 67); // F# -> G
        assert_eq!(p.nearest(71), 72); // B -> C above (1) vs A (2)

        assert_eq!(c.step(60, 1), 62);
        assert_eq!(c.step(60, -1), 59);
        assert_eq!(c.step(64, 7), 76);
        assert_eq!(c.step(60, -8), 47);
        assert_eq!(c.step(61, 1), 62);
        assert_eq!(c.step(61, -1), 60);
        assert_eq!(c.step(61, 2), 64);
        assert_eq!(c.step(61, 0), 60);
        assert_eq!(c.step(-5, 1), -3); // G below MIDI 0 -> A
        for &(m, s) in &[
            (i32::MAX, i32::MAX),
            (i32::MIN, i32::MIN),
            (i32::MAX, i32::MIN),
            (i32::MIN, 1),
            (i32::MAX, -1),
        ] {
            let _ = c.step(m, s);
            let _ = p.step(m, s);
            let _ = c.nearest(m);
        }
        assert!(c.contains(c.nearest(i32::MAX)));
        assert!(c.contains(c.nearest(i32::MIN)));
    }

    #[test]
    fn frequencies() {
        assert!((midi_to_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((midi_to_hz(81.0) - 880.0).abs() < 1e-2);
        assert!((midi_to_hz(60.0) - 261.6256).abs() < 1e-2);
        assert!((hz_to_midi(440.0) - 69.0).abs() < 1e-4);
        assert!((hz_to_midi(midi_to_hz(47.3)) - 47.3).abs() < 1e-3);
        assert!(hz_to_midi(0.0).is_finite());
        assert!(hz_to_midi(-5.0).is_finite());
        assert!(hz_to_midi(f32::NAN).is_finite());
    }
}
