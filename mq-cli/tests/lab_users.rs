//! mq's board runner on a lab host many users share (issue 26, cases 3, 6,
//! 7 and 8): a state directory other users write into (links, FIFOs,
//! unreadable locks), `--shutdown` with something other than a runner
//! holding a board's lock, power switches that hang or fail, runners killed
//! by SIGKILL. Boards are `command` boards whose power and console are
//! files and `sleep`s, run as real Unix users through `su`.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mq_testkit::{eventually, TestUser};

/// A hand-written lab in a directory of its own (0755, root's): boards
/// `bench1`..`bench3` whose power goes to `power` in `board-state`, whose
/// console prints the image and then sleeps (see [`HandLab::console`]:
/// each board's console can be found by its command line).
struct HandLab {
    dir: tempfile::TempDir,
    /// Sets this lab's console `sleep`s apart from other tests' labs.
    id: usize,
}

impl HandLab {
    fn new(extra: &str) -> HandLab {
        let dir = tempfile::Builder::new()
            .prefix("mq-hand-lab-")
            .tempdir()
            .unwrap();
        mq_testkit::set_mode(dir.path(), 0o755);
        static LABS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let id = LABS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let lab = HandLab { dir, id };
        let state = lab.board_state();
        std::fs::create_dir(&state).unwrap();
        mq_testkit::set_mode(&state, 0o777);
        std::fs::write(state.join("power"), "").unwrap();
        mq_testkit::set_mode(&state.join("power"), 0o666);
        let s = state.display();
        let mut conf = String::new();
        for n in 1..=3 {
            conf += &format!(
                "[board bench{n}]\nkind = command\n\
                 power_on = echo on >> {s}/power\n\
                 power_off = echo off >> {s}/power\n\
                 console = cat {{kernel}}; {}; :\n{extra}\n",
                lab.console(n)
            );
        }
        std::fs::write(lab.conf(), conf).unwrap();
        let image = lab.image();
        std::fs::write(&image, "booting\nAll is well\n").unwrap();
        mq_testkit::set_mode(&image, 0o644);
        lab
    }

    /// The lab with its state directory made by the admin, shared (1777).
    fn shared(extra: &str) -> HandLab {
        let lab = HandLab::new(extra);
        std::fs::create_dir(lab.state()).unwrap();
        mq_testkit::set_mode(&lab.state(), 0o1777);
        lab
    }

    /// The `sleep` of board `bench{n}`'s console.
    fn console(&self, n: usize) -> String {
        format!("sleep 4{}.{n}", self.id)
    }

