//! The audio device on JACK as a performer meets it: a `--buffer` the server does not run at
//! is adapted to the server's with a line that says so, and with no server `play` says "JACK
//! server not running". Needs `--features jack` and jackd2.
#![cfg(feature = "jack")]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::jack::{run_within, Helper, JackServer};

fn play_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "play",
        "patches/minimal.toml",
        "--host",
        "JACK",
        "--no-midi",
        "--no-osc",
        "--plain",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn a_buffer_the_server_does_not_run_at_is_adapted_and_said() {
    let server = JackServer::start("tapestry-buffer");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut play = Helper(
        server
            .command(env!("CARGO_BIN_EXE_tapestry"))
            .current_dir(root)
            .args(play_args(&["--duration", "3", "--buffer", "128"]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // cpal names the client cpal_client_<pid>_out; its ports are out_0 and out_1
    let ports = server.wait_port_count("tapestry's audio ports", 2, |p| {
        p.starts_with("cpal_client") && p.contains(":out_")
    });
    assert!(
        ports[0].ends_with(":out_0") && ports[1].ends_with(":out_1"),
        "{ports:?}"
    );
    let status = play.0.wait().unwrap();
    let mut log = String::new();
    use std::io::Read;
    play.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "tapestry play failed: {log}");
    assert!(
        log.contains(
            "--buffer 128: the audio server runs at 256 frames; playing with 256-frame buffers"
        ),
        "the adapted buffer is not reported: {log}"
    );
    // the show ran at the server's size: status lines came, no stream errors
    assert!(log.contains("stream errors 0"), "{log}");
}

#[test]
fn jack_without_a_server_says_the_server_is_not_running() {
    let run = run_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_tapestry"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env(
                "JACK_DEFAULT_SERVER",
                format!("nobody-{}", std::process::id()),
            )
            .env("JACK_NO_START_SERVER", "1")
            .args(play_args(&["--duration", "1"])),
        Duration::from_secs(60),
    );
    assert!(run.status.is_some(), "play hung: {}", run.stderr);
    assert!(!run.status.unwrap().success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("JACK server not running"),
        "stderr: {}",
        run.stderr
    );
}
