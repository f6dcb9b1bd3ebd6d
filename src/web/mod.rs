//! The crowd joins from their phones: `tapestry play --web <addr:port>` serves a participant
//! page and a conductor page (built into the binary, no internet needed) and a JSON
//! WebSocket protocol (docs/web.md).
//!
//! ```text
//!  phones ──WebSocket──▶ server threads (tokio + axum)       audio thread
//!                        Hub: sessions, ownership, limits ──▶ Controller ring ──▶ Engine
//!  pages ◀── state pushes (10/s, latest only) ◀── Status atomics, notices (play loop)
//! ```
//!
//! The server runs on a runtime of its own ([`WebOptions::threads`] worker threads). The
//! engine is reached only through a [`Controller`]: non-blocking, bounded, every command
//! stamped with the sample it applies at, and recorded in the session recording as any
//! other input's. A phone acts only on its own participant (the session its connection
//! holds); conductor frames need the secret the conductor URL carries.

pub mod hub;
pub mod protocol;
mod server;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::control::{Controller, Names, Notice};
use crate::engine::config::{EngineConfig, MAX_DIMS};
use crate::input::SampleClock;
use crate::score::theory::Scale;
pub use hub::{Hub, WebStats};
use protocol::{DimInfo, VoiceInfo};

/// The limits of the web input; every one is documented in README's "Limits" and docs/web.md.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// WebSocket connections open at once; past it the upgrade is answered 503.
    pub max_clients: usize,
    /// Phones' sessions at once, including those waiting for their phone to come back.
    pub max_sessions: usize,
    /// How long a session waits for its phone to reconnect before its participant leaves.
    pub resume_timeout: Duration,
    /// Frames a connection may send per second, sustained.
    pub frames_per_sec: f64,
    /// ... and at once.
    pub frame_burst: f64,
    /// Taps a participant may play per second, sustained.
    pub taps_per_sec: f64,
    /// ... and at once.
    pub tap_burst: f64,
    /// Largest frame read, in bytes; a larger one closes the connection (counted malformed).
    pub max_frame_bytes: usize,
    /// Frames waiting for one browser (replies and voice notices); past it they are dropped.
    pub outbox_frames: usize,
    /// How often the pages' state is pushed (and moods are coalesced: each participant's
    /// latest values go to the engine once per tick, [`TICK`]).
    pub state_interval: Duration,
    /// A browser that takes longer than this to accept a frame is disconnected.
    pub write_timeout: Duration,
    /// A browser silent this long (no frame, no pong) is disconnected.
    pub idle_timeout: Duration,
    /// Worker threads of the server's runtime.
    pub threads: usize,
}

/// How often the hub flushes coalesced moods and reaps sessions.
pub const TICK: Duration = Duration::from_millis(50);

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            max_clients: 10_000,
            max_sessions: 10_000,
            resume_timeout: Duration::from_secs(30),
            frames_per_sec: 60.0,
            frame_burst: 120.0,
            taps_per_sec: 10.0,
            tap_burst: 10.0,
            max_frame_bytes: 1024,
            outbox_frames: 16,
            state_interval: Duration::from_millis(100),
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            threads: 2,
        }
    }
}

/// What the pages and the hub need to know about the patch.
#[derive(Clone, Debug)]
pub struct WebPatch {
    /// Mood dimensions.
    pub dims: Vec<DimInfo>,
    /// Each dimension's value before anyone moves it.
    pub defaults: Vec<f32>,
    /// The dimensions the XY pad moves: energy across, tension up.
    pub pad: [u8; 2],
    /// Archetypes, by index.
    pub voices: Vec<VoiceInfo>,
    /// Each archetype's register (lowest, highest MIDI note).
    pub registers: Vec<(u8, u8)>,
    /// Section names.
    pub sections: Vec<String>,
    /// The communal scale taps play in.
    pub scale: Scale,
}

impl WebPatch {
    /// From an engine's configuration and the patch's names.
    pub fn new(config: &EngineConfig, names: &Names) -> WebPatch {
        let dims = names
            .dims
            .iter()
            .zip(&config.dims)
            .take(MAX_DIMS)
            .map(|(name, d)| DimInfo {
                name: name.clone(),
                min: d.min,
                max: d.max,
            })
            .collect();
        let voices = names
            .archetypes
            .iter()
            .zip(&config.archetypes)
            .map(|(name, a)| VoiceInfo {
                archetype: name.clone(),
                role: a.role.name(),
                timbre: a.timbre.name(),
            })
            .collect();
        WebPatch {
            dims,
            defaults: config.dims.iter().map(|d| d.default).collect(),
            pad: [config.core.energy, config.core.tension],
            voices,
            registers: config
                .archetypes
                .iter()
                .map(|a| (a.register_low, a.register_high))
                .collect(),
            sections: names.sections.clone(),
            scale: config.key.scale(),
        }
    }

