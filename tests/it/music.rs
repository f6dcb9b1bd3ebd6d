//! The music itself, measured on whole renders of every shipped piece: balance of the
//! spectrum, a clear harmony that unity pulls together, each piece heard in its key,
//! sections that differ the way the story does, and the dynamics the story asks for. Plus
//! every timbre sounding at its pitch.
//!
//! The pieces are rendered once each (shared through a `OnceLock`) with the master chain on
//! **except the loudness leveler** (`[master] leveler = false` in a copy of the patch text):
//! the causal leveler flattens section differences by design, and the final chain replaces
//! it with one whole-piece gain, under which section differences and the loudness range do
//! not change. Measures are independent of the engine (`tests/common/music.rs`, tested on
//! synthetic signals in `music_selftest.rs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::measure::{
    lr_correlation, mono, onset_rate_per_sec, segment, spectral_centroid_hz,
};
use crate::common::music::*;
use crate::common::SR;
use tapestry::control::{Message, Notice, Timing};
use tapestry::{Engine, Patch, Performance};

/// One shipped piece, rendered and analysed.
struct Piece {
    name: String,
    patch: Patch,
    /// Interleaved stereo, leveler off.
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

    fn section(&self, name: &str) -> Option<(f32, f32)> {
        self.sections
            .iter()
            .find(|s| s.0 == name)
            .map(|s| (s.1, s.2))
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

/// Renders a performance through the engine, collecting where each section began.
fn render_with_sections(patch: &Patch, perf: &Performance) -> (Vec<f32>, Vec<(u16, u64)>) {
    let (mut engine, controller) = Engine::new(patch.config(SR, perf.seed), patch.names());
    let total = perf.duration_frames as usize;
    let mut out = vec![0.0f32; total * 2];
    let mut changes = vec![(patch.config(SR, None).start_section, 0u64)];
    let (mut next, mut done) = (0, 0u64);
    for chunk in out.chunks_mut(1024) {
        let end = done + (chunk.len() / 2) as u64;
        while next < perf.commands.len() && perf.commands[next].sample < end {
            let c = perf.commands[next];
            let message = Message {
                at: Timing::At(c.sample),
                command: c.command,
            };
            if controller.send(message).is_err() {
                engine.process(&mut []);
                continue;
            }
            next += 1;
        }
        engine.process(chunk);
        while let Some(notice) = controller.try_notice() {
            if let Notice::SectionChanged {
                section, at_sample, ..
            } = notice
            {
                changes.push((section, at_sample));
            }
        }
        done = end;
    }
    (out, changes)
}

fn render_piece(name: &str) -> Piece {
    let path = patches_dir().join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let patch = Patch::parse(&path, &without_leveler(&text)).unwrap_or_else(|e| panic!("{e}"));
    let perf_path = patches_dir().join(format!("{name}.performance.toml"));
    let perf = Performance::load(&perf_path, &patch, SR).unwrap_or_else(|e| panic!("{e}"));
    let (audio, changes) = render_with_sections(&patch, &perf);
    let secs = audio.len() as f32 / 2.0 / SR as f32;
    let names = patch.names().sections;
    let sections = changes
        .iter()
        .enumerate()
        .map(|(i, (s, at))| {
            let end = changes
                .get(i + 1)
                .map_or(secs, |(_, e)| *e as f32 / SR as f32);
            (names[*s as usize].clone(), *at as f32 / SR as f32, end)
        })
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
        patch,
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
                correlation: lr_correlation(x),
                bands: p.frames.band_shares_between(*start, *end),
                top3: mean(&p.frames.top3_per_bar(p.bar_secs, *start, *end)),
            }
        })
        .collect()
}

