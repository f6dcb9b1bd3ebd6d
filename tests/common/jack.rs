//! A private JACK server (dummy backend, real-time pacing) for the live tests, with the
//! helpers they share. One server at a time per test binary: two real-time servers on a
//! 2-core machine would starve each other.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// How long a JACK tool that only asks or connects may take. jack2's client close can
/// deadlock (jackaudio/jack2#395): under load here `jack_lsp` hung in `jack_client_close`
/// after its work was done, so the tools run under a limit and are retried or accepted.
const TOOL_LIMIT: Duration = Duration::from_secs(5);

static SERIAL: Mutex<()> = Mutex::new(());

/// A running `jackd -d dummy` at 48 kHz, 256-frame periods; stopped cleanly on drop.
pub struct JackServer {
    name: String,
    log: std::path::PathBuf,
    options: Vec<String>,
    child: Child,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl JackServer {
    /// Starts a server named after `prefix` and this process, and waits until it answers.
    pub fn start(prefix: &str) -> JackServer {
        Self::start_with(prefix, &[])
    }

    /// [`start`](Self::start) with more server options (before `-d dummy`), e.g. `--sync`.
    pub fn start_with(prefix: &str, options: &[&str]) -> JackServer {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        clear_stale_jack_registry();
        let name = format!("{prefix}-{}", std::process::id());
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        let log = std::env::temp_dir().join(format!("{name}-jackd.log"));
        let child = spawn_jackd(&name, &options, &log);
        let server = JackServer {
            name,
            log,
            options,
            child,
            _one_at_a_time: guard,
        };
        server.wait_until_up();
        server
    }

    fn wait_until_up(&self) {
        for _ in 0..3 {
            let run = run_within(
                self.command("jack_wait").args(["-w", "-t", "10"]),
                Duration::from_secs(15),
            );
            match run.status {
                Some(status) if status.success() => return,
                Some(_) => break,
                None => continue, // stuck closing: ask again
            }
        }
        panic!("the JACK server did not start: {}", self.log());
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
        self.child = spawn_jackd(&self.name, &self.options, &self.log);
        self.wait_until_up();
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's own account of its late cycles so far.
    pub fn xrun_report(&self) -> ServerXruns {
        ServerXruns::from_log(&self.log())
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

    /// Every port on the server (none while it is down).
    pub fn ports(&self) -> Vec<String> {
        self.ask(&[]).lines().map(str::to_string).collect()
    }

    /// What `jack_lsp args` prints; asked again when it gets stuck closing.
    fn ask(&self, args: &[&str]) -> String {
        for _ in 0..5 {
            let run = run_within(self.command("jack_lsp").args(args), TOOL_LIMIT);
            if run.status.is_some() {
                return run.stdout;
            }
        }
        panic!("jack_lsp got stuck five times in a row");
    }

    /// Whether `from` is connected to `to`.
    pub fn connected(&self, from: &str, to: &str) -> bool {
        // `jack_lsp -c` lists each port, then its connections indented
        self.ask(&["-c", from])
            .lines()
            .any(|l| l.starts_with(char::is_whitespace) && l.trim() == to)
    }

    /// Waits up to 10 s for ports matching `want`, returns them.
    pub fn wait_ports(&self, what: &str, want: impl Fn(&str) -> bool) -> Vec<String> {
        self.wait_port_count(what, 1, want)
    }

    /// Waits until at least `count` ports match: a client registers its ports one by one.
    pub fn wait_port_count(
        &self,
        what: &str,
        count: usize,
        want: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let started = Instant::now();
        loop {
            let ports: Vec<String> = self.ports().into_iter().filter(|p| want(p)).collect();
            if ports.len() >= count {
                return ports;
            }
            // `play` calibrates its loudness (an offline render) before its ports appear; with
            // the other live tests' shows beside it on 2 cores that took over 30 s in CI
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{what} never appeared; ports: {:?}",
                self.ports()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Connects two ports.
    pub fn connect(&self, from: &str, to: &str) {
        for _ in 0..3 {
            let run = run_within(self.command("jack_connect").args([from, to]), TOOL_LIMIT);
            match run.status {
                Some(status) => assert!(status.success(), "jack_connect {from} {to} failed"),
                None if !self.connected(from, to) => continue,
                None => {}
            }
            return;
        }
        panic!("jack_connect {from} {to} got stuck three times");
    }

    /// Starts `jack_rec` capturing `ports` for `seconds` into `path` (32-bit integer WAV).
    /// Its ring buffer holds [`CAPTURE_BUFFER_FRAMES`]: the default third of a second drops
    /// frames when a loaded machine starves jack_rec's disk thread, and every later frame of the
    /// capture then sits early against the engine's output.
    pub fn capture(&self, path: &Path, seconds: u32, ports: &[String]) -> Capture {
        let log = path.with_extension("jack_rec.log");
        let child = self
            .command("jack_rec")
            .arg("-f")
            .arg(path)
            .args(["-d", &seconds.to_string(), "-b", "32"])
            .args(["-B", &CAPTURE_BUFFER_FRAMES.to_string()])
            .args(ports)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("jack_rec (Debian package jackd2)");
        Capture {
            child: Helper(child),
            path: path.to_path_buf(),
            log,
            deadline: Instant::now() + Duration::from_secs(u64::from(seconds) + 15),
        }
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

/// Starts `jackd -d dummy` named `name` with extra server `options`, logging to `log`.
fn spawn_jackd(name: &str, options: &[String], log: &std::path::Path) -> Child {
    Command::new("jackd")
        .args(["-n", name, "-R", "-P", "70"])
        .args(options)
        .args(["-d", "dummy", "-r", "48000", "-p", "256"])
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
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

/// Frames `jack_rec` can hold before its disk thread writes them: 20 s at 48 kHz.
pub const CAPTURE_BUFFER_FRAMES: u32 = 20 * 48_000;

/// A running `jack_rec`.
pub struct Capture {
    child: Helper,
    path: PathBuf,
    log: PathBuf,
    deadline: Instant,
}

impl Capture {
    /// Waits until the capture is written. `jack_rec` closes its file before its JACK client,
    /// so one stuck closing (jackaudio/jack2#395) has finished its work and is killed.
    pub fn finish(mut self) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.child.0.wait_timeout(left).unwrap() {
            Some(status) => assert!(status.success(), "jack_rec failed"),
            None => {
                assert!(
                    self.path.exists(),
                    "jack_rec wrote nothing to {}",
                    self.path.display()
                );
                eprintln!("jack_rec got stuck closing its JACK client; killed");
            }
        }
        // jack_rec exits 0 even when its ring buffer overflowed; it only says so
        let said = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            !said.contains("overruns"),
            "the capture lost frames, so it cannot be compared sample for sample: {said}"
        );
    }
}

/// What a process printed, and how it ended (`None`: killed at the time limit).
pub struct Run {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` for at most `limit`, collecting its output.
pub fn run_within(command: &mut Command, limit: Duration) -> Run {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{:?}: {e}", command.get_program()));
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = child.wait_timeout(limit).unwrap();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads `pipe` to its end on a thread of its own.
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Kills a helper process when the test ends, however it ends.
pub struct Helper(pub Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stereo capture (`jack_rec` writes integer PCM) as two channels of floats.
pub fn read_capture(path: &std::path::Path) -> (Vec<f32>, Vec<f32>) {
    let mut r = hound::WavReader::open(path).expect("capture file");
    let spec = r.spec();
    assert_eq!(spec.channels, 2);
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 * scale)
                .collect()
        }
    };
    super::measure::deinterleave(&samples)
}

/// jack_rec's 32-bit integer quantization, and then some.
pub const CAPTURE_TOLERANCE: f32 = 1e-6;

/// Where a capture sits in an offline render, and how well it matches there.
#[derive(Debug)]
pub struct Alignment {
    /// Offline sample of the capture's first frame (the constant latency offset).
    pub offset: i64,
    /// Frames compared.
    pub compared: usize,
    /// Largest difference over both channels.
    pub worst: f32,
    /// Capture frames (up to 8) where the difference exceeds [`CAPTURE_TOLERANCE`].
    pub mismatches: Vec<usize>,
}

impl Alignment {
    /// Capture frame of an engine (offline) sample.
    pub fn capture_index(&self, engine_sample: u64) -> usize {
        (engine_sample as i64 - self.offset).max(0) as usize
    }
}

/// Finds the capture inside the offline render (a 512-frame probe just after the capture's
/// sound starts) and compares every frame after that offset.
pub fn align(capture: (&[f32], &[f32]), offline: (&[f32], &[f32])) -> Alignment {
    let ((cl, cr), (ol, or)) = (capture, offline);
    let probe_at = cl
        .iter()
        .position(|x| x.abs() > 1e-3)
        .expect("the capture has sound")
        + 4800;
    let probe = &cl[probe_at..probe_at + 512];
    let offset = (0..ol.len() - 512)
        .find(|&k| {
            ol[k..k + 512]
                .iter()
                .zip(probe)
                .all(|(a, b)| (a - b).abs() <= CAPTURE_TOLERANCE)
        })
        .expect("the captured audio appears in the offline render") as i64
        - probe_at as i64;
    let first = (-offset).max(0) as usize;
    let compared = cl.len().min((ol.len() as i64 - offset) as usize) - 256 - first;
    let mut worst = 0.0f32;
    let mut mismatches = Vec::new();
    for n in first..first + compared {
        let k = (n as i64 + offset) as usize;
        let difference = (cl[n] - ol[k]).abs().max((cr[n] - or[k]).abs());
        if difference > CAPTURE_TOLERANCE && mismatches.len() < 8 {
            mismatches.push(n);
        }
        worst = worst.max(difference);
    }
    Alignment {
        offset,
        compared,
        worst,
        mismatches,
    }
}

/// The number after `key` in `line` (e.g. "xruns 3" → 3).
pub fn number_after(line: &str, key: &str) -> f64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    rest.trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("a number after {key} in {line}"))
}

/// The Python with python-osc and python-rtmidi that scripts/test.sh prepares
/// (`TAPESTRY_TEST_PYTHON`, else the venv it makes in target/py-venv). `None` when there is
/// none; under CI (`CI` set) that fails the test instead.
pub fn test_python() -> Option<std::path::PathBuf> {
    let from_env = std::env::var_os("TAPESTRY_TEST_PYTHON").map(std::path::PathBuf::from);
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py-venv/bin/python");
    let python = from_env.or_else(|| venv.exists().then_some(venv));
    if python.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no Python for the live senders: run scripts/test.sh, or set TAPESTRY_TEST_PYTHON \
             to a python with python-osc and python-rtmidi"
        );
        eprintln!("skipped: no Python with python-osc and python-rtmidi (see scripts/test.sh)");
    }
    python
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Late cycles as jackd logs them.
#[derive(Debug, Default)]
pub struct ServerXruns {
    /// The dummy driver's timer woke up late ("JackTimedDriver::Process XRun = N usec"),
    /// before any client ran: the machine's scheduling, nobody's process callback.
    pub driver_late: usize,
    /// Largest such lateness, µs.
    pub driver_late_max_usecs: u64,
    /// Cycles that began while some client had not finished the previous one.
    pub graph_xruns: usize,
    /// "client = X was not finished, state = S" lines, X with digits removed, with counts.
    pub unfinished: std::collections::BTreeMap<String, usize>,
}

impl ServerXruns {
    fn from_log(log: &str) -> ServerXruns {
        let mut x = ServerXruns::default();
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("JackTimedDriver::Process XRun = ") {
                x.driver_late += 1;
                let usecs = rest.split_whitespace().next().and_then(|n| n.parse().ok());
                x.driver_late_max_usecs = x.driver_late_max_usecs.max(usecs.unwrap_or(0));
            } else if line.contains("Process error") {
                x.graph_xruns += 1;
            } else if let Some(rest) = line.strip_prefix("JackEngine::XRun: client = ") {
                let key: String = rest
                    .replace(" was not finished, state =", ":")
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect();
                *x.unfinished.entry(key).or_default() += 1;
            }
        }
        x
    }
}

/// Reads `play`'s stderr into a shared log as it comes.
pub fn read_log(
    play: &mut Child,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    std::thread::JoinHandle<()>,
) {
    use std::io::BufRead;
    let stderr = play.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let shared = log.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut log = shared.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, reader)
}

/// Waits (at most 60 s) until play says it is playing. No JACK client of the test may open
/// or close while play opens its own: one that comes and goes then can leave play's MIDI
/// client never woken (jackaudio/jack2#721, a stale futex in libjack's per-process table).
pub fn wait_until_playing(log: &std::sync::Mutex<String>) {
    let started = std::time::Instant::now();
    while !log.lock().unwrap().contains("playing \"") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "play never said it was playing: {}",
            log.lock().unwrap()
        );
        sleep(Duration::from_millis(20));
    }
}
