//! Patches: the TOML description of one piece, parsed with serde, validated with every
//! problem located by file, line, column and key, then resolved into an [`EngineConfig`].
//! Runs on the control thread only.

mod analysis;
pub(crate) use analysis::{default_mappings, is_hz_or_bpm};
mod archetypes;
mod instruments;
mod mappings;
use mappings::parse_curve;
mod midi;
mod mood;
mod piece;
mod schema;
mod score;

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::control::Names;
use crate::diagnostic::{Diagnostic, Diagnostics, Reporter};
use crate::engine::config::*;
use crate::input::midi::MidiMap;
use crate::room::RoomMap;
pub use schema::*;

/// Current patch format version.
pub const PATCH_VERSION: i64 = 1;
/// Sample rate used when none is given.
pub const DEFAULT_SAMPLE_RATE: u32 = 48_000;

/// A validated patch, ready to build engines from.
#[derive(Clone, Debug)]
pub struct Patch {
    /// Piece name.
    pub name: String,
    /// Resolved engine configuration (at [`DEFAULT_SAMPLE_RATE`] until [`Patch::config`]).
    config: EngineConfig,
    /// Dimension, archetype and section names.
    pub dims: Vec<String>,
    /// Archetype ids.
    pub archetypes: Vec<String>,
    /// Section names.
    pub sections: Vec<String>,
    /// MIDI routes from `[midi]`.
    midi: MidiMap,
    /// The room's analysis mappings from `[analysis]`.
    room: RoomMap,
    /// Harmless oddities found while validating (printed by `check`, `render` and `play`).
    pub warnings: Vec<Diagnostic>,
}

