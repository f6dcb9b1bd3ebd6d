//! `tapestry play`: the engine on a live audio device, with a status line, optional
//! performance playback and session recording.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use tapestry::control::{Message, Timing};
use tapestry::io::{output_sample_rate, play as open_output, OutputOptions};
use tapestry::record::{Recorder, RecorderThread};
use tapestry::{Engine, Patch, Performance};

/// Everything `play` was asked for.
pub struct PlayArgs {
    pub patch: PathBuf,
    pub options: OutputOptions,
    pub duration: Option<f64>,
    pub performance: Option<PathBuf>,
    pub record: Option<PathBuf>,
    pub seed: Option<u64>,
}

pub fn play(args: PlayArgs) -> Result<()> {
    let patch = Patch::load(&args.patch)
        .map_err(|d| anyhow!("{} has problems:\n{d}", args.patch.display()))?;
    let sample_rate = output_sample_rate(&args.options)?;
    let perf = match &args.performance {
        Some(p) => Some(
            Performance::load(p, &patch, sample_rate)
                .map_err(|d| anyhow!("{} has problems:\n{d}", p.display()))?,
        ),
        None => None,
    };
    let seed = args.seed.or(perf.as_ref().and_then(|p| p.seed));
    let (mut engine, controller) = Engine::new(patch.config(sample_rate, seed), patch.names());
    let recording = match &args.record {
        Some(path) => {
            let journal = engine.enable_journal(1 << 16);
            let recorder = Recorder::create(
                path,
                &patch.name,
                patch.names(),
                seed.unwrap_or(patch.seed()),
            )
            .with_context(|| format!("creating {}", path.display()))?;
            Some(RecorderThread::spawn(recorder, journal, path.clone()))
        }
        None => None,
    };
    let output = open_output(engine, &args.options)?;
    eprintln!(
        "playing \"{}\" on {} at {} Hz — Ctrl-C stops",
        patch.name, output.device, output.sample_rate
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let started = Instant::now();
    let mut next_event = 0;
    let mut last_status = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let status = controller.status().clone();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if args
            .duration
            .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
        {
            break;
        }
        // performance events go out a little ahead of their time, stamped with their sample
        if let Some(perf) = &perf {
            let horizon = status.sample_position.load(Ordering::Relaxed) + sample_rate as u64 / 2;
            while next_event < perf.commands.len() && perf.commands[next_event].sample < horizon {
                let c = perf.commands[next_event];
                if controller
                    .send(Message {
                        at: Timing::At(c.sample),
                        command: c.command,
                    })
                    .is_err()
                {
                    break;
                }
                next_event += 1;
            }
        }
        if last_status.elapsed() >= Duration::from_secs(1) {
            last_status = Instant::now();
            let names = controller.names();
            let section = names
                .sections
                .get(status.section.load(Ordering::Relaxed) as usize)
                .cloned()
                .unwrap_or_default();
            let (l, r) = status.peaks();
            let mood: Vec<String> = names
                .dims
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{n} {:.2}", status.mood(i)))
                .collect();
            let line = format!(
                "{:>6.1}s  {} participants  section {section} bar {}  peak {:>6.1}/{:>6.1} dBFS  load {:>5.1}% (peak {:>5.1}%)  xruns {}  stream errors {}  dropped {}  refused {}  {}",
                started.elapsed().as_secs_f64(),
                status.participants.load(Ordering::Relaxed),
                status.bar.load(Ordering::Relaxed) + 1,
                20.0 * l.max(1e-9).log10(),
                20.0 * r.max(1e-9).log10(),
                output.stats.load_percent(),
                output.stats.peak_load_percent(),
                output.stats.xruns.load(Ordering::Relaxed),
                output.stats.stream_errors.load(Ordering::Relaxed),
                status.dropped_messages.load(Ordering::Relaxed),
                status.refused_messages.load(Ordering::Relaxed),
                mood.join(", ")
            );
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // stop the stream first: the last block the engine made is then the last one recorded
    drop(output);
    let end = status.sample_position.load(Ordering::Relaxed);
    if terminal {
        eprintln!();
    }
    if let Some(rec) = recording {
        let path = rec.path().to_path_buf();
        let events = rec
            .finish(end)
            .with_context(|| format!("finishing {}", path.display()))?;
        eprintln!("recorded {events} events to {}", path.display());
    }
    eprintln!("stopped after {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
