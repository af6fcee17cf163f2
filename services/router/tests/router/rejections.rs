//! Bad input is recorded as `call.rejected` and terminated: never retried, never a crash.

use crate::support::*;
use serde_json::json;
use switchboard_contracts::{CallRejected, EventData, Rule};

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";

fn envelope(id: &str, event_type: &str, data: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0",
        "id": id,
        "source": "/test",
        "type": event_type,
        "time": "2026-11-22T09:00:00Z",
        "subject": "CA1",
        "datacontenttype": "application/json",
        "data": data,
    }))
    .unwrap()
}

fn inbound(id: &str, data: serde_json::Value) -> Vec<u8> {
    envelope(id, "switchboard.call.inbound.v1", data)
}

/// Given a running router, when events that break the contract in different ways arrive on
/// `call.inbound`, then each gets a `switchboard.call.rejected.v1` event on its tenant's
/// `call.rejected` subject with the code, the reason, the original subject, payload and stream
/// sequence; each is terminated (no redelivery, nothing awaiting an ack); and the router keeps
/// deciding the calls that follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_terminated_and_never_stops_the_router() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let good = json!({
        "call_id": "CA1", "tenant_id": T, "to": DIALED, "from": "+14158675310",
        "received_at": "2026-11-22T09:00:00Z",
    });
    let with = |field: &str, value: serde_json::Value| {
        let mut data = good.clone();
        data[field] = value;
        data
    };
    let mut without_to = good.clone();
    without_to.as_object_mut().unwrap().remove("to");
    let mut without_received_at = good.clone();
    without_received_at
        .as_object_mut()
        .unwrap()
        .remove("received_at");

    // (subject, payload, expected code, tenant the rejection is filed under)
    let bad: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "call.inbound.acme",
            b"not json at all".to_vec(),
            "malformed",
            T,
        ),
        ("call.inbound.acme", Vec::new(), "malformed", T),
        // proto3 JSON: an absent string reads as "", and `to` must not be blank.
        (
            "call.inbound.acme",
            inbound("m1", without_to),
            "missing_field",
            T,
        ),
        (
            "call.inbound.acme",
            inbound("m1b", without_received_at),
            "malformed",
            T,
        ),
        (
            "call.inbound.acme",
            inbound("m2", with("to", json!("   "))),
            "missing_field",
            T,
        ),
        (
            "call.inbound.acme",
            inbound("m3", with("tenant_id", json!("not.a.tenant"))),
            "invalid_tenant",
            T,
        ),
        // A type mismatch, carrying a phone number where a string belongs.
        (
            "call.inbound.acme",
            inbound("m4", with("to", json!(16502530000_u64))),
            "malformed",
            T,
        ),
        (
            "call.inbound.acme",
            inbound("m5", with("call_id", json!("CA 1"))),
            "malformed",
            T,
        ),
        (
            "call.inbound.acme",
            envelope("m6", "switchboard.call.route.v1", good.clone()),
            "unexpected_type",
            T,
        ),
        (
            "call.inbound.acme",
            inbound("m7", json!(null)),
            "missing_field",
            T,
        ),
        // No valid tenant in the subject (the data names another): filed under `_invalid`.
        (
            "call.inbound.ünï",
            inbound("m8", good.clone()),
            "subject_mismatch",
            "_invalid",
        ),
    ];

    let mut seqs = Vec::new();
    for (i, (subject, payload, _, _)) in bad.iter().enumerate() {
        let published = nats.raw(subject, &format!("bad-{i}"), payload).await;
        seqs.push(published.sequence);
    }
    // Then a good call, which must still be decided.
    nats.call(call(T, "after-bad-input", DIALED, "+14158675310"))
        .await;

    for ((subject, payload, code, filed_under), seq) in bad.iter().zip(&seqs) {
        let rejection = nats.rejection(filed_under, *seq).await;
        assert_eq!(rejection.event_type, CallRejected::TYPE);
        assert_eq!(rejection.id, format!("rejected:CALLS:{seq}"));
        assert_eq!(rejection.subject, format!("CALLS/{seq}"));
        let r = rejection.data.0;
        assert_eq!(
            r.code,
            *code,
            "{subject} {}: {}",
            String::from_utf8_lossy(payload),
            r.reason
        );
        assert!(!r.reason.is_empty());
        assert_eq!(r.stream, "CALLS");
        assert_eq!(r.stream_seq, *seq);
        assert_eq!(r.original_subject, *subject);
        assert_eq!(r.original_payload.as_bytes(), payload.as_slice());
        assert_eq!(r.tenant_id.as_str(), *filed_under);
    }

    let route = nats.route(T, "after-bad-input").await;
    assert_eq!(route.rule, Rule::ForwardingNumber);
    let info = nats.wait_settled(WAIT).await;
    assert_eq!(
        info.num_redelivered, 0,
        "a rejected call was delivered again"
    );
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(
        nats.count("call.route.>").await,
        1,
        "only the good call is decided"
    );
    assert_eq!(nats.count("call.rejected.>").await, bad.len());
    assert!(router.is_running());
    router.stop().await.unwrap();
}
