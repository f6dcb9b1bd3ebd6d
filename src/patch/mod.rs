//! Patches: the TOML description of one piece, parsed with serde, validated with every
//! problem located by file, line, column and key, then resolved into an [`EngineConfig`].
//! Runs on the control thread only.

mod analysis;
pub(crate) use analysis::{default_mappings, is_hz_or_bpm};
mod midi;
mod schema;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::control::Names;
use crate::diagnostic::{Diagnostic, Diagnostics, Reporter};
use crate::engine::config::*;
use crate::engine::master::{MasterChain, MasterSettings, ReverbKind};
use crate::input::midi::MidiMap;
use crate::room::RoomMap;
use crate::score::{Chord, Key, Mode, MotifStyle};
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

/// Where a mood dimension is named: its `[mood.<name>]` header, else its first value.
fn dim_header(r: &Reporter, name: &str, d: &MoodDimFile) -> Range<usize> {
    let quoted = [
        format!("[mood.{name}]"),
        format!("[mood.\"{name}\"]"),
        format!("[mood.'{name}']"),
    ];
    if let Some(at) = quoted.iter().find_map(|h| r.find(h)) {
        return at + "[mood.".len()..at + "[mood.".len() + name.len();
    }
    let first = [
        d.range.as_ref().map(|v| v.span()),
        d.default.as_ref().map(|v| v.span()),
        d.smoothing_secs.as_ref().map(|v| v.span()),
    ];
    first
        .into_iter()
        .flatten()
        .min_by_key(|s| s.start)
        .unwrap_or(0..0)
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

fn resolve(f: &PatchFile, r: &mut Reporter) -> Option<Patch> {
    if *f.version.get_ref() != PATCH_VERSION {
        r.error(
            f.version.span(),
            "version",
            format!(
                "expected version = {PATCH_VERSION}, found {}",
                f.version.get_ref()
            ),
        );
    }
    // piece
    let piece = &f.piece;
    if piece.name.get_ref().trim().is_empty() {
        r.error(piece.name.span(), "piece.name", "expected a non-empty name");
    } else if piece.name.get_ref().chars().count() > MAX_TITLE_CHARS {
        r.error(
            piece.name.span(),
            "piece.name",
            format!("expected a name of at most {MAX_TITLE_CHARS} characters"),
        );
    }
    let capacity = match &piece.capacity {
        Some(c) => {
            let v = *c.get_ref();
            if !(1..=1024).contains(&v) {
                r.error(
                    c.span(),
                    "piece.capacity",
                    format!("expected 1 to 1024 participants, found {v}"),
                );
            }
            v.clamp(1, 1024) as usize
        }
        None => 64,
    };
    let seed = piece.seed.as_ref().map_or(0, |s| *s.get_ref() as u64);
    let target = opt_in_range(
        r,
        &piece.loudness_target_lufs,
        "piece.loudness_target_lufs",
        -40.0,
        -6.0,
        -16.0,
    );
    let individuality = opt_in_range(
        r,
        &piece.individuality,
        "piece.individuality",
        0.0,
        1.0,
        0.7,
    );

    // master
    let m = f.master.clone().unwrap_or_default();
    if let Some(old) = &m.ceiling_dbfs {
        r.error(
            old.span(),
            "master.ceiling_dbfs",
            "renamed: the ceiling is a true-peak level now; write ceiling_dbtp (-20 to 0 dBTP)",
        );
    }
    let master = MasterSettings {
        loudness_target_lufs: target,
        ceiling_dbtp: opt_in_range(r, &m.ceiling_dbtp, "master.ceiling_dbtp", -20.0, 0.0, -1.0),
        chain: MasterChain::default(),
        leveler: m.leveler.unwrap_or(true),
        room_size: opt_in_range(r, &m.room_size, "master.room_size", 5.0, 100.0, 20.0),
        reverb_time_secs: opt_in_range(
            r,
            &m.reverb_time_secs,
            "master.reverb_time_secs",
            0.1,
            20.0,
            3.0,
        ),
        reverb_damping: opt_in_range(r, &m.damping, "master.damping", 0.0, 1.0, 0.5),
        reverb: match &m.reverb {
            None => ReverbKind::Hall,
            Some(v) => match v.get_ref().as_str() {
                "hall" => ReverbKind::Hall,
                "fundsp" => ReverbKind::Fundsp,
                other => {
                    r.error(
                        v.span(),
                        "master.reverb",
                        format!("unknown reverb \"{other}\"; expected \"hall\" or \"fundsp\""),
                    );
                    ReverbKind::Hall
                }
            },
        },
    };
    let reverb_mix = opt_in_range(r, &m.reverb_mix, "master.reverb_mix", 0.0, 1.0, 0.25);

    // mood dimensions
    let mut dims = Vec::new();
    let mut dim_names = Vec::new();
    for (name, d) in &f.mood {
        let key = format!("mood.{name}");
        check_name(r, &Spanned::new(dim_header(r, name, d), name.clone()), &key);
        let (min, max) = match &d.range {
            Some(rg) => {
                let [a, b] = rg.get_ref().0;
                let limit = f64::from(MAX_MOOD_MAGNITUDE);
                if !(-limit..=limit).contains(&a) || !(-limit..=limit).contains(&b) || a >= b {
                    r.error(
                        rg.span(),
                        format!("{key}.range"),
                        format!("expected [low, high] with low < high, within -{limit} to {limit}"),
                    );
                }
                (a as f32, b as f32)
            }
            None => (0.0, 1.0),
        };
        let default = match &d.default {
            Some(v) => {
                let x = *v.get_ref() as f32;
                if !(min..=max).contains(&x) {
                    r.error(
                        v.span(),
                        format!("{key}.default"),
                        format!("expected a value inside the range {min} to {max}, found {x}"),
                    );
                }
                x
            }
            None => min + 0.5 * (max - min),
        };
        let smoothing_secs = opt_in_range(
            r,
            &d.smoothing_secs,
            &format!("{key}.smoothing_secs"),
            0.0,
            60.0,
            1.0,
        );
        dims.push(MoodDimConfig {
            min,
            max,
            default,
            smoothing_secs,
        });
        dim_names.push(name.to_string());
    }
    if dims.len() > MAX_DIMS {
        let extra = f
            .mood
            .iter()
            .nth(MAX_DIMS)
            .map_or(0..0, |(name, d)| dim_header(r, name, d));
        r.error(
            extra,
            "mood",
            format!(
                "expected at most {MAX_DIMS} mood dimensions, found {}",
                dims.len()
            ),
        );
        dims.truncate(MAX_DIMS);
        dim_names.truncate(MAX_DIMS);
    }
    let dim_index: HashMap<&str, u8> = dim_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u8))
        .collect();
    let mut core = [0u8; 4];
    for (slot, name) in core
        .iter_mut()
        .zip(["energy", "tension", "brightness", "unity"])
    {
        match dim_index.get(name) {
            Some(&i) => *slot = i,
            None => r.error(
                0..0,
                "mood",
                format!("expected a [mood.{name}] table: energy, tension, brightness and unity are required"),
            ),
        }
    }

    // score
    let s = &f.score;
    let tonic = s.key.get_ref();
    let mode_name = s.mode.as_ref().map_or("major", |m| m.get_ref().as_str());
    let tonic_pc = match crate::score::parse_pitch_class(tonic) {
        Ok(pc) => pc,
        Err(e) => {
            r.error(s.key.span(), "score.key", e);
            0
        }
    };
    let mode = match Mode::parse(mode_name) {
        Ok(m) => m,
        Err(e) => {
            let span = s.mode.as_ref().map_or(0..0, |m| m.span());
            r.error(span, "score.mode", e);
            Mode::Major
        }
    };
    let music_key = Key::new(tonic_pc, mode);
    let tempo_bpm = in_range(r, &s.tempo_bpm, "score.tempo_bpm", 20.0, 300.0, " BPM");
    let beats_per_bar = match &s.meter {
        Some(m) => match parse_meter(m.get_ref()) {
            Some(b) => b,
            None => {
                r.error(
                    m.span(),
                    "score.meter",
                    format!(
                        "expected a meter like \"4/4\", \"3/4\" or \"7/8\", found \"{}\"",
                        m.get_ref()
                    ),
                );
                4
            }
        },
        None => 4,
    };
    let mut sections = Vec::new();
    let mut section_names: Vec<String> = Vec::new();
    if s.sections.is_empty() {
        r.error(
            0..0,
            "score.sections",
            "expected at least one [[score.sections]]",
        );
    }
    at_most(
        r,
        s.sections.len(),
        MAX_SECTIONS,
        || s.sections[MAX_SECTIONS].name.span(),
        "score.sections",
    );
    for (i, sec) in s.sections.iter().enumerate().take(MAX_SECTIONS) {
        let key = format!("score.sections[{i}]");
        check_name(r, &sec.name, &format!("{key}.name"));
        let name = sec.name.get_ref();
        if section_names.contains(name) {
            r.error(
                sec.name.span(),
                format!("{key}.name"),
                format!("section \"{name}\" is defined twice; expected unique names"),
            );
        }
        section_names.push(name.clone());
        let mut chords = [Chord::from_intervals(0, &[0, 4, 7]); MAX_CHORDS];
        if sec.chords.is_empty() || sec.chords.len() > MAX_CHORDS {
            r.error(
                sec.name.span(),
                format!("{key}.chords"),
                format!(
                    "expected 1 to {MAX_CHORDS} chords, found {}",
                    sec.chords.len()
                ),
            );
        }
        for (j, c) in sec.chords.iter().take(MAX_CHORDS).enumerate() {
            match Chord::parse(c.get_ref(), &music_key) {
                Ok(ch) => chords[j] = ch,
                Err(e) => r.error(c.span(), format!("{key}.chords[{j}]"), e),
            }
        }
        let bars_per_chord = match &sec.bars_per_chord {
            Some(b) => {
                let v = *b.get_ref();
                if !(1..=64).contains(&v) {
                    r.error(
                        b.span(),
                        format!("{key}.bars_per_chord"),
                        format!("expected 1 to 64 bars, found {v}"),
                    );
                }
                v.clamp(1, 64) as u16
            }
            None => 1,
        };
        sections.push(SectionConfig {
            chords,
            chord_count: sec.chords.len().clamp(1, MAX_CHORDS) as u8,
            bars_per_chord,
            density: opt_in_range(r, &sec.density, &format!("{key}.density"), 0.0, 2.0, 1.0),
            brightness_oct: opt_in_range(
                r,
                &sec.brightness_oct,
                &format!("{key}.brightness_oct"),
                -4.0,
                4.0,
                0.0,
            ),
            register_shift: opt_in_range(
                r,
                &sec.register_shift,
                &format!("{key}.register_shift"),
                -24.0,
                24.0,
                0.0,
            ) as i8,
            reverb: opt_in_range(r, &sec.reverb, &format!("{key}.reverb"), -1.0, 1.0, 0.0),
            level_db: opt_in_range(
                r,
                &sec.level_db,
                &format!("{key}.level_db"),
                -40.0,
                12.0,
                0.0,
            ),
        });
    }
    let find_section = |r: &mut Reporter, v: &Spanned<String>, key: &str| -> Option<u16> {
        let pos = section_names.iter().position(|n| n == v.get_ref());
        if pos.is_none() {
            r.error(
                v.span(),
                key,
                format!(
                    "unknown section \"{}\"; expected one of {}",
                    v.get_ref(),
                    name_list(&section_names.iter().map(String::as_str).collect::<Vec<_>>())
                ),
            );
        }
        pos.map(|p| p as u16)
    };
    let start_section = match &s.start {
        Some(st) => find_section(r, st, "score.start").unwrap_or(0),
        None => 0,
    };
    let mut transitions = Vec::new();
    at_most(
        r,
        s.transitions.len(),
        MAX_TRANSITIONS,
        || s.transitions[MAX_TRANSITIONS].to.span(),
        "score.transitions",
    );
    for (i, t) in s.transitions.iter().enumerate().take(MAX_TRANSITIONS) {
        let key = format!("score.transitions[{i}]");
        let from = match &t.from {
            Some(v) if v.get_ref() == "*" => None,
            Some(v) => find_section(r, v, &format!("{key}.from")),
            None => None,
        };
        let to = find_section(r, &t.to, &format!("{key}.to")).unwrap_or(0);
        let mut conditions = [Condition {
            dim: 0,
            comparison: Comparison::Above,
            threshold: 0.0,
        }; MAX_CONDITIONS];
        let count = match parse_conditions(t.when.get_ref(), &dim_index, &mut conditions) {
            Ok(n) => {
                if let Err(e) = can_fire(&conditions[..n], &dims, &dim_names) {
                    r.error(t.when.span(), format!("{key}.when"), e);
                }
                n
            }
            Err(e) => {
                r.error(t.when.span(), format!("{key}.when"), e);
                0
            }
        };
        let min_bars = match &t.min_bars {
            Some(b) => {
                let v = *b.get_ref();
                if !(0..=MAX_MIN_BARS).contains(&v) {
                    r.error(
                        b.span(),
                        format!("{key}.min_bars"),
                        format!("expected 0 to {MAX_MIN_BARS} bars, found {v}"),
                    );
                }
                v.clamp(0, MAX_MIN_BARS) as u16
            }
            None => 0,
        };
        transitions.push(TransitionConfig {
            from,
            to,
            conditions,
            condition_count: count as u8,
            min_bars,
        });
    }

    // archetypes
    let mut archetypes = Vec::new();
    let mut archetype_ids: Vec<String> = Vec::new();
    if f.archetypes.is_empty() {
        r.error(
            0..0,
            "archetypes",
            "expected at least one [[archetypes]] entry",
        );
    }
    at_most(
        r,
        f.archetypes.len(),
        MAX_ARCHETYPES,
        || f.archetypes[MAX_ARCHETYPES].id.span(),
        "archetypes",
    );
    for (i, a) in f.archetypes.iter().enumerate().take(MAX_ARCHETYPES) {
        let key = format!("archetypes[{i}]");
        check_name(r, &a.id, &format!("{key}.id"));
        if archetype_ids.contains(a.id.get_ref()) {
            r.error(
                a.id.span(),
                format!("{key}.id"),
                format!(
                    "archetype \"{}\" is defined twice; expected unique ids",
                    a.id.get_ref()
                ),
            );
        }
        archetype_ids.push(a.id.get_ref().clone());
        let timbre = match Timbre::ALL.iter().find(|(_, n)| n == a.timbre.get_ref()) {
            Some((t, _)) => *t,
            None => {
                let names: Vec<&str> = Timbre::ALL.iter().map(|(_, n)| *n).collect();
                r.error(
                    a.timbre.span(),
                    format!("{key}.timbre"),
                    format!(
                        "unknown timbre \"{}\"; expected one of {}",
                        a.timbre.get_ref(),
                        name_list(&names)
                    ),
                );
                Timbre::Pad
            }
        };
        let role = match &a.role {
            Some(rl) => match Role::ALL.iter().find(|(_, n)| n == rl.get_ref()) {
                Some((x, _)) => *x,
                None => {
                    let names: Vec<&str> = Role::ALL.iter().map(|(_, n)| *n).collect();
                    r.error(
                        rl.span(),
                        format!("{key}.role"),
                        format!(
                            "unknown role \"{}\"; expected one of {}",
                            rl.get_ref(),
                            name_list(&names)
                        ),
                    );
                    Role::Harmony
                }
            },
            None => default_role(timbre),
        };
        let [lo, hi] = a.register.get_ref().0;
        if !(12..=120).contains(&lo) || !(12..=120).contains(&hi) || hi < lo + 5 {
            r.error(a.register.span(), format!("{key}.register"), format!("expected [low, high] MIDI notes within 12..120 spanning at least 5 semitones, found [{lo}, {hi}]"));
        }
        let env = default_envelope(timbre);
        let motif = match &a.motif {
            Some(mf) => MotifStyle {
                steps: {
                    let v = mf.steps.as_ref().map_or(8, |s| *s.get_ref());
                    if !(1..=16).contains(&v) {
                        r.error(
                            mf.steps.as_ref().map_or(0..0, |s| s.span()),
                            format!("{key}.motif.steps"),
                            format!("expected 1 to 16 steps, found {v}"),
                        );
                    }
                    v.clamp(1, 16) as u8
                },
                density: opt_in_range(
                    r,
                    &mf.density,
                    &format!("{key}.motif.density"),
                    0.0,
                    1.0,
                    0.5,
                ),
                range: opt_in_range(r, &mf.range, &format!("{key}.motif.range"), 1.0, 8.0, 3.0)
                    as u8,
                leap_chance: opt_in_range(
                    r,
                    &mf.leap_chance,
                    &format!("{key}.motif.leap_chance"),
                    0.0,
                    1.0,
                    0.2,
                ),
                repeat_chance: opt_in_range(
                    r,
                    &mf.repeat_chance,
                    &format!("{key}.motif.repeat_chance"),
                    0.0,
                    1.0,
                    0.15,
                ),
            },
            None => MotifStyle {
                steps: 8,
                density: 0.5,
                range: 3,
                leap_chance: 0.2,
                repeat_chance: 0.15,
            },
        };
        archetypes.push(ArchetypeConfig {
            timbre,
            role,
            register_low: lo.clamp(12, 120) as u8,
            register_high: hi.clamp(12, 120) as u8,
            motif,
            grid_beats: opt_in_range(
                r,
                &a.grid_beats,
                &format!("{key}.grid_beats"),
                0.125,
                16.0,
                default_grid(timbre),
            ),
            level_db: opt_in_range(r, &a.level_db, &format!("{key}.level_db"), -40.0, 12.0, 0.0),
            free: a.free.unwrap_or(false),
            attack_secs: opt_in_range(
                r,
                &a.attack_secs,
                &format!("{key}.attack_secs"),
                0.001,
                20.0,
                env[0],
            ),
            decay_secs: opt_in_range(
                r,
                &a.decay_secs,
                &format!("{key}.decay_secs"),
                0.005,
                20.0,
                env[1],
            ),
            sustain: opt_in_range(r, &a.sustain, &format!("{key}.sustain"), 0.0, 1.0, env[2]),
            release_secs: opt_in_range(
                r,
                &a.release_secs,
                &format!("{key}.release_secs"),
                0.005,
                20.0,
                env[3],
            ),
            brightness_oct: opt_in_range(
                r,
                &a.brightness_oct,
                &format!("{key}.brightness_oct"),
                -4.0,
                4.0,
                0.0,
            ),
            detune_cents: opt_in_range(
                r,
                &a.detune_cents,
                &format!("{key}.detune_cents"),
                0.0,
                100.0,
                8.0,
            ),
            resume_bars: opt_in_range(
                r,
                &a.resume_bars,
                &format!("{key}.resume_bars"),
                0.0,
                MAX_RESUME_BARS as f64,
                DEFAULT_RESUME_BARS,
            ),
            hold_bars: opt_in_range(
                r,
                &a.hold_bars,
                &format!("{key}.hold_bars"),
                HOLD_BARS_RANGE.0 as f64,
                HOLD_BARS_RANGE.1 as f64,
                DEFAULT_HOLD_BARS,
            ),
        });
    }

    // mappings
    let mut mappings = Vec::new();
    at_most(
        r,
        f.mappings.len(),
        MAX_MAPPINGS,
        || f.mappings[MAX_MAPPINGS].from.span(),
        "mappings",
    );
    for (i, mp) in f.mappings.iter().enumerate().take(MAX_MAPPINGS) {
        let key = format!("mappings[{i}]");
        let dim = match dim_index.get(mp.from.get_ref().as_str()) {
            Some(&d) => d,
            None => {
                r.error(
                    mp.from.span(),
                    format!("{key}.from"),
                    format!(
                        "unknown mood dimension \"{}\"; expected one of {}",
                        mp.from.get_ref(),
                        name_list(&dim_names.iter().map(String::as_str).collect::<Vec<_>>())
                    ),
                );
                0
            }
        };
        let param = match Param::ALL.iter().find(|p| p.1 == mp.to.get_ref()) {
            Some(p) => p.0,
            None => {
                let names: Vec<&str> = Param::ALL.iter().map(|p| p.1).collect();
                r.error(
                    mp.to.span(),
                    format!("{key}.to"),
                    format!(
                        "unknown parameter \"{}\"; expected one of {}",
                        mp.to.get_ref(),
                        name_list(&names)
                    ),
                );
                Param::Density
            }
        };
        let (plo, phi) = param.range();
        let [a, b] = mp.range.get_ref().0;
        if !(plo as f64..=phi as f64).contains(&a) || !(plo as f64..=phi as f64).contains(&b) {
            r.error(
                mp.range.span(),
                format!("{key}.range"),
                format!(
                    "expected [from, to] within {plo} to {phi} for {}, found [{a}, {b}]",
                    param.name()
                ),
            );
        }
        let curve = match &mp.curve {
            Some(c) => match parse_curve(c.get_ref()) {
                Some(c) => c,
                None => {
                    r.error(c.span(), format!("{key}.curve"), format!("expected \"linear\", \"smooth\", \"pow:<exponent>\" or \"threshold:<0..1>\", found \"{}\"", c.get_ref()));
                    Curve::Linear
                }
            },
            None => Curve::Linear,
        };
        mappings.push(MappingConfig {
            dim,
            param,
            out_low: a as f32,
            out_high: b as f32,
            curve,
        });
    }
    let core = CoreDims {
        energy: core[0],
        tension: core[1],
        brightness: core[2],
        unity: core[3],
    };
    add_default_mappings(&mut mappings, &core, reverb_mix);

    let midi_map = midi::resolve(
        f.midi.as_ref(),
        &midi::Defined {
            dims: &dims,
            dim_names: &dim_names,
            sections: &section_names,
            archetypes: &archetype_ids,
        },
        r,
    );

    let room = analysis::resolve(
        f.analysis.as_ref(),
        &analysis::Defined {
            dims: &dims,
            dim_names: &dim_names,
            core: &core,
            tempo_bpm,
        },
        r,
    );

    if r.has_errors() {
        return None;
    }
    Some(Patch {
        name: piece.name.get_ref().clone(),
        config: EngineConfig {
            sample_rate: DEFAULT_SAMPLE_RATE as f32,
            seed,
            capacity,
            key: music_key,
            tempo_bpm,
            beats_per_bar,
            sections,
            start_section,
            transitions,
            dims,
            core,
            mappings,
            archetypes,
            master,
            individuality,
            room_weight: room.weight,
        },
        dims: dim_names,
        archetypes: archetype_ids,
        sections: section_names,
        midi: midi_map,
        room,
        warnings: Vec::new(),
    })
}

