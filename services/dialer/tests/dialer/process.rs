//! The real binary, killed with SIGKILL mid-chain and started again: the chain resumes where
//! it was and nobody is rung twice.

use crate::fake_twilio::FakeTwilio;
use crate::support::*;
use switchboard_contracts::{DialCallStatus, DialEventKind, FinalAction};
use switchboard_testkit::eventually;

#[tokio::test]
async fn sigkill_mid_chain_then_restart_resumes_without_ringing_twice() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let args = args(&nats.url(), &twilio.base);
    let mut first = Process::spawn(&args);
    let call = "CAkill1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    nats.wait_dial(call, 1, DialEventKind::StepStarted).await;
    nats.wait_settled().await;

    first.kill();
    // While the dialer is down: the step 1 status arrives, and the decision is re-published.
    nats.publish(status(call, 1, DialCallStatus::NoAnswer))
        .await;
    nats.republish(full_chain(call, FinalAction::default()), "replayed")
        .await;

    let _second = Process::spawn(&args);
    nats.wait_dial(call, 2, DialEventKind::StepStarted).await;
    nats.publish(status(call, 2, DialCallStatus::Completed))
        .await;
    nats.wait_dial(call, 2, DialEventKind::Answered).await;
    nats.wait_settled().await;

    let numbers: Vec<Vec<String>> = eventually(WAIT, "three steps", || async {
        let calls = twilio.fake.for_call(call);
        (calls.len() == 3).then(|| calls.into_iter().map(|m| m.numbers).collect())
    })
    .await
    .unwrap();
    assert_eq!(
        numbers,
        vec![
            vec![USER_PHONE.to_string()],
            vec![FORWARDING.to_string()],
            vec![COMPANY.to_string()]
        ]
    );
    for number in [USER_PHONE, FORWARDING, COMPANY] {
        assert_eq!(twilio.fake.attempts(number), 1, "{number} rung once");
    }
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![
            (0, StepStarted),
            (0, StepFailed),
            (1, StepStarted),
            (1, StepFailed),
            (2, StepStarted),
            (2, Answered)
        ]
    );
}

#[tokio::test]
async fn a_claim_left_by_a_dead_dialer_fails_its_step_instead_of_ringing_again() {
    use switchboard_dialer::progress::{Progress, ProgressStore, StepState, key};
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    // What a dialer leaves behind when it dies between claiming step 1 and the carrier's
    // answer: step 1 claimed a minute ago, the decision not acknowledged.
    let call = "CAclaimed";
    let decision = full_chain(call, FinalAction::default());
    let store = ProgressStore::open(&nats.js, std::time::Duration::from_secs(3600), 1)
        .await
        .unwrap();
    let left = Progress {
        decision: decision.clone(),
        step: 1,
        state: StepState::Claimed,
        since: time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
        events: vec![],
    };
    store
        .create(&key(&decision.tenant_id, call), &left)
        .await
        .unwrap()
        .unwrap();

    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    nats.publish(decision).await; // the redelivery
    let failed = nats.wait_dial(call, 1, DialEventKind::StepFailed).await;
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap()
            .contains("not retried, so nobody is rung twice"),
        "{failed:?}"
    );
    nats.wait_dial(call, 2, DialEventKind::StepStarted).await;
    nats.wait_settled().await;
    assert_eq!(twilio.fake.attempts(USER_PHONE), 0);
    assert_eq!(
        twilio.fake.attempts(FORWARDING),
        0,
        "the claimed step is never rung again"
    );
    assert_eq!(twilio.fake.attempts(COMPANY), 1);
    dialer.stop().await;
}
