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
    ConsoleSource, KeepAlive, MatcherBuilder, ReaderSource, Session, SessionOptions, SourceRead,
};
use mq_shell::quote;

use crate::boardlock::{self, lock_holder, process_owner, BoardLock, Pinned};
use crate::command::{self, CommandError};
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

/// The longest `-t` or `boot_timeout` the runner takes (ten years).
pub const MAX_TIMEOUT_SECONDS: u64 = crate::labfile::MAX_SECONDS;

/// Runs `board`; returns the exit code. `state` is the lab's directory of
/// board locks: a runner holds `state/BOARD.lock` (an exclusive `flock`) for
/// as long as it runs, so a second runner on the same board is refused at
/// once, and `--shutdown` stops exactly the runner the kernel says holds it.
///
/// Everything is checked before the board is touched (images, texts,
/// templates, timeouts, the log); once the board is powered on, it is
/// powered off on every path.
pub fn reboot(board: &Board, args: &RebootArgs, state: &Path) -> Result<i32, RunnerError> {
    if args.shutdown {
        return shutdown(board, state);
    }
    check_args(board, args)?;
    let matcher = MatcherBuilder::board_run(args.completion.as_deref(), args.error.as_deref())
        .build()
        .map_err(|e| RunnerError(e.to_string()))?;
    // A text mq's matcher cannot follow (a back-reference) would never
    // match here, and the run would end as a timeout: refused instead.
    if let Some(note) = matcher.notes().first() {
        return Err(RunnerError(format!(
            "{note}; mq's board runner has no other verdict: use a text without it"
        )));
    }
    let templates = Templates::fill(board, args)?;
    // From here on SIGINT, SIGTERM and SIGHUP end the run in every phase:
    // powering on and staging too, not only once the console runs.
    let interrupt = mq_console::interrupt_on_signals();
    let _hold = BoardLock::take(state, &board.name)?;
    let mut log = match &args.log {
        Some(path) => Some(CappedLog::new(open_log(path)?, board.log_limit)),
        None => None,
    };
    let mut console = match power_on(board, args, templates.as_ref(), &interrupt) {
        Ok(console) => console,
        Err(PowerOnError::Interrupted) => {
            eprintln!(
                "[{}] interrupted while powering on; the board is off",
                board.name
            );
            return Ok(mq_console::EXIT_INTERRUPTED);
        }
        Err(PowerOnError::Failed(e)) => return Err(e),
    };
    let started = Instant::now();
    let mut session =
        Session::new(matcher, session_options(board, args, interrupt)).tee(io::stdout());
    if let Some(file) = log.as_mut() {
        session = session.tee(file);
    }
    let report = session.run(&mut console);
    // A board program that failed without a byte of console (QEMU refusing
    // its options, a console command that cannot start) could not be run.
    let failed_silently = match &report {
        Ok(r) if r.bytes == 0 && matches!(r.outcome, mq_console::Outcome::SourceClosed { .. }) => {
            console
                .ended_within(Duration::from_secs(2))
                .filter(|&s| s != 0)
        }
        _ => None,
    };
    // Whatever happened, the board goes off.
    let off = power_off(&mut console, board, templates.as_ref());
    if let Some(status) = failed_silently {
        return Err(RunnerError(format!(
            "the board's program ended with status {status} before any console output"
        )));
    }
    let report = report.map_err(|e| RunnerError(format!("console: {e}")))?;
    finish_log(&report.outcome, off.err(), log);
    eprintln!(
        "[{}] {} after {:.1} s",
        board.name,
        report.outcome.summary(),
        started.elapsed().as_secs_f64()
    );
    Ok(report.outcome.exit_code())
}

/// Opens the `-l` log: a new or existing regular file only (a FIFO there
/// would block the runner with the board's lock held).
fn open_log(path: &Path) -> Result<File, RunnerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: &dyn std::fmt::Display| RunnerError(format!("{}: {e}", path.display()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| failed(&e))?;
    let meta = file.metadata().map_err(|e| failed(&e))?;
    if !meta.is_file() {
        return Err(failed(&"the log must be a regular file"));
    }
    file.set_len(0).map_err(|e| failed(&e))?;
    Ok(file)
}

