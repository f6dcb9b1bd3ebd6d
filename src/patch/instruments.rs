//! `[instruments.<name>]`: designed instruments, each a list of nodes wired in order,
//! validated key by key (every value keeps its span) and resolved into
//! [`InstrumentDef`]s the engine builds its voice graphs from.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::{Spanned, Value as Toml};

use super::schema::{InstrumentFile, MAX_NAME_CHARS};
use super::{in_range, name_list};
use crate::diagnostic::Reporter;
use crate::engine::instrument::{
    Arity, BindCurve, Binding, InstrumentDef, LfoShape, NodeDef, NodeKind, NoiseColour, ParamSpec,
    Source, Value, LFO_SHAPES, MAX_ENVELOPE_POINTS, MAX_INSTRUMENTS, MAX_NODES, MAX_NODE_INPUTS,
    MAX_PARTIALS, MAX_POLYPHONY, MAX_SEGMENT_SECS, NODE_KINDS,
};

/// Default `polyphony`.
pub const DEFAULT_POLYPHONY: i64 = 16;
/// Longest `smoothing_secs` of a binding.
pub const MAX_SMOOTHING_SECS: f64 = 10.0;

/// Every instrument, in name order; returns them and their names.
pub(super) fn resolve(
    map: &BTreeMap<String, InstrumentFile>,
    dims: &[String],
    r: &mut Reporter,
) -> (Vec<InstrumentDef>, Vec<String>) {
    let mut defs = Vec::new();
    let mut names = Vec::new();
    for (i, (name, file)) in map.iter().enumerate() {
        let key = format!("instruments.{name}");
        let at = r
            .find(&format!("[instruments.{name}"))
            .map_or(0..0, |s| s..s + key.len() + 1);
        if i == MAX_INSTRUMENTS {
            r.error(
                at.clone(),
                &key,
                format!("expected at most {MAX_INSTRUMENTS} instruments"),
            );
        }
        if name.trim().is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            r.error(
                at.clone(),
                &key,
                format!("expected a name of 1 to {MAX_NAME_CHARS} characters without control characters"),
            );
        }
        defs.push(instrument(name, file, &key, at, dims, r));
        names.push(name.clone());
    }
    (defs, names)
}

fn instrument(
    name: &str,
    f: &InstrumentFile,
    key: &str,
    at: Range<usize>,
    dims: &[String],
    r: &mut Reporter,
) -> InstrumentDef {
    let polyphony = match &f.polyphony {
        Some(p) => {
            let v = *p.get_ref();
            if !(1..=MAX_POLYPHONY as i64).contains(&v) {
                r.error(
                    p.span(),
                    format!("{key}.polyphony"),
                    format!("expected 1 to {MAX_POLYPHONY} voices, found {v}"),
                );
            }
            v.clamp(1, MAX_POLYPHONY as i64) as u16
        }
        None => DEFAULT_POLYPHONY as u16,
    };
    let level_db = match &f.level_db {
        Some(v) => in_range(r, v, &format!("{key}.level_db"), -40.0, 12.0, " dB"),
        None => 0.0,
    };
    if f.nodes.is_empty() || f.nodes.len() > MAX_NODES {
        let span = f.nodes.get(MAX_NODES).map_or(at, |n| n.span());
        r.error(
            span,
            format!("{key}.nodes"),
            format!(
                "expected 1 to {MAX_NODES} [[{key}.nodes]], found {}",
                f.nodes.len()
            ),
        );
    }
    let mut ids: Vec<String> = Vec::new();
    let mut nodes = Vec::new();
    for (i, n) in f.nodes.iter().enumerate().take(MAX_NODES) {
        let node_key = format!("{key}.nodes[{i}]");
        let (id, def) = node(n, &node_key, &ids, dims, r);
        if ids.contains(&id) {
            r.error(
                n.span(),
                format!("{node_key}.id"),
                format!("node \"{id}\" is defined twice; expected unique ids"),
            );
        }
        ids.push(id);
        nodes.push(def);
    }
    let output = match &f.output {
        Some(o) => match ids.iter().position(|id| id == o.get_ref()) {
            Some(i) => i as u16,
            None => {
                r.error(
                    o.span(),
                    format!("{key}.output"),
                    format!(
                        "unknown node \"{}\"; expected one of {}",
                        o.get_ref(),
                        quoted(&ids)
                    ),
                );
                0
            }
        },
        None => nodes.len().saturating_sub(1) as u16,
    };
    InstrumentDef {
        name: name.to_string(),
        polyphony,
        level: 10f32.powf(level_db / 20.0),
        nodes,
        output,
    }
}

