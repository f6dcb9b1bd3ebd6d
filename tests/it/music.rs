//! The music itself, measured on whole renders of every shipped piece: balance of the
//! spectrum, a clear harmony that unity pulls together, each piece heard in its key,
//! sections that differ the way the story does, and the dynamics the story asks for. Plus
//! every timbre sounding at its pitch.
//!
//! The pieces are rendered once each (shared through a `OnceLock`) exactly as `tapestry
//! render` renders them: the whole master chain, the whole-piece loudness gain and the
//! true-peak limiter; their sections come from the render's timeline. (Probes of a single
//! section or mood turn the leveler off, so that one probe compares with another.) Measures
//! are independent of the engine (`tests/common/music.rs`, tested on synthetic signals in
//! `music_selftest.rs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::measure::{mono, onset_rate_per_sec, segment, spectral_centroid_hz};
use crate::common::music::*;
use crate::common::SR;
use tapestry::render::RenderOptions;
use tapestry::timeline::render_with_timeline;
use tapestry::{Patch, Performance};

/// One shipped piece, rendered and analysed.
struct Piece {
    name: String,
    /// Interleaved stereo, as `tapestry render` writes it (before dithering).
    audio: Vec<f32>,
    frames: Frames,
    /// Section name, start and end in seconds, in order of play.
    sections: Vec<(String, f32, f32)>,
    bar_secs: f32,
    tonic: u8,
    minor: bool,
}

impl Piece {
    fn secs(&self) -> f32 {
        self.audio.len() as f32 / 2.0 / SR as f32
    }

    fn stretch(&self, start: f32, end: f32) -> &[f32] {
        segment(&self.audio, SR, start, end)
    }
}

fn patches_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("patches")
}

/// The patch text with the leveler switched off (the rest of the master chain stays).
fn without_leveler(text: &str) -> String {
    if text.contains("\n[master]\n") {
        text.replacen("\n[master]\n", "\n[master]\nleveler = false\n", 1)
    } else {
        format!("{text}\n[master]\nleveler = false\n")
    }
}

