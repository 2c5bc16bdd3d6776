//! The whole lab at a glance: every board's holder, health, line of waiters
//! and recent history, read in one round trip however many boards there are
//! (`sh/status.sh`: a handful of processes on the host, whatever the size of
//! the lab). `mq status` prints it; `mq serve` shows it live.
//!
//! [`LabStatus`] serializes as the dashboard's `/api/status` JSON, version
//! [`STATUS_VERSION`]: fields are only ever added within a version.

use std::collections::BTreeMap;
use std::time::Duration;

use mq_lock::Ticket;
use serde::Serialize;

use crate::health::{Change, Health};
use crate::{Inventory, MachineQueue, QueueError};

/// The version of [`LabStatus`]'s JSON.
pub const STATUS_VERSION: u32 = 1;

/// The script's lines start with this, then a tag.
const MARK: &str = "MQ-S-";

/// How many of a board's past holds and runs a status keeps (the host keeps
/// 20 to 40 of each).
pub const HISTORY: usize = 20;

/// The lab, as the host saw it at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabStatus {
    /// [`STATUS_VERSION`].
    pub version: u32,
    /// The lab host, as configured.
    pub host: String,
    /// The host's clock when it answered (seconds since the epoch).
    pub taken_at: u64,
    /// A hold at least this long is a long hold (seconds).
    pub long_after: u64,
    /// Every board of the inventory, in its order; then any lock on the
    /// host for a system the inventory does not name.
    pub boards: Vec<BoardStatus>,
    /// The lab hosts that did not answer, and their boards (not in
    /// `boards`).
    pub down: Vec<crate::sites::SiteDown>,
    /// What is unsafe in the hosts' directories under BASE: links, or
    /// directories where any user may remove others' files
    /// (docs/PROTOCOL-EXTENSIONS.md, "Sharing the host"), one sentence
    /// each.
    pub unsafe_dirs: Vec<String>,
}

/// One board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardStatus {
    /// The system.
    pub system: String,
    /// The lab host it is attached to.
    pub host: String,
    /// The pools it is in.
    pub pools: Vec<String>,
    /// Whether the inventory names it.
    pub known: bool,
    /// Its health.
    pub health: Health,
    /// Who holds it, if anyone.
    pub holder: Option<HolderStatus>,
    /// Its line of mq waiters, in the order of service.
    pub waiting: Vec<Ticket>,
    /// Held for at least [`LabStatus::long_after`].
    pub long_hold: bool,
    /// The last run's record, if any.
    pub last_run: Option<RunRecord>,
    /// Recent holds, oldest first.
    pub holds: Vec<HoldRecord>,
    /// Recent runs, oldest first.
    pub runs: Vec<RunRecord>,
    /// Recent waits in line (seconds), oldest first.
    pub waits: Vec<WaitRecord>,
    /// Recent changes of its health, oldest first.
    pub health_log: Vec<Change>,
}

/// A board's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderStatus {
    /// The user.
    pub owner: String,
    /// The key (`0`: none).
    pub key: String,
    /// When it was taken (seconds since the epoch: the key file's time, or
    /// the lock's when there is no key file).
    pub since: u64,
    /// The lock's time as PROTOCOL.md's info says it (refreshed while a
    /// run keeps it fresh).
    pub lock_time: String,
    /// Held for this many seconds when the status was taken.
    pub held_for: u64,
    /// The reclaim timeout in the lock file (PROTOCOL.md's content).
    pub timeout: String,
}

/// A past hold (written by mq's release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldRecord {
    /// Seconds held.
    pub seconds: u64,
    /// When it ended (seconds since the epoch).
    pub ended: u64,
    /// Who held it.
    pub user: String,
    /// With which key.
    pub key: String,
}

/// A past run (written by the run's finish on the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// When it ended (seconds since the epoch).
    pub ended: u64,
    /// `passed`, `test` or `infrastructure` (see [`crate::health`]).
    pub class: String,
    /// The runner's exit status.
    pub status: i32,
    /// Who ran it.
    pub user: String,
    /// Its key.
    pub key: String,
}

/// A past wait in line (written when the waiter got the board).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitRecord {
    /// Seconds in line.
    pub seconds: u64,
    /// When it ended (seconds since the epoch).
    pub ended: u64,
    /// Who waited.
    pub user: String,
}

