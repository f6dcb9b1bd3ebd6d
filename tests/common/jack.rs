//! A private JACK server (dummy backend, real-time pacing) for the live tests, with the
//! helpers they share. One server at a time per test binary: two real-time servers on a
//! 2-core machine would starve each other.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// A running `jackd -d dummy` at 48 kHz, 256-frame periods; stopped cleanly on drop.
pub struct JackServer {
    name: String,
    child: Child,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl JackServer {
    /// Starts a server named after `prefix` and this process, and waits until it answers.
    pub fn start(prefix: &str) -> JackServer {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        clear_stale_jack_registry();
        let name = format!("{prefix}-{}", std::process::id());
        let child = spawn_jackd(&name);
        let server = JackServer {
            name,
            child,
            _one_at_a_time: guard,
        };
        server.wait_until_up();
        server
    }

    fn log_path(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}-jackd.log", self.name))
    }

    fn wait_until_up(&self) {
        let ok = self
            .command("jack_wait")
            .args(["-w", "-t", "10"])
            .status()
            .expect("jack_wait");
        assert!(
            ok.success(),
            "the JACK server did not start: {}",
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    /// Stops the server as a crash would (`SIGKILL`) or as an operator would (`SIGTERM`),
    /// and waits until it is gone. [`JackServer::restart`] brings it back under its name.
    pub fn stop(&mut self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Freezes the server (`SIGSTOP`): its clients stop getting callbacks, with no error.
    pub fn freeze(&self) {
        let _ = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status();
    }

    /// Lets a frozen server go on (`SIGCONT`).
    pub fn thaw(&self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
    }

    /// Starts a stopped server again under the same name and waits until it answers.
    pub fn restart(&mut self) {
        self.child = spawn_jackd(&self.name);
        self.wait_until_up();
    }

    /// The server's name (what `JACK_DEFAULT_SERVER` must say).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command whose JACK clients talk to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("JACK_DEFAULT_SERVER", &self.name)
            .env("JACK_NO_START_SERVER", "1")
            .env("JACK_NO_AUDIO_RESERVATION", "1");
        c
    }

    /// Every port on the server.
    pub fn ports(&self) -> Vec<String> {
        let out = self.command("jack_lsp").output().expect("jack_lsp");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits up to 10 s for ports matching `want`, returns them.
    pub fn wait_ports(&self, what: &str, want: impl Fn(&str) -> bool) -> Vec<String> {
        let started = Instant::now();
        loop {
            let ports: Vec<String> = self.ports().into_iter().filter(|p| want(p)).collect();
            if !ports.is_empty() {
                return ports;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what} never appeared; ports: {:?}",
                self.ports()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Connects two ports.
    pub fn connect(&self, from: &str, to: &str) {
        let ok = self
            .command("jack_connect")
            .args([from, to])
            .status()
            .expect("jack_connect");
        assert!(ok.success(), "jack_connect {from} {to} failed");
    }
}

impl Drop for JackServer {
    /// SIGTERM lets jackd unregister itself; a killed server leaves its entry in JACK's
    /// shared-memory registry, and no server starts once a handful have piled up.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.thaw();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `jackd -d dummy` named `name`, logging to the temp dir.
fn spawn_jackd(name: &str) -> Child {
    let log = std::env::temp_dir().join(format!("{name}-jackd.log"));
    Command::new("jackd")
        .args([
            "-n", name, "-R", "-P", "70", "-d", "dummy", "-r", "48000", "-p", "256",
        ])
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("jackd (Debian package jackd2) must be installed for the live tests")
}

/// Removes JACK's shared-memory files when no JACK server runs on this machine: servers that
/// died without unregistering leave entries behind, and JACK refuses new servers once a
/// handful have piled up. With no `jackd` process alive, every such file is stale.
pub fn clear_stale_jack_registry() {
    let running = std::process::Command::new("pgrep")
        .args(["-x", "jackd"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(true);
    if running {
        return;
    }
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("jack") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
