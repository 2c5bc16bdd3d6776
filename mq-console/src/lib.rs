//! Console stream matching for board runs.
//!
//! This crate will hold the incremental matcher (completion and error patterns,
//! named markers, across arbitrary chunk boundaries, ignoring ANSI escapes and
//! carriage returns), console sessions with timeouts and tees, and the typed
//! outcome of a run.
//!
//! It must never depend on SSH, transports, locks, the inventory or the CLI: it
//! sees bytes from any source.
#![deny(missing_docs)]