    /// The note a tap at `x` (0..1) plays: the scale's notes across the voice's register
    /// (an octave from middle C before the voice is known), lowest at 0.
    pub fn tap_pitch(&self, voice: Option<u16>, x: f32) -> u8 {
        let (low, high) = voice
            .and_then(|v| self.registers.get(v as usize).copied())
            .unwrap_or((60, 72));
        let notes: Vec<u8> = (low.min(127)..=high.min(127))
            .filter(|p| self.scale.contains(*p as i32))
            .collect();
        if notes.is_empty() {
            return low.min(127);
        }
        let i = (x.clamp(0.0, 1.0) * notes.len() as f32) as usize;
        notes[i.min(notes.len() - 1)]
    }
}

/// The web server: its runtime, its hub and where it listens.
pub struct WebServer {
    runtime: Option<tokio::runtime::Runtime>,
    hub: Arc<Hub>,
    local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebServer {
    /// Binds `addr` and serves the pages and the protocol on threads of their own, driving
    /// the engine through `controller`. Fails only if the address cannot be bound.
    pub fn spawn(
        addr: SocketAddr,
        controller: Controller,
        clock: Arc<SampleClock>,
        patch: WebPatch,
        options: WebOptions,
    ) -> io::Result<WebServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads.max(1))
            .thread_name("tapestry-web")
            .enable_all()
            .build()?;
        let hub = Arc::new(Hub::new(
            controller,
            clock,
            patch,
            options,
            hub::random_token(),
        ));
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(server::serve(listener, hub.clone(), stopped));
        runtime.spawn(server::tick(hub.clone()));
        Ok(WebServer {
            runtime: Some(runtime),
            hub,
            local_addr,
            shutdown: Some(shutdown),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<WebStats> {
        self.hub.stats()
    }

    /// The hub (sessions, limits), e.g. to feed it notices from another thread.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The participants' URL: the listening address, or this machine's address on the
    /// local network when it listens on all interfaces.
    pub fn participant_url(&self) -> String {
        format!("http://{}/", reachable(self.local_addr))
    }

    /// The conductor's URL, carrying the secret.
    pub fn conductor_url(&self) -> String {
        format!(
            "http://{}/conductor?key={}",
            reachable(self.local_addr),
            self.hub.secret()
        )
    }

    /// Passes one of the engine's notices on (a phone learns its voice).
    pub fn notice(&self, notice: &Notice) {
        self.hub.notice(notice);
    }

    /// Stops serving (connections close) and joins the server's threads.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// The address phones can reach: an unspecified listening address is replaced by the
/// address of the interface that routes outward (found without sending anything).
fn reachable(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let outward = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(outward, addr.port())
}

/// A QR code of `text` for the terminal (two modules per character cell), or None if the
/// text is too long for one.
pub fn qr_code(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::theory::{Key, Mode};

    fn patch() -> WebPatch {
        WebPatch {
            dims: vec![],
            defaults: vec![],
            pad: [0, 1],
            voices: vec![],
            registers: vec![(48, 60)],
            sections: vec![],
            scale: Key::new(0, Mode::parse("major").unwrap()).scale(),
        }
    }

    #[test]
    fn taps_play_the_scale_across_the_register() {
        let p = patch();
        // C major from C3 to C4: 8 notes
        assert_eq!(p.tap_pitch(Some(0), 0.0), 48);
        assert_eq!(p.tap_pitch(Some(0), 1.0), 60);
        assert_eq!(p.tap_pitch(Some(0), 0.2), 50); // the 2nd of 8 → D
        let all: Vec<u8> = (0..=100)
            .map(|i| p.tap_pitch(Some(0), i as f32 / 100.0))
            .collect();
        assert!(all.iter().all(|n| p.scale.contains(*n as i32)));
        // before the voice is known: an octave from middle C
        assert_eq!(p.tap_pitch(None, 0.0), 60);
        assert_eq!(p.tap_pitch(None, f32::INFINITY), 72);
    }

    #[test]
    fn the_qr_code_is_drawn_in_blocks() {
        let qr = qr_code("http://192.168.1.20:8080/").unwrap();
        assert!(qr.lines().count() > 10);
        assert!(qr.contains('█') || qr.contains('▀'));
    }
}
