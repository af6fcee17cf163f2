//! Event contract v1 — the public API of Switchboard for producers and consumers in any language.
//!
//! Responsible for: the CloudEvents 1.0 envelope (structured mode), the `data` types of every
//! event, their NATS subjects, validation of what arrives (tenant ids, entity ids, phone numbers)
//! and the JSON codec. `proto/` is the language-neutral definition of the same `data`; the
//! conformance tests keep the two in step.
//!
//! Must not: do I/O, read the clock, or know about JetStream streams and consumers (that is
//! `switchboard-bus`). Every value here is plain data so that routing and replay stay pure.

pub mod envelope;
pub mod error;
pub mod events;
pub mod ids;
pub mod phone;
pub mod reasons;
pub mod schedule;
pub mod strict;
pub mod subjects;

pub use envelope::{Envelope, EventData, RawEnvelope};
pub use error::ContractError;
pub use events::*;
pub use ids::{EntityId, TenantId};
pub use phone::{E164, PhoneError, Region};
pub use reasons::Reason;
pub use schedule::{Hours, Schedule};
