//! The `[[mappings]]` tables: how the communal mood drives the sound parameters, validated
//! and resolved into [`MappingConfig`]s, with the defaults every patch gets.

use std::collections::HashMap;

use super::mood::Mood;
use super::schema::{MappingFile, MAX_MAPPINGS};
use super::{at_most, name_list};
use crate::diagnostic::Reporter;
use crate::engine::config::{CoreDims, Curve, MappingConfig, Param};

/// Every `[[mappings]]`, at most [`MAX_MAPPINGS`], then the defaults for the parameters they
/// leave unmapped (the reverb mix at `reverb_mix`).
pub(super) fn resolve(
    list: &[MappingFile],
    mood: &Mood,
    reverb_mix: f32,
    r: &mut Reporter,
) -> Vec<MappingConfig> {
    at_most(
        r,
        list.len(),
        MAX_MAPPINGS,
        || list[MAX_MAPPINGS].from.span(),
        "mappings",
    );
    let dim_index = mood.index();
    let mut mappings: Vec<MappingConfig> = list
        .iter()
        .take(MAX_MAPPINGS)
        .enumerate()
        .map(|(i, mp)| mapping(mp, &format!("mappings[{i}]"), mood, &dim_index, r))
        .collect();
    add_default_mappings(&mut mappings, &mood.core, reverb_mix);
    mappings
}

/// One mapping: from which dimension to which parameter, over what range and curve.
fn mapping(
    mp: &MappingFile,
    key: &str,
    mood: &Mood,
    dim_index: &HashMap<&str, u8>,
    r: &mut Reporter,
) -> MappingConfig {
    let dim = match dim_index.get(mp.from.get_ref().as_str()) {
        Some(&d) => d,
        None => {
            r.error(
                mp.from.span(),
                format!("{key}.from"),
                format!(
                    "unknown mood dimension \"{}\"; expected one of {}",
                    mp.from.get_ref(),
                    name_list(&mood.names.iter().map(String::as_str).collect::<Vec<_>>())
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
    MappingConfig {
        dim,
        param,
        out_low: a as f32,
        out_high: b as f32,
        curve,
    }
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

/// Parses a mapping curve: `linear`, `smooth`, `pow:<exponent>` or `threshold:<0..1>`.
pub(super) fn parse_curve(s: &str) -> Option<Curve> {
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
