//! Session recording: every command the engine applied, at the sample it took effect, written
//! as a performance file (`sample = N` events) that an offline render plays back sample for
//! sample. Runs on a control thread; the journal is polled, never waited on.
//!
//! Crash-safe: entries reach the file whole (each written with one system call, each ending in
//! an empty line), and the file notes how far the show has got (`type = "position"`) every
//! [`FLUSH_INTERVAL`]; a recording cut short by `kill -9` loads up to its last complete entry
//! and renders to where the show stopped.
//!
//! Bounded: continuous changes are coalesced per control tick (see [`Coalescer`]), exactly: a
//! change is left out only when the engine overwrote it before the next control tick, the
//! first moment anything reads it. The file stops taking events at [`MAX_RECORDED_EVENTS`]
//! or [`MAX_RECORDING_BYTES`], and after [`MAX_SHOW_SECS`] of show.

mod coalesce;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use coalesce::Coalescer;

use crate::control::{Command, Journal, MoodTarget, Names, Status};
use crate::engine::config::Param;
use crate::engine::Applied;
use crate::performance::{max_sample, MAX_EVENTS, MAX_PERFORMANCE_BYTES, MAX_SHOW_SECS};

/// How often the recording reaches the disk (`fsync`) at the latest, with a position mark.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);
/// How often the recorder thread drains the journal and writes what it holds.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Room kept for position marks (two a second for 24 h) under the file's event limit.
const MARK_RESERVE: usize = 200_000;
/// Most commands a recording holds; past it the show goes on unrecorded (said on stderr
/// and in the summary).
pub const MAX_RECORDED_EVENTS: usize = MAX_EVENTS - MARK_RESERVE;
/// Most bytes of commands a recording holds (the rest of [`MAX_PERFORMANCE_BYTES`] is kept
/// for position marks and the end).
pub const MAX_RECORDING_BYTES: u64 = (MAX_PERFORMANCE_BYTES - (16 << 20)) as u64;
/// Whole entries are written once this many bytes wait (else every [`POLL_INTERVAL`]).
const WRITE_CHUNK: usize = 64 << 10;

/// What a recording kept and left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Commands written.
    pub events: u64,
    /// Continuous changes left out because the engine overwrote them within a control tick.
    pub coalesced: u64,
    /// Commands not recorded: past [`MAX_RECORDED_EVENTS`], [`MAX_RECORDING_BYTES`] or
    /// [`MAX_SHOW_SECS`].
    pub unrecorded: u64,
}

/// Writes a performance file event by event.
pub struct Recorder {
    file: File,
    /// Whole entries not yet written.
    buffer: Vec<u8>,
    names: Names,
    coalescer: Coalescer,
    /// Where the engine's sample position is published, for position marks.
    clock: Option<Arc<Status>>,
    /// Latest sample recorded ([`MAX_SHOW_SECS`] at the sample rate, or unbounded).
    max_sample: u64,
    last_flush: Instant,
    /// Latest sample written (event or mark).
    reached: u64,
    /// Sample of the last position mark (none is repeated while the show's clock waits).
    marked: Option<u64>,
    bytes: u64,
    summary: Summary,
}

impl Recorder {
    /// Creates the file and writes its header. A live show gives the gain its master leveler
    /// started from (`MasterChain::Live { start_gain_db }`), so the recording re-renders
    /// through the same chain, also when the show is killed before it could say more.
    pub fn create(
        path: &Path,
        patch_name: &str,
        names: Names,
        seed: u64,
        live_leveler_start_db: f32,
    ) -> io::Result<Recorder> {
        let mut file = File::create(path)?;
        let header = format!(
            "# Session recording of {}: every command at the sample the engine applied it.\n\
             # Render it with `tapestry render <patch> --performance <this file>` to hear the session again.\n\
             version = 1\n\
             recording = true\n\
             seed = {seed}\n\
             live_leveler_start_db = {}\n\n",
            toml_string(patch_name),
            number(live_leveler_start_db)
        );
        file.write_all(header.as_bytes())?;
        Ok(Recorder {
            file,
            buffer: Vec::with_capacity(2 * WRITE_CHUNK),
            names,
            coalescer: Coalescer::new(None),
            clock: None,
            max_sample: u64::MAX,
            last_flush: Instant::now(),
            reached: 0,
            marked: None,
            bytes: header.len() as u64,
            summary: Summary::default(),
        })
    }

    /// Follows the engine's clock: position marks as the show goes, ramps coalesced too, and
    /// nothing recorded past [`MAX_SHOW_SECS`] at `sample_rate`.
    pub fn with_clock(mut self, status: Arc<Status>, sample_rate: u32) -> Recorder {
        self.clock = Some(status);
        self.coalescer = Coalescer::new(Some(sample_rate));
        self.max_sample = max_sample(sample_rate);
        self
    }

