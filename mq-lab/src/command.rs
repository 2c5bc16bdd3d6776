//! A command board's shell commands (`power_on`, `power_off`, `stage`),
//! each with a deadline and an interrupt: a power switch that never answers
//! ends the run with a message instead of holding the board for ever, and
//! SIGTERM, SIGHUP or `--shutdown` end the run in every phase, not only once
//! the console started.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How much of a command's stderr is kept for its error message.
const STDERR_KEPT: usize = 4096;

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// It ended with a failure status (or could not start).
    #[error("`{command}`: {why}")]
    Failed {
        /// The command.
        command: String,
        /// Its status and what it said on stderr.
        why: String,
    },
    /// It was still running at its deadline; it and everything it started
    /// were killed.
    #[error("`{command}` did not finish within {seconds} s (command_timeout); it was killed")]
    TimedOut {
        /// The command.
        command: String,
        /// The deadline.
        seconds: u64,
    },
    /// A signal asked the runner to stop; the command was killed.
    #[error("`{command}` was stopped: the runner was asked to end")]
    Interrupted {
        /// The command.
        command: String,
    },
}

/// Runs `command` with `sh -c` in a process group of its own, stdin from
/// `/dev/null`, stdout discarded, and waits at most `seconds` for it (and
/// not at all once `interrupt` is set): then its whole group gets SIGTERM,
/// and SIGKILL a second later.
pub fn run(
    command: &str,
    seconds: u64,
    interrupt: Option<&AtomicBool>,
) -> Result<(), CommandError> {
    let failed = |why: String| CommandError::Failed {
        command: command.to_string(),
        why,
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("cannot start sh: {e}")))?;
    // Read on a thread: a command that leaves a background process holding
    // its stderr must not keep the runner waiting past the command's end.
    let stderr = child.stderr.take().expect("piped stderr");
    let (said_tx, said) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = stderr.take(STDERR_KEPT as u64).read_to_end(&mut kept);
        let _ = said_tx.send(kept);
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        let stop = if interrupt.is_some_and(|i| i.load(Ordering::SeqCst)) {
            Some(CommandError::Interrupted {
                command: command.to_string(),
            })
        } else if Instant::now() >= deadline {
            Some(CommandError::TimedOut {
                command: command.to_string(),
                seconds,
            })
        } else {
            None
        };
        if let Some(error) = stop {
            stop_group(&mut child, Some(Duration::from_secs(1)));
            return Err(error);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let said = said
        .recv_timeout(Duration::from_millis(200))
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said);
    let said = said.trim();
    Err(failed(if said.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {said}")
    }))
}

/// Stops `child` and its process group (its pid): SIGTERM and up to
/// `grace` for it to end, then SIGKILL; reaped either way. `None`: SIGKILL
/// at once.
pub(crate) fn stop_group(child: &mut std::process::Child, grace: Option<Duration>) {
    let group = Pid::from_raw(child.id() as i32);
    if let Some(grace) = grace {
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_its_status_and_stderr() {
        assert_eq!(run("true", 5, None), Ok(()));
        let e = run("echo no power >&2; exit 3", 5, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`echo no power >&2; exit 3`: exit status: 3: no power"
        );
    }

    #[test]
    fn a_hanging_command_and_its_children_end_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let started = Instant::now();
        let e = run(&command, 1, None).unwrap_err();
        assert!(
            matches!(e, CommandError::TimedOut { seconds: 1, .. }),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the command's group: it is gone too.
        let deadline = Instant::now() + Duration::from_secs(5);
        let running = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.rsplit(") ").next().unwrap_or("").starts_with('Z'))
        };
        while running() {
            assert!(
                Instant::now() < deadline,
                "the command's child {pid} outlived it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn an_interrupt_ends_a_command_at_once() {
        let flag = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                flag.store(true, Ordering::SeqCst);
            });
            let started = Instant::now();
            let e = run("sleep 300", 60, Some(&flag)).unwrap_err();
            assert!(matches!(e, CommandError::Interrupted { .. }), "{e}");
            assert!(started.elapsed() < Duration::from_secs(5));
        });
    }
}
