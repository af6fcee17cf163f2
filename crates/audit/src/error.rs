//! Audit errors, sorted by what the caller must do.

/// Why an audit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// NATS or JetStream failed or is unreachable: try again later.
    #[error("JetStream unavailable while trying to {action}: {reason}")]
    Unavailable {
        /// What was being attempted.
        action: String,
        /// The client's error.
        reason: String,
    },
    /// The request itself is wrong (a malformed id, an unreadable settings file): fix it.
    #[error("{0}")]
    BadInput(String),
}

impl AuditError {
    /// A constructor for `map_err` that records what was being attempted.
    pub(crate) fn nats<E: std::fmt::Display>(action: impl Into<String>) -> impl FnOnce(E) -> Self {
        let action = action.into();
        move |e| AuditError::Unavailable {
            action,
            reason: e.to_string(),
        }
    }
}