    /// Takes one applied command (it reaches the file at the next [`Recorder::write_out`]).
    pub fn write(&mut self, applied: &Applied) -> io::Result<()> {
        let mut closed = Vec::new();
        self.coalescer.push(*applied, &mut closed);
        self.append(&closed);
        if self.buffer.len() >= WRITE_CHUNK {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Writes every whole entry held (the control tick in progress included).
    pub fn write_out(&mut self) -> io::Result<()> {
        let mut closed = Vec::new();
        self.coalescer.close(&mut closed);
        self.append(&closed);
        self.write_buffer()
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            // one call: a process killed now leaves whole entries (the kernel finishes a
            // write of this size unless the machine itself goes down)
            self.file.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes everything held, a position mark, and pushes it all to the disk.
    pub fn flush(&mut self) -> io::Result<()> {
        let position = self.position();
        self.write_out()?;
        self.mark(position)
    }

    /// The engine's sample position, if the recorder follows its clock.
    fn position(&self) -> Option<u64> {
        self.clock
            .as_ref()
            .map(|s| s.sample_position.load(Ordering::Acquire))
    }

    /// Writes the whole entries of every control tick the engine has passed: `position` was
    /// read before the journal was last drained, so those ticks hold all they will hold
    /// (without a clock, everything held is written).
    fn write_settled(&mut self, position: Option<u64>) -> io::Result<()> {
        match position {
            Some(position) => {
                let mut closed = Vec::new();
                self.coalescer.close_before(position, &mut closed);
                self.append(&closed);
                self.write_buffer()
            }
            None => self.write_out(),
        }
    }

    /// Writes a position mark (how far the show has got) and pushes the file to the disk.
    fn mark(&mut self, position: Option<u64>) -> io::Result<()> {
        if let Some(position) = position {
            let mark = position.max(self.reached).min(self.max_sample);
            if self.marked != Some(mark) {
                self.buffer.extend_from_slice(
                    format!("[[events]]\nsample = {mark}\ntype = \"position\"\n\n").as_bytes(),
                );
                self.reached = mark;
                self.marked = Some(mark);
                self.write_buffer()?;
            }
        }
        self.file.sync_data()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Commands written so far.
    pub fn events(&self) -> u64 {
        self.summary.events
    }

    /// What was kept and left out so far.
    pub fn summary(&self) -> Summary {
        Summary {
            coalesced: self.coalescer.coalesced(),
            ..self.summary
        }
    }

    /// Ends the recording: notes where the session stopped, so a render lasts as long.
    pub fn finish(mut self, end_sample: u64) -> io::Result<Summary> {
        self.write_out()?;
        let end = end_sample.min(self.max_sample);
        self.buffer
            .extend_from_slice(format!("[session]\nend_sample = {end}\n\n").as_bytes());
        self.write_out()?;
        self.file.sync_data()?;
        Ok(self.summary())
    }

    /// Formats closed commands into whole entries, within the limits.
    fn append(&mut self, commands: &[Applied]) {
        for applied in commands {
            let full = self.summary.events >= MAX_RECORDED_EVENTS as u64
                || self.bytes >= MAX_RECORDING_BYTES;
            if full || applied.sample > self.max_sample {
                if self.summary.unrecorded == 0 {
                    eprintln!(
                        "tapestry: the recording is full ({} events, {} bytes, or {MAX_SHOW_SECS} s): later events are not recorded",
                        self.summary.events, self.bytes
                    );
                }
                self.summary.unrecorded += 1;
                continue;
            }
            let start = self.buffer.len();
            entry(&mut self.buffer, applied, &self.names);
            self.bytes += (self.buffer.len() - start) as u64;
            self.summary.events += 1;
            self.reached = self.reached.max(applied.sample);
        }
    }
}

/// One `[[events]]` entry, ending in an empty line. Values are written as the shortest
/// decimal that reads back to the same `f32`.
fn entry(out: &mut Vec<u8>, applied: &Applied, n: &Names) {
    use std::fmt::Write as _;
    let name = |list: &[String], i: usize| toml_string(list.get(i).map_or("?", String::as_str));
    let mut s = format!("[[events]]\nsample = {}\n", applied.sample);
    let _ = match applied.command {
        Command::Join { participant, archetype } => {
            let _ = writeln!(s, "type = \"join\"\nparticipant = {participant}");
            match archetype {
                Some(a) => writeln!(s, "archetype = {}", name(&n.archetypes, a as usize)),
                None => Ok(()),
            }
        }
        Command::Leave { participant } => writeln!(s, "type = \"leave\"\nparticipant = {participant}"),
        Command::Mood { target, dim, value, ramp_secs } => {
            let _ = match target {
                MoodTarget::Room => writeln!(s, "type = \"room\""),
                MoodTarget::Communal => writeln!(s, "type = \"mood\"\nparticipant = 0"),
                MoodTarget::Participant(p) => writeln!(s, "type = \"mood\"\nparticipant = {p}"),
            };
            let _ = writeln!(s, "dimension = {}\nvalue = {}", name(&n.dims, dim as usize), number(value));
            if ramp_secs != 0.0 {
                writeln!(s, "ramp_secs = {}", number(ramp_secs))
            } else {
                Ok(())
            }
        }
        Command::ReleaseCommunal { dim } => {
            writeln!(s, "type = \"release\"\ndimension = {}", name(&n.dims, dim as usize))
        }
        Command::NoteOn { participant, pitch, velocity } => writeln!(
            s,
            "type = \"note_on\"\nparticipant = {participant}\npitch = {pitch}\nvelocity = {velocity}"
        ),
        Command::NoteOff { participant, pitch } => {
            writeln!(s, "type = \"note_off\"\nparticipant = {participant}\npitch = {pitch}")
        }
        Command::Expression { participant, kind, value } => writeln!(
            s,
            "type = \"{}\"\nparticipant = {participant}\nvalue = {}",
            kind.name(),
            number(value)
        ),
        Command::Cue { section } => {
            writeln!(s, "type = \"cue\"\nsection = {}", name(&n.sections, section as usize))
        }
        Command::RoomParam { param, voices, value } => {
            let _ = writeln!(
                s,
                "type = \"room_param\"\nparam = {}\nvalue = {}",
                toml_string(Param::ALL.get(param as usize).map_or("?", |p| p.1)),
                number(value)
            );
            match voices.key_value() {
                Some((key, name)) => writeln!(s, "{key} = {}", toml_string(name)),
                None => Ok(()),
            }
        }
        Command::Tempo { bpm } => writeln!(s, "type = \"tempo\"\nbpm = {}", number(bpm)),
    };
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}

/// An `f32` as TOML: the shortest decimal that reads back (through `f64`) to the same bits.
fn number(x: f32) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else if x.is_nan() {
        "nan".into()
    } else if x > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A recorder on its own thread, draining the engine's journal by polling.
pub struct RecorderThread {
    stop: Arc<AtomicU64>,
    handle: JoinHandle<io::Result<Summary>>,
    path: PathBuf,
}

/// Marks "keep running" in [`RecorderThread`]'s stop cell.
const RUNNING: u64 = u64::MAX;

impl RecorderThread {
    /// Starts recording `journal` into `recorder`.
    pub fn spawn(mut recorder: Recorder, journal: Journal, path: PathBuf) -> RecorderThread {
        let stop = Arc::new(AtomicU64::new(RUNNING));
        let stop_flag = stop.clone();
        let handle = thread::spawn(move || loop {
            let end = stop_flag.load(Ordering::Acquire);
            // the position first: every command applied before it is in the journal
            let position = recorder.position();
            while let Ok(applied) = journal.try_recv() {
                recorder.write(&applied)?;
            }
            if end != RUNNING {
                return recorder.finish(end);
            }
            recorder.write_settled(position)?;
            if recorder.last_flush.elapsed() >= FLUSH_INTERVAL {
                recorder.mark(position)?;
            }
            thread::sleep(POLL_INTERVAL);
        });
        RecorderThread { stop, handle, path }
    }

    /// Drains what is left, writes the end sample and closes the file; returns the number of
    /// events written.
    pub fn finish(self, end_sample: u64) -> io::Result<u64> {
        self.finish_summary(end_sample).map(|s| s.events)
    }

    /// As [`RecorderThread::finish`], with what was coalesced and left unrecorded.
    pub fn finish_summary(self, end_sample: u64) -> io::Result<Summary> {
        self.stop
            .store(end_sample.min(RUNNING - 1), Ordering::Release);
        self.handle
            .join()
            .map_err(|_| io::Error::other("the recorder thread panicked"))?
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_to_the_same_f32() {
        let mut x = 0x9E37_79B9u32;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let text = number(v);
            let back: f64 = text.parse().unwrap();
            assert_eq!((back as f32).to_bits(), v.to_bits(), "{v:?} wrote {text}");
        }
        assert_eq!(number(0.8), "0.8");
        assert_eq!(number(f32::NAN), "nan");
    }

    #[test]
    fn entries_end_with_an_empty_line_and_parse() {
        let names = Names {
            dims: vec!["energy".into()],
            archetypes: vec!["pad".into()],
            sections: vec!["a \"b\"".into()],
        };
        let mut out = Vec::new();
        for command in [
            Command::Join {
                participant: 1,
                archetype: Some(0),
            },
            Command::Mood {
                target: MoodTarget::Communal,
                dim: 0,
                value: 0.1,
                ramp_secs: 2.5,
            },
            Command::Cue { section: 0 },
        ] {
            entry(&mut out, &Applied { sample: 7, command }, &names);
            assert!(out.ends_with(b"\n\n"));
        }
        let text = String::from_utf8(out).unwrap();
        let value: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(value["events"].as_array().unwrap().len(), 3);
    }
}
