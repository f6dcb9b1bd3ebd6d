//! Reading room recordings: any WAV hound reads, optionally resampled (band-limited, by
//! rubato's synchronous FFT resampler), streamed in bounded pieces ([`WavStream`]) so that a
//! long recording costs memory in proportion to one piece, and a reader that needs only its
//! beginning reads only that.
//!
//! A file whose data ends before its header says (what a crashed recorder leaves) is read as
//! far as it goes; [`WavStream::truncation`] tells how far that is.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use hound::{WavIntoSamples, WavReader};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Lowest sample rate accepted, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Most channels a room recording may have (7th-order Ambisonics has 64).
pub const MAX_CHANNELS: u16 = 64;
/// Frames per piece a [`WavStream`] decodes at a time without resampling.
pub const PIECE_FRAMES: usize = 4096;
/// Input frames per call of the resampler (and per piece when resampling).
const RESAMPLER_CHUNK_FRAMES: usize = 1024;

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The file could not be opened or is not a WAV file hound understands.
    #[error("{path}: cannot read as WAV: {reason}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// hound's reason.
        reason: hound::Error,
    },
    /// The file has no channels, too many, or a sample rate outside the supported range.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A resampling rate outside the supported range was asked for.
    #[error("sample rate {0} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz")]
    Rate(u32),
    /// The resampler failed.
    #[error("{path}: resampling failed: {reason}")]
    Resample {
        /// The file.
        path: PathBuf,
        /// rubato's reason.
        reason: String,
    },
}

/// The sample rate of a WAV file, in Hz.
pub fn wav_sample_rate(path: &Path) -> Result<u32, AnalysisError> {
    hound::WavReader::open(path)
        .map(|r| r.spec().sample_rate)
        .map_err(|reason| AnalysisError::Wav {
            path: path.to_path_buf(),
            reason,
        })
}

/// Reads a WAV file (8–32-bit integer or 32-bit float, 1..=[`MAX_CHANNELS`] channels) as
/// interleaved f32 in -1..1, resampled to `rate` if given and different; returns the samples
/// and the channel count. A file cut short is read as far as it goes (see [`WavStream`]).
pub fn read_wav(path: &Path, rate: Option<u32>) -> Result<(Vec<f32>, u16), AnalysisError> {
    let mut stream = WavStream::open(path, rate)?;
    let channels = stream.channels();
    let mut samples = Vec::with_capacity(stream.frames() as usize * usize::from(channels));
    while let Some(piece) = stream.next_piece()? {
        samples.extend_from_slice(piece);
    }
    Ok((samples, channels))
}

/// A WAV file whose data ends before its header says it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The file.
    pub path: PathBuf,
    /// Frames the header claims.
    pub claimed_frames: u64,
    /// Whole frames the file holds (all that is read).
    pub held_frames: u64,
    /// The file's sample rate, in Hz.
    pub sample_rate: u32,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |frames: u64| frames as f64 / f64::from(self.sample_rate);
        write!(
            f,
            "{}: the data ends after {:.2} s ({} frames) of the {:.2} s ({} frames) its header \
             claims (a recording cut short?); reading the {:.2} s that are there",
            self.path.display(),
            secs(self.held_frames),
            self.held_frames,
            secs(self.claimed_frames),
            self.claimed_frames,
            secs(self.held_frames),
        )
    }
}

/// A WAV file read piece by piece, as interleaved f32 in -1..1, optionally resampled to
/// another rate. Memory: one piece ([`PIECE_FRAMES`], or one resampler chunk) plus the
/// resampler's state, whatever the file's length. The samples are exactly those
/// [`read_wav`] returns, and a reader that stops early has read only what it took.
pub struct WavStream {
    path: PathBuf,
    samples: Samples,
    channels: u16,
    source_rate: u32,
    /// The rate of the samples it gives.
    rate: u32,
    claimed_frames: u64,
    /// Whole frames the file holds, at the file's rate.
    held_frames: u64,
    /// Frames decoded so far, at the file's rate.
    decoded_frames: u64,
    resampling: Option<Resampling>,
    /// The piece handed out last.
    piece: Vec<f32>,
}

/// hound's sample iterator for the file's format.
enum Samples {
    Float(WavIntoSamples<BufReader<File>, f32>),
    /// Integers, with the scale that maps them to -1..1.
    Int(WavIntoSamples<BufReader<File>, i32>, f64),
}

