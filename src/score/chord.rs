//! Chords: parsing (roman numerals and absolute symbols), voicing helpers, darker
//! colourings and non-chord tension tones.
//!
//! A [`Chord`] is a root pitch class plus up to six distinct pitch classes in stacking
//! order (root, third, fifth, seventh, ninth, colour). Everything except
//! [`Chord::parse`] is real-time safe: no allocation, no panics, deterministic.

use super::theory::{fits_i32, parse_pitch_class, sat_i32, Key, Mode, Scale};
use crate::rng::Rng;

/// Maximum number of tones in a chord.
pub const MAX_TONES: usize = 6;

/// A chord: root pitch class plus its tones as pitch classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chord {
    /// Root pitch class, `0..12`.
    pub root: u8,
    tones: [u8; MAX_TONES],
    len: u8,
}

/// Absolute chord-symbol suffixes and their intervals above the root, in stacking order.
const QUALITIES: &[(&str, &[u8])] = &[
    ("", &[0, 4, 7]),
    ("maj", &[0, 4, 7]),
    ("M", &[0, 4, 7]),
    ("m", &[0, 3, 7]),
    ("min", &[0, 3, 7]),
    ("-", &[0, 3, 7]),
    ("dim", &[0, 3, 6]),
    ("°", &[0, 3, 6]),
    ("o", &[0, 3, 6]),
    ("aug", &[0, 4, 8]),
    ("+", &[0, 4, 8]),
    ("5", &[0, 7]),
    ("7", &[0, 4, 7, 10]),
    ("maj7", &[0, 4, 7, 11]),
    ("M7", &[0, 4, 7, 11]),
    ("Δ", &[0, 4, 7, 11]),
    ("Δ7", &[0, 4, 7, 11]),
    ("m7", &[0, 3, 7, 10]),
    ("min7", &[0, 3, 7, 10]),
    ("-7", &[0, 3, 7, 10]),
    ("m7b5", &[0, 3, 6, 10]),
    ("ø", &[0, 3, 6, 10]),
    ("ø7", &[0, 3, 6, 10]),
    ("dim7", &[0, 3, 6, 9]),
    ("°7", &[0, 3, 6, 9]),
    ("o7", &[0, 3, 6, 9]),
    ("sus2", &[0, 2, 7]),
    ("sus4", &[0, 5, 7]),
    ("sus", &[0, 5, 7]),
    ("7sus4", &[0, 5, 7, 10]),
    ("add9", &[0, 4, 7, 2]),
    ("madd9", &[0, 3, 7, 2]),
    ("6", &[0, 4, 7, 9]),
    ("m6", &[0, 3, 7, 9]),
    ("9", &[0, 4, 7, 10, 2]),
    ("maj9", &[0, 4, 7, 11, 2]),
    ("m9", &[0, 3, 7, 10, 2]),
];

const ROMAN_HELP: &str = "expected a roman numeral like \"I\", \"vi\", \"V7\", \"bVI\", \
\"vii°\", \"IVmaj7\", \"ii9\" or \"Vsus4\"";
const ABSOLUTE_HELP: &str = "expected a chord symbol like \"C\", \"Am7\", \"F#m\", \
\"Bbmaj7\", \"Csus4\", \"Ddim\", \"Eaug\", \"G7\", \"Fadd9\", \"A6\", \"Dm6\" or \"E9\"";

impl Chord {
    /// A chord on `root` (taken modulo 12) from intervals above the root in stacking
    /// order. Duplicate pitch classes are skipped and at most [`MAX_TONES`] are kept; the
    /// root is always the first tone.
    pub fn from_intervals(root: u8, intervals: &[u8]) -> Chord {
        let root = root % 12;
        let mut c = Chord {
            root,
            tones: [root; MAX_TONES],
            len: 1,
        };
        for &iv in intervals {
            c.push_interval(iv);
        }
        c
    }

    /// Adds the pitch class `root + interval` unless present or the chord is full.
    fn push_interval(&mut self, interval: u8) {
        let pc = ((self.root as u16 + interval as u16) % 12) as u8;
        if self.contains(pc as i32) {
            return;
        }
        if let Some(slot) = self.tones.get_mut(self.len as usize) {
            *slot = pc;
            self.len += 1;
        }
    }

