//! The machine-queue lock protocol (PROTOCOL.md, version 5) over any transport.
//!
//! A board is locked by `BASE/SYSTEM.lock` on the lab host (owner: the file's
//! owner; since: its modification time; content: the holder's reclaim timeout)
//! and `BASE/SYSTEM.key` (the holder's key). [`LockClient`] reads and changes
//! them exactly as `mq.sh` does, so old and new clients share boards safely:
//! acquiring uses the host's procmail `lockfile` with PROTOCOL.md's command
//! line (an exclusive-create loop in plain `sh` where there is none), and
//! `cancel` finds old and new clients' waits alike.
//!
//! Each operation is ONE remote command, and the preflight (BASE/VERSION must
//! be 5; the remote user name) rides along with the first one.
//!
//! It may depend on `mq-transport` only; it must never depend on console
//! matching, the inventory, the job API or the CLI.
//!
//! ```
//! use mq_lock::{LockClient, LockState};
//! use mq_transport::LocalTransport;
//!
//! let base = tempfile::tempdir().unwrap();
//! std::fs::write(base.path().join("VERSION"), "5\n").unwrap();
//! let locks = LockClient::new(LocalTransport::new(), base.path().to_str().unwrap());
//! assert_eq!(locks.info("sabre").unwrap(), LockState::Free);
//! ```
#![deny(missing_docs)]

mod script;
pub use script::{safe_head, HISTORY_FN, SAFE_FN};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_transport::{ExitStatus, PtyProcess, PtySize, ReadOutcome, Transport, TransportError};
use serde::Serialize;

pub use script::PROTOCOL_VERSION;

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

/// What an acquire waits for and writes.
#[derive(Debug, Clone)]
pub struct AcquireOptions {
    /// The key to store (`0`: none).
    pub key: String,
    /// Seconds between attempts (default 1; mq.sh's is 8).
    pub retry_seconds: u32,
    /// Retries after the first attempt; negative: for ever (the default).
    pub retries: i64,
    /// The reclaim timeout written into the lock once held (PROTOCOL.md's
    /// NEWTIMEOUT): waiters may remove the lock when it is older than this.
    /// `None` writes nothing, as mq.sh's `run` does (never reclaimable);
    /// `sem -wait` writes its `-T` value, default 0.
    pub reclaim_timeout: Option<u64>,
    /// Set from another thread to stop waiting (the remote wait is killed).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Use the plain-`sh` exclusive-create wait even where `lockfile` exists.
    pub force_fallback: bool,
    /// With [`LockClient::acquire_any`]: touch the lock every this often
    /// while the returned [`Kept`] lives, so that a waiter never reclaims a
    /// lock whose holder is still running (lockfile's `-l` goes by the lock
    /// file's age). Whole seconds, at least 1.
    pub keep_fresh: Option<Duration>,
    /// `sh` commands run on the host before the wait (in the same round
    /// trip); calling `mq_refuse REASON` ends the acquire with
    /// [`LockError::Refused`]. Empty for none.
    pub precheck: String,
    /// Place in line among mq waiters: higher first; equal priorities in
    /// arrival order; a waiter gains one point every ten minutes it waits.
    pub priority: i32,
    /// Give up after this many seconds of waiting
    /// ([`LockError::QueueTimeout`]), leaving nothing behind.
    pub queue_timeout: Option<u64>,
    /// The pool this wait is for, shown in the line (empty: none).
    pub pool: String,
}

/// A lock kept fresh from the host while this value lives: the acquire's
/// own session on the host touches the lock file periodically, and ends when
/// this is dropped (or the connection, or the process, dies), after which
/// the lock ages again and is reclaimable its timeout later.
pub struct Kept {
    /// The system whose lock was taken (for [`LockClient::acquire_any`],
    /// the member that came free first).
    pub system: String,
    /// What the `then` commands printed.
    pub lines: Vec<String>,
    session: Option<Box<dyn PtyProcess>>,
    /// Output of the session read past the hand-over mark.
    leftover: Vec<u8>,
}

impl Kept {
    /// The session handed over by [`LockClient::acquire_any`]'s hand-over (and
    /// the output already read from it), now the caller's: the lock is no
    /// longer this value's to keep fresh or stop. `None` after an acquire
    /// without a hand-over that ended at once.
    pub fn into_session(mut self) -> Option<(Box<dyn PtyProcess>, Vec<u8>)> {
        let session = self.session.take()?;
        Some((session, std::mem::take(&mut self.leftover)))
    }

