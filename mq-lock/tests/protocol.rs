//! The lock protocol against a real lab host: sshd on 127.0.0.1, throwaway
//! Unix users, procmail's `lockfile`, and "old clients" running PROTOCOL.md's
//! shell lines through the OpenSSH client, as mq.sh does.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mq_lock::{AcquireOptions, LockClient, LockError, LockState, WaitEvent};
use mq_testkit::{eventually, LabHost};
use mq_transport::{SshOptions, SshTransport, Transport};

fn client(lab: &LabHost, user: usize) -> LockClient<SshTransport> {
    let name = &lab.users[user].name;
    let options = SshOptions::new("lab")
        .config_file(lab.config_for(name))
        .agent(None);
    LockClient::new(SshTransport::connect(&options).unwrap(), lab.base_str())
}

fn waiting(key: &str) -> AcquireOptions {
    AcquireOptions {
        key: key.into(),
        ..AcquireOptions::default()
    }
}

/// Runs `script` as `user` through the OpenSSH client, as mq.sh does.
fn old_client(lab: &LabHost, user: usize, script: &str) -> std::process::Output {
    let config = lab.config_for(&lab.users[user].name);
    Command::new("ssh")
        .args(["-F", config.to_str().unwrap(), "lab", script])
        .output()
        .unwrap()
}

macro_rules! lab {
    ($users:expr) => {{
        if !mq_testkit::lockfile_installed() {
            return;
        }
        match LabHost::start($users) {
            Some(lab) => lab,
            None => return,
        }
    }};
}

#[test]
fn info_acquire_release_and_the_files_on_the_host() {
    let lab = lab!(1);
    let alice = client(&lab, 0);
    let name = &lab.users[0].name;
    assert_eq!(alice.info("sabre").unwrap(), LockState::Free);
    assert_eq!(alice.preflight().unwrap().user, *name);

    let mut events = Vec::new();
    let options = AcquireOptions {
        key: "ci-7".into(),
        reclaim_timeout: Some(600),
        ..AcquireOptions::default()
    };
    alice
        .acquire("sabre", &options, &mut |e| events.push(e))
        .unwrap();
    assert!(events.is_empty(), "it was free: no holder to report");

    // The files are PROTOCOL.md's: owner, read-only, content, key.
    use std::os::unix::fs::PermissionsExt;
    let lock = lab.base.join("sabre.lock");
    let key = lab.base.join("sabre.key");
    assert_eq!(lab.lock_owner("sabre").as_deref(), Some(name.as_str()));
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "600");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "ci-7");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o222,
        0
    );

    let LockState::Held(holder) = alice.info("sabre").unwrap() else {
        panic!("held")
    };
    assert_eq!(holder.owner, *name);
    assert_eq!(holder.timeout, Some(600));
    assert_eq!(holder.key, "ci-7");
    let info = LockState::Held(holder.clone()).info_line("sabre");
    assert!(
        info.starts_with(&format!("Lock for sabre held by {name} since 20")),
        "{info}"
    );
    assert!(info.ends_with(", timeout 600 with key 'ci-7'"), "{info}");
    // `since` has PROTOCOL.md's three words: date time zone.
    assert_eq!(holder.since.split(' ').count(), 3, "{}", holder.since);
    let mr = LockState::Held(holder).mr_info_line("sabre");
    assert_eq!(mr.split(' ').count(), 7, "{mr}");

    assert_eq!(alice.dump_all().unwrap().len(), 1);
    alice.release("sabre", "ci-7", false).unwrap();
    assert!(!lock.exists() && !key.exists());
    assert!(alice.dump_all().unwrap().is_empty());
}

#[test]
fn key_rules_and_forced_release() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);

    alice.acquire("s1", &waiting("0"), &mut |_| {}).unwrap();
    let again = alice.acquire("s1", &waiting("0"), &mut |_| {}).unwrap_err();
    assert_eq!(
        again.to_string(),
        "Attempting to grab lock you already own. Please explicitly release"
    );
    alice.release("s1", "0", false).unwrap();

    alice.acquire("s1", &waiting("k1"), &mut |_| {}).unwrap();
    let again = alice
        .acquire("s1", &waiting("k1"), &mut |_| {})
        .unwrap_err();
    assert_eq!(
        again.to_string(),
        "Attempting to grab lock you already own with the same key. Please explicitly release"
    );
    let wrong = alice.release("s1", "k2", false).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "Attempting to unlock system s1 with the wrong key!"
    );
    let theirs = bob.release("s1", "k1", false).unwrap_err();
    assert_eq!(
        theirs.to_string(),
        "Attempting to unlock system s1 that you do not hold"
    );
    assert!(
        matches!(theirs, LockError::NotYours { owner: Some(ref o), .. } if *o == lab.users[0].name)
    );
    assert!(lab.lock_owner("s1").is_some(), "refusals change nothing");

    // A different key of one's own does not count as "already yours": it waits.
    let bounded = AcquireOptions {
        key: "k3".into(),
        retries: 1,
        ..AcquireOptions::default()
    };
    let err = alice.acquire("s1", &bounded, &mut |_| {}).unwrap_err();
    assert_eq!(err.to_string(), "Failed to acquire lock for system (s1)");

    bob.release("s1", "whatever", true).unwrap();
    assert_eq!(lab.lock_owner("s1"), None);
    let free = bob.release("s1", "0", false).unwrap_err();
    assert!(matches!(free, LockError::NotYours { owner: None, .. }));
}