fn render_piece(name: &str) -> Piece {
    let patch = crate::common::patch(&format!("{name}.toml"));
    let perf_path = patches_dir().join(format!("{name}.performance.toml"));
    let perf = Performance::load(&perf_path, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    let options = RenderOptions {
        sample_rate: SR,
        ..RenderOptions::default()
    };
    let (audio, timeline) = render_with_timeline(&patch, &perf, &options);
    let sections = timeline
        .sections()
        .into_iter()
        .map(|s| (s.name, s.start_seconds as f32, s.end_seconds as f32))
        .collect();
    let cfg = patch.config(SR, None);
    let bar_secs = 60.0 / cfg.tempo_bpm * cfg.beats_per_bar as f32;
    Piece {
        name: name.to_string(),
        frames: Frames::of_stereo(&audio, SR as f32),
        audio,
        sections,
        bar_secs,
        tonic: cfg.key.tonic,
        minor: cfg.key.mode.is_minor(),
    }
}

const PIECES: [&str; 3] = ["minimal", "kaleidoscope-nights", "sleep-gathering"];

/// Every shipped piece, rendered once (in parallel) and shared by the tests.
fn pieces() -> &'static [Piece] {
    static CELL: OnceLock<Vec<Piece>> = OnceLock::new();
    CELL.get_or_init(|| {
        std::thread::scope(|s| {
            let handles: Vec<_> = PIECES
                .iter()
                .map(|name| s.spawn(move || render_piece(name)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    })
}

fn piece(name: &str) -> &'static Piece {
    pieces().iter().find(|p| p.name == name).unwrap()
}

/// Per-section figures of a piece.
struct SectionFigures {
    name: String,
    start: f32,
    end: f32,
    lufs: f64,
    centroid_hz: f32,
    onsets_per_sec: f32,
    correlation: f32,
    bands: [f32; 3],
    top3: f32,
    tonal: f32,
}

fn section_figures(p: &Piece) -> Vec<SectionFigures> {
    p.sections
        .iter()
        .map(|(name, start, end)| {
            let x = p.stretch(*start, *end);
            let m = mono(x);
            SectionFigures {
                name: name.clone(),
                start: *start,
                end: *end,
                lufs: integrated_lufs(x, SR),
                centroid_hz: spectral_centroid_hz(&m, SR as f32),
                onsets_per_sec: onset_rate_per_sec(&m, SR as f32),
                correlation: p.frames.correlation_between(*start, *end),
                bands: p.frames.band_shares_between(*start, *end),
                top3: mean(&p.frames.top3_per_bar(p.bar_secs, *start, *end)),
                tonal: p.frames.tonal_share_between(*start, *end),
            }
        })
        .collect()
}

fn report(p: &Piece) {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
    ];
    let bands = p.frames.band_shares_between(0.0, p.secs());
    let key_chroma = p.frames.key_chroma();
    let ranked = ranked_classes(&key_chroma);
    let keys = key_ranking(&key_chroma);
    println!(
        "{}: {:.0} s, integrated {:.1} LUFS, LRA {:.1} LU, energy below 125 Hz {:.1} %, \
         125 Hz-1 kHz {:.1} %, above {:.1} %; strongest pitch classes {} {} {}, heard in {} (r {:.2}), then {}",
        p.name,
        p.secs(),
        integrated_lufs(&p.audio, SR),
        loudness_range_lu(&p.audio, SR),
        bands[0] * 100.0,
        bands[1] * 100.0,
        bands[2] * 100.0,
        NAMES[ranked[0] as usize],
        NAMES[ranked[1] as usize],
        NAMES[ranked[2] as usize],
        keys[0].name(),
        keys[0].r,
        keys[1].name(),
    );
    for s in section_figures(p) {
        println!(
            "  {:<13} {:>5.1}-{:>5.1} s {:>6.1} LUFS, centroid {:>5.0} Hz, {:>4.2} onsets/s, L/R correlation \
             {:>4.2}, bands {:>4.1}/{:>4.1}/{:>4.1} %, top-3 per bar {:>4.1} %, tonal {:>4.1} %",
            s.name,
            s.start,
            s.end,
            s.lufs,
            s.centroid_hz,
            s.onsets_per_sec,
            s.correlation,
            s.bands[0] * 100.0,
            s.bands[1] * 100.0,
            s.bands[2] * 100.0,
            s.top3 * 100.0,
            s.tonal * 100.0
        );
    }
}

fn figures<'a>(all: &'a [SectionFigures], name: &str) -> &'a SectionFigures {
    all.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("section {name} was not played"))
}

const STORY_PIECES: [&str; 2] = ["kaleidoscope-nights", "sleep-gathering"];

#[test]
fn the_story_pieces_have_a_balanced_spectrum() {
    // at most 65 % of the energy in 125 Hz-1 kHz and at least 8 % below 125 Hz: a bass that
    // carries the low end and bright voices above the boxy middle
    for p in pieces() {
        report(p);
    }
    for name in STORY_PIECES {
        let p = piece(name);
        let [low, mid, _] = p.frames.band_shares_between(0.0, p.secs());
        assert!(mid <= 0.65, "{name}: {:.1} % in 125 Hz-1 kHz", mid * 100.0);
        assert!(low >= 0.08, "{name}: {:.1} % below 125 Hz", low * 100.0);
    }
}

/// Stereo frames of a section probe where only participants of the given archetypes play
/// (two of each), the communal mood held at a section's typical values.
fn stem(name: &str, section: &str, archetypes: &[&str], mood: [f32; 4]) -> Frames {
    use crate::common::{archetype, dim, Script};
    let patch = section_probe(name, section);
    let mut s = Script::default();
    for (d, v) in ["energy", "tension", "brightness", "unity"]
        .iter()
        .zip(mood)
    {
        s = s.communal(0.0, dim(&patch, d), v);
    }
    for (i, a) in archetypes.iter().flat_map(|a| [a, a]).enumerate() {
        s = s.join(
            4.0 + 0.1 * i as f64,
            i as u32 + 1,
            Some(archetype(&patch, a)),
        );
    }
    let out = crate::common::render_blocks(&patch, &s.performance(30.0), 1024, None);
    Frames::of_stereo(&out, SR as f32)
}

