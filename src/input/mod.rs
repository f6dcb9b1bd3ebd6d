//! Inputs from outside the process — OSC over UDP and MIDI now; the room's microphone later —
//! turned into [`Message`](crate::Message)s stamped with the sample at which they apply.
//!
//! Input threads never touch the engine: they post through a
//! [`Controller`](crate::Controller) (bounded, non-blocking) and stamp every message with
//! [`Timing::At`](crate::Timing::At), so the engine lands it on its exact sample inside a
//! block instead of at the block's start.
//!
//! The stamp comes from a [`SampleClock`]: the audio side (a device callback, the offline
//! renderer or an embedding host) publishes, once per block, which sample the block starts
//! at and when; an input thread maps the instant it received an event to the engine's sample
//! timeline from that, plus a safety offset of one block ([`SampleClock::latency_frames`]).
//!
//! ```text
//!  audio callback                               input thread (OSC, MIDI …)
//!  clock.publish(engine.sample_position(), now) clock.sample_at(received) → Timing::At(sample)
//!  engine.process(block)                  ◀──── controller.send(Message { at, command })
//! ```
//!
//! Timeline: an event received at instant `t` maps to
//! `published_sample + (t − published_instant) × sample_rate + latency_frames`. The block the
//! callback is computing when the event arrives has already started, so without the offset
//! every "now" event would be late and land at the start of the next block; with one block of
//! offset it lands inside the next block at its true distance from the others, and the
//! spacing between events (a played rhythm) is kept, at a constant one-block delay.

pub mod midi;
pub mod osc;

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP/OSC epoch (1900-01-01) to the Unix epoch (1970-01-01), RFC 5905.
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Maps wall-clock time to the engine's sample timeline, shared between the audio side and
/// input threads without locks.
///
/// # Torn reads
///
/// The published pair (sample at a block's start, instant of that block) lives in two
/// `AtomicU64`s guarded by a sequence counter (a seqlock). [`publish`](Self::publish) makes
/// the counter odd, stores both values and makes it even again; a reader loads the counter,
/// both values and the counter again, and retries while the counter was odd or changed. So a
/// reader never combines one block's sample with another block's instant, and the writer (the
/// audio thread) never waits: it does three stores, a fence and a load. Readers spin only in
/// the few nanoseconds a publish is in progress. `publish` is meant for one thread at a time
/// (the audio thread); the memory orderings follow Boehm, "Can seqlocks get along with
/// programming language memory models?" (2012).
///
/// Instants are kept as nanoseconds since the clock's epoch (an [`Instant`] taken at creation,
/// paired with the [`SystemTime`] of the same moment for OSC time tags). Before the first
/// publish the clock assumes the engine was at sample 0 at the epoch.
#[derive(Debug)]
pub struct SampleClock {
    epoch: Instant,
    epoch_system: SystemTime,
    sample_rate: u32,
    latency_frames: AtomicU64,
    seq: AtomicU64,
    sample: AtomicU64,
    nanos: AtomicU64,
}

impl SampleClock {
    /// A clock at `sample_rate` Hz whose epoch is now, with `latency_frames` of safety offset
    /// (one block of the audio callback is the usual choice).
    pub fn new(sample_rate: u32, latency_frames: u64) -> SampleClock {
        Self::with_epoch(
            sample_rate,
            latency_frames,
            Instant::now(),
            SystemTime::now(),
        )
    }

