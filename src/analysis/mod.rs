//! Room-audio analysis: a streaming [`Analyzer`] that turns interleaved samples of any channel
//! count into a [`FeatureFrame`] every hop (256 frames at 48 kHz, scaled with the rate).
//!
//! # Real-time contract
//!
//! [`Analyzer::new`] allocates every buffer and plans the FFTs; [`Analyzer::process`] and
//! [`Analyzer::reset`] never allocate, lock, block, log or panic, and do bounded work per
//! sample. The result depends only on the samples, never on how they are chunked: every
//! sample goes through the same per-sample path and hops complete at fixed frame counts.
//!
//! # Signal path
//!
//! ```text
//! interleaved ─┬─ each channel: K-weighting ─▶ momentary (400 ms) / short-term (3 s) LUFS
//!              └─ mean of channels (mono) ─▶ 20 Hz high-pass (removes DC) ─▶ history
//!                   every hop: Hann FFT of the last frame ─▶ flux, centroid, flatness,
//!                                                           roughness, chroma
//!                              YIN on the same frame     ─▶ pitch, confidence
//!                              flux peaks (median thr.)  ─▶ onsets (refined to 0.5 ms), rate
//!                              flux over median, 8 s     ─▶ tempo, pulse steadiness
//! ```
//!
//! Non-finite samples are replaced by 0 (and counted, see [`Analyzer::replaced_samples`]);
//! finite samples are clamped to ±[`MAX_INPUT`] so that no state can overflow. Silence gives
//! loudness [`LOUDNESS_FLOOR_LUFS`], centroid, flatness, roughness, chroma, pitch and
//! confidence 0, no onsets, tempo and steadiness 0. Units and methods of every feature are
//! documented in `docs/analysis.md`.

pub mod aliasing;
pub(crate) mod loudness;
mod onset;
mod pitch;
pub mod report;
mod spectrum;
mod tempo;
mod wav;

use std::fmt;
use std::str::FromStr;

pub use loudness::{LOUDNESS_FLOOR_LUFS, MOMENTARY_SECS, SHORT_TERM_SECS};
pub use onset::{MIN_ONSET_GAP_SECS, ONSET_RATE_SECS};
pub use pitch::{PITCH_MAX_HZ, PITCH_MIN_HZ};
pub use tempo::{TEMPO_MAX_BPM, TEMPO_MIN_BPM, TEMPO_WINDOW_SECS};
pub use wav::{
    read_wav, wav_sample_rate, AnalysisError, Truncation, WavStream, MAX_CHANNELS, MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE, PIECE_FRAMES,
};

use loudness::{HighPass, Loudness};
use onset::OnsetDetector;
use pitch::Yin;
use spectrum::Spectrum;
use tempo::TempoTracker;

/// Input samples are clamped to ±this (+60 dBFS).
pub const MAX_INPUT: f32 = 1_000.0;
/// Cut-off of the high-pass that removes DC before the mono features, in Hz.
pub const DC_HIGHPASS_HZ: f64 = 20.0;
/// Frames below this RMS (-80 dBFS, after the high-pass) count as silent.
pub const SILENCE_RMS: f32 = 1e-4;
/// Roughness and chroma use a frame this many times longer (8192 frames, 171 ms at 48 kHz),
/// for the frequency resolution that partials a few Hz apart need.
pub const TONAL_FRAME_FACTOR: usize = 4;
/// Roughness and chroma are refreshed every this many hops.
pub const TONAL_EVERY_HOPS: u64 = 2;
/// Onsets a [`FeatureFrame`] can carry (one per hop is the most the detector produces).
pub const MAX_ONSETS_PER_HOP: usize = 4;

/// Every feature a mapping can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Short-term loudness: K-weighted, 3 s window, LUFS.
    Loudness,
    /// Momentary loudness: K-weighted, 400 ms window, LUFS.
    MomentaryLoudness,
    /// Onsets per second over the last 3 s.
    OnsetRate,
    /// Spectral centroid, Hz.
    Centroid,
    /// Spectral flatness (geometric / arithmetic mean of the power spectrum), 0..1.
    Flatness,
    /// Sensory roughness of the spectral peaks (Plomp–Levelt / Sethares), 0..1.
    Roughness,
    /// Fundamental frequency (YIN), Hz.
    Pitch,
    /// Confidence of the pitch (1 − aperiodicity), 0..1.
    PitchConfidence,
    /// Tempo of a steady pulse, BPM (0 when there is none).
    Tempo,
    /// How steady and strong a shared pulse is, 0..1.
    PulseSteadiness,
}

