//! The `sh` scripts each lock operation sends to the host: one script, one
//! round trip. Every value is quoted with [`mq_transport::quote`].
//!
//! Records about locks travel NUL-separated (`system owner since content
//! key`), so a key with spaces, quotes or tabs reads back exactly.

use mq_transport::quote;

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
}

/// The marker of the preflight line: `MQ-PRE <user> <version>`.
pub(crate) const PREFLIGHT_MARK: &str = "MQ-PRE ";
/// The marker of a holder line during a wait: `MQ-HOLDER <owner> <since>`.
pub(crate) const HOLDER_MARK: &str = "MQ-HOLDER ";
/// Printed once the lock is held, before the `then` commands' own lines.
pub(crate) const ACQUIRED_MARK: &str = "MQ-ACQUIRED";

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
    let mut s = format!("b={}\n", quote(base));
    if let Some(user) = known {
        s.push_str(&format!("mq_me={}\n", quote(user)));
    } else {
        // `read` is the shell's own: no process for the version. A file
        // written on Windows ends its line with CR, which is dropped.
        s.push_str(&format!(
            "mq_v=\n{{ IFS= read -r mq_v < \"$b/VERSION\"; }} 2>/dev/null\n\
             mq_v=${{mq_v%'\r'}}\n\
             mq_me=$(whoami)\n\
             printf '{PREFLIGHT_MARK}%s %s\\n' \"$mq_me\" \"$mq_v\"\n\
             [ \"$mq_v\" = {PROTOCOL_VERSION} ] || exit {}\n",
            code::VERSION
        ));
    }
    s
}

/// A shell function printing the NUL-separated record of one system's lock,
/// or nothing when it is free. Owner and time as PROTOCOL.md (`stat`, once
/// for both: a user name has no space); contents read by the shell itself.
const RECORD_FN: &str = r#"mq_rec() {
  f="$b/$1.lock"
  [ -e "$f" ] || return 0
  ut=$(stat --format='%U %y' -- "$f" 2>/dev/null) || return 0
  c=; { IFS= read -r c < "$f"; } 2>/dev/null
  k=; { IFS= read -r k < "$b/$1.key"; } 2>/dev/null
  printf '%s\000%s\000%s\000%s\000%s\000' "$1" "${ut%% *}" "${ut#* }" "$c" "$k"
}
"#;

/// The records of `systems`.
pub(crate) fn records(base: &str, known: Known<'_>, systems: &[&str]) -> String {
    let names: Vec<String> = systems.iter().map(|s| quote(s)).collect();
    format!(
        "{}{RECORD_FN}for s in {}; do mq_rec \"$s\"; done\n",
        preamble(base, known),
        names.join(" ")
    )
}

/// The records of every lock file in BASE.
pub(crate) fn dump_all(base: &str, known: Known<'_>) -> String {
    format!(
        "{}{RECORD_FN}cd \"$b\" || exit 3\nfor f in *.lock; do [ -e \"$f\" ] || continue; mq_rec \"${{f%.lock}}\"; done\n",
        preamble(base, known)
    )
}

/// Emulates `lockfile -SLEEP [-l N] -r RETRIES FILE` with an exclusive create
/// (`set -C`) where the host has no procmail: same retries, same forced
/// removal of a lock older than N seconds. Defined as a function named
/// `lockfile`, so the command line of a wait reads as PROTOCOL.md's and old
/// clients' `sem -cancel` finds it.
const FALLBACK_FN: &str = r#"command -v lockfile >/dev/null 2>&1 || lockfile() {
  s=8; l=0; r=-1
  while [ $# -gt 1 ]; do
    case "$1" in
      -l) l=$2; shift 2 ;;
      -r) r=$2; shift 2 ;;
      -[0-9]*) s=${1#-}; shift ;;
      *) shift ;;
    esac
  done
  i=0
  while :; do
    if ( set -C; : > "$1" ) 2>/dev/null; then chmod a-w -- "$1"; return 0; fi
    if [ "$l" -gt 0 ]; then
      m=$(stat --format=%Y -- "$1" 2>/dev/null) || continue
      if [ $(( $(date +%s) - m )) -ge "$l" ]; then rm -f -- "$1"; continue; fi
    fi
    if [ "$r" -ge 0 ] && [ "$i" -ge "$r" ]; then echo "lockfile: Sorry, giving up on \"$1\"" >&2; return 73; fi
    i=$((i + 1))
    sleep "$s"
  done
}
"#;

