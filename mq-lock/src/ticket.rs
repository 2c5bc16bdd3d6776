//! The line of waiters: a waiter's ticket, its place and events, and the
//! strict reading of the records other users write.

use crate::*;

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
pub(crate) fn plausible_number(text: &str) -> Option<u64> {
    (!text.is_empty() && text.len() <= 12 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Reads what the line script printed: each ticket's mark line (system,
/// ticket, owner), then its fields, each after a mark of its own.
pub(crate) fn parse_line(out: &str) -> Vec<Ticket> {
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
    pub(crate) fn parse(text: &str) -> Option<Place> {
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
