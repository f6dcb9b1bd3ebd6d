//! Live tests: `tapestry play` on a private JACK server with the dummy backend, driven by
//! real external clients (`--features jack`). Gathered in one binary.
#![cfg(feature = "jack")]

#[path = "../common/mod.rs"]
mod common;

mod jack_buffer;
mod live_e2e_jack;
mod live_jack;
mod live_midi_jack;
mod live_recovery_jack;
mod live_view_jack;
mod midi_once_jack;
mod room_jack;
