//! The `[[archetypes]]` tables: the kinds of voice a participant can join as, validated and
//! resolved into [`ArchetypeConfig`]s, with each timbre's defaults.

use super::schema::{ArchetypeFile, MotifFile, MAX_ARCHETYPES};
use super::{at_most, check_name, name_list, opt_in_range};
use crate::diagnostic::Reporter;
use crate::engine::config::{
    ArchetypeConfig, Role, Timbre, DEFAULT_HOLD_BARS, DEFAULT_RESUME_BARS, HOLD_BARS_RANGE,
    MAX_RESUME_BARS,
};
use crate::engine::instrument::InstrumentDef;
use crate::score::MotifStyle;
use toml::Spanned;

/// Every `[[archetypes]]`: at least one, at most [`MAX_ARCHETYPES`], unique ids. Returns the
/// archetypes and their ids.
pub(super) fn resolve(
    list: &[ArchetypeFile],
    instruments: &Instruments,
    r: &mut Reporter,
) -> (Vec<ArchetypeConfig>, Vec<String>) {
    let mut archetypes = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    if list.is_empty() {
        r.error(
            0..0,
            "archetypes",
            "expected at least one [[archetypes]] entry",
        );
    }
    at_most(
        r,
        list.len(),
        MAX_ARCHETYPES,
        || list[MAX_ARCHETYPES].id.span(),
        "archetypes",
    );
    for (i, a) in list.iter().enumerate().take(MAX_ARCHETYPES) {
        let key = format!("archetypes[{i}]");
        check_name(r, &a.id, &format!("{key}.id"));
        if ids.contains(a.id.get_ref()) {
            r.error(
                a.id.span(),
                format!("{key}.id"),
                format!(
                    "archetype \"{}\" is defined twice; expected unique ids",
                    a.id.get_ref()
                ),
            );
        }
        ids.push(a.id.get_ref().clone());
        archetypes.push(archetype(a, &key, instruments, r));
    }
    (archetypes, ids)
}

/// The designed instruments an archetype may name.
pub(super) struct Instruments<'a> {
    /// Their definitions.
    pub defs: &'a [InstrumentDef],
    /// Their names.
    pub names: &'a [String],
}

/// One archetype's timbre, role, register, motif, envelope and sound; `key` names it.
fn archetype(
    a: &ArchetypeFile,
    key: &str,
    instruments: &Instruments,
    r: &mut Reporter,
) -> ArchetypeConfig {
    let instrument = instrument(a, key, instruments, r);
    let (timbre, role) = timbre_and_role(a, key, instrument, r);
    let (register_low, register_high) = register(a, key, r);
    let env = lane_envelope(instrument, instruments, timbre);
    let motif = match &a.motif {
        Some(mf) => motif(mf, key, r),
        None => MotifStyle {
            steps: 8,
            density: 0.5,
            range: 3,
            leap_chance: 0.2,
            repeat_chance: 0.15,
        },
    };
    let mut num = |v: &Option<Spanned<f64>>, name: &str, lo: f64, hi: f64, default: f32| {
        opt_in_range(r, v, &format!("{key}.{name}"), lo, hi, default)
    };
    ArchetypeConfig {
        timbre,
        role,
        register_low,
        register_high,
        motif,
        grid_beats: num(
            &a.grid_beats,
            "grid_beats",
            0.125,
            16.0,
            default_grid(timbre),
        ),
        level_db: num(&a.level_db, "level_db", -40.0, 12.0, 0.0),
        free: a.free.unwrap_or(false),
        attack_secs: num(&a.attack_secs, "attack_secs", 0.001, 20.0, env[0]),
        decay_secs: num(&a.decay_secs, "decay_secs", 0.005, 20.0, env[1]),
        sustain: num(&a.sustain, "sustain", 0.0, 1.0, env[2]),
        release_secs: num(&a.release_secs, "release_secs", 0.005, 20.0, env[3]),
        brightness_oct: num(&a.brightness_oct, "brightness_oct", -4.0, 4.0, 0.0),
        detune_cents: num(&a.detune_cents, "detune_cents", 0.0, 100.0, 8.0),
        resume_bars: num(
            &a.resume_bars,
            "resume_bars",
            0.0,
            MAX_RESUME_BARS as f64,
            DEFAULT_RESUME_BARS,
        ),
        instrument,
        hold_bars: num(
            &a.hold_bars,
            "hold_bars",
            HOLD_BARS_RANGE.0 as f64,
            HOLD_BARS_RANGE.1 as f64,
            DEFAULT_HOLD_BARS,
        ),
    }
}

