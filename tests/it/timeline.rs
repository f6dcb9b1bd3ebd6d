//! The render's timeline and picture: what happened when (sections, joins, leaves, cues,
//! refusals, the communal mood) checked against the performance, the engine's own notices
//! and a scripted ramp; the PNG checked on its pixels.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tapestry::control::{Command, MoodTarget, Notice};
use tapestry::engine::{Engine, CONTROL_PERIOD, MIN_SMOOTHING_SECS};
use tapestry::performance::TimedCommand;
use tapestry::plot::{plot_render, PlotBuilder, PlotLayout};
use tapestry::render::{render, RenderOptions};
use tapestry::timeline::{render_with_timeline, EventKind, Timeline, MOOD_RATE_HZ};
use tapestry::{Message, Patch, Performance, Timing};

use crate::common::{archetype, dim, patch, Script, SR};

fn options(block_frames: usize) -> RenderOptions {
    RenderOptions {
        sample_rate: SR,
        seed: None,
        duration_frames: None,
        block_frames,
    }
}

fn shipped(name: &str) -> (Patch, Performance) {
    let patch = patch(&format!("{name}.toml"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("patches")
        .join(format!("{name}.performance.toml"));
    let performance = Performance::load(&path, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    (patch, performance)
}

fn out_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The engine's notices from a plain render loop of its own (blocks of 1000 frames).
fn engine_notices(patch: &Patch, performance: &Performance) -> Vec<Notice> {
    let (mut engine, controller) = Engine::new(patch.config(SR, performance.seed), patch.names());
    let mut notices = Vec::new();
    let mut next = 0;
    let mut done = 0u64;
    let mut block = vec![0.0f32; 2 * 1000];
    while done < performance.duration_frames {
        let frames = 1000.min(performance.duration_frames - done);
        let end = done + frames;
        while next < performance.commands.len() && performance.commands[next].sample < end {
            let c = performance.commands[next];
            let message = Message {
                at: Timing::At(c.sample),
                command: c.command,
            };
            if controller.send(message).is_ok() {
                next += 1;
            } else {
                engine.process(&mut []);
            }
        }
        engine.process(&mut block[..2 * frames as usize]);
        notices.extend(std::iter::from_fn(|| controller.try_notice()));
        done = end;
    }
    notices
}

/// The first control tick at or after the bar line that follows `sample` (constant tempo).
fn next_bar_line(patch: &Patch, sample: u64) -> u64 {
    let bar = 60.0 / patch.tempo_bpm() as f64 * patch.beats_per_bar() as f64 * SR as f64;
    let line = ((sample as f64 / bar).floor() + 1.0) * bar;
    (line / CONTROL_PERIOD as f64).ceil() as u64 * CONTROL_PERIOD
}

#[test]
fn a_shipped_piece_timeline_matches_its_performance_and_the_engines_notices() {
    let (patch, performance) = shipped("sleep-gathering");
    let (audio, timeline) = render_with_timeline(&patch, &performance, &options(4096));
    assert_eq!(
        audio,
        render(&patch, &performance, &options(4096), |_, _| {}),
        "the tap must not change the render"
    );
    assert_eq!(timeline.end_sample(), performance.duration_frames);
    assert_eq!(timeline.lost(), (0, 0));
    let name = |list: &[String], i: usize| list[i].clone();

    // joins, leaves and sections are the engine's notices, by name and to the sample
    let mut expected = Vec::new();
    for n in engine_notices(&patch, &performance) {
        expected.push(match n {
            Notice::Joined {
                participant,
                archetype,
                at_sample,
            } => (
                at_sample,
                EventKind::Join {
                    participant,
                    archetype: name(&patch.archetypes, archetype as usize),
                },
            ),
            Notice::Left {
                participant,
                at_sample,
            } => (at_sample, EventKind::Leave { participant }),
            Notice::SectionChanged {
                section,
                bar,
                at_sample,
            } => (
                at_sample,
                EventKind::Section {
                    section: name(&patch.sections, section as usize),
                    bar,
                },
            ),
            Notice::Refused { .. } => continue,
        });
    }
    let recorded: Vec<_> = timeline
        .events()
        .iter()
        .filter(|e| {
            !matches!(
                e.kind,
                EventKind::Cue { .. } | EventKind::Refused { .. } | EventKind::Tempo { .. }
            )
        })
        .map(|e| (e.sample, e.kind.clone()))
        .collect();
    assert_eq!(recorded, expected);
    assert!(
        expected.len() > 20,
        "a story with its cast: {}",
        expected.len()
    );

    // and they are what the performance asked for, when it asked
    let joins = performance_joins(&patch, &performance.commands);
    let recorded_joins: Vec<_> = timeline
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Join {
                participant,
                archetype,
            } => Some((e.sample, *participant, archetype.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(recorded_joins.len(), joins.len());
    for ((sample, id, arch), (want_sample, want_id, want_arch)) in recorded_joins.iter().zip(&joins)
    {
        assert_eq!((sample, id), (want_sample, want_id));
        if let Some(want) = want_arch {
            assert_eq!(arch, want);
        }
    }
    check_cues(&patch, &performance, &timeline);
    check_sections(&patch, &timeline);
    check_picture_sections(&audio, &timeline);
}

/// (sample, participant, archetype asked for) of every join in a performance.
fn performance_joins(patch: &Patch, commands: &[TimedCommand]) -> Vec<(u64, u32, Option<String>)> {
    commands
        .iter()
        .filter_map(|c| match c.command {
            Command::Join {
                participant,
                archetype,
            } => Some((
                c.sample,
                participant,
                archetype.map(|a| patch.archetypes[a as usize].clone()),
            )),
            _ => None,
        })
        .collect()
}

/// Every cue of the performance is in the timeline at its sample, and the cued section
/// follows on the next bar line.
fn check_cues(patch: &Patch, performance: &Performance, timeline: &Timeline) {
    for c in &performance.commands {
        let Command::Cue { section } = c.command else {
            continue;
        };
        let section = patch.sections[section as usize].clone();
        let at = |kind: &EventKind| {
            timeline
                .events()
                .iter()
                .find(|e| &e.kind == kind)
                .map(|e| e.sample)
        };
        assert_eq!(
            at(&EventKind::Cue {
                section: section.clone()
            }),
            Some(c.sample)
        );
        let landed = timeline.events().iter().find(|e| {
            e.sample >= c.sample
                && matches!(&e.kind, EventKind::Section { section: s, .. } if *s == section)
        });
        assert_eq!(
            landed.map(|e| e.sample),
            Some(next_bar_line(patch, c.sample)),
            "cue to {section} at {}",
            c.sample
        );
    }
}

/// The sections tile the render: the patch's start section first, each one from its
/// section event to the next, the last to the end; the JSON says the same by name.
fn check_sections(patch: &Patch, timeline: &Timeline) {
    let sections = timeline.sections();
    let start = patch.config(SR, None).start_section as usize;
    assert_eq!(sections[0].name, patch.sections[start]);
    assert_eq!(sections[0].start_sample, 0);
    let changes: Vec<_> = timeline
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Section { section, bar } => Some((e.sample, section.clone(), *bar)),
            _ => None,
        })
        .collect();
    assert_eq!(sections.len(), changes.len() + 1);
    for (s, (sample, name, bar)) in sections[1..].iter().zip(&changes) {
        assert_eq!(
            (s.start_sample, &s.name, s.start_bar),
            (*sample, name, *bar)
        );
    }
    for w in sections.windows(2) {
        assert_eq!(w[0].end_sample, w[1].start_sample);
    }
    assert_eq!(sections.last().unwrap().end_sample, timeline.end_sample());
    let json: Value = serde_json::from_str(&timeline.to_json().unwrap()).unwrap();
    let json_sections = json["sections"].as_array().unwrap();
    assert_eq!(json_sections.len(), sections.len());
    for (j, s) in json_sections.iter().zip(&sections) {
        assert_eq!(j["name"], s.name.as_str());
        assert_eq!(j["start_sample"], s.start_sample);
        // serde_json's default float parsing may be off in the last digit
        let seconds = j["start_seconds"].as_f64().unwrap();
        assert!((seconds - s.start_sample as f64 / SR as f64).abs() < 1e-9);
    }
    for e in json["events"].as_array().unwrap() {
        if e["type"] == "join" {
            let arch = e["archetype"].as_str().unwrap();
            assert!(patch.archetypes.iter().any(|a| a == arch), "{arch}");
        }
    }
}

/// The picture of the piece shows its sections as bands of their own colours, with a
/// label in each band wide enough for one.
fn check_picture_sections(audio: &[f32], timeline: &Timeline) {
    let path = out_path("sleep-gathering.png");
    let layout = plot_render(audio, timeline, 1600, Some(-16.0), &path).unwrap();
    let image = Png::read(&path);
    assert_eq!((image.width, image.height), (1600, 1000));
    let duration = timeline.end_sample() as f64 / SR as f64;
    let band_y = layout.sections_y.start as u32 + 3;
    let sections = timeline.sections();
    for w in sections.windows(2) {
        let mid = |s: &tapestry::timeline::Section| (s.start_seconds + s.end_seconds) / 2.0;
        let a = image.pixel(layout.x_of(mid(&w[0]), duration) as u32, band_y);
        let b = image.pixel(layout.x_of(mid(&w[1]), duration) as u32, band_y);
        assert_ne!(a, b, "{} and {} share a colour", w[0].name, w[1].name);
    }
    for s in &sections {
        let (x0, x1) = (
            layout.x_of(s.start_seconds, duration),
            layout.x_of(s.end_seconds, duration),
        );
        if x1 - x0 > 120 {
            // dark label text near the start of the band
            let dark = (x0 + 3..x0 + 60)
                .flat_map(|x| (layout.sections_y.clone()).map(move |y| (x, y)))
                .filter(|&(x, y)| image.luma(x as u32, y as u32) < 90.0)
                .count();
            assert!(dark > 20, "{} has no label ({dark} dark pixels)", s.name);
        }
    }
}

#[test]
fn the_timeline_is_the_same_for_blocks_of_64_and_4096_frames() {
    let (patch, performance) = shipped("sleep-gathering");
    let (audio_64, small) = render_with_timeline(&patch, &performance, &options(64));
    let (audio_4096, large) = render_with_timeline(&patch, &performance, &options(4096));
    assert!(audio_64 == audio_4096, "block size changed the audio");
    let (small, large) = (small.to_json().unwrap(), large.to_json().unwrap());
    assert!(small == large, "block size changed the timeline");
    let json: Value = serde_json::from_str(&small).unwrap();
    let samples = json["mood"]["sample"].as_array().unwrap();
    let interval = (SR / MOOD_RATE_HZ) as u64;
    assert_eq!(json["mood"]["interval_samples"], interval);
    assert_eq!(
        samples.len() as u64,
        performance.duration_frames / interval + 1
    );
    for (k, s) in samples.iter().enumerate() {
        assert_eq!(s.as_u64(), Some(k as u64 * interval));
    }
    // the mood moves during the piece: not a constant series
    let energy = json["mood"]["values"]["energy"].as_array().unwrap();
    let values: Vec<f64> = energy.iter().map(|v| v.as_f64().unwrap()).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo > 0.3, "energy spans {lo}..{hi}");
}

/// Four voices, energy held at 0.1, ramped to 0.9 from 10 s to 20 s, held to 30 s.
fn ramp_script(patch: &Patch) -> (Performance, u8) {
    let energy = dim(patch, "energy");
    let ramp = |value, ramp_secs| Command::Mood {
        target: MoodTarget::Communal,
        dim: energy,
        value,
        ramp_secs,
    };
    let script = Script::default()
        .join(0.0, 1, Some(archetype(patch, "pad")))
        .join(0.0, 2, Some(archetype(patch, "bass")))
        .join(0.0, 3, Some(archetype(patch, "pluck")))
        .join(0.0, 4, None)
        .at(0.0, ramp(0.1, 0.0))
        .at(10.0, ramp(0.9, 10.0));
    (script.performance(30.0), energy)
}

/// The script's energy, then the engine's one-pole smoothing with time constant `tau`,
/// simulated at 1 ms; returns the value at each of `times`.
fn smoothed_script(start: f32, tau: f64, times: &[f64]) -> Vec<f64> {
    let target = |t: f64| {
        if t < 10.0 {
            0.1
        } else {
            0.1 + 0.8 * ((t - 10.0) / 10.0).min(1.0)
        }
    };
    let dt = 1e-3;
    let k = 1.0 - (-dt / tau).exp();
    let mut y = start as f64;
    let mut t = 0.0;
    let mut out = Vec::with_capacity(times.len());
    for &at in times {
        while t + dt <= at + 1e-9 {
            y += (target(t) - y) * k;
            t += dt;
        }
        out.push(y);
    }
    out
}

#[test]
fn the_mood_series_follows_a_scripted_ramp() {
    let patch = patch("minimal.toml");
    let (performance, energy) = ramp_script(&patch);
    let (_, timeline) = render_with_timeline(&patch, &performance, &options(512));
    let json: Value = serde_json::from_str(&timeline.to_json().unwrap()).unwrap();
    let name = &patch.dims[energy as usize];
    let values: Vec<f64> = json["mood"]["values"][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let seconds: Vec<f64> = json["mood"]["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 30 * MOOD_RATE_HZ as usize + 1);
    let config = patch.config(SR, None);
    let d = &config.dims[energy as usize];
    let tau = d.smoothing_secs.max(MIN_SMOOTHING_SECS) as f64;
    let expected = smoothed_script(d.default, tau, &seconds);
    let worst = values
        .iter()
        .zip(&expected)
        .map(|(v, e)| (v - e).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.01, "mood strays {worst} from the smoothed script");
    // the ramp itself: 0.1 held, a steady climb, 0.9 held
    let at = |t: f64| values[(t * MOOD_RATE_HZ as f64).round() as usize];
    assert!((at(9.5) - 0.1).abs() < 0.005, "{}", at(9.5));
    assert!((at(15.0 + tau) - 0.5).abs() < 0.02, "{}", at(15.0 + tau));
    assert!((at(29.5) - 0.9).abs() < 0.005, "{}", at(29.5));
    let climb = &values[10 * MOOD_RATE_HZ as usize..20 * MOOD_RATE_HZ as usize];
    assert!(
        climb.windows(2).all(|w| w[1] >= w[0]),
        "the ramp never falls"
    );
    // the other dimensions stay where they were
    for (other, dim) in patch.dims.iter().enumerate() {
        if other != energy as usize {
            let series = json["mood"]["values"][dim].as_array().unwrap();
            let first = series[0].as_f64().unwrap();
            assert!(series
                .iter()
                .all(|v| (v.as_f64().unwrap() - first).abs() < 1e-6));
        }
    }
}

#[test]
fn cues_tempo_changes_and_refusals_are_recorded_by_name() {
    let patch = patch("sleep-gathering.toml");
    let storm = patch.sections.iter().position(|s| s == "storm").unwrap() as u16;
    let script = Script::default()
        .join(0.0, 1, None)
        .at(3.0, Command::Cue { section: storm })
        .leave(4.0, 99)
        .join(5.0, 1, None)
        .at(6.0, Command::Tempo { bpm: 90.0 })
        .at(6.5, Command::Tempo { bpm: 1000.0 });
    let performance = script.performance(12.0);
    let (_, timeline) = render_with_timeline(&patch, &performance, &options(300));
    let json: Value = serde_json::from_str(&timeline.to_json().unwrap()).unwrap();
    let events: Vec<&Value> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "join")
        .collect();
    let s = |secs: f64| (secs * SR as f64) as u64;
    let cue = events.iter().find(|e| e["type"] == "cue").unwrap();
    assert_eq!(
        (cue["sample"].as_u64(), &cue["section"]),
        (Some(s(3.0)), &"storm".into())
    );
    assert_eq!(cue["seconds"], 3.0);
    let section = events.iter().find(|e| e["type"] == "section").unwrap();
    assert_eq!(section["section"], "storm");
    assert_eq!(
        section["sample"].as_u64(),
        Some(next_bar_line(&patch, s(3.0)))
    );
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "refused")
        .map(|e| {
            (
                e["sample"].as_u64().unwrap(),
                e["command"].as_str().unwrap(),
                e["participant"].as_u64(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (s(4.0), "leave", Some(99), "unknown_participant"),
            (s(5.0), "join", Some(1), "already_present"),
            (s(6.5), "tempo", None, "out_of_range"),
        ]
    );
    let tempo = events.iter().find(|e| e["type"] == "tempo").unwrap();
    assert_eq!(
        (tempo["sample"].as_u64(), &tempo["bpm"]),
        (Some(s(6.0)), &90.0.into())
    );
    let path = out_path("cues.json");
    timeline.write_json(&path).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written, json);
}

/// A decoded RGB picture.
struct Png {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Png {
    fn decode(bytes: &[u8]) -> Png {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        Png {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    fn read(path: &Path) -> Png {
        Png::decode(&std::fs::read(path).unwrap())
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y as usize * self.width as usize + x as usize);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn luma(&self, x: u32, y: u32) -> f32 {
        let [r, g, b] = self.pixel(x, y);
        0.2126 * r as f32 + 0.7152 * g as f32 + 0.0722 * b as f32
    }

    /// Mean luma over a time span (seconds) and a band of rows.
    fn mean_luma(
        &self,
        layout: &PlotLayout,
        secs: (f64, f64),
        dur: f64,
        rows: &std::ops::Range<i32>,
    ) -> f32 {
        let (x0, x1) = (layout.x_of(secs.0, dur), layout.x_of(secs.1, dur));
        let mut sum = 0.0;
        let mut n = 0.0;
        for x in x0..x1 {
            for y in rows.clone() {
                sum += self.luma(x as u32, y as u32);
                n += 1.0;
            }
        }
        sum / n
    }

    /// Mean row of the pixels of exactly this colour in a column span.
    fn mean_row_of(
        &self,
        color: [u8; 3],
        xs: std::ops::Range<i32>,
        rows: &std::ops::Range<i32>,
    ) -> Option<f32> {
        let hits: Vec<i32> = xs
            .flat_map(|x| rows.clone().map(move |y| (x, y)))
            .filter(|&(x, y)| self.pixel(x as u32, y as u32) == color)
            .map(|(_, y)| y)
            .collect();
        (!hits.is_empty()).then(|| hits.iter().sum::<i32>() as f32 / hits.len() as f32)
    }
}

/// Silence for 8 s, then four voices; energy 0.1 from 6 s, ramped to 0.9 from 16 s to 26 s.
fn plot_script(patch: &Patch) -> (Performance, u8) {
    let (mut performance, energy) = ramp_script(patch);
    // the same script 6 s later, with nobody present before 8 s
    for c in performance.commands.iter_mut() {
        c.sample += 6 * SR as u64;
        if matches!(c.command, Command::Join { .. }) {
            c.sample += 2 * SR as u64;
        }
    }
    performance.commands.sort_by_key(|c| c.sample);
    performance.duration_frames = 36 * SR as u64;
    (performance, energy)
}

#[test]
fn the_picture_shows_silence_dark_sound_bright_and_the_energy_line_rising() {
    let patch = patch("minimal.toml");
    let (performance, energy) = plot_script(&patch);
    let (audio, timeline) = render_with_timeline(&patch, &performance, &options(512));
    let mut builder = PlotBuilder::new(audio.len() as u64 / 2, SR, 1200);
    for block in audio.chunks(2 * 777) {
        builder.push_audio(block);
    }
    let (bytes, layout) = builder.finish_png(&timeline).unwrap();
    std::fs::write(out_path("ramp.png"), &bytes).unwrap();
    let image = Png::decode(&bytes);
    assert_eq!((image.width, image.height), (1200, 750));
    assert_eq!(builder.size(), (1200, 750));
    let dur = 36.0;

    // spectrogram: black while nobody plays, bright once the voices sound at full energy
    let silent = image.mean_luma(&layout, (1.0, 7.0), dur, &layout.spectrogram_y);
    let loud = image.mean_luma(&layout, (26.0, 35.0), dur, &layout.spectrogram_y);
    assert!(silent < 5.0, "silence should be dark: {silent}");
    assert!(
        loud > silent + 40.0,
        "sound should be bright: {loud} vs {silent}"
    );

    // loudness: the short-term line sits on the floor in the silence, high in the sound
    let short_term = [20, 55, 140];
    let column = |secs: f64| layout.x_of(secs, dur)..layout.x_of(secs, dur) + 3;
    let quiet_row = image
        .mean_row_of(short_term, column(5.0), &layout.loudness_y)
        .unwrap();
    let loud_row = image
        .mean_row_of(short_term, column(30.0), &layout.loudness_y)
        .unwrap();
    let panel = (layout.loudness_y.end - layout.loudness_y.start) as f32;
    assert!(
        quiet_row > layout.loudness_y.end as f32 - 4.0,
        "{quiet_row}"
    );
    assert!(
        loud_row < quiet_row - panel / 3.0,
        "{loud_row} vs {quiet_row}"
    );

    // mood: the energy line is low (0.1) before the ramp and high (0.9) after it
    let (name, color) = &layout.mood_colors[energy as usize];
    assert_eq!(name, &patch.dims[energy as usize]);
    let mood_h = (layout.mood_y.end - layout.mood_y.start) as f32;
    let row_of = |value: f32| layout.mood_y.end as f32 - value * mood_h;
    let low = image
        .mean_row_of(*color, column(14.0), &layout.mood_y)
        .unwrap();
    let high = image
        .mean_row_of(*color, column(34.0), &layout.mood_y)
        .unwrap();
    assert!((low - row_of(0.1)).abs() < 4.0, "{low} vs {}", row_of(0.1));
    assert!(
        (high - row_of(0.9)).abs() < 4.0,
        "{high} vs {}",
        row_of(0.9)
    );

    // who is in: the joins' ticks at 8 s, nothing before
    let join = [30, 140, 60];
    assert!(image
        .mean_row_of(join, column(8.0), &layout.participants_y)
        .is_some());
    assert!(image
        .mean_row_of(
            join,
            layout.x_of(0.5, dur)..layout.x_of(7.5, dur),
            &layout.participants_y
        )
        .is_none());

    // the same audio in other chunks draws the same picture
    let mut again = PlotBuilder::new(audio.len() as u64 / 2, SR, 1200);
    for block in audio.chunks(2 * 4096) {
        again.push_audio(block);
    }
    assert!(again.finish_png(&timeline).unwrap().0 == bytes);
}

#[test]
fn the_plot_builder_never_allocates_while_audio_streams_by() {
    use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
    // an hour at 48 kHz announced; memory is fixed when the builder is made
    let mut builder = PlotBuilder::new(3600 * SR as u64, SR, 1600);
    let block: Vec<f32> = (0..2 * 4096)
        .map(|i| (i as f32 * 0.01).sin() * 0.3)
        .collect();
    reset_violation_count();
    for _ in 0..200 {
        assert_no_alloc(|| builder.push_audio(&block));
    }
    assert_eq!(violation_count(), 0, "push_audio allocated or freed memory");
}