#[test]
fn waiters_see_the_holder_and_get_the_board_within_a_second_or_so() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);
    alice.acquire("board", &waiting("a"), &mut |_| {}).unwrap();
    let released_at = Arc::new(Mutex::new(None::<Instant>));
    let r = Arc::clone(&released_at);
    let holder = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        alice.release("board", "a", false).unwrap();
        *r.lock().unwrap() = Some(Instant::now());
    });
    let mut events = Vec::new();
    bob.acquire("board", &waiting("b"), &mut |e| events.push(e))
        .unwrap();
    let got_it = Instant::now();
    holder.join().unwrap();
    let handover = got_it - released_at.lock().unwrap().unwrap();
    assert!(
        handover < Duration::from_millis(2500),
        "handover took {handover:?}"
    );
    assert_eq!(
        lab.lock_owner("board").as_deref(),
        Some(lab.users[1].name.as_str())
    );
    // The holder, once; then its place in line (first, as the only
    // waiter), with the holder and key; no estimate without a history.
    match &events[..] {
        [WaitEvent::Holder { owner, since }, WaitEvent::Place(place)] => {
            assert_eq!(owner, &lab.users[0].name);
            assert!(since.starts_with("20"));
            assert_eq!(place.place, 1);
            assert_eq!(place.system, "board");
            assert_eq!(place.holder.as_deref(), Some(owner.as_str()));
            assert_eq!(place.holder_key.as_deref(), Some("a"));
            assert!(place.held_for.is_some_and(|d| d < Duration::from_secs(10)));
            assert_eq!(place.estimate, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reclaim_after_the_holders_timeout() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);
    let short = AcquireOptions {
        key: "crashed".into(),
        reclaim_timeout: Some(2),
        ..AcquireOptions::default()
    };
    alice.acquire("s", &short, &mut |_| {}).unwrap();
    // Alice "crashes": she never releases. Bob reclaims once the lock is
    // older than her own timeout.
    let started = Instant::now();
    bob.acquire("s", &waiting("b"), &mut |_| {}).unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(40), "waited {waited:?}");
    assert_eq!(
        lab.lock_owner("s").as_deref(),
        Some(lab.users[1].name.as_str())
    );
    let LockState::Held(h) = bob.info("s").unwrap() else {
        panic!()
    };
    assert_eq!(h.key, "b");

    // A lock with no timeout (old `run`) or 0 is never reclaimed.
    let never = AcquireOptions {
        key: "n".into(),
        reclaim_timeout: None,
        ..AcquireOptions::default()
    };
    bob.release("s", "b", false).unwrap();
    bob.acquire("s", &never, &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(lab.base.join("s.lock")).unwrap(),
        ""
    );
    let bounded = AcquireOptions {
        retries: 2,
        ..waiting("a")
    };
    assert!(matches!(
        alice.acquire("s", &bounded, &mut |_| {}),
        Err(LockError::NotAcquired { .. })
    ));
}

#[test]
fn cancel_kills_a_wait_which_then_never_acquires() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    alice.acquire("s", &waiting("a"), &mut |_| {}).unwrap();
    let bob_waits = {
        let bob = client(&lab, 1);
        thread::spawn(move || bob.acquire("s", &waiting("bk"), &mut |_| {}))
    };
    let bob = client(&lab, 1);
    let user = lab.users[1].name.clone();
    assert!(eventually(Duration::from_secs(5), || {
        !mq_testkit::processes_matching("lockfile -1").is_empty()
    }));
    // The wrong key cancels nothing.
    assert_eq!(bob.cancel("s", "other").unwrap(), 0);
    assert!(bob.cancel("s", "bk").unwrap() >= 1);
    let result = bob_waits.join().unwrap();
    assert!(
        matches!(result, Err(LockError::NotAcquired { .. })),
        "{result:?}"
    );
    alice.release("s", "a", false).unwrap();
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.lock_owner("s"),
        None,
        "the cancelled wait never took the lock"
    );
    assert!(
        eventually(Duration::from_secs(3), || mq_testkit::processes_matching(
            "lockfile"
        )
        .iter()
        .all(|(_, cmd)| !cmd.contains(&user))),
        "no lockfile left behind"
    );
}

#[test]
fn a_wait_whose_connection_dies_never_acquires() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    alice.acquire("s", &waiting("a"), &mut |_| {}).unwrap();
    let sessions_before = mq_testkit::descendants_of(lab.server.pid());
    let waiter = {
        let bob = client(&lab, 1);
        thread::spawn(move || bob.acquire("s", &waiting("b"), &mut |_| {}))
    };
    // Kill the server side of Bob's connection only.
    assert!(eventually(Duration::from_secs(5), || {
        mq_testkit::descendants_of(lab.server.pid()).len() > sessions_before.len() + 2
    }));
    thread::sleep(Duration::from_millis(500));
    for pid in mq_testkit::descendants_of(lab.server.pid()) {
        if !sessions_before.contains(&pid) {
            mq_testkit::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let result = waiter.join().unwrap();
    assert!(result.is_err(), "{result:?}");
    alice.release("s", "a", false).unwrap();
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.lock_owner("s"),
        None,
        "the dead wait never took the lock"
    );
}

