//! The one SETTINGS decoder: how a message of the SETTINGS stream becomes a change to apply,
//! an audit record to skip, or an event to refuse. The follower decides with it what the
//! router's projection applies; the audit (explain, replay, what-if, lint) rebuilds settings
//! with it, so it sees exactly what the router saw.
//!
//! It lives here rather than in `switchboard-contracts` because both of its rules beyond the
//! contract are the projection's: the rejection records on `settings.<tenant>.rejected.<seq>`
//! are what the follower files (the contract knows no streams), and the version limit is what
//! the store can hold (a `BIGINT`). The contract's own part — envelope, types, validation,
//! subject — is [`SettingsChange::decode`], which this calls.

use crate::Record;
use switchboard_contracts::{ContractError, EventData, SettingsChange, SettingsRejected, entity};

/// The highest version the projection applies: the store keeps versions as signed 64-bit
/// integers. An event above it is refused (filed as a rejection), not applied.
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// What one SETTINGS message is to the projection.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A change to apply (under the per-entity version guard).
    Change(SettingsChange),
    /// One of the follower's own rejection records: only advances the position.
    Skip,
    /// An event the projection refuses (filed as a rejection by the follower); only advances
    /// the position.
    Reject(ContractError),
}

/// Decodes the SETTINGS message `payload` stored on `subject`.
pub fn decode(subject: &str, payload: &[u8]) -> Decoded {
    match SettingsChange::decode(payload, subject) {
        Ok(change) if change.version() > MAX_VERSION => Decoded::Reject(ContractError::Malformed(
            format!("`version` exceeds {MAX_VERSION}"),
        )),
        Ok(change) => Decoded::Change(change),
        // Our own audit records, on their own subjects; anything else is refused.
        Err(ContractError::UnexpectedType { found, .. })
            if found == SettingsRejected::TYPE && is_rejection_subject(subject) =>
        {
            Decoded::Skip
        }
        Err(err) => Decoded::Reject(err),
    }
}

/// `settings.<tenant>.rejected.<seq>`.
fn is_rejection_subject(subject: &str) -> bool {
    subject.split('.').nth(2) == Some(entity::REJECTED)
}

impl Decoded {
    /// The change to apply, if any.
    pub fn into_change(self) -> Option<SettingsChange> {
        match self {
            Decoded::Change(change) => Some(change),
            Decoded::Skip | Decoded::Reject(_) => None,
        }
    }
}

impl Record {
    /// The SETTINGS message at stream sequence `seq`, as the projection applies it: its change,
    /// or none for what [`decode`] skips or refuses (those only advance the position).
    pub fn decode(seq: u64, subject: &str, payload: &[u8]) -> Record {
        Record {
            seq,
            change: decode(subject, payload).into_change(),
        }
    }
}
