//! Audio devices (cpal): listing hosts and devices, and playing an engine live. The only
//! module that touches cpal, whose API churns between versions. MIDI devices (midir) are in
//! [`midi`].
//!
//! The output callback is the audio thread: it publishes the block's start on the
//! [`SampleClock`] (so input threads can stamp events with the sample they apply at), calls
//! `Engine::process` on a buffer allocated before the stream starts, converts to the device's
//! sample format, and records its own load in atomics. It never allocates, locks, blocks,
//! logs or panics. Built with the `alloc-check` feature (and the `tapestry` binary's
//! detecting allocator), the callback body runs inside `assert_no_alloc` and the allocations
//! it made are counted in [`CallbackStats::allocations`].
//!
//! The engine sits in an [`AtomicRefCell`] the callback borrows with `try_borrow_mut` (one
//! atomic compare-and-swap, never a wait): the control side can take the engine back from a
//! stream whose device is gone and put it into a new stream, timeline intact. While the cell
//! is empty or held, the callback plays silence and leaves the clock alone.

pub mod input;
pub mod midi;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atomic_refcell::AtomicRefCell;
use crossbeam_channel::{Receiver, Sender};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, Device, FromSample, HostId, OutputCallbackInfo, SampleFormat, SizedSample, Stream,
    StreamConfig,
};

use crate::engine::Engine;
use crate::input::SampleClock;

/// Errors opening or running a live stream.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No such host on this machine/build.
    #[error("audio host \"{0}\" is not available here; available: {1}")]
    NoHost(String, String),
    /// No output device.
    #[error("no audio output device found{0}; list them with `tapestry devices`, pick one with --host/--device")]
    NoDevice(String),
    /// cpal refused.
    #[error("audio device error: {0}")]
    Device(String),
    /// The device only takes a sample format Tapestry does not convert to.
    #[error("the device wants sample format {0}, which Tapestry does not support")]
    Format(String),
    /// `--host JACK` and no JACK server to connect to.
    #[error("JACK server not running: start it (jackd, qjackctl or PipeWire's JACK) or pick another host with --host; `tapestry devices` lists them")]
    JackNotRunning,
    /// Another program holds the device.
    #[error("audio device {device} on host {host} is busy (another program, JACK or a sound server holds it){hint}; `tapestry devices` lists the hosts and devices")]
    Busy {
        /// The device.
        device: String,
        /// Its host.
        host: String,
        /// What to try instead.
        hint: &'static str,
    },
}

/// What to open.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// Host name (e.g. "ALSA", "JACK"); default host when `None`.
    pub host: Option<String>,
    /// Device id or a substring of its name; default device when `None`.
    pub device: Option<String>,
    /// Buffer size in frames; the device's default when `None`.
    pub buffer_frames: Option<u32>,
    /// Sample rate; the device's default when `None`.
    pub sample_rate: Option<u32>,
}

/// Live figures of the audio callback, written by it with relaxed atomics.
#[derive(Debug, Default)]
pub struct CallbackStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Load of the last callback, % of its deadline, as f32 bits.
    pub load_percent: AtomicU32,
    /// Highest load seen, % of the deadline, as f32 bits.
    pub peak_load_percent: AtomicU32,
    /// How many callbacks ran at each load.
    pub loads: LoadHistogram,
    /// Buffer under- or overruns the audio server reported.
    pub xruns: AtomicU64,
    /// Other stream errors reported by the device (disconnects, …).
    pub stream_errors: AtomicU64,
    /// Frames of the last callback.
    pub last_frames: AtomicU32,
    /// Allocations made inside the callback (counted only with the `alloc-check` feature and
    /// its allocator installed).
    pub allocations: AtomicU64,
}

impl CallbackStats {
    fn load(cell: &AtomicU32) -> f32 {
        f32::from_bits(cell.load(Ordering::Relaxed))
    }
    /// Load of the last callback in % of its deadline.
    pub fn load_percent(&self) -> f32 {
        Self::load(&self.load_percent)
    }
    /// Peak load in % of the deadline.
    pub fn peak_load_percent(&self) -> f32 {
        Self::load(&self.peak_load_percent)
    }
}

