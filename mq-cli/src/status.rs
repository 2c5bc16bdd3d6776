//! `mq status`: the whole lab in one table, one round trip per look.

use std::io::{IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};

use mq_core::status::BoardStatus;
use mq_core::{exit, Config, LabStatus};

use crate::errors::failure;
use crate::flags::StatusArgs;
use crate::table::Table;
use crate::Failure;

/// Reads `2h`, `90m`, `45s`, `1d` or plain seconds.
pub(crate) fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a length of time (say 2h, 90m, 45s or 7200)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(scale)))
}

/// `3h12m`, `45m`, `20s`.
pub(crate) fn span(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// A time from the host's clock, as UTC: `2026-11-29 14:02:11Z`.
pub(crate) fn when(epoch: u64) -> String {
    let t = mq_core::job::format_rfc3339(UNIX_EPOCH + Duration::from_secs(epoch));
    let t = t.replace('T', " ");
    match t.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => t,
    }
}

/// The table of `status`.
pub(crate) fn table(status: &LabStatus) -> String {
    // A host column where the boards are on several lab hosts.
    let sited = status.boards.iter().any(|b| b.host != status.host) || !status.down.is_empty();
    let mut header = vec![
        "system", "pools", "health", "holder", "key", "since", "held", "waiting", "last run",
    ];
    if sited {
        header.insert(1, "host");
    }
    let mut t = Table::new(header);
    for b in &status.boards {
        let mut cells = row(b).to_vec();
        if sited {
            cells.insert(1, b.host.clone());
        }
        t.row(cells);
    }
    let long = status.boards.iter().filter(|b| b.long_hold).count();
    let held = status.boards.iter().filter(|b| b.holder.is_some()).count();
    let waiting: usize = status.boards.iter().map(|b| b.waiting.len()).sum();
    let mut text = format!(
        "{}{} boards, {held} held ({long} for {} or more), {waiting} waiting; host {} at {}\n",
        t.render(),
        status.boards.len(),
        span(status.long_after),
        status.host,
        when(status.taken_at)
    );
    for d in &status.down {
        text += &format!(
            "lab host {} did not answer: {} not shown ({})\n",
            d.site.host,
            d.systems.join(" "),
            d.error
        );
    }
    text
}

fn row(b: &BoardStatus) -> [String; 9] {
    let (holder, key, since, held) = match &b.holder {
        Some(h) => (
            h.owner.clone(),
            if h.key == "0" {
                String::new()
            } else {
                h.key.clone()
            },
            when(h.since),
            format!(
                "{}{}",
                span(h.held_for),
                if b.long_hold { " LONG" } else { "" }
            ),
        ),
        None => Default::default(),
    };
    let waiting = match b.waiting.len() {
        0 => String::new(),
        n => format!("{n} ({})", b.waiting[0].user),
    };
    let last = b
        .last_run
        .as_ref()
        .map_or(String::new(), |r| format!("{} {}", r.class, when(r.ended)));
    let health = if b.health.reason.is_empty() {
        b.health.state.to_string()
    } else {
        format!("{}: {}", b.health.state, b.health.reason)
    };
    [
        b.system.clone(),
        b.pools.join(" "),
        health,
        holder,
        key,
        since,
        held,
        waiting,
        last,
    ]
}

/// Says on stderr what under BASE lets one lab user tamper with another's
/// files (links, world-writable directories without the sticky bit), with
/// the admin's fix (README, "Setting up a lab host").
fn warn_unsafe(found: &[String]) {
    if found.is_empty() {
        return;
    }
    eprintln!("mq: warning: the lab host's directories are not safe to share:");
    for what in found {
        eprintln!("mq:   {}", mq_core::inert(what));
    }
    eprintln!(
        "mq: a lab admin fixes it once: remove the links, and `chmod 1777` the \
         directories (see the README, \"Setting up a lab host\")"
    );
}

/// `mq status [NAMES] [--long 2h] [--json] [--watch]`.
pub fn status(args: StatusArgs, config: Config) -> Result<(), Failure> {
    let long = parse_span(&args.long)
        .map_err(|e| Failure::new(format!("mq: --long: {e}"), exit::USAGE))?;
    let inventory = config.load_inventory()?;
    for name in &args.names {
        inventory
            .resolve(name)
            .map_err(|e| Failure::stdout(e.to_string(), exit::USAGE))?;
    }
    let queue = mq_core::MachineQueue::connect_lab(config, inventory).map_err(failure)?;
    let look = || -> Result<LabStatus, Failure> {
        queue
            .status(long)
            .map_err(failure)?
            .only(&args.names, queue.inventory())
            .map_err(failure)
    };
    if !args.watch {
        let status = look()?;
        if args.json {
            crate::emit_json(&status)?;
        } else {
            crate::emit(&table(&status))?;
        }
        warn_unsafe(&status.unsafe_dirs);
        return crate::sem::sites_down(&status.down);
    }
    let terminal = std::io::stdout().is_terminal();
    let stop = crate::sem::interrupt_flag();
    loop {
        let status = look()?;
        let text = if args.json {
            mq_core::json_safe(&serde_json::to_string(&status).unwrap_or_default()).into_owned()
                + "\n"
        } else {
            table(&status)
        };
        let mut out = std::io::stdout().lock();
        if terminal {
            // Home, the table, then clear what an older, longer one left.
            let _ = write!(out, "\x1b[H{}\x1b[J", text.replace('\n', "\x1b[K\n"));
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
        drop(out);
        for _ in 0..20 {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_and_print() {
        assert_eq!(parse_span("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_span("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_span("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_span("7200"), Ok(Duration::from_secs(7200)));
        assert!(parse_span("2 weeks").is_err());
        assert!(parse_span("h").is_err());
        assert_eq!(
            [span(20), span(2700), span(11_520)],
            ["20s", "45m", "3h12m"]
        );
        assert_eq!(when(0), "1970-01-01 00:00:00Z");
    }
}
