//! Musical measures of rendered audio: pitch-class content (a peak-picking chroma), how
//! clearly a chord is heard (the top-3 pitch-class share per bar), the key (Krumhansl–Kessler
//! profiles over 24 keys), the balance of the spectrum in three bands, and loudness per
//! section, over time and its range (EBU R128 via the `ebur128` crate).
//!
//! Self-contained (only `rustfft` and `ebur128`) and independent of the engine: everything
//! is computed from samples. The measures are tested on synthetic signals in
//! `tests/it/music_selftest.rs`. Empty input and silence give zeros, never NaN or a panic.
#![allow(dead_code)]

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

// ---------------------------------------------------------------------------
// Spectral frames
// ---------------------------------------------------------------------------

/// Analysis window of the chroma, about 0.34 s at 48 kHz: long enough to resolve the
/// partials of a bass note (2.9 Hz bins), short against a bar.
const CHROMA_WINDOW_SECS: f32 = 0.34;
/// Hop between chroma frames, in windows.
const CHROMA_HOPS_PER_WINDOW: usize = 4;
/// Lowest and highest partial counted (A0 .. a little above C8).
const CHROMA_LO_HZ: f32 = 27.5;
const CHROMA_HI_HZ: f32 = 5000.0;
/// Peaks more than this far below the loudest peak of their frame are ignored (60 dB).
const PEAK_FLOOR_REL: f32 = 1e-6;
/// Frames quieter than this (relative power, 50 dB below the loudest frame) are silent.
const SILENT_FRAME_REL: f64 = 1e-5;

/// Band edges of [`band_shares`], in Hz.
pub const LOW_BAND_HZ: f32 = 125.0;
/// Upper edge of the middle band of [`band_shares`], in Hz.
pub const MID_BAND_HZ: f32 = 1000.0;

/// Pitch-class content and band energies of a signal, frame by frame.
///
/// Chroma: Hann frames of [`CHROMA_WINDOW_SECS`] (next power of two; 16384 at 48 kHz), hop
/// a quarter window; in each frame every spectral peak (a local maximum of the magnitude
/// within 60 dB of the frame's loudest) between 27.5 Hz and 5 kHz has its frequency refined by
/// parabolic interpolation of the log magnitude and adds its power to the nearest
/// equal-tempered pitch class (A4 = 440 Hz). Picking peaks rather than summing bins (as HPCP
/// does) keeps low notes in their own class even where the window's main lobe is wider than
/// a semitone. Noise has peaks everywhere, so it spreads over all classes, as it should.
#[derive(Clone, Debug, Default)]
pub struct Frames {
    /// Seconds between frames; frame `i` covers `[i × hop, i × hop + window)`.
    pub hop_secs: f32,
    /// Window length in seconds.
    pub window_secs: f32,
    /// Peak power per pitch class (0 = C), per frame.
    pub chroma: Vec<[f32; 12]>,
    /// Power below [`LOW_BAND_HZ`], between it and [`MID_BAND_HZ`], and above, per frame.
    pub bands: Vec<[f64; 3]>,
    /// Power in prominent spectral peaks and in all bins, 60 Hz to 5 kHz, per frame.
    pub tonal: Vec<(f64, f64)>,
    /// Power in third-octave bands centred from 25 Hz to 400 Hz, per frame.
    pub low_thirds: Vec<[f64; LOW_THIRDS]>,
    /// Above [`WIDTH_FROM_HZ`]: the real part of the left-right cross spectrum and the
    /// left and right powers, per frame (stereo analyses only).
    pub stereo: Vec<[f64; 3]>,
}

/// The stereo image is measured above this frequency, where it is heard (a mix keeps its
/// bass in the middle).
pub const WIDTH_FROM_HZ: f32 = 200.0;

