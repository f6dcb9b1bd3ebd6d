//! A streaming WAV writer that never writes a wrong header: a RIFF WAVE file while the data
//! fits one (under 4 GiB), an RF64 file (EBU Tech 3306) beyond, decided when the writer
//! finishes.
//!
//! Home-made rather than a crate: hound (used for reading) cannot write RF64, and the one
//! crate that does (bwavfile) brings clap 2, uuid 0.8 and encoding along, seeks to rewrite the
//! header on every write and pads the header to 16 KiB. What is needed here is small: one
//! header, reserved as EBU Tech 3306 recommends (a `JUNK` chunk the size of a `ds64` chunk right
//! after `WAVE`), patched once at the end — into `RF64`/`ds64` when the sizes need 64 bits.

use std::io::{self, Seek, SeekFrom, Write};

use crate::rng::Rng;

/// WAV sample format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavFormat {
    /// 24-bit integer PCM (TPDF-dithered with a seeded generator).
    Pcm24,
    /// 32-bit IEEE float.
    Float32,
}

impl WavFormat {
    /// Bytes per sample.
    pub fn sample_bytes(self) -> u64 {
        match self {
            WavFormat::Pcm24 => 3,
            WavFormat::Float32 => 4,
        }
    }
}

/// The container a finished file ended up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// A plain RIFF WAVE file (everything under 4 GiB).
    Riff,
    /// An RF64 file (EBU Tech 3306): 64-bit sizes in a `ds64` chunk.
    Rf64,
}

/// Channels written (interleaved stereo).
const CHANNELS: u16 = 2;
/// Size of the `ds64` chunk's body without a table: RIFF size, data size, sample count (u64
/// each) and the table length (u32).
const DS64_BODY: u32 = 28;
/// Offset of the `JUNK`/`ds64` chunk.
const DS64_AT: u64 = 12;
/// Largest size a 32-bit RIFF field holds; `0xFFFFFFFF` itself means "see ds64" in RF64.
const RIFF_MAX: u64 = u32::MAX as u64 - 1;
/// `KSDATAFORMAT_SUBTYPE_PCM`.
const SUBTYPE_PCM: [u8; 16] = [
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];
/// Samples encoded per write to the sink.
const ENCODE_CHUNK: usize = 8192;

/// Writes interleaved stereo samples as a WAV (or RF64) file into any `Write + Seek` sink.
pub struct WavWriter<W: Write + Seek> {
    out: W,
    format: WavFormat,
    /// Offset of the `data` chunk's size field.
    data_size_at: u64,
    data_bytes: u64,
    dither: Rng,
    encoded: Vec<u8>,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the header (sizes to be filled in by [`WavWriter::finish`]) at the sink's start.
    /// `dither_seed` seeds the TPDF dither of 24-bit output, so files are bit-identical.
    pub fn new(
        mut out: W,
        sample_rate: u32,
        format: WavFormat,
        dither_seed: u64,
    ) -> io::Result<Self> {
        let header = header(sample_rate, format);
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&header)?;
        Ok(Self {
            out,
            format,
            data_size_at: header.len() as u64 - 4,
            data_bytes: 0,
            dither: Rng::new(dither_seed),
            encoded: Vec::with_capacity(ENCODE_CHUNK * 4),
        })
    }

    /// Appends interleaved stereo samples (24-bit: scaled by 2^23 − 1, dithered, clipped).
    pub fn write_samples(&mut self, samples: &[f32]) -> io::Result<()> {
        for chunk in samples.chunks(ENCODE_CHUNK) {
            self.encoded.clear();
            match self.format {
                WavFormat::Float32 => {
                    self.encoded.resize(4 * chunk.len(), 0);
                    for (out, &s) in self.encoded.chunks_exact_mut(4).zip(chunk) {
                        out.copy_from_slice(&s.to_le_bytes());
                    }
                }
                WavFormat::Pcm24 => {
                    self.encoded.resize(3 * chunk.len(), 0);
                    let mut dither = self.dither;
                    let mut pairs = self.encoded.chunks_exact_mut(6);
                    let mut samples = chunk.chunks_exact(2);
                    for (out, pair) in (&mut pairs).zip(&mut samples) {
                        // TPDF dither of ±1 LSB: two 16-bit uniforms a sample, one draw a pair
                        let draw = dither.next_u64();
                        out[..3].copy_from_slice(&pcm24(pair[0], draw));
                        out[3..].copy_from_slice(&pcm24(pair[1], draw >> 32));
                    }
                    if let ([s], out) = (samples.remainder(), pairs.into_remainder()) {
                        out.copy_from_slice(&pcm24(*s, dither.next_u64()));
                    }
                    self.dither = dither;
                }
            }
            let encoded = std::mem::take(&mut self.encoded);
            let written = self.write_encoded(&encoded);
            self.encoded = encoded;
            written?;
        }
        Ok(())
    }

    /// Appends bytes already in the file's sample format.
    pub fn write_encoded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.data_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Gives the sink back without finishing the file (to start it over).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Bytes of sample data written so far.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Pads the data to an even length, fills in the sizes (RIFF, or RF64 when they do not fit
    /// 32 bits) and flushes; returns the sink and the container chosen.
    pub fn finish(mut self) -> io::Result<(W, Container)> {
        if self.data_bytes % 2 == 1 {
            self.out.write_all(&[0])?;
        }
        let padded = self.data_bytes + self.data_bytes % 2;
        let riff_size = self.data_size_at + 4 + padded - 8;
        let frames = self.data_bytes / (self.format.sample_bytes() * u64::from(CHANNELS));
        let container = if riff_size > RIFF_MAX {
            Container::Rf64
        } else {
            Container::Riff
        };
        let mut ds64 = Vec::with_capacity(8 + DS64_BODY as usize);
        match container {
            Container::Riff => {
                self.patch(0, b"RIFF")?;
                self.patch(4, &(riff_size as u32).to_le_bytes())?;
                self.patch(self.data_size_at, &(self.data_bytes as u32).to_le_bytes())?;
            }
            Container::Rf64 => {
                self.patch(0, b"RF64")?;
                self.patch(4, &u32::MAX.to_le_bytes())?;
                ds64.extend_from_slice(b"ds64");
                ds64.extend_from_slice(&DS64_BODY.to_le_bytes());
                ds64.extend_from_slice(&riff_size.to_le_bytes());
                ds64.extend_from_slice(&self.data_bytes.to_le_bytes());
                ds64.extend_from_slice(&frames.to_le_bytes());
                ds64.extend_from_slice(&0u32.to_le_bytes());
                self.patch(DS64_AT, &ds64)?;
                self.patch(self.data_size_at, &u32::MAX.to_le_bytes())?;
            }
        }
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok((self.out, container))
    }

    fn patch(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        self.out.seek(SeekFrom::Start(at))?;
        self.out.write_all(bytes)
    }
}

