//! Carrier failures: 5xx retried with backoff, bounded; 4xx and exhausted retries fail the
//! step with the carrier's reason and the chain moves on. A dial that timed out after it was
//! sent may be ringing: never retried, recorded as outcome unknown.

use crate::fake_twilio::{FakeTwilio, Mode};
use crate::support::*;
use switchboard_contracts::{DialEventKind, FinalAction};

#[tokio::test]
async fn server_errors_are_retried_until_the_carrier_accepts() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio.fake.set_mode(USER_PHONE, Mode::Fail500(2));
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAretry";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    assert_eq!(
        twilio.fake.attempts(USER_PHONE),
        3,
        "two 500s, then accepted"
    );
    assert_eq!(twilio.fake.for_call(call).len(), 1);
    nats.wait_settled().await;
    dialer.stop().await;
}

#[tokio::test]
async fn persistent_errors_timeouts_and_refusals_fail_their_step_and_the_chain_moves_on() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio.fake.set_mode(USER_PHONE, Mode::Always500);
    twilio.fake.set_mode(FORWARDING, Mode::Hang);
    twilio.fake.set_mode(COMPANY, Mode::Refuse);
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAfail";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 3, DialEventKind::FinalActionTaken)
        .await;

    let reasons: Vec<(u32, String)> = nats
        .dial_events(call)
        .await
        .into_iter()
        .filter(|d| d.kind == DialEventKind::StepFailed)
        .map(|d| (d.step, d.reason.unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].1.contains("Twilio HTTP 500")
            && reasons[0].1.contains("gave up after 3 attempts"),
        "{reasons:?}"
    );
    assert!(
        reasons[1]
            .1
            .contains("timed out after the request was sent")
            && reasons[1].1.contains("not retried"),
        "{reasons:?}"
    );
    let unknown: Vec<bool> = nats
        .dial_events(call)
        .await
        .into_iter()
        .filter(|d| d.kind == DialEventKind::StepFailed)
        .map(|d| d.outcome_unknown)
        .collect();
    assert_eq!(unknown, vec![false, true, false]);
    assert!(
        reasons[2]
            .1
            .contains("Twilio HTTP 400 (code 13223): Dial: Invalid phone number format"),
        "{reasons:?}"
    );
    assert_eq!(twilio.fake.attempts(USER_PHONE), 3);
    assert_eq!(
        twilio.fake.attempts(FORWARDING),
        1,
        "a dial that timed out is never asked again"
    );
    assert_eq!(twilio.fake.attempts(COMPANY), 1, "a 4xx is not retried");
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![
            (0, StepFailed),
            (1, StepFailed),
            (2, StepFailed),
            (3, ChainExhausted),
            (3, FinalActionTaken)
        ]
    );
    let calls = twilio.fake.for_call(call);
    assert_eq!(calls.len(), 1, "only the final action was accepted");
    assert!(calls[0].record);
    nats.wait_settled().await;
    dialer.stop().await;
}

#[tokio::test]
async fn a_tenant_without_credentials_gets_a_step_failure_not_silence() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let mut decision = full_chain("CAnocreds", FinalAction::default());
    decision.tenant_id = tenant("other");
    nats.publish(decision).await;
    switchboard_testkit::eventually(WAIT, "final step failed", || async {
        let events = nats
            .read::<switchboard_contracts::CallDial>("call.dial.other")
            .await;
        events
            .iter()
            .any(|e| e.data.step == 3 && e.data.kind == DialEventKind::StepFailed)
            .then_some(())
    })
    .await
    .unwrap();
    let events = nats
        .read::<switchboard_contracts::CallDial>("call.dial.other")
        .await;
    assert!(
        events[0]
            .data
            .reason
            .as_deref()
            .unwrap()
            .contains("no Twilio credentials for tenant other"),
        "{:?}",
        events[0].data
    );
    assert!(twilio.fake.accepted().is_empty());
    dialer.stop().await;
}
