//! The passes of an offline render and where their frames go: the program's store (memory or
//! an anonymous temporary file) and the output's sink (memory or a WAV file), so that the
//! in-memory API and `tapestry render` share every step.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use crate::control::{Controller, Message, Timing};
use crate::engine::master::{KWeightedMeter, Limiter};
use crate::engine::Engine;
use crate::performance::Performance;
use crate::plot::PlotBuilder;
use crate::timeline::TimelineTap;

use super::wav::{Container, WavFormat, WavWriter};

/// Frames moved per read or write between the passes.
pub(super) const CHUNK_FRAMES: usize = 4096;

/// Where the program waits between the passes.
pub(super) trait ProgramStore {
    /// Appends interleaved stereo frames.
    fn push(&mut self, samples: &[f32]) -> io::Result<()>;
    /// Goes back to the first frame for reading.
    fn rewind(&mut self) -> io::Result<()>;
    /// Reads the next frames into `out` (interleaved); returns the frames read, 0 at the end.
    fn read(&mut self, out: &mut [f32]) -> io::Result<usize>;
}

/// The program in memory (short renders, tests).
#[derive(Default)]
pub(super) struct MemoryStore {
    samples: Vec<f32>,
    read_at: usize,
}

impl ProgramStore for MemoryStore {
    fn push(&mut self, samples: &[f32]) -> io::Result<()> {
        self.samples.extend_from_slice(samples);
        Ok(())
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.read_at = 0;
        Ok(())
    }

    fn read(&mut self, out: &mut [f32]) -> io::Result<usize> {
        let n = (out.len() / 2).min((self.samples.len() - self.read_at) / 2);
        out[..2 * n].copy_from_slice(&self.samples[self.read_at..self.read_at + 2 * n]);
        self.read_at += 2 * n;
        Ok(n)
    }
}

/// The program as little-endian f32 frames in a temporary file: constant memory whatever the
/// length. The file is anonymous (`tempfile::tempfile_in`: unlinked from the start), so the
/// system removes it when it is closed, on success, on error, and if the process dies.
pub(super) struct FileStore {
    file: File,
    bytes: Vec<u8>,
    frames_written: u64,
    frames_read: u64,
}

impl FileStore {
    pub(super) fn new(file: File) -> Self {
        Self {
            file,
            bytes: Vec::with_capacity(CHUNK_FRAMES * 8),
            frames_written: 0,
            frames_read: 0,
        }
    }
}

impl ProgramStore for FileStore {
    fn push(&mut self, samples: &[f32]) -> io::Result<()> {
        let at = self.bytes.len();
        self.bytes.resize(at + 4 * samples.len(), 0);
        for (b, s) in self.bytes[at..].chunks_exact_mut(4).zip(samples) {
            b.copy_from_slice(&s.to_le_bytes());
        }
        self.frames_written += (samples.len() / 2) as u64;
        if self.bytes.len() >= CHUNK_FRAMES * 8 {
            self.file.write_all(&self.bytes)?;
            self.bytes.clear();
        }
        Ok(())
    }

    fn rewind(&mut self) -> io::Result<()> {
        if !self.bytes.is_empty() {
            self.file.write_all(&self.bytes)?;
            self.bytes.clear();
        }
        self.file.seek(SeekFrom::Start(0))?;
        self.frames_read = 0;
        Ok(())
    }

    fn read(&mut self, out: &mut [f32]) -> io::Result<usize> {
        let left = self.frames_written - self.frames_read;
        let n = (out.len() as u64 / 2).min(left) as usize;
        self.bytes.resize(n * 8, 0);
        self.file.read_exact(&mut self.bytes)?;
        for (s, b) in out.iter_mut().zip(self.bytes.chunks_exact(4)) {
            *s = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        self.bytes.clear();
        self.frames_read += n as u64;
        Ok(n)
    }
}

/// Where finished frames go.
pub(super) trait Sink {
    /// Drops everything written so far (a finishing pass starts over).
    fn restart(&mut self) -> io::Result<()>;
    /// Appends interleaved stereo frames.
    fn write(&mut self, samples: &[f32]) -> io::Result<()>;
}

/// Finished samples in memory.
#[derive(Default)]
pub(super) struct VecSink {
    pub(super) samples: Vec<f32>,
}

impl Sink for VecSink {
    fn restart(&mut self) -> io::Result<()> {
        self.samples.clear();
        Ok(())
    }

    fn write(&mut self, samples: &[f32]) -> io::Result<()> {
        self.samples.extend_from_slice(samples);
        Ok(())
    }
}

/// Finished samples into a WAV (or RF64) file, dithered as its format says.
pub(super) struct WavSink {
    writer: Option<WavWriter<BufWriter<File>>>,
    file: Option<File>,
    sample_rate: u32,
    format: WavFormat,
    dither_seed: u64,
}

impl WavSink {
    pub(super) fn new(file: File, sample_rate: u32, format: WavFormat, dither_seed: u64) -> Self {
        Self {
            writer: None,
            file: Some(file),
            sample_rate,
            format,
            dither_seed,
        }
    }

    /// Fills in the header and flushes; returns the container the data needed.
    pub(super) fn finish(mut self) -> io::Result<Container> {
        self.restart_if_new()?;
        let writer = self.writer.take().expect("started above");
        let (out, container) = writer.finish()?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(container)
    }

