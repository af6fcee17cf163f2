//! Issue 16, "A call in one lookup": `GET /v1/tenants/{tenant}/calls/{call_id}` against the
//! real gateway (its call indexer running), the real router and nats-server; and the lookup's
//! completeness when the index does not exist yet or is behind.

use crate::support::*;
use crate::sync::Router;
use serde_json::{Value, json};
use switchboard_bus::{INDEX, Publisher, TraceContext};
use switchboard_contracts::{CallInbound, Envelope, TenantId, subjects};
use switchboard_testkit::eventually;
use time::OffsetDateTime;

const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+14155550100";
const COMPANY: &str = "+16502530001";
const CALLER: &str = "+14158675310";

async fn get_as(gw: &Gateway, path: &str, key: Option<&str>) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    request(gw.addr, "GET", path, &headers, b"").await
}

async fn put_as(gw: &Gateway, path: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {ACME_KEY}");
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

/// Waits until the lookup of `path` answers 200 and `ready` holds for its body.
async fn lookup_until(
    gw: &Gateway,
    path: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    eventually(WAIT, what, || async {
        let answer = get_as(gw, path, Some(ACME_KEY)).await;
        if answer.status != 200 {
            return None;
        }
        let body = answer.json();
        ready(&body).then_some(body)
    })
    .await
    .unwrap()
}

/// Given settings put over the API and a call whose id is not a valid subject token, when the
/// router has decided it, then one GET returns the inbound event, the decision (chain, final
/// action, rendered explanation and reasons), the settings in force as objects with their
/// sequences, "replay agrees" as a field, every number masked, found through the index (no
/// scan); unknown ids are 404, a malformed id 400, other tenants' keys 403, no key 401, and
/// the call is invisible on another tenant's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_found_by_id_in_one_lookup() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let router = Router::start(&nats.url()).await;
    let company = put_as(
        &gw,
        "/v1/tenants/acme/settings/company/main",
        &json!({"version": 1, "company_phone": COMPANY}),
    )
    .await;
    assert_eq!(company.status, 201, "{}", company.text());
    let number = put_as(
        &gw,
        "/v1/tenants/acme/settings/number/16502530000",
        &json!({"version": 1, "forwarding_number": FORWARDING}),
    )
    .await;
    assert_eq!(number.status, 201, "{}", number.text());
    let call_id = "crm.7*>";
    let posted = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &json!({"call_id": call_id, "to": DIALED, "from": CALLER}),
    )
    .await;
    assert_eq!(posted.status, 202, "{}", posted.text());

    let path = "/v1/tenants/acme/calls/crm.7%2A%3E";
    let life = lookup_until(&gw, path, "the decision to be stored and indexed", |b| {
        b["decisions"].as_array().is_some_and(|d| !d.is_empty())
            && b["lookup"]["scanned_from"].is_null()
    })
    .await;

    assert_eq!(life["call_id"], call_id);
    assert_eq!(life["tenant_id"], "acme");
    assert_eq!(
        life["lookup"]["indexed"], 2,
        "inbound and decision: {life:#}"
    );
    assert_eq!(life["inbound"][0]["to"], "+16*******00");
    let decision = &life["decisions"][0];
    assert_eq!(decision["rule"], "forwarding_number");
    assert_eq!(decision["chain"][0]["rule"], "forwarding_number");
    assert_eq!(decision["chain"][0]["number"], "+14*******00");
    assert_eq!(decision["chain"][1]["rule"], "company_phone");
    assert_eq!(decision["final_action"]["kind"], "voicemail");
    assert!(decision["seq"].as_u64().unwrap() > life["inbound"][0]["seq"].as_u64().unwrap());
    assert_eq!(
        decision["settings_seq"], 2,
        "both settings events were in force"
    );
    let explanation = decision["explanation"].as_array().unwrap();
    assert!(
        !explanation.is_empty() && explanation.iter().all(Value::is_string),
        "{explanation:?}"
    );
    assert!(
        decision["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["code"].is_string()),
        "{decision:#}"
    );
    let settings = life["settings"].as_array().unwrap();
    let kinds: Vec<(&str, u64)> = settings
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("company", 1), ("number", 2)], "{life:#}");
    assert_eq!(settings[1]["data"]["forwarding_number"], "+14*******00");
    assert_eq!(settings[1]["version"], 1);
    assert_eq!(life["replay"]["agrees"], true, "{life:#}");
    assert_eq!(life["replay"]["differences"], json!([]));
    assert_eq!(
        life["lookup"]["settings_scanned"], false,
        "read through the index"
    );
    let text = life.to_string();
    for full in [DIALED, FORWARDING, COMPANY, CALLER] {
        assert!(!text.contains(full), "{full} unmasked in {text}");
    }
    // The index holds the call under its escaped id.
    let index = nats.js.get_stream(INDEX).await.unwrap();
    let entry = index
        .direct_get_first_for_subject(subjects::call_index(call_id))
        .await
        .unwrap();
    assert_eq!(entry.subject.as_str(), "index.call.crm_2E7_2A_3E");

    let unknown = get_as(&gw, "/v1/tenants/acme/calls/crm-404", Some(ACME_KEY)).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(unknown.json()["code"], "call_not_found");
    let malformed = get_as(&gw, "/v1/tenants/acme/calls/crm%207", Some(ACME_KEY)).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert_eq!(malformed.json()["code"], "invalid_call_id");
    assert_eq!(get_as(&gw, path, Some(BETA_KEY)).await.status, 403);
    assert_eq!(get_as(&gw, path, None).await.status, 401);
    let elsewhere = get_as(&gw, "/v1/tenants/beta/calls/crm.7%2A%3E", Some(BETA_KEY)).await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.text());

    router.stop().await;
    gw.stop().await.unwrap();
}

