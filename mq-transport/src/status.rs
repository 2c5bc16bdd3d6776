//! How a remote command ended.

use std::fmt;

/// A command's end: an exit code, or the signal that killed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (`HUP`, `TERM`, `KILL`...: the name without `SIG`).
    Signal(String),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }

    /// The exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match self {
            ExitStatus::Code(code) => Some(*code),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The code a shell would report for it (`128 + signal` when killed), for
    /// passing on as this process's own exit status.
    pub fn shell_code(&self) -> i32 {
        match self {
            ExitStatus::Code(code) => *code,
            ExitStatus::Signal(name) => 128 + signal_number(name).unwrap_or(1),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit status {code}"),
            ExitStatus::Signal(name) => write!(f, "killed by SIG{name}"),
        }
    }
}

/// The number of a signal name (with or without `SIG`).
pub(crate) fn signal_number(name: &str) -> Option<i32> {
    let name = format!("SIG{}", name.trim_start_matches("SIG"));
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// The name (without `SIG`) of a Linux signal number.
pub(crate) fn signal_name(number: i32) -> String {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str().trim_start_matches("SIG").to_string())
        .unwrap_or_else(|_| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes() {
        assert_eq!(ExitStatus::Code(3).shell_code(), 3);
        assert_eq!(ExitStatus::Signal("TERM".into()).shell_code(), 143);
        assert_eq!(signal_name(9), "KILL");
        assert!(ExitStatus::Code(0).success());
        assert_eq!(
            ExitStatus::Signal("HUP".into()).to_string(),
            "killed by SIGHUP"
        );
    }
}
