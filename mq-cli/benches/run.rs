//! A cold `mq run` (and `mq sem -info`) against a real lab host, at 0 and at
//! +25 ms one way (mq-testkit's `DelayProxy` in front of the host's sshd),
//! each against the floor measured in the same run through the same proxy:
//! one bare OpenSSH `ssh HOST true` as the same user. Rounds are interleaved
//! (floor, sem, run 1 file, run 2 files, floor, ...); medians are printed.
//!
//! `cargo bench -p mq-cli --bench run` (as root: it makes a throwaway user).
//! Targets (issue 16, at +25 ms): run 1 file <= 1.0x, run 2 files <= 1.05x,
//! sem -info <= 0.65x; exactly 1 TCP connection each; on loopback no slower
//! than before. Also printed: round trips (half the proxy's direction
//! changes) and completion text -> lock released.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_testkit::{DelayProxy, LabHost};

mod common;
use common::median;

const COMPLETION: &str = "All is well in the universe";

struct Setup<'a> {
    lab: &'a LabHost,
    tftpboot: PathBuf,
    home: tempfile::TempDir,
    images: Vec<PathBuf>,
}

impl Setup<'_> {
    fn mq(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("MQ_HOST", "lab")
            .env("MQ_BASE", self.lab.base_str())
            .env("MQ_TFTPBOOT", &self.tftpboot)
            .env("MQ_SSH_CONFIG", config)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn run_args(&self, system: &str, files: std::ops::Range<usize>) -> Vec<String> {
        let mut args: Vec<String> = ["run", "-s", system, "-c", COMPLETION, "-d", "60"]
            .map(String::from)
            .to_vec();
        for image in &self.images[files] {
            args.push("-f".into());
            args.push(image.display().to_string());
        }
        args
    }
}

/// One measured invocation: wall time, round trips, connections.
struct Sample {
    wall: Duration,
    round_trips: usize,
    connections: usize,
    /// Completion text seen -> lock file gone (runs only).
    release: Option<Duration>,
}

fn measure(proxy: &DelayProxy, body: impl FnOnce() -> Option<Duration>) -> Sample {
    let (turns, conns) = (proxy.turns(), proxy.connections());
    let started = Instant::now();
    let release = body();
    let wall = started.elapsed();
    // Let the last bytes of the connection's close pass the proxy.
    std::thread::sleep(Duration::from_millis(100));
    Sample {
        wall,
        round_trips: (proxy.turns() - turns).div_ceil(2),
        connections: proxy.connections() - conns,
        release,
    }
}

/// `mq run`, timing completion text -> lock released.
fn timed_run(mut cmd: Command, lock: &Path) -> Option<Duration> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let completed_at = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no completion text");
        if line.contains(COMPLETION) {
            break Instant::now();
        }
    };
    let released = Arc::new(AtomicBool::new(false));
    let watcher = {
        let lock = lock.to_path_buf();
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
    Some(watcher.join().unwrap() - completed_at)
}

fn main() {
    let Some(lab) = common::lab(1) else {
        return;
    };
    let images_dir = tempfile::tempdir().unwrap();
    let kernel = images_dir.path().join("kernel.elf");
    let root = images_dir.path().join("rootserver");
    std::fs::write(&kernel, "ELF-loader started\n").unwrap();
    std::fs::write(&root, format!("{COMPLETION}\n")).unwrap();
    let one = images_dir.path().join("image.elf");
    std::fs::write(&one, format!("ELF-loader started\n{COMPLETION}\n")).unwrap();
    let setup = Setup {
        lab: &lab,
        tftpboot: lab.install_boards(&["sabre", "haswell3"]),
        home: tempfile::tempdir().unwrap(),
        images: vec![one, kernel, root],
    };
    let user = lab.users[0].name.clone();
    println!("medians, interleaved rounds; ratios against the floor at the same delay");
    for (one_way, rounds) in [(Duration::ZERO, 11), (Duration::from_millis(25), 5)] {
        let proxy = DelayProxy::start(lab.server.port, one_way);
        let config = lab.config_via(&user, proxy.port);
        let floor = || {
            let ok = Command::new("ssh")
                .args(["-F", config.to_str().unwrap(), "lab", "true"])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            None
        };
        let sem = || {
            let ok = setup
                .mq(&config, &["sem", "-info", "sabre"])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success();
            assert!(ok);
            None
        };
        let run1 = || {
            let args = setup.run_args("sabre", 0..1);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            timed_run(setup.mq(&config, &args), &lab.base.join("sabre.lock"))
        };
        let run2 = || {
            let args = setup.run_args("haswell3", 1..3);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            timed_run(setup.mq(&config, &args), &lab.base.join("haswell3.lock"))
        };
        // Warm the page cache and the server once.
        measure(&proxy, floor);
        measure(&proxy, run1);
        let mut samples: [Vec<Sample>; 4] = Default::default();
        for _ in 0..rounds {
            samples[0].push(measure(&proxy, floor));
            samples[1].push(measure(&proxy, sem));
            samples[2].push(measure(&proxy, run1));
            samples[3].push(measure(&proxy, run2));
        }
        report(one_way, &samples);
    }
}

fn report(one_way: Duration, samples: &[Vec<Sample>; 4]) {
    let wall = |i: usize| median(samples[i].iter().map(|s| s.wall).collect());
    let floor = wall(0);
    println!(
        "\n+{} ms one way: floor `ssh HOST true` {:.0} ms, {} round trips",
        one_way.as_millis(),
        floor.as_secs_f64() * 1e3,
        median(samples[0].iter().map(|s| s.round_trips).collect())
    );
    println!("| operation | time | ratio | target | round trips | TCP connections |");
    println!("|---|---|---|---|---|---|");
    for (i, name, target) in [
        (1, "`mq sem -info`", 0.65),
        (2, "`mq run`, 1 file", 1.0),
        (3, "`mq run`, 2 files", 1.05),
    ] {
        let t = wall(i);
        let connections: std::collections::BTreeSet<usize> =
            samples[i].iter().map(|s| s.connections).collect();
        println!(
            "| {name} | {:.0} ms | {:.2}x | <= {target}x | {} | {connections:?} |",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / floor.as_secs_f64(),
            median(samples[i].iter().map(|s| s.round_trips).collect()),
        );
    }
    let releases: Vec<Duration> = samples[2..]
        .iter()
        .flatten()
        .filter_map(|s| s.release)
        .collect();
    println!(
        "completion text -> lock released: median {:.1} ms, worst {:.1} ms",
        median(releases.clone()).as_secs_f64() * 1e3,
        releases.iter().max().unwrap().as_secs_f64() * 1e3
    );
}
