//! The `[analysis]` section: how the room's audio features drive the mood, sound parameters
//! and tempo; validated with every problem located, resolved into a [`RoomMap`].

use toml::Spanned;

use super::schema::{AnalysisFile, AnalysisMappingFile, TempoFollowFile, MAX_ROOM_MAPPINGS};
use super::{name_list, opt_in_range, parse_curve};
use crate::analysis::Feature;
use crate::control::VoiceSelector;
use crate::diagnostic::Reporter;
use crate::engine::config::{CoreDims, Curve, MoodDimConfig, Param, Role, Timbre};
use crate::room::{
    RoomMap, RoomMapping, RoomTarget, TempoFollow, DEFAULT_GATE_LUFS, INPUT_GAIN_DB_LIMIT,
};

/// Default share of the room in the communal mood.
pub const DEFAULT_ROOM_WEIGHT: f32 = 0.5;

fn feature_names() -> String {
    name_list(&Feature::ALL.map(Feature::name))
}

/// Whether a mapping of `f` compares on a log scale unless it says otherwise.
pub(crate) fn is_hz_or_bpm(f: Feature) -> bool {
    matches!(f, Feature::Centroid | Feature::Pitch | Feature::Tempo)
}

fn pair(r: &mut Reporter, v: &Spanned<Vec<f64>>, key: &str) -> Option<(f32, f32)> {
    match v.get_ref().as_slice() {
        [a, b] if a.is_finite() && b.is_finite() => Some((*a as f32, *b as f32)),
        _ => {
            r.error(v.span(), key, "expected two finite numbers [low, high]");
            None
        }
    }
}

/// The mappings a patch gets when `[analysis]` declares none (or is absent).
pub fn default_mappings(core: &CoreDims, dims: &[MoodDimConfig]) -> Vec<RoomMapping> {
    // an invalid patch may lack its core dimensions; its errors are reported elsewhere
    let fallback = MoodDimConfig {
        min: 0.0,
        max: 1.0,
        default: 0.5,
        smoothing_secs: 1.0,
    };
    let mood = |feature, dim: u8, low, high, smoothing_secs, weight| {
        let d = dims.get(dim as usize).copied().unwrap_or(fallback);
        RoomMapping {
            feature,
            target: RoomTarget::Mood(dim),
            low,
            high,
            out_low: d.min,
            out_high: d.max,
            curve: Curve::Linear,
            log: is_hz_or_bpm(feature),
            smoothing_secs,
            weight,
        }
    };
    vec![
        mood(Feature::Loudness, core.energy, -50.0, -18.0, 1.0, 0.6),
        mood(Feature::OnsetRate, core.energy, 0.0, 6.0, 1.0, 0.4),
        RoomMapping {
            feature: Feature::OnsetRate,
            target: RoomTarget::Param(Param::Density, VoiceSelector::All),
            low: 0.0,
            high: 6.0,
            out_low: -0.2,
            out_high: 0.5,
            curve: Curve::Linear,
            log: false,
            smoothing_secs: 1.5,
            weight: 1.0,
        },
        mood(Feature::Centroid, core.brightness, 250.0, 4000.0, 1.0, 1.0),
        mood(Feature::Flatness, core.tension, 0.05, 0.6, 1.5, 0.5),
        mood(Feature::Roughness, core.tension, 0.0, 0.6, 1.5, 0.5),
        mood(Feature::PulseSteadiness, core.unity, 0.2, 0.9, 2.0, 1.0),
    ]
}

/// What the rest of the patch defines, for the names `[analysis]` refers to.
pub(super) struct Defined<'a> {
    pub dims: &'a [MoodDimConfig],
    pub dim_names: &'a [String],
    pub core: &'a CoreDims,
    pub tempo_bpm: f32,
}

/// Resolves the section (absent: defaults).
pub(super) fn resolve(f: Option<&AnalysisFile>, d: &Defined, r: &mut Reporter) -> RoomMap {
    let Some(f) = f else {
        return RoomMap {
            weight: DEFAULT_ROOM_WEIGHT,
            gate_lufs: DEFAULT_GATE_LUFS,
            input_gain_db: 0.0,
            mappings: default_mappings(d.core, d.dims),
            tempo: None,
        };
    };
    let weight = opt_in_range(
        r,
        &f.weight,
        "analysis.weight",
        0.0,
        1.0,
        DEFAULT_ROOM_WEIGHT,
    );
    let gate_lufs = opt_in_range(
        r,
        &f.gate_lufs,
        "analysis.gate_lufs",
        -90.0,
        0.0,
        DEFAULT_GATE_LUFS,
    );
    let limit = f64::from(INPUT_GAIN_DB_LIMIT);
    let input_gain_db = opt_in_range(
        r,
        &f.input_gain_db,
        "analysis.input_gain_db",
        -limit,
        limit,
        0.0,
    );
    if let Some(extra) = f.mappings.get(MAX_ROOM_MAPPINGS) {
        r.error(
            extra.feature.span(),
            format!("analysis.mappings[{MAX_ROOM_MAPPINGS}]"),
            format!(
                "expected at most {MAX_ROOM_MAPPINGS} [[analysis.mappings]] entries, found {}",
                f.mappings.len()
            ),
        );
    }
    let mappings = if f.mappings.is_empty() {
        default_mappings(d.core, d.dims)
    } else {
        f.mappings
            .iter()
            .take(MAX_ROOM_MAPPINGS)
            .enumerate()
            .filter_map(|(i, m)| mapping(m, &format!("analysis.mappings[{i}]"), d, r))
            .collect()
    };
    let tempo = f.tempo.as_ref().map(|t| tempo_follow(t, d.tempo_bpm, r));
    RoomMap {
        weight,
        gate_lufs,
        input_gain_db,
        mappings,
        tempo,
    }
}

