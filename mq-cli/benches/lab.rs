//! mq's own overhead on the QEMU board of `mq lab init`, against the board
//! alone.
//!
//! The floor, measured in the same run and interleaved with mq's rounds: the
//! board's own boot time, QEMU started directly with the command line the
//! board runner uses, from spawn to the completion text on its console. Then
//! `mq run` as a user runs it (a fresh process, a fresh connection), timed
//! from spawn to the completion text on its stdout and to its exit. mq's own
//! overhead is the difference: process start, connect, checks, lock and
//! temporary directory, upload, the runner starting QEMU, and (to the exit)
//! power off, log fetch, cleanup and release. `--json-report` splits it.
//!
//! `cargo bench -p mq-cli --bench lab` (over SSH too when root). Target:
//! mq's overhead <= 10% of the whole.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_lab::init::COMPLETION;
use mq_lab::labfile::LabFile;
use mq_lab::runner::{qemu_command, RebootArgs};

const ROUNDS: usize = 21;
const BOARD: &str = "qemu-x86-1";
const SYSTEM: &str = "qemu_x86_1";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn secs(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Reads `child`'s stdout until `COMPLETION` has appeared; returns when.
fn until_completion(child: &mut Child, started: Instant) -> f64 {
    let out = child.stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "ended before the completion text");
        seen.extend_from_slice(&buf[..n]);
        if seen
            .windows(COMPLETION.len())
            .any(|w| w == COMPLETION.as_bytes())
        {
            return started.elapsed().as_secs_f64();
        }
    }
}

/// The board alone: QEMU as the runner starts it, spawn to completion text.
fn board_alone(lab: &Path) -> f64 {
    let file = LabFile::load(&lab.join("lab.conf")).unwrap();
    let args = RebootArgs {
        kernel: Some(lab.join("images/kernel.elf")),
        rootserver: Some(lab.join("images/rootserver")),
        ..RebootArgs::default()
    };
    let mut cmd = qemu_command(file.board(BOARD).unwrap(), &args).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut qemu = cmd.spawn().unwrap();
    let t = until_completion(&mut qemu, started);
    qemu.kill().unwrap();
    qemu.wait().unwrap();
    t
}

/// What any SSH client pays the test server before its first command has
/// run: connect, authenticate, one `true`.
fn connect_and_true(host: &mq_testkit::LabHost, home: &Path) -> f64 {
    use mq_transport::{SshOptions, SshTransport, Transport};
    let mut options = SshOptions::new("lab").config_file(host.config_for(&host.users[0].name));
    options.home = home.to_path_buf();
    let started = Instant::now();
    let ssh = SshTransport::connect(&options).unwrap();
    assert!(ssh.run("true").unwrap().status.success());
    started.elapsed().as_secs_f64()
}

#[derive(Default)]
struct Rounds {
    completion: Vec<f64>,
    exit: Vec<f64>,
    lock: Vec<f64>,
    upload: Vec<f64>,
    run: Vec<f64>,
    finish: Vec<f64>,
    /// mq's own, against the board alone measured in the same round.
    own_to_completion: Vec<f64>,
    own_to_exit: Vec<f64>,
}

