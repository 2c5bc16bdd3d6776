//! The machine-queue lock protocol (PROTOCOL.md, version 5) over any transport.
//!
//! This crate will hold info, mr-info, dump-all, acquire (wait, retry, reclaim),
//! release and cancel on the lab host's lock directory, each one remote command,
//! interoperable with `mq.sh` clients sharing the same boards.
//!
//! It may depend on `mq-transport` only; it must never depend on console
//! matching, the inventory, the job API or the CLI.
#![deny(missing_docs)]