fn report(p: &Piece) {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
    ];
    let audio = &p.audio;
    let bands = p.frames.band_shares_between(0.0, p.secs());
    let key_chroma = p.frames.key_chroma();
    let ranked = ranked_classes(&key_chroma);
    let keys = key_ranking(&key_chroma);
    let bars = p.frames.top3_per_bar(p.bar_secs, 0.0, p.secs());
    println!(
        "{}: {:.0} s, integrated {:.1} LUFS (leveler off), LRA {:.1} LU, bands <125 {:.1} % / mid {:.1} % / >1k {:.1} %, \
         top-3 per bar {:.1} %, strongest classes {} {} {}, key {} (r {:.2}), then {} {}",
        p.name,
        p.secs(),
        integrated_lufs(audio, SR),
        loudness_range_lu(audio, SR),
        bands[0] * 100.0,
        bands[1] * 100.0,
        bands[2] * 100.0,
        mean(&bars) * 100.0,
        NAMES[ranked[0] as usize],
        NAMES[ranked[1] as usize],
        NAMES[ranked[2] as usize],
        keys[0].name(),
        keys[0].r,
        keys[1].name(),
        keys[2].name(),
    );
    for s in section_figures(p) {
        println!(
            "  {:<13} {:>5.1}-{:>5.1} s  {:>6.1} LUFS  centroid {:>5.0} Hz  onsets {:>4.2}/s  L/R corr {:>5.2}  \
             bands {:>4.1}/{:>4.1}/{:>4.1} %  top-3 {:>4.1} %",
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
            s.top3 * 100.0
        );
    }
    let st = short_term_lufs(audio, SR, 1.0);
    let line: Vec<String> = st.iter().step_by(3).map(|l| format!("{l:.0}")).collect();
    println!("  short-term every 3 s: {}", line.join(" "));
}

