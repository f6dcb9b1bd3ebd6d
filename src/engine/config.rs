//! The engine's resolved configuration: plain data, built and validated by the patch module
//! on the control thread and copied into the engine at construction.

use super::master::MasterSettings;
use crate::score::{Chord, Key, MotifStyle};

/// Most mood dimensions a patch may declare.
pub const MAX_DIMS: usize = 8;
/// Most chords in one section's progression.
pub const MAX_CHORDS: usize = 16;
/// Most conditions in one transition.
pub const MAX_CONDITIONS: usize = 4;

/// The timbre families a voice archetype is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timbre {
    /// Slow, warm detuned saws under a soft low-pass: sustained chords.
    Pad,
    /// Bright plucked string: fast filter and amplitude decay.
    Pluck,
    /// FM bell with inharmonic partials and a long ring.
    Bell,
    /// A low pedal on the tonic and fifth that slowly breathes.
    Drone,
    /// Formant-filtered voices singing a vowel, with vibrato.
    Choir,
    /// Pulse bass with a sine on its fundamental.
    Bass,
    /// Pitched wind: noise through a resonant band-pass.
    Wind,
    /// A singing lead: mellow saw/sine blend with vibrato.
    Lead,
}

impl Timbre {
    /// Every timbre with its patch name.
    pub const ALL: [(Timbre, &'static str); 8] = [
        (Timbre::Pad, "pad"),
        (Timbre::Pluck, "pluck"),
        (Timbre::Bell, "bell"),
        (Timbre::Drone, "drone"),
        (Timbre::Choir, "choir"),
        (Timbre::Bass, "bass"),
        (Timbre::Wind, "wind"),
        (Timbre::Lead, "lead"),
    ];

    /// The patch name of this timbre.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("?", |(_, n)| n)
    }

    /// Number of timbres.
    pub const COUNT: usize = 8;

    /// Index into per-timbre arrays (the order of [`Timbre::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The timbre with this patch name.
    pub fn from_name(name: &str) -> Option<Timbre> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// True for timbres that hold chords rather than play motif notes.
    pub fn is_sustained(self) -> bool {
        matches!(self, Timbre::Pad | Timbre::Choir | Timbre::Drone)
    }
}

/// A voice's function in the ensemble, used when the engine assigns archetypes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Lowest register, roots of the chords.
    Bass,
    /// Chords and pads in the middle.
    Harmony,
    /// Motifs above the harmony.
    Melody,
    /// Colour, noise, air.
    Texture,
}

impl Role {
    /// Every role with its patch name.
    pub const ALL: [(Role, &'static str); 4] = [
        (Role::Bass, "bass"),
        (Role::Harmony, "harmony"),
        (Role::Melody, "melody"),
        (Role::Texture, "texture"),
    ];

    /// Number of roles.
    pub const COUNT: usize = 4;

    /// Index into per-role arrays (the order of [`Role::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The role with this patch name.
    pub fn from_name(name: &str) -> Option<Role> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }

    /// The patch name of this role.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("?", |(_, n)| n)
    }
}

/// One voice archetype: what a participant sounds like and how its part moves.
#[derive(Clone, Copy, Debug)]
pub struct ArchetypeConfig {
    /// Timbre family.
    pub timbre: Timbre,
    /// Ensemble role.
    pub role: Role,
    /// Lowest MIDI note of the register.
    pub register_low: u8,
    /// Highest MIDI note of the register.
    pub register_high: u8,
    /// Shape of the personal motif each participant derives from its seed.
    pub motif: MotifStyle,
    /// Length of one motif step, in beats.
    pub grid_beats: f32,
    /// Voice level in dB before mood loudness.
    pub level_db: f32,
    /// Played notes are not harmonized to the communal chord.
    pub free: bool,
    /// Amplitude attack time.
    pub attack_secs: f32,
    /// Amplitude decay time towards the sustain level.
    pub decay_secs: f32,
    /// Sustain level, 0..1.
    pub sustain: f32,
    /// Release time.
    pub release_secs: f32,
    /// Filter brightness offset in octaves relative to the timbre's default.
    pub brightness_oct: f32,
    /// Static detune spread between lanes, in cents.
    pub detune_cents: f32,
    /// Rest after the last played note is released before the generated part resumes, in
    /// bars (see [`DEFAULT_RESUME_BARS`]).
    pub resume_bars: f32,
    /// Longest a played note sounds without its note-off, in bars (see [`DEFAULT_HOLD_BARS`]).
    pub hold_bars: f32,
    /// The designed instrument it plays (index into [`EngineConfig::instruments`]), or
    /// `None` for its built-in timbre. With an instrument, `timbre` only sets how the part
    /// is played (chords, motifs, bass line, long notes), from the role.
    pub instrument: Option<u16>,
}

