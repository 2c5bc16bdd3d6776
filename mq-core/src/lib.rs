//! The machine queue as a library.
//!
//! `mq-core` is what a test harness or CI runner links to do everything the
//! `mq` command does, with typed results. It composes `mq-transport`,
//! `mq-lock` and `mq-console`, and never depends on the CLI: no argument
//! parsing, printing for humans or process exits here.
//!
//! # Embedding mq
//!
//! A harness resolves the configuration as `mq` does (`MQ_*` variables,
//! `~/.mq`, its own [`Overrides`]), opens a [`MachineQueue`] (one connection
//! to the lab host) and runs [`JobSpec`]s with
//! [`MachineQueue::run_job`]: it takes a board (a system, or the first free
//! member of a pool), uploads the images, power-cycles the board, streams its
//! console until the completion text, the error text or the timeout, brings
//! the log back and releases the board, on every path. Progress arrives as
//! [`JobEvent`]s; a [`Cancel`] handle stops the job from any thread; the end
//! is a [`JobReport`] (or a [`JobError`] saying what failed, and that
//! nothing was left behind). [`exit`] maps outcomes to `mq`'s exit codes.
//!
//! ```no_run
//! use mq_core::job::{Cancel, JobEvent, JobSpec};
//! use mq_core::{Config, Environment, MachineQueue, Overrides};
//!
//! let config = Config::resolve(&Overrides::default(), &Environment::from_process())?;
//! let queue = MachineQueue::connect(config)?;
//! let spec = JobSpec {
//!     target: "odroidc4_pool".into(),
//!     files: vec!["sel4test-driver-image-arm-odroidc4".into()],
//!     completion: Some("All is well in the universe".into()),
//!     timeout: Some(600),
//!     key: "my-ci-job-1234".into(),
//!     ..JobSpec::default()
//! };
//! let report = queue.run_job(&spec, None, &Cancel::new(), &mut |event| {
//!     if let JobEvent::Console(bytes) = event {
//!         print!("{}", String::from_utf8_lossy(bytes));
//!     }
//! })?;
//! println!("{:?} on {} after {:?}", report.outcome, report.system, report.total);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The lower layers are public too: [`queue`]'s lock operations
//! ([`MachineQueue::acquire`], [`MachineQueue::info`], ...), the
//! [`inventory`] of systems and pools, and [`config`] with where each setting
//! came from. `mq-core/examples/harness.rs` in the repository is a whole harness.
//!
//! # Testing your harness
//!
//! With the `testing` feature, [`testing::TestLab`] makes a lab in a
//! temporary directory, reached with `sh` on this machine: `run_job`, locks,
//! pools and cancellation run for real, in-process, with no lab host, sshd,
//! root or QEMU. Boards are scripted from Rust ([`testing::Board`]: prints
//! these lines, never boots, dies with a status); a board can be held as
//! another client would; what the harness asked of each board and what it
//! left behind can be checked. `mq-core/examples/retrying_harness.rs` is a harness
//! with a retry policy and its tests against a `TestLab`, ready to copy.
//!
//! ```toml
//! [dev-dependencies]
//! mq-core = { version = "0.1", features = ["testing"] }
//! ```
//!
//! For checking the exact commands a piece of code sends, use
//! [`mq_transport::mock::MockTransport`] instead.
//!
//! # The fleet
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
#[cfg(test)]
mod golden;
pub mod health;
pub mod inert;
pub mod inventory;
pub mod job;
pub mod queue;
pub mod sites;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use config::{Config, ConfigError, Environment, Overrides, TransportKind};
pub use inert::{inert, inert_lines, json_safe};
pub use inventory::{Inventory, InventoryError, Pool, System, Target, UnknownTarget};
pub use job::{Cancel, JobError, JobEvent, JobReport, JobSpec};
pub use mq_console::{interrupt_on_signals, Outcome, EXIT_INFRASTRUCTURE};
pub use mq_lock::{check_key, AcquireOptions, Holder, LockError, LockState, Place, WaitEvent};
pub use mq_transport::ssh;
pub use mq_transport::{Transport, TransportError};
pub use queue::{Choice, MachineQueue, QueueError};
pub use status::LabStatus;