    fn restart_if_new(&mut self) -> io::Result<()> {
        if self.writer.is_none() {
            self.restart()?;
        }
        Ok(())
    }
}

impl Sink for WavSink {
    fn restart(&mut self) -> io::Result<()> {
        let mut file = match (self.writer.take(), self.file.take()) {
            (Some(writer), _) => writer
                .into_inner()
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?,
            (None, Some(file)) => file,
            (None, None) => return Err(io::Error::other("the output file is gone")),
        };
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        self.writer = Some(WavWriter::new(
            out,
            self.sample_rate,
            self.format,
            self.dither_seed,
        )?);
        Ok(())
    }

    fn write(&mut self, samples: &[f32]) -> io::Result<()> {
        self.restart_if_new()?;
        match &mut self.writer {
            Some(writer) => writer.write_samples(samples),
            None => Err(io::Error::other("the output file is gone")),
        }
    }
}

/// Plays `performance` through `engine` for `total` frames in blocks of `block` frames, handing
/// each rendered block (interleaved) and the frames done so far to `each`. A timeline `tap`
/// sees every `process` call, and blocks end on its mood points (the audio is the same for any
/// block size).
pub(super) fn drive(
    engine: &mut Engine,
    controller: &Controller,
    performance: &Performance,
    (total, block): (u64, usize),
    mut tap: Option<&mut TimelineTap>,
    mut each: impl FnMut(&[f32], u64) -> io::Result<()>,
) -> io::Result<()> {
    let commands = &performance.commands;
    let mut buffer = vec![0.0f32; 2 * block];
    let mut next = 0;
    let mut done = 0u64;
    while done < total {
        let mut frames = (total - done).min(block as u64) as usize;
        if let Some(tap) = &tap {
            frames = tap.frames_before_next_mood(done, frames);
        }
        let end = done + frames as u64;
        // hand over everything due before this block ends; the engine lands each on its sample
        while next < commands.len() && commands[next].sample < end {
            let c = commands[next];
            let message = Message {
                at: Timing::At(c.sample),
                command: c.command,
            };
            if controller.send(message).is_err() {
                // queue full: let the engine drain it with an empty block of zero length
                engine.process(&mut []);
                if let Some(tap) = tap.as_deref_mut() {
                    tap.after_process();
                }
                continue;
            }
            next += 1;
        }
        let chunk = &mut buffer[..2 * frames];
        engine.process(chunk);
        if let Some(tap) = tap.as_deref_mut() {
            tap.after_process();
        }
        done = end;
        each(chunk, done)?;
    }
    Ok(())
}

/// A sink that also draws the output's picture; a restart starts the picture over.
pub(super) struct PlotSink<'a> {
    pub(super) inner: &'a mut dyn Sink,
    pub(super) plot: Option<PlotBuilder>,
}

impl Sink for PlotSink<'_> {
    fn restart(&mut self) -> io::Result<()> {
        if let Some(plot) = &mut self.plot {
            plot.restart();
        }
        self.inner.restart()
    }

    fn write(&mut self, samples: &[f32]) -> io::Result<()> {
        if let Some(plot) = &mut self.plot {
            plot.push_audio(samples);
        }
        self.inner.write(samples)
    }
}

/// What a finishing pass measured on its output.
#[derive(Clone, Copy, Debug)]
pub(super) struct Finished {
    /// Integrated loudness (BS.1770), LUFS.
    pub(super) integrated_lufs: f64,
    /// Largest sample magnitude.
    pub(super) sample_peak: f32,
}

/// Output meters of a finishing or live pass. (The true peak is the limiter's to keep; tests
/// read it with an independent meter.)
pub(super) struct OutputMeters {
    loudness: KWeightedMeter,
    sample_peak: f32,
}

impl OutputMeters {
    pub(super) fn new(sample_rate: f32) -> Self {
        Self {
            loudness: KWeightedMeter::new(sample_rate),
            sample_peak: 0.0,
        }
    }

    pub(super) fn push(&mut self, samples: &[f32]) {
        self.loudness.push_block(samples);
        self.sample_peak = samples.iter().fold(self.sample_peak, |m, s| m.max(s.abs()));
    }

    pub(super) fn finish(self) -> Finished {
        Finished {
            integrated_lufs: self.loudness.integrated_lufs_f64(),
            sample_peak: self.sample_peak,
        }
    }
}

/// Reads the program back, applies `gain`, limits (true peak) with the limiter's latency taken
/// out, and writes the `total` frames to `sink`; `progress` gets the frames done.
pub(super) fn finish_pass(
    store: &mut dyn ProgramStore,
    total: u64,
    gain: f32,
    mut limiter: Limiter,
    sample_rate: f32,
    sink: &mut dyn Sink,
    mut progress: impl FnMut(u64),
) -> io::Result<Finished> {
    store.rewind()?;
    sink.restart()?;
    let mut to_skip = limiter.latency_frames();
    let mut meters = OutputMeters::new(sample_rate);
    let mut buffer = vec![0.0f32; 2 * CHUNK_FRAMES];
    let mut emitted = 0u64;
    while emitted < total {
        let read = store.read(&mut buffer)?;
        let frames = if read == 0 {
            // the program is over: the zeros that push its last frames out of the look-ahead
            buffer.fill(0.0);
            CHUNK_FRAMES
        } else {
            read
        };
        let chunk = &mut buffer[..2 * frames];
        for s in chunk.iter_mut() {
            *s *= gain;
        }
        limiter.process_block(chunk);
        let skip = to_skip.min(frames);
        to_skip -= skip;
        let keep = (frames - skip).min((total - emitted) as usize);
        let output = &chunk[2 * skip..2 * (skip + keep)];
        emitted += keep as u64;
        meters.push(output);
        sink.write(output)?;
        progress(emitted);
    }
    Ok(meters.finish())
}
