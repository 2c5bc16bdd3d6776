//! Every exit status of mq's commands, decided here and nowhere else: the
//! constants, and [`of_queue_error`] and [`of_job_error`] for failures (the
//! README's table is this list; a test checks they agree).
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done; a run completed |
//! | 1 | bad usage, a failed check (nothing happened on the host), an unknown system, the host unreachable, a wrong protocol version |
//! | 2 | the lock was not acquired |
//! | 3 | a run saw its error text; `mq unlock` was refused |
//! | 4 | a run timed out |
//! | 5 | the board's console ended before a verdict |
//! | 6 | infrastructure: the board could not be run, the connection failed once made (during a run or a wait in line), cleanup left something behind, the log could not be written |
//! | 7 | `--queue-timeout` ran out before the lock was taken (out of the line, nothing left) |
//! | 8 | partial: a command over the whole lab heard from some lab hosts but not all; it names the others |
//! | 130 | interrupted (SIGINT, SIGTERM, SIGHUP) |
//!
//! A run passes its board runner's own status on, as mq.sh does, so other
//! values can appear there.

/// Done.
pub const OK: u8 = 0;
/// Bad usage or a failed check; nothing happened on the host.
pub const USAGE: u8 = 1;
/// The lock was not acquired.
pub const NOT_ACQUIRED: u8 = 2;
/// A run saw its error text.
pub const ERROR_TEXT: u8 = 3;
/// `mq unlock` was refused (not yours, wrong key).
pub const REFUSED: u8 = 3;
/// A run timed out.
pub const TIMEOUT: u8 = 4;
/// The console ended before a verdict.
pub const CONSOLE_CLOSED: u8 = 5;
/// Infrastructure: could not run, connection lost, something left behind.
pub const INFRASTRUCTURE: u8 = 6;
/// Interrupted.
pub const INTERRUPTED: u8 = 130;
/// `--queue-timeout` ran out before the lock was taken (nothing is left).
pub const QUEUE_TIMEOUT: u8 = 7;
/// A command over the whole lab heard from some lab hosts but not all
/// (what it printed names the others).
pub const PARTIAL: u8 = 8;

// The console's outcomes carry the same numbers (as i32, a process status).
const _: () = {
    assert!(mq_console::EXIT_COMPLETED == OK as i32);
    assert!(mq_console::EXIT_ERROR_TEXT == ERROR_TEXT as i32);
    assert!(mq_console::EXIT_TIMEOUT == TIMEOUT as i32);
    assert!(mq_console::EXIT_CONSOLE_CLOSED == CONSOLE_CLOSED as i32);
    assert!(mq_console::EXIT_INFRASTRUCTURE == INFRASTRUCTURE as i32);
    assert!(mq_console::EXIT_INTERRUPTED == INTERRUPTED as i32);
};

/// The status of a failed queue operation: how an error becomes a status,
/// for every command (the CLI adds the words).
pub fn of_queue_error(error: &crate::QueueError) -> u8 {
    use crate::QueueError as Q;
    use mq_lock::LockError as L;
    match error {
        Q::Lock(L::NotAcquired { .. } | L::AlreadyYours { .. }) => NOT_ACQUIRED,
        Q::Lock(L::Interrupted { .. }) => INTERRUPTED,
        Q::Lock(L::QueueTimeout { .. }) => QUEUE_TIMEOUT,
        // Connected, then lost: the lab failed, wherever it happened.
        Q::Lock(L::Transport(e)) if e.is_connection_lost() => INFRASTRUCTURE,
        // Never connected (`Unable to ssh to`), a bad name, a refusal, a
        // wrong protocol version: nothing happened on the host.
        _ => USAGE,
    }
}

/// The status of a failed job (see [`of_queue_error`]).
pub fn of_job_error(error: &crate::job::JobError) -> u8 {
    use crate::job::JobError as J;
    match error {
        J::Queue(q) => of_queue_error(q),
        J::Interrupted => INTERRUPTED,
        // After the checks: what went wrong on the way is the lab's.
        J::Transport(_) | J::LeftBehind(_) | J::Host(_) | J::Console(_) | J::Log { .. } => {
            INFRASTRUCTURE
        }
        _ => USAGE,
    }
}

/// A board runner's exit status as `mq run`'s (a status outside 1..=255
/// that is not success becomes 1).
pub fn from_status(code: i32) -> u8 {
    match code {
        0 => OK,
        1..=255 => code as u8,
        _ => USAGE,
    }
}
