//! Issue 16, "Settings over HTTP, and strict inputs everywhere": `PUT` and `GET
//! /v1/tenants/{tenant}/settings/{kind}/{id}` against the real gateway and nats-server.

use crate::support::*;
use serde_json::json;

async fn put(gw: &Gateway, path: &str, key: &str, body: &serde_json::Value) -> Resp {
    let auth = format!("Bearer {key}");
    request(
        gw.addr,
        "PUT",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

async fn get_as(gw: &Gateway, path: &str, key: &str) -> Resp {
    let auth = format!("Bearer {key}");
    request(gw.addr, "GET", path, &[("Authorization", &auth)], b"").await
}

/// Given a user PUT over HTTP, then it is stored in SETTINGS as a NATS producer would store it
/// (type, subject, deterministic event id), answered 201 with its sequence only after the
/// ack, and GET returns it; a retried PUT is 200 and stores nothing; an older or equal version
/// with other data is 409 naming the stored version; a newer one is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_put_and_get_with_versions() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let path = "/v1/tenants/acme/settings/user/u-1";
    let v1 = json!({"version": 1, "phone": "+12064561234", "active": true});

    let created = put(&gw, path, ACME_KEY, &v1).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["id"], "acme:user:u-1:v1");
    assert_eq!(body["stream"], "SETTINGS");
    assert_eq!(body["version"], 1);
    let stored = nats.read("settings.acme.user.u-1").await;
    assert_eq!(stored.len(), 1, "stored before the answer");
    let event = stored[0].json();
    assert_eq!(event["type"], "switchboard.settings.user.v1");
    assert_eq!(event["id"], "acme:user:u-1:v1");
    assert_eq!(event["data"]["tenant_id"], "acme");
    assert_eq!(event["data"]["user_id"], "u-1");
    assert!(
        stored[0]
            .headers
            .iter()
            .any(|(k, v)| k == "Nats-Msg-Id" && v == "acme:user:u-1:v1"),
        "{:?}",
        stored[0].headers
    );
    assert_eq!(body["sequence"], 1, "SETTINGS holds only this event");

    let got = get_as(&gw, path, ACME_KEY).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["version"], 1);
    assert_eq!(got.json()["sequence"], 1);
    assert_eq!(got.json()["data"]["phone"], "+12064561234");

    let retried = put(&gw, path, ACME_KEY, &v1).await;
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(retried.json()["duplicate"], true);
    assert_eq!(retried.json()["sequence"], 1);

    let stale = put(
        &gw,
        path,
        ACME_KEY,
        &json!({"version": 1, "phone": null, "active": true}),
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(stale.json()["code"], "stale_version");
    assert!(
        stale.json()["reason"]
            .as_str()
            .unwrap()
            .contains("not newer than the version in force 1"),
        "{}",
        stale.text()
    );

    let newer = put(
        &gw,
        path,
        ACME_KEY,
        &json!({"version": 2, "phone": null, "active": true}),
    )
    .await;
    assert_eq!(newer.status, 200, "{}", newer.text());
    assert_eq!(newer.json()["version"], 2);
    assert_eq!(nats.read("settings.acme.user.u-1").await.len(), 2);
    assert_eq!(get_as(&gw, path, ACME_KEY).await.json()["version"], 2);

    // A number is named by its E.164 digits, like its subject.
    let number = put(
        &gw,
        "/v1/tenants/acme/settings/number/16502530000",
        ACME_KEY,
        &json!({"version": 1, "forwarding_number": "+13127654321"}),
    )
    .await;
    assert_eq!(number.status, 201, "{}", number.text());
    let stored = nats.read("settings.acme.number.16502530000").await;
    assert_eq!(stored[0].json()["data"]["number"], "+16502530000");
    gw.stop().await.unwrap();
}

