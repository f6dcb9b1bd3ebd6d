//! `tapestry play`: the engine on a live audio device, with a status line, MIDI and OSC
//! input, optional performance playback and session recording.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use tapestry::control::{Message, Timing};
use tapestry::input::osc::OscServer;
use tapestry::input::SampleClock;
use tapestry::io::input::{open_room_input, InputOptions, RoomInput};
use tapestry::io::midi::MidiInputs;
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
    /// Listen to MIDI ports (the patch's `[midi]` section, or every port).
    pub midi: bool,
    /// MIDI learn: print `[midi]` mapping lines for what was played, at the end.
    pub midi_learn: bool,
    /// Serve OSC on this address.
    pub osc: Option<SocketAddr>,
    /// Listen to the room on this input (device or JACK ports).
    pub input: Option<InputOptions>,
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
    // one block of safety offset; the callback sets it to its real length once running
    let latency = args.options.buffer_frames.unwrap_or(512) as u64;
    let clock = Arc::new(SampleClock::new(sample_rate, latency));
    // inputs fail softly: the show goes on without them. They start before the stream so
    // that their JACK clients join the graph before the audio runs.
    let osc =
        args.osc.and_then(
            |addr| match OscServer::spawn(addr, controller.clone(), clock.clone()) {
                Ok(server) => {
                    eprintln!("OSC on {}", server.local_addr());
                    Some(server)
                }
                Err(e) => {
                    eprintln!("tapestry: no OSC input: cannot bind {addr}: {e}");
                    None
                }
            },
        );
    let midi = if args.midi || args.midi_learn {
        match MidiInputs::start(
            patch.midi().clone(),
            controller.clone(),
            clock.clone(),
            args.midi_learn,
        ) {
            Ok(inputs) => {
                if let Some(port) = inputs.virtual_port() {
                    eprintln!("MIDI virtual port \"{port}\"");
                }
                Some(inputs)
            }
            Err(e) => {
                eprintln!("tapestry: no MIDI input: {e}");
                None
            }
        }
    } else {
        None
    };
    let output = open_output(engine, &args.options, Some(clock.clone()))?;
    eprintln!(
        "playing \"{}\" on {} at {} Hz — Ctrl-C stops",
        patch.name, output.device, output.sample_rate
    );
    // the room is asked for explicitly, so failing to open it stops the show
    let room: Option<RoomInput> = match &args.input {
        Some(options) => {
            let room = open_room_input(options, &patch, controller.clone())
                .context("opening the room input (--input)")?;
            eprintln!(
                "listening to the room on {} ({} ch, {} Hz)",
                room.device, room.channels, room.sample_rate
            );
            Some(room)
        }
        None => None,
    };

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
        while let Some(notice) = controller.try_notice() {
            if let Some(midi) = &midi {
                midi.notice(&notice);
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
            let inputs = {
                let mut s = String::new();
                if let Some(midi) = &midi {
                    let m = midi.stats().snapshot();
                    s += &format!(
                        "  midi ports {} msgs {} routed {} dropped {} malformed {} lost {}",
                        m.ports,
                        m.messages,
                        m.routed,
                        m.dropped,
                        m.malformed,
                        m.lost()
                    );
                }
                if let Some(osc) = &osc {
                    let o = osc.stats().snapshot();
                    s += &format!(
                        "  osc packets {} accepted {} dropped {}",
                        o.packets,
                        o.accepted,
                        o.dropped()
                    );
                }
                if let Some(room) = &room {
                    s += "  room";
                    for (feature, value) in room.status.features() {
                        s += &format!(" {} {value:.1}", feature.name());
                    }
                }
                s
            };
            let line = format!(
                "{:>6.1}s  {} participants  section {section} bar {}  peak {:>6.1}/{:>6.1} dBFS  load {:>5.1}% (peak {:>5.1}%)  xruns {}  stream errors {}  dropped {}  refused {}{inputs}  {}{}",
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
                mood.join(", "),
                allocation_report(
                    &output.stats,
                    midi.as_ref().map(|m| &**m.stats()),
                    room.as_ref().map(|r| &*r.status)
                )
            );
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (audio_stats, midi_stats, room_stats) = (
        output.stats.clone(),
        midi.as_ref().map(|m| m.stats().clone()),
        room.as_ref().map(|r| r.status.clone()),
    );
    // inputs first, then the stream: the last block the engine made is then the last one
    // recorded
    drop(room);
    let learned = midi.and_then(MidiInputs::stop);
    if let Some(osc) = osc {
        osc.stop();
    }
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
    let allocations = allocation_report(&audio_stats, midi_stats.as_deref(), room_stats.as_deref());
    if !allocations.is_empty() {
        eprintln!("{}", allocations.trim_start());
    }
    if let Some(lines) = learned {
        eprintln!("MIDI learn: paste these lines into the patch, after its [midi] table:");
        print!("{lines}");
    }
    Ok(())
}

/// With the `alloc-check` feature, "  allocations in audio callback: N  in MIDI callbacks: M";
/// empty without it.
fn allocation_report(
    stats: &tapestry::io::CallbackStats,
    midi: Option<&tapestry::io::midi::MidiInputStats>,
    room: Option<&tapestry::io::input::RoomStatus>,
) -> String {
    if !tapestry::io::ALLOCATIONS_CHECKED {
        return String::new();
    }
    let midi = midi.map_or(0, |m| m.callback_allocations.load(Ordering::Relaxed));
    let room = room.map_or(0, |r| r.callback_allocations.load(Ordering::Relaxed));
    format!(
        "  allocations in audio callback: {}  in MIDI callbacks: {midi}  in room input callback: {room}",
        stats.allocations.load(Ordering::Relaxed)
    )
}
