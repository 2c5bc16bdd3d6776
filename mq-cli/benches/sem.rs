//! `mq sem` against a real lab host, as ratios to the floor measured in the
//! same run (one bare OpenSSH `ssh HOST true` as the same user), and the
//! handover latency from a release to the next waiter holding the lock.
//!
//! `cargo bench -p mq-cli --bench sem` (as root: it makes throwaway users).
//! Targets: sem -info <= 1.3x the floor; handover median <= 1 s, also with
//! five waiters in line (each release to the next in line, in order).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 11;

mod common;
use common::median;

fn main() {
    let Some(lab) = common::lab(2) else {
        return;
    };
    let mq = env!("CARGO_BIN_EXE_mq");
    let home = tempfile::tempdir().unwrap();
    let user = |i: usize| lab.users[i].name.clone();
    let mq_as = |i: usize, args: &[&str]| {
        let mut cmd = Command::new(mq);
        cmd.args(args)
            .env("HOME", home.path())
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", lab.base_str())
            .env("MQ_SSH_CONFIG", lab.config_for(&user(i)))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let time = |mut cmd: Command| {
        let t = Instant::now();
        assert!(cmd.status().unwrap().success());
        t.elapsed()
    };
    let floor_cmd = || common::floor_command(&lab, &user(0));
    time(floor_cmd());
    let floor = median((0..ROUNDS).map(|_| time(floor_cmd())).collect());
    let info = median(
        (0..ROUNDS)
            .map(|_| time(mq_as(0, &["sem", "-info", "sabre"])))
            .collect(),
    );
    let pair = median(
        (0..ROUNDS)
            .map(|_| {
                time(mq_as(0, &["sem", "-wait", "sabre", "-k", "b"]))
                    + time(mq_as(0, &["sem", "-signal", "sabre", "-k", "b"]))
            })
            .collect(),
    );

    let mut handovers = Vec::new();
    for _ in 0..ROUNDS {
        assert!(mq_as(0, &["sem", "-wait", "sabre", "-k", "a"])
            .status()
            .unwrap()
            .success());
        let mut waiter = mq_as(1, &["sem", "-wait", "sabre", "-k", "b"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(mq_as(0, &["sem", "-signal", "sabre", "-k", "a"])
            .status()
            .unwrap()
            .success());
        let released = Instant::now();
        assert!(waiter.wait().unwrap().success());
        handovers.push(released.elapsed());
        assert!(mq_as(1, &["sem", "-signal", "sabre", "-k", "b"])
            .status()
            .unwrap()
            .success());
    }
    let handover = median(handovers.clone());
    let worst = handovers.iter().max().unwrap();

    // Five waiters in line: each release goes to the next in line, in order
    // of arrival; the time from a release to the next grant.
    let mut queued = Vec::new();
    for _ in 0..2 {
        assert!(mq_as(0, &["sem", "-wait", "sabre", "-k", "h"])
            .status()
            .unwrap()
            .success());
        let waiters: Vec<_> = (1..=5)
            .map(|n| {
                let child = mq_as(1, &["sem", "-wait", "sabre", "-k", &format!("q{n}")])
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(400));
                child
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1000));
        let mut key = "h".to_string();
        let mut user_of = 0;
        for (n, mut waiter) in waiters.into_iter().enumerate() {
            assert!(mq_as(user_of, &["sem", "-signal", "sabre", "-k", &key])
                .status()
                .unwrap()
                .success());
            let released = Instant::now();
            assert!(waiter.wait().unwrap().success());
            queued.push(released.elapsed());
            key = format!("q{}", n + 1);
            user_of = 1;
            // The grant went to the next in line: the lock holds its key.
            let info = Command::new(mq)
                .args(["sem", "-mr-info", "sabre"])
                .env("HOME", home.path())
                .env("MQ_HOST", "lab")
                .env("MQ_BASE", lab.base_str())
                .env("MQ_SSH_CONFIG", lab.config_for(&user(0)))
                .env_remove("SSH_AUTH_SOCK")
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&info.stdout);
            assert!(line.trim_end().ends_with(&key), "out of order: {line}");
        }
        assert!(mq_as(1, &["sem", "-signal", "sabre", "-k", &key])
            .status()
            .unwrap()
            .success());
    }
    let queued_median = median(queued.clone());
    let queued_worst = queued.iter().max().unwrap();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ratio = |d: Duration| d.as_secs_f64() / floor.as_secs_f64();
    println!("floor: ssh HOST true           {:8.1} ms", ms(floor));
    println!(
        "mq sem -info                   {:8.1} ms  ratio {:.2} (target <= 1.3)",
        ms(info),
        ratio(info)
    );
    println!(
        "mq sem -wait + mq sem -signal  {:8.1} ms  ratio {:.2}",
        ms(pair),
        ratio(pair)
    );
    println!(
        "handover release -> next holder: median {:.0} ms, worst {:.0} ms (target median <= 1000 ms)",
        ms(handover),
        ms(*worst)
    );
    println!(
        "with 5 waiters in line, release -> next grant (in order): median {:.0} ms, worst {:.0} ms (target median <= 1000 ms)",
        ms(queued_median),
        ms(*queued_worst)
    );
}
