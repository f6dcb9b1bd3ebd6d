//! The web server's control side: phones' sessions (token → participant), ownership, rate
//! limits and coalescing, all turned into engine [`Command`]s through one [`Controller`].
//!
//! Everything here runs on the server's threads under one mutex that only they and the
//! thread feeding the engine's notices take; the audio thread never sees it (it reads the
//! controller's ring). Each connection knows only its own session's token, and a frame acts
//! on the participant of the session its connection holds: there is no field in the
//! protocol through which a phone could name another participant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::protocol::{ClientFrame, DimInfo, ServerFrame, VoiceInfo};
use super::{WebOptions, WebPatch};
use crate::control::{
    Command, ControlError, Controller, Message, MoodTarget, Notice, ParticipantId, Timing,
};
use crate::engine::config::MAX_DIMS;
use crate::input::SampleClock;

/// Phones' participant ids start here, clear of MIDI's (101–108), performances' and OSC
/// senders' usual ids.
pub const FIRST_WEB_PARTICIPANT: ParticipantId = 1_000_000;
/// How long a tap's note sounds, in seconds.
pub const TAP_NOTE_SECS: f64 = 0.3;
/// Longest conductor ramp accepted, in seconds.
pub const MAX_RAMP_SECS: f32 = 60.0;

/// Counters of the web input; read from any thread.
#[derive(Debug, Default)]
pub struct WebStats {
    /// WebSocket connections open now.
    pub connections: AtomicU64,
    /// Connections refused because `max_clients` were open.
    pub refused_connections: AtomicU64,
    /// Frames received (text and binary).
    pub frames: AtomicU64,
    /// Frames that did not parse (bad JSON, unknown kind or key, binary, too large).
    pub malformed: AtomicU64,
    /// Frames over their connection's rate, and taps over their participant's rate.
    pub over_rate: AtomicU64,
    /// Conductor frames from a connection without the secret, and wrong secrets.
    pub unauthorized: AtomicU64,
    /// Frames for a participant the connection does not hold (not joined, session over).
    pub not_joined: AtomicU64,
    /// Frames naming a dimension or section the patch does not have, or non-finite values.
    pub bad_values: AtomicU64,
    /// Commands the engine's ring had no room for.
    pub undelivered: AtomicU64,
    /// Frames to a browser dropped because its send queue was full.
    pub send_dropped: AtomicU64,
    /// Participants joined from phones.
    pub joins: AtomicU64,
    /// Sessions resumed with their token.
    pub resumes: AtomicU64,
    /// Participants that left because their phone stayed away past the resume timeout.
    pub timed_out: AtomicU64,
    /// Joins refused because `max_sessions` sessions exist.
    pub sessions_full: AtomicU64,
}

impl WebStats {
    /// Every counter with its name, for status lines.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("connections", c(&self.connections)),
            ("refused connections", c(&self.refused_connections)),
            ("frames", c(&self.frames)),
            ("malformed", c(&self.malformed)),
            ("over rate", c(&self.over_rate)),
            ("unauthorized", c(&self.unauthorized)),
            ("not joined", c(&self.not_joined)),
            ("bad values", c(&self.bad_values)),
            ("undelivered", c(&self.undelivered)),
            ("send dropped", c(&self.send_dropped)),
            ("joins", c(&self.joins)),
            ("resumes", c(&self.resumes)),
            ("timed out", c(&self.timed_out)),
            ("sessions full", c(&self.sessions_full)),
        ]
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A token bucket: `rate` per second, at most `burst` at once.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One connection's side of the protocol: what it holds and how fast it may go.
pub struct Client {
    id: u64,
    token: Option<String>,
    conductor: bool,
    frames: Bucket,
    outbox: mpsc::Sender<Arc<str>>,
}

impl Client {
    /// Whether the connection holds a session or the conductor's key (it gets state pushes).
    pub fn wants_state(&self) -> bool {
        self.token.is_some() || self.conductor
    }

    /// Whether the connection is the conductor's.
    pub fn is_conductor(&self) -> bool {
        self.conductor
    }
}