fn mq_run(lab: &Path, env: &[(&str, String)], board: f64, rounds: &mut Rounds) {
    let report = lab.join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mq"));
    cmd.args(["run", "-s", SYSTEM, "-c", COMPLETION, "-d", "60", "-f"])
        .arg(lab.join("images/kernel.elf"))
        .arg("-f")
        .arg(lab.join("images/rootserver"))
        .arg("-l")
        .arg(lab.join("run.log"))
        .arg("--json-report")
        .arg(&report)
        .env("MQ_BASE", lab.join("base"))
        .env("MQ_TFTPBOOT", lab.join("tftpboot"))
        .env("MQ_INVENTORY", lab.join("inventory"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut mq = cmd.spawn().unwrap();
    let completion = until_completion(&mut mq, started);
    std::io::copy(mq.stdout.as_mut().unwrap(), &mut std::io::sink()).unwrap();
    assert!(mq.wait().unwrap().success());
    let exit = started.elapsed().as_secs_f64();
    rounds.completion.push(completion);
    rounds.exit.push(exit);
    rounds.own_to_completion.push(completion - board);
    rounds.own_to_exit.push(exit - board);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    rounds.lock.push(secs(&json["lock_wait_s"]));
    rounds.upload.push(secs(&json["upload_s"]));
    rounds.run.push(secs(&json["run_s"]));
    rounds.finish.push(secs(&json["finish_s"]));
}

fn ms(s: f64) -> String {
    format!("{:.0} ms", s * 1e3)
}

fn report(name: &str, board: f64, r: Rounds) {
    let completion = median(r.completion);
    let exit = median(r.exit);
    let lock = median(r.lock);
    let upload = median(r.upload);
    let run = median(r.run);
    let finish = median(r.finish);
    let before = exit - lock - upload - run - finish;
    let to_completion = median(r.own_to_completion);
    let to_exit = median(r.own_to_exit);
    println!("{name}:");
    // mq's own as a share of the whole: the board alone plus mq's own.
    println!(
        "  start -> completion text {} (median); mq's own {} over the board's {} ({:.1}%)",
        ms(completion),
        ms(to_completion),
        ms(board),
        100.0 * to_completion / (board + to_completion)
    );
    println!(
        "  start -> mq exits        {} (median); mq's own {} over the board's {} ({:.1}%)",
        ms(exit),
        ms(to_exit),
        ms(board),
        100.0 * to_exit / (board + to_exit)
    );
    println!(
        "  phases (medians): process start + connect + checks {}, lock + temp dir {}, upload {}, \
         runner (QEMU boot, power off) {}, log + cleanup + release {}",
        ms(before),
        ms(lock),
        ms(upload),
        ms(run),
        ms(finish)
    );
    println!(
        "  target mq's own <= 10%: met for boards that boot in >= {} (9x mq's own to the exit)",
        ms(9.0 * to_exit)
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

    let mut transports: Vec<(&str, Vec<(&str, String)>)> =
        vec![("local transport", vec![("MQ_TRANSPORT", "local".into())])];
    let host = mq_testkit::LabHost::start(1);
    let home = tempfile::tempdir().unwrap();
    if let Some(host) = &host {
        let ssh = |kind: &str| {
            vec![
                ("MQ_TRANSPORT", kind.to_string()),
                ("MQ_HOST", "lab".into()),
                (
                    "MQ_SSH_CONFIG",
                    host.config_for(&host.users[0].name).display().to_string(),
                ),
                ("HOME", home.path().display().to_string()),
            ]
        };
        transports.push((
            "ssh to 127.0.0.1 (libssh2, a new connection per run)",
            ssh("ssh"),
        ));
        transports.push((
            "openssh to 127.0.0.1 (its ControlMaster kept between runs)",
            ssh("openssh"),
        ));
    }

    // One warm-up round each (page cache, the openssh master), then rounds
    // interleaved so that drifts in the machine's load hit all alike.
    board_alone(&lab);
    let mut all: Vec<Rounds> = transports.iter().map(|_| Rounds::default()).collect();
    for (_, env) in &transports {
        mq_run(&lab, env, 0.0, &mut Rounds::default());
    }
    let mut board = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..ROUNDS {
        let this_round = board_alone(&lab);
        board.push(this_round);
        if let Some(host) = &host {
            connections.push(connect_and_true(host, home.path()));
        }
        for ((_, env), rounds) in transports.iter().zip(&mut all) {
            std::thread::sleep(Duration::from_millis(20));
            mq_run(&lab, env, this_round, rounds);
        }
    }
    let board = median(board);
    println!(
        "board alone (QEMU as the runner starts it, spawn -> completion text): {}",
        ms(board)
    );
    for ((name, _), rounds) in transports.iter().zip(all) {
        report(name, board, rounds);
    }
    if !connections.is_empty() {
        println!(
            "the SSH server's own share: a libssh2 connection + one `true` costs {} on it",
            ms(median(connections))
        );
    }
}
