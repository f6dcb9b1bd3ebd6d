//! `cargo bench`: the cost of voices and of whole pieces, as ns per voice-sample and
//! real-time factor (one core). Prints a Markdown table (the README quotes it).
//!
//! (a) the reference voice — sawtooth → resonant 2-pole low-pass → equal-power pan, summed
//!     to stereo — in Tapestry's 8-lane kernel, and, for contrast, as one typed fundsp graph
//!     per voice; (b) the real participant voices through `Engine::process`; (c) each shipped
//!     performance rendered offline; (d) the audio callback's cost per 256-frame block
//!     (median and 99.9th percentile of the deadline); (e) the control pipeline under a flood
//!     of senders while a producer is stalled mid-send: messages carried and applied per
//!     second and the callback's time; (g) each kernel feature set's cost per 8-lane chunk
//!     and frame, the figures the voice pool packs lanes by (`features::KERNELS`); (h) the
//!     oscillators' quality and cost: the reference voice's ns per voice-sample and its
//!     aliasing (inharmonic energy relative to the harmonics, saw and pulse → low-pass open at
//!     15 kHz) at C6, C7 and C8.
//!
//! `TAPESTRY_BENCH=e cargo bench --bench engine` runs only the tables named (here (e)).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use fundsp::prelude::{lowpass_hz, pan, saw_hz, Frame};
use tapestry::engine::voice::{features, fold_lanes, has_avx2, svf_coefficients, LaneBank, LANES};
use tapestry::render::{render_to_wav, RenderOptions, WavFormat, WavTarget};
use tapestry::{Engine, MoodTarget, Patch, Performance};

#[allow(dead_code)]
#[path = "../tests/common/reference_voice.rs"]
mod reference_voice;

const SR: f32 = 48_000.0;
const BLOCK: usize = 64;

/// Runs `f` (which processes `frames` frames) until `min` has passed; best of 3 rounds, in
/// seconds per call.
fn time_it(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < min {
            f();
            calls += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / calls as f64);
    }
    best
}

fn reference_lanes(voices: usize) -> Vec<LaneBank> {
    let mut banks = Vec::new();
    for c in 0..voices.div_ceil(LANES) {
        let mut b = LaneBank::new(c as u64);
        for l in 0..LANES {
            let v = (c * LANES + l) as f32;
            let hz = 55.0 * (1.0 + (v * 0.618).fract() * 7.0);
            b.set_increments(l, hz / SR, hz / SR);
            b.params.saw[l] = 1.0;
            b.params.lp[l] = 1.0;
            for (k, coef) in svf_coefficients(hz * 4.0, 2.0, SR).into_iter().enumerate() {
                b.params.f1[k][l] = coef;
            }
            b.params.env_target[l] = 1.0;
            b.params.env_coef[l] = 1.0;
            let angle = (v * 0.37).fract() * std::f32::consts::FRAC_PI_2;
            b.params.gain_l[l] = angle.cos() * 0.01;
            b.params.gain_r[l] = angle.sin() * 0.01;
        }
        banks.push(b);
    }
    banks
}

fn reference_kernel(voices: usize) -> f64 {
    let mut banks = reference_lanes(voices);
    let (mut wl, mut wr) = ([[0.0f32; LANES]; BLOCK], [[0.0f32; LANES]; BLOCK]);
    let (mut l, mut r) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
    let wide = has_avx2();
    let secs = time_it(Duration::from_millis(300), || {
        wl.fill([0.0; LANES]);
        wr.fill([0.0; LANES]);
        for b in banks.iter_mut() {
            b.render_add::<{ features::SAW | features::F1 }>(wide, &mut wl, &mut wr);
        }
        fold_lanes(&wl, &mut l);
        fold_lanes(&wr, &mut r);
        black_box((&l, &r));
    });
    secs / (voices * BLOCK) as f64 * 1e9
}

fn fundsp_graph_per_voice(voices: usize) -> f64 {
    let mut graphs: Vec<_> = (0..voices)
        .map(|v| {
            let hz = 55.0 * (1.0 + (v as f32 * 0.618).fract() * 7.0);
            let mut g = saw_hz(hz)
                >> lowpass_hz(hz * 4.0, 2.0)
                >> pan((v as f32 * 0.37).fract() * 2.0 - 1.0);
            g.set_sample_rate(SR as f64);
            g
        })
        .collect();
    let none = Frame::default();
    let secs = time_it(Duration::from_millis(300), || {
        let (mut sl, mut sr) = (0.0f32, 0.0f32);
        for _ in 0..BLOCK {
            for g in graphs.iter_mut() {
                let out = g.tick(&none);
                sl += out[0];
                sr += out[1];
            }
        }
        black_box((sl, sr));
    });
    secs / (voices * BLOCK) as f64 * 1e9
}

