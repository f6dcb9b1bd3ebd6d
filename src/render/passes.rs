//! The passes of an offline render and where their frames go: the program's store (memory or
//! an anonymous temporary file) and the output's sink (memory or a WAV file), so that the
//! in-memory API and `tapestry render` share every step.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use crate::control::{Controller, Message, Timing};
use crate::engine::master::{finite_or_zero, KWeightedMeter, Limiter, MasterBus, MasterSpan};
use crate::engine::master::{TruePeakDetector, PEAK_WINDOW_FRAMES};
use crate::engine::Engine;
use crate::performance::Performance;
use crate::plot::PlotBuilder;
use crate::timeline::TimelineTap;

use super::predict::ProgramHops;
use super::wav::{Container, WavFormat, WavWriter};

/// Frames moved per read or write between the passes.
pub(super) const CHUNK_FRAMES: usize = 4096;

/// Where the program waits between the passes: its frames, and the main-stage true peaks the
/// finishing limiter would read on them ([`Limiter::process_block_with_peaks`]).
pub(super) trait ProgramStore: Send {
    /// Appends interleaved stereo frames and their peaks (one per frame).
    fn push(&mut self, samples: &[f32], peaks: &[f32]) -> io::Result<()>;
    /// Goes back to the first frame for reading.
    fn rewind(&mut self) -> io::Result<()> {
        self.seek(0)
    }
    /// The next read starts at this frame.
    fn seek(&mut self, frame: u64) -> io::Result<()>;
    /// Reads the next frames into `samples` (interleaved) and their peaks into `peaks`;
    /// returns the frames read, 0 at the end.
    fn read(&mut self, samples: &mut [f32], peaks: &mut [f32]) -> io::Result<usize>;
}

/// The program in memory (short renders, tests).
#[derive(Default)]
pub(super) struct MemoryStore {
    samples: Vec<f32>,
    peaks: Vec<f32>,
    read_at: usize,
}

impl ProgramStore for MemoryStore {
    fn push(&mut self, samples: &[f32], peaks: &[f32]) -> io::Result<()> {
        self.samples.extend_from_slice(samples);
        self.peaks.extend_from_slice(peaks);
        Ok(())
    }

    fn seek(&mut self, frame: u64) -> io::Result<()> {
        self.read_at = (frame as usize).min(self.peaks.len());
        Ok(())
    }

    fn read(&mut self, samples: &mut [f32], peaks: &mut [f32]) -> io::Result<usize> {
        let at = self.read_at;
        let n = (samples.len() / 2)
            .min(peaks.len())
            .min(self.peaks.len() - at);
        samples[..2 * n].copy_from_slice(&self.samples[2 * at..2 * (at + n)]);
        peaks[..n].copy_from_slice(&self.peaks[at..at + n]);
        self.read_at += n;
        Ok(n)
    }
}

/// Bytes a frame takes in a [`FileStore`]: two samples and a peak, little-endian f32.
const FILE_FRAME_BYTES: usize = 12;

/// The program as little-endian f32 (left, right, peak) triples in a temporary file: constant
/// memory whatever the length. The file is anonymous (`tempfile::tempfile_in`: unlinked from
/// the start), so the system removes it when it is closed, on success, on error, and if the
/// process dies.
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
            bytes: Vec::with_capacity(CHUNK_FRAMES * FILE_FRAME_BYTES),
            frames_written: 0,
            frames_read: 0,
        }
    }
}

impl ProgramStore for FileStore {
    fn push(&mut self, samples: &[f32], peaks: &[f32]) -> io::Result<()> {
        let at = self.bytes.len();
        self.bytes.resize(at + FILE_FRAME_BYTES * peaks.len(), 0);
        let frames = samples.chunks_exact(2).zip(peaks);
        for (b, (frame, peak)) in self.bytes[at..]
            .chunks_exact_mut(FILE_FRAME_BYTES)
            .zip(frames)
        {
            b[..4].copy_from_slice(&frame[0].to_le_bytes());
            b[4..8].copy_from_slice(&frame[1].to_le_bytes());
            b[8..].copy_from_slice(&peak.to_le_bytes());
        }
        self.frames_written += peaks.len() as u64;
        if self.bytes.len() >= CHUNK_FRAMES * FILE_FRAME_BYTES {
            self.file.write_all(&self.bytes)?;
            self.bytes.clear();
        }
        Ok(())
    }

    fn seek(&mut self, frame: u64) -> io::Result<()> {
        if !self.bytes.is_empty() {
            self.file.write_all(&self.bytes)?;
            self.bytes.clear();
        }
        let frame = frame.min(self.frames_written);
        self.file
            .seek(SeekFrom::Start(frame * FILE_FRAME_BYTES as u64))?;
        self.frames_read = frame;
        Ok(())
    }

