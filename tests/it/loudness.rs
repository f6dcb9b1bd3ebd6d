//! Loudness that serves the piece, measured on real renders with the master chain on and the
//! `ebur128` crate as the independent meter: offline, one whole-piece gain puts the piece on
//! its target and mood keeps its dynamics; live, the calibrated leveler keeps them too; the
//! recording of a live session re-renders through the live chain sample for sample; the true
//! peak stays under -1 dBTP.

use crate::common::*;

use ebur128::{EbuR128, Mode};
use tapestry::control::{Command, MoodTarget};
use tapestry::record::Recorder;
use tapestry::render::{calibrate_live_gain_db, render, render_in_memory, Leveling, RenderOptions};
use tapestry::{Engine, Patch, Performance};

/// Integrated loudness (ebur128) of the frames in `[from, to)` seconds.
fn lufs_between(out: &[f32], from: f32, to: f32) -> f64 {
    measure::integrated_lufs(measure::segment(out, SR, from, to), SR)
}

/// True peak (ebur128, both channels), dBTP.
fn true_peak_dbtp(out: &[f32]) -> f64 {
    let mut m = EbuR128::new(2, SR, Mode::TRUE_PEAK).unwrap();
    m.add_frames_f32(out).unwrap();
    let peak = (0..2).map(|c| m.true_peak(c).unwrap()).fold(0.0, f64::max);
    20.0 * peak.max(1e-12).log10()
}

/// Short-term loudness (3 s window, ebur128) ending at `at` seconds.
fn short_term_at(out: &[f32], at: f32) -> f64 {
    let mut m = EbuR128::new(2, SR, Mode::S).unwrap();
    m.add_frames_f32(measure::segment(out, SR, at - 3.0, at))
        .unwrap();
    m.loudness_shortterm().unwrap()
}

/// Four participants (one per archetype of the teaching patch) at a communal energy of 0.1,
/// raised to 0.9 at 60 s; two minutes.
fn low_then_high(patch: &Patch) -> Performance {
    let energy = dim(patch, "energy");
    let mut s = Script::default();
    for a in 0..4u16 {
        s = s.join(0.0, u32::from(a) + 1, Some(a));
    }
    s.communal(0.0, energy, 0.1)
        .communal(60.0, energy, 0.9)
        .performance(120.0)
}

/// Energy 0.2, then a 20 s ramp to 0.9 from 40 s, held to the end at 120 s.
fn swell(patch: &Patch) -> Performance {
    let energy = dim(patch, "energy");
    let mut s = Script::default();
    for a in 0..4u16 {
        s = s.join(0.0, u32::from(a) + 1, Some(a));
    }
    s.communal(0.0, energy, 0.2)
        .at(
            40.0,
            Command::Mood {
                target: MoodTarget::Communal,
                dim: energy,
                value: 0.9,
                ramp_secs: 20.0,
            },
        )
        .performance(120.0)
}

/// `performance` as a live show would play it: through the live chain from the calibration
/// `tapestry play` makes (every archetype at the default mood).
fn live(patch: &Patch, performance: &Performance) -> Performance {
    let mut live = performance.clone();
    live.live_start_gain_db = Some(calibrate_live_gain_db(patch, None, SR, None));
    live
}

fn assert_dynamics_kept(name: &str, out: &[f32]) {
    let low = lufs_between(out, 20.0, 60.0);
    let high = lufs_between(out, 65.0, 90.0);
    let later = lufs_between(out, 90.0, 120.0);
    println!(
        "{name}: energy 0.1 {low:.2} LUFS, 0.9 {high:.2} LUFS ({:+.2} LU), half a minute on \
         {later:.2} LUFS ({:+.2} LU), true peak {:.2} dBTP",
        high - low,
        later - low,
        true_peak_dbtp(out)
    );
    assert!(high - low >= 6.0, "{name}: {low} -> {high}");
    assert!(
        later - low >= 6.0,
        "{name}: {low} -> {later} half a minute later"
    );
    assert!(true_peak_dbtp(out) <= -1.0, "{name}");
}