    /// Whether the host is keeping the lock fresh.
    pub fn is_kept_fresh(&self) -> bool {
        self.session.is_some()
    }

    /// Stops keeping the lock fresh: closes the host's session at once (its
    /// shell dies of the hangup), without waiting for the host to say so.
    pub fn stop(&mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = session.cut();
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("system", &self.system)
            .field("lines", &self.lines)
            .field("kept_fresh", &self.is_kept_fresh())
            .finish()
    }
}

impl Default for AcquireOptions {
    fn default() -> AcquireOptions {
        AcquireOptions {
            key: "0".into(),
            retry_seconds: 1,
            retries: -1,
            reclaim_timeout: Some(0),
            cancel: None,
            force_fallback: false,
            keep_fresh: None,
            precheck: String::new(),
            priority: 0,
            queue_timeout: None,
            pool: String::new(),
        }
    }
}

/// A live wait in a system's line (mq waiters only: old clients' waits are
/// not in it), in the order of service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ticket {
    /// The system.
    pub system: String,
    /// The waiting user.
    pub user: String,
    /// The wait's key.
    pub key: String,
    /// When it joined the line (seconds since the epoch).
    pub since: u64,
    /// Its priority.
    pub priority: i32,
    /// The pool it waits for, if any.
    pub pool: Option<String>,
}

/// Escapes a value for one line of the files mq keeps under BASE (tickets,
/// health records): `\\` as `\\\\`, a line break as `\\n`, a tab as `\\t`, a CR as
/// `\\r`.
///
/// ```
/// assert_eq!(mq_lock::escape_line("a\tb\nc\\"), "a\\tb\\nc\\\\");
/// assert_eq!(mq_lock::unescape_line(&mq_lock::escape_line("x\ny")), "x\ny");
/// ```
pub fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape_line`].
pub fn unescape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Ticket {
    /// A ticket of `system` with nothing known yet.
    pub fn new(system: &str) -> Ticket {
        Ticket {
            system: system.to_string(),
            user: String::new(),
            key: String::new(),
            since: 0,
            priority: 0,
            pool: None,
        }
    }

    /// Takes one `key=value` line of a ticket file (values escaped as
    /// [`escape_line`] does); other lines, and `user` (the ticket's owner
    /// on the host says who waits, not its text), are ignored. Numbers
    /// that cannot be (a time beyond [`PLAUSIBLE_SECONDS`], a priority
    /// beyond ±1000) read as 0.
    pub fn read_line(&mut self, line: &str) {
        let Some((k, v)) = line.split_once('=') else {
            return;
        };
        let v = unescape_line(v);
        match k {
            "key" => self.key = v,
            "since" => self.since = plausible_time(&v).unwrap_or(0),
            "priority" => {
                self.priority = v
                    .parse()
                    .ok()
                    .filter(|p: &i32| p.abs() <= 1000)
                    .unwrap_or(0)
            }
            "pool" => self.pool = Some(v).filter(|p| !p.is_empty()),
            _ => {}
        }
    }
}

/// The most seconds a time or duration read from the host may be: ten
/// years past the epoch's 2020 (for times) or ten years (for durations),
/// the bound `-d` has. Anything larger was written by hand, not by mq.
pub const PLAUSIBLE_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A time (seconds since the epoch) read from the host, if it is a plain
/// number no later than ten years from now.
pub fn plausible_time(text: &str) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    plausible_number(text).filter(|t| *t <= now + PLAUSIBLE_SECONDS)
}

/// A duration (seconds) read from the host, if it is a plain number of at
/// most [`PLAUSIBLE_SECONDS`].
pub fn plausible_seconds(text: &str) -> Option<u64> {
    plausible_number(text).filter(|s| *s <= PLAUSIBLE_SECONDS)
}

/// Only ASCII digits, at most 12 of them (no sign, no space, no `+`).
fn plausible_number(text: &str) -> Option<u64> {
    (!text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Reads what the line script printed: each ticket's mark line (system,
/// ticket, owner), then its fields, each after a mark of its own.
fn parse_line(out: &str) -> Vec<Ticket> {
    let mut tickets: Vec<Ticket> = Vec::new();
    for text in out.lines() {
        if let Some(rest) = text.strip_prefix(script::TICKET_MARK) {
            // The ticket's name and its owner have no space; a system's
            // name may.
            let Some((rest, owner)) = rest.rsplit_once(' ') else {
                continue;
            };
            let system = rest.rsplit_once(' ').map_or(rest, |(s, _)| s);
            let mut ticket = Ticket::new(system);
            ticket.user = owner.to_string();
            tickets.push(ticket);
        } else if let Some(field) = text.strip_prefix(script::FIELD_MARK) {
            if let Some(t) = tickets.last_mut() {
                t.read_line(field);
            }
        }
    }
    tickets
}

/// What happens during a wait, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEvent {
    /// The lock is held by this owner since this time (reported when first
    /// seen and whenever it changes hands).
    Holder {
        /// The owner.
        owner: String,
        /// Since when.
        since: String,
    },
    /// This wait's place in line, when it (or the board's holder) changes.
    Place(Place),
}

/// A waiter's place in line, as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// 1: next.
    pub place: usize,
    /// The board the place is for: the one system, or for a pool the member
    /// where the wait looks shortest.
    pub system: String,
    /// About how long until this waiter's turn, from the board's recent
    /// hold times (the median of the last 20, see PROTOCOL-EXTENSIONS.md);
    /// `None` when the board has no history yet. An estimate.
    pub estimate: Option<Duration>,
    /// How long the board's holder has held it, when it is held.
    pub held_for: Option<Duration>,
    /// The board's holder, when it is held.
    pub holder: Option<String>,
    /// The holder's key, when it is held (unprintable characters as `?`).
    pub holder_key: Option<String>,
}

impl Place {
    /// Reads the host's `MQ-PLACE` line: `N ESTIMATE HELD OWNER
    /// SYSTEM/KEY`, `-` for what is not known.
    fn parse(text: &str) -> Option<Place> {
        let mut words = text.splitn(5, ' ');
        let place = words.next()?.parse().ok()?;
        let seconds = |w: Option<&str>| w.and_then(plausible_seconds).map(Duration::from_secs);
        let estimate = seconds(words.next());
        let held_for = seconds(words.next());
        let owner = words.next()?;
        let (system, key) = words.next()?.split_once('/')?;
        let held = held_for.is_some() && owner != "-";
        Some(Place {
            place,
            system: system.to_string(),
            estimate,
            held_for: held_for.filter(|_| held),
            holder: held.then(|| owner.to_string()),
            holder_key: held.then(|| key.to_string()),
        })
    }
}

