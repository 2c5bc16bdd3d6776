//! The `sh` text mq writes, in one place: [`quote()`] makes any value one
//! word that `sh` reads back unchanged, and [`fill`] puts such words (and
//! numbers, and other filled scripts) into a script template in one pass.
//!
//! Both the client's scripts for the lab host (mq-lock, mq-core) and the
//! lab's own board runner (mq-lab, filling a board's command templates) use
//! it. It has no dependencies and must never have any: a crate that only
//! writes shell text can be read, and trusted, at one sitting.
//!
//! ```
//! use mq_shell::{fill, quote};
//! let script = fill("rm -f -- @file@", &[("file", &quote("a b; $(x)"))]);
//! assert_eq!(script, "rm -f -- 'a b; $(x)'");
//! ```
#![deny(missing_docs)]

mod quote;
mod template;

pub use quote::{quote, quote_all};
pub use template::fill;
