//! `mq run` through the built binary against a real lab host: sshd on
//! 127.0.0.1, throwaway users, procmail's lockfile, and the test suite's
//! emulated boards (mq_testkit::EMULATED_REBOOT) under a temporary tftpboot.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mq_testkit::{eventually, LabHost, Run};
use nix::sys::signal::Signal;

struct Lab {
    lab: LabHost,
    home: tempfile::TempDir,
    images: tempfile::TempDir,
}

const MACHINES: [&str; 6] = [
    "sabre",
    "haswell3",
    "haswell4",
    "skylake",
    "skylake2",
    "odroidc4-1",
];

impl Lab {
    fn start(users: usize) -> Option<Lab> {
        if !mq_testkit::lockfile_installed() {
            return None;
        }
        let lab = LabHost::start(users)?;
        lab.install_boards(&MACHINES);
        let images = tempfile::tempdir().unwrap();
        mq_testkit::set_mode(images.path(), 0o755);
        Some(Lab {
            lab,
            home: tempfile::tempdir().unwrap(),
            images,
        })
    }

    fn user(&self, i: usize) -> &str {
        &self.lab.users[i].name
    }

    /// An image file whose lines are the board's console script.
    fn image(&self, name: &str, lines: &[&str]) -> PathBuf {
        let path = self.images.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args);
        self.lab.configure(&mut cmd, self.user(i), self.home.path());
        cmd
    }

    /// `mq ARGS` on this machine as the lab host (the local transport): the
    /// same lock directory and boards, no SSH.
    fn local(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("MQ_TRANSPORT", "local")
            .env("MQ_BASE", self.lab.base_str())
            .env("MQ_TFTPBOOT", self.lab.root.path().join("tftpboot"))
            .env_remove("MQ_HOST")
            .env_remove("MQ_INVENTORY")
            .env_remove("MQ_SSH_CONFIG")
            .stdin(Stdio::null());
        cmd
    }

    fn mq(&self, i: usize, args: &[&str]) -> Run {
        Run::of(&mut self.command(i, args))
    }

    /// `mq run -s SYSTEM -c COMPLETION -f IMAGE... EXTRA...` as user 0.
    fn run(&self, system: &str, completion: &str, images: &[&Path], extra: &[&str]) -> Run {
        let mut args = vec!["run", "-s", system, "-c", completion];
        for image in images {
            args.extend(["-f", image.to_str().unwrap()]);
        }
        args.extend(extra);
        self.mq(0, &args)
    }

    /// Nothing of user `i` is left: no lock file, no temporary file.
    fn assert_clean(&self, i: usize) {
        // Boards' health (BASE/health) is kept by design, and so are the
        // lines' directories (BASE/queue/SYSTEM), but not a ticket in them.
        let health = self.lab.base.join("health");
        let queue = self.lab.base.join("queue");
        let base_files: Vec<PathBuf> = LabHost::files_of(&self.lab.base, self.user(i))
            .into_iter()
            .filter(|f| !f.starts_with(&health))
            .filter(|f| !f.starts_with(&queue))
            .chain(
                std::fs::read_dir(&queue)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .flat_map(|line| LabHost::files_of(&line.path(), self.user(i)))
                    .filter(|f| {
                        f.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('T'))
                    }),
            )
            .collect();
        assert!(base_files.is_empty(), "left in BASE: {base_files:?}");
        assert!(
            eventually(Duration::from_secs(5), || LabHost::files_of(
                Path::new("/tmp"),
                self.user(i)
            )
            .iter()
            .all(|f| !f.file_name().unwrap().to_string_lossy().starts_with("mq-"))),
            "temporary files left: {:?}",
            LabHost::files_of(Path::new("/tmp"), self.user(i))
        );
    }
}

