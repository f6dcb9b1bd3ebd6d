//! The patch file as written: serde structs with `deny_unknown_fields`; values that are
//! validated later keep their source span. The limits on sizes and lists live here, beside
//! the types they bound; `resolve` enforces them with located errors.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Largest patch file read, in bytes (the shipped patches are under 20 KB).
pub const MAX_PATCH_BYTES: usize = 1 << 20;
/// Longest id or name (archetype ids, section and dimension names, the piece's name), in
/// characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `[piece] name`, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest magnitude of a mood dimension's `range` ends.
pub const MAX_MOOD_MAGNITUDE: f32 = 1.0e6;
/// Most `[[score.sections]]`.
pub const MAX_SECTIONS: usize = 64;
/// Most `[[score.transitions]]` (all are checked at every bar line).
pub const MAX_TRANSITIONS: usize = 64;
/// Most bars a transition's `min_bars` may ask for.
pub const MAX_MIN_BARS: i64 = 10_000;
/// Most `[[archetypes]]`.
pub const MAX_ARCHETYPES: usize = 64;
/// Most `[[mappings]]` (each is evaluated for every voice at control rate).
pub const MAX_MAPPINGS: usize = 64;
/// Most entries in `[midi] ports`.
pub const MAX_MIDI_PORTS: usize = 32;
/// Most `[[midi.participants]]`, `[[midi.controls]]` and `[[midi.cues]]` entries (each).
pub const MAX_MIDI_ROUTES: usize = 256;
/// Most `[[analysis.mappings]]`.
pub const MAX_ROOM_MAPPINGS: usize = 32;

/// Exactly two values, `[low, high]`: a longer or shorter list is an error, never
/// truncated, and a long list is refused without being collected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair<T>(pub [T; 2]);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Pair<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for PairVisitor<T> {
            type Value = Pair<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("exactly two values [low, high]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pair<T>, A::Error> {
                let low = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let high = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let mut len = 2;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    len += 1;
                }
                if len > 2 {
                    return Err(de::Error::invalid_length(len, &self));
                }
                Ok(Pair([low, high]))
            }
        }
        deserializer.deserialize_seq(PairVisitor(PhantomData))
    }
}

/// A whole patch file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchFile {
    /// Format version; must be 1.
    pub version: Spanned<i64>,
    /// The piece.
    pub piece: PieceFile,
    /// Master bus.
    pub master: Option<MasterFile>,
    /// The communal score.
    pub score: ScoreFile,
    /// Mood dimensions by name.
    #[serde(default)]
    pub mood: BTreeMap<String, MoodDimFile>,
    /// Designed instruments by name.
    #[serde(default)]
    pub instruments: BTreeMap<String, InstrumentFile>,
    /// Voice archetypes.
    #[serde(default)]
    pub archetypes: Vec<ArchetypeFile>,
    /// Mood → parameter mappings.
    #[serde(default)]
    pub mappings: Vec<MappingFile>,
    /// MIDI input.
    pub midi: Option<MidiFile>,
    /// The room's audio analysis and what it drives.
    pub analysis: Option<AnalysisFile>,
}

/// `[piece]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PieceFile {
    /// Name.
    pub name: Spanned<String>,
    /// Master seed.
    pub seed: Option<Spanned<i64>>,
    /// Most participants at once (default 64).
    pub capacity: Option<Spanned<i64>>,
    /// Integrated loudness target (default -16 LUFS).
    pub loudness_target_lufs: Option<Spanned<f64>>,
    /// How far a participant's own mood shows in its voice at low unity, 0..1.
    pub individuality: Option<Spanned<f64>>,
}

/// `[master]`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterFile {
    /// Base reverb send, 0..1.
    pub reverb_mix: Option<Spanned<f64>>,
    /// Reverb room size.
    pub room_size: Option<Spanned<f64>>,
    /// Reverb decay time.
    pub reverb_time_secs: Option<Spanned<f64>>,
    /// Reverb damping, 0..1.
    pub damping: Option<Spanned<f64>>,
    /// True-peak ceiling of the limiter (default -1 dBTP).
    pub ceiling_dbtp: Option<Spanned<f64>>,
    /// The sample-peak ceiling of old patches: refused with a message naming `ceiling_dbtp`.
    pub ceiling_dbfs: Option<Spanned<f64>>,
    /// Loudness normalization on or off (default on).
    pub leveler: Option<bool>,
    /// "hall" (default, light) or "fundsp" (fundsp's 32-line FDN, denser and heavier).
    pub reverb: Option<Spanned<String>>,
}

