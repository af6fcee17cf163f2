//! Gateway tests: real HTTP requests against the gateway running in-process, a real
//! nats-server, signatures computed here from Twilio's published algorithm.

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod auth;
mod callers;
mod calls;
mod dead_man;
mod dial_status;
mod health;
mod nats_down;
mod openapi;
mod screening;
mod settings;
mod startup;
mod support;
mod sync;
mod twilio;
