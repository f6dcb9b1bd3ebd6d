//! `cargo bench --bench analysis`: the room analysis's cost per second of 48 kHz input, mono
//! and 8 channels, as a real-time factor (one core), plus the cost of one hop (median and
//! high percentiles; on a shared machine the top 0.1 % also holds the scheduler's stalls,
//! which a plain arithmetic loop shows just the same). Prints a Markdown table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tapestry::analysis::Analyzer;
use tapestry::rng::Rng;

const SR: u32 = 48_000;
const SECS: usize = 10;

/// A busy room: claps at 4 per second, a sung tone with vibrato and a noise floor.
fn room(channels: usize) -> Vec<f32> {
    let mut rng = Rng::new(1);
    let frames = SECS * SR as usize;
    let mut out = Vec::with_capacity(frames * channels);
    let mut phase = 0.0f32;
    for i in 0..frames {
        let t = i as f32 / SR as f32;
        let since_clap = t % 0.25;
        let clap = (-since_clap / 0.03).exp() * rng.next_bipolar() * 0.4;
        phase = (phase + 220.0 * (1.0 + 0.01 * (t * 31.4).sin()) / SR as f32).fract();
        let tone = (phase * std::f32::consts::TAU).sin() * 0.2;
        let mono = clap + tone + 0.003 * rng.next_bipolar();
        for c in 0..channels {
            out.push(mono * (1.0 - 0.05 * c as f32));
        }
    }
    out
}

/// Best of 3 rounds of at least `min` each, in seconds per call.
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

fn main() {
    println!("| input (48 kHz) | analysis time per second of input | x real time |");
    println!("|---|---|---|");
    for channels in [1usize, 8] {
        let input = room(channels);
        let mut analyzer = Analyzer::new(SR, channels as u16);
        let secs = time_it(Duration::from_secs(2), || {
            analyzer.reset();
            let mut frames = 0usize;
            for block in input.chunks(512 * channels) {
                analyzer.process(black_box(block), |f| frames += f.onset_times.len() + 1);
            }
            black_box(frames);
        });
        let per_sec = secs / SECS as f64;
        println!(
            "| {channels} channel{} | {:.2} ms | {:.0}x |",
            if channels == 1 { "" } else { "s" },
            per_sec * 1e3,
            1.0 / per_sec
        );
    }

    // one hop at a time, as a live analysis thread would call it
    let input = room(1);
    let mut analyzer = Analyzer::new(SR, 1);
    let hop = analyzer.hop_frames();
    analyzer.process(&input, |f| {
        black_box(f);
    }); // warm up
    analyzer.reset();
    let mut times: Vec<f64> = input
        .chunks(hop)
        .map(|block| {
            let start = Instant::now();
            analyzer.process(black_box(block), |f| {
                black_box(f);
            });
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "\none hop ({hop} frames, {:.2} ms of audio), mono: median {:.1} µs, 99th percentile {:.1} µs, 99.9th {:.1} µs, worst {:.1} µs",
        hop as f64 * 1e3 / f64::from(SR),
        times[times.len() / 2] * 1e6,
        times[times.len() * 99 / 100] * 1e6,
        times[times.len() * 999 / 1000] * 1e6,
        times[times.len() - 1] * 1e6
    );
}
