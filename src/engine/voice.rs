//! The voice kernel: eight oscillator lanes computed together, so the compiler turns each
//! line into one SIMD instruction over all lanes (structure of arrays, branch-free inner loop).
//!
//! One lane = a phase-accumulator oscillator (band-limited saw and pulse, a second detuned
//! saw, an FM sine and noise), two TPT state-variable filters (low-pass/band-pass and a second
//! band-pass for formants), a one-pole amplitude envelope and equal-power pan gains.
//! Parameters change at control rate; the per-sample loop only reads them.
//!
//! The saws and the pulse (a difference of two saws) are band-limited with a 4-point BLEP:
//! each wrap's step is smoothed by a cubic B-spline with knots 1.25 samples apart (see
//! [`blep4`]), 2.5 samples before and after it, which keeps their aliasing more than 50 dB
//! below the harmonics up to C8 (4186 Hz) at 48 kHz, for the narrowest pulse too; the
//! price is a gentle roll-off of the top octaves (−1 dB at 5 kHz, −4 dB at 10 kHz, −9 dB at
//! 15 kHz at 48 kHz).

/// Lanes computed together.
pub const LANES: usize = 8;

type Lanes = [f32; LANES];

/// One frame of per-lane output: chunks add into these with vertical SIMD adds, and the
/// lanes are summed to one sample only once per frame, after every chunk ([`fold_lanes`]).
pub type LaneFrame = [f32; LANES];

/// Sums each frame's lanes into `out` (overwriting it), as a tree:
/// `((y0 + y1) + (y2 + y3)) + ((y4 + y5) + (y6 + y7))`, the same bits on every CPU. Real-time
/// safe.
#[inline]
pub fn fold_lanes(lanes: &[LaneFrame], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU reports AVX2.
        unsafe { fold_lanes_avx2(lanes, out) };
        return;
    }
    fold_lanes_portable(lanes, out);
}

#[inline]
fn fold_lanes_portable(lanes: &[LaneFrame], out: &mut [f32]) {
    for (o, y) in out.iter_mut().zip(lanes) {
        *o = ((y[0] + y[1]) + (y[2] + y[3])) + ((y[4] + y[5]) + (y[6] + y[7]));
    }
}

/// [`fold_lanes`] eight frames at a time with horizontal adds, which add the same pairs in the
/// same tree: two rounds of `hadd` give each frame's `(y0 + y1) + (y2 + y3)` in the low half
/// and `(y4 + y5) + (y6 + y7)` in the high half, and one add joins them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fold_lanes_avx2(lanes: &[LaneFrame], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = out.len().min(lanes.len());
    let whole = n / 8 * 8;
    for (o, y) in out[..whole]
        .chunks_exact_mut(8)
        .zip(lanes[..whole].chunks_exact(8))
    {
        // SAFETY: each `y[j]` is 8 floats and `o` is 8 floats (unaligned loads and store).
        unsafe {
            let f = |j: usize| _mm256_loadu_ps(y[j].as_ptr());
            let h01 = _mm256_hadd_ps(f(0), f(1));
            let h23 = _mm256_hadd_ps(f(2), f(3));
            let h45 = _mm256_hadd_ps(f(4), f(5));
            let h67 = _mm256_hadd_ps(f(6), f(7));
            let q0 = _mm256_hadd_ps(h01, h23);
            let q1 = _mm256_hadd_ps(h45, h67);
            let low = _mm256_permute2f128_ps::<0x20>(q0, q1);
            let high = _mm256_permute2f128_ps::<0x31>(q0, q1);
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_add_ps(low, high));
        }
    }
    fold_lanes_portable(&lanes[whole..n], &mut out[whole..n]);
}

/// Per-lane parameters, written at control rate by the score logic.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaneParams {
    /// Phase increment per sample (frequency / sample rate).
    pub dt: Lanes,
    /// BLEP knots per unit of phase, `1 / (dt × BLEP_STRETCH)`, kept with `dt`.
    pub blep_rate: Lanes,
    /// Phase increment of the second saw.
    pub dt2: Lanes,
    /// BLEP knots per unit of the second saw's phase.
    pub blep_rate2: Lanes,
    /// FM modulator frequency as a multiple of the carrier.
    pub mod_ratio: Lanes,
    /// FM index in cycles of phase deviation.
    pub fm_index: Lanes,
    /// Saw level.
    pub saw: Lanes,
    /// Pulse level.
    pub pulse: Lanes,
    /// Pulse width, 0.05..0.95.
    pub width: Lanes,
    /// Second saw level.
    pub saw2: Lanes,
    /// FM sine level.
    pub sine: Lanes,
    /// Noise level.
    pub noise: Lanes,
    /// Filter 1 coefficients (TPT SVF a1, a2, a3) and damping k.
    pub f1: [Lanes; 4],
    /// Filter 2 coefficients.
    pub f2: [Lanes; 4],
    /// Filter 1 low-pass output level.
    pub lp: Lanes,
    /// Filter 1 band-pass output level (normalized to unity peak gain).
    pub bp: Lanes,
    /// Filter 2 band-pass output level (normalized to unity peak gain).
    pub bp2: Lanes,
    /// Envelope target.
    pub env_target: Lanes,
    /// Envelope one-pole coefficient per sample.
    pub env_coef: Lanes,
    /// Left gain (level × pan).
    pub gain_l: Lanes,
    /// Right gain (level × pan).
    pub gain_r: Lanes,
}

