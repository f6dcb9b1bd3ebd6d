//! Keeps the show on the air: notices when the audio output goes away (the device says so,
//! or its callbacks stop coming), takes the engine back, and reopens the same host and device
//! with the same settings until it is back or the reconnect timeout has passed.
//!
//! While the device is away the engine does not run: the show's clock (the engine's sample
//! timeline) stops and goes on where it stopped when the device is back. The recording only
//! ever sees engine samples, so it re-renders to exactly what was played, the gap left out.
//! The [`SampleClock`] is held at the stopped position meanwhile, so input that arrives during
//! the gap is applied as soon as the sound is back, not a gap's length later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use tapestry::input::SampleClock;
use tapestry::io::{open, LiveOutput, OutputOptions};
use tapestry::Engine;

/// How often a lost device is tried again.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Callback periods without a callback that count as a stalled stream…
const STALL_PERIODS: f64 = 64.0;
/// …but never less than this…
const STALL_MIN: Duration = Duration::from_secs(1);
/// …and before the first callback, this.
const FIRST_CALLBACK_WAIT: Duration = Duration::from_secs(5);
/// A longer pause between two looks means the watcher was held up, not the stream.
const LOOK_GAP: Duration = Duration::from_millis(250);

/// What changed at a [`Audio::tick`].
pub enum Change {
    /// The output went away; the timeline stopped at `at_sample`.
    Lost { reason: String, at_sample: u64 },
    /// The output is back after `after`.
    Back { device: String, after: Duration },
    /// It did not come back in time: stop.
    GaveUp { reason: String },
}

/// Audio figures summed over every stream opened so far.
#[derive(Clone, Copy, Default)]
pub struct AudioFigures {
    pub load_percent: f32,
    pub peak_load_percent: f32,
    pub loads: tapestry::io::LoadCounts,
    pub xruns: u64,
    pub stream_errors: u64,
    pub allocations: u64,
}

enum State {
    Playing(LiveOutput),
    Lost {
        engine: Box<Engine>,
        since: Instant,
        reason: String,
        last_attempt: Option<String>,
        attempts: Receiver<Attempt>,
        cancel: Arc<AtomicBool>,
    },
    Closed,
}

enum Attempt {
    Failed(String),
    Opened(LiveOutput),
}

/// The audio output of a show, reopened when it goes away.
pub struct Audio {
    state: State,
    options: OutputOptions,
    clock: Arc<SampleClock>,
    sample_rate: u32,
    timeout: Duration,
    earlier: AudioFigures,
    last_callbacks: u64,
    last_progress: Instant,
    last_look: Instant,
}

impl Audio {
    /// Watches `output`, which plays an engine at `sample_rate`; a lost device is tried
    /// again for `timeout`.
    pub fn new(
        output: LiveOutput,
        options: &OutputOptions,
        clock: Arc<SampleClock>,
        timeout: Duration,
    ) -> Audio {
        let sample_rate = output.sample_rate;
        // a device that comes back must run at the engine's rate
        let options = OutputOptions {
            sample_rate: Some(sample_rate),
            ..options.clone()
        };
        Audio {
            state: State::Playing(output),
            options,
            clock,
            sample_rate,
            timeout,
            earlier: AudioFigures::default(),
            last_callbacks: 0,
            last_progress: Instant::now(),
            last_look: Instant::now(),
        }
    }

    /// How long the output has been away, and why; `None` while it plays.
    pub fn lost_for(&self) -> Option<(Duration, &str)> {
        match &self.state {
            State::Lost { since, reason, .. } => Some((since.elapsed(), reason)),
            _ => None,
        }
    }

    /// Audio figures of the current stream added to those of earlier ones.
    pub fn figures(&self) -> AudioFigures {
        let mut f = self.earlier;
        if let State::Playing(output) = &self.state {
            let s = &output.stats;
            f.load_percent = s.load_percent();
            f.peak_load_percent = f.peak_load_percent.max(s.peak_load_percent());
            f.loads.add(&s.loads.counts());
            f.xruns += s.xruns.load(Ordering::Relaxed);
            f.stream_errors += s.stream_errors.load(Ordering::Relaxed);
            f.allocations += s.allocations.load(Ordering::Relaxed);
        } else {
            f.load_percent = 0.0;
        }
        f
    }