/// Callback loads counted in 1 % buckets from 0 to [`LoadHistogram::TOP_PERCENT`] (the last
/// bucket takes everything above), so a percentile of the load can be read at any time. The
/// peak alone says little on a shared machine: one preempted callback sets it for the show.
#[derive(Debug)]
pub struct LoadHistogram([AtomicU32; LoadHistogram::BUCKETS]);

impl Default for LoadHistogram {
    fn default() -> Self {
        LoadHistogram(std::array::from_fn(|_| AtomicU32::new(0)))
    }
}

impl LoadHistogram {
    /// Loads at and above this (% of the deadline) share the last bucket.
    pub const TOP_PERCENT: usize = 200;
    const BUCKETS: usize = Self::TOP_PERCENT + 1;

    /// Counts one callback at `load_percent` (a relaxed add: safe on the audio thread).
    pub fn count(&self, load_percent: f32) {
        let bucket = (load_percent.max(0.0) as usize).min(Self::TOP_PERCENT);
        self.0[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far, bucket by bucket.
    pub fn counts(&self) -> LoadCounts {
        LoadCounts(std::array::from_fn(|b| {
            u64::from(self.0[b].load(Ordering::Relaxed))
        }))
    }
}

/// Callback counts per 1 % load bucket, as read from a [`LoadHistogram`] (summable over
/// streams).
#[derive(Debug, Clone, Copy)]
pub struct LoadCounts([u64; LoadHistogram::BUCKETS]);

impl Default for LoadCounts {
    fn default() -> Self {
        LoadCounts([0; LoadHistogram::BUCKETS])
    }
}

impl LoadCounts {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &LoadCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The load (upper edge of its 1 % bucket) that `fraction` of the callbacks stayed at or
    /// under; 0 before any callback.
    pub fn percentile(&self, fraction: f64) -> f32 {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let wanted = (fraction.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return (bucket + 1) as f32;
            }
        }
        (LoadHistogram::TOP_PERCENT + 1) as f32
    }
}

/// Whether this build counts allocations in the live callbacks (`alloc-check` feature).
pub const ALLOCATIONS_CHECKED: bool = cfg!(feature = "alloc-check");

/// Runs `f` and returns the allocations it made on this thread: counted by
/// `assert_no_alloc` with the `alloc-check` feature (when the binary installs its allocator),
/// always 0 without it. The count is per thread, so this is called on the thread that runs `f`.
#[inline]
pub(crate) fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    #[cfg(feature = "alloc-check")]
    {
        let before = assert_no_alloc::violation_count();
        let result = assert_no_alloc::assert_no_alloc(f);
        let after = assert_no_alloc::violation_count();
        (result, after.wrapping_sub(before) as u64)
    }
    #[cfg(not(feature = "alloc-check"))]
    {
        (f(), 0)
    }
}

/// With `alloc-check`, the environment variable that makes every audio callback allocate on
/// purpose, to prove the detector catches it. Without the feature it does not exist.
#[cfg(feature = "alloc-check")]
pub const ALLOC_CHECK_SELFTEST_ENV: &str = "TAPESTRY_ALLOC_CHECK_SELFTEST";

fn host_by_name(name: Option<&str>) -> Result<cpal::Host, LiveError> {
    let Some(name) = name else {
        return Ok(cpal::default_host());
    };
    let available = cpal::available_hosts();
    let list = available
        .iter()
        .map(|h| h.name())
        .collect::<Vec<_>>()
        .join(", ");
    let id: Option<HostId> = available
        .iter()
        .copied()
        .find(|h| h.name().eq_ignore_ascii_case(name));
    let id = id.ok_or_else(|| LiveError::NoHost(name.to_string(), list))?;
    cpal::host_from_id(id).map_err(|e| LiveError::Device(e.to_string()))
}

fn device_label(device: &Device) -> String {
    let id = device
        .id()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| "?".into());
    match device.description() {
        Ok(d) => format!("{id} ({d})"),
        Err(_) => id,
    }
}

/// A human-readable list of audio hosts and their output and input devices.
pub fn list_devices() -> String {
    let mut out = String::new();
    for id in cpal::available_hosts() {
        out += &format!("host {}\n", id.name());
        let Ok(host) = cpal::host_from_id(id) else {
            out += "  (not running)\n";
            continue;
        };
        let default = host.default_output_device().map(|d| device_label(&d));
        let devices = host.output_devices().map(|d| only(d, id, "output"));
        describe(&mut out, "output", devices, default, |d| {
            d.default_output_config()
        });
        // inputs are what `play --input` listens to the room on
        let default = host.default_input_device().map(|d| device_label(&d));
        let devices = host.input_devices().map(|d| only(d, id, "input"));
        describe(&mut out, "input", devices, default, |d| {
            d.default_input_config()
        });
    }
    out
}