fn quoted(ids: &[String]) -> String {
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    name_list(&names)
}

/// The keys every node may have besides its kind's parameters.
const NODE_KEYS: [&str; 10] = [
    "id",
    "kind",
    "input",
    "inputs",
    "colour",
    "shape",
    "gains",
    "partials",
    "points",
    "sustain_point",
];

/// One node: its id and definition. `earlier` are the ids of the nodes before it.
fn node(
    n: &Spanned<BTreeMap<String, Spanned<Toml>>>,
    key: &str,
    earlier: &[String],
    dims: &[String],
    r: &mut Reporter,
) -> (String, NodeDef) {
    let map = n.get_ref();
    let id = match map.get("id") {
        Some(v) => text(v, &format!("{key}.id"), r).unwrap_or_default(),
        None => {
            r.error(n.span(), format!("{key}.id"), "expected an id = \"...\"");
            String::new()
        }
    };
    if id.chars().count() > MAX_NAME_CHARS || id.chars().any(char::is_control) {
        let span = map.get("id").map_or(n.span(), |v| v.span());
        r.error(
            span,
            format!("{key}.id"),
            format!(
                "expected an id of at most {MAX_NAME_CHARS} characters without control characters"
            ),
        );
    }
    let mut kind = kind(n, key, r);
    let inputs = inputs(map, n.span(), key, kind, earlier, r);
    let mut params = Vec::new();
    for spec in kind.params() {
        params.push(match map.get(spec.name) {
            Some(v) => value(v, spec, &format!("{key}.{}", spec.name), dims, r),
            None => Value::Const(spec.default),
        });
    }
    let weights = match kind {
        NodeKind::Envelope { .. } => {
            let points = points(map, n.span(), key, r);
            kind = NodeKind::Envelope {
                sustain: sustain(map, key, points.len() / 2, r),
            };
            points
        }
        _ => {
            misplaced(map, key, &["points", "sustain_point"], "an envelope", r);
            weights(map, n.span(), key, kind, inputs.len(), r)
        }
    };
    for (k, v) in map {
        let known = NODE_KEYS.contains(&k.as_str()) || kind.params().iter().any(|s| s.name == k);
        if !known {
            let mut names: Vec<&str> = NODE_KEYS.to_vec();
            names.extend(kind.params().iter().map(|s| s.name));
            r.error(
                v.span(),
                format!("{key}.{k}"),
                format!("unknown key \"{k}\"; expected one of {}", name_list(&names)),
            );
        }
    }
    (
        id,
        NodeDef {
            kind,
            inputs,
            params,
            weights,
        },
    )
}

