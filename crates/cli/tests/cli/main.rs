//! The `switchboard` binary as scripts use it: run as a process against a real nats-server (one
//! per test, on a random port) with the streams provisioned, demo settings published by
//! `settings apply` itself and, where calls are decided, the real router in this process. Every
//! `--json` output is parsed by a JSON parser and must be exactly one document on stdout, with
//! the human lines on stderr. (`explain --json` is covered with `explain`, not here.)

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod call;
mod keys;
mod settings;
mod support;