#[test]
fn bass_and_pedal_never_share_the_low_end() {
    // no mud: the bass and the drone's pedal sit in different octaves, measured on each
    // alone in the section where both play loudest (their third-octave distributions below
    // 450 Hz barely overlap; the same note in both would give 1)
    for (name, section, bass, drone, mood) in [
        (
            "sleep-gathering",
            "storm",
            "roots",
            "ancients",
            [0.75, 0.85, 0.35, 0.3],
        ),
        (
            "sleep-gathering",
            "gathering",
            "roots",
            "ancients",
            [0.2, 0.1, 0.3, 0.8],
        ),
        (
            "kaleidoscope-nights",
            "weave",
            "foundation",
            "warp",
            [0.65, 0.1, 0.5, 0.9],
        ),
    ] {
        let (b, d) = (
            stem(name, section, &[bass], mood),
            stem(name, section, &[drone], mood),
        );
        let overlap = low_end_overlap(&b, &d, 8.0, 30.0);
        println!("{name} {section}: low-end overlap of {bass} and {drone} {overlap:.3}");
        assert!(
            overlap < 0.2,
            "{name} {section}: {bass} and {drone} overlap {overlap:.3}"
        );
    }
}

#[test]
fn textures_follow_the_story() {
    // the share of the spectrum in clear tones rises when the wind leaves: the storm's gale
    // leaves with the storm (no wash through the crescendo and the dawn), the static lives
    // only between the split screens
    let p = piece("sleep-gathering");
    let s = section_figures(p);
    let (storm, crescendo, dawn) = (
        figures(&s, "storm").tonal,
        figures(&s, "crescendo").tonal,
        figures(&s, "dawn").tonal,
    );
    println!(
        "sleep-gathering tonal share: storm {storm:.2}, crescendo {crescendo:.2}, dawn {dawn:.2}"
    );
    assert!(
        crescendo > storm + 0.25 && dawn > storm + 0.25,
        "{storm} {crescendo} {dawn}"
    );
    assert!(dawn > 0.75, "dawn {dawn}");
    let p = piece("kaleidoscope-nights");
    let s = section_figures(p);
    let (weave, split, mosaic) = (
        figures(&s, "weave").tonal,
        figures(&s, "split-screen").tonal,
        figures(&s, "mosaic").tonal,
    );
    println!("kaleidoscope-nights tonal share: weave {weave:.2}, split-screen {split:.2}, mosaic {mosaic:.2}");
    assert!(
        weave > split + 0.1 && mosaic > split + 0.1,
        "{weave} {split} {mosaic}"
    );
}

