//! The sandbox carrier: no carrier at all, every action recorded, outcomes simulated as
//! `call.status` events, so the whole flow runs offline (`make run`).

use crate::support::*;
use std::sync::Arc;
use std::time::Duration;
use switchboard_contracts::{CallStatus, DialCallStatus, DialEventKind, FinalAction};
use switchboard_dialer::carrier::{Action, Request, SANDBOX_STREAM};
use switchboard_dialer::{Carrier, Sandbox, SandboxEntry, SandboxOptions};
use switchboard_testkit::eventually;

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
    let sandbox = Arc::new(
        Sandbox::open(
            &nats.js,
            SandboxOptions::new(vec![DialCallStatus::NoAnswer], Duration::from_millis(20)),
        )
        .await
        .unwrap(),
    );
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
                numbers,
                action_url,
                screen_url,
                ..
            } => {
                assert_eq!(
                    action_url,
                    &action(r.request.step).replace(PUBLIC, "http://sandbox.invalid")
                );
                assert_eq!(screen_url, &None);
                assert_eq!(numbers.len(), 1);
                Some(numbers[0].clone())
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

/// Every entry of the sandbox carrier's ledger stream.
async fn ledger(nats: &Nats) -> Vec<SandboxEntry> {
    let stream = nats.js.get_stream(SANDBOX_STREAM).await.unwrap();
    let mut out = Vec::new();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        out.push(serde_json::from_slice(&message.payload).unwrap());
    }
    out
}

/// Given a sandbox dialer that accepted a dial (its status due after a ring of 300 ms) and then
/// died with everything it held — its runtime and connection gone before the status was due —
/// when another sandbox dialer runs, then the dial's `call.status` is still published, exactly
/// once, with the step's id and simulated outcome, as a real carrier's callback would still
/// arrive; and the ledger holds the one dial, stored before the request returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_status_survives_the_death_of_the_dialer_that_dialed() {
    let nats = Nats::start().await;
    let url = nats.url();
    let request = Request {
        tenant: tenant(T),
        call_id: "SBdeath1".into(),
        step: 0,
        action: Action::Dial {
            numbers: vec![USER_PHONE.into()],
            screen_url: None,
            action_url: action(0),
            timeout_secs: 20,
        },
    };
    // The dying dialer: its own runtime and connection, shut down without a chance to finish.
    let dying = {
        let request = request.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let accepted = runtime.block_on(async {
                let client = async_nats::connect(url.as_str()).await.unwrap();
                let js = async_nats::jetstream::new(client);
                let mut options =
                    SandboxOptions::new(vec![DialCallStatus::Busy], Duration::from_millis(300));
                options.ack_wait = Duration::from_millis(500);
                let sandbox = Sandbox::open(&js, options).await.unwrap();
                let accepted = sandbox.modify_call(&request).await;
                std::mem::forget(sandbox); // no orderly stop: the process just dies
                accepted
            });
            runtime.shutdown_background();
            accepted
        })
        .join()
        .unwrap()
    };
    assert_eq!(dying.unwrap().sid.as_deref(), Some("SB-SBdeath1"));
    let entries = ledger(&nats).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            entries[0].call_id.as_str(),
            entries[0].step,
            entries[0].outcome
        ),
        ("SBdeath1", 0, Some(DialCallStatus::Busy))
    );
    assert!(entries[0].status_due.is_some());

    // A dialer that is alive (another replica, or the restarted one).
    let mut options =
        SandboxOptions::new(vec![DialCallStatus::NoAnswer], Duration::from_millis(300));
    options.ack_wait = Duration::from_millis(500);
    let _survivor = Sandbox::open(&nats.js, options).await.unwrap();
    let statuses = eventually(WAIT, "the dead dialer's dial status published", || async {
        let statuses = nats.read::<CallStatus>("call.status.acme").await;
        (!statuses.is_empty()).then_some(statuses)
    })
    .await
    .unwrap();
    assert_eq!(statuses.len(), 1, "one status per dial");
    let status = &statuses[0];
    assert_eq!(status.id, "acme:SBdeath1:status:0");
    assert_eq!(
        (status.data.step, status.data.dial_call_status),
        (0, DialCallStatus::Busy),
        "the outcome the dead dialer's sandbox decided"
    );
    // Settled: the report is not published again.
    eventually(WAIT, "the status report settled", || async {
        let stream = nats.js.get_stream(SANDBOX_STREAM).await.ok()?;
        let info = stream
            .consumer_info(switchboard_dialer::carrier::SANDBOX_CONSUMER)
            .await
            .ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(nats.read::<CallStatus>("call.status.acme").await.len(), 1);
}