    /// Replaces the tone `from` semitones above the root by `to` semitones above it, in
    /// place (keeping stacking order). Returns false if `from` is not present.
    fn replace_interval(&mut self, from: u8, to: u8) -> bool {
        let root = self.root;
        let from_pc = (root + from % 12) % 12;
        let to_pc = (root + to % 12) % 12;
        let Some(i) = self.tones().iter().position(|&t| t == from_pc) else {
            return false;
        };
        if self.contains(to_pc as i32) {
            self.remove_index(i);
        } else if let Some(slot) = self.tones.get_mut(i) {
            *slot = to_pc;
        }
        true
    }

    fn remove_index(&mut self, i: usize) {
        let len = self.len();
        if i == 0 || i >= len {
            return; // never remove the root
        }
        // `0 < i < len <= MAX_TONES`, so the range is in bounds.
        self.tones.copy_within(i + 1..len, i);
        self.len = (len - 1) as u8;
    }

    /// Parses a chord symbol relative to `key`.
    ///
    /// **Roman numerals** (`I`..`VII`): upper case = major triad, lower case = minor
    /// triad. Without an accidental the numeral picks that degree of the key's own mode
    /// (pentatonic keys use their 7-note parent, see [`Mode::heptatonic`]), so `VI` in C
    /// minor is Ab major. With an accidental prefix (`b`, `#`, `♭`, `♯`) the degree is taken
    /// from the parallel *major* scale and shifted, so `bVI` is always tonic + 8 semitones.
    /// Suffixes (combinable, e.g. `vii°7`, `V7sus4`): `°`/`dim`/`o` diminished,
    /// `+`/`aug` augmented, `ø` half-diminished seventh, `7` minor seventh (dominant 7 on
    /// an upper numeral, minor 7 on lower, half-diminished on lower with `°`), `maj7`,
    /// `9` (seventh plus ninth), `sus2`, `sus4`, `add9`.
    ///
    /// **Absolute symbols**: a pitch class (`C`, `F#`, `Bb`, ...) followed by one of
    /// `""`, `m`, `min`, `dim`, `aug`, `7`, `maj7`, `m7`, `sus2`, `sus4`, `add9`, `6`,
    /// `m6`, `9` (plus a few aliases: `maj`, `M`, `-`, `°`, `+`, `5`, `M7`, `Δ`, `min7`,
    /// `m7b5`, `ø`, `dim7`, `sus`, `7sus4`, `madd9`, `maj9`, `m9`).
    pub fn parse(symbol: &str, key: &Key) -> Result<Chord, String> {
        let s = symbol.trim();
        if s.is_empty() {
            return Err(format!("empty chord: {ROMAN_HELP}, or {ABSOLUTE_HELP}"));
        }
        // Roman numeral: optional accidentals, then I/V letters.
        let body = s.trim_start_matches(['b', '#', '♭', '♯']);
        if body.starts_with(['I', 'V', 'i', 'v']) {
            return parse_roman(s, key);
        }
        parse_absolute(s)
    }

    /// The tones as pitch classes: root first, then in stacking order.
    pub fn tones(&self) -> &[u8] {
        self.tones.get(..self.len()).unwrap_or(&[])
    }

    /// Number of distinct tones (1..=6).
    pub fn len(&self) -> usize {
        (self.len as usize).min(MAX_TONES)
    }

    /// Always false: a chord has at least its root.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chord's symbol ("Am7", "F#sus4"): the first quality in the parser's table with
    /// the same pitch classes above the root; tones in brackets when none has.
    pub fn symbol(&self) -> String {
        let root = super::theory::pitch_class_name(self.root);
        let mask_above_root = |intervals: &[u8]| {
            intervals
                .iter()
                .fold(0u16, |m, &i| m | 1 << ((self.root + i % 12) % 12))
        };
        match QUALITIES
            .iter()
            .find(|(_, intervals)| mask_above_root(intervals) == self.mask())
        {
            Some((suffix, _)) => format!("{root}{suffix}"),
            None => {
                let tones: Vec<&str> = self
                    .tones()
                    .iter()
                    .map(|&t| super::theory::pitch_class_name(t))
                    .collect();
                format!("{root}({})", tones.join(" "))
            }
        }
    }

