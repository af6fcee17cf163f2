//! Projection tests against real SQLite files, real PostgreSQL databases and a real
//! nats-server, all started per test.

// The helpers and proptest strategies here are test code too (clippy.toml allows these lints
// only inside `#[test]` functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod connect;
mod decode;
mod follower;
mod migration;
mod properties;
mod store;
mod support;
