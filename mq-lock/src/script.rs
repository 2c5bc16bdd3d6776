//! The `sh` scripts each lock operation sends to the host: one script, one
//! round trip. The scripts are the `.sh` files in `src/sh/`, filled by
//! [`mq_transport::fill`]; every value is quoted with [`quote`].
//!
//! Records about locks travel NUL-separated (`system owner since content
//! key`), so a key with spaces, quotes or tabs reads back exactly.

use mq_transport::{fill, quote};

use crate::escape_line;

/// The protocol version the host's `BASE/VERSION` must hold.
pub const PROTOCOL_VERSION: &str = "5";

/// Exit codes the scripts use for their verdicts.
pub(crate) mod code {
    /// BASE/VERSION is not 5.
    pub const VERSION: i32 = 97;
    /// Already own it, both keys 0.
    pub const OWN: i32 = 10;
    /// Already own it with the same key.
    pub const OWN_KEY: i32 = 11;
    /// Retries exhausted.
    pub const GAVE_UP: i32 = 2;
    /// Release: not the owner (or not locked).
    pub const NOT_YOURS: i32 = 20;
    /// Release: wrong key.
    pub const WRONG_KEY: i32 = 21;
    /// Release: the files would not go away.
    pub const STILL_THERE: i32 = 22;
    /// Acquire: the caller's precheck refused.
    pub const REFUSED: i32 = 12;
    /// Acquire: the queue timeout ran out.
    pub const QUEUE_TIMEOUT: i32 = 13;
    /// Acquire: the lab's policy does not allow the priority asked for.
    pub const PRIORITY: i32 = 14;
}

/// The marker of the preflight line: `MQ-PRE <user> <version>`.
pub(crate) const PREFLIGHT_MARK: &str = "MQ-PRE ";
/// The marker of a holder line during a wait: `MQ-HOLDER <owner> <since>`.
pub(crate) const HOLDER_MARK: &str = "MQ-HOLDER ";
/// Printed once the lock is held, before the `then` commands' own lines:
/// `MQ-ACQUIRED <system>`.
pub(crate) const ACQUIRED_MARK: &str = "MQ-ACQUIRED ";
/// Printed once the lock is held and [`Acquire::keep_fresh`] begins.
pub(crate) const HOLDING_MARK: &str = "MQ-HOLDING";
/// A refused release: `MQ-OWNER <owner>` (empty when the lock is free).
pub(crate) const OWNER_MARK: &str = "MQ-OWNER ";
/// The count of waits a cancel ended: `MQ-CANCELLED <n>`.
pub(crate) const CANCELLED_MARK: &str = "MQ-CANCELLED ";
/// A waiter's place in line, when it or the holder changes: `MQ-PLACE <n>
/// <estimate> <held> <owner> <system>/<key>` (1: next; seconds, or `-`).
pub(crate) const PLACE_MARK: &str = "MQ-PLACE ";
/// A ticket in a line: `MQ-TICKET <system> <ticket>`, then its lines.
pub(crate) const TICKET_MARK: &str = "MQ-TICKET ";
/// One line of a ticket's file, after its [`TICKET_MARK`] line.
pub(crate) const FIELD_MARK: &str = "MQ-TF ";
/// A precheck's refusal: `MQ-REFUSED <reason>`.
pub(crate) const REFUSED_MARK: &str = "MQ-REFUSED ";
/// A lock a cleanup released: `MQ-RELEASED <system>`.
pub(crate) const RELEASED_MARK: &str = "MQ-RELEASED ";
/// Every marker the scripts print starts with this; other lines are the host's.
pub(crate) const MARK_PREFIX: &str = "MQ-";

