//! The control side: the [`Controller`] handle that any thread uses to drive an
//! [`Engine`](crate::Engine), the small `Copy` messages it sends, and the lock-free
//! [`Status`] the engine publishes back.
//!
//! # The hand-off
//!
//! Each controller posts into a single-producer ring of its own (rtrb), taken from a pool the
//! engine allocates once ([`ControlLimits::sources`]); the audio thread drains the rings
//! round-robin. A producer writes its slot and then publishes it with one atomic store, so a
//! producer that is preempted (or stalled) mid-send leaves only its own unpublished message
//! behind: the audio thread never waits for it, and never meets a slot claimed but not
//! written, as it could in a shared multi-producer queue. Notices and the journal travel back
//! the same way, with the engine as the single producer.

pub mod limits;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::TryRecvError;
use rtrb::{Consumer, Producer, RingBuffer};

use crate::engine::config::{Role, Timbre, MAX_DIMS};
use crate::engine::Applied;
pub use limits::ControlLimits;

/// A participant's identity, chosen by whoever brings them in (MIDI channel, OSC id, performance).
pub type ParticipantId = u32;

/// When a message takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// At the first sample of the next processed block.
    Immediate,
    /// At this absolute sample index of the engine's timeline (earlier times apply at once).
    At(u64),
}

/// Whose mood a mood message sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoodTarget {
    /// One participant's personal mood.
    Participant(ParticipantId),
    /// The conductor: overrides the crowd's aggregate for that dimension.
    Communal,
    /// The room's own sound, as the audio analysis hears it: blended into the crowd's
    /// aggregate with the patch's `[analysis] weight`.
    Room,
}

/// Which voices a room parameter offset reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VoiceSelector {
    /// Every voice (and the communal parameters).
    #[default]
    All,
    /// The voices whose archetype has this role.
    Role(Role),
    /// The voices whose archetype has this timbre.
    Timbre(Timbre),
}

impl VoiceSelector {
    /// The selector as a file key and value (`role = "melody"`), None for all voices.
    pub fn key_value(self) -> Option<(&'static str, &'static str)> {
        match self {
            VoiceSelector::All => None,
            VoiceSelector::Role(r) => Some(("role", r.name())),
            VoiceSelector::Timbre(t) => Some(("timbre", t.name())),
        }
    }
}

/// A participant's expressive control, as a keyboard player's wheels move it. The engine
/// smooths every change (no zipper noise) and applies it to every sounding note of the
/// participant, played or sequenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expression {
    /// Pitch bend in semitones, -24..=24 (0 at rest).
    PitchBend,
    /// Vibrato depth 0..=1 (the mod wheel's usual job): up to ±0.5 semitone at 5.5 Hz, with
    /// a touch of brightness (+0.25 octave at full depth).
    Vibrato,
    /// Extra filter brightness 0..=1: up to +1.5 octaves.
    Brightness,
}

impl Expression {
    /// Every kind with its name (performance files, OSC `/tapestry/expr`).
    pub const ALL: [(Expression, &'static str); 3] = [
        (Expression::PitchBend, "bend"),
        (Expression::Vibrato, "vibrato"),
        (Expression::Brightness, "brightness"),
    ];

    /// The name used in files and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Expression::PitchBend => "bend",
            Expression::Vibrato => "vibrato",
            Expression::Brightness => "brightness",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<Expression> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(e, _)| *e)
    }

    /// The values the engine takes; others are clamped into it.
    pub fn range(self) -> (f32, f32) {
        match self {
            Expression::PitchBend => (-MAX_BEND_SEMITONES, MAX_BEND_SEMITONES),
            Expression::Vibrato | Expression::Brightness => (0.0, 1.0),
        }
    }
}

/// Widest pitch bend, in semitones either way.
pub const MAX_BEND_SEMITONES: f32 = 24.0;