/// `kind` (and a noise node's `colour`).
fn kind(n: &Spanned<BTreeMap<String, Spanned<Toml>>>, key: &str, r: &mut Reporter) -> NodeKind {
    let map = n.get_ref();
    let Some(v) = map.get("kind") else {
        r.error(n.span(), format!("{key}.kind"), "expected a kind = \"...\"");
        return NodeKind::Sine;
    };
    let name = text(v, &format!("{key}.kind"), r).unwrap_or_default();
    let Some(kind) = NodeKind::from_name(&name) else {
        let names: Vec<&str> = NODE_KINDS.iter().map(|(_, n)| *n).collect();
        r.error(
            v.span(),
            format!("{key}.kind"),
            format!(
                "unknown node kind \"{name}\"; expected one of {}",
                name_list(&names)
            ),
        );
        return NodeKind::Sine;
    };
    let kind = match (kind, map.get("shape")) {
        (NodeKind::Lfo(_), Some(v)) => NodeKind::Lfo(lfo_shape(v, key, r)),
        (_, Some(v)) => {
            r.error(
                v.span(),
                format!("{key}.shape"),
                "expected shape only on an lfo node",
            );
            kind
        }
        _ => kind,
    };
    match (kind, map.get("colour")) {
        (NodeKind::Noise(_), Some(c)) => {
            let colour = match text(c, &format!("{key}.colour"), r).as_deref() {
                Some("white") => NoiseColour::White,
                Some("pink") => NoiseColour::Pink,
                Some("brown") => NoiseColour::Brown,
                Some(other) => {
                    r.error(
                        c.span(),
                        format!("{key}.colour"),
                        format!(
                            "unknown colour \"{other}\"; expected \"white\", \"pink\" or \"brown\""
                        ),
                    );
                    NoiseColour::White
                }
                None => NoiseColour::White,
            };
            NodeKind::Noise(colour)
        }
        (_, Some(c)) => {
            r.error(
                c.span(),
                format!("{key}.colour"),
                "expected colour only on a noise node",
            );
            kind
        }
        _ => kind,
    }
}

/// An lfo's `shape`.
fn lfo_shape(v: &Spanned<Toml>, key: &str, r: &mut Reporter) -> LfoShape {
    let name = text(v, &format!("{key}.shape"), r);
    match LFO_SHAPES.iter().find(|(_, n)| Some(*n) == name.as_deref()) {
        Some((shape, _)) => *shape,
        None => {
            let names: Vec<&str> = LFO_SHAPES.iter().map(|(_, n)| *n).collect();
            r.error(
                v.span(),
                format!("{key}.shape"),
                format!("expected shape = one of {}", name_list(&names)),
            );
            LfoShape::Sine
        }
    }
}

/// Errors for `keys` on a node that is not `owner`.
fn misplaced(
    map: &BTreeMap<String, Spanned<Toml>>,
    key: &str,
    keys: &[&str],
    owner: &str,
    r: &mut Reporter,
) {
    for name in keys {
        if let Some(v) = map.get(*name) {
            r.error(
                v.span(),
                format!("{key}.{name}"),
                format!("expected {name} only on {owner} node"),
            );
        }
    }
}

/// An envelope's `points = [[secs, level], ...]`, flattened.
fn points(
    map: &BTreeMap<String, Spanned<Toml>>,
    span: Range<usize>,
    key: &str,
    r: &mut Reporter,
) -> Vec<f32> {
    let expected = format!(
        "expected points = [[seconds, level], ...]: 1 to {MAX_ENVELOPE_POINTS} points, \
         seconds 0 to {MAX_SEGMENT_SECS}, level 0 to 1"
    );
    let Some(v) = map.get("points") else {
        r.error(span, format!("{key}.points"), expected);
        return Vec::new();
    };
    let pair = |p: &Toml| match p {
        Toml::Array(a) if a.len() == 2 => match (number(&a[0]), number(&a[1])) {
            (Some(t), Some(l))
                if (0.0..=MAX_SEGMENT_SECS as f64).contains(&t) && (0.0..=1.0).contains(&l) =>
            {
                Some([t as f32, l as f32])
            }
            _ => None,
        },
        _ => None,
    };
    let list: Option<Vec<[f32; 2]>> = match v.get_ref() {
        Toml::Array(a) if (1..=MAX_ENVELOPE_POINTS).contains(&a.len()) => {
            a.iter().map(pair).collect()
        }
        _ => None,
    };
    match list {
        Some(l) => l.concat(),
        None => {
            r.error(v.span(), format!("{key}.points"), expected);
            Vec::new()
        }
    }
}