/// Every script file, by name (for the tests that check them).
#[cfg(test)]
pub(crate) const FILES: &[(&str, &str)] = &[
    ("preflight.sh", PREFLIGHT),
    ("record_fn.sh", RECORD_FN),
    ("records.sh", RECORDS),
    ("dump_all.sh", DUMP_ALL),
    ("lockfile_fn.sh", LOCKFILE_FN),
    ("acquire.sh", ACQUIRE),
    ("own_check.sh", OWN_CHECK),
    ("member.sh", MEMBER),
    ("holder_fn.sh", HOLDER_FN),
    ("hold.sh", HOLD),
    ("handover.sh", HANDOVER),
    ("keeper.sh", KEEPER),
    ("refuse_fn.sh", REFUSE_FN),
    ("policy.sh", POLICY),
    ("queue_fn.sh", QUEUE_FN),
    ("history_fn.sh", HISTORY_FN),
    ("line.sh", LINE),
    ("release_check.sh", RELEASE_CHECK),
    ("release.sh", RELEASE),
    ("cancel.sh", CANCEL),
    ("cleanup.sh", CLEANUP),
    ("safe_fn.sh", SAFE_FN),
    ("live_fn.sh", LIVE_FN),
];

const PREFLIGHT: &str = include_str!("sh/preflight.sh");
const RECORD_FN: &str = include_str!("sh/record_fn.sh");
const RECORDS: &str = include_str!("sh/records.sh");
const DUMP_ALL: &str = include_str!("sh/dump_all.sh");
const LOCKFILE_FN: &str = include_str!("sh/lockfile_fn.sh");
const ACQUIRE: &str = include_str!("sh/acquire.sh");
const OWN_CHECK: &str = include_str!("sh/own_check.sh");
const MEMBER: &str = include_str!("sh/member.sh");
const HOLDER_FN: &str = include_str!("sh/holder_fn.sh");
const HOLD: &str = include_str!("sh/hold.sh");
const HANDOVER: &str = include_str!("sh/handover.sh");
const KEEPER: &str = include_str!("sh/keeper.sh");
const REFUSE_FN: &str = include_str!("sh/refuse_fn.sh");
const POLICY: &str = include_str!("sh/policy.sh");
const QUEUE_FN: &str = include_str!("sh/queue_fn.sh");
const LIVE_FN: &str = include_str!("sh/live_fn.sh");
/// `mq_history SYSTEM KIND LINE`: appends to this user's own history file
/// of a board under BASE/queue/SYSTEM, keeping it short (for scripts of
/// other crates that record history: a run's end). Needs [`SAFE_FN`].
pub const HISTORY_FN: &str = include_str!("sh/history_fn.sh");
const LINE: &str = include_str!("sh/line.sh");
const RELEASE_CHECK: &str = include_str!("sh/release_check.sh");
const RELEASE: &str = include_str!("sh/release.sh");
const CANCEL: &str = include_str!("sh/cancel.sh");
const CLEANUP: &str = include_str!("sh/cleanup.sh");
/// The only ways mq's scripts read and write under BASE (`mq_read`,
/// `mq_first`, `mq_tail`, `mq_in`, `mq_own`, `mq_append`, `mq_replace`):
/// never through a link, never blocking on a FIFO, bounded. Needs `b`
/// (BASE); defines `mq_me` when it is not set.
pub const SAFE_FN: &str = include_str!("sh/safe_fn.sh");

/// BASE as `b`, then [`SAFE_FN`]: what a script of another crate that
/// reads or writes under BASE starts with.
pub fn safe_head(base: &str) -> String {
    format!("b={}\n{SAFE_FN}", quote(base))
}

/// Paths of a system's lock and key files under `base`.
pub(crate) fn lock_path(base: &str, system: &str) -> String {
    format!("{base}/{system}.lock")
}

/// See [`lock_path`].
pub(crate) fn key_path(base: &str, system: &str) -> String {
    format!("{base}/{system}.key")
}

/// Who we are on the host: `None` until the preflight has run (then every
/// script runs it, folded in), `Some(user)` once it has.
pub(crate) type Known<'a> = Option<&'a str>;

/// Defines `b` (BASE) and `mq_me` (the remote user). Before the preflight has
/// run, it checks BASE/VERSION and prints the preflight line (PROTOCOL.md's
/// preflight, folded into the operation).
pub(crate) fn preamble(base: &str, known: Known<'_>) -> String {
    // Most scripts read BASE; the ones that do not still get it.
    let b = format!("# shellcheck disable=SC2034\nb={}\n", quote(base));
    match known {
        Some(user) => format!("{b}mq_me={}\n{SAFE_FN}", quote(user)),
        None => {
            b + SAFE_FN
                + &fill(
                    PREFLIGHT,
                    &[
                        ("preflight_mark", PREFLIGHT_MARK),
                        ("version", PROTOCOL_VERSION),
                        ("version_code", &code::VERSION.to_string()),
                    ],
                )
        }
    }
}

