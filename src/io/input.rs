//! The room's live audio input: a cpal input stream, separate from the output, whose callback
//! only copies samples into a lock-free single-producer ring ([`rtrb`]); an analysis thread
//! drains the ring, runs the [`Analyzer`](crate::analysis::Analyzer) and the patch's room mappings, and sends the room's
//! mood to the engine through its [`Controller`] like any other input.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, Device, FromSample, InputCallbackInfo, Sample, SampleFormat, SizedSample, Stream,
};

use super::{count_allocations, device_label, host_by_name, LiveError};
use crate::analysis::{Feature, FeatureFrame};
use crate::control::{Controller, Message, Timing};
use crate::patch::Patch;
use crate::room::RoomListener;

/// Seconds of input the ring holds before the callback drops samples.
const RING_SECS: f32 = 1.0;

/// Features shown in the status view, in this order.
pub const SHOWN_FEATURES: [Feature; 7] = [
    Feature::MomentaryLoudness,
    Feature::OnsetRate,
    Feature::Centroid,
    Feature::Flatness,
    Feature::Pitch,
    Feature::Tempo,
    Feature::PulseSteadiness,
];

/// What to open for the room.
#[derive(Clone, Debug, Default)]
pub struct InputOptions {
    /// Host name; default host when `None`.
    pub host: Option<String>,
    /// An input device (id or part of its name), or on JACK one or more source ports
    /// (`client:port`, comma-separated) to connect to Tapestry's input ports.
    pub device: Option<String>,
    /// Buffer size in frames; the device's default when `None`.
    pub buffer_frames: Option<u32>,
}

/// Live figures of the room input, lock-free.
#[derive(Debug, Default)]
pub struct RoomStatus {
    /// Frames the callback received.
    pub frames_in: AtomicU64,
    /// Samples dropped because the analysis fell more than the ring behind.
    pub overruns: AtomicU64,
    /// Feature frames analysed.
    pub frames_analysed: AtomicU64,
    /// Room commands the engine's queue refused (full).
    pub dropped_messages: AtomicU64,
    /// Stream errors reported by the input device.
    pub stream_errors: AtomicU64,
    /// Allocations inside the input callback (counted in `alloc-check` builds).
    pub callback_allocations: AtomicU64,
    /// The latest value of each of [`SHOWN_FEATURES`], as f32 bits.
    pub features: [AtomicU32; SHOWN_FEATURES.len()],
}

impl RoomStatus {
    /// The latest value of each shown feature.
    pub fn features(&self) -> [(Feature, f32); SHOWN_FEATURES.len()] {
        let mut out = [(Feature::Loudness, 0.0); SHOWN_FEATURES.len()];
        for ((o, f), cell) in out.iter_mut().zip(SHOWN_FEATURES).zip(&self.features) {
            *o = (f, f32::from_bits(cell.load(Ordering::Relaxed)));
        }
        out
    }