    /// A clock whose epoch is the given pair of the same moment on the monotonic and the
    /// system clock (tests and hosts that keep their own correspondence use this).
    pub fn with_epoch(
        sample_rate: u32,
        latency_frames: u64,
        epoch: Instant,
        epoch_system: SystemTime,
    ) -> SampleClock {
        SampleClock {
            epoch,
            epoch_system,
            sample_rate: sample_rate.max(1),
            latency_frames: AtomicU64::new(latency_frames),
            seq: AtomicU64::new(0),
            sample: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The monotonic instant of the clock's epoch.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The system time of the clock's epoch (used for OSC time tags).
    pub fn epoch_system(&self) -> SystemTime {
        self.epoch_system
    }

    /// Safety offset added to every mapped sample.
    pub fn latency_frames(&self) -> u64 {
        self.latency_frames.load(Ordering::Relaxed)
    }

    /// Changes the safety offset (e.g. when the device's block size changes). Any thread.
    pub fn set_latency_frames(&self, frames: u64) {
        self.latency_frames.store(frames, Ordering::Relaxed);
    }

    /// Publishes that the block starting at absolute `sample` began at instant `at`. Call once
    /// per block from the audio thread (one publisher at a time). Real-time safe: no
    /// allocation, lock or wait.
    pub fn publish(&self, sample: u64, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.sample.store(sample, Ordering::Relaxed);
        self.nanos.store(nanos, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The last published pair (sample, nanoseconds since the epoch), read consistently.
    fn snapshot(&self) -> (u64, u64) {
        let mut spins = 0u32;
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let sample = self.sample.load(Ordering::Relaxed);
                let nanos = self.nanos.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return (sample, nanos);
                }
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // the publisher was preempted mid-write; let it finish
                std::thread::yield_now();
            }
        }
    }

    /// The last published block start: its sample and instant.
    pub fn published(&self) -> (u64, Instant) {
        let (sample, nanos) = self.snapshot();
        (sample, self.epoch + Duration::from_nanos(nanos))
    }

    /// The sample at which an event that happened at `at` applies: the published sample plus
    /// the time elapsed since that block started, plus [`latency_frames`](Self::latency_frames).
    /// Instants before the published block give earlier samples (saturating at 0).
    pub fn sample_at(&self, at: Instant) -> u64 {
        self.sample_at_nanos(Self::signed_nanos(at, self.epoch))
    }

    /// [`sample_at`](Self::sample_at) for [`Instant::now`].
    pub fn now(&self) -> u64 {
        self.sample_at(Instant::now())
    }

    /// The sample for a moment on the system clock (an OSC time tag); a moment already past
    /// maps to now.
    pub fn sample_at_system_time(&self, time: SystemTime) -> u64 {
        self.sample_at_system_time_from(time, Instant::now())
    }

    /// Like [`sample_at_system_time`](Self::sample_at_system_time), with `now` given: a
    /// moment before `now` maps to `now`.
    pub fn sample_at_system_time_from(&self, time: SystemTime, now: Instant) -> u64 {
        let nanos = match time.duration_since(self.epoch_system) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        self.sample_at_nanos(nanos).max(self.sample_at(now))
    }

    /// The sample for an OSC time tag (`seconds` since 1900 in the NTP era nearest the
    /// clock's epoch, plus `fraction` / 2³²). The tag 1 ("immediately") and tags before
    /// `now` map to `now`.
    pub fn sample_at_time_tag(&self, seconds: u32, fraction: u32, now: Instant) -> u64 {
        if (seconds, fraction) == (0, 1) {
            return self.sample_at(now);
        }
        let time = time_tag_to_system_time(seconds, fraction, self.epoch_system);
        self.sample_at_system_time_from(time, now)
    }

    fn signed_nanos(at: Instant, epoch: Instant) -> i128 {
        match at.checked_duration_since(epoch) {
            Some(d) => d.as_nanos() as i128,
            None => -(epoch.duration_since(at).as_nanos() as i128),
        }
    }

    fn sample_at_nanos(&self, nanos: i128) -> u64 {
        let (sample, published) = self.snapshot();
        let elapsed = nanos - published as i128;
        // rounded to the nearest sample; monotonic in `nanos` for one published pair
        let frames =
            (elapsed * self.sample_rate as i128 + NANOS_PER_SEC / 2).div_euclid(NANOS_PER_SEC);
        let total = sample as i128 + frames + self.latency_frames() as i128;
        total.clamp(0, u64::MAX as i128) as u64
    }
}

/// Converts an OSC/NTP time tag to a system time: `seconds` since 1900-01-01 plus
/// `fraction` / 2³² of a second. The 32-bit seconds wrap every 136 years (the next NTP era
/// begins in February 2036), so the era is chosen that puts the tag nearest `near`.
pub fn time_tag_to_system_time(seconds: u32, fraction: u32, near: SystemTime) -> SystemTime {
    let near_secs: i128 = match near.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i128,
        Err(e) => -(e.duration().as_secs() as i128),
    } + NTP_UNIX_OFFSET_SECS as i128;
    let era_len = 1i128 << 32;
    let era = near_secs.div_euclid(era_len);
    let secs = (era - 1..=era + 1)
        .map(|e| e * era_len + seconds as i128)
        .min_by_key(|s| (s - near_secs).abs())
        .unwrap_or(seconds as i128);
    let frac_nanos = ((fraction as i128 * NANOS_PER_SEC) + (1 << 31)) >> 32;
    let unix_nanos = (secs - NTP_UNIX_OFFSET_SECS as i128) * NANOS_PER_SEC + frac_nanos;
    let magnitude = unix_nanos.unsigned_abs();
    let duration = Duration::new(
        (magnitude / NANOS_PER_SEC as u128) as u64,
        (magnitude % NANOS_PER_SEC as u128) as u32,
    );
    if unix_nanos >= 0 {
        UNIX_EPOCH + duration
    } else {
        UNIX_EPOCH - duration
    }
}