#[test]
fn one_file_system_completes_with_log_and_exact_invocation() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image(
        "sel4test.elf",
        &[
            "ELF-loader started",
            "@sleep 1",
            "Starting test 1",
            "All is well in the universe",
            "never printed",
        ],
    );
    let log = t.home.path().join("console.log");
    let report = t.home.path().join("report.json");
    let r = t.run(
        "sabre",
        "All is well in the universe",
        &[&image],
        &[
            "-l",
            log.to_str().unwrap(),
            "--json-report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "Acquiring lock for sabre");
    assert_eq!(lines[1], "Lock acquired, we are allowed to run");
    assert!(r.stdout.contains("[sabre] power on\r"));
    assert!(r.stdout.contains("ELF-loader started\r"));
    assert!(r.stdout.contains("All is well in the universe"));
    assert!(!r.stdout.contains("never printed"));
    // The log is the board's, fetched from the host.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "[sabre] power on\nELF-loader started\nStarting test 1\nAll is well in the universe\n"
    );
    // PROTOCOL.md's invocation: -l LOG -c TEXT -t -1 -e '' -k KERNEL.
    let args = t.lab.last_args("sabre");
    assert_eq!(args.len(), 10, "{args:?}");
    assert_eq!((args[0].as_str(), args[2].as_str()), ("-l", "-c"));
    assert_eq!(args[3], "All is well in the universe");
    assert_eq!((args[4].as_str(), args[5].as_str()), ("-t", "-1"));
    assert_eq!((args[6].as_str(), args[7].as_str()), ("-e", ""));
    assert_eq!(args[8], "-k");
    assert!(
        args[9].starts_with("/tmp/mq-run.") && args[9].ends_with("/img0"),
        "{}",
        args[9]
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["system"], "sabre");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["outcome"]["outcome"], "completed");
    assert_eq!(json["markers"][0]["kind"]["label"], "elf-loader started");
    t.assert_clean(0);
}

