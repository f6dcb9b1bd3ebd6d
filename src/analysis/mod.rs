//! TEMPORARY contract stub; replaced by the analysis branch at merge.
#![allow(missing_docs)]

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    Loudness,
    MomentaryLoudness,
    OnsetRate,
    Centroid,
    Flatness,
    Roughness,
    Pitch,
    PitchConfidence,
    Tempo,
    PulseSteadiness,
}

impl Feature {
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
}

impl std::str::FromStr for Feature {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Feature::ALL.into_iter().find(|f| f.name() == s).ok_or(())
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct FeatureFrame {
    pub end_frame: u64,
    pub loudness_lufs: f32,
    pub momentary_lufs: f32,
    pub onset_rate: f32,
    pub centroid_hz: f32,
    pub flatness: f32,
    pub roughness: f32,
    pub pitch_hz: f32,
    pub pitch_confidence: f32,
    pub chroma: [f32; 12],
    pub tempo_bpm: f32,
    pub pulse_steadiness: f32,
}

impl FeatureFrame {
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
}

pub struct Analyzer {
    hop: usize,
    pending: usize,
    frames: u64,
    channels: usize,
}

impl Analyzer {
    pub fn new(sample_rate: u32, channels: u16) -> Analyzer {
        Analyzer {
            hop: (sample_rate as usize * 256 / 48_000).max(1),
            pending: 0,
            frames: 0,
            channels: channels.max(1) as usize,
        }
    }
    pub fn hop_frames(&self) -> usize {
        self.hop
    }
    pub fn process(&mut self, interleaved: &[f32], mut on_frame: impl FnMut(&FeatureFrame)) {
        for _ in interleaved.chunks(self.channels) {
            self.frames += 1;
            self.pending += 1;
            if self.pending == self.hop {
                self.pending = 0;
                on_frame(&FeatureFrame {
                    end_frame: self.frames,
                    loudness_lufs: -70.0,
                    momentary_lufs: -70.0,
                    ..Default::default()
                });
            }
        }
    }
    pub fn reset(&mut self) {
        self.pending = 0;
        self.frames = 0;
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnalysisError(String);

pub fn read_wav(
    path: &std::path::Path,
    rate: Option<u32>,
) -> Result<(Vec<f32>, u16), AnalysisError> {
    let r = hound::WavReader::open(path).map_err(|e| AnalysisError(e.to_string()))?;
    let spec = r.spec();
    let _ = rate;
    let v: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.into_samples::<f32>().map(|s| s.unwrap_or(0.0)).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.into_samples::<i32>()
                .map(|s| s.unwrap_or(0) as f32 * scale)
                .collect()
        }
    };
    Ok((v, spec.channels))
}
