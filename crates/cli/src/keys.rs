//! `switchboard keys`: the gateway's API keys, kept (as SHA-256 only) in the tenants' secrets
//! file that the gateway and the dialer read. Writing the file is all it takes: the gateway
//! reloads it within seconds (or on SIGHUP), no restart.

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use std::path::Path;
use switchboard_tenants::api_keys;

/// Creates a key with id `id` for `tenant` and returns it (to print once); adds its hash to
/// `file` when given (the file must hold the tenant), else prints the entry to add on stderr.
pub fn create(tenant: &str, id: Option<String>, file: Option<&Path>) -> anyhow::Result<String> {
    let id = id.unwrap_or_else(default_id);
    let (key, stored) = api_keys::generate(&id).map_err(anyhow::Error::msg)?;
    match file {
        Some(file) => {
            edit(file, |tenants| {
                let keys = keys_of(tenants, tenant, file)?;
                if keys.iter().any(|k| k["id"] == id.as_str()) {
                    bail!("tenant {tenant} already has a key {id:?}: choose another --id");
                }
                keys.push(stored.to_json());
                Ok(())
            })?;
            eprintln!(
                "switchboard: added key {id:?} of tenant {tenant} to {} (the gateway picks it up within seconds). The key is shown once:",
                file.display()
            );
        }
        None => eprintln!(
            "switchboard: add this to tenant {tenant}'s \"api_keys\" in the tenants' secrets file: {}\nThe key is shown once:",
            stored.to_json()
        ),
    }
    Ok(key)
}

/// Removes key `id` of `tenant` from `file`.
pub fn revoke(tenant: &str, id: &str, file: &Path) -> anyhow::Result<()> {
    edit(file, |tenants| {
        let keys = keys_of(tenants, tenant, file)?;
        let before = keys.len();
        keys.retain(|k| k["id"] != id);
        if keys.len() == before {
            bail!("tenant {tenant} has no key {id:?} in {}", file.display());
        }
        Ok(())
    })?;
    eprintln!(
        "switchboard: revoked key {id:?} of tenant {tenant} in {} (refused within seconds)",
        file.display()
    );
    Ok(())
}

/// The key ids of every tenant in `file` (never a key or a hash).
pub fn list(file: &Path, json: bool) -> anyhow::Result<()> {
    let tenants = read(file)?;
    let ids: Map<String, Value> = tenants
        .iter()
        .map(|(tenant, secrets)| {
            let ids: Vec<Value> = secrets["api_keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k["id"].clone())
                .collect();
            (tenant.clone(), Value::Array(ids))
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&ids)?);
    } else {
        for (tenant, ids) in &ids {
            let ids: Vec<&str> = ids
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "{tenant}: {}",
                if ids.is_empty() {
                    "no API key".to_string()
                } else {
                    ids.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// `k-YYYYMMDD-HHMMSS` (UTC): when the key was made, which is what rotation asks about.
fn default_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "k-{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn read(file: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the tenants file {}", file.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(tenants)) => Ok(tenants),
        _ => bail!(
            "{} is not a tenants secrets file (a JSON object of tenant id to secrets)",
            file.display()
        ),
    }
}

fn keys_of<'a>(
    tenants: &'a mut Map<String, Value>,
    tenant: &str,
    file: &Path,
) -> anyhow::Result<&'a mut Vec<Value>> {
    let Some(Value::Object(secrets)) = tenants.get_mut(tenant) else {
        bail!(
            "tenant {tenant} is not in {} (add its carrier credentials first)",
            file.display()
        );
    };
    match secrets
        .entry("api_keys")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(keys) => Ok(keys),
        _ => bail!(
            "tenant {tenant}'s api_keys in {} is not a list",
            file.display()
        ),
    }
}

/// Reads `file`, changes it, checks the result loads as the services load it, and replaces the
/// file atomically (a reader never sees half of it); its permissions are kept.
fn edit(
    file: &Path,
    change: impl FnOnce(&mut Map<String, Value>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut tenants = read(file)?;
    change(&mut tenants)?;
    let text = serde_json::to_string_pretty(&Value::Object(tenants))? + "\n";
    let check = tempfile::NamedTempFile::new_in(file.parent().unwrap_or(Path::new(".")))
        .context("cannot write beside the tenants file")?;
    std::fs::write(check.path(), &text)?;
    switchboard_tenants::Tenants::load(Some(check.path()), None)
        .map_err(|e| anyhow::anyhow!("the result would not load: {e}"))?;
    if let Ok(meta) = std::fs::metadata(file) {
        std::fs::set_permissions(check.path(), meta.permissions())?;
    }
    check
        .persist(file)
        .with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::TenantId;
    use switchboard_tenants::{Denied, Tenants};

    /// A key made by `keys create` is accepted by the services' own check for its tenant only,
    /// and `keys revoke` removes it; the file keeps the other secrets.
    #[test]
    fn created_keys_authorize_their_tenant_and_revoked_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.json");
        std::fs::write(
            &file,
            r#"{"acme": {"twilio_auth_token": "t1"}, "beta": {"twilio_auth_token": "t2"}}"#,
        )
        .unwrap();
        let key = create("acme", Some("k1".into()), Some(&file)).unwrap();
        let (acme, beta) = (
            TenantId::new("acme").unwrap(),
            TenantId::new("beta").unwrap(),
        );
        let bearer = format!("Bearer {key}");
        let tenants = Tenants::load(Some(&file), None).unwrap();
        assert_eq!(tenants.authorize(&acme, Some(&bearer)), Ok("k1"));
        assert_eq!(
            tenants.authorize(&beta, Some(&bearer)),
            Err(Denied::OtherTenant)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&key[4..]),
            "the key itself is stored: {text}"
        );
        assert!(text.contains("\"t2\""), "other secrets kept: {text}");

        assert!(
            create("acme", Some("k1".into()), Some(&file)).is_err(),
            "ids are unique"
        );
        assert!(create("nobody", None, Some(&file)).is_err());
        revoke("acme", "k1", &file).unwrap();
        let tenants = Tenants::load(Some(&file), None).unwrap();
        assert_eq!(
            tenants.authorize(&acme, Some(&bearer)),
            Err(Denied::Unknown)
        );
        assert!(revoke("acme", "k1", &file).is_err());
    }
}