/// Third-octave bands of [`Frames::low_thirds`]: centres 25 Hz × 2^(k/3), k = 0..13.
pub const LOW_THIRDS: usize = 13;
/// A peak is prominent when its power is this many times the mean power of the bins
/// around it (±32 bins): white noise reaches it in 0.25 % of its bins.
const PROMINENCE: f32 = 6.0;

impl Frames {
    /// Analyses a mono signal.
    pub fn of(x: &[f32], sample_rate: f32) -> Frames {
        Self::of_channels(&[x], sample_rate)
    }

    /// Analyses interleaved stereo: the two channels' powers add (a mono sum would let
    /// wide, decorrelated content such as a reverb's tail partly cancel).
    pub fn of_stereo(stereo: &[f32], sample_rate: f32) -> Frames {
        let l: Vec<f32> = stereo.chunks_exact(2).map(|f| f[0]).collect();
        let r: Vec<f32> = stereo.chunks_exact(2).map(|f| f[1]).collect();
        Self::of_channels(&[&l, &r], sample_rate)
    }

    fn of_channels(channels: &[&[f32]], sample_rate: f32) -> Frames {
        let n = ((CHROMA_WINDOW_SECS * sample_rate) as usize)
            .next_power_of_two()
            .max(256);
        let hop = n / CHROMA_HOPS_PER_WINDOW;
        let mut out = Frames {
            hop_secs: hop as f32 / sample_rate,
            window_secs: n as f32 / sample_rate,
            ..Frames::default()
        };
        let len = channels.iter().map(|c| c.len()).max().unwrap_or(0);
        if len == 0 || sample_rate <= 0.0 {
            return out;
        }
        let bin_hz = sample_rate / n as f32;
        let lo = ((CHROMA_LO_HZ / bin_hz).floor() as usize).max(1);
        let hi = ((CHROMA_HI_HZ / bin_hz).ceil() as usize).min(n / 2 - 1);
        let low_edge = (LOW_BAND_HZ / bin_hz).round() as usize;
        let mid_edge = (MID_BAND_HZ / bin_hz).round() as usize;
        let win: Vec<f32> = (0..n)
            .map(|i| (std::f32::consts::PI * i as f32 / n as f32).sin().powi(2))
            .collect();
        let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
        let mut buf = vec![Complex::new(0.0f32, 0.0); n];
        let mut scratch = vec![Complex::new(0.0f32, 0.0); fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f32; n / 2 + 1];
        let mut first = vec![Complex::new(0.0f32, 0.0); n / 2 + 1];
        let width_from = (WIDTH_FROM_HZ / bin_hz).round() as usize;
        let count = if len <= n {
            1
        } else {
            1 + (len - n).div_ceil(hop)
        };
        for i in 0..count {
            let start = i * hop;
            power.fill(0.0);
            for (ch, x) in channels.iter().enumerate() {
                for (j, b) in buf.iter_mut().enumerate() {
                    let v = x.get(start + j).copied().unwrap_or(0.0);
                    *b = Complex::new(v * win[j], 0.0);
                }
                fft.process_with_scratch(&mut buf, &mut scratch);
                for (p, c) in power.iter_mut().zip(&buf) {
                    *p += c.norm_sqr();
                }
                if channels.len() == 2 {
                    if ch == 0 {
                        first.copy_from_slice(&buf[..=n / 2]);
                    } else {
                        let mut acc = [0.0f64; 3];
                        for (l, r) in first.iter().zip(&buf).skip(width_from) {
                            acc[0] += (l * r.conj()).re as f64;
                            acc[1] += l.norm_sqr() as f64;
                            acc[2] += r.norm_sqr() as f64;
                        }
                        out.stereo.push(acc);
                    }
                }
            }
            let mut bands = [0.0f64; 3];
            for (k, &p) in power.iter().enumerate().skip(1) {
                let band = if k < low_edge {
                    0
                } else if k < mid_edge {
                    1
                } else {
                    2
                };
                bands[band] += p as f64;
            }
            out.bands.push(bands);
            out.chroma.push(peak_chroma(&power, lo, hi, bin_hz));
            out.tonal.push(tonal_power(&power, bin_hz));
            out.low_thirds.push(low_thirds(&power, bin_hz));
        }
        out
    }

