//! Audit tests against a real nats-server started per test: record calls and settings on real
//! streams (through the real router, or decided in the test with the routing core), then
//! explain, replay, what-if and lint them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns too

mod explain;
mod lint;
mod policy;
mod read;
mod replay;
mod support;
mod what_if;