    /// Whether board `bench{n}`'s console runs.
    fn console_runs(&self, n: usize) -> bool {
        !mq_testkit::processes_matching(&self.console(n)).is_empty()
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("lab.conf")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn board_state(&self) -> PathBuf {
        self.dir.path().join("board-state")
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("image")
    }

    fn power(&self) -> String {
        std::fs::read_to_string(self.board_state().join("power")).unwrap_or_default()
    }

    /// `mq board reboot` of `board` as `user` with `args`.
    fn reboot_as(&self, user: &str, board: &str, args: &str) -> Command {
        let script = format!(
            "exec {} board reboot --lab {} --board {board} {args}",
            mq_transport::quote(&assert_cmd::cargo::cargo_bin("mq").display().to_string()),
            mq_transport::quote(&self.conf().display().to_string()),
        );
        mq_testkit::su(user, &script)
    }

    /// `-c TEXT -t 60 -k IMAGE`.
    fn args(&self, text: &str) -> String {
        format!(
            "-c '{text}' -t 60 -k {}",
            mq_transport::quote(&self.image().display().to_string())
        )
    }

    /// A run of `board` as `user` that completes at once.
    fn run_as(&self, user: &str, board: &str) -> (i32, String, String) {
        let args = format!(
            "-c 'All is well' -t 20 -k {}",
            mq_transport::quote(&self.image().display().to_string())
        );
        mq_testkit::output(self.reboot_as(user, board, &args))
    }
}

fn users(n: usize) -> Option<Vec<TestUser>> {
    (0..n).map(|_| TestUser::create("run")).collect()
}

#[test]
fn a_state_directory_every_user_shares_and_nobody_can_plant_a_lock_in() {
    let Some(u) = users(3) else { return };
    let (alice, bob, mallory) = (&u[0].name, &u[1].name, &u[2].name);
    let lab = HandLab::new("");
    // A hand-written lab has no state/ yet, and a user cannot make it in
    // the admin's directory: said with the fix, before the board is touched.
    let (code, _, err) = lab.run_as(alice, "bench1");
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains("The lab admin makes it once (mkdir -m 1777"),
        "{err}"
    );
    assert_eq!(lab.power(), "");
    // The admin's own first run makes it, shared; every user's runner can
    // then use it.
    let (code, _, err) = lab.run_as("root", "bench1");
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::metadata(lab.state()).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o1777,
        "shared and sticky"
    );
    let (code, _, err) = lab.run_as(bob, "bench1");
    assert_eq!(code, 0, "another user's runner takes the board: {err}");

    // What a hostile user can plant there: an unreadable lock, a FIFO, a
    // link. Each is refused at once, naming its owner and the fix; nobody
    // blocks on the FIFO and nothing follows the link.
    let plant = |script: &str| {
        let out = mq_testkit::su(mallory, script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let state = lab.state().display().to_string();
    plant(&format!("umask 077; : > {state}/bench2.lock"));
    plant(&format!("mkfifo {state}/bench3.lock"));
    let started = Instant::now();
    let (code, _, err) = lab.run_as(bob, "bench2");
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains(&format!("belongs to user {mallory} with mode 0600")),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains(&format!("rm {state}/bench2.lock")),
        "the fix: {err}"
    );
    let (code, _, err) = lab.run_as(bob, "bench3");
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains(&format!(
            "not a regular file but a FIFO made by user {mallory}"
        )),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "nothing blocked"
    );
    std::fs::remove_file(lab.state().join("bench3.lock")).unwrap();
    let target = lab.dir.path().join("bob-owns-this");
    plant(&format!("ln -s {} {state}/bench3.lock", target.display()));
    let (code, _, err) = lab.run_as(bob, "bench3");
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("is a symbolic link made by"), "{err}");
    assert!(!target.exists(), "a runner followed the link");
    assert_eq!(
        lab.power(),
        "off\non\noff\n".repeat(2),
        "no planted lock touched a board"
    );

    // A state directory the first runner made 0755 (as before): the real
    // error, EACCES, with the directory's owner and the fix, not ENOENT.
    std::fs::remove_dir_all(lab.state()).unwrap();
    std::fs::create_dir(lab.state()).unwrap();
    mq_testkit::set_mode(&lab.state(), 0o755);
    mq_testkit::sh("chown", &[alice, &state]);
    let (code, _, err) = lab.run_as(bob, "bench1");
    assert_eq!(code, 6, "{err}");
    assert!(!err.contains("No such file"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains(&format!("is mode 0755, owned by user {alice}")),
        "{err}"
    );
    assert!(err.contains("chmod 1777"), "{err}");
    // The admin's layout: the directory is the admin's, with a lock made
    // for the board; every user runs it and nobody can plant anything.
    let lock = lab.state().join("bench1.lock");
    std::fs::write(&lock, "").unwrap();
    mq_testkit::set_mode(&lock, 0o644);
    let (code, _, err) = lab.run_as(bob, "bench1");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lab.run_as(alice, "bench1");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::metadata(&lock).unwrap().uid(),
        0,
        "still the admin's"
    );
}

