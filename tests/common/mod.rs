//! Shared test support: rendering scripted performances and measuring real output.
#![allow(dead_code)]

pub mod jack;
pub mod measure;
pub mod music;
pub mod reference_voice;
pub mod rss;
pub mod sox;

use std::path::Path;

use tapestry::control::{Command, MoodTarget};
use tapestry::performance::TimedCommand;
use tapestry::render::{render, RenderOptions};
use tapestry::{Patch, Performance};

pub const SR: u32 = 48_000;

/// A path for `name` in this test binary's own directory under the system temp dir
/// (`tapestry-<group>-<pid>`, created on first use). The files stay after the run for a look
/// at a failure; those of runs whose process is gone are removed on first use.
pub fn temp_file(group: &str, name: &str) -> std::path::PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_temp_dirs_of_ended_runs);
    let dir = std::env::temp_dir().join(format!("tapestry-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Removes `tapestry-<group>-<pid>` temp dirs whose process no longer runs (Linux `/proc`).
fn remove_temp_dirs_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("tapestry-") else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Loads a shipped patch.
pub fn patch(name: &str) -> Patch {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("patches")
        .join(name);
    Patch::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A shipped patch's text without its `[midi]` section (the last one in every shipped
/// patch), for tests that append their own.
pub fn patch_text_without_midi(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("patches")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let cut = text.find("\n[midi]\n").expect("a shipped [midi] section");
    text[..cut + 1].to_string()
}

/// Parses a patch from text.
pub fn patch_text(text: &str) -> Patch {
    Patch::parse(Path::new("test.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// A tiny score builder for tests: commands at seconds.
#[derive(Default, Clone)]
pub struct Script {
    pub commands: Vec<TimedCommand>,
}

impl Script {
    pub fn at(mut self, secs: f64, command: Command) -> Self {
        self.commands.push(TimedCommand {
            sample: (secs * SR as f64).round() as u64,
            command,
        });
        self
    }
    pub fn join(self, secs: f64, participant: u32, archetype: Option<u16>) -> Self {
        self.at(
            secs,
            Command::Join {
                participant,
                archetype,
            },
        )
    }
    pub fn leave(self, secs: f64, participant: u32) -> Self {
        self.at(secs, Command::Leave { participant })
    }
    pub fn communal(self, secs: f64, dim: u8, value: f32) -> Self {
        self.at(
            secs,
            Command::Mood {
                target: MoodTarget::Communal,
                dim,
                value,
                ramp_secs: 0.0,
            },
        )
    }
    pub fn performance(mut self, secs: f64) -> Performance {
        self.commands.sort_by_key(|c| c.sample);
        Performance {
            commands: self.commands,
            duration_frames: (secs * SR as f64) as u64,
            seed: None,
            peak_participants: 0,
            ..Performance::default()
        }
    }
}

/// Renders through the engine with a given block size (the library's offline renderer).
pub fn render_blocks(
    patch: &Patch,
    perf: &Performance,
    block: usize,
    seed: Option<u64>,
) -> Vec<f32> {
    let options = RenderOptions {
        sample_rate: SR,
        seed,
        duration_frames: None,
        block_frames: block,
    };
    render(patch, perf, &options, |_, _| {})
}

/// Index of a mood dimension by name.
pub fn dim(patch: &Patch, name: &str) -> u8 {
    patch
        .dims
        .iter()
        .position(|d| d == name)
        .expect("dimension") as u8
}

/// Index of an archetype by id.
pub fn archetype(patch: &Patch, id: &str) -> u16 {
    patch
        .archetypes
        .iter()
        .position(|a| a == id)
        .expect("archetype") as u16
}

/// One pluck on a one-beat grid playing every step, with no timing spread: its onsets are
/// the score's pulse.
pub const PULSE_PATCH: &str = r#"
version = 1
[piece]
name = "pulse"
seed = 3
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "C"
tempo_bpm = 100
[[score.sections]]
name = "a"
chords = ["I"]
[mood.energy]
default = 0.5
[mood.tension]
default = 0.0
[mood.brightness]
default = 0.5
[mood.unity]
default = 1.0
[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 72]
grid_beats = 1.0
motif = { steps = 4, density = 1.0, range = 2 }
[[mappings]]
from = "energy"
to = "density"
range = [1.0, 1.0]
[[mappings]]
from = "unity"
to = "timing_spread"
range = [0.0, 0.0]
"#;