/// `[analysis.tempo]`: the range and steadiness within which the piece follows the room's
/// tempo (by default from 3/4 to 4/3 of the patch's `tempo_bpm`).
fn tempo_follow(t: &TempoFollowFile, tempo_bpm: f32, r: &mut Reporter) -> TempoFollow {
    let min_bpm = opt_in_range(
        r,
        &t.min_bpm,
        "analysis.tempo.min_bpm",
        20.0,
        400.0,
        tempo_bpm * 0.75,
    );
    let max_bpm = opt_in_range(
        r,
        &t.max_bpm,
        "analysis.tempo.max_bpm",
        20.0,
        400.0,
        tempo_bpm * 4.0 / 3.0,
    );
    if max_bpm < min_bpm {
        let span = t.max_bpm.as_ref().or(t.min_bpm.as_ref()).map(|s| s.span());
        r.error(
            span.unwrap_or(0..0),
            "analysis.tempo.max_bpm",
            format!("expected max_bpm ({max_bpm}) at or above min_bpm ({min_bpm})"),
        );
    }
    TempoFollow {
        min_bpm,
        max_bpm,
        min_steadiness: opt_in_range(
            r,
            &t.min_steadiness,
            "analysis.tempo.min_steadiness",
            0.0,
            1.0,
            0.5,
        ),
        smoothing_secs: opt_in_range(
            r,
            &t.smoothing_secs,
            "analysis.tempo.smoothing_secs",
            0.0,
            600.0,
            4.0,
        ),
    }
}

/// One `[[analysis.mappings]]` entry; `None` (with the problems reported) if it is invalid.
fn mapping(
    m: &AnalysisMappingFile,
    key: &str,
    d: &Defined,
    r: &mut Reporter,
) -> Option<RoomMapping> {
    let feature = feature(m, key, r);
    let target = target(m, key, d, r);
    let range = feature_range(m, key, r);
    let to = output_range(m, target, key, d, r);
    let curve = curve(m, key, r);
    let smoothing_secs = opt_in_range(
        r,
        &m.smoothing_secs,
        &format!("{key}.smoothing_secs"),
        0.0,
        600.0,
        1.0,
    );
    let weight = opt_in_range(r, &m.weight, &format!("{key}.weight"), 0.0, 100.0, 1.0);
    let (feature, target, (low, high), (out_low, out_high), curve) =
        (feature?, target?, range?, to?, curve?);
    if m.log.unwrap_or(is_hz_or_bpm(feature)) && (low <= 0.0 || high <= 0.0) {
        r.error(
            m.feature_range.span(),
            format!("{key}.feature_range"),
            "expected positive values for a log-scale mapping (set `log = false` for a linear one)",
        );
        return None;
    }
    Some(RoomMapping {
        feature,
        target,
        low,
        high,
        out_low,
        out_high,
        curve,
        log: m.log.unwrap_or(is_hz_or_bpm(feature)),
        smoothing_secs,
        weight,
    })
}

/// `feature`, one of [`Feature::ALL`].
fn feature(m: &AnalysisMappingFile, key: &str, r: &mut Reporter) -> Option<Feature> {
    let feature = m.feature.get_ref().parse::<Feature>().ok();
    if feature.is_none() {
        r.error(
            m.feature.span(),
            format!("{key}.feature"),
            format!(
                "unknown feature \"{}\"; expected one of {}",
                m.feature.get_ref(),
                feature_names()
            ),
        );
    }
    feature
}

