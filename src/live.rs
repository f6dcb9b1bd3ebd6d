//! `tapestry play`: the engine on a live audio device, with a status view (full screen on a
//! terminal, plain lines otherwise), MIDI and OSC input, optional performance playback,
//! session recording, and reopening of a device that went away.

mod audio;
mod screen;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use tapestry::analysis::Feature;
use tapestry::console::{Action, Console, Outcome};
use tapestry::control::{Message, Names, Notice, Status, Timing};
use tapestry::engine::config::EngineConfig;
use tapestry::engine::master::MasterChain;
use tapestry::input::osc::OscServer;
use tapestry::input::SampleClock;
use tapestry::io::input::{open_room_input, InputOptions, RoomInput};
use tapestry::io::midi::{MidiCounts, MidiInputs};
use tapestry::io::{
    close_within, output_sample_rate, play as open_output, OutputOptions, CLOSE_TIMEOUT,
};
use tapestry::record::{Recorder, RecorderThread, FLUSH_INTERVAL};
use tapestry::render::calibrate_live_gain_db;
use tapestry::status_view::{
    self, decay_peak, Allocations, AudioState, Event, MidiCounters, MoodRow, OscCounters,
    Participant, RoomRow, Snapshot,
};
use tapestry::{Controller, Engine, Patch, Performance};

use audio::{Audio, Change};
use screen::Screen;

/// The live leveler's start gain: a quick offline render of the patch (or of the performance
/// being played) measured for loudness, so the show starts on its target and the leveler only
/// has to follow what the crowd does differently.
fn live_leveler_start(
    patch: &Patch,
    perf: Option<&Performance>,
    sample_rate: u32,
    seed: Option<u64>,
) -> f32 {
    if !patch.config(sample_rate, seed).master.leveler {
        return 0.0;
    }
    let started = Instant::now();
    let gain = calibrate_live_gain_db(patch, perf, sample_rate, seed);
    eprintln!(
        "loudness: the live leveler starts at {gain:+.1} dB (calibrated on {} in {:.1} s)",
        if perf.is_some_and(|p| !p.commands.is_empty()) {
            "the performance"
        } else {
            "every archetype at the default mood"
        },
        started.elapsed().as_secs_f64()
    );
    gain
}

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
    /// Serve the participants' and conductor's pages on this address (`--web`).
    #[cfg(feature = "web")]
    pub web: Option<SocketAddr>,
    /// Plain status lines even on a terminal.
    pub plain: bool,
    /// Seconds to keep trying to reopen a device that went away (0: stop at once).
    pub reconnect_timeout: f64,
    /// Listen to the room on this input (device or JACK ports).
    pub input: Option<InputOptions>,
    /// `--input-gain`: overrides the patch's `[analysis] input_gain_db`.
    pub input_gain_db: Option<f32>,
}

pub fn play(args: PlayArgs) -> Result<()> {
    check_args(&args)?;
    let (show, engine) = load_show(&args)?;
    let inputs = start_inputs(&args, &show);
    let mut show = show;
    let mut devices = open_devices(&args, &mut show, engine)?;
    let ended = run_show(&args, &mut show, &inputs, &mut devices)?;
    close(&args, show, inputs, devices, ended)
}

/// `--reconnect-timeout` and `--duration` within their limits, before anything opens.
fn check_args(args: &PlayArgs) -> Result<()> {
    if !(args.reconnect_timeout >= 0.0 && args.reconnect_timeout <= 86_400.0) {
        return Err(anyhow!(
            "--reconnect-timeout must be between 0 and 86400 seconds, got {}",
            args.reconnect_timeout
        ));
    }
    let max_secs = tapestry::performance::MAX_SHOW_SECS;
    if let Some(d) = args.duration.filter(|d| !(*d > 0.0 && *d <= max_secs)) {
        return Err(anyhow!(
            "--duration must be more than 0 and at most {max_secs} seconds (24 h), got {d}"
        ));
    }
    Ok(())
}

/// What `play` sets up before any device opens.
struct Show {
    patch: Patch,
    perf: Option<Performance>,
    sample_rate: u32,
    controller: Controller,
    recording: Option<RecorderThread>,
    /// Where inputs stamp their events with the sample they apply at.
    clock: Arc<SampleClock>,
    /// Mood dimensions with their ranges, for the view.
    dims: Vec<(String, f32, f32)>,
    /// The score's key and transitions, for the view.
    guide: ScoreGuide,
    /// The performance's next event to send.
    next_event: usize,
}