/// The mappings every patch gets for parameters it does not map itself.
fn add_default_mappings(mappings: &mut Vec<MappingConfig>, core: &CoreDims, reverb_mix: f32) {
    let m = |dim: u8, param: Param, lo: f32, hi: f32, curve: Curve| MappingConfig {
        dim,
        param,
        out_low: lo,
        out_high: hi,
        curve,
    };
    let defaults = [
        m(core.energy, Param::Density, 0.2, 1.3, Curve::Linear),
        m(core.energy, Param::LoudnessDb, -10.0, 0.0, Curve::Linear),
        m(core.energy, Param::BrightnessOct, -0.6, 0.6, Curve::Linear),
        m(
            core.brightness,
            Param::BrightnessOct,
            -2.0,
            2.0,
            Curve::Linear,
        ),
        m(
            core.tension,
            Param::DetuneCents,
            2.0,
            30.0,
            Curve::Power(1.5),
        ),
        m(core.tension, Param::NonChord, 0.02, 0.55, Curve::Linear),
        m(core.tension, Param::Darkness, 0.0, 1.0, Curve::Smooth),
        m(
            core.tension,
            Param::Falter,
            0.0,
            1.0,
            Curve::Threshold(0.75),
        ),
        m(core.unity, Param::ChordLock, 0.2, 1.0, Curve::Linear),
        m(core.unity, Param::TimingSpread, 1.0, 0.0, Curve::Linear),
        m(core.unity, Param::StereoWidth, 1.0, 0.1, Curve::Linear),
        m(
            core.unity,
            Param::ReverbMix,
            reverb_mix,
            reverb_mix,
            Curve::Linear,
        ),
    ];
    let mapped: Vec<Param> = mappings.iter().map(|m| m.param).collect();
    mappings.extend(defaults.into_iter().filter(|d| !mapped.contains(&d.param)));
}