const SCRIPT: &str = include_str!("sh/status.sh");

/// The host script: every lock, key, health file, ticket and history file
/// under `base`.
pub fn script(base: &str) -> String {
    mq_lock::safe_head(base) + &mq_transport::fill(SCRIPT, &[("mark", MARK)])
}

/// What the host said of one board, before the inventory is laid over it.
#[derive(Default)]
struct Seen {
    lock: Option<(String, String)>,
    lock_file: Option<(String, u64, String)>,
    key_time: Option<u64>,
    health: Vec<String>,
    /// Whether it has a health file at all.
    health_file: bool,
    tickets: BTreeMap<String, Ticket>,
    holds: Vec<HoldRecord>,
    waits: Vec<WaitRecord>,
    runs: Vec<RunRecord>,
    changes: Vec<Change>,
}

/// Splits `n` tab-separated fields off `line`; the last takes the rest.
fn fields(line: &str, n: usize) -> Option<Vec<&str>> {
    let parts: Vec<&str> = line.splitn(n, '\t').collect();
    (parts.len() == n).then_some(parts)
}

/// `SECONDS END USER [KEY...]` and friends: numbers and words split by
/// spaces, the key (which may hold spaces) last.
fn words(line: &str, n: usize) -> Vec<&str> {
    line.splitn(n, ' ').collect()
}

/// The last part of a path the host printed.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// One line of a user's history file (`BASE/queue/SYSTEM/.KIND.USER`),
/// strictly: plausible numbers, the user the file's owner (the host checked
/// that the name says its owner), a known class. `None` for anything else.
fn history(seen: &mut Seen, kind: &str, owner: &str, line: &str) -> Option<()> {
    use mq_lock::{plausible_seconds, plausible_time};
    match kind {
        "holds" => {
            let w = words(line, 4);
            (w.get(2) == Some(&owner)).then_some(())?;
            seen.holds.push(HoldRecord {
                seconds: plausible_seconds(w.first()?)?,
                ended: plausible_time(w.get(1)?)?,
                user: owner.to_string(),
                key: w.get(3).unwrap_or(&"").to_string(),
            });
        }
        "waits" => {
            let w = words(line, 3);
            (w.get(2) == Some(&owner)).then_some(())?;
            seen.waits.push(WaitRecord {
                seconds: plausible_seconds(w.first()?)?,
                ended: plausible_time(w.get(1)?)?,
                user: owner.to_string(),
            });
        }
        "runs" => {
            let w = words(line, 5);
            (w.get(3) == Some(&owner)).then_some(())?;
            let class = *w.get(1)?;
            ["passed", "test", "infrastructure"]
                .contains(&class)
                .then_some(())?;
            seen.runs.push(RunRecord {
                ended: plausible_time(w.first()?)?,
                class: class.to_string(),
                status: w.get(2)?.parse().ok().filter(|s| (0..=255).contains(s))?,
                user: owner.to_string(),
                key: w.get(4).unwrap_or(&"").to_string(),
            });
        }
        _ => return None,
    }
    Some(())
}

/// What the host printed, by board.
struct Lines {
    version: Option<String>,
    now: u64,
    seen: BTreeMap<String, Seen>,
    unsafe_dirs: Vec<String>,
}

/// Reads what [`script`] printed.
fn parse_lines(out: &str) -> Lines {
    let mut version = None;
    let mut now = 0;
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut unsafe_dirs = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix(MARK) else {
            continue;
        };
        let Some((tag, rest)) = rest.split_once('\t') else {
            continue;
        };
        match tag {
            "version" => version = Some(rest.trim_end_matches('\r').to_string()),
            "now" => now = mq_lock::plausible_time(rest.trim()).unwrap_or(0),
            "unsafe" => unsafe_dirs.push(rest.to_string()),
            _ => {
                let _ = board_line(&mut seen, tag, rest);
            }
        }
    }
    // Every user's records, in time.
    for s in seen.values_mut() {
        s.holds.sort_by_key(|h| h.ended);
        s.waits.sort_by_key(|w| w.ended);
        s.runs.sort_by_key(|r| r.ended);
        s.changes.sort_by(|a, b| a.at.cmp(&b.at));
    }
    Lines {
        version,
        now,
        seen,
        unsafe_dirs,
    }
}

