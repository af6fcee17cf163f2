//! Issue 16, "Authentication": every `/v1/tenants/{tenant}/…` endpoint that is not a carrier
//! webhook needs one of the tenant's API keys (`Authorization: Bearer …`); a key for tenant A
//! is refused on tenant B's paths (403), a missing or unknown key is 401; adding, rotating or
//! revoking a key takes effect without a restart.

use crate::support::*;
use serde_json::json;
use std::time::Duration;
use switchboard_testkit::eventually;

fn call(id: &str) -> serde_json::Value {
    json!({"call_id": id, "to": "+16502530000"})
}

/// Given acme's key `a1` and beta's key, then acme's key is accepted on acme's paths only;
/// beta's key on acme's path is 403; no key, another scheme, a mistyped or made-up key are
/// 401 (with `WWW-Authenticate`); no refused request stores anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_takes_only_the_tenants_own_key() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let path = "/v1/tenants/acme/calls";
    let bearer = |key: &str| format!("Bearer {key}");

    let ok = post_json_as(gw.addr, path, Some(&bearer(ACME_KEY)), &call("k-ok")).await;
    assert_eq!(ok.status, 202, "{}", ok.text());
    // The scheme is case-insensitive (RFC 7235).
    let lower = post_json_as(
        gw.addr,
        path,
        Some(&format!("bearer {ACME_KEY}")),
        &call("k-ok-2"),
    )
    .await;
    assert_eq!(lower.status, 202, "{}", lower.text());

    let other = post_json_as(gw.addr, path, Some(&bearer(BETA_KEY)), &call("k-beta")).await;
    assert_eq!(other.status, 403, "{}", other.text());
    assert_eq!(other.json()["code"], "forbidden");

    let mistyped = format!("{}X", &ACME_KEY[..ACME_KEY.len() - 1]);
    for (what, authorization) in [
        ("no header", None),
        ("another scheme", Some(format!("Basic {ACME_KEY}"))),
        ("no key", Some("Bearer".to_string())),
        ("a mistyped key", Some(bearer(&mistyped))),
        ("not a key at all", Some(bearer("hunter2"))),
    ] {
        let resp = post_json_as(gw.addr, path, authorization.as_deref(), &call("k-no")).await;
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
        assert_eq!(resp.json()["code"], "unauthorized", "{what}");
        assert_eq!(
            resp.header("www-authenticate"),
            Some("Bearer realm=\"switchboard\""),
            "{what}"
        );
        assert!(
            !resp.text().contains(&mistyped[4..]),
            "{what}: the key is echoed"
        );
    }
    // Carrier webhooks stay signed, not keyed.
    let voice = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CAkeys", "+16502530000", ""),
    )
    .await;
    assert_eq!(voice.status, 200, "{}", voice.text());

    let stored: Vec<String> = nats
        .read("call.inbound.acme")
        .await
        .iter()
        .map(|m| m.json()["data"]["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, vec!["k-ok", "k-ok-2", "CAkeys"]);
    gw.stop().await.unwrap();
}

/// Given a running gateway with acme's key `a1`, when a second key is added to the secrets
/// file, then it is accepted within the reload bound, with no restart; when `a1` is removed
/// (rotated out), then `a1` is refused and the new key still works; a broken file keeps the
/// keys in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_added_rotated_and_revoked_without_a_restart() {
    const NEW_KEY: &str = "sbk_acme1111111111111111111111111111111111111111";
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let path = "/v1/tenants/acme/calls";
    let status = |key: &'static str, id: String| {
        let addr = gw.addr;
        async move {
            post_json_as(addr, path, Some(&format!("Bearer {key}")), &call(&id))
                .await
                .status
        }
    };
    // The file is checked every 2 s; a reload is in force well within 10 s.
    let bound = Duration::from_secs(10);
    assert_eq!(status(NEW_KEY, "r-0".into()).await, 401);

    let write = |keys: &[(&str, &str)]| {
        std::fs::write(&gw.tenants_file, tenants_json(keys).to_string()).unwrap();
    };
    write(&[("a1", ACME_KEY), ("a2", NEW_KEY)]);
    let mut n = 0;
    eventually(bound, "the added key to be accepted", || {
        n += 1;
        let attempt = status(NEW_KEY, format!("r-1-{n}"));
        async move { (attempt.await == 202).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(status(ACME_KEY, "r-2".into()).await, 202, "both keys work");

    write(&[("a2", NEW_KEY)]);
    eventually(bound, "the revoked key to be refused", || {
        n += 1;
        let attempt = status(ACME_KEY, format!("r-3-{n}"));
        async move { (attempt.await == 401).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(status(NEW_KEY, "r-4".into()).await, 202);

    // A broken file is refused (the gateway counts it); the keys in force stay.
    std::fs::write(&gw.tenants_file, "{\"acme\": ").unwrap();
    eventually(bound, "the failed reload to be counted", || async {
        let text = get(gw.addr, "/metrics").await.text();
        text.contains("switchboard_gateway_tenants_reloads_total{outcome=\"failed\"} 1")
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(status(NEW_KEY, "r-5".into()).await, 202);
    assert_eq!(status(ACME_KEY, "r-6".into()).await, 401);
    gw.stop().await.unwrap();
}