/// Per-lane state carried from sample to sample.
#[derive(Clone, Copy, Debug)]
pub struct LaneState {
    /// Oscillator phase in [0, 1).
    pub phase: Lanes,
    /// Second saw phase.
    pub phase2: Lanes,
    /// FM modulator phase.
    pub mod_phase: Lanes,
    /// Filter 1 integrator states.
    pub f1_ic: [Lanes; 2],
    /// Filter 2 integrator states.
    pub f2_ic: [Lanes; 2],
    /// Envelope level.
    pub env: Lanes,
    /// Noise generator state (xorshift32, never zero).
    pub noise: [u32; LANES],
}

impl LaneState {
    /// Silent state with noise seeds derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut noise = [0u32; LANES];
        for (i, n) in noise.iter_mut().enumerate() {
            let mixed = crate::rng::Rng::derive(seed, i as u64).next_u64();
            *n = (mixed as u32) | 1;
        }
        Self {
            phase: [0.0; LANES],
            phase2: [0.0; LANES],
            mod_phase: [0.0; LANES],
            f1_ic: [[0.0; LANES]; 2],
            f2_ic: [[0.0; LANES]; 2],
            env: [0.0; LANES],
            noise,
        }
    }
}

/// TPT state-variable filter coefficients `[a1, a2, a3, k]` for a cutoff and resonance.
/// Real-time safe.
#[inline]
pub fn svf_coefficients(cutoff_hz: f32, q: f32, sample_rate: f32) -> [f32; 4] {
    let w = (std::f32::consts::PI * cutoff_hz / sample_rate).clamp(1e-5, 1.50);
    let g = fast_tan(w);
    let k = 1.0 / q.max(0.05);
    let a1 = 1.0 / (1.0 + g * (g + k));
    let a2 = g * a1;
    let a3 = g * a2;
    [a1, a2, a3, k]
}

/// tan(x) for x in [0, 1.5], Padé [5/4] approximant (relative error < 1e-3 up to 1.4).
#[inline]
pub fn fast_tan(x: f32) -> f32 {
    let x2 = x * x;
    x * (945.0 - 105.0 * x2 + x2 * x2) / (945.0 - 420.0 * x2 + 15.0 * x2 * x2)
}

/// sin(2πt) for t in [0, 1): parabolic approximation with one refinement step.
#[inline(always)]
fn sin_unit(t: f32) -> f32 {
    // u in [-1, 1): sin(2πt) = -sin(πu)
    let u = 2.0 * t - 1.0;
    let y = 4.0 * u * (1.0 - u.abs());
    -(0.225 * (y * y.abs() - y) + y)
}

/// Width of a BLEP knot in samples: the B-spline is stretched by this factor, which moves
/// its first spectral null from the sample rate down to 0.8 × it, nearer the partials that
/// fold into the audible band. Measured at C8, saw and 5 % pulse: −51 and −38 dB at 1.0,
/// −58 and −45 dB at 1.1, −69 and −55 dB at 1.25 (the pulse decides).
pub const BLEP_STRETCH: f32 = 1.25;

/// Twice a band-limited step's residual (the cubic B-spline's integral minus the unit step)
/// at `u` knots after the step (`u` ≥ 0): `−1` at the step, back to 0 two knots on. A step
/// at `−u` has the negative residual. Branch-free (both pieces computed, then selected).
#[inline(always)]
fn step_residual(u: f32) -> f32 {
    let near = -1.0 + u * (4.0 / 3.0 + u * u * (-2.0 / 3.0 + u * 0.25));
    let v = 2.0 - u;
    let v = if v > 0.0 { v } else { 0.0 };
    let far = (v * v) * (v * v) * (-1.0 / 12.0);
    if u < 1.0 {
        near
    } else {
        far
    }
}

/// The 4-point BLEP correction for a saw `2t − 1` at phase `t` in [0, 1) that falls by 2 at
/// each wrap, `rate` BLEP knots per unit of phase: subtracted from the naive saw, it smooths
/// the last wrap (behind) and the next one (ahead) with a cubic B-spline two knots to either
/// side. Exact while a period spans at least 2 knots (fundamentals up to 19.2 kHz at
/// 48 kHz); above, a third wrap's skirt is missed.
#[inline(always)]
fn blep4(t: f32, rate: f32) -> f32 {
    step_residual(t * rate) - step_residual((1.0 - t) * rate)
}