/// One line about a board (its lock, key, health, tickets, history, health
/// changes) into what is `seen` of it; `None` for a line that does not
/// parse (another user's file: skipped).
fn board_line(seen: &mut BTreeMap<String, Seen>, tag: &str, rest: &str) -> Option<()> {
    match tag {
        "change" => {
            let (owner, line) = rest.split_once('\t')?;
            if let Some(change) = Change::parse(line) {
                let change = change.told_by(owner);
                let entry = seen.entry(change.system.clone()).or_default();
                entry.changes.push(change);
            }
        }
        "file" => {
            let f = fields(rest, 4)?;
            let name = base_name(f[3]);
            let time = mq_lock::plausible_time(f[1]).unwrap_or(0);
            if let Some(system) = name.strip_suffix(".lock") {
                let entry = seen.entry(system.to_string()).or_default();
                entry.lock_file = Some((f[0].to_string(), time, f[2].to_string()));
            } else if let Some(system) = name.strip_suffix(".key") {
                seen.entry(system.to_string()).or_default().key_time = Some(time);
            }
        }
        "lock" => {
            let f = fields(rest, 3)?;
            seen.entry(f[1].to_string()).or_default().lock =
                Some((f[0].to_string(), f[2].to_string()));
        }
        "healthfile" => {
            seen.entry(rest.to_string()).or_default().health_file = true;
        }
        "health" => {
            let f = fields(rest, 2)?;
            let entry = seen.entry(base_name(f[0]).to_string()).or_default();
            entry.health.push(f[1].to_string());
        }
        "ticket" => {
            let f = fields(rest, 4)?;
            let entry = seen.entry(f[1].to_string()).or_default();
            let ticket = entry.tickets.entry(f[0].to_string()).or_insert_with(|| {
                let mut t = Ticket::new(f[1]);
                t.user = f[2].to_string();
                t
            });
            ticket.read_line(f[3]);
        }
        "history" => {
            let f = fields(rest, 2)?;
            let mut parts = f[0].rsplit('/');
            let (file, system) = (parts.next()?, parts.next()?);
            let (kind, owner) = file.strip_prefix('.').and_then(|n| n.split_once('.'))?;
            let entry = seen.entry(system.to_string()).or_default();
            let _ = history(entry, kind, owner, f[1]);
        }
        _ => {}
    }
    Some(())
}

/// The last `n` of `items`.
fn last<T>(mut items: Vec<T>, n: usize) -> Vec<T> {
    let cut = items.len().saturating_sub(n);
    items.drain(..cut);
    items
}

impl LabStatus {
    /// Lays what the host printed over the inventory. `None` when BASE is
    /// not a lock directory of protocol 5 (its VERSION, as found, in the
    /// error).
    pub fn parse(
        out: &str,
        inventory: &Inventory,
        host: &str,
        long_after: Duration,
    ) -> Result<LabStatus, String> {
        let Lines {
            version,
            now,
            mut seen,
            unsafe_dirs,
        } = parse_lines(out);
        if version.as_deref() != Some(mq_lock::PROTOCOL_VERSION) {
            return Err(version.unwrap_or_default());
        }
        let long_after = long_after.as_secs();
        let mut names: Vec<(String, bool)> = inventory
            .systems()
            .iter()
            .map(|s| (s.name.clone(), true))
            .collect();
        // Locks of systems the inventory does not know still show.
        for (name, s) in &seen {
            if s.lock.is_some() && inventory.system(name).is_none() {
                names.push((name.clone(), false));
            }
        }
        let boards = names
            .into_iter()
            .map(|(system, known)| {
                let s = seen.remove(&system).unwrap_or_default();
                let mut b = board(system, known, s, inventory, now, long_after);
                b.host = host.to_string();
                b
            })
            .collect();
        Ok(LabStatus {
            version: STATUS_VERSION,
            host: host.to_string(),
            taken_at: now,
            long_after,
            boards,
            down: Vec::new(),
            unsafe_dirs,
        })
    }

