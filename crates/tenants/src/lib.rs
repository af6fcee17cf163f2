//! The tenants a deployment serves and their secrets, from a JSON secrets file and/or an
//! environment variable — one format for the gateway (webhook signatures, API keys) and the
//! dialer (the carrier's REST API). Tokens live in `SecretString`: `Debug` prints `[REDACTED]`,
//! nothing here ever formats one. API keys are stored as their SHA-256 only ([`api_keys`]).
//! [`LiveTenants`] reloads the secrets on change or on SIGHUP, without a restart.
//!
//! Must not: log, print or serialize a secret.

pub mod api_keys;
mod live;

pub use api_keys::{ApiKey, Denied};
pub use live::{Check, LiveTenants};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use switchboard_contracts::TenantId;

/// One tenant's carrier credentials.
#[derive(Debug, Clone)]
pub struct TenantSecrets {
    /// The Twilio auth token: the HMAC key of `X-Twilio-Signature` (gateway) and the HTTP Basic
    /// password of the REST API (dialer).
    pub twilio_auth_token: SecretString,
    /// The Twilio account (`AC…`): webhooks naming another `AccountSid` get 403 (gateway); the
    /// HTTP Basic user and the path of the REST API (dialer).
    pub twilio_account_sid: Option<String>,
    /// Seconds a caller may wait for a dialer instruction before the gateway's dead-man's
    /// switch plays the call's final action; `None` is the gateway's default. Within
    /// [`NO_INSTRUCTION_TIMEOUT_SECS`].
    pub no_instruction_timeout_secs: Option<u32>,
    /// The tenant's API keys (hashes only): several, so that a key can be rotated.
    pub api_keys: Vec<ApiKey>,
}

/// The limits of a tenant's `no_instruction_timeout_secs`: long enough for a chain's step to
/// be handed over, short enough that a caller never waits minutes in ringback.
pub const NO_INSTRUCTION_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 15..=300;

/// Why the tenants could not be loaded (fatal at start-up).
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    /// The file could not be read.
    #[error("failed to read the tenants file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON is not a map of tenant id to secrets. The message never quotes the input.
    #[error("invalid tenants JSON in {origin}: {reason}")]
    Invalid {
        /// File path or variable name.
        origin: String,
        /// Why (line and column, the offending key; never a value).
        reason: String,
    },
    /// The service cannot work with these tenants (its [`Check`] refused them).
    #[error("{0}")]
    Refused(String),
}

/// The tenants this deployment serves.
#[derive(Debug, Clone, Default)]
pub struct Tenants {
    by_id: HashMap<TenantId, TenantSecrets>,
    /// Every API key's SHA-256 → its tenant and key id.
    keys: HashMap<[u8; 32], (TenantId, String)>,
}

impl Tenants {
    /// Loads `file` then `json` (whose tenants override the file's).
    pub fn load(file: Option<&Path>, json: Option<&SecretString>) -> Result<Tenants, TenantsError> {
        let mut tenants = Tenants::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TenantsError::Read {
                path: path.display().to_string(),
                source,
            })?;
            tenants.merge(parse(&text, &path.display().to_string())?);
        }
        if let Some(json) = json {
            tenants.merge(parse(json.expose_secret(), "SWITCHBOARD_TENANTS_JSON")?);
        }
        Ok(tenants)
    }

    fn merge(&mut self, other: Tenants) {
        self.by_id.extend(other.by_id);
        self.keys = api_keys::index(&self.by_id);
    }

    /// The secrets of `tenant`, when this gateway serves it.
    pub fn get(&self, tenant: &TenantId) -> Option<&TenantSecrets> {
        self.by_id.get(tenant)
    }

    /// Whether the `Authorization` header value `authorization` holds an API key of `tenant`:
    /// the key's id, or why not — no key ([`Denied::Missing`]), a key of no tenant
    /// ([`Denied::Unknown`]), or another tenant's ([`Denied::OtherTenant`]). The key is hashed
    /// and the hash looked up; it is never compared byte by byte, so the time taken does not
    /// depend on how much of a key was right.
    pub fn authorize(
        &self,
        tenant: &TenantId,
        authorization: Option<&str>,
    ) -> Result<&str, Denied> {
        api_keys::authorize(&self.keys, tenant, authorization)
    }

    /// The tenants whose secrets cannot authenticate a carrier REST request (no account SID,
    /// or a blank one or a blank token), sorted: a service that calls the carrier refuses to
    /// start with any, so a missing credential is found at start-up, never at call time.
    pub fn lacking_rest_credentials(&self) -> Vec<TenantId> {
        let mut lacking: Vec<TenantId> = self
            .by_id
            .iter()
            .filter(|(_, s)| {
                s.twilio_account_sid
                    .as_deref()
                    .is_none_or(|sid| sid.trim().is_empty())
                    || s.twilio_auth_token.expose_secret().trim().is_empty()
            })
            .map(|(t, _)| t.clone())
            .collect();
        lacking.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        lacking
    }

    /// How many tenants.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many API keys, over all tenants.
    pub fn api_key_count(&self) -> usize {
        self.keys.len()
    }
}