    /// Frames whose windows lie inside `[start_secs, end_secs]`.
    fn range(&self, start_secs: f32, end_secs: f32) -> std::ops::Range<usize> {
        if self.hop_secs <= 0.0 {
            return 0..0;
        }
        let n = self.chroma.len();
        let first = ((start_secs / self.hop_secs).ceil().max(0.0) as usize).min(n);
        let last = ((((end_secs - self.window_secs) / self.hop_secs + 1e-3).floor() + 1.0).max(0.0)
            as usize)
            .min(n);
        first..last.max(first)
    }

    /// Chroma of a stretch of time: the frames' peak powers summed and normalized to sum 1
    /// (all zeros for silence).
    pub fn chroma_between(&self, start_secs: f32, end_secs: f32) -> [f32; 12] {
        let mut acc = [0.0f64; 12];
        for c in &self.chroma[self.range(start_secs, end_secs)] {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += *v as f64;
            }
        }
        normalized(acc)
    }

    /// Top-3 pitch-class share ([`top3_share`]) of each bar of `bar_secs` from `start_secs`
    /// to `end_secs`, skipping bars more than 40 dB below the loudest one.
    pub fn top3_per_bar(&self, bar_secs: f32, start_secs: f32, end_secs: f32) -> Vec<f32> {
        let mut bars = Vec::new();
        let mut t = start_secs;
        while t + bar_secs <= end_secs + 1e-3 {
            let range = self.range(t, t + bar_secs);
            let energy: f64 = self.chroma[range]
                .iter()
                .flat_map(|c| c.iter())
                .map(|v| *v as f64)
                .sum();
            bars.push((energy, self.chroma_between(t, t + bar_secs)));
            t += bar_secs;
        }
        let loudest = bars.iter().fold(0.0f64, |m, b| m.max(b.0));
        bars.iter()
            .filter(|b| b.0 > 0.0 && b.0 >= loudest * 1e-4)
            .map(|b| top3_share(&b.1))
            .collect()
    }

    /// The chroma a listener forms a key from: every non-silent frame normalized to its
    /// strongest class, then averaged (so quiet passages count as much as loud ones, as in
    /// the usual key-finding practice).
    pub fn key_chroma(&self) -> [f32; 12] {
        let energy: Vec<f64> = self
            .chroma
            .iter()
            .map(|c| c.iter().map(|v| *v as f64).sum())
            .collect();
        let loudest = energy.iter().fold(0.0f64, |m, e| m.max(*e));
        let mut acc = [0.0f64; 12];
        for (c, e) in self.chroma.iter().zip(&energy) {
            if *e <= 0.0 || *e < loudest * SILENT_FRAME_REL {
                continue;
            }
            let max = c.iter().fold(0.0f32, |m, v| m.max(*v));
            for (a, v) in acc.iter_mut().zip(c) {
                *a += (*v / max) as f64;
            }
        }
        normalized(acc)
    }

    /// Energy shares below 125 Hz, 125 Hz–1 kHz and above 1 kHz of a stretch of time (sum
    /// 1; all zeros for silence).
    pub fn band_shares_between(&self, start_secs: f32, end_secs: f32) -> [f32; 3] {
        let mut acc = [0.0f64; 3];
        for b in &self.bands[self.range(start_secs, end_secs)] {
            for (a, v) in acc.iter_mut().zip(b) {
                *a += v;
            }
        }
        let total: f64 = acc.iter().sum();
        if total <= 0.0 {
            return [0.0; 3];
        }
        acc.map(|a| (a / total) as f32)
    }

    /// Share of the power (60 Hz to 5 kHz) in prominent spectral peaks over a stretch of
    /// time: near 1 for notes, near 0 for noise (a wind wash, a reverb's diffuse tail).
    pub fn tonal_share_between(&self, start_secs: f32, end_secs: f32) -> f32 {
        let (mut tonal, mut total) = (0.0f64, 0.0f64);
        for (t, a) in &self.tonal[self.range(start_secs, end_secs)] {
            tonal += t;
            total += a;
        }
        if total > 0.0 {
            (tonal / total) as f32
        } else {
            0.0
        }
    }

    /// Correlation of left and right above [`WIDTH_FROM_HZ`] over a stretch of time (from
    /// the cross spectrum): 1 for a mono image, about 0 for unrelated sides, -1 for
    /// antiphase; 0 for silence or a mono analysis. Wider images have lower values.
    pub fn correlation_between(&self, start_secs: f32, end_secs: f32) -> f32 {
        let range = self.range(start_secs, end_secs);
        let range = range.start.min(self.stereo.len())..range.end.min(self.stereo.len());
        let mut acc = [0.0f64; 3];
        for f in &self.stereo[range] {
            for (a, v) in acc.iter_mut().zip(f) {
                *a += v;
            }
        }
        if acc[1] <= 0.0 || acc[2] <= 0.0 {
            return 0.0;
        }
        (acc[0] / (acc[1] * acc[2]).sqrt()) as f32
    }

    /// Length of the analysed signal in seconds (to the last frame's end).
    pub fn secs(&self) -> f32 {
        self.hop_secs * self.chroma.len().saturating_sub(1) as f32 + self.window_secs
    }
}

