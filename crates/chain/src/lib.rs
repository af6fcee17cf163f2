//! A call's dial chain, in one place: where it stands ([`Progress`], kept in the
//! `DIAL_PROGRESS` bucket by compare-and-swap) and how it moves ([`machine`]: given the
//! progress and one input — a decision, a dial status, the carrier's answer to a claimed step,
//! an abandoned claim, the gateway's dead-man's switch — the next progress and the `call.dial`
//! events to record, and the call's `call.missed` when it ends unanswered: [`missed`]). The
//! dialer and the gateway keep only the compare-and-swap and the I/O.
//!
//! Must not: talk to the carrier, decide routes, or read a clock (time is an input).

pub mod machine;
pub mod missed;
mod store;

pub use machine::{CarrierAnswer, Clock, Failure, Input, Verdict, next};
pub use store::{
    BUCKET, Holder, Progress, ProgressStore, StepState, chain, key, leader_entry, unavailable,
};