/// The mood dimension or the (voices') parameter a mapping drives: exactly one of `mood`
/// and `param`; `role` and `timbre` only with `param`.
fn target(m: &AnalysisMappingFile, key: &str, d: &Defined, r: &mut Reporter) -> Option<RoomTarget> {
    let selector_on_mood = if let (Some(_), Some((selector, name))) = (
        &m.mood,
        m.role
            .as_ref()
            .map(|x| (x, "role"))
            .or(m.timbre.as_ref().map(|x| (x, "timbre"))),
    ) {
        r.error(
            selector.span(),
            format!("{key}.{name}"),
            format!("`{name}` selects the voices of a `param` mapping; a `mood` mapping drives the whole ensemble's mood"),
        );
        true
    } else {
        false
    };
    let target = match (&m.mood, &m.param) {
        (Some(name), None) => match d.dim_names.iter().position(|n| n == name.get_ref()) {
            Some(i) => Some(RoomTarget::Mood(i as u8)),
            None => {
                let known: Vec<&str> = d.dim_names.iter().map(String::as_str).collect();
                r.error(
                    name.span(),
                    format!("{key}.mood"),
                    format!(
                        "unknown mood dimension \"{}\"; expected one of {}",
                        name.get_ref(),
                        name_list(&known)
                    ),
                );
                None
            }
        },
        (None, Some(name)) => match Param::ALL.iter().find(|p| p.1 == name.get_ref()) {
            Some(p) => voices(m, p.0, key, r).map(|v| RoomTarget::Param(p.0, v)),
            None => {
                r.error(
                    name.span(),
                    format!("{key}.param"),
                    format!(
                        "unknown parameter \"{}\"; expected one of {}",
                        name.get_ref(),
                        name_list(&Param::ALL.map(|p| p.1))
                    ),
                );
                None
            }
        },
        (Some(a), Some(_)) => {
            r.error(a.span(), key, "expected either `mood` or `param`, not both");
            None
        }
        (None, None) => {
            r.error(
                m.feature.span(),
                key,
                "expected a target: `mood = \"<dimension>\"` or `param = \"<parameter>\"`",
            );
            None
        }
    };
    target.filter(|_| !selector_on_mood)
}

/// `feature_range`: two different finite numbers.
fn feature_range(m: &AnalysisMappingFile, key: &str, r: &mut Reporter) -> Option<(f32, f32)> {
    let range = pair(r, &m.feature_range, &format!("{key}.feature_range"));
    if let Some((lo, hi)) = range {
        if lo == hi {
            r.error(
                m.feature_range.span(),
                format!("{key}.feature_range"),
                "expected two different values [low, high]",
            );
        }
    }
    range
}

/// `range`, the output range: a mood mapping defaults to its dimension's range, a `param`
/// mapping must give one.
fn output_range(
    m: &AnalysisMappingFile,
    target: Option<RoomTarget>,
    key: &str,
    d: &Defined,
    r: &mut Reporter,
) -> Option<(f32, f32)> {
    match (&m.range, target) {
        (Some(to), _) => pair(r, to, &format!("{key}.range")),
        (None, Some(RoomTarget::Mood(dim))) => {
            d.dims.get(dim as usize).map(|dim| (dim.min, dim.max))
        }
        (None, Some(RoomTarget::Param(..))) => {
            r.error(
                m.param.as_ref().map_or(0..0, |p| p.span()),
                format!("{key}.range"),
                "expected `range = [low, high]`: the offset the parameter gets at the ends of `feature_range`",
            );
            None
        }
        (None, None) => None,
    }
}

/// `curve` (linear without one).
fn curve(m: &AnalysisMappingFile, key: &str, r: &mut Reporter) -> Option<Curve> {
    match &m.curve {
        Some(c) => match parse_curve(c.get_ref()) {
            Some(c) => Some(c),
            None => {
                r.error(
                    c.span(),
                    format!("{key}.curve"),
                    "expected \"linear\", \"smooth\", \"pow:<p>\" or \"threshold:<t>\"",
                );
                None
            }
        },
        None => Some(Curve::Linear),
    }
}

/// The voices a `param` mapping reaches: all, or those of one `role` or one `timbre`.
fn voices(
    m: &AnalysisMappingFile,
    param: Param,
    key: &str,
    r: &mut Reporter,
) -> Option<VoiceSelector> {
    let selector = match (&m.role, &m.timbre) {
        (None, None) => return Some(VoiceSelector::All),
        (Some(_), Some(t)) => {
            r.error(
                t.span(),
                key,
                "expected either `role` or `timbre` to select voices, not both",
            );
            return None;
        }
        (Some(role), None) => match Role::from_name(role.get_ref()) {
            Some(x) => (role, "role", VoiceSelector::Role(x)),
            None => {
                r.error(
                    role.span(),
                    format!("{key}.role"),
                    format!(
                        "unknown role \"{}\"; expected one of {}",
                        role.get_ref(),
                        name_list(&Role::ALL.map(|x| x.1))
                    ),
                );
                return None;
            }
        },
        (None, Some(timbre)) => match Timbre::from_name(timbre.get_ref()) {
            Some(x) => (timbre, "timbre", VoiceSelector::Timbre(x)),
            None => {
                r.error(
                    timbre.span(),
                    format!("{key}.timbre"),
                    format!(
                        "unknown timbre \"{}\"; expected one of {}",
                        timbre.get_ref(),
                        name_list(&Timbre::ALL.map(|x| x.1))
                    ),
                );
                return None;
            }
        },
    };
    let (spanned, name, voices) = selector;
    if !param.is_per_voice() {
        r.error(
            spanned.span(),
            format!("{key}.{name}"),
            format!(
                "`{}` is ensemble-wide, not a voice parameter: it takes no `{name}` (drop it to offset the whole ensemble)",
                param.name()
            ),
        );
        return None;
    }
    Some(voices)
}
