//! The performer's console drives the engine through the controller: a cue key moves the
//! section at the next bar line and the view shows it, a nudge moves the communal mood, and a
//! show played from the console and recorded re-renders bit for bit.

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::common::*;
use tapestry::console::{Action, Console, Key, Outcome};
use tapestry::control::{Controller, Status};
use tapestry::record::{Recorder, RecorderThread};
use tapestry::render::{render, RenderOptions};
use tapestry::status_view::{self, MoodRow, Snapshot};
use tapestry::{Engine, Patch, Performance};

use std::sync::atomic::Ordering;

const BLOCK: usize = 512;

/// What the show loop reads for the console and the view: the section and the mood.
fn snapshot(status: &Status, patch: &Patch) -> Snapshot {
    let config = patch.config(SR, None);
    let section_index = status.section.load(Ordering::Relaxed) as usize;
    Snapshot {
        section: patch.sections[section_index].clone(),
        section_index,
        bar: status.bar.load(Ordering::Relaxed) + 1,
        mood: patch
            .dims
            .iter()
            .zip(&config.dims)
            .enumerate()
            .map(|(i, (name, d))| MoodRow {
                name: name.clone(),
                value: status.mood(i),
                min: d.min,
                max: d.max,
            })
            .collect(),
        ..Snapshot::default()
    }
}

/// The view's rows on a 100 x 30 terminal.
fn view(s: &Snapshot, console: &Console) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| status_view::draw(f, s, &console.selection))
        .unwrap();
    let b = terminal.backend().buffer();
    (0..b.area.height)
        .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect())
        .collect()
}

/// Presses `key` on the console; what it sends goes to the engine.
fn press(console: &mut Console, key: Key, controller: &Controller, patch: &Patch) {
    let action = Action::for_key(key).unwrap();
    match console.act(action, &snapshot(controller.status(), patch)) {
        Outcome::Send(command) => controller.command(command).unwrap(),
        Outcome::Redraw => {}
        other => panic!("{key:?} did {other:?}"),
    }
}

fn play(engine: &mut Engine, secs: f64, out: &mut Vec<f32>) {
    let mut block = [0.0f32; 2 * BLOCK];
    for _ in 0..(secs * SR as f64 / BLOCK as f64).ceil() as usize {
        engine.process(&mut block);
        out.extend_from_slice(&block);
    }
}

#[test]
fn console_keys_cue_and_nudge_and_the_recorded_show_re_renders_bit_for_bit() {
    let patch = patch("sleep-gathering.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let journal = engine.enable_journal(1 << 16);
    let path = temp_file("console", "show.performance.toml");
    let recorder = Recorder::create(&path, &patch.name, patch.names(), patch.seed(), 0.0).unwrap();
    let recording = RecorderThread::spawn(recorder, journal, path.clone());
    for id in 1..=3 {
        controller.join(id, None).unwrap();
    }
    let mut console = Console::new(patch.dims.len(), patch.sections.len());
    let mut live = Vec::new();
    let status = controller.status().clone();
    let section = || patch.sections[status.section.load(Ordering::Relaxed) as usize].clone();
    play(&mut engine, 1.0, &mut live);
    assert_eq!(section(), "gathering");

    // n: the next section in patch order, from the next bar line (a bar is 3.3 s at 72 BPM)
    press(&mut console, Key::Char('n'), &controller, &patch);
    play(&mut engine, 0.5, &mut live);
    assert_eq!(section(), "gathering", "a cue waits for the bar line");
    play(&mut engine, 3.5, &mut live);
    assert_eq!(section(), "disruption");
    let rows = view(&snapshot(&status, &patch), &console);
    assert!(
        rows.iter().any(|r| r.starts_with("section   disruption")),
        "{}",
        rows.join("\n")
    );

    // ↓ down to tension, then + four times: 20 % of its range higher
    let tension = patch.dims.iter().position(|d| d == "tension").unwrap();
    let before = status.mood(tension);
    for _ in 0..tension {
        press(&mut console, Key::Down, &controller, &patch);
    }
    for _ in 0..4 {
        press(&mut console, Key::Char('+'), &controller, &patch);
    }
    // the ramp, then the engine's smoothing of the communal mood (a second or two)
    play(&mut engine, 8.0, &mut live);
    let config = patch.config(SR, None);
    let range = config.dims[tension].max - config.dims[tension].min;
    let want = (before + 0.2 * range).min(config.dims[tension].max);
    let now = status.mood(tension);
    assert!(
        (now - want).abs() < 0.02 * range,
        "tension {now}, want {want}"
    );
    let rows = view(&snapshot(&status, &patch), &console);
    let shown = rows.iter().find(|r| r.contains("> tension")).unwrap();
    assert!(shown.trim_end().ends_with(&format!("{now:.2}")), "{shown}");

    // p: back to the previous section
    press(&mut console, Key::Char('p'), &controller, &patch);
    play(&mut engine, 4.0, &mut live);
    assert_eq!(section(), "gathering");

    let events = recording.finish(engine.sample_position()).unwrap();
    assert!(
        events >= 2 + 4 + 3,
        "cues, nudges and joins recorded ({events})"
    );
    let perf = Performance::load(&path, &patch, SR).unwrap();
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(first_difference, None, "the re-render differs");
    assert!(offline.len() >= live.len(), "the re-render covers the show");
    assert!(measure::rms(&live) > 1e-3, "the show made sound");
}