/// An envelope's `sustain_point`: the index of the point it holds at while the note is held
/// (default: the last point).
fn sustain(
    map: &BTreeMap<String, Spanned<Toml>>,
    key: &str,
    points: usize,
    r: &mut Reporter,
) -> u8 {
    let last = points.saturating_sub(1);
    let Some(v) = map.get("sustain_point") else {
        return last as u8;
    };
    match v.get_ref() {
        Toml::Integer(i) if (0..=last as i64).contains(i) => *i as u8,
        _ => {
            r.error(
                v.span(),
                format!("{key}.sustain_point"),
                format!("expected the index of a point, 0 to {last}"),
            );
            last as u8
        }
    }
}

/// `input` or `inputs`, as the kind takes them; each an earlier node's id.
fn inputs(
    map: &BTreeMap<String, Spanned<Toml>>,
    span: Range<usize>,
    key: &str,
    kind: NodeKind,
    earlier: &[String],
    r: &mut Reporter,
) -> Vec<u16> {
    let mut refs: Vec<(String, Range<usize>)> = Vec::new();
    match (kind.arity(), map.get("input"), map.get("inputs")) {
        (Arity::One, Some(v), None) => {
            if let Some(id) = text(v, &format!("{key}.input"), r) {
                refs.push((id, v.span()));
            }
        }
        (Arity::Many, None, Some(v)) => match v.get_ref() {
            Toml::Array(list) if (1..=MAX_NODE_INPUTS).contains(&list.len()) => {
                for item in list {
                    match item {
                        Toml::String(s) => refs.push((s.clone(), v.span())),
                        _ => r.error(
                            v.span(),
                            format!("{key}.inputs"),
                            "expected a list of node ids",
                        ),
                    }
                }
            }
            _ => r.error(
                v.span(),
                format!("{key}.inputs"),
                format!("expected a list of 1 to {MAX_NODE_INPUTS} node ids"),
            ),
        },
        (Arity::Source, None, None) => {}
        (arity, one, many) => {
            let at = one.or(many).map_or(span, |v| v.span());
            let expected = match arity {
                Arity::Source => "expected no input: this kind is a source",
                Arity::One => "expected one input = \"<node id>\"",
                Arity::Many => "expected inputs = [\"<node id>\", ...]",
            };
            r.error(at, format!("{key}.input"), expected);
        }
    }
    refs.into_iter()
        .filter_map(|(id, at)| match earlier.iter().position(|e| *e == id) {
            Some(i) => Some(i as u16),
            None => {
                r.error(
                    at,
                    format!("{key}.input"),
                    format!(
                        "unknown node \"{id}\"; expected a node defined before this one: {}",
                        if earlier.is_empty() {
                            "none is".to_string()
                        } else {
                            quoted(earlier)
                        }
                    ),
                );
                None
            }
        })
        .collect()
}

