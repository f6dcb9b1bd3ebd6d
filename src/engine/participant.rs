//! One participant's voice on the audio thread: its personal motif, timing and place in the
//! stereo field, the notes it plays inside the communal chord, and its eight lanes.

use super::config::{ArchetypeConfig, Param, Role, SectionConfig, Timbre};
use super::mood::MoodState;
use super::voice::{svf_coefficients, LaneSlot, VoicePool, LANES};
use crate::control::{Expression, ParticipantId};
use crate::rng::Rng;
use crate::score::{midi_to_hz, tension_tone, Chord, Motif, Scale};

/// What a participant's voice needs to know about the score at a control tick.
#[derive(Clone, Copy, Debug)]
pub struct ScoreContext {
    /// Musical time in beats since the start.
    pub beat: f64,
    /// Current (mood-coloured) chord.
    pub chord: Chord,
    /// Scale of the key.
    pub scale: Scale,
    /// Tonic as a pitch class.
    pub tonic_pc: u8,
    /// Increments whenever the chord or section changes.
    pub chord_serial: u32,
    /// Current section.
    pub section: SectionConfig,
    /// Output sample rate.
    pub sample_rate: f32,
    /// Seconds per control tick.
    pub tick_secs: f32,
    /// Seconds per beat.
    pub beat_secs: f32,
    /// Beats per bar of the meter.
    pub beats_per_bar: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Release,
}

#[derive(Clone, Copy, Debug)]
struct Lane {
    stage: Stage,
    note: f32,
    velocity: f32,
    /// Beat at which the note is released: a generated note's gate, a played note's hold
    /// limit (its note-off usually comes first).
    gate_off_beat: f64,
    /// MIDI pitch of the played note this lane sounds, or -1 when generated.
    played: i16,
    fenv: f32,
    detune: f32,
    drift_cents: f32,
    spread: f32,
    slot: LaneSlot,
    /// Vibrato LFO phase (cycles) and its advance per control tick.
    vib_phase: f32,
    vib_step: f32,
    /// Oscillator increments before vibrato.
    dt: f32,
    dt2: f32,
    /// Frequency of the detuned note; cosine and sine of the pan angle.
    hz: Memo<1>,
    pan: Memo<2>,
}

const IDLE_LANE: Lane = Lane {
    slot: 0,
    vib_phase: 0.0,
    vib_step: 0.0,
    dt: 0.0,
    dt2: 0.0,
    stage: Stage::Idle,
    note: 60.0,
    velocity: 0.0,
    gate_off_beat: f64::INFINITY,
    played: -1,
    fenv: 0.0,
    detune: 0.0,
    drift_cents: 0.0,
    spread: 0.0,
    hz: Memo::EMPTY,
    pan: Memo::EMPTY,
};

/// The last value of a costly function of one `f32` (an `exp`, a `sin`…), recomputed only when
/// its argument changes: control ticks mostly ask again for what they asked last time, and the
/// cached value is the very one the function gave, so the output is the same bits.
#[derive(Clone, Copy, Debug)]
struct Memo<const N: usize> {
    arg: u32,
    value: [f32; N],
}

impl<const N: usize> Memo<N> {
    /// Nothing cached yet (NaN's bits: a NaN argument gives NaN values anyway).
    const EMPTY: Self = Memo {
        arg: 0x7FC0_0000,
        value: [f32::NAN; N],
    };

    #[inline]
    fn get(&mut self, arg: f32, f: impl FnOnce(f32) -> [f32; N]) -> [f32; N] {
        if arg.to_bits() != self.arg {
            self.arg = arg.to_bits();
            self.value = f(arg);
        }
        self.value
    }
}

/// Releases and decays aim this far below zero, so a lane reaches silence in finite time
/// (about 1.4 × its release time) and is freed at the zero crossing, inaudibly.
const ENV_FLOOR: f32 = 0.004;

/// Longest lag, in beats, of a sustained voice following a chord change (at full timing
/// spread: low unity lets each voice change chords in its own time).
const CHORD_LAG_BEATS: f64 = 1.5;
/// Longest release of a sustained voice's chord tone that a chord change lets go.
const CHORD_CHANGE_RELEASE_SECS: f32 = 0.6;
/// Longest attack of a sustained voice's new chord tone at a chord change.
const CHORD_CHANGE_ATTACK_SECS: f32 = 0.35;

/// Fade time of a participant who leaves.
pub const LEAVE_FADE_SECS: f32 = 1.5;

/// Static sound design of each timbre: oscillator mix, filter, modulation and level. Gains
/// are set so one voice of each timbre at `level_db = 0` has about the same loudness.
#[derive(Clone, Copy, Debug)]
struct TimbreDesign {
    saw: f32,
    pulse: f32,
    width: f32,
    saw2: f32,
    saw2_cents: f32,
    sine: f32,
    mod_ratio: f32,
    fm_index: f32,
    noise: f32,
    /// Filter 1 cutoff as a multiple of the note frequency (0 = fixed `cutoff_hz`).
    key_track: f32,
    cutoff_hz: f32,
    q: f32,
    /// Resonance of filter 2 (the choir's second formant).
    q2: f32,
    fenv_oct: f32,
    fenv_secs: f32,
    lp: f32,
    bp: f32,
    bp2: f32,
    vib_hz: f32,
    vib_depth: f32,
    gain: f32,
    /// Gate length in motif steps for generated notes.
    gate_steps: f32,
}

/// What every timbre starts from.
const BASE: TimbreDesign = TimbreDesign {
    saw: 0.0,
    pulse: 0.0,
    width: 0.5,
    saw2: 0.0,
    saw2_cents: 0.0,
    sine: 0.0,
    mod_ratio: 1.0,
    fm_index: 0.0,
    noise: 0.0,
    key_track: 0.0,
    cutoff_hz: 2000.0,
    q: 0.707,
    q2: 0.707,
    fenv_oct: 0.0,
    fenv_secs: 0.2,
    lp: 1.0,
    bp: 0.0,
    bp2: 0.0,
    vib_hz: 0.2,
    vib_depth: 0.0,
    gain: 0.3,
    gate_steps: 1.0,
};

