//! One decision per call, however often the call arrives.

use crate::support::*;
use switchboard_contracts::{Envelope, Rule};
use time::OffsetDateTime;

const T: &str = "dup";
const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";

/// Given a running router, when the same `call.inbound` event is published twice (same
/// `Nats-Msg-Id`), then JetStream stores it once and the call has one decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_event_is_decided_once() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let event = Envelope::new(
        call(T, "CA-same", DIALED, "+14158675310"),
        "/test",
        OffsetDateTime::now_utc(),
    );
    let body = event.to_json().unwrap();
    let first = nats.raw("call.inbound.dup", &event.id, &body).await;
    let second = nats.raw("call.inbound.dup", &event.id, &body).await;
    assert!(!first.duplicate);
    assert!(
        second.duplicate,
        "JetStream should recognize the repeated Nats-Msg-Id"
    );
    assert_eq!(second.sequence, first.sequence);

    let route = nats.route(T, "CA-same").await;
    assert_eq!(route.rule, Rule::ForwardingNumber);
    nats.wait_settled(WAIT).await;
    nats.assert_decided_once(T, &["CA-same".to_string()]).await;
    assert_eq!(nats.count("call.inbound.dup").await, 1);
    router.stop().await.unwrap();
}

/// Given a running router, when a producer publishes the same call twice under two different
/// `Nats-Msg-Id`s (it retried with a fresh id, and even changed the body), then both are
/// stored and both delivered, yet CALLS holds exactly one decision for the call: the
/// decision's id is derived from the call, so the second publication is de-duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_call_under_two_ids_is_decided_once() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let calls: Vec<String> = (0..20).map(|i| format!("CA-retried-{i}")).collect();
    let mut last = 0;
    for call_id in &calls {
        let original = Envelope::new(
            call(T, call_id, DIALED, "+14158675310"),
            "/test",
            OffsetDateTime::now_utc(),
        );
        let mut retried = original.clone();
        retried.data.from = "anonymous".into();
        let first = nats
            .raw(
                "call.inbound.dup",
                &original.id,
                &original.to_json().unwrap(),
            )
            .await;
        let second = nats
            .raw(
                "call.inbound.dup",
                &format!("{}:retry", original.id),
                &retried.to_json().unwrap(),
            )
            .await;
        assert!(!first.duplicate && !second.duplicate);
        last = second.sequence;
    }
    assert_eq!(nats.count("call.inbound.dup").await, 2 * calls.len());

    // Both deliveries of every call were handled and acknowledged.
    let info = nats.wait_settled(WAIT).await;
    assert!(info.ack_floor.stream_sequence >= last);
    assert_eq!(info.num_redelivered, 0);
    nats.assert_decided_once(T, &calls).await;
    for stored in nats.read("call.route.dup").await {
        let route =
            Envelope::<switchboard_contracts::CallRoute>::decode(&stored.payload, &stored.subject)
                .unwrap();
        let expected_id = format!("{T}:{}:route", route.data.call_id);
        assert_eq!(route.id, expected_id);
        assert_eq!(stored.msg_id.as_deref(), Some(expected_id.as_str()));
    }
    router.stop().await.unwrap();
}
