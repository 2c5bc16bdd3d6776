//! The machine queue as a library.
//!
//! `mq-core` is what a test harness or CI runner links to do everything the
//! `mq` command does, with typed results. Today it holds:
//!
//! * [`inventory`]: the fleet of systems and pools (the upstream fleet is
//!   built in; a lab can supply its own files), with the listings mq.sh prints;
//! * [`config`]: where the lab is (host, lock directory, inventory) and where
//!   each setting came from;
//! * [`queue`]: [`MachineQueue`], one connection to the lab host and the lock
//!   operations on boards named as users name them (systems or pools);
//! * [`job`]: running an image on a board (`mq run`) with progress events, a
//!   cancellation handle and a typed [`JobReport`]; cleanup on every path.
//!
//! It composes `mq-transport`, `mq-lock` and `mq-console`, and must never
//! depend on the CLI (`mq-cli`): no argument parsing, printing for humans or
//! exit codes here.
//!
//! ```
//! use mq_core::inventory::{Inventory, Target};
//!
//! let fleet = Inventory::builtin();
//! match fleet.target("x86_pool") {
//!     Some(Target::Pool(pool)) => assert!(pool.members.contains(&"skylake".to_string())),
//!     _ => unreachable!("x86_pool is a pool of the built-in fleet"),
//! }
//! assert_eq!(fleet.system("odroidc4_1").unwrap().machine, "odroidc4-1");
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod exit;
pub mod inventory;
pub mod job;
pub mod queue;

pub use config::{Config, ConfigError, Environment, Overrides, TransportKind};
pub use inventory::{Inventory, InventoryError, Pool, System, Target, UnknownTarget};
pub use job::{Cancel, JobError, JobEvent, JobReport, JobSpec};
pub use mq_console::{interrupt_on_signals, Outcome, EXIT_INFRASTRUCTURE};
pub use mq_lock::{check_key, AcquireOptions, Holder, LockError, LockState, WaitEvent};
pub use mq_transport::ssh;
pub use mq_transport::{Transport, TransportError};
pub use queue::{Choice, MachineQueue, QueueError};
