//! Expressive input played and measured: pitch bend moves a participant's sounding notes (played
//! and sequenced) and comes back, the mod wheel adds vibrato, brightness opens the filter,
//! sweeps make no clicks, MIDI bytes and bad values reach (or are kept from) the audio, output
//! stays block-size independent and the audio thread never allocates with bends in flight.

use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::measure::*;
use crate::common::*;
use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
use rosc::{OscMessage, OscPacket, OscType};
use tapestry::input::midi::{MidiParser, MidiRouter};
use tapestry::input::osc::OscServer;
use tapestry::input::SampleClock;
use tapestry::{Command, Engine, Expression, Notice, Patch, Performance, Refusal};

/// A clean bell held as a sine-like tone (sustain 1, no built-in vibrato, no tension so no
/// drift), a filtered pad and a sequenced pluck; no reverb or leveler to blur measurements.
const PATCH: &str = r#"
version = 1
[piece]
name = "expressive probe"
seed = 3
[master]
leveler = false
reverb_mix = 0.0
[score]
key = "A"
mode = "minor"
tempo_bpm = 120
[[score.sections]]
name = "a"
chords = ["i", "iv"]
[mood.energy]
default = 0.6
[mood.tension]
default = 0.0
[mood.brightness]
default = 0.3
[mood.unity]
default = 1.0
[[archetypes]]
id = "bell"
timbre = "bell"
register = [55, 84]
free = true
attack_secs = 0.01
decay_secs = 0.5
sustain = 1.0
release_secs = 0.3
[[archetypes]]
id = "pad"
timbre = "pad"
register = [45, 72]
free = true
attack_secs = 0.05
[[archetypes]]
id = "pluck"
timbre = "pluck"
register = [60, 84]
grid_beats = 0.25
motif = { steps = 8, density = 1.0 }
"#;

const A4: f32 = 440.0;

fn probe() -> Patch {
    patch_text(PATCH)
}

fn note_on(participant: u32, pitch: u8) -> Command {
    Command::NoteOn {
        participant,
        pitch,
        velocity: 100,
    }
}

fn express(participant: u32, kind: Expression, value: f32) -> Command {
    Command::Expression {
        participant,
        kind,
        value,
    }
}

fn bend(participant: u32, semitones: f32) -> Command {
    express(participant, Expression::PitchBend, semitones)
}

fn cents(hz: f32, reference: f32) -> f32 {
    1200.0 * (hz / reference).log2()
}

fn secs(t: f64) -> usize {
    (t * SR as f64) as usize
}

/// Strongest partial of the mono mix between two times.
fn pitch(x: &[f32], from: f64, to: f64) -> f32 {
    dominant_pitch_hz(&x[secs(from)..secs(to)], SR as f32)
}

/// Pitch over time: the strongest partial of 1024-sample windows every `hop` samples.
fn pitch_track(x: &[f32], from: f64, to: f64, hop: usize) -> Vec<f32> {
    x[secs(from)..secs(to)]
        .windows(1024)
        .step_by(hop)
        .map(|w| dominant_pitch_hz(w, SR as f32))
        .collect()
}

/// Peak-to-peak pitch deviation in cents and the number of wobble cycles (mean crossings / 2).
fn wobble(track: &[f32]) -> (f32, f32) {
    let mean = track.iter().sum::<f32>() / track.len() as f32;
    let c: Vec<f32> = track.iter().map(|&f| cents(f, mean)).collect();
    let range =
        c.iter().cloned().fold(f32::MIN, f32::max) - c.iter().cloned().fold(f32::MAX, f32::min);
    let crossings = c
        .windows(2)
        .filter(|p| (p[0] < 0.0) != (p[1] < 0.0))
        .count();
    (range, crossings as f32 / 2.0)
}

/// Joins participant 1 on an archetype and holds a note from the start.
fn held(patch: &Patch, archetype_id: &str, pitch: u8) -> Script {
    Script::default()
        .join(0.0, 1, Some(archetype(patch, archetype_id)))
        .at(0.0, note_on(1, pitch))
}

