//! The real binary, killed with SIGKILL mid-chain and started again: the chain resumes where
//! it was and nobody is rung twice.

use crate::fake_twilio::{FakeTwilio, Mode};
use crate::support::*;
use std::time::{Duration, Instant};
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
        holder: None,
        events: vec![],
        missed: None,
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

/// Issue 14, item 1, as reported: the carrier answers the step-1 request with 503 after 1.5 s,
/// step 0 is reported as no-answer, and the dialer is killed while step 1 is at the carrier.
/// Restarted at once, the chain moves on within 10 s (`ack_wait` 5 s brings the status back;
/// it finds the step it claimed and records it as outcome unknown), and step 1's number is
/// never asked for again.
#[tokio::test]
async fn a_dialer_killed_while_the_carrier_answers_step_1_moves_on_within_10s_of_restart() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio
        .fake
        .set_mode(FORWARDING, Mode::Slow503(Duration::from_millis(1500)));
    let args = args(&nats.url(), &twilio.base);
    let mut first = Process::spawn(&args);
    let call = "CAslow1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    eventually(WAIT, "step 1 at the carrier", || async {
        (twilio.fake.attempts(FORWARDING) >= 1).then_some(())
    })
    .await
    .unwrap();
    first.kill(); // while the carrier takes 1.5 s to answer

    let restarted = Instant::now();
    let _second = Process::spawn(&args);
    nats.wait_dial(call, 2, DialEventKind::StepStarted).await;
    let took = restarted.elapsed();
    assert!(
        took <= Duration::from_secs(10),
        "the chain moved on {took:?} after the restart"
    );
    let failed = nats.wait_dial(call, 1, DialEventKind::StepFailed).await;
    assert!(failed.outcome_unknown, "{failed:?}");
    assert_eq!(
        twilio.fake.attempts(FORWARDING),
        1,
        "step 1 is never asked for again"
    );
    assert_eq!(twilio.fake.attempts(COMPANY), 1);
    assert_eq!(twilio.fake.attempts(USER_PHONE), 1);
}

/// Two dialer replicas: the one whose request for step 1 is at the carrier is killed; the
/// survivor moves the chain on within 10 s, with no restart.
#[tokio::test]
async fn with_two_replicas_the_survivor_moves_a_dead_replica_s_chain_on_within_10s() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio
        .fake
        .set_mode(FORWARDING, Mode::Slow503(Duration::from_millis(3000)));
    let mut replicas: Vec<Option<Process>> = ["a", "b"]
        .iter()
        .map(|tag| {
            Some(Process::spawn(&args(
                &nats.url(),
                &format!("{}/via/{tag}", twilio.base),
            )))
        })
        .collect();
    let call = "CAreplica1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    let tag = eventually(WAIT, "step 1 at the carrier", || async {
        twilio
            .fake
            .ledger()
            .into_iter()
            .find(|r| r.number == FORWARDING)
            .map(|r| r.tag)
    })
    .await
    .unwrap();
    let holder = if tag == "a" { 0 } else { 1 };
    if let Some(mut p) = replicas[holder].take() {
        p.kill();
    }
    let killed = Instant::now();

    nats.wait_dial(call, 2, DialEventKind::StepStarted).await;
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(10),
        "the survivor moved the chain on {took:?} after the kill"
    );
    let survivor = if holder == 0 { "b" } else { "a" };
    let ledger = twilio.fake.ledger();
    assert!(
        ledger
            .iter()
            .any(|r| r.number == COMPANY && r.tag == survivor),
        "{ledger:?}"
    );
    assert_eq!(twilio.fake.attempts(FORWARDING), 1, "{ledger:?}");
    assert!(
        nats.wait_dial(call, 1, DialEventKind::StepFailed)
            .await
            .outcome_unknown
    );
}

/// Issue 14, item 3: a tenant the carrier cannot serve is a start-up error that names it.
#[tokio::test]
async fn a_tenant_without_an_account_sid_is_a_start_up_error() {
    let nats = Nats::start().await;
    let mut args = args(&nats.url(), "http://127.0.0.1:9");
    args.push("--tenants-json".into());
    args.push(format!(
        r#"{{"acme": {{"twilio_auth_token": "t", "twilio_account_sid": "{}"}}, "bravo": {{"twilio_auth_token": "t"}}}}"#,
        crate::fake_twilio::ACCOUNT
    ));
    let config = <switchboard_dialer::Config as clap::Parser>::try_parse_from(args).unwrap();
    let started = tokio::time::timeout(
        WAIT,
        switchboard_dialer::run(config, std::future::pending::<()>()),
    )
    .await
    .expect("start-up fails at once");
    let error = started.unwrap_err().to_string();
    assert!(error.contains("bravo"), "{error}");
    assert!(!error.contains("acme"), "{error}");
}
