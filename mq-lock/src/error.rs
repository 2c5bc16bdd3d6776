//! How a lock operation fails, and the checks of what a caller gives
//! (a key, a system name) before anything reaches the host.

use crate::*;

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The host could not be reached or the connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The queue timeout ran out; the wait left the line.
    #[error("gave up waiting for {system} after {seconds} s in line (--queue-timeout)")]
    QueueTimeout {
        /// The system.
        system: String,
        /// The timeout.
        seconds: u64,
    },
    /// The caller's precheck refused, before any wait (the reason is its).
    #[error("{system}: {reason}")]
    Refused {
        /// The system.
        system: String,
        /// Why.
        reason: String,
    },
    /// The lab's policy (BASE/policy) does not allow the priority asked
    /// for; nothing was changed on the host.
    #[error("{system}: {reason}")]
    PriorityRefused {
        /// The system.
        system: String,
        /// Why, as the host said it.
        reason: String,
    },
    /// BASE/VERSION is not this protocol's.
    #[error(
        "Local version of mq.sh appears to differ from version on {host} at {base} \
         (mq speaks protocol {PROTOCOL_VERSION}; {base}/VERSION holds '{found}')"
    )]
    VersionMismatch {
        /// The host, as described by the transport.
        host: String,
        /// The lock directory.
        base: String,
        /// What VERSION holds.
        found: String,
    },
    /// The lock is already ours (PROTOCOL.md's acquire step 1).
    #[error("{}", if *.with_key { "Attempting to grab lock you already own with the same key. Please explicitly release" } else { "Attempting to grab lock you already own. Please explicitly release" })]
    AlreadyYours {
        /// The system.
        system: String,
        /// The stored key equals the one given (not both `0`).
        with_key: bool,
    },
    /// Releasing a lock somebody else holds (or nobody does).
    #[error("Attempting to unlock system {system} that you do not hold")]
    NotYours {
        /// The system.
        system: String,
        /// The holder, if any.
        owner: Option<String>,
    },
    /// Releasing with a key other than the holder's.
    #[error("Attempting to unlock system {system} with the wrong key!")]
    WrongKey {
        /// The system.
        system: String,
    },
    /// The lock was not taken (retries exhausted, or the wait was killed).
    #[error("Failed to acquire lock for system ({system})")]
    NotAcquired {
        /// The system.
        system: String,
        /// What the host said, if anything.
        detail: String,
    },
    /// The wait was interrupted by this process (see [`AcquireOptions::cancel`]).
    #[error("interrupted while waiting for the lock of {system}")]
    Interrupted {
        /// The system.
        system: String,
    },
    /// A value cannot be used safely (see [`check_key`]).
    #[error("{0}")]
    BadInput(String),
    /// The host answered something unexpected.
    #[error("{context} on {host} failed: {detail}")]
    Remote {
        /// What was being done.
        context: String,
        /// The host.
        host: String,
        /// What it said.
        detail: String,
    },
}

/// Checks a key before it goes anywhere: any text but empty, over 256
/// characters, or with a newline, carriage return or NUL (which the one-line
/// `mr-info` format and `read`-based scripts cannot carry). Quotes, spaces,
/// `$()` and `;` are fine: every value is quoted.
pub fn check_key(key: &str) -> Result<(), LockError> {
    if key.is_empty() {
        return Err(LockError::BadInput(
            "a lock key cannot be empty (0 means no key)".into(),
        ));
    }
    if key.chars().count() > 256 {
        return Err(LockError::BadInput(
            "a lock key is at most 256 characters".into(),
        ));
    }
    if key.contains(['\n', '\r', '\0']) {
        return Err(LockError::BadInput(
            "a lock key cannot contain a newline, carriage return or NUL".into(),
        ));
    }
    Ok(())
}

/// Checks a system name before it becomes part of a path on the host.
pub fn check_system(system: &str) -> Result<(), LockError> {
    let ok = !system.is_empty()
        && system != "."
        && system != ".."
        && !system.contains(['/', '\n', '\r', '\0']);
    if ok {
        Ok(())
    } else {
        Err(LockError::BadInput(format!(
            "'{system}' cannot name a lock"
        )))
    }
}
