//! The status view on a real pseudo-terminal (`script`): `tapestry play` draws the full-screen
//! view on the alternate screen, restores the terminal when it ends, and with `--plain` prints
//! log lines instead. Needs `--features jack` and jackd2.
#![cfg(feature = "jack")]

use crate::common::jack::JackServer;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const ENTER_ALTERNATE_SCREEN: &str = "\x1b[?1049h";
const LEAVE_ALTERNATE_SCREEN: &str = "\x1b[?1049l";

/// Runs `tapestry play <args>` on a 120x50 pseudo-terminal, interrupted (Ctrl-C's `SIGINT`)
/// after a while if asked; returns the exit success and everything the terminal received.
fn play_on_a_terminal(
    server: &JackServer,
    args: &str,
    interrupt_after: Option<Duration>,
) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // three join, the second leaves after a second
    let perf = std::env::temp_dir().join(format!("tapestry-view-{}.toml", std::process::id()));
    std::fs::write(
        &perf,
        "version = 1\n\
         [[events]]\ntime = 0.0\ntype = \"join\"\nparticipant = 1\narchetype = \"pad\"\n\
         [[events]]\ntime = 0.0\ntype = \"join\"\nparticipant = 2\narchetype = \"bass\"\n\
         [[events]]\ntime = 0.2\ntype = \"join\"\nparticipant = 3\narchetype = \"bell\"\n\
         [[events]]\ntime = 1.0\ntype = \"leave\"\nparticipant = 2\n",
    )
    .unwrap();
    let command = format!(
        "stty cols 120 rows 50; exec {} play --no-midi --no-osc patches/minimal.toml --host JACK -p {} {args}",
        env!("CARGO_BIN_EXE_tapestry"),
        perf.display()
    );
    // stdin stays open (and empty) until the end: `script` stops at its end of input
    let mut child = server
        .command("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) runs the pseudo-terminal");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    if let Some(after) = interrupt_after {
        sleep(after);
        // `script` runs tapestry as its child (the shell `exec`s it): Ctrl-C's signal to it
        let pgrep = Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&pgrep.stdout).trim().to_string();
        assert!(!pid.is_empty(), "tapestry is not running under script");
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tapestry play on the terminal did not end");
        }
        sleep(Duration::from_millis(20));
    };
    drop(child.stdin.take());
    (status.success(), reader.join().unwrap())
}

#[test]
fn the_view_draws_participants_mood_and_meters_on_a_terminal_and_restores_it() {
    let server = JackServer::start("tapestry-view");
    let (ok, screen) = play_on_a_terminal(&server, "--duration 3", None);
    assert!(ok, "play failed:\n{screen}");
    let entered = screen
        .find(ENTER_ALTERNATE_SCREEN)
        .expect("the alternate screen");
    let left = screen
        .rfind(LEAVE_ALTERNATE_SCREEN)
        .expect("the terminal restored");
    assert!(entered < left);
    let view = &screen[entered..left];
    // ratatui writes only the cells that changed: read the frames through a terminal
    // emulator, as the performer's terminal does
    let mut terminal = vt100::Parser::new(50, 120, 0);
    let mut frames = String::new();
    for chunk in view.as_bytes().chunks(256) {
        terminal.process(chunk);
        frames.push_str(&terminal.screen().contents());
    }
    for shown in [
        "TAPESTRY  \"Minimal\" on jack:output",
        "audio     playing",
        "section   main  bar ",
        "level     L ",
        " LUFS",
        "% now, peak ",
        "xruns ",
        "MOOD",
        "PARTICIPANTS 3",
        "   2 bass",
        "ROOM",
        "(no room analysis)",
    ] {
        assert!(
            frames.contains(shown),
            "the view lacks {shown:?}:\n{frames}"
        );
    }
    // the last frame: two present, the one who left no longer listed; the events at the
    // bottom, the newest on the last row
    let last = terminal.screen().contents();
    let rows: Vec<&str> = last.lines().collect();
    assert!(
        rows.last()
            .unwrap()
            .contains("left: participant 2 at 1.00 s"),
        "{last}"
    );
    for event in [
        "joined: participant 2 as \"bass\" at 0.00 s",
        "joined: participant 3 as \"bell\" at 0.20 s",
    ] {
        assert!(last.contains(event), "{last}");
    }
    let right: Vec<String> = terminal.screen().rows(60, 60).collect();
    let title = right
        .iter()
        .position(|r| r.starts_with("PARTICIPANTS"))
        .unwrap_or_else(|| panic!("no participants in\n{last}"));
    assert!(right[title].starts_with("PARTICIPANTS 2"), "{last}");
    let listed = right[title + 1..].join("\n");
    let listed = &listed[..listed.find("EVENTS").unwrap_or(listed.len())];
    assert!(
        listed.contains("   1 pad") && listed.contains("   3 bell"),
        "{listed:?}"
    );
    assert!(!listed.contains("bass"), "{listed:?}");
    // energy 0.5 of 0..1: half of the 24-cell bar, drawn as full blocks
    let energy = rows.iter().find(|r| r.contains("energy")).unwrap();
    assert_eq!(energy.matches('█').count(), 12, "{energy:?}");
    // no plain status lines over the view, one summary line after it
    assert!(!view.contains(" participants  section"), "{view}");
    assert!(screen[left..].contains(" 2 participants  section main"));
    assert!(!screen[left..].contains(ENTER_ALTERNATE_SCREEN));
}

#[test]
fn plain_lines_on_a_terminal_with_the_plain_flag() {
    let server = JackServer::start("tapestry-view");
    let (ok, screen) = play_on_a_terminal(&server, "--duration 2.5 --plain", None);
    assert!(ok, "play failed:\n{screen}");
    assert!(!screen.contains(ENTER_ALTERNATE_SCREEN), "{screen}");
    assert!(
        screen.contains("joined: participant 1 as \"pad\" at 0.00 s"),
        "{screen}"
    );
    assert!(screen.contains("left: participant 2 at 1.00 s"), "{screen}");
    let status_lines = screen.matches(" 2 participants  section main").count();
    assert!(status_lines >= 2, "{screen}");
}

#[test]
fn ctrl_c_restores_the_terminal_and_finishes_the_recording() {
    let server = JackServer::start("tapestry-view");
    let recording =
        std::env::temp_dir().join(format!("tapestry-view-{}.rec.toml", std::process::id()));
    let (ok, screen) = play_on_a_terminal(
        &server,
        &format!("--duration 60 --record {}", recording.display()),
        Some(Duration::from_millis(2500)),
    );
    assert!(ok, "play failed after Ctrl-C:\n{screen}");
    let entered = screen
        .find(ENTER_ALTERNATE_SCREEN)
        .expect("the alternate screen");
    let left = screen
        .rfind(LEAVE_ALTERNATE_SCREEN)
        .expect("the terminal restored");
    assert!(entered < left);
    assert!(
        screen[left..].contains("recorded 4 events"),
        "{}",
        &screen[left..]
    );
    let stopped = screen[left..]
        .split("stopped after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|secs| secs.parse::<f64>().ok())
        .expect("a stop line");
    assert!(stopped < 4.0, "stopped after {stopped} s");
    let text = std::fs::read_to_string(&recording).unwrap();
    assert!(text.contains("end_sample ="), "{text}");
}
