//! The performer's console: keys turned into actions, and actions into engine commands. It
//! runs on the show loop's thread, never on the audio thread; its commands go through the
//! controller's bounded ring like any other input's, so the engine's journal records them
//! and a `--record`ed show re-renders with them.

use crate::control::{Command, MoodTarget};
use crate::status_view::{Selection, Snapshot};

/// A key as the console reads it (`play` maps the terminal's key events to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Escape.
    Esc,
    /// Ctrl-C (raw mode turns it into a key).
    CtrlC,
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// End the show.
    Quit,
    /// Show or hide the keys.
    ToggleHelp,
    /// Cue the next section in patch order (wrapping), at the next bar line.
    CueNext,
    /// Cue the previous section in patch order (wrapping).
    CuePrevious,
    /// Select the next mood dimension.
    NextDim,
    /// Select the previous mood dimension.
    PreviousDim,
    /// Raise the selected dimension's communal value by [`NUDGE_FRACTION`] of its range.
    NudgeUp,
    /// Lower it by as much.
    NudgeDown,
    /// Hand the selected dimension back to the crowd (release the console's override).
    ReleaseMood,
}

impl Action {
    /// The action a key stands for, if any (see [`crate::status_view::KEYS`]).
    pub fn for_key(key: Key) -> Option<Action> {
        Some(match key {
            Key::Char('q') | Key::CtrlC => Action::Quit,
            Key::Char('?') => Action::ToggleHelp,
            Key::Esc => Action::ToggleHelp,
            Key::Char('n') => Action::CueNext,
            Key::Char('p') => Action::CuePrevious,
            Key::Down => Action::NextDim,
            Key::Up => Action::PreviousDim,
            Key::Char('+') | Key::Char('=') => Action::NudgeUp,
            Key::Char('-') => Action::NudgeDown,
            Key::Char('r') => Action::ReleaseMood,
            _ => return None,
        })
    }
}

/// Share of a dimension's range that one nudge moves its communal value.
pub const NUDGE_FRACTION: f32 = 0.05;
/// Ramp of a nudge, seconds (the engine's smoothing applies on top).
pub const NUDGE_RAMP_SECS: f32 = 0.25;

/// What the console made of an action.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Send this to the engine.
    Send(Command),
    /// End the show.
    Quit,
    /// Only the view changed (selection, help).
    Redraw,
    /// Nothing to do (escape with no help shown, a cue with one section).
    Nothing,
}

/// The console's state between keys: the selection and the communal values it set.
#[derive(Clone, Debug)]
pub struct Console {
    /// What is selected, and whether the help is up; the view draws it.
    pub selection: Selection,
    /// Per dimension: the communal value the console last asked for, while it holds it
    /// (nudges build on it, not on the smoothed value the engine publishes).
    targets: Vec<Option<f32>>,
    sections: usize,
}

impl Console {
    /// A console for a patch with `dims` mood dimensions and `sections` sections.
    pub fn new(dims: usize, sections: usize) -> Console {
        Console {
            selection: Selection::default(),
            targets: vec![None; dims],
            sections,
        }
    }

    /// Carries out `action` on what `snapshot` shows.
    pub fn act(&mut self, action: Action, snapshot: &Snapshot) -> Outcome {
        let dims = self.targets.len();
        let dim = self.selection.dim.min(dims.saturating_sub(1));
        match action {
            Action::Quit => Outcome::Quit,
            Action::ToggleHelp => {
                self.selection.help = !self.selection.help;
                Outcome::Redraw
            }
            Action::CueNext | Action::CuePrevious => self.cue(action, snapshot),
            Action::NextDim | Action::PreviousDim if dims > 0 => {
                let step = if action == Action::NextDim {
                    1
                } else {
                    dims - 1
                };
                self.selection.dim = (dim + step) % dims;
                Outcome::Redraw
            }
            Action::NudgeUp | Action::NudgeDown if dims > 0 => {
                let Some(row) = snapshot.mood.get(dim) else {
                    return Outcome::Nothing;
                };
                let sign = if action == Action::NudgeUp { 1.0 } else { -1.0 };
                let from = self.targets[dim].unwrap_or(row.value);
                let value =
                    (from + sign * NUDGE_FRACTION * (row.max - row.min)).clamp(row.min, row.max);
                self.targets[dim] = Some(value);
                Outcome::Send(Command::Mood {
                    target: MoodTarget::Communal,
                    dim: dim as u8,
                    value,
                    ramp_secs: NUDGE_RAMP_SECS,
                })
            }
            Action::ReleaseMood if dims > 0 => {
                self.targets[dim] = None;
                Outcome::Send(Command::ReleaseCommunal { dim: dim as u8 })
            }
            _ => Outcome::Nothing,
        }
    }