impl ArchetypeConfig {
    /// The kind its lanes take in the voice pool: its timbre, or a designed instrument's
    /// kind after the timbres.
    pub fn voice_kind(&self) -> u8 {
        match self.instrument {
            Some(i) => (Timbre::COUNT + i as usize) as u8,
            None => self.timbre as u8,
        }
    }
}

/// Default rest between a participant's last played note and the return of its generated part.
pub const DEFAULT_RESUME_BARS: f32 = 2.0;
/// Longest `resume_bars` a patch may set.
pub const MAX_RESUME_BARS: f32 = 64.0;
/// Default longest hold of a played note whose note-off never came.
pub const DEFAULT_HOLD_BARS: f32 = 16.0;
/// Shortest and longest `hold_bars` a patch may set.
pub const HOLD_BARS_RANGE: (f32, f32) = (1.0, 256.0);

/// One section of the communal score.
#[derive(Clone, Copy, Debug)]
pub struct SectionConfig {
    /// Chord progression.
    pub chords: [Chord; MAX_CHORDS],
    /// Number of chords used.
    pub chord_count: u8,
    /// Bars each chord lasts.
    pub bars_per_chord: u16,
    /// Multiplier on every voice's note density.
    pub density: f32,
    /// Filter offset in octaves.
    pub brightness_oct: f32,
    /// Register shift in semitones.
    pub register_shift: i8,
    /// Added reverb send, -1..1.
    pub reverb: f32,
    /// Gain offset in dB.
    pub level_db: f32,
}

/// Comparison used by a transition condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Mood value strictly above the threshold.
    Above,
    /// Mood value strictly below the threshold.
    Below,
}

/// `dimension > threshold` or `dimension < threshold` on the communal mood.
#[derive(Clone, Copy, Debug)]
pub struct Condition {
    /// Mood dimension index.
    pub dim: u8,
    /// Comparison.
    pub comparison: Comparison,
    /// Threshold in the dimension's own units.
    pub threshold: f32,
}

/// A mood-driven change of section that lands on a bar line.
#[derive(Clone, Copy, Debug)]
pub struct TransitionConfig {
    /// Section index it leaves (None = any section).
    pub from: Option<u16>,
    /// Section index it enters.
    pub to: u16,
    /// All conditions must hold.
    pub conditions: [Condition; MAX_CONDITIONS],
    /// Number of conditions used.
    pub condition_count: u8,
    /// Bars the current section must have lasted first.
    pub min_bars: u16,
}