/// A phone's participant, kept across reconnects until it leaves or times out.
struct Session {
    participant: ParticipantId,
    voice: Option<u16>,
    /// The connection holding it, and where frames for it go.
    holder: Option<(u64, mpsc::Sender<Arc<str>>)>,
    detached_at: Option<Instant>,
    /// The latest mood values not yet sent to the engine (coalesced).
    pending: [Option<f32>; MAX_DIMS],
    /// The latest mood values sent, for the conductor's view.
    mood: [f32; MAX_DIMS],
    taps: Bucket,
}

struct HubState {
    controller: Controller,
    sessions: HashMap<String, Session>,
    tokens: HashMap<ParticipantId, String>,
    next_participant: ParticipantId,
    next_client: u64,
    /// Where the mood flush starts next time, so that no session waits for the others.
    flush_cursor: usize,
    last_state: Option<Instant>,
}

/// The shared state of one web server.
pub struct Hub {
    state: Mutex<HubState>,
    stats: Arc<WebStats>,
    patch: WebPatch,
    clock: Arc<SampleClock>,
    options: WebOptions,
    secret: String,
    state_tx: watch::Sender<Arc<str>>,
    conductor_tx: watch::Sender<Arc<str>>,
}

fn lock(mutex: &Mutex<HubState>) -> MutexGuard<'_, HubState> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// 128 random bits as hex, from the operating system's generator.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // no system generator: fall back to the clock and the process (still unguessable
        // enough for a token that only resumes a phone's own voice, never the conductor's)
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Hub {
    /// A hub driving the engine through `controller`.
    pub fn new(
        controller: Controller,
        clock: Arc<SampleClock>,
        patch: WebPatch,
        options: WebOptions,
        secret: String,
    ) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                controller,
                sessions: HashMap::new(),
                tokens: HashMap::new(),
                next_participant: FIRST_WEB_PARTICIPANT,
                next_client: 0,
                flush_cursor: 0,
                last_state: None,
            }),
            stats: Arc::new(WebStats::default()),
            patch,
            clock,
            options,
            secret,
            state_tx: watch::channel(Arc::from("")).0,
            conductor_tx: watch::channel(Arc::from("")).0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<WebStats> {
        &self.stats
    }

    /// The limits in force.
    pub fn options(&self) -> &WebOptions {
        &self.options
    }

    /// The conductor's secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `key` is the conductor's secret.
    pub fn is_secret(&self, key: &str) -> bool {
        same_secret(key, &self.secret)
    }

    /// The participants' state pushes (latest only: a slow phone skips, never queues).
    pub fn state_rx(&self) -> watch::Receiver<Arc<str>> {
        self.state_tx.subscribe()
    }

    /// The conductor's state pushes.
    pub fn conductor_rx(&self) -> watch::Receiver<Arc<str>> {
        self.conductor_tx.subscribe()
    }

    /// A new connection's side, with its bounded outbox.
    pub fn client(&self, outbox: mpsc::Sender<Arc<str>>, now: Instant) -> Client {
        let mut state = lock(&self.state);
        state.next_client += 1;
        let o = &self.options;
        Client {
            id: state.next_client,
            token: None,
            conductor: false,
            frames: Bucket::new(o.frames_per_sec, o.frame_burst, now),
            outbox,
        }
    }

    /// Counts a frame that could not be read as text JSON (binary, too large, broken).
    pub fn malformed(&self) {
        WebStats::add(&self.stats.frames);
        WebStats::add(&self.stats.malformed);
    }

    /// Acts on one text frame from `client`; the reply to send back, if any.
    pub fn frame(&self, client: &mut Client, text: &str, now: Instant) -> Option<String> {
        WebStats::add(&self.stats.frames);
        if !client.frames.take(now) {
            WebStats::add(&self.stats.over_rate);
            return None;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(_) => {
                WebStats::add(&self.stats.malformed);
                return Some(error("malformed"));
            }
        };
        let result = match frame {
            ClientFrame::Join { token } => return Some(self.join(client, token, now)),
            ClientFrame::Leave => self.leave(client),
            ClientFrame::Mood { values } => self.mood(client, &values),
            ClientFrame::Tap { x, velocity } => self.tap(client, x, velocity, now),
            ClientFrame::Conductor { key } => return Some(self.authorize(client, &key)),
            conductor_frame => self.conduct(client, conductor_frame),
        };
        result.err().map(error)
    }

    /// The connection closed: its session waits `resume_timeout` for the phone to come back.
    pub fn disconnect(&self, client: &Client, now: Instant) {
        let mut state = lock(&self.state);
        if let Some(session) = client
            .token
            .as_ref()
            .and_then(|t| state.sessions.get_mut(t))
        {
            if session
                .holder
                .as_ref()
                .is_some_and(|(id, _)| *id == client.id)
            {
                session.holder = None;
                session.detached_at = Some(now);
            }
        }
    }

    fn join(&self, client: &mut Client, token: Option<String>, now: Instant) -> String {
        let mut state = lock(&self.state);
        let state = &mut *state;
        if let Some(token) = token.filter(|t| state.sessions.contains_key(t)) {
            let session = state.sessions.get_mut(&token).expect("checked above");
            if let Some((_, old)) = session.holder.take() {
                // the same phone on a new connection: the old one is told and let go
                let _ = old.try_send(Arc::from(ServerFrame::Removed.to_json()));
            }
            session.holder = Some((client.id, client.outbox.clone()));
            session.detached_at = None;
            WebStats::add(&self.stats.resumes);
            let voice = session
                .voice
                .and_then(|v| self.patch.voices.get(v as usize));
            let participant = session.participant;
            client.token = Some(token.clone());
            return self.welcome(&token, participant, true, voice);
        }
        if let Some(old) = client.token.take() {
            // a second join on one connection ends the first session
            Self::end_session(state, &old, &self.clock);
        }
        if state.sessions.len() >= self.options.max_sessions {
            WebStats::add(&self.stats.sessions_full);
            return ServerFrame::Refused { reason: "full" }.to_json();
        }
        let participant = state.next_participant;
        let join = Command::Join {
            participant,
            archetype: None,
        };
        if let Err(reason) = self.send(&state.controller, join) {
            return error(reason);
        }
        state.next_participant += 1;
        let token = random_token();
        let o = &self.options;
        let mut mood = [0.0; MAX_DIMS];
        for (m, d) in mood.iter_mut().zip(&self.patch.defaults) {
            *m = *d;
        }
        state.sessions.insert(
            token.clone(),
            Session {
                participant,
                voice: None,
                holder: Some((client.id, client.outbox.clone())),
                detached_at: None,
                pending: [None; MAX_DIMS],
                mood,
                taps: Bucket::new(o.taps_per_sec, o.tap_burst, now),
            },
        );
        state.tokens.insert(participant, token.clone());
        WebStats::add(&self.stats.joins);
        client.token = Some(token.clone());
        self.welcome(&token, participant, false, None)
    }

    fn welcome(
        &self,
        token: &str,
        participant: ParticipantId,
        resumed: bool,
        voice: Option<&VoiceInfo>,
    ) -> String {
        let pad = self
            .patch
            .pad
            .map(|d| self.patch.dims[d as usize].name.as_str());
        ServerFrame::Welcome {
            token,
            participant,
            resumed,
            dims: &self.patch.dims,
            pad,
            voice,
        }
        .to_json()
    }

    /// Removes a session and makes its participant leave.
    fn end_session(state: &mut HubState, token: &str, clock: &SampleClock) -> Option<Session> {
        let session = state.sessions.remove(token)?;
        state.tokens.remove(&session.participant);
        let leave = Message {
            at: Timing::At(clock.now()),
            command: Command::Leave {
                participant: session.participant,
            },
        };
        let _ = state.controller.send(leave);
        Some(session)
    }

    fn leave(&self, client: &mut Client) -> Result<(), &'static str> {
        let mut state = lock(&self.state);
        let token = self.held(&state, client)?;
        Self::end_session(&mut state, &token, &self.clock);
        client.token = None;
        Ok(())
    }

    /// The token of the session `client` holds now.
    fn held(&self, state: &HubState, client: &Client) -> Result<String, &'static str> {
        let held = client.token.as_ref().filter(|t| {
            state.sessions.get(*t).is_some_and(|s| {
                s.holder
                    .as_ref()
                    .is_some_and(|(holder, _)| *holder == client.id)
            })
        });
        match held {
            Some(token) => Ok(token.clone()),
            None => {
                WebStats::add(&self.stats.not_joined);
                Err("not_joined")
            }
        }
    }

    /// Dimension indices and values, clamped to their ranges; an unknown name or a
    /// non-finite value refuses the whole frame.
    fn mood_values(
        &self,
        values: &std::collections::BTreeMap<String, f32>,
    ) -> Result<Vec<(u8, f32)>, &'static str> {
        let mut out = Vec::with_capacity(values.len());
        for (name, value) in values {
            let dim = self.patch.dims.iter().position(|d| &d.name == name);
            match dim {
                Some(d) if value.is_finite() => {
                    let info: &DimInfo = &self.patch.dims[d];
                    out.push((d as u8, value.clamp(info.min, info.max)));
                }
                _ => {
                    WebStats::add(&self.stats.bad_values);
                    return Err("bad_value");
                }
            }
        }
        Ok(out)
    }

    fn mood(
        &self,
        client: &Client,
        values: &std::collections::BTreeMap<String, f32>,
    ) -> Result<(), &'static str> {
        let values = self.mood_values(values)?;
        let mut state = lock(&self.state);
        let token = self.held(&state, client)?;
        let session = state.sessions.get_mut(&token).expect("held");
        for (dim, value) in values {
            session.pending[dim as usize] = Some(value);
        }
        Ok(())
    }

    fn tap(
        &self,
        client: &Client,
        x: f32,
        velocity: f32,
        now: Instant,
    ) -> Result<(), &'static str> {
        if !(x.is_finite() && velocity.is_finite()) {
            WebStats::add(&self.stats.bad_values);
            return Err("bad_value");
        }
        let mut state = lock(&self.state);
        let token = self.held(&state, client)?;
        let session = state.sessions.get_mut(&token).expect("held");
        if !session.taps.take(now) {
            WebStats::add(&self.stats.over_rate);
            return Err("over_rate");
        }
        let participant = session.participant;
        let pitch = self.patch.tap_pitch(session.voice, x);
        let velocity = (1.0 + velocity.clamp(0.0, 1.0) * 126.0).round() as u8;
        let at = self.clock.now();
        let off_at = at + (TAP_NOTE_SECS * self.clock.sample_rate() as f64) as u64;
        let on = Message {
            at: Timing::At(at),
            command: Command::NoteOn {
                participant,
                pitch,
                velocity,
            },
        };
        let off = Message {
            at: Timing::At(off_at),
            command: Command::NoteOff { participant, pitch },
        };
        self.deliver(&state.controller, on)?;
        self.deliver(&state.controller, off)
    }

    fn authorize(&self, client: &mut Client, key: &str) -> String {
        client.conductor = self.is_secret(key);
        if !client.conductor {
            WebStats::add(&self.stats.unauthorized);
        }
        ServerFrame::Conductor {
            ok: client.conductor,
        }
        .to_json()
    }

    fn conduct(&self, client: &Client, frame: ClientFrame) -> Result<(), &'static str> {
        if !client.conductor {
            WebStats::add(&self.stats.unauthorized);
            return Err("conductor_only");
        }
        let mut state = lock(&self.state);
        match frame {
            ClientFrame::Communal { values, ramp_secs } => {
                let ramp_secs = if (0.0..=MAX_RAMP_SECS).contains(&ramp_secs) {
                    ramp_secs
                } else {
                    WebStats::add(&self.stats.bad_values);
                    return Err("bad_value");
                };
                for (dim, value) in self.mood_values(&values)? {
                    let command = Command::Mood {
                        target: MoodTarget::Communal,
                        dim,
                        value,
                        ramp_secs,
                    };
                    self.send(&state.controller, command)?;
                }
                Ok(())
            }
            ClientFrame::Release { dim } => {
                let dim = self.index_of(self.patch.dims.iter().map(|d| &d.name), &dim)?;
                self.send(
                    &state.controller,
                    Command::ReleaseCommunal { dim: dim as u8 },
                )
            }
            ClientFrame::Cue { section } => {
                let section = self.index_of(self.patch.sections.iter(), &section)?;
                let cue = Command::Cue {
                    section: section as u16,
                };
                self.send(&state.controller, cue)
            }
            ClientFrame::Remove { participant } => {
                let Some(token) = state.tokens.get(&participant).cloned() else {
                    WebStats::add(&self.stats.bad_values);
                    return Err("unknown_participant");
                };
                if let Some(session) = Self::end_session(&mut state, &token, &self.clock) {
                    if let Some((_, outbox)) = session.holder {
                        self.push(&outbox, ServerFrame::Removed.to_json());
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn index_of<'a>(
        &self,
        mut names: impl Iterator<Item = &'a String>,
        name: &str,
    ) -> Result<usize, &'static str> {
        names.position(|n| n == name).ok_or_else(|| {
            WebStats::add(&self.stats.bad_values);
            "unknown_name"
        })
    }

    /// Sends a command stamped now.
    fn send(&self, controller: &Controller, command: Command) -> Result<(), &'static str> {
        let message = Message {
            at: Timing::At(self.clock.now()),
            command,
        };
        self.deliver(controller, message)
    }

    fn deliver(&self, controller: &Controller, message: Message) -> Result<(), &'static str> {
        match controller.send(message) {
            Ok(()) => Ok(()),
            Err(ControlError::QueueFull | ControlError::Disconnected) => {
                WebStats::add(&self.stats.undelivered);
                Err("busy")
            }
        }
    }

    fn push(&self, outbox: &mpsc::Sender<Arc<str>>, frame: String) {
        if outbox.try_send(Arc::from(frame)).is_err() {
            WebStats::add(&self.stats.send_dropped);
        }
    }

    /// Follows the engine's notices: a phone learns its voice, or that its join was refused.
    /// Call from whichever thread takes the controller's notices.
    pub fn notice(&self, notice: &Notice) {
        let mut state = lock(&self.state);
        match *notice {
            Notice::Joined {
                participant,
                archetype,
                ..
            } => {
                let Some(token) = state.tokens.get(&participant).cloned() else {
                    return;
                };
                let session = state.sessions.get_mut(&token).expect("indexed");
                session.voice = Some(archetype);
                let outbox = session.holder.as_ref().map(|(_, o)| o.clone());
                if let (Some(outbox), Some(voice)) =
                    (outbox, self.patch.voices.get(archetype as usize))
                {
                    self.push(&outbox, ServerFrame::Voice(voice).to_json());
                }
            }
            Notice::Refused {
                command: Command::Join { participant, .. },
                reason,
                ..
            } => {
                let Some(token) = state.tokens.remove(&participant) else {
                    return;
                };
                if let Some((_, outbox)) = state.sessions.remove(&token).and_then(|s| s.holder) {
                    self.push(
                        &outbox,
                        ServerFrame::Refused {
                            reason: reason.key(),
                        }
                        .to_json(),
                    );
                }
            }
            _ => {}
        }
    }

    /// Periodic work: sends coalesced moods, ends sessions whose phone stayed away past the
    /// resume timeout, and publishes the state for the pages when due.
    pub fn tick(&self, now: Instant) {
        let mut state = lock(&self.state);
        self.flush_moods(&mut state);
        self.reap(&mut state, now);
        let due = state
            .last_state
            .is_none_or(|t| now.duration_since(t) >= self.options.state_interval);
        if due {
            state.last_state = Some(now);
            self.publish(&state);
        }
    }

    /// Each session's latest mood, as far as the engine's ring has room, starting where the
    /// last flush stopped (so that under load no phone waits behind the others for long).
    fn flush_moods(&self, state: &mut HubState) {
        let HubState {
            controller,
            sessions,
            flush_cursor,
            ..
        } = state;
        let count = sessions.len();
        if count == 0 {
            return;
        }
        let start = *flush_cursor % count;
        let mut room = controller.room();
        for pass in [start..count, 0..start] {
            for (i, session) in sessions.values_mut().enumerate() {
                if !pass.contains(&i) {
                    continue;
                }
                if !self.flush_session(controller, session, &mut room) {
                    *flush_cursor = i;
                    return;
                }
            }
        }
    }

    /// Sends one session's pending mood values; false when the ring is full.
    fn flush_session(
        &self,
        controller: &Controller,
        session: &mut Session,
        room: &mut usize,
    ) -> bool {
        for dim in 0..MAX_DIMS {
            let Some(value) = session.pending[dim] else {
                continue;
            };
            if *room == 0 {
                return false;
            }
            let message = Message {
                at: Timing::At(self.clock.now()),
                command: Command::Mood {
                    target: MoodTarget::Participant(session.participant),
                    dim: dim as u8,
                    value,
                    ramp_secs: 0.0,
                },
            };
            if controller.send(message).is_err() {
                WebStats::add(&self.stats.undelivered);
                return false;
            }
            *room -= 1;
            session.pending[dim] = None;
            session.mood[dim] = value;
        }
        true
    }

    fn reap(&self, state: &mut HubState, now: Instant) {
        let timeout = self.options.resume_timeout;
        let expired: Vec<String> = state
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.detached_at
                    .is_some_and(|t| now.duration_since(t) >= timeout)
            })
            .map(|(t, _)| t.clone())
            .collect();
        for token in expired {
            Self::end_session(state, &token, &self.clock);
            WebStats::add(&self.stats.timed_out);
        }
    }

    /// Builds the state frames from the engine's status.
    fn publish(&self, state: &HubState) {
        let status = state.controller.status();
        let section = status.section.load(Ordering::Relaxed) as usize;
        let mood: serde_json::Map<String, serde_json::Value> = self
            .patch
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), serde_json::json!(status.mood(i))))
            .collect();
        let common = serde_json::json!({
            "t": "state",
            "section": self.patch.sections.get(section),
            "bar": status.bar.load(Ordering::Relaxed) + 1,
            "participants": status.participants.load(Ordering::Relaxed),
            "phones": state.sessions.len(),
            "mood": mood,
        });
        self.state_tx.send_replace(Arc::from(common.to_string()));
        if self.conductor_tx.receiver_count() > 0 {
            let frame = self.conductor_state(state, common);
            self.conductor_tx.send_replace(Arc::from(frame.to_string()));
        }
    }

    fn conductor_state(&self, state: &HubState, mut frame: serde_json::Value) -> serde_json::Value {
        let status = state.controller.status();
        let phones: Vec<serde_json::Value> = state
            .sessions
            .values()
            .map(|s| {
                serde_json::json!({
                    "participant": s.participant,
                    "voice": s.voice.and_then(|v| self.patch.voices.get(v as usize)).map(|v| &v.archetype),
                    "connected": s.holder.is_some(),
                    "mood": &s.mood[..self.patch.dims.len()],
                })
            })
            .collect();
        let (left, right) = status.peaks();
        frame["t"] = "conductor_state".into();
        frame["list"] = phones.into();
        frame["dims"] = serde_json::json!(self.patch.dims);
        frame["sections"] = serde_json::json!(self.patch.sections);
        frame["peaks"] = serde_json::json!([left, right]);
        frame["lufs"] = serde_json::json!(crate::control::Status::load_f32(&status.momentary_lufs));
        frame["dropped"] = status.dropped_messages.load(Ordering::Relaxed).into();
        frame["refused"] = status.refused_messages.load(Ordering::Relaxed).into();
        frame["web"] = self
            .stats
            .counters()
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        frame
    }
}

fn error(reason: &str) -> String {
    ServerFrame::Error { reason }.to_json()
}
