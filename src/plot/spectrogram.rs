//! A spectrogram accumulated as audio streams by: Hann-windowed FFT frames averaged into a
//! fixed number of time columns and log-spaced frequency bands, so memory does not grow
//! with the length of the render.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// FFT length (85 ms at 48 kHz: 11.7 Hz bins).
pub const FFT_SIZE: usize = 4096;
/// Longest hop between FFT frames.
const MAX_HOP: u64 = FFT_SIZE as u64 / 2;
/// Shortest hop between FFT frames.
const MIN_HOP: u64 = 256;
/// Log-spaced frequency bands (rows) of the spectrogram.
pub const BANDS: usize = 192;
/// Lowest frequency shown.
pub const MIN_HZ: f32 = 30.0;
/// Highest frequency shown (or the Nyquist frequency if lower).
pub const MAX_HZ: f32 = 20_000.0;
/// Power reported for silence, in dB (full-scale sine = 0 dB).
pub const FLOOR_DB: f32 = -140.0;

/// Where a band's power comes from: the mean of the bins inside it, or, for a band
/// narrower than a bin, the power interpolated at its centre.
#[derive(Clone, Copy, Debug)]
enum BandSource {
    Bins(usize, usize),
    Between(usize, f32),
}

/// Accumulates mono audio into `columns` × [`BANDS`] mean powers.
pub struct Spectrogram {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Box<[f32]>,
    ring: Box<[f32]>,
    ring_pos: usize,
    input: Box<[f32]>,
    output: Box<[Complex<f32>]>,
    scratch: Box<[Complex<f32>]>,
    power: Box<[f32]>,
    bands: Box<[BandSource]>,
    max_hz: f32,
    hop: u64,
    since_hop: u64,
    frames: u64,
    total_frames: u64,
    columns: usize,
    sums: Box<[f32]>,
    counts: Box<[u32]>,
}

impl Spectrogram {
    /// A spectrogram of `total_frames` frames at `sample_rate` in `columns` columns.
    pub fn new(total_frames: u64, sample_rate: u32, columns: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        let window: Box<[f32]> = (0..FFT_SIZE)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / FFT_SIZE as f32).cos())
            .collect();
        let columns = columns.max(1);
        let frames_per_column = total_frames / columns as u64;
        let max_hz = MAX_HZ.min(sample_rate as f32 * 0.5);
        Self {
            input: vec![0.0; FFT_SIZE].into_boxed_slice(),
            output: fft.make_output_vec().into_boxed_slice(),
            scratch: fft.make_scratch_vec().into_boxed_slice(),
            fft,
            window,
            ring: vec![0.0; FFT_SIZE].into_boxed_slice(),
            ring_pos: 0,
            power: vec![0.0; FFT_SIZE / 2 + 1].into_boxed_slice(),
            bands: band_sources(sample_rate as f32, max_hz),
            max_hz,
            // about four frames per column, within the FFT's own overlap limits
            hop: (frames_per_column / 4).clamp(MIN_HOP, MAX_HOP),
            since_hop: 0,
            frames: 0,
            total_frames: total_frames.max(1),
            columns,
            sums: vec![0.0; columns * BANDS].into_boxed_slice(),
            counts: vec![0; columns].into_boxed_slice(),
        }
    }

    /// Highest frequency shown.
    pub fn max_hz(&self) -> f32 {
        self.max_hz
    }

    /// Feeds one mono sample.
    #[inline]
    pub fn push(&mut self, x: f32) {
        self.ring[self.ring_pos] = x;
        self.ring_pos = (self.ring_pos + 1) % FFT_SIZE;
        self.frames += 1;
        self.since_hop += 1;
        if self.since_hop == self.hop {
            self.since_hop = 0;
            self.frame();
        }
    }

    /// Transforms the last [`FFT_SIZE`] samples and adds the bands to their column (the
    /// one holding the frame's centre).
    fn frame(&mut self) {
        let (older, newer) = self.ring.split_at(self.ring_pos);
        let ordered = newer.iter().chain(older.iter());
        for ((dst, &x), &w) in self.input.iter_mut().zip(ordered).zip(self.window.iter()) {
            *dst = x * w;
        }
        // Cannot fail: every buffer has the planned length.
        let _ = self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        // |X| = 1 for a full-scale sine: scale by 2 / sum(window) = 4 / size
        let scale = (4.0 / FFT_SIZE as f32).powi(2);
        for (p, c) in self.power.iter_mut().zip(self.output.iter()) {
            *p = c.norm_sqr() * scale;
        }
        let centre = self.frames.saturating_sub(FFT_SIZE as u64 / 2);
        let column = ((centre as u128 * self.columns as u128 / self.total_frames as u128) as usize)
            .min(self.columns - 1);
        let sums = &mut self.sums[column * BANDS..(column + 1) * BANDS];
        for (sum, source) in sums.iter_mut().zip(self.bands.iter()) {
            *sum += match *source {
                BandSource::Bins(lo, hi) => {
                    self.power[lo..hi].iter().sum::<f32>() / (hi - lo) as f32
                }
                BandSource::Between(i, t) => self.power[i] * (1.0 - t) + self.power[i + 1] * t,
            };
        }
        self.counts[column] += 1;
    }

    /// Mean power of every column in dB, band 0 (lowest) first; a column no frame fell
    /// into repeats the one before it (silence before the first).
    pub fn columns_db(&self) -> Vec<[f32; BANDS]> {
        let mut out = vec![[FLOOR_DB; BANDS]; self.columns];
        let mut last = [FLOOR_DB; BANDS];
        for (c, column) in out.iter_mut().enumerate() {
            if self.counts[c] > 0 {
                let n = self.counts[c] as f32;
                for (db, &sum) in last.iter_mut().zip(&self.sums[c * BANDS..(c + 1) * BANDS]) {
                    *db = power_db(sum / n);
                }
            }
            *column = last;
        }
        out
    }
}

