//! The `tapestry` command line.

#[cfg(feature = "live")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use tapestry::render::{render_to_wav_watched, Leveling, RenderOptions, Stage, Watch, Watched};
use tapestry::render::{WavFormat, WavTarget};
use tapestry::{Patch, Performance};

#[cfg(feature = "live")]
mod live;

/// With `alloc-check`, every allocation goes through assert_no_alloc's allocator, which counts
/// those made inside the live callbacks (`tapestry play` reports them).
#[cfg(feature = "alloc-check")]
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

#[derive(Parser)]
#[command(
    name = "tapestry",
    version,
    about = "An audio-reactive, collective soundscape synthesizer"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// 24-bit integer PCM, dithered
    Pcm24,
    /// 32-bit float
    Float32,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render a performance of a patch to a WAV file, faster than real time.
    Render(RenderArgs),
    /// List audio hosts and output devices, and MIDI input ports.
    #[cfg(feature = "live")]
    Devices,
    /// Play a patch live on an audio device; participants and mood arrive from the inputs.
    #[cfg(feature = "live")]
    Play {
        /// Patch file.
        patch: PathBuf,
        /// Audio host (e.g. ALSA, JACK); default: the system's.
        #[arg(long)]
        host: Option<String>,
        /// Output device (id or part of its name); default: the host's default.
        #[arg(long)]
        device: Option<String>,
        /// Buffer size in frames (a JACK server's own size wins; play says so).
        #[arg(long)]
        buffer: Option<u32>,
        /// Sample rate in Hz; default: the device's.
        #[arg(long)]
        sample_rate: Option<u32>,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<f64>,
        /// Also play this performance file (its events at their times).
        #[arg(long, short = 'p')]
        performance: Option<PathBuf>,
        /// Record every applied event to this performance file, to re-render the show offline.
        #[arg(long)]
        record: Option<PathBuf>,
        /// Seed (default: the patch's).
        #[arg(long)]
        seed: Option<u64>,
        /// Do not listen to MIDI ports (by default: the ports the patch's [midi] section
        /// selects, every port without one, and a virtual port).
        #[arg(long)]
        no_midi: bool,
        /// MIDI learn: at the end, print [midi] mapping lines for the channels played and
        /// the controllers moved.
        #[arg(long, conflicts_with = "no_midi")]
        midi_learn: bool,
        /// Serve OSC on this address.
        #[arg(long, default_value = "127.0.0.1:9000")]
        osc: SocketAddr,
        /// Do not serve OSC.
        #[arg(long)]
        no_osc: bool,
        /// Serve the participants' page (phones join from it; URL and QR code printed) and
        /// the conductor's page (URL with a secret printed) on this address, e.g.
        /// 0.0.0.0:8080.
        #[cfg(feature = "web")]
        #[arg(long, value_name = "ADDR:PORT")]
        web: Option<SocketAddr>,
        /// Listen to the room: an input device (id or part of its name, on --host), "default",
        /// or on JACK the source ports to connect (`client:port`, comma-separated). Its
        /// analysis steers the mood as the patch's [analysis] section says.
        #[arg(long)]
        input: Option<String>,
        /// Buffer size of the room input in frames.
        #[arg(long, requires = "input")]
        input_buffer: Option<u32>,
        /// Gain in dB applied to the room input before the analysis, -60 to 60 (overrides
        /// the patch's [analysis] input_gain_db).
        #[arg(long, value_name = "DB", allow_negative_numbers = true, value_parser = input_gain, requires = "input")]
        input_gain: Option<f32>,
        /// Plain status lines even on a terminal (instead of the full-screen view).
        #[arg(long)]
        plain: bool,
        /// When the audio device goes away, keep trying to reopen it for this many seconds
        /// (the show's clock waits), then stop with an error; 0 stops at once.
        #[arg(long, default_value_t = 30.0, value_name = "SECS")]
        reconnect_timeout: f64,
    },
    /// Analyse a room recording: a feature timeline, a summary, optionally every frame as CSV.
    Analyze {
        /// WAV file (any channel count, mixed to mono for all but loudness).
        input: PathBuf,
        /// Write every frame to this CSV file (header row with units).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Analysis hop in milliseconds, 1 to 20 (default: 256 frames at 48 kHz, 5.33 ms).
        #[arg(long)]
        hop_ms: Option<f64>,
        /// Print a timeline line every this many seconds (0: summary only).
        #[arg(long, default_value_t = 0.5)]
        every: f64,
        /// Gain in dB applied to the recording before the analysis, -60 to 60.
        #[arg(long, value_name = "DB", allow_negative_numbers = true, value_parser = input_gain)]
        input_gain: Option<f32>,
        /// After the summary, print [[analysis.mappings]] to paste into a patch: the default
        /// mappings with feature ranges fitted to this recording.
        #[arg(long)]
        suggest: bool,
    },
    /// Validate a patch and optionally a performance; reports every problem found.
    Check {
        /// Patch file.
        patch: PathBuf,
        /// Performance file.
        performance: Option<PathBuf>,
    },
}

