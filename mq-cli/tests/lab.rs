//! The lab side end to end: `mq lab init`, QEMU boards run by `mq board
//! reboot` behind PROTOCOL.md's reboot wrappers, and `mq run` on them over the
//! local transport and over the real SSH test server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_testkit::{eventually, output, LabHost};
use nix::sys::signal::Signal;

struct Lab {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Lab {
    fn init() -> Option<Lab> {
        if !mq_testkit::qemu_installed() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mq-qemu-lab-")
            .tempdir()
            .unwrap();
        mq_testkit::set_mode(dir.path(), 0o755);
        let out = Command::new(assert_cmd::cargo::cargo_bin("mq"))
            .args(["lab", "init"])
            .arg(dir.path().join("lab"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("mq run -s qemu_x86_1 -c 'All is well in the universe'"),
            "{text}"
        );
        Some(Lab {
            dir,
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("lab").join(rel)
    }

    fn mq(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("MQ_TRANSPORT", "local")
            .env("MQ_BASE", self.path("base"))
            .env("MQ_TFTPBOOT", self.path("tftpboot"))
            .env("MQ_INVENTORY", self.path("inventory"))
            .env_remove("MQ_HOST")
            .env_remove("MQ_SSH_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    fn run_args(&self, system: &str, completion: &str, rootserver: &Path) -> Vec<String> {
        vec![
            "run".into(),
            "-s".into(),
            system.into(),
            "-c".into(),
            completion.into(),
            "-f".into(),
            self.path("images/kernel.elf").display().to_string(),
            "-f".into(),
            rootserver.display().to_string(),
        ]
    }

    fn rootserver(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        mq_testkit::set_mode(&path, 0o644);
        path
    }

    /// The QEMU of the runner that holds `board` (the kernel's lock table
    /// names the runner).
    fn qemu_pid(&self, board: &str) -> Option<u32> {
        let lock = mq_lab::boardlock::BoardLock::path(&self.path("state"), board);
        let runner = mq_lab::boardlock::lock_holder(&lock)? as u32;
        mq_testkit::children_of(runner).into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("qemu-system"))
        })
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn qemu_board_completes_over_the_local_transport_with_a_log() {
    let Some(lab) = Lab::init() else { return };
    let log = lab.dir.path().join("console.log");
    let mut args = lab.run_args(
        "qemu_x86_1",
        "All is well in the universe",
        &lab.path("images/rootserver"),
    );
    args.extend([
        "-l".into(),
        log.display().to_string(),
        "-d".into(),
        "60".into(),
    ]);
    let (code, out, err) = output(lab.mq(&strs(&args)));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("mq test kernel: multiboot entry"), "{out}");
    // The completion text lives in the second file, printed by the kernel.
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("mq test rootserver: started"), "{log}");
    assert!(log.contains("All is well in the universe"));
    assert!(
        LabHost::lock_files(&lab.path("base")).is_empty(),
        "lock released"
    );
    assert_eq!(lab.qemu_pid("qemu-x86-1"), None, "QEMU is gone");
}

#[test]
fn error_text_and_timeout_on_a_qemu_board() {
    let Some(lab) = Lab::init() else { return };
    let failing = lab.rootserver(
        "failing",
        "Test LAB0002 FAILED\r\nAll is well in the universe\r\n",
    );
    let mut args = lab.run_args("qemu_x86_1", "All is well in the universe", &failing);
    args.extend(["-e".into(), "FAILED".into()]);
    let (code, out, _) = output(lab.mq(&strs(&args)));
    assert_eq!(code, 3, "{out}");

    let quiet = lab.rootserver("quiet", "nothing to see\r\n");
    let mut args = lab.run_args("qemu_x86_2", "never printed", &quiet);
    args.extend(["-d".into(), "3".into()]);
    let started = Instant::now();
    let (code, out, _) = output(lab.mq(&strs(&args)));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("[[Timeout]]"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(lab.qemu_pid("qemu-x86-2"), None);
}

fn spawn_until(mut cmd: Command, text: &str) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(text) {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended before '{text}': {seen}"
        );
        seen.push_str(&line);
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    child
}

#[test]
fn interrupting_a_run_kills_qemu_and_releases_the_lock() {
    let Some(lab) = Lab::init() else { return };
    let quiet = lab.rootserver("quiet", "waiting for ever\r\n");
    let args = lab.run_args("qemu_x86_1", "never printed", &quiet);
    let child = spawn_until(lab.mq(&strs(&args)), "dropped to user space");
    let qemu = lab.qemu_pid("qemu-x86-1").expect("QEMU runs");
    assert!(mq_testkit::alive(qemu));
    mq_testkit::signal(child.id(), Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        eventually(Duration::from_secs(5), || !mq_testkit::alive(qemu)),
        "QEMU killed"
    );
    assert!(mq_testkit::processes_matching("qemu-system")
        .iter()
        .all(|(pid, _)| *pid != qemu));
    assert!(
        LabHost::lock_files(&lab.path("base")).is_empty(),
        "lock released"
    );
}

#[test]
fn a_pool_of_two_runs_two_at_once_and_the_third_waits() {
    let Some(lab) = Lab::init() else { return };
    let quiet = lab.rootserver("quiet", "busy\r\n");
    let run = |key: &str| {
        let mut args = lab.run_args("qemu_x86_pool", "never printed", &quiet);
        args.extend(["-d".into(), "3".into(), "-k".into(), key.into()]);
        lab.mq(&strs(&args)).stdout(Stdio::piped()).spawn().unwrap()
    };
    let started = Instant::now();
    let a = run("a");
    std::thread::sleep(Duration::from_millis(700));
    let b = run("b");
    std::thread::sleep(Duration::from_millis(700));
    let c = run("c");
    let outs: Vec<_> = [a, b, c]
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .collect();
    let total = started.elapsed();
    let text: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .collect();
    for (o, t) in outs.iter().zip(&text) {
        assert_eq!(o.status.code(), Some(4), "{t}");
    }
    let chosen = |t: &str| t.lines().next().unwrap_or_default().to_string();
    assert_ne!(
        chosen(&text[0]),
        chosen(&text[1]),
        "the first two ran on different boards"
    );
    assert!(!text[0].contains("held by") && !text[1].contains("held by"));
    assert!(text[2].contains("held by"), "the third waited: {}", text[2]);
    // Two at once (about 3 s), then the third (3 s more), not 9 s in a row.
    assert!(
        total >= Duration::from_secs(5) && total < Duration::from_secs(9),
        "{total:?}"
    );
}

#[test]
fn qemu_board_over_the_ssh_test_server() {
    if !mq_testkit::qemu_installed() {
        return;
    }
    let Some(host) = LabHost::start(1) else {
        return;
    };
    // The lab lives in a directory the throwaway user can read.
    let lab_dir = host.root.path().join("qemu-lab");
    let out = Command::new(assert_cmd::cargo::cargo_bin("mq"))
        .args(["lab", "init"])
        .arg(&lab_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("log");
    let out = Command::new(assert_cmd::cargo::cargo_bin("mq"))
        .args([
            "run",
            "-s",
            "qemu_x86_1",
            "-c",
            "All is well in the universe",
            "-d",
            "60",
            "-f",
        ])
        .arg(lab_dir.join("images/kernel.elf"))
        .arg("-f")
        .arg(lab_dir.join("images/rootserver"))
        .arg("-l")
        .arg(&log)
        .env("HOME", home.path())
        .env("MQ_HOST", "lab")
        .env("MQ_SSH_CONFIG", host.config_for(&host.users[0].name))
        .env("MQ_BASE", lab_dir.join("base"))
        .env("MQ_TFTPBOOT", lab_dir.join("tftpboot"))
        .env("MQ_INVENTORY", lab_dir.join("inventory"))
        .env_remove("MQ_TRANSPORT")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("All is well in the universe"));
    assert!(LabHost::lock_files(&lab_dir.join("base")).is_empty());
    // The run's temporary files are gone from the host's /tmp too.
    assert!(LabHost::files_of(Path::new("/tmp"), &host.users[0].name).is_empty());
}

#[test]
fn a_bad_lab_file_stops_the_runner_with_its_line() {
    let Some(lab) = Lab::init() else { return };
    std::fs::write(
        lab.path("lab.conf"),
        "[board qemu-x86-1]\nkind = qemu\nflavour = vanilla\n",
    )
    .unwrap();
    let (code, _, err) = output(lab.mq(&[
        "board",
        "reboot",
        "--lab",
        lab.path("lab.conf").to_str().unwrap(),
        "--board",
        "qemu-x86-1",
        "-k",
        lab.path("images/kernel.elf").to_str().unwrap(),
    ]));
    assert_eq!(code, 6);
    assert!(
        err.contains("lab.conf:3: 'flavour' is not a setting of a qemu board"),
        "{err}"
    );
}

#[test]
fn the_arm_board_runs_a_one_file_image() {
    let Some(lab) = Lab::init() else { return };
    let has_arm = Command::new("sh")
        .args(["-c", "command -v qemu-system-aarch64"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_arm {
        mq_testkit::skip::<()>("no qemu-system-aarch64 (install qemu-system-arm)");
        return;
    }
    let image = lab.path("images/sel4test-arm.img");
    let (code, out, err) = output(lab.mq(&[
        "run",
        "-s",
        "qemu_arm_1",
        "-c",
        "All is well in the universe",
        "-d",
        "60",
        "-f",
        image.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ELF-loader started on CPU: ARM Ltd. Cortex-A53"),
        "{out}"
    );
    assert_eq!(lab.qemu_pid("qemu-arm-1"), None);
    // A one-file system refuses a second file, before anything happens.
    let (code, out, _) = output(lab.mq(&[
        "run",
        "-s",
        "qemu_arm_1",
        "-c",
        "x",
        "-f",
        image.to_str().unwrap(),
        "-f",
        image.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    assert!(
        out.starts_with("Wrong number of files specified for system qemu_arm_1"),
        "{out}"
    );
}

#[test]
fn a_command_board_is_staged_powered_watched_and_powered_off() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("board-state");
    std::fs::create_dir(&state).unwrap();
    let s = state.display();
    let lab = dir.path().join("lab.conf");
    std::fs::write(
        &lab,
        format!(
            "[board bench1]\nkind = command\n\
             power_on = echo on >> {s}/power\n\
             power_off = echo off >> {s}/power\n\
             stage = cp {{kernel}} {s}/staged\n\
             console = sleep 0.2; cat {s}/staged; sleep 31.7\n"
        ),
    )
    .unwrap();
    let image = dir.path().join("image with spaces.elf");
    std::fs::write(&image, "U-Boot 2023.04\nBooting all finished, dropped to user space\nAll is well in the universe\n").unwrap();
    let log = dir.path().join("log");
    let started = Instant::now();
    let (code, out, err) = output({
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(["board", "reboot", "--lab"])
            .arg(&lab)
            .args([
                "--board",
                "bench1",
                "-c",
                "All is well in the universe",
                "-t",
                "20",
                "-k",
            ])
            .arg(&image)
            .arg("-l")
            .arg(&log);
        cmd
    });
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped at the completion text"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("staged")).unwrap(),
        std::fs::read_to_string(&image).unwrap()
    );
    // Off before staging, on for the run, off at the end.
    assert_eq!(
        std::fs::read_to_string(state.join("power")).unwrap(),
        "off\non\noff\n"
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("All is well in the universe"));
    assert!(
        eventually(Duration::from_secs(3), || mq_testkit::processes_matching(
            "sleep 31.7"
        )
        .is_empty()),
        "the console command and its children are gone"
    );

    // A timeout prints the marker CI greps, with its code, and powers off.
    std::fs::write(state.join("power"), "").unwrap();
    let (code, out, _) = output({
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(["board", "reboot", "--lab"])
            .arg(&lab)
            .args(["--board", "bench1", "-c", "never", "-t", "2", "-k"])
            .arg(&image);
        cmd
    });
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("[[Timeout]]"));
    assert_eq!(
        std::fs::read_to_string(state.join("power")).unwrap(),
        "off\non\noff\n"
    );
}

/// `mq board reboot --lab LAB --board BOARD ARGS...`.
fn board_reboot(lab: &Path, board: &str, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
    cmd.args(["board", "reboot", "--lab"])
        .arg(lab)
        .args(["--board", board])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// `mq board reboot` with `-c TEXT -k IMAGE`, run to its end.
fn board_run(lab: &Path, board: &str, text: &str, image: &Path) -> std::process::Output {
    board_reboot(
        lab,
        board,
        &[
            "-c".as_ref(),
            text.as_ref(),
            "-k".as_ref(),
            image.as_os_str(),
        ],
    )
    .output()
    .unwrap()
}

/// A command board whose power, staging and console are files in `state`.
fn command_board(dir: &Path, power_on: &str) -> (PathBuf, PathBuf) {
    let state = dir.join("board-state");
    std::fs::create_dir_all(&state).unwrap();
    let s = state.display();
    let lab = dir.join("lab.conf");
    std::fs::write(
        &lab,
        format!(
            "[board bench1]\nkind = command\n\
             power_on = {power_on}\n\
             power_off = echo off >> {s}/power\n\
             stage = cp {{kernel}} {s}/staged\n\
             console = cat {s}/staged; exec sleep 41.3\n"
        ),
    )
    .unwrap();
    (lab, state)
}

#[test]
fn shutdown_kills_only_the_runner_that_holds_the_board() {
    let Some(lab) = Lab::init() else { return };
    let conf = lab.path("lab.conf");
    // state/ is the lab owner's alone, with a lock for every board that
    // every user can take: nobody else can plant anything there.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&lab.path("state")), 0o755);
    for board in ["qemu-x86-1", "qemu-x86-2", "qemu-arm-1"] {
        let lock = mq_lab::boardlock::BoardLock::path(&lab.path("state"), board);
        assert_eq!(mode(&lock), 0o644, "{}", lock.display());
    }

    // A planted pid file (an old runner's, or an attacker's) kills nothing.
    let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(lab.path("state/qemu-x86-1.pid"), bystander.id().to_string()).unwrap();
    let out = board_reboot(&conf, "qemu-x86-1", &["--shutdown".as_ref()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        mq_testkit::alive(bystander.id()),
        "an unrelated process was killed"
    );
    std::fs::write(lab.path("state/qemu-x86-1.pid"), "-1").unwrap();
    let out = board_reboot(&conf, "qemu-x86-1", &["--shutdown".as_ref()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(mq_testkit::alive(bystander.id()));
    bystander.kill().unwrap();
    bystander.wait().unwrap();

    // A running board: a second runner is refused at once, naming the first;
    // --shutdown stops the first (and its QEMU).
    let quiet = lab.rootserver("quiet", "waiting for ever\r\n");
    let args = lab.run_args("qemu_x86_1", "never printed", &quiet);
    let child = spawn_until(lab.mq(&strs(&args)), "dropped to user space");
    let qemu = lab.qemu_pid("qemu-x86-1").expect("QEMU runs");
    let kernel = lab.path("images/kernel.elf");
    let started = Instant::now();
    let second = board_run(&conf, "qemu-x86-1", "x", &kernel);
    assert_eq!(second.status.code(), Some(6));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is in use by the runner with pid"), "{err}");
    assert!(mq_testkit::alive(qemu), "the first board runs on");

    let out = board_reboot(&conf, "qemu-x86-1", &["--shutdown".as_ref()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("powered off"));
    assert!(
        !mq_testkit::alive(qemu),
        "QEMU is gone once --shutdown returns"
    );
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn template_values_are_substituted_once() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, state) = command_board(dir.path(), "echo on >> STATE/power");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("STATE", &state.display().to_string())).unwrap();
    // A value that holds another placeholder, and shell text after it.
    let img = dir.path().join("img");
    std::fs::create_dir(&img).unwrap();
    let kernel = img.join("{log}");
    std::fs::write(&kernel, "All is well\n").unwrap();
    let log = dir.path().join("y;touch PWNED;");
    let out = board_reboot(
        &conf,
        "bench1",
        &[
            "-c".as_ref(),
            "All is well".as_ref(),
            "-t".as_ref(),
            "20".as_ref(),
            "-k".as_ref(),
            kernel.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
        ],
    )
    .current_dir(dir.path())
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("PWNED").exists(), "a value ran as shell");
    assert_eq!(
        std::fs::read_to_string(state.join("staged")).unwrap(),
        "All is well\n"
    );

    // A placeholder inside double quotes is refused before the board is touched.
    std::fs::write(
        &conf,
        std::fs::read_to_string(&conf)
            .unwrap()
            .replace("cp {kernel}", "cp \"{kernel}\""),
    )
    .unwrap();
    std::fs::write(state.join("power"), "").unwrap();
    let out = board_run(&conf, "bench1", "x", &kernel);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside double quotes"));
    assert_eq!(
        std::fs::read_to_string(state.join("power")).unwrap(),
        "",
        "untouched"
    );
}

#[test]
fn a_board_is_never_left_on() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    std::fs::write(&image, "booting\n").unwrap();
    // A bad text is refused before the board is touched.
    let (conf, state) = command_board(dir.path(), "true");
    let out = board_run(&conf, "bench1", "(", &image);
    assert_eq!(out.status.code(), Some(6));
    assert!(!state.join("power").exists(), "not touched");
    assert!(mq_testkit::processes_matching("sleep 41.3").is_empty());
    // A failing power-on stops the console and powers off again.
    let (conf, state) = command_board(dir.path(), "echo nope >&2; exit 3");
    let out = board_run(&conf, "bench1", "x", &image);
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exit status: 3: nope"), "{err}");
    assert!(
        eventually(Duration::from_secs(3), || mq_testkit::processes_matching(
            "sleep 41.3"
        )
        .is_empty()),
        "the console was left running"
    );
    assert!(std::fs::read_to_string(state.join("power"))
        .unwrap()
        .ends_with("off\noff\n"));
    // Out-of-range timeouts are refused, not a panic.
    let out = board_reboot(
        &conf,
        "bench1",
        &[
            "-c".as_ref(),
            "x".as_ref(),
            "-t".as_ref(),
            "18446744073709551615".as_ref(),
            "-k".as_ref(),
            image.as_os_str(),
        ],
    )
    .output()
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn a_failing_power_off_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, _state) = command_board(dir.path(), "true");
    let text = std::fs::read_to_string(&conf).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("power_off") {
                "power_off = exit 7"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&conf, text + "\n").unwrap();
    let image = dir.path().join("image");
    std::fs::write(&image, "All is well\n").unwrap();
    let out = board_run(&conf, "bench1", "All is well", &image);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("may still be on"), "{err}");
}

#[test]
fn lab_init_refuses_no_boards_and_keeps_an_existing_directory_s_mode() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mine");
    std::fs::create_dir(&target).unwrap();
    mq_testkit::set_mode(&target, 0o700);
    let out = Command::new(assert_cmd::cargo::cargo_bin("mq"))
        .args(["lab", "init", "--boards", "0"])
        .arg(&target)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let out = Command::new(assert_cmd::cargo::cargo_bin("mq"))
        .args(["lab", "init"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn a_board_program_that_cannot_start_is_status_6() {
    let Some(lab) = Lab::init() else { return };
    let conf = lab.path("lab.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace(
            "options = -machine pc -m 128",
            "options = -machine no-such-machine",
        ),
    )
    .unwrap();
    let kernel = lab.path("images/kernel.elf");
    let out = board_run(&conf, "qemu-x86-1", "x", &kernel);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("before any console output"));
}

#[test]
fn a_console_that_prints_for_ever_cannot_fill_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.conf");
    std::fs::write(
        &lab,
        "[board chatty]\nkind = command\npower_on = true\npower_off = true\n\
         console = yes 'a line of console output' | head -c 50000000; echo; echo THE-END\n\
         log_limit = 64K\n",
    )
    .unwrap();
    let image = dir.path().join("image");
    std::fs::write(&image, "x\n").unwrap();
    let log = dir.path().join("log");
    let out = board_reboot(
        &lab,
        "chatty",
        &[
            "-c".as_ref(),
            "THE-END".as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
            "-k".as_ref(),
            image.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
        ],
    )
    .stdout(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size < (64 << 10) + (1 << 20) + 512, "log of {size} bytes");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(
        text.contains("[[mq: the log is capped at 65536 bytes"),
        "no note"
    );
    assert!(text.trim_end().ends_with("THE-END"), "the tail is kept");
}
