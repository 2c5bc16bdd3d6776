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

mod acquire;
mod client;
mod error;
mod read;
mod release;
mod script;
mod state;
mod ticket;

pub use acquire::*;
pub use client::*;
pub use error::*;
pub use script::{safe_head, HISTORY_FN, SAFE_FN};
pub use state::*;
pub use ticket::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mq_transport::{ExitStatus, PtyProcess, PtySize, ReadOutcome, Transport, TransportError};
use serde::Serialize;

pub use script::PROTOCOL_VERSION;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::parse_records;
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
