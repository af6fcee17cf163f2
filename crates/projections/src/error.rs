//! Projection errors, sorted by what the caller must do.

use sea_orm::DbErr;
use std::time::Duration;

/// Why a projection operation failed. The first group is transient (retry later, NAK the call
/// with a delay, report not ready); the second is fatal (stop and let an operator look).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The database is unreachable, busy or refused a statement for now: retry.
    #[error("database unavailable while trying to {action}: {reason}")]
    Database {
        /// What was being attempted.
        action: String,
        /// The driver's error.
        reason: String,
    },
    /// NATS or JetStream is unreachable or timed out: retry.
    #[error("JetStream unavailable while trying to {action}: {reason}")]
    Nats {
        /// What was being attempted.
        action: String,
        /// The client's error.
        reason: String,
    },
    /// The projection had not applied `wanted` when the wait ended: retry later.
    #[error(
        "projection not fresh: wanted SETTINGS sequence {wanted}, applied {applied} after {waited:?}"
    )]
    Timeout {
        /// The sequence waited for.
        wanted: u64,
        /// The sequence applied when the wait ended.
        applied: u64,
        /// How long was waited.
        waited: Duration,
    },

    /// The schema could not be brought up to date: fatal.
    #[error("migrating the projection store failed: {0}")]
    Migration(String),
    /// The store holds something the code cannot read back, or contradicts the stream (e.g. a
    /// position beyond the stream's last sequence): fatal.
    #[error("projection state is corrupt: {0}")]
    Corrupt(String),
    /// The follower task ended without reporting why (it panicked): fatal.
    #[error("the settings follower has stopped")]
    Stopped,
}

impl ProjectionError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database { .. } | Self::Nats { .. } | Self::Timeout { .. }
        )
    }

    /// Sorts a database error: connection and statement failures are transient, anything about
    /// the data itself (types, JSON, missing rows) means the store is not what we wrote.
    pub(crate) fn db(action: &str) -> impl FnOnce(DbErr) -> Self + '_ {
        move |e| match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) | DbErr::Exec(_) | DbErr::Query(_) => {
                Self::Database {
                    action: action.to_string(),
                    reason: e.to_string(),
                }
            }
            other => Self::Corrupt(format!("{action}: {other}")),
        }
    }

    pub(crate) fn nats<E: std::fmt::Display>(action: &str) -> impl FnOnce(E) -> Self + '_ {
        move |e| Self::Nats {
            action: action.to_string(),
            reason: e.to_string(),
        }
    }
}
