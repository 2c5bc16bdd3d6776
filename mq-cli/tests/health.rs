//! Board health through the built binary against a real lab host (sshd on
//! 127.0.0.1, throwaway users, procmail's lockfile, emulated boards): a pool
//! of three boards with one broken routes around it by itself, a health
//! check keeps it out until it is mended, test failures never touch health.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{state, Lab, PASS};

#[test]
fn a_pool_routes_around_a_broken_board_and_a_check_brings_it_back() {
    let Some(t) = Lab::start() else { return };
    assert_eq!(state(&t.health("b3")), ("good", 0), "no file: good");

    // Three infrastructure failures in a row: unknown, with the reason.
    for n in 1..=3 {
        let r = t.run(0, "b3", &[]);
        assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
        let h = t.health("b3");
        let expected = if n < 3 { "good" } else { "unknown" };
        assert_eq!(state(&h), (expected, n), "after {n} failures");
        if n == 3 {
            assert!(r.stderr.contains("b3 is now unknown"), "{}", r.stderr);
            assert!(h["reason"]
                .as_str()
                .unwrap()
                .contains("3 infrastructure failures"));
            assert_eq!(h["by"], "mq");
        }
    }
    // Named directly, it is refused before any lock, unless --any-health.
    let r = t.run(0, "b3", &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("b3 is out of service (unknown:"),
        "{}",
        r.stderr
    );
    assert_eq!(t.lab.lock_owner("b3"), None);
    let r = t.run(0, "b3", &["--any-health"]);
    assert_eq!(r.code, 4);
    assert_eq!(state(&t.health("b3")), ("bad", 4));

    // The pool keeps working on the other two: b3 is never picked.
    for _ in 0..6 {
        let r = t.run(0, "p", &[]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("'b3'"), "{}", r.stdout);
    }

    // A health check on the broken board fails and keeps it bad.
    let r = t.mq(0, &["health", "check", "b3"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("b3: bad (health check failed"),
        "{}",
        r.stdout
    );
    assert_eq!(state(&t.health("b3")).0, "bad");

    // Mended, the check sets it good, and it takes jobs again.
    t.mend_board("b3");
    let r = t.mq(0, &["health", "check", "--all"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(state(&t.health("b3")), ("good", 0));
    assert_eq!(t.run(0, "b3", &[]).code, 0);

    // The log holds every change, in order, with who did it (the check
    // that found b3 bad again changed nothing, and is not a change).
    let r = t.mq(0, &["health", "log", "b3", "--json"]);
    let log: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    let path: Vec<(&str, &str)> = log
        .iter()
        .map(|c| (c["to"].as_str().unwrap(), c["by"].as_str().unwrap()))
        .collect();
    let user = t.lab.users[0].name.as_str();
    assert_eq!(path, [("unknown", "mq"), ("bad", "mq"), ("good", user)]);
}

#[test]
fn test_failures_leave_a_board_good_and_counts_are_never_lost() {
    let Some(t) = Lab::start() else { return };
    // Error text and timeouts after boot are the test's, not the board's.
    let failing = t.image("failing");
    for _ in 0..4 {
        let args = [
            "run", "-s", "b1", "-c", PASS, "-e", "FAILED", "-d", "10", "-f", &failing,
        ];
        assert_eq!(t.mq(0, &args).code, 3);
    }
    let hang = t.inventory.path().join("hang");
    std::fs::write(&hang, "ELF-loader started\n@hang\n").unwrap();
    mq_testkit::set_mode(&hang, 0o644);
    let hang = hang.display().to_string();
    let args = ["run", "-s", "b1", "-c", PASS, "-d", "1", "-f", &hang];
    assert_eq!(t.mq(0, &args).code, 4);
    assert_eq!(state(&t.health("b1")), ("good", 0));

    // Two users finishing runs on one board at once: the count is kept
    // under the board's lock, so neither is lost.
    let runs: Vec<_> = (0..2)
        .map(|user| {
            let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
            let image = t.image("image");
            cmd.args(["run", "-s", "b3", "-c", PASS, "-d", "10", "-f", &image]);
            t.lab
                .configure(&mut cmd, &t.lab.users[user].name, t.home.path());
            cmd.env("MQ_INVENTORY", t.inventory.path());
            cmd.spawn().unwrap()
        })
        .collect();
    for mut child in runs {
        assert_eq!(child.wait().unwrap().code(), Some(4));
    }
    assert_eq!(state(&t.health("b3")), ("good", 2));
    let _ = Duration::ZERO;
}

#[test]
fn hostile_reasons_are_kept_and_shown_verbatim() {
    let Some(t) = Lab::start() else { return };
    let reason = "it's \"$(rm -rf /)\"; `id`\nsecond line\twith a tab \\ and a backslash";
    let r = t.mq(
        0,
        &["health", "set", "b2", "maintenance", "--reason", reason],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let h = t.health("b2");
    assert_eq!(h["state"], "maintenance");
    assert_eq!(h["reason"].as_str().unwrap(), reason);
    assert_eq!(h["by"].as_str().unwrap(), t.lab.users[0].name);
    let table = t.mq(0, &["health", "b2"]).stdout;
    assert!(
        table
            .contains("it's \"$(rm -rf /)\"; `id`\\nsecond line\\twith a tab \\\\ and a backslash"),
        "{table}"
    );
    // Nothing ran: no file named after the injection, and the pool skips b2.
    assert!(!Path::new("/id").exists());
    let log = t.mq(0, &["health", "log", "--json"]).stdout;
    let log: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap();
    assert_eq!(log.last().unwrap()["reason"].as_str().unwrap(), reason);
    // All three out (b3 broken by hand too): the pool says which and why.
    t.mq(0, &["health", "set", "b1", "retired", "--reason", "gone"]);
    t.mq(0, &["health", "set", "b3", "bad", "--reason", "no serial"]);
    let r = t.run(0, "p", &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("Pool p has no member in service"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("b1 retired (gone)"), "{}", r.stderr);
    assert_eq!(t.lab.lock_owner("b1"), None);
}

#[test]
fn a_sweep_checks_only_idle_boards_an_admin_left_in_service() {
    let Some(t) = Lab::start() else { return };
    t.mend_board("b3");
    let checks = t.inventory.path().join("health.tsv");
    std::fs::write(
        &checks,
        format!("b1\t{PASS}\t10\timage\nb2\t{PASS}\t10\timage\nb3\t{PASS}\t10\timage\n"),
    )
    .unwrap();
    let r = t.mq(
        0,
        &["health", "set", "b1", "maintenance", "--reason", "new PSU"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = t.mq(1, &["sem", "-wait", "b2", "-k", "bench"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let holder = &t.lab.users[1].name;

    // The sweep leaves the admin's board and the busy one alone, says so,
    // and never waits.
    let r = t.mq_within(30, 0, &["health", "check", "--all"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("b1: skipped: maintenance (--force to check it too)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(&format!("b2: skipped: held by {holder} (key bench)")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("b3: good (health check passed)"),
        "{}",
        r.stdout
    );
    assert_eq!(t.health("b1")["state"], "maintenance");
    assert_eq!(t.lab.lock_owner("b2").as_deref(), Some(holder.as_str()));
    // Forced, the admin's board is checked too.
    let r = t.mq_within(30, 0, &["health", "check", "--all", "--force"]);
    assert!(
        r.stdout.contains("b1: good (health check passed)"),
        "{}",
        r.stdout
    );

    // By name, a held board is waited for, and the wait is said.
    let release = std::thread::scope(|s| {
        let release = s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_secs(2));
            t.mq(1, &["sem", "-signal", "b2", "-k", "bench"])
        });
        let r = t.mq_within(30, 0, &["health", "check", "b2"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "b2 is held by {holder} (key bench); waiting in line"
            )),
            "{}",
            r.stderr
        );
        assert!(r.stdout.contains("b2: good"), "{}", r.stdout);
        release.join().unwrap()
    });
    assert_eq!(release.code, 0, "{}", release.stderr);
}