/// The lane's timbre and the archetype's role. A designed instrument plays its role's part
/// (melody unless it says): the bass line, held chords, motifs or long notes.
fn timbre_and_role(
    a: &ArchetypeFile,
    key: &str,
    instrument: Option<u16>,
    r: &mut Reporter,
) -> (Timbre, Role) {
    if instrument.is_none() {
        let timbre = timbre(a, key, r);
        return (timbre, role(a, key, timbre, r));
    }
    let role = role(a, key, Timbre::Lead, r);
    let timbre = match role {
        Role::Bass => Timbre::Bass,
        Role::Harmony => Timbre::Pad,
        Role::Melody => Timbre::Lead,
        Role::Texture => Timbre::Wind,
    };
    (timbre, role)
}

/// `register = [low, high]`: MIDI notes within 12..120 spanning at least 5 semitones.
fn register(a: &ArchetypeFile, key: &str, r: &mut Reporter) -> (u8, u8) {
    let [lo, hi] = a.register.get_ref().0;
    if !(12..=120).contains(&lo) || !(12..=120).contains(&hi) || hi < lo + 5 {
        r.error(a.register.span(), format!("{key}.register"), format!("expected [low, high] MIDI notes within 12..120 spanning at least 5 semitones, found [{lo}, {hi}]"));
    }
    (lo.clamp(12, 120) as u8, hi.clamp(12, 120) as u8)
}

/// Default attack, decay, sustain and release of the lane. A designed instrument's own
/// envelopes shape it; the lane's only gates it, and lets it ring for its longest release.
fn lane_envelope(instrument: Option<u16>, instruments: &Instruments, timbre: Timbre) -> [f32; 4] {
    match instrument {
        Some(i) => {
            let release = instruments.defs[i as usize].longest_release_secs();
            [0.003, 0.005, 1.0, release.unwrap_or(0.3).clamp(0.005, 20.0)]
        }
        None => default_envelope(timbre),
    }
}

/// `instrument`, the name of an `[instruments.<name>]`; an archetype names it or a
/// `timbre`, never both.
fn instrument(
    a: &ArchetypeFile,
    key: &str,
    instruments: &Instruments,
    r: &mut Reporter,
) -> Option<u16> {
    let name = a.instrument.as_ref()?;
    if let Some(t) = &a.timbre {
        r.error(
            t.span(),
            format!("{key}.timbre"),
            "expected either a timbre or an instrument, not both",
        );
    }
    match instruments.names.iter().position(|n| n == name.get_ref()) {
        Some(i) => Some(i as u16),
        None => {
            let names: Vec<&str> = instruments.names.iter().map(String::as_str).collect();
            r.error(
                name.span(),
                format!("{key}.instrument"),
                format!(
                    "unknown instrument \"{}\"; expected one of the [instruments.<name>] tables: {}",
                    name.get_ref(),
                    if names.is_empty() { "none is defined".to_string() } else { name_list(&names) }
                ),
            );
            None
        }
    }
}

/// `timbre`, one of [`Timbre::ALL`].
fn timbre(a: &ArchetypeFile, key: &str, r: &mut Reporter) -> Timbre {
    let names: Vec<&str> = Timbre::ALL.iter().map(|(_, n)| *n).collect();
    let Some(timbre) = &a.timbre else {
        r.error(
            a.id.span(),
            format!("{key}.timbre"),
            format!(
                "expected a timbre ({}) or an instrument = \"<name>\"",
                name_list(&names)
            ),
        );
        return Timbre::Pad;
    };
    match Timbre::ALL.iter().find(|(_, n)| n == timbre.get_ref()) {
        Some((t, _)) => *t,
        None => {
            r.error(
                timbre.span(),
                format!("{key}.timbre"),
                format!(
                    "unknown timbre \"{}\"; expected one of {}",
                    timbre.get_ref(),
                    name_list(&names)
                ),
            );
            Timbre::Pad
        }
    }
}