/// The devices of one direction. cpal's JACK host lists both of its devices ("jack:input"
/// and "jack:output") as outputs and as inputs: only the one of that direction is kept.
fn only(devices: impl Iterator<Item = Device>, host: HostId, direction: &str) -> Vec<Device> {
    let jack = Some(host) == jack_host_id();
    devices
        .filter(|d| !jack || device_label(d).starts_with(&format!("jack:{direction}")))
        .collect()
}

/// Lists one direction's devices of a host, marking the default.
fn describe<E: std::fmt::Display, C: std::fmt::Display>(
    out: &mut String,
    kind: &str,
    devices: Result<Vec<Device>, E>,
    default: Option<String>,
    config: impl Fn(&Device) -> Result<cpal::SupportedStreamConfig, C>,
) {
    let devices = match devices {
        Ok(d) => d,
        Err(e) => {
            *out += &format!("  cannot list {kind} devices: {e}\n");
            return;
        }
    };
    if devices.is_empty() {
        *out += &format!("  no {kind} devices\n");
    }
    for d in devices {
        let label = device_label(&d);
        let mark = if default.as_deref() == Some(label.as_str()) {
            " (default)"
        } else {
            ""
        };
        let config = config(&d)
            .map(|c| {
                format!(
                    "{} ch, {} Hz, {:?}",
                    c.channels(),
                    c.sample_rate(),
                    c.sample_format()
                )
            })
            .unwrap_or_else(|e| format!("no default config: {e}"));
        *out += &format!("  {kind} {label}{mark}: {config}\n");
    }
}

/// The output device `options` ask for. cpal's JACK host makes its one output device when it
/// is created, if a server answers: without one, the server is not running.
///
/// cpal 0.18 names that device's JACK client `cpal_client_<pid>_out` and offers no way to
/// name it (`JackHost::output_device_with_name` returns the device made at creation, under
/// the old name; RustAudio/cpal#1235 defers naming to host-specific extensions in 0.19). A
/// stable client name needs our own JACK output on the `jack` crate.
fn pick_device(host: &cpal::Host, options: &OutputOptions) -> Result<Device, LiveError> {
    if Some(host.id()) == jack_host_id() && options.device.is_none() {
        return host
            .default_output_device()
            .ok_or(LiveError::JackNotRunning);
    }
    match options.device.as_deref() {
        None => host
            .default_output_device()
            .ok_or_else(|| LiveError::NoDevice(format!(" on host {}", host.id().name()))),
        Some(w) => {
            let devices = host
                .output_devices()
                .map_err(|e| LiveError::Device(e.to_string()))?;
            devices
                .into_iter()
                .find(|d| device_label(d).contains(w))
                .ok_or_else(|| {
                    LiveError::NoDevice(format!(" matching \"{w}\" on host {}", host.id().name()))
                })
        }
    }
}

/// Where the callback finds the engine; empty while the control side holds it.
type EngineCell = Arc<AtomicRefCell<Option<Engine>>>;

/// How long the control side waits for the callback to let go of the engine.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long closing a stream or port may take before it is left to finish on its own thread:
/// a stream on a vanished device may never answer, and libjack can deadlock when a client
/// closes (jackaudio/jack2#395).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `close` on a thread of its own and waits for it at most [`CLOSE_TIMEOUT`]; `None`
/// when it did not finish in time (it is then left to the process's exit).
pub fn close_within<T: Send + 'static>(close: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("tapestry-close".into())
        .spawn(move || {
            let _ = done_tx.send(close());
        })
        .ok()?;
    done_rx.recv_timeout(CLOSE_TIMEOUT).ok()
}

/// A running output stream. Dropping it stops the sound.
pub struct LiveOutput {
    stream: Option<Stream>,
    engine: EngineCell,
    errors: Receiver<cpal::Error>,
    failure: Option<String>,
    /// The callback's figures.
    pub stats: Arc<CallbackStats>,
    /// Sample rate of the stream.
    pub sample_rate: u32,
    /// Device description.
    pub device: String,
    /// What was adapted to the device (a buffer size it does not take), to tell the user.
    pub note: Option<String>,
}

