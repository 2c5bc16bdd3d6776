//! The lab side of mq: what runs on a lab host.
//!
//! * [`labfile`]: the lab file, the boards a host runs (QEMU or real hardware
//!   driven by shell commands), validated with line-numbered errors;
//! * [`runner`]: the board runner behind PROTOCOL.md's
//!   `/tftpboot/MACHINE/reboot`, watching the console with mq-console and
//!   always powering the board off;
//! * [`init`]: `mq lab init`, a complete lab on one machine with QEMU boards;
//! * [`image`]: test images made by mq itself (an x86 Multiboot kernel).
//!
//! It may depend on `mq-console` and `mq-transport` (for quoting); it must
//! never depend on the lock protocol, the job API or the CLI.
#![deny(missing_docs)]

pub mod image;
pub mod init;
pub mod labfile;
pub mod runner;