#[test]
fn a_two_semitone_bend_moves_a_played_note_and_bending_back_returns() {
    let patch = probe();
    let perf = held(&patch, "bell", 69)
        .at(2.0, bend(1, 2.0))
        .at(4.0, bend(1, 0.0))
        .performance(6.0);
    let x = mono(&render_blocks(&patch, &perf, 256, None));
    let (before, bent, back) = (
        pitch(&x, 0.5, 1.95),
        pitch(&x, 2.2, 3.95),
        pitch(&x, 4.2, 5.95),
    );
    let (up, returned) = (cents(bent, before), cents(back, before));
    println!("A4 {before:.2} Hz, bent {bent:.2} Hz ({up:+.2} cents), back {back:.2} Hz ({returned:+.2} cents)");
    assert!(
        cents(before, A4).abs() < 6.0,
        "the note itself: {before} Hz"
    );
    assert!(
        (up - 200.0).abs() < 3.0,
        "bend +2 semitones measured {up:+.2} cents"
    );
    assert!(
        returned.abs() < 2.0,
        "bend back measured {returned:+.2} cents"
    );
    // the glide is quick: 60 ms after the command the pitch sits at the target
    let settled = dominant_pitch_hz(&x[secs(2.06)..secs(2.06) + 2048], SR as f32);
    assert!(
        (cents(settled, before) - 200.0).abs() < 5.0,
        "60 ms after the bend: {:+.2} cents",
        cents(settled, before)
    );
}

#[test]
fn a_bend_moves_the_sequenced_notes_too() {
    // the pluck plays its motif (no played notes); a semitone up shifts every pitch class
    let patch = probe();
    let base = Script::default().join(0.0, 1, Some(archetype(&patch, "pluck")));
    let plain = mono(&render_blocks(
        &patch,
        &base.clone().performance(6.0),
        256,
        None,
    ));
    let bent = base.at(0.0, bend(1, 1.0)).performance(6.0);
    let bent = mono(&render_blocks(&patch, &bent, 256, None));
    let (a, b) = (
        chroma(&plain[secs(1.0)..], SR as f32),
        chroma(&bent[secs(1.0)..], SR as f32),
    );
    let cosine = |p: &[f32; 12], q: &[f32; 12]| {
        let dot: f32 = p.iter().zip(q).map(|(x, y)| x * y).sum();
        let n = |v: &[f32; 12]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (n(p) * n(q)).max(1e-12)
    };
    let mut a_up = a;
    a_up.rotate_right(1); // class k of the plain render lands on k + 1
    let (shifted, unshifted) = (cosine(&b, &a_up), cosine(&b, &a));
    println!("chroma similarity: to the plain render a semitone up {shifted:.3}, unshifted {unshifted:.3}");
    assert!(rms(&plain) > 1e-3, "the motif played");
    assert!(
        shifted > 0.95,
        "bent motif is the plain one a semitone up ({shifted:.3})"
    );
    assert!(
        unshifted < shifted - 0.2,
        "and not the plain one ({unshifted:.3})"
    );
}

#[test]
fn the_mod_wheel_adds_vibrato_at_about_5_5_hz_and_brightness_opens_the_filter() {
    let patch = probe();
    let perf = held(&patch, "bell", 69)
        .at(2.0, express(1, Expression::Vibrato, 1.0))
        .at(4.0, express(1, Expression::Vibrato, 0.0))
        .performance(6.0);
    let x = mono(&render_blocks(&patch, &perf, 256, None));
    let (still, _) = wobble(&pitch_track(&x, 0.8, 1.95, 256));
    let (depth, cycles) = wobble(&pitch_track(&x, 2.3, 3.95, 256));
    let (after, _) = wobble(&pitch_track(&x, 4.5, 5.95, 256));
    let rate = cycles / (3.95 - 2.3 - 1024.0 / SR as f64) as f32;
    println!("pitch wobble: still {still:.1} cents, mod wheel up {depth:.1} cents at {rate:.2} Hz, down again {after:.1} cents");
    assert!(
        still < 5.0,
        "no vibrato without the mod wheel ({still:.1} cents)"
    );
    assert!(
        (75.0..=110.0).contains(&depth),
        "full mod wheel: about ±50 cents ({depth:.1})"
    );
    assert!((4.8..=6.2).contains(&rate), "vibrato rate {rate:.2} Hz");
    assert!(
        after < 5.0,
        "vibrato ends with the wheel ({after:.1} cents)"
    );
    // vibrato is centred on the note
    let track = pitch_track(&x, 2.3, 3.95, 256);
    let (low, high) = track
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &f| (l.min(f), h.max(f)));
    let centre = cents((low * high).sqrt(), pitch(&x, 0.5, 1.95));
    assert!(centre.abs() < 4.0, "vibrato centre {centre:+.2} cents");

    let perf = held(&patch, "pad", 57)
        .at(3.0, express(1, Expression::Brightness, 1.0))
        .performance(6.0);
    let x = mono(&render_blocks(&patch, &perf, 256, None));
    let dark = spectral_centroid_hz(&x[secs(1.5)..secs(2.95)], SR as f32);
    let bright = spectral_centroid_hz(&x[secs(3.5)..secs(5.95)], SR as f32);
    println!("pad centroid {dark:.0} Hz, brightness 1: {bright:.0} Hz");
    assert!(
        bright > dark * 1.3,
        "brightness opened the filter: {dark:.0} → {bright:.0} Hz"
    );
}