    fn read(&mut self, samples: &mut [f32], peaks: &mut [f32]) -> io::Result<usize> {
        let left = self.frames_written - self.frames_read;
        let n = ((samples.len() / 2).min(peaks.len()) as u64).min(left) as usize;
        self.bytes.resize(n * FILE_FRAME_BYTES, 0);
        self.file.read_exact(&mut self.bytes)?;
        let value = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let frames = samples.chunks_exact_mut(2).zip(peaks.iter_mut());
        for (b, (frame, peak)) in self.bytes.chunks_exact(FILE_FRAME_BYTES).zip(frames) {
            (frame[0], frame[1], *peak) = (value(&b[..4]), value(&b[4..8]), value(&b[8..]));
        }
        self.bytes.clear();
        self.frames_read += n as u64;
        Ok(n)
    }
}

/// Where finished frames go.
pub(super) trait Sink: Send {
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
    mut each: impl FnMut(&[f32], &[MasterSpan], u64) -> io::Result<()>,
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
        each(chunk, engine.master_spans(), done)?;
    }
    Ok(())
}

/// Blocks in flight between the two threads of a pass.
const PIPELINE_BLOCKS: usize = 4;

/// One block of a deferring engine's mix and the spans the master bus needs for it.
#[derive(Default)]
struct ProgramBlock {
    samples: Vec<f32>,
    spans: Vec<MasterSpan>,
}

/// Reads the finishing limiter's main-stage peaks off the program as it is stored.
struct PeakReader {
    detector: TruePeakDetector,
    finite: Vec<f32>,
    peaks: Vec<f32>,
}

impl PeakReader {
    fn new() -> Self {
        Self {
            detector: TruePeakDetector::new(),
            finite: Vec::new(),
            peaks: Vec::new(),
        }
    }

    /// The peaks of `samples` (read on what the limiter will see: finite samples).
    fn read(&mut self, samples: &[f32]) -> &[f32] {
        self.finite.clear();
        self.finite
            .extend(samples.iter().map(|&s| finite_or_zero(s)));
        self.peaks.resize(samples.len() / 2, 0.0);
        self.detector.peaks(&self.finite, &mut self.peaks);
        &self.peaks
    }

    /// Meters and stores `samples` with their peaks.
    fn store(
        &mut self,
        (meter, samples): (&mut KWeightedMeter, &[f32]),
        store: &mut dyn ProgramStore,
        hops: &mut ProgramHops,
    ) -> io::Result<()> {
        let peaks = self.read(samples);
        hops.push(meter, samples, Some(peaks));
        store.push(samples, peaks)
    }

    /// Stores the silence after the program for as long as the detector still reads some of
    /// it (its window): past that, silence reads 0, as the finishing pass assumes.
    fn finish(mut self, store: &mut dyn ProgramStore) -> io::Result<()> {
        let silence = [0.0; 2 * PEAK_WINDOW_FRAMES];
        let peaks = self.read(&silence);
        store.push(&silence, peaks)
    }
}

/// The program pass on two threads: this one drives the engine's voices (its master bus
/// deferred, [`Engine::defer_master`]), another runs `master` over each block, measures it
/// with `meter` and pushes it to `store`. The arithmetic is the engine's own, so the program
/// is the same bits as an engine with its bus inside would give; only the work is shared.
/// `progress` gets the frames the engine has done.
pub(super) fn program_pass(
    (engine, controller): (&mut Engine, &Controller),
    performance: &Performance,
    frames: (u64, usize),
    tap: Option<&mut TimelineTap>,
    (mut master, meter): (MasterBus, &mut KWeightedMeter),
    mut store: Option<(&mut dyn ProgramStore, &mut ProgramHops)>,
    mut progress: impl FnMut(u64),
) -> io::Result<()> {
    engine.defer_master();
    let bus = move |blocks: Received<ProgramBlock>| {
        let mut peaks = PeakReader::new();
        blocks.each(|block| {
            master.process_spans(&mut block.samples, &block.spans);
            match &mut store {
                Some((store, hops)) => peaks.store((meter, &block.samples), *store, hops),
                None => {
                    meter.push_block(&block.samples);
                    Ok(())
                }
            }
        })?;
        match store {
            Some((store, _)) => peaks.finish(store),
            None => Ok(()),
        }
    };
    pipelined("tapestry-master", bus, |handoff| {
        drive(
            engine,
            controller,
            performance,
            frames,
            tap,
            |chunk, spans, done| {
                progress(done);
                handoff.send(|block: &mut ProgramBlock| {
                    block.samples.clear();
                    block.samples.extend_from_slice(chunk);
                    block.spans.clear();
                    block.spans.extend_from_slice(spans);
                })
            },
        )
    })
}

/// The producing end of a [`pipelined`] hand-off.
struct Handoff<T> {
    full: crossbeam_channel::Sender<T>,
    empty: crossbeam_channel::Receiver<T>,
}

impl<T: Default> Handoff<T> {
    /// Fills a block (a recycled one when there is one) and hands it over.
    fn send(&self, fill: impl FnOnce(&mut T)) -> io::Result<()> {
        let mut block = self.empty.try_recv().unwrap_or_default();
        fill(&mut block);
        // a closed channel means the other thread stopped on an error, which `pipelined`
        // returns
        self.full
            .send(block)
            .map_err(|_| io::Error::other("the consuming thread stopped"))
    }
}