/// Loads the patch and the performance, builds the engine for the device's sample rate with
/// the calibrated live leveler, and starts the recording.
fn load_show(args: &PlayArgs) -> Result<(Show, Engine)> {
    let mut patch = Patch::load(&args.patch)
        .map_err(|d| anyhow!("{} has problems:\n{d}", args.patch.display()))?;
    for w in &patch.warnings {
        eprintln!("{w}");
    }
    if let Some(db) = args.input_gain_db {
        patch.set_room_input_gain_db(db);
    }
    let sample_rate = output_sample_rate(&args.options)?;
    let perf = match &args.performance {
        Some(p) => Some(
            Performance::load(p, &patch, sample_rate)
                .map_err(|d| anyhow!("{} has problems:\n{d}", p.display()))?,
        ),
        None => None,
    };
    for w in perf.iter().flat_map(|p| &p.warnings) {
        eprintln!("{w}");
    }
    let seed = args.seed.or(perf.as_ref().and_then(|p| p.seed));
    let mut config = patch.config(sample_rate, seed);
    let leveler_start_db = live_leveler_start(&patch, perf.as_ref(), sample_rate, seed);
    config.master.chain = MasterChain::Live {
        start_gain_db: leveler_start_db,
    };
    let dims: Vec<(String, f32, f32)> = patch
        .dims
        .iter()
        .zip(&config.dims)
        .map(|(name, d)| (name.clone(), d.min, d.max))
        .collect();
    let guide = ScoreGuide::new(&config, &patch);
    let (mut engine, controller) = Engine::new(config, patch.names());
    let recording = match &args.record {
        Some(path) => {
            let journal = engine.enable_journal(1 << 16);
            let recorder = Recorder::create(
                path,
                &patch.name,
                patch.names(),
                seed.unwrap_or(patch.seed()),
                leveler_start_db,
            )
            .with_context(|| format!("creating {}", path.display()))?
            .with_clock(controller.status().clone(), sample_rate);
            Some(RecorderThread::spawn(recorder, journal, path.clone()))
        }
        None => None,
    };
    // one block of safety offset; the callback sets it to its real length once running
    let latency = args.options.buffer_frames.unwrap_or(512) as u64;
    let clock = Arc::new(SampleClock::new(sample_rate, latency));
    let show = Show {
        patch,
        perf,
        sample_rate,
        controller,
        recording,
        clock,
        dims,
        guide,
        next_event: 0,
    };
    Ok((show, engine))
}

/// What the view says about the score that does not change while it plays.
struct ScoreGuide {
    /// "D dorian".
    key: String,
    /// By section index: the transitions that can leave it, as the view shows them.
    next_by_section: Vec<Vec<String>>,
}

impl ScoreGuide {
    fn new(config: &EngineConfig, patch: &Patch) -> ScoreGuide {
        let key = format!(
            "{} {}",
            tapestry::score::pitch_class_name(config.key.tonic),
            config.key.mode.name()
        );
        let next_by_section = (0..patch.sections.len() as u16)
            .map(|section| {
                config
                    .transitions
                    .iter()
                    .filter(|t| t.leaves(section) && t.to != section)
                    .map(|t| {
                        let to = patch
                            .sections
                            .get(t.to as usize)
                            .map_or("?", String::as_str);
                        let after = match t.min_bars {
                            0 => String::new(),
                            n => format!(", after {n} bars"),
                        };
                        format!("{to} when {}{after}", t.describe_conditions(&patch.dims))
                    })
                    .collect()
            })
            .collect();
        ScoreGuide {
            key,
            next_by_section,
        }
    }
}

/// The network and MIDI inputs; each fails softly (the show goes on without it).
struct Inputs {
    osc: Option<OscServer>,
    midi: Option<MidiInputs>,
    #[cfg(feature = "web")]
    web: Option<tapestry::web::WebServer>,
}