/// Power of the prominent peaks (each with its two neighbouring bins) and total power,
/// 60 Hz to 5 kHz.
fn tonal_power(power: &[f32], bin_hz: f32) -> (f64, f64) {
    const HALF: usize = 32;
    let lo = ((60.0 / bin_hz) as usize).max(HALF + 1);
    let hi = ((5000.0 / bin_hz) as usize).min(power.len().saturating_sub(HALF + 2));
    if hi <= lo {
        return (0.0, 0.0);
    }
    let mut prefix = Vec::with_capacity(power.len() + 1);
    prefix.push(0.0f64);
    for p in power {
        prefix.push(prefix.last().unwrap() + *p as f64);
    }
    let (mut tonal, mut total) = (0.0f64, 0.0f64);
    for k in lo..hi {
        let p = power[k];
        total += p as f64;
        if p <= power[k - 1] || p < power[k + 1] {
            continue;
        }
        let local = (prefix[k + HALF + 1] - prefix[k - HALF]) / (2 * HALF + 1) as f64;
        if p as f64 > PROMINENCE as f64 * local {
            tonal += (power[k - 1] + p + power[k + 1]) as f64;
        }
    }
    (tonal.min(total), total)
}

/// Power per third-octave band centred on 25 Hz × 2^(k/3).
fn low_thirds(power: &[f32], bin_hz: f32) -> [f64; LOW_THIRDS] {
    let mut out = [0.0f64; LOW_THIRDS];
    for (k, o) in out.iter_mut().enumerate() {
        let centre = 25.0 * 2f32.powf(k as f32 / 3.0);
        let a = (centre * 2f32.powf(-1.0 / 6.0) / bin_hz).round() as usize;
        let b = (centre * 2f32.powf(1.0 / 6.0) / bin_hz).round() as usize;
        *o = power[a.max(1)..b.min(power.len())]
            .iter()
            .map(|p| *p as f64)
            .sum();
    }
    out
}

fn normalized<const N: usize>(acc: [f64; N]) -> [f32; N] {
    let total: f64 = acc.iter().sum();
    if total <= 0.0 {
        return [0.0; N];
    }
    acc.map(|a| (a / total) as f32)
}

