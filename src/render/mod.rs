//! Offline rendering: a patch plus a performance to interleaved audio or a WAV file, through
//! the same `Engine::process` the live stream uses.
//!
//! A performance renders in two passes, in memory that does not grow with its length:
//! 1. the engine renders the **program** (voices → DC blocker → reverb, neither leveled nor
//!    limited, [`MasterChain::Program`]) while a BS.1770 meter measures its integrated
//!    loudness; the voices run on this thread and the master bus, the meter and the limiter's
//!    true-peak detector on another ([`Engine::defer_master`]: the same arithmetic). The
//!    frames and their peaks wait in a temporary file beside the output (12 bytes a frame,
//!    anonymous: the system removes it when the render ends, however it ends);
//! 2. the program is read back and set on the patch's loudness target by **one gain** for the
//!    whole piece (so mood keeps every bit of its dynamics), then the true-peak [`Limiter`]
//!    follows (its look-ahead taken out, so the output is not delayed), then the output is
//!    dithered and written (on a third thread). The gain foresees what the limiter takes off:
//!    the regions its peaks say it reaches are limited and measured again before the pass
//!    (`predict`). Should the output still be more than 0.05 LU off, the gain is corrected and
//!    the pass runs again (at most three passes in all).
//!
//! A recorded live session (a performance with a `[session]` table) is re-rendered through
//! the live chain instead ([`MasterChain::Live`], its leveler starting where the session's
//! did), in one pass: sample for sample what was played.
//!
//! [`render`] returns the finished samples in memory through the very same passes (for short
//! renders and tests); [`render_to_wav`] streams to a WAV file, or RF64 past 4 GiB.

mod passes;
mod predict;
mod wav;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use crate::control::{Command, Controller};
use crate::engine::master::{KWeightedMeter, Limiter, MasterBus, MasterChain};
use crate::engine::Engine;
use crate::patch::Patch;
use crate::performance::{Performance, TimedCommand};
use crate::plot::PlotBuilder;
use crate::timeline::{Timeline, TimelineTap};
use passes::{drive, finish_pass, program_pass, FileStore, MemoryStore, OutputMeters};
use passes::{PlotSink, VecSink, WavSink};
use passes::{ProgramStore, Sink};
use predict::ProgramHops;
pub use wav::{Container, WavFormat, WavWriter};

/// Largest normalization gain either way, in dB (offline and the live start gain).
pub const MAX_GAIN_DB: f64 = 40.0;
/// A finishing pass runs again when its output is further than this from the target, in LU.
pub const FINISH_TOLERANCE_LU: f64 = 0.05;
/// Most finishing passes.
pub const MAX_FINISH_PASSES: u32 = 3;
/// Length of the calibration render without a performance, in seconds.
pub const CALIBRATION_SECS: f64 = 30.0;
/// Longest part of a performance a calibration renders, in seconds.
pub const CALIBRATION_MAX_SECS: f64 = 600.0;

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

/// What a render notes besides its audio.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Keep the timeline of what happened when ([`Timeline`]).
    pub timeline: bool,
    /// Draw the output's picture this many pixels wide (it needs the timeline, which is then
    /// kept too).
    pub plot_width: Option<u32>,
}

/// What a render noted, as its [`Watch`] asked.
#[derive(Default)]
pub struct Watched {
    /// What happened when.
    pub timeline: Option<Timeline>,
    /// The output's picture, fed with every output frame: draw it with the timeline
    /// ([`PlotBuilder::finish`]).
    pub plot: Option<PlotBuilder>,
}

/// The pass a render is in, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The engine renders the program (most of the time).
    Program,
    /// The program is leveled, limited and written.
    Finish,
    /// A recorded session renders through the live chain (the only pass).
    Live,
}

