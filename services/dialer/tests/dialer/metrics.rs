//! `/metrics`: carrier request latency and errors, dial steps by outcome, consumer pending.

use crate::fake_twilio::{FakeTwilio, Mode};
use crate::support::*;
use switchboard_contracts::{DialEventKind, FinalAction};
use switchboard_testkit::{ReservedPort, eventually};

/// Given a Twilio that answers 500 twice, when a decision is dialed, then `/metrics` shows the
/// two transient failures and the accepted attempt with their latency, and the started step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_latency_errors_and_steps_are_measured() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio.fake.set_mode(USER_PHONE, Mode::Fail500(2));
    // Held for the test, so that no parallel test is given the port first.
    let http_port = ReservedPort::new().unwrap();
    let http = http_port.addr();
    let args: Vec<String> = args(&nats.url(), &twilio.base)
        .into_iter()
        .map(|a| {
            if a == "127.0.0.1:0" {
                http.to_string()
            } else {
                a
            }
        })
        .collect();
    let dialer = Dialer::start(args);
    let call = "CAmetrics";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;

    let client = reqwest::Client::new();
    let expected = [
        "switchboard_dialer_carrier_request_duration_seconds_count{carrier=\"twilio\",outcome=\"transient\"} 2",
        "switchboard_dialer_carrier_request_duration_seconds_count{carrier=\"twilio\",outcome=\"ok\"} 1",
        "switchboard_dialer_carrier_errors_total{carrier=\"twilio\",kind=\"transient\"} 2",
        "switchboard_dialer_dial_steps_total{outcome=\"step_started\"} 1",
        "switchboard_dialer_consumer_pending{consumer=\"dialer-route\"} ",
        "switchboard_dialer_consumer_pending{consumer=\"dialer-status\"} ",
        "# EOF",
    ];
    let text = eventually(WAIT, "the dialer's metrics", || async {
        let response = client
            .get(format!("http://{http}/metrics"))
            .send()
            .await
            .ok()?;
        let content_type = response.headers().get("content-type")?.to_str().ok()?;
        assert!(content_type.starts_with("application/openmetrics-text"));
        let text = response.text().await.ok()?;
        expected.iter().all(|e| text.contains(e)).then_some(text)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {expected:#?}"));
    assert!(
        !text.contains(crate::fake_twilio::TOKEN),
        "no secret in metrics"
    );
    nats.wait_settled().await;
    dialer.stop().await;
}
