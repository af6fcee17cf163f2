//! Contract conformance tests: `proto/switchboard/` (v1, and v2 for `call.route`: the language-neutral definition of every
//! event's `data`), `proto/examples` and the Rust types of `switchboard-contracts` agree, and
//! the Rust decoder refuses what the contract refuses, with the documented error codes.

// The helpers and proptest strategies here are test code too (clippy.toml allows these lints
// only inside `#[test]` functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod codec;
mod hours;
mod policy;
mod proto_conformance;
mod support;