/// One sample of lane `i`'s TPT state-variable filter: (band-pass, low-pass).
#[inline(always)]
fn svf_tick(x: f32, c: &[Lanes; 4], ic: &mut [Lanes; 2], i: usize) -> (f32, f32) {
    let v3 = x - ic[1][i];
    let v1 = c[0][i] * ic[0][i] + c[1][i] * v3;
    let v2 = ic[1][i] + c[1][i] * ic[0][i] + c[2][i] * v3;
    ic[0][i] = 2.0 * v1 - ic[0][i];
    ic[1][i] = 2.0 * v2 - ic[1][i];
    (v1, v2)
}

/// Wraps a phase in [0, 2) to [0, 1).
#[inline(always)]
fn wrap1(x: f32) -> f32 {
    if x >= 1.0 {
        x - 1.0
    } else {
        x
    }
}

/// Fractional part of a phase (`floor` is one instruction in the AVX2 build).
#[inline(always)]
fn wrap(x: f32) -> f32 {
    x - x.floor()
}

/// Which parts of the lane a kernel computes; each timbre gets its own build with only
/// what it uses (a skipped part has zero level, so the result is the same).
pub mod features {
    /// Band-limited saw.
    pub const SAW: u32 = 1;
    /// Band-limited pulse.
    pub const PULSE: u32 = 2;
    /// Second detuned saw.
    pub const SAW2: u32 = 4;
    /// Sine with FM modulator.
    pub const FM: u32 = 8;
    /// Noise.
    pub const NOISE: u32 = 16;
    /// Filter 1 (low-pass / band-pass).
    pub const F1: u32 = 32;
    /// Filter 2 (band-pass formant).
    pub const F2: u32 = 64;
    /// Everything.
    pub const ALL: u32 = 127;

    /// The feature sets there is a kernel for, with their cost per chunk-frame (tenths of a
    /// nanosecond, AVX2 build, measured with `examples/kernels.rs`): each timbre's own, then
    /// families that chunks of several timbres share. Costs do not add up feature by
    /// feature (a kernel with many features runs out of registers), hence a measured table.
    pub const KERNELS: [(u32, u32); 13] = [
        (FM, 89),
        (SAW | F1, 76),
        (SAW | PULSE | F1, 114),
        (PULSE | SAW2 | F1, 134),
        (SAW | SAW2 | F1, 104),
        (NOISE | F1 | F2, 80),
        (SAW | FM | F1, 155),
        (PULSE | FM | F1, 269),
        (SAW | SAW2 | F1 | F2, 128),
        (SAW | PULSE | SAW2 | F1, 136),
        (SAW | PULSE | FM | F1, 270),
        (SAW | PULSE | SAW2 | F1 | F2, 233),
        (ALL, 365),
    ];

    /// The cost of running the kernel for `set` (see [`KERNELS`]); 0 for nothing.
    pub fn cost(set: u32) -> u32 {
        if set == 0 {
            return 0;
        }
        let kernel = kernel_for(set);
        KERNELS
            .iter()
            .find(|(k, _)| *k == kernel)
            .map_or(u32::MAX, |(_, c)| *c)
    }

    /// Marks the lanes of a designed instrument (the kind in the bits above): they share
    /// chunks only with voices of the same instrument, and no kernel computes them.
    pub const DESIGNED: u32 = 1 << 8;

    /// The needs of a designed instrument's voice of pool kind `kind`.
    pub const fn designed(kind: u8) -> u32 {
        DESIGNED | (kind as u32) << 9
    }

    /// The cheapest kernel that computes everything in `set`.
    pub fn kernel_for(set: u32) -> u32 {
        let mut best = (ALL, u32::MAX);
        for (kernel, cost) in KERNELS {
            if kernel & set == set && cost < best.1 {
                best = (kernel, cost);
            }
        }
        best.0
    }
}

/// Eight lanes: parameters and state.
#[derive(Clone, Copy, Debug)]
pub struct LaneBank {
    /// Parameters.
    pub params: LaneParams,
    /// State.
    pub state: LaneState,
}

impl LaneBank {
    /// A silent bank.
    pub fn new(seed: u64) -> Self {
        Self {
            params: LaneParams::default(),
            state: LaneState::new(seed),
        }
    }

    /// Sets a lane's oscillator increments (and their reciprocals).
    #[inline]
    pub fn set_increments(&mut self, lane: usize, dt: f32, dt2: f32) {
        let p = &mut self.params;
        p.dt[lane] = dt.clamp(1e-7, 0.45);
        p.blep_rate[lane] = 1.0 / (p.dt[lane] * BLEP_STRETCH);
        p.dt2[lane] = dt2.clamp(1e-7, 0.45);
        p.blep_rate2[lane] = 1.0 / (p.dt2[lane] * BLEP_STRETCH);
    }

