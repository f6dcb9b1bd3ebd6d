//! Rhythmic/melodic motifs on a step grid.
//!
//! A [`Motif`] is up to 16 grid steps with onsets, accents and a contour expressed as
//! chord-tone index offsets (feed `base_index + contour` to
//! [`Chord::tone_midi`](super::chord::Chord::tone_midi)). [`thin`] and [`fill`] derive
//! sparser and busier variants so energy can control density without changing the
//! motif's identity; both are nested: for one seed, a lower `keep` keeps a subset of the
//! onsets a higher `keep` keeps, and a higher `amount` adds a superset of what a lower one
//! adds. Everything here is real-time safe: no allocation, no panics, deterministic.

use crate::rng::Rng;

/// Maximum motif length in grid steps.
pub const MAX_STEPS: usize = 16;

const STREAM_ONSETS: u64 = 0x6f6e_7365_7473;
const STREAM_CONTOUR: u64 = 0x0063_6f6e_746f_7572;
const STREAM_ACCENTS: u64 = 0x6163_6365_6e74;
const STREAM_THIN: u64 = 0x7468_696e;
const STREAM_FILL: u64 = 0x6669_6c6c;

/// Clamps to `0..=1`, mapping NaN to 0.
#[inline]
fn unit(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Metrical weight of a step: downbeats of 4-step groups weigh most, then even steps.
#[inline]
fn metric_weight(step: usize) -> u64 {
    if step.is_multiple_of(4) {
        4
    } else if step.is_multiple_of(2) {
        2
    } else {
        1
    }
}

/// Mask of the first `len` steps (`len` clamped to `1..=16`).
#[inline]
fn len_mask(len: usize) -> u16 {
    u16::MAX >> (MAX_STEPS - len.clamp(1, MAX_STEPS))
}

/// Picks up to `k` steps from `candidates` with the highest keys (ties: lower step).
fn top_k(keys: &[u64; MAX_STEPS], candidates: u16, k: usize) -> u16 {
    let mut chosen = 0u16;
    for _ in 0..k.min(MAX_STEPS) {
        let mut best: Option<(usize, u64)> = None;
        for (i, &key) in keys.iter().enumerate() {
            let bit = 1u16 << i;
            if candidates & bit == 0 || chosen & bit != 0 {
                continue;
            }
            if best.is_none_or(|(_, b)| key > b) {
                best = Some((i, key));
            }
        }
        match best {
            Some((i, _)) => chosen |= 1 << i,
            None => break,
        }
    }
    chosen
}

/// A random key per step for weighted selection: `weight(step) * uniform + 1`. Keys
/// depend only on the generator state and the step, which makes selections nested.
fn random_keys(rng: &mut Rng, weight: impl Fn(usize) -> u64) -> [u64; MAX_STEPS] {
    let mut keys = [0u64; MAX_STEPS];
    for (i, k) in keys.iter_mut().enumerate() {
        *k = weight(i) * (rng.next_u64() >> 40) + 1;
    }
    keys
}

/// Parameters for [`Motif::generate`]. Out-of-range values are clamped (NaN counts as 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MotifStyle {
    /// Length in grid steps, `4..=16`.
    pub steps: u8,
    /// Fraction of steps with an onset, `0..=1` (at least one onset is always made).
    pub density: f32,
    /// Maximum span of the contour in chord tones, `1..=8`.
    pub range: u8,
    /// Chance, per melodic move, of a leap of 2–3 chord tones instead of a step.
    pub leap_chance: f32,
    /// Chance, per onset, of repeating the previous contour value.
    pub repeat_chance: f32,
}

impl Default for MotifStyle {
    /// Eight steps, half full, a four-tone range, occasional leaps and repeats.
    fn default() -> Self {
        MotifStyle {
            steps: 8,
            density: 0.5,
            range: 4,
            leap_chance: 0.15,
            repeat_chance: 0.25,
        }
    }
}

impl MotifStyle {
    /// A copy with every field clamped to its documented range (NaN → 0).
    pub fn sanitized(&self) -> MotifStyle {
        MotifStyle {
            steps: self.steps.clamp(4, MAX_STEPS as u8),
            density: unit(self.density),
            range: self.range.clamp(1, 8),
            leap_chance: unit(self.leap_chance),
            repeat_chance: unit(self.repeat_chance),
        }
    }
}