    /// The boards of `names` (systems, or pools: their members), in the
    /// inventory's order; every board for none.
    pub fn only(
        mut self,
        names: &[String],
        inventory: &Inventory,
    ) -> Result<LabStatus, QueueError> {
        if names.is_empty() {
            return Ok(self);
        }
        let mut wanted = std::collections::HashSet::new();
        for name in names {
            match inventory.resolve(name)? {
                crate::Target::System(s) => {
                    wanted.insert(s.name.clone());
                }
                crate::Target::Pool(p) => wanted.extend(p.members.iter().cloned()),
            }
        }
        self.boards.retain(|b| wanted.contains(&b.system));
        Ok(self)
    }
}

fn board(
    system: String,
    known: bool,
    s: Seen,
    inventory: &Inventory,
    now: u64,
    long_after: u64,
) -> BoardStatus {
    let holder = match (&s.lock, &s.lock_file) {
        (Some((timeout, key)), Some((owner, time, text))) => {
            let since = s.key_time.unwrap_or(*time);
            Some(HolderStatus {
                owner: owner.clone(),
                key: key.clone(),
                since,
                lock_time: text.clone(),
                held_for: now.saturating_sub(since),
                timeout: timeout.clone(),
            })
        }
        _ => None,
    };
    // No file: good; a file: what it says, or unknown (as everyone reads it).
    let health = if s.health_file {
        Health::parse_or_unknown(&system, &s.health.join("\n"))
    } else {
        Health::good(&system)
    };
    let pools = inventory
        .pools()
        .iter()
        .filter(|p| p.members.contains(&system))
        .map(|p| p.name.clone())
        .collect();
    BoardStatus {
        host: String::new(),
        long_hold: holder.as_ref().is_some_and(|h| h.held_for >= long_after),
        holder,
        pools,
        known,
        health,
        waiting: s.tickets.into_values().collect(),
        last_run: s.runs.last().cloned(),
        holds: last(s.holds, HISTORY),
        runs: last(s.runs, HISTORY),
        waits: last(s.waits, HISTORY),
        health_log: last(s.changes, HISTORY),
        system,
    }
}

impl MachineQueue {
    /// The lab's status: one round trip to each lab host, however many
    /// boards, every host at once; the hosts that did not answer are in
    /// [`LabStatus::down`] (an error only when none answered).
    pub fn status(&self, long_after: Duration) -> Result<LabStatus, QueueError> {
        let all: Vec<&str> = self
            .inventory()
            .systems()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let home = self.home();
        let results = self.across(&all, |q, systems| {
            let mut status = q.status_here(long_after)?;
            let home_site = q.home() == home;
            status
                .boards
                .retain(|b| systems.contains(&b.system.as_str()) || (home_site && !b.known));
            Ok(status)
        });
        let (answers, down, first_error) = crate::sites::gather(results);
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut boards: BTreeMap<String, BoardStatus> = BTreeMap::new();
        let mut taken_at = 0;
        let mut unsafe_dirs = Vec::new();
        for status in answers {
            taken_at = taken_at.max(status.taken_at);
            unsafe_dirs.extend(status.unsafe_dirs);
            boards.extend(status.boards.into_iter().map(|b| (b.system.clone(), b)));
        }
        // The inventory's order, then the boards it does not know.
        let mut ordered: Vec<BoardStatus> = all.iter().filter_map(|s| boards.remove(*s)).collect();
        ordered.extend(boards.into_values());
        Ok(LabStatus {
            version: STATUS_VERSION,
            host: home.host,
            taken_at,
            long_after: long_after.as_secs(),
            boards: ordered,
            down,
            unsafe_dirs,
        })
    }

    /// This queue's host's part of the status (one round trip).
    fn status_here(&self, long_after: Duration) -> Result<LabStatus, QueueError> {
        let base = &self.config().base.value;
        let out = self
            .transport()
            .run(&script(base))
            .map_err(|e| QueueError::Lock(e.into()))?;
        LabStatus::parse(
            &out.stdout_text(),
            self.inventory(),
            &self.config().host.value,
            long_after,
        )
        .map_err(|found| {
            QueueError::Lock(mq_lock::LockError::VersionMismatch {
                host: self.transport().describe(),
                base: base.clone(),
                found,
            })
        })
    }
}
