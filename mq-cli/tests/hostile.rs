//! A lab host shared with a hostile neighbour: bob (a real Unix user on the
//! tests' own sshd) plants links, FIFOs, forged tickets, escapes and junk in
//! the directories under BASE that every lab user can write; alice runs mq
//! as usual. Her files keep their content, mode and owner, nothing hangs
//! (every mq is bounded by `timeout`), and what she is shown is the truth,
//! escaped.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, PASS};

const ALICE: usize = 0;
const BOB: usize = 1;

/// What must not change in a file of alice's: content, mode, owner.
fn snapshot(path: &Path) -> (Vec<u8>, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (std::fs::read(path).unwrap(), meta.mode(), meta.uid())
}

impl Lab {
    fn name(&self, user: usize) -> &str {
        &self.lab.users[user].name
    }

    fn home_of(&self, user: usize) -> &Path {
        &self.lab.users[user].home
    }

    /// Runs `script` as `user` on the host; it must succeed.
    fn as_user(&self, user: usize, script: &str) {
        let out = self.lab.sh_as(self.name(user), script);
        assert!(out.status.success(), "{script}: {out:?}");
    }

    /// Alice's private notes (0600), the file bob aims at.
    fn alices_notes(&self) -> PathBuf {
        let notes = self.home_of(ALICE).join("notes");
        self.as_user(
            ALICE,
            &format!(
                "printf 'secret\\n' > '{0}' && chmod 600 '{0}'",
                notes.display()
            ),
        );
        notes
    }