const PAD_DESIGN: TimbreDesign = TimbreDesign {
    saw: 0.5,
    saw2: 0.5,
    saw2_cents: 9.0,
    cutoff_hz: 700.0,
    key_track: 1.5,
    q: 0.8,
    vib_hz: 0.25,
    vib_depth: 0.0015,
    gain: 0.22,
    gate_steps: 1e9,
    ..BASE
};

const PLUCK_DESIGN: TimbreDesign = TimbreDesign {
    saw: 0.7,
    pulse: 0.25,
    width: 0.3,
    key_track: 1.0,
    cutoff_hz: 250.0,
    q: 1.4,
    fenv_oct: 4.5,
    fenv_secs: 0.12,
    gain: 0.452,
    gate_steps: 1.0,
    ..BASE
};

const BELL_DESIGN: TimbreDesign = TimbreDesign {
    sine: 1.0,
    mod_ratio: 3.0,
    fm_index: 0.3,
    cutoff_hz: 9000.0,
    q: 0.6,
    fenv_oct: 0.0,
    fenv_secs: 0.8,
    gain: 0.2,
    gate_steps: 2.0,
    ..BASE
};

const DRONE_DESIGN: TimbreDesign = TimbreDesign {
    pulse: 0.5,
    width: 0.42,
    saw2: 0.5,
    saw2_cents: 5.0,
    cutoff_hz: 240.0,
    key_track: 1.2,
    q: 1.8,
    vib_hz: 0.07,
    vib_depth: 0.001,
    gain: 0.185,
    gate_steps: 1e9,
    ..BASE
};

const CHOIR_DESIGN: TimbreDesign = TimbreDesign {
    saw: 0.6,
    saw2: 0.4,
    saw2_cents: 12.0,
    // a broad first formant over a warm low-pass body keeps the fundamental the
    // strongest partial; the narrow second formant gives the vowel
    lp: 0.6,
    bp: 0.8,
    bp2: 0.8,
    cutoff_hz: 700.0,
    q: 1.0,
    q2: 5.2,
    vib_hz: 5.2,
    vib_depth: 0.005,
    gain: 0.273,
    gate_steps: 1e9,
    ..BASE
};

const BASS_DESIGN: TimbreDesign = TimbreDesign {
    pulse: 0.5,
    width: 0.5,
    sine: 0.7,
    key_track: 2.0,
    cutoff_hz: 120.0,
    q: 1.1,
    fenv_oct: 2.0,
    fenv_secs: 0.15,
    gain: 0.29,
    gate_steps: 0.9,
    ..BASE
};

const WIND_DESIGN: TimbreDesign = TimbreDesign {
    noise: 1.0,
    lp: 0.0,
    bp: 1.0,
    bp2: 0.5,
    key_track: 1.0,
    q: 14.0,
    vib_hz: 0.3,
    vib_depth: 0.003,
    gain: 2.395,
    gate_steps: 6.0,
    ..BASE
};

const LEAD_DESIGN: TimbreDesign = TimbreDesign {
    saw: 0.3,
    sine: 0.7,
    mod_ratio: 1.0,
    fm_index: 0.15,
    key_track: 3.0,
    cutoff_hz: 200.0,
    q: 0.9,
    vib_hz: 5.0,
    vib_depth: 0.004,
    gain: 0.25,
    gate_steps: 1.8,
    ..BASE
};

/// The design a participant plays with: its timbre's, or for a designed instrument the
/// timbre's way of playing (gate lengths) with none of its sound (no vibrato, no filter
/// envelope, unity gain: the instrument's graph is the sound).
fn design_of(cfg: &ArchetypeConfig) -> TimbreDesign {
    let d = design(cfg.timbre);
    match cfg.instrument {
        None => d,
        Some(_) => TimbreDesign {
            vib_depth: 0.0,
            fenv_oct: 0.0,
            fm_index: 0.0,
            gain: 1.0,
            ..d
        },
    }
}

fn design(timbre: Timbre) -> TimbreDesign {
    match timbre {
        Timbre::Pad => PAD_DESIGN,
        Timbre::Pluck => PLUCK_DESIGN,
        Timbre::Bell => BELL_DESIGN,
        Timbre::Drone => DRONE_DESIGN,
        Timbre::Choir => CHOIR_DESIGN,
        Timbre::Bass => BASS_DESIGN,
        Timbre::Wind => WIND_DESIGN,
        Timbre::Lead => LEAD_DESIGN,
    }
}

/// Vowel formants (F1, F2) in Hz for the choir: a, e, i, o, u.
const VOWELS: [(f32, f32); 5] = [
    (730.0, 1090.0),
    (530.0, 1840.0),
    (390.0, 1990.0),
    (570.0, 840.0),
    (440.0, 1020.0),
];

/// The personal chords a participant may hold at low unity: the communal chord moved by
/// this many scale steps (the neighbouring chords, or a third or a fourth away in the key).
const PERSONAL_STEPS: [i32; 6] = [1, -1, 3, -3, 2, -2];

