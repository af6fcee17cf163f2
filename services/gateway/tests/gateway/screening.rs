//! Issue 17, call screening: the whisper a screened leg hears when it picks up, its key press,
//! and a screened step nobody accepted counting as no answer on `call.status`.

use crate::support::*;
use switchboard_contracts::{CallStatus, DialCallStatus, Envelope};

const PARENT: &str = "CA0000000000000000000000000parent";

fn screen_path(tenant: &str, step: u32) -> String {
    format!("/v1/tenants/{tenant}/twilio/screen?step={step}")
}

fn result_path(tenant: &str, step: u32) -> String {
    format!("/v1/tenants/{tenant}/twilio/screen-result?step={step}")
}

/// What Twilio sends on the called party's leg (`ParentCallSid` the caller's call).
fn leg_params<'a>(parent: &'a str, leg: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", ACME_ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", leg),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
        ("From", "+14158675310"),
        ("ParentCallSid", parent),
        ("To", "+13127654321"),
    ]
}

fn pressed<'a>(parent: &'a str, leg: &'a str, digits: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut params = leg_params(parent, leg);
    params.push(("Digits", digits));
    params
}

/// The caller's `<Dial action>` after the step ended.
fn dial_status<'a>(call: &'a str, status: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", ACME_ACCOUNT),
        ("CallSid", call),
        ("CallStatus", "in-progress"),
        ("DialCallSid", "CA00000000000000000000000000leg1"),
        ("DialCallStatus", status),
        ("DialCallDuration", "4"),
        ("Direction", "inbound"),
        ("From", "+14158675310"),
        ("To", "+16502530000"),
    ]
}

