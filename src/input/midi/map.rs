//! [`MidiMap`]: what a patch's `[midi]` section resolves to. Plain data with names already
//! turned into the patch's indices; build one with [`Patch::midi`](crate::Patch::midi).

use crate::control::{Expression, ParticipantId};

/// Routes from MIDI to the engine, resolved and validated from a patch's `[midi]` section.
/// Channels are wire values 0..=15.
#[derive(Clone, Debug, PartialEq)]
pub struct MidiMap {
    /// Port name substrings to listen on; `"*"` means every port.
    pub ports: Vec<String>,
    /// Name of the virtual input port to open where the platform supports one.
    pub virtual_port: String,
    /// The conductor's channel: its controls set communal mood, its notes and program
    /// changes cue sections.
    pub conductor_channel: Option<u8>,
    /// Channel (and/or port) → participant, first match in file order.
    pub participants: Vec<ParticipantRoute>,
    /// Control changes → mood dimensions; one controller may drive several.
    pub controls: Vec<ControlRoute>,
    /// Conductor notes and program changes → section cues.
    pub cues: Vec<CueRoute>,
    /// Pitch-bend range in cents at full deflection, either way.
    pub pitch_bend_cents: f32,
    /// What the mod wheel (CC 1, with CC 33 as its fine part) drives on a participant's
    /// channel when no control maps it to mood; `None`: nothing.
    pub mod_wheel: Option<ModWheel>,
}

impl Default for MidiMap {
    /// Every port, a virtual port named "tapestry", no mappings, ±200 cents of bend, the
    /// mod wheel on vibrato.
    fn default() -> Self {
        Self {
            ports: vec!["*".into()],
            virtual_port: "tapestry".into(),
            conductor_channel: None,
            participants: Vec::new(),
            controls: Vec::new(),
            cues: Vec::new(),
            pitch_bend_cents: 200.0,
            mod_wheel: Some(ModWheel::Vibrato),
        }
    }
}

impl MidiMap {
    /// Whether to open a port with this name: `"*"` takes every port, any other entry a port
    /// whose name contains it (case-insensitively).
    pub fn listens_to(&self, port: &str) -> bool {
        self.ports.iter().any(|p| p == "*" || contains_ci(port, p))
    }

    /// A 14-bit pitch bend (-8192..=8191, 0 at rest) in semitones: both extremes reach
    /// `pitch_bend_cents`.
    pub fn bend_semitones(&self, value: i16) -> f32 {
        let full = if value < 0 { 8192.0 } else { 8191.0 };
        (value as f32 / full).clamp(-1.0, 1.0) * self.pitch_bend_cents / 100.0
    }

    /// The participant route for a channel on a port, if any (first match in file order).
    pub fn participant(&self, port: &str, channel: u8) -> Option<&ParticipantRoute> {
        self.participants.iter().find(|r| r.matches(port, channel))
    }
}

/// `haystack` contains `needle`, ignoring ASCII case.
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

fn port_matches(filter: &Option<String>, port: &str) -> bool {
    filter.as_deref().is_none_or(|f| contains_ci(port, f))
}

/// `[[midi.participants]]`: notes on a channel (of a port) play a participant's voice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantRoute {
    /// Only events from ports whose name contains this (`None`: any port).
    pub port: Option<String>,
    /// Only events on this channel, 0..=15 (`None`: any channel of the port).
    pub channel: Option<u8>,
    /// The participant.
    pub participant: ParticipantId,
    /// Archetype index to join with on the first note (`None`: the engine picks).
    pub archetype: Option<u16>,
}

impl ParticipantRoute {
    /// Whether an event on `channel` from `port` belongs to this route.
    pub fn matches(&self, port: &str, channel: u8) -> bool {
        self.channel.is_none_or(|c| c == channel) && port_matches(&self.port, port)
    }
}

/// Whose mood a control sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlTarget {
    /// The communal mood (a conductor override).
    Conductor,
    /// The mood of the participant the event's channel (and port) is mapped to.
    Participant,
}

/// `[[midi.controls]]`: a controller sets a mood dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlRoute {
    /// Only events from ports whose name contains this (`None`: any port).
    pub port: Option<String>,
    /// Only events on this channel, 0..=15 (`None`: any channel).
    pub channel: Option<u8>,
    /// Controller number, 0..=119.
    pub cc: u8,
    /// Mood dimension index.
    pub dim: u8,
    /// Values at controller 0 and 127 (may be inverted).
    pub range: [f32; 2],
    /// Whose mood.
    pub target: ControlTarget,
}

impl ControlRoute {
    /// Whether a control change belongs to this route.
    pub fn matches(&self, port: &str, channel: u8, controller: u8) -> bool {
        self.cc == controller
            && self.channel.is_none_or(|c| c == channel)
            && port_matches(&self.port, port)
    }

    /// The dimension value for a controller value 0..=127.
    pub fn value(&self, cc_value: u8) -> f32 {
        let t = cc_value.min(127) as f32 / 127.0;
        self.range[0] * (1.0 - t) + self.range[1] * t
    }
}

/// What cues a section on the conductor channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CueTrigger {
    /// A note-on of this key.
    Note(u8),
    /// A program change to this program.
    Program(u8),
}

/// `[[midi.cues]]`: a conductor note or program change cues a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CueRoute {
    /// What triggers it.
    pub trigger: CueTrigger,
    /// Section index.
    pub section: u16,
}

/// What the mod wheel drives on a participant's voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModWheel {
    /// Vibrato depth (with a touch of brightness): [`Expression::Vibrato`].
    Vibrato,
    /// Filter brightness: [`Expression::Brightness`].
    Brightness,
}

impl ModWheel {
    /// Every choice with its name in the patch.
    pub const ALL: [(ModWheel, &'static str); 2] = [
        (ModWheel::Vibrato, "vibrato"),
        (ModWheel::Brightness, "brightness"),
    ];

    /// The engine's expressive control it moves.
    pub fn expression(self) -> Expression {
        match self {
            ModWheel::Vibrato => Expression::Vibrato,
            ModWheel::Brightness => Expression::Brightness,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_match_by_substring_ignoring_case() {
        let mut map = MidiMap::default();
        assert!(map.listens_to("Anything 0"));
        map.ports = vec!["launchkey".into(), "nanoKONTROL".into()];
        assert!(map.listens_to("Launchkey Mini MK3 MIDI 1"));
        assert!(map.listens_to("nanoKONTROL2:nanoKONTROL2 _ CTRL 20:0"));
        assert!(!map.listens_to("Midi Through Port-0"));
    }

    #[test]
    fn control_values_scale_into_the_range() {
        let c = ControlRoute {
            port: None,
            channel: None,
            cc: 1,
            dim: 0,
            range: [1.0, -1.0],
            target: ControlTarget::Conductor,
        };
        assert_eq!(c.value(0), 1.0);
        assert_eq!(c.value(127), -1.0);
        assert!(c.value(64).abs() < 0.01);
    }
}