/// The reference voice declared in a patch (`saw` → `lowpass`, q 2, cutoff 4 × the note
/// through `key_track`) and run as the engine runs a designed instrument: one fundsp `Net`
/// per voice in 32-sample control periods, parameters evaluated at each tick (no lane
/// envelope or pan).
fn designed_instrument_per_voice(voices: usize) -> f64 {
    use tapestry::engine::instrument::{Solo, VoiceInputs};
    let text = r#"version = 1
[piece]
name = "bench"
[score]
key = "C"
tempo_bpm = 100
[[score.sections]]
name = "a"
chords = ["I"]
[mood.energy]
[mood.tension]
[mood.brightness]
[mood.unity]
[instruments.ref]
[[instruments.ref.nodes]]
id = "osc"
kind = "saw"
[[instruments.ref.nodes]]
id = "f"
kind = "lowpass"
input = "osc"
cutoff_hz = 1046.5
key_track = 1.0
q = 2.0
[[archetypes]]
id = "a"
instrument = "ref"
register = [40, 80]
"#;
    let patch = Patch::parse(Path::new("bench.toml"), text).expect("bench patch");
    let def = patch.config(SR as u32, None).instruments[0].clone();
    let mut solos: Vec<(Solo, f32)> = (0..voices)
        .map(|v| {
            let hz = 55.0 * (1.0 + (v as f32 * 0.618).fract() * 7.0);
            (Solo::new(&def, SR, v as u64), hz)
        })
        .collect();
    let inputs = VoiceInputs {
        pitch: 60.0,
        velocity: 1.0,
        gate: true,
        ..Default::default()
    };
    let mut out = [0.0f32; BLOCK];
    let secs = time_it(Duration::from_millis(300), || {
        let mut sum = 0.0f32;
        for (solo, hz) in solos.iter_mut() {
            solo.render(*hz, &inputs, &mut out);
            sum += out[BLOCK - 1];
        }
        black_box(sum);
    });
    secs / (voices * BLOCK) as f64 * 1e9
}

fn participants(patch: &Patch, count: u32) -> (f64, f64, usize) {
    let mut config = patch.config(SR as u32, None);
    config.capacity = config.capacity.max(count as usize);
    let (mut engine, controller) = Engine::new(config, patch.names());
    for id in 1..=count {
        controller.join(id, None).unwrap();
    }
    controller
        .set_mood(MoodTarget::Communal, "energy", 0.8, 0.0)
        .unwrap();
    // let every voice get going
    let mut block = vec![0.0f32; 2 * 256];
    for _ in 0..(4 * SR as usize / 256) {
        engine.process(&mut block);
    }
    let present = controller
        .status()
        .participants
        .load(std::sync::atomic::Ordering::Relaxed) as usize;
    let secs = time_it(Duration::from_millis(600), || {
        for _ in 0..16 {
            engine.process(&mut block);
        }
    });
    let frames = 16.0 * 256.0;
    let per_frame = secs / frames;
    (
        per_frame / count as f64 * 1e9,
        1.0 / (per_frame * SR as f64),
        present,
    )
}

