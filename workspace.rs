//! The root package of the mq workspace.
//!
//! It holds no code: it exists so that the workspace-wide integration tests
//! (`tests/`) and the embedding examples (`examples/`) have a package to belong
//! to. The libraries are `mq-transport`, `mq-lock`, `mq-console` and
//! `mq-core`; the binary is `mq` in `mq-cli`.