/// The [`preamble`] and the history function: what a script that releases
/// starts with, and what a caller joining several scripts sends once.
pub(crate) fn head(base: &str, known: Known<'_>) -> String {
    preamble(base, known) + HISTORY_FN
}

/// Quoted words for a `for` list.
fn words(names: &[&str]) -> String {
    names.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
}

/// The records of `systems`.
pub(crate) fn records(base: &str, known: Known<'_>, systems: &[&str]) -> String {
    let list = fill(RECORDS, &[("systems", &words(systems))]);
    format!("{}{RECORD_FN}{list}", preamble(base, known))
}

/// The records of every lock file in BASE.
pub(crate) fn dump_all(base: &str, known: Known<'_>) -> String {
    format!("{}{RECORD_FN}{DUMP_ALL}", preamble(base, known))
}

/// What an acquire writes and how it waits.
pub(crate) struct Acquire<'a> {
    pub base: &'a str,
    /// The systems any one of which will do (a pool's members), tried in
    /// this order; one for a system named on its own.
    pub systems: &'a [&'a str],
    pub key: &'a str,
    pub retry_seconds: u32,
    /// Retries after the first attempt; negative: for ever.
    pub retries: i64,
    /// The lock content written once held (PROTOCOL.md's NEWTIMEOUT).
    pub new_timeout: &'a str,
    /// Use the plain-sh emulation of `lockfile` (`sh/lockfile_fn.sh`) even
    /// where `lockfile` exists (tests).
    pub force_fallback: bool,
    /// Shell commands run once the lock is held, in the same round trip
    /// (e.g. making a job's temporary directory); empty for none.
    pub then: &'a str,
    /// Keep the lock fresh: after `then`, print `MQ-HOLDING` and touch the
    /// lock file every this many seconds until the terminal hangs up (the
    /// client closes the session, or dies). lockfile's `-l` reclaim goes by
    /// the file's age, so a live holder is never reclaimed, and a dead one
    /// is, its reclaim timeout after its last sign of life.
    pub keep_fresh: Option<u32>,
    /// Commands to hand the session over to once the lock is held (after
    /// `then`), one for each of `systems`: `MQ-HOLDING` is printed and the
    /// taken system's run in the same session, the lock kept fresh from the
    /// background (`$mq_keeper`) if asked. Empty for none.
    pub handover: &'a [&'a str],
    /// Commands run before anything else (before the wait); they may call
    /// `mq_refuse REASON` to end the acquire. Empty for none.
    pub precheck: &'a str,
    /// Place in line: a higher priority is served first.
    pub priority: i32,
    /// Give up after this many seconds of waiting.
    pub queue_timeout: Option<u64>,
    /// The pool the wait is for, if any (shown in the line).
    pub pool: &'a str,
}

/// Paths of a system's line of waiters under `base`.
pub(crate) fn queue_dir(base: &str, system: &str) -> String {
    format!("{base}/queue/{system}")
}

