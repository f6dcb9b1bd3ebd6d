//! Session recording: every command the engine applied, at the sample it took effect, written
//! as a performance file (`sample = N` events) that an offline render plays back sample for
//! sample. Runs on a control thread; the journal is polled, never waited on.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::control::{Command, MoodTarget, Names};
use crate::engine::config::Param;
use crate::engine::Applied;

/// How often the recording reaches the disk at the latest.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Writes a performance file event by event.
pub struct Recorder {
    out: BufWriter<File>,
    names: Names,
    last_flush: Instant,
    events: u64,
    /// The live leveler's start gain, written in `[session]`.
    leveler_start_db: f32,
}

impl Recorder {
    /// Creates the file and writes its header.
    pub fn create(path: &Path, patch_name: &str, names: Names, seed: u64) -> io::Result<Recorder> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(
            out,
            "# Session recording of \"{}\": every command at the sample the engine applied it.",
            patch_name.replace('"', "'")
        )?;
        writeln!(out, "# Render it with `tapestry render <patch> --performance <this file>` to hear the session again.")?;
        writeln!(out, "version = 1")?;
        writeln!(out, "seed = {seed}")?;
        out.flush()?;
        Ok(Recorder {
            out,
            names,
            last_flush: Instant::now(),
            events: 0,
            leveler_start_db: 0.0,
        })
    }

    /// Notes the gain the engine's live leveler started from
    /// (`MasterChain::Live { start_gain_db }`), so the re-render starts there too.
    pub fn set_leveler_start_db(&mut self, db: f32) {
        self.leveler_start_db = db;
    }

    /// Appends one applied command.
    pub fn write(&mut self, applied: &Applied) -> io::Result<()> {
        let n = &self.names;
        let name = |list: &[String], i: usize| toml_string(list.get(i).map_or("?", String::as_str));
        let o = &mut self.out;
        writeln!(o, "\n[[events]]\nsample = {}", applied.sample)?;
        match applied.command {
            Command::Join { participant, archetype } => {
                writeln!(o, "type = \"join\"\nparticipant = {participant}")?;
                if let Some(a) = archetype {
                    writeln!(o, "archetype = {}", name(&n.archetypes, a as usize))?;
                }
            }
            Command::Leave { participant } => writeln!(o, "type = \"leave\"\nparticipant = {participant}")?,
            Command::Mood { target: MoodTarget::Room, dim, value, ramp_secs } => writeln!(
                o,
                "type = \"room\"\ndimension = {}\nvalue = {:?}\nramp_secs = {:?}",
                name(&n.dims, dim as usize),
                f64::from(value),
                f64::from(ramp_secs)
            )?,
            Command::Mood { target, dim, value, ramp_secs } => {
                let participant = match target {
                    MoodTarget::Participant(p) => p,
                    _ => 0,
                };
                // f64 of the f32 prints exactly, so the value reads back bit for bit
                writeln!(
                    o,
                    "type = \"mood\"\nparticipant = {participant}\ndimension = {}\nvalue = {:?}\nramp_secs = {:?}",
                    name(&n.dims, dim as usize),
                    f64::from(value),
                    f64::from(ramp_secs)
                )?;
            }
            Command::ReleaseCommunal { dim } => writeln!(o, "type = \"release\"\ndimension = {}", name(&n.dims, dim as usize))?,
            Command::NoteOn { participant, pitch, velocity } => {
                writeln!(o, "type = \"note_on\"\nparticipant = {participant}\npitch = {pitch}\nvelocity = {velocity}")?
            }
            Command::NoteOff { participant, pitch } => writeln!(o, "type = \"note_off\"\nparticipant = {participant}\npitch = {pitch}")?,
            Command::Expression { participant, kind, value } => {
                writeln!(o, "type = \"{}\"\nparticipant = {participant}\nvalue = {:?}", kind.name(), f64::from(value))?
            }
            Command::Cue { section } => writeln!(o, "type = \"cue\"\nsection = {}", name(&n.sections, section as usize))?,
            Command::RoomParam { param, voices, value } => {
                writeln!(
                    o,
                    "type = \"room_param\"\nparam = {}\nvalue = {:?}",
                    toml_string(Param::ALL.get(param as usize).map_or("?", |p| p.1)),
                    f64::from(value)
                )?;
                if let Some((key, name)) = voices.key_value() {
                    writeln!(o, "{key} = {}", toml_string(name))?;
                }
            }
            Command::Tempo { bpm } => writeln!(o, "type = \"tempo\"\nbpm = {:?}", f64::from(bpm))?,
        }
        self.events += 1;
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes everything written so far to the disk.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Events written.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Ends the recording: notes where the session stopped, so a render lasts as long.
    pub fn finish(mut self, end_sample: u64) -> io::Result<()> {
        writeln!(
            self.out,
            "\n[session]\nend_sample = {end_sample}\nleveler_start_db = {:?}",
            f64::from(self.leveler_start_db)
        )?;
        self.flush()
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
    stop: std::sync::Arc<std::sync::atomic::AtomicU64>,
    handle: JoinHandle<io::Result<u64>>,
    path: PathBuf,
}

/// Marks "keep running" in [`RecorderThread`]'s stop cell.
const RUNNING: u64 = u64::MAX;

impl RecorderThread {
    /// Starts recording `journal` into `recorder`.
    pub fn spawn(
        mut recorder: Recorder,
        journal: Receiver<Applied>,
        path: PathBuf,
    ) -> RecorderThread {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(RUNNING));
        let stop_flag = stop.clone();
        let handle = thread::spawn(move || loop {
            let end = stop_flag.load(std::sync::atomic::Ordering::Acquire);
            while let Ok(applied) = journal.try_recv() {
                recorder.write(&applied)?;
            }
            if end != RUNNING {
                let events = recorder.events();
                recorder.finish(end)?;
                return Ok(events);
            }
            if recorder.last_flush.elapsed() >= FLUSH_INTERVAL {
                recorder.flush()?;
            }
            thread::sleep(Duration::from_millis(20));
        });
        RecorderThread { stop, handle, path }
    }

    /// Drains what is left, writes the end sample and closes the file; returns the number of
    /// events written.
    pub fn finish(self, end_sample: u64) -> io::Result<u64> {
        self.stop.store(
            end_sample.min(RUNNING - 1),
            std::sync::atomic::Ordering::Release,
        );
        self.handle
            .join()
            .map_err(|_| io::Error::other("the recorder thread panicked"))?
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