    /// Bit `i` is set when pitch class `i` is a chord tone.
    pub fn mask(&self) -> u16 {
        self.tones().iter().fold(0u16, |m, &t| m | 1 << (t % 12))
    }

    /// True if the pitch class of `midi_or_pc` (modulo 12) is a chord tone.
    pub fn contains(&self, midi_or_pc: i32) -> bool {
        self.mask() & (1 << midi_or_pc.rem_euclid(12)) != 0
    }

    /// True if the tone `semitones` above the root is in the chord.
    pub fn has_interval(&self, semitones: u8) -> bool {
        self.contains(self.root as i32 + (semitones % 12) as i32)
    }

    /// True if the chord has a minor third and no major third (minor, diminished,
    /// half-diminished...).
    pub fn is_minor_quality(&self) -> bool {
        self.has_interval(3) && !self.has_interval(4)
    }

    /// True if the chord has a major third.
    pub fn is_major_quality(&self) -> bool {
        self.has_interval(4)
    }

    /// Chord tone number `index` as a MIDI note. Index 0 is the lowest root `>= base_midi`;
    /// index `k > 0` is the k-th chord tone above it, taking the chord's pitch classes in
    /// ascending order within each octave and continuing into higher octaves; negative
    /// indices walk downward the same way (index -1 is the highest chord tone below
    /// index 0). `index` is clamped to ±64; results saturate at the `i32` limits.
    pub fn tone_midi(&self, index: i32, base_midi: i32) -> i32 {
        let mut offsets = [0u8; MAX_TONES];
        let n = self.ascending_offsets(&mut offsets) as i64;
        if n == 0 {
            return base_midi;
        }
        let base = base_midi as i64;
        let root0 = base + (self.root as i64 - base).rem_euclid(12);
        let index = index.clamp(-64, 64) as i64;
        let oct = index.div_euclid(n);
        let i = index.rem_euclid(n) as usize;
        let off = offsets.get(i).copied().unwrap_or(0) as i64;
        sat_i32(root0 + oct * 12 + off)
    }

    /// Writes the tones' offsets above the root in ascending order; returns their count.
    fn ascending_offsets(&self, out: &mut [u8; MAX_TONES]) -> usize {
        let mask = self.mask();
        let mut n = 0;
        for off in 0..12u8 {
            if mask & (1 << ((self.root + off) % 12)) != 0 {
                if let Some(slot) = out.get_mut(n) {
                    *slot = off;
                    n += 1;
                }
            }
        }
        n
    }

    /// The nearest note whose pitch class is a chord tone; ties go down.
    pub fn nearest_tone(&self, midi: i32) -> i32 {
        let mask = self.mask();
        if mask == 0 {
            return midi;
        }
        let m = midi as i64;
        for d in 0..=12i64 {
            for c in [m - d, m + d] {
                if fits_i32(c) && mask & (1 << c.rem_euclid(12)) != 0 {
                    return c as i32;
                }
            }
        }
        midi
    }
}

fn parse_roman(s: &str, key: &Key) -> Result<Chord, String> {
    let err = |what: String| format!("{what} in \"{s}\": {ROMAN_HELP}");
    let (shift, rest) = accidentals(s).map_err(err)?;
    let (degree, upper, suffix) = numeral(rest).map_err(err)?;
    let suffixes = Suffixes::parse(suffix).map_err(err)?;
    let root_offset: i32 = match shift {
        Some(shift) => {
            let major = Mode::Major.intervals();
            major.get(degree - 1).copied().unwrap_or(0) as i32 + shift
        }
        None => {
            let own = key.mode.heptatonic().intervals();
            own.get(degree - 1).copied().unwrap_or(0) as i32
        }
    };
    let root = (key.tonic as i32 + root_offset).rem_euclid(12) as u8;
    let mut ivs = [0u8; MAX_TONES];
    let n = suffixes.intervals(upper, &mut ivs);
    Ok(Chord::from_intervals(root, &ivs[..n]))
}

/// Leading flats and sharps (at most two): the shift in semitones, `None` without any, and
/// the rest of the text.
fn accidentals(s: &str) -> Result<(Option<i32>, &str), String> {
    let mut shift = 0i32;
    let mut rest = s;
    let mut has_accidental = false;
    let mut accidentals = 0;
    while let Some(c) = rest.chars().next() {
        match c {
            'b' | '♭' => shift -= 1,
            '#' | '♯' => shift += 1,
            _ => break,
        }
        has_accidental = true;
        rest = &rest[c.len_utf8()..];
        accidentals += 1;
        if accidentals > 2 {
            return Err("more than two accidentals".into());
        }
    }
    Ok((has_accidental.then_some(shift), rest))
}

