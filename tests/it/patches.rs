//! Every shipped patch is a test case: it validates, and its performance renders with no
//! NaN or infinity, offline on its loudness target (ITU-R BS.1770 integrated loudness, by the
//! `ebur128` crate) within ±0.5 LU and with a true peak (BS.1770-4, 4x oversampled) at or
//! below -1 dBTP; played live through the live chain (calibrated on the performance, as
//! `tapestry play -p` does) it lands within ±1 LU with the same ceiling.

use std::path::{Path, PathBuf};

use crate::common::measure::*;
use tapestry::render::{calibrate_live_gain_db, render, render_in_memory, RenderOptions};
use tapestry::{Patch, Performance};

fn shipped() -> Vec<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("patches");
    let mut pairs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".toml") && !name.ends_with(".performance.toml") {
            let perf = dir.join(name.replace(".toml", ".performance.toml"));
            assert!(
                perf.exists(),
                "{name} ships without a performance ({})",
                perf.display()
            );
            pairs.push((path, perf));
        }
    }
    pairs.sort();
    pairs
}

#[test]
fn the_story_pieces_and_the_teaching_patch_are_shipped() {
    let names: Vec<String> = shipped()
        .iter()
        .map(|(p, _)| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    for required in ["minimal", "kaleidoscope-nights", "sleep-gathering"] {
        assert!(
            names.iter().any(|n| n == required),
            "missing patches/{required}.toml in {names:?}"
        );
    }
}

fn true_peak_dbtp(out: &[f32]) -> f64 {
    let mut m = ebur128::EbuR128::new(2, 48_000, ebur128::Mode::TRUE_PEAK).unwrap();
    m.add_frames_f32(out).unwrap();
    let peak = (0..2).map(|c| m.true_peak(c).unwrap()).fold(0.0, f64::max);
    20.0 * peak.max(1e-12).log10()
}

#[test]
fn every_shipped_performance_renders_clean_on_its_loudness_target_under_minus_1_dbtp() {
    for (patch_path, perf_path) in shipped() {
        let patch = Patch::load(&patch_path).unwrap_or_else(|e| panic!("{e}"));
        let perf = Performance::load(&perf_path, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
        let (out, report) =
            render_in_memory(&patch, &perf, &RenderOptions::default(), |_, _, _| {});
        let name = patch_path.file_name().unwrap().to_string_lossy();
        assert!(all_finite(&out), "{name}: NaN or infinity in the output");
        let peak = sample_peak_dbfs(&out);
        let true_peak = true_peak_dbtp(&out);
        let lufs = integrated_lufs(&out, 48_000);
        let target = patch.loudness_target_lufs() as f64;
        println!(
            "{name}: {:.0} s, integrated {lufs:.3} LUFS (target {target}), true peak \
             {true_peak:.2} dBTP, sample peak {peak:.2} dBFS; {:?}",
            perf.duration_frames as f64 / 48_000.0,
            report.leveling
        );
        assert!(true_peak <= -1.0, "{name}: true peak {true_peak:.3} dBTP");
        assert!(peak <= -1.0, "{name}: peak {peak:.3} dBFS");
        assert!(
            (lufs - target).abs() <= 0.5,
            "{name}: integrated loudness {lufs:.2} LUFS, target {target}"
        );
    }
}

#[test]
fn every_shipped_performance_played_live_lands_near_its_target_under_minus_1_dbtp() {
    for (patch_path, perf_path) in shipped() {
        let patch = Patch::load(&patch_path).unwrap_or_else(|e| panic!("{e}"));
        let mut perf =
            Performance::load(&perf_path, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
        let start = calibrate_live_gain_db(&patch, Some(&perf), 48_000, None);
        perf.live_start_gain_db = Some(start);
        let out = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
        let name = patch_path.file_name().unwrap().to_string_lossy();
        let true_peak = true_peak_dbtp(&out);
        let lufs = integrated_lufs(&out, 48_000);
        let target = patch.loudness_target_lufs() as f64;
        println!(
            "{name} live from {start:+.2} dB: integrated {lufs:.2} LUFS (target {target}), \
             true peak {true_peak:.2} dBTP"
        );
        assert!(all_finite(&out), "{name}: NaN or infinity in the output");
        assert!(true_peak <= -1.0, "{name}: true peak {true_peak:.3} dBTP");
        assert!((lufs - target).abs() <= 1.0, "{name}: {lufs:.2} LUFS live");
    }
}

#[test]
fn story_performances_have_8_to_32_participants_and_last_2_to_4_minutes() {
    for (patch_path, perf_path) in shipped() {
        let name = patch_path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        // the teaching patches: minimal, and the tour of designed instruments
        if name == "minimal" || name == "instruments" {
            continue;
        }
        let patch = Patch::load(&patch_path).unwrap();
        let perf = Performance::load(&perf_path, &patch, 48_000).unwrap();
        let joins: std::collections::BTreeSet<u32> = perf
            .commands
            .iter()
            .filter_map(|c| match c.command {
                tapestry::Command::Join { participant, .. } => Some(participant),
                _ => None,
            })
            .collect();
        let secs = perf.duration_frames as f64 / 48_000.0;
        assert!(
            (8..=32).contains(&joins.len()),
            "{name}: {} participants",
            joins.len()
        );
        assert!((120.0..=240.0).contains(&secs), "{name}: {secs} s");
        assert!(
            patch.sections.len() >= 3,
            "{name}: a real arc needs sections"
        );
    }
}