/// A short motif: onsets, accents and a chord-tone contour on a grid of 4–16 steps.
///
/// Invariants: step 0 always has an onset (with contour 0 and an accent in generated
/// motifs); accents only fall on onsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Motif {
    onsets: u16,
    contour: [i8; MAX_STEPS],
    accents: u16,
    len: u8,
}

impl Motif {
    /// Generates a motif from `seed` and `style`; the same inputs always give the same
    /// motif.
    ///
    /// Onsets: `round(density * steps)` of them (at least one, always on step 0), chosen
    /// at random with a preference for strong metrical positions. Contour: a random walk
    /// in chord-tone steps starting at 0, mostly stepwise, leaping 2–3 tones with
    /// `leap_chance`, repeating with `repeat_chance`, its total span bounded by `range`,
    /// and pulled back towards 0 over the second half (the last onset moves towards 0).
    /// Accents: step 0, most onsets on 4-step downbeats, some after leaps, a few others.
    pub fn generate(seed: u64, style: &MotifStyle) -> Motif {
        let st = style.sanitized();
        let len = st.steps as usize;
        let all = len_mask(len);

        // Onsets.
        let mut rng = Rng::derive(seed, STREAM_ONSETS);
        let target = ((st.density * len as f32).round() as usize).clamp(1, len);
        let keys = random_keys(&mut rng, metric_weight);
        let onsets = 1 | top_k(&keys, all & !1, target - 1);
        let count = onsets.count_ones() as usize;

        // Contour and accents.
        let mut rng = Rng::derive(seed, STREAM_CONTOUR);
        let mut acc_rng = Rng::derive(seed, STREAM_ACCENTS);
        let range = st.range as i32;
        let (mut lo, mut hi, mut cur) = (0i32, 0i32, 0i32);
        let mut contour = [0i8; MAX_STEPS];
        let mut accents = 1u16;
        let mut nth = 0usize;
        for (i, slot) in contour.iter_mut().enumerate().take(len).skip(1) {
            if onsets & (1 << i) != 0 {
                nth += 1;
                let last = nth + 1 == count;
                let progress = i as f32 / len as f32;
                let toward_home = -cur.signum();
                let leap = rng.chance(st.leap_chance);
                let size = if leap { 2 + rng.below(2) as i32 } else { 1 };
                let next = if last && cur != 0 && rng.chance(0.85) {
                    // Head home, without overshooting.
                    cur + toward_home * size.min(cur.abs())
                } else if rng.chance(st.repeat_chance) {
                    cur
                } else {
                    let pull = if cur == 0 {
                        0.0
                    } else {
                        (progress - 0.4).max(0.0) * 1.2 + cur.abs() as f32 / range as f32 * 0.25
                    };
                    let dir = if cur != 0 && rng.chance(pull) {
                        toward_home
                    } else if rng.chance(0.5) {
                        1
                    } else {
                        -1
                    };
                    cur + dir * size
                };
                // Keep the total span within `range`: reflect, then clamp.
                let (min_ok, max_ok) = (hi - range, lo + range);
                let mut next = next;
                if next < min_ok || next > max_ok {
                    next = 2 * cur - next;
                }
                next = next.clamp(min_ok, max_ok);
                let moved = (next - cur).abs();
                cur = next;
                lo = lo.min(cur);
                hi = hi.max(cur);

                let p = match i % 4 {
                    0 => 0.7,
                    2 => 0.2,
                    _ => 0.1,
                } + if moved >= 2 { 0.4 } else { 0.0 };
                if acc_rng.chance(p) {
                    accents |= 1 << i;
                }
            }
            *slot = cur.clamp(i8::MIN as i32, i8::MAX as i32) as i8;
        }

        Motif {
            onsets,
            contour,
            accents,
            len: len as u8,
        }
    }

    /// Length in grid steps (4..=16 for generated motifs).
    pub fn len(&self) -> usize {
        (self.len as usize).clamp(1, MAX_STEPS)
    }

    /// Always false: a motif has at least one step.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if there is an onset at `step` (taken modulo [`Motif::len`]).
    pub fn onset(&self, step: usize) -> bool {
        self.onsets & (1 << (step % self.len())) != 0
    }

