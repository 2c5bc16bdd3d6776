//! A run is one session on the lab host (issue 16): the acquire's own
//! session takes the lock, receives the images, runs the board and finishes
//! the job. Counted on the transport, so a change that opens another channel
//! (a separate upload, a log fetch, a release) fails here.

use mq_core::job::{Cancel, JobSpec};
use mq_core::testing::{Board, TestLab};
use mq_core::LockState;

#[test]
fn a_run_is_one_session_and_leaves_nothing() {
    let lab = TestLab::builder()
        .board(
            "b1",
            Board::prints(["ELF-loader started", "All is well in the universe"]).takes_files(2),
        )
        .build();
    let queue = lab.queue();
    let log = lab.path().join("console.log");
    for (timeout, with_log) in [(Some(30), true), (None, false)] {
        let before = lab.faults().operations();
        let spec = JobSpec {
            target: "b1".into(),
            files: vec![lab.image("kernel", b"k"), lab.image("root", b"r")],
            completion: Some("All is well".into()),
            timeout,
            log: with_log.then(|| log.clone()),
            key: "one-session".into(),
            ..JobSpec::default()
        };
        let report = queue
            .run_job(&spec, None, &Cancel::new(), &mut |_| {})
            .unwrap();
        assert_eq!(report.exit_code, 0, "{report:?}");
        assert_eq!(
            lab.faults().operations() - before,
            1,
            "one session per run (timeout {timeout:?}, log {with_log})"
        );
        assert!(lab.locks().iter().all(|(_, s)| *s == LockState::Free));
        assert!(lab.leftovers().is_empty(), "{:?}", lab.leftovers());
    }
    // The runner's log came back on that session.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("All is well in the universe"), "{text}");
}