    fn publish(&self, frame: &FeatureFrame) {
        for (f, cell) in SHOWN_FEATURES.iter().zip(&self.features) {
            cell.store(frame.get(*f).to_bits(), Ordering::Relaxed);
        }
        self.frames_analysed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running room input. Dropping it stops the stream and the analysis thread.
pub struct RoomInput {
    stream: Option<Stream>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Live figures.
    pub status: Arc<RoomStatus>,
    /// Device description (and connected ports on JACK).
    pub device: String,
    /// Input sample rate.
    pub sample_rate: u32,
    /// Input channels (mixed to mono for the analysis).
    pub channels: u16,
    /// Gain applied to the room's audio before the analysis, dB (the patch's
    /// `[analysis] input_gain_db` or its override).
    pub input_gain_db: f32,
}

impl Drop for RoomInput {
    fn drop(&mut self) {
        drop(self.stream.take());
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pick_input(host: &cpal::Host, wanted: Option<&str>) -> Result<Device, LiveError> {
    let on_host = host.id().name();
    match wanted {
        None => host
            .default_input_device()
            .ok_or_else(|| LiveError::NoDevice(format!(" for input on host {on_host}"))),
        Some(w) => host
            .input_devices()
            .map_err(|e| LiveError::Device(e.to_string()))?
            .find(|d| device_label(d).contains(w))
            .ok_or_else(|| {
                LiveError::NoDevice(format!(" for input matching \"{w}\" on host {on_host}"))
            }),
    }
}

/// JACK source ports named in `--input`, if it names ports rather than a device.
fn jack_sources(options: &InputOptions) -> Option<Vec<String>> {
    let on_jack = options
        .host
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case("jack"));
    let device = options.device.as_deref()?;
    (on_jack && device.contains(':')).then(|| {
        device
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// Opens the room input and starts analysing it into `controller`'s engine.
pub fn open_room_input(
    options: &InputOptions,
    patch: &Patch,
    controller: Controller,
) -> Result<RoomInput, LiveError> {
    let host = host_by_name(options.host.as_deref())?;
    let sources = jack_sources(options);
    let device = pick_input(
        &host,
        if sources.is_some() {
            None
        } else {
            options.device.as_deref()
        },
    )?;
    let default = device
        .default_input_config()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    let channels = match &sources {
        Some(s) => s.len().clamp(1, 32) as u16,
        None => default.channels().max(1),
    };
    let config = cpal::StreamConfig {
        channels,
        sample_rate: default.sample_rate(),
        buffer_size: options
            .buffer_frames
            .map_or(BufferSize::Default, BufferSize::Fixed),
    };
    let sample_rate = config.sample_rate;
    let capacity = (sample_rate as f32 * RING_SECS) as usize * channels as usize;
    let (producer, consumer) = rtrb::RingBuffer::<f32>::new(capacity);
    let status = Arc::new(RoomStatus::default());
    let stream = match default.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, &config, producer, status.clone()),
        SampleFormat::I16 => build::<i16>(&device, &config, producer, status.clone()),
        SampleFormat::I32 => build::<i32>(&device, &config, producer, status.clone()),
        SampleFormat::U16 => build::<u16>(&device, &config, producer, status.clone()),
        other => return Err(LiveError::Format(format!("{other:?}"))),
    }?;
    stream
        .play()
        .map_err(|e| LiveError::Device(e.to_string()))?;
    let mut label = device_label(&device);
    if let Some(sources) = &sources {
        label = connect_jack_sources(sources)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread = spawn_analysis(
        consumer,
        sample_rate,
        channels,
        patch,
        controller,
        status.clone(),
        stop.clone(),
    )
    .map_err(|e| LiveError::Device(format!("cannot start the analysis thread: {e}")))?;
    Ok(RoomInput {
        stream: Some(stream),
        stop,
        thread: Some(thread),
        status,
        device: label,
        sample_rate,
        channels,
        input_gain_db: patch.room().input_gain_db,
    })
}

fn build<T>(
    device: &Device,
    config: &cpal::StreamConfig,
    mut ring: rtrb::Producer<f32>,
    status: Arc<RoomStatus>,
) -> Result<Stream, LiveError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = config.channels as u64;
    let callback_status = status.clone();
    let data = move |input: &[T], _: &InputCallbackInfo| {
        let (dropped, allocations) = count_allocations(|| {
            let mut dropped = 0u64;
            for &s in input {
                if ring.push(f32::from_sample(s)).is_err() {
                    dropped += 1;
                }
            }
            dropped
        });
        let s = &callback_status;
        s.frames_in
            .fetch_add(input.len() as u64 / channels, Ordering::Relaxed);
        if dropped > 0 {
            s.overruns.fetch_add(dropped, Ordering::Relaxed);
        }
        if allocations > 0 {
            s.callback_allocations
                .fetch_add(allocations, Ordering::Relaxed);
        }
    };
    let error = move |_: cpal::Error| {
        status.stream_errors.fetch_add(1, Ordering::Relaxed);
    };
    device
        .build_input_stream(*config, data, error, None)
        .map_err(|e| LiveError::Device(e.to_string()))
}

fn spawn_analysis(
    mut ring: rtrb::Consumer<f32>,
    sample_rate: u32,
    channels: u16,
    patch: &Patch,
    controller: Controller,
    status: Arc<RoomStatus>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let mut listener = RoomListener::new(patch, sample_rate, channels);
    let mut buf = vec![0.0f32; ring.buffer().capacity()];
    std::thread::Builder::new()
        .name("tapestry-room-analysis".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // whole frames only, so channels stay aligned
                let available = ring.slots() / channels as usize * channels as usize;
                if available == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                let Ok(chunk) = ring.read_chunk(available) else {
                    continue;
                };
                let (a, b) = chunk.as_slices();
                let n = a.len() + b.len();
                buf[..a.len()].copy_from_slice(a);
                buf[a.len()..n].copy_from_slice(b);
                chunk.commit_all();
                listener.process(
                    &buf[..n],
                    |frame| status.publish(frame),
                    |_, command| {
                        let message = Message {
                            at: Timing::Immediate,
                            command,
                        };
                        if controller.send(message).is_err() {
                            status.dropped_messages.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                );
            }
        })
}

#[cfg(feature = "jack")]
fn connect_jack_sources(sources: &[String]) -> Result<String, LiveError> {
    let fail = |e: String| LiveError::Device(format!("JACK: {e}"));
    let (client, _) = jack::Client::new("tapestry_patchbay", jack::ClientOptions::NO_START_SERVER)
        .map_err(|e| fail(e.to_string()))?;
    // cpal names the input client "cpal_client_<pid>_in" (older versions "cpal_client_in")
    // and its ports in_0, in_1, ...
    let pid = std::process::id();
    let ours = [
        format!("^cpal_client_{pid}_in[^:]*:in_[0-9]+$"),
        "^cpal_client_in[^:]*:in_[0-9]+$".to_string(),
    ]
    .iter()
    .map(|pattern| client.ports(Some(pattern), None, jack::PortFlags::IS_INPUT))
    .find(|ports| !ports.is_empty())
    .unwrap_or_default();
    if ours.len() < sources.len() {
        return Err(fail(format!(
            "found {} Tapestry input ports for {} sources",
            ours.len(),
            sources.len()
        )));
    }
    let ours = &ours[ours.len() - sources.len()..];
    for port in ours {
        for capture in client.ports(Some("^system:capture_"), None, jack::PortFlags::empty()) {
            let _ = client.disconnect_ports_by_name(&capture, port);
        }
    }
    for (source, port) in sources.iter().zip(ours) {
        client
            .connect_ports_by_name(source, port)
            .map_err(|e| fail(format!("cannot connect {source} to {port}: {e}")))?;
    }
    Ok(format!("JACK {}", sources.join(", ")))
}

#[cfg(not(feature = "jack"))]
fn connect_jack_sources(_sources: &[String]) -> Result<String, LiveError> {
    Err(LiveError::Device(
        "naming JACK ports needs a build with `--features jack`".into(),
    ))
}
