//! The render's picture: on one time axis, the sections as labelled bands, who is in (joins
//! and leaves as ticks), a spectrogram of the audio (log frequency, dB colour), its loudness
//! (momentary and short-term, ITU-R BS.1770) and the communal mood dimensions as lines.
//!
//! [`PlotBuilder`] takes the rendered audio as it streams by and keeps only a fixed number
//! of columns (the plot's width in pixels), so its memory does not grow with the render's
//! length; [`PlotBuilder::finish`] draws the picture with a [`Timeline`] of the same render
//! and writes it as a PNG. Drawing uses plotters' bitmap backend with a font embedded in the
//! library (DejaVu Sans, see `src/plot/LICENSE-DejaVu.txt`): no system fonts are needed.

mod draw;
mod spectrogram;

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::analysis::loudness::Loudness;
use crate::analysis::LOUDNESS_FLOOR_LUFS;
use crate::timeline::Timeline;
use spectrogram::Spectrogram;

pub use spectrogram::{BANDS, FFT_SIZE, MIN_HZ};

/// Narrowest picture, in pixels.
pub const MIN_WIDTH: u32 = 960;
/// Widest picture, in pixels.
pub const MAX_WIDTH: u32 = 4096;
/// Lowest picture, in pixels (every legend fits).
pub const MIN_HEIGHT: u32 = 720;
/// Width used when none is given.
pub const DEFAULT_WIDTH: u32 = 1600;
/// Loudness is measured every this many seconds (BS.1770 momentary and short-term).
pub const LOUDNESS_HOP_SECS: f64 = 0.1;

/// Errors drawing or writing a plot.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing failed.
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    /// The PNG could not be written.
    #[error("cannot write the plot to {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Where each panel of a drawn plot lies, in pixels of the image (x to the right, y down),
/// and which colour each mood dimension got.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotLayout {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Columns of the time axis: time 0 at `time_x.start`, the end of the render at
    /// `time_x.end`.
    pub time_x: Range<i32>,
    /// Rows of the section bands.
    pub sections_y: Range<i32>,
    /// Rows of the participants panel.
    pub participants_y: Range<i32>,
    /// Rows of the spectrogram (highest frequency at the top).
    pub spectrogram_y: Range<i32>,
    /// Rows of the loudness panel.
    pub loudness_y: Range<i32>,
    /// Rows of the mood panel (each dimension's maximum at the top, minimum at the bottom).
    pub mood_y: Range<i32>,
    /// Every mood dimension's name and line colour (RGB), in patch order.
    pub mood_colors: Vec<(String, [u8; 3])>,
}

impl PlotLayout {
    /// The image column of a time in seconds, for a render of `duration_secs`.
    pub fn x_of(&self, seconds: f64, duration_secs: f64) -> i32 {
        let span = (self.time_x.end - self.time_x.start) as f64;
        self.time_x.start + (seconds / duration_secs.max(1e-9) * span).round() as i32
    }
}

/// Loudness of each column: the range of momentary loudness and the last short-term value.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LoudnessColumn {
    momentary_min: f32,
    momentary_max: f32,
    short_term: f32,
    seen: bool,
}

/// Builds the picture of a render from its audio as it streams by.
pub struct PlotBuilder {
    total_frames: u64,
    sample_rate: u32,
    width: u32,
    columns: usize,
    frames: u64,
    spectrogram: Spectrogram,
    meter: Loudness,
    loudness_hop: u64,
    since_loudness: u64,
    loudness: Vec<LoudnessColumn>,
    target_lufs: Option<f32>,
}

impl PlotBuilder {
    /// A plot of a render `total_frames` long at `sample_rate`, `width` pixels wide
    /// ([`MIN_WIDTH`]..=[`MAX_WIDTH`], clamped); the height follows (5/8 of the width, at
    /// least [`MIN_HEIGHT`]).
    /// Allocates every buffer it will need.
    pub fn new(total_frames: u64, sample_rate: u32, width: u32) -> Self {
        let width = width.clamp(MIN_WIDTH, MAX_WIDTH);
        let columns = draw::plot_columns(width);
        let sample_rate = sample_rate.max(1);
        let loudness_hop = (sample_rate as f64 * LOUDNESS_HOP_SECS).round().max(1.0) as u64;
        let empty = LoudnessColumn {
            momentary_min: f32::INFINITY,
            momentary_max: f32::NEG_INFINITY,
            short_term: LOUDNESS_FLOOR_LUFS,
            seen: false,
        };
        Self {
            total_frames: total_frames.max(1),
            sample_rate,
            width,
            columns,
            frames: 0,
            spectrogram: Spectrogram::new(total_frames, sample_rate, columns),
            meter: Loudness::new(sample_rate, 2, loudness_hop as usize),
            loudness_hop,
            since_loudness: 0,
            loudness: vec![empty; columns],
            target_lufs: None,
        }
    }

