//! How mq's commands reach the lab host.
//!
//! This crate will hold the `Transport` trait (run a command, run one on a
//! pseudo-terminal, copy files both ways) and its implementations: SSH over
//! libssh2, a local `sh -c` transport for when mq runs on the lab host itself,
//! and transports for tests (fault injection, scripted mocks).
//!
//! It must never depend on the lock protocol, console matching, the inventory or
//! the CLI: it moves bytes and runs commands, nothing more.
#![deny(missing_docs)]
