//! Human- and spreadsheet-readable views of a feature timeline (`tapestry analyze`).

use std::fmt::{self, Write as _};

use super::{FeatureFrame, LOUDNESS_FLOOR_LUFS};

const PITCH_CLASSES: [&str; 12] = [
    "c", "c_sharp", "d", "d_sharp", "e", "f", "f_sharp", "g", "g_sharp", "a", "a_sharp", "b",
];

/// The CSV header: one column per value, each named with its unit.
pub fn csv_header() -> String {
    let mut header = String::from(
        "time_s,end_frame,loudness_lufs,momentary_lufs,onset_rate_per_s,onset_times_s,\
         centroid_hz,flatness_0_1,roughness_0_1,pitch_hz,pitch_confidence_0_1,tempo_bpm,\
         pulse_steadiness_0_1",
    );
    for class in PITCH_CLASSES {
        let _ = write!(header, ",chroma_{class}_0_1");
    }
    header
}

/// One CSV row; onset times (seconds) are separated by `;`.
pub fn csv_row(f: &FeatureFrame, sample_rate: u32) -> String {
    let secs = |frame: u64| frame as f64 / f64::from(sample_rate);
    let onsets: Vec<String> = f
        .onset_times
        .as_slice()
        .iter()
        .map(|&t| format!("{:.4}", secs(t)))
        .collect();
    let mut row = format!(
        "{:.4},{},{:.2},{:.2},{:.3},{},{:.1},{:.4},{:.4},{:.2},{:.3},{:.2},{:.3}",
        f.end_secs(sample_rate),
        f.end_frame,
        f.loudness_lufs,
        f.momentary_lufs,
        f.onset_rate,
        onsets.join(";"),
        f.centroid_hz,
        f.flatness,
        f.roughness,
        f.pitch_hz,
        f.pitch_confidence,
        f.tempo_bpm,
        f.pulse_steadiness,
    );
    for c in f.chroma {
        let _ = write!(row, ",{c:.3}");
    }
    row
}

/// The header of [`timeline_line`]'s columns.
pub fn timeline_header() -> &'static str {
    "   time  short LUFS  mom. LUFS  onsets/s  centroid Hz  flat  rough  pitch Hz (conf)  tempo BPM (steady)"
}

/// One readable line of the timeline.
pub fn timeline_line(f: &FeatureFrame, sample_rate: u32) -> String {
    format!(
        "{:6.2}s  {:10.1}  {:9.1}  {:8.2}  {:11.0}  {:4.2}  {:5.2}  {:8.1} ({:4.2})  {:9.1} ({:4.2})",
        f.end_secs(sample_rate),
        f.loudness_lufs,
        f.momentary_lufs,
        f.onset_rate,
        f.centroid_hz,
        f.flatness,
        f.roughness,
        f.pitch_hz,
        f.pitch_confidence,
        f.tempo_bpm,
        f.pulse_steadiness,
    )
}

/// What a whole recording amounts to.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Length analysed, in seconds.
    pub duration_secs: f64,
    /// Energy mean of the momentary loudness over all frames, LUFS.
    pub mean_loudness_lufs: f32,
    /// Highest momentary loudness, LUFS.
    pub peak_momentary_lufs: f32,
    /// Onsets detected.
    pub onsets: usize,
    /// Onsets per second over the whole recording.
    pub onset_rate: f32,
    /// Median tempo of the frames that report one, BPM (0 if none does).
    pub tempo_bpm: f32,
    /// Mean pulse steadiness, 0..1.
    pub pulse_steadiness: f32,
}

impl Summary {
    /// Summarises `frames` of a recording of `total_frames` frames at `sample_rate`.
    pub fn new(frames: &[FeatureFrame], total_frames: u64, sample_rate: u32) -> Summary {
        let mut builder = SummaryBuilder::default();
        frames.iter().for_each(|f| builder.add(f));
        builder.finish(total_frames, sample_rate)
    }
}

/// Builds a [`Summary`] from frames as they come, so a recording of any length can be
/// summarised while it streams. Memory: one `f32` per frame that reports a tempo (for the
/// median), 0.75 kB per second of a recording with a steady pulse at a 5.3 ms hop.
#[derive(Clone, Debug, Default)]
pub struct SummaryBuilder {
    frames: usize,
    energy_sum: f64,
    peak_momentary_lufs: Option<f32>,
    onsets: usize,
    tempi: Vec<f32>,
    steadiness_sum: f64,
}

impl SummaryBuilder {
    /// Takes the next frame.
    pub fn add(&mut self, f: &FeatureFrame) {
        self.frames += 1;
        self.energy_sum += 10f64.powf(f64::from(f.momentary_lufs) / 10.0);
        let peak = self.peak_momentary_lufs.unwrap_or(LOUDNESS_FLOOR_LUFS);
        self.peak_momentary_lufs = Some(peak.max(f.momentary_lufs));
        self.onsets += f.onset_times.len();
        if f.tempo_bpm > 0.0 {
            self.tempi.push(f.tempo_bpm);
        }
        self.steadiness_sum += f64::from(f.pulse_steadiness);
    }

    /// The summary of a recording of `total_frames` frames at `sample_rate`.
    pub fn finish(mut self, total_frames: u64, sample_rate: u32) -> Summary {
        let duration_secs = total_frames as f64 / f64::from(sample_rate);
        let n = self.frames.max(1) as f64;
        let mean_loudness_lufs = if self.frames == 0 {
            LOUDNESS_FLOOR_LUFS
        } else {
            ((10.0 * (self.energy_sum / n).log10()) as f32).max(LOUDNESS_FLOOR_LUFS)
        };
        self.tempi.sort_by(f32::total_cmp);
        Summary {
            duration_secs,
            mean_loudness_lufs,
            peak_momentary_lufs: self.peak_momentary_lufs.unwrap_or(LOUDNESS_FLOOR_LUFS),
            onsets: self.onsets,
            onset_rate: if duration_secs > 0.0 {
                (self.onsets as f64 / duration_secs) as f32
            } else {
                0.0
            },
            tempo_bpm: self.tempi.get(self.tempi.len() / 2).copied().unwrap_or(0.0),
            pulse_steadiness: (self.steadiness_sum / n) as f32,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "duration        {:.2} s", self.duration_secs)?;
        writeln!(
            f,
            "loudness        mean {:.1} LUFS, peak momentary {:.1} LUFS",
            self.mean_loudness_lufs, self.peak_momentary_lufs
        )?;
        writeln!(
            f,
            "onsets          {} ({:.2} per second)",
            self.onsets, self.onset_rate
        )?;
        if self.tempo_bpm > 0.0 {
            writeln!(
                f,
                "tempo           {:.1} BPM (mean pulse steadiness {:.2})",
                self.tempo_bpm, self.pulse_steadiness
            )
        } else {
            writeln!(
                f,
                "tempo           no steady pulse (mean pulse steadiness {:.2})",
                self.pulse_steadiness
            )
        }
    }
}
