//! The board runner: PROTOCOL.md's `/tftpboot/MACHINE/reboot`, for the
//! boards of a lab file.
//!
//! It powers the board on with the images, watches its serial console with
//! mq-console (completion, error, timeout, markers), copies every byte to its
//! stdout and to the log as it arrives, prints `[[Timeout]]` (or `[[Boot
//! timeout]]`) when time runs out, and always powers the board off (kills
//! QEMU) when it ends: on completion, error, timeout, any of SIGINT, SIGTERM
//! and SIGHUP (a hung-up terminal), and, for QEMU, even when the runner
//! itself is killed (the kernel's parent-death signal).
//!
//! Exit codes are mq-console's: 0 completed, 3 error text, 4 timeout, 5 the
//! console ended first, 6 the board could not be run, 130 interrupted.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_console::{
    markers, ConsoleSource, KeepAlive, MatcherBuilder, ReaderSource, Session, SessionOptions,
    SourceRead, EXIT_INFRASTRUCTURE,
};
use mq_transport::quote;

use crate::labfile::{Board, BoardKind};

/// The options PROTOCOL.md gives `reboot`.
#[derive(Debug, Clone, Default)]
pub struct RebootArgs {
    /// `-L`: boot Linux (kernel + initrd, with the board's command line).
    pub linux: bool,
    /// `-b FILE`: a device tree.
    pub dtb: Option<PathBuf>,
    /// `--bitstream FILE`: an FPGA bitstream.
    pub bitstream: Option<PathBuf>,
    /// `-l FILE`: the log, written as output arrives.
    pub log: Option<PathBuf>,
    /// `-c TEXT`: the completion text.
    pub completion: Option<String>,
    /// `-t SECONDS`: the timeout (`None`: -1, none).
    pub timeout: Option<u64>,
    /// `-e TEXT`: the error text.
    pub error: Option<String>,
    /// `-k FILE`: the kernel (first image).
    pub kernel: Option<PathBuf>,
    /// `-u FILE`: the root server / initrd (second image).
    pub rootserver: Option<PathBuf>,
    /// `-a` (with `-i`): keep the console after completion, interactive.
    pub keep_alive: bool,
    /// `--shutdown`: power the board off and exit.
    pub shutdown: bool,
}

/// Why a board could not be run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunnerError(pub String);

/// Runs `board`; returns the exit code. `state` holds the pid of a running
/// emulator (for `--shutdown`).
pub fn reboot(board: &Board, args: &RebootArgs, state: &Path) -> Result<i32, RunnerError> {
    let pid_file = state.join(format!("{}.pid", board.name));
    if args.shutdown {
        shutdown(board, &pid_file)?;
        println!("[{}] powered off", board.name);
        return Ok(0);
    }
    let kernel = args
        .kernel
        .as_ref()
        .ok_or_else(|| RunnerError("reboot needs -k KERNEL".into()))?;
    for file in [
        Some(kernel),
        args.rootserver.as_ref(),
        args.dtb.as_ref(),
        args.bitstream.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !file.is_file() {
            return Err(RunnerError(format!("no such image: {}", file.display())));
        }
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupt));
    }
    let mut console = match &board.kind {
        BoardKind::Qemu { program, .. } => {
            let cmd = qemu_command(board, args).expect("a qemu board");
            let mut console = BoardConsole::spawn(cmd, args.keep_alive)
                .map_err(|e| RunnerError(format!("cannot start {program}: {e}")))?;
            // An emulator has nothing to save: power it off at once.
            console.gentle = false;
            std::fs::write(&pid_file, console.child.id().to_string())
                .map_err(|e| RunnerError(format!("{}: {e}", pid_file.display())))?;
            console
        }
        BoardKind::Command {
            power_on,
            power_off,
            stage,
            console,
        } => {
            let fill = |template: &str| fill(template, board, args);
            let _ = sh(&fill(power_off));
            if let Some(stage) = stage {
                sh(&fill(stage))
                    .map_err(|e| RunnerError(format!("staging the images failed: {e}")))?;
            }
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(fill(console));
            let attached = BoardConsole::spawn(cmd, args.keep_alive)
                .map_err(|e| RunnerError(format!("cannot attach the console: {e}")))?;
            if let Err(e) = sh(&fill(power_on)) {
                let _ = sh(&fill(power_off));
                return Err(RunnerError(format!("powering on failed: {e}")));
            }
            attached
        }
    };

    let mut matcher = MatcherBuilder::new().markers(&markers::sel4_pairs());
    if let Some(c) = args.completion.as_deref().filter(|c| !c.is_empty()) {
        matcher = matcher.completion_text(c);
    }
    if let Some(e) = args.error.as_deref().filter(|e| !e.is_empty()) {
        matcher = matcher.error_text(e);
    }
    let matcher = matcher.build().map_err(|e| RunnerError(e.to_string()))?;
    let mut log = match &args.log {
        Some(path) => {
            Some(File::create(path).map_err(|e| RunnerError(format!("{}: {e}", path.display())))?)
        }
        None => None,
    };
    let keep_alive = args.keep_alive.then(|| KeepAlive {
        input: mq_transport::spawn_reader(Box::new(io::stdin())),
        detach: None,
    });
    let options = SessionOptions {
        timeout: args.timeout.map(Duration::from_secs),
        boot_timeout: board.boot_timeout.map(Duration::from_secs),
        keep_alive,
        interrupt: Some(interrupt),
        // Let the completion line end before the board goes off.
        line_grace: Some(Duration::from_secs(1)),
        ..SessionOptions::default()
    };
    let started = Instant::now();
    let mut session = Session::new(matcher, options).tee(io::stdout());
    if let Some(file) = log.as_mut() {
        session = session.tee(file);
    }
    let report = session.run(&mut console);
    // Whatever happened, the board goes off.
    console.stop();
    if let BoardKind::Command { power_off, .. } = &board.kind {
        let _ = sh(&fill(power_off, board, args));
    }
    let _ = std::fs::remove_file(&pid_file);
    let report = report.map_err(|e| RunnerError(format!("console: {e}")))?;
    if let Some(marker) = report.outcome.ci_marker() {
        let line = format!("{marker}\r\n");
        print!("{line}");
        if let Some(file) = log.as_mut() {
            let _ = file.write_all(line.as_bytes());
        }
    }
    let _ = io::stdout().flush();
    eprintln!(
        "[{}] {} after {:.1} s",
        board.name,
        report.outcome.summary(),
        started.elapsed().as_secs_f64()
    );
    Ok(report.outcome.exit_code())
}