/// The images exist and the timeouts are in range.
fn check_args(board: &Board, args: &RebootArgs) -> Result<(), RunnerError> {
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
    // Templates get paths as text: one that is not UTF-8 would reach them
    // changed, and name another file.
    for path in [
        args.kernel.as_ref(),
        args.rootserver.as_ref(),
        args.dtb.as_ref(),
        args.bitstream.as_ref(),
        args.log.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if path.to_str().is_none() {
            return Err(RunnerError(format!(
                "{}: a path must be UTF-8 text",
                path.display()
            )));
        }
    }
    for (what, seconds) in [("-t", args.timeout), ("boot_timeout", board.boot_timeout)] {
        if seconds.is_some_and(|s| s > MAX_TIMEOUT_SECONDS) {
            return Err(RunnerError(format!(
                "{what} is at most {MAX_TIMEOUT_SECONDS} seconds"
            )));
        }
    }
    Ok(())
}

/// The board's timeouts, keep-alive input from stdin, interrupts.
fn session_options(board: &Board, args: &RebootArgs, interrupt: Arc<AtomicBool>) -> SessionOptions {
    SessionOptions {
        timeout: args.timeout.map(Duration::from_secs),
        boot_timeout: board.boot_timeout.map(Duration::from_secs),
        keep_alive: args.keep_alive.then(|| KeepAlive {
            input: mq_console::spawn_reader(Box::new(io::stdin())),
            detach: None,
        }),
        interrupt: Some(interrupt),
        // Let the completion line end before the board goes off.
        line_grace: Some(Duration::from_secs(1)),
        ..SessionOptions::default()
    }
}

/// The outcome's marker line (`[[Timeout]]`, ...) and, when the board
/// could not be powered off, [`POWER_OFF_FAILED`] with the reason, on the
/// console and in the log; then the log's end.
fn finish_log(outcome: &mq_console::Outcome, off: Option<String>, mut log: Option<CappedLog>) {
    let lines = [
        outcome.ci_marker().map(str::to_string),
        off.map(|why| format!("{POWER_OFF_FAILED} {why}")),
    ];
    for line in lines.into_iter().flatten() {
        let line = format!("{line}\r\n");
        print!("{line}");
        if let Some(file) = log.as_mut() {
            let _ = file.write_all(line.as_bytes());
        }
    }
    let _ = io::stdout().flush();
    if let Some(log) = log {
        log.finish();
    }
}

/// The line a runner prints when the board may still be on after its run:
/// mq counts the run as a failure of the lab (an infrastructure failure)
/// whatever the test printed.
pub const POWER_OFF_FAILED: &str = "[[Power off failed]]";

/// The runner's log: written as the console arrives, up to `limit` bytes;
/// past that only the last [`LOG_TAIL`] bytes are kept in memory, and at the
/// end a line says how much was left out, followed by that tail. A console
/// that prints for ever cannot fill the disk.
struct CappedLog {
    file: File,
    limit: u64,
    written: u64,
    dropped: u64,
    tail: std::collections::VecDeque<u8>,
}

/// How much of the end of a capped log is kept.
const LOG_TAIL: usize = 1 << 20;

impl CappedLog {
    fn new(file: File, limit: u64) -> CappedLog {
        CappedLog {
            file,
            limit,
            written: 0,
            dropped: 0,
            tail: std::collections::VecDeque::new(),
        }
    }

    /// Writes the note and the tail of a capped log.
    fn finish(mut self) {
        if self.tail.is_empty() {
            return;
        }
        let note = format!(
            "\r\n[[mq: the log is capped at {} bytes (log_limit); {} bytes were left out; the last {} bytes follow]]\r\n",
            self.limit,
            self.dropped,
            self.tail.len()
        );
        let (a, b) = self.tail.as_slices();
        let _ = self
            .file
            .write_all(note.as_bytes())
            .and_then(|()| self.file.write_all(a))
            .and_then(|()| self.file.write_all(b));
    }
}

