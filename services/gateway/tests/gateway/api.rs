//! The JSON API for CRM producers.

use crate::support::*;
use serde_json::json;

/// Given a call posted by a CRM producer, then 202 with the event id once stored; posting
/// it again is 202 with the same id and `duplicate: true`, and CALLS holds one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_accepts_a_call_with_202_and_is_idempotent() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let call = json!({
        "call_id": "crm-0001",
        "tenant_id": "acme",
        "to": "+1 650 253 0000",
        "from": "(415) 867-5310",
        "received_at": "2025-03-14T16:20:05.120Z",
        "contact_id": "c-1001"
    });
    let first = post_json(gw.addr, "/v1/tenants/acme/calls", &call).await;
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.content_type(), "application/json");
    let body = first.json();
    assert_eq!(body["id"], "acme:crm-0001:inbound");
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["stream"], "CALLS");

    let again = post_json(gw.addr, "/v1/tenants/acme/calls", &call).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["id"], "acme:crm-0001:inbound");
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["sequence"], body["sequence"]);

    let stored = nats.read("call.inbound.acme").await;
    assert_eq!(stored.len(), 1);
    let data = &stored[0].json()["data"];
    assert_eq!(data["to"], "+16502530000");
    assert_eq!(data["from"], "(415) 867-5310");
    assert_eq!(data["contact_id"], "c-1001");
    assert_eq!(data["received_at"], "2025-03-14T16:20:05.12Z");

    // Minimal: the tenant from the path, the time of the request.
    let minimal = post_json(
        gw.addr,
        "/v1/tenants/beta/calls",
        &json!({"call_id": "crm-2", "to": "6502530000"}),
    )
    .await;
    assert_eq!(minimal.status, 202, "{}", minimal.text());
    assert_eq!(nats.count("call.inbound.beta").await, 1);
    gw.stop().await.unwrap();
}

/// Issue 16: "never refuse a call because the phone-number library's metadata does not know
/// a number": a dialed number of possible length in a range the metadata does not know (area
/// codes 555 and 411) is accepted and stored in E.164, like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_accepts_a_possible_number_the_metadata_does_not_know() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    for (call_id, to, stored) in [
        ("crm-555", "+1 555 010 0199", "+15550100199"),
        ("crm-411", "(411) 555-0100", "+14115550100"),
    ] {
        let number = switchboard_contracts::E164::parse_strict(stored).unwrap();
        assert!(!number.is_known_valid(), "{stored}: the premise");
        let call = json!({"call_id": call_id, "to": to, "from": "+1 555 010 0101"});
        let resp = post_json(gw.addr, "/v1/tenants/acme/calls", &call).await;
        assert_eq!(resp.status, 202, "{to}: {}", resp.text());
        let data = nats
            .read("call.inbound.acme")
            .await
            .into_iter()
            .map(|m| m.json()["data"].clone())
            .find(|d| d["call_id"] == call_id)
            .unwrap_or_else(|| panic!("{call_id} not stored"));
        assert_eq!(data["to"], stored);
        assert_eq!(data["from"], "+1 555 010 0101");
    }
    gw.stop().await.unwrap();
}