/// The numeral I..VII or i..vii: its degree 1..7, whether it is upper case (major), and the
/// suffix after it.
fn numeral(rest: &str) -> Result<(usize, bool, &str), String> {
    let numeral_len = rest
        .find(|c: char| !matches!(c, 'I' | 'V' | 'i' | 'v'))
        .unwrap_or(rest.len());
    let (numeral, suffix) = rest.split_at(numeral_len);
    let upper = numeral.chars().all(|c| c.is_ascii_uppercase());
    let lower = numeral.chars().all(|c| c.is_ascii_lowercase());
    if !upper && !lower {
        return Err("mixed-case numeral".into());
    }
    let degree: usize = match numeral.to_ascii_uppercase().as_str() {
        "I" => 1,
        "II" => 2,
        "III" => 3,
        "IV" => 4,
        "V" => 5,
        "VI" => 6,
        "VII" => 7,
        _ => return Err("unknown numeral".into()),
    };
    Ok((degree, upper, suffix))
}

/// Suffix tokens, longest first where they share a prefix.
const SUFFIX_TOKENS: &[&str] = &[
    "maj7", "dim", "aug", "sus2", "sus4", "add9", "°", "o", "ø", "+", "7", "9",
];

/// The suffixes of a roman numeral chord, each at most once.
struct Suffixes {
    seen: [bool; SUFFIX_TOKENS.len()],
}

impl Suffixes {
    /// Reads the suffix tokens and refuses unknown, repeated or conflicting ones.
    fn parse(mut suffix: &str) -> Result<Suffixes, String> {
        let mut seen = [false; SUFFIX_TOKENS.len()];
        while !suffix.is_empty() {
            let Some(t) = SUFFIX_TOKENS.iter().position(|t| suffix.starts_with(t)) else {
                return Err(format!("unknown suffix \"{suffix}\""));
            };
            if seen[t] {
                return Err("repeated suffix".into());
            }
            seen[t] = true;
            suffix = &suffix[SUFFIX_TOKENS[t].len()..];
        }
        let suffixes = Suffixes { seen };
        if suffixes.conflict() {
            return Err("conflicting suffixes".into());
        }
        Ok(suffixes)
    }

    fn has(&self, tok: &str) -> bool {
        SUFFIX_TOKENS
            .iter()
            .position(|t| *t == tok)
            .is_some_and(|i| self.seen[i])
    }

    fn dim(&self) -> bool {
        self.has("dim") || self.has("°") || self.has("o")
    }

    fn aug(&self) -> bool {
        self.has("aug") || self.has("+")
    }

    /// A minor seventh: written, implied by a ninth or by half-diminished.
    fn seventh(&self) -> bool {
        self.has("7") || self.has("9") || self.has("ø")
    }

    fn conflict(&self) -> bool {
        let (half_dim, maj7) = (self.has("ø"), self.has("maj7"));
        ((self.dim() || half_dim) && self.aug())
            || (self.has("sus2") && self.has("sus4"))
            || (maj7 && self.seventh())
    }

    /// Writes the chord's intervals above its root (triad from the numeral's case unless a
    /// suffix says otherwise); returns their count.
    fn intervals(&self, upper: bool, ivs: &mut [u8; MAX_TONES]) -> usize {
        let (mut third, fifth) = if self.dim() || self.has("ø") {
            (3, 6)
        } else if self.aug() {
            (4, 8)
        } else if upper {
            (4, 7)
        } else {
            (3, 7)
        };
        if self.has("sus2") {
            third = 2;
        } else if self.has("sus4") {
            third = 5;
        }
        let mut n = 0;
        let mut push = |iv: u8| {
            if let Some(slot) = ivs.get_mut(n) {
                *slot = iv;
                n += 1;
            }
        };
        push(0);
        push(third);
        push(fifth);
        if self.seventh() {
            push(10);
        } else if self.has("maj7") {
            push(11);
        }
        if self.has("9") || self.has("add9") {
            push(2);
        }
        n
    }
}

