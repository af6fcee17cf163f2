//! Issue 17, async mode: blocked callers (`blocked_action: reject`) and withheld callers under
//! `anonymous_callers: reject` hear busy at the voice webhook (`<Reject reason="busy"/>`),
//! and their `call.inbound` is still stored for the router to record the decision.

use crate::support::*;
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{AnonymousCallers, BlockedAction, CompanySettings, Envelope, TenantId};
use switchboard_testkit::eventually;
use time::OffsetDateTime;

const DIALED: &str = "+16502530000";
const REJECT: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Reject reason=\"busy\"/></Response>";

fn company(tenant: &str, version: u64) -> CompanySettings {
    CompanySettings {
        tenant_id: TenantId::new(tenant).unwrap(),
        version,
        company_phone: Some("+16502539999".into()),
        default_region: Some("US".into()),
        final_action: None,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days: 0,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    }
}

async fn publish(nats: &Nats, settings: CompanySettings) {
    Publisher::new(nats.js.clone())
        .publish(
            &Envelope::new(settings, "/switchboard/test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap();
}

/// The voice webhook's answer for a call from `from` to `tenant`.
async fn answer(gw: &Gateway, tenant: &str, call: &str, from: &str) -> String {
    let token = if tenant == "beta" {
        BETA_TOKEN
    } else {
        ACME_TOKEN
    };
    let resp = twilio(
        gw.addr,
        &voice_path(tenant),
        token,
        &voice_params(call, DIALED, from),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.assert_twiml()
}

fn is_ringback(xml: &str) -> bool {
    xml.contains("/v1/assets/ringback.wav</Play>")
}

/// Given acme blocking one number exactly and `+1900` as a prefix (reject, the default), and
/// beta blocking the same number with `announce`, when they call, then acme's blocked callers
/// (in E.164 or written nationally, read in the company's region) hear busy, anyone else and
/// beta's blocked caller hear ringback (the announcement is the dialer's), and every call is
/// stored on `call.inbound`. The settings precede the gateway, which is ready only once it has
/// read them: the very first call is already refused, with no waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_callers_hear_busy_and_are_still_recorded() {
    let nats = Nats::start().await;
    let mut acme = company("acme", 1);
    acme.blocked_callers = vec!["+14155550100".into(), "+1900".into()];
    publish(&nats, acme).await;
    let mut beta = company("beta", 1);
    beta.blocked_callers = vec!["+14155550100".into()];
    beta.blocked_action = Some(BlockedAction::Announce);
    publish(&nats, beta).await;
    let gw = Gateway::start(&nats.url(), &[]).await;

    assert_eq!(answer(&gw, "acme", "CA0500", "+14155550100").await, REJECT);
    assert_eq!(answer(&gw, "acme", "CA0501", "+19005551234").await, REJECT);
    assert_eq!(
        answer(&gw, "acme", "CA0502", "(415) 555-0100").await,
        REJECT
    );
    for (tenant, call, from) in [
        ("acme", "CA0503", "+14155550101"),
        ("acme", "CA0504", "+1415555010"),
        ("acme", "CA0505", "+18005551234"),
        ("beta", "CA0506", "+14155550100"),
    ] {
        let xml = answer(&gw, tenant, call, from).await;
        assert!(is_ringback(&xml), "{tenant} {from}: {xml}");
    }
    let stored = nats.read("call.inbound.>").await;
    assert_eq!(stored.len(), 7, "every call is stored, refused or not");
    assert_eq!(stored[0].json()["data"]["call_id"], "CA0500");
    assert_eq!(stored[0].json()["data"]["from"], "+14155550100");
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_webhook_rejects_total{reason=\"blocked\"} 3"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}

/// Given acme refusing anonymous callers and beta sending them to voicemail, when a caller
/// withholds the number, then acme's hears busy and beta's ringback; both calls are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_callers_are_refused_only_under_anonymous_reject() {
    let nats = Nats::start().await;
    let mut acme = company("acme", 1);
    acme.anonymous_callers = Some(AnonymousCallers::Reject);
    publish(&nats, acme).await;
    let mut beta = company("beta", 1);
    beta.anonymous_callers = Some(AnonymousCallers::Voicemail);
    publish(&nats, beta).await;
    let gw = Gateway::start(&nats.url(), &[]).await;

    assert_eq!(answer(&gw, "acme", "CA0600", "anonymous").await, REJECT);
    assert_eq!(answer(&gw, "acme", "CA0601", "").await, REJECT);
    let xml = answer(&gw, "acme", "CA0602", "+14155550100").await;
    assert!(is_ringback(&xml), "{xml}");
    let xml = answer(&gw, "beta", "CA0603", "anonymous").await;
    assert!(is_ringback(&xml), "{xml}");
    assert_eq!(nats.count("call.inbound.>").await, 4);
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_webhook_rejects_total{reason=\"anonymous\"} 2"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}

/// Given a running gateway, when acme blocks a caller with a settings change published after
/// it started, then that caller hears busy once the gateway has read the change; an older
/// version published afterwards changes nothing (the newest version wins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_published_after_start_is_enforced_once_read() {
    let nats = Nats::start().await;
    publish(&nats, company("acme", 1)).await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let caller = "+14155550177";
    let xml = answer(&gw, "acme", "CA0700", caller).await;
    assert!(is_ringback(&xml), "{xml}");

    let mut blocking = company("acme", 3);
    blocking.blocked_callers = vec![caller.into()];
    publish(&nats, blocking).await;
    let mut attempt = 0;
    eventually(WAIT, "the block to be enforced", || {
        attempt += 1;
        let call = format!("CA07{attempt:02}x");
        let gw = &gw;
        async move { (answer(gw, "acme", &call, caller).await == REJECT).then_some(()) }
    })
    .await
    .unwrap();

    // A stale version, then beta's change as a marker that the stale one was read before it.
    publish(&nats, company("acme", 2)).await;
    let mut marker = company("beta", 1);
    marker.blocked_callers = vec!["+1212".into()];
    publish(&nats, marker).await;
    let mut attempt = 0;
    eventually(WAIT, "beta's block to be enforced", || {
        attempt += 1;
        let call = format!("CA08{attempt:02}x");
        let gw = &gw;
        async move { (answer(gw, "beta", &call, "+12125550100").await == REJECT).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(answer(&gw, "acme", "CA0900", caller).await, REJECT);
    gw.stop().await.unwrap();
}
