//! The root package of the mq workspace.
//!
//! It holds no code: it exists so that the workspace-wide integration tests
//! (`tests/`) and the embedding examples (`examples/`) have a package to belong
//! to. The libraries are `mq-transport`, `mq-lock`, `mq-console`, `mq-core`
//! and `mq-lab` (the lab side: board runner, lab files, `mq lab init`); the
//! binary is `mq` in `mq-cli`; `mq-testkit` is the tests' own.