/// What the first command learned about the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The remote user (`whoami` on the host).
    pub user: String,
}

/// Lock operations on one host's lock directory.
pub struct LockClient<T> {
    host: T,
    base: String,
    preflight: Mutex<Option<Preflight>>,
}

impl<T: Transport> LockClient<T> {
    /// Locks in `base` on `host`. Nothing is sent until the first operation.
    pub fn new(host: T, base: &str) -> LockClient<T> {
        let trimmed = base.trim_end_matches('/');
        LockClient {
            host,
            base: if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            },
            preflight: Mutex::new(None),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.host
    }

    /// The lock directory.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The preflight's findings, running it if no operation has yet.
    pub fn preflight(&self) -> Result<Preflight, LockError> {
        if let Some(p) = self.cached() {
            return Ok(p);
        }
        self.records(&[])?;
        self.cached()
            .ok_or_else(|| self.remote("preflight", "no answer"))
    }

    fn cached(&self) -> Option<Preflight> {
        self.preflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The remote user if the preflight has run (scripts then skip it).
    fn known(&self) -> Option<String> {
        self.cached().map(|p| p.user)
    }

    fn remote(&self, context: &str, detail: impl Into<String>) -> LockError {
        LockError::Remote {
            context: context.into(),
            host: self.host.describe(),
            detail: detail.into(),
        }
    }

    /// Takes the preflight line off the front of `text` (if it is there),
    /// recording the user, and fails on a version mismatch.
    fn take_preflight<'a>(
        &self,
        text: &'a [u8],
        status: &ExitStatus,
    ) -> Result<&'a [u8], LockError> {
        let Some(rest) = text.strip_prefix(script::PREFLIGHT_MARK.as_bytes()) else {
            return Ok(text);
        };
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..end])
            .trim_end_matches('\r')
            .to_string();
        let (user, version) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if status.code() == Some(script::code::VERSION) || version != PROTOCOL_VERSION {
            return Err(LockError::VersionMismatch {
                host: self.host.describe(),
                base: self.base.clone(),
                found: version.to_string(),
            });
        }
        *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) = Some(Preflight {
            user: user.to_string(),
        });
        Ok(&rest[(end + 1).min(rest.len())..])
    }

    /// Runs a capture script, handling the preflight line.
    fn run(&self, context: &str, script: &str) -> Result<(ExitStatus, Vec<u8>, String), LockError> {
        let out = self.host.run(script)?;
        let body = self.take_preflight(&out.stdout, &out.status)?.to_vec();
        if out.status.code().is_none() {
            return Err(self.remote(context, out.status.to_string()));
        }
        let stderr = out.stderr_text();
        Ok((out.status, body, stderr))
    }

    fn records(&self, systems: &[&str]) -> Result<Vec<(String, Holder)>, LockError> {
        for s in systems {
            check_system(s)?;
        }
        let (status, body, stderr) = self.run(
            "reading locks",
            &script::records(&self.base, self.known().as_deref(), systems),
        )?;
        if !status.success() {
            return Err(self.remote("reading locks", stderr.trim()));
        }
        Ok(parse_records(&body))
    }

    /// The state of `system`'s lock.
    pub fn info(&self, system: &str) -> Result<LockState, LockError> {
        Ok(self
            .records(&[system])?
            .into_iter()
            .next()
            .map_or(LockState::Free, |(_, h)| LockState::Held(h)))
    }

    /// The live waits in `systems`' lines, each line in the order of
    /// service (one round trip).
    pub fn line(&self, systems: &[&str]) -> Result<Vec<Ticket>, LockError> {
        for s in systems {
            check_system(s)?;
        }
        let (_, body, _) = self.run(
            "reading the line",
            &script::line(&self.base, self.known().as_deref(), systems),
        )?;
        Ok(parse_line(&String::from_utf8_lossy(&body)))
    }

    /// The states of several locks, in one round trip.
    pub fn info_many(&self, systems: &[&str]) -> Result<Vec<(String, LockState)>, LockError> {
        let held = self.records(systems)?;
        Ok(systems
            .iter()
            .map(|s| {
                let state = held
                    .iter()
                    .find(|(name, _)| name == s)
                    .map_or(LockState::Free, |(_, h)| LockState::Held(h.clone()));
                (s.to_string(), state)
            })
            .collect())
    }

    /// Every lock file in BASE, as `(system, holder)`, sorted by system. The
    /// caller filters out names that are not systems (PROTOCOL.md's dumpall).
    pub fn dump_all(&self) -> Result<Vec<(String, Holder)>, LockError> {
        let (status, body, stderr) = self.run(
            "listing locks",
            &script::dump_all(&self.base, self.known().as_deref()),
        )?;
        if !status.success() {
            return Err(self.remote(
                "listing locks",
                format!("cannot read {}: {}", self.base, stderr.trim()),
            ));
        }
        let mut all = parse_records(&body);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Takes `system`'s lock, waiting as `options` say; `events` hears who
    /// holds it meanwhile.
    pub fn acquire(
        &self,
        system: &str,
        options: &AcquireOptions,
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<(), LockError> {
        let options = AcquireOptions {
            keep_fresh: None,
            ..options.clone()
        };
        self.acquire_any(&[system], &options, "", &[], events)
            .map(|_| ())
    }

    /// Takes the lock of whichever of `systems` (a pool's members, or one
    /// system) comes to this wait first: the wait is in every member's line,
    /// tries a member only when nobody is ahead of it there, and leaves every
    /// line once it holds one. [`Kept::system`] says which.
    ///
    /// Once the lock is held, `then` (`sh` commands) runs in the same round
    /// trip, on the acquire's terminal; [`Kept::lines`] holds what it
    /// printed (its failure does not give the lock back). With
    /// `options.keep_fresh`, the host keeps the lock fresh from the
    /// background while the returned [`Kept`] lives (no extra round trip:
    /// the acquire's own session stays open; its pid in `$mq_keeper`).
    ///
    /// `handovers` is empty, or one hand-over for each of `systems`: `sh`
    /// commands the taken member's run in the same session once the lock is
    /// held, with the session handed over ([`Kept::into_session`]) and the
    /// hand-over's default signal handling (a hangup ends it). Its exit
    /// status and what it does with the lock are its own.
    ///
    /// PROTOCOL.md's "already yours" check is made only for a single
    /// system: a pool's members already held count as busy.
    pub fn acquire_any(
        &self,
        systems: &[&str],
        options: &AcquireOptions,
        then: &str,
        handovers: &[&str],
        events: &mut dyn FnMut(WaitEvent),
    ) -> Result<Kept, LockError> {
        if systems.is_empty() {
            return Err(LockError::BadInput("nothing to wait for".into()));
        }
        for system in systems {
            check_system(system)?;
        }
        check_key(&options.key)?;
        assert!(
            handovers.is_empty() || handovers.len() == systems.len(),
            "one hand-over for each system"
        );
        let name = match (systems, options.pool.as_str()) {
            ([one], _) => one.to_string(),
            (_, "") => systems.join(","),
            (_, pool) => pool.to_string(),
        };
        let script = self.acquire_script(systems, options, then, handovers);
        let mut process = self.host.spawn_pty(&script, PtySize::default())?;
        let mut pending = Vec::new();
        let mut said = AcquireLines::default();
        let mut buf = [0u8; 4096];
        loop {
            if options
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                process.hangup()?;
                drop(process);
                self.undo_if_taken(systems, &options.key);
                return Err(LockError::Interrupted { system: name });
            }
            match process.read(&mut buf, Some(Duration::from_millis(100)))? {
                ReadOutcome::Data(n) => pending.extend_from_slice(&buf[..n]),
                ReadOutcome::TimedOut => continue,
                ReadOutcome::Eof => break,
            }
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                if text.starts_with(script::PREFLIGHT_MARK) {
                    // A version mismatch is known for sure only from the
                    // exit status; record the user now, judge at the end.
                    let _ =
                        self.take_preflight(format!("{text}\n").as_bytes(), &ExitStatus::Code(0));
                }
                if said.hear(text, events) {
                    return Ok(Kept {
                        system: said.system.take().unwrap_or(name),
                        lines: said.then.unwrap_or_default(),
                        session: Some(process),
                        leftover: pending,
                    });
                }
            }
        }
        let status = process.wait()?;
        self.acquire_outcome(&name, status, said, options.queue_timeout)
    }

    /// The host script for an acquire.
    fn acquire_script(
        &self,
        systems: &[&str],
        options: &AcquireOptions,
        then: &str,
        handover: &[&str],
    ) -> String {
        let new_timeout = options
            .reclaim_timeout
            .map(|t| t.to_string())
            .unwrap_or_default();
        script::acquire(
            &script::Acquire {
                base: &self.base,
                systems,
                key: &options.key,
                retry_seconds: options.retry_seconds.max(1),
                retries: options.retries,
                new_timeout: &new_timeout,
                force_fallback: options.force_fallback,
                then,
                keep_fresh: options
                    .keep_fresh
                    .map(|d| d.as_secs().clamp(1, u32::MAX as u64) as u32),
                handover,
                precheck: &options.precheck,
                priority: options.priority,
                queue_timeout: options.queue_timeout,
                pool: &options.pool,
            },
            self.known().as_deref(),
        )
    }

    /// What the acquire script's exit status means, once it has ended.
    fn acquire_outcome(
        &self,
        system: &str,
        status: ExitStatus,
        said: AcquireLines,
        timeout: Option<u64>,
    ) -> Result<Kept, LockError> {
        match status.code() {
            Some(0) => Ok(Kept {
                system: said.system.unwrap_or_else(|| system.to_string()),
                lines: said.then.unwrap_or_default(),
                session: None,
                leftover: Vec::new(),
            }),
            Some(script::code::OWN) => Err(LockError::AlreadyYours {
                system: system.into(),
                with_key: false,
            }),
            Some(script::code::OWN_KEY) => Err(LockError::AlreadyYours {
                system: system.into(),
                with_key: true,
            }),
            Some(script::code::QUEUE_TIMEOUT) => Err(LockError::QueueTimeout {
                system: system.into(),
                seconds: timeout.unwrap_or(0),
            }),
            Some(script::code::REFUSED) => Err(LockError::Refused {
                system: system.into(),
                reason: said.refusal(),
            }),
            Some(script::code::PRIORITY) => Err(LockError::PriorityRefused {
                system: system.into(),
                reason: said.refusal(),
            }),
            Some(script::code::VERSION) => {
                *self.preflight.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(LockError::VersionMismatch {
                    host: self.host.describe(),
                    base: self.base.clone(),
                    found: said.found_version(),
                })
            }
            _ => Err(LockError::NotAcquired {
                system: system.into(),
                detail: said.detail(),
            }),
        }
    }

    /// After an interrupted wait: the hangup may have come just after
    /// `lockfile` succeeded (the script finishes writing the key then, by
    /// design). If the lock is ours with our key, give it back, so that an
    /// interrupted acquire never leaves a lock behind. (Another wait of the
    /// same user with the same key is the same holder as far as PROTOCOL.md
    /// goes: its "already yours" rule cannot tell them apart either.)
    fn undo_if_taken(&self, systems: &[&str], key: &str) {
        let Ok(user) = self.preflight().map(|p| p.user) else {
            return;
        };
        // Give the script's last few commands a moment to finish.
        std::thread::sleep(Duration::from_millis(100));
        let Ok(states) = self.info_many(systems) else {
            return;
        };
        for (system, state) in states {
            if let LockState::Held(h) = state {
                if h.owner == user && h.key == key {
                    let _ = self.release(&system, key, false);
                }
            }
        }
    }

    /// Releases `system`'s lock: without `force`, only if it is ours and holds
    /// `key` (PROTOCOL.md's release).
    pub fn release(&self, system: &str, key: &str, force: bool) -> Result<(), LockError> {
        self.release_after(system, key, force, "").map(|_| ())
    }

    /// Runs `before` (`sh` commands, e.g. removing a job's temporary files)
    /// on the host, then [`release`](Self::release)s, in one round trip.
    /// Returns what `before` printed on stdout (lines starting `MQ-` are
    /// reserved). It runs whether or not the lock turns out to be ours.
    pub fn release_after(
        &self,
        system: &str,
        key: &str,
        force: bool,
        before: &str,
    ) -> Result<String, LockError> {
        let script = self.release_script(system, key, force, before)?;
        let (status, body, stderr) = self.run("releasing the lock", &script)?;
        self.release_outcome(system, &status, &String::from_utf8_lossy(&body), &stderr)
    }

    /// The script [`release_after`](Self::release_after) runs, for a caller
    /// that runs it at the end of a script of its own (a job's host-side
    /// finish): it ends the script with its verdict as the exit status. Read
    /// that with [`release_outcome`](Self::release_outcome).
    pub fn release_script(
        &self,
        system: &str,
        key: &str,
        force: bool,
        before: &str,
    ) -> Result<String, LockError> {
        check_system(system)?;
        check_key(key)?;
        Ok(script::release(
            &self.base,
            system,
            key,
            force,
            before,
            self.known().as_deref(),
        ))
    }

    /// Runs a script of the caller's own on the host after the
    /// [`script_head`](Self::script_head) (BASE as `$b`, the user as
    /// `$mq_me`, the safe file and history functions), with PROTOCOL.md's
    /// preflight folded in until it has run: a BASE without the right
    /// `VERSION` is refused before `body` runs, as every lock operation
    /// refuses it. Returns the status, stdout (the preflight line taken
    /// off) and stderr; a script killed by a signal is an error.
    pub fn run_script(
        &self,
        context: &str,
        body: &str,
    ) -> Result<(ExitStatus, Vec<u8>, String), LockError> {
        self.run(context, &format!("{}{body}", self.script_head()))
    }

    /// What every [`release_script`](Self::release_script) starts with
    /// (BASE, the user, the safe file and history functions): a caller that
    /// joins it to its own scripts sends this once, then the release script
    /// with this prefix stripped.
    pub fn script_head(&self) -> String {
        script::head(&self.base, self.known().as_deref())
    }

    /// What a [`release_script`](Self::release_script) that ended with
    /// `status`, printing `stdout` and `stderr`, did: `Ok` with what `before`
    /// printed, or why the lock was not released.
    pub fn release_outcome(
        &self,
        system: &str,
        status: &ExitStatus,
        stdout: &str,
        stderr: &str,
    ) -> Result<String, LockError> {
        match status.code() {
            Some(0) => Ok(stdout.to_string()),
            Some(script::code::NOT_YOURS) => {
                let owner = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(script::OWNER_MARK))
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty());
                Err(LockError::NotYours {
                    system: system.into(),
                    owner,
                })
            }
            Some(script::code::WRONG_KEY) => Err(LockError::WrongKey {
                system: system.into(),
            }),
            _ => Err(self.remote(
                &format!("releasing the lock of {system}"),
                if stderr.trim().is_empty() {
                    status.to_string()
                } else {
                    stderr.trim().to_string()
                },
            )),
        }
    }

    /// Kills this user's processes on the host waiting for `system`'s lock
    /// with `key` (old clients' waits too); returns how many there were.
    pub fn cancel(&self, system: &str, key: &str) -> Result<usize, LockError> {
        check_system(system)?;
        check_key(key)?;
        self.cancelled(&script::cancel(
            &self.base,
            Some(system),
            key,
            self.known().as_deref(),
        ))
    }

    fn cancelled(&self, script: &str) -> Result<usize, LockError> {
        let (status, body, stderr) = self.run("cancelling waits", script)?;
        match cancelled_count(&String::from_utf8_lossy(&body)) {
            Some(n) if status.success() => Ok(n),
            _ => Err(self.remote("cancelling waits", stderr.trim())),
        }
    }

    /// After a CI job was cancelled: kills this user's waits with `key` on
    /// any system, then releases every lock among `systems` that this user
    /// holds with `key`. One round trip; returns the systems released.
    pub fn cleanup(&self, key: &str, systems: &[&str]) -> Result<(usize, Vec<String>), LockError> {
        check_key(key)?;
        for s in systems {
            check_system(s)?;
        }
        let (status, body, stderr) = self.run(
            "cleaning up",
            &script::cleanup(&self.base, key, systems, self.known().as_deref()),
        )?;
        if !status.success() {
            return Err(self.remote("cleaning up", stderr.trim()));
        }
        let text = String::from_utf8_lossy(&body);
        let cancelled = cancelled_count(&text).unwrap_or(0);
        let released = text
            .lines()
            .filter_map(|l| l.strip_prefix(script::RELEASED_MARK))
            .map(str::to_string)
            .collect();
        Ok((cancelled, released))
    }
}