#[test]
fn two_users_contend_for_30_rounds_and_never_both_hold() {
    let lab = lab!(2);
    let inside = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(AtomicUsize::new(0));
    let base = lab.base.clone();
    let workers: Vec<_> = (0..2)
        .map(|i| {
            let locks = client(&lab, i);
            let me = lab.users[i].name.clone();
            let inside = Arc::clone(&inside);
            let violations = Arc::clone(&violations);
            let base = base.clone();
            thread::spawn(move || {
                let key = format!("w{i}");
                for _ in 0..30 {
                    locks
                        .acquire("shared", &waiting(&key), &mut |_| {})
                        .unwrap();
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    // The host agrees: the lock file is ours, with our key.
                    let key_now =
                        std::fs::read_to_string(base.join("shared.key")).unwrap_or_default();
                    if key_now != key {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = &me;
                    thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    locks.release("shared", &key, false).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    assert_eq!(lab.lock_owner("shared"), None);
}

#[test]
fn old_client_and_mq_exclude_each_other_both_ways() {
    let lab = lab!(2);
    let base = lab.base_str();
    let mq = client(&lab, 1);

    // An old client takes the lock with PROTOCOL.md's line.
    let take = format!(
        "umask 0111 && lockfile -1 -r 0 '{base}/s.lock' && rm -f '{base}/s.key' && printf '%s' 'old-key' > '{base}/s.key' && chmod a-w,g+r '{base}/s.key' && chmod u+w '{base}/s.lock' && printf '%s' 0 > '{base}/s.lock' && chmod a-w '{base}/s.lock'"
    );
    assert!(old_client(&lab, 0, &take).status.success());
    let LockState::Held(h) = mq.info("s").unwrap() else {
        panic!()
    };
    assert_eq!(
        (h.owner.as_str(), h.key.as_str()),
        (lab.users[0].name.as_str(), "old-key")
    );
    let bounded = AcquireOptions {
        retries: 1,
        ..waiting("new")
    };
    assert!(matches!(
        mq.acquire("s", &bounded, &mut |_| {}),
        Err(LockError::NotAcquired { .. })
    ));
    // The old client releases; mq gets it.
    let release = format!("rm -f '{base}/s.key'; sync; rm -f '{base}/s.lock'");
    assert!(old_client(&lab, 0, &release).status.success());
    mq.acquire("s", &waiting("new"), &mut |_| {}).unwrap();

    // Now mq holds it: the old client's lockfile fails and its stat-based
    // info sees mq's user.
    let out = old_client(&lab, 0, &format!("lockfile -1 -r 1 '{base}/s.lock'"));
    assert!(!out.status.success());
    let out = old_client(
        &lab,
        0,
        &format!("stat --format='%U' '{base}/s.lock'; cat '{base}/s.key'"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\nnew", lab.users[1].name)
    );

    // An old client's cancel finds mq's wait (same user, same key).
    let waiter = {
        let again = client(&lab, 0);
        thread::spawn(move || again.acquire("s", &waiting("ci-run-9"), &mut |_| {}))
    };
    thread::sleep(Duration::from_millis(1500));
    let me = &lab.users[0].name;
    let cancel = format!("pkill -u {me} -f \"lockfile.*'ci-run-9' > '{base}/s.key'\"");
    old_client(&lab, 0, &cancel);
    assert!(matches!(
        waiter.join().unwrap(),
        Err(LockError::NotAcquired { .. })
    ));

    // And mq's cancel finds an old client's wait.
    let old_wait = {
        let config = lab.config_for(me);
        let wait = format!(
            "umask 0111 && lockfile -1 -r -1 '{base}/s.lock' && rm -f '{base}/s.key' && printf '%s' 'oldwait' > '{base}/s.key' && chmod a-w,g+r '{base}/s.key'"
        );
        Command::new("ssh")
            .args(["-tt", "-F", config.to_str().unwrap(), "lab", &wait])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    thread::sleep(Duration::from_millis(1500));
    let alice = client(&lab, 0);
    assert!(alice.cancel("s", "oldwait").unwrap() >= 1);
    let mut old_wait = old_wait;
    assert!(eventually(Duration::from_secs(5), || old_wait
        .try_wait()
        .unwrap()
        .is_some()));
    mq.release("s", "new", false).unwrap();
    thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.lock_owner("s"), None);
}

#[test]
fn plain_sh_fallback_excludes_and_is_excluded_by_lockfile() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);
    let fallback = |key: &str| AcquireOptions {
        key: key.into(),
        force_fallback: true,
        ..AcquireOptions::default()
    };
    alice.acquire("f", &fallback("a"), &mut |_| {}).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let lock = lab.base.join("f.lock");
    assert_eq!(
        std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(
        std::fs::read_to_string(lab.base.join("f.key")).unwrap(),
        "a"
    );
    // The real lockfile waits on a fallback lock...
    let bounded = AcquireOptions {
        retries: 1,
        ..waiting("b")
    };
    assert!(bob.acquire("f", &bounded, &mut |_| {}).is_err());
    // ...and the fallback waits on a lockfile lock, with the same reclaim rule.
    alice.release("f", "a", false).unwrap();
    let short = AcquireOptions {
        reclaim_timeout: Some(2),
        ..waiting("b")
    };
    bob.acquire("f", &short, &mut |_| {}).unwrap();
    let bounded_fallback = AcquireOptions {
        retries: 0,
        ..fallback("a")
    };
    assert!(alice.acquire("f", &bounded_fallback, &mut |_| {}).is_err());
    let started = Instant::now();
    alice.acquire("f", &fallback("a"), &mut |_| {}).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        lab.lock_owner("f").as_deref(),
        Some(lab.users[0].name.as_str())
    );
    // Its waits are found by cancel too.
    let waiter = {
        let again = client(&lab, 1);
        thread::spawn(move || {
            again.acquire(
                "f",
                &AcquireOptions {
                    key: "fb".into(),
                    force_fallback: true,
                    ..AcquireOptions::default()
                },
                &mut |_| {},
            )
        })
    };
    thread::sleep(Duration::from_millis(1500));
    assert!(bob.cancel("f", "fb").unwrap() >= 1);
    assert!(waiter.join().unwrap().is_err());
}

#[test]
fn hostile_keys_are_stored_and_matched_exactly() {
    let lab = lab!(1);
    let alice = client(&lab, 0);
    let marker = PathBuf::from("/tmp/mq-lock-pwned");
    let _ = std::fs::remove_file(&marker);
    let key = "it's $(touch /tmp/mq-lock-pwned); `touch /tmp/mq-lock-pwned` & \"quoted\" * ";
    alice.acquire("h", &waiting(key), &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(lab.base.join("h.key")).unwrap(),
        key
    );
    let LockState::Held(h) = alice.info("h").unwrap() else {
        panic!()
    };
    assert_eq!(h.key, key);
    assert!(alice.release("h", "it's", false).is_err());
    // A wait with the hostile key is cancellable by that key.
    let other = client(&lab, 0);
    let waiter = thread::spawn(move || {
        other.acquire(
            "h",
            &AcquireOptions {
                key: "x'y $(z)".into(),
                ..AcquireOptions::default()
            },
            &mut |_| {},
        )
    });
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(alice.cancel("h", "x'y $(z)").unwrap(), 1);
    assert!(waiter.join().unwrap().is_err());
    alice.release("h", key, false).unwrap();
    assert!(!marker.exists(), "nothing in a key ran");
    for bad in ["two\nlines", ""] {
        assert!(matches!(
            alice.acquire("h", &waiting(bad), &mut |_| {}),
            Err(LockError::BadInput(_))
        ));
    }
}

#[test]
fn cleanup_cancels_waits_and_releases_what_the_key_holds() {
    let lab = lab!(2);
    let ci = client(&lab, 0);
    let other = client(&lab, 1);
    ci.acquire("a", &waiting("job-1"), &mut |_| {}).unwrap();
    ci.acquire("b", &waiting("job-1"), &mut |_| {}).unwrap();
    ci.acquire("c", &waiting("job-2"), &mut |_| {}).unwrap();
    other.acquire("d", &waiting("job-1"), &mut |_| {}).unwrap();
    let waiter = {
        let again = client(&lab, 0);
        thread::spawn(move || again.acquire("d", &waiting("job-1"), &mut |_| {}))
    };
    thread::sleep(Duration::from_millis(1500));
    let (cancelled, mut released) = ci.cleanup("job-1", &["a", "b", "c", "d", "e"]).unwrap();
    released.sort();
    assert_eq!(cancelled, 1);
    assert_eq!(released, ["a", "b"]);
    assert!(waiter.join().unwrap().is_err());
    assert_eq!(
        lab.lock_owner("c").as_deref(),
        Some(lab.users[0].name.as_str()),
        "other key kept"
    );
    assert_eq!(
        lab.lock_owner("d").as_deref(),
        Some(lab.users[1].name.as_str()),
        "other user kept"
    );
}

#[test]
fn wrong_version_is_refused_before_anything_changes() {
    let lab = lab!(1);
    std::fs::write(lab.base.join("VERSION"), "4\n").unwrap();
    let alice = client(&lab, 0);
    let err = alice.acquire("s", &waiting("k"), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, LockError::VersionMismatch { ref found, .. } if found == "4"),
        "{err}"
    );
    assert_eq!(lab.lock_owner("s"), None);
    let err = client(&lab, 0).info("s").unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Local version of mq.sh appears to differ from version on"));

    // Written on Windows, or without its newline: still version 5.
    for text in ["5\r\n", "5"] {
        std::fs::write(lab.base.join("VERSION"), text).unwrap();
        assert_eq!(
            client(&lab, 0).info("s").unwrap(),
            LockState::Free,
            "{text:?}"
        );
    }
}

#[test]
fn interrupting_a_wait_kills_it_remotely() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    alice.acquire("s", &waiting("a"), &mut |_| {}).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let options = AcquireOptions {
        cancel: Some(Arc::clone(&stop)),
        ..waiting("b")
    };
    let bob = client(&lab, 1);
    let waiter = thread::spawn(move || bob.acquire("s", &options, &mut |_| {}));
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::SeqCst);
    assert!(matches!(
        waiter.join().unwrap(),
        Err(LockError::Interrupted { .. })
    ));
    alice.release("s", "a", false).unwrap();
    thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.lock_owner("s"), None);
    let _ = alice.transport().describe();
}

#[test]
fn commands_ride_along_with_acquire_and_release() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);
    let dir = lab.base.join("scratch");
    let q = mq_transport::quote(dir.to_str().unwrap());

    // Run once the lock is held, with the user's umask (not PROTOCOL.md's
    // 0111), on the acquire's terminal: stdout and stderr both come back.
    let said = alice
        .acquire_any(
            &["s"],
            &waiting("k"),
            &format!("mkdir {q} && : > {q}/f && echo made; ls /nonexistent-mq"),
            &[],
            &mut |_| {},
        )
        .map(|mut kept| std::mem::take(&mut kept.lines))
        .unwrap();
    assert_eq!(said[0], "made", "{said:?}");
    assert!(said[1].contains("nonexistent-mq"), "{said:?}");
    assert!(dir.join("f").is_file(), "files can be made in it");
    assert_eq!(
        lab.lock_owner("s").as_deref(),
        Some(lab.users[0].name.as_str())
    );

    // A failing command does not give the lock back.
    alice.release("s", "k", false).unwrap();
    let said = alice
        .acquire_any(&["s"], &waiting("k"), "false", &[], &mut |_| {})
        .map(|mut kept| std::mem::take(&mut kept.lines))
        .unwrap();
    assert!(said.is_empty(), "{said:?}");
    assert!(lab.lock_owner("s").is_some());

    // Someone else's lock: refused, but the command still ran first.
    let mark = lab.base.join("bob-was-here");
    let m = mq_transport::quote(mark.to_str().unwrap());
    let err = bob
        .release_after("s", "k", false, &format!(": > {m}"))
        .unwrap_err();
    assert!(matches!(err, LockError::NotYours { .. }), "{err}");
    assert!(mark.exists());
    assert!(lab.lock_owner("s").is_some());

    // Ours: the command's output, then the lock is gone.
    let said = alice
        .release_after("s", "k", false, "echo removed")
        .unwrap();
    assert_eq!(said, "removed\n");
    assert_eq!(alice.info("s").unwrap(), LockState::Free);
}

