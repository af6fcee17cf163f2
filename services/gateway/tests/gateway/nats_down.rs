//! NATS unavailable: never a 2xx for a call that was not stored.

use crate::support::*;
use serde_json::json;

/// Given the nats-server killed, when a webhook or an API call arrives, then 503 with
/// `Retry-After` (TwiML for Twilio, JSON for the API) and `/readyz` is 503; once NATS is back,
/// nothing of those requests was stored and the same webhook is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_gives_503_with_retry_after_and_stores_nothing() {
    let mut nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &["--publish-timeout-ms", "1000"]).await;
    nats.server.kill();
    gw.wait_status("/readyz", 503).await;
    assert_eq!(
        get(gw.addr, "/healthz").await.status,
        200,
        "alive, just not ready"
    );

    let params = voice_params("CA0300", "+16502530000", "+14158675310");
    let resp = twilio(gw.addr, &voice_path("acme"), ACME_TOKEN, &params).await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.header("x-switchboard-error"), Some("unavailable"));
    resp.assert_twiml();
    let resp = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &json!({"call_id": "CA0301", "to": "+16502530000"}),
    )
    .await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(resp.json()["code"], "unavailable");

    nats.server.restart().unwrap();
    gw.wait_status("/readyz", 200).await;
    assert_eq!(
        nats.count("call.>").await,
        0,
        "nothing stored for refused requests"
    );
    let resp = twilio(gw.addr, &voice_path("acme"), ACME_TOKEN, &params).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(nats.count("call.inbound.acme").await, 1);
    gw.stop().await.unwrap();
}