    /// The next or previous section in patch order, from the one playing.
    fn cue(&self, action: Action, snapshot: &Snapshot) -> Outcome {
        let n = self.sections;
        if n < 2 {
            return Outcome::Nothing;
        }
        let current = snapshot.section_index % n;
        let section = if action == Action::CueNext {
            (current + 1) % n
        } else {
            (current + n - 1) % n
        };
        Outcome::Send(Command::Cue {
            section: section as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_view::MoodRow;

    fn snapshot() -> Snapshot {
        Snapshot {
            section_index: 2,
            mood: vec![
                MoodRow {
                    name: "energy".into(),
                    value: 0.5,
                    min: 0.0,
                    max: 1.0,
                },
                MoodRow {
                    name: "tempo".into(),
                    value: 118.0,
                    min: 60.0,
                    max: 180.0,
                },
            ],
            ..Snapshot::default()
        }
    }

    fn act(console: &mut Console, key: Key) -> Outcome {
        console.act(Action::for_key(key).unwrap(), &snapshot())
    }

    #[test]
    fn cues_walk_the_sections_in_patch_order_and_wrap() {
        let mut console = Console::new(2, 3);
        assert_eq!(
            act(&mut console, Key::Char('n')),
            Outcome::Send(Command::Cue { section: 0 })
        );
        assert_eq!(
            act(&mut console, Key::Char('p')),
            Outcome::Send(Command::Cue { section: 1 })
        );
        assert_eq!(
            Console::new(2, 1).act(Action::CueNext, &snapshot()),
            Outcome::Nothing
        );
    }

    #[test]
    fn nudges_build_on_the_last_target_stay_in_range_and_release() {
        let mut console = Console::new(2, 3);
        let mood = |o: Outcome| match o {
            Outcome::Send(Command::Mood {
                target: MoodTarget::Communal,
                dim,
                value,
                ..
            }) => (dim, value),
            other => panic!("not a communal mood: {other:?}"),
        };
        let near = |(dim, value): (u8, f32), (want_dim, want): (u8, f32)| {
            assert_eq!(dim, want_dim);
            assert!((value - want).abs() < 1e-4, "{value} for {want}");
        };
        near(mood(act(&mut console, Key::Char('+'))), (0, 0.55));
        near(mood(act(&mut console, Key::Char('+'))), (0, 0.60));
        assert_eq!(act(&mut console, Key::Down), Outcome::Redraw);
        // 5 % of 60..180 is 6 BPM
        near(mood(act(&mut console, Key::Char('-'))), (1, 112.0));
        for _ in 0..40 {
            act(&mut console, Key::Char('-'));
        }
        assert_eq!(mood(act(&mut console, Key::Char('-'))), (1, 60.0));
        assert_eq!(
            act(&mut console, Key::Char('r')),
            Outcome::Send(Command::ReleaseCommunal { dim: 1 })
        );
        // released: the next nudge starts from what the engine shows again
        near(mood(act(&mut console, Key::Char('+'))), (1, 124.0));
        assert_eq!(act(&mut console, Key::Up), Outcome::Redraw);
        assert_eq!(act(&mut console, Key::Up), Outcome::Redraw);
        assert_eq!(
            console.selection.dim, 1,
            "up from the first wraps to the last"
        );
    }

    #[test]
    fn help_quit_and_unknown_keys() {
        let mut console = Console::new(2, 3);
        assert_eq!(act(&mut console, Key::Char('?')), Outcome::Redraw);
        assert!(console.selection.help);
        assert_eq!(act(&mut console, Key::Esc), Outcome::Redraw);
        assert!(!console.selection.help);
        assert_eq!(act(&mut console, Key::Char('q')), Outcome::Quit);
        assert_eq!(act(&mut console, Key::CtrlC), Outcome::Quit);
        assert_eq!(Action::for_key(Key::Char('z')), None);
    }
}
