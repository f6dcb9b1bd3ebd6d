//! `tapestry render` streams: its memory does not grow with the length of the piece, the file
//! it writes is what the in-memory render returns (whatever the block size), no temporary file
//! is left behind, and past 4 GiB the file is RF64 with a header that `soxi` reads back.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use tapestry::render::{render, Container, RenderOptions, WavFormat, WavWriter};
use tapestry::Performance;

fn tapestry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapestry"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A fresh, empty folder for one test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapestry-stream-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Renders `patch` for `secs` (an empty room) and returns the peak resident memory in MB,
/// read from `/proc/<pid>/status` while it runs.
fn render_peak_rss_mb(dir: &Path, secs: u32) -> f64 {
    let out = dir.join(format!("{secs}.wav"));
    let mut child = tapestry()
        .args(["render", "patches/minimal.toml", "--duration"])
        .arg(secs.to_string())
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak_kb = 0;
    // a guard against a hang, not a speed test: a loaded CI machine took over 120 s
    let deadline = Instant::now() + Duration::from_secs(900);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the render did not finish");
        if let Some(kb) = vm_hwm_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let len = std::fs::metadata(&out).unwrap().len();
    assert!(
        len >= u64::from(secs) * 48_000 * 6,
        "{len} bytes for {secs} s"
    );
    std::fs::remove_file(&out).unwrap();
    peak_kb as f64 / 1024.0
}

#[test]
fn render_memory_does_not_grow_with_the_length() {
    let dir = folder("memory");
    let short = render_peak_rss_mb(&dir, 60);
    let long = render_peak_rss_mb(&dir, 960);
    println!("peak RSS: 1 minute {short:.1} MB, 16 minutes {long:.1} MB");
    assert!(short > 1.0, "the memory was read ({short} MB)");
    assert!(long <= 100.0, "{long} MB");
    assert!(
        long <= short + 4.0,
        "memory grows with the length: {short} -> {long} MB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn render_file(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let output = tapestry()
        .args([
            "render",
            "patches/minimal.toml",
            "-p",
            "patches/minimal.performance.toml",
            "--duration",
            "20",
            "--format",
            "float32",
            "-o",
        ])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[test]
fn the_file_is_the_in_memory_render_whatever_the_block_and_nothing_is_left_behind() {
    let dir = folder("blocks");
    let a = render_file(&dir, "a.wav", &["--block", "97"]);
    let b = render_file(&dir, "b.wav", &["--block", "4096"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let mut reader = hound::WavReader::open(&a).unwrap();
    let from_file: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    let patch = patch("minimal.toml");
    let perf = Performance::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("patches/minimal.performance.toml"),
        &patch,
        SR,
    )
    .unwrap();
    let options = RenderOptions {
        duration_frames: Some(20 * u64::from(SR)),
        ..RenderOptions::default()
    };
    let in_memory = render(&patch, &perf, &options, |_, _| {});
    assert_eq!(from_file.len(), in_memory.len());
    assert!(
        from_file
            .iter()
            .zip(&in_memory)
            .all(|(x, y)| x.to_bits() == y.to_bits()),
        "the file differs from the in-memory render"
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.wav", "b.wav"], "temporary files left behind");

    // a render that cannot write says so and leaves nothing
    let blocked = dir.join("a.wav").join("out.wav");
    let output = tapestry()
        .args(["render", "patches/minimal.toml", "--duration", "1", "-o"])
        .arg(&blocked)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot create the output in"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sink that keeps the first bytes and only counts the rest: a file of any size without the
/// disk.
struct Sparse {
    head: Vec<u8>,
    pos: u64,
    len: u64,
}

impl Write for Sparse {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let keep = self.head.len() as u64;
        if self.pos < keep {
            let n = (keep - self.pos).min(buf.len() as u64) as usize;
            self.head[self.pos as usize..self.pos as usize + n].copy_from_slice(&buf[..n]);
        }
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

/// Writes `frames` of silence in 24-bit through the writer into a sparse file and asks soxi
/// how many samples it holds.
fn soxi_samples(dir: &Path, frames: u64) -> (Container, u64) {
    let sink = Sparse {
        head: vec![0; 4096],
        pos: 0,
        len: 0,
    };
    let mut w = WavWriter::new(sink, 48_000, WavFormat::Pcm24, 1).unwrap();
    let zeros = vec![0u8; 6 << 20];
    let mut left = frames * 6;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_encoded(&zeros[..n]).unwrap();
        left -= n as u64;
    }
    let (sink, container) = w.finish().unwrap();
    // the same bytes on disk: the header, then a hole the size of the data
    let path = dir.join(format!("{frames}.wav"));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&sink.head[..(sink.len as usize).min(4096)])
        .unwrap();
    file.set_len(sink.len).unwrap();
    let out = Command::new("soxi").arg("-s").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "soxi: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    std::fs::remove_file(&path).unwrap();
    (container, samples)
}

#[test]
fn past_4_gib_the_file_is_rf64_and_soxi_reads_its_length() {
    let dir = folder("rf64");
    // 24-bit stereo: 104 header bytes, 6 bytes a frame; the RIFF size (file - 8) must stay
    // under 0xFFFFFFFF
    let largest_riff = (u64::from(u32::MAX) - 1 - 96) / 6;
    for (frames, want) in [
        (largest_riff, Container::Riff),
        (largest_riff + 1, Container::Rf64),
        (largest_riff * 2, Container::Rf64),
    ] {
        let (container, samples) = soxi_samples(&dir, frames);
        println!("{frames} frames: {container:?}, soxi reads {samples} samples");
        assert_eq!(container, want, "{frames} frames");
        assert_eq!(samples, frames, "{frames} frames");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