/// The emulator command line of a `qemu` board for `args` (`None` for other
/// kinds): the board's options, no display, the console on stdio, `-k` as
/// `-kernel`, `-u` as `-initrd`, `-b` as `-dtb`, with `-L` the board's
/// kernel command line.
pub fn qemu_command(board: &Board, args: &RebootArgs) -> Option<Command> {
    let BoardKind::Qemu {
        program,
        options,
        append,
    } = &board.kind
    else {
        return None;
    };
    let mut cmd = Command::new(program);
    cmd.args(options).args([
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    if let Some(kernel) = &args.kernel {
        cmd.arg("-kernel").arg(kernel);
    }
    if let Some(root) = &args.rootserver {
        cmd.arg("-initrd").arg(root);
    }
    if let (true, Some(append)) = (args.linux, append) {
        cmd.arg("-append").arg(append);
    }
    if let Some(dtb) = &args.dtb {
        cmd.arg("-dtb").arg(dtb);
    }
    Some(cmd)
}

/// The board's serial console: a child process's stdout (and stdin).
struct BoardConsole {
    child: Child,
    output: ReaderSource,
    input: Option<ChildStdin>,
    /// Stop with SIGTERM first (a console program); else SIGKILL at once.
    gentle: bool,
}

impl BoardConsole {
    fn spawn(mut cmd: Command, interactive: bool) -> io::Result<BoardConsole> {
        cmd.stdin(if interactive {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        // SAFETY: runs in the forked child before exec and only calls
        // prctl(2), which is async-signal-safe and touches no shared memory.
        // It makes the kernel kill the board's process if this runner dies
        // in any way, even SIGKILL, so no emulator outlives its run.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Its own process group, so that stopping it stops whatever it started.
        cmd.process_group(0);
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let input = child.stdin.take();
        Ok(BoardConsole {
            child,
            output: ReaderSource::new(stdout),
            input,
            gentle: true,
        })
    }

    /// Stops the process and its group: SIGTERM, then SIGKILL if it lingers
    /// (or SIGKILL at once).
    fn stop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if self.gentle {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl ConsoleSource for BoardConsole {
    fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<SourceRead> {
        self.output.read(buf, timeout)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.input {
            Some(input) => input.write_all(data).and_then(|()| input.flush()),
            None => Ok(()),
        }
    }

    fn status(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }
}

/// A template with `{board}`, `{kernel}`, ... replaced by quoted values.
fn fill(template: &str, board: &Board, args: &RebootArgs) -> String {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| quote(""), |p| quote(&p.display().to_string()))
    };
    template
        .replace("{board}", &quote(&board.name))
        .replace("{kernel}", &path(&args.kernel))
        .replace("{rootserver}", &path(&args.rootserver))
        .replace("{dtb}", &path(&args.dtb))
        .replace("{bitstream}", &path(&args.bitstream))
        .replace("{log}", &path(&args.log))
}

fn sh(command: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{command}`: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn shutdown(board: &Board, pid_file: &Path) -> Result<(), RunnerError> {
    match &board.kind {
        BoardKind::Qemu { .. } => {
            if let Some(pid) = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = std::fs::remove_file(pid_file);
            }
            Ok(())
        }
        BoardKind::Command { power_off, .. } => {
            sh(&fill(power_off, board, &RebootArgs::default())).map_err(RunnerError)
        }
    }
}

/// The exit code for a board that could not be run.
pub const EXIT_CANNOT_RUN: i32 = EXIT_INFRASTRUCTURE;
