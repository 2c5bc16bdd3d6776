//! Every exit status of mq's commands, decided here and nowhere else (the
//! README's table is this list).
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done; a run completed |
//! | 1 | bad usage, a failed check (nothing happened on the host), an unknown system, the host unreachable, a wrong protocol version |
//! | 2 | the lock was not acquired |
//! | 3 | a run's error text; `mq unlock` refused |
//! | 4 | a run timed out |
//! | 5 | the board's console ended before a verdict |
//! | 6 | infrastructure: the board could not be run, the connection failed during a run, cleanup left something behind, the log could not be written |
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

/// A board runner's exit status as `mq run`'s (a status outside 1..=255
/// that is not success becomes 1).
pub fn from_status(code: i32) -> u8 {
    match code {
        0 => OK,
        1..=255 => code as u8,
        _ => USAGE,
    }
}