    /// Chord-tone index offset at `step` (modulo [`Motif::len`]); meaningful where there
    /// is an onset (elsewhere it holds the previous onset's value).
    pub fn contour(&self, step: usize) -> i8 {
        self.contour.get(step % self.len()).copied().unwrap_or(0)
    }

    /// True if the onset at `step` (modulo [`Motif::len`]) is accented.
    pub fn accent(&self, step: usize) -> bool {
        self.accents & (1 << (step % self.len())) != 0
    }

    /// Fraction of steps with an onset, in `(0, 1]`.
    pub fn density(&self) -> f32 {
        self.onset_count() as f32 / self.len() as f32
    }

    /// Number of onsets (at least 1).
    pub fn onset_count(&self) -> usize {
        (self.onsets & len_mask(self.len())).count_ones() as usize
    }

    /// Onset bits: bit `i` set when step `i` has an onset.
    pub fn onset_mask(&self) -> u16 {
        self.onsets
    }

    /// Accent bits: bit `i` set when step `i` is accented.
    pub fn accent_mask(&self) -> u16 {
        self.accents
    }
}

/// A sparser variant of `motif` keeping `round(keep * onsets)` onsets (at least one; step
/// 0 is always kept). Accented and metrically strong onsets are more likely to survive.
/// Contour is unchanged; accents on dropped steps go with them. Deterministic in `seed`
/// and nested: for one seed, a smaller `keep` keeps a subset of a larger one's onsets.
/// `keep` is clamped to `0..=1` (NaN counts as 0).
pub fn thin(motif: &Motif, keep: f32, seed: u64) -> Motif {
    let len = motif.len();
    let onsets = (motif.onsets & len_mask(len)) | 1;
    let count = onsets.count_ones() as usize;
    let target = ((unit(keep) * count as f32).round() as usize).clamp(1, count);
    let mut rng = Rng::derive(seed, STREAM_THIN);
    let accents = motif.accents;
    let keys = random_keys(&mut rng, |i| {
        let accent = if accents & (1 << i) != 0 { 4 } else { 1 };
        accent * metric_weight(i)
    });
    let kept = 1 | top_k(&keys, onsets & !1, target - 1);
    Motif {
        onsets: kept,
        accents: motif.accents & kept,
        ..*motif
    }
}

