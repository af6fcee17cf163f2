//! `/healthz`, `/readyz`, `/metrics`, the static Twilio helpers, and graceful shutdown.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_static_helpers() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    assert_eq!(get(gw.addr, "/healthz").await.status, 200);
    assert_eq!(get(gw.addr, "/readyz").await.text(), "ready\n");
    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0400", "+16502530000", ""),
    )
    .await;
    assert_eq!(resp.status, 200);
    let refused = post_json(
        gw.addr,
        "/v1/tenants/acme/calls",
        &serde_json::json!({"call_id": "c-400", "to": "not a number"}),
    )
    .await;
    assert_eq!(refused.status, 400);
    let refused_code = refused.json()["code"].as_str().unwrap().to_string();

    let metrics = get(gw.addr, "/metrics").await;
    assert_eq!(metrics.content_type(), "application/openmetrics-text");
    let text = metrics.text();
    for expected in [
        "switchboard_gateway_http_requests_total{route=\"twilio_voice\",status=\"200\"} 1",
        "switchboard_gateway_http_requests_total{route=\"readyz\",status=\"200\"}",
        "switchboard_gateway_publish_duration_seconds_count{event=\"call_inbound\",outcome=\"ok\"} 1",
        "# EOF",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    let rejected = format!(
        "switchboard_gateway_rejections_total{{route=\"calls\",code=\"{refused_code}\"}} 1"
    );
    assert!(text.contains(&rejected), "{rejected} missing from\n{text}");
    assert!(!text.contains(ACME_TOKEN));

    let wav = get(gw.addr, "/v1/assets/ringback.wav").await;
    assert_eq!(wav.status, 200);
    assert_eq!(wav.content_type(), "audio/wav");
    assert_eq!(&wav.body[..4], b"RIFF");
    let hangup = request(
        gw.addr,
        "POST",
        "/v1/twiml/hangup",
        &[("Content-Type", FORM)],
        b"RecordingUrl=x",
    )
    .await;
    assert_eq!(hangup.status, 200);
    assert!(
        hangup
            .assert_twiml()
            .ends_with("<Response><Hangup/></Response>")
    );
    gw.stop().await.unwrap();
}

/// Given a sync-mode request waiting for its decision, when shutdown is requested, then the
/// request still gets its answer (ringback and a redirect at the deadline, which another
/// instance serves) and `run` returns cleanly; new connections are refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_request_finish() {
    let nats = Nats::start().await;
    let mut gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "1500"],
    )
    .await;
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move {
        twilio(
            addr,
            &voice_path("acme"),
            ACME_TOKEN,
            &voice_params("CA0401", "+16502530000", "+14158675310"),
        )
        .await
    });
    // The call is stored: the request is now waiting for its decision.
    switchboard_testkit::eventually(WAIT, "the call to be stored", || async {
        (nats.count("call.inbound.acme").await == 1).then_some(())
    })
    .await
    .unwrap();
    assert!(!in_flight.is_finished());
    gw.request_stop();
    let resp = tokio::time::timeout(WAIT, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(
        xml.contains("<Play loop=\"1\">") && xml.contains("?attempt=2</Redirect>"),
        "{xml}"
    );
    gw.stop().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}