/// rubato's synchronous FFT resampler, fed one chunk at a time exactly as
/// `Resampler::process_all` feeds it a whole clip, so the output is the same sample for
/// sample.
struct Resampling {
    resampler: Fft<f32>,
    /// Output of the current call (interleaved), before the start-up delay is dropped.
    output: Vec<f32>,
    /// Output frames of the start-up delay still to drop.
    delay_left: usize,
    /// Frames the whole resampled file has (`ceil(ratio × input frames)`).
    total_frames: u64,
    /// Frames handed out so far.
    emitted_frames: u64,
}

impl WavStream {
    /// Opens `path` and reads its header; with `rate`, the pieces are resampled to it.
    pub fn open(path: &Path, rate: Option<u32>) -> Result<WavStream, AnalysisError> {
        let wav_error = |reason| AnalysisError::Wav {
            path: path.to_path_buf(),
            reason,
        };
        let unsupported = |reason: String| AnalysisError::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(r) = rate {
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&r) {
                return Err(AnalysisError::Rate(r));
            }
        }
        let reader = WavReader::open(path).map_err(wav_error)?;
        let spec = reader.spec();
        if spec.channels == 0 {
            return Err(unsupported("the file has no channels".into()));
        }
        if spec.channels > MAX_CHANNELS {
            return Err(unsupported(format!(
                "{} channels; a room recording may have 1 to {MAX_CHANNELS}",
                spec.channels
            )));
        }
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
            return Err(unsupported(format!(
                "sample rate {} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz",
                spec.sample_rate
            )));
        }
        let claimed_frames = u64::from(reader.duration());
        let held_frames = held_frames(path, claimed_frames, spec.channels).map_err(wav_error)?;
        let samples = match spec.sample_format {
            hound::SampleFormat::Float => Samples::Float(reader.into_samples()),
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f64;
                Samples::Int(reader.into_samples(), scale)
            }
        };
        let target = rate.unwrap_or(spec.sample_rate);
        let resampling = if target == spec.sample_rate || held_frames == 0 {
            None
        } else {
            let resampler = Fft::<f32>::new(
                spec.sample_rate as usize,
                target as usize,
                RESAMPLER_CHUNK_FRAMES,
                spec.channels.into(),
                FixedSync::Input,
            )
            .map_err(|e| AnalysisError::Resample {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            Some(Resampling::new(resampler, held_frames, spec.channels))
        };
        Ok(WavStream {
            path: path.to_path_buf(),
            samples,
            channels: spec.channels,
            source_rate: spec.sample_rate,
            rate: target,
            claimed_frames,
            held_frames,
            decoded_frames: 0,
            resampling,
            piece: Vec::new(),
        })
    }

    /// Channels of every frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// The file's own sample rate, in Hz.
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// The sample rate of the samples it gives, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Frames the stream gives in all, at the rate it gives them.
    pub fn frames(&self) -> u64 {
        self.resampling
            .as_ref()
            .map_or(self.held_frames, |r| r.total_frames)
    }

    /// `Some` when the file holds fewer frames than its header claims.
    pub fn truncation(&self) -> Option<Truncation> {
        (self.held_frames < self.claimed_frames).then(|| Truncation {
            path: self.path.clone(),
            claimed_frames: self.claimed_frames,
            held_frames: self.held_frames,
            sample_rate: self.source_rate,
        })
    }

    /// The next piece of interleaved samples (whole frames), or `None` at the end.
    pub fn next_piece(&mut self) -> Result<Option<&[f32]>, AnalysisError> {
        let more = if self.resampling.is_some() {
            self.next_resampled()?
        } else {
            let frames = (self.held_frames - self.decoded_frames).min(PIECE_FRAMES as u64);
            self.piece.clear();
            self.decode(frames as usize)?;
            frames > 0
        };
        Ok(more.then_some(self.piece.as_slice()))
    }

    /// Appends the next `frames` frames of the file to `piece`.
    fn decode(&mut self, frames: usize) -> Result<(), AnalysisError> {
        let n = frames * usize::from(self.channels);
        let result = match &mut self.samples {
            Samples::Float(samples) => samples
                .take(n)
                .try_for_each(|s| s.map(|s| self.piece.push(s))),
            Samples::Int(samples, scale) => samples
                .take(n)
                .try_for_each(|s| s.map(|s| self.piece.push((f64::from(s) * *scale) as f32))),
        };
        result.map_err(|reason| AnalysisError::Wav {
            path: self.path.clone(),
            reason,
        })?;
        self.decoded_frames += frames as u64;
        Ok(())
    }

    /// Runs the resampler once (on the next chunk of the file, or on silence past its end)
    /// and puts what it gives, less the start-up delay, into `piece`; `false` at the end.
    fn next_resampled(&mut self) -> Result<bool, AnalysisError> {
        loop {
            let Some(r) = &self.resampling else {
                return Ok(false);
            };
            if r.emitted_frames >= r.total_frames {
                return Ok(false);
            }
            // as process_all: whole chunks while more than a chunk is left, then what is left
            // as a partial chunk, then silence until the output is long enough
            let left = self.held_frames - self.decoded_frames;
            let frames = left.min(RESAMPLER_CHUNK_FRAMES as u64) as usize;
            let partial = (left <= RESAMPLER_CHUNK_FRAMES as u64).then_some(frames);
            self.piece.clear();
            self.decode(frames)?;
            // the resampler's inverse FFT refuses NaN and infinity (rubato then panics), and
            // float samples near f32::MAX overflow into them: silence what is not a number and
            // clip the rest far above full scale (±65536, 96 dB over) before resampling
            for s in self.piece.iter_mut() {
                *s = if s.is_finite() {
                    s.clamp(-65_536.0, 65_536.0)
                } else {
                    0.0
                };
            }
            let channels = usize::from(self.channels);
            let Some(r) = &mut self.resampling else {
                return Ok(false);
            };
            let given = r
                .process(&self.piece, channels, partial)
                .map_err(|reason| AnalysisError::Resample {
                    path: self.path.clone(),
                    reason,
                })?;
            self.piece.clear();
            self.piece.extend_from_slice(given);
            if !self.piece.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl Resampling {
    fn new(resampler: Fft<f32>, input_frames: u64, channels: u16) -> Resampling {
        let total_frames = (resampler.resample_ratio() * input_frames as f64).ceil() as u64;
        let output_frames = resampler
            .output_frames_max()
            .max(resampler.output_frames_next());
        Resampling {
            delay_left: resampler.output_delay(),
            output: vec![0.0; output_frames * usize::from(channels)],
            resampler,
            total_frames,
            emitted_frames: 0,
        }
    }

    /// Resamples one chunk (`partial`: its length when it is the last one, or 0 past the
    /// end) and returns the output frames to hand out.
    fn process(
        &mut self,
        input: &[f32],
        channels: usize,
        partial: Option<usize>,
    ) -> Result<&[f32], String> {
        let frames_in = input.len() / channels;
        let input = InterleavedSlice::new(input, channels, frames_in).map_err(|e| e.to_string())?;
        let frames_out = self.output.len() / channels;
        let mut output = InterleavedSlice::new_mut(&mut self.output, channels, frames_out)
            .map_err(|e| e.to_string())?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: partial,
            active_channels_mask: None,
        };
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| e.to_string())?;
        let dropped = produced.min(self.delay_left);
        self.delay_left -= dropped;
        let wanted = (self.total_frames - self.emitted_frames).min((produced - dropped) as u64);
        self.emitted_frames += wanted;
        Ok(&self.output[dropped * channels..(dropped + wanted as usize) * channels])
    }
}

/// Whole frames the file at `path` holds: what its header claims, or fewer when its data
/// ends early. Finds where hound's reader starts the data and how many bytes it takes per
/// sample by counting the bytes it reads (the header, then one sample).
fn held_frames(path: &Path, claimed_frames: u64, channels: u16) -> Result<u64, hound::Error> {
    if claimed_frames == 0 {
        return Ok(0);
    }
    let file = File::open(path)?;
    let file_bytes = file.metadata()?.len();
    let consumed = Cell::new(0);
    let counted = CountingReader {
        inner: BufReader::new(file),
        consumed: &consumed,
    };
    let mut reader = WavReader::new(counted)?;
    let data_start = consumed.get();
    let first = match reader.spec().sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().next().map(|s| s.map(drop)),
        hound::SampleFormat::Int => reader.samples::<i32>().next().map(|s| s.map(drop)),
    };
    match first {
        Some(Ok(())) => {}
        // the data ends before its first sample
        Some(Err(hound::Error::IoError(_))) | None => return Ok(0),
        Some(Err(e)) => return Err(e),
    }
    let bytes_per_frame = (consumed.get() - data_start) * u64::from(channels);
    let held = file_bytes.saturating_sub(data_start) / bytes_per_frame.max(1);
    Ok(held.min(claimed_frames))
}

/// A reader that counts the bytes taken from it.
struct CountingReader<'a, R> {
    inner: R,
    consumed: &'a Cell<u64>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}