/// One instruction for the engine. Small and `Copy`: no strings, no heap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// A participant joins with an archetype index, or lets the engine pick one.
    Join {
        /// Who.
        participant: ParticipantId,
        /// Archetype index in the patch, or `None` to balance roles and registers.
        archetype: Option<u16>,
    },
    /// A participant leaves; its voice fades out.
    Leave {
        /// Who.
        participant: ParticipantId,
    },
    /// Set (or ramp) one mood dimension.
    Mood {
        /// Whose mood.
        target: MoodTarget,
        /// Dimension index in the patch.
        dim: u8,
        /// New value in the dimension's units.
        value: f32,
        /// Linear ramp time; 0 jumps (the audio-thread smoothing still applies).
        ramp_secs: f32,
    },
    /// Release a conductor override so the crowd's aggregate drives the dimension again.
    ReleaseCommunal {
        /// Dimension index.
        dim: u8,
    },
    /// A played note starts.
    NoteOn {
        /// Who plays it.
        participant: ParticipantId,
        /// MIDI pitch.
        pitch: u8,
        /// MIDI velocity 1..127.
        velocity: u8,
    },
    /// A played note ends.
    NoteOff {
        /// Who.
        participant: ParticipantId,
        /// MIDI pitch as sent with the note-on.
        pitch: u8,
    },
    /// Moves an expressive control of a participant (pitch bend, vibrato, brightness).
    /// Values outside [`Expression::range`] are clamped; a non-finite value is refused.
    Expression {
        /// Whose voice.
        participant: ParticipantId,
        /// Which control.
        kind: Expression,
        /// New value (semitones for a bend, 0..1 otherwise).
        value: f32,
    },
    /// Move to a section at the next bar line.
    Cue {
        /// Section index.
        section: u16,
    },
    /// The room's offset on a sound parameter (added to what mood gives the selected
    /// voices). A selector other than `All` on an ensemble-wide parameter
    /// (`Param::is_per_voice` false) is refused.
    RoomParam {
        /// Parameter index (`Param::index`).
        param: u8,
        /// Which voices it reaches.
        voices: VoiceSelector,
        /// Offset in the parameter's units.
        value: f32,
    },
    /// Change the score's tempo from this sample on (the beat stays continuous).
    Tempo {
        /// Beats per minute, 20..400.
        bpm: f32,
    },
}

impl Command {
    /// What it asked for, in words, with the patch's names ("join of participant 9 as
    /// \"bell\"", "communal mood energy to 0.80"); for refusals shown to the performer.
    pub fn describe(&self, names: &Names) -> String {
        let named = |list: &[String], i: usize| {
            list.get(i)
                .map_or_else(|| format!("#{i} (no such index)"), |n| format!("\"{n}\""))
        };
        match *self {
            Command::Join {
                participant,
                archetype,
            } => match archetype {
                Some(a) => format!(
                    "join of participant {participant} as {}",
                    named(&names.archetypes, a as usize)
                ),
                None => format!("join of participant {participant}"),
            },
            Command::Leave { participant } => format!("leave of participant {participant}"),
            Command::Mood {
                target, dim, value, ..
            } => {
                let whose = match target {
                    MoodTarget::Participant(p) => format!("participant {p}'s"),
                    MoodTarget::Communal => "communal".into(),
                    MoodTarget::Room => "room".into(),
                };
                format!(
                    "{whose} mood {} to {value}",
                    named(&names.dims, dim as usize)
                )
            }
            Command::ReleaseCommunal { dim } => {
                format!("release of mood {}", named(&names.dims, dim as usize))
            }
            Command::NoteOn {
                participant, pitch, ..
            } => format!("note {pitch} of participant {participant}"),
            Command::NoteOff { participant, pitch } => {
                format!("note {pitch} off of participant {participant}")
            }
            Command::Expression {
                participant,
                kind,
                value,
            } => format!("{} {value} of participant {participant}", kind.name()),
            Command::Cue { section } => {
                format!(
                    "cue of section {}",
                    named(&names.sections, section as usize)
                )
            }
            Command::RoomParam { param, value, .. } => {
                format!("room offset {value} on parameter {param}")
            }
            Command::Tempo { bpm } => format!("tempo {bpm} BPM"),
        }
    }
}

/// A command with the time it takes effect.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Message {
    /// When.
    pub at: Timing,
    /// What.
    pub command: Command,
}

/// Why the engine refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The patch's participant capacity is reached.
    CapacityReached,
    /// A participant with that id is already present.
    AlreadyPresent,
    /// No participant with that id.
    UnknownParticipant,
    /// Index out of the patch's range (archetype, dimension or section), or a value that
    /// is not a finite number.
    OutOfRange,
    /// The sender's share of the engine's schedule of future messages is full
    /// ([`ControlLimits::schedule_share`]).
    ScheduleFull,
    /// Stamped further ahead than the engine schedules ([`ControlLimits::horizon_secs`]).
    TooFarAhead,
}