/// How a render set its loudness.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Leveling {
    /// Offline: the whole program measured, then one gain (0 dB when the patch turns leveling
    /// off).
    Whole {
        /// Integrated loudness of the program, LUFS (`-inf` for silence).
        program_lufs: f64,
        /// The gain applied, dB.
        gain_db: f64,
        /// Finishing passes run.
        passes: u32,
    },
    /// A recorded live session through the live chain.
    Live {
        /// The leveler's start gain, dB.
        start_gain_db: f32,
    },
}

/// What a render did, measured on its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderReport {
    /// Frames rendered.
    pub frames: u64,
    /// How the loudness was set.
    pub leveling: Leveling,
    /// Integrated loudness of the output (BS.1770), LUFS.
    pub integrated_lufs: f64,
    /// The limiter's true-peak ceiling, dBTP.
    pub ceiling_dbtp: f32,
    /// Sample peak of the output, dBFS.
    pub sample_peak_dbfs: f64,
    /// The file's container ([`render_to_wav`] only).
    pub container: Option<Container>,
}

/// Where [`render_to_wav`] writes.
#[derive(Clone, Copy, Debug)]
pub struct WavTarget<'a> {
    /// The WAV file (replaced only when the render succeeds).
    pub path: &'a Path,
    /// Sample format.
    pub format: WavFormat,
    /// Seed of the 24-bit dither.
    pub dither_seed: u64,
}

/// A render that could not write its files.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct RenderError {
    /// What was being done.
    pub what: String,
    /// Why it failed.
    #[source]
    pub source: io::Error,
}

fn fail(what: String) -> impl FnOnce(io::Error) -> RenderError {
    move |source| RenderError { what, source }
}

/// Renders a performance into interleaved stereo samples; `progress` is called with
/// (frames done, frames total) as the engine renders.
pub fn render(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    mut progress: impl FnMut(u64, u64),
) -> Vec<f32> {
    let (samples, _) = render_in_memory(patch, performance, options, |stage, done, total| {
        if stage != Stage::Finish {
            progress(done, total);
        }
    });
    samples
}

/// [`render`] with the report and every pass's progress.
pub fn render_in_memory(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    progress: impl FnMut(Stage, u64, u64),
) -> (Vec<f32>, RenderReport) {
    let (samples, report, _) =
        render_watched(patch, performance, options, Watch::default(), progress);
    (samples, report)
}

/// [`render_in_memory`] that also notes what `watch` asks for.
pub fn render_watched(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    watch: Watch,
    mut progress: impl FnMut(Stage, u64, u64),
) -> (Vec<f32>, RenderReport, Watched) {
    let mut sink = VecSink::default();
    let (report, watched) = run(
        patch,
        performance,
        options,
        watch,
        &mut MemoryStore::default(),
        &mut sink,
        &mut progress,
    )
    .expect("memory stores and sinks do not fail");
    (sink.samples, report, watched)
}

/// Renders a performance into a WAV file (RF64 past 4 GiB) in constant memory. The program
/// waits in an anonymous temporary file in the output's folder; the output is written beside
/// its final name and renamed into place only when complete.
pub fn render_to_wav(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    target: &WavTarget,
    progress: impl FnMut(Stage, u64, u64),
) -> Result<RenderReport, RenderError> {
    render_to_wav_watched(
        patch,
        performance,
        options,
        target,
        Watch::default(),
        progress,
    )
    .map(|(report, _)| report)
}