    /// Silences one lane at once (its slot is being freed). Real-time safe.
    pub fn clear_lane(&mut self, lane: usize) {
        let (p, s) = (&mut self.params, &mut self.state);
        p.env_target[lane] = 0.0;
        p.gain_l[lane] = 0.0;
        p.gain_r[lane] = 0.0;
        s.env[lane] = 0.0;
        s.f1_ic[0][lane] = 0.0;
        s.f1_ic[1][lane] = 0.0;
        s.f2_ic[0][lane] = 0.0;
        s.f2_ic[1][lane] = 0.0;
    }

    /// Renders with the kernel for `set` (one of [`features::KERNELS`]; anything else runs the
    /// kernel with every feature), adding into the outputs. Real-time safe.
    pub fn render_kernel(
        &mut self,
        set: u32,
        wide: bool,
        l: &mut [LaneFrame],
        r: &mut [LaneFrame],
    ) {
        use features::*;
        const K: [u32; 13] = {
            let mut k = [0; 13];
            let mut i = 0;
            while i < 13 {
                k[i] = KERNELS[i].0;
                i += 1;
            }
            k
        };
        match set {
            s if s == K[0] => self.render_add::<{ K[0] }>(wide, l, r),
            s if s == K[1] => self.render_add::<{ K[1] }>(wide, l, r),
            s if s == K[2] => self.render_add::<{ K[2] }>(wide, l, r),
            s if s == K[3] => self.render_add::<{ K[3] }>(wide, l, r),
            s if s == K[4] => self.render_add::<{ K[4] }>(wide, l, r),
            s if s == K[5] => self.render_add::<{ K[5] }>(wide, l, r),
            s if s == K[6] => self.render_add::<{ K[6] }>(wide, l, r),
            s if s == K[7] => self.render_add::<{ K[7] }>(wide, l, r),
            s if s == K[8] => self.render_add::<{ K[8] }>(wide, l, r),
            s if s == K[9] => self.render_add::<{ K[9] }>(wide, l, r),
            s if s == K[10] => self.render_add::<{ K[10] }>(wide, l, r),
            s if s == K[11] => self.render_add::<{ K[11] }>(wide, l, r),
            _ => self.render_add::<ALL>(wide, l, r),
        }
    }

