//! The room as a participant, on the engine side: the room's mood blends into the communal
//! mood with the patch's weight, its parameter offsets and tempo changes are audible, and all
//! of it is deterministic for any block size and survives a recording round trip.

use crate::common::measure::*;
use crate::common::*;
use tapestry::control::{Command, MoodTarget, VoiceSelector};
use tapestry::engine::config::Param;
use tapestry::Patch;

fn minimal_with(extra: &str) -> Patch {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patches/minimal.toml");
    let text = std::fs::read_to_string(path).unwrap();
    patch_text(&format!("{text}\n[master]\nleveler = false\n{extra}"))
}

/// Six participants, all four archetypes of the minimal patch.
fn crowd(_patch: &Patch) -> Script {
    (0..6u32).fold(Script::default(), |s, i| {
        s.join(0.0, i + 1, Some((i % 4) as u16))
    })
}

fn room_mood(dim: u8, value: f32) -> Command {
    Command::Mood {
        target: MoodTarget::Room,
        dim,
        value,
        ramp_secs: 0.0,
    }
}

fn render_secs(patch: &Patch, script: Script, secs: f64, block: usize) -> Vec<f32> {
    render_blocks(patch, &script.performance(secs), block, None)
}

#[test]
fn room_energy_is_heard_with_the_patch_weight_and_not_at_weight_zero() {
    let energy = |p: &Patch| dim(p, "energy");
    let loud_room = |p: &Patch, v: f32| crowd(p).at(1.0, room_mood(energy(p), v));
    let half = minimal_with("[analysis]\nweight = 0.8\n");
    let high = render_secs(&half, loud_room(&half, 1.0), 10.0, 512);
    let low = render_secs(&half, loud_room(&half, 0.0), 10.0, 512);
    let (h, l) = (
        rms_db(&mono(&high[2 * 5 * SR as usize..])),
        rms_db(&mono(&low[2 * 5 * SR as usize..])),
    );
    eprintln!("room energy high {h:.1} dB, low {l:.1} dB");
    assert!(
        h > l + 4.0,
        "a loud room must raise the ensemble: {h} vs {l}"
    );
    let h_on = onset_rate_per_sec(&mono(&high[2 * 5 * SR as usize..]), SR as f32);
    let l_on = onset_rate_per_sec(&mono(&low[2 * 5 * SR as usize..]), SR as f32);
    eprintln!("onsets/s high {h_on:.2}, low {l_on:.2}");
    assert!(h_on > l_on, "a lively room must make the music denser");

    let deaf = minimal_with("[analysis]\nweight = 0.0\n");
    let with_room = render_secs(&deaf, loud_room(&deaf, 1.0), 6.0, 512);
    let without = render_secs(&deaf, crowd(&deaf), 6.0, 512);
    assert_eq!(
        with_room, without,
        "weight 0 must leave the music untouched"
    );
}

#[test]
fn the_conductor_still_overrides_the_room() {
    let p = minimal_with("[analysis]\nweight = 1.0\n");
    let e = dim(&p, "energy");
    let conducted = |room: f32| crowd(&p).communal(0.5, e, 0.3).at(1.0, room_mood(e, room));
    let a = render_secs(&p, conducted(1.0), 5.0, 512);
    let b = render_secs(&p, conducted(0.0), 5.0, 512);
    assert_eq!(a, b, "a conductor override wins over the room");
}

#[test]
fn room_parameter_offsets_are_audible() {
    let p = minimal_with("");
    let density = Param::Density.index() as u8;
    let with = |v: f32| {
        crowd(&p).at(
            0.5,
            Command::RoomParam {
                param: density,
                voices: VoiceSelector::All,
                value: v,
            },
        )
    };
    let busy = mono(&render_secs(&p, with(1.0), 12.0, 512)[2 * 4 * SR as usize..]);
    let sparse = mono(&render_secs(&p, with(-0.5), 12.0, 512)[2 * 4 * SR as usize..]);
    let (b, s) = (
        onset_rate_per_sec(&busy, SR as f32),
        onset_rate_per_sec(&sparse, SR as f32),
    );
    eprintln!("onsets/s with density +1.0: {b:.2}, -0.5: {s:.2}");
    assert!(
        b > s * 1.3,
        "a density offset must change note density: {b} vs {s}"
    );
}

