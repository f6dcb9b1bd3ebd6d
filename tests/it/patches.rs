//! Every shipped patch is a test case: it validates, and its performance renders with no
//! NaN or infinity, a sample peak at or below -1 dBFS and an integrated loudness (ITU-R
//! BS.1770) within ±1 LU of the patch's target.

use std::path::{Path, PathBuf};

use crate::common::measure::*;
use tapestry::render::{render, RenderOptions};
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

#[test]
fn every_shipped_performance_renders_clean_and_on_its_loudness_target() {
    for (patch_path, perf_path) in shipped() {
        let patch = Patch::load(&patch_path).unwrap_or_else(|e| panic!("{e}"));
        let perf = Performance::load(&perf_path, &patch, 48_000).unwrap_or_else(|e| panic!("{e}"));
        let out = render(&patch, &perf, &RenderOptions::default(), |_, _| {});
        let name = patch_path.file_name().unwrap().to_string_lossy();
        assert!(all_finite(&out), "{name}: NaN or infinity in the output");
        let peak = sample_peak_dbfs(&out);
        let lufs = integrated_lufs(&out, 48_000);
        let target = patch.loudness_target_lufs() as f64;
        println!(
            "{name}: {:.0} s, integrated {lufs:.2} LUFS (target {target}), peak {peak:.2} dBFS",
            perf.duration_frames as f64 / 48_000.0
        );
        assert!(peak <= -1.0 + 1e-4, "{name}: peak {peak:.3} dBFS");
        assert!(
            (lufs - target).abs() <= 1.0,
            "{name}: integrated loudness {lufs:.2} LUFS, target {target}"
        );
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
        if name == "minimal" {
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