#[test]
fn a_lock_kept_fresh_is_never_reclaimed_while_its_holder_lives() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let bob = client(&lab, 1);
    let kept_options = AcquireOptions {
        key: "slow-run".into(),
        reclaim_timeout: Some(3),
        keep_fresh: Some(Duration::from_secs(1)),
        ..AcquireOptions::default()
    };
    let mut kept = alice
        .acquire_any(&["s"], &kept_options, "echo then-ran", &[], &mut |_| {})
        .unwrap();
    assert_eq!(kept.lines, ["then-ran"]);
    assert!(kept.is_kept_fresh());

    // An old client waits with the holder's own timeout (PROTOCOL.md step 2)
    // for three times as long: the holder is alive, so it never reclaims.
    let lock = lab.base.join("s.lock");
    let waited = old_client(
        &lab,
        1,
        &format!("lockfile -1 -l 3 -r 9 '{}'", lock.display()),
    );
    assert!(
        !waited.status.success(),
        "an old client reclaimed a live holder's lock"
    );
    assert_eq!(
        lab.lock_owner("s").as_deref(),
        Some(lab.users[0].name.as_str())
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "3",
        "content untouched"
    );

    // The holder dies (its session hangs up): the lock ages again and is
    // reclaimed after its timeout.
    kept.stop();
    let started = Instant::now();
    bob.acquire("s", &waiting("b"), &mut |_| {}).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        lab.lock_owner("s").as_deref(),
        Some(lab.users[1].name.as_str())
    );
    bob.release("s", "b", false).unwrap();

    // Without keep_fresh, acquire_any returns once held, as acquire does.
    let plain = alice
        .acquire_any(&["s"], &waiting("p"), "", &[], &mut |_| {})
        .unwrap();
    assert!(!plain.is_kept_fresh());
    alice.release("s", "p", false).unwrap();
}