fn default_role(t: Timbre) -> Role {
    match t {
        Timbre::Bass | Timbre::Drone => Role::Bass,
        Timbre::Pad | Timbre::Choir => Role::Harmony,
        Timbre::Pluck | Timbre::Bell | Timbre::Lead => Role::Melody,
        Timbre::Wind => Role::Texture,
    }
}

fn default_grid(t: Timbre) -> f32 {
    match t {
        Timbre::Pluck => 0.5,
        Timbre::Bell => 1.0,
        Timbre::Bass => 1.0,
        Timbre::Lead => 1.0,
        Timbre::Choir => 2.0,
        Timbre::Wind => 4.0,
        Timbre::Pad | Timbre::Drone => 4.0,
    }
}

/// Attack, decay, sustain, release of each timbre when the patch does not say.
fn default_envelope(t: Timbre) -> [f32; 4] {
    match t {
        Timbre::Pad => [1.5, 1.0, 0.85, 2.5],
        Timbre::Pluck => [0.003, 0.5, 0.0, 0.3],
        Timbre::Bell => [0.002, 2.5, 0.0, 2.0],
        Timbre::Drone => [4.0, 1.0, 1.0, 5.0],
        Timbre::Choir => [0.9, 1.0, 0.9, 1.8],
        Timbre::Bass => [0.008, 0.3, 0.65, 0.15],
        Timbre::Wind => [1.5, 1.0, 0.85, 2.5],
        Timbre::Lead => [0.04, 0.4, 0.8, 0.5],
    }
}