/// Adds every spectral peak of one frame's power spectrum to its pitch class.
fn peak_chroma(power: &[f32], lo: usize, hi: usize, bin_hz: f32) -> [f32; 12] {
    let mut out = [0.0f32; 12];
    if hi <= lo + 1 {
        return out;
    }
    let loudest = power[lo..=hi].iter().fold(0.0f32, |m, p| m.max(*p));
    if loudest <= 0.0 {
        return out;
    }
    let floor = loudest * PEAK_FLOOR_REL;
    for k in lo.max(1)..hi {
        let p = power[k];
        if p < floor || p <= power[k - 1] || p < power[k + 1] {
            continue;
        }
        // parabolic interpolation of the log magnitude (log power / 2) around the peak
        let (a, b, c) = (
            power[k - 1].max(1e-30).ln(),
            p.ln(),
            power[k + 1].max(1e-30).ln(),
        );
        let denom = a - 2.0 * b + c;
        let delta = if denom.abs() > 1e-12 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let hz = (k as f32 + delta) * bin_hz;
        let midi = 69.0 + 12.0 * (hz / 440.0).log2();
        out[(midi.round() as i64).rem_euclid(12) as usize] += p;
    }
    out
}

/// Share of a chroma's energy in its three strongest pitch classes (1 for a single class;
/// 0.25 for four equal classes; 0 for silence). A plain sawtooth triad scores about 0.85
/// (its harmonics add fifths and thirds of the chord tones outside the chord).
pub fn top3_share(chroma: &[f32; 12]) -> f32 {
    let total: f32 = chroma.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut sorted = *chroma;
    sorted.sort_by(|a, b| b.total_cmp(a));
    (sorted[0] + sorted[1] + sorted[2]) / total
}

/// Pitch classes ordered from strongest to weakest.
pub fn ranked_classes(chroma: &[f32; 12]) -> [u8; 12] {
    let mut order: [u8; 12] = std::array::from_fn(|i| i as u8);
    order.sort_by(|a, b| chroma[*b as usize].total_cmp(&chroma[*a as usize]));
    order
}

/// Mean of a list (0 when empty).
pub fn mean(v: &[f32]) -> f32 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f32>() / v.len() as f32
    }
}

// ---------------------------------------------------------------------------
// Key
// ---------------------------------------------------------------------------

/// Krumhansl–Kessler probe-tone profiles (Krumhansl 1990), tonic first.
const KK_MAJOR: [f32; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
const KK_MINOR: [f32; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];

/// A key and how well a chroma matches its profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyMatch {
    /// Tonic pitch class, 0 = C.
    pub tonic: u8,
    /// Minor (else major).
    pub minor: bool,
    /// Pearson correlation of the chroma with the key's rotated profile.
    pub r: f32,
}

impl KeyMatch {
    /// The relative key (C major ↔ A minor).
    pub fn relative(&self) -> (u8, bool) {
        if self.minor {
            ((self.tonic + 3) % 12, false)
        } else {
            ((self.tonic + 9) % 12, true)
        }
    }

    /// True if this is the key (`tonic`, `minor`) or its relative.
    pub fn is_or_relative_of(&self, tonic: u8, minor: bool) -> bool {
        (self.tonic == tonic % 12 && self.minor == minor) || self.relative() == (tonic % 12, minor)
    }

    /// A name such as "D major" or "F# minor".
    pub fn name(&self) -> String {
        const NAMES: [&str; 12] = [
            "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
        ];
        format!(
            "{} {}",
            NAMES[self.tonic as usize % 12],
            if self.minor { "minor" } else { "major" }
        )
    }
}