/// The acquire script. It refuses a lock already ours (PROTOCOL.md step 1),
/// then waits in rounds of at most five attempts, so that between rounds it
/// reports the current holder and picks up the holder's own reclaim timeout
/// (step 2). Each round is PROTOCOL.md's command line (step 3), so
/// `lockfile...'KEY' > 'BASE/SYSTEM.key'` is in its text for `cancel`.
///
/// Where the host has no procmail, `lockfile` is a shell function emulating
/// it with an exclusive create (`set -C`): same retries, same forced removal
/// of an old lock, and the same command line for `sem -cancel` to find.
///
/// It runs on a pseudo-terminal: when the client goes away, or `cancel` kills
/// the shell (the session leader), the terminal hangs up and `lockfile` dies
/// with it, so an abandoned wait never takes the lock later. Once `lockfile`
/// has succeeded, hangups are ignored until the key and timeout are written.
pub(crate) fn acquire(a: &Acquire<'_>, known: Known<'_>) -> String {
    assert!(!a.systems.is_empty(), "an acquire needs a system");
    assert!(
        a.handover.is_empty() || a.handover.len() == a.systems.len(),
        "one hand-over for each system"
    );
    // `then` runs with the user's own umask again, not PROTOCOL.md's 0111.
    let (save_umask, then) = if a.then.is_empty() {
        ("", String::new())
    } else {
        ("mq_um=$(umask)\n", format!("umask \"$mq_um\"; {}", a.then))
    };
    let hold = match (a.keep_fresh, a.handover.is_empty()) {
        (keep_fresh, false) => fill(
            HANDOVER,
            &[
                (
                    "keeper",
                    &keep_fresh
                        .map(|period| fill(KEEPER.trim_end(), &[("period", &period.to_string())]))
                        .unwrap_or_default(),
                ),
                ("holding_mark", HOLDING_MARK),
            ],
        ),
        (None, true) => String::new(),
        (Some(period), true) => fill(
            HOLD,
            &[
                ("holding_mark", HOLDING_MARK),
                ("period", &period.to_string()),
            ],
        ),
    };
    let attempts = if a.retries < 0 { -1 } else { a.retries + 1 };
    // A shell function is found before any program of the same name.
    let emulation = if a.force_fallback {
        ""
    } else {
        "command -v lockfile >/dev/null 2>&1 || "
    };
    let key = quote(a.key);
    let retry = a.retry_seconds.to_string();
    let timeout = quote(a.new_timeout);
    let members: String = a
        .systems
        .iter()
        .map(|system| {
            fill(
                MEMBER,
                &[
                    ("system", &quote(system)),
                    ("lock", &quote(&lock_path(a.base, system))),
                    ("keyfile", &quote(&key_path(a.base, system))),
                    ("key", &key),
                    ("retry", &retry),
                    ("timeout", &timeout),
                ],
            )
        })
        .collect();
    // PROTOCOL.md's step 1 is for a system named on its own: a pool's
    // members already held count as busy.
    let own_check = match a.systems {
        [system] => fill(
            OWN_CHECK,
            &[
                ("lock", &quote(&lock_path(a.base, system))),
                ("keyfile", &quote(&key_path(a.base, system))),
                ("key", &key),
                ("own", &code::OWN.to_string()),
                ("own_key", &code::OWN_KEY.to_string()),
            ],
        ),
        _ => String::new(),
    };
    let body = fill(
        ACQUIRE,
        &[
            ("save_umask", save_umask),
            ("own_check", &own_check),
            ("attempts", &attempts.to_string()),
            ("members", &members),
            ("acquired_mark", ACQUIRED_MARK),
            ("then", &then),
            ("hold", &hold),
            ("gave_up", &code::GAVE_UP.to_string()),
            ("precheck", &(policy(a.priority) + &precheck(a.precheck))),
            ("queue_timeout", &queue_timeout(a.queue_timeout)),
            ("retry", &retry),
        ],
    );
    let queue_dirs = a
        .systems
        .iter()
        .map(|s| quote(&queue_dir(a.base, s)))
        .collect::<Vec<_>>()
        .join(" ");
    let line = fill(
        QUEUE_FN,
        &[
            ("queue_dirs", &queue_dirs),
            ("priority", &a.priority.to_string()),
            ("key_text", &quote(&escape_line(a.key))),
            ("pool", &quote(&escape_line(a.pool))),
            ("place_mark", PLACE_MARK),
        ],
    );
    let holder = fill(HOLDER_FN, &[("holder_mark", HOLDER_MARK)]);
    // The caller's commands are a function, so that however they end, the
    // script's own end stays where it is; a pool's are chosen by the member
    // taken.
    let handover = match a.handover {
        [] => String::new(),
        [one] => format!("mq_handover() {{\n{}\n}}\n", one.trim_end()),
        many => {
            let cases: String = a
                .systems
                .iter()
                .zip(many)
                .map(|(system, commands)| {
                    format!("{})\n{}\n;;\n", quote(system), commands.trim_end())
                })
                .collect();
            format!("mq_handover() {{\ncase \"$mq_sys\" in\n{cases}esac\n}}\n")
        }
    };
    format!(
        "{}{emulation}{LOCKFILE_FN}{HISTORY_FN}{LIVE_FN}{line}{holder}{handover}{body}",
        preamble(a.base, known)
    )
}

