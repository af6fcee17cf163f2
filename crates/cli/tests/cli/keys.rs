//! `switchboard keys list --json`: the key ids per tenant, never a key or a hash (no NATS).

use crate::support::*;
use serde_json::json;

/// Given a tenants file and two keys created for acme, then `keys list --json` is one JSON
/// object naming each tenant's key ids (beta has none) and never the keys or their hashes.
#[tokio::test]
async fn keys_list_json_names_the_key_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.json");
    std::fs::write(
        &file,
        r#"{"acme": {"twilio_auth_token": "acme-fake-token"}, "beta": {"twilio_auth_token": "beta-fake-token"}}"#,
    )
    .unwrap();
    let file = file.display().to_string();
    let mut keys = Vec::new();
    for id in ["k1", "k2"] {
        let out = switchboard(
            dir.path(),
            &[
                "keys",
                "create",
                "--tenant",
                "acme",
                "--id",
                id,
                "--tenants-file",
                &file,
            ],
        )
        .await;
        out.code(0);
        let key = out.stdout.trim().to_string();
        assert!(key.starts_with("sbk_") && !key.contains('\n'), "{out}");
        keys.push(key);
    }

    let out = switchboard(
        dir.path(),
        &["keys", "list", "--tenants-file", &file, "--json"],
    )
    .await;
    out.code(0);
    assert_eq!(
        out.json(),
        json!({"acme": ["k1", "k2"], "beta": []}),
        "{out}"
    );
    let stored = std::fs::read_to_string(&file).unwrap();
    for key in &keys {
        assert!(!out.stdout.contains(key.as_str()) && !stored.contains(key.as_str()));
    }
    assert!(
        !out.stdout.contains("sha256"),
        "hashes are not listed: {out}"
    );
}
