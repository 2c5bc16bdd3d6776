//! mq's own overhead on a QEMU board of `mq lab init`: wall time of `mq run`
//! from start to finish, split into the console phase (the board runner
//! starting QEMU, the board booting to its completion text, powering off)
//! and everything else mq does (connect, lock, temporary files, upload, log
//! fetch, cleanup, release), from `--json-report`.
//!
//! `cargo bench -p mq-cli --bench lab` (over SSH too when root). Target:
//! mq's overhead <= 10% of the whole.

use std::process::{Command, Stdio};
use std::time::Duration;

const ROUNDS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn secs(v: &serde_json::Value) -> f64 {
    v["secs"].as_f64().unwrap_or(0.0) + v["nanos"].as_f64().unwrap_or(0.0) / 1e9
}

fn measure(name: &str, lab: &std::path::Path, env: &[(&str, String)]) {
    let report = lab.join("report.json");
    let mut totals = Vec::new();
    let mut consoles = Vec::new();
    for _ in 0..ROUNDS {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
        cmd.args([
            "run",
            "-s",
            "qemu_x86_1",
            "-c",
            "All is well in the universe",
            "-d",
            "60",
            "-f",
        ])
        .arg(lab.join("images/kernel.elf"))
        .arg("-f")
        .arg(lab.join("images/rootserver"))
        .arg("--json-report")
        .arg(&report)
        .env("MQ_BASE", lab.join("base"))
        .env("MQ_TFTPBOOT", lab.join("tftpboot"))
        .env("MQ_INVENTORY", lab.join("inventory"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        assert!(cmd.status().unwrap().success());
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        totals.push(secs(&json["total"]));
        consoles.push(secs(&json["run"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = median(totals);
    let console = median(consoles);
    let overhead = total - console;
    println!(
        "{name}: mq run {:.0} ms = board (runner + QEMU boot to completion + power off) {:.0} ms + mq's own {:.0} ms; overhead {:.1}% (target <= 10%)",
        total * 1e3,
        console * 1e3,
        overhead * 1e3,
        100.0 * overhead / total
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("nothing measured: no qemu-system-x86_64");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    mq_testkit::set_mode(dir.path(), 0o755);
    let lab = dir.path().join("lab");
    let init = Command::new(env!("CARGO_BIN_EXE_mq"))
        .args(["lab", "init"])
        .arg(&lab)
        .output()
        .unwrap();
    assert!(init.status.success());
    measure("local transport", &lab, &[("MQ_TRANSPORT", "local".into())]);
    if let Some(host) = mq_testkit::LabHost::start(1) {
        let home = tempfile::tempdir().unwrap();
        measure(
            "ssh to 127.0.0.1",
            &lab,
            &[
                ("MQ_TRANSPORT", "ssh".into()),
                ("MQ_HOST", "lab".into()),
                (
                    "MQ_SSH_CONFIG",
                    host.config_for(&host.users[0].name).display().to_string(),
                ),
                ("HOME", home.path().display().to_string()),
            ],
        );
    }
}