/// The arguments of `tapestry render`.
#[derive(Args)]
struct RenderArgs {
    /// Patch file (TOML).
    patch: PathBuf,
    /// Performance file (TOML); without it, an empty room at the patch's default mood.
    #[arg(long, short = 'p')]
    performance: Option<PathBuf>,
    /// Output WAV file.
    #[arg(long, short = 'o', default_value = "out.wav")]
    output: PathBuf,
    /// Length in seconds (default: the performance's).
    #[arg(long)]
    duration: Option<f64>,
    /// Seed (default: the performance's, else the patch's).
    #[arg(long)]
    seed: Option<u64>,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// WAV sample format.
    #[arg(long, value_enum, default_value_t = Format::Pcm24)]
    format: Format,
    /// Frames per processing block (the output is identical for any value).
    #[arg(long, default_value_t = 512)]
    block: usize,
    /// A recording of the room (WAV): its analysis steers the mood as the patch's
    /// [analysis] section says, as a live input would.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Gain in dB applied to the room input before the analysis, -60 to 60 (overrides
    /// the patch's [analysis] input_gain_db).
    #[arg(long, value_name = "DB", allow_negative_numbers = true, value_parser = input_gain, requires = "input")]
    input_gain: Option<f32>,
    /// Also write what happened when (sections, joins, leaves, cues, refusals, the
    /// communal mood) as JSON to this file.
    #[arg(long, value_name = "JSON")]
    timeline: Option<PathBuf>,
    /// Also draw the render (sections, who is in, spectrogram, loudness, mood) as a PNG.
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Width of the --plot picture in pixels (960 to 4096).
    #[arg(long, value_name = "PIXELS", default_value_t = tapestry::plot::DEFAULT_WIDTH,
          value_parser = clap::value_parser!(u32).range(960..=4096), requires = "plot")]
    plot_width: u32,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        #[cfg(feature = "live")]
        Cmd::Devices => {
            print!("{}", tapestry::io::list_devices());
            print!("{}", tapestry::io::midi::list_midi_inputs());
            Ok(())
        }
        #[cfg(feature = "live")]
        Cmd::Play {
            patch,
            host,
            device,
            buffer,
            sample_rate,
            duration,
            performance,
            record,
            seed,
            no_midi,
            midi_learn,
            osc,
            no_osc,
            #[cfg(feature = "web")]
            web,
            input,
            input_buffer,
            input_gain,
            plain,
            reconnect_timeout,
        } => live::play(live::PlayArgs {
            patch,
            input_gain_db: input_gain,
            input: input.map(|d| tapestry::io::input::InputOptions {
                host: host.clone(),
                device: (d != "default").then_some(d),
                buffer_frames: input_buffer,
            }),
            options: tapestry::io::OutputOptions {
                host,
                device,
                buffer_frames: buffer,
                sample_rate,
            },
            duration,
            performance,
            record,
            seed,
            midi: !no_midi,
            midi_learn,
            osc: (!no_osc).then_some(osc),
            #[cfg(feature = "web")]
            web,
            plain,
            reconnect_timeout,
        }),
        Cmd::Analyze {
            input,
            csv,
            hop_ms,
            every,
            input_gain,
            suggest,
        } => analyze(
            &input,
            csv.as_deref(),
            hop_ms,
            every,
            input_gain.unwrap_or(0.0),
            suggest,
        ),
        Cmd::Check { patch, performance } => check_command(&patch, performance.as_deref()),
        Cmd::Render(args) => render_command(args),
    }
}