#[test]
fn energy_held_low_then_high_keeps_6_lu_offline_and_the_piece_lands_on_target() {
    let patch = patch("minimal.toml");
    let (out, report) = render_in_memory(
        &patch,
        &low_then_high(&patch),
        &RenderOptions::default(),
        |_, _, _| {},
    );
    assert_dynamics_kept("offline", &out);
    let whole = measure::integrated_lufs(&out, SR);
    let target = f64::from(patch.loudness_target_lufs());
    println!("offline: whole {whole:.3} LUFS (target {target}), {report:?}");
    assert!((whole - target).abs() <= 0.1, "{whole}");
    assert!(matches!(report.leveling, Leveling::Whole { .. }));
}

#[test]
fn a_piece_the_limiter_works_hard_on_lands_on_target_in_one_finishing_pass() {
    // minimal under a -6 dBTP ceiling: the limiter takes about a loudness unit off, which the
    // whole-piece gain must foresee (one finishing pass, not a second one to correct it)
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("patches/minimal.toml")).unwrap();
    let patch = patch_text(&format!("{text}\n[master]\nceiling_dbtp = -6.0\n"));
    let (out, report) = render_in_memory(
        &patch,
        &low_then_high(&patch),
        &RenderOptions::default(),
        |_, _, _| {},
    );
    let whole = measure::integrated_lufs(&out, SR);
    let target = f64::from(patch.loudness_target_lufs());
    println!("whole {whole:.3} LUFS (target {target}), {report:?}");
    let Leveling::Whole {
        program_lufs,
        gain_db,
        passes,
    } = report.leveling
    else {
        panic!("{report:?}");
    };
    let foreseen = gain_db - (target - program_lufs);
    assert!(foreseen > 0.3, "the limiter's loss foreseen: {foreseen} dB");
    assert_eq!(passes, 1, "{report:?}");
    assert!((whole - target).abs() <= 0.05, "{whole}");
    assert!(
        true_peak_dbtp(&out) <= -6.0 + 0.05,
        "{}",
        true_peak_dbtp(&out)
    );
}

#[test]
fn energy_held_low_then_high_keeps_6_lu_live() {
    let patch = patch("minimal.toml");
    let perf = live(&patch, &low_then_high(&patch));
    let out = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    assert_dynamics_kept("live chain", &out);
}

fn assert_swell_kept(name: &str, out: &[f32]) {
    let before = short_term_at(out, 40.0);
    let after_ramp = short_term_at(out, 62.0);
    let end = short_term_at(out, 120.0);
    println!(
        "{name}: short-term {before:.2} LUFS before the ramp, {after_ramp:.2} after it \
         ({:+.2} LU), {end:.2} a minute later ({:+.2} LU)",
        after_ramp - before,
        end - after_ramp
    );
    assert!(after_ramp - before >= 4.0, "{name}: the ramp did not swell");
    assert!(end - after_ramp >= -0.5, "{name}: the swell was taken back");
}

#[test]
fn an_energy_ramp_swell_is_not_taken_back_offline_or_live() {
    let patch = patch("minimal.toml");
    let perf = swell(&patch);
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    assert_swell_kept("offline", &offline);
    let live_out = render(
        &patch,
        &live(&patch, &perf),
        &RenderOptions::default(),
        |_, _| {},
    );
    assert_swell_kept("live chain", &live_out);
}

#[test]
fn the_live_calibration_puts_the_default_room_on_target() {
    let patch = patch("minimal.toml");
    let gain = calibrate_live_gain_db(&patch, None, SR, None);
    let mut s = Script::default();
    for a in 0..4u16 {
        s = s.join(0.0, u32::from(a) + 1, Some(a));
    }
    let mut perf = s.performance(30.0);
    perf.live_start_gain_db = Some(gain);
    let out = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let lufs = measure::integrated_lufs(&out, SR);
    println!("calibrated start gain {gain:+.2} dB: the default room at {lufs:.2} LUFS");
    assert!((lufs - f64::from(patch.loudness_target_lufs())).abs() <= 0.5);
    // with the leveler off there is nothing to calibrate
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patches/minimal.toml"),
    )
    .unwrap();
    let off = patch_text(&format!("{text}\n[master]\nleveler = false\n"));
    assert_eq!(calibrate_live_gain_db(&off, None, SR, None), 0.0);
}