impl Patch {
    /// Reads and validates a patch file.
    pub fn load(path: &Path) -> Result<Patch, Diagnostics> {
        let whole = |message: String| Diagnostics(vec![Diagnostic::whole_file(path, message)]);
        let size = std::fs::metadata(path)
            .map_err(|e| whole(format!("cannot read the file: {e}")))?
            .len();
        if size > MAX_PATCH_BYTES as u64 {
            return Err(whole(too_long(size as usize)));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| whole(format!("cannot read the file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses and validates patch text; `path` names it in diagnostics.
    pub fn parse(path: &Path, text: &str) -> Result<Patch, Diagnostics> {
        if text.len() > MAX_PATCH_BYTES {
            return Err(Diagnostics(vec![Diagnostic::whole_file(
                path,
                too_long(text.len()),
            )]));
        }
        let mut r = Reporter::new(path, text);
        let Some(file) = r.deserialize::<PatchFile>() else {
            return Err(r.finish().err().unwrap_or(Diagnostics(Vec::new())));
        };
        let patch = resolve(&file, &mut r);
        let warnings = r.finish()?;
        let mut patch = patch.expect("resolve returns a patch when no problem was reported");
        patch.warnings = warnings;
        Ok(patch)
    }

    /// The engine configuration at a sample rate, optionally with another seed.
    pub fn config(&self, sample_rate: u32, seed: Option<u64>) -> EngineConfig {
        let mut c = self.config.clone();
        c.sample_rate = sample_rate as f32;
        if let Some(s) = seed {
            c.seed = s;
        }
        c
    }

    /// Names for a controller.
    pub fn names(&self) -> Names {
        Names {
            dims: self.dims.clone(),
            archetypes: self.archetypes.clone(),
            sections: self.sections.clone(),
        }
    }

    /// Loudness target of the piece.
    pub fn loudness_target_lufs(&self) -> f32 {
        self.config.master.loudness_target_lufs
    }

    /// Participant capacity.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Tempo in beats per minute.
    pub fn tempo_bpm(&self) -> f32 {
        self.config.tempo_bpm
    }

    /// Beats per bar.
    pub fn beats_per_bar(&self) -> u8 {
        self.config.beats_per_bar
    }

    /// Master seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// MIDI routes from the `[midi]` section (defaults without one: every port, a virtual
    /// port "tapestry", no mappings).
    pub fn midi(&self) -> &MidiMap {
        &self.midi
    }

    /// How the room's audio drives the piece, from the `[analysis]` section (defaults
    /// without one: see `docs/formats.md`).
    pub fn room(&self) -> &RoomMap {
        &self.room
    }

    /// Overrides `[analysis] input_gain_db` (the command line's `--input-gain`), clamped to
    /// ±[`crate::room::INPUT_GAIN_DB_LIMIT`].
    pub fn set_room_input_gain_db(&mut self, db: f32) {
        let limit = crate::room::INPUT_GAIN_DB_LIMIT;
        if db.is_finite() {
            self.room.input_gain_db = db.clamp(-limit, limit);
        }
    }

    /// The range (min, max) of a mood dimension.
    pub fn dim_range(&self, dim: usize) -> Option<(f32, f32)> {
        self.config.dims.get(dim).map(|d| (d.min, d.max))
    }

    /// Default value of every mood dimension, in patch order.
    pub fn dim_defaults(&self) -> Vec<f32> {
        self.config.dims.iter().map(|d| d.default).collect()
    }
}

fn too_long(bytes: usize) -> String {
    format!("expected a patch of at most {MAX_PATCH_BYTES} bytes, found {bytes} bytes")
}

/// Checks a list's length against its limit; the error is at the first entry past it.
fn at_most(
    r: &mut Reporter,
    len: usize,
    max: usize,
    first_extra: impl FnOnce() -> Range<usize>,
    key: &str,
) {
    if len > max {
        r.error(
            first_extra(),
            format!("{key}[{max}]"),
            format!("expected at most {max} [[{key}]] entries, found {len}"),
        );
    }
}

/// Checks an id or name: not empty, at most [`MAX_NAME_CHARS`] characters, no control
/// characters (it is printed, sent over OSC and written into recordings).
fn check_name(r: &mut Reporter, v: &Spanned<String>, key: &str) {
    let name = v.get_ref();
    let chars = name.chars().count();
    if name.trim().is_empty() {
        r.error(v.span(), key, "expected a non-empty name");
    } else if chars > MAX_NAME_CHARS {
        r.error(
            v.span(),
            key,
            format!("expected a name of at most {MAX_NAME_CHARS} characters, found {chars}"),
        );
    } else if name.chars().any(char::is_control) {
        r.error(v.span(), key, "expected a name without control characters");
    }
}

fn in_range(r: &mut Reporter, v: &Spanned<f64>, key: &str, lo: f64, hi: f64, unit: &str) -> f32 {
    let x = *v.get_ref();
    if !(lo..=hi).contains(&x) {
        r.error(
            v.span(),
            key,
            format!("expected a number from {lo} to {hi}{unit}, found {x}"),
        );
    }
    x as f32
}

fn opt_in_range(
    r: &mut Reporter,
    v: &Option<Spanned<f64>>,
    key: &str,
    lo: f64,
    hi: f64,
    default: f32,
) -> f32 {
    match v {
        Some(s) => in_range(r, s, key, lo, hi, ""),
        None => default,
    }
}

fn name_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks every table and assembles the patch; `None` if any problem was reported.
fn resolve(f: &PatchFile, r: &mut Reporter) -> Option<Patch> {
    check_version(&f.version, r);
    let piece = piece::resolve(&f.piece, r);
    let (master, reverb_mix) =
        piece::resolve_master(f.master.as_ref(), piece.loudness_target_lufs, r);
    let mood = mood::resolve(&f.mood, r);
    let score = score::resolve(&f.score, &mood, r);
    let (instruments, instrument_names) = instruments::resolve(&f.instruments, &mood.names, r);
    let (archetypes, archetype_ids) = archetypes::resolve(
        &f.archetypes,
        &archetypes::Instruments {
            defs: &instruments,
            names: &instrument_names,
        },
        r,
    );
    let mappings = mappings::resolve(&f.mappings, &mood, reverb_mix, r);
    let midi_map = midi::resolve(
        f.midi.as_ref(),
        &midi::Defined {
            dims: &mood.dims,
            dim_names: &mood.names,
            sections: &score.section_names,
            archetypes: &archetype_ids,
        },
        r,
    );
    let room = analysis::resolve(
        f.analysis.as_ref(),
        &analysis::Defined {
            dims: &mood.dims,
            dim_names: &mood.names,
            core: &mood.core,
            tempo_bpm: score.tempo_bpm,
        },
        r,
    );
    if r.has_errors() {
        return None;
    }
    Some(Patch {
        name: f.piece.name.get_ref().clone(),
        config: EngineConfig {
            sample_rate: DEFAULT_SAMPLE_RATE as f32,
            seed: piece.seed,
            capacity: piece.capacity,
            key: score.key,
            tempo_bpm: score.tempo_bpm,
            beats_per_bar: score.beats_per_bar,
            sections: score.sections,
            start_section: score.start_section,
            transitions: score.transitions,
            dims: mood.dims,
            core: mood.core,
            mappings,
            archetypes,
            instruments,
            master,
            individuality: piece.individuality,
            room_weight: room.weight,
        },
        dims: mood.names,
        archetypes: archetype_ids,
        sections: score.section_names,
        midi: midi_map,
        room,
        warnings: Vec::new(),
    })
}

fn check_version(version: &Spanned<i64>, r: &mut Reporter) {
    if *version.get_ref() != PATCH_VERSION {
        r.error(
            version.span(),
            "version",
            format!(
                "expected version = {PATCH_VERSION}, found {}",
                version.get_ref()
            ),
        );
    }
}