/// Chance that a voice plays its own chord instead of the communal one (a sustained voice at
/// a chord change, a melodic one at a note), from the chord lock: never above a lock of
/// 0.85, rarely at the moderate locks of a calm room (0.12 at 0.72), always below 0.25.
fn personal_chord_chance(chord_lock: f32) -> f32 {
    let x = ((0.85 - chord_lock) / 0.6).clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Peak vibrato deviation at full mod wheel, in semitones.
pub const MOD_VIBRATO_SEMITONES: f32 = 0.5;
/// Rate of the mod-wheel vibrato.
pub const MOD_VIBRATO_HZ: f32 = 5.5;
/// Brightness the mod-wheel vibrato adds at full depth, in octaves.
pub const MOD_VIBRATO_BRIGHTNESS_OCT: f32 = 0.25;
/// Filter opening of the brightness control at full, in octaves.
pub const BRIGHTNESS_EXPRESSION_OCT: f32 = 1.5;
/// Smoothing time constant of pitch bend (fast enough to follow a wheel, no steps).
pub const BEND_SMOOTHING_SECS: f32 = 0.008;
/// Smoothing time constant of vibrato depth and brightness.
pub const DEPTH_SMOOTHING_SECS: f32 = 0.05;

/// A participant's expressive controls: targets set by commands, values smoothed one-pole
/// per control tick (0.67 ms at 48 kHz), snapping onto the target once within a hair of it.
#[derive(Clone, Copy, Debug, Default)]
struct Expressive {
    bend_target: f32,
    bend: f32,
    vibrato_target: f32,
    vibrato: f32,
    bright_target: f32,
    bright: f32,
    /// Mod-wheel vibrato LFO phase in cycles.
    lfo_phase: f32,
    /// Pitch factor this tick (bend and vibrato); exactly 1 at rest.
    ratio: f32,
}

impl Expressive {
    const REST: Expressive = Expressive {
        bend_target: 0.0,
        bend: 0.0,
        vibrato_target: 0.0,
        vibrato: 0.0,
        bright_target: 0.0,
        bright: 0.0,
        lfo_phase: 0.0,
        ratio: 1.0,
    };

    fn set(&mut self, kind: Expression, value: f32) {
        match kind {
            Expression::PitchBend => self.bend_target = value,
            Expression::Vibrato => self.vibrato_target = value,
            Expression::Brightness => self.bright_target = value,
        }
    }

    /// Whether anything is bent, wobbling or moving.
    fn engaged(&self) -> bool {
        self.bend != 0.0
            || self.vibrato != 0.0
            || self.bend_target != 0.0
            || self.vibrato_target != 0.0
    }

    /// Whether the brightness offset is still moving.
    fn brightening(&self) -> bool {
        self.bright != self.bright_target
    }

    /// Extra filter brightness in octaves.
    fn brightness_oct(&self) -> f32 {
        self.bright * BRIGHTNESS_EXPRESSION_OCT + self.vibrato * MOD_VIBRATO_BRIGHTNESS_OCT
    }

    /// One control tick of smoothing and LFO.
    fn advance(&mut self, tick_secs: f32) {
        fn follow(value: &mut f32, target: f32, k: f32, snap: f32) {
            *value += (target - *value) * k;
            if (target - *value).abs() < snap {
                *value = target;
            }
        }
        if !self.engaged() && !self.brightening() {
            return; // at rest: ratio 1, LFO at 0
        }
        let k_bend = 1.0 - (-tick_secs / BEND_SMOOTHING_SECS).exp();
        let k_depth = 1.0 - (-tick_secs / DEPTH_SMOOTHING_SECS).exp();
        follow(&mut self.bend, self.bend_target, k_bend, 1e-4);
        follow(&mut self.vibrato, self.vibrato_target, k_depth, 1e-4);
        follow(&mut self.bright, self.bright_target, k_depth, 1e-4);
        if !self.engaged() {
            self.lfo_phase = 0.0;
            self.ratio = 1.0;
            return;
        }
        self.lfo_phase = (self.lfo_phase + MOD_VIBRATO_HZ * tick_secs).fract();
        let wobble =
            self.vibrato * MOD_VIBRATO_SEMITONES * (std::f32::consts::TAU * self.lfo_phase).sin();
        self.ratio = ((self.bend + wobble) / 12.0).exp2();
    }
}

/// A participant slot.
#[derive(Clone, Copy, Debug)]
pub struct Participant {
    /// External id.
    pub id: ParticipantId,
    /// Slot in use.
    pub active: bool,
    /// Fading out after a leave.
    pub leaving: bool,
    /// Archetype index.
    pub archetype: u16,
    /// Personal mood.
    pub mood: MoodState,
    /// Voice parameters from the voice's mood.
    pub params: [f32; Param::COUNT],
    /// This participant's slot in the engine (designed instruments' voices name it).
    pub index: u16,
    cfg: ArchetypeConfig,
    design: TimbreDesign,
    rng: Rng,
    motif: Motif,
    motif_seed: u64,
    home_pan: f32,
    timing_offset: f32,
    swing: f32,
    vowel: usize,
    /// Scale steps between the communal chord and this participant's own (low unity).
    personal_steps: i32,
    next_step_beat: f64,
    step: u64,
    chord_serial: u32,
    /// Beat from which the generated part plays: `NEG_INFINITY` before any played note,
    /// `INFINITY` while played notes are held, else the first grid step after the rest that
    /// follows the last played note.
    resume_beat: f64,
    /// Beat at which the chord changed under a sustained voice that has not followed yet.
    chord_change_beat: f64,
    lanes: [Lane; LANES],
    gain_scale: f32,
    fade_coef: f32,
    expressive: Expressive,
    /// Per control tick: the filter envelope's decay and the pitch drift's relaxation.
    fenv_decay: Memo<1>,
    drift_relax: Memo<1>,
    /// `exp2` of the brightness for the FM index and the choir's formant shift; the gain of
    /// the voice's level.
    bright: Memo<2>,
    level: Memo<1>,
}

impl Participant {
    /// An empty slot.
    pub fn empty(cfg: ArchetypeConfig, mood: MoodState) -> Self {
        Self {
            id: 0,
            active: false,
            leaving: false,
            archetype: 0,
            mood,
            params: [0.0; Param::COUNT],
            index: 0,
            cfg,
            design: design_of(&cfg),
            rng: Rng::new(0),
            motif: Motif::generate(0, &cfg.motif),
            motif_seed: 0,
            home_pan: 0.0,
            timing_offset: 0.0,
            swing: 0.0,
            vowel: 0,
            personal_steps: 1,
            next_step_beat: 0.0,
            step: 0,
            chord_serial: u32::MAX,
            resume_beat: f64::NEG_INFINITY,
            chord_change_beat: f64::NAN,
            lanes: [IDLE_LANE; LANES],
            gain_scale: 1.0,
            fade_coef: 0.0,
            expressive: Expressive::REST,
            fenv_decay: Memo::EMPTY,
            drift_relax: Memo::EMPTY,
            bright: Memo::EMPTY,
            level: Memo::EMPTY,
        }
    }

    /// Starts this slot as a new participant. Real-time safe.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        id: ParticipantId,
        archetype: u16,
        cfg: ArchetypeConfig,
        seed: u64,
        mood: MoodState,
        params: [f32; Param::COUNT],
        beat: f64,
        sample_rate: f32,
    ) {
        let mut rng = Rng::derive(seed, id as u64 ^ 0x7A9E_5717);
        let motif_seed = rng.next_u64();
        *self = Self {
            id,
            active: true,
            leaving: false,
            archetype,
            mood,
            params,
            index: self.index,
            cfg,
            design: design_of(&cfg),
            motif: Motif::generate(motif_seed, &cfg.motif),
            motif_seed,
            home_pan: {
                // towards the sides: a wide ensemble sounds wide, not bunched in the middle
                let h = rng.next_bipolar();
                h.signum() * h.abs().sqrt()
            },
            timing_offset: rng.next_bipolar(),
            swing: rng.next_f32(),
            vowel: rng.below(VOWELS.len() as u32) as usize,
            personal_steps: PERSONAL_STEPS[rng.below(PERSONAL_STEPS.len() as u32) as usize],
            next_step_beat: 0.0,
            step: 0,
            chord_serial: u32::MAX,
            resume_beat: f64::NEG_INFINITY,
            chord_change_beat: f64::NAN,
            lanes: [IDLE_LANE; LANES],
            gain_scale: 1.0,
            fade_coef: 1.0 - (-1.0 / (LEAVE_FADE_SECS / 4.0 * sample_rate)).exp(),
            expressive: Expressive::REST,
            fenv_decay: Memo::EMPTY,
            drift_relax: Memo::EMPTY,
            bright: Memo::EMPTY,
            level: Memo::EMPTY,
            rng,
        };
        // a newcomer is heard from the next beat on, then follows its own grid
        let grid = self.cfg.grid_beats.max(1e-3) as f64;
        self.step = (beat / grid).ceil().max(0.0) as u64;
        self.next_step_beat = (self.step as f64 * grid).min(beat.ceil());
    }

    /// Starts the fade-out of a leaving participant. Real-time safe.
    pub fn leave(&mut self, pool: &mut VoicePool) {
        self.leaving = true;
        for l in 0..LANES {
            if self.lanes[l].stage == Stage::Idle {
                continue;
            }
            // fade no faster than the leave fade, and no slower than a release already under way
            let releasing = self.lanes[l].stage == Stage::Release;
            pool.release_note(self.lanes[l].slot);
            let (bank, i) = pool.lane(self.lanes[l].slot);
            bank.params.env_target[i] = -ENV_FLOOR;
            let current = bank.params.env_coef[i];
            bank.params.env_coef[i] = if releasing {
                current.max(self.fade_coef)
            } else {
                self.fade_coef
            };
            self.lanes[l].stage = Stage::Release;
        }
    }

    /// Gives the slot up for a newcomer without a click: each sounding lane fades out with
    /// `fade_coef` (a few milliseconds) and goes to `keep`, which frees it once faded; a lane
    /// `keep` cannot take is freed at once. Real-time safe.
    pub fn cut_short(
        &mut self,
        pool: &mut VoicePool,
        fade_coef: f32,
        mut keep: impl FnMut(LaneSlot) -> bool,
    ) {
        for l in 0..LANES {
            if self.lanes[l].stage == Stage::Idle {
                continue;
            }
            let slot = self.lanes[l].slot;
            let (bank, i) = pool.lane(slot);
            bank.params.env_target[i] = -ENV_FLOOR;
            bank.params.env_coef[i] = bank.params.env_coef[i].max(fade_coef);
            if !keep(slot) {
                pool.free(slot);
            }
            self.lanes[l].stage = Stage::Idle;
        }
        self.active = false;
    }

    /// Frees every lane at once (engine reset). Real-time safe.
    pub fn silence(&mut self, pool: &mut VoicePool) {
        for l in 0..LANES {
            if self.lanes[l].stage != Stage::Idle {
                pool.free(self.lanes[l].slot);
                self.lanes[l].stage = Stage::Idle;
            }
        }
        self.active = false;
    }

    /// A played note starts. The generated part yields: its sounding notes release (with the
    /// archetype's release) and it starts nothing new until every played note is released.
    /// A note-off releases the note, or after `hold_bars` it releases by itself. Real-time safe.
    pub fn note_on(&mut self, pitch: u8, velocity: u8, ctx: &ScoreContext, pool: &mut VoicePool) {
        if self.leaving {
            return;
        }
        self.yield_generated(ctx.sample_rate, pool);
        let mut note = pitch as i32;
        if !self.cfg.free {
            note = ctx.chord.nearest_tone(note);
        }
        let hold_limit = ctx.beat + self.cfg.hold_bars as f64 * ctx.beats_per_bar;
        let lane = self.free_lane(pool);
        self.start_lane(
            lane,
            note as f32,
            (velocity as f32 / 127.0).clamp(0.0, 1.0),
            hold_limit,
            pitch as i16,
            ctx,
            pool,
        );
        self.resume_beat = f64::INFINITY;
    }

    /// A played note ends: the oldest held note of that pitch releases. Real-time safe.
    pub fn note_off(&mut self, pitch: u8, ctx: &ScoreContext, pool: &mut VoicePool) {
        let oldest = (0..LANES)
            .filter(|&l| self.lanes[l].played == pitch as i16 && self.is_held(l))
            .min_by(|&a, &b| {
                let (a, b) = (self.lanes[a].gate_off_beat, self.lanes[b].gate_off_beat);
                a.total_cmp(&b)
            });
        if let Some(l) = oldest {
            self.release_lane(l, ctx.sample_rate, pool);
        }
        self.after_played_release(ctx);
    }

    /// Whether lane `l` sounds a played note that is not yet released.
    fn is_held(&self, l: usize) -> bool {
        let lane = &self.lanes[l];
        lane.played >= 0 && matches!(lane.stage, Stage::Attack | Stage::Decay)
    }

    /// Releases every generated note still held (played notes keep sounding).
    fn yield_generated(&mut self, sample_rate: f32, pool: &mut VoicePool) {
        for l in 0..LANES {
            let lane = self.lanes[l];
            if lane.played < 0 && matches!(lane.stage, Stage::Attack | Stage::Decay) {
                self.release_lane(l, sample_rate, pool);
            }
        }
    }

    /// Once no played note is held any more (released by its note-off, decayed to silence,
    /// or past its hold limit), the generated part is due back after `resume_bars`, on the
    /// first step of its own grid from then: its motif goes on where it would be had it never
    /// stopped, and a sustained voice sings the chord of that moment.
    fn after_played_release(&mut self, ctx: &ScoreContext) {
        if self.resume_beat != f64::INFINITY || (0..LANES).any(|l| self.is_held(l)) {
            return;
        }
        let grid = self.cfg.grid_beats.max(1e-3) as f64;
        let rest = self.cfg.resume_bars as f64 * ctx.beats_per_bar;
        let step = ((ctx.beat + rest) / grid - 1e-9).ceil().max(0.0);
        self.step = step as u64;
        self.next_step_beat = step * grid;
        self.resume_beat = self.next_step_beat;
        self.chord_serial = u32::MAX;
    }

    /// Moves an expressive control to a value (already checked and clamped); the change is
    /// smoothed from the next control tick on. Real-time safe.
    pub fn express(&mut self, kind: Expression, value: f32) {
        self.expressive.set(kind, value);
    }

    /// Everything that happens at a control tick. `full` also recomputes every lane's
    /// parameters (done on a staggered slower rate). Real-time safe.
    pub fn control_tick(&mut self, ctx: &ScoreContext, full: bool, pool: &mut VoicePool) -> bool {
        if !self.leaving && ctx.beat >= self.resume_beat {
            self.sequence(ctx, pool);
        }
        let was_engaged = self.expressive.engaged();
        let was_brightening = self.expressive.brightening();
        self.expressive.advance(ctx.tick_secs);
        // pitch follows the wheels every tick; a moving brightness refilters every tick
        let repitch = was_engaged || self.expressive.engaged();
        let refilter = was_brightening || self.expressive.brightening();
        let sr = ctx.sample_rate;
        for l in 0..LANES {
            let lane = self.lanes[l];
            if lane.stage == Stage::Idle {
                continue;
            }
            let env = pool.env(lane.slot);
            match lane.stage {
                Stage::Idle => {}
                Stage::Attack => {
                    if env >= 1.0 {
                        self.lanes[l].stage = Stage::Decay;
                        let (bank, i) = pool.lane(lane.slot);
                        bank.params.env_target[i] = if self.cfg.sustain > 0.0 {
                            self.cfg.sustain
                        } else {
                            -ENV_FLOOR
                        };
                        bank.params.env_coef[i] = coef(self.cfg.decay_secs / 3.0, sr);
                    }
                }
                Stage::Decay => {
                    // a non-sustaining note (played or generated) ends when it has decayed
                    if self.cfg.sustain <= 0.0 && env <= 0.0 {
                        self.free_lane_slot(l, pool);
                        continue;
                    }
                }
                Stage::Release => {
                    if env <= 0.0 {
                        self.free_lane_slot(l, pool);
                        continue;
                    }
                }
            }
            if matches!(self.lanes[l].stage, Stage::Attack | Stage::Decay)
                && ctx.beat >= lane.gate_off_beat
            {
                self.release_lane(l, sr, pool);
            }
            if self.lanes[l].fenv > 1e-3 {
                let fenv_secs = self.design.fenv_secs;
                let [decay] = self
                    .fenv_decay
                    .get(ctx.tick_secs, |t| [(-t / fenv_secs).exp()]);
                self.lanes[l].fenv *= decay;
                if !full {
                    self.update_lane(l, ctx, pool);
                }
            } else if self.design.vib_depth > 0.0 && self.lanes[l].stage != Stage::Idle {
                let lane = &mut self.lanes[l];
                lane.vib_phase = fract(lane.vib_phase + lane.vib_step);
                if !full {
                    self.apply_vibrato(l, self.params[Param::Falter.index()], pool);
                }
            }
        }
        if self.resume_beat == f64::INFINITY {
            self.after_played_release(ctx);
        }
        if full {
            self.drift(ctx);
            for l in 0..LANES {
                if self.lanes[l].stage != Stage::Idle {
                    self.update_lane(l, ctx, pool);
                }
            }
        } else if refilter {
            for l in 0..LANES {
                if self.lanes[l].stage != Stage::Idle {
                    self.update_lane(l, ctx, pool);
                }
            }
        } else if repitch {
            let falter = self.params[Param::Falter.index()];
            for l in 0..LANES {
                if self.lanes[l].stage != Stage::Idle {
                    self.apply_vibrato(l, falter, pool);
                }
            }
        }
        if self.leaving && !self.is_sounding() {
            self.active = false;
            return false;
        }
        true
    }

    fn drift(&mut self, ctx: &ScoreContext) {
        let falter = self.params[Param::Falter.index()];
        let [relax] = self
            .drift_relax
            .get(ctx.tick_secs, |t| [(-t * 8.0 / 0.7).exp()]);
        for l in 0..LANES {
            let d = &mut self.lanes[l].drift_cents;
            *d = *d * relax + falter * 9.0 * self.rng.next_bipolar();
            *d = d.clamp(-60.0 * falter, 60.0 * falter);
        }
    }

    /// The personal, mood-steered part.
    fn sequence(&mut self, ctx: &ScoreContext, pool: &mut VoicePool) {
        let timbre = self.cfg.timbre;
        if timbre.is_sustained() && self.chord_serial != ctx.chord_serial {
            // the first chord at once; later changes after the voice's own lag (low unity)
            if self.chord_serial == u32::MAX || self.chord_change_beat.is_nan() {
                self.chord_change_beat = ctx.beat;
            }
            let lag = CHORD_LAG_BEATS
                * self.params[Param::TimingSpread.index()] as f64
                * (0.5 + 0.5 * self.timing_offset as f64);
            if self.chord_serial == u32::MAX || ctx.beat >= self.chord_change_beat + lag {
                self.chord_serial = ctx.chord_serial;
                self.chord_change_beat = f64::NAN;
                self.voice_chord(ctx, pool);
            }
        }
        let grid = self.cfg.grid_beats.max(1e-3) as f64;
        if ctx.beat < self.next_step_beat {
            return;
        }
        let step = self.step;
        self.step += 1;
        let p = self.params;
        // timing: personal lag and swing (low unity), random waver (falter); only ever late,
        // so a note meant for a bar line never sounds the chord before it
        let spread = p[Param::TimingSpread.index()];
        let falter = p[Param::Falter.index()];
        let lag = 0.5 + 0.5 * self.timing_offset;
        let mut offset = spread * (0.22 * lag + 0.18 * self.swing * (self.step % 2) as f32);
        offset += falter * 0.35 * self.rng.next_f32();
        self.next_step_beat =
            ((self.step as f64 + offset as f64) * grid).max(ctx.beat + grid * 0.25);
        if self.chord_serial == u32::MAX {
            self.chord_serial = ctx.chord_serial;
        }
        let density = p[Param::Density.index()] * ctx.section.density;
        let s = step as usize;
        let mut onset = self.motif.onset(s)
            && hash01(self.motif_seed, step % self.motif.len() as u64) < density;
        if !onset && density > 1.0 {
            onset = hash01(self.motif_seed ^ 0xF111, step) < (density - 1.0) * 0.6;
        }
        if onset && falter > 0.0 && self.rng.chance(falter * 0.3) {
            onset = false;
        }
        if !onset {
            return;
        }
        let accent = if self.motif.accent(s) { 1.0 } else { 0.72 };
        let velocity = accent * (0.85 + 0.15 * self.rng.next_f32());
        if timbre.is_sustained() {
            if timbre == Timbre::Choir {
                self.move_choir_voice(s, ctx, pool);
            }
            return;
        }
        let note = self.motif_note(s, ctx);
        let gate = ctx.beat + grid * self.design.gate_steps as f64;
        let lane = self.free_lane(pool);
        self.start_lane(lane, note as f32, velocity, gate, -1, ctx, pool);
    }

    fn register(&self, ctx: &ScoreContext) -> (i32, i32) {
        let shift = self.params[Param::RegisterShift.index()].round() as i32
            + ctx.section.register_shift as i32;
        let low = (self.cfg.register_low as i32 + shift).clamp(12, 115);
        let high = (self.cfg.register_high as i32 + shift).clamp(low + 5, 120);
        (low, high)
    }

    fn fold(note: i32, low: i32, high: i32) -> i32 {
        let mut n = note;
        while n < low {
            n += 12;
        }
        while n > high && n - 12 >= low {
            n -= 12;
        }
        n
    }

    /// Index of the chord tone nearest the register centre.
    fn center_index(chord: &Chord, low: i32, high: i32) -> i32 {
        let center = (low + high) / 2;
        let mut i = 0;
        while i < 32 && chord.tone_midi(i, low) < center {
            i += 1;
        }
        i
    }

    fn motif_note(&mut self, step: usize, ctx: &ScoreContext) -> i32 {
        let (low, high) = self.register(ctx);
        let chord = ctx.chord;
        let p = self.params;
        let mut note = if self.cfg.timbre == Timbre::Bass {
            let root = Self::fold(chord.root as i32, low, high);
            match self.motif.contour(step).rem_euclid(4) {
                1 => chord.tone_midi(2, root),
                3 => root + 12,
                _ => root,
            }
        } else {
            let i0 = Self::center_index(&chord, low, high);
            chord.tone_midi(i0 + self.motif.contour(step) as i32, low)
        };
        if self
            .rng
            .chance(personal_chord_chance(p[Param::ChordLock.index()]))
        {
            // personal line: a tone of the participant's own chord (the communal one moved
            // in the key), a step, a third or a fourth from the chord tone
            note = ctx.scale.step(note, self.personal_steps);
        }
        // the bass keeps its downbeats on the harmony, whatever the tension
        let downbeat = self.cfg.timbre == Timbre::Bass && step.is_multiple_of(2);
        if !downbeat && self.rng.chance(p[Param::NonChord.index()]) {
            note = tension_tone(&chord, &ctx.scale, note, &mut self.rng);
        }
        Self::fold(note, low, high)
    }

    fn voice_chord(&mut self, ctx: &ScoreContext, pool: &mut VoicePool) {
        let (low, high) = self.register(ctx);
        let chord = ctx.chord;
        let mut notes = [0i32; 4];
        let count = match self.cfg.timbre {
            Timbre::Drone => {
                // the tonic pedal and the fifth above it; a chord without one of them has
                // the pedal yield to its nearest chord tone, so the pedal never clouds the
                // harmony
                let tonic = Self::fold(ctx.tonic_pc as i32, low, high);
                notes[0] = chord.nearest_tone(tonic);
                notes[1] = chord.nearest_tone(tonic + 7);
                2
            }
            Timbre::Choir => {
                let i0 = Self::center_index(&chord, low, high) - 1;
                for (k, n) in notes.iter_mut().take(3).enumerate() {
                    *n = chord.tone_midi(i0 + k as i32, low);
                }
                3
            }
            _ => {
                let i0 = Self::center_index(&chord, low, high) - 2;
                for (k, n) in notes.iter_mut().enumerate() {
                    *n = chord.tone_midi(i0 + k as i32, low);
                }
                if self.rng.chance(self.params[Param::NonChord.index()]) {
                    notes[3] = tension_tone(&chord, &ctx.scale, notes[3], &mut self.rng);
                }
                4
            }
        };
        // low unity: the voice holds its own chord, the communal one moved in the key, with
        // a doubled tone turned into a colour of its own (the drone keeps its pedal and moves
        // only its upper voice)
        let lock = self.params[Param::ChordLock.index()];
        if self.rng.chance(personal_chord_chance(lock)) {
            let first = if self.cfg.timbre == Timbre::Drone {
                1
            } else {
                0
            };
            for n in notes.iter_mut().take(count).skip(first) {
                *n = Self::fold(ctx.scale.step(*n, self.personal_steps), low, high);
            }
            if let Some(k) =
                (1..count).find(|&k| notes[..k].iter().any(|n| (n - notes[k]) % 12 == 0))
            {
                notes[k] = ctx.scale.step(notes[k], 1);
            }
        }
        let notes = &notes[..count];
        // a chord change (not the first chord) moves voice by voice, quickly
        let changing = self
            .lanes
            .iter()
            .any(|l| l.played < 0 && matches!(l.stage, Stage::Attack | Stage::Decay));
        // keep common tones, release the rest, then start the new ones
        let mut kept = [false; 4];
        for l in 0..LANES {
            let lane = self.lanes[l];
            if lane.played >= 0 || matches!(lane.stage, Stage::Idle | Stage::Release) {
                continue;
            }
            match notes.iter().position(|n| *n as f32 == lane.note) {
                Some(k) if !kept[k] => kept[k] = true,
                _ => self.move_off(l, changing, ctx, pool),
            }
        }
        for (k, n) in notes.iter().enumerate() {
            if !kept[k] {
                self.move_on(*n, changing, ctx, pool);
            }
        }
    }

    /// Releases a generated chord tone; at a chord change, within
    /// [`CHORD_CHANGE_RELEASE_SECS`] (so the old chord does not cloud the new one).
    fn move_off(&mut self, l: usize, changing: bool, ctx: &ScoreContext, pool: &mut VoicePool) {
        self.release_lane(l, ctx.sample_rate, pool);
        let secs = self.cfg.release_secs.min(CHORD_CHANGE_RELEASE_SECS);
        if changing {
            let (bank, i) = pool.lane(self.lanes[l].slot);
            bank.params.env_coef[i] = coef(secs.max(0.005) / 4.0, ctx.sample_rate);
        }
    }

    /// Starts a generated chord tone; at a chord change its attack takes at most
    /// [`CHORD_CHANGE_ATTACK_SECS`].
    fn move_on(&mut self, note: i32, changing: bool, ctx: &ScoreContext, pool: &mut VoicePool) {
        let l = self.free_lane(pool);
        self.start_lane(l, note as f32, 0.8, f64::INFINITY, -1, ctx, pool);
        if changing && self.lanes[l].stage == Stage::Attack {
            let secs = self.cfg.attack_secs.min(CHORD_CHANGE_ATTACK_SECS);
            let (bank, i) = pool.lane(self.lanes[l].slot);
            bank.params.env_coef[i] = coef(secs.max(0.001) / 1.47, ctx.sample_rate);
        }
    }

    fn move_choir_voice(&mut self, step: usize, ctx: &ScoreContext, pool: &mut VoicePool) {
        // the top voice of the chorale moves to the chord tone the motif names
        let (low, high) = self.register(ctx);
        let i0 = Self::center_index(&ctx.chord, low, high);
        let target = Self::fold(
            ctx.chord
                .tone_midi(i0 + self.motif.contour(step) as i32 / 2, low),
            low,
            high,
        );
        let mut top: Option<usize> = None;
        for l in 0..LANES {
            let lane = self.lanes[l];
            if lane.played < 0
                && matches!(lane.stage, Stage::Attack | Stage::Decay)
                && top.is_none_or(|t| self.lanes[t].note < lane.note)
            {
                top = Some(l);
            }
        }
        if let Some(t) = top {
            if self.lanes[t].note as i32 != target {
                self.move_off(t, true, ctx, pool);
                self.move_on(target, true, ctx, pool);
            }
        }
    }

    /// An idle lane, else the quietest releasing one, else the quietest of all.
    fn free_lane(&self, pool: &VoicePool) -> usize {
        if let Some(l) = self.lanes.iter().position(|l| l.stage == Stage::Idle) {
            return l;
        }
        let mut best = 0;
        let mut best_key = f32::INFINITY;
        for l in 0..LANES {
            let env = pool.env(self.lanes[l].slot);
            let key = env
                + if self.lanes[l].stage == Stage::Release {
                    0.0
                } else {
                    10.0
                };
            if key < best_key {
                best_key = key;
                best = l;
            }
        }
        best
    }

    #[allow(clippy::too_many_arguments)]
    fn start_lane(
        &mut self,
        l: usize,
        note: f32,
        velocity: f32,
        gate_off_beat: f64,
        played: i16,
        ctx: &ScoreContext,
        pool: &mut VoicePool,
    ) {
        // a stolen lane keeps its slot (and its continuous phase and envelope: no click)
        let slot = if self.lanes[l].stage == Stage::Idle {
            match pool.allocate(lane_needs(&self.cfg)) {
                Some(s) => s,
                None => return,
            }
        } else {
            self.lanes[l].slot
        };
        let spread = match self.cfg.timbre {
            Timbre::Pad | Timbre::Choir => [-0.5, 0.5][l % 2],
            _ => 0.0,
        };
        let vib_step = self.design.vib_hz * (1.0 + 0.1 * self.rng.next_bipolar()) * ctx.tick_secs;
        self.lanes[l] = Lane {
            stage: Stage::Attack,
            note,
            velocity,
            gate_off_beat,
            played,
            fenv: 1.0,
            detune: self.rng.next_bipolar(),
            drift_cents: self.lanes[l].drift_cents,
            spread,
            slot,
            vib_phase: self.lanes[l].vib_phase,
            vib_step,
            dt: 0.0,
            dt2: 0.0,
            hz: self.lanes[l].hz,
            pan: self.lanes[l].pan,
        };
        let d = self.design;
        let (bank, i) = pool.lane(slot);
        let bp = &mut bank.params;
        use super::voice::features::{F2, FM, NOISE, PULSE, SAW, SAW2};
        let l_outer = l;
        let l = i;
        // a chunk may compute more than this timbre uses (lanes of several timbres share a
        // kernel): what it does not use is silent
        let needs = timbre_features(self.cfg.timbre);
        let uses = |feature: u32, level: f32| if needs & feature != 0 { level } else { 0.0 };
        bp.saw[l] = uses(SAW, d.saw);
        bp.pulse[l] = uses(PULSE, d.pulse);
        bp.width[l] = d.width;
        bp.saw2[l] = uses(SAW2, d.saw2);
        bp.sine[l] = uses(FM, d.sine);
        bp.mod_ratio[l] = d.mod_ratio;
        bp.noise[l] = uses(NOISE, d.noise);
        bp.lp[l] = d.lp;
        bp.bp[l] = d.bp;
        bp.bp2[l] = uses(F2, d.bp2);
        bp.env_target[l] = 1.3;
        bp.env_coef[l] = coef(self.cfg.attack_secs.max(0.001) / 1.47, ctx.sample_rate);
        pool.start_note(slot, note, velocity, self.index);
        self.update_lane(l_outer, ctx, pool);
    }

    /// Returns a silent lane's slot to the pool.
    fn free_lane_slot(&mut self, l: usize, pool: &mut VoicePool) {
        pool.free(self.lanes[l].slot);
        self.lanes[l].stage = Stage::Idle;
        self.lanes[l].played = -1;
    }

    fn release_lane(&mut self, l: usize, sample_rate: f32, pool: &mut VoicePool) {
        self.lanes[l].stage = Stage::Release;
        pool.release_note(self.lanes[l].slot);
        let (bank, i) = pool.lane(self.lanes[l].slot);
        bank.params.env_target[i] = -ENV_FLOOR;
        bank.params.env_coef[i] = coef(self.cfg.release_secs.max(0.005) / 4.0, sample_rate);
    }

    /// Recomputes one lane's pitch, filter, FM and gains from the voice parameters.
    fn update_lane(&mut self, l: usize, ctx: &ScoreContext, pool: &mut VoicePool) {
        let d = self.design;
        let lane = self.lanes[l];
        let p = self.params;
        let sr = ctx.sample_rate;
        let detune = p[Param::DetuneCents.index()] * lane.detune
            + self.cfg.detune_cents * lane.spread
            + lane.drift_cents;
        let [hz] = self.lanes[l]
            .hz
            .get(lane.note + detune * 0.01, |m| [midi_to_hz(m)]);
        self.lanes[l].dt = hz / sr;
        self.lanes[l].dt2 = hz * (1.0 + d.saw2_cents * 0.000_578) / sr;
        self.apply_vibrato(l, p[Param::Falter.index()], pool);
        let own = l;
        let (bank, l) = pool.lane(lane.slot);
        let bp = &mut bank.params;
        let bright = p[Param::BrightnessOct.index()]
            + ctx.section.brightness_oct
            + self.cfg.brightness_oct
            + self.expressive.brightness_oct();
        let [fm_bright, formant_shift] = self
            .bright
            .get(bright, |b| [(0.7 * b).exp2(), (0.25 * b).exp2()]);
        bp.fm_index[l] = d.fm_index * (0.35 + lane.fenv) * fm_bright;
        let nyquist_safe = 0.45 * sr;
        let (f1, f2) = match self.cfg.timbre {
            Timbre::Choir => {
                let (a, b) = VOWELS[self.vowel];
                let shift = formant_shift;
                (
                    svf_coefficients((a * shift).min(nyquist_safe), d.q, sr),
                    svf_coefficients((b * shift).min(nyquist_safe), d.q2, sr),
                )
            }
            Timbre::Wind => {
                let q = d.q * (1.0 - 0.12 * bright).clamp(0.3, 2.0);
                (
                    svf_coefficients((hz * d.key_track).min(nyquist_safe), q, sr),
                    svf_coefficients((hz * 2.0).min(nyquist_safe), q, sr),
                )
            }
            _ => {
                let cutoff = (d.cutoff_hz + hz * d.key_track)
                    * (bright + d.fenv_oct * lane.fenv * (1.0 + 0.25 * bright).max(0.1)).exp2();
                let c = svf_coefficients(cutoff.clamp(30.0, nyquist_safe), d.q, sr);
                (c, c)
            }
        };
        for k in 0..4 {
            bp.f1[k][l] = f1[k];
            bp.f2[k][l] = f2[k];
        }
        let level_db = self.cfg.level_db + p[Param::LoudnessDb.index()] + ctx.section.level_db;
        let [level] = self
            .level
            .get(level_db, |db| [(db * 0.05 * std::f32::consts::LN_10).exp()]);
        let gain = d.gain * lane.velocity * level * self.gain_scale;
        let width = p[Param::StereoWidth.index()];
        // the low end stays near the middle, as in any mix
        let reach = if self.cfg.role == Role::Bass {
            0.3
        } else {
            1.0
        };
        let pan = ((self.home_pan * reach + lane.spread * 0.4) * width).clamp(-1.0, 1.0);
        let [cos, sin] = self.lanes[own].pan.get(pan, |pan| {
            let angle = (pan + 1.0) * std::f32::consts::FRAC_PI_4;
            [angle.cos(), angle.sin()]
        });
        bp.gain_l[l] = gain * cos;
        bp.gain_r[l] = gain * sin;
    }

    /// Sets a lane's oscillator increments from its pitch, the timbre's vibrato LFO and the
    /// participant's bend and mod-wheel vibrato (run at control rate: a 1.5 kHz update of a
    /// few-hertz wobble or a smoothed bend is smooth).
    fn apply_vibrato(&mut self, l: usize, falter: f32, pool: &mut VoicePool) {
        let lane = self.lanes[l];
        let depth = self.design.vib_depth * (1.0 + 6.0 * falter);
        let wobble =
            (1.0 + depth * (std::f32::consts::TAU * lane.vib_phase).sin()) * self.expressive.ratio;
        let (bank, i) = pool.lane(lane.slot);
        bank.set_increments(i, lane.dt * wobble, lane.dt2 * wobble);
    }

    /// Whether any lane sounds.
    pub fn is_sounding(&self) -> bool {
        self.lanes.iter().any(|l| l.stage != Stage::Idle)
    }

    /// Its expressive controls as they sound now: bend (semitones), vibrato and brightness.
    pub fn expression(&self) -> (f32, f32, f32) {
        let e = &self.expressive;
        (e.bend, e.vibrato, e.bright)
    }

    /// The archetype configuration.
    pub fn config(&self) -> &ArchetypeConfig {
        &self.cfg
    }
}