impl TransitionConfig {
    /// The conditions it tests, as the patch spells them ("tension > 0.60 and energy <
    /// 0.30"), with `dims` the dimension names by index; "always" when there are none.
    pub fn describe_conditions(&self, dims: &[String]) -> String {
        let used = &self.conditions[..(self.condition_count as usize).min(MAX_CONDITIONS)];
        if used.is_empty() {
            return "always".into();
        }
        used.iter()
            .map(|c| {
                let name = dims.get(c.dim as usize).map_or("?", String::as_str);
                let op = match c.comparison {
                    Comparison::Above => '>',
                    Comparison::Below => '<',
                };
                format!("{name} {op} {:.2}", c.threshold)
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// Whether it can leave section `section`.
    pub fn leaves(&self, section: u16) -> bool {
        self.from.is_none_or(|from| from == section)
    }
}

/// One mood dimension.
#[derive(Clone, Copy, Debug)]
pub struct MoodDimConfig {
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
    /// Value before anyone sets it.
    pub default: f32,
    /// Smoothing time constant on the audio thread.
    pub smoothing_secs: f32,
}

/// A sound or score parameter that mood can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Note density multiplier, 0..2.
    Density,
    /// Voice loudness offset in dB.
    LoudnessDb,
    /// Filter brightness in octaves.
    BrightnessOct,
    /// Random detune between lanes in cents.
    DetuneCents,
    /// Probability of non-chord tones, 0..1.
    NonChord,
    /// Darker harmony colouring, 0..1.
    Darkness,
    /// Faltering of timing and tuning, 0..1.
    Falter,
    /// Pull onto communal chord tones and one rhythm grid, 0..1.
    ChordLock,
    /// Personal timing divergence, 0..1.
    TimingSpread,
    /// Stereo width of the ensemble, 0..1.
    StereoWidth,
    /// Reverb send, 0..1.
    ReverbMix,
    /// Register shift in semitones.
    RegisterShift,
}

impl Param {
    /// Every parameter: patch name, legal range, value with no mapping.
    pub const ALL: [(Param, &'static str, f32, f32, f32); 12] = [
        (Param::Density, "density", 0.0, 2.0, 0.6),
        (Param::LoudnessDb, "loudness_db", -40.0, 12.0, -4.0),
        (Param::BrightnessOct, "brightness_oct", -4.0, 4.0, 0.0),
        (Param::DetuneCents, "detune_cents", 0.0, 100.0, 4.0),
        (Param::NonChord, "non_chord", 0.0, 1.0, 0.1),
        (Param::Darkness, "darkness", 0.0, 1.0, 0.0),
        (Param::Falter, "falter", 0.0, 1.0, 0.0),
        (Param::ChordLock, "chord_lock", 0.0, 1.0, 0.7),
        (Param::TimingSpread, "timing_spread", 0.0, 1.0, 0.3),
        (Param::StereoWidth, "stereo_width", 0.0, 1.0, 0.6),
        (Param::ReverbMix, "reverb_mix", 0.0, 1.0, 0.25),
        (Param::RegisterShift, "register_shift", -24.0, 24.0, 0.0),
    ];

    /// Number of parameters.
    pub const COUNT: usize = 12;

    /// Index into parameter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Patch name.
    pub fn name(self) -> &'static str {
        Self::ALL[self.index()].1
    }

    /// False for the ensemble-wide parameters (stereo width, reverb send, harmonic
    /// darkness): the engine takes those from the communal mood, never per voice.
    pub fn is_per_voice(self) -> bool {
        !matches!(
            self,
            Param::StereoWidth | Param::ReverbMix | Param::Darkness
        )
    }

    /// Legal range.
    pub fn range(self) -> (f32, f32) {
        let p = Self::ALL[self.index()];
        (p.2, p.3)
    }
}

/// Shape of a mapping from a normalized mood value to a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Curve {
    /// Straight line.
    Linear,
    /// `x^p`: slow start for p > 1.
    Power(f32),
    /// Smoothstep S-curve.
    Smooth,
    /// Nothing until `x` passes the threshold, then linear to the top.
    Threshold(f32),
}

impl Curve {
    /// Shape a value in 0..1.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        let x = x.clamp(0.0, 1.0);
        match self {
            Curve::Linear => x,
            Curve::Power(p) => x.powf(p),
            Curve::Smooth => x * x * (3.0 - 2.0 * x),
            Curve::Threshold(t) => {
                if t >= 1.0 {
                    0.0
                } else {
                    ((x - t) / (1.0 - t)).max(0.0)
                }
            }
        }
    }
}

/// Mood dimension → parameter, with a curve; outputs of mappings to the same parameter add.
#[derive(Clone, Copy, Debug)]
pub struct MappingConfig {
    /// Mood dimension index.
    pub dim: u8,
    /// Target parameter.
    pub param: Param,
    /// Parameter value at the dimension's minimum.
    pub out_low: f32,
    /// Parameter value at the dimension's maximum.
    pub out_high: f32,
    /// Curve.
    pub curve: Curve,
}

/// Which of the patch's dimensions play the four core roles.
#[derive(Clone, Copy, Debug)]
pub struct CoreDims {
    /// Energy dimension index.
    pub energy: u8,
    /// Tension dimension index.
    pub tension: u8,
    /// Brightness dimension index.
    pub brightness: u8,
    /// Unity dimension index.
    pub unity: u8,
}

/// Everything the engine needs, resolved from a patch.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Output sample rate in Hz.
    pub sample_rate: f32,
    /// Master seed.
    pub seed: u64,
    /// Most participants at once.
    pub capacity: usize,
    /// Key and mode.
    pub key: Key,
    /// Tempo.
    pub tempo_bpm: f32,
    /// Beats per bar.
    pub beats_per_bar: u8,
    /// Sections in patch order.
    pub sections: Vec<SectionConfig>,
    /// Section the piece starts in.
    pub start_section: u16,
    /// Mood-driven transitions, checked in order at every bar line.
    pub transitions: Vec<TransitionConfig>,
    /// Mood dimensions.
    pub dims: Vec<MoodDimConfig>,
    /// Indices of the core dimensions.
    pub core: CoreDims,
    /// Mood → parameter mappings (complete: defaults already filled in).
    pub mappings: Vec<MappingConfig>,
    /// Voice archetypes.
    pub archetypes: Vec<ArchetypeConfig>,
    /// Designed instruments the archetypes may play.
    pub instruments: Vec<super::instrument::InstrumentDef>,
    /// Master bus.
    pub master: MasterSettings,
    /// Weight of a participant's personal mood in its own voice at zero unity, 0..1.
    pub individuality: f32,
    /// Share of the room's mood (audio analysis) in the communal mood, 0..1.
    pub room_weight: f32,
}