    /// Renders `out_l.len()` frames with the kernel for feature set `F`, adding into the
    /// outputs. `wide` allows the AVX2 build where the CPU has it. Real-time safe.
    ///
    /// Both builds compute the same operations in the same order (Rust never fuses or
    /// reorders float arithmetic), so their output is bit-identical; AVX2 just does all
    /// eight lanes in one instruction.
    #[inline]
    pub fn render_add<const F: u32>(
        &mut self,
        wide: bool,
        out_l: &mut [LaneFrame],
        out_r: &mut [LaneFrame],
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide && has_avx2() {
            // SAFETY: the CPU reports AVX2.
            unsafe { self.render_add_avx2::<F>(out_l, out_r) };
            return;
        }
        let _ = wide;
        self.render_add_body::<F>(out_l, out_r);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn render_add_avx2<const F: u32>(
        &mut self,
        out_l: &mut [LaneFrame],
        out_r: &mut [LaneFrame],
    ) {
        self.render_add_body::<F>(out_l, out_r);
    }

    #[inline(always)]
    fn render_add_body<const F: u32>(&mut self, out_l: &mut [LaneFrame], out_r: &mut [LaneFrame]) {
        use features::*;
        let p = &self.params;
        let mut st = self.state;
        for (ol, or) in out_l.iter_mut().zip(out_r.iter_mut()) {
            for i in 0..LANES {
                let dt = p.dt[i];
                let ph = wrap1(st.phase[i] + dt);
                st.phase[i] = ph;
                let mut src = 0.0;
                if F & (SAW | PULSE) != 0 {
                    let saw = 2.0 * ph - 1.0 - blep4(ph, p.blep_rate[i]);
                    if F & SAW != 0 {
                        src += p.saw[i] * saw;
                    }
                    if F & PULSE != 0 {
                        let ph_w = wrap1(ph + p.width[i]);
                        let saw_w = 2.0 * ph_w - 1.0 - blep4(ph_w, p.blep_rate[i]);
                        src += p.pulse[i] * (saw - saw_w);
                    }
                }
                if F & SAW2 != 0 {
                    let ph2 = wrap1(st.phase2[i] + p.dt2[i]);
                    st.phase2[i] = ph2;
                    src += p.saw2[i] * (2.0 * ph2 - 1.0 - blep4(ph2, p.blep_rate2[i]));
                }
                if F & FM != 0 {
                    let mp = wrap(st.mod_phase[i] + dt * p.mod_ratio[i]);
                    st.mod_phase[i] = mp;
                    // half a cycle on: in phase with the saw's and pulse's fundamentals (a rising
                    // saw's fundamental is -sin), so a sine added to them reinforces it
                    src += p.sine[i] * sin_unit(wrap(ph + 8.5 + p.fm_index[i] * sin_unit(mp)));
                }
                if F & NOISE != 0 {
                    let mut n = st.noise[i];
                    n ^= n << 13;
                    n ^= n >> 17;
                    n ^= n << 5;
                    st.noise[i] = n;
                    src += p.noise[i] * (((n >> 9) as i32) as f32 * (2.0 / 8_388_608.0) - 1.0);
                }
                let mut y = src;
                if F & F1 != 0 {
                    let (band, low) = svf_tick(src, &p.f1, &mut st.f1_ic, i);
                    y = p.lp[i] * low + p.bp[i] * p.f1[3][i] * band;
                }
                if F & F2 != 0 {
                    let (band, _) = svf_tick(src, &p.f2, &mut st.f2_ic, i);
                    y += p.bp2[i] * p.f2[3][i] * band;
                }
                let env = st.env[i] + (p.env_target[i] - st.env[i]) * p.env_coef[i];
                st.env[i] = env;
                let y = y * env;
                ol[i] += y * p.gain_l[i];
                or[i] += y * p.gain_r[i];
            }
        }
        self.state = st;
    }
}

/// A lane in the pool: chunk index × 8 + lane.
pub type LaneSlot = u16;

/// Every lane of every voice, in 8-lane chunks; each chunk serves one timbre at a time, so
/// only chunks with sounding lanes are computed, each with its timbre's kernel.
pub struct VoicePool {
    seed: u64,
    banks: Vec<LaneBank>,
    /// Per chunk: the features each used lane needs, and the kernel that computes them all.
    needs: Vec<[u32; LANES]>,
    kernel: Vec<u32>,
    used: Vec<u8>,
    wide: bool,
    /// The note each lane plays, for designed instruments (see [`NoteInfo`]).
    notes: Vec<NoteInfo>,
    onsets: u32,
}

/// Marks a lane that no designed-instrument voice plays.
pub const NO_VOICE: u16 = u16::MAX;

/// The note a lane plays, as a designed instrument's bindings read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoteInfo {
    /// MIDI pitch.
    pub note: f32,
    /// Velocity 0..1.
    pub velocity: f32,
    /// Held (not yet released).
    pub gate: bool,
    /// Counts note starts pool-wide: a lane that takes a new note gets a new onset.
    pub onset: u32,
    /// The participant slot playing it.
    pub participant: u16,
    /// The designed voice sounding it, or [`NO_VOICE`].
    pub voice: u16,
}

const SILENT_NOTE: NoteInfo = NoteInfo {
    note: 60.0,
    velocity: 0.0,
    gate: false,
    onset: 0,
    participant: 0,
    voice: NO_VOICE,
};

/// Marks a chunk that serves no timbre.
pub const NO_KIND: u8 = u8::MAX;

impl VoicePool {
    /// A pool of `chunks` × 8 lanes. Allocates; call off the audio thread.
    pub fn new(chunks: usize, seed: u64) -> Self {
        Self {
            seed,
            banks: (0..chunks)
                .map(|c| LaneBank::new(Self::chunk_seed(seed, c)))
                .collect(),
            needs: vec![[0; LANES]; chunks],
            kernel: vec![0; chunks],
            used: vec![0; chunks],
            wide: has_avx2(),
            notes: vec![SILENT_NOTE; chunks * LANES],
            onsets: 0,
        }
    }

    fn chunk_seed(seed: u64, chunk: usize) -> u64 {
        crate::rng::Rng::derive(seed, chunk as u64).next_u64()
    }

    /// Takes a free lane for a voice that needs the feature set `needs`, where it adds the
    /// least work: a chunk whose kernel already computes it (the fullest first), else the
    /// chunk whose kernel grows the least, unless a chunk of its own costs less. Filtered and
    /// unfiltered voices never share a chunk (the filter replaces the dry signal). `None`
    /// when the pool is exhausted. Real-time safe.
    pub fn allocate(&mut self, needs: u32) -> Option<LaneSlot> {
        if needs & features::DESIGNED != 0 {
            return self.allocate_designed(needs);
        }
        let own = features::cost(needs);
        // (added cost, lanes free): lower is better
        let mut best: Option<(usize, (u32, u32))> = None;
        let mut any: Option<(usize, (u32, u32))> = None;
        let mut empty: Option<usize> = None;
        for c in 0..self.banks.len() {
            let used = self.used[c];
            if used == 0 {
                empty = empty.or(Some(c));
                continue;
            }
            let set = self.set(c);
            let designed = set & features::DESIGNED != 0;
            if used == 0xFF || designed || (set ^ needs) & features::F1 != 0 {
                continue;
            }
            let added = features::cost(set | needs) - features::cost(set);
            let rank = (added, 8 - used.count_ones());
            if added < own && best.is_none_or(|(_, r)| rank < r) {
                best = Some((c, rank));
            }
            if any.is_none_or(|(_, r)| rank < r) {
                any = Some((c, rank));
            }
        }
        // with no chunk free, any that can take it
        let c = best.map(|(c, _)| c).or(empty).or(any.map(|(c, _)| c))?;
        Some(self.take(c, needs))
    }