#[test]
fn report_the_shipped_pieces() {
    for p in pieces() {
        report(p);
    }
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

/// Mean top-3 pitch-class share per bar of two participants per archetype, every core mood
/// held (energy 0.6, brightness 0.5, tension at the patch's default) and unity at `unity`.
/// The participants join once the communal mood has settled, so their own moods (which
/// show at low unity) are the room's.
fn unity_probe(patch: &Patch, unity: f32) -> f32 {
    use crate::common::{dim, Script};
    let secs = 40.0;
    let mut s = Script::default()
        .communal(0.0, dim(patch, "energy"), 0.6)
        .communal(0.0, dim(patch, "brightness"), 0.5)
        .communal(0.0, dim(patch, "unity"), unity);
    let archetypes = patch.archetypes.len();
    for i in 0..2 * archetypes {
        s = s.join(
            8.0 + 0.1 * i as f64,
            i as u32 + 1,
            Some((i % archetypes) as u16),
        );
    }
    let out = crate::common::render_blocks(patch, &s.performance(secs), 1024, None);
    let cfg = patch.config(SR, None);
    let bar_secs = 60.0 / cfg.tempo_bpm * cfg.beats_per_bar as f32;
    let start = (14.0 / bar_secs).ceil() * bar_secs;
    mean(&Frames::of_stereo(&out, SR as f32).top3_per_bar(bar_secs, start, secs as f32))
}

#[test]
fn report_unity_sweep() {
    for name in PIECES {
        let sections = crate::common::patch(&format!("{name}.toml"))
            .names()
            .sections;
        for section in sections {
            let patch = section_probe(name, &section);
            let (low, high) = (unity_probe(&patch, 0.1), unity_probe(&patch, 0.9));
            println!(
                "{name} {section}: top-3 per bar at unity 0.1 {:.1} %, at 0.9 {:.1} % ({:.2}x)",
                low * 100.0,
                high * 100.0,
                high / low
            );
        }
    }
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

#[test]
#[ignore]
fn diag_voice_chroma() {
    use crate::common::{dim, Script};
    for (name, section) in [
        ("sleep-gathering", "storm"),
        ("kaleidoscope-nights", "weave"),
    ] {
        let patch = section_probe(name, section);
        for unity in [0.1f32, 0.9] {
            let secs = 34.0;
            for solo in 0..patch.archetypes.len() {
                let mut s = Script::default()
                    .communal(0.0, dim(&patch, "energy"), 0.6)
                    .communal(0.0, dim(&patch, "brightness"), 0.5)
                    .communal(0.0, dim(&patch, "unity"), unity);
                s = s.join(8.0, 1, Some(solo as u16));
                let out = crate::common::render_blocks(&patch, &s.performance(secs), 1024, None);
                let cfg = patch.config(SR, None);
                let bar_secs = 60.0 / cfg.tempo_bpm * cfg.beats_per_bar as f32;
                let f = Frames::of_stereo(&out, SR as f32);
                let energy: f64 = f
                    .chroma
                    .iter()
                    .flat_map(|c| c.iter())
                    .map(|v| *v as f64)
                    .sum();
                let top = mean(&f.top3_per_bar(bar_secs, 14.0, secs as f32));
                println!(
                    "{name} {section} unity {unity}: {} energy {:.2e} top3 {:.1} %",
                    patch.archetypes[solo],
                    energy,
                    top * 100.0
                );
            }
        }
    }
}

#[test]
#[ignore]
fn diag_bars() {
    use crate::common::{dim, Script};
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
    ];
    let name = std::env::var("DIAG_PIECE").unwrap_or("sleep-gathering".into());
    let section = std::env::var("DIAG_SECTION").unwrap_or("crescendo".into());
    let unity: f32 = std::env::var("DIAG_UNITY")
        .map(|u| u.parse().unwrap())
        .unwrap_or(0.9);
    let mut patch_text =
        std::fs::read_to_string(patches_dir().join(format!("{name}.toml"))).unwrap();
    if let Ok(extra) = std::env::var("DIAG_REPLACE") {
        let (a, b) = extra.split_once("=>").unwrap();
        patch_text = patch_text.replace(a, &b.replace("\\n", "\n"));
    }
    let mut table: toml::Table = without_leveler(&patch_text).parse().unwrap();
    let score = table.get_mut("score").unwrap().as_table_mut().unwrap();
    score.remove("transitions");
    score.insert("start".into(), toml::Value::String(section.clone()));
    let patch = Patch::parse(Path::new("x.toml"), &toml::to_string(&table).unwrap()).unwrap();
    let only: Option<usize> = std::env::var("DIAG_ONLY").ok().map(|v| v.parse().unwrap());
    let secs = 40.0;
    let mut s = Script::default()
        .communal(0.0, dim(&patch, "energy"), 0.6)
        .communal(0.0, dim(&patch, "brightness"), 0.5)
        .communal(0.0, dim(&patch, "unity"), unity);
    for a in 0..patch.archetypes.len() {
        if only.is_none_or(|o| o == a) {
            s = s.join(8.0 + 0.1 * a as f64, a as u32 + 1, Some(a as u16));
        }
    }
    let out = crate::common::render_blocks(&patch, &s.performance(secs), 1024, None);
    let cfg = patch.config(SR, None);
    let bar_secs = 60.0 / cfg.tempo_bpm * cfg.beats_per_bar as f32;
    let f = Frames::of_stereo(&out, SR as f32);
    let mut t = (14.0 / bar_secs).ceil() * bar_secs;
    while t + bar_secs <= secs as f32 {
        let c = f.chroma_between(t, t + bar_secs);
        let r = ranked_classes(&c);
        println!(
            "bar at {t:5.1}: top3 {:.0} %  {}",
            top3_share(&c) * 100.0,
            r[..6]
                .iter()
                .map(|k| format!("{} {:.0}", NAMES[*k as usize], c[*k as usize] * 100.0))
                .collect::<Vec<_>>()
                .join("  ")
        );
        t += bar_secs;
    }
}

#[test]
#[ignore]
fn diag_bass_notes() {
    use crate::common::{dim, Script};
    let patch = section_probe("sleep-gathering", "crescendo");
    let s = Script::default()
        .communal(0.0, dim(&patch, "energy"), 0.6)
        .communal(0.0, dim(&patch, "brightness"), 0.5)
        .communal(0.0, dim(&patch, "unity"), 0.9)
        .join(8.3, 4, Some(3));
    let out = crate::common::render_blocks(&patch, &s.performance(40.0), 1024, None);
    let x = mono(&out);
    let beat = 60.0 / 72.0;
    for b in 0..40 {
        let t = 16.67 + b as f32 * beat * 0.5;
        let w = &x[(t * SR as f32) as usize..((t + beat * 0.5) * SR as f32) as usize];
        let hz = crate::common::measure::dominant_pitch_hz(w, SR as f32);
        let midi = 69.0 + 12.0 * (hz / 440.0).log2();
        println!(
            "t {t:5.2} bar {:.2}: {hz:6.1} Hz midi {midi:5.1} rms {:.4}",
            t / (4.0 * beat),
            crate::common::measure::rms(w)
        );
    }
}