/// Bad input gets a 4xx with a JSON `{code, reason}` naming what is wrong; nothing is
/// published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_bad_input_with_json_reasons() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let ok = json!({"call_id": "crm-1", "to": "+16502530000"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            // A tenant no key can be for: acme's key is another tenant's.
            "/v1/tenants/nobody/calls",
            ok.clone(),
            403,
            "forbidden",
            "does not belong to this tenant",
        ),
        (
            "/v1/tenants/a.b/calls",
            ok.clone(),
            400,
            "invalid_tenant",
            "a.b",
        ),
        (
            "/v1/tenants/acme/calls",
            json!({"to": "+16502530000"}),
            400,
            "missing_field",
            "call_id",
        ),
        (
            "/v1/tenants/acme/calls",
            json!({"call_id": "x"}),
            400,
            "missing_field",
            "to",
        ),
        (
            "/v1/tenants/acme/calls",
            with("to", json!("not a number")),
            400,
            "invalid_phone",
            "to",
        ),
        (
            // Possible numbers only: nine digits after +1 is none.
            "/v1/tenants/acme/calls",
            with("to", json!("+1 650 253 000")),
            400,
            "invalid_phone",
            "wrong number of digits",
        ),
        (
            "/v1/tenants/acme/calls",
            with("call_id", json!("a b")),
            400,
            "malformed",
            "call_id",
        ),
        (
            "/v1/tenants/acme/calls",
            with("tenant_id", json!("beta")),
            400,
            "tenant_mismatch",
            "beta",
        ),
        (
            "/v1/tenants/acme/calls",
            with("contact_id", json!("c.1")),
            400,
            "invalid_id",
            "contact_id",
        ),
        (
            "/v1/tenants/acme/calls",
            with("received_at", json!("yesterday")),
            400,
            "malformed",
            "received_at",
        ),
        (
            "/v1/tenants/acme/calls",
            with("nickname", json!("x")),
            400,
            "unknown_field",
            "nickname",
        ),
        (
            "/v1/tenants/acme/calls",
            json!([1, 2]),
            400,
            "malformed",
            "call.inbound",
        ),
    ];
    for (path, body, status, code, mentions) in &cases {
        let resp = post_json(gw.addr, path, body).await;
        assert_eq!(resp.status, *status, "{path} {body}: {}", resp.text());
        assert_eq!(resp.content_type(), "application/json");
        let err = resp.json();
        assert_eq!(err["code"], *code, "{path} {body}: {err}");
        assert!(err["reason"].as_str().unwrap().contains(mentions), "{err}");
    }
    let auth = format!("Bearer {ACME_KEY}");
    // A JSON array is not a call (serde's derive would read one field by field).
    let array = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &json!(["crm-9", "acme", "+16502530000", "+14158675310"]),
    )
    .await;
    assert_eq!(array.status, 400, "{}", array.text());
    assert_eq!(array.json()["code"], "malformed");
    assert!(array.text().contains("found an array"), "{}", array.text());
    let typo = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &json!({"call_id": "crm-10", "to": "+16502530000", "fromm": "x"}),
    )
    .await;
    assert_eq!(typo.status, 400, "{}", typo.text());
    assert_eq!(typo.json()["code"], "unknown_field");
    assert!(
        typo.text().contains("`fromm`") && typo.text().contains("`from`"),
        "{}",
        typo.text()
    );
    let not_json = request(
        gw.addr,
        "POST",
        "/v1/tenants/acme/calls",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        b"{",
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["code"], "malformed");
    let form_body = request(
        gw.addr,
        "POST",
        "/v1/tenants/acme/calls",
        &[("Content-Type", FORM), ("Authorization", &auth)],
        b"call_id=1",
    )
    .await;
    assert_eq!(form_body.status, 415);
    assert_eq!(form_body.json()["code"], "unsupported_media_type");
    let no_type = request(
        gw.addr,
        "POST",
        "/v1/tenants/acme/calls",
        &[("Authorization", &auth)],
        ok.to_string().as_bytes(),
    )
    .await;
    assert_eq!(no_type.status, 415);
    let big = request_announcing(
        gw.addr,
        "/v1/tenants/acme/calls",
        "application/json",
        1 << 20,
    )
    .await;
    assert_eq!(big.status, 413);
    assert_eq!(big.json()["code"], "payload_too_large");
    let big = with("from", json!("x".repeat(70 * 1024)));
    let resp = post_json(gw.addr, "/v1/tenants/acme/calls", &big).await;
    assert_eq!(resp.status, 413);

    assert_eq!(nats.count("call.>").await, 0);
    gw.stop().await.unwrap();
}