/// Audio-callback cost per 256-frame block with `count` participants: (median, 99.9th
/// percentile) in % of the block's deadline.
fn callback_load(patch: &Patch, count: u32) -> (f64, f64) {
    let mut config = patch.config(SR as u32, None);
    config.capacity = config.capacity.max(count as usize);
    let (mut engine, controller) = Engine::new(config, patch.names());
    for id in 1..=count {
        while controller.join(id, None).is_err() {
            let mut b = [0.0f32; 2];
            engine.process(&mut b);
        }
    }
    controller
        .set_mood(MoodTarget::Communal, "energy", 0.8, 0.0)
        .unwrap();
    let mut block = vec![0.0f32; 2 * 256];
    for _ in 0..(3 * SR as usize / 256) {
        engine.process(&mut block);
    }
    let mut times: Vec<f64> = (0..3000)
        .map(|_| {
            let start = Instant::now();
            engine.process(&mut block);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let deadline = 256.0 / SR as f64;
    let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize] / deadline * 100.0;
    (pct(0.5), pct(0.999))
}

/// What (e) measured for one run.
struct Flood {
    sent_per_sec: f64,
    applied_per_sec: f64,
    refused: u64,
    median_pct: f64,
    worst_pct: f64,
}

/// (e) `senders` threads, each with a controller (a ring) of its own, flood mood messages
/// into an engine with 64 participants running at real-time pace (256-frame blocks), while
/// one more producer stays parked in the middle of a send: messages carried and applied per
/// second, and the callback's median and worst time in % of the deadline.
fn control_flood(patch: &Patch, senders: usize) -> Flood {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (mut engine, controller) = Engine::new(patch.config(SR as u32, None), patch.names());
    for id in 1..=64 {
        controller.join(id, None).unwrap();
    }
    let running = Arc::new(AtomicBool::new(true));
    let stalled = {
        let (c, running) = (controller.clone(), running.clone());
        std::thread::spawn(move || {
            let message = tapestry::Message {
                at: tapestry::Timing::Immediate,
                command: tapestry::Command::Cue { section: 0 },
            };
            let _ = c.send_stalling(message, || {
                while running.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        })
    };
    let threads: Vec<_> = (0..senders)
        .map(|k| {
            let (controller, running) = (controller.clone(), running.clone());
            std::thread::spawn(move || {
                let mut sent = 0u64;
                let mut i = k as u32;
                while running.load(Ordering::Relaxed) {
                    let command = tapestry::Command::Mood {
                        target: MoodTarget::Participant(1 + i % 64),
                        dim: (i % 4) as u8,
                        value: (i % 100) as f32 / 100.0,
                        ramp_secs: 0.0,
                    };
                    if controller.command(command).is_ok() {
                        sent += 1;
                    } else {
                        std::thread::yield_now();
                    }
                    i = i.wrapping_add(1);
                }
                sent
            })
        })
        .collect();
    let mut block = vec![0.0f32; 2 * 256];
    let period = Duration::from_secs_f64(256.0 / SR as f64);
    let mut times = Vec::new();
    let start = Instant::now();
    let mut next = start;
    let secs = 2.0;
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        engine.process(&mut block);
        times.push(t.elapsed().as_secs_f64());
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    running.store(false, Ordering::Relaxed);
    let sent: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    stalled.join().unwrap();
    let refused = controller.status().refused_messages.load(Ordering::Relaxed);
    times.sort_by(f64::total_cmp);
    let deadline = period.as_secs_f64();
    let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize] / deadline * 100.0;
    let (_, pending) = engine.scheduled(0);
    Flood {
        sent_per_sec: sent as f64 / secs,
        applied_per_sec: sent.saturating_sub(refused + pending as u64) as f64 / secs,
        refused,
        median_pct: pct(0.5),
        worst_pct: pct(1.0),
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("Tapestry benchmarks — {cpu}, AVX2 kernel: {}\n", has_avx2());
    // TAPESTRY_BENCH=ce runs only tables (c) and (e)
    let only = std::env::var("TAPESTRY_BENCH").ok();
    let want = |table: char| only.as_ref().is_none_or(|o| o.contains(table));
    if want('a') {
        println!(
            "(a) reference voice: saw → resonant 2-pole low-pass → equal-power pan, summed to stereo\n"
        );
        println!("| voices | Tapestry 8-lane kernel ns/voice-sample | real-time factor | fundsp graph per voice ns/voice-sample | designed instrument (patch graph, fundsp Net per voice) ns/voice-sample |");
        println!("|---:|---:|---:|---:|---:|");
        for voices in [16usize, 256, 1024] {
            let ns = reference_kernel(voices);
            let fundsp = fundsp_graph_per_voice(voices);
            let designed = designed_instrument_per_voice(voices);
            println!(
                "| {voices} | {ns:.2} | {:.0}x | {fundsp:.2} | {designed:.2} |",
                1e9 / (ns * voices as f64 * SR as f64)
            );
        }
    }
    let patch = Patch::load(&root.join("patches/sleep-gathering.toml")).expect("flagship patch");
    if want('b') {
        println!("\n(b) participant voices (sleep-gathering archetypes, energy 0.8), whole engine incl. master bus\n");
        println!("| participants | ns per participant-sample | real-time factor |");
        println!("|---:|---:|---:|");
        for count in [16u32, 64, 256] {
            let (ns, rtf, present) = participants(&patch, count);
            assert_eq!(present, count as usize);
            println!("| {count} | {ns:.1} | {rtf:.1}x |");
        }
    }
    if want('c') {
        println!("\n(c) shipped performances rendered offline to a 24-bit WAV file, as `tapestry render` does (512-frame blocks; both passes, program streamed through a temporary file)\n");
        println!("| performance | length | render time | real-time factor |");
        println!("|---|---:|---:|---:|");
        let mut entries: Vec<_> = std::fs::read_dir(root.join("patches"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".toml") || name.ends_with(".performance.toml") {
                continue;
            }
            let patch = Patch::load(&path).unwrap();
            let perf_path = root
                .join("patches")
                .join(name.replace(".toml", ".performance.toml"));
            let perf = Performance::load(&perf_path, &patch, SR as u32).unwrap();
            let secs = perf.duration_frames as f64 / SR as f64;
            let out =
                std::env::temp_dir().join(format!("tapestry-bench-{}.wav", std::process::id()));
            let target = WavTarget {
                path: &out,
                format: WavFormat::Pcm24,
                dither_seed: 1,
            };
            let mut best = f64::INFINITY;
            for _ in 0..2 {
                let start = Instant::now();
                black_box(
                    render_to_wav(
                        &patch,
                        &perf,
                        &RenderOptions::default(),
                        &target,
                        |_, _, _| {},
                    )
                    .expect("the bench writes its file"),
                );
                best = best.min(start.elapsed().as_secs_f64());
            }
            let _ = std::fs::remove_file(&out);
            println!(
                "| {} | {secs:.0} s | {best:.2} s | {:.0}x |",
                name.trim_end_matches(".toml"),
                secs / best
            );
        }
    }
    if want('d') {
        println!("\n(d) audio callback, 256-frame blocks (deadline 5.33 ms), whole engine\n");
        println!("| participants | median % of deadline | 99.9th percentile % of deadline |");
        println!("|---:|---:|---:|");
        for count in [64u32, 256, 1024] {
            let (median, p999) = callback_load(&patch, count);
            println!("| {count} | {median:.1}% | {p999:.1}% |");
        }
    }
    if want('e') {
        let limits = tapestry::ControlLimits::default();
        println!(
            "\n(e) control pipeline under a flood: sender threads (a ring each) into a real-time-paced engine\n\
             with 64 participants (256-frame blocks), one more producer parked mid-send throughout;\n\
             rings of {}, {} applied per 32-sample control period, schedule share {} per source\n",
            limits.ring_capacity, limits.apply_per_tick, limits.schedule_share
        );
        println!("| senders | messages/s sent | applied/s | refused | callback median % of deadline | worst % |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for senders in [1usize, 4] {
            let f = control_flood(&patch, senders);
            println!(
                "| {senders} | {:.0} | {:.0} | {} | {:.1}% | {:.1}% |",
                f.sent_per_sec, f.applied_per_sec, f.refused, f.median_pct, f.worst_pct
            );
        }
    }
    if want('g') {
        println!(
            "\n(f) kernel feature sets: ns per 8-lane chunk and frame (the pool's packing table)\n"
        );
        println!("| features | measured ns | table (features::KERNELS) |");
        println!("|---|---:|---:|");
        for (set, table) in features::KERNELS {
            println!(
                "| {set:#09b} | {:.2} | {:.1} |",
                kernel_cost(set),
                table as f64 / 10.0
            );
        }
    }
    if want('h') {
        oscillator_quality();
    }
}

/// Table (h): the reference voice's cost and its aliasing at C6, C7 and C8.
fn oscillator_quality() {
    use reference_voice::{render, Wave, NOTES};
    use tapestry::analysis::aliasing::{harmonic_split, FFT_LEN};
    println!("\n(h) oscillators: the reference voice's kernel cost, and its inharmonic (aliased) energy relative to its harmonics, oscillator → 2-pole low-pass open at 15 kHz (Q 0.707), 48 kHz, 20 Hz–20 kHz, 2^16-point Blackman-Harris FFT\n");
    let (few, many) = (reference_kernel(16), reference_kernel(256));
    println!("kernel: {few:.2} ns/voice-sample at 16 voices, {many:.2} at 256\n");
    println!("| oscillator | C6 | C7 | C8 |");
    println!("|---|---:|---:|---:|");
    for wave in [Wave::Saw, Wave::Pulse(0.5), Wave::Pulse(0.1), Wave::Saw2] {
        let figures: Vec<String> = NOTES
            .iter()
            .map(|&(_, hz)| {
                let out = render(wave, hz as f32, 4_800 + FFT_LEN, BLOCK);
                let split = harmonic_split(&out, SR, hz).expect("a measurable tone");
                format!("{:.1} dB", split.inharmonic_db())
            })
            .collect();
        println!("| {wave:?} | {} |", figures.join(" | "));
    }
}

/// ns per chunk-frame of the kernel for `set`, eight sounding lanes at different pitches.
fn kernel_cost(set: u32) -> f64 {
    let mut bank = LaneBank::new(3);
    for i in 0..LANES {
        bank.set_increments(i, 0.01 + 0.001 * i as f32, 0.0101);
        bank.params.env_target[i] = 1.0;
        bank.params.env_coef[i] = 0.01;
    }
    let (mut wl, mut wr) = (vec![[0.0f32; LANES]; BLOCK], vec![[0.0f32; LANES]; BLOCK]);
    let secs = time_it(Duration::from_millis(200), || {
        bank.render_kernel(set, true, &mut wl, &mut wr);
        black_box(&wl);
    });
    secs * 1e9 / BLOCK as f64
}
