//! The `[mood.<name>]` tables: the mood dimensions, validated and resolved into
//! [`MoodDimConfig`]s, with the four core dimensions every patch needs.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::schema::{MoodDimFile, MAX_MOOD_MAGNITUDE};
use super::{check_name, opt_in_range};
use crate::diagnostic::Reporter;
use crate::engine::config::{CoreDims, MoodDimConfig, MAX_DIMS};

/// The patch's mood dimensions, in patch order.
pub(super) struct Mood {
    /// Each dimension's range, default and smoothing.
    pub dims: Vec<MoodDimConfig>,
    /// Each dimension's name.
    pub names: Vec<String>,
    /// Where energy, tension, brightness and unity are (0 where one is missing: an error).
    pub core: CoreDims,
}

impl Mood {
    /// Dimension index by name.
    pub fn index(&self) -> HashMap<&str, u8> {
        index(&self.names)
    }
}

fn index(names: &[String]) -> HashMap<&str, u8> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u8))
        .collect()
}

/// Validates every `[mood.<name>]` table, at most [`MAX_DIMS`] of them, and finds the core
/// dimensions.
pub(super) fn resolve(mood: &BTreeMap<String, MoodDimFile>, r: &mut Reporter) -> Mood {
    let mut dims = Vec::new();
    let mut names = Vec::new();
    for (name, d) in mood {
        dims.push(dimension(name, d, r));
        names.push(name.to_string());
    }
    if dims.len() > MAX_DIMS {
        let extra = mood
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
        names.truncate(MAX_DIMS);
    }
    let core = core_dims(&index(&names), r);
    Mood { dims, names, core }
}

/// One `[mood.<name>]` table.
fn dimension(name: &str, d: &MoodDimFile, r: &mut Reporter) -> MoodDimConfig {
    let key = format!("mood.{name}");
    check_name(
        r,
        &Spanned::new(dim_header(r, name, d), name.to_string()),
        &key,
    );
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
    MoodDimConfig {
        min,
        max,
        default,
        smoothing_secs,
    }
}

/// Finds energy, tension, brightness and unity; each missing one is an error.
fn core_dims(index: &HashMap<&str, u8>, r: &mut Reporter) -> CoreDims {
    let mut core = [0u8; 4];
    for (slot, name) in core
        .iter_mut()
        .zip(["energy", "tension", "brightness", "unity"])
    {
        match index.get(name) {
            Some(&i) => *slot = i,
            None => r.error(
                0..0,
                "mood",
                format!("expected a [mood.{name}] table: energy, tension, brightness and unity are required"),
            ),
        }
    }
    CoreDims {
        energy: core[0],
        tension: core[1],
        brightness: core[2],
        unity: core[3],
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