/// What a participant's lanes need from the pool: the kernel features of its timbre, or a
/// designed instrument's own chunks (its rack renders them).
fn lane_needs(cfg: &ArchetypeConfig) -> u32 {
    match cfg.instrument {
        Some(_) => super::voice::features::designed(cfg.voice_kind()),
        None => timbre_features(cfg.timbre),
    }
}

/// The kernel features a timbre's voices need.
fn timbre_features(timbre: Timbre) -> u32 {
    use super::voice::features::*;
    match timbre {
        Timbre::Pad => SAW | SAW2 | F1,
        Timbre::Pluck => SAW | PULSE | F1,
        Timbre::Bell => FM,
        Timbre::Drone => PULSE | SAW2 | F1,
        Timbre::Choir => SAW | SAW2 | F1 | F2,
        Timbre::Bass => PULSE | FM | F1,
        Timbre::Wind => NOISE | F1 | F2,
        Timbre::Lead => SAW | FM | F1,
    }
}

/// The fractional part of a non-negative phase below 2^31, as `f32::fract` gives it but
/// without a call to the C library's `truncf` (no SSE4.1 rounding in the portable build).
#[inline]
fn fract(x: f32) -> f32 {
    x - (x as i32) as f32
}

/// One-pole coefficient for a time constant.
#[inline]
pub fn coef(tau_secs: f32, sample_rate: f32) -> f32 {
    1.0 - (-1.0 / (tau_secs.max(1e-5) * sample_rate)).exp()
}

/// A stable pseudo-random value in [0, 1) for (seed, n).
#[inline]
fn hash01(seed: u64, n: u64) -> f32 {
    Rng::derive(seed, n).next_f32()
}