    /// Every process of `user` on the host has ended (nothing left blocked).
    fn nothing_left_running_as(&self, user: usize) {
        let name = self.name(user).to_string();
        let gone = mq_testkit::eventually(Duration::from_secs(10), || {
            Command::new("pgrep")
                .args(["-u", &name])
                .output()
                .is_ok_and(|o| o.stdout.is_empty())
        });
        let left = Command::new("ps")
            .args(["-o", "pid,args", "-u", &name])
            .output()
            .unwrap();
        assert!(
            gone,
            "left running: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }

    /// A passing run on `board` by `user`, whatever its health file says.
    fn run_any_health(&self, user: usize, board: &str) -> mq_testkit::Run {
        let image = self.image("image");
        let args = [
            "run",
            "-s",
            board,
            "--any-health",
            "-c",
            PASS,
            "-d",
            "10",
            "-f",
            &image,
        ];
        self.mq_within(90, user, &args)
    }

    fn base(&self) -> &str {
        self.lab.base_str()
    }
}

/// Wave 2's layout, as bob finds (or makes) it: the shared directories
/// his, 0777, without the sticky bit.
fn wave_two_dirs(t: &Lab) -> String {
    let b = t.base();
    format!(
        "mkdir -p '{b}/health/logs' '{b}/queue/b1' && \
         chmod 777 '{b}/health' '{b}/health/logs' '{b}/queue' '{b}/queue/b1'"
    )
}

#[test]
fn links_planted_under_base_never_make_mq_write_or_chmod_the_victims_files() {
    let Some(t) = Lab::start() else { return };
    let notes = t.alices_notes();
    let before = snapshot(&notes);
    let home_mode = std::fs::metadata(t.home_of(ALICE)).unwrap().mode();
    let (b, alice, n) = (t.base(), t.name(ALICE), notes.display());
    t.as_user(
        BOB,
        &format!(
            "{} && ln -s '{n}' '{b}/health/logs/{alice}' && ln -s '{n}' '{b}/health/threshold' && \
             for k in holds waits runs; do ln -s '{n}' '{b}/queue/b1/.'$k'.{alice}'; done && \
             printf 'state=$(id>/tmp/mq-pwned)\\n' > '{b}/health/b1' && \
             for i in 1 2 3 4 5 6 7 8; do ln -s '{n}' '{b}/health/.b2.'$i; done",
            wave_two_dirs(&t)
        ),
    );

    // Her health change: refused (her log is bob's link), nothing written.
    let r = t.mq_within(
        60,
        ALICE,
        &["health", "set", "b2", "maintenance", "--reason", "r"],
    );
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("health/logs/"), "{}", r.stderr);
    // A run (the board's health file is junk: --any-health), a wait and a
    // release: each would append to a planted history file.
    let r = t.run_any_health(ALICE, "b1");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        t.mq_within(60, BOB, &["sem", "-wait", "b1", "-k", "bob"])
            .code,
        0
    );
    let mut waiter = Command::new(assert_cmd::cargo::cargo_bin("mq"));
    waiter.args(["sem", "-wait", "b1", "-k", "alice"]);
    t.lab.configure(&mut waiter, alice, t.home.path());
    waiter.env("MQ_INVENTORY", t.inventory.path());
    let mut waiter = waiter.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        t.mq_within(60, BOB, &["sem", "-signal", "b1", "-k", "bob"])
            .code,
        0
    );
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
    assert_eq!(
        t.mq_within(60, ALICE, &["sem", "-signal", "b1", "-k", "alice"])
            .code,
        0
    );

    assert_eq!(snapshot(&notes), before, "alice's notes changed");
    assert_eq!(
        std::fs::metadata(t.home_of(ALICE)).unwrap().mode(),
        home_mode
    );
    assert!(!Path::new("/tmp/mq-pwned").exists());
    // She is told the host is not safe to share, and where.
    let r = t.mq_within(60, ALICE, &["status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("not safe to share"), "{}", r.stderr);
    assert!(r.stderr.contains("without the sticky bit"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("health/logs/{alice} is a link")),
        "{}",
        r.stderr
    );
    t.nothing_left_running_as(ALICE);
}

#[test]
fn a_health_directory_replaced_by_a_link_to_her_home_is_never_written() {
    let Some(t) = Lab::start() else { return };
    let home = t.home_of(ALICE).to_path_buf();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Her home as any other user can see it (0755, Debian's default).
    t.as_user(ALICE, &format!("chmod 755 '{}'", home.display()));
    let before = (listing(), std::fs::metadata(&home).unwrap().mode());
    let b = t.base();
    t.as_user(
        BOB,
        &format!(
            "ln -s '{}' '{b}/health' && ln -s '{}' '{b}/queue'",
            home.display(),
            home.display()
        ),
    );
    let r = t.mq_within(
        60,
        ALICE,
        &["health", "set", "b1", "maintenance", "--reason", "r"],
    );
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = t.run(ALICE, "b1", &["--any-health"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        (listing(), std::fs::metadata(&home).unwrap().mode()),
        before,
        "her home changed"
    );
    let r = t.mq_within(60, ALICE, &["status"]);
    assert!(r.stderr.contains("health is a link"), "{}", r.stderr);
}

#[test]
fn fifos_anywhere_under_base_never_hang_mq_or_leave_a_shell_behind() {
    let Some(t) = Lab::start() else { return };
    let (b, alice, bob) = (t.base(), t.name(ALICE), t.name(BOB));
    t.as_user(
        BOB,
        &format!(
            "{} && mkfifo '{b}/health/threshold' '{b}/health/b1' '{b}/health/logs/{bob}' \
             '{b}/queue/b1/T000000000001.000000000.1' '{b}/queue/b1/.holds.{bob}' \
             '{b}/queue/b1/.runs.{bob}' '{b}/queue/b1/.waits.{bob}' '{b}/b3.key' '{b}/policy'",
            wave_two_dirs(&t)
        ),
    );
    let started = Instant::now();
    let r = t.run_any_health(ALICE, "b1");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["health"],
        &["health", "log"],
        &["queue", "b1"],
        &["sem", "-info", "b3"],
        &["sem", "-wait", "b2", "-k", "k", "--priority", "3"],
    ] {
        let r = t.mq_within(60, ALICE, args);
        assert!(
            r.code == 0 || args[0] == "sem",
            "{args:?}: {}{}",
            r.stdout,
            r.stderr
        );
    }
    // The FIFO policy is no policy: her priority was refused, before the wait.
    assert_eq!(t.lab.lock_owner("b2"), None);
    // Her health change, with a FIFO for the board's file and her own log.
    let r = t.mq_within(
        60,
        ALICE,
        &["health", "set", "b1", "good", "--reason", "ok"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let log = std::fs::read_to_string(format!("{b}/health/logs/{alice}")).unwrap();
    assert!(log.contains("\tb1\tunknown\tgood\t"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(120));
    t.nothing_left_running_as(ALICE);
}

#[test]
fn forged_tickets_never_block_a_board_or_name_the_wrong_user() {
    let Some(t) = Lab::start() else { return };
    let (b, bob) = (t.base(), t.name(BOB));
    // Dated 2030, a directory named like a ticket, a ticket injecting a
    // record, and one bob keeps fresh by hand, claiming to be root.
    t.as_user(
        BOB,
        &format!(
            "{} && cd '{b}/queue/b1' && \
             printf 'user=root\\nkey=forged\\n' > T000000000001.000000000.1 && touch -d 2030-01-01 T000000000001.000000000.1 && \
             mkdir T000000000002.000000000.2 && \
             printf 'user=root\\nkey=x\\nMQ-TICKET b1 T0 root\\nMQ-TF user=root\\n' > T000000000003.000000000.3",
            wave_two_dirs(&t)
        ),
    );
    let mut keeper = Command::new("su")
        .args([
            "-s",
            "/bin/sh",
            "-c",
            &format!("for i in $(seq 90); do touch '{b}/queue/b1/T000000000003.000000000.3'; sleep 1; done"),
            bob,
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // The line as alice sees it: bob's live ticket, under bob, nothing else.
    let r = t.mq_within(60, ALICE, &["queue", "b1", "--json"]);
    let line: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(line.len(), 1, "{}", r.stdout);
    assert_eq!(line[0]["user"].as_str(), Some(bob), "{}", r.stdout);
    assert!(!r.stdout.contains("root"), "{}", r.stdout);
    // She gets the free board all the same: the stuck head is passed over.
    let started = Instant::now();
    let r = t.mq_within(90, ALICE, &["sem", "-wait", "b1", "-k", "mine"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(60), "waited {waited:?}");
    assert_eq!(t.lab.lock_owner("b1").as_deref(), Some(t.name(ALICE)));
    let _ = keeper.kill();
    let _ = keeper.wait();
    assert_eq!(
        t.mq_within(60, ALICE, &["sem", "-signal", "b1", "-k", "mine"])
            .code,
        0
    );
    t.nothing_left_running_as(ALICE);
}

#[test]
fn escapes_in_other_users_text_never_reach_her_terminal_and_json_stays_exact() {
    let Some(t) = Lab::start() else { return };
    let b = t.base();
    let reason = "x\u{1b}[2K\u{1b}[1G| b2 | good | alice\u{1b}]52;c;aGk=\u{7}\u{9b}31m\u{202e}";
    let r = t.mq_within(
        60,
        BOB,
        &["health", "set", "b2", "maintenance", "--reason", reason],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "the echo: {:?}", r.stdout);
    // A key with escapes, written as an old client may write any key; and
    // a file name with a line break that would forge a holder of b3.
    t.as_user(
        BOB,
        &format!(
            "cd '{b}' && lockfile -r 0 b1.lock && printf '\\033]0;pwned\\007k' > b1.key && \
             touch \"$(printf 'zz\\nb3').lock\""
        ),
    );
    for args in [
        &["status"][..],
        &["health"],
        &["health", "log"],
        &["health", "b2"],
        &["sem", "-info", "b1"],
        &["sem", "-dumpall"],
    ] {
        let r = t.mq_within(60, ALICE, args);
        let shown = r.stdout.clone() + &r.stderr;
        for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(!shown.contains(c), "{args:?} shows {c:?} raw: {shown:?}");
        }
        if args[0] == "health" && args.len() == 1 {
            assert!(shown.contains("x\\x1b[2K\\x1b[1G| b2"), "{shown}");
        }
    }
    // JSON keeps the text exactly, with nothing active in it either.
    let r = t.mq_within(60, ALICE, &["health", "b2", "--json"]);
    assert!(!r.stdout.contains('\u{9b}') && !r.stdout.contains('\u{202e}'));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["reason"].as_str(), Some(reason));
    // The forged name makes nobody a holder of b3.
    let r = t.mq_within(60, ALICE, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let b3 = v["boards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["system"] == "b3")
        .unwrap();
    assert!(b3["holder"].is_null(), "{b3}");
}

#[test]
fn huge_and_implausible_history_is_read_bounded_and_ignored() {
    let Some(t) = Lab::start() else { return };
    let (b, bob) = (t.base(), t.name(BOB));
    // 23 MB of holds (10^6 lines), and records of u64::MAX in a small file.
    t.as_user(
        BOB,
        &format!(
            "{} && cd '{b}/queue/b1' && seq 1000000 | sed 's/.*/60 1795900000 {bob} k&/' > .holds.{bob} && \
             mkdir -p ../b2 && chmod 1777 ../b2 && \
             printf '18446744073709551615 18446744073709551615 {bob} k\\n60 18446744073709551615 {bob} k\\n120 1795900000 {bob} k\\n' > ../b2/.holds.{bob} && \
             printf '18446744073709551615 passed 0 {bob} k\\n' > ../b2/.runs.{bob}",
            wave_two_dirs(&t)
        ),
    );
    let r = t.mq_within(60, ALICE, &["status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let board = |name: &str| {
        v["boards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["system"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        board("b1")["holds"].as_array().unwrap().len(),
        0,
        "the 23 MB file is not read"
    );
    let holds = board("b2")["holds"].as_array().unwrap().clone();
    assert_eq!(holds.len(), 1, "only the plausible record: {holds:?}");
    assert_eq!(holds[0]["seconds"], 120);
    assert_eq!(board("b2")["runs"].as_array().unwrap().len(), 0);
    // The wait estimate ignores them too: held by bob, alice is told a
    // sane estimate (2 min from the one plausible hold), not 10^12 hours.
    assert_eq!(
        t.mq_within(60, BOB, &["sem", "-wait", "b2", "-k", "bob"])
            .code,
        0
    );
    let r = t.mq_within(60, ALICE, &["sem", "-wait", "b2", "-k", "a", "-t", "2"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains(" h;"), "{}", r.stderr);
    assert!(
        r.stderr.contains("about 2 min") || r.stderr.contains("about 1 min"),
        "{}",
        r.stderr
    );
}

#[test]
fn priority_is_the_labs_to_give() {
    let Some(t) = Lab::start() else { return };
    let (b, alice, bob) = (t.base(), t.name(ALICE), t.name(BOB));
    let wait = |user: usize, priority: &str| {
        let key = format!("p{priority}");
        let r = t.mq_within(
            60,
            user,
            &["sem", "-wait", "b1", "-k", &key, "--priority", priority],
        );
        if r.code == 0 {
            assert_eq!(
                t.mq_within(60, user, &["sem", "-signal", "b1", "-k", &key])
                    .code,
                0
            );
        }
        r
    };
    // No policy: nobody goes ahead; yielding is always allowed.
    let r = wait(ALICE, "5");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("above this lab's maximum of 0"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("{b}/policy")), "{}", r.stderr);
    assert_eq!(t.lab.lock_owner("b1"), None, "refused before the wait");
    assert_eq!(wait(ALICE, "-5").code, 0);
    // Bob's own policy file is not the lab's.
    t.as_user(
        BOB,
        &format!("printf 'max_priority=1000\\n' > '{b}/policy'"),
    );
    assert_eq!(wait(BOB, "5").code, 1);
    // The admin's (root's, BASE's owner) is.
    std::fs::remove_file(format!("{b}/policy")).unwrap();
    std::fs::write(
        format!("{b}/policy"),
        format!("max_priority=10\npriority_users={bob}\n"),
    )
    .unwrap();
    mq_testkit::set_mode(Path::new(&format!("{b}/policy")), 0o644);
    assert_eq!(wait(BOB, "10").code, 0);
    assert_eq!(wait(BOB, "11").code, 1);
    let r = wait(ALICE, "1");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("only {bob} may")),
        "{}",
        r.stderr
    );
    // Writable by others: not the admin's word any more.
    mq_testkit::set_mode(Path::new(&format!("{b}/policy")), 0o666);
    assert_eq!(wait(BOB, "3").code, 1);
    let _ = alice;
}

#[test]
fn a_health_file_nobody_can_vouch_for_gets_one_answer_everywhere() {
    let Some(t) = Lab::start() else { return };
    let b = t.base().to_string();
    let bob = t.lab.users[1].name.clone();
    let file = format!("{b}/health/b1");
    // What bob can leave where b1's health belongs: no state, nothing, a
    // link to a good-looking file, a file too big to read, a FIFO.
    let plants = [
        "printf 'reason=trust me\\n' > \"$f\"".to_string(),
        ": > \"$f\"".to_string(),
        "printf 'state=good\\n' > \"$f.real\" && ln -s \"$f.real\" \"$f\"".to_string(),
        "{ printf 'state=good\\n'; head -c 5000 /dev/zero | tr '\\0' x; } > \"$f\"".to_string(),
        "mkfifo \"$f\"".to_string(),
    ];
    for plant in plants {
        let out = t.lab.sh_as(
            &bob,
            &format!(
                "{} && rm -f \"$f\" \"$f.real\" && {plant}",
                wave_two_dirs(&t)
            )
            .replace("\"$f", &format!("\"{file}")),
        );
        assert!(
            out.status.success(),
            "{plant}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let health = t.health("b1");
        assert_eq!(
            health["state"], "unknown",
            "mq health after {plant}: {health}"
        );
        let r = t.mq_within(30, 0, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let b1 = &status["boards"][0];
        assert_eq!(b1["system"], "b1");
        assert_eq!(
            b1["health"]["state"], "unknown",
            "mq status after {plant}: {b1}"
        );
        // mq run refuses it by name, as unknown, before any lock.
        let r = t.run(0, "b1", &[]);
        assert_ne!(r.code, 0, "mq run after {plant}: {}{}", r.stdout, r.stderr);
        assert!(
            format!("{}{}", r.stdout, r.stderr).contains("unknown"),
            "mq run after {plant}: {}{}",
            r.stdout,
            r.stderr
        );
        assert_eq!(t.lab.lock_owner("b1"), None, "{plant}");
    }
}