fn parse_meter(s: &str) -> Option<u8> {
    let (a, b) = s.split_once('/')?;
    let beats: u8 = a.trim().parse().ok()?;
    let unit: u8 = b.trim().parse().ok()?;
    ((1..=16).contains(&beats) && [2, 4, 8, 16].contains(&unit)).then_some(beats)
}

fn parse_curve(s: &str) -> Option<Curve> {
    let s = s.trim();
    match s {
        "linear" => Some(Curve::Linear),
        "smooth" => Some(Curve::Smooth),
        _ => {
            let (kind, v) = s.split_once(':')?;
            let v: f32 = v.trim().parse().ok()?;
            match kind.trim() {
                "pow" if v > 0.0 && v <= 10.0 => Some(Curve::Power(v)),
                "threshold" if (0.0..1.0).contains(&v) => Some(Curve::Threshold(v)),
                _ => None,
            }
        }
    }
}

/// Refuses conditions that can never hold together on the communal mood, which stays inside
/// each dimension's range: a threshold at or past the range's end, or a dimension asked to be
/// above one value and below a lower one.
fn can_fire(
    conditions: &[Condition],
    dims: &[MoodDimConfig],
    names: &[String],
) -> Result<(), String> {
    for (i, c) in conditions.iter().enumerate() {
        let (Some(d), Some(name)) = (dims.get(c.dim as usize), names.get(c.dim as usize)) else {
            continue;
        };
        // a threshold that is not a number never compares true
        let never = match c.comparison {
            Comparison::Above => c.threshold.is_nan() || c.threshold >= d.max,
            Comparison::Below => c.threshold.is_nan() || c.threshold <= d.min,
        };
        if never {
            let sign = if c.comparison == Comparison::Above {
                '>'
            } else {
                '<'
            };
            return Err(format!(
                "\"{name} {sign} {}\" can never be true: {name} ranges from {} to {}; expected a threshold inside that range",
                c.threshold, d.min, d.max
            ));
        }
        for o in &conditions[..i] {
            let (above, below) = match (c.comparison, o.comparison) {
                (Comparison::Above, Comparison::Below) => (c, o),
                (Comparison::Below, Comparison::Above) => (o, c),
                _ => continue,
            };
            if o.dim == c.dim && above.threshold >= below.threshold {
                return Err(format!(
                    "\"{name} > {}\" and \"{name} < {}\" can never both be true; expected a lower bound below the upper one",
                    above.threshold, below.threshold
                ));
            }
        }
    }
    Ok(())
}

