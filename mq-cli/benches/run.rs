//! `mq run` against a real lab host, on a free one-file system whose
//! emulated board completes at once, compared with the floor measured in the
//! same run (one bare OpenSSH `ssh HOST true` as the same user).
//!
//! `cargo bench -p mq-cli --bench run` (as root: it makes a throwaway user).
//! Targets: wall time <= 3x the floor; exactly 1 TCP connection; completion
//! text -> lock released <= 200 ms.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_testkit::LabHost;

const ROUNDS: usize = 11;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(lab) = LabHost::start(1) else {
        eprintln!("nothing measured: needs root and sshd");
        return;
    };
    let tftpboot = lab.install_boards(&["sabre"]);
    let user = lab.users[0].name.clone();
    let config = lab.config_for(&user);
    let image = lab.root.path().join("image.elf");
    std::fs::write(&image, "ELF-loader started\nAll is well in the universe\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let mq = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
        cmd.args([
            "run",
            "-s",
            "sabre",
            "-c",
            "All is well in the universe",
            "-f",
        ])
        .arg(&image)
        .env("HOME", home.path())
        .env("MQ_HOST", "lab")
        .env("MQ_BASE", lab.base_str())
        .env("MQ_TFTPBOOT", &tftpboot)
        .env("MQ_SSH_CONFIG", &config)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
        cmd
    };
    let floor_once = || {
        let t = Instant::now();
        let ok = Command::new("ssh")
            .args(["-F", config.to_str().unwrap(), "lab", "true"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        t.elapsed()
    };
    floor_once();
    let floor = median((0..ROUNDS).map(|_| floor_once()).collect());

    let lock = lab.base.join("sabre.lock");
    let mut walls = Vec::new();
    let mut releases = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..ROUNDS {
        let before = lab.server.connections();
        let started = Instant::now();
        let mut child = mq().stdout(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Watch for the lock file to go, from the moment the completion text
        // reaches mq's output.
        let mut line = String::new();
        let completed_at = loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "no completion text");
            if line.contains("All is well in the universe") {
                break Instant::now();
            }
        };
        let released = Arc::new(AtomicBool::new(false));
        let watcher = {
            let lock = lock.clone();
            let released = Arc::clone(&released);
            std::thread::spawn(move || loop {
                if !lock.exists() {
                    released.store(true, Ordering::SeqCst);
                    return Instant::now();
                }
                std::thread::sleep(Duration::from_micros(200));
            })
        };
        std::io::copy(&mut out, &mut std::io::sink()).unwrap();
        assert!(child.wait().unwrap().success());
        walls.push(started.elapsed());
        releases.push(watcher.join().unwrap() - completed_at);
        std::thread::sleep(Duration::from_millis(100));
        connections.push(lab.server.connections() - before);
    }
    let wall = median(walls);
    let release = median(releases.clone());
    println!(
        "floor: ssh HOST true                    {:8.1} ms",
        floor.as_secs_f64() * 1e3
    );
    println!(
        "mq run (one-file board, completes at once) {:8.1} ms  ratio {:.2} (target <= 3)",
        wall.as_secs_f64() * 1e3,
        wall.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "TCP connections per mq run: {:?} (target: exactly 1)",
        connections
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
    );
    println!(
        "completion text -> lock released: median {:.1} ms, worst {:.1} ms (target <= 200 ms)",
        release.as_secs_f64() * 1e3,
        releases.iter().max().unwrap().as_secs_f64() * 1e3
    );
}