/// [`render_to_wav`] that also notes what `watch` asks for.
pub fn render_to_wav_watched(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    target: &WavTarget,
    watch: Watch,
    mut progress: impl FnMut(Stage, u64, u64),
) -> Result<(RenderReport, Watched), RenderError> {
    let dir = match target.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let shown = target.path.display();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tapestry-").suffix(".wav.part");
    // an output file like any other (the creation mask applies), not a private temporary
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let output = builder.tempfile_in(dir).map_err(fail(format!(
        "cannot create the output in {}",
        dir.display()
    )))?;
    let file = output
        .reopen()
        .map_err(fail(format!("cannot open the output in {}", dir.display())))?;
    let mut sink = WavSink::new(file, options.sample_rate, target.format, target.dither_seed);
    let mut store: Box<dyn ProgramStore> = if performance.live_start_gain_db.is_some() {
        Box::new(MemoryStore::default()) // a live re-render has no second pass
    } else {
        let program = tempfile::tempfile_in(dir).map_err(fail(format!(
            "cannot create the program's temporary file in {}",
            dir.display()
        )))?;
        Box::new(FileStore::new(program))
    };
    let what = format!("rendering {shown} (the program waits in a temporary file beside it)");
    let (mut report, watched) = run(
        patch,
        performance,
        options,
        watch,
        store.as_mut(),
        &mut sink,
        &mut progress,
    )
    .map_err(fail(what))?;
    report.container = Some(sink.finish().map_err(fail(format!("writing {shown}")))?);
    output
        .persist(target.path)
        .map_err(|e| fail(format!("writing {shown}"))(e.error))?;
    Ok((report, watched))
}

/// Writes interleaved stereo samples to a WAV file (RF64 past 4 GiB).
pub fn write_wav(
    path: &Path,
    samples: &[f32],
    sample_rate: u32,
    format: WavFormat,
    dither_seed: u64,
) -> io::Result<Container> {
    let out = BufWriter::new(File::create(path)?);
    let mut writer = WavWriter::new(out, sample_rate, format, dither_seed)?;
    writer.write_samples(samples)?;
    let (out, container) = writer.finish()?;
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(container)
}

/// The gain that puts a program of `program_lufs` on `target_lufs`, within ±[`MAX_GAIN_DB`];
/// 0 for silence.
pub fn normalization_gain_db(program_lufs: f64, target_lufs: f64) -> f64 {
    if program_lufs.is_finite() {
        (target_lufs - program_lufs).clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
    } else {
        0.0
    }
}

/// The live leveler's start gain for a show of `patch` (what `tapestry play` does, and what an
/// embedding host can do before it builds its engine with [`MasterChain::Live`]): renders the
/// program of `performance` (up to [`CALIBRATION_MAX_SECS`]) or, without one or when it is
/// silent, [`CALIBRATION_SECS`] of every archetype at the patch's default mood, and returns the
/// gain that puts it on the loudness target. 0 when the patch turns leveling off.
pub fn calibrate_live_gain_db(
    patch: &Patch,
    performance: Option<&Performance>,
    sample_rate: u32,
    seed: Option<u64>,
) -> f32 {
    let master = patch.config(sample_rate, seed).master;
    if !master.leveler {
        return 0.0;
    }
    let cap = (CALIBRATION_MAX_SECS * f64::from(sample_rate)) as u64;
    let measured = performance
        .filter(|p| !p.commands.is_empty())
        .map(|p| program_loudness(patch, p, p.duration_frames.min(cap), sample_rate, seed))
        .filter(|lufs| lufs.is_finite());
    let lufs = measured.unwrap_or_else(|| {
        let room = calibration_room(patch, sample_rate);
        program_loudness(patch, &room, room.duration_frames, sample_rate, seed)
    });
    normalization_gain_db(lufs, f64::from(master.loudness_target_lufs)) as f32
}

/// Every archetype joins at the start, at the default mood.
fn calibration_room(patch: &Patch, sample_rate: u32) -> Performance {
    let commands: Vec<TimedCommand> = (0..patch.archetypes.len())
        .map(|a| TimedCommand {
            sample: 0,
            command: Command::Join {
                participant: a as u32 + 1,
                archetype: Some(a as u16),
            },
        })
        .collect();
    Performance {
        peak_participants: commands.len(),
        commands,
        duration_frames: (CALIBRATION_SECS * f64::from(sample_rate)) as u64,
        ..Performance::default()
    }
}