/// Krumhansl–Schmuckler key finding: the chroma's correlation with the Krumhansl–Kessler
/// profile rotated to each of the 24 major and minor keys, best match first.
pub fn key_ranking(chroma: &[f32; 12]) -> Vec<KeyMatch> {
    let mut keys = Vec::with_capacity(24);
    for minor in [false, true] {
        let profile = if minor { &KK_MINOR } else { &KK_MAJOR };
        for tonic in 0..12u8 {
            let rotated: [f32; 12] =
                std::array::from_fn(|pc| profile[(pc + 12 - tonic as usize) % 12]);
            keys.push(KeyMatch {
                tonic,
                minor,
                r: pearson(chroma, &rotated),
            });
        }
    }
    keys.sort_by(|a, b| b.r.total_cmp(&a.r));
    keys
}

fn pearson(a: &[f32; 12], b: &[f32; 12]) -> f32 {
    let ma = a.iter().sum::<f32>() / 12.0;
    let mb = b.iter().sum::<f32>() / 12.0;
    let (mut cov, mut va, mut vb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    if va <= 0.0 || vb <= 0.0 {
        0.0
    } else {
        cov / (va.sqrt() * vb.sqrt())
    }
}

// ---------------------------------------------------------------------------
// Loudness (EBU R128 / ITU-R BS.1770 through the `ebur128` crate)
// ---------------------------------------------------------------------------

/// Gated integrated loudness (LUFS) of interleaved stereo; `-inf` for silence or input
/// shorter than one 400 ms block.
pub fn integrated_lufs(stereo: &[f32], sample_rate: u32) -> f64 {
    let Ok(mut meter) = ebur128::EbuR128::new(2, sample_rate, ebur128::Mode::I) else {
        return f64::NEG_INFINITY;
    };
    if meter
        .add_frames_f32(&stereo[..stereo.len() / 2 * 2])
        .is_err()
    {
        return f64::NEG_INFINITY;
    }
    meter
        .loudness_global()
        .ok()
        .filter(|l| l.is_finite())
        .unwrap_or(f64::NEG_INFINITY)
}

/// EBU R128 loudness range (LRA, in LU) of interleaved stereo: the spread between the 10th
/// and 95th percentiles of the 3 s short-term loudness, gated at -70 LUFS and 20 LU below
/// the mean (EBU Tech 3342). 0 for silence.
pub fn loudness_range_lu(stereo: &[f32], sample_rate: u32) -> f64 {
    let Ok(mut meter) = ebur128::EbuR128::new(2, sample_rate, ebur128::Mode::LRA) else {
        return 0.0;
    };
    if meter
        .add_frames_f32(&stereo[..stereo.len() / 2 * 2])
        .is_err()
    {
        return 0.0;
    }
    meter
        .loudness_range()
        .ok()
        .filter(|l| l.is_finite())
        .unwrap_or(0.0)
}

/// Short-term (3 s window) loudness every `step_secs`: entry `i` is the loudness of the 3 s
/// ending at `(i + 1) × step_secs` (windows reaching before the start see silence there).
/// Silence gives `-inf` entries.
pub fn short_term_lufs(stereo: &[f32], sample_rate: u32, step_secs: f32) -> Vec<f64> {
    loudness_series(stereo, sample_rate, step_secs, true)
}

/// Momentary (400 ms window) loudness every `step_secs`, as [`short_term_lufs`].
pub fn momentary_lufs(stereo: &[f32], sample_rate: u32, step_secs: f32) -> Vec<f64> {
    loudness_series(stereo, sample_rate, step_secs, false)
}

fn loudness_series(stereo: &[f32], sample_rate: u32, step_secs: f32, short: bool) -> Vec<f64> {
    let mode = if short {
        ebur128::Mode::S
    } else {
        ebur128::Mode::M
    };
    let Ok(mut meter) = ebur128::EbuR128::new(2, sample_rate, mode) else {
        return Vec::new();
    };
    let step = ((step_secs * sample_rate as f32) as usize).max(1) * 2;
    stereo[..stereo.len() / 2 * 2]
        .chunks_exact(step)
        .map(|chunk| {
            let _ = meter.add_frames_f32(chunk);
            let l = if short {
                meter.loudness_shortterm()
            } else {
                meter.loudness_momentary()
            };
            l.ok()
                .filter(|l| l.is_finite())
                .unwrap_or(f64::NEG_INFINITY)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Harmonics of a note
// ---------------------------------------------------------------------------

/// Levels of the first `count` harmonics of `f0_hz` in a note, in dB relative to the whole
/// signal's power, and the share of the power the fundamental holds. One Hann window over
/// the whole signal (up to 4 s, so a detuned pair of oscillators is resolved and summed);
/// harmonic `k` is the power within ±40 cents of `k × f0` (at least ±1.5 bins). Silence
/// gives levels of -200 dB and a share of 0.
pub fn harmonic_levels_db(
    x: &[f32],
    sample_rate: f32,
    f0_hz: f32,
    count: usize,
) -> (Vec<f32>, f32) {
    let len = x.len().min((4.0 * sample_rate) as usize);
    let mut levels = vec![-200.0f32; count];
    if len < 16 || f0_hz <= 0.0 {
        return (levels, 0.0);
    }
    let n = len.next_power_of_two() * 2;
    let mut buf: Vec<Complex<f32>> = (0..n)
        .map(|i| {
            if i < len {
                let w = (std::f32::consts::PI * i as f32 / len as f32).sin().powi(2);
                Complex::new(x[i] * w, 0.0)
            } else {
                Complex::new(0.0, 0.0)
            }
        })
        .collect();
    FftPlanner::<f32>::new()
        .plan_fft_forward(n)
        .process(&mut buf);
    let bin_hz = sample_rate / n as f32;
    let power: Vec<f64> = buf[..=n / 2].iter().map(|c| c.norm_sqr() as f64).collect();
    let total: f64 = power[1..].iter().sum();
    if total <= 0.0 {
        return (levels, 0.0);
    }
    let band = |hz: f32| -> f64 {
        let half = (hz * (2f32.powf(40.0 / 1200.0) - 1.0)).max(1.5 * bin_hz);
        let a = ((hz - half) / bin_hz).floor().max(1.0) as usize;
        let b = (((hz + half) / bin_hz).ceil() as usize).min(n / 2);
        power[a..=b.max(a)].iter().sum()
    };
    for (k, level) in levels.iter_mut().enumerate() {
        let hz = f0_hz * (k + 1) as f32;
        if hz < 0.5 * sample_rate {
            *level = (10.0 * (band(hz) / total).max(1e-20).log10()) as f32;
        }
    }
    (levels, (band(f0_hz) / total) as f32)
}

/// How much two sounds share the low end (25–450 Hz), frame by frame over a stretch of
/// time: the overlap `Σ min(a_k, b_k)` of their third-octave band distributions (each
/// normalized to sum 1), averaged over the frames where both sound (within 40 dB of their
/// own loudest low frame). 1 = the same bands, 0 = different octaves; 0 when they never
/// sound together.
pub fn low_end_overlap(a: &Frames, b: &Frames, start_secs: f32, end_secs: f32) -> f32 {
    let range = a.range(start_secs, end_secs);
    let range = range.start..range.end.min(b.low_thirds.len());
    let sum = |f: &[f64; LOW_THIRDS]| f.iter().sum::<f64>();
    let loudest = |f: &Frames| f.low_thirds.iter().map(sum).fold(0.0f64, f64::max);
    let (la, lb) = (loudest(a), loudest(b));
    let mut overlaps = Vec::new();
    for i in range {
        let (fa, fb) = (&a.low_thirds[i], &b.low_thirds[i]);
        let (sa, sb) = (sum(fa), sum(fb));
        if sa <= la * 1e-4 || sb <= lb * 1e-4 || sa <= 0.0 || sb <= 0.0 {
            continue;
        }
        let overlap: f64 = fa.iter().zip(fb).map(|(x, y)| (x / sa).min(y / sb)).sum();
        overlaps.push(overlap as f32);
    }
    mean(&overlaps)
}
