//! The peak memory of a child process, read from Linux's `/proc/<pid>/status` while it runs.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end and returns its output with its peak resident set size in bytes
/// (`VmHWM`, the kernel's high-water mark, polled every 5 ms: its last reading before the
/// process exits).
pub fn run_with_peak_rss(command: &mut Command) -> (Output, u64, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let status_path = format!("/proc/{}/status", child.id());
    // read the pipes on their own threads so a chatty child never blocks on a full pipe
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).unwrap();
        v
    });
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|s| vm_hwm_kb(&s))
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, peak_kb * 1024, elapsed)
}

/// The `VmHWM:` line of a `/proc/<pid>/status`, in kB.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
