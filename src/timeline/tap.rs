//! Feeding a [`Timeline`] from a running engine: its notices, its journal of applied
//! commands and the communal mood it publishes in its [`Status`](crate::Status).

use std::sync::atomic::Ordering;

use super::Timeline;
use crate::control::{Controller, Journal};
use crate::engine::{Engine, CONTROL_PERIOD, MAX_BLOCK_FRAMES};
use crate::patch::Patch;
use crate::performance::Performance;
use crate::render::{render_watched, RenderOptions, Watch};

/// Capacity of the journal a tap opens: one `process` call of at most [`MAX_BLOCK_FRAMES`]
/// applies at most `apply_per_tick` commands per control period, so draining after every
/// call loses nothing.
fn journal_capacity(engine: &Engine) -> usize {
    engine.limits().apply_per_tick * MAX_BLOCK_FRAMES.div_ceil(CONTROL_PERIOD as usize) + 1
}

/// Feeds a [`Timeline`] from an engine's control side. Call [`TimelineTap::after_process`]
/// after every `Engine::process` (zero-length calls included) and end every block on
/// [`TimelineTap::frames_before_next_mood`], so the mood is read at fixed positions.
pub struct TimelineTap {
    timeline: Timeline,
    controller: Controller,
    journal: Journal,
}

impl TimelineTap {
    /// Opens the engine's journal (replacing any journal already open) and starts a
    /// timeline of `piece` at the engine's position; takes over the controller's notices.
    /// Allocates: call before rendering.
    pub fn attach(piece: &str, engine: &mut Engine, controller: &Controller) -> Self {
        let journal = engine.enable_journal(journal_capacity(engine));
        let timeline = Timeline::new(piece, controller.names(), engine.config());
        let mut tap = Self {
            timeline,
            controller: controller.clone(),
            journal,
        };
        tap.after_process();
        tap
    }

    /// How many of `wanted` frames the next `process` call may render, from the engine's
    /// `position`, so that the block ends on the next mood point (at least 1).
    pub fn frames_before_next_mood(&self, position: u64, wanted: usize) -> usize {
        let next = self.timeline.next_mood_sample();
        if next > position {
            wanted.min((next - position).min(usize::MAX as u64) as usize)
        } else {
            wanted
        }
        .max(1)
    }

    /// Takes what the engine reported during the last `process` call, and the mood if a
    /// point is due at (or was passed by) the engine's position.
    pub fn after_process(&mut self) {
        while let Some(notice) = self.controller.try_notice() {
            self.timeline.observe(&notice);
        }
        while let Ok(applied) = self.journal.try_recv() {
            self.timeline.observe_applied(&applied);
        }
        let status = self.controller.status();
        let position = status.sample_position.load(Ordering::Relaxed);
        if position >= self.timeline.next_mood_sample() {
            let dims = self.timeline.dimensions().len();
            let mut mood = [0.0f32; crate::engine::config::MAX_DIMS];
            for (d, v) in mood.iter_mut().enumerate().take(dims) {
                *v = status.mood(d);
            }
            self.timeline.observe_mood(position, &mood[..dims]);
        }
    }

    /// The timeline so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Ends the timeline at the engine's position, with its lost-notice counters.
    pub fn finish(mut self) -> Timeline {
        self.after_process();
        let status = self.controller.status();
        self.timeline.finish(
            status.sample_position.load(Ordering::Relaxed),
            status.dropped_notices.load(Ordering::Relaxed),
            status.dropped_journal.load(Ordering::Relaxed),
        );
        self.timeline
    }
}

/// Renders a performance into interleaved stereo samples exactly as
/// [`render::render`](crate::render::render) does, with the [`Timeline`] of what happened
/// when (see [`render_watched`](crate::render::render_watched)).
pub fn render_with_timeline(
    patch: &Patch,
    performance: &Performance,
    options: &RenderOptions,
) -> (Vec<f32>, Timeline) {
    let watch = Watch {
        timeline: true,
        plot_width: None,
    };
    let (audio, _, watched) = render_watched(patch, performance, options, watch, |_, _, _| {});
    (audio, watched.timeline.expect("a timeline was asked for"))
}
