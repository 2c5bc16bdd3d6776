//! Console stream matching for board runs.
//!
//! * [`Matcher`]: incremental matching of completion texts, error texts and
//!   named markers over chunks of any size, ignoring ANSI escapes and carriage
//!   returns, with bounded memory and bounded work per byte ([`matcher`]);
//! * [`Session`]: drives any byte source to a typed [`Outcome`] (completed,
//!   error text, timeout, console closed, interrupted) with overall and boot
//!   timeouts, tees every byte to sinks as it arrives, and can keep the
//!   console connected after completion ([`session`]);
//! * [`markers`]: the seL4 marker set, and the [`markers::Diagnosis`] of a
//!   timeout ("never booted" or "booted, then hung").
//!
//! It must never depend on SSH, transports, locks, the inventory or the CLI:
//! it sees bytes from any source.
//!
//! ```
//! use mq_console::{markers, MatcherBuilder, Outcome, ReaderSource, Session, SessionOptions};
//!
//! let console = b"ELF-loader started\r\n\x1b[32mAll is well in the universe\x1b[0m\r\n".to_vec();
//! let matcher = MatcherBuilder::new()
//!     .completion("All is well in the universe")
//!     .error("FAILED")
//!     .markers(&markers::sel4_pairs())
//!     .build()
//!     .unwrap();
//! let mut log = Vec::new();
//! let report = Session::new(matcher, SessionOptions::default())
//!     .tee(&mut log)
//!     .run(&mut ReaderSource::new(std::io::Cursor::new(console.clone())))
//!     .unwrap();
//! assert!(matches!(report.outcome, Outcome::Completed { .. }));
//! assert_eq!(report.outcome.exit_code(), 0);
//! assert_eq!(report.markers[0].text, "ELF-loader started");
//! assert_eq!(log, console, "the log holds every byte, unaltered");
//! ```
#![deny(missing_docs)]

pub mod ere;
pub mod markers;
pub mod matcher;
pub mod session;

pub use matcher::{Kind, Match, Matcher, MatcherBuilder, PatternError};
pub use session::{
    interrupt_on_signals, spawn_reader, ConsoleSource, KeepAlive, Outcome, ReaderSource, Report,
    Session, SessionOptions, SourceRead, EXIT_COMPLETED, EXIT_CONSOLE_CLOSED, EXIT_ERROR_TEXT,
    EXIT_INFRASTRUCTURE, EXIT_INTERRUPTED, EXIT_TIMEOUT,
};