/// `tapestry check`: validates a patch and optionally a performance, and says what is in them.
fn check_command(patch: &std::path::Path, performance: Option<&std::path::Path>) -> Result<()> {
    let p = Patch::load(patch)
        .map_err(|d| anyhow::anyhow!("{} has problems:\n{d}", patch.display()))?;
    print_warnings(&p.warnings);
    println!(
        "{}: ok — \"{}\", {} sections, {} archetypes, {} mood dimensions",
        patch.display(),
        p.name,
        p.sections.len(),
        p.archetypes.len(),
        p.dims.len()
    );
    if let Some(perf) = performance {
        let f = Performance::load(perf, &p, 48_000)
            .map_err(|d| anyhow::anyhow!("{} has problems:\n{d}", perf.display()))?;
        print_warnings(&f.warnings);
        println!(
            "{}: ok — {} events, {:.1} s, up to {} participants",
            perf.display(),
            f.commands.len(),
            f.duration_frames as f64 / 48_000.0,
            f.peak_participants
        );
    }
    Ok(())
}

/// `tapestry render`: checks the arguments, loads the patch, the performance and the room
/// recording, and renders.
fn render_command(args: RenderArgs) -> Result<()> {
    let RenderArgs {
        patch,
        performance,
        output,
        duration,
        seed,
        sample_rate,
        format,
        block,
        input,
        input_gain,
        timeline,
        plot,
        plot_width,
    } = args;
    if !(8_000..=384_000).contains(&sample_rate) {
        bail!("--sample-rate must be between 8000 and 384000 Hz, got {sample_rate}");
    }
    if block == 0 || block > tapestry::engine::MAX_BLOCK_FRAMES {
        bail!(
            "--block must be between 1 and {} frames",
            tapestry::engine::MAX_BLOCK_FRAMES
        );
    }
    let mut p = Patch::load(&patch)
        .map_err(|d| anyhow::anyhow!("{} has problems:\n{d}", patch.display()))?;
    print_warnings(&p.warnings);
    if let Some(db) = input_gain {
        p.set_room_input_gain_db(db);
    }
    let duration_frames = match duration {
        Some(d) => Some(duration_frames(d, sample_rate)?),
        None => None,
    };
    let mut room = match &input {
        Some(path) => Some(open_room(path, Some(sample_rate))?),
        None => None,
    };
    let mut perf = match &performance {
        Some(path) => Performance::load(path, &p, sample_rate)
            .map_err(|d| anyhow::anyhow!("{} has problems:\n{d}", path.display()))?,
        None => Performance {
            duration_frames: room
                .as_ref()
                .map_or(60 * sample_rate as u64, |r| r.frames()),
            ..Performance::default()
        },
    };
    print_warnings(&perf.warnings);
    if let (Some(room), Some(path)) = (&mut room, &input) {
        // only what the render plays is read
        let frames = duration_frames.unwrap_or(perf.duration_frames);
        tapestry::room::add_room_recording(&mut perf, &p, room, frames)
            .with_context(|| format!("reading the room input {}", path.display()))?;
    }
    let options = RenderOptions {
        sample_rate,
        seed,
        duration_frames,
        block_frames: block,
    };
    let fmt = match format {
        Format::Pcm24 => WavFormat::Pcm24,
        Format::Float32 => WavFormat::Float32,
    };
    let target = WavTarget {
        path: &output,
        format: fmt,
        dither_seed: options.seed.or(perf.seed).unwrap_or(p.seed()),
    };
    let notes = Notes {
        timeline: timeline.as_deref(),
        plot: plot.as_deref().map(|path| (path, plot_width)),
    };
    render_file(&p, &perf, &options, &target, notes)
}

/// Opens a room recording as a stream (resampled to `rate`), warning when it is cut short.
fn open_room(path: &std::path::Path, rate: Option<u32>) -> Result<tapestry::analysis::WavStream> {
    let room = tapestry::analysis::WavStream::open(path, rate)
        .with_context(|| format!("reading the room input {}", path.display()))?;
    if let Some(cut) = room.truncation() {
        eprintln!("warning: {cut}");
    }
    Ok(room)
}