/// The consuming end of a [`pipelined`] hand-off.
struct Received<T> {
    full: crossbeam_channel::Receiver<T>,
    empty: crossbeam_channel::Sender<T>,
}

impl<T> Received<T> {
    /// Takes every block until the producer is done (the first error stops it).
    fn each(self, mut take: impl FnMut(&mut T) -> io::Result<()>) -> io::Result<()> {
        for mut block in self.full {
            take(&mut block)?;
            let _ = self.empty.try_send(block);
        }
        Ok(())
    }
}

/// Runs `produce` on this thread and `consume` on a thread of its own named `name`, blocks
/// handed over through a bounded channel ([`PIPELINE_BLOCKS`] in flight, their buffers
/// recycled). The consumer's error comes first (a failed hand-off only says it stopped).
fn pipelined<T: Default + Send, R: Send>(
    name: &str,
    consume: impl FnOnce(Received<T>) -> io::Result<R> + Send,
    produce: impl FnOnce(&Handoff<T>) -> io::Result<()>,
) -> io::Result<R> {
    let (full_tx, full_rx) = crossbeam_channel::bounded(PIPELINE_BLOCKS);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded(PIPELINE_BLOCKS + 1);
    std::thread::scope(|scope| {
        let received = Received {
            full: full_rx,
            empty: empty_tx,
        };
        let consumer = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(scope, move || consume(received))?;
        let handoff = Handoff {
            full: full_tx,
            empty: empty_rx,
        };
        let produced = produce(&handoff);
        drop(handoff);
        let consumed = consumer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other(format!("the {name} thread panicked"))));
        let result = consumed?;
        produced.map(|()| result)
    })
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

/// The stored program read back from where the store stands, scaled by a gain and limited
/// (true peak, with the peaks stored beside it), the limiter's look-ahead taken out: frame for
/// frame aligned with the program. Past the stored program, silence pushes its last frames
/// out of the look-ahead (the detector reads it as 0: the store holds its tail).
pub(super) struct LimitedProgram<'a> {
    store: &'a mut dyn ProgramStore,
    gain: f32,
    limiter: Limiter,
    to_skip: usize,
    samples: Vec<f32>,
    peaks: Vec<f32>,
}

impl<'a> LimitedProgram<'a> {
    /// Reads `chunk_frames` at a time.
    pub(super) fn new(
        store: &'a mut dyn ProgramStore,
        gain: f32,
        limiter: Limiter,
        chunk_frames: usize,
    ) -> Self {
        Self {
            store,
            gain,
            to_skip: limiter.latency_frames(),
            limiter,
            samples: vec![0.0; 2 * chunk_frames],
            peaks: vec![0.0; chunk_frames],
        }
    }

    /// The next limited frames, at most `left` (interleaved; empty while the look-ahead
    /// fills).
    pub(super) fn next(&mut self, left: usize) -> io::Result<&[f32]> {
        let read = self.store.read(&mut self.samples, &mut self.peaks)?;
        let frames = if read == 0 {
            self.samples.fill(0.0);
            self.peaks.fill(0.0);
            self.peaks.len()
        } else {
            read
        };
        let chunk = &mut self.samples[..2 * frames];
        for s in chunk.iter_mut() {
            *s *= self.gain;
        }
        self.limiter
            .process_block_with_peaks(chunk, &self.peaks[..frames], self.gain);
        let skip = self.to_skip.min(frames);
        self.to_skip -= skip;
        let keep = (frames - skip).min(left);
        Ok(&chunk[2 * skip..2 * (skip + keep)])
    }
}

/// Reads the program back, applies `gain`, limits (true peak) with the limiter's latency taken
/// out, and writes the `total` frames to `sink`; `progress` gets the frames done. The output
/// is metered and written on a second thread while this one limits the next frames.
pub(super) fn finish_pass(
    store: &mut dyn ProgramStore,
    total: u64,
    (gain, limiter): (f32, Limiter),
    sample_rate: f32,
    sink: &mut dyn Sink,
    mut progress: impl FnMut(u64),
) -> io::Result<Finished> {
    store.rewind()?;
    sink.restart()?;
    let writer = move |blocks: Received<Vec<f32>>| {
        let mut meters = OutputMeters::new(sample_rate);
        blocks.each(|output| {
            meters.push(output);
            sink.write(output)
        })?;
        Ok(meters.finish())
    };
    pipelined("tapestry-output", writer, |handoff| {
        let mut program = LimitedProgram::new(store, gain, limiter, CHUNK_FRAMES);
        let mut emitted = 0u64;
        while emitted < total {
            let output = program.next((total - emitted) as usize)?;
            emitted += (output.len() / 2) as u64;
            handoff.send(|block: &mut Vec<f32>| {
                block.clear();
                block.extend_from_slice(output);
            })?;
            progress(emitted);
        }
        Ok(())
    })
}