impl LiveOutput {
    /// Why the stream stopped playing for good (device gone, server stopped, stream
    /// invalidated), once the device said so. Xruns and passing errors do not count.
    pub fn failure(&mut self) -> Option<&str> {
        while let Ok(e) = self.errors.try_recv() {
            if self.failure.is_none() && is_fatal(e.kind()) {
                self.failure = Some(e.to_string());
            }
        }
        self.failure.as_deref()
    }

    /// Puts `engine` into the stream: from the next callback on it plays, its timeline going
    /// on where it stopped. Gives the engine back if the callback did not let go in time.
    pub fn install(&self, engine: Engine) -> Result<(), Box<Engine>> {
        let started = Instant::now();
        loop {
            if let Ok(mut cell) = self.engine.try_borrow_mut() {
                *cell = Some(engine);
                return Ok(());
            }
            if started.elapsed() > HANDOVER_TIMEOUT {
                return Err(Box::new(engine));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Takes the engine out of the stream (which plays silence from then on); `None` if it
    /// holds none or its callback is stuck inside it.
    pub fn take_engine(&self) -> Option<Engine> {
        let started = Instant::now();
        loop {
            if let Ok(mut cell) = self.engine.try_borrow_mut() {
                return cell.take();
            }
            if started.elapsed() > HANDOVER_TIMEOUT {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Takes the engine out, then closes the stream without waiting more than a moment for
    /// a device that does not answer.
    pub fn close(mut self) -> Option<Engine> {
        let engine = self.take_engine();
        if let Some(stream) = self.stream.take() {
            close_within(move || drop(stream));
        }
        engine
    }
}

/// Errors after which a stream plays no more.
fn is_fatal(kind: cpal::ErrorKind) -> bool {
    matches!(
        kind,
        cpal::ErrorKind::DeviceNotAvailable
            | cpal::ErrorKind::HostUnavailable
            | cpal::ErrorKind::StreamInvalidated
    )
}

/// The sample rate the device will run at for these options (to build the engine for it).
pub fn output_sample_rate(options: &OutputOptions) -> Result<u32, LiveError> {
    let host = host_by_name(options.host.as_deref())?;
    let device = pick_device(&host, options)?;
    let config = device
        .default_output_config()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    Ok(options.sample_rate.unwrap_or(config.sample_rate()))
}

/// Opens the output and starts playing `engine` on it. With a `clock`, every callback
/// publishes the engine's sample position and the callback's start on it before processing,
/// and sets its safety offset to the callback's length.
pub fn play(
    engine: Engine,
    options: &OutputOptions,
    clock: Option<Arc<SampleClock>>,
) -> Result<LiveOutput, LiveError> {
    let output = open(options, clock)?;
    output
        .install(engine)
        .map_err(|_| LiveError::Device("the new stream did not take the engine".into()))?;
    Ok(output)
}

/// Opens the output with no engine yet: it plays silence until [`LiveOutput::install`]. Used
/// to reopen a device that went away, with the same options.
pub fn open(
    options: &OutputOptions,
    clock: Option<Arc<SampleClock>>,
) -> Result<LiveOutput, LiveError> {
    let host = host_by_name(options.host.as_deref())?;
    let device = pick_device(&host, options)?;
    let default = device
        .default_output_config()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    let (buffer_size, note) = fit_buffer(options.buffer_frames, default.buffer_size());
    let config = StreamConfig {
        channels: default.channels().max(1),
        sample_rate: options.sample_rate.unwrap_or(default.sample_rate()),
        buffer_size,
    };
    let stats = Arc::new(CallbackStats::default());
    let engine: EngineCell = Arc::new(AtomicRefCell::new(None));
    let (error_tx, errors) = crossbeam_channel::bounded(16);
    let s = stats.clone();
    let e = engine.clone();
    let stream = match default.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, config, e, s, clock, error_tx),
        SampleFormat::I16 => build::<i16>(&device, config, e, s, clock, error_tx),
        SampleFormat::I32 => build::<i32>(&device, config, e, s, clock, error_tx),
        SampleFormat::U16 => build::<u16>(&device, config, e, s, clock, error_tx),
        other => return Err(LiveError::Format(format!("{other:?}"))),
    }
    .map_err(|e| explain(e, &device, &host))?;
    stream
        .play()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    Ok(LiveOutput {
        stream: Some(stream),
        engine,
        errors,
        failure: None,
        stats,
        sample_rate: config.sample_rate,
        device: device_label(&device),
        note,
    })
}

/// The buffer size to ask for: `asked` when the device takes it, else the nearest size it
/// takes (a JACK server runs at one size only), with a note that says so.
fn fit_buffer(
    asked: Option<u32>,
    supported: &cpal::SupportedBufferSize,
) -> (BufferSize, Option<String>) {
    let Some(asked) = asked else {
        return (BufferSize::Default, None);
    };
    match *supported {
        cpal::SupportedBufferSize::Range { min, max } if !(min..=max).contains(&asked) => {
            let fitted = asked.clamp(min, max);
            let takes = if min == max {
                format!("runs at {min} frames")
            } else {
                format!("takes {min} to {max} frames")
            };
            let note = format!(
                "--buffer {asked}: the audio server {takes}; playing with {fitted}-frame buffers"
            );
            (BufferSize::Fixed(fitted), Some(note))
        }
        _ => (BufferSize::Fixed(asked), None),
    }
}

/// A stream that would not open, said plainly: a busy device names what to try instead.
fn explain(e: cpal::Error, device: &Device, host: &cpal::Host) -> LiveError {
    match e.kind() {
        cpal::ErrorKind::DeviceBusy | cpal::ErrorKind::DeviceNotAvailable
            if Some(host.id()) != jack_host_id() =>
        {
            LiveError::Busy {
                device: device_label(device),
                host: host.id().name().to_string(),
                hint: if cfg!(feature = "jack") {
                    "; if JACK runs, play through it with --host JACK"
                } else {
                    "; if JACK runs, build with --features jack and play with --host JACK"
                },
            }
        }
        _ => LiveError::Device(e.to_string()),
    }
}

/// JACK's host id.
#[cfg(feature = "jack")]
fn jack_host_id() -> Option<HostId> {
    Some(HostId::Jack)
}

/// No JACK host in a build without JACK.
#[cfg(not(feature = "jack"))]
fn jack_host_id() -> Option<HostId> {
    None
}

/// Largest block handed to the engine at once; longer callbacks are processed in pieces.
const CHUNK_FRAMES: usize = 1024;

fn build<T>(
    device: &Device,
    config: StreamConfig,
    slot: EngineCell,
    stats: Arc<CallbackStats>,
    clock: Option<Arc<SampleClock>>,
    errors: Sender<cpal::Error>,
) -> Result<Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = config.channels as usize;
    let sample_rate = config.sample_rate as f64;
    let mut stereo = vec![0.0f32; 2 * CHUNK_FRAMES];
    let callback_stats = stats.clone();
    #[cfg(feature = "alloc-check")]
    let allocate_on_purpose = std::env::var_os(ALLOC_CHECK_SELFTEST_ENV).is_some();
    let mut data = move |out: &mut [T]| {
        #[cfg(feature = "alloc-check")]
        if allocate_on_purpose {
            std::hint::black_box(Vec::<u8>::with_capacity(64));
        }
        let started = Instant::now();
        let frames = out.len() / channels;
        let mut cell = slot.try_borrow_mut();
        let Some(engine) = cell.as_mut().ok().and_then(|e| e.as_mut()) else {
            out.fill(T::EQUILIBRIUM);
            return;
        };
        if let Some(clock) = &clock {
            clock.publish(engine.sample_position(), started);
            if clock.latency_frames() != frames as u64 {
                clock.set_latency_frames(frames as u64);
            }
        }
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(CHUNK_FRAMES);
            let block = &mut stereo[..2 * n];
            engine.process(block);
            let dest = &mut out[done * channels..(done + n) * channels];
            for (frame, lr) in dest.chunks_exact_mut(channels).zip(block.chunks_exact(2)) {
                if channels == 1 {
                    frame[0] = T::from_sample(0.5 * (lr[0] + lr[1]));
                    continue;
                }
                for (c, sample) in frame.iter_mut().enumerate() {
                    *sample = T::from_sample(if c < 2 { lr[c] } else { 0.0 });
                }
            }
            done += n;
        }
        let s = &callback_stats;
        let deadline = frames as f64 / sample_rate;
        let load = (started.elapsed().as_secs_f64() / deadline.max(1e-9) * 100.0) as f32;
        s.callbacks.fetch_add(1, Ordering::Relaxed);
        s.last_frames.store(frames as u32, Ordering::Relaxed);
        s.load_percent.store(load.to_bits(), Ordering::Relaxed);
        s.loads.count(load);
        if load > CallbackStats::load(&s.peak_load_percent) {
            s.peak_load_percent.store(load.to_bits(), Ordering::Relaxed);
        }
    };
    let allocation_stats = stats.clone();
    let data = move |out: &mut [T], _: &OutputCallbackInfo| {
        let ((), allocations) = count_allocations(|| data(out));
        if allocations > 0 {
            allocation_stats
                .allocations
                .fetch_add(allocations, Ordering::Relaxed);
        }
    };
    let error_stats = stats;
    // counts, and hands the error (allocated by cpal) to the control side without waiting
    let error = move |e: cpal::Error| {
        let counter = match e.kind() {
            cpal::ErrorKind::Xrun => &error_stats.xruns,
            _ => &error_stats.stream_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if e.kind() != cpal::ErrorKind::Xrun {
            let _ = errors.try_send(e);
        }
    };
    device.build_output_stream(config, data, error, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_the_device_does_not_take_is_fitted_and_said() {
        let jack = cpal::SupportedBufferSize::Range { min: 256, max: 256 };
        let (size, note) = fit_buffer(Some(128), &jack);
        assert_eq!(size, BufferSize::Fixed(256));
        assert_eq!(
            note.as_deref(),
            Some(
                "--buffer 128: the audio server runs at 256 frames; playing with 256-frame buffers"
            )
        );
        let alsa = cpal::SupportedBufferSize::Range { min: 32, max: 8192 };
        assert_eq!(fit_buffer(Some(128), &alsa), (BufferSize::Fixed(128), None));
        assert_eq!(fit_buffer(Some(16), &alsa).0, BufferSize::Fixed(32));
        assert_eq!(fit_buffer(None, &jack), (BufferSize::Default, None));
        let unknown = cpal::SupportedBufferSize::Unknown;
        assert_eq!(
            fit_buffer(Some(64), &unknown),
            (BufferSize::Fixed(64), None)
        );
    }

    #[test]
    fn a_busy_device_suggests_jack_and_the_device_list() {
        let e = LiveError::Busy {
            device: "alsa:default".into(),
            host: "ALSA".into(),
            hint: "; if JACK runs, play through it with --host JACK",
        };
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("busy") && line.contains("--host JACK"),
            "{line}"
        );
        assert!(line.contains("tapestry devices"), "{line}");
    }

    #[test]
    fn close_within_returns_what_closing_gave() {
        assert_eq!(close_within(|| 7), Some(7));
    }

    #[test]
    fn close_within_gives_up_on_a_close_that_never_returns() {
        let (_keep, never) = crossbeam_channel::bounded::<()>(1);
        let started = Instant::now();
        assert_eq!(close_within(move || never.recv().ok()), None);
        let waited = started.elapsed();
        assert!(
            waited >= CLOSE_TIMEOUT && waited < CLOSE_TIMEOUT * 3,
            "{waited:?}"
        );
    }

    #[test]
    fn the_load_percentile_ignores_the_rare_preempted_callback() {
        let loads = LoadHistogram::default();
        assert_eq!(loads.counts().percentile(0.99), 0.0);
        for n in 0..1000 {
            loads.count(5.0 + (n % 10) as f32); // 5 % to 14.x %
        }
        for outlier in [90.0, 250.0, f32::NAN] {
            loads.count(outlier);
        }
        let mut counts = loads.counts();
        assert_eq!(
            counts.percentile(0.5),
            11.0,
            "the upper edge of the 10 % bucket"
        );
        assert_eq!(counts.percentile(0.99), 15.0);
        assert_eq!(
            counts.percentile(1.0),
            201.0,
            "above the top shares the last bucket"
        );
        counts.add(&loads.counts());
        assert_eq!(counts.percentile(0.99), 15.0, "summed streams");
    }
}