/// Integrated loudness of the program of the first `frames` of `performance`.
fn program_loudness(
    patch: &Patch,
    performance: &Performance,
    frames: u64,
    sample_rate: u32,
    seed: Option<u64>,
) -> f64 {
    let mut cfg = patch.config(sample_rate, seed.or(performance.seed));
    cfg.master.chain = MasterChain::Program;
    let mut meter = KWeightedMeter::new(cfg.sample_rate);
    let bus = MasterBus::new(cfg.sample_rate, &cfg.master);
    let (mut engine, controller) = Engine::new(cfg, patch.names());
    let block = RenderOptions::default().block_frames;
    let measured = program_pass(
        (&mut engine, &controller),
        performance,
        (frames, block),
        None,
        (bus, &mut meter),
        None,
        |_| {},
    );
    match measured {
        Ok(()) => meter.integrated_lufs_f64(),
        Err(_) => f64::NEG_INFINITY,
    }
}

fn run(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    watch: Watch,
    store: &mut dyn ProgramStore,
    sink: &mut dyn Sink,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> io::Result<(RenderReport, Watched)> {
    let (total, _) = total_and_block(performance, options);
    let plot = watch.plot_width.map(|width| {
        let target = patch
            .config(options.sample_rate, None)
            .master
            .loudness_target_lufs;
        PlotBuilder::new(total, options.sample_rate, width).with_loudness_target(target)
    });
    let mut sink = PlotSink { inner: sink, plot };
    let timeline = watch.timeline || watch.plot_width.is_some();
    let (report, timeline) = match performance.live_start_gain_db {
        Some(start_gain_db) => render_live(
            patch,
            performance,
            options,
            (start_gain_db, timeline),
            &mut sink,
            progress,
        ),
        None => render_offline(
            patch,
            performance,
            options,
            timeline,
            store,
            &mut sink,
            progress,
        ),
    }?;
    Ok((
        report,
        Watched {
            timeline,
            plot: sink.plot,
        },
    ))
}

/// A timeline tap on `engine` when one is wanted.
fn tap_if(wanted: bool, patch: &Patch, engine: &mut Engine, c: &Controller) -> Option<TimelineTap> {
    wanted.then(|| TimelineTap::attach(&patch.name, engine, c))
}

fn total_and_block(performance: &Performance, options: &RenderOptions) -> (u64, usize) {
    let total = options
        .duration_frames
        .unwrap_or(performance.duration_frames);
    let block = options
        .block_frames
        .clamp(1, crate::engine::MAX_BLOCK_FRAMES);
    (total, block)
}

/// The two passes: the program, then one gain, the limiter and the output.
fn render_offline(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    timeline: bool,
    store: &mut dyn ProgramStore,
    sink: &mut dyn Sink,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> io::Result<(RenderReport, Option<Timeline>)> {
    let (total, block) = total_and_block(performance, options);
    let mut cfg = patch.config(options.sample_rate, options.seed.or(performance.seed));
    cfg.master.chain = MasterChain::Program;
    let master = cfg.master.clone();
    let sample_rate = cfg.sample_rate;
    let mut meter = KWeightedMeter::new(sample_rate);
    let mut hops = ProgramHops::new(meter.hop_frames());
    let bus = MasterBus::new(sample_rate, &cfg.master);
    let (mut engine, controller) = Engine::new(cfg, patch.names());
    let mut tap = tap_if(timeline, patch, &mut engine, &controller);
    program_pass(
        (&mut engine, &controller),
        performance,
        (total, block),
        tap.as_mut(),
        (bus, &mut meter),
        Some((&mut *store, &mut hops)),
        |done| progress(Stage::Program, done, total),
    )?;
    let timeline = tap.map(TimelineTap::finish);
    drop(engine);
    let program_lufs = meter.integrated_lufs_f64();
    let target = f64::from(master.loudness_target_lufs);
    let mut gain_db = if master.leveler {
        let first = normalization_gain_db(program_lufs, target);
        let limits = (sample_rate, master.ceiling_dbtp);
        gain_for_target(store, &hops, (first, target), limits)?
    } else {
        0.0
    };
    let mut passes = 0;
    loop {
        passes += 1;
        let gain = 10f64.powf(gain_db / 20.0) as f32;
        let limiter = Limiter::new(sample_rate, master.ceiling_dbtp);
        let finished = finish_pass(store, total, (gain, limiter), sample_rate, sink, |done| {
            progress(Stage::Finish, done, total)
        })?;
        let error = target - finished.integrated_lufs;
        let settled = !master.leveler || !error.is_finite() || error.abs() <= FINISH_TOLERANCE_LU;
        if settled || passes == MAX_FINISH_PASSES {
            let report = RenderReport {
                frames: total,
                leveling: Leveling::Whole {
                    program_lufs,
                    gain_db,
                    passes,
                },
                integrated_lufs: finished.integrated_lufs,
                ceiling_dbtp: master.ceiling_dbtp,
                sample_peak_dbfs: to_db(finished.sample_peak),
                container: None,
            };
            return Ok((report, timeline));
        }
        gain_db = (gain_db + error).clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
    }
}

/// Predictions made before the finishing pass, at most.
const MAX_PREDICTIONS: u32 = 8;
/// The prediction is close enough when within this of the target, in LU.
const PREDICTION_TOLERANCE_LU: f64 = 0.005;
/// Smallest loudness change per dB of gain assumed (a limiter working hard gives back only
/// part of each dB; the secant never assumes less than this).
const MIN_LU_PER_DB: f64 = 0.05;

/// The whole-piece gain (dB) whose finished output lands on `target`, from the program's
/// `first` guess corrected by what the limiter is predicted to take off (secant steps: under
/// heavy limiting a dB of gain buys less than a loudness unit).
fn gain_for_target(
    store: &mut dyn ProgramStore,
    hops: &ProgramHops,
    (first, target): (f64, f64),
    limits: (f32, f32),
) -> io::Result<f64> {
    let mut gain_db = first;
    let mut previous: Option<(f64, f64)> = None;
    for _ in 0..MAX_PREDICTIONS {
        let gain = 10f64.powf(gain_db / 20.0) as f32;
        let predicted = predict::predicted_lufs(store, hops, gain, limits)?;
        let error = target - predicted;
        if !error.is_finite() || error.abs() <= PREDICTION_TOLERANCE_LU {
            break;
        }
        let slope = match previous {
            Some((g, p)) if (gain_db - g).abs() > 1e-9 => {
                ((predicted - p) / (gain_db - g)).clamp(MIN_LU_PER_DB, 1.0)
            }
            _ => 1.0,
        };
        previous = Some((gain_db, predicted));
        gain_db = (gain_db + error / slope).clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
    }
    Ok(gain_db)
}

/// One pass through the live chain, as the session played.
fn render_live(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
    (start_gain_db, timeline): (f32, bool),
    sink: &mut dyn Sink,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> io::Result<(RenderReport, Option<Timeline>)> {
    let (total, block) = total_and_block(performance, options);
    let mut cfg = patch.config(options.sample_rate, options.seed.or(performance.seed));
    cfg.master.chain = MasterChain::Live { start_gain_db };
    let ceiling_dbtp = cfg.master.ceiling_dbtp;
    let mut meters = OutputMeters::new(cfg.sample_rate);
    let (mut engine, controller) = Engine::new(cfg, patch.names());
    let mut tap = tap_if(timeline, patch, &mut engine, &controller);
    sink.restart()?;
    drive(
        &mut engine,
        &controller,
        performance,
        (total, block),
        tap.as_mut(),
        |chunk, _, done| {
            meters.push(chunk);
            sink.write(chunk)?;
            progress(Stage::Live, done, total);
            Ok(())
        },
    )?;
    let finished = meters.finish();
    let report = RenderReport {
        frames: total,
        leveling: Leveling::Live { start_gain_db },
        integrated_lufs: finished.integrated_lufs,
        ceiling_dbtp,
        sample_peak_dbfs: to_db(finished.sample_peak),
        container: None,
    };
    Ok((report, tap.map(TimelineTap::finish)))
}

fn to_db(linear: f32) -> f64 {
    20.0 * f64::from(linear).max(1e-12).log10()
}
