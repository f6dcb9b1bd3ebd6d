//! Recordings made by sox, a tool nobody here wrote, for the room tests.

use std::path::Path;
use std::process::Command;

/// Runs sox with `-R`, so that its noise is the same every run.
pub fn sox(args: &[&str]) {
    let status = Command::new("sox").arg("-R").args(args).status();
    match status {
        Ok(s) => assert!(s.success(), "sox {args:?} failed"),
        Err(e) => panic!("sox (Debian package sox) is needed for this test: {e}"),
    }
}

/// A clap track: a 20 ms noise burst at `gain_db` followed by `gap_secs` of silence, played
/// `1 + repeats` times, mono at `rate`. The single clap is kept beside `out`.
pub fn claps(out: &Path, rate: &str, gain_db: &str, gap_secs: &str, repeats: &str) {
    let clap = out.with_extension("clap.wav");
    let (clap, out) = (clap.to_str().unwrap(), out.to_str().unwrap());
    sox(&[
        "-n",
        "-r",
        rate,
        "-c",
        "1",
        clap,
        "synth",
        "0.02",
        "whitenoise",
        "fade",
        "q",
        "0.001",
        "0.02",
        "0.018",
        "gain",
        gain_db,
    ]);
    sox(&[clap, out, "pad", "0", gap_secs, "repeat", repeats]);
}