/// The count of the cancel script's `MQ-CANCELLED <n>` line.
fn cancelled_count(text: &str) -> Option<usize> {
    text.lines()
        .find_map(|l| l.strip_prefix(script::CANCELLED_MARK))
        .and_then(|n| n.trim().parse().ok())
}

/// Parses the NUL-separated records of the scripts.
fn parse_records(body: &[u8]) -> Vec<(String, Holder)> {
    let fields: Vec<String> = body
        .split(|&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    fields
        .chunks_exact(5)
        .map(|r| {
            (
                r[0].clone(),
                Holder {
                    owner: r[1].clone(),
                    since: r[2].clone(),
                    timeout: r[3].trim().parse().ok().filter(|&n| n > 0),
                    timeout_text: r[3].clone(),
                    key: r[4].clone(),
                },
            )
        })
        .collect()
}

/// The lines an acquire script prints, sorted as they come.
#[derive(Default)]
struct AcquireLines {
    /// Lines before the lock was taken (preflight, failures), for the error.
    before: Vec<String>,
    /// Lines the `then` commands printed, once the lock was taken.
    then: Option<Vec<String>>,
    /// The system taken.
    system: Option<String>,
}

impl AcquireLines {
    /// Takes one line; true when the script says it now holds the lock open
    /// (keeping it fresh), which ends the acquire.
    fn hear(&mut self, text: String, events: &mut dyn FnMut(WaitEvent)) -> bool {
        if let Some(holder) = text.strip_prefix(script::HOLDER_MARK) {
            let (owner, since) = holder.split_once(' ').unwrap_or((holder, ""));
            events(WaitEvent::Holder {
                owner: owner.to_string(),
                since: since.to_string(),
            });
        } else if let Some(place) = text.strip_prefix(script::PLACE_MARK) {
            if let Some(place) = Place::parse(place) {
                events(WaitEvent::Place(place));
            }
        } else if let Some(system) = text.strip_prefix(script::ACQUIRED_MARK) {
            self.system = Some(system.to_string());
            self.then = Some(Vec::new());
        } else if text == script::HOLDING_MARK {
            return true;
        } else if text.starts_with(script::PREFLIGHT_MARK) {
            self.before.push(text);
        } else if let Some(lines) = self.then.as_mut() {
            lines.push(text);
        } else if !text.is_empty() {
            self.before.push(text);
        }
        false
    }

    /// A precheck's reason for refusing.
    fn refusal(&self) -> String {
        self.before
            .iter()
            .find_map(|l| l.strip_prefix(script::REFUSED_MARK))
            .unwrap_or("refused")
            .to_string()
    }

    /// The lock-file format version the host reported.
    fn found_version(&self) -> String {
        self.before
            .iter()
            .find_map(|l| l.strip_prefix(script::PREFLIGHT_MARK))
            .and_then(|l| l.split_once(' '))
            .map_or(String::new(), |(_, v)| v.to_string())
    }

    /// What the host said about a failed acquire, markers left out.
    fn detail(self) -> String {
        self.before
            .into_iter()
            .filter(|l| !l.starts_with(script::MARK_PREFIX))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_transport::mock::MockTransport;

    #[test]
    fn info_lines_are_protocols() {
        let h = Holder {
            owner: "alice".into(),
            since: "2026-11-28 04:01:02.123456789 +0000".into(),
            timeout: Some(600),
            timeout_text: "600".into(),
            key: "ci-1".into(),
        };
        assert_eq!(
            h.info_line("sabre"),
            "Lock for sabre held by alice since 2026-11-28 04:01:02.123456789 +0000, timeout 600 with key 'ci-1'"
        );
        assert_eq!(
            h.mr_info_line("sabre"),
            "sabre LOCKED alice 2026-11-28 04:01:02.123456789 +0000 ci-1"
        );
        let plain = Holder {
            key: "0".into(),
            ..h
        };
        assert!(plain.info_line("x").ends_with("timeout 600"));
        assert_eq!(LockState::Free.info_line("x"), "Lock for x currently free");
        assert_eq!(LockState::Free.mr_info_line("x"), "x FREE");
    }

    #[test]
    fn keys_are_checked_before_anything_is_sent() {
        let host = MockTransport::new("me");
        let locks = LockClient::new(&host, "/b");
        for bad in ["", "a\nb", "a\rb", "a\0b"] {
            assert!(matches!(
                locks.release("s", bad, false),
                Err(LockError::BadInput(_))
            ));
        }
        assert!(matches!(locks.info("../etc"), Err(LockError::BadInput(_))));
        assert!(host.calls().is_empty());
    }

    #[test]
    fn preflight_rides_on_the_first_command_only() {
        let host = MockTransport::new("me");
        host.answer("mq_rec", "MQ-PRE me 5\n", 0);
        let locks = LockClient::new(&host, "/b/");
        assert_eq!(locks.info("s").unwrap(), LockState::Free);
        assert_eq!(locks.info("s").unwrap(), LockState::Free);
        let commands = host.commands();
        assert_eq!(commands.len(), 2);
        assert!(commands[0].contains("VERSION"));
        assert!(!commands[1].contains("VERSION"));
        assert!(
            commands[0].lines().any(|l| l == "b='/b'"),
            "trailing slash trimmed"
        );
        assert_eq!(locks.preflight().unwrap().user, "me");
    }

    #[test]
    fn version_mismatch_is_refused() {
        let host = MockTransport::new("me");
        host.answer("mq_rec", "MQ-PRE me 4\n", script::code::VERSION);
        let locks = LockClient::new(&host, "/b");
        let err = locks.info("s").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Local version of mq.sh appears to differ from version on me@mock at /b"));
    }

    #[test]
    fn records_parse_with_hostile_keys() {
        let body =
            b"a\x00alice\x00t 1 +0000\x00600\x00it's; $(x) \x00b\x00bob\x00t 2 +0000\x00\x000\x00";
        let r = parse_records(body);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1.key, "it's; $(x) ");
        assert_eq!(r[0].1.timeout, Some(600));
        assert_eq!(r[1].1.timeout, None);
        assert_eq!(r[1].1.key, "0");
    }
}