/// Strict input: an unknown field is refused naming it and the fields allowed; a wrong type
/// names its field; a JSON array, a contradicting id, an invalid setting, an unknown kind are
/// refused; keys are checked as on every API path; nothing refused is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_bodies_are_read_strictly() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let path = "/v1/tenants/acme/settings/user/u-1";
    for (body, status, code, mentions) in [
        (
            json!({"version": 1, "active": true, "availble": false}),
            400,
            "unknown_field",
            "`availble`; the fields are",
        ),
        (
            json!({"version": "one", "active": true}),
            400,
            "malformed",
            "`version`",
        ),
        (json!([1, "u-1"]), 400, "malformed", "found an array"),
        (
            json!({"version": 1, "user_id": "u-2", "active": true}),
            400,
            "path_mismatch",
            "u-1",
        ),
        (
            json!({"version": 1, "tenant_id": "beta", "active": true}),
            400,
            "path_mismatch",
            "acme",
        ),
        (
            json!({"version": 0, "active": true}),
            400,
            "invalid_version",
            "at least 1",
        ),
        (
            json!({"version": 1, "active": true, "working_hours": {"weekly": {"mon": [["9am", "17:00"]]}}}),
            400,
            "invalid_setting",
            "working_hours",
        ),
    ] {
        let resp = put(&gw, path, ACME_KEY, &body).await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text());
        assert_eq!(resp.json()["code"], code, "{body}: {}", resp.text());
        assert!(
            resp.json()["reason"].as_str().unwrap().contains(mentions),
            "{body}: {}",
            resp.text()
        );
    }
    let unknown = put(
        &gw,
        "/v1/tenants/acme/settings/team/t-1",
        ACME_KEY,
        &json!({"version": 1}),
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "unknown_kind");
    let other = put(&gw, path, BETA_KEY, &json!({"version": 1, "active": true})).await;
    assert_eq!(other.status, 403, "{}", other.text());
    let missing = get(gw.addr, path).await;
    assert_eq!(missing.status, 401);
    let none = get_as(&gw, path, ACME_KEY).await;
    assert_eq!(none.status, 404);
    assert_eq!(none.json()["code"], "not_found");

    assert_eq!(
        nats.count("settings.>").await,
        0,
        "nothing refused is stored"
    );
    gw.stop().await.unwrap();
}

/// Given a user at version 1, then a version 2 a NATS producer published with a body the router
/// refuses (a wrong type), with the deterministic event id: GET still shows version 1, the
/// one in force (not "refused"); a corrected version 2 PUT is 409 `version_spent` — JetStream
/// remembers the refused event's id, so it would not be stored, and the API never answers
/// "already stored" for another body; version 3 is stored and in force; version 1 again is
/// 409 `stale_version` against the version in force, 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_spent_by_a_refused_event_is_reported_never_taken_as_stored() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let path = "/v1/tenants/acme/settings/user/u-9";
    let v1 = json!({"version": 1, "phone": "+12064561234", "active": true});
    assert_eq!(put(&gw, path, ACME_KEY, &v1).await.status, 201);

    let refused = json!({
        "specversion": "1.0",
        "id": "acme:user:u-9:v2",
        "source": "/crm/producer",
        "type": "switchboard.settings.user.v1",
        "time": "2026-12-05T10:00:00Z",
        "subject": "u-9",
        "datacontenttype": "application/json",
        "data": {"tenant_id": "acme", "user_id": "u-9", "version": 2, "active": "yes"}
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "acme:user:u-9:v2");
    let ack = nats
        .js
        .publish_with_headers(
            "settings.acme.user.u-9",
            headers,
            refused.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 2);

    let got = get_as(&gw, path, ACME_KEY).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        got.json()["version"],
        1,
        "the refused event is not in force"
    );
    assert_eq!(got.json()["sequence"], 1);

    let corrected = json!({"version": 2, "phone": "+12064561234", "active": false});
    let spent = put(&gw, path, ACME_KEY, &corrected).await;
    assert_eq!(spent.status, 409, "{}", spent.text());
    assert_eq!(spent.json()["code"], "version_spent");
    let reason = spent.json()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("SETTINGS #2") && reason.contains("use version 3"),
        "{reason}"
    );
    assert_eq!(
        nats.read("settings.acme.user.u-9").await.len(),
        2,
        "nothing stored"
    );

    let v3 = json!({"version": 3, "phone": "+12064561234", "active": false});
    let stored = put(&gw, path, ACME_KEY, &v3).await;
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(stored.json()["duplicate"], false);
    assert_eq!(get_as(&gw, path, ACME_KEY).await.json()["version"], 3);

    let stale = put(&gw, path, ACME_KEY, &v1).await;
    assert_eq!(stale.status, 409, "{}", stale.text());
    assert_eq!(stale.json()["code"], "stale_version");
    gw.stop().await.unwrap();
}
