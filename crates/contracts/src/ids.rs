//! Identifiers that end up in NATS subjects, so they are restricted to subject-safe characters.

use crate::ContractError;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;

fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A tenant (one company on the CRM platform): `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Longest accepted tenant id.
    pub const MAX_LEN: usize = 64;

    /// Validates a tenant id. `_invalid` is reserved for rejections that name no valid tenant.
    pub fn new(id: impl Into<String>) -> Result<Self, ContractError> {
        let id = id.into();
        if is_token(&id, Self::MAX_LEN) && id != Self::UNKNOWN {
            Ok(Self(id))
        } else {
            Err(ContractError::InvalidTenant(id))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `_invalid`: where rejections are filed when an event names no valid tenant.
    pub fn unknown() -> Self {
        Self(Self::UNKNOWN.to_string())
    }

    /// The reserved id of [`TenantId::unknown`].
    pub const UNKNOWN: &str = "_invalid";

    /// Like [`TenantId::new`], also accepting the reserved `_invalid` (rejection events).
    pub fn new_or_unknown(id: impl Into<String>) -> Result<Self, ContractError> {
        let id = id.into();
        if id == Self::UNKNOWN {
            Ok(Self::unknown())
        } else {
            Self::new(id)
        }
    }
}

impl TryFrom<String> for TenantId {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user or contact id as the CRM knows it: `[A-Za-z0-9_-]{1,128}` (it is a subject token).
/// Held inline up to 24 bytes: the in-memory index keeps millions of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityId(CompactString);

impl EntityId {
    /// Longest accepted entity id.
    pub const MAX_LEN: usize = 128;

    /// Validates an entity id; `field` names it in the error.
    pub fn parse(field: &'static str, id: impl Into<String>) -> Result<Self, ContractError> {
        let id = id.into();
        if is_token(&id, Self::MAX_LEN) {
            Ok(Self(CompactString::from(id)))
        } else {
            Err(ContractError::InvalidId { field, value: id })
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntityId {
    type Error = ContractError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("id", value)
    }
}

impl From<EntityId> for String {
    fn from(value: EntityId) -> Self {
        value.0.into_string()
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_pattern() {
        for ok in ["a", "acme", "ACME_co-2", &"x".repeat(64)] {
            assert!(TenantId::new(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "a.b",
            "a b",
            "a*",
            "a>",
            "ünï",
            "_invalid",
            &"x".repeat(65),
        ] {
            assert_eq!(
                TenantId::new(bad),
                Err(ContractError::InvalidTenant(bad.to_string()))
            );
        }
    }

    #[test]
    fn tenant_ids_are_validated_when_deserialized() {
        let err = serde_json::from_str::<TenantId>("\"a.b\"").unwrap_err();
        assert!(err.to_string().contains("invalid tenant id"), "{err}");
    }

    #[test]
    fn entity_ids_follow_the_pattern() {
        assert!(EntityId::parse("user_id", "u-1_A").is_ok());
        assert!(EntityId::parse("user_id", "x".repeat(129)).is_err());
        assert!(EntityId::parse("user_id", "a.b").is_err());
    }
}
