//! Joins and leaves come back as notices at the sample they took effect, so a status view can
//! keep the list of who is present.

use crate::common::{patch, SR};
use tapestry::{Command, Engine, Message, Notice, Timing};

#[test]
fn joins_and_leaves_are_noticed_at_their_sample_and_unknown_leaves_are_refused() {
    let patch = patch("minimal.toml");
    let (mut engine, controller) = Engine::new(patch.config(SR, None), patch.names());
    let at = |sample, command| Message {
        at: Timing::At(sample),
        command,
    };
    for m in [
        at(
            100,
            Command::Join {
                participant: 4,
                archetype: Some(1),
            },
        ),
        at(5_000, Command::Leave { participant: 4 }),
        at(6_000, Command::Leave { participant: 4 }),
    ] {
        controller.send(m).unwrap();
    }
    let mut block = vec![0.0f32; 2 * 300];
    for _ in 0..40 {
        engine.process(&mut block);
    }
    let notices: Vec<Notice> = std::iter::from_fn(|| controller.try_notice()).collect();
    assert_eq!(
        notices[..2],
        [
            Notice::Joined {
                participant: 4,
                archetype: 1,
                at_sample: 100
            },
            Notice::Left {
                participant: 4,
                at_sample: 5_000
            },
        ]
    );
    // the second leave finds nobody: refused, not noticed as a leave
    assert!(matches!(
        notices[2],
        Notice::Refused {
            command: Command::Leave { participant: 4 },
            at_sample: 6_000,
            ..
        }
    ));
    assert_eq!(notices.len(), 3);
    assert_eq!(
        controller
            .status()
            .participants
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