fn parse_absolute(s: &str) -> Result<Chord, String> {
    let mut chars = s.char_indices();
    let Some((_, first)) = chars.next() else {
        return Err(ABSOLUTE_HELP.to_string());
    };
    if !matches!(first.to_ascii_uppercase(), 'A'..='G') {
        return Err(format!(
            "unknown chord \"{s}\": {ROMAN_HELP}, or {ABSOLUTE_HELP}"
        ));
    }
    let mut end = first.len_utf8();
    for (i, c) in chars {
        if matches!(c, '#' | 'b' | '♯' | '♭') {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    let (name, quality) = s.split_at(end);
    let root = parse_pitch_class(name)?;
    match QUALITIES.iter().find(|(q, _)| *q == quality) {
        Some((_, ivs)) => Ok(Chord::from_intervals(root, ivs)),
        None => Err(format!(
            "unknown chord quality \"{quality}\": {ABSOLUTE_HELP}"
        )),
    }
}

/// A darker colouring of `chord`, for high tension. `amount` is in `0..=1` (NaN counts
/// as 0):
/// - below 0.5 the chord is unchanged;
/// - at `>= 0.5` a major third is lowered to a minor third (major → minor, dominant 7 →
///   minor 7, augmented → minor-augmented);
/// - at `>= 0.8` a colour tone is added as well: a flat nine (root + 1) on chords with a
///   seventh, otherwise a flat five (the perfect fifth is lowered, turning a minor triad
///   diminished, or the ♭5 is added when there is no perfect fifth).
///
/// The root never changes. Real-time safe.
pub fn darker(chord: &Chord, amount: f32) -> Chord {
    let mut c = *chord;
    if amount >= 0.5 && c.has_interval(4) {
        c.replace_interval(4, 3);
    }
    if amount >= 0.8 {
        if c.has_interval(10) || c.has_interval(11) {
            if c.len() >= MAX_TONES {
                c.remove_index(c.len() - 1);
            }
            c.push_interval(1);
        } else if !c.replace_interval(7, 6) {
            if c.len() >= MAX_TONES {
                c.remove_index(c.len() - 1);
            }
            c.push_interval(6);
        }
    }
    c
}

/// A non-chord tone near `near_midi` (within about an octave). Usually (75%) a scale tone
/// that is not in the chord (the 2nd/4th/6th-type tones), picked among the three closest;
/// otherwise, or when the scale has no such tone, a chromatic neighbour a semitone above or
/// below the chord tone nearest to `near_midi`. The returned pitch class is never in the
/// chord. Real-time safe and deterministic for a given `rng` state.
pub fn tension_tone(chord: &Chord, scale: &Scale, near_midi: i32, rng: &mut Rng) -> i32 {
    let chord_mask = chord.mask();
    let not_chord = |c: i64| fits_i32(c) && chord_mask & (1 << c.rem_euclid(12)) == 0;
    let m = near_midi as i64;

    if rng.chance(0.75) {
        let mut found = [0i64; 3];
        let mut n = 0usize;
        'search: for d in 0..=7i64 {
            let count = if d == 0 { 1 } else { 2 };
            for c in [m - d, m + d].into_iter().take(count) {
                if not_chord(c) && scale.contains(c.rem_euclid(12) as i32) {
                    if let Some(slot) = found.get_mut(n) {
                        *slot = c;
                        n += 1;
                    }
                    if n >= found.len() {
                        break 'search;
                    }
                }
            }
        }
        if n > 0 {
            let pick = rng.below(n as u32) as usize;
            if let Some(&c) = found.get(pick) {
                return c as i32;
            }
        }
    }

    // Chromatic neighbour of the nearest chord tone.
    let anchor = chord.nearest_tone(near_midi) as i64;
    let first_up = rng.chance(0.5);
    let dirs: [i64; 2] = if first_up { [1, -1] } else { [-1, 1] };
    for dir in dirs {
        let c = anchor + dir;
        if not_chord(c) {
            return c as i32;
        }
    }
    // Fallback (dense clusters): any non-chord tone nearby. A chord has at most six pitch
    // classes, so one is always within six semitones.
    for d in 1..=12i64 {
        for c in [m - d, m + d] {
            if not_chord(c) {
                return c as i32;
            }
        }
    }
    near_midi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, m: &str) -> Key {
        Key::parse(t, m).unwrap()
    }

    fn chord(sym: &str, k: &Key) -> Chord {
        Chord::parse(sym, k).unwrap_or_else(|e| panic!("{sym}: {e}"))
    }

    fn pcs(names: &[&str]) -> Vec<u8> {
        names
            .iter()
            .map(|n| parse_pitch_class(n).unwrap())
            .collect()
    }

    #[test]
    fn roman_basic_major() {
        let c = key("C", "major");
        assert_eq!(chord("I", &c).tones(), pcs(&["C", "E", "G"]));
        assert_eq!(chord("ii", &c).tones(), pcs(&["D", "F", "A"]));
        assert_eq!(chord("IV", &c).tones(), pcs(&["F", "A", "C"]));
        assert_eq!(chord("vi", &c).tones(), pcs(&["A", "C", "E"]));
        assert_eq!(chord("vii°", &c).tones(), pcs(&["B", "D", "F"]));
        assert_eq!(chord("viidim", &c).tones(), pcs(&["B", "D", "F"]));
        assert_eq!(chord("viio", &c).tones(), pcs(&["B", "D", "F"]));
    }

    #[test]
    fn roman_sevenths_and_extensions() {
        let c = key("C", "major");
        assert_eq!(chord("V7", &c).tones(), pcs(&["G", "B", "D", "F"]));
        assert_eq!(chord("ii7", &c).tones(), pcs(&["D", "F", "A", "C"]));
        assert_eq!(chord("vii°7", &c).tones(), pcs(&["B", "D", "F", "A"]));
        assert_eq!(chord("viiø", &c).tones(), pcs(&["B", "D", "F", "A"]));
        assert_eq!(chord("Imaj7", &c).tones(), pcs(&["C", "E", "G", "B"]));
        assert_eq!(chord("IVmaj7", &c).tones(), pcs(&["F", "A", "C", "E"]));
        assert_eq!(chord("ii9", &c).tones(), pcs(&["D", "F", "A", "C", "E"]));
        assert_eq!(chord("V9", &c).tones(), pcs(&["G", "B", "D", "F", "A"]));
        assert_eq!(chord("Vsus4", &c).tones(), pcs(&["G", "C", "D"]));
        assert_eq!(chord("Isus2", &c).tones(), pcs(&["C", "D", "G"]));
        assert_eq!(chord("V7sus4", &c).tones(), pcs(&["G", "C", "D", "F"]));
        assert_eq!(chord("IVadd9", &c).tones(), pcs(&["F", "A", "C", "G"]));
        assert_eq!(chord("III+", &c).tones(), pcs(&["E", "G#", "C"]));
        assert_eq!(chord("Iaug", &c).tones(), pcs(&["C", "E", "G#"]));
    }

    #[test]
    fn roman_accidentals_and_modes() {
        let cm = key("C", "minor");
        assert_eq!(chord("bVI", &cm).tones(), pcs(&["Ab", "C", "Eb"]));
        assert_eq!(chord("VI", &cm).tones(), pcs(&["Ab", "C", "Eb"]));
        assert_eq!(chord("bVII", &cm).tones(), pcs(&["Bb", "D", "F"]));
        assert_eq!(chord("i", &cm).tones(), pcs(&["C", "Eb", "G"]));
        assert_eq!(chord("III", &cm).tones(), pcs(&["Eb", "G", "Bb"]));
        let c = key("C", "major");
        assert_eq!(chord("bVI", &c).tones(), pcs(&["Ab", "C", "Eb"]));
        assert_eq!(chord("♭II", &c).tones(), pcs(&["Db", "F", "Ab"]));
        assert_eq!(chord("#iv°", &c).tones(), pcs(&["F#", "A", "C"]));
        let dd = key("D", "dorian");
        assert_eq!(chord("IV", &dd).tones(), pcs(&["G", "B", "D"]));
        assert_eq!(chord("bVII", &dd).tones(), pcs(&["C", "E", "G"]));
        // Pentatonic keys use their 7-note parent for numerals.
        let ap = key("A", "minor_pentatonic");
        assert_eq!(chord("VI", &ap).tones(), pcs(&["F", "A", "C"]));
    }

    #[test]
    fn absolute_symbols() {
        let k = key("C", "major");
        assert_eq!(chord("Am7", &k).tones(), pcs(&["A", "C", "E", "G"]));
        assert_eq!(chord("F#m", &k).tones(), pcs(&["F#", "A", "C#"]));
        assert_eq!(chord("Bbmaj7", &k).tones(), pcs(&["Bb", "D", "F", "A"]));
        assert_eq!(chord("Csus4", &k).tones(), pcs(&["C", "F", "G"]));
        assert_eq!(chord("Csus2", &k).tones(), pcs(&["C", "D", "G"]));
        assert_eq!(chord("E", &k).tones(), pcs(&["E", "G#", "B"]));
        assert_eq!(chord("Emin", &k).tones(), pcs(&["E", "G", "B"]));
        assert_eq!(chord("Bdim", &k).tones(), pcs(&["B", "D", "F"]));
        assert_eq!(chord("Caug", &k).tones(), pcs(&["C", "E", "G#"]));
        assert_eq!(chord("G7", &k).tones(), pcs(&["G", "B", "D", "F"]));
        assert_eq!(chord("Fadd9", &k).tones(), pcs(&["F", "A", "C", "G"]));
        assert_eq!(chord("A6", &k).tones(), pcs(&["A", "C#", "E", "F#"]));
        assert_eq!(chord("Dm6", &k).tones(), pcs(&["D", "F", "A", "B"]));
        assert_eq!(chord("E9", &k).tones(), pcs(&["E", "G#", "B", "D", "F#"]));
        assert_eq!(chord("Ebm", &k).tones(), pcs(&["Eb", "Gb", "Bb"]));
        assert_eq!(chord("bb", &k).tones(), pcs(&["Bb", "D", "F"]));
        assert_eq!(chord("b", &k).tones(), pcs(&["B", "D#", "F#"]));
        assert_eq!(chord("bm", &k).root, 11);
        assert_eq!(chord(" Db ", &k).root, 1);
    }

    #[test]
    fn parse_errors_say_what_was_expected() {
        let k = key("C", "major");
        for bad in [
            "", "H7", "Cxyz", "IIII", "Iv", "V77", "Vfoo", "C/E", "vii°+", "Imaj77",
        ] {
            let e = Chord::parse(bad, &k).unwrap_err();
            assert!(e.contains("expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn accessors() {
        let k = key("C", "major");
        let g7 = chord("V7", &k);
        assert_eq!(g7.len(), 4);
        assert!(!g7.is_empty());
        assert_eq!(g7.root, 7);
        assert!(g7.contains(67) && g7.contains(5) && !g7.contains(60));
        assert!(g7.contains(-1)); // B below MIDI 0
        assert_eq!(g7.mask(), (1 << 7) | (1 << 11) | (1 << 2) | (1 << 5));
        assert!(g7.is_major_quality());
        assert!(chord("vi", &k).is_minor_quality());
        assert!(!chord("Csus4", &k).is_minor_quality());
        // Duplicates are dropped, length capped.
        let c = Chord::from_intervals(12, &[0, 4, 7, 16, 10, 2, 5, 9, 11]);
        assert_eq!(c.root, 0);
        assert_eq!(c.len(), 6);
        assert_eq!(c.tones(), &[0, 4, 7, 10, 2, 5]);
    }

    #[test]
    fn tone_midi_walks_chord_tones() {
        let k = key("C", "major");
        let c = chord("I", &k);
        assert_eq!(c.tone_midi(0, 60), 60);
        assert_eq!(c.tone_midi(1, 60), 64);
        assert_eq!(c.tone_midi(2, 60), 67);
        assert_eq!(c.tone_midi(3, 60), 72);
        assert_eq!(c.tone_midi(-1, 60), 55);
        assert_eq!(c.tone_midi(-3, 60), 48);
        assert_eq!(c.tone_midi(0, 61), 72); // lowest root >= base
        let g9 = chord("V9", &k); // G B D F A -> ascending from G: G A B D F
        assert_eq!(g9.tone_midi(0, 55), 55);
        assert_eq!(g9.tone_midi(1, 55), 57);
        assert_eq!(g9.tone_midi(4, 55), 65);
        assert_eq!(g9.tone_midi(5, 55), 67);
        // Clamped index, saturating result, never panics.
        assert_eq!(c.tone_midi(1000, 60), c.tone_midi(64, 60));
        assert_eq!(c.tone_midi(i32::MIN, 60), c.tone_midi(-64, 60));
        let _ = c.tone_midi(i32::MAX, i32::MAX);
        let _ = c.tone_midi(i32::MIN, i32::MIN);
    }

    #[test]
    fn nearest_chord_tone() {
        let k = key("C", "major");
        let c = chord("I", &k);
        assert_eq!(c.nearest_tone(60), 60);
        assert_eq!(c.nearest_tone(61), 60);
        assert_eq!(c.nearest_tone(62), 60); // tie C/E goes down
        assert_eq!(c.nearest_tone(63), 64);
        assert_eq!(c.nearest_tone(66), 67);
        assert_eq!(c.nearest_tone(70), 72); // Bb: A# -> C (2) vs G (3)
        assert!(c.contains(c.nearest_tone(i32::MAX)));
        assert!(c.contains(c.nearest_tone(i32::MIN)));
    }

    #[test]
    fn darker_colourings() {
        let k = key("C", "major");
        let c = chord("I", &k);
        assert_eq!(darker(&c, 0.0), c);
        assert_eq!(darker(&c, 0.49), c);
        assert_eq!(darker(&c, f32::NAN), c);
        assert_eq!(darker(&c, 0.5).tones(), pcs(&["C", "Eb", "G"]));
        assert_eq!(darker(&c, 0.9).tones(), pcs(&["C", "Eb", "Gb"]));
        let g7 = chord("V7", &k);
        assert_eq!(darker(&g7, 0.6).tones(), pcs(&["G", "Bb", "D", "F"]));
        assert_eq!(darker(&g7, 1.0).tones(), pcs(&["G", "Bb", "D", "F", "Ab"]));
        let am = chord("vi", &k);
        assert_eq!(darker(&am, 0.6), am);
        let sus = chord("Csus4", &k);
        assert_eq!(darker(&sus, 0.9).tones(), pcs(&["C", "F", "Gb"]));
        let aug = chord("Caug", &k);
        assert_eq!(darker(&aug, 0.9).tones(), pcs(&["C", "Eb", "G#", "Gb"]));
        // Full chord: still at most six tones, root kept.
        let full = Chord::from_intervals(0, &[0, 4, 7, 10, 2, 5]);
        let d = darker(&full, 1.0);
        assert_eq!(d.len(), 6);
        assert_eq!(d.root, 0);
        assert!(d.contains(1) && d.contains(3) && !d.contains(4));
    }

    #[test]
    fn tension_tones_avoid_the_chord() {
        let mut rng = Rng::new(42);
        for (t, m) in [("C", "major"), ("D", "dorian"), ("A", "minor_pentatonic")] {
            let k = key(t, m);
            let s = k.scale();
            for sym in ["I", "ii", "V7", "IVmaj7", "bVI", "ii9"] {
                let c = chord(sym, &k);
                let mut in_scale = 0;
                for near in 40..90 {
                    let n = tension_tone(&c, &s, near, &mut rng);
                    assert!(!c.contains(n), "{sym} in {t} {m}: {n}");
                    assert!((n - near).abs() <= 8, "{n} too far from {near}");
                    if s.contains(n) {
                        in_scale += 1;
                    }
                }
                assert!(in_scale > 20, "{sym}: mostly scale tones ({in_scale})");
            }
        }
        // A scale covered by the chord still yields a chromatic non-chord tone.
        let pent = Scale::new(0, Mode::MajorPentatonic);
        let c = Chord::from_intervals(0, &[0, 2, 4, 7, 9]);
        for near in [0, 60, i32::MAX, i32::MIN] {
            let n = tension_tone(&c, &pent, near, &mut rng);
            assert!(!c.contains(n));
        }
    }

    #[test]
    fn tension_tone_is_deterministic() {
        let k = key("C", "major");
        let (c, s) = (chord("I", &k), k.scale());
        let mut a = Rng::new(9);
        let mut b = Rng::new(9);
        for near in 50..80 {
            assert_eq!(
                tension_tone(&c, &s, near, &mut a),
                tension_tone(&c, &s, near, &mut b)
            );
        }
    }
}