#[test]
fn bend_sweeps_jumps_and_wheel_moves_make_no_clicks() {
    let patch = probe();
    for id in ["bell", "pad"] {
        let mut s = held(&patch, id, 57);
        // a 7-bit wheel swept up over a second, a jump to the bottom, a sweep back to rest
        for k in 0..=100 {
            s = s.at(2.0 + k as f64 * 0.01, bend(1, 2.0 * k as f32 / 100.0));
        }
        s = s.at(3.5, bend(1, -2.0));
        for k in 0..=50 {
            s = s.at(4.0 + k as f64 * 0.01, bend(1, -2.0 + 2.0 * k as f32 / 50.0));
        }
        // the mod wheel fully up, brightness fully up, then both at once back down
        s = s
            .at(4.8, express(1, Expression::Vibrato, 1.0))
            .at(5.2, express(1, Expression::Brightness, 1.0))
            .at(5.8, express(1, Expression::Vibrato, 0.0))
            .at(5.8, express(1, Expression::Brightness, 0.0));
        let x = mono(&render_blocks(&patch, &s.performance(6.6), 256, None));
        let jump = |a: f64, b: f64| max_jump_ratio(&x[secs(a)..secs(b)], 256);
        let second = |a: f64, b: f64| max_second_difference_ratio(&x[secs(a)..secs(b)], 256);
        assert!(rms(&x[secs(0.8)..secs(1.95)]) > 1e-3, "{id} sounded");
        // bends against the steady note: a higher pitch raises the jump ratio by up to the
        // frequency ratio (1.12) and the second difference by its square (1.26)
        let (j0, j1) = (jump(0.8, 1.95), jump(1.95, 4.75));
        let (d0, d1) = (second(0.8, 1.95), second(1.95, 4.75));
        println!("{id}: bends: jump ratio {j1:.4} (steady {j0:.4}), second difference {d1:.5} (steady {d0:.5})");
        assert!(
            j1 <= j0 * 1.4,
            "{id}: bend jump ratio {j1:.4} vs steady {j0:.4}"
        );
        assert!(
            d1 <= d0 * 2.0,
            "{id}: bend second difference {d1:.5} vs steady {d0:.5}"
        );
        // a wheel move against the steady states on either side (brightness changes the
        // material's own sample-to-sample motion)
        for (what, moving, before, after) in [
            ("brightness up", (5.15, 5.5), (4.85, 5.15), (5.5, 5.8)),
            ("both down", (5.75, 6.1), (5.5, 5.8), (6.15, 6.55)),
        ] {
            let (jm, dm) = (jump(moving.0, moving.1), second(moving.0, moving.1));
            let jr = jump(before.0, before.1).max(jump(after.0, after.1));
            let dr = second(before.0, before.1).max(second(after.0, after.1));
            println!("{id}: {what}: jump ratio {jm:.4} (steady {jr:.4}), second difference {dm:.5} (steady {dr:.5})");
            assert!(
                jm <= jr * 1.5,
                "{id}: {what}: jump ratio {jm:.4} vs {jr:.4}"
            );
            assert!(
                dm <= dr * 1.5,
                "{id}: {what}: second difference {dm:.5} vs {dr:.5}"
            );
        }
    }
}