/// Starts OSC and MIDI. They start before the stream, so that their JACK clients join the
/// graph before the audio runs.
fn start_inputs(args: &PlayArgs, show: &Show) -> Inputs {
    let (controller, clock) = (&show.controller, &show.clock);
    let osc =
        args.osc.and_then(
            |addr| match OscServer::spawn(addr, controller.clone(), clock.clone()) {
                Ok(server) => {
                    let buffer = server.stats().recv_buffer_bytes.load(Ordering::Relaxed);
                    eprintln!(
                        "OSC on {} (receive buffer {} KiB)",
                        server.local_addr(),
                        buffer / 1024
                    );
                    Some(server)
                }
                Err(e) => {
                    eprintln!("tapestry: no OSC input: cannot bind {addr}: {e}");
                    None
                }
            },
        );
    let midi = if args.midi || args.midi_learn {
        let map = show.patch.midi().clone();
        match MidiInputs::start(map, controller.clone(), clock.clone(), args.midi_learn) {
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
    if let (Some(server), Some(inputs)) = (&osc, &midi) {
        let stats = inputs.stats().clone();
        server.report_counters(Box::new(move || midi_status_counters(&stats.snapshot())));
    }
    Inputs {
        osc,
        midi,
        #[cfg(feature = "web")]
        web: args.web.and_then(|addr| start_web(addr, show)),
    }
}

/// The phones' pages: their URL and a QR code on the terminal, the conductor's URL with its
/// secret; failing to bind is reported and the show goes on without them.
#[cfg(feature = "web")]
fn start_web(addr: SocketAddr, show: &Show) -> Option<tapestry::web::WebServer> {
    use tapestry::web::{qr_code, WebOptions, WebPatch, WebServer};
    let config = show.patch.config(show.sample_rate, None);
    let patch = WebPatch::new(&config, show.controller.names());
    let controller = show.controller.clone();
    match WebServer::spawn(
        addr,
        controller,
        show.clock.clone(),
        patch,
        WebOptions::default(),
    ) {
        Ok(server) => {
            let url = server.participant_url();
            if let Some(qr) = qr_code(&url) {
                eprintln!("{qr}");
            }
            eprintln!("participants: {url}");
            eprintln!(
                "conductor (keep it to yourself): {}",
                server.conductor_url()
            );
            Some(server)
        }
        Err(e) => {
            eprintln!("tapestry: no web pages: cannot bind {addr}: {e}");
            None
        }
    }
}

/// The audio output (watched and reopened) and the room input.
struct Devices {
    audio: Audio,
    room: Option<RoomInput>,
    /// The output's description, for the view.
    device: String,
}

/// Opens the output with the engine in it, then the room input (asked for explicitly, so
/// failing to open it stops the show). What is due at the very start is queued before the
/// sound starts, to land on its sample.
fn open_devices(args: &PlayArgs, show: &mut Show, engine: Engine) -> Result<Devices> {
    if let Some(perf) = &show.perf {
        send_due(
            perf,
            &mut show.next_event,
            0,
            show.sample_rate,
            &show.controller,
        );
    }
    let output = open_output(engine, &args.options, Some(show.clock.clone()))?;
    if let Some(note) = &output.note {
        eprintln!("tapestry: {note}");
    }
    eprintln!(
        "playing \"{}\" on {} at {} Hz — Ctrl-C stops",
        show.patch.name, output.device, output.sample_rate
    );
    let device = output.device.clone();
    let audio = Audio::new(
        output,
        &args.options,
        show.clock.clone(),
        Duration::from_secs_f64(args.reconnect_timeout),
    );
    let room = match &args.input {
        Some(options) => Some(open_room(options, &show.patch, &show.controller)?),
        None => None,
    };
    Ok(Devices {
        audio,
        room,
        device,
    })
}

/// Opens the room input and says where it listens.
fn open_room(options: &InputOptions, patch: &Patch, controller: &Controller) -> Result<RoomInput> {
    let room = open_room_input(options, patch, controller.clone())
        .context("opening the room input (--input)")?;
    let gain = patch.room().input_gain_db;
    eprintln!(
        "listening to the room on {} ({} ch, {} Hz{})",
        room.device,
        room.channels,
        room.sample_rate,
        if gain != 0.0 {
            format!(", input gain {gain:+.1} dB")
        } else {
            String::new()
        }
    );
    Ok(room)
}

/// How the show loop ended.
struct Ended {
    /// Why the output was given up on, if it was.
    gave_up: Option<String>,
    /// Whether the output went away at some point.
    audio_was_lost: bool,
    started: Instant,
    view: ViewState,
}

/// The show loop: sends the performance's due events, shows notices and device changes,
/// refreshes the view, until Ctrl-C, `--duration` or a device that did not come back.
fn run_show(
    args: &PlayArgs,
    show: &mut Show,
    inputs: &Inputs,
    devices: &mut Devices,
) -> Result<Ended> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let mut screen = if !args.plain && std::io::stdout().is_terminal() {
        Some(Screen::enter().context("setting up the terminal")?)
    } else {
        None
    };
    // with the view on the terminal and stderr elsewhere (a file), events are logged there too
    let log_apart = !std::io::stderr().is_terminal();
    let mut ended = Ended {
        gave_up: None,
        audio_was_lost: false,
        started: Instant::now(),
        view: ViewState::new(&show.patch.name, &devices.device, &show.dims, &show.guide),
    };
    let mut last_status = Instant::now();
    let status = show.controller.status().clone();
    while !stop.load(Ordering::Relaxed)
        && !args
            .duration
            .is_some_and(|d| ended.started.elapsed().as_secs_f64() >= d)
    {
        if let Some(perf) = &show.perf {
            let now = status.sample_position.load(Ordering::Relaxed);
            send_due(
                perf,
                &mut show.next_event,
                now,
                show.sample_rate,
                &show.controller,
            );
        }
        let log_events = screen.is_none() || log_apart;
        take_notices(show, inputs, &mut ended.view, log_events);
        if !audio_change(show, devices, &mut ended, log_events) {
            break;
        }
        ended.view.hold_peaks(&status);
        let mut redraw = false;
        if let Some(keys) = screen.as_mut().map(Screen::keys) {
            match take_keys(keys, show, &mut ended.view, log_events) {
                Some(Outcome::Quit) => break,
                Some(_) => redraw = true,
                None => {}
            }
        }
        let period = if screen.is_some() {
            SCREEN_REFRESH
        } else {
            PLAIN_STATUS_INTERVAL
        };
        if redraw || last_status.elapsed() >= period {
            last_status = Instant::now();
            read_view(&mut ended, args, show, inputs, devices);
            refresh(&mut screen, &ended.view);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // the terminal first, so that what follows is printed where the performer sees it
    let shown_on_screen = screen.take().is_some(); // dropped: the terminal is restored
    if shown_on_screen {
        read_view(&mut ended, args, show, inputs, devices);
        eprintln!("{}", status_view::plain_line(&ended.view.snapshot));
    }
    Ok(ended)
}

/// The engine's notices: to the MIDI inputs (a participant that left joins again on its next
/// note) and into the view.
fn take_notices(show: &Show, inputs: &Inputs, view: &mut ViewState, log_events: bool) {
    let names = show.controller.names();
    while let Some(notice) = show.controller.try_notice() {
        if let Some(midi) = &inputs.midi {
            midi.notice(&notice);
        }
        #[cfg(feature = "web")]
        if let Some(web) = &inputs.web {
            web.notice(&notice);
        }
        if let Some(event) = view.notice(notice, names, show.sample_rate) {
            view.log(event, log_events);
        }
    }
}

/// The performer's keys: each one's action carried out, its command sent to the engine (a
/// full queue is said in the view). The last outcome that was not `Nothing`, if any.
fn take_keys(
    keys: Vec<tapestry::console::Key>,
    show: &Show,
    view: &mut ViewState,
    log_events: bool,
) -> Option<Outcome> {
    let mut last = None;
    for key in keys {
        let Some(action) = Action::for_key(key) else {
            continue;
        };
        let outcome = view.console.act(action, &view.snapshot);
        match outcome {
            Outcome::Quit => return Some(Outcome::Quit),
            Outcome::Nothing => continue,
            Outcome::Send(command) => {
                if let Err(e) = show.controller.command(command) {
                    let at = show
                        .controller
                        .status()
                        .sample_position
                        .load(Ordering::Relaxed);
                    let text = format!(
                        "console: {} not sent: {e}",
                        command.describe(show.controller.names())
                    );
                    let at_secs = at as f64 / show.sample_rate as f64;
                    view.log(Event::Notice { text, at_secs }, log_events);
                }
            }
            Outcome::Redraw => {}
        }
        last = Some(outcome);
    }
    last
}

/// Looks after the output: a device lost or back is shown; false when it was given up on.
fn audio_change(show: &Show, devices: &mut Devices, ended: &mut Ended, log_events: bool) -> bool {
    let secs = |sample: u64| sample as f64 / show.sample_rate as f64;
    let view = &mut ended.view;
    match devices.audio.tick() {
        Some(Change::Lost { reason, at_sample }) => {
            ended.audio_was_lost = true;
            let event = Event::AudioLost {
                reason,
                at_secs: secs(at_sample),
            };
            view.log(event, log_events);
            if let (Some(rec), true) = (&show.recording, log_events) {
                eprintln!(
                    "recording kept in {} (on disk every {:.1} s)",
                    rec.path().display(),
                    FLUSH_INTERVAL.as_secs_f64()
                );
            }
        }
        Some(Change::Back { device, after }) => {
            view.snapshot.device = device.clone();
            let event = Event::AudioBack {
                device,
                after_secs: after.as_secs_f64(),
            };
            view.log(event, log_events);
        }
        Some(Change::GaveUp { reason }) => {
            ended.gave_up = Some(reason);
            return false;
        }
        None => {}
    }
    true
}

/// Reads the live figures into the view.
fn read_view(ended: &mut Ended, args: &PlayArgs, show: &Show, inputs: &Inputs, devices: &Devices) {
    ended.view.read(
        show.controller.status(),
        show.controller.names(),
        &devices.audio,
        ended.started.elapsed(),
        args.reconnect_timeout,
        inputs.midi.as_ref(),
        inputs.osc.as_ref(),
        devices.room.as_ref(),
    );
    #[cfg(feature = "web")]
    {
        ended.view.snapshot.web = inputs.web.as_ref().map(|w| w.stats().counters());
    }
}

/// Draws the view on the terminal, or prints the plain status line; a terminal that went
/// away leaves plain lines.
fn refresh(screen: &mut Option<Screen>, view: &ViewState) {
    let drawn = match screen {
        Some(screen) => screen.draw(&view.snapshot, &view.console.selection),
        None => {
            eprintln!("{}", status_view::plain_line(&view.snapshot));
            Ok(())
        }
    };
    if let Err(e) = drawn {
        *screen = None;
        eprintln!("tapestry: status view stopped ({e}); plain lines follow");
    }
}

/// Closes in order: the room, the output (the engine stops, so the recording ends with the
/// last block it made and is finished before anything else can go wrong), the MIDI and OSC
/// inputs; then the allocation counts and the learned MIDI lines.
fn close(
    args: &PlayArgs,
    show: Show,
    inputs: Inputs,
    mut devices: Devices,
    ended: Ended,
) -> Result<()> {
    let Ended {
        gave_up,
        audio_was_lost,
        started,
        mut view,
    } = ended;
    let room_allocations = devices
        .room
        .as_ref()
        .map(|r| r.status.callback_allocations.load(Ordering::Relaxed));
    if let Some(room) = devices.room {
        closed_within("the room input", move || drop(room));
    }
    let audio_allocations = devices.audio.figures().allocations;
    devices.audio.close();
    let end = show
        .controller
        .status()
        .sample_position
        .load(Ordering::Relaxed);
    if let Some(rec) = show.recording {
        finish_recording(rec, end)?;
    }
    let learned = match inputs.midi {
        // libjack crashes (SIGSEGV in jack_port_unregister) when midir closes a port whose
        // JACK server went away, so after a lost device the MIDI ports are left open for the
        // process's exit to reclaim
        Some(midi) if audio_was_lost && cfg!(feature = "jack") => midi.abandon(),
        Some(midi) => {
            let allocations = midi.stats().callback_allocations.load(Ordering::Relaxed);
            view.snapshot.allocations.get_or_insert_default().midi = allocations;
            closed_within("the MIDI inputs", move || midi.stop()).flatten()
        }
        None => None,
    };
    #[cfg(feature = "web")]
    if let Some(web) = inputs.web {
        web.stop();
    }
    if let Some(osc) = inputs.osc {
        osc.stop();
    }
    eprintln!("stopped after {:.1} s", started.elapsed().as_secs_f64());
    if tapestry::io::ALLOCATIONS_CHECKED {
        let mut counted = view.snapshot.allocations.unwrap_or_default();
        counted.audio = audio_allocations;
        counted.room = room_allocations.unwrap_or(0);
        eprintln!("{}", counted.line());
    }
    if let Some(lines) = learned {
        eprintln!(
            "MIDI learn: paste these lines at the end of the patch (they merge with its [midi]):"
        );
        print!("{lines}");
    }
    match gave_up {
        Some(reason) => Err(anyhow!(
            "the audio output went away and did not come back within {} s ({reason}); the show stopped at {:.2} s of its timeline",
            args.reconnect_timeout,
            end as f64 / show.sample_rate as f64
        )),
        None => Ok(()),
    }
}

/// Finishes the recording at the engine's last sample and says what it holds.
fn finish_recording(rec: RecorderThread, end: u64) -> Result<()> {
    let path = rec.path().to_path_buf();
    let summary = rec
        .finish_summary(end)
        .with_context(|| format!("finishing {}", path.display()))?;
    eprintln!(
        "recorded {} events to {} ({} changes overwritten within a control tick left out{})",
        summary.events,
        path.display(),
        summary.coalesced,
        if summary.unrecorded > 0 {
            format!(
                "; {} events NOT recorded: the recording was full",
                summary.unrecorded
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Sends the performance's events due before `now` plus half a second, stamped with their
/// sample; stops early when the engine's queue is full (the rest go next time).
fn send_due(
    perf: &Performance,
    next_event: &mut usize,
    now: u64,
    sample_rate: u32,
    controller: &Controller,
) {
    let horizon = now + sample_rate as u64 / 2;
    while let Some(c) = perf.commands.get(*next_event) {
        if c.sample >= horizon {
            break;
        }
        let message = Message {
            at: Timing::At(c.sample),
            command: c.command,
        };
        if controller.send(message).is_err() {
            break;
        }
        *next_event += 1;
    }
}

/// How often the plain status line is printed.
const PLAIN_STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the full-screen view is redrawn.
const SCREEN_REFRESH: Duration = Duration::from_millis(200);
/// Events the view keeps.
const EVENTS_KEPT: usize = 100;

/// What the view shows, kept between refreshes.
struct ViewState {
    snapshot: Snapshot,
    /// The performer's keys: what is selected, the communal values they set.
    console: Console,
    participants: BTreeMap<u32, String>,
    held_peaks: [f32; 2],
    /// By section index: what would move the score on.
    next_by_section: Vec<Vec<String>>,
    /// When the figures were last read (the load peak decays by the time since).
    last_read: Option<Instant>,
}

impl ViewState {
    fn new(
        patch: &str,
        device: &str,
        dims: &[(String, f32, f32)],
        guide: &ScoreGuide,
    ) -> ViewState {
        ViewState {
            snapshot: Snapshot {
                patch: patch.to_string(),
                device: device.to_string(),
                key: guide.key.clone(),
                mood: dims
                    .iter()
                    .map(|(name, min, max)| MoodRow {
                        name: name.clone(),
                        value: 0.0,
                        min: *min,
                        max: *max,
                    })
                    .collect(),
                ..Snapshot::default()
            },
            console: Console::new(dims.len(), guide.next_by_section.len()),
            participants: BTreeMap::new(),
            held_peaks: [0.0; 2],
            next_by_section: guide.next_by_section.clone(),
            last_read: None,
        }
    }

    /// Follows who is present from the engine's notices; the event to show, if any.
    fn notice(&mut self, notice: Notice, names: &Names, sample_rate: u32) -> Option<Event> {
        let secs = |sample: u64| sample as f64 / sample_rate as f64;
        Some(match notice {
            Notice::Joined {
                participant,
                archetype,
                at_sample,
            } => {
                let name = names
                    .archetypes
                    .get(archetype as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("#{archetype}"));
                self.participants.insert(participant, name.clone());
                Event::Joined {
                    participant,
                    archetype: name,
                    at_secs: secs(at_sample),
                }
            }
            Notice::Left {
                participant,
                at_sample,
            } => {
                self.participants.remove(&participant);
                Event::Left {
                    participant,
                    at_secs: secs(at_sample),
                }
            }
            Notice::SectionChanged {
                section,
                bar,
                at_sample,
            } => Event::Section {
                name: names
                    .sections
                    .get(section as usize)
                    .cloned()
                    .unwrap_or_default(),
                bar: bar + 1,
                at_secs: secs(at_sample),
            },
            Notice::Refused {
                command,
                reason,
                at_sample,
            } => Event::Refused {
                what: command.describe(names),
                reason: reason.to_string(),
                at_secs: secs(at_sample),
            },
        })
    }

    /// Keeps an event for the view; as a line of its own in plain mode (refusals are counted
    /// by reason on the status line there: a flood of them must not flood the log).
    fn log(&mut self, event: Event, plain: bool) {
        if plain && !matches!(event, Event::Refused { .. }) {
            eprintln!("{}", event.line());
        }
        let events = &mut self.snapshot.events;
        if events.len() == EVENTS_KEPT {
            events.remove(0);
        }
        events.push(event);
    }

    /// Peak levels held between refreshes (the engine publishes the last block's only).
    fn hold_peaks(&mut self, status: &Status) {
        let (l, r) = status.peaks();
        self.held_peaks[0] = self.held_peaks[0].max(l);
        self.held_peaks[1] = self.held_peaks[1].max(r);
    }

    /// Reads the live figures into the snapshot.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        status: &Status,
        names: &Names,
        audio: &Audio,
        elapsed: Duration,
        reconnect_timeout: f64,
        midi: Option<&MidiInputs>,
        osc: Option<&OscServer>,
        room: Option<&RoomInput>,
    ) {
        self.hold_peaks(status);
        let s = &mut self.snapshot;
        let figures = audio.figures();
        let db = |x: f32| 20.0 * x.max(1e-9).log10();
        s.elapsed_secs = elapsed.as_secs_f64();
        s.audio = match audio.lost_for() {
            Some((for_, reason)) => AudioState::Lost {
                reason: reason.to_string(),
                for_secs: for_.as_secs_f64(),
                timeout_secs: reconnect_timeout,
            },
            None => AudioState::Playing,
        };
        s.participants = self
            .participants
            .iter()
            .map(|(id, archetype)| Participant {
                id: *id,
                archetype: archetype.clone(),
            })
            .collect();
        s.present = status.participants.load(Ordering::Relaxed);
        for (i, m) in s.mood.iter_mut().enumerate() {
            m.value = status.mood(i);
        }
        s.section = names
            .sections
            .get(status.section.load(Ordering::Relaxed) as usize)
            .cloned()
            .unwrap_or_default();
        s.bar = status.bar.load(Ordering::Relaxed) + 1;
        s.beat_in_bar = Status::load_f32(&status.beat_in_bar);
        s.tempo_bpm = Status::load_f32(&status.tempo_bpm);
        s.chord = status.chord().symbol();
        let section = status.section.load(Ordering::Relaxed) as usize;
        s.section_index = section;
        s.next_sections = self
            .next_by_section
            .get(section)
            .cloned()
            .unwrap_or_default();
        if audio.lost_for().is_some() {
            // nothing plays meanwhile, whatever the engine's last block was
            self.held_peaks = [0.0; 2];
        }
        s.peak_dbfs = [db(self.held_peaks[0]), db(self.held_peaks[1])];
        self.held_peaks = [0.0; 2];
        s.momentary_lufs = Status::load_f32(&status.momentary_lufs);
        s.load_percent = figures.load_percent;
        let since = self.last_read.map_or(0.0, |t| t.elapsed().as_secs_f32());
        self.last_read = Some(Instant::now());
        s.held_load_percent = decay_peak(s.held_load_percent, figures.load_percent, since);
        s.peak_load_percent = figures.peak_load_percent;
        s.p99_load_percent = figures.loads.percentile(0.99);
        s.xruns = figures.xruns;
        s.stream_errors = figures.stream_errors;
        s.dropped_messages = status.dropped_messages.load(Ordering::Relaxed);
        s.refused_messages = status.refused_messages.load(Ordering::Relaxed);
        s.refusals = status.refusals().map(|(_, n)| n);
        s.dropped_notices = status.dropped_notices.load(Ordering::Relaxed);
        s.midi = midi.map(|m| {
            let m = m.stats().snapshot();
            MidiCounters {
                ports: m.ports,
                received: m.messages,
                routed: m.routed,
                dropped: m.dropped,
                malformed: m.malformed,
                lost: m.lost(),
                unmapped_notes: m.unmapped_notes,
                unmapped_controllers: m.unmapped_controllers,
                unmapped_bends: m.unmapped_bends,
                unmapped_other: m.unmapped_other,
                sysex: m.sysex,
                unsupported: m.unsupported,
                absorbed: m.absorbed,
            }
        });
        if let Some(room) = room {
            s.room = room_rows(room);
        }
        if tapestry::io::ALLOCATIONS_CHECKED {
            s.allocations = Some(Allocations {
                audio: figures.allocations,
                midi: midi.map_or(0, |m| {
                    m.stats().callback_allocations.load(Ordering::Relaxed)
                }),
                room: room.map_or(0, |r| r.status.callback_allocations.load(Ordering::Relaxed)),
            });
        }
        s.osc = osc.map(|o| {
            let o = o.stats().snapshot();
            OscCounters {
                received: o.packets,
                accepted: o.accepted,
                malformed: o.malformed,
                dropped: o.dropped(),
                kernel_drops: o.kernel_drops,
                drops: o.by_kind().map(|(_, n)| n),
            }
        });
    }
}

/// The room panel: each shown feature with its unit and a bar over its usual range.
fn room_rows(room: &RoomInput) -> Vec<RoomRow> {
    let log_bar = |v: f32, lo: f32, hi: f32| (v.max(lo) / lo).ln() / (hi / lo).ln();
    let mut rows: Vec<RoomRow> = room
        .status
        .features()
        .iter()
        .map(|&(feature, v)| {
            let (value, bar) = match feature {
                Feature::Loudness | Feature::MomentaryLoudness => {
                    (format!("{v:.1} LUFS"), Some((v + 70.0) / 70.0))
                }
                Feature::OnsetRate => (format!("{v:.1}/s"), Some(v / 8.0)),
                Feature::Centroid => (format!("{v:.0} Hz"), Some(log_bar(v, 100.0, 8000.0))),
                Feature::Pitch => (format!("{v:.1} Hz"), None),
                Feature::Tempo => (format!("{v:.1} BPM"), None),
                _ => (format!("{v:.2}"), Some(v)),
            };
            RoomRow {
                label: feature.name().to_string(),
                value,
                bar,
            }
        })
        .collect();
    if room.input_gain_db != 0.0 {
        rows.push(RoomRow {
            label: "input gain".into(),
            value: format!("{:+.1} dB", room.input_gain_db),
            bar: None,
        });
    }
    let s = &room.status;
    let overruns = s.overruns.load(Ordering::Relaxed);
    let dropped = s.dropped_messages.load(Ordering::Relaxed);
    if overruns + dropped > 0 {
        rows.push(RoomRow {
            label: "lost".into(),
            value: format!("{overruns} samples, {dropped} updates"),
            bar: None,
        });
    }
    rows
}

/// [`close_within`], saying so when `what` did not close in time.
fn closed_within<T: Send + 'static>(
    what: &str,
    close: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let closed = close_within(close);
    if closed.is_none() {
        eprintln!(
            "tapestry: {what} did not close within {} s; left to the exit",
            CLOSE_TIMEOUT.as_secs()
        );
    }
    closed
}

/// MIDI's counters for the OSC status reply, as the console shows them.
fn midi_status_counters(m: &MidiCounts) -> Vec<(String, u64)> {
    [
        ("received", m.messages),
        ("routed", m.routed),
        ("dropped", m.dropped),
        ("malformed", m.malformed),
        ("lost", m.lost()),
        ("unmapped_notes", m.unmapped_notes),
        ("unmapped_controllers", m.unmapped_controllers),
        ("unmapped_bends", m.unmapped_bends),
        ("unmapped_other", m.unmapped_other),
        ("sysex", m.sysex),
        ("unsupported", m.unsupported),
        ("absorbed", m.absorbed),
    ]
    .into_iter()
    .map(|(key, n)| (format!("midi:{key}"), n))
    .collect()
}
