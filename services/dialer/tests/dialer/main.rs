//! Dialer tests against a real nats-server and a fake Twilio REST API that enforces its
//! contract, with the dialer running in-process or as the real binary.

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod carrier;
mod chain;
mod chaos;
mod fake_twilio;
mod issue17;
mod metrics;
mod process;
mod sandbox;
mod startup;
mod support;
