//! `mq sem`, `mq lock`, `mq unlock` through the built binary, against a real
//! lab host: sshd on 127.0.0.1, throwaway users, procmail's lockfile.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_testkit::{eventually, LabHost, Run};
use nix::sys::signal::Signal;

struct Sem {
    lab: LabHost,
    home: tempfile::TempDir,
}

impl Sem {
    fn start(users: usize) -> Option<Sem> {
        if !mq_testkit::lockfile_installed() {
            return None;
        }
        Some(Sem {
            lab: LabHost::start(users)?,
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn user(&self, i: usize) -> &str {
        &self.lab.users[i].name
    }

    /// `mq ARGS` as user `i`, against this lab.
    fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args);
        self.lab.configure(&mut cmd, self.user(i), self.home.path());
        cmd
    }

    fn mq(&self, i: usize, args: &[&str]) -> Run {
        Run::of(&mut self.command(i, args))
    }

    fn spawn(&self, i: usize, args: &[&str]) -> Child {
        self.command(i, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A wait of `user` is on the host: its shell, whose command line is the
/// acquire script with PROTOCOL.md's `lockfile` line (the one `sem -cancel`
/// looks for). Between its attempts it sleeps in line.
fn wait_for_lockfile_of(user: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        std::process::Command::new("pgrep")
            .args(["-u", user, "-f", "lockfile -1"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn every_sem_command_and_message() {
    let Some(t) = Sem::start(2) else { return };
    let (alice, bob) = (t.user(0).to_string(), t.user(1).to_string());

    let r = t.mq(0, &["sem", "-info", "sabre"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Lock for sabre currently free\n")
    );
    let r = t.mq(0, &["sem", "-mr-info", "sabre"]);
    assert_eq!(r.stdout, "sabre FREE\n");

    let r = t.mq(0, &["sem", "-wait", "sabre", "-k", "ci-1", "-T", "600"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    let r = t.mq(1, &["sem", "-info", "sabre"]);
    let prefix = format!("Lock for sabre held by {alice} since 20");
    assert!(r.stdout.starts_with(&prefix), "{}", r.stdout);
    assert!(
        r.stdout.ends_with(", timeout 600 with key 'ci-1'\n"),
        "{}",
        r.stdout
    );
    let r = t.mq(1, &["sem", "-mr-info", "sabre"]);
    let words: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 7);
    assert_eq!(
        (words[0], words[1], words[2], words[6]),
        ("sabre", "LOCKED", alice.as_str(), "ci-1")
    );
    let r = t.mq(1, &["sem", "dumpall"]);
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(r.stdout.starts_with("sabre LOCKED "));

    // Already mine, with the same key: refused, exit 2.
    let r = t.mq(0, &["sem", "-wait", "sabre", "-k", "ci-1"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stdout,
        "Attempting to grab lock you already own with the same key. Please explicitly release\n\
         Failed to acquire lock for system (sabre)\n"
    );
    // Someone else's: -t bounds the wait.
    let r = t.mq(1, &["sem", "-wait", "sabre", "-t", "1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (2, "Failed to acquire lock for system (sabre)\n")
    );

    // Releases refused as mq.sh refuses them: message, exit 0.
    let r = t.mq(1, &["sem", "-signal", "sabre", "-k", "ci-1"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "Attempting to unlock system sabre that you do not hold\n"
        )
    );
    let r = t.mq(0, &["sem", "-signal", "sabre", "-k", "wrong"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Attempting to unlock system sabre with the wrong key!\n")
    );
    assert!(t.lab.lock_owner("sabre").is_some());
    // The modern unlock says so with exit 3.
    let r = t.mq(0, &["unlock", "sabre", "-k", "wrong"]);
    assert_eq!(r.code, 3);
    // Forced release by another user.
    let r = t.mq(1, &["sem", "-signal", "sabre", "-f"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(t.lab.lock_owner("sabre"), None);

    // Modern spellings and JSON.
    let r = t.mq(1, &["lock", "sabre", "-k", "b"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = t.mq(0, &["sem", "info", "sabre", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["system"], "sabre");
    assert_eq!(v["state"], "held");
    assert_eq!(v["owner"], bob.as_str());
    assert_eq!(v["key"], "b");
    let r = t.mq(0, &["sem", "dumpall", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let r = t.mq(1, &["unlock", "sabre", "-k", "b"]);
    assert_eq!(r.code, 0);
    let r = t.mq(1, &["sem", "info", "sabre", "--json"]);
    assert!(r.stdout.contains("\"state\":\"free\""), "{}", r.stdout);
}

#[test]
fn bad_input_fails_before_connecting() {
    let Some(t) = Sem::start(1) else { return };
    let before = t.lab.server.connections();
    let r = t.mq(0, &["sem", "-wait", "nosuch"]);
    assert_eq!(r.code, 1);
    assert!(r
        .stdout
        .starts_with("System or pool 'nosuch' does not exist. Valid systems are\n"));
    for (args, message) in [
        (
            &["sem", "-wait", "sabre", "-T", "-1"][..],
            "-T <timeout> requires a positive integer",
        ),
        (
            &["sem", "-wait", "sabre", "-T", "soon"][..],
            "-T <timeout> requires a positive integer",
        ),
    ] {
        let r = t.mq(0, args);
        assert_eq!((r.code, r.stdout.trim()), (1, message), "{args:?}");
    }
    let r = t.mq(0, &["sem", "-wait", "sabre", "-k", "two\nlines"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("newline"));
    let r = t.mq(0, &["sem", "-wait", "sabre", "-w", "0"]);
    assert_eq!(r.code, 1);
    let r = t.mq(0, &["sem", "-frobnicate", "sabre"]);
    assert_eq!(r.code, 1);
    let r = t.mq(0, &["sem"]);
    assert_eq!(r.code, 1);
    let r = t.mq(0, &["sem", "help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("-mr-info"), "{}", r.stdout);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        t.lab.server.connections(),
        before,
        "nothing reached the host"
    );
    assert!(
        std::fs::read_dir(&t.lab.base).unwrap().count() == 1,
        "only VERSION"
    );
}

#[test]
fn unreachable_host_and_wrong_version() {
    let Some(t) = Sem::start(1) else { return };
    let config = t.home.path().join("closed");
    let port = mq_testkit::free_port();
    std::fs::write(
        &config,
        format!("Host lab\n  HostName 127.0.0.1\n  Port {port}\n"),
    )
    .unwrap();
    let mut cmd = t.command(0, &["sem", "-info", "sabre"]);
    cmd.env("MQ_SSH_CONFIG", &config);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Unable to ssh to lab\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")));

    std::fs::write(t.lab.base.join("VERSION"), "4\n").unwrap();
    let r = t.mq(0, &["sem", "-wait", "sabre"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .starts_with("Local version of mq.sh appears to differ from version on "),
        "{}",
        r.stdout
    );
    assert_eq!(t.lab.lock_owner("sabre"), None);
}

#[test]
fn a_pool_picks_a_free_member_and_prints_it() {
    let Some(t) = Sem::start(1) else { return };
    let r = t.mq(0, &["sem", "-wait", "odroidc4_pool", "-k", "p"]);
    assert_eq!(r.code, 0);
    let first = r.stdout.trim().to_string();
    assert!(first == "odroidc4_1" || first == "odroidc4_2", "{first}");
    let r = t.mq(0, &["sem", "-wait", "odroidc4_pool", "-k", "p"]);
    let second = r.stdout.trim().to_string();
    assert_ne!(first, second, "the free member is chosen");
    assert!(t.lab.lock_owner(&first).is_some() && t.lab.lock_owner(&second).is_some());
}

#[test]
fn one_connection_for_sem_info() {
    let Some(t) = Sem::start(1) else { return };
    let before = t.lab.server.connections();
    assert_eq!(t.mq(0, &["sem", "-info", "sabre"]).code, 0);
    assert_eq!(t.mq(0, &["sem", "-wait", "x86_pool", "-k", "k"]).code, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        t.lab.server.connections() - before,
        2,
        "one connection per mq"
    );
}

#[test]
fn a_waiter_killed_with_sigkill_never_acquires() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "a"]).code, 0);
    let mut waiter = t.spawn(1, &["sem", "-wait", "sabre", "-k", "b"]);
    assert!(wait_for_lockfile_of(t.user(1)));
    mq_testkit::signal(waiter.id(), Signal::SIGKILL);
    waiter.wait().unwrap();
    // The remote wait dies with the connection.
    assert!(eventually(Duration::from_secs(10), || {
        !std::process::Command::new("pgrep")
            .args(["-u", t.user(1), "lockfile"])
            .output()
            .unwrap()
            .status
            .success()
    }));
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre", "-k", "a"]).code, 0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        t.lab.lock_owner("sabre"),
        None,
        "the killed waiter never took the lock"
    );
}

#[test]
fn sigint_stops_a_wait_cleanly() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "a"]).code, 0);
    let waiter = t.spawn(1, &["sem", "-wait", "sabre", "-k", "b"]);
    assert!(wait_for_lockfile_of(t.user(1)));
    let started = Instant::now();
    mq_testkit::signal(waiter.id(), Signal::SIGINT);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(3));
    // The remote wait is hung up as mq leaves.
    assert!(eventually(Duration::from_secs(5), || {
        !std::process::Command::new("pgrep")
            .args(["-u", t.user(1), "lockfile"])
            .output()
            .unwrap()
            .status
            .success()
    }));
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre", "-k", "a"]).code, 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(t.lab.lock_owner("sabre"), None);
}

#[test]
fn cancel_and_ci_cleanup() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(1, &["sem", "-wait", "sabre"]).code, 0);
    // A CI job (user 0, key job-9) holds two boards and waits for a third.
    assert_eq!(
        t.mq(0, &["sem", "-wait", "haswell3", "-k", "job-9"]).code,
        0
    );
    assert_eq!(t.mq(0, &["sem", "-wait", "skylake", "-k", "job-9"]).code, 0);
    let waiter = t.spawn(0, &["sem", "-wait", "sabre", "-k", "job-9"]);
    assert!(wait_for_lockfile_of(t.user(0)));
    // seL4's CI today: sem -cancel per board...
    let r = t.mq(0, &["sem", "-cancel", "sabre", "-k", "job-9"]);
    assert_eq!(r.code, 0);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Failed to acquire lock for system (sabre)\n"
    );
    // ...or one command for everything the key holds.
    let waiter = t.spawn(0, &["sem", "-wait", "sabre", "-k", "job-9"]);
    assert!(wait_for_lockfile_of(t.user(0)));
    let r = t.mq(0, &["sem", "cleanup", "-k", "job-9"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Released haswell3\nReleased skylake\n");
    assert!(
        r.stderr
            .contains("cancelled 1 wait(s) and released 2 lock(s)"),
        "{}",
        r.stderr
    );
    assert_eq!(waiter.wait_with_output().unwrap().status.code(), Some(2));
    assert_eq!(t.lab.lock_owner("haswell3"), None);
    assert_eq!(t.lab.lock_owner("sabre").as_deref(), Some(t.user(1)));
}

#[test]
fn waiting_shows_the_holder() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "a"]).code, 0);
    let waiter = t.spawn(1, &["sem", "-wait", "sabre", "-k", "b"]);
    assert!(wait_for_lockfile_of(t.user(1)));
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre", "-k", "a"]).code, 0);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    // Not a terminal: a plain line naming the holder.
    assert!(
        err.contains(&format!(
            "Waiting for sabre: held by {} since 20",
            t.user(0)
        )),
        "{err}"
    );
    assert!(!err.contains('\r'));
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let Some(t) = Sem::start(1) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre"]).code, 0);
    for args in [
        vec!["sem", "-info", "sabre"],
        vec!["sem", "-info", "sabre", "--json"],
        vec!["sem", "dumpall"],
        vec!["sem", "-mr-info", "x86_pool"],
        vec!["systems"],
    ] {
        // A reader that is gone before mq writes a byte (`mq ... | true`).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = t.command(0, &args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre"]).code, 0);
}

#[test]
fn signalling_a_pool_releases_the_member_held() {
    let Some(t) = Sem::start(2) else { return };
    let r = t.mq(0, &["sem", "-wait", "x86_pool", "-k", "ci-7"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let member = r.stdout.trim().to_string();
    // Another user holds another member: not ours to release.
    let other = t.mq(1, &["sem", "-wait", "x86_pool", "-k", "ci-7"]);
    assert_eq!(other.code, 0);
    let other = other.stdout.trim().to_string();
    assert_ne!(member, other);

    let r = t.mq(0, &["sem", "-signal", "x86_pool", "-k", "ci-7"]);
    assert_eq!(
        (r.code, r.stdout.clone()),
        (0, format!("{member}\n")),
        "{}",
        r.stderr
    );
    assert_eq!(
        t.lab.lock_owner(&member),
        None,
        "the member held was released"
    );
    assert_eq!(t.lab.lock_owner(&other).as_deref(), Some(t.user(1)));

    let r = t.mq(0, &["sem", "-signal", "x86_pool", "-k", "ci-7"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "You do not hold any member of pool x86_pool with key 'ci-7'\n"
        )
    );
    assert_eq!(t.mq(1, &["sem", "-signal", &other, "-k", "ci-7"]).code, 0);
}

#[test]
fn a_zero_reclaim_timeout_is_mq_sh_s_default() {
    let Some(t) = Sem::start(1) else { return };
    let r = t.mq(0, &["sem", "-wait", "sabre", "-T", "0"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let content = std::fs::read_to_string(t.lab.base.join("sabre.lock")).unwrap();
    assert_eq!(content.trim(), "0");
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre"]).code, 0);
}

/// `mq queue` shows the line as it is; `--queue-timeout` gives up with its
/// own status and leaves nothing; a waiter that is killed leaves the line.
#[test]
fn the_line_of_waiters_shows_and_ends() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(1, &["sem", "-wait", "sabre", "-k", "held"]).code, 0);
    let mut first = t.spawn(0, &["sem", "-wait", "sabre", "-k", "first"]);
    assert!(eventually(Duration::from_secs(10), || t
        .mq(1, &["queue", "sabre"])
        .stdout
        .contains("first")));
    let mut second = t.spawn(0, &["lock", "sabre", "-k", "second", "--priority", "-1"]);
    let line = || -> Vec<serde_json::Value> {
        serde_json::from_str(&t.mq(1, &["queue", "sabre", "--json"]).stdout).unwrap()
    };
    assert!(eventually(Duration::from_secs(10), || line().len() == 2));
    let keys: Vec<String> = line()
        .iter()
        .map(|w| w["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["first", "second"]);
    let table = t.mq(1, &["queue", "sabre"]).stdout;
    assert!(table.contains(t.user(0)), "{table}");

    // A queue timeout: its own status and message, and out of the line.
    let r = t.mq(
        1,
        &[
            "sem",
            "-wait",
            "sabre",
            "-k",
            "patient",
            "--queue-timeout",
            "2",
        ],
    );
    assert_eq!(r.code, 7, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--queue-timeout"), "{}", r.stderr);
    assert!(!line().iter().any(|w| w["key"] == "patient"));

    // The first waiter is killed: out of the line within 5 s; the second
    // gets the board once it is released.
    mq_testkit::signal(first.id(), Signal::SIGKILL);
    first.wait().unwrap();
    assert!(eventually(Duration::from_secs(5), || line().len() == 1));
    assert_eq!(t.mq(1, &["sem", "-signal", "sabre", "-k", "held"]).code, 0);
    assert_eq!(second.wait().unwrap().code(), Some(0));
    assert_eq!(t.lab.lock_owner("sabre").as_deref(), Some(t.user(0)));
    assert!(line().is_empty());
    assert_eq!(t.mq(0, &["unlock", "sabre", "-k", "second"]).code, 0);
}

/// A wait as a user sees it on a terminal (tmux): one line, updated in
/// place, with the place in line, the holder, the key and an estimate from
/// the board's hold history; then the board, and the line gone.
#[test]
fn a_wait_on_a_terminal_shows_place_holder_and_estimate() {
    let Some(t) = Sem::start(2) else { return };
    // The board's last holds took 8 minutes each (as mq's releases record
    // them on the host).
    let line_dir = t.lab.base.join("queue/sabre");
    std::fs::create_dir_all(&line_dir).unwrap();
    mq_testkit::set_mode(&t.lab.base.join("queue"), 0o1777);
    mq_testkit::set_mode(&line_dir, 0o1777);
    // SECONDS ENDED USER KEY, in the user's own history file.
    let user = t.user(0);
    let wrote = t.lab.sh_as(
        user,
        &format!(
            "printf '480 1795900000 {user} a\\n470 1795900100 {user} b\\n490 1795900200 {user} c\\n' > '{}/.holds.{user}'",
            line_dir.display()
        ),
    );
    assert!(wrote.status.success(), "{wrote:?}");

    assert_eq!(t.mq(1, &["sem", "-wait", "sabre", "-k", "CI-123"]).code, 0);
    let mut first = t.spawn(1, &["sem", "-wait", "sabre", "-k", "first"]);
    assert!(eventually(Duration::from_secs(10), || t
        .mq(1, &["queue", "sabre"])
        .stdout
        .contains("first")));

    let Some(term) = mq_testkit::Tmux::run(&t.command(0, &["sem", "-wait", "sabre", "-k", "mine"]))
    else {
        let _ = first.kill();
        let _ = first.wait();
        return;
    };
    let holder = t.user(1);
    let want = format!("Waiting: 2nd in line for sabre (held by {holder} for ");
    let screen = term
        .wait_for(&want, Duration::from_secs(15))
        .unwrap_or_else(|s| {
            panic!(
                "no place shown:\n{s}\ndead {} {}",
                term.display("#{pane_dead}"),
                term.display("#{pane_dead_status}")
            )
        });
    assert!(
        screen.contains(", key CI-123); about 16 min; waited "),
        "{screen}"
    );
    // Updated in place: one line, however long the wait.
    std::thread::sleep(Duration::from_secs(2));
    let screen = term.screen();
    assert_eq!(screen.matches("Waiting:").count(), 1, "{screen}");

    // The holder lets go: the first waiter has it, and this one is next.
    assert_eq!(
        t.mq(1, &["sem", "-signal", "sabre", "-k", "CI-123"]).code,
        0
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
    let screen = term
        .wait_for("Waiting: 1st in line for sabre", Duration::from_secs(10))
        .unwrap_or_else(|s| panic!("not first:\n{s}"));
    assert!(screen.contains(", key first); about "), "{screen}");
    assert_eq!(t.mq(1, &["sem", "-signal", "sabre", "-k", "first"]).code, 0);
    assert_eq!(term.exit_status(Duration::from_secs(10)), Some(0));
    assert!(!term.screen().contains("Waiting:"), "{}", term.screen());
    assert_eq!(t.lab.lock_owner("sabre").as_deref(), Some(t.user(0)));
    assert_eq!(t.mq(0, &["unlock", "sabre", "-k", "mine"]).code, 0);
}

#[test]
fn a_connection_lost_while_waiting_in_line_is_the_labs_failure_as_on_the_console() {
    let Some(t) = Sem::start(2) else { return };
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "first"]).code, 0);
    let waiter = t.spawn(1, &["sem", "-wait", "sabre", "-k", "second"]);
    assert!(wait_for_lockfile_of(t.user(1)));
    // The lab host dies under the wait.
    t.lab.server.kill_now();
    let out = waiter.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(mq_core::exit::INFRASTRUCTURE)),
        "{err}"
    );
}

#[test]
fn mq_trace_has_every_command_sent_and_its_raw_reply() {
    let Some(t) = Sem::start(1) else { return };
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let r = Run::of(
        t.command(0, &["sem", "-info", "sabre"])
            .env("MQ_TRACE", &trace),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.contains("--- mq-trace "), "{text}");
    assert!(text.contains(t.lab.base_str()), "the script sent: {text}");
    assert!(
        text.contains("--- reply exit status 0 ("),
        "the reply as the host said it: {text}"
    );
    // Replies hold other users' names and keys: the trace is the user's.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&trace).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