fn power_db(power: f32) -> f32 {
    if power > 0.0 {
        (10.0 * power.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

/// The centre frequency of band `index` (of [`BANDS`]) between [`MIN_HZ`] and `max_hz`.
pub fn band_centre_hz(index: f32, max_hz: f32) -> f32 {
    MIN_HZ * (max_hz / MIN_HZ).powf((index + 0.5) / BANDS as f32)
}

fn band_sources(sample_rate: f32, max_hz: f32) -> Box<[BandSource]> {
    let bin_hz = sample_rate / FFT_SIZE as f32;
    let last_bin = FFT_SIZE / 2;
    let edge = |k: usize| MIN_HZ * (max_hz / MIN_HZ).powf(k as f32 / BANDS as f32);
    (0..BANDS)
        .map(|k| {
            let lo = (edge(k) / bin_hz).ceil() as usize;
            let hi = ((edge(k + 1) / bin_hz).ceil() as usize).min(last_bin + 1);
            if hi > lo {
                BandSource::Bins(lo, hi)
            } else {
                let position = (band_centre_hz(k as f32, max_hz) / bin_hz).min(last_bin as f32);
                let i = (position.floor() as usize).min(last_bin - 1);
                BandSource::Between(i, position - i as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, amplitude: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| amplitude * (std::f32::consts::TAU * hz * i as f32 / 48_000.0).sin())
            .collect()
    }

    fn band_of(hz: f32, max_hz: f32) -> usize {
        ((hz / MIN_HZ).ln() / (max_hz / MIN_HZ).ln() * BANDS as f32) as usize
    }

    #[test]
    fn a_sine_lights_its_band_at_its_level_and_silence_stays_dark() {
        let frames = 96_000;
        let mut s = Spectrogram::new(frames as u64, 48_000, 10);
        // first half silent, second half a 1 kHz sine at -6 dBFS
        for x in vec![0.0; frames / 2]
            .into_iter()
            .chain(sine(1_000.0, 0.5, frames / 2))
        {
            s.push(x);
        }
        let columns = s.columns_db();
        let band = band_of(1_000.0, s.max_hz());
        assert!(columns[2].iter().all(|&db| db == FLOOR_DB), "silent column");
        let loud = &columns[8];
        let (peak_band, peak_db) = loud
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        assert!(peak_band.abs_diff(band) <= 1, "{peak_band} vs {band}");
        // a band's power is the mean over its bins (three near 1 kHz): at most the sine's
        // own -6 dB, at least its peak bin (-1.4 dB Hann scalloping at worst) over three
        let BandSource::Bins(lo, hi) = s.bands[peak_band] else {
            panic!("bands at 1 kHz hold bins")
        };
        let floor = -6.0 - 1.5 - 10.0 * ((hi - lo) as f32).log10();
        assert!(
            (floor..=-5.9).contains(peak_db),
            "{peak_db} dB, {} bins",
            hi - lo
        );
        // two octaves away the sine's leakage is far below
        assert!(loud[band_of(4_000.0, s.max_hz())] < peak_db - 60.0);
    }

    #[test]
    fn low_bands_narrower_than_a_bin_interpolate_and_columns_without_frames_repeat() {
        let frames = 4_800;
        // more columns than FFT frames: empty columns repeat their predecessor
        let mut s = Spectrogram::new(frames as u64, 48_000, 100);
        for x in sine(40.0, 1.0, frames) {
            s.push(x);
        }
        let columns = s.columns_db();
        let band = band_of(40.0, s.max_hz());
        let last = columns.last().unwrap();
        assert!(last[band] > -6.0, "{}", last[band]);
        assert_eq!(columns[columns.len() - 2], *last);
        assert!(matches!(s.bands[0], BandSource::Between(..)));
    }
}