impl Refusal {
    /// Every reason, in the order [`Status::refused_by_reason`] counts them.
    pub const ALL: [Refusal; 6] = [
        Refusal::CapacityReached,
        Refusal::AlreadyPresent,
        Refusal::UnknownParticipant,
        Refusal::OutOfRange,
        Refusal::ScheduleFull,
        Refusal::TooFarAhead,
    ];

    /// Its place in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for counters and status lines.
    pub fn key(self) -> &'static str {
        match self {
            Refusal::CapacityReached => "capacity",
            Refusal::AlreadyPresent => "already present",
            Refusal::UnknownParticipant => "unknown participant",
            Refusal::OutOfRange => "out of range",
            Refusal::ScheduleFull => "schedule full",
            Refusal::TooFarAhead => "too far ahead",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::CapacityReached => "the patch's participant capacity is reached",
            Refusal::AlreadyPresent => "a participant with that id is already present",
            Refusal::UnknownParticipant => "no participant with that id is present",
            Refusal::OutOfRange => {
                "archetype, dimension or section index out of range, or a value not a number"
            }
            Refusal::ScheduleFull => "the sender's share of the engine's schedule is full",
            Refusal::TooFarAhead => "stamped further ahead than the engine's scheduling horizon",
        })
    }
}

/// Something the engine reports back to the control side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Notice {
    /// A message was refused.
    Refused {
        /// The message's command.
        command: Command,
        /// Why.
        reason: Refusal,
        /// Sample at which it was refused.
        at_sample: u64,
    },
    /// A participant joined with this archetype.
    Joined {
        /// Who.
        participant: ParticipantId,
        /// Archetype index.
        archetype: u16,
        /// Sample at which the voice started.
        at_sample: u64,
    },
    /// A participant left; its voice fades out from this sample.
    Left {
        /// Who.
        participant: ParticipantId,
        /// Sample at which the voice started to fade.
        at_sample: u64,
    },
    /// The score moved to a section.
    SectionChanged {
        /// Section index.
        section: u16,
        /// Bar number (from 0) where it landed.
        bar: u64,
        /// Sample of that bar line.
        at_sample: u64,
    },
}

/// Errors the [`Controller`] returns to its caller.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum ControlError {
    /// This controller's ring to the audio thread is full; the message was dropped and
    /// counted.
    #[error("the engine's message queue is full; message dropped")]
    QueueFull,
    /// The engine is gone.
    #[error("the engine has been dropped")]
    Disconnected,
}

/// Live figures the engine publishes after every block; read from any thread without locks.
#[derive(Debug, Default)]
pub struct Status {
    /// Absolute sample position of the engine.
    pub sample_position: AtomicU64,
    /// Current section index.
    pub section: AtomicU32,
    /// Current bar (from 0).
    pub bar: AtomicU64,
    /// Participants present.
    pub participants: AtomicU32,
    /// Messages a controller could not queue (its ring was full).
    pub dropped_messages: AtomicU64,
    /// Messages the engine refused (capacity, unknown participant, ...).
    pub refused_messages: AtomicU64,
    /// The same by reason, indexed by [`Refusal::index`].
    pub refused_by_reason: [AtomicU64; Refusal::ALL.len()],
    /// Notices lost because the notice queue was full.
    pub dropped_notices: AtomicU64,
    /// Journal entries lost because the recorder did not keep up.
    pub dropped_journal: AtomicU64,
    /// Peak level of the last block, left, as f32 bits.
    pub peak_left: AtomicU32,
    /// Peak level of the last block, right, as f32 bits.
    pub peak_right: AtomicU32,
    /// Momentary loudness (LUFS) as f32 bits.
    pub momentary_lufs: AtomicU32,
    /// Communal mood per dimension as f32 bits.
    pub mood: [AtomicU32; MAX_DIMS],
    /// The score's tempo, beats per minute, as f32 bits.
    pub tempo_bpm: AtomicU32,
    /// Beats into the current bar (from 0, fractional), as f32 bits.
    pub beat_in_bar: AtomicU32,
    /// The sounding chord: root pitch class in the low byte, its pitch-class mask
    /// ([`Chord::mask`](crate::score::Chord::mask)) from bit 8.
    pub chord: AtomicU32,
}