/// Parses `"tension > 0.6 and energy < 0.4"` (also `&&`).
fn parse_conditions(
    s: &str,
    dims: &HashMap<&str, u8>,
    out: &mut [Condition; MAX_CONDITIONS],
) -> Result<usize, String> {
    let expected = "expected conditions like \"tension > 0.6\" or \"energy > 0.5 and unity < 0.3\"";
    let clauses: Vec<&str> = s
        .split("&&")
        .flat_map(|c| c.split(" and "))
        .map(str::trim)
        .collect();
    if clauses.is_empty() || clauses.len() > MAX_CONDITIONS || clauses.iter().any(|c| c.is_empty())
    {
        return Err(format!("{expected} (at most {MAX_CONDITIONS} clauses)"));
    }
    for (slot, clause) in out.iter_mut().zip(&clauses) {
        let (name, comparison, value) = if let Some((a, b)) = clause.split_once('>') {
            (a, Comparison::Above, b)
        } else if let Some((a, b)) = clause.split_once('<') {
            (a, Comparison::Below, b)
        } else {
            return Err(format!("{expected}; \"{clause}\" has no > or <"));
        };
        let name = name.trim();
        let dim = *dims.get(name).ok_or_else(|| {
            format!("unknown mood dimension \"{name}\" in \"{clause}\"; {expected}")
        })?;
        let threshold: f32 = value.trim().parse().map_err(|_| {
            format!(
                "\"{}\" is not a number in \"{clause}\"; {expected}",
                value.trim()
            )
        })?;
        *slot = Condition {
            dim,
            comparison,
            threshold,
        };
    }
    Ok(clauses.len())
}