#[test]
fn tempo_changes_move_the_pulse_and_keep_the_beat_continuous() {
    // one pluck on an eighth-note grid with every step played: its onsets are the pulse
    let p = patch_text(PULSE_PATCH);
    let script = Script::default()
        .join(0.0, 1, Some(0))
        .at(8.0, Command::Tempo { bpm: 150.0 });
    let out = render_secs(&p, script.clone(), 16.0, 512);
    let before = onset_rate_per_sec(
        &mono(&out[2 * 2 * SR as usize..2 * 8 * SR as usize]),
        SR as f32,
    );
    let after = onset_rate_per_sec(&mono(&out[2 * 9 * SR as usize..]), SR as f32);
    eprintln!("onsets/s at 100 BPM {before:.2}, at 150 BPM {after:.2}");
    assert!((before - 100.0 / 60.0).abs() < 0.25, "{before}");
    assert!((after - 150.0 / 60.0).abs() < 0.35, "{after}");
    for block in [1, 64, 333, 4096] {
        assert_eq!(
            out,
            render_secs(&p, script.clone(), 16.0, block),
            "block {block}"
        );
    }
}

#[test]
fn bad_room_commands_are_refused_without_harm() {
    let p = minimal_with("");
    let script = crowd(&p)
        .at(0.5, Command::Tempo { bpm: f32::NAN })
        .at(0.6, Command::Tempo { bpm: 5.0 })
        .at(
            0.7,
            Command::RoomParam {
                param: 200,
                voices: VoiceSelector::All,
                value: 1.0,
            },
        )
        .at(
            0.8,
            Command::RoomParam {
                param: 0,
                voices: VoiceSelector::All,
                value: f32::INFINITY,
            },
        )
        .at(0.9, room_mood(0, f32::NAN))
        .at(1.0, room_mood(42, 0.5));
    let out = render_secs(&p, script, 4.0, 512);
    let clean = render_secs(&p, crowd(&p), 4.0, 512);
    assert!(all_finite(&out));
    assert_eq!(out, clean, "refused commands change nothing");
}

#[test]
fn room_events_round_trip_through_a_performance_file() {
    let p = minimal_with("");
    let text = r#"
version = 1
[[events]]
time = 0.0
type = "join"
participant = 1
[[events]]
time = 1.0
type = "room"
dimension = "energy"
value = 0.9
ramp_secs = 0.02
[[events]]
time = 1.5
type = "room_param"
param = "density"
value = 0.4
[[events]]
time = 2.0
type = "tempo"
bpm = 120.5
"#;
    let perf = tapestry::Performance::parse(std::path::Path::new("t.toml"), text, &p, SR).unwrap();
    let kinds: Vec<_> = perf.commands.iter().map(|c| c.command).collect();
    assert!(kinds.contains(&Command::Tempo { bpm: 120.5 }));
    assert!(kinds.contains(&Command::RoomParam {
        param: Param::Density.index() as u8,
        voices: VoiceSelector::All,
        value: 0.4
    }));
    let bad = text.replace("bpm = 120.5", "bpm = 1000.0");
    let e = tapestry::Performance::parse(std::path::Path::new("t.toml"), &bad, &p, SR)
        .unwrap_err()
        .to_string();
    assert!(e.contains("events[3].bpm") && e.contains("BPM"), "{e}");
    let bad = text.replace("param = \"density\"", "param = \"dencity\"");
    let e = tapestry::Performance::parse(std::path::Path::new("t.toml"), &bad, &p, SR)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("events[2].param") && e.contains("density"),
        "{e}"
    );
}

#[test]
fn malformed_analysis_sections_name_the_key() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("patches/minimal.toml");
    let base = std::fs::read_to_string(path).unwrap();
    let cases = [
        ("[analysis]\nweight = 2.0\n", "analysis.weight"),
        (
            "[[analysis.mappings]]\nfeature = \"loudnes\"\nmood = \"energy\"\nfeature_range = [-50, -20]\n",
            "analysis.mappings[0].feature",
        ),
        (
            "[[analysis.mappings]]\nfeature = \"loudness\"\nmood = \"joy\"\nfeature_range = [-50, -20]\n",
            "analysis.mappings[0].mood",
        ),
        (
            "[[analysis.mappings]]\nfeature = \"onset_rate\"\nparam = \"density\"\nfeature_range = [0, 8]\n",
            "analysis.mappings[0].range",
        ),
        (
            "[[analysis.mappings]]\nfeature = \"centroid\"\nmood = \"brightness\"\nfeature_range = [0, 4000]\n",
            "analysis.mappings[0].feature_range",
        ),
        (
            "[[analysis.mappings]]\nfeature = \"loudness\"\nmood = \"energy\"\nfeature_range = [-50]\n",
            "analysis.mappings[0].feature_range",
        ),
        (
            "[analysis.tempo]\nmin_bpm = 140\nmax_bpm = 90\n",
            "analysis.tempo.max_bpm",
        ),
        ("[analysis]\nweigth = 0.5\n", "analysis"),
    ];
    for (extra, key) in cases {
        let text = format!("{base}\n{extra}");
        let e = Patch::parse(std::path::Path::new("room.toml"), &text)
            .expect_err(extra)
            .to_string();
        assert!(e.contains(key), "{extra}: expected {key} in:\n{e}");
        assert!(e.contains("room.toml:"), "{e}");
    }
}
