//! The lab side of mq: what runs on a lab host.
//!
//! * [`labfile`]: the lab file, the boards a host runs (QEMU or real hardware
//!   driven by shell commands), validated with line-numbered errors;
//! * [`runner`]: the board runner behind PROTOCOL.md's
//!   `/tftpboot/MACHINE/reboot`, watching the console with mq-console and
//!   always powering the board off;
//! * [`boardlock`]: one runner per board, in a state directory every user
//!   shares (and so trusts nothing in);
//! * [`command`]: a command board's power and staging commands, each with
//!   a deadline and an interrupt;
//! * [`init`]: `mq lab init`, a complete lab on one machine with QEMU boards;
//! * [`image`]: test images made by mq itself (an x86 Multiboot kernel).
//!
//! It may depend on `mq-console` (the console) and `mq-shell` (quoting the
//! values of command templates) only: never on SSH, the lock protocol, the
//! inventory, the job API or the CLI (a test over `cargo metadata` checks).
#![deny(missing_docs)]

pub mod boardlock;
pub mod command;
pub mod image;
pub mod init;
pub mod labfile;
pub mod runner;