/// `partials` of an additive oscillator, `gains` of a mix (default 1 each).
fn weights(
    map: &BTreeMap<String, Spanned<Toml>>,
    span: Range<usize>,
    key: &str,
    kind: NodeKind,
    inputs: usize,
    r: &mut Reporter,
) -> Vec<f32> {
    let (name, wanted, lo, hi) = match kind {
        NodeKind::Additive => ("partials", 1..=MAX_PARTIALS, -1.0, 1.0),
        NodeKind::Mix => ("gains", inputs..=inputs, -4.0, 4.0),
        _ => {
            for name in ["partials", "gains"] {
                if let Some(v) = map.get(name) {
                    r.error(
                        v.span(),
                        format!("{key}.{name}"),
                        format!(
                            "expected {name} only on an {} node",
                            if name == "partials" {
                                "additive"
                            } else {
                                "mix"
                            }
                        ),
                    );
                }
            }
            return Vec::new();
        }
    };
    let Some(v) = map.get(name) else {
        if kind == NodeKind::Mix {
            return vec![1.0; inputs];
        }
        r.error(
            span,
            format!("{key}.{name}"),
            "expected partials = [amplitude of harmonic 1, 2, ...]",
        );
        return Vec::new();
    };
    let list: Option<Vec<f64>> = match v.get_ref() {
        Toml::Array(a) => a.iter().map(number).collect(),
        _ => None,
    };
    match list {
        Some(l) if wanted.contains(&l.len()) && l.iter().all(|x| (lo..=hi).contains(x)) => {
            l.iter().map(|x| *x as f32).collect()
        }
        _ => {
            r.error(
                v.span(),
                format!("{key}.{name}"),
                format!(
                    "expected a list of {} to {} numbers from {lo} to {hi}",
                    wanted.start(),
                    wanted.end()
                ),
            );
            Vec::new()
        }
    }
}

fn number(v: &Toml) -> Option<f64> {
    match v {
        Toml::Integer(i) => Some(*i as f64),
        Toml::Float(f) => Some(*f),
        _ => None,
    }
}

fn text(v: &Spanned<Toml>, key: &str, r: &mut Reporter) -> Option<String> {
    match v.get_ref() {
        Toml::String(s) => Some(s.clone()),
        _ => {
            r.error(v.span(), key, "expected a string");
            None
        }
    }
}

/// A parameter: a number within its range, or a binding `{ from = ..., range = [..], ... }`.
fn value(
    v: &Spanned<Toml>,
    spec: &ParamSpec,
    key: &str,
    dims: &[String],
    r: &mut Reporter,
) -> Value {
    let (lo, hi) = (spec.min, spec.max);
    let within = |x: f64| (lo..=hi).contains(&(x as f32));
    match v.get_ref() {
        Toml::Table(t) => match binding(t, spec, dims) {
            Ok(b) => Value::Bound(b),
            Err(message) => {
                r.error(v.span(), key, message);
                Value::Const(spec.default)
            }
        },
        other => match number(other) {
            Some(x) if within(x) => Value::Const(x as f32),
            _ => {
                r.error(
                    v.span(),
                    key,
                    format!("expected a number from {lo} to {hi} or a binding {{ from = \"...\", range = [low, high] }}"),
                );
                Value::Const(spec.default)
            }
        },
    }
}

/// The keys of a binding table.
const BINDING_KEYS: [&str; 6] = [
    "from",
    "range",
    "curve",
    "smoothing_secs",
    "over_secs",
    "rate_hz",
];