impl Write for CappedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.written) as usize;
        let (now, later) = buf.split_at(room.min(buf.len()));
        if !now.is_empty() {
            self.file.write_all(now)?;
            self.written += now.len() as u64;
        }
        self.tail.extend(later);
        let excess = self.tail.len().saturating_sub(LOG_TAIL);
        if excess > 0 {
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A `command` board's templates, filled in (and so checked) before the
/// board is touched.
struct Templates {
    power_on: String,
    power_off: String,
    stage: Option<String>,
    console: String,
}

impl Templates {
    fn fill(board: &Board, args: &RebootArgs) -> Result<Option<Templates>, RunnerError> {
        let BoardKind::Command {
            power_on,
            power_off,
            stage,
            console,
        } = &board.kind
        else {
            return Ok(None);
        };
        Ok(Some(Templates {
            power_on: fill(power_on, board, args)?,
            power_off: fill(power_off, board, args)?,
            stage: stage.as_deref().map(|t| fill(t, board, args)).transpose()?,
            console: fill(console, board, args)?,
        }))
    }
}

/// Why a board was not started.
enum PowerOnError {
    /// A signal asked the runner to end; the board is off again.
    Interrupted,
    /// It could not be started (the board is off again).
    Failed(RunnerError),
}

/// Starts the board: QEMU, or a command board's power-off, staging,
/// console and power-on (each within the board's `command_timeout`, and
/// stopped by `interrupt`). If power-on fails, the console is stopped and
/// the board powered off again before the error is returned.
fn power_on(
    board: &Board,
    args: &RebootArgs,
    templates: Option<&Templates>,
    interrupt: &AtomicBool,
) -> Result<BoardConsole, PowerOnError> {
    let Some(t) = templates else {
        let BoardKind::Qemu { program, .. } = &board.kind else {
            unreachable!("a board without templates is a qemu board");
        };
        let cmd = qemu_command(board, args).expect("a qemu board");
        let mut console = BoardConsole::spawn(cmd, args.keep_alive).map_err(|e| {
            PowerOnError::Failed(RunnerError(format!("cannot start {program}: {e}")))
        })?;
        // An emulator has nothing to save: power it off at once.
        console.gentle = false;
        return Ok(console);
    };
    let limit = board.command_timeout;
    let step = |command: &str, what: &str| {
        command::run(command, limit, Some(interrupt)).map_err(|e| match e {
            CommandError::Interrupted { .. } => PowerOnError::Interrupted,
            e => PowerOnError::Failed(RunnerError(format!("{what} failed: {e}"))),
        })
    };
    let powered_off = step(&t.power_off, "powering off before the run");
    if let Err(PowerOnError::Interrupted) = powered_off {
        return Err(PowerOnError::Interrupted);
    }
    if let Some(stage) = &t.stage {
        if let Err(e) = step(stage, "staging the images") {
            let _ = command::run(&t.power_off, limit, None);
            return Err(e);
        }
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&t.console);
    let mut attached = BoardConsole::spawn(cmd, args.keep_alive).map_err(|e| {
        PowerOnError::Failed(RunnerError(format!("cannot attach the console: {e}")))
    })?;
    if let Err(e) = step(&t.power_on, "powering on") {
        if let Err(off) = power_off(&mut attached, board, Some(t)) {
            eprintln!("[{}] WARNING: {off}", board.name);
        }
        return Err(e);
    }
    Ok(attached)
}

/// Stops the console (QEMU: the board itself) and runs a command board's
/// power-off, within its `command_timeout` (not interruptible: the board
/// must go off). A power-off that fails is said, since the board may be
/// on; `Err` holds the reason.
fn power_off(
    console: &mut BoardConsole,
    board: &Board,
    templates: Option<&Templates>,
) -> Result<(), String> {
    console.stop();
    let Some(t) = templates else {
        return Ok(());
    };
    command::run(&t.power_off, board.command_timeout, None).map_err(|e| {
        let why = format!("powering off failed, the board may still be on: {e}");
        eprintln!("[{}] WARNING: {why}", board.name);
        why
    })
}

/// The board's dead man's switch: a `sh` in a session of its own that
/// waits for the runner to end. If the runner ends without standing it
/// down (killed, even by SIGKILL), it kills the board's whole process
/// group: a QEMU started through a wrapper script, which the kernel's
/// parent-death signal (sent to the direct child only) would miss. A
/// command board's power-off is then the host's: its finish runs the
/// runner's `--shutdown` after a runner that died (docs/PROTOCOL-EXTENSIONS.md).
struct Watchdog {
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Watches the process group `group` from now on.
    fn start(group: u32) -> Watchdog {
        let group = group.to_string();
        let stdin = Command::new("sh")
            .arg("-c")
            .arg(r#"read -r mq_x; [ "$mq_x" = done ] || kill -s KILL -- "-$1" 2>/dev/null"#)
            .arg("mq-watchdog")
            .arg(&group)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()
            .and_then(|mut child| {
                let stdin = child.stdin.take();
                // Reaped on a thread of its own: it ends with the runner.
                std::thread::spawn(move || child.wait());
                stdin
            });
        Watchdog { stdin }
    }

    /// The board is off: the switch ends without doing anything.
    fn stand_down(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
    }
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
    /// Kills the process group if the runner dies first.
    watchdog: Watchdog,
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
        // From the moment it runs: a runner killed while powering on leaves
        // nothing behind either.
        let watchdog = Watchdog::start(child.id());
        Ok(BoardConsole {
            child,
            output: ReaderSource::new(stdout),
            input,
            gentle: true,
            watchdog,
        })
    }

    /// The exit code of a process that is ending by itself, waiting up to
    /// `within` for it (`None`: still running, or killed by a signal).
    fn ended_within(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the process and its group: SIGTERM, then SIGKILL if it lingers
    /// (or SIGKILL at once).
    fn stop(&mut self) {
        let grace = self.gentle.then_some(Duration::from_secs(2));
        command::stop_group(&mut self.child, grace);
        self.watchdog.stand_down();
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

/// A template with `{board}`, `{kernel}`, `{rootserver}`, `{dtb}`,
/// `{bitstream}` and `{log}` replaced by quoted values, in one pass: an
/// inserted value is never scanned again. A placeholder inside double quotes
/// is refused (the shell would expand `$(...)` in its value there).
fn fill(template: &str, board: &Board, args: &RebootArgs) -> Result<String, RunnerError> {
    // Paths are UTF-8 (checked before): `to_string_lossy` changes nothing.
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or_else(|| quote(""), |p| quote(&p.to_string_lossy()))
    };
    let values = [
        ("{board}", quote(&board.name)),
        ("{kernel}", path(&args.kernel)),
        ("{rootserver}", path(&args.rootserver)),
        ("{dtb}", path(&args.dtb)),
        ("{bitstream}", path(&args.bitstream)),
        ("{log}", path(&args.log)),
    ];
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut quoting = None::<char>;
    'scan: while let Some(c) = rest.chars().next() {
        if quoting != Some('\'') {
            if let Some((name, value)) = values.iter().find(|(name, _)| rest.starts_with(name)) {
                if quoting == Some('"') {
                    return Err(RunnerError(format!(
                        "the template `{template}` has {name} inside double quotes, where the shell would expand its value: leave it unquoted (it is quoted for you)"
                    )));
                }
                out.push_str(value);
                rest = &rest[name.len()..];
                continue 'scan;
            }
        }
        match (quoting, c) {
            // Outside single quotes a backslash takes the next character
            // as it is: `\"` neither opens nor closes double quotes.
            (None | Some('"'), '\\') => {
                let escaped: String = rest.chars().take(2).collect();
                out.push_str(&escaped);
                rest = &rest[escaped.len()..];
                continue 'scan;
            }
            (None, '\'' | '"') => quoting = Some(c),
            (Some(q), c) if q == c => quoting = None,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// `--shutdown`: stops the runner that holds the board, waits for it to let
/// go, and for a command board runs `power_off` (within its
/// `command_timeout`). The holder is the one pid the kernel's lock table
/// names for the board's lock, and it gets SIGTERM (an interrupt: it powers
/// the board off) only once checked, on a pidfd that pins it, to be a
/// runner of this very board (its command line): anything else holding the
/// lock is named and left alone. It never kills a pid read from a file.
/// With no runner holding the board, a QEMU board is already off (its
/// runner's watchdog and the parent-death signal see to it).
fn shutdown(board: &Board, state: &Path) -> Result<i32, RunnerError> {
    if let Err(busy) = BoardLock::take(state, &board.name) {
        let path = BoardLock::path(state, &board.name);
        let me = std::process::id() as i32;
        let Some(pinned) = lock_holder(&path)
            .filter(|&p| p != me)
            .and_then(Pinned::new)
        else {
            return Err(busy);
        };
        let pid = pinned.pid;
        // Checked after pinning: the pid cannot change hands from here on.
        if lock_holder(&path) != Some(pid) {
            return Err(busy);
        }
        boardlock::is_runner_of(pid, &board.name, state).map_err(|why| {
            RunnerError(format!(
                "the board's lock {} is held by pid {pid}{}, and {why}: not signalled. Stop it yourself if it must go",
                path.display(),
                process_owner(pid)
            ))
        })?;
        pinned.signal(libc::SIGTERM).map_err(|e| {
            RunnerError(format!(
                "cannot stop the runner with pid {pid}{}: {e}",
                process_owner(pid)
            ))
        })?;
        let deadline = Instant::now() + Duration::from_secs(15 + board.command_timeout);
        while lock_holder(&path) == Some(pid) {
            if Instant::now() > deadline {
                return Err(RunnerError(format!(
                    "the runner with pid {pid} did not stop within {} s",
                    15 + board.command_timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if let BoardKind::Command { power_off, .. } = &board.kind {
        command::run(
            &fill(power_off, board, &RebootArgs::default())?,
            board.command_timeout,
            None,
        )
        .map_err(|e| {
            RunnerError(format!(
                "powering off failed, the board may still be on: {e}"
            ))
        })?;
    }
    println!("[{}] powered off", board.name);
    Ok(0)
}