impl Status {
    /// Reads an f32 published as bits.
    pub fn load_f32(cell: &AtomicU32) -> f32 {
        f32::from_bits(cell.load(Ordering::Relaxed))
    }

    /// Peak levels (left, right) of the last block, linear.
    pub fn peaks(&self) -> (f32, f32) {
        (
            Self::load_f32(&self.peak_left),
            Self::load_f32(&self.peak_right),
        )
    }

    /// Messages the engine refused, by reason.
    pub fn refusals(&self) -> [(Refusal, u64); Refusal::ALL.len()] {
        Refusal::ALL.map(|r| (r, self.refused_by_reason[r.index()].load(Ordering::Relaxed)))
    }

    /// Communal mood value of a dimension.
    pub fn mood(&self, dim: usize) -> f32 {
        self.mood.get(dim).map_or(0.0, Self::load_f32)
    }

    /// Packs a chord for [`Status::chord`].
    pub fn pack_chord(chord: &crate::score::Chord) -> u32 {
        chord.root as u32 | (chord.mask() as u32) << 8
    }

    /// The sounding chord, as the engine published it.
    pub fn chord(&self) -> crate::score::Chord {
        let packed = self.chord.load(Ordering::Relaxed);
        let root = (packed & 0xff) as u8 % 12;
        let mask = (packed >> 8) as u16;
        // intervals above the root in rising order: the root first, as `from_intervals` wants
        let intervals: Vec<u8> = (0..12u8)
            .filter(|i| mask & (1 << ((root + i) % 12)) != 0)
            .collect();
        crate::score::Chord::from_intervals(root, &intervals)
    }
}

/// Names the controller resolves to indices (kept on the control side only).
#[derive(Debug, Default)]
pub struct Names {
    /// Mood dimension names, by index.
    pub dims: Vec<String>,
    /// Archetype ids, by index.
    pub archetypes: Vec<String>,
    /// Section names, by index.
    pub sections: Vec<String>,
}

impl Names {
    fn find(list: &[String], name: &str) -> Option<usize> {
        list.iter().position(|n| n == name)
    }
    /// Index of a mood dimension.
    pub fn dim(&self, name: &str) -> Option<u8> {
        Self::find(&self.dims, name).map(|i| i as u8)
    }
    /// Index of an archetype.
    pub fn archetype(&self, name: &str) -> Option<u16> {
        Self::find(&self.archetypes, name).map(|i| i as u16)
    }
    /// Index of a section.
    pub fn section(&self, name: &str) -> Option<u16> {
        Self::find(&self.sections, name).map(|i| i as u16)
    }
}

/// Locks a control-side mutex. A panic elsewhere while it was held leaves the ring itself
/// consistent (its operations are single atomic publishes), so a poisoned lock is taken as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A free ring of the pool: its index (the engine's source number) and its producing end.
struct FreeRing {
    index: usize,
    producer: Producer<Message>,
}

/// What every controller of one engine shares (control side only: the audio thread never
/// touches these mutexes).
struct Shared {
    free: Mutex<Vec<FreeRing>>,
    notices: Mutex<Consumer<Notice>>,
    status: Arc<Status>,
    names: Arc<Names>,
    limits: ControlLimits,
}

/// One claimed ring, held by one controller (or by several once the pool is exhausted);
/// returned to the pool when the last of them drops.
struct Source {
    index: usize,
    producer: Mutex<Option<Producer<Message>>>,
    shared: Arc<Shared>,
}

impl Drop for Source {
    fn drop(&mut self) {
        let producer = self
            .producer
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(producer) = producer {
            // what is still in the ring is delivered; the next owner's messages follow it
            lock(&self.shared.free).push(FreeRing {
                index: self.index,
                producer,
            });
        }
    }
}

/// The engine's ends of the hand-off, made by [`channels`].
pub(crate) struct EngineEnds {
    /// The consuming end of every ring, by source index.
    pub sources: Vec<Consumer<Message>>,
    /// The producing end of the notice ring.
    pub notices: Producer<Notice>,
}