fn binding(t: &toml::Table, spec: &ParamSpec, dims: &[String]) -> Result<Binding, String> {
    if let Some(k) = t.keys().find(|k| !BINDING_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown binding key \"{k}\"; expected {}",
            name_list(&BINDING_KEYS)
        ));
    }
    let source = match t.get("from") {
        Some(Toml::String(s)) => source(s, dims)?,
        _ => {
            return Err(format!(
                "expected from = \"<source>\" ({})",
                source_names(dims)
            ))
        }
    };
    let (lo, hi) = (spec.min, spec.max);
    let range = match t.get("range") {
        Some(Toml::Array(a)) if a.len() == 2 => (number(&a[0]), number(&a[1])),
        _ => (None, None),
    };
    let (Some(low), Some(high)) = range else {
        return Err(format!("expected range = [low, high] within {lo} to {hi}"));
    };
    if !(lo..=hi).contains(&(low as f32)) || !(lo..=hi).contains(&(high as f32)) {
        return Err(format!(
            "expected range = [low, high] within {lo} to {hi}, found [{low}, {high}]"
        ));
    }
    let curve = match t.get("curve") {
        None => BindCurve::Linear,
        Some(Toml::String(s)) => curve(s)?,
        Some(_) => return Err(CURVES.to_string()),
    };
    if curve == BindCurve::Exp && (low <= 0.0 || high <= 0.0) {
        return Err("expected both ends of the range above 0 for curve = \"exp\"".into());
    }
    let opt = |name: &str, lo: f64, hi: f64, default: f64| match t.get(name) {
        None => Ok(default),
        Some(v) => match number(v) {
            Some(x) if (lo..=hi).contains(&x) => Ok(x),
            _ => Err(format!("expected {name} from {lo} to {hi}")),
        },
    };
    // an LFO is smooth already; anything else gets a short smoothing against steps
    let default_smoothing = if source == Source::Lfo { 0.0 } else { 0.02 };
    let smoothing_secs = opt("smoothing_secs", 0.0, MAX_SMOOTHING_SECS, default_smoothing)?;
    let span = match source {
        Source::Age => opt("over_secs", 0.01, 60.0, 1.0)?,
        Source::Lfo => opt("rate_hz", 0.01, 40.0, 1.0)?,
        _ => 1.0,
    };
    let misplaced = match source {
        Source::Age => "rate_hz",
        Source::Lfo => "over_secs",
        _ => {
            if t.contains_key("rate_hz") {
                "rate_hz"
            } else {
                "over_secs"
            }
        }
    };
    if t.contains_key(misplaced) {
        return Err(format!(
            "expected {misplaced} only with from = \"{}\"",
            if misplaced == "rate_hz" {
                "lfo"
            } else {
                "note.age"
            }
        ));
    }
    Ok(Binding {
        source,
        low: low as f32,
        high: high as f32,
        curve,
        smoothing_secs: smoothing_secs as f32,
        span: span as f32,
    })
}

const CURVES: &str =
    "expected curve = \"linear\", \"exp\", \"smooth\" or \"pow:<p>\" (p 0.1 to 10)";

fn curve(s: &str) -> Result<BindCurve, String> {
    match s {
        "linear" => Ok(BindCurve::Linear),
        "exp" => Ok(BindCurve::Exp),
        "smooth" => Ok(BindCurve::Smooth),
        _ => match s.strip_prefix("pow:").map(|p| p.trim().parse::<f32>()) {
            Some(Ok(p)) if (0.1..=10.0).contains(&p) => Ok(BindCurve::Power(p)),
            _ => Err(CURVES.to_string()),
        },
    }
}

const FIXED_SOURCES: [(&str, Source); 11] = [
    ("note.pitch", Source::Pitch),
    ("note.velocity", Source::Velocity),
    ("note.gate", Source::Gate),
    ("note.age", Source::Age),
    ("expression.bend", Source::Bend),
    ("expression.vibrato", Source::Vibrato),
    ("expression.brightness", Source::Brightness),
    ("score.beat_phase", Source::BeatPhase),
    ("score.bar_phase", Source::BarPhase),
    ("score.section", Source::Section),
    ("lfo", Source::Lfo),
];

fn source(s: &str, dims: &[String]) -> Result<Source, String> {
    if let Some((_, src)) = FIXED_SOURCES.iter().find(|(n, _)| *n == s) {
        return Ok(*src);
    }
    let dim = |name: &str| dims.iter().position(|d| d == name).map(|d| d as u8);
    let found = match s.split_once('.') {
        Some(("mood", d)) => dim(d).map(Source::Mood),
        Some(("communal", d)) => dim(d).map(Source::Communal),
        _ => None,
    };
    found.ok_or_else(|| format!("unknown source \"{s}\"; expected {}", source_names(dims)))
}

fn source_names(dims: &[String]) -> String {
    let mut names: Vec<String> = FIXED_SOURCES.iter().map(|(n, _)| n.to_string()).collect();
    names.extend(dims.iter().map(|d| format!("mood.{d}")));
    names.extend(dims.iter().map(|d| format!("communal.{d}")));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    name_list(&names)
}