/// `role`, one of [`Role::ALL`]; without one, the timbre's usual role.
fn role(a: &ArchetypeFile, key: &str, timbre: Timbre, r: &mut Reporter) -> Role {
    match &a.role {
        Some(rl) => match Role::ALL.iter().find(|(_, n)| n == rl.get_ref()) {
            Some((x, _)) => *x,
            None => {
                let names: Vec<&str> = Role::ALL.iter().map(|(_, n)| *n).collect();
                r.error(
                    rl.span(),
                    format!("{key}.role"),
                    format!(
                        "unknown role \"{}\"; expected one of {}",
                        rl.get_ref(),
                        name_list(&names)
                    ),
                );
                Role::Harmony
            }
        },
        None => default_role(timbre),
    }
}

/// `[archetypes.motif]`: the shape of each participant's personal motif.
fn motif(mf: &MotifFile, key: &str, r: &mut Reporter) -> MotifStyle {
    MotifStyle {
        steps: {
            let v = mf.steps.as_ref().map_or(8, |s| *s.get_ref());
            if !(1..=16).contains(&v) {
                r.error(
                    mf.steps.as_ref().map_or(0..0, |s| s.span()),
                    format!("{key}.motif.steps"),
                    format!("expected 1 to 16 steps, found {v}"),
                );
            }
            v.clamp(1, 16) as u8
        },
        density: opt_in_range(
            r,
            &mf.density,
            &format!("{key}.motif.density"),
            0.0,
            1.0,
            0.5,
        ),
        range: opt_in_range(r, &mf.range, &format!("{key}.motif.range"), 1.0, 8.0, 3.0) as u8,
        leap_chance: opt_in_range(
            r,
            &mf.leap_chance,
            &format!("{key}.motif.leap_chance"),
            0.0,
            1.0,
            0.2,
        ),
        repeat_chance: opt_in_range(
            r,
            &mf.repeat_chance,
            &format!("{key}.motif.repeat_chance"),
            0.0,
            1.0,
            0.15,
        ),
    }
}

fn default_role(t: Timbre) -> Role {
    match t {
        Timbre::Bass | Timbre::Drone => Role::Bass,
        Timbre::Pad | Timbre::Choir => Role::Harmony,
        Timbre::Pluck | Timbre::Bell | Timbre::Lead => Role::Melody,
        Timbre::Wind => Role::Texture,
    }
}

fn default_grid(t: Timbre) -> f32 {
    match t {
        Timbre::Pluck => 0.5,
        Timbre::Bell => 1.0,
        Timbre::Bass => 1.0,
        Timbre::Lead => 1.0,
        Timbre::Choir => 2.0,
        Timbre::Wind => 4.0,
        Timbre::Pad | Timbre::Drone => 4.0,
    }
}

/// Attack, decay, sustain, release of each timbre when the patch does not say.
fn default_envelope(t: Timbre) -> [f32; 4] {
    match t {
        Timbre::Pad => [1.5, 1.0, 0.85, 2.5],
        Timbre::Pluck => [0.003, 0.5, 0.0, 0.3],
        Timbre::Bell => [0.002, 2.5, 0.0, 2.0],
        Timbre::Drone => [4.0, 1.0, 1.0, 5.0],
        Timbre::Choir => [0.9, 1.0, 0.9, 1.8],
        Timbre::Bass => [0.008, 0.3, 0.65, 0.15],
        Timbre::Wind => [1.5, 1.0, 0.85, 2.5],
        Timbre::Lead => [0.04, 0.4, 0.8, 0.5],
    }
}
