//! Reading room recordings: any WAV hound reads, optionally resampled (band-limited, by
//! rubato's synchronous FFT resampler).

use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Lowest sample rate accepted, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate accepted, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

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
    /// The file has no channels, or a sample rate outside the supported range.
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

/// Reads a WAV file (8–32-bit integer or 32-bit float, any channel count) as interleaved f32
/// in -1..1, resampled to `rate` if given and different; returns the samples and the channel
/// count.
pub fn read_wav(path: &Path, rate: Option<u32>) -> Result<(Vec<f32>, u16), AnalysisError> {
    let wav_error = |reason| AnalysisError::Wav {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(r) = rate {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&r) {
            return Err(AnalysisError::Rate(r));
        }
    }
    let reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let unsupported = |reason: String| AnalysisError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    if spec.channels == 0 {
        return Err(unsupported("the file has no channels".into()));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(unsupported(format!(
            "sample rate {} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz",
            spec.sample_rate
        )));
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_error)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| (f64::from(s) * scale) as f32))
                .collect::<Result<_, _>>()
                .map_err(wav_error)?
        }
    };
    let channels = spec.channels;
    let target = rate.unwrap_or(spec.sample_rate);
    if target == spec.sample_rate || samples.is_empty() {
        return Ok((samples, channels));
    }
    // the resampler's inverse FFT refuses NaN and infinity (rubato then panics), and float
    // samples near f32::MAX overflow into them: silence what is not a number and clip the
    // rest far above full scale (±65536, 96 dB over), before resampling
    let mut samples = samples;
    for s in samples.iter_mut() {
        *s = if s.is_finite() {
            s.clamp(-65_536.0, 65_536.0)
        } else {
            0.0
        };
    }
    let resample_error = |e: &dyn std::fmt::Display| AnalysisError::Resample {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let frames = samples.len() / usize::from(channels);
    let input = InterleavedSlice::new(
        &samples[..frames * usize::from(channels)],
        channels.into(),
        frames,
    )
    .map_err(|e| resample_error(&e))?;
    let mut resampler = Fft::<f32>::new(
        spec.sample_rate as usize,
        target as usize,
        1024,
        channels.into(),
        FixedSync::Input,
    )
    .map_err(|e| resample_error(&e))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| resample_error(&e))?;
    Ok((output.take_data(), channels))
}