/// A sample as 24-bit PCM: scaled by 2^23 − 1, TPDF-dithered with the low 32 bits of `draw`
/// (two 16-bit uniforms), rounded and clipped.
#[inline(always)]
fn pcm24(s: f32, draw: u64) -> [u8; 3] {
    let (a, b) = ((draw & 0xFFFF) as f64, ((draw >> 16) & 0xFFFF) as f64);
    let d = (a - b) * (1.0 / 65_536.0);
    let v = round_nearest(f64::from(s) * 8_388_607.0 + d).clamp(-8_388_608.0, 8_388_607.0) as i32;
    let [b0, b1, b2, _] = v.to_le_bytes();
    [b0, b1, b2]
}

/// Rounds to the nearest integer (ties to even) for |x| < 2^51, in two additions: baseline
/// x86-64 has no rounding instruction and would call libm.
#[inline(always)]
fn round_nearest(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 × 2^52
    (x + MAGIC) - MAGIC
}

/// The header up to the `data` chunk's size field: `RIFF`, `WAVE`, a `JUNK` chunk reserving
/// room for `ds64`, `fmt ` (WAVE_FORMAT_EXTENSIBLE for 24-bit PCM, IEEE float for float32, as
/// hound writes them), `data`.
fn header(sample_rate: u32, format: WavFormat) -> Vec<u8> {
    let sample_bytes = format.sample_bytes() as u16;
    let block_align = CHANNELS * sample_bytes;
    let mut h = Vec::with_capacity(104);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"JUNK");
    h.extend_from_slice(&DS64_BODY.to_le_bytes());
    h.extend_from_slice(&[0; DS64_BODY as usize]);
    h.extend_from_slice(b"fmt ");
    let (tag, fmt_size): (u16, u32) = match format {
        WavFormat::Pcm24 => (0xFFFE, 40),
        WavFormat::Float32 => (3, 16),
    };
    h.extend_from_slice(&fmt_size.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&CHANNELS.to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&(sample_bytes * 8).to_le_bytes());
    if format == WavFormat::Pcm24 {
        h.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        h.extend_from_slice(&24u16.to_le_bytes()); // valid bits
        h.extend_from_slice(&3u32.to_le_bytes()); // front left, front right
        h.extend_from_slice(&SUBTYPE_PCM);
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A sink that keeps the first `keep` bytes and only counts the rest: a file of any size
    /// without the disk.
    struct Sparse {
        head: Vec<u8>,
        keep: usize,
        pos: u64,
        len: u64,
    }

    impl Sparse {
        fn new(keep: usize) -> Self {
            Self {
                head: vec![0; keep],
                keep,
                pos: 0,
                len: 0,
            }
        }
    }

    impl Write for Sparse {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            for (i, &b) in buf.iter().enumerate() {
                let at = self.pos + i as u64;
                if at < self.keep as u64 {
                    self.head[at as usize] = b;
                } else {
                    break;
                }
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
                SeekFrom::End(d) => (self.len as i64 + d) as u64,
                SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
            };
            Ok(self.pos)
        }
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn rounding_matches_the_standard_library_away_from_ties() {
        let mut x = -8_388_610.0f64;
        while x < 8_388_610.0 {
            for frac in [0.0, 0.25, 0.5 - 1e-9, 0.5 + 1e-9, 0.75, 0.999_999] {
                for v in [x + frac, -(x + frac)] {
                    assert_eq!(round_nearest(v), v.round(), "{v}");
                }
            }
            assert_eq!(round_nearest(x + 0.5), (x + 0.5).round_ties_even());
            x += 8_191.0;
        }
    }

    #[test]
    fn a_short_file_is_riff_and_reads_back_with_hound() {
        for format in [WavFormat::Pcm24, WavFormat::Float32] {
            let samples: Vec<f32> = (0..2_000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
            let mut w = WavWriter::new(Cursor::new(Vec::new()), 44_100, format, 7).unwrap();
            w.write_samples(&samples).unwrap();
            let (cursor, container) = w.finish().unwrap();
            assert_eq!(container, Container::Riff);
            let bytes = cursor.into_inner();
            let mut r = hound::WavReader::new(Cursor::new(&bytes)).unwrap();
            let spec = r.spec();
            assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));
            let back: Vec<f32> = match format {
                WavFormat::Float32 => r.samples::<f32>().map(Result::unwrap).collect(),
                WavFormat::Pcm24 => r
                    .samples::<i32>()
                    .map(|s| s.unwrap() as f32 / 8_388_607.0)
                    .collect(),
            };
            assert_eq!(back.len(), samples.len());
            let worst = back
                .iter()
                .zip(&samples)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst < 3e-7, "{format:?}: {worst}");
            assert_eq!(&bytes[12..16], b"JUNK");
        }
    }

    /// Writes `data_bytes` of zero samples through the writer into a sink that keeps only the
    /// header, and returns the header.
    fn header_after(data_bytes: u64, format: WavFormat) -> (Vec<u8>, Container, u64) {
        let mut w = WavWriter::new(Sparse::new(128), 48_000, format, 1).unwrap();
        let zeros = vec![0u8; 1 << 22];
        let mut left = data_bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            w.write_encoded(&zeros[..n]).unwrap();
            left -= n as u64;
        }
        let (sink, container) = w.finish().unwrap();
        (sink.head, container, sink.len)
    }

    #[test]
    fn the_4_gib_boundary_switches_to_rf64_with_a_correct_ds64() {
        // float32: 80 header bytes, 8 bytes a frame. The last RIFF size that fits is
        // 0xFFFFFFFE = 72 + data: data 0xFFFFFFB6 is not whole frames, so the largest RIFF
        // file holds 536_870_902 frames; one more frame needs RF64.
        let frame = 8u64;
        let largest = (RIFF_MAX - 72) / frame * frame;
        let (head, container, len) = header_after(largest, WavFormat::Float32);
        assert_eq!(container, Container::Riff);
        assert_eq!(&head[0..4], b"RIFF");
        assert_eq!(u64::from(u32_at(&head, 4)), len - 8);
        assert_eq!(u64::from(u32_at(&head, 76)), largest);

        let over = largest + frame;
        let (head, container, len) = header_after(over, WavFormat::Float32);
        assert_eq!(container, Container::Rf64);
        assert_eq!(&head[0..4], b"RF64");
        assert_eq!(u32_at(&head, 4), u32::MAX);
        assert_eq!(&head[12..16], b"ds64");
        assert_eq!(u32_at(&head, 16), 28);
        assert_eq!(u64_at(&head, 20), len - 8, "RIFF size");
        assert_eq!(u64_at(&head, 28), over, "data size");
        assert_eq!(u64_at(&head, 36), over / frame, "sample count");
        assert_eq!(&head[72..76], b"data");
        assert_eq!(u32_at(&head, 76), u32::MAX);
        println!(
            "float32: {largest} data bytes stay RIFF ({len} byte file with the next frame is RF64)"
        );
    }
}
