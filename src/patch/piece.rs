//! The `[piece]` and `[master]` tables: the piece's name, capacity, seed and loudness, and
//! the master chain's reverb and ceiling.

use super::opt_in_range;
use super::schema::{MasterFile, PieceFile, MAX_TITLE_CHARS};
use crate::diagnostic::Reporter;
use crate::engine::master::{MasterChain, MasterSettings, ReverbKind};

/// The resolved `[piece]`.
pub(super) struct Piece {
    /// Participant capacity.
    pub capacity: usize,
    /// Master seed.
    pub seed: u64,
    /// Loudness target of the finished piece.
    pub loudness_target_lufs: f32,
    /// Weight of a participant's personal mood in its own voice at zero unity, 0..1.
    pub individuality: f32,
}

/// Validates `[piece]` (its name is taken as it is once valid).
pub(super) fn resolve(piece: &PieceFile, r: &mut Reporter) -> Piece {
    if piece.name.get_ref().trim().is_empty() {
        r.error(piece.name.span(), "piece.name", "expected a non-empty name");
    } else if piece.name.get_ref().chars().count() > MAX_TITLE_CHARS {
        r.error(
            piece.name.span(),
            "piece.name",
            format!("expected a name of at most {MAX_TITLE_CHARS} characters"),
        );
    }
    let capacity = match &piece.capacity {
        Some(c) => {
            let v = *c.get_ref();
            if !(1..=1024).contains(&v) {
                r.error(
                    c.span(),
                    "piece.capacity",
                    format!("expected 1 to 1024 participants, found {v}"),
                );
            }
            v.clamp(1, 1024) as usize
        }
        None => 64,
    };
    let seed = piece.seed.as_ref().map_or(0, |s| *s.get_ref() as u64);
    let loudness_target_lufs = opt_in_range(
        r,
        &piece.loudness_target_lufs,
        "piece.loudness_target_lufs",
        -40.0,
        -6.0,
        -16.0,
    );
    let individuality = opt_in_range(
        r,
        &piece.individuality,
        "piece.individuality",
        0.0,
        1.0,
        0.7,
    );
    Piece {
        capacity,
        seed,
        loudness_target_lufs,
        individuality,
    }
}

/// Validates `[master]` (defaults without one). Returns the master settings and the reverb
/// mix, which becomes a default mapping.
pub(super) fn resolve_master(
    master: Option<&MasterFile>,
    loudness_target_lufs: f32,
    r: &mut Reporter,
) -> (MasterSettings, f32) {
    let m = master.cloned().unwrap_or_default();
    if let Some(old) = &m.ceiling_dbfs {
        r.error(
            old.span(),
            "master.ceiling_dbfs",
            "renamed: the ceiling is a true-peak level now; write ceiling_dbtp (-20 to 0 dBTP)",
        );
    }
    let master = MasterSettings {
        loudness_target_lufs,
        ceiling_dbtp: opt_in_range(r, &m.ceiling_dbtp, "master.ceiling_dbtp", -20.0, 0.0, -1.0),
        chain: MasterChain::default(),
        leveler: m.leveler.unwrap_or(true),
        room_size: opt_in_range(r, &m.room_size, "master.room_size", 5.0, 100.0, 20.0),
        reverb_time_secs: opt_in_range(
            r,
            &m.reverb_time_secs,
            "master.reverb_time_secs",
            0.1,
            20.0,
            3.0,
        ),
        reverb_damping: opt_in_range(r, &m.damping, "master.damping", 0.0, 1.0, 0.5),
        reverb: match &m.reverb {
            None => ReverbKind::Hall,
            Some(v) => match v.get_ref().as_str() {
                "hall" => ReverbKind::Hall,
                "fundsp" => ReverbKind::Fundsp,
                other => {
                    r.error(
                        v.span(),
                        "master.reverb",
                        format!("unknown reverb \"{other}\"; expected \"hall\" or \"fundsp\""),
                    );
                    ReverbKind::Hall
                }
            },
        },
    };
    let reverb_mix = opt_in_range(r, &m.reverb_mix, "master.reverb_mix", 0.0, 1.0, 0.25);
    (master, reverb_mix)
}