#[test]
fn shutdown_signals_only_a_runner_of_its_own_board() {
    let Some(u) = users(1) else { return };
    let alice = &u[0].name;
    let lab = HandLab::new("");
    let (code, _, err) = lab.run_as("root", "bench1");
    assert_eq!(code, 0, "{err}");
    // Something else holds the board's lock: util-linux's flock(1) running
    // a sleep. --shutdown names it and leaves it alone.
    let lock = lab.state().join("bench1.lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "41.9"])
        .spawn()
        .unwrap();
    let held = || mq_lab::boardlock::lock_holder(&lock).is_some();
    assert!(eventually(Duration::from_secs(5), held));
    let (code, _, err) = mq_testkit::output(lab.reboot_as(alice, "bench1", "--shutdown"));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("not a runner of board bench1"), "{err}");
    assert!(err.contains("not signalled"), "{err}");
    assert_eq!(holder.try_wait().unwrap(), None, "flock was signalled");
    assert!(!mq_testkit::processes_matching("sleep 41.9").is_empty());
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = Command::new("pkill").args(["-f", "sleep 41.9"]).status();

    // A real runner of bench1 is stopped, and its board powered off.
    let args = lab.args("never printed");
    let mut runner = lab.reboot_as(alice, "bench1", &args).spawn().unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        lab.console_runs(1)
    }));
    let (code, out, err) = mq_testkit::output(lab.reboot_as(alice, "bench1", "--shutdown"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("powered off"), "{out}");
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the runner ended as interrupted");
    assert!(!lab.console_runs(1));
    assert!(lab.power().ends_with("on\noff\noff\n"), "{}", lab.power());
}