/// What an acquire writes and how it waits.
pub(crate) struct Acquire<'a> {
    pub base: &'a str,
    pub system: &'a str,
    pub key: &'a str,
    pub retry_seconds: u32,
    /// Retries after the first attempt; negative: for ever.
    pub retries: i64,
    /// The lock content written once held (PROTOCOL.md's NEWTIMEOUT).
    pub new_timeout: &'a str,
    /// Use the plain-sh emulation even where `lockfile` exists (tests).
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
}

/// Printed once the lock is held and [`Acquire::keep_fresh`] begins.
pub(crate) const HOLDING_MARK: &str = "MQ-HOLDING";

/// The acquire script. It refuses a lock already ours (PROTOCOL.md step 1),
/// then waits in rounds of at most five attempts, so that between rounds it
/// reports the current holder and picks up the holder's own reclaim timeout
/// (step 2). Each round is PROTOCOL.md's command line (step 3), so
/// `lockfile...'KEY' > 'BASE/SYSTEM.key'` is in its text for `cancel`.
///
/// It runs on a pseudo-terminal: when the client goes away, or `cancel` kills
/// the shell (the session leader), the terminal hangs up and `lockfile` dies
/// with it, so an abandoned wait never takes the lock later. Once `lockfile`
/// has succeeded, hangups are ignored until the key and timeout are written.
pub(crate) fn acquire(a: &Acquire<'_>, known: Known<'_>) -> String {
    // `then` runs with the user's own umask again, not PROTOCOL.md's 0111.
    let (save_umask, then) = if a.then.is_empty() {
        ("", String::new())
    } else {
        ("mq_um=$(umask)\n", format!("umask \"$mq_um\"; {}", a.then))
    };
    let lock = quote(&lock_path(a.base, a.system));
    let keyfile = quote(&key_path(a.base, a.system));
    let key = quote(a.key);
    let attempts = if a.retries < 0 { -1 } else { a.retries + 1 };
    let mut s = preamble(a.base, known);
    if a.force_fallback {
        // A shell function is found before any program of the same name.
        s.push_str(&FALLBACK_FN.replace(
            "command -v lockfile >/dev/null 2>&1 || lockfile()",
            "lockfile()",
        ));
    } else {
        s.push_str(FALLBACK_FN);
    }
    s.push_str(&format!(
        r#"f={lock}
me=$mq_me
{save_umask}o=
[ -e "$f" ] && o=$(stat --format=%U -- "$f" 2>/dev/null)
if [ -n "$o" ] && [ "$o" = "$me" ]; then
  sk=$(cat -- {keyfile} 2>/dev/null)
  if [ "$sk" = 0 ] && [ {key} = 0 ]; then echo MQ-OWN; exit {own}; fi
  if [ "$sk" = {key} ]; then echo MQ-OWNKEY; exit {own_key}; fi
fi
left={attempts}
last=
L=
first=1
while :; do
  # A lock that was free a moment ago is simply tried: its holder and
  # reclaim timeout are read only once it turns out to be taken.
  if [ -z "$first" ] || [ -n "$o" ]; then
    o=$(stat --format=%U -- "$f" 2>/dev/null)
    L=
    if [ -n "$o" ]; then
      h="$o $(stat --format=%y -- "$f" 2>/dev/null)"
      [ "$h" = "$last" ] || printf '{holder}%s\n' "$h"
      last=$h
      n=$(cat -- "$f" 2>/dev/null)
      case "$n" in ''|*[!0-9]*|0) ;; *) L="-l $n" ;; esac
    fi
  fi
  first=
  if [ "$left" -lt 0 ]; then r=4; else r=$((left - 1)); [ "$r" -gt 4 ] && r=4; left=$((left - r - 1)); fi
  umask 0111 && lockfile -{retry} $L -r "$r" {lock} && {{ trap '' HUP INT TERM; rm -f {keyfile} && printf '%s' {key} > {keyfile} && chmod a-w,g+r {keyfile} && chmod u+w {lock} && printf '%s' {timeout} > {lock} && chmod a-w {lock}; }} && {{ echo MQ-ACQUIRED; {then}
{hold}exit 0; }}
  [ "$left" -eq 0 ] && {{ echo MQ-GAVEUP; exit {gave_up}; }}
  sleep {retry}
done
"#,
        own = code::OWN,
        own_key = code::OWN_KEY,
        holder = HOLDER_MARK,
        retry = a.retry_seconds,
        timeout = quote(a.new_timeout),
        gave_up = code::GAVE_UP,
        hold = match a.keep_fresh {
            None => String::new(),
            Some(period) => format!(
                "echo {HOLDING_MARK}; trap 'exit 0' HUP INT TERM; while sleep {period}; do touch -c -- {lock} 2>/dev/null; done\n"
            ),
        },
    ));
    s
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
    let mut s = preamble(base, known);
    if !before.is_empty() {
        s.push_str(before);
        s.push('\n');
    }
    if !force {
        s.push_str(&format!(
            r#"o=
[ -e {lock} ] && o=$(stat --format=%U -- {lock} 2>/dev/null)
[ -n "$o" ] && [ "$o" = "$mq_me" ] || {{ printf 'MQ-OWNER %s\n' "$o"; exit {not_yours}; }}
k=; {{ IFS= read -r k < {keyfile}; }} 2>/dev/null
[ "$k" = {key} ] || exit {wrong_key}
"#,
            key = quote(key),
            not_yours = code::NOT_YOURS,
            wrong_key = code::WRONG_KEY,
        ));
    }
    s.push_str(&format!(
        // rm's own status: the lock file may well exist again at once,
        // taken by a waiter.
        "rm -f {keyfile}; sync; rm -f {lock} || exit {}\nexit 0\n",
        code::STILL_THERE
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
    format!(
        "{}n=$(pgrep -c -u \"$mq_me\" -f {pattern})\npkill -u \"$mq_me\" -f {pattern}\nprintf 'MQ-CANCELLED %s\\n' \"${{n:-0}}\"\n",
        preamble(base, known),
        pattern = quote(&cancel_pattern(base, system, key)),
    )
}

/// Cancels my waits with `key` on any system, then releases every lock I hold
/// whose key is `key` (among `systems`), printing `MQ-RELEASED <system>` for
/// each: a CI job's cleanup after it was cancelled, in one round trip.
pub(crate) fn cleanup(base: &str, key: &str, systems: &[&str], known: Known<'_>) -> String {
    let names: Vec<String> = systems.iter().map(|s| quote(s)).collect();
    format!(
        r#"{cancel}me=$mq_me
for s in {names}; do
  f="$b/$s.lock"; k="$b/$s.key"
  [ "$(stat --format=%U -- "$f" 2>/dev/null)" = "$me" ] || continue
  [ "$(cat -- "$k" 2>/dev/null)" = {key} ] || continue
  rm -f -- "$k"; sync; rm -f -- "$f"
  printf 'MQ-RELEASED %s\n' "$s"
done
"#,
        cancel = cancel(base, None, key, known),
        names = names.join(" "),
        key = quote(key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_keeps_the_cancel_pattern_for_ordinary_keys() {
        let script = acquire(
            &Acquire {
                base: "/var/cache/machinelocks",
                system: "odroidc4_1",
                key: "seL4-ci-1234-7",
                retry_seconds: 1,
                retries: -1,
                new_timeout: "0",
                force_fallback: false,
                then: "",
                keep_fresh: None,
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
}