/// A shipped patch as a fixed-section probe: no transitions, starting in `section`, the
/// leveler off.
fn section_probe(name: &str, section: &str) -> Patch {
    let path = patches_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut table: toml::Table = without_leveler(&text).parse().unwrap();
    let score = table.get_mut("score").unwrap().as_table_mut().unwrap();
    score.remove("transitions");
    score.insert("start".into(), toml::Value::String(section.into()));
    Patch::parse(&path, &toml::to_string(&table).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

/// Mean top-3 pitch-class share per bar of two participants per archetype (a crowd like the
/// story pieces'), every core mood held (energy 0.6, brightness 0.5, tension at the patch's
/// default) and unity at `unity`. The participants join once the communal mood has settled,
/// so their own moods (which show at low unity) are the room's.
fn unity_probe(patch: &Patch, unity: f32) -> f32 {
    use crate::common::{dim, Script};
    let secs = 36.0;
    let mut s = Script::default()
        .communal(0.0, dim(patch, "energy"), 0.6)
        .communal(0.0, dim(patch, "brightness"), 0.5)
        .communal(0.0, dim(patch, "unity"), unity);
    let archetypes = patch.archetypes.len();
    for i in 0..2 * archetypes {
        s = s.join(
            6.0 + 0.1 * i as f64,
            i as u32 + 1,
            Some((i % archetypes) as u16),
        );
    }
    let out = crate::common::render_blocks(patch, &s.performance(secs), 1024, None);
    let cfg = patch.config(SR, None);
    let bar_secs = 60.0 / cfg.tempo_bpm * cfg.beats_per_bar as f32;
    let start = (11.0 / bar_secs).ceil() * bar_secs;
    mean(&Frames::of_stereo(&out, SR as f32).top3_per_bar(bar_secs, start, secs as f32))
}

#[test]
fn at_high_unity_the_chord_is_heard_and_unity_pulls_the_voices_together() {
    // every section of every piece at unity 0.9 and 0.1: at 0.9 at least 65 % of each bar's
    // chroma in its three strongest pitch classes; per piece, 0.9 raises the share at least
    // 1.3x over 0.1
    let mut jobs = Vec::new();
    for name in PIECES {
        for section in crate::common::patch(&format!("{name}.toml"))
            .names()
            .sections
        {
            jobs.push((name, section));
        }
    }
    let results: Vec<(f32, f32)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, section)| {
                            let patch = section_probe(name, section);
                            (unity_probe(&patch, 0.1), unity_probe(&patch, 0.9))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut failures = Vec::new();
    for name in PIECES {
        let (mut lows, mut highs) = (Vec::new(), Vec::new());
        for ((n, section), (low, high)) in jobs.iter().zip(&results) {
            if *n != name {
                continue;
            }
            println!(
                "{name} {section}: top-3 share per bar {:.1} % at unity 0.1, {:.1} % at 0.9 ({:.2}x)",
                low * 100.0,
                high * 100.0,
                high / low
            );
            if *high < 0.65 {
                failures.push(format!(
                    "{name} {section}: {:.1} % at unity 0.9",
                    high * 100.0
                ));
            }
            lows.push(*low);
            highs.push(*high);
        }
        let ratio = mean(&highs) / mean(&lows);
        println!("{name}: unity 0.9 vs 0.1 raises the share {ratio:.2}x");
        if ratio < 1.3 {
            failures.push(format!("{name}: only {ratio:.2}x"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn every_shipped_piece_is_heard_in_its_key() {
    // the tonic among the two strongest pitch classes, and the Krumhansl-Kessler key finder's
    // best match the patch's key or its relative (modes with a major third count as major)
    for p in pieces() {
        let chroma = p.frames.key_chroma();
        let ranked = ranked_classes(&chroma);
        let best = key_ranking(&chroma)[0];
        println!(
            "{}: tonic pitch class {} ranks {}, heard in {} (r {:.2})",
            p.name,
            p.tonic,
            ranked.iter().position(|c| *c == p.tonic).unwrap() + 1,
            best.name(),
            best.r
        );
        assert!(ranked[..2].contains(&p.tonic), "{}: {ranked:?}", p.name);
        assert!(
            best.is_or_relative_of(p.tonic, p.minor),
            "{}: {}",
            p.name,
            best.name()
        );
    }
}

#[test]
fn section_changes_never_leave_a_hole() {
    // around every section change, the short-term loudness never dips more than 3 LU below
    // the lower of its values before and after the change
    for p in pieces() {
        let st = short_term_lufs(&p.audio, SR, 0.5);
        let at = |t: f32| st[((t / 0.5) as usize).clamp(1, st.len()) - 1];
        for (name, start, _) in p.sections.iter().skip(1) {
            let (before, after) = (at(*start), at(start + 8.0));
            let dip = (0..=16)
                .map(|k| at(start + 0.5 * k as f32))
                .fold(f64::INFINITY, f64::min);
            println!(
                "{} -> {name} at {start:.1} s: {before:.1} LUFS before, {after:.1} after, lowest {dip:.1}",
                p.name
            );
            assert!(
                dip >= before.min(after) - 3.0,
                "{} {name}: a hole of {dip:.1} LUFS",
                p.name
            );
        }
    }
}

#[test]
fn kaleidoscope_sections_differ_in_register_density_texture_and_width() {
    // neighbouring sections differ clearly in at least two of loudness, brightness/register
    // (spectral centroid), density (onsets) and width (L/R correlation above 200 Hz); the
    // split screens are the widest, and across the night the centroid and the onset rate
    // at least double
    let p = piece("kaleidoscope-nights");
    let s = section_figures(p);
    for pair in s.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let differences = [
            (a.lufs - b.lufs).abs() >= 3.0,
            a.centroid_hz.max(b.centroid_hz) / a.centroid_hz.min(b.centroid_hz) >= 1.25,
            a.onsets_per_sec.max(b.onsets_per_sec) / a.onsets_per_sec.min(b.onsets_per_sec) >= 1.3,
            (a.correlation - b.correlation).abs() >= 0.08,
        ];
        let count = differences.iter().filter(|d| **d).count();
        println!(
            "{} -> {}: {count} of 4 clearly different {differences:?}",
            a.name, b.name
        );
        assert!(count >= 2, "{} -> {}: {differences:?}", a.name, b.name);
    }
    let split = figures(&s, "split-screen").correlation;
    for other in ["weave", "mosaic"] {
        let c = figures(&s, other).correlation;
        assert!(
            split <= c - 0.1,
            "split-screen {split:.2} vs {other} {c:.2}"
        );
    }
    let range = |f: fn(&SectionFigures) -> f32| {
        let v: Vec<f32> = s.iter().map(f).collect();
        v.iter().cloned().fold(f32::MIN, f32::max) / v.iter().cloned().fold(f32::MAX, f32::min)
    };
    let (centroid, onsets) = (range(|f| f.centroid_hz), range(|f| f.onsets_per_sec));
    println!("kaleidoscope-nights: centroid range {centroid:.2}x, onset rate range {onsets:.2}x");
    assert!(
        centroid >= 2.0 && onsets >= 2.0,
        "{centroid:.2} {onsets:.2}"
    );
}

#[test]
fn the_storm_falters_and_the_crescendo_swells() {
    // the storm's harmony wavers (its bars' top-3 share well below the gathering's and the
    // crescendo's); the crescendo's last third is at least 3 LU louder than its first
    let p = piece("sleep-gathering");
    let s = section_figures(p);
    let (gathering, storm, crescendo) = (
        figures(&s, "gathering"),
        figures(&s, "storm"),
        figures(&s, "crescendo"),
    );
    println!(
        "top-3 share per bar: gathering {:.2}, storm {:.2}, crescendo {:.2}",
        gathering.top3, storm.top3, crescendo.top3
    );
    assert!(storm.top3 <= gathering.top3.min(crescendo.top3) - 0.15);
    let third = (crescendo.end - crescendo.start) / 3.0;
    let (first, last) = (
        integrated_lufs(p.stretch(crescendo.start, crescendo.start + third), SR),
        integrated_lufs(p.stretch(crescendo.end - third, crescendo.end), SR),
    );
    println!("crescendo: first third {first:.1} LUFS, last third {last:.1} LUFS");
    assert!(last >= first + 3.0, "{first:.1} -> {last:.1}");
}

#[test]
fn dynamics_follow_the_story() {
    // the loudest section is the story's climax (the crescendo; in Kaleidoscope Nights the
    // final mosaic, as its patch says), the quietest the hushed opening, the storm at least
    // 6 LU above the gathering, and a loudness range of at least 12 LU
    for (name, loudest, quietest) in [
        ("kaleidoscope-nights", "mosaic", "dusk"),
        ("sleep-gathering", "crescendo", "gathering"),
    ] {
        let p = piece(name);
        let s = section_figures(p);
        let max = s.iter().max_by(|a, b| a.lufs.total_cmp(&b.lufs)).unwrap();
        let min = s.iter().min_by(|a, b| a.lufs.total_cmp(&b.lufs)).unwrap();
        let lra = loudness_range_lu(&p.audio, SR);
        println!(
            "{name}: loudest {} ({:.1} LUFS), quietest {} ({:.1} LUFS), LRA {lra:.1} LU",
            max.name, max.lufs, min.name, min.lufs
        );
        assert_eq!(max.name, loudest, "{name}");
        assert_eq!(min.name, quietest, "{name}");
        assert!(lra >= 12.0, "{name}: LRA {lra:.1} LU");
    }
    let s = section_figures(piece("sleep-gathering"));
    let (gathering, storm) = (figures(&s, "gathering").lufs, figures(&s, "storm").lufs);
    assert!(
        storm >= gathering + 6.0,
        "storm {storm:.1}, gathering {gathering:.1}"
    );
}

/// One archetype per timbre, every one free (played notes keep their pitch), no reverb.
const TIMBRES_PATCH: &str = r#"
version = 1
[piece]
name = "timbres"
seed = 5
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
default = 0.6
[mood.tension]
default = 0.0
[mood.brightness]
default = 0.5
[mood.unity]
default = 1.0
[[archetypes]]
id = "pad"
timbre = "pad"
register = [48, 72]
free = true
[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [55, 84]
free = true
[[archetypes]]
id = "bell"
timbre = "bell"
register = [64, 96]
free = true
[[archetypes]]
id = "drone"
timbre = "drone"
register = [36, 60]
free = true
[[archetypes]]
id = "choir"
timbre = "choir"
register = [52, 76]
free = true
[[archetypes]]
id = "bass"
timbre = "bass"
register = [28, 52]
free = true
[[archetypes]]
id = "wind"
timbre = "wind"
register = [55, 84]
free = true
[[archetypes]]
id = "lead"
timbre = "lead"
register = [55, 84]
free = true
"#;

/// A played note of a timbre, from its start (joined and played on the same sample: the
/// generated part waits for the played note to end, so only the played note sounds).
fn played_note(patch: &Patch, archetype: u16, pitch: u8) -> Vec<f32> {
    use crate::common::Script;
    use tapestry::Command;
    let s = Script::default().join(0.3, 1, Some(archetype)).at(
        0.3,
        Command::NoteOn {
            participant: 1,
            pitch,
            velocity: 100,
        },
    );
    let out = crate::common::render_blocks(patch, &s.performance(4.3), 512, None);
    mono(&out)[(0.3 * SR as f32) as usize..].to_vec()
}

#[test]
fn every_timbre_sounds_at_its_played_pitch() {
    // the fundamental is the strongest of the note's harmonics and holds a good share of
    // its power: the note is heard at its pitch, not an octave or a fifth above
    let patch = crate::common::patch_text(TIMBRES_PATCH);
    let notes: [(&str, [u8; 3]); 8] = [
        ("pad", [48, 57, 67]),
        ("pluck", [60, 69, 79]),
        ("bell", [72, 81, 88]),
        ("drone", [38, 45, 50]),
        ("choir", [55, 62, 72]),
        ("bass", [28, 36, 45]),
        ("wind", [60, 69, 79]),
        ("lead", [62, 69, 77]),
    ];
    let mut wrong = Vec::new();
    for (name, pitches) in notes {
        let a = crate::common::archetype(&patch, name);
        for pitch in pitches {
            let x = played_note(&patch, a, pitch);
            let f0 = 440.0 * 2f32.powf((pitch as f32 - 69.0) / 12.0);
            let (levels, share) = harmonic_levels_db(&x, SR as f32, f0, 8);
            let strongest = (0..levels.len())
                .max_by(|a, b| levels[*a].total_cmp(&levels[*b]))
                .unwrap();
            println!(
                "{name} note {pitch}: fundamental {:.1} dB, 2nd {:.1}, 3rd {:.1} (3rd - 1st {:+.1} dB), \
                 fundamental share {:.0} %",
                levels[0],
                levels[1],
                levels[2],
                levels[2] - levels[0],
                share * 100.0
            );
            if strongest != 0 || share < 0.2 {
                wrong.push(format!(
                    "{name} {pitch}: harmonic {} strongest, fundamental share {:.0} %",
                    strongest + 1,
                    share * 100.0
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "notes not heard at their pitch: {wrong:?}"
    );
}

#[test]
fn one_voice_of_each_timbre_is_about_as_loud_as_another() {
    // each timbre alone playing its generated part at the default mood: the design's gains
    // balance their loudness, so a patch's level_db only trims
    use crate::common::Script;
    let text = TIMBRES_PATCH.replace("free = true\n", "");
    let patch = crate::common::patch_text(&text);
    let mut figures = Vec::new();
    for (a, name) in patch.archetypes.iter().enumerate() {
        let s = Script::default().join(0.0, 1, Some(a as u16));
        let out = crate::common::render_blocks(&patch, &s.performance(24.0), 512, None);
        let lufs = integrated_lufs(segment(&out, SR, 4.0, 24.0), SR);
        println!("{name}: {lufs:.1} LUFS");
        figures.push((name.clone(), lufs));
    }
    let loudest = figures.iter().map(|f| f.1).fold(f64::MIN, f64::max);
    let quietest = figures.iter().map(|f| f.1).fold(f64::MAX, f64::min);
    assert!(loudest - quietest < 2.0, "{figures:?}");
}
