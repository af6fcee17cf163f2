//! Router tests against a real nats-server, real SQLite files and real PostgreSQL databases,
//! with the router running in-process or as the real binary.

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod changes;
mod database;
mod duplicates;
mod gate;
mod health;
mod instances;
mod nats_restart;
mod process;
mod rejections;
mod rules;
mod stale;
mod startup;
mod support;
mod tenants;