    /// A lane for a designed instrument's voice: the fullest chunk of that instrument with
    /// room, else a free chunk.
    fn allocate_designed(&mut self, needs: u32) -> Option<LaneSlot> {
        let mut best: Option<usize> = None;
        let mut empty: Option<usize> = None;
        for c in 0..self.banks.len() {
            let used = self.used[c];
            if used == 0 {
                empty = empty.or(Some(c));
            } else if used != 0xFF
                && self.set(c) == needs
                && best.is_none_or(|b| used.count_ones() > self.used[b].count_ones())
            {
                best = Some(c);
            }
        }
        Some(self.take(best.or(empty)?, needs))
    }

    /// Takes chunk `c`'s first free lane for a voice with `needs`.
    fn take(&mut self, c: usize, needs: u32) -> LaneSlot {
        let lane = (!self.used[c]).trailing_zeros() as usize;
        self.used[c] |= 1 << lane;
        self.needs[c][lane] = needs;
        self.refit(c);
        self.banks[c].clear_lane(lane);
        self.notes[c * LANES + lane] = SILENT_NOTE;
        (c * LANES + lane) as LaneSlot
    }

    /// What chunk `c`'s lanes need, together.
    fn set(&self, c: usize) -> u32 {
        self.needs[c].iter().fold(0, |a, n| a | n)
    }

    /// Sets a chunk's kernel to the cheapest that computes what its lanes need.
    fn refit(&mut self, c: usize) {
        let set = self.set(c);
        self.kernel[c] = if set == 0 || set & features::DESIGNED != 0 {
            0
        } else {
            features::kernel_for(set)
        };
    }

    /// Returns a lane to the pool, silencing it. Real-time safe.
    pub fn free(&mut self, slot: LaneSlot) {
        let (c, lane) = (slot as usize / LANES, slot as usize % LANES);
        if c >= self.banks.len() {
            return;
        }
        self.banks[c].clear_lane(lane);
        self.used[c] &= !(1 << lane);
        self.needs[c][lane] = 0;
        self.refit(c);
    }

    /// The bank and lane index of a slot.
    #[inline]
    pub fn lane(&mut self, slot: LaneSlot) -> (&mut LaneBank, usize) {
        (
            &mut self.banks[slot as usize / LANES],
            slot as usize % LANES,
        )
    }

    /// Envelope level of a slot.
    #[inline]
    pub fn env(&self, slot: LaneSlot) -> f32 {
        self.banks[slot as usize / LANES].state.env[slot as usize % LANES]
    }

    /// A lane starts a note (a new onset for designed instruments). Real-time safe.
    pub fn start_note(&mut self, slot: LaneSlot, note: f32, velocity: f32, participant: u16) {
        self.onsets = self.onsets.wrapping_add(1);
        if let Some(n) = self.notes.get_mut(slot as usize) {
            (n.note, n.velocity, n.gate) = (note, velocity, true);
            (n.onset, n.participant) = (self.onsets, participant);
        }
    }

    /// A lane's note is released. Real-time safe.
    pub fn release_note(&mut self, slot: LaneSlot) {
        if let Some(n) = self.notes.get_mut(slot as usize) {
            n.gate = false;
        }
    }

    /// The note a lane plays.
    #[inline]
    pub fn note(&self, slot: LaneSlot) -> &NoteInfo {
        &self.notes[slot as usize]
    }

    /// Records which designed voice sounds a lane.
    #[inline]
    pub fn set_note_voice(&mut self, slot: LaneSlot, voice: u16) {
        self.notes[slot as usize].voice = voice;
    }

    /// Whether a lane is in use in a chunk of this kind.
    #[inline]
    pub fn is_used(&self, slot: LaneSlot, kind: u8) -> bool {
        let (c, lane) = (slot as usize / LANES, slot as usize % LANES);
        c < self.banks.len()
            && self.used[c] & (1 << lane) != 0
            && self.needs[c][lane] == features::designed(kind)
    }

    /// Number of 8-lane chunks.
    pub fn chunk_count(&self) -> usize {
        self.banks.len()
    }

    /// The designed instrument's kind a chunk serves ([`NO_KIND`] when it is free or serves
    /// the kernel's timbres).
    #[inline]
    pub fn chunk_kind(&self, chunk: usize) -> u8 {
        let set = self.set(chunk);
        if set & features::DESIGNED != 0 {
            (set >> 9) as u8
        } else {
            NO_KIND
        }
    }

