//! Every bound of the control path in one place: how many producers get a ring of their own,
//! how much each ring and the engine's schedule hold, how far ahead a message may be
//! stamped, how much the audio thread takes and applies per block, and what the OSC server
//! allows each client. What happens past each bound is said beside it; nothing past a bound
//! is lost silently (it is refused with a reason and counted).

/// Bounds of the hand-off from [`Controller`](crate::Controller)s to the engine. Chosen when
/// the engine is built ([`Engine::with_limits`](crate::Engine::with_limits); [`Default`] for
/// [`Engine::new`](crate::Engine::new)); every field is clamped into the range its doc gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControlLimits {
    /// Producers with a ring of their own, 1..=256 (default 16). Every `Controller` clone
    /// claims a free ring; when none is free, the clone shares its parent's ring (and its
    /// share of the schedule). A ring goes back to the pool when its last controller drops.
    pub sources: usize,
    /// Messages one ring holds, 16..=65 536 (default 1024). A send to a full ring returns
    /// [`ControlError::QueueFull`](crate::ControlError::QueueFull) and is counted in
    /// `Status::dropped_messages`. The engine empties a whole ring in one block when the total
    /// budget allows, so an offline render that fills the ring before each block loses nothing.
    pub ring_capacity: usize,
    /// Messages the audio thread takes from all rings together in one `process` call,
    /// 16..=65 536 (default 4096); rings are drained round-robin, 64 at a time, so a flooding
    /// source cannot keep the others waiting. The rest wait in their rings.
    pub drain_per_block: usize,
    /// Entries one source may keep in the engine's schedule at once, 16..=65 536 (default
    /// 16 384). The schedule holds `sources × schedule_share` entries (about 48 bytes each,
    /// reserved in `Engine::new`, touched only as it fills), so one source filling its share
    /// never takes room from another. A message past its source's share is refused
    /// ([`Refusal::ScheduleFull`](crate::Refusal::ScheduleFull)). The default lets an offline
    /// render hand over, in one block of the largest size (8192 frames), every message the
    /// engine could have applied live in that time (`apply_per_tick` per 32 samples), so the
    /// recording of any live show re-renders with any block size.
    pub schedule_share: usize,
    /// How far ahead of the engine's position a message may be stamped, in seconds,
    /// 0.1..=3600 (default 10). A message stamped later is refused
    /// ([`Refusal::TooFarAhead`](crate::Refusal::TooFarAhead)): nobody can park messages in the
    /// schedule for the rest of the show. Offline renders hand messages over as they fall due.
    pub horizon_secs: f64,
    /// Messages applied in one control period of 32 samples, 8..=4096 (default 64, i.e. up to
    /// 96 000 per second at 48 kHz). Messages due beyond it apply at the next control period,
    /// in order; the count is on the engine's sample timeline, so renders stay independent of
    /// the block size. This bounds the audio thread's work per block.
    pub apply_per_tick: usize,
    /// Notices (joins, leaves, refusals, sections) waiting for the control side, 16..=65 536
    /// (default 1024); past it notices are counted in `Status::dropped_notices`.
    pub notice_capacity: usize,
}

impl Default for ControlLimits {
    fn default() -> Self {
        ControlLimits {
            sources: 16,
            ring_capacity: 1024,
            drain_per_block: 4096,
            schedule_share: 16_384,
            horizon_secs: 10.0,
            apply_per_tick: 64,
            notice_capacity: 1024,
        }
    }
}

impl ControlLimits {
    /// The limits with every field clamped into its documented range.
    pub fn clamped(self) -> ControlLimits {
        let horizon_secs = if self.horizon_secs.is_finite() {
            self.horizon_secs.clamp(0.1, 3600.0)
        } else {
            ControlLimits::default().horizon_secs
        };
        ControlLimits {
            sources: self.sources.clamp(1, 256),
            ring_capacity: self.ring_capacity.clamp(16, 65_536),
            drain_per_block: self.drain_per_block.clamp(16, 65_536),
            schedule_share: self.schedule_share.clamp(16, 65_536),
            horizon_secs,
            apply_per_tick: self.apply_per_tick.clamp(8, 4096),
            notice_capacity: self.notice_capacity.clamp(16, 65_536),
        }
    }

