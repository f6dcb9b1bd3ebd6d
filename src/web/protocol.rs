//! The JSON frames of the WebSocket protocol (docs/web.md): what a phone or the conductor's
//! page sends, and what the server answers. Every frame is one JSON object whose `t` names
//! its kind; unknown kinds, unknown keys and wrong types make a frame malformed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A frame from a browser.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Join as a new participant, or resume the one `token` names.
    Join {
        /// The token a previous `welcome` gave, kept by the browser.
        #[serde(default)]
        token: Option<String>,
    },
    /// Set the sender's own mood: dimension name → value in the dimension's units.
    Mood {
        /// Values by dimension name.
        values: BTreeMap<String, f32>,
    },
    /// Play a note in the communal scale: `x` 0..1 across the voice's register.
    Tap {
        /// Position across the play surface, 0 (lowest) to 1 (highest).
        x: f32,
        /// Loudness 0..1 (default 0.8).
        #[serde(default = "default_velocity")]
        velocity: f32,
    },
    /// Leave now (the voice fades out).
    Leave,
    /// Become the conductor with the secret the conductor URL carries.
    Conductor {
        /// The secret.
        key: String,
    },
    /// Conductor: set the communal mood (overrides the crowd on those dimensions).
    Communal {
        /// Values by dimension name.
        values: BTreeMap<String, f32>,
        /// Linear ramp time in seconds (0..60, default 0).
        #[serde(default)]
        ramp_secs: f32,
    },
    /// Conductor: hand a dimension back to the crowd.
    Release {
        /// Dimension name.
        dim: String,
    },
    /// Conductor: move to a section at the next bar line.
    Cue {
        /// Section name.
        section: String,
    },
    /// Conductor: make a phone's participant leave (its session ends).
    Remove {
        /// The participant id.
        participant: u32,
    },
}

fn default_velocity() -> f32 {
    0.8
}

/// A mood dimension as the pages show it.
#[derive(Clone, Debug, Serialize)]
pub struct DimInfo {
    /// Name.
    pub name: String,
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
}

/// The voice a phone's participant was given.
#[derive(Clone, Debug, Serialize)]
pub struct VoiceInfo {
    /// Archetype id in the patch.
    pub archetype: String,
    /// Ensemble role (bass, harmony, melody, texture).
    pub role: &'static str,
    /// Timbre family.
    pub timbre: &'static str,
}

/// A frame to a browser.
#[derive(Debug, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The answer to `join`: who the phone is and what it can steer.
    Welcome {
        /// Keep it to resume the same participant after a reconnect.
        token: &'a str,
        /// The participant id.
        participant: u32,
        /// True when an existing participant was resumed.
        resumed: bool,
        /// Mood dimensions.
        dims: &'a [DimInfo],
        /// The two dimensions the XY pad moves (x, then y).
        pad: [&'a str; 2],
        /// The voice, once the engine has assigned it.
        voice: Option<&'a VoiceInfo>,
    },
    /// The engine assigned the participant's voice.
    Voice(&'a VoiceInfo),
    /// The engine refused the join (e.g. `capacity_reached`); the session is over.
    Refused {
        /// The engine's reason.
        reason: &'a str,
    },
    /// The conductor removed this participant; the session is over.
    Removed,
    /// A frame was not acted on.
    Error {
        /// Why, e.g. `malformed`, `not_joined`, `conductor_only`, `over_rate`.
        reason: &'a str,
    },
    /// The answer to `conductor`.
    Conductor {
        /// Whether the key was right.
        ok: bool,
    },
}

impl ServerFrame<'_> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // serializing these types cannot fail (string keys, finite or null numbers)
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientFrame, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn frames_parse_and_strangers_are_malformed() {
        assert_eq!(
            parse(r#"{"t":"join"}"#).unwrap(),
            ClientFrame::Join { token: None }
        );
        assert_eq!(parse(r#"{"t":"leave"}"#).unwrap(), ClientFrame::Leave);
        assert_eq!(
            parse(r#"{"t":"tap","x":0.5}"#).unwrap(),
            ClientFrame::Tap {
                x: 0.5,
                velocity: 0.8
            }
        );
        let mood = parse(r#"{"t":"mood","values":{"energy":0.7}}"#).unwrap();
        assert!(matches!(mood, ClientFrame::Mood { values } if values["energy"] == 0.7));
        // a phone cannot name another participant: the key is unknown
        assert!(parse(r#"{"t":"mood","values":{"energy":1},"participant":1000001}"#).is_err());
        assert!(parse(r#"{"t":"tap","x":0.5,"participant":7}"#).is_err());
        assert!(parse(r#"{"t":"fly"}"#).is_err());
        assert!(parse(r#"{"t":"tap","x":"high"}"#).is_err());
        assert!(parse(r#"[1,2]"#).is_err());
    }

    #[test]
    fn server_frames_carry_their_kind() {
        let json = ServerFrame::Error {
            reason: "over_rate",
        }
        .to_json();
        assert_eq!(json, r#"{"t":"error","reason":"over_rate"}"#);
        let voice = VoiceInfo {
            archetype: "bell".into(),
            role: "melody",
            timbre: "bell",
        };
        assert_eq!(
            ServerFrame::Voice(&voice).to_json(),
            r#"{"t":"voice","archetype":"bell","role":"melody","timbre":"bell"}"#
        );
    }
}
