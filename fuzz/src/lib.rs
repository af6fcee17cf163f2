//! The fuzz harness (`harness.rs`), also replayed over the checked-in corpora by the chaos
//! suite's `corpus` test.

mod harness;

pub use harness::{decode_event, phone, twilio_form};