/// The live tickets of `systems`' lines.
pub(crate) fn line(base: &str, known: Known<'_>, systems: &[&str]) -> String {
    preamble(base, known)
        + LIVE_FN
        + &fill(
            LINE,
            &[
                ("systems", &words(systems)),
                ("queue_base", &quote(&format!("{base}/queue"))),
                ("ticket_mark", TICKET_MARK),
                ("field_mark", FIELD_MARK),
            ],
        )
}

/// The queue timeout's check, run each round; empty for none.
fn queue_timeout(seconds: Option<u64>) -> String {
    match seconds {
        None => String::new(),
        Some(t) => format!(
            ": \"${{mq_start:=$(date +%s)}}\"\n  \
             if [ $(( $(date +%s) - mq_start )) -ge {t} ]; then mq_leave; exit {}; fi",
            code::QUEUE_TIMEOUT
        ),
    }
}

/// The lab's priority policy's check (`sh/policy.sh`), for a wait ahead of
/// others; none for the ordinary and the yielding.
fn policy(priority: i32) -> String {
    if priority <= 0 {
        return String::new();
    }
    fill(
        POLICY,
        &[
            ("priority", &priority.to_string()),
            ("refused_mark", REFUSED_MARK),
            ("code", &code::PRIORITY.to_string()),
        ],
    )
}

/// A precheck's lines, with `mq_refuse` defined for them.
fn precheck(commands: &str) -> String {
    if commands.is_empty() {
        return String::new();
    }
    let refuse = fill(
        REFUSE_FN,
        &[
            ("refused_mark", REFUSED_MARK),
            ("refused", &code::REFUSED.to_string()),
        ],
    );
    format!("{refuse}{}\n", commands.trim_end())
}

/// The release script: `before` (shell commands, e.g. removing a job's
/// temporary files, in the same round trip), then owner and key checks
/// unless `force`, then PROTOCOL.md's `rm -f KEY; sync; rm -f LOCK`.
pub(crate) fn release(
    base: &str,
    system: &str,
    key: &str,
    force: bool,
    before: &str,
    known: Known<'_>,
) -> String {
    let lock = quote(&lock_path(base, system));
    let keyfile = quote(&key_path(base, system));
    let mut s = head(base, known);
    if !before.is_empty() {
        s.push_str(before);
        s.push('\n');
    }
    if !force {
        s.push_str(&fill(
            RELEASE_CHECK,
            &[
                ("lock", &lock),
                ("keyfile", &keyfile),
                ("key", &quote(key)),
                ("owner_mark", OWNER_MARK),
                ("not_yours", &code::NOT_YOURS.to_string()),
                ("wrong_key", &code::WRONG_KEY.to_string()),
            ],
        ));
    }
    s.push_str(&fill(
        RELEASE,
        &[
            ("lock", &lock),
            ("keyfile", &keyfile),
            ("system", &quote(system)),
            ("still_there", &code::STILL_THERE.to_string()),
        ],
    ));
    s
}

/// Escapes `text` for a POSIX extended regular expression (pkill's).
fn ere_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// PROTOCOL.md's cancel pattern for a wait on `system` with `key`, written so
/// that it matches the text our acquire (and mq.sh's) puts on the command
/// line. `[l]ockfile` keeps the pattern from matching the cancelling shell's
/// own command line.
pub(crate) fn cancel_pattern(base: &str, system: Option<&str>, key: &str) -> String {
    let keyfile = match system {
        Some(system) => ere_escape(&quote(&key_path(base, system))),
        // Any system: the key file's name is whatever lies between BASE/ and .key.
        None => format!("{}/[^/']*\\.key'", ere_escape(&format!("'{base}"))),
    };
    format!("[l]ockfile.*{} > {keyfile}", ere_escape(&quote(key)))
}

/// Kills my processes waiting on `system` (or on any system) with `key`.
/// Prints `MQ-CANCELLED <n>`.
pub(crate) fn cancel(base: &str, system: Option<&str>, key: &str, known: Known<'_>) -> String {
    preamble(base, known)
        + &fill(
            CANCEL,
            &[
                ("pattern", &quote(&cancel_pattern(base, system, key))),
                ("cancelled_mark", CANCELLED_MARK),
            ],
        )
}