/// Allocates the ring pool and the notice ring for an engine with these (clamped) limits;
/// returns the first controller (holding ring 0) and the engine's ends.
pub(crate) fn channels(
    limits: ControlLimits,
    status: Arc<Status>,
    names: Arc<Names>,
) -> (Controller, EngineEnds) {
    let mut free = Vec::with_capacity(limits.sources);
    let mut consumers = Vec::with_capacity(limits.sources);
    for index in 0..limits.sources {
        let (producer, consumer) = RingBuffer::new(limits.ring_capacity);
        free.push(FreeRing { index, producer });
        consumers.push(consumer);
    }
    free.reverse(); // claimed from the end: ring 0 first
    let first = free.pop().expect("at least one source");
    let (notice_tx, notice_rx) = RingBuffer::new(limits.notice_capacity);
    let shared = Arc::new(Shared {
        free: Mutex::new(free),
        notices: Mutex::new(notice_rx),
        status,
        names,
        limits,
    });
    let controller = Controller::holding(first, shared);
    let ends = EngineEnds {
        sources: consumers,
        notices: notice_tx,
    };
    (controller, ends)
}

/// A cloneable, `Send` handle that drives an engine from any thread.
///
/// Every call is non-blocking for the audio thread: it posts one `Copy` message into this
/// controller's own ring, or returns [`ControlError::QueueFull`] (and counts it) if the audio
/// thread has not caught up. Each clone claims a ring of its own from the engine's pool
/// ([`ControlLimits::sources`]), so one busy or stalled sender never delays another's
/// messages; once the pool is used up, clones share their parent's ring. Clones that share
/// a ring serialize their sends on a control-side lock; the audio thread never takes it.
pub struct Controller {
    source: Arc<Source>,
}

impl Clone for Controller {
    /// A controller with a ring of its own if one is free, else sharing this one's.
    fn clone(&self) -> Self {
        let shared = &self.source.shared;
        let claimed = lock(&shared.free).pop();
        match claimed {
            Some(ring) => Controller::holding(ring, shared.clone()),
            None => Controller {
                source: self.source.clone(),
            },
        }
    }
}

impl Controller {
    fn holding(ring: FreeRing, shared: Arc<Shared>) -> Controller {
        Controller {
            source: Arc::new(Source {
                index: ring.index,
                producer: Mutex::new(Some(ring.producer)),
                shared,
            }),
        }
    }

    /// Posts a message.
    pub fn send(&self, message: Message) -> Result<(), ControlError> {
        self.post(message, || {})
    }

    /// Messages this controller's ring takes now without refusing one (0 once the engine
    /// is gone): lets a forwarder post only what fits, so nothing is counted as dropped.
    pub fn room(&self) -> usize {
        match lock(&self.source.producer).as_ref() {
            Some(producer) if !producer.is_abandoned() => producer.slots(),
            _ => 0,
        }
    }

    /// Whether the engine is gone.
    pub fn is_disconnected(&self) -> bool {
        lock(&self.source.producer)
            .as_ref()
            .is_none_or(|producer| producer.is_abandoned())
    }

    /// Posts a message in two steps, calling `between` after its slot in the ring is claimed
    /// and written and before it is published to the audio thread: lets a test stall a
    /// producer exactly there and prove that the audio thread never waits for it.
    #[doc(hidden)]
    pub fn send_stalling(
        &self,
        message: Message,
        between: impl FnOnce(),
    ) -> Result<(), ControlError> {
        self.post(message, between)
    }

    fn post(&self, message: Message, between: impl FnOnce()) -> Result<(), ControlError> {
        let mut guard = lock(&self.source.producer);
        let Some(producer) = guard.as_mut() else {
            return Err(ControlError::Disconnected);
        };
        if producer.is_abandoned() {
            return Err(ControlError::Disconnected);
        }
        let Ok(mut chunk) = producer.write_chunk_uninit(1) else {
            self.source
                .shared
                .status
                .dropped_messages
                .fetch_add(1, Ordering::Relaxed);
            return Err(ControlError::QueueFull);
        };
        let (first, _) = chunk.as_mut_slices();
        let Some(slot) = first.first_mut() else {
            return Err(ControlError::QueueFull); // rtrb never gives an empty chunk of 1
        };
        slot.write(message);
        between();
        // SAFETY: the chunk's only slot was initialized just above.
        unsafe { chunk.commit_all() };
        Ok(())
    }

