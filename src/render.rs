//! Offline rendering: a patch plus a performance to interleaved audio or a WAV file, through
//! the same `Engine::process` the live stream uses.

use std::path::Path;

use crate::control::{Message, Timing};
use crate::engine::Engine;
use crate::patch::Patch;
use crate::performance::Performance;

/// WAV sample format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavFormat {
    /// 24-bit integer PCM (TPDF-dithered).
    Pcm24,
    /// 32-bit IEEE float.
    Float32,
}

/// Render options.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    /// Output sample rate.
    pub sample_rate: u32,
    /// Seed override (else the performance's, else the patch's).
    pub seed: Option<u64>,
    /// Frames to render (else the performance's duration).
    pub duration_frames: Option<u64>,
    /// Frames per `process` call.
    pub block_frames: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            seed: None,
            duration_frames: None,
            block_frames: 512,
        }
    }
}

/// Renders a performance into interleaved stereo samples; `progress` is called with
/// (frames done, frames total) after every block.
pub fn render(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    mut progress: impl FnMut(u64, u64),
) -> Vec<f32> {
    let seed = options.seed.or(performance.seed);
    let (mut engine, controller) =
        Engine::new(patch.config(options.sample_rate, seed), patch.names());
    let total = options
        .duration_frames
        .unwrap_or(performance.duration_frames);
    let block = options
        .block_frames
        .clamp(1, crate::engine::MAX_BLOCK_FRAMES);
    let mut out = vec![0.0f32; total as usize * 2];
    let mut next = 0;
    let mut done = 0u64;
    for chunk in out.chunks_mut(block * 2) {
        let end = done + (chunk.len() / 2) as u64;
        // hand over everything due before this block ends; the engine lands each on its sample
        while next < performance.commands.len() && performance.commands[next].sample < end {
            let c = performance.commands[next];
            let message = Message {
                at: Timing::At(c.sample),
                command: c.command,
            };
            if controller.send(message).is_err() {
                // queue full: let the engine drain it with an empty block of zero length
                engine.process(&mut []);
                continue;
            }
            next += 1;
        }
        engine.process(chunk);
        done = end;
        progress(done, total);
    }
    out
}

/// Writes interleaved stereo samples to a WAV file.
pub fn write_wav(
    path: &Path,
    samples: &[f32],
    sample_rate: u32,
    format: WavFormat,
    dither_seed: u64,
) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate,
        bits_per_sample: if format == WavFormat::Pcm24 { 24 } else { 32 },
        sample_format: if format == WavFormat::Pcm24 {
            hound::SampleFormat::Int
        } else {
            hound::SampleFormat::Float
        },
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    match format {
        WavFormat::Float32 => {
            for &s in samples {
                w.write_sample(s)?;
            }
        }
        WavFormat::Pcm24 => {
            let mut rng = crate::rng::Rng::new(dither_seed);
            let scale = 8_388_607.0f64;
            for &s in samples {
                // TPDF dither of ±1 LSB
                let d = rng.next_f32() as f64 - rng.next_f32() as f64;
                let v = (s as f64 * scale + d)
                    .round()
                    .clamp(-8_388_608.0, 8_388_607.0) as i32;
                w.write_sample(v)?;
            }
        }
    }
    w.finalize()
}