#[test]
fn a_session_handed_over_runs_the_callers_commands_under_the_lock() {
    let lab = lab!(2);
    let alice = client(&lab, 0);
    let options = AcquireOptions {
        key: "handed".into(),
        reclaim_timeout: Some(3),
        keep_fresh: Some(Duration::from_secs(1)),
        ..AcquireOptions::default()
    };
    // The commands read a line, answer, and release the lock themselves
    // (after stopping the keeper), as a job's finish does.
    let lock = lab.base.join("s.lock");
    let handover = format!(
        "echo first; read -r mq_l; echo \"got $mq_l\"; sleep 4; kill \"$mq_keeper\"; \
         rm -f '{}' '{}'; exit 7",
        lab.base.join("s.key").display(),
        lock.display()
    );
    let kept = alice
        .acquire_any(&["s"], &options, "echo then-ran", &[&handover], &mut |_| {})
        .unwrap();
    assert_eq!(kept.lines, ["then-ran"]);
    let (mut session, mut said) = kept.into_session().expect("a session handed over");
    session.write(b"hello\n").unwrap();
    // Meanwhile the keeper keeps the lock fresh: an old client with the
    // holder's own timeout never reclaims it.
    let waited = old_client(
        &lab,
        1,
        &format!("lockfile -1 -l 3 -r 3 '{}'", lock.display()),
    );
    assert!(
        !waited.status.success(),
        "a live holder's lock was reclaimed"
    );
    let mut buf = [0u8; 1024];
    loop {
        match session
            .read(&mut buf, Some(Duration::from_secs(10)))
            .unwrap()
        {
            mq_transport::ReadOutcome::Data(n) => said.extend_from_slice(&buf[..n]),
            mq_transport::ReadOutcome::TimedOut => panic!("the commands hung"),
            mq_transport::ReadOutcome::Eof => break,
        }
    }
    // The terminal echoes what was typed, whenever it arrives.
    let said = String::from_utf8_lossy(&said).replace('\r', "");
    assert!(said.contains("first\n"), "{said:?}");
    assert!(said.contains("got hello\n"), "{said:?}");
    assert_eq!(session.wait().unwrap().code(), Some(7));
    assert_eq!(alice.info("s").unwrap(), LockState::Free);
}