    /// Posts a command to take effect at once.
    pub fn command(&self, command: Command) -> Result<(), ControlError> {
        self.send(Message {
            at: Timing::Immediate,
            command,
        })
    }

    /// A participant joins now; `archetype: None` lets the engine balance the ensemble.
    pub fn join(
        &self,
        participant: ParticipantId,
        archetype: Option<u16>,
    ) -> Result<(), ControlError> {
        self.command(Command::Join {
            participant,
            archetype,
        })
    }

    /// A participant leaves now.
    pub fn leave(&self, participant: ParticipantId) -> Result<(), ControlError> {
        self.command(Command::Leave { participant })
    }

    /// Sets a participant's mood dimension (by name) with a ramp.
    pub fn set_mood(
        &self,
        target: MoodTarget,
        dimension: &str,
        value: f32,
        ramp_secs: f32,
    ) -> Result<(), ControlError> {
        let dim = self.names().dim(dimension).unwrap_or(u8::MAX);
        self.command(Command::Mood {
            target,
            dim,
            value,
            ramp_secs,
        })
    }

    /// Plays a note for a participant (velocity 0 = note off).
    pub fn note(
        &self,
        participant: ParticipantId,
        pitch: u8,
        velocity: u8,
    ) -> Result<(), ControlError> {
        self.command(if velocity == 0 {
            Command::NoteOff { participant, pitch }
        } else {
            Command::NoteOn {
                participant,
                pitch,
                velocity,
            }
        })
    }

    /// Moves a participant's expressive control now (see [`Expression`]).
    pub fn express(
        &self,
        participant: ParticipantId,
        kind: Expression,
        value: f32,
    ) -> Result<(), ControlError> {
        self.command(Command::Expression {
            participant,
            kind,
            value,
        })
    }

    /// Cues a section by name at the next bar line.
    pub fn cue(&self, section: &str) -> Result<(), ControlError> {
        let section = self.names().section(section).unwrap_or(u16::MAX);
        self.command(Command::Cue { section })
    }

    /// Takes the next notice from the engine, if any. Notices are shared: whichever
    /// controller asks first gets each one.
    pub fn try_notice(&self) -> Option<Notice> {
        lock(&self.source.shared.notices).pop().ok()
    }

    /// The live status the engine publishes.
    pub fn status(&self) -> &Arc<Status> {
        &self.source.shared.status
    }

    /// Names of dimensions, archetypes and sections in the engine's patch.
    pub fn names(&self) -> &Names {
        &self.source.shared.names
    }

    /// The bounds of the engine's control path.
    pub fn limits(&self) -> &ControlLimits {
        &self.source.shared.limits
    }

    /// The number of the ring this controller posts into (0 for the engine's first
    /// controller); the engine's per-source shares and budgets count by it.
    pub fn source(&self) -> usize {
        self.source.index
    }
}

/// The receiving end of the engine's journal of applied commands
/// ([`Engine::enable_journal`](crate::Engine::enable_journal)): one consumer, polled.
pub struct Journal {
    consumer: RefCell<Consumer<Applied>>,
}

impl Journal {
    /// A journal ring of `capacity` entries: the engine's producing end and this.
    pub(crate) fn new(capacity: usize) -> (Producer<Applied>, Journal) {
        let (producer, consumer) = RingBuffer::new(capacity.max(1));
        let journal = Journal {
            consumer: RefCell::new(consumer),
        };
        (producer, journal)
    }

    /// The next applied command, if any; `Disconnected` once the engine is gone and
    /// everything it journaled has been taken.
    pub fn try_recv(&self) -> Result<Applied, TryRecvError> {
        let mut consumer = self.consumer.borrow_mut();
        match consumer.pop() {
            Ok(applied) => Ok(applied),
            Err(_) if consumer.is_abandoned() => {
                // the engine may have pushed between the pop and the check
                consumer.pop().map_err(|_| TryRecvError::Disconnected)
            }
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Everything journaled so far.
    pub fn try_iter(&self) -> impl Iterator<Item = Applied> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }
}