/// `[score]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreFile {
    /// Tonic, e.g. "D" or "Bb".
    pub key: Spanned<String>,
    /// Mode, e.g. "dorian" (default major).
    pub mode: Option<Spanned<String>>,
    /// Tempo.
    pub tempo_bpm: Spanned<f64>,
    /// Meter, e.g. "4/4".
    pub meter: Option<Spanned<String>>,
    /// First section (default the first listed).
    pub start: Option<Spanned<String>>,
    /// Sections.
    #[serde(default)]
    pub sections: Vec<SectionFile>,
    /// Mood-driven transitions.
    #[serde(default)]
    pub transitions: Vec<TransitionFile>,
}

/// `[[score.sections]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionFile {
    /// Name.
    pub name: Spanned<String>,
    /// Chord progression: roman numerals or chord symbols.
    pub chords: Vec<Spanned<String>>,
    /// Bars per chord (default 1).
    pub bars_per_chord: Option<Spanned<i64>>,
    /// Density multiplier, 0..2.
    pub density: Option<Spanned<f64>>,
    /// Brightness offset in octaves.
    pub brightness_oct: Option<Spanned<f64>>,
    /// Register shift in semitones.
    pub register_shift: Option<Spanned<f64>>,
    /// Reverb send offset.
    pub reverb: Option<Spanned<f64>>,
    /// Level offset in dB.
    pub level_db: Option<Spanned<f64>>,
}

/// `[[score.transitions]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionFile {
    /// Section left ("*" or absent: any).
    pub from: Option<Spanned<String>>,
    /// Section entered.
    pub to: Spanned<String>,
    /// Conditions on the communal mood.
    pub when: Spanned<String>,
    /// Bars the current section must have lasted.
    pub min_bars: Option<Spanned<i64>>,
}

/// `[mood.<name>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoodDimFile {
    /// Value range (default [0, 1]).
    pub range: Option<Spanned<Pair<f64>>>,
    /// Starting value (default: middle of the range).
    pub default: Option<Spanned<f64>>,
    /// Smoothing time (default 1 s).
    pub smoothing_secs: Option<Spanned<f64>>,
}

/// `[[archetypes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchetypeFile {
    /// Stable id.
    pub id: Spanned<String>,
    /// Built-in timbre family (this or `instrument`).
    pub timbre: Option<Spanned<String>>,
    /// Designed instrument from `[instruments.<name>]` (this or `timbre`).
    pub instrument: Option<Spanned<String>>,
    /// Role (default from the timbre).
    pub role: Option<Spanned<String>>,
    /// [low, high] MIDI notes.
    pub register: Spanned<Pair<i64>>,
    /// Motif shape.
    pub motif: Option<MotifFile>,
    /// Motif step length in beats.
    pub grid_beats: Option<Spanned<f64>>,
    /// Level in dB.
    pub level_db: Option<Spanned<f64>>,
    /// Played notes stay unharmonized.
    pub free: Option<bool>,
    /// Attack.
    pub attack_secs: Option<Spanned<f64>>,
    /// Decay.
    pub decay_secs: Option<Spanned<f64>>,
    /// Sustain level.
    pub sustain: Option<Spanned<f64>>,
    /// Release.
    pub release_secs: Option<Spanned<f64>>,
    /// Brightness offset in octaves.
    pub brightness_oct: Option<Spanned<f64>>,
    /// Detune spread in cents.
    pub detune_cents: Option<Spanned<f64>>,
    /// Bars of rest after the last played note before the generated part resumes.
    pub resume_bars: Option<Spanned<f64>>,
    /// Longest hold of a played note without a note-off, in bars.
    pub hold_bars: Option<Spanned<f64>>,
}

/// `[instruments.<name>]`: a designed instrument, a graph of nodes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentFile {
    /// Voices preallocated (default 16).
    pub polyphony: Option<Spanned<i64>>,
    /// Output level in dB (default 0).
    pub level_db: Option<Spanned<f64>>,
    /// Id of the node that is the voice's output (default: the last node).
    pub output: Option<Spanned<String>>,
    /// `[[instruments.<name>.nodes]]`: each node's keys, validated by kind (see
    /// `patch::instruments`), so every key's value keeps its span.
    #[serde(default)]
    pub nodes: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
}

/// `motif = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotifFile {
    /// Steps, 1..16.
    pub steps: Option<Spanned<i64>>,
    /// Fraction of steps with an onset.
    pub density: Option<Spanned<f64>>,
    /// Span in chord tones.
    pub range: Option<Spanned<f64>>,
    /// Chance of a leap.
    pub leap_chance: Option<Spanned<f64>>,
    /// Chance of repeating a note.
    pub repeat_chance: Option<Spanned<f64>>,
}

/// `[[mappings]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// Mood dimension.
    pub from: Spanned<String>,
    /// Parameter.
    pub to: Spanned<String>,
    /// Output at the dimension's [min, max].
    pub range: Spanned<Pair<f64>>,
    /// `"linear"`, `"smooth"`, `"pow:<p>"`, `"threshold:<t>"`.
    pub curve: Option<Spanned<String>>,
}