#[test]
fn midi_bend_and_mod_wheel_bytes_reach_the_audio() {
    let text = format!(
        "{PATCH}\n[midi]\npitch_bend_cents = 200\n\n[[midi.participants]]\nchannel = 1\nparticipant = 1\narchetype = \"bell\"\n"
    );
    let patch = patch_text(&text);
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let mut parser = MidiParser::new();
    let mut router = MidiRouter::new(patch.midi().clone());
    let mut play = |bytes: &[u8], secs: f64, out: &mut Vec<f32>| {
        parser.feed(bytes, &mut |e| {
            router.route("keyboard", e, &mut |c| controller.command(c).unwrap())
        });
        let mut block = vec![0.0f32; 2 * 480];
        for _ in 0..(secs * 100.0) as usize {
            engine.process(&mut block);
            out.extend(mono(&block));
        }
    };
    let mut x = Vec::new();
    // the wheel is pushed fully up before the first note: the note starts bent
    play(&[0xE0, 0x7F, 0x7F, 0x90, 69, 100], 2.0, &mut x);
    // back to rest (8192, running status for a second message), then the mod wheel up
    play(&[0xE0, 0x00, 0x20, 0x00, 0x40], 2.0, &mut x);
    play(&[0xB0, 1, 127], 2.0, &mut x);
    let (bent, rest) = (pitch(&x, 0.5, 1.95), pitch(&x, 2.5, 3.95));
    let (vibrato, cycles) = wobble(&pitch_track(&x, 4.3, 5.95, 256));
    println!("MIDI: bent {bent:.2} Hz, rest {rest:.2} Hz, mod wheel wobble {vibrato:.1} cents ({cycles} cycles)");
    assert!(
        cents(bent, A4 * 2f32.powf(2.0 / 12.0)).abs() < 6.0,
        "{bent} Hz"
    );
    assert!(cents(rest, A4).abs() < 6.0, "{rest} Hz");
    assert!((cents(bent, rest) - 200.0).abs() < 3.0);
    assert!(vibrato > 75.0, "mod wheel vibrato {vibrato:.1} cents");
    let s = router.stats();
    assert_eq!((s.pitch_bends, s.mod_wheel, s.joins), (3, 1, 1));
    assert_eq!(
        controller
            .status()
            .refused_messages
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn osc_bend_and_mod_over_udp_reach_the_audio_and_bad_values_are_counted() {
    let patch = probe();
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let clock = Arc::new(SampleClock::new(SR, 256));
    let server = OscServer::spawn(
        "127.0.0.1:0".parse().unwrap(),
        controller.clone(),
        clock.clone(),
    )
    .unwrap();
    let osc = UdpSocket::bind("127.0.0.1:0").unwrap();
    osc.connect(server.local_addr()).unwrap();
    let send = |addr: &str, args: Vec<OscType>| {
        let packet = OscPacket::Message(OscMessage {
            addr: addr.into(),
            args,
        });
        osc.send(&rosc::encoder::encode(&packet).unwrap()).unwrap();
    };
    let mut x = Vec::new();
    let mut block = vec![0.0f32; 2 * 256];
    let mut run = |secs: f64, x: &mut Vec<f32>| {
        for _ in 0..(secs * SR as f64 / 256.0) as usize {
            clock.publish(engine.sample_position(), Instant::now());
            engine.process(&mut block);
            x.extend(mono(&block));
        }
    };
    // waits (pumping audio) until the server has taken `packets` datagrams
    fn settle(
        server: &OscServer,
        packets: u64,
        run: &mut dyn FnMut(f64, &mut Vec<f32>),
        x: &mut Vec<f32>,
    ) {
        let start = Instant::now();
        while server.stats().snapshot().packets < packets {
            assert!(start.elapsed() < Duration::from_secs(10), "server silent");
            run(0.01, x);
            thread::sleep(Duration::from_millis(1));
        }
    }
    use OscType::{Float, Int, String as Text};
    send("/tapestry/join", vec![Int(1), Text("bell".into())]);
    send("/tapestry/note", vec![Int(1), Int(69), Int(100)]);
    settle(&server, 2, &mut run, &mut x);
    let t0 = x.len() as f64 / SR as f64;
    run(1.5, &mut x);
    send("/tapestry/bend", vec![Int(1), Float(2.0)]);
    settle(&server, 3, &mut run, &mut x);
    let t1 = x.len() as f64 / SR as f64;
    run(1.5, &mut x);
    send("/tapestry/bend", vec![Int(1), Float(0.0)]);
    send("/tapestry/mod", vec![Int(1), Float(1.0)]);
    // malformed values: counted as bad arguments, never played
    send("/tapestry/bend", vec![Int(1), Float(f32::NAN)]);
    send("/tapestry/bend", vec![Int(1), Float(99.0)]);
    send("/tapestry/mod", vec![Int(1), Float(-1.0)]);
    send(
        "/tapestry/expr",
        vec![Int(1), Text("wah".into()), Float(0.5)],
    );
    settle(&server, 9, &mut run, &mut x);
    let t2 = x.len() as f64 / SR as f64;
    run(1.5, &mut x);
    let (rest, bent) = (pitch(&x, t0 + 0.3, t1), pitch(&x, t1 + 0.2, t2));
    let (vibrato, _) = wobble(&pitch_track(&x, t2 + 0.2, t2 + 1.45, 256));
    println!(
        "OSC: rest {rest:.2} Hz, bent {bent:.2} Hz, /tapestry/mod 1 wobble {vibrato:.1} cents"
    );
    assert!(cents(rest, A4).abs() < 6.0, "{rest} Hz");
    assert!((cents(bent, rest) - 200.0).abs() < 3.0, "{bent} Hz");
    assert!(vibrato > 75.0, "{vibrato:.1} cents");
    let counts = server.stats().snapshot();
    assert_eq!((counts.accepted, counts.bad_arguments), (5, 4));
    server.stop();
}

#[test]
fn bad_values_are_refused_or_clamped_and_counted_never_played_raw() {
    let patch = probe();
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    controller.join(1, Some(archetype(&patch, "bell"))).unwrap();
    controller.note(1, 69, 100).unwrap();
    let bad = [
        bend(1, f32::NAN),
        bend(1, f32::INFINITY),
        express(1, Expression::Vibrato, f32::NEG_INFINITY),
        bend(9, 1.0), // nobody
    ];
    for c in bad {
        controller.command(c).unwrap();
    }
    // out of range: clamped to +24 semitones and to no vibrato
    controller.command(bend(1, 100.0)).unwrap();
    controller
        .command(express(1, Expression::Vibrato, -5.0))
        .unwrap();
    let mut x = Vec::new();
    let mut block = vec![0.0f32; 2 * 512];
    for _ in 0..(2.0 * SR as f64 / 512.0) as usize {
        engine.process(&mut block);
        x.extend(mono(&block));
    }
    assert!(all_finite(&x));
    let mut refused = Vec::new();
    while let Some(n) = controller.try_notice() {
        if let Notice::Refused { reason, .. } = n {
            refused.push(reason);
        }
    }
    assert_eq!(
        refused,
        [
            Refusal::OutOfRange,
            Refusal::OutOfRange,
            Refusal::OutOfRange,
            Refusal::UnknownParticipant
        ]
    );
    let f = pitch(&x, 0.5, 1.95);
    let (wobbling, _) = wobble(&pitch_track(&x, 0.5, 1.95, 256));
    println!(
        "bend 100 plays as {:+.1} cents, wobble {wobbling:.1} cents",
        cents(f, A4)
    );
    assert!(
        (cents(f, A4) - 2400.0).abs() < 6.0,
        "clamped to two octaves: {f} Hz"
    );
    assert!(wobbling < 5.0, "negative vibrato clamped to none");
}

/// Three participants bending, wobbling and brightening, some while sequencing.
fn expressive_performance(patch: &Patch) -> Performance {
    let mut s = Script::default()
        .join(0.1, 1, Some(archetype(patch, "bell")))
        .join(0.2, 2, Some(archetype(patch, "pluck")))
        .join(0.3, 3, Some(archetype(patch, "pad")))
        .at(0.4, note_on(1, 64))
        .at(0.5, note_on(3, 52));
    for k in 0..120 {
        let t = 0.6 + k as f64 * 0.0371;
        let v = ((k * 37) % 101) as f32 / 100.0;
        s = s
            .at(t, bend(1 + k % 3, 4.0 * v - 2.0))
            .at(t + 0.013, express(1 + (k + 1) % 3, Expression::Vibrato, v))
            .at(
                t + 0.021,
                express(1 + (k + 2) % 3, Expression::Brightness, 1.0 - v),
            );
    }
    s.at(3.0, bend(2, 0.0)).leave(4.5, 2).performance(6.0)
}

#[test]
fn expression_renders_identically_for_block_sizes_1_64_333_and_4096() {
    let patch = probe();
    let perf = expressive_performance(&patch);
    let reference = render_blocks(&patch, &perf, 64, None);
    assert!(rms(&reference) > 1e-3);
    for block in [1usize, 333, 4096] {
        let other = render_blocks(&patch, &perf, block, None);
        let first_difference = reference
            .iter()
            .zip(&other)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(first_difference, None, "block size {block} differs from 64");
    }
    // and the expression is heard: the same show without it differs
    let mut plain = perf.clone();
    plain
        .commands
        .retain(|c| !matches!(c.command, Command::Expression { .. }));
    assert!(render_blocks(&patch, &plain, 64, None) != reference);
}

#[test]
fn process_never_allocates_with_bends_in_flight() {
    let patch = probe();
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let sender = {
        let controller = controller.clone();
        thread::spawn(move || {
            let mut sent = 0u32;
            for round in 0..40u32 {
                for id in 1..=16u32 {
                    let v = ((round * 7 + id * 13) % 100) as f32 / 99.0;
                    let commands = [
                        Command::Join {
                            participant: id,
                            archetype: Some((id % 3) as u16),
                        },
                        note_on(id, 50 + (id % 24) as u8),
                        bend(id, 4.0 * v - 2.0),
                        express(id, Expression::Vibrato, v),
                        express(id, Expression::Brightness, 1.0 - v),
                        bend(id, f32::NAN),
                    ];
                    for c in commands {
                        while controller.command(c).is_err() {
                            thread::yield_now();
                        }
                        sent += 1;
                    }
                }
                thread::sleep(std::time::Duration::from_millis(5));
            }
            sent
        })
    };
    let mut block = vec![0.0f32; 2 * 256];
    reset_violation_count();
    let mut blocks = 0;
    while !sender.is_finished() || blocks < 1000 {
        assert_no_alloc(|| engine.process(&mut block));
        blocks += 1;
        assert!(blocks < 200_000, "sender never finished");
    }
    let sent = sender.join().unwrap();
    assert_eq!(violation_count(), 0, "process allocated or freed memory");
    assert_eq!(sent, 40 * 16 * 6);
    assert!(block.iter().all(|x| x.is_finite()));
    assert!(rms(&block) > 1e-4, "still playing");
}

#[test]
fn performance_files_carry_bend_vibrato_and_brightness_events() {
    let patch = probe();
    let parse = |events: &str| {
        Performance::parse(
            Path::new("perf.toml"),
            &format!(
                "version = 1\n\n[[events]]\ntime = 0.0\ntype = \"join\"\nparticipant = 1\n{events}"
            ),
            &patch,
            SR,
        )
    };
    let ok = parse(
        "[[events]]\nsample = 4800\ntype = \"bend\"\nparticipant = 1\nvalue = -1.5\n\
         [[events]]\ntime = 0.2\ntype = \"vibrato\"\nparticipant = 1\nvalue = 0.75\n\
         [[events]]\nbar = 2\ntype = \"brightness\"\nparticipant = 1\nvalue = 1.0\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = ok.commands.iter().map(|c| (c.sample, c.command)).collect();
    assert_eq!(
        got[1..],
        [
            (4800, bend(1, -1.5)),
            (9600, express(1, Expression::Vibrato, 0.75)),
            (96_000, express(1, Expression::Brightness, 1.0)),
        ]
    );
    for (events, key, expected) in [
        (
            "[[events]]\ntime = 1.0\ntype = \"bend\"\nparticipant = 1\nvalue = 30.0\n",
            "events[1].value",
            "from -24 to 24 semitones",
        ),
        (
            "[[events]]\ntime = 1.0\ntype = \"vibrato\"\nparticipant = 1\nvalue = 1.5\n",
            "events[1].value",
            "from 0 to 1",
        ),
        (
            "[[events]]\ntime = 1.0\ntype = \"bend\"\nparticipant = 1\n",
            "events[1].value",
            "needs `value`",
        ),
        (
            "[[events]]\ntime = 1.0\ntype = \"brightness\"\nparticipant = 1\nvalue = 0.5\npitch = 60\n",
            "events[1].pitch",
            "does not belong",
        ),
        (
            "[[events]]\ntime = 1.0\ntype = \"bend\"\nparticipant = 2\nvalue = 1.0\n",
            "events[1]",
            "not present",
        ),
    ] {
        let e = parse(events).expect_err(events).to_string();
        assert!(e.contains(key) && e.contains(expected), "{events}\n→ {e}");
    }
}