/// Prints the warnings of a patch or performance (harmless: the file is used).
fn print_warnings(warnings: &[tapestry::Diagnostic]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

/// `--duration` in frames: more than 0 and at most [`MAX_SHOW_SECS`] seconds.
///
/// [`MAX_SHOW_SECS`]: tapestry::performance::MAX_SHOW_SECS
fn duration_frames(secs: f64, sample_rate: u32) -> Result<u64> {
    let max = tapestry::performance::MAX_SHOW_SECS;
    if !(secs > 0.0 && secs <= max) {
        bail!("--duration must be more than 0 and at most {max} seconds (24 h), got {secs}");
    }
    Ok((secs * sample_rate as f64).round() as u64)
}

/// Where `render` writes its timeline and picture.
struct Notes<'a> {
    timeline: Option<&'a std::path::Path>,
    plot: Option<(&'a std::path::Path, u32)>,
}

impl Notes<'_> {
    fn watch(&self) -> Watch {
        Watch {
            timeline: self.timeline.is_some(),
            plot_width: self.plot.map(|(_, width)| width),
        }
    }

    fn write(&self, watched: &Watched) -> Result<()> {
        let timeline = watched.timeline.as_ref();
        if let (Some(path), Some(timeline)) = (self.timeline, timeline) {
            timeline.write_json(path)?;
            eprintln!(
                "wrote {} ({} events)",
                path.display(),
                timeline.events().len()
            );
        }
        if let (Some((path, _)), Some(plot), Some(timeline)) = (self.plot, &watched.plot, timeline)
        {
            plot.finish(timeline, path)?;
            let (width, height) = plot.size();
            eprintln!("wrote {} ({width} x {height})", path.display());
        }
        Ok(())
    }
}

/// Renders to the target with a progress bar for renders that take more than a moment, then
/// says what was written.
fn render_file(
    patch: &Patch,
    perf: &Performance,
    options: &RenderOptions,
    target: &WavTarget,
    notes: Notes,
) -> Result<()> {
    let sample_rate = options.sample_rate;
    let total = options.duration_frames.unwrap_or(perf.duration_frames);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:40}] {percent:>3}% {msg} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut shown = false;
    let mut last_stage = Stage::Program;
    let watch = notes.watch();
    let progress = |stage, done, total| {
        if !shown && started.elapsed() > Duration::from_millis(300) {
            shown = true;
            bar.reset_elapsed();
        }
        if stage != last_stage {
            last_stage = stage;
            bar.reset_eta();
        }
        if shown {
            bar.set_prefix(match stage {
                Stage::Program | Stage::Live => "rendering",
                Stage::Finish => "finishing",
            });
            bar.set_position(done);
            bar.set_message(format!(
                "{:.0}s/{:.0}s",
                done as f64 / sample_rate as f64,
                total as f64 / sample_rate as f64
            ));
        }
    };
    let (report, watched) = render_to_wav_watched(patch, perf, options, target, watch, progress)?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let secs = report.frames as f64 / sample_rate as f64;
    let leveling = match report.leveling {
        Leveling::Whole {
            program_lufs,
            gain_db,
            passes,
        } if program_lufs.is_finite() => {
            let passes = if passes > 1 {
                format!(" ({passes} finishing passes)")
            } else {
                String::new()
            };
            format!("program {program_lufs:.1} LUFS, gain {gain_db:+.2} dB{passes}, ")
        }
        Leveling::Whole { .. } => "silent program, ".to_string(),
        Leveling::Live { start_gain_db } => {
            format!("live chain from {start_gain_db:+.2} dB, ")
        }
    };
    eprintln!(
        "wrote {}{} — {:.1} s of audio in {:.2} s ({:.0}x real time); {leveling}{:.1} LUFS, \
         true peak under {:.1} dBTP",
        target.path.display(),
        if report.container == Some(tapestry::render::Container::Rf64) {
            " (RF64)"
        } else {
            ""
        },
        secs,
        elapsed,
        secs / elapsed.max(1e-9),
        report.integrated_lufs,
        report.ceiling_dbtp,
    );
    notes.write(&watched)
}

/// `--input-gain`: a number of dB within the limits.
fn input_gain(s: &str) -> Result<f32, String> {
    let limit = tapestry::room::INPUT_GAIN_DB_LIMIT;
    match s.trim().trim_end_matches("dB").trim().parse::<f32>() {
        Ok(db) if (-limit..=limit).contains(&db) => Ok(db),
        _ => Err(format!(
            "expected a gain in dB from -{limit} to {limit}, found \"{s}\""
        )),
    }
}