/// Given a screened leg that picked up, then the whisper is a signed webhook answered with a
/// one-key `<Gather>` (10 s, its action the screen-result URL of the same step) around the
/// prompt, then `<Hangup/>`; key 1 answers the empty document (Twilio bridges), any other key
/// `<Hangup/>`. Unsigned, wrongly signed or another tenant's requests are refused like every
/// Twilio webhook, and a request without a step or `ParentCallSid` is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whisper_and_its_key_are_signed_webhooks() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;

    let resp = twilio(
        gw.addr,
        &screen_path("acme", 1),
        ACME_TOKEN,
        &leg_params(PARENT, "CAleg1"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.assert_twiml(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Gather numDigits=\"1\" \
             timeout=\"10\" action=\"{PUBLIC}/v1/tenants/acme/twilio/screen-result?step=1\" \
             method=\"POST\"><Say>Incoming call for acme. Press 1 to accept the call, or hang \
             up to decline.</Say></Gather><Hangup/></Response>"
        )
    );

    let resp = twilio(
        gw.addr,
        &result_path("acme", 1),
        ACME_TOKEN,
        &pressed(PARENT, "CAleg1", "1"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.assert_twiml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
    for digits in ["2", "*"] {
        let resp = twilio(
            gw.addr,
            &result_path("acme", 1),
            ACME_TOKEN,
            &pressed(PARENT, "CAleg2", digits),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(
            resp.assert_twiml()
                .ends_with("<Response><Hangup/></Response>"),
            "{digits}"
        );
    }

    for path in [screen_path("acme", 0), result_path("acme", 0)] {
        let params = pressed(PARENT, "CAleg3", "1");
        let unsigned = request(
            gw.addr,
            "POST",
            &path,
            &[("Content-Type", FORM)],
            form(&params).as_bytes(),
        )
        .await;
        assert_eq!(unsigned.status, 403, "{path}");
        assert_eq!(
            unsigned.header("x-switchboard-error"),
            Some("invalid_signature")
        );
        // Signed for another step than the one requested.
        let signature = twilio_signature(
            ACME_TOKEN,
            &format!("{PUBLIC}{}", path.replace("step=0", "step=1")),
            &params,
        );
        let resp = request(
            gw.addr,
            "POST",
            &path,
            &[("Content-Type", FORM), ("X-Twilio-Signature", &signature)],
            form(&params).as_bytes(),
        )
        .await;
        assert_eq!(resp.status, 403, "{path}");
        // Signed with beta's token for acme's URL; and acme's signature on beta's URL.
        let resp = twilio(gw.addr, &path, BETA_TOKEN, &params).await;
        assert_eq!(resp.status, 403, "{path}");
        let beta_path = path.replace("/acme/", "/beta/");
        let signature = twilio_signature(ACME_TOKEN, &format!("{PUBLIC}{beta_path}"), &params);
        let resp = request(
            gw.addr,
            "POST",
            &beta_path,
            &[("Content-Type", FORM), ("X-Twilio-Signature", &signature)],
            form(&params).as_bytes(),
        )
        .await;
        assert_eq!(resp.status, 403, "{beta_path}");
        let resp = twilio(
            gw.addr,
            &path.replace("/acme/", "/nobody/"),
            ACME_TOKEN,
            &params,
        )
        .await;
        assert_eq!(resp.status, 404, "{path}");

        let no_step = path.split('?').next().unwrap().to_string();
        let resp = twilio(gw.addr, &no_step, ACME_TOKEN, &params).await;
        assert_eq!(resp.status, 400, "{no_step}");
        assert_eq!(resp.header("x-switchboard-error"), Some("invalid_step"));
        let orphan: Vec<_> = params
            .iter()
            .copied()
            .filter(|(k, _)| *k != "ParentCallSid")
            .collect();
        let resp = twilio(gw.addr, &path, ACME_TOKEN, &orphan).await;
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(resp.header("x-switchboard-error"), Some("missing_field"));
    }
    let metrics = get(gw.addr, "/metrics").await.text();
    for line in [
        "switchboard_gateway_screening_total{outcome=\"whisper\"} 1",
        "switchboard_gateway_screening_total{outcome=\"accepted\"} 1",
        "switchboard_gateway_screening_total{outcome=\"declined\"} 2",
        "switchboard_gateway_signature_failures_total{route=\"twilio_screen\"}",
        "switchboard_gateway_signature_failures_total{route=\"twilio_screen_result\"}",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert_eq!(nats.count("call.>").await, 0, "a whisper publishes nothing");
    gw.stop().await.unwrap();
}

/// Given screened steps of one call — step 0 whispered and never answered, step 1 declined
/// with another key, step 2 accepted with 1 — and step 3 not screened, when Twilio reports
/// each step `completed`, then `call.status` says `no_answer` for steps 0 and 1 (the caller
/// keeps hearing ringback while the dialer moves on) and `completed` for steps 2 and 3 (the
/// call is over: hang up). A retried dial status is published the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screened_step_nobody_accepted_counts_as_no_answer() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let call = "CA0400";
    for step in 0..3 {
        let leg = format!("CAleg{step}");
        let resp = twilio(
            gw.addr,
            &screen_path("acme", step),
            ACME_TOKEN,
            &leg_params(call, &leg),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(resp.assert_twiml().contains("<Gather"));
    }
    let resp = twilio(
        gw.addr,
        &result_path("acme", 1),
        ACME_TOKEN,
        &pressed(call, "CAleg1", "9"),
    )
    .await;
    assert_eq!(resp.status, 200);
    let resp = twilio(
        gw.addr,
        &result_path("acme", 2),
        ACME_TOKEN,
        &pressed(call, "CAleg2", "1"),
    )
    .await;
    assert_eq!(resp.status, 200);

    let mut answers = Vec::new();
    for step in [0, 1, 1, 2, 3] {
        let resp = twilio(
            gw.addr,
            &status_path("acme", step),
            ACME_TOKEN,
            &dial_status(call, "completed"),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        answers.push(resp.assert_twiml());
    }
    let hangup = "<Response><Hangup/></Response>";
    let ringback = |xml: &String| xml.contains("<Play loop=\"8\">") && !xml.contains("Hangup");
    assert!(ringback(&answers[0]), "{}", answers[0]);
    assert!(ringback(&answers[1]), "{}", answers[1]);
    assert!(ringback(&answers[2]), "{}", answers[2]);
    assert!(answers[3].ends_with(hangup), "{}", answers[3]);
    assert!(answers[4].ends_with(hangup), "{}", answers[4]);

    let got: Vec<(u32, DialCallStatus)> = nats
        .read("call.status.>")
        .await
        .iter()
        .map(|m| {
            let e: Envelope<CallStatus> = Envelope::decode(&m.payload, &m.subject).unwrap();
            (e.data.step, e.data.dial_call_status)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, DialCallStatus::NoAnswer),
            (1, DialCallStatus::NoAnswer),
            (2, DialCallStatus::Completed),
            (3, DialCallStatus::Completed),
        ]
    );
    // Another call's whisper of the same step is its own.
    let resp = twilio(
        gw.addr,
        &status_path("acme", 0),
        ACME_TOKEN,
        &dial_status("CA0401", "completed"),
    )
    .await;
    assert!(resp.assert_twiml().ends_with(hangup));
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_screening_total{outcome=\"not_accepted\"} 3"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}
