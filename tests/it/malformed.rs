//! Malformed patches and performances: every case is a valid text with one mutation, and
//! must come back as `Err` (never a panic) with a diagnostic at the exact line and column
//! of the offending token, a key naming it and a message saying what was expected.
//!
//! Expected positions are computed from the case text (by finding the offending token),
//! so the cases stay correct when the texts are edited.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use tapestry::diagnostic::Severity;
use tapestry::{Diagnostic, Diagnostics, Patch, Performance};

/// A copy of `patches/minimal.toml` (kept here so edits to the shipped patch cannot break
/// the mutations below).
const MINIMAL: &str = r#"# The smallest useful Tapestry patch.
version = 1

[piece]
name = "Minimal"
seed = 1
loudness_target_lufs = -16.0

[score]
key = "C"
mode = "major"
tempo_bpm = 96
meter = "4/4"

[[score.sections]]
name = "main"
chords = ["I", "vi", "IV", "V"]
bars_per_chord = 1

[mood.energy]
default = 0.5
smoothing_secs = 0.5

[mood.tension]
default = 0.2
smoothing_secs = 0.5

[mood.brightness]
default = 0.5
smoothing_secs = 0.5

[mood.unity]
default = 0.6
smoothing_secs = 0.5

[[archetypes]]
id = "pad"
timbre = "pad"
register = [52, 72]

[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 84]
grid_beats = 0.5
motif = { steps = 8, density = 0.6, range = 4 }

[[archetypes]]
id = "bass"
timbre = "bass"
register = [33, 48]
grid_beats = 1.0
motif = { steps = 4, density = 0.75, range = 2 }

[[archetypes]]
id = "bell"
timbre = "bell"
register = [72, 91]
grid_beats = 1.0
motif = { steps = 8, density = 0.4, range = 3 }
"#;

/// A valid performance against [`MINIMAL`]: events[0] join, [1] mood, [2] note_on,
/// [3] note_off, [4] cue, [5] leave.
const PERFORMANCE: &str = r#"version = 1
duration_secs = 20.0

[[events]]
time = 0.0
type = "join"
participant = 1
archetype = "pad"

[[events]]
bar = 2
beat = 1
type = "mood"
participant = 0
dimension = "energy"
value = 0.8
ramp_secs = 2.0

[[events]]
time = 2.0
type = "note_on"
participant = 1
pitch = 60
velocity = 100

[[events]]
sample = 120000
type = "note_off"
participant = 1
pitch = 60

[[events]]
time = 6.0
type = "cue"
section = "main"

[[events]]
time = 8.0
type = "leave"
participant = 1
"#;

const PATCH_FILE: &str = "patches/malformed.toml";
const PERFORMANCE_FILE: &str = "performances/malformed.toml";
const SAMPLE_RATE: u32 = 48_000;

// ---------------------------------------------------------------------------------------
// helpers