fn analyze(
    input: &std::path::Path,
    csv: Option<&std::path::Path>,
    hop_ms: Option<f64>,
    every: f64,
    input_gain_db: f32,
    suggest: bool,
) -> Result<()> {
    use std::io::Write as _;
    use tapestry::analysis::report::{self, SummaryBuilder};
    use tapestry::analysis::{Analyzer, WavStream};

    if !(every.is_finite() && every >= 0.0) {
        bail!("--every must be 0 or more seconds, got {every}");
    }
    // streamed: memory stays bounded whatever the recording's length
    let mut stream = WavStream::open(input, None)?;
    if let Some(cut) = stream.truncation() {
        eprintln!("warning: {cut}");
    }
    let (channels, sample_rate) = (stream.channels(), stream.sample_rate());
    let mut analyzer = match hop_ms {
        Some(ms) if (1.0..=20.0).contains(&ms) => Analyzer::with_hop(
            sample_rate,
            channels,
            (ms * 1e-3 * f64::from(sample_rate)).round() as usize,
        ),
        Some(ms) => bail!("--hop-ms must be between 1 and 20, got {ms}"),
        None => Analyzer::new(sample_rate, channels),
    };
    analyzer.set_input_gain_db(input_gain_db);
    let mut csv_out = csv.map(create_csv).transpose()?;
    println!(
        "{}: {} channel(s) at {} Hz, hop {} frames ({:.2} ms)",
        input.display(),
        channels,
        sample_rate,
        analyzer.hop_frames(),
        analyzer.hop_frames() as f64 * 1e3 / f64::from(sample_rate)
    );
    if input_gain_db != 0.0 {
        println!("input gain      {input_gain_db:+.1} dB");
    }
    if every > 0.0 {
        println!("{}", report::timeline_header());
    }
    let gate = tapestry::room::DEFAULT_GATE_LUFS;
    let mut suggester = suggest.then(|| tapestry::room::suggest::Suggester::new(gate, sample_rate));
    let mut summary = SummaryBuilder::default();
    let (mut printed, mut frames, mut csv_result) = (0u64, 0usize, Ok(()));
    while let Some(piece) = stream.next_piece()? {
        analyzer.process(piece, |f| {
            frames += 1;
            if every > 0.0 {
                let index = (f.end_secs(sample_rate) / every).floor() as u64;
                if index > printed {
                    printed = index;
                    println!("{}", report::timeline_line(f, sample_rate));
                }
            }
            summary.add(f);
            if let Some(s) = &mut suggester {
                s.add(f);
            }
            if let (Some(out), Ok(())) = (&mut csv_out, &csv_result) {
                csv_result = writeln!(out, "{}", report::csv_row(f, sample_rate));
            }
        });
    }
    print!("{}", summary.finish(stream.frames(), sample_rate));
    if analyzer.replaced_samples() > 0 {
        println!(
            "replaced        {} non-finite samples by 0",
            analyzer.replaced_samples()
        );
    }
    if let Some(suggester) = suggester {
        print_suggestions(input, input_gain_db, gate, suggester);
    }
    if let (Some(mut out), Some(path)) = (csv_out, csv) {
        csv_result
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {frames} frames to {}", path.display());
    }
    Ok(())
}

/// A CSV file for `analyze --csv`, its header written.
fn create_csv(path: &std::path::Path) -> Result<std::io::BufWriter<std::fs::File>> {
    use std::io::Write as _;
    let write = || -> std::io::Result<_> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "{}", tapestry::analysis::report::csv_header())?;
        Ok(out)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// `analyze --suggest`: the default mappings fitted to the recording, as TOML to paste.
fn print_suggestions(
    input: &std::path::Path,
    input_gain_db: f32,
    gate_lufs: f32,
    suggester: tapestry::room::suggest::Suggester,
) {
    println!(
        "\n# Suggested [analysis] mappings for {}{}: the default mappings with feature_range\n\
         # = 10th..90th percentile of the frames above {gate_lufs} LUFS. Paste under [analysis].\n",
        input.display(),
        if input_gain_db != 0.0 {
            format!(" at input gain {input_gain_db:+.1} dB (set input_gain_db to match)")
        } else {
            String::new()
        }
    );
    print!(
        "{}",
        tapestry::room::suggest::suggestion_toml(&suggester.finish())
    );
}
