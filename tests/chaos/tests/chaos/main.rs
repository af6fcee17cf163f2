//! Chaos and fault suite (issue 8): the real service binaries as child processes, SIGKILLed
//! and restarted while calls are in flight; nats-server restarted; a node of a 3-node
//! JetStream cluster (R3 streams) killed and brought back; a stalled dialer; a flood of
//! malformed input; the fuzz corpora replayed. Everything is checked afterwards from the CALLS
//! stream itself and from the sandbox carrier's ledger.
//!
//! Bounded by default (inside `make test`); `make test-chaos` scales it up through
//! `SWITCHBOARD_CHAOS_CALLS` and `SWITCHBOARD_CHAOS_BAD_INPUT` (docs/reliability.md).

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod cluster;
mod corpus;
// The dialer tests' faithful Twilio stand-in, shared as is (hanging_carrier.rs uses part of it).
#[allow(dead_code)]
#[path = "../../../../services/dialer/tests/dialer/fake_twilio.rs"]
mod fake_twilio;
mod fault_support;
mod hanging_carrier;
// The fuzz harness itself (fuzz/ is not a workspace member): the corpus test replays it.
#[path = "../../../../fuzz/src/harness.rs"]
mod harness;
mod kill_restart;
mod missed_calls;
mod partition;
mod postgres_outage;
mod proxy;
mod sigstop;
mod slow_consumer;
mod support;
