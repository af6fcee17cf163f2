//! Twilio's dial status callback → `call.status` events for the dialer.

use crate::support::*;
use switchboard_contracts::{CallStatus, DialCallStatus, Envelope};

fn status_params<'a>(call_sid: &'a str, status: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", ACME_ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call_sid),
        ("CallStatus", "in-progress"),
        ("DialCallSid", "CA00000000000000000000000000leg1"),
        ("DialCallStatus", status),
        ("DialCallDuration", "0"),
        ("Direction", "inbound"),
        ("From", "+14158675310"),
        ("To", "+16502530000"),
    ]
}

/// Given dial outcomes for steps 0 and 1 of a call (the second retried by Twilio), then one
/// `call.status.acme` per step with Twilio's status mapped (`no-answer` → `no_answer`) and
/// the step from the action URL; the caller keeps hearing ringback until the dialer acts,
/// and a completed dial hangs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_status_publishes_one_call_status_per_step() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;

    let resp = twilio(
        gw.addr,
        &status_path("acme", 0),
        ACME_TOKEN,
        &status_params("CA0100", "no-answer"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Ringback bounded by the dead-man's switch (45 s by default: 8 cycles of 6 s).
    let xml = resp.assert_twiml();
    assert!(xml.contains("<Play loop=\"8\">"), "{xml}");
    assert!(
        xml.contains(&format!(
            "<Redirect method=\"POST\">{PUBLIC}/v1/tenants/acme/twilio/no-instruction</Redirect>"
        )),
        "{xml}"
    );
    for _ in 0..2 {
        let resp = twilio(
            gw.addr,
            &status_path("acme", 1),
            ACME_TOKEN,
            &status_params("CA0100", "busy"),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let mut completed = status_params("CA0100", "completed");
    completed[6] = ("DialCallDuration", "42");
    let resp = twilio(gw.addr, &status_path("acme", 2), ACME_TOKEN, &completed).await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.assert_twiml()
            .ends_with("<Response><Hangup/></Response>")
    );

    let stored = nats.read("call.status.>").await;
    assert_eq!(stored.len(), 3, "one per step, the retry de-duplicated");
    let events: Vec<Envelope<CallStatus>> = stored
        .iter()
        .map(|m| Envelope::decode(&m.payload, &m.subject).unwrap())
        .collect();
    let got: Vec<(u32, DialCallStatus, Option<u32>)> = events
        .iter()
        .map(|e| {
            (
                e.data.step,
                e.data.dial_call_status,
                e.data.dial_call_duration,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, DialCallStatus::NoAnswer, Some(0)),
            (1, DialCallStatus::Busy, Some(0)),
            (2, DialCallStatus::Completed, Some(42)),
        ]
    );
    assert_eq!(events[0].id, "acme:CA0100:status:0");
    assert_eq!(
        stored[0].header("Nats-Msg-Id"),
        Some("acme:CA0100:status:0")
    );
    assert_eq!(events[0].event_type, "switchboard.call.status.v1");
    assert_eq!(
        events[0].data.dial_call_sid.as_deref(),
        Some("CA00000000000000000000000000leg1")
    );
    assert_eq!(nats.count("call.inbound.>").await, 0);
    gw.stop().await.unwrap();
}

/// The callback is signature-checked like the voice webhook (the query string included), and
/// needs a step and a known dial status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_status_is_signature_checked_and_validated() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let params = status_params("CA0101", "failed");

    // Signed for step 0, sent as step 1.
    let signature = twilio_signature(
        ACME_TOKEN,
        &format!("{PUBLIC}{}", status_path("acme", 0)),
        &params,
    );
    let resp = request(
        gw.addr,
        "POST",
        &status_path("acme", 1),
        &[("Content-Type", FORM), ("X-Twilio-Signature", &signature)],
        form(&params).as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 403);
    let resp = request(
        gw.addr,
        "POST",
        &status_path("acme", 0),
        &[("Content-Type", FORM)],
        form(&params).as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 403);

    for (path, params, code) in [
        (
            "/v1/tenants/acme/twilio/dial-status".to_string(),
            params.clone(),
            "invalid_step",
        ),
        (
            "/v1/tenants/acme/twilio/dial-status?step=-1".to_string(),
            params.clone(),
            "invalid_step",
        ),
        (
            status_path("acme", 0),
            status_params("CA0101", "ringing"),
            "invalid_dial_call_status",
        ),
        (
            status_path("acme", 0),
            params
                .iter()
                .copied()
                .filter(|(k, _)| *k != "DialCallStatus")
                .collect(),
            "missing_field",
        ),
    ] {
        let resp = twilio(gw.addr, &path, ACME_TOKEN, &params).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text());
        assert_eq!(resp.header("x-switchboard-error"), Some(code), "{path}");
        resp.assert_twiml();
    }
    assert_eq!(nats.count("call.>").await, 0);
    gw.stop().await.unwrap();
}
