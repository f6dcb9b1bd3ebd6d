//! The `[score]` table: key, mode, tempo, meter, the sections with their chords and the
//! transitions between them, validated and resolved for the engine.

use std::collections::HashMap;

use toml::Spanned;

use super::mood::Mood;
use super::schema::{
    ScoreFile, SectionFile, TransitionFile, MAX_MIN_BARS, MAX_SECTIONS, MAX_TRANSITIONS,
};
use super::{at_most, check_name, in_range, name_list, opt_in_range};
use crate::diagnostic::Reporter;
use crate::engine::config::{
    Comparison, Condition, MoodDimConfig, SectionConfig, TransitionConfig, MAX_CHORDS,
    MAX_CONDITIONS,
};
use crate::score::{Chord, Key, Mode};

/// The resolved `[score]`.
pub(super) struct Score {
    /// Key of the piece.
    pub key: Key,
    /// Tempo in beats per minute.
    pub tempo_bpm: f32,
    /// Beats per bar, from the meter.
    pub beats_per_bar: u8,
    /// Sections in patch order.
    pub sections: Vec<SectionConfig>,
    /// Section names in patch order.
    pub section_names: Vec<String>,
    /// Index of the section the piece starts in.
    pub start_section: u16,
    /// Transitions in patch order.
    pub transitions: Vec<TransitionConfig>,
}

/// Validates `[score]` against the mood dimensions its transitions test.
pub(super) fn resolve(s: &ScoreFile, mood: &Mood, r: &mut Reporter) -> Score {
    let key = music_key(s, r);
    let tempo_bpm = in_range(r, &s.tempo_bpm, "score.tempo_bpm", 20.0, 300.0, " BPM");
    let beats_per_bar = meter(s.meter.as_ref(), r);
    let (sections, section_names) = sections(&s.sections, &key, r);
    let names = SectionNames(&section_names);
    let start_section = match &s.start {
        Some(st) => names.find(r, st, "score.start").unwrap_or(0),
        None => 0,
    };
    let transitions = transitions(&s.transitions, &names, mood, r);
    Score {
        key,
        tempo_bpm,
        beats_per_bar,
        sections,
        section_names,
        start_section,
        transitions,
    }
}

/// `score.key` and `score.mode`.
fn music_key(s: &ScoreFile, r: &mut Reporter) -> Key {
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
    Key::new(tonic_pc, mode)
}

/// `score.meter` as beats per bar (4 without one).
fn meter(meter: Option<&Spanned<String>>, r: &mut Reporter) -> u8 {
    match meter {
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
    }
}

fn parse_meter(s: &str) -> Option<u8> {
    let (a, b) = s.split_once('/')?;
    let beats: u8 = a.trim().parse().ok()?;
    let unit: u8 = b.trim().parse().ok()?;
    ((1..=16).contains(&beats) && [2, 4, 8, 16].contains(&unit)).then_some(beats)
}

/// Every `[[score.sections]]`: at least one, at most [`MAX_SECTIONS`], unique names.
fn sections(
    list: &[SectionFile],
    music_key: &Key,
    r: &mut Reporter,
) -> (Vec<SectionConfig>, Vec<String>) {
    let mut sections = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if list.is_empty() {
        r.error(
            0..0,
            "score.sections",
            "expected at least one [[score.sections]]",
        );
    }
    at_most(
        r,
        list.len(),
        MAX_SECTIONS,
        || list[MAX_SECTIONS].name.span(),
        "score.sections",
    );
    for (i, sec) in list.iter().enumerate().take(MAX_SECTIONS) {
        let key = format!("score.sections[{i}]");
        check_name(r, &sec.name, &format!("{key}.name"));
        let name = sec.name.get_ref();
        if names.contains(name) {
            r.error(
                sec.name.span(),
                format!("{key}.name"),
                format!("section \"{name}\" is defined twice; expected unique names"),
            );
        }
        names.push(name.clone());
        sections.push(section(sec, &key, music_key, r));
    }
    (sections, names)
}

/// One section's chords (read in `music_key`), pacing and sound; `key` names it.
fn section(sec: &SectionFile, key: &str, music_key: &Key, r: &mut Reporter) -> SectionConfig {
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
        match Chord::parse(c.get_ref(), music_key) {
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
    SectionConfig {
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
    }
}

/// The section names, to resolve references to sections.
struct SectionNames<'a>(&'a [String]);

impl SectionNames<'_> {
    /// The index of the section `v` names; an error if there is none.
    fn find(&self, r: &mut Reporter, v: &Spanned<String>, key: &str) -> Option<u16> {
        let pos = self.0.iter().position(|n| n == v.get_ref());
        if pos.is_none() {
            r.error(
                v.span(),
                key,
                format!(
                    "unknown section \"{}\"; expected one of {}",
                    v.get_ref(),
                    name_list(&self.0.iter().map(String::as_str).collect::<Vec<_>>())
                ),
            );
        }
        pos.map(|p| p as u16)
    }
}

/// Every `[[score.transitions]]`, at most [`MAX_TRANSITIONS`].
fn transitions(
    list: &[TransitionFile],
    sections: &SectionNames,
    mood: &Mood,
    r: &mut Reporter,
) -> Vec<TransitionConfig> {
    at_most(
        r,
        list.len(),
        MAX_TRANSITIONS,
        || list[MAX_TRANSITIONS].to.span(),
        "score.transitions",
    );
    let dim_index = mood.index();
    let mut transitions = Vec::new();
    for (i, t) in list.iter().enumerate().take(MAX_TRANSITIONS) {
        let key = format!("score.transitions[{i}]");
        transitions.push(transition(t, &key, sections, mood, &dim_index, r));
    }
    transitions
}

/// One transition: between which sections, when, and after how many bars; `key` names it.
fn transition(
    t: &TransitionFile,
    key: &str,
    sections: &SectionNames,
    mood: &Mood,
    dim_index: &HashMap<&str, u8>,
    r: &mut Reporter,
) -> TransitionConfig {
    let from = match &t.from {
        Some(v) if v.get_ref() == "*" => None,
        Some(v) => sections.find(r, v, &format!("{key}.from")),
        None => None,
    };
    let to = sections.find(r, &t.to, &format!("{key}.to")).unwrap_or(0);
    let mut conditions = [Condition {
        dim: 0,
        comparison: Comparison::Above,
        threshold: 0.0,
    }; MAX_CONDITIONS];
    let count = match parse_conditions(t.when.get_ref(), dim_index, &mut conditions) {
        Ok(n) => {
            if let Err(e) = can_fire(&conditions[..n], &mood.dims, &mood.names) {
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
    TransitionConfig {
        from,
        to,
        conditions,
        condition_count: count as u8,
        min_bars,
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
