//! Per-tenant API keys for the gateway's JSON API (`Authorization: Bearer <key>`).
//!
//! A key is `sbk_` and 43 characters of base64url: 256 random bits, shown once when it is
//! created (`switchboard keys create`). Only its SHA-256 is stored, in the tenants' secrets
//! (`"api_keys": [{"id": "2026-12", "sha256": "<64 hex digits>"}]`), several per tenant so that
//! keys can be rotated. A fast hash is the right one here: the key is random, not a password,
//! so there is nothing to guess that a slow hash would protect; what matters is that the
//! stored form cannot be used as a key.

use crate::TenantSecrets;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use switchboard_contracts::TenantId;

/// What every key starts with: a key is recognizable in a leak scanner, and a token of
/// another kind is refused without a lookup.
pub const PREFIX: &str = "sbk_";

/// One stored API key: its id (to name it when rotating) and its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Names the key (e.g. when it was issued); unique within the tenant.
    pub id: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.id)
    }
}

impl ApiKey {
    /// The entry to add to a tenant's `api_keys` in the secrets file.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "sha256": hex(&self.sha256)})
    }
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No `Authorization: Bearer …` header.
    #[error("this endpoint needs an API key: send `Authorization: Bearer <key>`")]
    Missing,
    /// A key that no tenant has (mistyped, or revoked).
    #[error("the API key is not valid (unknown or revoked)")]
    Unknown,
    /// A key of another tenant.
    #[error("the API key does not belong to this tenant")]
    OtherTenant,
}

/// As in the secrets file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    id: String,
    sha256: String,
}

/// A new key for a tenant, with id `id`: the key itself (to hand over once) and what is stored.
pub fn generate(id: &str) -> Result<(String, ApiKey), String> {
    check_id(id)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    let key = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let stored = ApiKey {
        id: id.to_string(),
        sha256: digest(&key),
    };
    Ok((key, stored))
}

/// What is stored for an existing `key` with id `id` (to register a key made elsewhere, and in
/// tests).
pub fn stored(id: &str, key: &str) -> Result<ApiKey, String> {
    check_id(id)?;
    if !key.starts_with(PREFIX) {
        return Err(format!("an API key starts with {PREFIX:?}"));
    }
    Ok(ApiKey {
        id: id.to_string(),
        sha256: digest(key),
    })
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "API key id {id:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Checks a tenant's keys as written in the secrets file (never quoting a hash).
pub(crate) fn parse(raw: &[RawApiKey]) -> Result<Vec<ApiKey>, String> {
    let mut ids = HashSet::new();
    raw.iter()
        .map(|k| {
            check_id(&k.id)?;
            if !ids.insert(k.id.as_str()) {
                return Err(format!("API key id {:?} is listed twice", k.id));
            }
            let sha256 = unhex(&k.sha256.to_ascii_lowercase()).ok_or_else(|| {
                format!(
                    "API key {:?}: sha256 must be 64 hexadecimal digits (the key's SHA-256, as `switchboard keys create` prints it)",
                    k.id
                )
            })?;
            Ok(ApiKey {
                id: k.id.clone(),
                sha256,
            })
        })
        .collect()
}

/// Every key's hash → its tenant and id.
pub(crate) fn index(
    tenants: &HashMap<TenantId, TenantSecrets>,
) -> HashMap<[u8; 32], (TenantId, String)> {
    tenants
        .iter()
        .flat_map(|(tenant, s)| {
            s.api_keys
                .iter()
                .map(move |k| (k.sha256, (tenant.clone(), k.id.clone())))
        })
        .collect()
}

/// See [`crate::Tenants::authorize`].
pub(crate) fn authorize<'a>(
    keys: &'a HashMap<[u8; 32], (TenantId, String)>,
    tenant: &TenantId,
    authorization: Option<&str>,
) -> Result<&'a str, Denied> {
    let value = authorization.ok_or(Denied::Missing)?.trim();
    let (scheme, key) = value.split_once(' ').ok_or(Denied::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denied::Missing);
    }
    let key = key.trim();
    if !key.starts_with(PREFIX) {
        return Err(Denied::Unknown);
    }
    match keys.get(&digest(key)) {
        Some((owner, id)) if owner == tenant => Ok(id),
        Some(_) => Err(Denied::OtherTenant),
        None => Err(Denied::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_random_prefixed_and_stored_as_its_hash_only() {
        let (a, stored) = generate("k1").unwrap();
        let (b, _) = generate("k1").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        let json = stored.to_json().to_string();
        assert!(!json.contains(&a[PREFIX.len()..]), "{json}");
        assert_eq!(unhex(&hex(&stored.sha256)), Some(stored.sha256));
        assert_eq!(format!("{stored:?}"), "ApiKey(k1)");
        assert!(generate("has space").is_err());
    }
}