/// mq waiters are served in order of arrival, a higher priority first; a
/// waiter that dies leaves the line within seconds and holds nobody up.
#[test]
fn waiters_are_served_in_line_and_dead_ones_leave_it() {
    let lab = lab!(2);
    // The lab's policy (BASE's owner's file) lets anyone ask for up to 10.
    std::fs::write(lab.base.join("policy"), "max_priority=10\n").unwrap();
    mq_testkit::set_mode(&lab.base.join("policy"), 0o644);
    let holder = client(&lab, 0);
    holder.acquire("s", &waiting("h"), &mut |_| {}).unwrap();
    let grants = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut waiters = Vec::new();
    // w1, w2, w3 arrive in that order; "late" arrives last with priority 5;
    // "dead" arrives between w1 and w2 and is killed while in line.
    let dead_cancel = Arc::new(AtomicBool::new(false));
    for (key, priority, cancel) in [
        ("w1", 0, None),
        ("dead", 0, Some(Arc::clone(&dead_cancel))),
        ("w2", 0, None),
        ("w3", 0, None),
        ("late", 5, None),
    ] {
        let c = client(&lab, 1);
        let grants = Arc::clone(&grants);
        let options = AcquireOptions {
            key: key.into(),
            priority,
            cancel,
            ..AcquireOptions::default()
        };
        let (placed_tx, placed_rx) = std::sync::mpsc::channel();
        waiters.push(thread::spawn(move || {
            let mut told = false;
            let got = c.acquire("s", &options, &mut |e| {
                if matches!(e, WaitEvent::Place(_)) && !told {
                    told = true;
                    let _ = placed_tx.send(());
                }
            });
            if got.is_ok() {
                grants.lock().unwrap().push(options.key.clone());
                thread::sleep(Duration::from_millis(300));
                c.release("s", &options.key, false).unwrap();
            }
        }));
        placed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("in line");
    }
    let line = holder.line(&["s"]).unwrap();
    let keys: Vec<&str> = line.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["late", "w1", "dead", "w2", "w3"]);
    assert_eq!(line[0].priority, 5);
    assert_eq!(line[0].user, lab.users[1].name);

    // The dead waiter's session goes; its ticket is out within 5 s.
    dead_cancel.store(true, Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(5), || {
            !holder.line(&["s"]).unwrap().iter().any(|t| t.key == "dead")
        }),
        "a dead waiter stayed in line"
    );
    holder.release("s", "h", false).unwrap();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(*grants.lock().unwrap(), ["late", "w1", "w2", "w3"]);
    assert!(
        holder.line(&["s"]).unwrap().is_empty(),
        "nothing left in line"
    );
}