#[test]
fn two_file_system_gets_the_root_server_and_a_pool_picks_a_member() {
    let Some(t) = Lab::start(1) else { return };
    let kernel = t.image(
        "kernel.elf",
        &[
            "Bootstrapping kernel",
            "Booting all finished, dropped to user space",
        ],
    );
    let root = t.image(
        "sel4test-driver",
        &["Starting test suite", "All is well in the universe"],
    );
    let r = t.run(
        "haswell3",
        "All is well in the universe",
        &[&kernel, &root],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let args = t.lab.last_args("haswell3");
    let u = args.iter().position(|a| a == "-u").expect("-u given");
    assert!(args[u + 1].starts_with("/tmp/mq-run.") && args[u + 1].ends_with("/img1"));

    // The kernel belongs first: mq says so.
    let r = t.run("haswell3", "All is well", &[&root, &kernel], &[]);
    assert!(r.stderr.contains("the kernel goes first"), "{}", r.stderr);

    let r = t.run(
        "x86_pool",
        "All is well in the universe",
        &[&kernel, &root],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("Selecting system '") && first.ends_with("' from pool 'x86_pool'"),
        "{first}"
    );
    t.assert_clean(0);
}

#[test]
fn every_check_fails_before_anything_happens_on_the_host() {
    let Some(t) = Lab::start(1) else { return };
    let one = t.image("one.elf", &["x"]);
    let one = one.to_str().unwrap();
    let dtb = t.image("board.dtb", &["dtb"]);
    let dtb = dtb.to_str().unwrap();
    let before = t.lab.server.connections();
    for (args, expected) in [
        (
            vec!["run", "-s", "nosuch", "-c", "x", "-f", one],
            "System or pool 'nosuch' does not exist. Valid systems are",
        ),
        (
            vec!["run", "-s", "sabre", "-c", "x", "-f", "/nonexistent.elf"],
            "File \"/nonexistent.elf\" either does not exist, or is not considered a valid file",
        ),
        (
            vec!["run", "-s", "sabre", "-c", "x", "-f", one, "-f", one],
            "Wrong number of files specified for system sabre (it takes 1, 2 given)",
        ),
        (
            vec!["run", "-s", "haswell3", "-c", "x", "-f", one],
            "Wrong number of files specified for system haswell3 (it takes 2, 1 given)",
        ),
        (
            vec!["run", "-s", "sabre", "-L", "-c", "x", "-f", one],
            "System sabre cannot boot Linux by PXE (-L); see 'mq features'",
        ),
        (
            vec!["run", "-s", "odroidc4_1", "-b", dtb, "-c", "x", "-f", one],
            "-b (device tree) needs -L (boot Linux)",
        ),
        (
            vec![
                "run", "-s", "haswell3", "-L", "-b", dtb, "-c", "x", "-f", one, "-f", one,
            ],
            "System haswell3 does not take a custom device tree (-b); see 'mq features'",
        ),
        (
            vec!["run", "-s", "sabre", "-f", one],
            "mq run needs -c TEXT (run until the completion text) or -r (reserve the board)",
        ),
        (
            vec!["run", "-s", "sabre", "-c", "(unclosed", "-f", one],
            "invalid completion pattern '(unclosed'",
        ),
        (
            vec!["run", "-s", "sabre", "-c", "x", "-d", "soon", "-f", one],
            "-d soon: the timeout is a whole number of seconds up to 315360000, or -1 for none",
        ),
        (vec!["run", "-c", "x", "-f", one], "mq run needs -s SYSTEM"),
        (
            vec!["run", "-s", "sabre", "-c", "", "-f", one],
            "-c: an empty completion text would match every line",
        ),
        (
            vec![
                "run",
                "-s",
                "sabre",
                "-c",
                "x",
                "-f",
                one,
                "-l",
                "/nonexistent/dir/c.log",
            ],
            "cannot write the log /nonexistent/dir/c.log: /nonexistent/dir:",
        ),
        (
            vec!["run", "-s", "sabre", "-c", "x", "-f", one, "-l", "/tmp"],
            "cannot write the log /tmp: it is a directory",
        ),
        (
            vec![
                "run",
                "-s",
                "sabre",
                "-c",
                "x",
                "-d",
                "9223372036854775807",
                "-f",
                one,
            ],
            "-d 9223372036854775807: the timeout is a whole number of seconds up to 315360000",
        ),
        (
            vec![
                "run",
                "-s",
                "sabre",
                "-c",
                "x",
                "-d",
                "18446744073709551615",
                "-f",
                one,
            ],
            "-d 18446744073709551615: the timeout is a whole number",
        ),
    ] {
        let r = t.mq(0, &args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with(expected), "{args:?}: {}", r.stdout);
    }
    // Numbers out of range are refused with a message, never a panic.
    for args in [
        vec![
            "run",
            "-s",
            "sabre",
            "-c",
            "x",
            "-t",
            "9223372036854775807",
            "-f",
            one,
        ],
        vec!["sem", "-wait", "sabre", "-t", "9223372036854775807"],
        vec!["sem", "-wait", "sabre", "-w", "0"],
        vec!["sem", "-wait", "sabre", "-T", "99999999999999"],
    ] {
        let r = t.mq(0, &args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("whole number")
                || r.stdout.contains("whole number")
                || r.stdout.contains("requires a positive integer"),
            "{args:?}: {}{}",
            r.stdout,
            r.stderr
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        t.lab.server.connections(),
        before,
        "nothing reached the host"
    );
    assert!(LabHost::files_of(&t.lab.base, t.user(0)).is_empty());
    assert!(!t.lab.board_file("sabre", "last-args"));
}

#[test]
fn the_log_is_written_through_the_path_the_user_named() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("one.elf", &["booting", "All is well in the universe"]);
    let done = "All is well in the universe";
    // A symlink stays a symlink; the file it names gets the log.
    let target = t.home.path().join("real.log");
    let link = t.home.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let r = t.run("sabre", done, &[&image], &["-l", link.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().contains(done));

    // A FIFO stays a FIFO, and its reader gets the console once.
    let fifo = t.home.path().join("console.fifo");
    mq_testkit::sh("mkfifo", &[fifo.to_str().unwrap()]);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = t.run("sabre", done, &[&image], &["-l", fifo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let read = reader.join().unwrap();
    assert_eq!(read.matches(done).count(), 1, "{read}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A device stays a device, and nothing is made beside it.
    let r = t.run("sabre", done, &[&image], &["-l", "/dev/null"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(!Path::new("/dev/null.mq-part").exists());
    t.assert_clean(0);
}

#[test]
fn error_text_and_timeout_give_their_codes() {
    let Some(t) = Lab::start(1) else { return };
    let failing = t.image(
        "failing.elf",
        &[
            "Starting test 3",
            "Test SCHED0003 FAILED",
            "All is well in the universe",
        ],
    );
    let r = t.run("sabre", "All is well", &[&failing], &["-e", "FAILED"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("All is well"));

    let hanging = t.image(
        "hang.elf",
        &["Booting all finished, dropped to user space", "@hang"],
    );
    let started = Instant::now();
    let r = t.run("sabre", "All is well", &[&hanging], &["-d", "2"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    // The runner's timeout, said once: not mistaken for mq's own deadline.
    assert_eq!(r.stdout.matches("[[Timeout]]").count(), 1, "{}", r.stdout);
    assert!(!r.stderr.contains("does not honour"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    t.assert_clean(0);

    let dying = t.image("dying.elf", &["U-Boot 2023.04", "@exit 9"]);
    let r = t.run("sabre", "All is well", &[&dying], &[]);
    assert_eq!(r.code, 9, "the runner's exit status, as mq.sh");
}

#[test]
fn reuse_of_a_held_lock_with_n() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("ok.elf", &["All is well in the universe"]);
    let image = image.to_str().unwrap();
    let r = t.mq(
        0,
        &["run", "-n", "-s", "sabre", "-c", "All is well", "-f", image],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "Failed to run because you said you own the lock (-n flag), but you don't!\nLock for sabre currently free\n"
    );
    assert_eq!(t.mq(0, &["sem", "-wait", "sabre", "-k", "ci-5"]).code, 0);
    let r = t.mq(
        0,
        &[
            "run",
            "-n",
            "-s",
            "sabre",
            "-k",
            "other",
            "-c",
            "All is well",
            "-f",
            image,
        ],
    );
    assert_eq!(r.code, 1, "the key is checked too");
    let r = t.mq(
        0,
        &[
            "run",
            "-n",
            "-s",
            "sabre",
            "-k",
            "ci-5",
            "-c",
            "All is well",
            "-f",
            image,
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("Acquiring lock"));
    assert_eq!(
        t.lab.lock_owner("sabre").as_deref(),
        Some(t.user(0)),
        "left held"
    );
    assert_eq!(t.mq(0, &["sem", "-signal", "sabre", "-k", "ci-5"]).code, 0);
}

#[test]
fn reservation_ends_with_input_and_powers_off() {
    let Some(t) = Lab::start(1) else { return };
    let r = t.mq(0, &["run", "-r", "-s", "sabre"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        "Acquiring lock for sabre\nLock acquired, we are allowed to run\n\
         This is a reservation. You now own sabre and\n\
         can do what you want. Press ctrl+d or enter here when done\n\
         Attempting to power off machine now that you are done\n"
    );
    assert!(t.lab.board_file("sabre", "powered-off"));
    t.assert_clean(0);
}

#[test]
fn keep_alive_console_takes_scripted_input() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("shell.elf", &["All is well in the universe"]);
    let mut child = t
        .command(
            0,
            &[
                "run",
                "-a",
                "-s",
                "sabre",
                "-c",
                "All is well in the universe",
                "-f",
                image.to_str().unwrap(),
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    while !seen.contains("All is well") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    stdin.write_all(b"hello board\n").unwrap();
    let mut line = String::new();
    while !line.contains("echo: hello board") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
    }
    // Ctrl-] detaches.
    stdin.write_all(&[0x1d]).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let pid: u32 = std::fs::read_to_string(t.lab.root.path().join("tftpboot/sabre/pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || !mq_testkit::alive(pid)),
        "the board's runner ended"
    );
    t.assert_clean(0);
}

#[test]
fn hostile_texts_arrive_intact_and_run_nothing() {
    let Some(t) = Lab::start(1) else { return };
    let marker = PathBuf::from("/tmp/mq-run-pwned");
    let _ = std::fs::remove_file(&marker);
    let completion = "it's $(touch /tmp/mq-run-pwned); `touch /tmp/mq-run-pwned` \"done\"";
    let error = "a;b && touch /tmp/mq-run-pwned\nsecond line";
    let image = t.image("h.elf", &[completion]);
    let r = t.mq(
        0,
        &[
            "run",
            "-s",
            "sabre",
            "-c",
            completion,
            "-e",
            error,
            "-k",
            "k'$(x)",
            "-f",
            image.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let args = t.lab.last_args("sabre");
    assert_eq!(args[3], completion);
    assert_eq!(args[7], error);
    assert!(!marker.exists());
    t.assert_clean(0);
}

fn spawn_and_wait_for(t: &Lab, args: &[&str], text: &str) -> (Child, String) {
    spawn_command_and_wait_for(t.command(0, args), text)
}

fn spawn_command_and_wait_for(mut command: Command, text: &str) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    while !seen.contains(text) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (child, seen)
}

#[test]
fn signals_during_wait_upload_and_console_leave_nothing_behind() {
    let Some(t) = Lab::start(2) else { return };
    let image = t.image(
        "long.elf",
        &[
            "Booting all finished, dropped to user space",
            "@sleep 30",
            "All is well in the universe",
        ],
    );
    let image = image.to_str().unwrap();
    let big = t.images.path().join("big.elf");
    std::fs::write(&big, vec![b'x'; 400 << 20]).unwrap();
    let big = big.to_str().unwrap();

    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // During the console.
        let (child, seen) = spawn_and_wait_for(
            &t,
            &["run", "-s", "sabre", "-c", "All is well", "-f", image],
            "dropped to user space",
        );
        assert!(seen.contains("Lock acquired"));
        mq_testkit::signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal:?}");
        assert!(
            eventually(Duration::from_secs(5), || t.lab.board_file("sabre", "hup")),
            "board stopped"
        );
        t.assert_clean(0);

        // During the upload.
        let (child, _) = spawn_and_wait_for(
            &t,
            &["run", "-s", "sabre", "-c", "All is well", "-f", big],
            "Lock acquired",
        );
        std::thread::sleep(Duration::from_millis(100));
        let signalled = Instant::now();
        mq_testkit::signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal:?}");
        // The 400 MB upload stops at once rather than running to its end.
        assert!(
            signalled.elapsed() < Duration::from_millis(1000),
            "{:?}",
            signalled.elapsed()
        );
        t.assert_clean(0);

        // During the lock wait.
        assert_eq!(t.mq(1, &["sem", "-wait", "sabre"]).code, 0);
        let (child, _) = spawn_and_wait_for(
            &t,
            &["run", "-s", "sabre", "-c", "All is well", "-f", image],
            "held by",
        );
        mq_testkit::signal(child.id(), signal);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{signal:?}");
        assert_eq!(t.mq(1, &["sem", "-signal", "sabre"]).code, 0);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(t.lab.lock_owner("sabre"), None);
        t.assert_clean(0);
    }
}

#[test]
fn a_connection_cut_mid_run_still_releases_the_lock() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image(
        "long.elf",
        &[
            "Booting all finished, dropped to user space",
            "@sleep 30",
            "All is well in the universe",
        ],
    );
    let sessions_before = mq_testkit::descendants_of(t.lab.server.pid());
    let (child, _) = spawn_and_wait_for(
        &t,
        &[
            "run",
            "-s",
            "sabre",
            "-c",
            "All is well",
            "-f",
            image.to_str().unwrap(),
        ],
        "dropped to user space",
    );
    // Kill the server side of this connection: mq must reconnect to clean up.
    for pid in mq_testkit::descendants_of(t.lab.server.pid()) {
        if !sessions_before.contains(&pid) {
            mq_testkit::signal(pid, Signal::SIGKILL);
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("connection"));
    assert_eq!(
        t.lab.lock_owner("sabre"),
        None,
        "released after reconnecting"
    );
    t.assert_clean(0);
}

#[test]
fn two_runs_on_one_system_serialize() {
    // Two users: one user's second run would be refused as already holding it.
    let Some(t) = Lab::start(2) else { return };
    // @sleep 3 lasts between 2 and 3 s (the board counts whole seconds).
    let image = t.image(
        "slow.elf",
        &["start", "@sleep 3", "All is well in the universe"],
    );
    let args = [
        "run",
        "-s",
        "sabre",
        "-c",
        "All is well",
        "-f",
        image.to_str().unwrap(),
    ];
    let started = Instant::now();
    let a = t.command(0, &args).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let b = t.command(1, &args).stdout(Stdio::piped()).spawn().unwrap();
    let a = a.wait_with_output().unwrap();
    let b = b.wait_with_output().unwrap();
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the second waited for the first"
    );
    assert!(String::from_utf8_lossy(&b.stdout).contains("Lock for sabre held by"));
    t.assert_clean(0);
    t.assert_clean(1);
}

#[test]
fn a_run_with_a_timeout_writes_a_reclaim_timeout_into_its_lock() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image(
        "slow.elf",
        &["Booting all finished, dropped to user space", "@sleep 20"],
    );
    let args = [
        "run",
        "-s",
        "sabre",
        "-c",
        "All is well",
        "-d",
        "5",
        "-f",
        image.to_str().unwrap(),
    ];
    let (child, _) = spawn_and_wait_for(&t, &args, "dropped to user space");
    // PROTOCOL.md's lock content: -d plus mq's margin, so a crashed client
    // cannot hold the board for ever.
    let content = std::fs::read_to_string(t.lab.base.join("sabre.lock")).unwrap();
    assert_eq!(content, (5 + mq_core::job::RECLAIM_MARGIN).to_string());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    t.assert_clean(0);
}

#[test]
fn an_image_named_with_a_leading_dash() {
    let Some(t) = Lab::start(1) else { return };
    t.image("-dash.elf", &["All is well in the universe"]);
    let out = t
        .command(
            0,
            &["run", "-s", "sabre", "-c", "All is well", "-f", "-dash.elf"],
        )
        .current_dir(t.images.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    t.assert_clean(0);
}

#[test]
fn sigkill_on_the_local_transport_ends_the_job_and_the_wait() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image(
        "long.elf",
        &[
            "Booting all finished, dropped to user space",
            "@sleep 30",
            "All is well in the universe",
        ],
    );
    // On the console: the board's terminal hangs up and the runner ends.
    let run = [
        "run",
        "-s",
        "sabre",
        "-c",
        "All is well",
        "-f",
        image.to_str().unwrap(),
    ];
    let (mut child, _) = spawn_command_and_wait_for(t.local(&run), "dropped to user space");
    let pid_file = t.lab.root.path().join("tftpboot/sabre/pid");
    let board: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    mq_testkit::signal(child.id(), Signal::SIGKILL);
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !mq_testkit::alive(board)),
        "the board's runner outlived a SIGKILLed mq"
    );
    assert!(
        t.lab.board_file("sabre", "hup"),
        "the runner saw its terminal hang up"
    );
    assert_eq!(
        t.local(&["sem", "-signal", "sabre", "-f"])
            .status()
            .unwrap()
            .code(),
        Some(0)
    );

    // While waiting: the wait dies with mq and never takes the lock later.
    let hold = t
        .local(&["sem", "-wait", "skylake", "-k", "a"])
        .status()
        .unwrap();
    assert_eq!(hold.code(), Some(0));
    let mut waiter = t
        .local(&["sem", "-wait", "skylake", "-k", "b"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = t.lab.base.join("skylake.lock").display().to_string();
    assert!(eventually(Duration::from_secs(10), || {
        !mq_testkit::processes_matching(&lock).is_empty()
    }));
    mq_testkit::signal(waiter.id(), Signal::SIGKILL);
    waiter.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || mq_testkit::processes_matching(
            &lock
        )
        .is_empty()),
        "the wait outlived a SIGKILLed mq: {:?}",
        mq_testkit::processes_matching(&lock)
    );
    assert_eq!(
        t.local(&["sem", "-signal", "skylake", "-k", "a"])
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !t.lab.base.join("skylake.lock").exists(),
        "the killed waiter never took the lock"
    );
}

#[test]
fn a_board_that_ignores_its_timeout_is_stopped_at_mq_s_own_deadline() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("deaf.elf", &["@deaf", "Booting", "@hang"]);
    let started = Instant::now();
    let r = t.run("sabre", "never printed", &[&image], &["-d", "1"]);
    let took = started.elapsed();
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[[Timeout]]"), "{}", r.stdout);
    assert!(r.stderr.contains("does not honour -t"), "{}", r.stderr);
    // -d 1 plus mq's documented 60 s margin.
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(90),
        "{took:?}"
    );
    assert!(eventually(Duration::from_secs(5), || t
        .lab
        .board_file("sabre", "hup")));
    t.assert_clean(0);
}

#[test]
fn every_text_the_old_client_accepts_is_accepted() {
    let Some(t) = Lab::start(1) else { return };
    // POSIX EREs as the runner greps them: braces that start no interval,
    // brackets, word boundaries; and a back-reference mq cannot follow.
    for (text, warned) in [
        (r#"{"result":"pass"}"#, false),
        ("{", false),
        (r"[[:digit:]]+ tests passed", false),
        (r"(a)\1", true),
    ] {
        // The test boards grep -F: the text itself ends their run.
        let image = t.image("ere.elf", &["booting", "42 tests passed", text]);
        let r = t.run("sabre", text, &[&image], &["-d", "20"]);
        assert_eq!(r.code, 0, "{text}: {}{}", r.stdout, r.stderr);
        assert_eq!(
            r.stderr.contains("back-reference"),
            warned,
            "{text}: {}",
            r.stderr
        );
    }
    t.assert_clean(0);
}

/// Spawns `mq run -a` on a board that completes and then echoes its input,
/// with mq's stdin a pipe kept open; returns once the completion text showed.
fn keep_alive_run(t: &Lab, mut command: Command) -> (Child, std::process::ChildStdin) {
    let image = t.image("alive.elf", &["booting", "All is well in the universe"]);
    command.args([
        "run",
        "-a",
        "-s",
        "sabre",
        "-c",
        "All is well",
        "-f",
        image.to_str().unwrap(),
    ]);
    command.stdin(Stdio::piped());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("All is well") {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("All is well"), "{seen}");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (child, stdin)
}

fn wait_within(child: Child, limit: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(took < limit, "took {took:?}: {stderr}");
    (out.status.code(), stderr)
}

#[test]
fn signals_and_detach_after_the_completion_text_end_promptly() {
    let Some(t) = Lab::start(1) else { return };
    let command = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        t.lab.configure(&mut c, t.user(0), t.home.path());
        c
    };
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let (child, _stdin) = keep_alive_run(&t, command());
        mq_testkit::signal(child.id(), signal);
        let (code, stderr) = wait_within(child, Duration::from_secs(5));
        assert_eq!(code, Some(130), "{signal:?}: {stderr}");
        assert!(
            stderr.contains("interrupted; sabre was stopped"),
            "{signal:?}: {stderr}"
        );
        t.assert_clean(0);
    }
    // Ctrl-] detaches: the run had completed.
    let (child, mut stdin) = keep_alive_run(&t, command());
    stdin.write_all(&[0x1d]).unwrap();
    stdin.flush().unwrap();
    let (code, stderr) = wait_within(child, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{stderr}");
    t.assert_clean(0);
}

#[test]
fn an_interrupt_is_an_interrupt_with_the_system_ssh_client_too() {
    let Some(t) = Lab::start(1) else { return };
    let control = tempfile::tempdir().unwrap();
    let command = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("mq"));
        t.lab.configure(&mut c, t.user(0), t.home.path());
        c.env("MQ_TRANSPORT", "openssh")
            .env("XDG_RUNTIME_DIR", control.path());
        // A group of its own, as a shell's job: a terminal's ^C goes to it.
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c
    };
    let (child, _stdin) = keep_alive_run(&t, command());
    // As a terminal's ^C does: the signal reaches mq's whole process group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGINT,
    )
    .unwrap();
    let (code, stderr) = wait_within(child, Duration::from_secs(8));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    t.assert_clean(0);
    // Stop the ControlMaster mq left for the next command (ControlPersist).
    let dir = control.path().display().to_string();
    for (pid, _) in mq_testkit::processes_matching(&dir) {
        mq_testkit::signal(pid, Signal::SIGTERM);
    }
}

#[test]
fn a_completion_text_of_40_kb_is_carried_to_the_board() {
    let Some(t) = Lab::start(1) else { return };
    let text: String = (0..4000).map(|i| format!("tok{i:05}-")).collect();
    assert!(text.len() > 35_000);
    let image = t.image("long.elf", &["booting", &text]);
    let r = t.run("sabre", &text, &[&image], &["-d", "30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let args = t.lab.last_args("sabre");
    assert!(args.iter().any(|a| a == &text), "the runner got -c intact");
    t.assert_clean(0);
}

#[test]
fn the_report_says_timeout_and_counts_lines_as_the_board_printed_them() {
    let Some(t) = Lab::start(1) else { return };
    let report = t.home.path().join("report.json");
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
    };
    // The board prints "[sabre] power on" first: the text is on line 4.
    let image = t.image("three.elf", &["one", "two", "All is well in the universe"]);
    let r = t.run(
        "sabre",
        "All is well",
        &[&image],
        &["--json-report", report.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = read();
    assert_eq!(json["outcome"]["matched"]["line_number"], 4, "{json:#}");

    let image = t.image("hang.elf", &["booting", "@hang"]);
    let r = t.run(
        "sabre",
        "never",
        &[&image],
        &["-d", "1", "--json-report", report.to_str().unwrap()],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    let json = read();
    assert_eq!(json["outcome"]["outcome"], "timeout", "{json:#}");
    t.assert_clean(0);
}

#[test]
fn the_json_report_is_the_documented_interface() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("one.elf", &["booting", "All is well in the universe"]);
    let report = t.home.path().join("report.json");
    let r = t.run(
        "x86_pool",
        "All is well",
        &[&image, &image],
        &["-k", "ci-42", "--json-report", report.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    // The README's table of fields, between its markers.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme
        .split("<!-- report-fields")
        .nth(1)
        .and_then(|t| t.split("<!-- /report-fields -->").next())
        .expect("the README documents the report");
    let mut documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    documented.sort();
    assert_eq!(keys, documented, "the report and the README's table differ");
    // The values are what the table says.
    assert_eq!(json["version"], 1);
    assert_eq!(json["pool"], "x86_pool");
    assert_eq!(json["key"], "ci-42");
    assert_eq!(json["user"], t.user(0));
    assert_eq!(json["host"], "lab");
    assert!(json["total_s"].as_f64().unwrap() > 0.0);
    assert!(json["lock_wait_s"].as_f64().unwrap() <= json["total_s"].as_f64().unwrap());
    for time in ["started_at", "ended_at"] {
        let text = json[time].as_str().unwrap();
        assert!(
            text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T',
            "{text}"
        );
    }
    assert!(json["started_at"].as_str() <= json["ended_at"].as_str());
    t.assert_clean(0);
}

#[test]
fn cleanup_that_leaves_something_is_status_6_and_says_what() {
    let Some(t) = Lab::start(1) else { return };
    let image = t.image("litter.elf", &["@litter", "All is well in the universe"]);
    let r = t.run("sabre", "All is well", &[&image], &[]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("still there"), "{}", r.stderr);
    assert_eq!(
        t.lab.lock_owner("sabre"),
        None,
        "the lock was released all the same"
    );
    // Tidy what the board left (as root).
    for dir in LabHost::files_of(Path::new("/tmp"), t.user(0)) {
        if dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("mq-run.")
        {
            let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&dir).status();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The host finishes the job: a client SIGKILLed right after the completion
/// text, or in the middle of the run, leaves no lock and no temporary files
/// on the host (over SSH, as users run it; nobody cleans up by hand).
#[test]
fn a_client_killed_at_any_moment_leaves_nothing_on_the_host() {
    let Some(t) = Lab::start(1) else { return };
    for (image_lines, wait_for) in [
        // Killed as the completion text shows: the host's finish races the
        // client's death, and whichever way it goes, nothing is left.
        (
            &["ELF-loader started", "All is well in the universe"][..],
            "All is well",
        ),
        // Killed in the middle: the hangup ends the runner, and the host's
        // guard cleans up after it.
        (
            &[
                "ELF-loader started",
                "@sleep 30",
                "All is well in the universe",
            ][..],
            "ELF-loader started",
        ),
    ] {
        let image = t.image("kill.elf", image_lines);
        let args = [
            "run",
            "-s",
            "sabre",
            "-c",
            "All is well",
            "-l",
            "/dev/null",
            "-f",
            image.to_str().unwrap(),
        ];
        let (mut child, _) = spawn_and_wait_for(&t, &args, wait_for);
        mq_testkit::signal(child.id(), Signal::SIGKILL);
        child.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(15), || t
                .lab
                .lock_owner("sabre")
                .is_none()),
            "the lock outlived a SIGKILLed mq ({wait_for})"
        );
        t.assert_clean(0);
    }
}

/// The images travel through the console's terminal, raw: every byte value,
/// ^C, ^D, ^S, ^Q, ^V, CR, DEL, and "~." at a line start arrive as sent, on
/// each transport (SSH, the system ssh client, local).
#[test]
fn images_arrive_byte_exact_through_the_console_terminal() {
    let Some(t) = Lab::start(1) else { return };
    let calls = t.lab.root.path().join("tftpboot/haswell3/calls");
    std::fs::create_dir_all(&calls).unwrap();
    mq_testkit::set_mode(&calls, 0o777);
    let kernel = t.image("kernel.elf", &["All is well in the universe"]);
    let mut root: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    root.extend_from_slice(b"\n~.\n~?\r\n\x03\x04\x11\x13\x16\x7f");
    let root_path = t.images.path().join("rootserver");
    std::fs::write(&root_path, &root).unwrap();
    let args = [
        "run",
        "-s",
        "haswell3",
        "-c",
        "All is well",
        "-f",
        kernel.to_str().unwrap(),
        "-f",
        root_path.to_str().unwrap(),
    ];
    let mut openssh = t.command(0, &args);
    openssh.env("MQ_TRANSPORT", "openssh");
    for (name, mut command) in [
        ("ssh", t.command(0, &args)),
        ("openssh", openssh),
        ("local", t.local(&args)),
    ] {
        let _ = std::fs::remove_dir_all(&calls);
        std::fs::create_dir_all(&calls).unwrap();
        mq_testkit::set_mode(&calls, 0o777);
        let run = Run::of(&mut command);
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        let call = std::fs::read_dir(&calls)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert_eq!(
            std::fs::read(call.join("kernel")).unwrap(),
            std::fs::read(&kernel).unwrap(),
            "{name}"
        );
        let arrived = std::fs::read(call.join("rootserver")).unwrap();
        assert!(
            arrived == root,
            "{name}: {} bytes arrived of {}",
            arrived.len(),
            root.len()
        );
    }
    t.assert_clean(0);
}