#[test]
fn a_recorded_session_re_renders_through_the_live_chain_from_its_start_gain() {
    let patch = patch("minimal.toml");
    let start = -4.5f32;
    let mut cfg = patch.config(SR, None);
    cfg.master.chain = tapestry::engine::master::MasterChain::Live {
        start_gain_db: start,
    };
    let (mut engine, controller) = Engine::new(cfg, patch.names());
    let journal = engine.enable_journal(4096);
    let path = std::env::temp_dir().join(format!(
        "tapestry-loudness-session-{}.performance.toml",
        std::process::id()
    ));
    let mut recorder =
        Recorder::create(&path, &patch.name, patch.names(), patch.seed(), start).unwrap();
    for id in 1..=4 {
        controller.join(id, None).unwrap();
    }
    let total = 25 * SR as usize;
    let mut live = vec![0.0f32; 2 * total];
    let mut pos = 0;
    let mut block = 1usize;
    let mut raised = false;
    while pos < total {
        if pos >= 10 * SR as usize && !raised {
            raised = true;
            controller
                .set_mood(MoodTarget::Communal, "energy", 0.95, 3.0)
                .unwrap();
        }
        let frames = block.min(total - pos);
        engine.process(&mut live[2 * pos..2 * (pos + frames)]);
        pos += frames;
        block = block * 7 % 3001 + 1;
        while let Ok(applied) = journal.try_recv() {
            recorder.write(&applied).unwrap();
        }
    }
    recorder.finish(engine.sample_position()).unwrap();
    let perf = Performance::load(&path, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(perf.live_start_gain_db, Some(start));
    let offline = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
    let first_difference = live
        .iter()
        .zip(&offline)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_difference, None,
        "the re-render differs from the show"
    );
    // the same events as an offline performance take the two-pass path: another sound
    let mut as_offline = perf.clone();
    as_offline.live_start_gain_db = None;
    let other = render(&patch, &as_offline, &RenderOptions::default(), |_, _| {});
    assert!(other != offline);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn master_and_session_keys_are_checked_with_their_place() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patches/minimal.toml"),
    )
    .unwrap();
    let errors = |extra: &str| {
        let full = format!("{text}\n[master]\n{extra}\n");
        let line = full.lines().count();
        let e = Patch::parse(std::path::Path::new("p.toml"), &full)
            .map(|_| ())
            .expect_err("refused")
            .to_string();
        (e, line)
    };
    let (e, line) = errors("ceiling_dbfs = -1.0");
    assert!(
        e.contains(&format!("p.toml:{line}:16: master.ceiling_dbfs: renamed")),
        "{e}"
    );
    assert!(e.contains("ceiling_dbtp"), "{e}");
    let (e, line) = errors("ceiling_dbtp = 3.0");
    assert!(
        e.contains(&format!("p.toml:{line}:16: master.ceiling_dbtp: expected")),
        "{e}"
    );
    let ok = patch_text(&format!("{text}\n[master]\nceiling_dbtp = -2.0\n"));
    let perf = Script::default().join(0.0, 1, Some(0)).performance(5.0);
    let (out, report) = render_in_memory(&ok, &perf, &RenderOptions::default(), |_, _, _| {});
    assert_eq!(report.ceiling_dbtp, -2.0);
    assert!(true_peak_dbtp(&out) <= -2.0);

    let patch = patch("minimal.toml");
    let session = "version = 1\nrecording = true\nlive_leveler_start_db = 99.0\n\n\
                   [[events]]\nsample = 0\ntype = \"join\"\nparticipant = 1\n\n\
                   [session]\nend_sample = 48000\n";
    let e = Performance::parse(std::path::Path::new("s.toml"), session, &patch, SR)
        .map(|_| ())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("s.toml:3:25: live_leveler_start_db: expected a gain from -40 to 40 dB"),
        "{e}"
    );
}