    /// Looks at the output; call it often (every few milliseconds) from the control loop.
    pub fn tick(&mut self) -> Option<Change> {
        match &mut self.state {
            State::Playing(output) => {
                let reason = match output.failure() {
                    Some(r) => r.to_string(),
                    None => self.stalled()?,
                };
                self.earlier = self.figures();
                let State::Playing(output) = std::mem::replace(&mut self.state, State::Closed)
                else {
                    unreachable!("matched above")
                };
                let Some(engine) = output.take_engine() else {
                    drop(output.close());
                    return Some(Change::GaveUp {
                        reason: format!("{reason}; the audio thread did not let go of the engine"),
                    });
                };
                let at_sample = engine.sample_position();
                if self.timeout.is_zero() {
                    // (closing waits a moment at most for a dead device)
                    drop(output.close());
                    return Some(Change::GaveUp { reason });
                }
                let cancel = Arc::new(AtomicBool::new(false));
                let (tx, attempts) = crossbeam_channel::bounded(4);
                spawn_reopener(
                    Some(output),
                    self.options.clone(),
                    self.clock.clone(),
                    tx,
                    cancel.clone(),
                );
                self.state = State::Lost {
                    engine: Box::new(engine),
                    since: Instant::now(),
                    reason: reason.clone(),
                    last_attempt: None,
                    attempts,
                    cancel,
                };
                Some(Change::Lost { reason, at_sample })
            }
            State::Lost {
                engine,
                since,
                reason,
                last_attempt,
                attempts,
                ..
            } => {
                // the clock stands still with the engine
                self.clock.publish(engine.sample_position(), Instant::now());
                while let Ok(attempt) = attempts.try_recv() {
                    match attempt {
                        Attempt::Failed(e) => *last_attempt = Some(e),
                        Attempt::Opened(output) => return self.resume(output),
                    }
                }
                if since.elapsed() >= self.timeout {
                    let reason = match last_attempt {
                        Some(e) => format!("{reason}; last attempt to reopen: {e}"),
                        None => reason.clone(),
                    };
                    self.close();
                    return Some(Change::GaveUp { reason });
                }
                None
            }
            State::Closed => None,
        }
    }

    /// Puts the engine into a reopened output.
    fn resume(&mut self, output: LiveOutput) -> Option<Change> {
        let State::Lost {
            engine,
            since,
            reason,
            cancel,
            ..
        } = std::mem::replace(&mut self.state, State::Closed)
        else {
            unreachable!("only called while lost")
        };
        cancel.store(true, Ordering::Relaxed);
        let device = output.device.clone();
        match output.install(*engine) {
            Ok(()) => {
                self.last_callbacks = 0;
                self.last_progress = Instant::now();
                self.state = State::Playing(output);
                Some(Change::Back {
                    device,
                    after: since.elapsed(),
                })
            }
            // practically impossible (nothing else holds the new stream's engine cell)
            Err(engine) => {
                drop(output);
                let (tx, attempts) = crossbeam_channel::bounded(4);
                let cancel = Arc::new(AtomicBool::new(false));
                spawn_reopener(
                    None,
                    self.options.clone(),
                    self.clock.clone(),
                    tx,
                    cancel.clone(),
                );
                self.state = State::Lost {
                    engine,
                    since,
                    reason,
                    last_attempt: None,
                    attempts,
                    cancel,
                };
                None
            }
        }
    }

    /// Why the stream counts as stalled, if it does: no callback for a while.
    fn stalled(&mut self) -> Option<String> {
        let State::Playing(output) = &self.state else {
            return None;
        };
        let callbacks = output.stats.callbacks.load(Ordering::Relaxed);
        // if this thread itself was held up, the audio thread may just not have run yet
        let held_up = self.last_look.elapsed() > LOOK_GAP;
        self.last_look = Instant::now();
        if callbacks != self.last_callbacks || held_up {
            self.last_callbacks = callbacks;
            self.last_progress = Instant::now();
            return None;
        }
        let limit = if callbacks == 0 {
            FIRST_CALLBACK_WAIT
        } else {
            let frames = output.stats.last_frames.load(Ordering::Relaxed) as f64;
            Duration::from_secs_f64(STALL_PERIODS * frames / self.sample_rate as f64).max(STALL_MIN)
        };
        let quiet = self.last_progress.elapsed();
        (quiet > limit).then(|| {
            format!(
                "no audio callback for {:.1} s: the device or its server stalled",
                quiet.as_secs_f64()
            )
        })
    }

    /// Stops the sound, or the attempts to get it back.
    pub fn close(&mut self) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Playing(output) => drop(output.close()),
            State::Lost { cancel, .. } => cancel.store(true, Ordering::Relaxed),
            State::Closed => {}
        }
    }
}

/// Closes the `lost` stream, then tries to open the output every [`RETRY_INTERVAL`] until it
/// opens or `cancel` is set. The stream opens without an engine (silent) and is handed over; a
/// blocked attempt is simply left behind when the show stops. Closing and opening happen on
/// this one thread, one after the other: libjack crashed when a client closed on one thread
/// while another opened.
fn spawn_reopener(
    lost: Option<LiveOutput>,
    options: OutputOptions,
    clock: Arc<SampleClock>,
    attempts: Sender<Attempt>,
    cancel: Arc<AtomicBool>,
) {
    let spawned = thread::Builder::new()
        .name("tapestry-reopen".into())
        .spawn(move || {
            drop(lost);
            while !cancel.load(Ordering::Relaxed) {
                match open(&options, Some(clock.clone())) {
                    Ok(output) => {
                        // (if the show has stopped meanwhile, the stream is dropped here)
                        let _ = attempts.send(Attempt::Opened(output));
                        return;
                    }
                    Err(e) => {
                        let _ = attempts.try_send(Attempt::Failed(e.to_string()));
                    }
                }
                thread::sleep(RETRY_INTERVAL);
            }
        });
    if let Err(e) = spawned {
        // without the thread the device is never tried again: the timeout ends the show
        eprintln!("tapestry: cannot start the thread that reopens the audio device: {e}");
    }
}