/// Cancels my waits with `key` on any system, then releases every lock I hold
/// whose key is `key` (among `systems`), printing `MQ-RELEASED <system>` for
/// each: a CI job's cleanup after it was cancelled, in one round trip.
pub(crate) fn cleanup(base: &str, key: &str, systems: &[&str], known: Known<'_>) -> String {
    cancel(base, None, key, known)
        + &fill(
            CLEANUP,
            &[
                ("systems", &words(systems)),
                ("key", &quote(key)),
                ("released_mark", RELEASED_MARK),
            ],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every script as it is sent, in each of its shapes.
    fn every_script() -> Vec<(String, String)> {
        let mut all = Vec::new();
        for known in [None, Some("alice")] {
            for (then, keep_fresh, force_fallback, handover) in [
                ("", None, false, ""),
                ("d=$(mktemp -d) && echo \"$d\"", Some(30), true, ""),
                ("d=$(mktemp -d)", Some(30), false, "echo \"$d\"\nexit 3"),
                ("", None, false, "exit 3"),
            ] {
                let handovers = [handover, "echo other"];
                let systems: &[&str] = if handover.is_empty() || then.is_empty() {
                    &["odroidc4_1"]
                } else {
                    &["odroidc4_1", "odroid c4 2"]
                };
                let a = Acquire {
                    base: "/var/cache/machinelocks",
                    systems,
                    key: "seL4-ci-1234-7",
                    retry_seconds: 1,
                    retries: -1,
                    new_timeout: "3660",
                    force_fallback,
                    then,
                    keep_fresh,
                    handover: if handover.is_empty() {
                        &[]
                    } else {
                        &handovers[..systems.len()]
                    },
                    precheck: if handover.is_empty() {
                        ""
                    } else {
                        "[ -e /nonexistent ] && mq_refuse 'it is bad'"
                    },
                    priority: match (handover.is_empty(), then.is_empty()) {
                        (true, _) => 0,
                        (false, true) => -3,
                        (false, false) => 5,
                    },
                    queue_timeout: (!handover.is_empty()).then_some(60),
                    pool: if handover.is_empty() { "" } else { "x86_pool" },
                };
                let shape = format!(
                    "{known:?} then={} keep={keep_fresh:?} handover={}",
                    !then.is_empty(),
                    !handover.is_empty()
                );
                all.push((format!("acquire {shape}"), acquire(&a, known)));
            }
            for force in [false, true] {
                all.push((
                    format!("release {known:?} force={force}"),
                    release("/b", "s", "k", force, "rm -rf -- '/tmp/x'", known),
                ));
            }
            all.push((
                format!("records {known:?}"),
                records("/b", known, &["a", "b c"]),
            ));
            all.push((format!("dump_all {known:?}"), dump_all("/b", known)));
            all.push((format!("line {known:?}"), line("/b", known, &["a", "b"])));
            all.push((
                format!("cancel {known:?}"),
                cancel("/b", Some("s"), "k", known),
            ));
            all.push((
                format!("cleanup {known:?}"),
                cleanup("/b", "k", &["a", "b"], known),
            ));
        }
        all
    }

    #[test]
    fn every_script_passes_dash_bash_and_shellcheck() {
        let mut problems = Vec::new();
        for (name, text) in every_script() {
            let Some(found) = mq_testkit::check_sh_script(&name, &text) else {
                return;
            };
            problems.extend(found);
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn every_script_file_is_used() {
        let sent: String = every_script().into_iter().map(|(_, t)| t).collect();
        for (file, text) in FILES {
            // The first line that is not a comment, with its placeholders cut off.
            let line = text
                .lines()
                .find(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .unwrap();
            let probe = line.split('@').next().unwrap();
            assert!(sent.contains(probe), "{file} is never sent ({probe:?})");
        }
    }

    #[test]
    fn markers_that_are_read_are_the_ones_printed() {
        let sent: String = every_script().into_iter().map(|(_, t)| t).collect();
        for mark in [
            PREFLIGHT_MARK,
            HOLDER_MARK,
            ACQUIRED_MARK,
            HOLDING_MARK,
            OWNER_MARK,
            CANCELLED_MARK,
            RELEASED_MARK,
            REFUSED_MARK,
            PLACE_MARK,
            TICKET_MARK,
            FIELD_MARK,
        ] {
            assert!(mark.starts_with(MARK_PREFIX));
            assert!(sent.contains(mark), "{mark} is never printed");
        }
        // Every MQ- word the scripts print is one of those.
        for word in sent.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if let Some(rest) = word.strip_prefix(MARK_PREFIX) {
                assert!(
                    [
                        "PRE",
                        "HOLDER",
                        "ACQUIRED",
                        "HOLDING",
                        "OWNER",
                        "CANCELLED",
                        "RELEASED",
                        "REFUSED",
                        "PLACE",
                        "TICKET",
                        "TF"
                    ]
                    .contains(&rest),
                    "MQ-{rest} is printed but never read"
                );
            }
        }
    }

    #[test]
    fn acquire_keeps_the_cancel_pattern_for_ordinary_keys() {
        let script = acquire(
            &Acquire {
                base: "/var/cache/machinelocks",
                systems: &["odroidc4_1"],
                key: "seL4-ci-1234-7",
                retry_seconds: 1,
                retries: -1,
                new_timeout: "0",
                force_fallback: false,
                then: "",
                keep_fresh: None,
                handover: &[],
                precheck: "",
                priority: 0,
                queue_timeout: None,
                pool: "",
            },
            None,
        );
        // PROTOCOL.md's text, as old clients search for it.
        let line = script
            .lines()
            .find(|l| l.contains("umask 0111 && lockfile -1"))
            .unwrap();
        let tail = line.split("lockfile").nth(1).unwrap();
        assert!(tail
            .contains("printf '%s' 'seL4-ci-1234-7' > '/var/cache/machinelocks/odroidc4_1.key'"));
        assert!(line.contains("-r \"$r\" '/var/cache/machinelocks/odroidc4_1.lock' && "));
        assert!(line.contains("chmod a-w,g+r '/var/cache/machinelocks/odroidc4_1.key'"));
    }

    #[test]
    fn cancel_pattern_is_protocols_and_does_not_match_itself() {
        let p = cancel_pattern("/var/cache/machinelocks", Some("sabre"), "k1");
        assert_eq!(
            p,
            r"[l]ockfile.*'k1' > '/var/cache/machinelocks/sabre\.key'"
        );
        let any = cancel_pattern("/b", None, "a.b");
        assert_eq!(any, r"[l]ockfile.*'a\.b' > '/b/[^/']*\.key'");
        let hostile = cancel_pattern("/b", Some("s"), "it's $(x)");
        assert_eq!(hostile, r"[l]ockfile.*'it'\\''s \$\(x\)' > '/b/s\.key'");
    }

    /// mq-core lets a run's commands ride on the acquire when both fit one
    /// exec request, allowing 8 KiB for an acquire of one system (with a
    /// health precheck) and 1 KiB for each more member of a pool.
    #[test]
    fn acquire_sizes() {
        let size = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("skylake_{i}")).collect();
            let systems: Vec<&str> = names.iter().map(String::as_str).collect();
            let handover = vec![""; 0];
            let a = Acquire {
                base: "/var/cache/machinelocks",
                systems: &systems,
                key: "seL4-ci-1234-7",
                retry_seconds: 1,
                retries: -1,
                new_timeout: "3660",
                force_fallback: false,
                then: "mq_d=$(mktemp -d) && echo \"MQ-DIR $mq_d\"",
                keep_fresh: Some(30),
                handover: &handover,
                precheck: "",
                priority: 0,
                queue_timeout: Some(600),
                pool: "x86_pool",
            };
            acquire(&a, None).len()
        };
        let one = size(1);
        // The safe-file helpers (links, FIFOs, bounded reads) cost ~4 KiB:
        // still one SSH window, sent once per run.
        assert!(one <= 12 * 1024, "an acquire of one system: {one} bytes");
        let each = (size(4) - one) / 3;
        assert!(each <= 1024, "each more member: {each} bytes");
    }
}