    /// Entries the whole schedule holds: `sources × schedule_share`.
    pub fn schedule_capacity(&self) -> usize {
        self.sources * self.schedule_share
    }
}

/// Rings are drained in rounds of this many messages per source.
pub const DRAIN_ROUND: usize = 64;

/// Bounds of the OSC server ([`OscServer`](crate::input::osc::OscServer)): per client
/// address, for all clients together, and for the socket.
pub mod osc {
    /// Receive buffer asked of the kernel for the server's socket (`SO_RCVBUF`), in bytes:
    /// 4 MiB, about 10 000 small datagrams. Linux grants at most `net.core.rmem_max` (often
    /// 208 KiB; raise it with `sysctl -w net.core.rmem_max=8388608`); the size granted is
    /// printed when the server starts and datagrams the kernel dropped for lack of room are
    /// counted (`OscStats::kernel_drops`).
    pub const RECV_BUFFER_BYTES: usize = 4 << 20;
    /// Messages one client address may have handed to the engine and not yet due, when they
    /// are stamped more than [`NEAR_SECS`] ahead (bundles with future time tags): 256. More
    /// are refused ("client's schedule share is full").
    pub const CLIENT_SCHEDULED: usize = 256;
    /// Future-dated messages all clients together may have pending: 512, a small part of the
    /// OSC source's share of the engine's schedule, so live messages always find room.
    pub const SCHEDULED_TOTAL: usize = 512;
    /// A message due less than this far ahead of now counts as live, not future-dated.
    pub const NEAR_SECS: f64 = 0.25;
    /// Messages one client address may hand to the engine per second, sustained: 4000.
    pub const CLIENT_RATE_PER_SEC: f64 = 4000.0;
    /// Messages one client address may send at once above its rate (one bundle's worth).
    pub const CLIENT_BURST: f64 = 1000.0;
    /// Datagrams one client address may send per second, sustained: 4000. Checked on the
    /// datagram's length and source alone, before it is decoded: past it (or past
    /// [`CLIENT_BYTES_PER_SEC`]) a datagram is dropped unread and counted
    /// (`over_budget`), so a flooding address costs the server a table lookup per datagram
    /// and the server keeps up with what the kernel delivers.
    pub const CLIENT_DATAGRAMS_PER_SEC: f64 = 4000.0;
    /// Datagrams one client address may send at once above its datagram rate: 500.
    pub const CLIENT_DATAGRAM_BURST: f64 = 500.0;
    /// Bytes one client address may send per second, sustained: 256 KiB (about 6000 small
    /// messages, more than its message rate lets through).
    pub const CLIENT_BYTES_PER_SEC: f64 = 256.0 * 1024.0;
    /// Bytes one client address may send at once above its byte rate: one datagram of the
    /// largest size ([`MAX_PACKET_BYTES`](crate::input::osc::MAX_PACKET_BYTES)).
    pub const CLIENT_BYTE_BURST: f64 = 65_536.0;
    /// Participants one client address may have joined at once: 16. A join past it is
    /// refused ("client's participant quota reached"); a leave (from any address) frees
    /// the id's place. So joins from one address cannot fill the patch's capacity.
    pub const CLIENT_PARTICIPANTS: u32 = 16;
    /// Messages waiting in one client address's queue to the engine: 1024. The server
    /// forwards the queues round-robin, one message per client in turn, into the engine's
    /// ring as the audio thread makes room, so a flooding client waits in its own queue and
    /// never takes the ring's room from another. A message past it is refused ("engine
    /// queue full").
    pub const CLIENT_QUEUE: usize = 1024;
    /// Messages waiting in all clients' queues together: 16 384 (about 0.5 MB).
    pub const QUEUED_TOTAL: usize = 16_384;
    /// The server refuses messages stamped further ahead than the engine's horizon less this
    /// (in seconds), so the engine, whose position may trail the clock by a block or two,
    /// never has to.
    pub const HORIZON_MARGIN_SECS: f64 = 1.0;
    /// Addresses that have not proved themselves (see [`MAX_SUBSCRIBERS`]) the server keeps
    /// budgets for: 256. Past it the least recently heard quarter of those without pending
    /// scheduled messages is forgotten at once (so a sender forging a new source address per
    /// datagram costs a constant time per datagram); if every one has some, new addresses
    /// share one overflow budget. Forgotten addresses start again from a full budget, which
    /// is why all of them together also share [`UNPROVEN_DATAGRAMS_PER_SEC`] and the other
    /// `UNPROVEN_*` budgets. Addresses that proved themselves are never forgotten for them.
    pub const MAX_CLIENTS: usize = 256;
    /// Addresses that proved themselves and get replies (acks, status): 64; past it the
    /// least recently heard is dropped (it may say hello again). Each keeps the per-address
    /// budgets of its own, outside the `UNPROVEN_*` ones, and on Linux gets a socket of its
    /// own (connected to it, sharing the server's port), so a flood on the server's socket
    /// cannot fill the kernel buffer its datagrams wait in.
    pub const MAX_SUBSCRIBERS: usize = 64;
    /// Datagrams all addresses that have not proved themselves may send per second
    /// together, sustained: 8000 (bursts of [`UNPROVEN_DATAGRAM_BURST`]). Past it (or past
    /// [`UNPROVEN_BYTES_PER_SEC`]) a datagram from such an address is dropped unread and
    /// counted (`unproven`). A sender that forges a new source address per datagram gets a
    /// fresh per-address budget each time, but never more than this.
    pub const UNPROVEN_DATAGRAMS_PER_SEC: f64 = 8000.0;
    /// Datagrams the unproven addresses may send at once above their shared rate: 1000.
    pub const UNPROVEN_DATAGRAM_BURST: f64 = 1000.0;
    /// Bytes all unproven addresses may send per second together: 512 KiB.
    pub const UNPROVEN_BYTES_PER_SEC: f64 = 512.0 * 1024.0;
    /// Bytes the unproven addresses may send at once above their shared byte rate: 128 KiB.
    pub const UNPROVEN_BYTE_BURST: f64 = 128.0 * 1024.0;
    /// Messages all unproven addresses may hand to the engine per second together: 8000
    /// (bursts of [`UNPROVEN_BURST`]); past it refused (`unproven`).
    pub const UNPROVEN_RATE_PER_SEC: f64 = 8000.0;
    /// Messages the unproven addresses may send at once above their shared rate: 2000.
    pub const UNPROVEN_BURST: f64 = 2000.0;
    /// Participants all unproven addresses together may have joined at once: 16. A join
    /// past it is refused (`unproven`), so forged addresses cannot fill the room.
    pub const UNPROVEN_PARTICIPANTS: u32 = 16;
    /// Future-dated messages all unproven addresses together may have pending: 256, half of
    /// [`SCHEDULED_TOTAL`].
    pub const UNPROVEN_SCHEDULED: usize = 256;
    /// Handshake datagrams (`/tapestry/hello h:…` and `/tapestry/subscribe h:…`, recognized
    /// by their exact bytes before decoding) all unproven addresses may send per second
    /// together: 2000 (bursts of 200). They are judged apart from the other `UNPROVEN_*`
    /// budgets, so a flood of other datagrams does not keep a client from proving itself.
    pub const HANDSHAKES_PER_SEC: f64 = 2000.0;
    /// Handshake datagrams the unproven addresses may send at once above their rate: 200.
    pub const HANDSHAKE_BURST: f64 = 200.0;
    /// A subscriber not heard from for this long gets no more replies until it says hello
    /// again: 10 minutes.
    pub const SUBSCRIPTION_SECS: u64 = 600;
}