async fn publish_inbound(nats: &Nats, call_id: &str) -> u64 {
    let call = CallInbound {
        call_id: call_id.into(),
        tenant_id: TenantId::new("acme").unwrap(),
        to: DIALED.into(),
        from: CALLER.into(),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    };
    Publisher::new(nats.js.clone())
        .publish(
            &Envelope::new(call, "/switchboard/test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap()
        .sequence
}

/// Given calls stored while no gateway indexed (a stream older than the index, or every
/// gateway running with `--call-index false`), a lookup still finds them by scanning what the
/// index does not cover, and says so; a gateway that indexes catches up from CALLS' first
/// message, after which the same lookup reads the index alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_is_complete_before_and_while_the_index_catches_up() {
    let nats = Nats::start().await;
    let first = publish_inbound(&nats, "CA-before-index").await;
    let path_first = "/v1/tenants/acme/calls/CA-before-index";

    // No indexer has ever run: the whole of CALLS is scanned.
    let gw = Gateway::start(&nats.url(), &["--call-index", "false"]).await;
    let life = lookup_until(&gw, path_first, "the unindexed call", |_| true).await;
    assert_eq!(life["inbound"][0]["seq"], first);
    assert_eq!(
        life["lookup"],
        json!({"indexed": 0, "scanned_from": 1, "settings_scanned": false})
    );
    gw.stop().await.unwrap();

    // A gateway that indexes catches up from the first message.
    let gw = Gateway::start(&nats.url(), &[]).await;
    let life = lookup_until(&gw, path_first, "the old call to be indexed", |b| {
        b["lookup"]["scanned_from"].is_null()
    })
    .await;
    assert_eq!(life["lookup"]["indexed"], 1);
    gw.stop().await.unwrap();

    // Stored while no indexer runs: found past the index's floor.
    let second = publish_inbound(&nats, "CA-after-index").await;
    let gw = Gateway::start(&nats.url(), &["--call-index", "false"]).await;
    let life = lookup_until(
        &gw,
        "/v1/tenants/acme/calls/CA-after-index",
        "the new call",
        |_| true,
    )
    .await;
    assert_eq!(life["inbound"][0]["seq"], second);
    assert_eq!(
        life["lookup"],
        json!({"indexed": 0, "scanned_from": first + 1, "settings_scanned": false}),
        "scanned from just past what the index covers"
    );
    let life = lookup_until(&gw, path_first, "the indexed call", |_| true).await;
    assert_eq!(
        life["lookup"],
        json!({"indexed": 1, "scanned_from": first + 1, "settings_scanned": false})
    );
    gw.stop().await.unwrap();
}

/// Given a caller whose number was entered in different forms on several contacts over time —
/// one that has it (national format), one that had it and lost it before the call, one that
/// gets it only after the decision — when the decision is looked up, then the settings in force
/// are read entity by entity through the contact-phone index as of the decision's sequence
/// (nothing scanned), exactly those the decision read are shown (the owning contact and its
/// user, not the others), and the decision made again from them agrees with the recorded one
/// (reading the later contact, or missing the earlier owner, would make it disagree).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_in_force_are_read_through_the_contact_phone_index() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let router = Router::start(&nats.url()).await;
    let put = |path: &'static str, body: Value| {
        let gw = &gw;
        async move {
            let answer = put_as(gw, path, &body).await;
            assert!(
                matches!(answer.status, 200 | 201),
                "{path}: {}",
                answer.text()
            );
        }
    };
    put(
        "/v1/tenants/acme/settings/company/main",
        json!({"version": 1, "company_phone": COMPANY}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/number/16502530000",
        json!({"version": 1, "forwarding_number": FORWARDING}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/user/u-owner",
        json!({"version": 1, "phone": "+12065550101", "active": true}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/user/u-other",
        json!({"version": 1, "phone": "+12065550102", "active": true}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/contact/c-owner",
        json!({"version": 1, "phones": ["(415) 867-5310"], "assigned_user_id": "u-owner"}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/contact/c-moved",
        json!({"version": 1, "phones": ["+14158675310"], "assigned_user_id": "u-other"}),
    )
    .await;
    put(
        "/v1/tenants/acme/settings/contact/c-moved",
        json!({"version": 2, "phones": ["+12065550199"], "assigned_user_id": "u-other"}),
    )
    .await;
    let posted = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &json!({"call_id": "CA-known", "to": DIALED, "from": CALLER}),
    )
    .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    let path = "/v1/tenants/acme/calls/CA-known";
    let first = lookup_until(&gw, path, "the decision", |b| {
        b["decisions"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    assert_eq!(first["decisions"][0]["rule"], "assigned_user", "{first:#}");
    // Later, another contact gets the number too (it would make the caller ambiguous).
    put(
        "/v1/tenants/acme/settings/contact/c-later",
        json!({"version": 1, "phones": ["415-867-5310"], "assigned_user_id": "u-other"}),
    )
    .await;

    let life = lookup_until(&gw, path, "the call, every event indexed", |b| {
        b["lookup"]["scanned_from"].is_null()
    })
    .await;
    assert_eq!(life["lookup"]["settings_scanned"], false, "{life:#}");
    let read: Vec<String> = life["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["entity"].as_str().unwrap().to_string())
        .collect();
    assert!(read.contains(&"contact/c-owner".to_string()), "{read:?}");
    assert!(read.contains(&"user/u-owner".to_string()), "{read:?}");
    for absent in ["contact/c-moved", "contact/c-later", "user/u-other"] {
        assert!(!read.contains(&absent.to_string()), "{absent} in {read:?}");
    }
    assert_eq!(life["replay"]["agrees"], true, "{life:#}");
    let contact = life["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["entity"] == "contact/c-owner")
        .unwrap();
    assert_eq!(
        contact["data"]["phones"],
        json!(["(41*********10"]),
        "masked as entered"
    );
    router.stop().await;
    gw.stop().await.unwrap();
}