/// `base` with each `(from, to)` applied; every `from` must occur exactly once.
fn edit(base: &str, edits: &[(&str, &str)]) -> String {
    let mut text = base.to_string();
    for (from, to) in edits {
        let n = text.matches(from).count();
        assert_eq!(
            n, 1,
            "edit anchor {from:?} occurs {n} times; expected exactly once"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

/// `base` with `insert` placed right after the (unique) `anchor`.
/// [`MINIMAL`] with a designed instrument.
fn with_instrument() -> String {
    format!(
        "{MINIMAL}\n[instruments.glow]\n[[instruments.glow.nodes]]\nid = \"osc\"\nkind = \"saw\"\n\
         [[instruments.glow.nodes]]\nid = \"f\"\nkind = \"lowpass\"\ninput = \"osc\"\n\
         cutoff_hz = {{ from = \"mood.brightness\", range = [300, 3000] }}\n"
    )
}

fn insert_after(base: &str, anchor: &str, insert: &str) -> String {
    edit(base, &[(anchor, &format!("{anchor}{insert}"))])
}

/// Line and column (from 1, column in characters) of a byte offset, computed
/// independently of the library.
fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let (mut line, mut col) = (1, 1);
    for (i, c) in text.char_indices() {
        if i >= byte {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Where a diagnostic is expected.
#[derive(Clone, Copy, Debug)]
enum At {
    /// The start of the only occurrence of this text.
    Token(&'static str),
    /// The start of the n-th (from 0) occurrence of this text.
    Nth(&'static str, usize),
    /// The start of the document (for something that is absent altogether).
    Start,
}

impl At {
    fn locate(self, text: &str) -> (usize, usize) {
        match self {
            At::Token(t) => {
                let n = text.matches(t).count();
                assert_eq!(
                    n, 1,
                    "locator {t:?} occurs {n} times in the case text; expected exactly once"
                );
                line_col(text, text.find(t).unwrap())
            }
            At::Nth(t, i) => {
                let (offset, _) = text
                    .match_indices(t)
                    .nth(i)
                    .unwrap_or_else(|| panic!("locator {t:?} has no occurrence #{i}"));
                line_col(text, offset)
            }
            At::Start => (1, 1),
        }
    }
}

/// One malformed file.
struct Case {
    name: &'static str,
    text: String,
    /// Patch a performance is read against (`None`: [`MINIMAL`]).
    patch: Option<String>,
    at: At,
    /// Key fragment (whole path components, see [`key_contains`]); the first diagnostic
    /// whose key contains it is the one checked.
    key: &'static str,
    /// Fragments the message must contain.
    message: &'static [&'static str],
}

fn case(
    name: &'static str,
    text: String,
    at: At,
    key: &'static str,
    message: &'static [&'static str],
) -> Case {
    Case {
        name,
        text,
        patch: None,
        at,
        key,
        message,
    }
}

/// `key` contains `part` as whole path components: `events[2]` is in `events[2].pitch`,
/// `piece.tempo` is not in `piece] # comment.tempo`.
fn key_contains(key: &str, part: &str) -> bool {
    key.match_indices(part).any(|(i, _)| {
        let before = key[..i].chars().next_back();
        let after = key[i + part.len()..].chars().next();
        matches!(before, None | Some('.')) && matches!(after, None | Some('.') | Some('['))
    })
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("\n    {d}")).collect()
}

fn parse_patch(file: &str, text: &str) -> Result<Result<Patch, Diagnostics>, String> {
    catch_unwind(AssertUnwindSafe(|| Patch::parse(Path::new(file), text)))
        .map_err(|p| panic_message(&p))
}

fn parse_performance(
    text: &str,
    patch: &Patch,
) -> Result<Result<Performance, Diagnostics>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        Performance::parse(Path::new(PERFORMANCE_FILE), text, patch, SAMPLE_RATE)
    }))
    .map_err(|p| panic_message(&p))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

fn minimal_patch() -> Patch {
    Patch::parse(Path::new("minimal.toml"), MINIMAL)
        .unwrap_or_else(|d| panic!("the base patch must be valid:\n{d}"))
}

/// Checks a case's outcome; `Err` describes every way it failed.
fn check<T>(
    c: &Case,
    file: &str,
    outcome: Result<Result<T, Diagnostics>, String>,
) -> Result<(), String> {
    let diags = match outcome {
        Err(panic) => return Err(format!("panicked: {panic}")),
        Ok(Ok(_)) => return Err("parsed without error".into()),
        Ok(Err(Diagnostics(d))) => d,
    };
    if diags.is_empty() {
        return Err("Err with no diagnostics".into());
    }
    let mut problems = Vec::new();
    // The relevant diagnostic; without one, the first is checked for the rest.
    let d = match diags.iter().find(|d| key_contains(&d.key, c.key)) {
        Some(d) => d,
        None => {
            problems.push(format!("no diagnostic with a key containing {:?}", c.key));
            &diags[0]
        }
    };
    let (line, column) = c.at.locate(&c.text);
    if (d.line, d.column) != (line, column) {
        problems.push(format!(
            "at {}:{}, expected {line}:{column}",
            d.line, d.column
        ));
    }
    if d.file != Path::new(file) {
        problems.push(format!("file {:?}, expected {file:?}", d.file));
    }
    for m in c.message {
        if !d.message.contains(m) {
            problems.push(format!("message lacks {m:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} (diagnostic: {d}; all:{})",
            problems.join("; "),
            render(&diags)
        ))
    }
}

/// Every way the patch cases fail, one line (or block) per case.
fn patch_failures(cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        if let Err(e) = check(c, PATCH_FILE, parse_patch(PATCH_FILE, &c.text)) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    failures
}

/// Every way the performance cases fail.
fn performance_failures(cases: &[Case]) -> Vec<String> {
    let minimal = minimal_patch();
    let mut failures = Vec::new();
    for c in cases {
        let other;
        let patch = match &c.patch {
            Some(text) => {
                other = Patch::parse(Path::new("other.toml"), text)
                    .unwrap_or_else(|d| panic!("{}: the case's patch must be valid:\n{d}", c.name));
                &other
            }
            None => &minimal,
        };
        if let Err(e) = check(c, PERFORMANCE_FILE, parse_performance(&c.text, patch)) {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    failures
}

fn assert_no_failures(what: &str, total: usize, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const TRANSITION: &str = "\n[[score.transitions]]\nto = \"main\"\nwhen = \"tension > 0.6\"\n";
const MAPPING: &str =
    "\n[[mappings]]\nfrom = \"energy\"\nto = \"density\"\nrange = [0.2, 1.0]\ncurve = \"smooth\"\n";

/// [`MINIMAL`] plus a transition and a mapping, both valid.
fn minimal_plus() -> String {
    let t = insert_after(MINIMAL, "bars_per_chord = 1\n", TRANSITION);
    format!("{t}{MAPPING}")
}

// ---------------------------------------------------------------------------------------
// the bases are valid

#[test]
fn base_texts_are_valid() {
    let patch = minimal_patch();
    Patch::parse(Path::new("plus.toml"), &minimal_plus()).unwrap_or_else(|d| panic!("{d}"));
    let perf = Performance::parse(Path::new("perf.toml"), PERFORMANCE, &patch, SAMPLE_RATE)
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(perf.commands.len(), 6);
    let two = capacity_two_patch();
    Patch::parse(Path::new("two.toml"), &two).unwrap_or_else(|d| panic!("{d}"));
}

// ---------------------------------------------------------------------------------------
// patches

fn patch_cases() -> Vec<Case> {
    let plus = minimal_plus();
    vec![
        case(
            "wrong version",
            edit(MINIMAL, &[("version = 1", "version = 2")]),
            At::Token("2\n\n[piece]"),
            "version",
            &["expected version = 1", "found 2"],
        ),
        case(
            "unknown top-level key",
            insert_after(MINIMAL, "version = 1\n", "colour = \"blue\"\n"),
            At::Token("colour"),
            "colour",
            &["unknown field `colour`", "expected one of", "`piece`"],
        ),
        case(
            "unknown key in [piece]",
            insert_after(MINIMAL, "seed = 1\n", "tempo = 90\n"),
            At::Token("tempo ="),
            "piece.tempo",
            &["unknown field `tempo`", "expected one of", "`name`"],
        ),
        case(
            "unknown key in [mood.tension]",
            insert_after(MINIMAL, "default = 0.2\n", "maximum = 1.0\n"),
            At::Token("maximum"),
            "mood.tension.maximum",
            &["unknown field `maximum`", "expected one of", "`range`"],
        ),
        case(
            "tempo of the wrong type",
            edit(MINIMAL, &[("tempo_bpm = 96", "tempo_bpm = \"fast\"")]),
            At::Token("\"fast\""),
            "score.tempo_bpm",
            &["string", "expected"],
        ),
        case(
            "tempo out of range",
            edit(MINIMAL, &[("tempo_bpm = 96", "tempo_bpm = 400")]),
            At::Token("400"),
            "score.tempo_bpm",
            &["expected a number from 20 to 300 BPM", "found 400"],
        ),
        case(
            "unknown timbre",
            edit(MINIMAL, &[("timbre = \"pad\"", "timbre = \"organ\"")]),
            At::Token("\"organ\""),
            "archetypes[0].timbre",
            &[
                "unknown timbre \"organ\"",
                "expected one of",
                "\"pad\"",
                "\"lead\"",
            ],
        ),
        case(
            "unknown node kind",
            edit(&with_instrument(), &[("kind = \"saw\"", "kind = \"sawtooth\"")]),
            At::Token("\"sawtooth\""),
            "instruments.glow.nodes[0].kind",
            &["unknown node kind \"sawtooth\"", "expected one of", "\"saw\""],
        ),
        case(
            "unknown binding source",
            edit(&with_instrument(), &[("\"mood.brightness\"", "\"mood.colour\"")]),
            At::Token("{ from = \"mood.colour\", range = [300, 3000] }"),
            "instruments.glow.nodes[1].cutoff_hz",
            &["unknown source \"mood.colour\"", "\"mood.brightness\""],
        ),
        case(
            "filter q out of range",
            insert_after(&with_instrument(), "input = \"osc\"\n", "q = 31.5\n"),
            At::Token("31.5"),
            "instruments.glow.nodes[1].q",
            &["expected a number from 0.1 to 30"],
        ),
        case(
            "envelope point out of range",
            insert_after(
                &with_instrument(),
                "cutoff_hz = { from = \"mood.brightness\", range = [300, 3000] }\n",
                "[[instruments.glow.nodes]]\nid = \"e\"\nkind = \"envelope\"\npoints = [[0.1, 1.0], [0.2, 1.5]]\n",
            ),
            At::Token("[[0.1, 1.0], [0.2, 1.5]]"),
            "instruments.glow.nodes[2].points",
            &["expected points = [[seconds, level], ...]", "level 0 to 1"],
        ),
        case(
            "envelope sustain past its points",
            insert_after(
                &with_instrument(),
                "cutoff_hz = { from = \"mood.brightness\", range = [300, 3000] }\n",
                "[[instruments.glow.nodes]]\nid = \"e\"\nkind = \"envelope\"\npoints = [[0.1, 1.0], [0.2, 0.5]]\nsustain_point = 2009\n",
            ),
            At::Token("2009"),
            "instruments.glow.nodes[2].sustain_point",
            &["expected the index of a point, 0 to 1"],
        ),
        case(
            "lfo shape on an oscillator",
            insert_after(&with_instrument(), "kind = \"saw\"\n", "shape = \"square\"\n"),
            At::Token("\"square\""),
            "instruments.glow.nodes[0].shape",
            &["expected shape only on an lfo node"],
        ),
        case(
            "unknown lfo shape",
            insert_after(
                &with_instrument(),
                "cutoff_hz = { from = \"mood.brightness\", range = [300, 3000] }\n",
                "[[instruments.glow.nodes]]\nid = \"l\"\nkind = \"lfo\"\nshape = \"wobble\"\n",
            ),
            At::Token("\"wobble\""),
            "instruments.glow.nodes[2].shape",
            &["expected shape = one of", "\"random\""],
        ),
        case(
            "node input defined later",
            edit(&with_instrument(), &[("input = \"osc\"", "input = \"f\"")]),
            At::Nth("\"f\"", 1),
            "instruments.glow.nodes[1].input",
            &["unknown node \"f\"", "expected a node defined before this one"],
        ),
        case(
            "unknown instrument",
            edit(&with_instrument(), &[("timbre = \"pad\"", "instrument = \"velvet\"")]),
            At::Token("\"velvet\""),
            "archetypes[0].instrument",
            &["unknown instrument \"velvet\"", "\"glow\""],
        ),
        case(
            "unknown role",
            insert_after(MINIMAL, "timbre = \"pluck\"\n", "role = \"rhythm\"\n"),
            At::Token("\"rhythm\""),
            "archetypes[1].role",
            &["unknown role \"rhythm\"", "expected one of", "\"melody\""],
        ),
        case(
            "inverted register",
            edit(MINIMAL, &[("[33, 48]", "[48, 33]")]),
            At::Token("[48, 33]"),
            "archetypes[2].register",
            &["expected [low, high]", "found [48, 33]"],
        ),
        case(
            "register too narrow",
            edit(MINIMAL, &[("[72, 91]", "[72, 74]")]),
            At::Token("[72, 74]"),
            "archetypes[3].register",
            &["at least 5 semitones", "found [72, 74]"],
        ),
        case(
            // "vi°" has a two-byte character: the column must count characters.
            "bad chord symbol after a non-ASCII one",
            edit(
                MINIMAL,
                &[(
                    "[\"I\", \"vi\", \"IV\", \"V\"]",
                    "[\"I\", \"vi°\", \"H7\", \"V\"]",
                )],
            ),
            At::Token("\"H7\""),
            "score.sections[0].chords[2]",
            &[
                "unknown chord \"H7\"",
                "expected a roman numeral",
                "expected a chord symbol",
            ],
        ),
        case(
            "unknown key name",
            edit(MINIMAL, &[("key = \"C\"", "key = \"H\"")]),
            At::Token("\"H\""),
            "score.key",
            &["expected a key like", "got \"H\""],
        ),
        case(
            "unknown mode",
            edit(MINIMAL, &[("mode = \"major\"", "mode = \"blues\"")]),
            At::Token("\"blues\""),
            "score.mode",
            &["expected a mode", "dorian", "got \"blues\""],
        ),
        case(
            "bad meter",
            edit(MINIMAL, &[("meter = \"4/4\"", "meter = \"4/5\"")]),
            At::Token("\"4/5\""),
            "score.meter",
            &["expected a meter like", "found \"4/5\""],
        ),
        case(
            // Nothing to point at: the document start.
            "missing mood dimension",
            edit(
                MINIMAL,
                &[("[mood.unity]\ndefault = 0.6\nsmoothing_secs = 0.5\n", "")],
            ),
            At::Start,
            "mood",
            &["expected a [mood.unity] table"],
        ),
        case(
            "mood default outside its range",
            edit(MINIMAL, &[("default = 0.2", "default = 1.2")]),
            At::Token("1.2"),
            "mood.tension.default",
            &["expected a value inside the range 0 to 1", "found 1.2"],
        ),
        case(
            "mapping from an unknown dimension",
            edit(&plus, &[("from = \"energy\"", "from = \"warmth\"")]),
            At::Token("\"warmth\""),
            "mappings[0].from",
            &[
                "unknown mood dimension \"warmth\"",
                "expected one of",
                "\"unity\"",
            ],
        ),
        case(
            "mapping to an unknown parameter",
            edit(&plus, &[("to = \"density\"", "to = \"volume\"")]),
            At::Token("\"volume\""),
            "mappings[0].to",
            &[
                "unknown parameter \"volume\"",
                "expected one of",
                "\"stereo_width\"",
            ],
        ),
        case(
            "mapping with a bad curve",
            edit(&plus, &[("curve = \"smooth\"", "curve = \"pow:-2\"")]),
            At::Token("\"pow:-2\""),
            "mappings[0].curve",
            &["expected \"linear\", \"smooth\"", "found \"pow:-2\""],
        ),
        case(
            "mapping range outside the parameter's",
            edit(&plus, &[("range = [0.2, 1.0]", "range = [0.2, 3.0]")]),
            At::Token("[0.2, 3.0]"),
            "mappings[0].range",
            &["expected [from, to] within 0 to 2", "found [0.2, 3]"],
        ),
        case(
            "transition to an unknown section",
            edit(&plus, &[("to = \"main\"", "to = \"bridge\"")]),
            At::Token("\"bridge\""),
            "score.transitions[0].to",
            &["unknown section \"bridge\"", "expected one of \"main\""],
        ),
        case(
            "transition with a malformed when",
            edit(
                &plus,
                &[("when = \"tension > 0.6\"", "when = \"tension is high\"")],
            ),
            At::Token("\"tension is high\""),
            "score.transitions[0].when",
            &["expected conditions like", "has no > or <"],
        ),
        case(
            "transition on an unknown dimension",
            edit(
                &plus,
                &[(
                    "when = \"tension > 0.6\"",
                    "when = \"energy > 0.5 and warmth < 0.3\"",
                )],
            ),
            At::Token("\"energy > 0.5"),
            "score.transitions[0].when",
            &[
                "unknown mood dimension \"warmth\"",
                "expected conditions like",
            ],
        ),
        case(
            "start at an unknown section",
            insert_after(MINIMAL, "meter = \"4/4\"\n", "start = \"intro\"\n"),
            At::Token("\"intro\""),
            "score.start",
            &["unknown section \"intro\"", "expected one of \"main\""],
        ),
        case(
            "duplicate section name",
            insert_after(
                MINIMAL,
                "bars_per_chord = 1\n",
                "\n[[score.sections]]\nname = \"main\"\nchords = [\"ii\", \"V\"]\n",
            ),
            At::Nth("\"main\"", 1),
            "score.sections[1].name",
            &["section \"main\" is defined twice", "expected unique names"],
        ),
        case(
            "duplicate archetype id",
            edit(MINIMAL, &[("id = \"bell\"", "id = \"pad\"")]),
            At::Nth("\"pad\"", 2),
            "archetypes[3].id",
            &["archetype \"pad\" is defined twice", "expected unique ids"],
        ),
        case(
            "bars per chord out of range",
            edit(MINIMAL, &[("bars_per_chord = 1", "bars_per_chord = 0")]),
            At::Token("0\n\n[mood"),
            "score.sections[0].bars_per_chord",
            &["expected 1 to 64 bars", "found 0"],
        ),
        case(
            "capacity out of range",
            insert_after(MINIMAL, "seed = 1\n", "capacity = 0\n"),
            At::Token("0\nloud"),
            "piece.capacity",
            &["expected 1 to 1024 participants", "found 0"],
        ),
        case(
            "motif steps out of range",
            edit(MINIMAL, &[("steps = 4", "steps = 40")]),
            At::Token("40"),
            "archetypes[2].motif.steps",
            &["expected 1 to 16 steps", "found 40"],
        ),
        case(
            "unknown master reverb",
            insert_after(
                MINIMAL,
                "loudness_target_lufs = -16.0\n",
                "\n[master]\nreverb = \"plate\"\n",
            ),
            At::Token("\"plate\""),
            "master.reverb",
            &[
                "unknown reverb \"plate\"",
                "expected \"hall\" or \"fundsp\"",
            ],
        ),
        case(
            "room mapping selecting both a role and a timbre",
            room_mapping("param = \"brightness_oct\"\nrange = [0.0, 2.0]\nrole = \"melody\"\ntimbre = \"lead\""),
            At::Token("\"lead\""),
            "analysis.mappings[0]",
            &["expected either `role` or `timbre`", "not both"],
        ),
        case(
            "room mapping with an unknown role",
            room_mapping("param = \"brightness_oct\"\nrange = [0.0, 2.0]\nrole = \"soloist\""),
            At::Token("\"soloist\""),
            "analysis.mappings[0].role",
            &["unknown role \"soloist\"", "expected one of", "\"melody\""],
        ),
        case(
            "room mapping with an unknown timbre",
            room_mapping("param = \"loudness_db\"\nrange = [0.0, 6.0]\ntimbre = \"flute\""),
            At::Token("\"flute\""),
            "analysis.mappings[0].timbre",
            &["unknown timbre \"flute\"", "expected one of", "\"bell\""],
        ),
        case(
            "room mood mapping with a voice selector",
            room_mapping("mood = \"brightness\"\nrole = \"harmony\""),
            At::Token("\"harmony\""),
            "analysis.mappings[0].role",
            &["`role` selects the voices of a `param` mapping", "`mood` mapping"],
        ),
        case(
            "room mapping selecting voices for stereo width",
            room_mapping("param = \"stereo_width\"\nrange = [0.0, 0.4]\nrole = \"melody\""),
            At::Token("\"melody\""),
            "analysis.mappings[0].role",
            &["`stereo_width` is ensemble-wide", "takes no `role`"],
        ),
        case(
            "room mapping selecting voices for the reverb send",
            room_mapping("param = \"reverb_mix\"\nrange = [0.0, 0.4]\ntimbre = \"pluck\""),
            At::Nth("\"pluck\"", 2),
            "analysis.mappings[0].timbre",
            &["`reverb_mix` is ensemble-wide", "takes no `timbre`"],
        ),
        case(
            "room input gain too high",
            format!("{MINIMAL}\n[analysis]\ninput_gain_db = 75.5\n"),
            At::Token("75.5"),
            "analysis.input_gain_db",
            &["expected a number from -60 to 60", "found 75.5"],
        ),
        case(
            "room input gain too low",
            format!("{MINIMAL}\n[analysis]\nweight = 0.5\ninput_gain_db = -61\n"),
            At::Token("-61"),
            "analysis.input_gain_db",
            &["expected a number from -60 to 60", "found -61"],
        ),
        case(
            "room input gain not a number",
            format!("{MINIMAL}\n[analysis]\ninput_gain_db = \"+12 dB\"\n"),
            At::Token("\"+12 dB\""),
            "analysis.input_gain_db",
            &["invalid type: string \"+12 dB\"", "expected f64"],
        ),
        case(
            "unclosed string",
            edit(MINIMAL, &[("name = \"Minimal\"", "name = \"Minimal")]),
            // The toml parser points where the closing quote is missing: the line's end.
            At::Token("\nseed = 1"),
            "piece.name",
            &["expected"],
        ),
    ]
}

/// [`MINIMAL`] with one `[[analysis.mappings]]` of the room's centroid to `target`.
fn room_mapping(target: &str) -> String {
    format!("{MINIMAL}\n[[analysis.mappings]]\nfeature = \"centroid\"\nfeature_range = [200.0, 4000.0]\n{target}\n")
}

#[test]
fn malformed_patches_are_located() {
    let cases = patch_cases();
    assert!(cases.len() >= 12);
    assert_no_failures("patch cases", cases.len(), patch_failures(&cases));
}

// ---------------------------------------------------------------------------------------
// performances

fn capacity_two_patch() -> String {
    insert_after(MINIMAL, "seed = 1\n", "capacity = 2\n")
}

fn perf_cases() -> Vec<Case> {
    let base = PERFORMANCE;
    let mut cases = vec![
        case(
            "unknown event type",
            edit(base, &[("type = \"cue\"", "type = \"tempo_change\"")]),
            At::Token("\"tempo_change\""),
            "events[4].type",
            &[
                "unknown event type \"tempo_change\"",
                "expected one of",
                "\"note_on\"",
            ],
        ),
        case(
            // Reported at the event's `type`, the one field every event has.
            "two time fields",
            insert_after(base, "time = 2.0\n", "sample = 96000\n"),
            At::Token("\"note_on\""),
            "events[2]",
            &["expected exactly one of `time`", "`bar`", "`sample`"],
        ),
        case(
            "no time field",
            edit(base, &[("time = 6.0\n", "")]),
            At::Token("\"cue\""),
            "events[4]",
            &["expected exactly one of `time`"],
        ),
        case(
            // Reported at the event's `type`: the field is absent.
            "missing participant",
            edit(
                base,
                &[("type = \"leave\"\nparticipant = 1\n", "type = \"leave\"\n")],
            ),
            At::Token("\"leave\""),
            "events[5].participant",
            &["a \"leave\" event needs `participant`"],
        ),
        case(
            "pitch on a join",
            insert_after(base, "archetype = \"pad\"\n", "pitch = 64\n"),
            At::Token("64"),
            "events[0].pitch",
            &[
                "`pitch` does not belong to a \"join\" event",
                "it takes participant, archetype",
            ],
        ),
        case(
            "unknown archetype",
            edit(base, &[("archetype = \"pad\"", "archetype = \"organ\"")]),
            At::Token("\"organ\""),
            "events[0].archetype",
            &["unknown archetype \"organ\"", "expected one of", "pluck"],
        ),
        case(
            "unknown dimension",
            edit(
                base,
                &[("dimension = \"energy\"", "dimension = \"warmth\"")],
            ),
            At::Token("\"warmth\""),
            "events[1].dimension",
            &[
                "unknown mood dimension \"warmth\"",
                "expected one of",
                "tension",
            ],
        ),
        case(
            "mood value out of range",
            edit(base, &[("value = 0.8", "value = 1.5")]),
            At::Token("1.5"),
            "events[1].value",
            &["expected a value from 0 to 1", "found 1.5"],
        ),
        case(
            "velocity 0",
            edit(base, &[("velocity = 100", "velocity = 0")]),
            At::Token("0\n\n[[events]]\nsample"),
            "events[2].velocity",
            &["expected 1 to 127", "found 0"],
        ),
        case(
            "velocity 200",
            edit(base, &[("velocity = 100", "velocity = 200")]),
            At::Token("200\n"),
            "events[2].velocity",
            &["expected 1 to 127", "found 200"],
        ),
        case(
            "pitch 128",
            edit(base, &[("pitch = 60\nvelocity", "pitch = 128\nvelocity")]),
            At::Token("128"),
            "events[2].pitch",
            &["expected 0 to 127", "found 128"],
        ),
        case(
            // Reported at the event's `type`, keyed by the event.
            "leave for someone not present",
            edit(
                base,
                &[(
                    "type = \"leave\"\nparticipant = 1",
                    "type = \"leave\"\nparticipant = 2",
                )],
            ),
            At::Token("\"leave\""),
            "events[5]",
            &["participant 2 leaves but is not present"],
        ),
        case(
            "note for someone not present",
            edit(
                base,
                &[(
                    "type = \"note_on\"\nparticipant = 1",
                    "type = \"note_on\"\nparticipant = 7",
                )],
            ),
            At::Token("\"note_on\""),
            "events[2]",
            &["participant 7 is not present"],
        ),
        case(
            "beat beyond the meter",
            edit(base, &[("beat = 1", "beat = 5")]),
            At::Token("5\ntype"),
            "events[1].beat",
            &["expected a beat from 1 to below 5", "found 5"],
        ),
        case(
            "bar 0",
            edit(base, &[("bar = 2", "bar = 0")]),
            At::Token("0\nbeat"),
            "events[1].bar",
            &["expected a bar number from 1", "found 0"],
        ),
        case(
            "beat without bar",
            insert_after(base, "time = 6.0\n", "beat = 2\n"),
            At::Token("2\ntype = \"cue\""),
            "events[4].beat",
            &["`beat` goes with `bar`"],
        ),
        case(
            "negative sample",
            edit(base, &[("sample = 120000", "sample = -1")]),
            At::Token("-1"),
            "events[3].sample",
            &["expected a sample index from 0 to 4147200000"],
        ),
        case(
            "negative time",
            edit(base, &[("time = 8.0", "time = -8.0")]),
            At::Token("-8.0"),
            "events[5].time",
            &["expected seconds from 0 to 86400", "found -8"],
        ),
        case(
            "cue of an unknown section",
            edit(base, &[("section = \"main\"", "section = \"coda\"")]),
            At::Token("\"coda\""),
            "events[4].section",
            &["unknown section \"coda\"", "expected one of main"],
        ),
        case(
            "wrong version",
            edit(base, &[("version = 1", "version = 3")]),
            At::Token("3\n"),
            "version",
            &["expected version = 1", "found 3"],
        ),
        case(
            "duration out of range",
            edit(base, &[("duration_secs = 20.0", "duration_secs = 0.0")]),
            At::Token("0.0\n\n[[events]]"),
            "duration_secs",
            &["expected 0.1 to 86400 seconds", "found 0"],
        ),
        case(
            "unknown top-level key",
            insert_after(base, "version = 1\n", "tempo = 90\n"),
            At::Token("tempo"),
            "tempo",
            &["unknown field `tempo`", "expected one of", "`events`"],
        ),
    ];
    let room_param = |selector: &str| {
        insert_after(
            base,
            "section = \"main\"\n",
            &format!("\n[[events]]\ntime = 7.0\ntype = \"room_param\"\nparam = \"brightness_oct\"\nvalue = 1.0\n{selector}\n"),
        )
    };
    cases.extend([
        case(
            "room_param selecting both a role and a timbre",
            room_param("role = \"melody\"\ntimbre = \"lead\""),
            At::Token("\"lead\""),
            "events[5]",
            &["expected either `role` or `timbre`", "not both"],
        ),
        case(
            "room_param with an unknown role",
            room_param("role = \"soloist\""),
            At::Token("\"soloist\""),
            "events[5].role",
            &["unknown role \"soloist\"", "expected one of", "\"texture\""],
        ),
        case(
            "room_param with an unknown timbre",
            room_param("timbre = \"flute\""),
            At::Token("\"flute\""),
            "events[5].timbre",
            &["unknown timbre \"flute\"", "expected one of", "\"choir\""],
        ),
        case(
            "room_param selecting voices for stereo width",
            edit(
                &room_param("role = \"melody\""),
                &[("\"brightness_oct\"", "\"stereo_width\"")],
            ),
            At::Token("\"melody\""),
            "events[5].role",
            &["`stereo_width` is ensemble-wide", "takes no `role`"],
        ),
        case(
            "role on a leave event",
            insert_after(base, "type = \"leave\"\n", "role = \"bass\"\n"),
            At::Token("\"bass\""),
            "events[5].role",
            &["`role` does not belong to a \"leave\" event"],
        ),
    ]);
    let mut beyond = case(
        "joins beyond the patch's capacity",
        insert_after(base, "archetype = \"pad\"\n", "\n[[events]]\ntime = 0.5\ntype = \"join\"\nparticipant = 2\n\n[[events]]\ntime = 1.0\ntype = \"join\"\nparticipant = 3\n"),
        At::Nth("\"join\"", 2),
        "events[2]",
        &["participant 3 would exceed the patch's capacity of 2 participants"],
    );
    beyond.patch = Some(capacity_two_patch());
    cases.push(beyond);
    cases
}

#[test]
fn malformed_performances_are_located() {
    let cases = perf_cases();
    assert!(cases.len() >= 8);
    assert_no_failures(
        "performance cases",
        cases.len(),
        performance_failures(&cases),
    );
}

// ---------------------------------------------------------------------------------------
// several problems, display

#[test]
fn every_problem_in_a_patch_is_reported() {
    let text = edit(
        MINIMAL,
        &[
            ("tempo_bpm = 96", "tempo_bpm = 5"),
            (
                "[\"I\", \"vi\", \"IV\", \"V\"]",
                "[\"I\", \"vi\", \"XIV\", \"V\"]",
            ),
            ("timbre = \"bell\"", "timbre = \"gong\""),
        ],
    );
    let diags = match parse_patch(PATCH_FILE, &text) {
        Err(p) => panic!("panicked: {p}"),
        Ok(Ok(_)) => panic!("parsed without error"),
        Ok(Err(Diagnostics(d))) => d,
    };
    let expected = [
        (
            "score.tempo_bpm",
            At::Token("5\nmeter"),
            "expected a number from 20 to 300 BPM",
        ),
        (
            "score.sections[0].chords[2]",
            At::Token("\"XIV\""),
            "unknown chord \"XIV\"",
        ),
        (
            "archetypes[3].timbre",
            At::Token("\"gong\""),
            "unknown timbre \"gong\"",
        ),
    ];
    assert_eq!(
        diags.len(),
        3,
        "expected exactly three diagnostics, got:{}",
        render(&diags)
    );
    for (key, at, message) in expected {
        let (line, column) = at.locate(&text);
        assert!(
            diags.iter().any(|d| d.key == key
                && d.line == line
                && d.column == column
                && d.message.contains(message)),
            "no diagnostic {key} at {line}:{column} containing {message:?}; got:{}",
            render(&diags)
        );
    }
}

#[test]
fn every_problem_in_a_performance_is_reported() {
    let text = edit(
        PERFORMANCE,
        &[
            ("archetype = \"pad\"", "archetype = \"organ\""),
            ("value = 0.8", "value = -0.5"),
            ("velocity = 100", "velocity = 0"),
        ],
    );
    let patch = minimal_patch();
    let diags = match parse_performance(&text, &patch) {
        Err(p) => panic!("panicked: {p}"),
        Ok(Ok(_)) => panic!("parsed without error"),
        Ok(Err(Diagnostics(d))) => d,
    };
    for (key, at) in [
        ("events[0].archetype", At::Token("\"organ\"")),
        ("events[1].value", At::Token("-0.5")),
        ("events[2].velocity", At::Token("0\n\n[[events]]\nsample")),
    ] {
        let (line, column) = at.locate(&text);
        assert!(
            diags
                .iter()
                .any(|d| d.key == key && (d.line, d.column) == (line, column)),
            "no diagnostic {key} at {line}:{column}; got:{}",
            render(&diags)
        );
    }
}

#[test]
fn diagnostics_display_as_file_line_column_key_message() {
    let text = edit(MINIMAL, &[("tempo_bpm = 96", "tempo_bpm = 400")]);
    let Err(Diagnostics(diags)) = Patch::parse(Path::new("patches/bad.toml"), &text) else {
        panic!("expected an error");
    };
    let (line, column) = At::Token("400").locate(&text);
    let d = &diags[0];
    assert_eq!(
        d.to_string(),
        format!("patches/bad.toml:{line}:{column}: score.tempo_bpm: expected a number from 20 to 300 BPM, found 400")
    );
    assert_eq!(
        d.to_string(),
        "patches/bad.toml:12:13: score.tempo_bpm: expected a number from 20 to 300 BPM, found 400"
    );

    let document = Diagnostic {
        file: "p.toml".into(),
        line: 1,
        column: 1,
        key: String::new(),
        message: "something".into(),
        severity: Severity::Error,
    };
    assert_eq!(document.to_string(), "p.toml:1:1: (document): something");
    let warning = Diagnostic {
        severity: Severity::Warning,
        key: "events[3]".into(),
        ..document.clone()
    };
    assert_eq!(
        warning.to_string(),
        "p.toml:1:1: warning: events[3]: something"
    );
    let all = Diagnostics(vec![d.clone(), document.clone()]);
    assert_eq!(all.to_string(), format!("{d}\n{document}"));
}

// ---------------------------------------------------------------------------------------
// robustness: any deleted line or truncation parses to Ok or located Errs, never a panic

fn sweep(base: &str, parse: impl Fn(&str) -> Result<Result<(), Diagnostics>, String>) {
    let lines: Vec<&str> = base.split_inclusive('\n').collect();
    let mut texts = Vec::new();
    for i in 0..lines.len() {
        let mut without = lines.clone();
        without.remove(i);
        texts.push(without.concat());
        texts.push(lines[..i].concat());
        // cut inside the line too
        let cut = lines[..i].concat().len() + lines[i].len() / 2;
        if base.is_char_boundary(cut) {
            texts.push(base[..cut].to_string());
        }
    }
    let mut failures = Vec::new();
    for text in &texts {
        match parse(text) {
            Err(p) => failures.push(format!("panicked ({p}) on:\n{text}")),
            Ok(Ok(())) => {}
            Ok(Err(Diagnostics(d))) => {
                let last_line = text.split('\n').count();
                if d.is_empty() {
                    failures.push(format!("Err without diagnostics on:\n{text}"));
                }
                for x in &d {
                    if x.line < 1 || x.line > last_line || x.column < 1 {
                        failures.push(format!("{x} is outside the text:\n{text}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
}

#[test]
fn mutilated_patches_never_panic() {
    sweep(&minimal_plus(), |t| {
        parse_patch(PATCH_FILE, t).map(|r| r.map(|_| ()))
    });
}

#[test]
fn mutilated_performances_never_panic() {
    let patch = minimal_patch();
    sweep(PERFORMANCE, |t| {
        parse_performance(t, &patch).map(|r| r.map(|_| ()))
    });
}

// ---------------------------------------------------------------------------------------
// Structural (serde/TOML) errors name the exact key path: the entry of an array of tables
// (`archetypes[1].colour`, `events[2].channel`), the field inside an inline table
// (`archetypes[2].motif.steps`), never a table header's trailing comment, and the element
// of a multi-line array.

fn structural_patch_cases() -> Vec<Case> {
    vec![
        case(
            "unknown key in [[archetypes]]",
            insert_after(MINIMAL, "timbre = \"pluck\"\n", "colour = \"warm\"\n"),
            At::Token("colour"),
            "archetypes[1].colour",
            &["unknown field `colour`", "expected one of", "`timbre`"],
        ),
        case(
            "wrong type in [[score.sections]]",
            edit(
                MINIMAL,
                &[("bars_per_chord = 1", "bars_per_chord = \"two\"")],
            ),
            At::Token("\"two\""),
            "score.sections[0].bars_per_chord",
            &["invalid type: string \"two\"", "expected i64"],
        ),
        case(
            "wrong type inside an inline table",
            edit(MINIMAL, &[("steps = 4", "steps = \"four\"")]),
            At::Token("\"four\""),
            "archetypes[2].motif.steps",
            &["invalid type: string \"four\"", "expected i64"],
        ),
        case(
            // Reported at the header of the entry that lacks the field.
            "missing field in [[archetypes]]",
            edit(MINIMAL, &[("register = [60, 84]\n", "")]),
            At::Token("[[archetypes]]\nid = \"pluck\""),
            "archetypes[1]",
            &["missing field `register`"],
        ),
        case(
            "unknown key under a table header with a comment",
            edit(
                MINIMAL,
                &[
                    ("[piece]\n", "[piece] # the piece\n"),
                    ("seed = 1\n", "seed = 1\ntempo = 90\n"),
                ],
            ),
            At::Token("tempo ="),
            "piece.tempo",
            &["unknown field `tempo`"],
        ),
        case(
            "wrong type in a multi-line array",
            edit(
                MINIMAL,
                &[(
                    "chords = [\"I\", \"vi\", \"IV\", \"V\"]",
                    "chords = [\n    \"I\",\n    4,\n]",
                )],
            ),
            At::Token("4,\n]"),
            "score.sections[0].chords[1]",
            &["invalid type: integer `4`", "expected a string"],
        ),
    ]
}

fn structural_performance_cases() -> Vec<Case> {
    vec![
        case(
            "unknown key in [[events]]",
            insert_after(PERFORMANCE, "velocity = 100\n", "channel = 2\n"),
            At::Token("channel"),
            "events[2].channel",
            &["unknown field `channel`", "expected one of", "`velocity`"],
        ),
        case(
            "wrong type in [[events]]",
            edit(PERFORMANCE, &[("velocity = 100", "velocity = \"loud\"")]),
            At::Token("\"loud\""),
            "events[2].velocity",
            &["invalid type: string \"loud\"", "expected i64"],
        ),
    ]
}

#[test]
fn structural_errors_name_the_array_entry() {
    let patches = structural_patch_cases();
    let performances = structural_performance_cases();
    let mut failures = patch_failures(&patches);
    failures.extend(performance_failures(&performances));
    assert_no_failures(
        "structural cases",
        patches.len() + performances.len(),
        failures,
    );
}

/// A bad tonic and a bad mode are two independent problems: both are reported.
#[test]
fn bad_key_and_bad_mode_are_both_reported() {
    let text = edit(
        MINIMAL,
        &[
            ("key = \"C\"", "key = \"H\""),
            ("mode = \"major\"", "mode = \"blues\""),
        ],
    );
    let diags = match parse_patch(PATCH_FILE, &text) {
        Err(p) => panic!("panicked: {p}"),
        Ok(Ok(_)) => panic!("parsed without error"),
        Ok(Err(Diagnostics(d))) => d,
    };
    for (key, at, message) in [
        ("score.key", At::Token("\"H\""), "expected a key like"),
        ("score.mode", At::Token("\"blues\""), "expected a mode"),
    ] {
        let (line, column) = at.locate(&text);
        assert!(
            diags.iter().any(|d| d.key == key
                && (d.line, d.column) == (line, column)
                && d.message.contains(message)),
            "no diagnostic {key} at {line}:{column} containing {message:?}; got:{}",
            render(&diags)
        );
    }
}

#[test]
fn crlf_line_endings_and_tabs_do_not_shift_positions() {
    let text = edit(MINIMAL, &[("tempo_bpm = 96", "tempo_bpm =\t400")]).replace('\n', "\r\n");
    let Err(Diagnostics(diags)) = Patch::parse(Path::new(PATCH_FILE), &text) else {
        panic!("expected an error");
    };
    let (line, column) = At::Token("400").locate(&text);
    assert_eq!((line, column), (12, 13));
    assert_eq!(
        (diags[0].key.as_str(), diags[0].line, diags[0].column),
        ("score.tempo_bpm", line, column)
    );
}

// ---------------------------------------------------------------------------------------
// Nonsense that used to pass (issue 8): lists of the wrong length, names and keys that mean
// nothing, transitions that can never fire, lists and times without bounds. Each is a
// located error.

/// `base` with `count` copies of `entry` appended.
fn with_copies(base: &str, entry: &str, count: usize) -> String {
    let mut text = base.to_string();
    for _ in 0..count {
        text.push_str(entry);
    }
    text
}

fn nonsense_patch_cases() -> Vec<Case> {
    let plus = minimal_plus();
    let long_range = format!("range = [0.2, 1.0{}]", ", 0.5".repeat(100_000));
    vec![
        case(
            "register with five values, one a string",
            edit(
                MINIMAL,
                &[("register = [52, 72]", "register = [52, 72, 99, -5, \"x\"]")],
            ),
            At::Token("[52, 72, 99"),
            "archetypes[0].register",
            &["invalid length 5", "exactly two values [low, high]"],
        ),
        case(
            "register with one value",
            edit(MINIMAL, &[("register = [52, 72]", "register = [52]")]),
            At::Token("[52]"),
            "archetypes[0].register",
            &["invalid length 1", "exactly two values"],
        ),
        case(
            "mapping range with 100002 values",
            edit(&plus, &[("range = [0.2, 1.0]", &long_range)]),
            At::Token("[0.2, 1.0, 0.5"),
            "mappings[0].range",
            &["invalid length 100002", "exactly two values"],
        ),
        case(
            "mood range with three values",
            edit(
                MINIMAL,
                &[(
                    "[mood.energy]\n",
                    "[mood.energy]\nrange = [0.0, 1.0, 2.0]\n",
                )],
            ),
            At::Token("[0.0, 1.0, 2.0]"),
            "mood.energy.range",
            &["invalid length 3"],
        ),
        case(
            "key with ten sharps",
            edit(MINIMAL, &[("key = \"C\"", "key = \"C##########\"")]),
            At::Token("\"C###"),
            "score.key",
            &["expected a key like"],
        ),
        case(
            "empty archetype id",
            edit(MINIMAL, &[("id = \"bell\"", "id = \"\"")]),
            At::Token("\"\"\ntimbre = \"bell\""),
            "archetypes[3].id",
            &["expected a non-empty name"],
        ),
        case(
            "blank section name",
            edit(MINIMAL, &[("name = \"main\"", "name = \"  \"")]),
            At::Token("\"  \""),
            "score.sections[0].name",
            &["expected a non-empty name"],
        ),
        case(
            "empty mood dimension name",
            format!("{MINIMAL}\n[mood.\"\"]\ndefault = 0.5\n"),
            At::Token("\"\"]"),
            "mood",
            &["expected a non-empty name"],
        ),
        case(
            "archetype id of 65 characters",
            edit(
                MINIMAL,
                &[("id = \"bell\"", &format!("id = \"{}\"", "b".repeat(65)))],
            ),
            At::Token("\"bbbb"),
            "archetypes[3].id",
            &["at most 64 characters", "found 65"],
        ),
        case(
            "transition on a threshold above the dimension's range",
            edit(
                &plus,
                &[("when = \"tension > 0.6\"", "when = \"energy > 5\"")],
            ),
            At::Token("\"energy > 5\""),
            "score.transitions[0].when",
            &[
                "\"energy > 5\" can never be true",
                "energy ranges from 0 to 1",
            ],
        ),
        case(
            "transition below the bottom of the range",
            edit(
                &plus,
                &[("when = \"tension > 0.6\"", "when = \"unity < 0\"")],
            ),
            At::Token("\"unity < 0\""),
            "score.transitions[0].when",
            &["can never be true"],
        ),
        case(
            "transition with contradictory clauses",
            edit(
                &plus,
                &[(
                    "when = \"tension > 0.6\"",
                    "when = \"tension > 0.6 and tension < 0.4\"",
                )],
            ),
            At::Token("\"tension > 0.6 and"),
            "score.transitions[0].when",
            &["can never both be true"],
        ),
        case(
            "transition on a threshold that is not a number",
            edit(
                &plus,
                &[("when = \"tension > 0.6\"", "when = \"tension > nan\"")],
            ),
            At::Token("\"tension > nan\""),
            "score.transitions[0].when",
            &["can never be true"],
        ),
        case(
            "negative min_bars",
            insert_after(&plus, "when = \"tension > 0.6\"\n", "min_bars = -1\n"),
            At::Token("-1\n"),
            "score.transitions[0].min_bars",
            &["expected 0 to 10000 bars", "found -1"],
        ),
        case(
            "min_bars past its limit",
            insert_after(&plus, "when = \"tension > 0.6\"\n", "min_bars = 10001\n"),
            At::Token("10001"),
            "score.transitions[0].min_bars",
            &["expected 0 to 10000 bars"],
        ),
        case(
            "65 mappings",
            with_copies(
                MINIMAL,
                "\n[[mappings]]\nfrom = \"energy\"\nto = \"density\"\nrange = [0.2, 1.0]\n",
                65,
            ),
            At::Nth("\"energy\"", 64),
            "mappings[64]",
            &["expected at most 64 [[mappings]] entries, found 65"],
        ),
        case(
            "65 archetypes",
            with_copies(
                MINIMAL,
                "\n[[archetypes]]\nid = \"x\"\ntimbre = \"pad\"\nregister = [52, 72]\n",
                61,
            ),
            At::Nth("\"x\"", 60),
            "archetypes[64]",
            &["expected at most 64 [[archetypes]] entries, found 65"],
        ),
        case(
            "mood range too wide",
            edit(
                MINIMAL,
                &[("[mood.energy]\n", "[mood.energy]\nrange = [0.0, 1e30]\n")],
            ),
            At::Token("[0.0, 1e30]"),
            "mood.energy.range",
            &["within -1000000 to 1000000"],
        ),
    ]
}

#[test]
fn nonsense_patches_are_located() {
    let cases = nonsense_patch_cases();
    assert_no_failures("nonsense patch cases", cases.len(), patch_failures(&cases));
}

#[test]
fn a_patch_over_its_size_limit_is_refused_before_parsing() {
    // 1,000,000 values in one range (and 100,000 mappings) are megabytes: refused whole
    let range = format!("range = [0.2{}]", ", 1.0".repeat(1_000_000));
    let text = edit(&minimal_plus(), &[("range = [0.2, 1.0]", &range)]);
    let mappings = with_copies(
        MINIMAL,
        "\n[[mappings]]\nfrom = \"energy\"\nto = \"density\"\nrange = [0.2, 1.0]\n",
        100_000,
    );
    for text in [text, mappings] {
        let Err(Diagnostics(d)) = Patch::parse(Path::new(PATCH_FILE), &text) else {
            panic!("a {} byte patch was accepted", text.len());
        };
        assert_eq!(d.len(), 1, "{}", render(&d));
        assert!(
            d[0].message
                .contains("expected a patch of at most 1048576 bytes"),
            "{}",
            d[0]
        );
    }
}

/// [`PERFORMANCE`] with its first event's `time = 0.0` replaced.
fn first_time(to: &str) -> String {
    edit(PERFORMANCE, &[("time = 0.0", to)])
}

fn limit_performance_cases() -> Vec<Case> {
    vec![
        case(
            "sample at i64::MAX",
            first_time("sample = 9223372036854775807"),
            At::Token("9223372036854775807"),
            "events[0].sample",
            &[
                "expected a sample index from 0 to 4147200000",
                "86400 s at 48000 Hz",
            ],
        ),
        case(
            "sample one past 24 h",
            first_time("sample = 4147200001"),
            At::Token("4147200001"),
            "events[0].sample",
            &["expected a sample index from 0 to 4147200000"],
        ),
        case(
            "bar 100000",
            edit(PERFORMANCE, &[("bar = 2", "bar = 100000")]),
            At::Token("100000"),
            "events[1].bar",
            &[
                "bar 100000 is 249998 s into the piece at 96 BPM",
                "within 86400 s (24 h)",
            ],
        ),
        case(
            "bar at i64::MAX",
            edit(PERFORMANCE, &[("bar = 2", "bar = 9223372036854775807")]),
            At::Token("9223372036854775807"),
            "events[1].bar",
            &["within 86400 s"],
        ),
        case(
            "time not a number",
            first_time("time = nan"),
            At::Token("nan"),
            "events[0].time",
            &["expected seconds from 0 to 86400 (24 h), found NaN"],
        ),
        case(
            "time infinite",
            first_time("time = inf"),
            At::Token("inf"),
            "events[0].time",
            &["expected seconds from 0 to 86400"],
        ),
        case(
            "ramp of a billion seconds",
            edit(PERFORMANCE, &[("ramp_secs = 2.0", "ramp_secs = 1e9")]),
            At::Token("1e9"),
            "events[1].ramp_secs",
            &["expected 0 to 3600 seconds"],
        ),
        case(
            "duration past 24 h",
            edit(
                PERFORMANCE,
                &[("duration_secs = 20.0", "duration_secs = 86400.5")],
            ),
            At::Token("86400.5"),
            "duration_secs",
            &["expected 0.1 to 86400 seconds (24 h)"],
        ),
        case(
            "session end at i64::MAX",
            format!(
                "{}\n[session]\nend_sample = 9223372036854775807\n",
                edit(PERFORMANCE, &[("duration_secs = 20.0\n", "")])
            ),
            At::Token("9223372036854775807"),
            "session.end_sample",
            &["expected a sample index from 0 to 4147200000"],
        ),
        case(
            "session end 1e14",
            format!(
                "{}\n[session]\nend_sample = 100000000000000\n",
                edit(PERFORMANCE, &[("duration_secs = 20.0\n", "")])
            ),
            At::Token("100000000000000"),
            "session.end_sample",
            &["expected a sample index from 0 to 4147200000"],
        ),
        case(
            "position mark with a field",
            insert_after(
                PERFORMANCE,
                "duration_secs = 20.0\n",
                "\n[[events]]\ntime = 1.0\ntype = \"position\"\nparticipant = 77\n",
            ),
            At::Token("77"),
            "events[0].participant",
            &[
                "does not belong to a \"position\" event",
                "no fields but its time",
            ],
        ),
    ]
}

#[test]
fn time_values_past_their_limits_are_located() {
    let cases = limit_performance_cases();
    assert_no_failures(
        "time limit cases",
        cases.len(),
        performance_failures(&cases),
    );
}

#[test]
fn a_day_long_performance_is_valid() {
    let patch = minimal_patch();
    let text = edit(
        PERFORMANCE,
        &[("duration_secs = 20.0", "duration_secs = 86400")],
    );
    let perf = Performance::parse(Path::new(PERFORMANCE_FILE), &text, &patch, SAMPLE_RATE)
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(perf.duration_frames, 86_400 * 48_000);
    // a join at the very last sample is a valid time (the notes before it are not)
    let text = first_time("sample = 4147200000");
    let Err(Diagnostics(d)) =
        Performance::parse(Path::new(PERFORMANCE_FILE), &text, &patch, SAMPLE_RATE)
    else {
        panic!("notes before the join were accepted");
    };
    assert!(
        d.iter().all(|d| d.key != "events[0].sample"),
        "{}",
        render(&d)
    );
}

// ---------------------------------------------------------------------------------------
// Warnings: harmless oddities are located and reported, and the file is still used.

#[test]
fn events_after_the_end_are_a_located_warning() {
    let patch = minimal_patch();
    let text = edit(
        PERFORMANCE,
        &[("duration_secs = 20.0", "duration_secs = 5.0")],
    );
    let perf = Performance::parse(Path::new(PERFORMANCE_FILE), &text, &patch, SAMPLE_RATE)
        .unwrap_or_else(|d| panic!("events after the end are not an error: {d}"));
    assert_eq!(perf.commands.len(), 6, "every event is kept");
    assert_eq!(perf.warnings.len(), 1, "{}", render(&perf.warnings));
    let w = &perf.warnings[0];
    // the cue at 6 s is the first event past 5 s; the leave at 8 s follows it
    let (line, column) = At::Token("\"cue\"").locate(&text);
    assert_eq!(
        (w.line, w.column, w.key.as_str()),
        (line, column, "events[4]"),
        "{w}"
    );
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("at 6.000 s, at or after the end of the performance (5.000 s): not played, nor the 1 events after it"), "{w}");
    assert!(
        w.to_string().starts_with(&format!(
            "{PERFORMANCE_FILE}:{line}:{column}: warning: events[4]: "
        )),
        "{w}"
    );
    let none = Performance::parse(
        Path::new(PERFORMANCE_FILE),
        PERFORMANCE,
        &patch,
        SAMPLE_RATE,
    )
    .unwrap();
    assert!(none.warnings.is_empty(), "{}", render(&none.warnings));
}

#[test]
fn a_flood_of_problems_is_listed_up_to_a_limit_and_counted() {
    let patch = minimal_patch();
    let bad = "\n[[events]]\ntime = 1.0\ntype = \"leave\"\nparticipant = -3\n";
    let text = with_copies(PERFORMANCE, bad, 5_000);
    let Err(Diagnostics(d)) =
        Performance::parse(Path::new(PERFORMANCE_FILE), &text, &patch, SAMPLE_RATE)
    else {
        panic!("5000 bad events accepted");
    };
    assert_eq!(d.len(), tapestry::diagnostic::MAX_DIAGNOSTICS + 1);
    assert!(
        d[0].message.contains("expected a participant id from 1"),
        "{}",
        d[0]
    );
    assert!(
        d.last()
            .unwrap()
            .message
            .contains("4900 more problems not shown"),
        "{}",
        d.last().unwrap()
    );
}

#[test]
fn events_as_an_inline_array_still_read_and_are_located() {
    let patch = minimal_patch();
    let text = "version = 1\nevents = [\n  { time = 0.0, type = \"join\", participant = 1 },\n  { time = 1.0, type = \"leave\", participant = 2 },\n]\n";
    let Err(Diagnostics(d)) =
        Performance::parse(Path::new(PERFORMANCE_FILE), text, &patch, SAMPLE_RATE)
    else {
        panic!("a leave of someone absent was accepted");
    };
    let (line, column) = At::Token("\"leave\"").locate(text);
    assert_eq!(
        (d[0].line, d[0].column, d[0].key.as_str()),
        (line, column, "events[1]"),
        "{}",
        render(&d)
    );
    let ok = text.replace("participant = 2", "participant = 1");
    let perf = Performance::parse(Path::new(PERFORMANCE_FILE), &ok, &patch, SAMPLE_RATE).unwrap();
    assert_eq!(perf.commands.len(), 2);
}