    /// Chunks being computed.
    pub fn chunks_in_use(&self) -> usize {
        self.used.iter().filter(|u| **u != 0).count()
    }

    /// Lanes in use.
    pub fn lanes_in_use(&self) -> usize {
        self.used.iter().map(|u| u.count_ones() as usize).sum()
    }

    /// Returns every lane to its initial state and frees every chunk. Real-time safe.
    pub fn reset(&mut self) {
        for c in 0..self.banks.len() {
            self.banks[c] = LaneBank::new(Self::chunk_seed(self.seed, c));
            self.used[c] = 0;
            self.needs[c] = [0; LANES];
            self.kernel[c] = 0;
        }
        self.notes.fill(SILENT_NOTE);
        self.onsets = 0;
    }

    /// Renders every chunk in use with its kernel, adding into the outputs. Real-time safe.
    pub fn render_add(&mut self, out_l: &mut [LaneFrame], out_r: &mut [LaneFrame]) {
        for c in 0..self.banks.len() {
            // designed instruments' chunks (kernel 0) are their rack's to render
            if self.used[c] != 0 && self.kernel[c] != 0 {
                self.banks[c].render_kernel(self.kernel[c], self.wide, out_l, out_r);
            }
        }
    }
}

/// Whether this CPU runs the AVX2 build of the kernel.
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tan_approximation_is_close() {
        for i in 1..140 {
            let x = i as f32 * 0.01;
            let rel = (fast_tan(x) - x.tan()).abs() / x.tan();
            assert!(rel < 1e-3, "x={x} rel={rel}");
        }
    }

    #[test]
    fn the_step_residual_is_a_smooth_cubic_b_spline_step() {
        // twice (the integral of the cubic B-spline from −2 to u, minus the step)
        let exact = |u: f64| {
            let s = if u < 1.0 {
                0.5 + (4.0 * u - 2.0 * u.powi(3) + 0.75 * u.powi(4)) / 6.0
            } else if u < 2.0 {
                1.0 - (2.0 - u).powi(4) / 24.0
            } else {
                1.0
            };
            2.0 * (s - 1.0)
        };
        for i in 0..=300 {
            let u = i as f32 * 0.01;
            let err = (f64::from(step_residual(u)) - exact(f64::from(u))).abs();
            assert!(err < 1e-6, "u={u} err={err}");
        }
        assert_eq!(step_residual(2.0), 0.0);
        assert_eq!(step_residual(1e7), 0.0);
    }

    #[test]
    fn the_band_limited_saw_is_continuous_across_its_wrap() {
        // approaching the wrap from either side, the corrected saw meets 0 (the step's middle)
        let rate = 1.0 / (0.05 * BLEP_STRETCH);
        for t in [1e-6f32, 1.0 - 1e-6] {
            let saw = 2.0 * t - 1.0 - blep4(t, rate);
            assert!(saw.abs() < 1e-3, "t={t}: {saw}");
        }
        // and is the naive saw two knots from any wrap
        let t = 0.5;
        assert_eq!(2.0 * t - 1.0 - blep4(t, rate), 0.0);
    }

    #[test]
    fn sine_approximation_is_close() {
        for i in 0..1000 {
            let t = i as f32 / 1000.0;
            let err = (sin_unit(t) - (std::f32::consts::TAU * t).sin()).abs();
            assert!(err < 0.002, "t={t} err={err}");
        }
    }

    #[test]
    fn a_lowpassed_saw_lane_sounds_at_its_pitch() {
        let sr = 48_000.0;
        let mut bank = LaneBank::new(1);
        bank.set_increments(0, 220.0 / sr, 220.0 / sr);
        bank.params.saw[0] = 1.0;
        bank.params.f1 = svf_coefficients(2000.0, 0.7, sr).map(|c| [c; LANES]);
        bank.params.f2 = svf_coefficients(1000.0, 0.7, sr).map(|c| [c; LANES]);
        bank.params.lp[0] = 1.0;
        bank.params.env_target[0] = 1.0;
        bank.params.env_coef[0] = 1.0;
        bank.params.gain_l[0] = 1.0;
        bank.params.gain_r[0] = 1.0;
        let mut wl = vec![[0.0; LANES]; 4800];
        let mut wr = vec![[0.0; LANES]; 4800];
        for (cl, cr) in wl.chunks_mut(64).zip(wr.chunks_mut(64)) {
            bank.render_add::<{ features::ALL }>(has_avx2(), cl, cr);
        }
        let (mut l, mut r) = (vec![0.0; 4800], vec![0.0; 4800]);
        fold_lanes(&wl, &mut l);
        fold_lanes(&wr, &mut r);
        // count rising zero crossings over the last 0.05 s: 220 Hz → 11
        let tail = &l[2400..];
        let crossings = tail
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        assert!((10..=12).contains(&crossings), "{crossings}");
        assert!(l.iter().all(|x| x.is_finite()));
        assert_eq!(l, r);
    }

    #[test]
    fn wide_and_portable_builds_are_bit_identical() {
        let sr = 48_000.0;
        let mut bank = LaneBank::new(3);
        for lane in 0..LANES {
            let f = 110.0 * (1.0 + lane as f32 * 0.37);
            bank.set_increments(lane, f / sr, f * 1.005 / sr);
            bank.params.saw[lane] = 0.3;
            bank.params.pulse[lane] = 0.3;
            bank.params.width[lane] = 0.3;
            bank.params.saw2[lane] = 0.2;
            bank.params.sine[lane] = 0.4;
            bank.params.mod_ratio[lane] = 3.5;
            bank.params.fm_index[lane] = 1.2;
            bank.params.noise[lane] = 0.1;
            bank.params.lp[lane] = 1.0;
            bank.params.bp[lane] = 0.5;
            bank.params.bp2[lane] = 0.5;
            bank.params.env_target[lane] = 1.0;
            bank.params.env_coef[lane] = 0.01;
            bank.params.gain_l[lane] = 0.2;
            bank.params.gain_r[lane] = 0.1;
        }
        bank.params.f1 = svf_coefficients(1500.0, 2.0, sr).map(|c| [c; LANES]);
        bank.params.f2 = svf_coefficients(700.0, 4.0, sr).map(|c| [c; LANES]);
        let mut a = bank;
        let mut b = bank;
        let (mut al, mut ar) = (vec![[0.0; LANES]; 4096], vec![[0.0; LANES]; 4096]);
        let (mut bl, mut br) = (vec![[0.0; LANES]; 4096], vec![[0.0; LANES]; 4096]);
        for k in 0..64 {
            let r = k * 64..(k + 1) * 64;
            a.render_add::<{ features::ALL }>(has_avx2(), &mut al[r.clone()], &mut ar[r.clone()]);
            b.render_add::<{ features::ALL }>(false, &mut bl[r.clone()], &mut br[r]);
        }
        assert_eq!(al, bl);
        assert_eq!(ar, br);
        assert!(al.iter().flatten().any(|x| x.abs() > 0.01));
    }

    #[test]
    fn lanes_fold_to_the_same_bits_on_every_cpu() {
        let mut rng = crate::rng::Rng::new(7);
        for frames in [0, 1, 7, 8, 9, 31, 32] {
            let lanes: Vec<LaneFrame> = (0..frames)
                .map(|_| {
                    std::array::from_fn(|_| {
                        rng.next_bipolar() * 10f32.powi(rng.below(9) as i32 - 4)
                    })
                })
                .collect();
            let (mut fast, mut portable) = (vec![0.0; frames], vec![0.0; frames]);
            fold_lanes(&lanes, &mut fast);
            fold_lanes_portable(&lanes, &mut portable);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&portable), "{frames} frames");
        }
    }

    #[test]
    fn the_pool_packs_lanes_where_they_add_the_least_work_and_frees_chunks() {
        use features::*;
        let (pad, pluck, bell, wind) = (SAW | SAW2 | F1, SAW | PULSE | F1, FM, NOISE | F1 | F2);
        let mut pool = VoicePool::new(4, 1);
        let a: Vec<_> = (0..10).map(|_| pool.allocate(pad).unwrap()).collect();
        assert_eq!(a[..8].iter().map(|s| s / 8).collect::<Vec<_>>(), vec![0; 8]);
        assert_eq!(a[8] / 8, 1);
        assert_eq!(pool.kernel[1], pad);
        let b = pool.allocate(pluck).unwrap();
        assert_eq!(
            b / 8,
            1,
            "a pluck shares the pads' chunk: a pulse costs less than a chunk"
        );
        assert_eq!(pool.kernel[1], SAW | PULSE | SAW2 | F1);
        let c = pool.allocate(bell).unwrap();
        assert_eq!(
            c / 8,
            2,
            "an unfiltered bell never shares with filtered voices"
        );
        pool.free(b);
        assert_eq!(
            pool.kernel[1], pad,
            "the kernel shrinks back with the pluck gone"
        );
        for s in &a[8..] {
            pool.free(*s);
        }
        assert_eq!(pool.chunks_in_use(), 2);
        assert_eq!(
            pool.allocate(bell).unwrap() / 8,
            2,
            "where it is computed already"
        );
        assert_eq!(
            pool.allocate(wind).unwrap() / 8,
            1,
            "a chunk emptied serves another"
        );
        for _ in 0..14 {
            assert_ne!(pool.allocate(bell).unwrap() / 8, 1);
        }
        assert!(pool.allocate(bell).is_none(), "exhausted pool says so");
        assert_eq!(pool.lanes_in_use(), 8 + 1 + 8 + 8);
    }
}