#[test]
fn a_queue_timeout_gives_up_and_leaves_the_line() {
    let lab = lab!(2);
    let holder = client(&lab, 0);
    holder.acquire("s", &waiting("h"), &mut |_| {}).unwrap();
    let waiter = client(&lab, 1);
    let started = Instant::now();
    let options = AcquireOptions {
        key: "w".into(),
        queue_timeout: Some(2),
        ..AcquireOptions::default()
    };
    let got = waiter.acquire("s", &options, &mut |_| {});
    assert!(
        matches!(got, Err(LockError::QueueTimeout { seconds: 2, .. })),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(holder.line(&["s"]).unwrap().is_empty());
    holder.release("s", "h", false).unwrap();
}

/// Three users, twenty rounds each, random hold times: no wait is ever
/// overtaken by one that joined the line later, and the lock is never held
/// twice.
#[test]
fn three_users_twenty_rounds_first_come_first_served() {
    let lab = lab!(3);
    let start = Instant::now();
    // (user, joined the line at, granted at, released at), times from start.
    let log = Arc::new(Mutex::new(Vec::<(
        usize,
        Option<Duration>,
        Duration,
        Duration,
    )>::new()));
    let threads: Vec<_> = (0..3)
        .map(|u| {
            let c = client(&lab, u);
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut seed = 0x9e37_79b9_u32.wrapping_mul(u as u32 + 1);
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    u64::from(seed % 250)
                };
                for round in 0..20 {
                    let key = format!("u{u}-{round}");
                    let mut joined = None;
                    c.acquire("s", &waiting(&key), &mut |e| {
                        if matches!(e, WaitEvent::Place(_)) && joined.is_none() {
                            joined = Some(start.elapsed());
                        }
                    })
                    .unwrap();
                    let granted = start.elapsed();
                    thread::sleep(Duration::from_millis(50 + next()));
                    let released = start.elapsed();
                    c.release("s", &key, false).unwrap();
                    log.lock().unwrap().push((u, joined, granted, released));
                    thread::sleep(Duration::from_millis(next()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut log = log.lock().unwrap().clone();
    log.sort_by_key(|e| e.2);
    assert_eq!(log.len(), 60);
    // Never held twice: each grant after the previous release.
    for pair in log.windows(2) {
        assert!(pair[1].2 >= pair[0].3, "held twice: {pair:?}");
    }
    // First come, first served among waits that were in line (a margin for
    // the event's trip from the host).
    let margin = Duration::from_millis(200);
    let waited: Vec<_> = log.iter().filter(|e| e.1.is_some()).collect();
    assert!(waited.len() >= 20, "few waits in line: {}", waited.len());
    for a in &waited {
        for b in &waited {
            if a.1.unwrap() + margin < b.1.unwrap() {
                assert!(
                    a.2 < b.2,
                    "overtaken: {a:?} joined before {b:?} but was served after"
                );
            }
        }
    }
}

/// A pool of two, both held, five waiters for either: each waiter is in
/// both lines, the grants go in arrival order to whichever member frees,
/// and a granted waiter leaves the other line at once. Afterwards the
/// board's hold history gives the next waiter an estimate.
#[test]
fn a_pool_of_two_serves_five_waiters_in_order() {
    let lab = lab!(2);
    let members = ["p1", "p2"];
    let holder = client(&lab, 0);
    holder.acquire("p1", &waiting("h1"), &mut |_| {}).unwrap();
    holder.acquire("p2", &waiting("h2"), &mut |_| {}).unwrap();
    let start = Instant::now();
    // (key, member, granted at, released at)
    let grants = Arc::new(Mutex::new(
        Vec::<(String, String, Duration, Duration)>::new(),
    ));
    let mut waiters = Vec::new();
    for n in 1..=5 {
        let c = client(&lab, 1);
        let grants = Arc::clone(&grants);
        let options = AcquireOptions {
            key: format!("w{n}"),
            pool: "pool".into(),
            ..AcquireOptions::default()
        };
        let (placed_tx, placed_rx) = std::sync::mpsc::channel();
        waiters.push(thread::spawn(move || {
            let mut told = false;
            let kept = c
                .acquire_any(&members, &options, "", &[], &mut |e| {
                    if matches!(e, WaitEvent::Place(_)) && !told {
                        told = true;
                        let _ = placed_tx.send(());
                    }
                })
                .unwrap();
            let granted = start.elapsed();
            // Out of the other member's line at once.
            let other = members.iter().find(|m| **m != kept.system).unwrap();
            let in_other = c.line(&[other]).unwrap();
            assert!(
                !in_other.iter().any(|t| t.key == options.key),
                "{} still in {other}'s line: {in_other:?}",
                options.key
            );
            // Longer than a round of attempts (1 s), so that both members
            // are busy at times.
            thread::sleep(Duration::from_millis(1500));
            let released = start.elapsed();
            c.release(&kept.system, &options.key, false).unwrap();
            grants.lock().unwrap().push((
                options.key.clone(),
                kept.system.clone(),
                granted,
                released,
            ));
        }));
        placed_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("in line");
        // Arrivals 0.8 s apart: each waiter's once-a-second attempts come
        // earlier in the second than the one before it, so that polling
        // alone would serve them in the wrong order.
        thread::sleep(Duration::from_millis(800));
    }
    // Every waiter is in both lines, in arrival order, marked with the pool.
    let line = holder.line(&members).unwrap();
    for member in members {
        let keys: Vec<&str> = line
            .iter()
            .filter(|t| t.system == member)
            .map(|t| t.key.as_str())
            .collect();
        assert_eq!(keys, ["w1", "w2", "w3", "w4", "w5"], "{member}");
    }
    assert!(line.iter().all(|t| t.pool.as_deref() == Some("pool")));

    holder.release("p2", "h2", false).unwrap();
    thread::sleep(Duration::from_millis(400));
    holder.release("p1", "h1", false).unwrap();
    for w in waiters {
        w.join().unwrap();
    }
    let mut grants = grants.lock().unwrap().clone();
    grants.sort_by_key(|g| g.2);
    let order: Vec<&str> = grants.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(order, ["w1", "w2", "w3", "w4", "w5"], "{grants:?}");
    // Both members served; never one member held twice at once.
    assert!(grants.iter().any(|g| g.1 == "p1"));
    assert!(grants.iter().any(|g| g.1 == "p2"));
    for member in members {
        let on: Vec<_> = grants.iter().filter(|g| g.1 == member).collect();
        for pair in on.windows(2) {
            assert!(pair[1].2 >= pair[0].3, "{member} held twice: {pair:?}");
        }
    }
    assert!(holder.line(&members).unwrap().is_empty(), "left in line");

    // The hold times were kept; the next waiter is told an estimate.
    // Each user's holds in a file of their own, `.holds.USER`.
    let mut holds = String::new();
    for user in &lab.users {
        let file = lab.base.join(format!("queue/p1/.holds.{}", user.name));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // SECONDS ENDED USER KEY, one hold a line.
        for line in text.lines() {
            let f: Vec<&str> = line.splitn(4, ' ').collect();
            assert!(
                f.len() == 4 && f[0].parse::<u64>().is_ok() && f[1].parse::<u64>().is_ok(),
                "{text:?}"
            );
            assert_eq!(f[2], user.name, "{file:?}: {text:?}");
        }
        holds.push_str(&text);
    }
    assert!(holds.lines().count() >= 2, "{holds:?}");
    holder.acquire("p1", &waiting("h3"), &mut |_| {}).unwrap();
    let c = client(&lab, 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        c.acquire("p1", &waiting("w6"), &mut |e| {
            if let WaitEvent::Place(p) = e {
                let _ = tx.send(p);
            }
        })
        .unwrap();
        c.release("p1", "w6", false).unwrap();
    });
    let place = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(place.place, 1);
    assert!(place.estimate.is_some(), "{place:?}");
    assert_eq!(place.holder_key.as_deref(), Some("h3"));
    holder.release("p1", "h3", false).unwrap();
    waiter.join().unwrap();
}

/// An old client (PROTOCOL.md's shell lines, through OpenSSH) waits and
/// holds among two mq users in line, eight rounds each: the old client may
/// overtake the line, but nobody ever holds the board while another does
/// (each holder finds its own key in the key file at the start and the end
/// of its hold), and everybody finishes.
#[test]
fn an_old_client_among_mq_waiters_never_holds_twice_and_nobody_waits_forever() {
    let lab = lab!(3);
    let base = lab.base_str().to_string();
    let rounds = 8;
    let old_rounds = format!(
        "i=0; while [ $i -lt {rounds} ]; do \
         umask 0111 && lockfile -1 -r -1 '{base}/s.lock' && rm -f '{base}/s.key' && printf '%s' \"old-$i\" > '{base}/s.key' && chmod a-w,g+r '{base}/s.key' && chmod u+w '{base}/s.lock' && printf '%s' 0 > '{base}/s.lock' && chmod a-w '{base}/s.lock'; \
         [ \"$(cat '{base}/s.key')\" = \"old-$i\" ] || echo VIOLATION; sleep 0.3; \
         [ \"$(cat '{base}/s.key')\" = \"old-$i\" ] || echo VIOLATION; echo ROUND $i; \
         rm -f '{base}/s.key'; sync; rm -f '{base}/s.lock'; sleep 0.2; i=$((i + 1)); done"
    );
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    let old = {
        let config = lab.config_for(&lab.users[0].name);
        let done = done_tx.clone();
        thread::spawn(move || {
            let out = Command::new("ssh")
                .args(["-F", config.to_str().unwrap(), "lab", &old_rounds])
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            let _ = done.send(format!("old: {said}"));
            said
        })
    };
    let mq_users: Vec<_> = (1..3)
        .map(|u| {
            let c = client(&lab, u);
            let key_file = lab.base.join("s.key");
            let done = done_tx.clone();
            thread::spawn(move || {
                let mut violations = 0;
                for round in 0..rounds {
                    let key = format!("mq{u}-{round}");
                    c.acquire("s", &waiting(&key), &mut |_| {}).unwrap();
                    let mine = || std::fs::read_to_string(&key_file).unwrap_or_default() == key;
                    violations += usize::from(!mine());
                    thread::sleep(Duration::from_millis(300));
                    violations += usize::from(!mine());
                    c.release("s", &key, false).unwrap();
                    thread::sleep(Duration::from_millis(100));
                }
                let _ = done.send(format!("mq{u}"));
                violations
            })
        })
        .collect();
    drop(done_tx);
    // Nobody waits forever: all three finish well within two minutes.
    for _ in 0..3 {
        let who = done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("somebody waited for ever");
        eprintln!("finished: {who}");
    }
    let said = old.join().unwrap();
    assert!(!said.contains("VIOLATION"), "{said}");
    assert_eq!(said.matches("ROUND").count(), rounds, "{said}");
    for t in mq_users {
        assert_eq!(t.join().unwrap(), 0, "an mq holder lost its lock");
    }
    assert_eq!(lab.lock_owner("s"), None);
}
