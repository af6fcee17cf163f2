use crate::provisioned;
use switchboard_bus::{CALLS, Publisher, TraceContext};
use switchboard_contracts::envelope::headers;
use switchboard_contracts::{CallInbound, Envelope, TenantId};
use time::macros::datetime;

fn inbound(call_id: &str) -> Envelope<CallInbound> {
    Envelope::new(
        CallInbound {
            call_id: call_id.into(),
            tenant_id: TenantId::new("acme").unwrap(),
            to: "+16502530000".into(),
            from: "+14158675310".into(),
            received_at: datetime!(2026-11-22 09:00 UTC),
            contact_id: None,
        },
        "/switchboard/test",
        datetime!(2026-11-22 09:00:00.5 UTC),
    )
}

fn trace() -> TraceContext {
    TraceContext {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: Some("vendor=1".into()),
    }
}

#[tokio::test]
async fn events_are_stored_in_structured_mode_with_contract_headers() {
    let (_server, js) = provisioned().await;
    let publisher = Publisher::new(js.clone());
    let event = inbound("CA100");
    let published = publisher.publish(&event, &trace()).await.unwrap();
    assert_eq!(published.stream, CALLS);
    assert!(!published.duplicate);

    let stored = js
        .get_stream(CALLS)
        .await
        .unwrap()
        .get_raw_message(published.sequence)
        .await
        .unwrap();
    assert_eq!(stored.subject.as_str(), "call.inbound.acme");
    let h = |name: &str| stored.headers.get(name).map(|v| v.as_str().to_string());
    assert_eq!(
        h(headers::CONTENT_TYPE).as_deref(),
        Some("application/cloudevents+json")
    );
    assert_eq!(h(headers::MSG_ID).as_deref(), Some("acme:CA100:inbound"));
    assert_eq!(h(headers::TRACEPARENT), trace().traceparent);
    assert_eq!(h(headers::TRACESTATE), trace().tracestate);
    assert_eq!(TraceContext::from_headers(Some(&stored.headers)), trace());

    let decoded = Envelope::<CallInbound>::decode(&stored.payload, &stored.subject).unwrap();
    assert_eq!(decoded, event);
}

#[tokio::test]
async fn a_republished_event_is_a_duplicate_not_a_second_fact() {
    let (_server, js) = provisioned().await;
    let publisher = Publisher::new(js.clone());
    let first = publisher
        .publish(&inbound("CA200"), &TraceContext::default())
        .await
        .unwrap();
    // A retry builds the same event again later: same id, so JetStream recognizes it.
    let mut retry = inbound("CA200");
    retry.time = datetime!(2026-11-22 09:00:03 UTC);
    let second = publisher
        .publish(&retry, &TraceContext::default())
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(second.sequence, first.sequence);
    let info = js
        .get_stream(CALLS)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.state.messages, 1);
}

#[tokio::test]
async fn publishes_can_be_pipelined() {
    let (_server, js) = provisioned().await;
    let publisher = Publisher::new(js.clone());
    let mut pending = Vec::new();
    for i in 0..500 {
        let event = inbound(&format!("CA{i:04}"));
        pending.push(
            publisher
                .send(&event, &TraceContext::default())
                .await
                .unwrap(),
        );
    }
    let mut sequences = Vec::new();
    for p in pending {
        sequences.push(p.ack().await.unwrap().sequence);
    }
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), 500);
    let info = js
        .get_stream(CALLS)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.state.messages, 500);
}

#[tokio::test]
async fn publishing_without_a_server_is_a_transient_error() {
    let (mut server, js) = provisioned().await;
    server.kill();
    let publisher = Publisher::new(js);
    let result = match publisher
        .send(&inbound("CA300"), &TraceContext::default())
        .await
    {
        Ok(pending) => pending.ack().await,
        Err(e) => Err(e),
    };
    let err = result.unwrap_err();
    assert!(err.is_transient(), "{err}");
}
