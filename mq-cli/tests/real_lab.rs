//! The lab as it really runs (issue 26): several real Unix users on one lab
//! host, a board runner that is not mq's own (the old lab's exits 1 for an
//! error text and for a timeout alike), runners that die of a signal. Each
//! test reproduces a failure seen on such a lab.

mod common;

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

/// An image that prints and then nothing: the runner waits for its `-d`.
const HANGS_QUIETLY: &str = "ELF-loader started\n";

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
    mq_testkit::sh("usermod", &["-s", "/bin/bash", user]);
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

#[test]
fn concurrent_health_sets_by_two_users_log_a_chain_of_changes() {
    let Some(t) = Lab::start() else { return };
    let states = ["maintenance", "good", "bad", "unknown"];
    // 24 sets, 8 at a time (sshd's MaxStartups drops more at once).
    std::thread::scope(|scope| {
        for n in 0..8 {
            let t = &t;
            scope.spawn(move || {
                for k in 0..3 {
                    let state = states[(n + k) % states.len()];
                    let r = t.mq(
                        n % 2,
                        &["health", "set", "b2", state, "--reason", "concurrent"],
                    );
                    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
                }
            });
        }
    });
    let r = t.mq(0, &["health", "log", "b2", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let log: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert!(!log.is_empty());
    // Each change starts where the one before left the board (the log is
    // ordered by time, to the second: order the chain by following it).
    let mut left: Vec<(String, String)> = log
        .iter()
        .map(|c| {
            (
                c["from"].as_str().unwrap().into(),
                c["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut at = "good".to_string();
    while !left.is_empty() {
        let Some(i) = left.iter().position(|(from, _)| *from == at) else {
            panic!("no change from {at} among {left:?} (log {log:?})");
        };
        at = left.remove(i).1;
        assert!(
            left.iter().all(|(f, t)| f != t),
            "a change to the same state: {left:?}"
        );
    }
    assert_eq!(state(&t.health("b2")).0, at, "the last change is the state");

    // A set that changes nothing is not a change.
    let before = log.len();
    for user in [0, 1] {
        let r = t.mq(user, &["health", "set", "b2", &at, "--reason", "again"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    }
    let r = t.mq(1, &["health", "log", "b2", "--json"]);
    let log: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(log.len(), before, "{log:?}");
}

#[test]
fn health_commands_check_base_version_like_every_other_command() {
    let Some(t) = Lab::start() else { return };
    let wrong = tempfile::tempdir().unwrap();
    mq_testkit::set_mode(wrong.path(), 0o777);
    let base = wrong.path().display().to_string();
    for args in [
        vec!["--base", &base, "health"],
        vec!["--base", &base, "health", "b1"],
        vec![
            "--base",
            &base,
            "health",
            "set",
            "b1",
            "maintenance",
            "--reason",
            "x",
        ],
        vec!["--base", &base, "health", "log"],
    ] {
        let r = t.mq(1, &args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("VERSION") || r.stderr.contains("VERSION"),
            "{args:?}: {}{}",
            r.stdout,
            r.stderr
        );
        // The same as the lock commands say (the oracle).
        let sem = t.mq(1, &["--base", &base, "sem", "-info", "b1"]);
        assert_eq!(
            (sem.code, sem.stdout.clone()),
            (r.code, r.stdout.clone()),
            "{args:?}"
        );
    }
    assert!(
        !wrong.path().join("health").exists(),
        "nothing made in a wrong BASE"
    );
}

/// Puts mq's own board runner behind `b1`'s reboot: a command board whose
/// power goes to the returned file and whose console prints the image then
/// sleeps 43.7 s; `power_off` as given. The lab's state directory is the
/// admin's, with b1's lock made for every user.
fn mq_runner_on_b1(t: &Lab, power_off: &str) -> std::path::PathBuf {
    let root = t.lab.root.path();
    let power = root.join("b1-power");
    std::fs::write(&power, "").unwrap();
    mq_testkit::set_mode(&power, 0o666);
    let p = power.display();
    let conf = root.join("lab.conf");
    let power_off = power_off.replace("POWER", &p.to_string());
    std::fs::write(
        &conf,
        format!(
            "[board b1]\nkind = command\npower_on = echo on >> {p}\npower_off = {power_off}\n\
             console = cat {{kernel}}; sleep 43.7; :\ncommand_timeout = 10\n"
        ),
    )
    .unwrap();
    mq_testkit::set_mode(&conf, 0o644);
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    mq_testkit::set_mode(&state, 0o755);
    let lock = state.join("b1.lock");
    std::fs::write(&lock, "").unwrap();
    mq_testkit::set_mode(&lock, 0o644);
    let wrapper = format!(
        "#!/bin/sh\nexec {} board reboot --lab {} --board b1 \"$@\"\n",
        mq_transport::quote(&assert_cmd::cargo::cargo_bin("mq").display().to_string()),
        mq_transport::quote(&conf.display().to_string())
    );
    std::fs::write(t.reboot("b1"), wrapper).unwrap();
    mq_testkit::set_mode(&t.reboot("b1"), 0o755);
    power
}

#[test]
fn after_a_runner_is_killed_the_host_powers_its_board_off() {
    let Some(t) = Lab::start() else { return };
    let power = mq_runner_on_b1(&t, "echo off >> POWER");
    write_image(&t, "hangs-quietly", HANGS_QUIETLY);
    let read = || std::fs::read_to_string(&power).unwrap();
    let lock = t.lab.root.path().join("state/b1.lock");
    let (run, report) = std::thread::scope(|s| {
        let run = s.spawn(|| run_report(&t, 1, "b1", "hangs-quietly"));
        // The board is on and its console quiet: the runner is killed outright.
        assert!(mq_testkit::eventually(
            std::time::Duration::from_secs(20),
            || read() == "off\non\n" && mq_lab::boardlock::lock_holder(&lock).is_some()
        ));
        let runner = mq_lab::boardlock::lock_holder(&lock).unwrap() as u32;
        mq_testkit::signal(runner, nix::sys::signal::Signal::SIGKILL);
        run.join().unwrap()
    });
    assert_eq!(report["remote_status"], 137, "{report}");
    assert_eq!(report["class"], "infrastructure", "{report}");
    assert_eq!(read(), "off\non\noff\n", "the host's finish powered it off");
    assert!(
        mq_testkit::processes_matching("sleep 43.7").is_empty(),
        "the console outlived its runner"
    );
    assert!(
        !run.stdout.contains("[[Power off failed]]"),
        "{}",
        run.stdout
    );
    assert_eq!(t.lab.lock_owner("b1"), None, "released");
}

#[test]
fn a_board_left_on_is_an_infrastructure_failure_whatever_the_test_printed() {
    let Some(t) = Lab::start() else { return };
    mq_runner_on_b1(&t, "echo 'pdu: no route to host' >&2; exit 7");
    for n in 1..=2u64 {
        let (r, report) = run_report(&t, n as usize % 2, "b1", "image");
        // The test passed, and says so; the lab failed, and says so too.
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert_eq!(report["outcome"]["outcome"], "completed", "{report}");
        assert_eq!(report["class"], "infrastructure", "{report}");
        assert!(
            r.stdout
                .contains("[[Power off failed]] powering off failed, the board may still be on"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("pdu: no route to host"), "{}", r.stdout);
        assert_eq!(state(&t.health("b1")), ("good", n), "counted on the host");
    }
}
