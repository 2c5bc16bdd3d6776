//! The lab's status (mq status, mq serve) against mq_core::testing's lab: a
//! real lock directory and board runners on this machine.

use std::time::Duration;

use mq_core::health::State;
use mq_core::job::{Cancel, JobSpec};
use mq_core::testing::{Board, TestLab};

fn run(lab: &TestLab, board: &str, key: &str) -> i32 {
    let spec = JobSpec {
        target: board.into(),
        files: vec![lab.image("kernel", b"k")],
        completion: Some("All is well".into()),
        timeout: Some(30),
        key: key.into(),
        ..JobSpec::default()
    };
    lab.queue()
        .run_job(&spec, None, &Cancel::new(), &mut |_| {})
        .unwrap()
        .exit_code
}

#[test]
fn one_read_shows_holders_lines_health_and_history() {
    let lab = TestLab::builder()
        .board("b1", Board::prints(["All is well in the universe"]))
        .board("b2", Board::exits_with(5))
        .board("b3", Board::prints(["All is well in the universe"]))
        .pool("p", &["b1", "b2"])
        .build();
    let queue = lab.queue();
    // A passed run on b1, an infrastructure failure on b2: both recorded.
    assert_eq!(run(&lab, "b1", "ci-1"), 0);
    assert_ne!(run(&lab, "b2", "ci-2"), 0);
    queue
        .set_health("b3", State::Maintenance, "new cable <b>")
        .unwrap();
    let hold = lab.hold("b1", "it's <script>alert(1)</script>");

    let before = lab.faults().operations();
    let status = queue.status(Duration::from_secs(3600)).unwrap();
    assert_eq!(lab.faults().operations() - before, 1, "one round trip");
    assert_eq!(status.version, 1);
    let names: Vec<&str> = status.boards.iter().map(|b| b.system.as_str()).collect();
    assert_eq!(names, ["b1", "b2", "b3"]);

    let b1 = &status.boards[0];
    assert_eq!(b1.pools, ["p"]);
    let holder = b1.holder.as_ref().expect("b1 is held");
    assert_eq!(holder.key, "it's <script>alert(1)</script>");
    assert!(holder.held_for < 60, "{holder:?}");
    assert!(!b1.long_hold);
    let last = b1.last_run.as_ref().expect("b1 ran");
    assert_eq!(
        (last.class.as_str(), last.status, last.key.as_str()),
        ("passed", 0, "ci-1")
    );
    assert_eq!(b1.holds.len(), 1, "the run's hold: {:?}", b1.holds);
    assert_eq!(b1.holds[0].key, "ci-1");

    let b2 = &status.boards[1];
    assert!(b2.holder.is_none());
    assert_eq!(b2.last_run.as_ref().unwrap().class, "infrastructure");
    assert_eq!(b2.health.failures, 1);

    let b3 = &status.boards[2];
    assert_eq!(b3.health.state, State::Maintenance);
    assert_eq!(b3.health.reason, "new cable <b>");
    assert_eq!(b3.health_log.last().unwrap().to, "maintenance");

    // A hold of any length is long when the limit is zero.
    let status = queue.status(Duration::ZERO).unwrap();
    assert!(status.boards[0].long_hold);
    // Only the boards asked for: a pool stands for its members.
    let only = status.only(&["p".to_string()], queue.inventory()).unwrap();
    assert_eq!(only.boards.len(), 2);
    hold.release();
    let status = queue.status(Duration::from_secs(3600)).unwrap();
    assert!(status.boards[0].holder.is_none());
    assert_eq!(status.boards[0].holds.len(), 2);
}

#[test]
fn the_status_script_passes_dash_bash_and_shellcheck() {
    let text = mq_core::status::script("/var/cache/machinelocks");
    let Some(problems) = mq_testkit::check_sh_script("status.sh", &text) else {
        return;
    };
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
