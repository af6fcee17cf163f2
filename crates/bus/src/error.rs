//! Bus errors, sorted by what the caller must do.

/// A JetStream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// NATS or JetStream is unreachable, timed out or refused for now: retry later
    /// (NAK with delay, 503 with Retry-After).
    #[error("JetStream unavailable while trying to {action}: {reason}")]
    Unavailable {
        /// What was being attempted.
        action: String,
        /// The client's error.
        reason: String,
    },
    /// The server's state contradicts what this code requires (an existing stream with another
    /// storage type, a subject no stream holds): stop and let an operator look.
    #[error("JetStream configuration conflict while trying to {action}: {reason}")]
    Conflict {
        /// What was being attempted.
        action: String,
        /// What conflicts.
        reason: String,
    },
}

impl BusError {
    pub(crate) fn unavailable(action: impl Into<String>, reason: impl ToString) -> Self {
        BusError::Unavailable {
            action: action.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn conflict(action: impl Into<String>, reason: impl ToString) -> Self {
        BusError::Conflict {
            action: action.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable { .. })
    }
}
