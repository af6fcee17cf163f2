//! Why an event was refused. Every variant is bad input: the caller rejects it with its reason
//! (a `call.rejected` event or a 4xx) and never retries it.

/// A contract violation found while decoding or validating an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// The body is not JSON, or not the shape of a CloudEvents envelope / the event's data.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// `specversion` is not `1.0`.
    #[error("unsupported CloudEvents specversion {0:?}, expected \"1.0\"")]
    SpecVersion(String),
    /// `datacontenttype` is not `application/json`.
    #[error("unsupported datacontenttype {0:?}, expected \"application/json\"")]
    DataContentType(String),
    /// The `type` is not one this consumer accepts here.
    #[error("unexpected event type {found:?}, expected {expected:?}")]
    UnexpectedType {
        /// The type the consumer accepts.
        expected: String,
        /// The type the event carried.
        found: String,
    },
    /// A required attribute or field is missing or empty.
    #[error("missing or empty field `{0}`")]
    Missing(&'static str),
    /// A tenant id outside `[A-Za-z0-9_-]{{1,64}}`.
    #[error("invalid tenant id {0:?}: must match [A-Za-z0-9_-]{{1,64}}")]
    InvalidTenant(String),
    /// An entity id (user, contact) outside `[A-Za-z0-9_-]{{1,128}}`.
    #[error("invalid {field} {value:?}: must match [A-Za-z0-9_-]{{1,128}}")]
    InvalidId {
        /// Which field.
        field: &'static str,
        /// The offending value.
        value: String,
    },
    /// A field that must be a phone number is not one. The value is masked.
    #[error("invalid phone number in `{field}` ({masked}): {reason}")]
    InvalidPhone {
        /// Which field.
        field: &'static str,
        /// The value, masked for logs.
        masked: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting that people type (a time zone, opening hours, a ring timeout, what happens
    /// after hours) is not valid; `field` is its path in the event's `data`
    /// (`working_hours.weekly.mon[0]`).
    #[error("invalid `{field}`: {reason}")]
    InvalidSetting {
        /// Which field, as a path (`business_hours.overrides[1].date`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field is too long.
    #[error("field `{field}` is longer than {max} characters")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// The NATS subject does not match the event (type, tenant or entity).
    #[error("subject {subject:?} does not match the event: expected {expected:?}")]
    SubjectMismatch {
        /// The subject the message arrived on.
        subject: String,
        /// The subject the event's type and data require.
        expected: String,
    },
    /// `version` must be at least 1.
    #[error("`version` must be at least 1")]
    Version,
    /// A settings event whose version is not newer than the entity's applied one: it changes
    /// nothing, and is recorded as refused rather than dropped in silence.
    #[error(
        "version {version} is not newer than the version {current} already applied; a change needs a higher version"
    )]
    StaleVersion {
        /// The event's version.
        version: u64,
        /// The version in force.
        current: u64,
    },
    /// A field this type does not have (strict input only: see `crate::strict`).
    #[error("unknown field `{field}`; the fields are {}", allowed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "))]
    UnknownField {
        /// The field sent.
        field: String,
        /// The fields the type has.
        allowed: &'static [&'static str],
    },
}

impl ContractError {
    /// A short, stable code for metrics labels and rejection events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::SpecVersion(_) => "spec_version",
            Self::DataContentType(_) => "data_content_type",
            Self::UnexpectedType { .. } => "unexpected_type",
            Self::Missing(_) => "missing_field",
            Self::InvalidTenant(_) => "invalid_tenant",
            Self::InvalidId { .. } => "invalid_id",
            Self::InvalidPhone { .. } => "invalid_phone",
            Self::InvalidSetting { .. } => "invalid_setting",
            Self::TooLong { .. } => "too_long",
            Self::SubjectMismatch { .. } => "subject_mismatch",
            Self::Version => "invalid_version",
            Self::UnknownField { .. } => "unknown_field",
            Self::StaleVersion { .. } => "stale_version",
        }
    }
}
