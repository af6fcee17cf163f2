//! Issue 16, "A call in one lookup": `GET /v1/tenants/{tenant}/calls/{call_id}` against the
//! real gateway (its call indexer running), the real router and nats-server; and the lookup's
//! completeness when the index does not exist yet or is behind.

use crate::support::*;
use crate::sync::Router;
use serde_json::{Value, json};
use switchboard_bus::{CALL_INDEX, Publisher, TraceContext};
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
    let text = life.to_string();
    for full in [DIALED, FORWARDING, COMPANY, CALLER] {
        assert!(!text.contains(full), "{full} unmasked in {text}");
    }
    // The index holds the call under its escaped id.
    let index = nats.js.get_stream(CALL_INDEX).await.unwrap();
    let entry = index
        .direct_get_first_for_subject(subjects::call_index(call_id))
        .await
        .unwrap();
    assert_eq!(entry.subject.as_str(), "callindex.crm_2E7_2A_3E");

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
    assert_eq!(life["lookup"], json!({"indexed": 0, "scanned_from": 1}));
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
        json!({"indexed": 0, "scanned_from": first + 1}),
        "scanned from just past what the index covers"
    );
    let life = lookup_until(&gw, path_first, "the indexed call", |_| true).await;
    assert_eq!(
        life["lookup"],
        json!({"indexed": 1, "scanned_from": first + 1})
    );
    gw.stop().await.unwrap();
}
