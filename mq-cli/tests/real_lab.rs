//! The lab as it really runs (issue 26): several real Unix users on one lab
//! host, a board runner that is not mq's own (the old lab's exits 1 for an
//! error text and for a timeout alike), runners that die of a signal. Each
//! test reproduces a failure seen on such a lab.

mod common;

use std::process::Command;

use common::{state, Lab, PASS};

/// The `--json-report` of a run as `user`, with the run itself.
fn run_report(
    t: &Lab,
    user: usize,
    board: &str,
    image: &str,
) -> (mq_testkit::Run, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    mq_testkit::set_mode(dir.path(), 0o777);
    let report = dir.path().join("report.json");
    let image = t.image(image);
    let report_arg = report.display().to_string();
    let r = t.mq(
        user,
        &[
            "run",
            "-s",
            board,
            "-c",
            PASS,
            "-e",
            "Test FAILED",
            "-d",
            "10",
            "-f",
            &image,
            "--json-report",
            &report_arg,
        ],
    );
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!("no report ({e}): {}{}", r.stdout, r.stderr);
    });
    (r, serde_json::from_str(&text).unwrap())
}

fn write_image(t: &Lab, name: &str, text: &str) {
    let path = t.inventory.path().join(name);
    std::fs::write(&path, text).unwrap();
    mq_testkit::set_mode(&path, 0o644);
}

#[test]
fn an_old_labs_runner_that_exits_1_never_quarantines_a_board_for_failing_tests() {
    let Some(t) = Lab::start() else { return };
    // b1's runner exits 1 for an error text and for a timeout, as the old
    // lab's does; PROTOCOL.md defines its arguments, not its statuses.
    let old = t.reboot("b1").with_file_name("old-statuses");
    std::fs::write(&old, "").unwrap();
    write_image(&t, "hangs", "ELF-loader started\n@sleep 30\n");
    write_image(&t, "silent", "@exit 1\n");

    // A bad commit: its test fails by its error text, run after run, by both
    // users. The board did its job each time.
    for n in 0..5 {
        let (r, report) = run_report(&t, n % 2, "b1", "failing");
        assert_eq!(r.code, 1, "the runner's status: {}{}", r.stdout, r.stderr);
        assert_eq!(report["class"], "test", "{report}");
        assert_eq!(report["outcome"]["outcome"], "error-text", "{report}");
        assert_eq!(state(&t.health("b1")), ("good", 0), "run {n}: {}", r.stderr);
    }
    // A test that hangs after the image started: the runner's [[Timeout]]
    // (status 1) is the test's failure too.
    let r = t.mq(
        1,
        &[
            "run",
            "-s",
            "b1",
            "-c",
            PASS,
            "-t",
            "1",
            "-d",
            "10",
            "-f",
            &t.image("hangs"),
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[[Timeout]]"), "{}", r.stdout);
    assert_eq!(state(&t.health("b1")), ("good", 0));

    // A runner that ends with 1 and no console at all: the board's fault,
    // counted for either user.
    for (n, user) in [(1, 0), (2, 1)] {
        let (r, report) = run_report(&t, user, "b1", "silent");
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert_eq!(report["class"], "infrastructure", "{report}");
        assert_eq!(state(&t.health("b1")), ("good", n));
    }
    // And a pass resets the count.
    let r = t.run(0, "b1", &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(state(&t.health("b1")), ("good", 0));
}

#[test]
fn a_runner_killed_by_a_signal_is_never_a_completion() {
    let Some(t) = Lab::start() else { return };
    // The user's login shell on the host is bash, which reports a child
    // killed by a signal with its command line (holding `-c TEXT`).
    let user = &t.lab.users[1].name;
    let out = Command::new("usermod")
        .args(["-s", "/bin/bash", user])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_image(&t, "killed", "ELF-loader started\n@kill\n");

    let (r, report) = run_report(&t, 1, "b2", "killed");
    assert_eq!(report["remote_status"], 137, "{report}");
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(report["exit_code"], 137, "{report}");
    assert_ne!(report["outcome"]["outcome"], "completed", "{report}");
    assert_eq!(report["class"], "infrastructure", "{report}");
    for shown in [&r.stdout, &r.stderr] {
        assert!(!shown.contains("Killed"), "{shown}");
        assert!(!shown.contains("line "), "a line of mq's script: {shown}");
        assert!(!shown.contains(&format!("completed: {PASS}")), "{shown}");
    }
    // The host counted it as the board's failure, not as a pass.
    assert_eq!(state(&t.health("b2")), ("good", 1));
    assert_eq!(t.lab.lock_owner("b2"), None, "released");
}