impl Feature {
    /// Every feature, in a stable order.
    pub const ALL: [Feature; 10] = [
        Feature::Loudness,
        Feature::MomentaryLoudness,
        Feature::OnsetRate,
        Feature::Centroid,
        Feature::Flatness,
        Feature::Roughness,
        Feature::Pitch,
        Feature::PitchConfidence,
        Feature::Tempo,
        Feature::PulseSteadiness,
    ];

    /// The snake_case name patches and the CSV use.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Loudness => "loudness",
            Feature::MomentaryLoudness => "momentary_loudness",
            Feature::OnsetRate => "onset_rate",
            Feature::Centroid => "centroid",
            Feature::Flatness => "flatness",
            Feature::Roughness => "roughness",
            Feature::Pitch => "pitch",
            Feature::PitchConfidence => "pitch_confidence",
            Feature::Tempo => "tempo",
            Feature::PulseSteadiness => "pulse_steadiness",
        }
    }

    /// The unit of the feature's values.
    pub fn unit(self) -> &'static str {
        match self {
            Feature::Loudness | Feature::MomentaryLoudness => "LUFS",
            Feature::OnsetRate => "1/s",
            Feature::Centroid | Feature::Pitch => "Hz",
            Feature::Flatness
            | Feature::Roughness
            | Feature::PitchConfidence
            | Feature::PulseSteadiness => "0..1",
            Feature::Tempo => "BPM",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A feature name that is not one of [`Feature::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown feature `{0}` (expected one of: {names})", names = Feature::ALL.map(Feature::name).join(", "))]
pub struct UnknownFeature(pub String);

impl FromStr for Feature {
    type Err = UnknownFeature;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Feature::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFeature(s.to_string()))
    }
}

/// Onsets found in one hop, as absolute input-frame positions (fixed size, no heap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnsetTimes {
    times: [u64; MAX_ONSETS_PER_HOP],
    len: u8,
}

impl OnsetTimes {
    /// The onset positions, in input frames since the start (or the last reset).
    pub fn as_slice(&self) -> &[u64] {
        &self.times[..usize::from(self.len)]
    }

    /// How many onsets.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No onset in this hop.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, frame: u64) {
        if usize::from(self.len) < MAX_ONSETS_PER_HOP {
            self.times[usize::from(self.len)] = frame;
            self.len += 1;
        }
    }
}

/// The features at the end of one hop. Every value is finite.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FeatureFrame {
    /// Input frames consumed when this frame completed.
    pub end_frame: u64,
    /// Short-term loudness (3 s), LUFS, floored at [`LOUDNESS_FLOOR_LUFS`].
    pub loudness_lufs: f32,
    /// Momentary loudness (400 ms), LUFS, floored at [`LOUDNESS_FLOOR_LUFS`].
    pub momentary_lufs: f32,
    /// Onsets per second over the last [`ONSET_RATE_SECS`].
    pub onset_rate: f32,
    /// Onsets detected in this hop (they lie up to one analysis frame, ~50 ms, before
    /// `end_frame`).
    pub onset_times: OnsetTimes,
    /// Spectral centroid, Hz (0 when silent).
    pub centroid_hz: f32,
    /// Spectral flatness, 0 (tonal) ..1 (white noise ≈ 0.56), 0 when silent.
    pub flatness: f32,
    /// Roughness, 0..1 (0 when silent).
    pub roughness: f32,
    /// Fundamental frequency, Hz: YIN's best estimate (0 when silent); read it with
    /// `pitch_confidence`.
    pub pitch_hz: f32,
    /// Pitch confidence, 0..1 (0 when silent).
    pub pitch_confidence: f32,
    /// Power per pitch class (C = 0 … B = 11), the strongest scaled to 1 (all 0 when silent).
    pub chroma: [f32; 12],
    /// Tempo, BPM in 54..220 (60..200 ± a margin), or 0 without a steady pulse.
    pub tempo_bpm: f32,
    /// Pulse steadiness, 0..1.
    pub pulse_steadiness: f32,
}

impl FeatureFrame {
    /// The value of one feature.
    pub fn get(&self, f: Feature) -> f32 {
        match f {
            Feature::Loudness => self.loudness_lufs,
            Feature::MomentaryLoudness => self.momentary_lufs,
            Feature::OnsetRate => self.onset_rate,
            Feature::Centroid => self.centroid_hz,
            Feature::Flatness => self.flatness,
            Feature::Roughness => self.roughness,
            Feature::Pitch => self.pitch_hz,
            Feature::PitchConfidence => self.pitch_confidence,
            Feature::Tempo => self.tempo_bpm,
            Feature::PulseSteadiness => self.pulse_steadiness,
        }
    }

    /// Seconds of input when this frame completed.
    pub fn end_secs(&self, sample_rate: u32) -> f64 {
        self.end_frame as f64 / f64::from(sample_rate)
    }
}

/// The streaming analyzer; every buffer is allocated in `new`.
pub struct Analyzer {
    sample_rate: u32,
    channels: usize,
    hop: usize,
    frame_len: usize,
    /// The last mono samples (high-passed); the newest at the end once a hop completes.
    history: Box<[f32]>,
    hop_pos: usize,
    /// Sum of the channels of the frame being read, and how many have arrived.
    frame_sum: f32,
    frame_channel: usize,
    frames: u64,
    replaced: u64,
    /// Linear gain applied to every input sample first (the room's calibration).
    input_gain: f32,
    highpass: HighPass,
    loudness: Loudness,
    spectrum: Spectrum,
    /// The longer FFT for roughness and chroma, refreshed every `TONAL_EVERY_HOPS` hops.
    tonal: Spectrum,
    tonal_len: usize,
    hops: u64,
    roughness: f32,
    chroma: [f32; 12],
    yin: Yin,
    onsets: OnsetDetector,
    tempo: TempoTracker,
}

impl Analyzer {
    /// An analyzer for `channels` interleaved channels at `sample_rate` Hz, with the default
    /// hop (256 frames at 48 kHz, scaled with the rate). Rates are clamped to
    /// [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and 0 channels count as 1.
    pub fn new(sample_rate: u32, channels: u16) -> Analyzer {
        let rate = sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE);
        let hop = (256.0 * f64::from(rate) / 48_000.0).round() as usize;
        Self::with_hop(rate, channels, hop)
    }

    /// Like [`Analyzer::new`] with a hop of `hop_frames` (clamped to 1..=half the analysis
    /// frame, which is 2048 frames at 48 kHz).
    pub fn with_hop(sample_rate: u32, channels: u16, hop_frames: usize) -> Analyzer {
        let rate = sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE);
        let channels = usize::from(channels.max(1));
        let frame_len = ((2048.0 * f64::from(rate) / 48_000.0).round() as usize)
            .next_power_of_two()
            .max(256);
        let hop = hop_frames.clamp(1, frame_len / 2);
        let onsets = OnsetDetector::new(rate, hop);
        let tonal_len = TONAL_FRAME_FACTOR * frame_len;
        let history_len = onsets.history_len(frame_len, hop).max(tonal_len);
        Analyzer {
            sample_rate: rate,
            channels,
            hop,
            frame_len,
            history: vec![0.0; history_len].into_boxed_slice(),
            hop_pos: 0,
            frame_sum: 0.0,
            frame_channel: 0,
            frames: 0,
            replaced: 0,
            input_gain: 1.0,
            highpass: HighPass::new(f64::from(rate), DC_HIGHPASS_HZ),
            loudness: Loudness::new(rate, channels, hop),
            spectrum: Spectrum::new(rate, frame_len),
            tonal: Spectrum::new(rate, tonal_len),
            tonal_len,
            hops: 0,
            roughness: 0.0,
            chroma: [0.0; 12],
            yin: Yin::new(rate, frame_len),
            onsets,
            tempo: TempoTracker::new(rate, hop),
        }
    }

    /// Frames per hop: one [`FeatureFrame`] per this many input frames.
    pub fn hop_frames(&self) -> usize {
        self.hop
    }

    /// The sample rate analysed, in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Interleaved channels expected.
    pub fn channels(&self) -> u16 {
        self.channels as u16
    }

    /// Length of the FFT / YIN analysis frame, in frames.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Calibrates the input: every sample is scaled by `db` decibels before the analysis
    /// (non-finite `db` counts as 0).
    pub fn set_input_gain_db(&mut self, db: f32) {
        self.input_gain = if db.is_finite() {
            10f32.powf(db / 20.0)
        } else {
            1.0
        };
    }

    /// Non-finite input samples replaced by 0 since `new` or the last reset.
    pub fn replaced_samples(&self) -> u64 {
        self.replaced
    }

    /// Feeds interleaved samples (any length, any chunking; a frame may be split across
    /// calls) and calls `on_frame` for each completed hop. Real-time safe.
    pub fn process(&mut self, interleaved: &[f32], mut on_frame: impl FnMut(&FeatureFrame)) {
        for &x in interleaved {
            let x = if x.is_finite() {
                (x.clamp(-MAX_INPUT, MAX_INPUT) * self.input_gain).clamp(-MAX_INPUT, MAX_INPUT)
            } else {
                self.replaced += 1;
                0.0
            };
            self.loudness.push(self.frame_channel, x);
            self.frame_sum += x;
            self.frame_channel += 1;
            if self.frame_channel < self.channels {
                continue;
            }
            let mono = self.highpass.tick(self.frame_sum / self.channels as f32);
            self.frame_sum = 0.0;
            self.frame_channel = 0;
            let len = self.history.len();
            self.history[len - self.hop + self.hop_pos] = mono;
            self.hop_pos += 1;
            self.frames += 1;
            if self.hop_pos == self.hop {
                let frame = self.end_hop();
                on_frame(&frame);
                self.history.copy_within(self.hop.., 0);
                self.hop_pos = 0;
            }
        }
    }

    fn end_hop(&mut self) -> FeatureFrame {
        let (momentary_lufs, loudness_lufs) = self.loudness.end_hop(self.hop);
        let frame = &self.history[self.history.len() - self.frame_len..];
        let mean_square = frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32;
        let silent = mean_square < SILENCE_RMS * SILENCE_RMS;
        let spectral = self.spectrum.analyse(frame, silent);
        if silent {
            (self.roughness, self.chroma) = (0.0, [0.0; 12]);
        } else if self.hops.is_multiple_of(TONAL_EVERY_HOPS) {
            let long = &self.history[self.history.len() - self.tonal_len..];
            (self.roughness, self.chroma) = self.tonal.tonal(long);
        }
        self.hops += 1;
        let pitch = if silent {
            pitch::PitchEstimate::default()
        } else {
            self.yin.estimate(frame)
        };
        let mut onset_times = OnsetTimes::default();
        if let Some(onset) = self.onsets.step(
            spectral.flux,
            self.frames,
            self.hop,
            self.frame_len,
            &self.history,
        ) {
            onset_times.push(onset);
        }
        let strength = (spectral.flux - self.onsets.median()).max(0.0);
        let (tempo_bpm, pulse_steadiness) = self.tempo.push(strength);
        FeatureFrame {
            end_frame: self.frames,
            loudness_lufs,
            momentary_lufs,
            onset_rate: self.onsets.rate(self.frames, self.sample_rate),
            onset_times,
            centroid_hz: spectral.centroid_hz,
            flatness: spectral.flatness,
            roughness: self.roughness,
            pitch_hz: pitch.hz,
            pitch_confidence: pitch.confidence,
            chroma: self.chroma,
            tempo_bpm,
            pulse_steadiness,
        }
    }

    /// Returns to the state after `new` (positions restart at 0). Real-time safe.
    pub fn reset(&mut self) {
        self.history.iter_mut().for_each(|x| *x = 0.0);
        self.hop_pos = 0;
        self.frame_sum = 0.0;
        self.frame_channel = 0;
        self.frames = 0;
        self.replaced = 0;
        self.highpass.reset();
        self.loudness.reset();
        self.spectrum.reset();
        self.hops = 0;
        self.roughness = 0.0;
        self.chroma = [0.0; 12];
        self.onsets.reset();
        self.tempo.reset();
    }
}

/// The analyzer moves to an analysis thread.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Analyzer>();
};

/// Analyses a whole recording: every frame, in order.
pub fn analyze_samples(samples: &[f32], channels: u16, sample_rate: u32) -> Vec<FeatureFrame> {
    let mut analyzer = Analyzer::new(sample_rate, channels);
    let mut frames =
        Vec::with_capacity(samples.len() / usize::from(channels.max(1)) / analyzer.hop + 1);
    analyzer.process(samples, |f| frames.push(*f));
    frames
}