/// The file's shape; the token moves into a `SecretString` at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    twilio_auth_token: String,
    #[serde(default)]
    twilio_account_sid: Option<String>,
    #[serde(default)]
    no_instruction_timeout_secs: Option<u32>,
    #[serde(default)]
    api_keys: Vec<api_keys::RawApiKey>,
}

fn parse(text: &str, origin: &str) -> Result<Tenants, TenantsError> {
    let invalid = |reason: String| TenantsError::Invalid {
        origin: origin.to_string(),
        reason,
    };
    // serde_json's messages name positions and expected types, not the values; still, keep
    // only the position so a token can never end up in a log line.
    let raw: HashMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "not a JSON object (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let mut out = HashMap::with_capacity(raw.len());
    for (id, value) in raw {
        let tenant = TenantId::new(id.as_str()).map_err(|e| invalid(e.to_string()))?;
        let raw: RawSecrets = serde_json::from_value(value).map_err(|_| {
            invalid(format!(
                "tenant {id:?}: expected {{\"twilio_auth_token\": string, \"twilio_account_sid\": string (optional), \"no_instruction_timeout_secs\": integer (optional), \"api_keys\": [{{\"id\": string, \"sha256\": 64 hex digits}}] (optional)}}"
            ))
        })?;
        if raw.twilio_auth_token.is_empty() {
            return Err(invalid(format!("tenant {id:?}: empty twilio_auth_token")));
        }
        if let Some(secs) = raw.no_instruction_timeout_secs
            && !NO_INSTRUCTION_TIMEOUT_SECS.contains(&secs)
        {
            return Err(invalid(format!(
                "tenant {id:?}: no_instruction_timeout_secs {secs} is outside {}..={}",
                NO_INSTRUCTION_TIMEOUT_SECS.start(),
                NO_INSTRUCTION_TIMEOUT_SECS.end()
            )));
        }
        let api_keys =
            api_keys::parse(&raw.api_keys).map_err(|e| invalid(format!("tenant {id:?}: {e}")))?;
        let secrets = TenantSecrets {
            twilio_auth_token: SecretString::from(raw.twilio_auth_token),
            twilio_account_sid: raw.twilio_account_sid.filter(|a| !a.is_empty()),
            no_instruction_timeout_secs: raw.no_instruction_timeout_secs,
            api_keys,
        };
        out.insert(tenant, secrets);
    }
    let keys = api_keys::index(&out);
    if keys.len() != out.values().map(|s| s.api_keys.len()).sum::<usize>() {
        return Err(invalid("the same API key is listed twice".into()));
    }
    Ok(Tenants { by_id: out, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_overrides_the_file_and_tokens_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.json");
        std::fs::write(
            &file,
            r#"{"acme": {"twilio_auth_token": "file-token", "twilio_account_sid": "AC1"},
                "beta": {"twilio_auth_token": "beta-token"}}"#,
        )
        .unwrap();
        let env = SecretString::from(r#"{"acme": {"twilio_auth_token": "env-token"}}"#);
        let tenants = Tenants::load(Some(&file), Some(&env)).unwrap();
        assert_eq!(tenants.len(), 2);
        let acme = tenants.get(&TenantId::new("acme").unwrap()).unwrap();
        assert_eq!(acme.twilio_auth_token.expose_secret(), "env-token");
        assert_eq!(acme.twilio_account_sid, None);
        let printed = format!("{tenants:?}");
        assert!(!printed.contains("token\""), "{printed}");
        assert!(!printed.contains("beta-token") && !printed.contains("env-token"));
    }

    #[test]
    fn bad_files_are_refused_without_quoting_secrets() {
        for (text, expect) in [
            (
                r#"{"a.b": {"twilio_auth_token": "s3cret"}}"#,
                "invalid tenant id",
            ),
            (r#"{"acme": {"twilio_auth_token": ""}}"#, "empty"),
            (r#"{"acme": {"token": "s3cret"}}"#, "expected"),
            (r#"{"acme": "s3cret"#, "not a JSON object"),
        ] {
            let err = parse(text, "test").unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
