//! Routing core tests: one table row per rule of the spec (quoted), then properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns too

mod fixture;
mod policy;
mod policy_v2;
mod properties;
mod rules;
mod state;
mod zones;
