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

/// Given the gateway process running with acme's key `a1`, when a second key is written to
/// the secrets file and the process gets SIGHUP, then the new key is accepted, and it was the
/// SIGHUP's reload that put it in force.
///
/// The gateway also reloads when its poll (every 2 s) sees the file's bytes change, so a key
/// that merely starts working proves nothing about SIGHUP. The poll compares contents, not
/// mtimes, so it cannot be kept from seeing the change; instead the test proves the order of
/// the reloads from the gateway's own log, where each reload is a line with its `reason`
/// ("SIGHUP" or "the tenants file changed"): once the file holds the new key, the first reload
/// must be the SIGHUP's (a SIGHUP reload records the file's bytes, so the poll then sees no
/// change and never reloads it again). To leave the poll no chance to come first, the test
/// first lines up with the poll's period: it rewrites the file with the same tenants, waits
/// for the poll's reload, then at once writes the new key and signals, ~2 s before the next
/// poll. (A stall of that length makes the test fail, never pass wrongly.) Waiting for that
/// first reload also proves the watcher, whose SIGHUP handler is installed before its loop,
/// runs: a SIGHUP before that would end the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_to_the_file_is_in_force_after_sighup() {
    const NEW_KEY: &str = "sbk_acme2222222222222222222222222222222222222222";
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.json");
    std::fs::write(&file, tenants_json(&[("a1", ACME_KEY)]).to_string()).unwrap();
    let log = dir.path().join("gateway.log");
    let http_port = reserve_port();
    let http = http_port.addr();
    let gateway = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
            .env("NATS_URL", nats.url())
            .env("SWITCHBOARD_HTTP_ADDR", http.to_string())
            .env("SWITCHBOARD_PUBLIC_BASE_URL", PUBLIC)
            .env("SWITCHBOARD_TENANTS_FILE", &file)
            .env("RUST_LOG", "info")
            .env_remove("SWITCHBOARD_TENANTS_JSON")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            // Not a terminal: one JSON object per line.
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // The reloads so far, in order: (reason, API keys in force after it).
    let reloads = || -> Vec<(String, u64)> {
        read_log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line["message"] == "tenants reloaded")
            .map(|line| {
                (
                    line["reason"].as_str().unwrap_or_default().to_string(),
                    line["api_keys"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    eventually(WAIT, "the gateway to be ready", || async move {
        tokio::net::TcpStream::connect(http).await.ok()?;
        (get(http, "/readyz").await.status == 200).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));
    let path = "/v1/tenants/acme/calls";
    let status = |key: &'static str, id: String| async move {
        post_json_as(http, path, Some(&format!("Bearer {key}")), &call(&id))
            .await
            .status
    };
    assert_eq!(status(ACME_KEY, "h-0".into()).await, 202);
    assert_eq!(status(NEW_KEY, "h-1".into()).await, 401);

    // Line up with the poll: the same tenants, other bytes.
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&tenants_json(&[("a1", ACME_KEY)])).unwrap(),
    )
    .unwrap();
    eventually(WAIT, "the poll to reload the rewritten file", || async {
        (!reloads().is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));
    assert_eq!(
        reloads(),
        [("the tenants file changed".to_string(), 2)],
        "{}",
        read_log()
    );

    std::fs::write(
        &file,
        tenants_json(&[("a1", ACME_KEY), ("a2", NEW_KEY)]).to_string(),
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gateway.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut n = 0;
    eventually(WAIT, "the added key to be accepted", || {
        n += 1;
        let attempt = status(NEW_KEY, format!("h-2-{n}"));
        async move { (attempt.await == 202).then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));
    // The reload is logged just after it is in force.
    eventually(WAIT, "the second reload to be logged", || async {
        (reloads().len() >= 2).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));
    assert_eq!(
        reloads()[1],
        ("SIGHUP".to_string(), 3),
        "the first reload of the new key must be the SIGHUP's:\n{}",
        read_log()
    );
    assert_eq!(status(ACME_KEY, "h-3".into()).await, 202, "both keys work");
    let metrics = get(http, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_tenants_reloads_total{outcome=\"ok\"} 2"),
        "two reloads, the poll's and the SIGHUP's:\n{metrics}"
    );
    drop(gateway);
}
