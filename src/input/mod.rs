//! Live inputs on the control side: each turns what it receives into [`Command`]s for a
//! [`Controller`]. Nothing here runs on the audio thread; device code (ports, sockets) stays
//! at the edges so the logic can be tested without hardware.
//!
//! [`Command`]: crate::Command
//! [`Controller`]: crate::Controller

pub mod midi;
