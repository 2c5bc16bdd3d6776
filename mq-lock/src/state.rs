//! What a lock is: free, or held by someone (owner, since, reclaim timeout, key).

use crate::*;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The Unix owner of the lock file.
    pub owner: String,
    /// Its modification time, as `stat --format=%y` prints it
    /// (`2026-11-28 04:01:02.123456789 +0000`).
    pub since: String,
    /// The lock's content: the holder's reclaim timeout in seconds, if it
    /// wrote a whole number (`0` and empty mean none).
    pub timeout: Option<u64>,
    /// The content as written (may be empty).
    pub timeout_text: String,
    /// The holder's key (`0`: none).
    pub key: String,
}

impl Holder {
    /// PROTOCOL.md's `info` line for a held lock.
    pub fn info_line(&self, system: &str) -> String {
        let mut line = format!(
            "Lock for {system} held by {} since {}, timeout {}",
            self.owner, self.since, self.timeout_text
        );
        if self.key != "0" {
            line.push_str(&format!(" with key '{}'", self.key));
        }
        line
    }

    /// PROTOCOL.md's `mr-info` line for a held lock.
    pub fn mr_info_line(&self, system: &str) -> String {
        let mut line = format!("{system} LOCKED {} {}", self.owner, self.since);
        if self.key != "0" {
            line.push(' ');
            line.push_str(&self.key);
        }
        line
    }
}

/// A lock's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Somebody holds it.
    Held(Holder),
}

impl LockState {
    /// PROTOCOL.md's `info` line.
    pub fn info_line(&self, system: &str) -> String {
        match self {
            LockState::Free => format!("Lock for {system} currently free"),
            LockState::Held(holder) => holder.info_line(system),
        }
    }

    /// PROTOCOL.md's `mr-info` line.
    pub fn mr_info_line(&self, system: &str) -> String {
        match self {
            LockState::Free => format!("{system} FREE"),
            LockState::Held(holder) => holder.mr_info_line(system),
        }
    }
}