#[test]
fn a_power_switch_that_hangs_ends_the_run_and_signals_end_it_in_every_phase() {
    let Some(u) = users(1) else { return };
    let alice = &u[0].name;
    let lab = HandLab::shared("command_timeout = 2");
    let conf = std::fs::read_to_string(lab.conf()).unwrap();
    let s = lab.board_state().display().to_string();
    // bench1's switch never answers power-on; bench2's never answers at all.
    let conf = conf
        .replacen(&format!("power_on = echo on >> {s}/power"), "power_on = sleep 42.1", 1)
        .replace(
            &format!("[board bench2]\nkind = command\npower_on = echo on >> {s}/power\npower_off = echo off >> {s}/power"),
            "[board bench2]\nkind = command\npower_on = sleep 42.2\npower_off = sleep 42.2",
        );
    std::fs::write(lab.conf(), &conf).unwrap();
    let started = Instant::now();
    let (code, _, err) = lab.run_as(alice, "bench1");
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("`sleep 42.1` did not finish within 2 s (command_timeout)"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let left = mq_testkit::processes_matching("sleep 42.1");
    assert!(
        left.is_empty(),
        "{left:?} {}",
        mq_testkit::sh("ps", &["-eo", "pid,ppid,pgid,stat,user,etime,args"])
    );
    assert!(!lab.console_runs(1), "the console was stopped");
    assert_eq!(lab.power(), "off\noff\n", "powered off again");
    // A board whose power-off hangs too: still bounded, and said.
    let started = Instant::now();
    let (code, _, err) = lab.run_as(alice, "bench2");
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("may still be on"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // SIGTERM (and --shutdown, which sends it) while the switch hangs: the
    // runner ends at once, as interrupted, with the board off.
    std::fs::write(
        lab.conf(),
        conf.replace("command_timeout = 2", "command_timeout = 300"),
    )
    .unwrap();
    let args = lab.args("All is well");
    let mut runner = lab.reboot_as(alice, "bench1", &args).spawn().unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        !mq_testkit::processes_matching("sleep 42.1").is_empty()
    }));
    let started = Instant::now();
    let (code, out, err) = mq_testkit::output(lab.reboot_as(alice, "bench1", "--shutdown"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let left = mq_testkit::processes_matching("sleep 42.1");
    assert!(left.is_empty(), "{left:?}");
    assert!(lab.power().ends_with("off\noff\n"), "{}", lab.power());
}

#[test]
fn a_runner_killed_by_sigkill_leaves_no_board_process_behind() {
    let Some(u) = users(1) else { return };
    let alice = &u[0].name;
    let lab = HandLab::shared("");
    let args = lab.args("never printed");
    let mut su = lab.reboot_as(alice, "bench1", &args).spawn().unwrap();
    let lock = lab.state().join("bench1.lock");
    assert!(eventually(Duration::from_secs(10), || {
        mq_lab::boardlock::lock_holder(&lock).is_some()
            && lab.console_runs(1)
            && lab.power() == "off\non\n"
    }));
    // The console is a shell running sleep as its child: the kernel's
    // parent-death signal reaches the shell only.
    let runner = mq_lab::boardlock::lock_holder(&lock).unwrap() as u32;
    mq_testkit::signal(runner, nix::sys::signal::Signal::SIGKILL);
    let _ = su.wait();
    assert!(
        eventually(Duration::from_secs(5), || !lab.console_runs(1)),
        "the board's console outlived its runner: {}",
        mq_testkit::sh("ps", &["-eo", "pid,ppid,pgid,stat,user,etime,args"])
    );
    // The runner itself could not power off; the host's finish does that
    // (see real_lab.rs). Its --shutdown, with nobody holding the board:
    let (code, out, err) = mq_testkit::output(lab.reboot_as(alice, "bench1", "--shutdown"));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(lab.power(), "off\non\noff\n");
}

#[test]
fn bad_input_to_a_runner_is_refused_before_the_board_is_touched() {
    let lab = HandLab::shared("");
    let conf = std::fs::read_to_string(lab.conf()).unwrap();
    let dir = lab.dir.path();
    let refused = |args: &str, says: &str| {
        let started = Instant::now();
        let (code, out, err) = mq_testkit::output(lab.reboot_as("root", "bench1", args));
        assert_eq!(code, 6, "{args}: {out}{err}");
        assert!(err.contains(says), "{args}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{args}");
        assert_eq!(lab.power(), "", "{args}: the board was touched");
    };
    let image = mq_transport::quote(&lab.image().display().to_string());

    // A template whose placeholder sits inside double quotes behind `\"`:
    // the shell would expand `$(...)` in the value there.
    std::fs::write(
        lab.conf(),
        conf.replacen(
            "console = cat {kernel};",
            "console = echo \"\\\"{kernel}\"; cat {kernel};",
            1,
        ),
    )
    .unwrap();
    let sneaky = dir.join("$(touch PWNED)");
    std::fs::write(&sneaky, "All is well\n").unwrap();
    let sneaky = mq_transport::quote(&sneaky.display().to_string());
    refused(
        &format!("-c 'All is well' -t 5 -k {sneaky}"),
        "inside double quotes",
    );
    assert!(!dir.join("PWNED").exists() && !Path::new("PWNED").exists());

    // A misspelt placeholder, refused with its line.
    std::fs::write(lab.conf(), conf.replacen("cat {kernel}", "cat {kernal}", 1)).unwrap();
    refused(
        &format!("-c x -t 5 -k {image}"),
        "lab.conf:5: console: unknown placeholder {kernal}",
    );
    std::fs::write(lab.conf(), &conf).unwrap();

    // A path that is not UTF-8 would reach the template as another path.
    let raw = dir.join(std::ffi::OsStr::from_bytes(b"img\xff"));
    std::fs::write(&raw, "All is well\n").unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
    cmd.args(["board", "reboot", "--lab"])
        .arg(lab.conf())
        .args(["--board", "bench1", "-c", "x", "-t", "5", "-k"])
        .arg(&raw);
    let (code, _, err) = mq_testkit::output(cmd);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("a path must be UTF-8 text"), "{err}");

    // A FIFO as the log would hold the board's lock while nobody reads it.
    let fifo = dir.join("log.fifo");
    mq_testkit::sh("mkfifo", &[fifo.to_str().unwrap()]);
    let mut reader = Command::new("sh")
        .arg("-c")
        .arg(format!("exec cat {} > /dev/null", fifo.display()))
        .spawn()
        .unwrap();
    refused(
        &format!("-c x -t 5 -k {image} -l {}", fifo.display()),
        "the log must be a regular file",
    );
    let _ = reader.kill();
    let _ = reader.wait();

    // A back-reference grep -E follows and mq's matcher cannot: the run
    // would only ever time out.
    refused(
        &format!("-c '(well) \\1' -t 5 -k {image}"),
        "back-reference",
    );
    // Statuses are the runner's: a bad -t is a run that cannot start.
    refused(&format!("-c x -t abc -k {image}"), "-t abc");
    // The client's configuration is not the runner's business: a bad one
    // changes nothing.
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mq"));
    cmd.args(["board", "reboot", "--lab"])
        .arg(lab.conf())
        .args(["--board", "bench1", "-c", "x", "-t", "abc", "-k"])
        .arg(lab.image())
        .env("MQ_TRANSPORT", "bogus")
        .env("MQ_INVENTORY", "/nonexistent");
    let (code, _, err) = mq_testkit::output(cmd);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("-t abc"), "{err}");
}