/// A busier variant of `motif` adding onsets on `round(amount * empty steps)` empty steps,
/// preferring strong metrical positions. Added notes are unaccented and their contour
/// interpolates (rounded) between the surrounding original onsets, wrapping to step 0
/// after the last one. Deterministic in `seed` and nested: for one seed, a larger
/// `amount` adds a superset of a smaller one's steps. `amount` is clamped to `0..=1`
/// (NaN counts as 0).
pub fn fill(motif: &Motif, amount: f32, seed: u64) -> Motif {
    let len = motif.len();
    let onsets = (motif.onsets & len_mask(len)) | 1;
    let empty = !onsets & len_mask(len);
    let add = (unit(amount) * empty.count_ones() as f32).round() as usize;
    let mut rng = Rng::derive(seed, STREAM_FILL);
    let keys = random_keys(&mut rng, metric_weight);
    let added = top_k(&keys, empty, add);

    let mut out = *motif;
    out.onsets = onsets | added;
    let value = |step: usize| motif.contour.get(step).copied().unwrap_or(0) as f32;
    let mut prev = 0usize;
    for i in 1..len {
        let bit = 1u16 << i;
        if onsets & bit != 0 {
            prev = i;
            continue;
        }
        if added & bit == 0 {
            continue;
        }
        // Next original onset after `i`, or step 0 of the next cycle.
        let next = (i + 1..len).find(|&j| onsets & (1 << j) != 0);
        let (next_pos, next_val) = match next {
            Some(j) => (j, value(j)),
            None => (len, value(0)),
        };
        let t = (i - prev) as f32 / (next_pos - prev).max(1) as f32;
        let v = value(prev) + (next_val - value(prev)) * t;
        if let Some(slot) = out.contour.get_mut(i) {
            *slot = v.round().clamp(i8::MIN as f32, i8::MAX as f32) as i8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(steps: u8, density: f32, range: u8, leap: f32, repeat: f32) -> MotifStyle {
        MotifStyle {
            steps,
            density,
            range,
            leap_chance: leap,
            repeat_chance: repeat,
        }
    }

    fn onset_contours(m: &Motif) -> Vec<i8> {
        (0..m.len())
            .filter(|&i| m.onset(i))
            .map(|i| m.contour(i))
            .collect()
    }

    #[test]
    fn deterministic_for_same_seed() {
        let st = MotifStyle::default();
        for seed in 0..50 {
            assert_eq!(Motif::generate(seed, &st), Motif::generate(seed, &st));
        }
    }

    #[test]
    fn different_seeds_differ() {
        let st = style(16, 0.5, 5, 0.2, 0.2);
        assert_ne!(Motif::generate(1, &st), Motif::generate(2, &st));
        let motifs: Vec<Motif> = (0..40).map(|s| Motif::generate(s, &st)).collect();
        let mut distinct = motifs.clone();
        distinct.sort_by_key(|m| (m.onsets, m.contour, m.accents));
        distinct.dedup();
        assert!(distinct.len() >= 38, "{} distinct", distinct.len());
    }

    #[test]
    fn basic_invariants() {
        for seed in 0..200 {
            for steps in [4u8, 5, 8, 12, 16] {
                for density in [0.0, 0.3, 0.5, 1.0] {
                    let st = style(steps, density, 3, 0.3, 0.2);
                    let m = Motif::generate(seed, &st);
                    assert_eq!(m.len(), steps as usize);
                    assert!(m.onset(0) && m.accent(0));
                    assert_eq!(m.contour(0), 0);
                    let want = ((density * steps as f32).round() as usize).max(1);
                    assert_eq!(m.onset_count(), want);
                    assert!((m.density() - want as f32 / steps as f32).abs() < 1e-6);
                    assert_eq!(m.accent_mask() & !m.onset_mask(), 0);
                    assert_eq!(m.onset_mask() & !len_mask(m.len()), 0);
                    // Modulo indexing.
                    assert_eq!(m.onset(steps as usize), m.onset(0));
                    assert_eq!(m.contour(steps as usize + 1), m.contour(1));
                }
            }
        }
    }

    #[test]
    fn contour_respects_range_and_is_mostly_stepwise() {
        for range in 1..=8u8 {
            for seed in 0..100 {
                let m = Motif::generate(seed, &style(16, 0.8, range, 0.5, 0.1));
                let c = onset_contours(&m);
                let span = c.iter().max().unwrap() - c.iter().min().unwrap();
                assert!(span as u8 <= range, "span {span} > {range}");
            }
        }
        // Without leaps every move is at most one chord tone.
        for seed in 0..200 {
            let m = Motif::generate(seed, &style(16, 1.0, 8, 0.0, 0.0));
            let c = onset_contours(&m);
            assert!(c.windows(2).all(|w| (w[1] - w[0]).abs() <= 1), "{c:?}");
        }
        // With some leaps, most moves are still steps or repeats.
        let (mut small, mut total) = (0, 0);
        for seed in 0..200 {
            let m = Motif::generate(seed, &style(16, 0.75, 6, 0.15, 0.2));
            for w in onset_contours(&m).windows(2) {
                total += 1;
                if (w[1] - w[0]).abs() <= 1 {
                    small += 1;
                }
            }
        }
        assert!(small * 10 >= total * 8, "{small}/{total}");
    }

    #[test]
    fn contour_tends_to_return_home() {
        let st = style(16, 0.6, 6, 0.2, 0.1);
        let (mut near_home, mut wandered) = (0, 0);
        for seed in 0..300 {
            let m = Motif::generate(seed, &st);
            let c = onset_contours(&m);
            let last = *c.last().unwrap();
            let farthest = c.iter().map(|v| v.abs()).max().unwrap();
            if farthest >= 2 {
                wandered += 1;
                if last.abs() <= 1 {
                    near_home += 1;
                }
            }
        }
        assert!(wandered > 100);
        assert!(near_home * 10 >= wandered * 7, "{near_home}/{wandered}");
    }

    #[test]
    fn wild_styles_do_not_panic() {
        let weird = [
            style(0, f32::NAN, 0, f32::NAN, f32::NAN),
            style(255, f32::INFINITY, 255, -1.0, 2.0),
            style(3, -5.0, 1, 1.0, 1.0),
        ];
        for st in weird {
            for seed in [0, 1, u64::MAX] {
                let m = Motif::generate(seed, &st);
                assert!((4..=16).contains(&m.len()));
                assert!(m.onset(0));
                let t = thin(&m, f32::NAN, seed);
                let f = fill(&m, f32::INFINITY, seed);
                assert!(t.onset(0) && f.onset(0));
                for s in [0, 1, 17, usize::MAX] {
                    let _ = (m.onset(s), m.contour(s), m.accent(s));
                }
            }
        }
    }

    #[test]
    fn thin_keeps_a_nested_subset() {
        let st = style(16, 0.75, 4, 0.2, 0.2);
        for seed in 0..50 {
            let m = Motif::generate(seed, &st);
            let n = m.onset_count();
            let mut prev_mask = 1u16;
            for k in 0..=10 {
                let keep = k as f32 / 10.0;
                let t = thin(&m, keep, 7);
                assert_eq!(t, thin(&m, keep, 7));
                assert!(t.onset(0));
                assert_eq!(t.onset_mask() & !m.onset_mask(), 0, "subset");
                assert_eq!(t.accent_mask() & !t.onset_mask(), 0);
                let want = ((keep * n as f32).round() as usize).clamp(1, n);
                assert_eq!(t.onset_count(), want);
                assert_eq!(t.onset_mask() & prev_mask, prev_mask, "nested");
                prev_mask = t.onset_mask();
                for i in 0..16 {
                    assert_eq!(t.contour(i), m.contour(i));
                }
            }
            assert_eq!(thin(&m, 1.0, 3), m);
            assert_ne!(thin(&m, 0.5, 1).onset_mask(), 0);
        }
        // Different seeds thin differently (at least sometimes).
        let m = Motif::generate(5, &style(16, 1.0, 4, 0.2, 0.2));
        let masks: Vec<u16> = (0..10).map(|s| thin(&m, 0.5, s).onset_mask()).collect();
        assert!(masks.iter().any(|&x| x != masks[0]));
    }

    #[test]
    fn fill_adds_interpolated_onsets() {
        let st = style(16, 0.25, 4, 0.3, 0.0);
        for seed in 0..50 {
            let m = Motif::generate(seed, &st);
            let empty = 16 - m.onset_count();
            let mut prev_mask = m.onset_mask();
            for k in 0..=10 {
                let amount = k as f32 / 10.0;
                let f = fill(&m, amount, 11);
                assert_eq!(f, fill(&m, amount, 11));
                assert_eq!(f.onset_mask() & m.onset_mask(), m.onset_mask(), "superset");
                assert_eq!(f.onset_mask() & prev_mask, prev_mask, "nested");
                prev_mask = f.onset_mask();
                let want = m.onset_count() + (amount * empty as f32).round() as usize;
                assert_eq!(f.onset_count(), want);
                assert_eq!(f.accent_mask(), m.accent_mask());
                // Added contour lies between its neighbouring original onsets.
                for i in 0..16 {
                    if f.onset(i) && !m.onset(i) {
                        let prev = (0..i).rev().find(|&j| m.onset(j)).unwrap();
                        let next = (i + 1..16).find(|&j| m.onset(j)).unwrap_or(0);
                        let (a, b) = (m.contour(prev), m.contour(next));
                        let v = f.contour(i);
                        assert!(v >= a.min(b) && v <= a.max(b), "{a} {v} {b}");
                    }
                }
            }
            assert_eq!(fill(&m, 0.0, 1), m);
            assert!((fill(&m, 1.0, 1).density() - 1.0).abs() < 1e-6);
        }
        // Exact interpolation on a hand-made motif.
        let mut m = Motif {
            onsets: 0b1_0001,
            contour: [0; 16],
            accents: 1,
            len: 8,
        };
        m.contour[4] = 4;
        let f = fill(&m, 1.0, 0);
        let c: Vec<i8> = (0..8).map(|i| f.contour(i)).collect();
        assert_eq!(c, vec![0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