    /// Draws the piece's loudness target as a dashed line in the loudness panel.
    pub fn with_loudness_target(mut self, lufs: f32) -> Self {
        self.target_lufs = lufs.is_finite().then_some(lufs);
        self
    }

    /// Forgets the audio fed so far (a render pass that starts over).
    pub fn restart(&mut self) {
        let target = self.target_lufs;
        *self = Self::new(self.total_frames, self.sample_rate, self.width);
        self.target_lufs = target;
    }

    /// Image width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, draw::height_for(self.width))
    }

    /// Feeds interleaved stereo samples (non-finite samples count as silence). Frames past
    /// the announced total fall into the last column.
    pub fn push_audio(&mut self, interleaved: &[f32]) {
        for frame in interleaved.chunks_exact(2) {
            let clean = |x: f32| {
                if x.is_finite() {
                    x.clamp(-1e3, 1e3)
                } else {
                    0.0
                }
            };
            let (l, r) = (clean(frame[0]), clean(frame[1]));
            self.spectrogram.push(0.5 * (l + r));
            self.meter.push(0, l);
            self.meter.push(1, r);
            self.frames += 1;
            self.since_loudness += 1;
            if self.since_loudness == self.loudness_hop {
                self.since_loudness = 0;
                self.end_loudness_hop();
            }
        }
    }

    fn end_loudness_hop(&mut self) {
        let (momentary, short_term) = self.meter.end_hop(self.loudness_hop as usize);
        let column = self.column_of(self.frames - 1);
        let c = &mut self.loudness[column];
        c.momentary_min = c.momentary_min.min(momentary);
        c.momentary_max = c.momentary_max.max(momentary);
        c.short_term = short_term;
        c.seen = true;
    }

    fn column_of(&self, frame: u64) -> usize {
        ((frame as u128 * self.columns as u128 / self.total_frames as u128) as usize)
            .min(self.columns - 1)
    }

    /// Loudness per column, a column without a hop of its own repeating the one before.
    fn loudness_columns(&self) -> Vec<LoudnessColumn> {
        let mut last = LoudnessColumn {
            momentary_min: LOUDNESS_FLOOR_LUFS,
            momentary_max: LOUDNESS_FLOOR_LUFS,
            short_term: LOUDNESS_FLOOR_LUFS,
            seen: false,
        };
        self.loudness
            .iter()
            .map(|c| {
                if c.seen {
                    last = *c;
                }
                last
            })
            .collect()
    }

    /// Draws the picture with the render's timeline and writes it as a PNG; returns where
    /// each panel lies.
    pub fn finish(&self, timeline: &Timeline, path: &Path) -> Result<PlotLayout, PlotError> {
        let (png, layout) = self.finish_png(timeline)?;
        std::fs::write(path, png).map_err(|e| PlotError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(layout)
    }

    /// Draws the picture and returns it as PNG bytes, with where each panel lies.
    pub fn finish_png(&self, timeline: &Timeline) -> Result<(Vec<u8>, PlotLayout), PlotError> {
        let (width, height) = self.size();
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        let data = draw::PlotData {
            timeline,
            duration_secs: self.total_frames as f64 / self.sample_rate as f64,
            spectrogram: self.spectrogram.columns_db(),
            max_hz: self.spectrogram.max_hz(),
            loudness: self
                .loudness_columns()
                .iter()
                .map(|c| (c.momentary_min, c.momentary_max, c.short_term))
                .collect(),
            target_lufs: self.target_lufs,
        };
        let layout = draw::draw(&mut rgb, width, height, &data)?;
        Ok((encode_png(&rgb, width, height)?, layout))
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let error = |e: png::EncodingError| PlotError::Draw(format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(error)?;
    writer.write_image_data(rgb).map_err(error)?;
    writer.finish().map_err(error)?;
    Ok(png)
}

/// Draws the picture of rendered audio (interleaved stereo, all in memory) with its
/// timeline into a PNG file `width` pixels wide.
pub fn plot_render(
    audio: &[f32],
    timeline: &Timeline,
    width: u32,
    target_lufs: Option<f32>,
    path: &Path,
) -> Result<PlotLayout, PlotError> {
    let frames = (audio.len() / 2) as u64;
    let mut builder = PlotBuilder::new(frames, timeline.sample_rate(), width);
    if let Some(lufs) = target_lufs {
        builder = builder.with_loudness_target(lufs);
    }
    for block in audio.chunks(2 * 4096) {
        builder.push_audio(block);
    }
    builder.finish(timeline, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loudness_columns_read_a_tone_at_its_bs1770_level_and_silence_at_the_floor() {
        // 5 s of silence, then 5 s of a 997 Hz sine at 0.1 in both channels: -20 LUFS
        // (BS.1770's -0.691 offset cancels the K-weighting's gain at 1 kHz)
        let rate = 48_000;
        let mut b = PlotBuilder::new(10 * rate as u64, rate, MIN_WIDTH);
        let mut audio = vec![0.0f32; 2 * 5 * rate as usize];
        for i in 0..5 * rate as usize {
            let x = 0.1 * (std::f32::consts::TAU * 997.0 * i as f32 / rate as f32).sin();
            audio.extend([x, x]);
        }
        for block in audio.chunks(2 * 1000) {
            b.push_audio(block);
        }
        let columns = b.loudness_columns();
        let quiet = columns[columns.len() / 4];
        assert_eq!(quiet.short_term, LOUDNESS_FLOOR_LUFS);
        assert_eq!(quiet.momentary_max, LOUDNESS_FLOOR_LUFS);
        let last = columns.last().unwrap();
        assert!((last.short_term + 20.0).abs() < 0.05, "{}", last.short_term);
        assert!(
            (last.momentary_min + 20.0).abs() < 0.05,
            "{}",
            last.momentary_min
        );
        assert!(
            (last.momentary_max + 20.0).abs() < 0.05,
            "{}",
            last.momentary_max
        );
        // every column holds a value (0.1 s hops are wider than a column here)
        assert!(columns.iter().all(|c| c.short_term.is_finite()));
    }

    #[test]
    fn widths_are_clamped_and_the_height_follows() {
        assert_eq!(
            PlotBuilder::new(48_000, 48_000, 10).size(),
            (MIN_WIDTH, MIN_HEIGHT)
        );
        assert_eq!(
            PlotBuilder::new(48_000, 48_000, 100_000).size(),
            (MAX_WIDTH, 2_560)
        );
        assert_eq!(PlotBuilder::new(48_000, 48_000, 1600).size(), (1600, 1000));
    }

    fn timeline(frames: u64) -> Timeline {
        let patch = crate::Patch::load(Path::new("patches/minimal.toml")).unwrap();
        let mut t = Timeline::new(&patch.name, &patch.names(), &patch.config(48_000, None));
        t.finish(frames, 0, 0);
        t
    }

    #[test]
    fn empty_and_silent_renders_draw_with_a_dark_spectrogram() {
        for frames in [0u64, 24_000] {
            let mut b = PlotBuilder::new(frames, 48_000, MIN_WIDTH);
            b.push_audio(&vec![0.0; 2 * frames as usize]);
            let (png, layout) = b.finish_png(&timeline(frames)).unwrap();
            let decoder = png::Decoder::new(std::io::Cursor::new(png));
            let mut reader = decoder.read_info().unwrap();
            let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut rgb).unwrap();
            assert_eq!((info.width, info.height), (MIN_WIDTH, MIN_HEIGHT));
            let y = (layout.spectrogram_y.start + layout.spectrogram_y.end) as usize / 2;
            let x = (layout.time_x.start + layout.time_x.end) as usize / 2;
            let i = 3 * (y * MIN_WIDTH as usize + x);
            assert!(rgb[i..i + 3].iter().all(|&c| c < 8), "{:?}", &rgb[i..i + 3]);
        }
    }
}