/// Converts a system time to an OSC/NTP time tag `(seconds since 1900 mod 2³², fraction)`.
/// Times before 1900 give 0.
pub fn system_time_to_time_tag(time: SystemTime) -> (u32, u32) {
    let unix_nanos: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let ntp_nanos = (unix_nanos + NTP_UNIX_OFFSET_SECS as i128 * NANOS_PER_SEC).max(0);
    let secs = ntp_nanos / NANOS_PER_SEC;
    let sub = ntp_nanos % NANOS_PER_SEC;
    let fraction = ((sub << 32) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
    // a fraction that rounds up to a whole second carries into the seconds
    let (secs, fraction) = if fraction >= 1 << 32 {
        (secs + 1, 0)
    } else {
        (secs, fraction)
    };
    (secs as u32, fraction as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const SR: u32 = 48_000;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn maps_elapsed_time_to_samples_plus_the_offset() {
        let t0 = Instant::now();
        let clock = SampleClock::with_epoch(SR, 256, t0, SystemTime::now());
        // before any publish: sample 0 at the epoch
        assert_eq!(clock.sample_at(t0), 256);
        assert_eq!(clock.sample_at(t0 + secs(1.0)), 48_256);
        clock.publish(96_000, t0 + secs(2.0));
        assert_eq!(clock.published().0, 96_000);
        assert_eq!(clock.sample_at(t0 + secs(2.0)), 96_256);
        assert_eq!(clock.sample_at(t0 + secs(2.5)), 120_256);
        // 100 samples into the block
        let at = t0 + secs(2.0) + Duration::from_nanos(100 * 1_000_000_000 / SR as u64);
        assert_eq!(clock.sample_at(at), 96_000 + 100 + 256);
        // an instant before the published block maps before it; before sample 0 saturates
        assert_eq!(clock.sample_at(t0 + secs(1.5)), 72_256);
        clock.set_latency_frames(0);
        assert_eq!(clock.sample_at(t0), 0);
        assert_eq!(clock.latency_frames(), 0);
    }

    #[test]
    fn the_audio_clock_may_run_ahead_or_behind_the_wall_clock() {
        let t0 = Instant::now();
        let clock = SampleClock::with_epoch(SR, 0, t0, SystemTime::now());
        // the device delivered more samples than wall time says: the latest publish wins
        clock.publish(48_100, t0 + secs(1.0));
        assert_eq!(clock.sample_at(t0 + secs(1.0)), 48_100);
        clock.publish(95_900, t0 + secs(2.0));
        assert_eq!(clock.sample_at(t0 + secs(2.0)), 95_900);
    }

    #[test]
    fn system_times_and_time_tags_map_through_the_epoch_pair() {
        let t0 = Instant::now();
        let sys0 = SystemTime::now();
        let clock = SampleClock::with_epoch(SR, 256, t0, sys0);
        clock.publish(0, t0);
        let in_half = sys0 + secs(0.5);
        assert_eq!(clock.sample_at_system_time_from(in_half, t0), 24_256);
        // past → now
        let now = t0 + secs(1.0);
        assert_eq!(clock.sample_at_system_time_from(sys0, now), 48_256);
        // a time tag round trip, within a sample
        let (s, f) = system_time_to_time_tag(sys0 + secs(0.75));
        let sample = clock.sample_at_time_tag(s, f, t0);
        assert!(sample.abs_diff(36_256) <= 1, "{sample}");
        // 1 = immediately
        assert_eq!(clock.sample_at_time_tag(0, 1, now), 48_256);
        // a tag in the past is now
        let (s, f) = system_time_to_time_tag(sys0 - secs(3.0));
        assert_eq!(clock.sample_at_time_tag(s, f, now), 48_256);
    }

    #[test]
    fn time_tags_convert_in_the_nearest_ntp_era() {
        // 1970 in era 0
        let near = UNIX_EPOCH + secs(1_000_000.0);
        assert_eq!(
            time_tag_to_system_time(NTP_UNIX_OFFSET_SECS as u32, 0, near),
            UNIX_EPOCH
        );
        // half a second is 2^31
        assert_eq!(
            time_tag_to_system_time(NTP_UNIX_OFFSET_SECS as u32, 1 << 31, near),
            UNIX_EPOCH + secs(0.5)
        );
        // near the 2036 wrap, a small seconds value belongs to era 1
        let era1_start = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - NTP_UNIX_OFFSET_SECS);
        let near = era1_start - secs(10.0);
        assert_eq!(time_tag_to_system_time(5, 0, near), era1_start + secs(5.0));
        // and a large one just before the wrap stays in era 0
        assert_eq!(
            time_tag_to_system_time(u32::MAX, 0, era1_start + secs(10.0)),
            era1_start - secs(1.0)
        );
        // round trips
        for t in [
            UNIX_EPOCH + secs(1_700_000_000.123_456),
            era1_start + secs(3.25),
        ] {
            let (s, f) = system_time_to_time_tag(t);
            let back = time_tag_to_system_time(s, f, t);
            let error = back
                .duration_since(t)
                .unwrap_or_else(|e| e.duration())
                .as_nanos();
            assert!(error <= 1, "{error} ns");
        }
    }

    #[test]
    fn a_reader_never_sees_a_torn_pair_and_stays_monotonic_under_concurrent_publish() {
        // The publisher follows an exact timeline (block k starts at k × 256 samples and at
        // k × 256 / SR seconds), so every consistent pair gives the same mapping; a torn pair
        // (one block's sample with another's instant) would be off by whole blocks.
        const BLOCK: u64 = 256;
        let t0 = Instant::now();
        let clock = Arc::new(SampleClock::with_epoch(SR, BLOCK, t0, SystemTime::now()));
        let done = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (clock, done) = (clock.clone(), done.clone());
            std::thread::spawn(move || {
                let mut k = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let at = t0 + Duration::from_nanos(k * BLOCK * 1_000_000_000 / SR as u64);
                    clock.publish(k * BLOCK, at);
                    k = (k + 1) % 200_000;
                }
                k
            })
        };
        let mut last = 0;
        for i in 0..400_000u64 {
            let q = i * 2_000; // nanoseconds, increasing
            let sample = clock.sample_at(t0 + Duration::from_nanos(q));
            let ideal = (q as f64 * SR as f64 / 1e9).round() as u64 + BLOCK;
            assert!(
                sample.abs_diff(ideal) <= 1,
                "query {i}: {sample} vs {ideal} (a torn pair?)"
            );
            assert!(
                sample >= last,
                "query {i}: went back from {last} to {sample}"
            );
            last = sample;
        }
        done.store(true, Ordering::Relaxed);
        publisher.join().unwrap();
    }
}