/// `[midi]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidiFile {
    /// Port name substrings to listen on, "*" = all (default ["*"]).
    pub ports: Option<Spanned<Vec<Spanned<String>>>>,
    /// Name of the virtual input port (default "tapestry").
    pub virtual_port: Option<Spanned<String>>,
    /// The conductor's channel, 1..16.
    pub conductor_channel: Option<Spanned<i64>>,
    /// Channel → participant.
    #[serde(default)]
    pub participants: Vec<MidiParticipantFile>,
    /// Control change → mood.
    #[serde(default)]
    pub controls: Vec<MidiControlFile>,
    /// Conductor note or program change → section cue.
    #[serde(default)]
    pub cues: Vec<MidiCueFile>,
    /// Pitch-bend range in cents (default 200).
    pub pitch_bend_cents: Option<Spanned<f64>>,
    /// What the mod wheel drives when no control maps CC 1: "vibrato" or "brightness".
    pub mod_wheel: Option<Spanned<String>>,
}

/// `[[midi.participants]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidiParticipantFile {
    /// Port name substring (absent: any port).
    pub port: Option<Spanned<String>>,
    /// Channel, 1..16 (absent: any channel of the port).
    pub channel: Option<Spanned<i64>>,
    /// Participant id, from 1.
    pub participant: Spanned<i64>,
    /// Archetype to join with on the first note.
    pub archetype: Option<Spanned<String>>,
}

/// `[[midi.controls]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidiControlFile {
    /// Port name substring (absent: any port).
    pub port: Option<Spanned<String>>,
    /// Channel, 1..16 (absent: any channel).
    pub channel: Option<Spanned<i64>>,
    /// Controller number, 0..119.
    pub cc: Spanned<i64>,
    /// Mood dimension.
    pub dimension: Spanned<String>,
    /// Values at controller 0 and 127 (default the dimension's range).
    pub range: Option<Spanned<Pair<f64>>>,
    /// "conductor" (communal mood) or "participant" (the channel's participant).
    pub target: Spanned<String>,
}

/// `[[midi.cues]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidiCueFile {
    /// Note on the conductor channel, 0..127.
    pub note: Option<Spanned<i64>>,
    /// Program change on the conductor channel, 0..127.
    pub program: Option<Spanned<i64>>,
    /// Section cued.
    pub section: Spanned<String>,
}

/// `[analysis]`: the room's audio as one more voice in the communal mood.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisFile {
    /// Share of the room in the communal mood, 0..1 (default 0.5).
    pub weight: Option<Spanned<f64>>,
    /// Momentary loudness below which the room counts as silent (default -60 LUFS).
    pub gate_lufs: Option<Spanned<f64>>,
    /// Gain in dB applied to the room's audio before the analysis, -60..60 (default 0).
    pub input_gain_db: Option<Spanned<f64>>,
    /// Feature mappings; when given they replace the defaults.
    #[serde(default)]
    pub mappings: Vec<AnalysisMappingFile>,
    /// Follow the room's pulse with the score's tempo.
    pub tempo: Option<TempoFollowFile>,
}

/// `[[analysis.mappings]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisMappingFile {
    /// Feature name.
    pub feature: Spanned<String>,
    /// Mood dimension it drives (or `param`).
    pub mood: Option<Spanned<String>>,
    /// Sound parameter it offsets (or `mood`).
    pub param: Option<Spanned<String>>,
    /// With `param`: only voices of this role get the offset (or `timbre`; default all).
    pub role: Option<Spanned<String>>,
    /// With `param`: only voices of this timbre get the offset (or `role`; default all).
    pub timbre: Option<Spanned<String>>,
    /// Feature values `[low, high]` mapped onto the target's `range`.
    pub feature_range: Spanned<Vec<f64>>,
    /// Target values at the feature range's ends (mood: default the dimension's min and max;
    /// param: required, an offset in the parameter's units).
    pub range: Option<Spanned<Vec<f64>>>,
    /// Curve name as in `[[mappings]]`.
    pub curve: Option<Spanned<String>>,
    /// Compare on a log scale (default: on for Hz and BPM features).
    pub log: Option<bool>,
    /// Smoothing time constant in seconds (default 1).
    pub smoothing_secs: Option<Spanned<f64>>,
    /// Share among mappings to the same target (default 1).
    pub weight: Option<Spanned<f64>>,
}

/// `[analysis.tempo]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TempoFollowFile {
    /// Slowest tempo to follow to (default 0.75 x the score's tempo).
    pub min_bpm: Option<Spanned<f64>>,
    /// Fastest tempo to follow to (default 1.33 x the score's tempo).
    pub max_bpm: Option<Spanned<f64>>,
    /// Pulse steadiness the room needs first, 0..1 (default 0.5).
    pub min_steadiness: Option<Spanned<f64>>,
    /// Glide time constant in seconds (default 4).
    pub smoothing_secs: Option<Spanned<f64>>,
}
