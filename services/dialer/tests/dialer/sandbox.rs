//! The sandbox carrier: no carrier at all, every action recorded, outcomes simulated as
//! `call.status` events, so the whole flow runs offline (`make run`).

use crate::support::*;
use std::sync::Arc;
use std::time::Duration;
use switchboard_contracts::{CallStatus, DialCallStatus, DialEventKind, FinalAction};
use switchboard_dialer::carrier::Action;
use switchboard_dialer::{Carrier, Sandbox};

fn sandbox_args(nats_url: &str, outcomes: &str) -> Vec<String> {
    [
        "switchboard-dialer",
        "--nats-url",
        nats_url,
        "--http-addr",
        "127.0.0.1:0",
        "--sandbox-outcomes",
        outcomes,
        "--sandbox-ring-ms",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn the_default_sandbox_walks_the_whole_chain_to_the_final_action() {
    let nats = Nats::start().await;
    let sandbox = Arc::new(Sandbox::new(
        nats.publisher.clone(),
        vec![DialCallStatus::NoAnswer],
        Duration::from_millis(20),
    ));
    let dialer = Dialer::start_with(
        sandbox_args(&nats.url(), "no_answer"),
        Some(sandbox.clone() as Arc<dyn Carrier>),
    );
    let call = "SBdemo1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 3, DialEventKind::FinalActionTaken)
        .await;
    nats.wait_settled().await;

    let records = sandbox.records();
    let dialed: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.request.action {
            Action::Dial {
                number, action_url, ..
            } => {
                assert_eq!(
                    action_url,
                    &action(r.request.step).replace(PUBLIC, "http://sandbox.invalid")
                );
                Some(number.clone())
            }
            Action::Final { .. } => None,
        })
        .collect();
    assert_eq!(dialed, [USER_PHONE, FORWARDING, COMPANY]);
    assert!(matches!(
        records.last().unwrap().request.action,
        Action::Final { .. }
    ));
    assert_eq!(records.len(), 4);
    let statuses = nats.read::<CallStatus>("call.status.acme").await;
    assert_eq!(statuses.len(), 3, "one simulated status per dial");
    assert!(
        statuses
            .iter()
            .all(|s| s.data.dial_call_status == DialCallStatus::NoAnswer)
    );
    dialer.stop().await;
}

#[tokio::test]
async fn sandbox_outcomes_are_configurable_per_step() {
    let nats = Nats::start().await;
    // The carrier built from the flags, as `make run` does.
    let dialer = Dialer::start(sandbox_args(&nats.url(), "busy,completed"));
    let call = "SBdemo2";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 1, DialEventKind::Answered).await;
    nats.wait_settled().await;
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![
            (0, StepStarted),
            (0, StepFailed),
            (1, StepStarted),
            (1, Answered)
        ]
    );
    assert_eq!(
        nats.dial_events(call).await[1].reason.as_deref(),
        Some("dial status busy")
    );
    dialer.stop().await;
}
