use crate::provisioned;
use std::time::Duration;
use switchboard_bus::{StreamOptions, dialer_routes, dialer_statuses, router_inbound};

#[test]
fn duplicate_window_exceeds_every_redelivery_horizon() {
    let window = StreamOptions::default().duplicate_window;
    for spec in [router_inbound(), dialer_routes(), dialer_statuses()] {
        let horizon = spec.redelivery_horizon();
        assert!(horizon > Duration::ZERO);
        assert!(
            horizon < window,
            "{}: horizon {horizon:?} must be shorter than the duplicate window {window:?}",
            spec.name
        );
    }
    // 30 + 60 + 120 + 7 × 300 seconds.
    assert_eq!(
        router_inbound().redelivery_horizon(),
        Duration::from_secs(2310)
    );
    // The dialer's ack_wait (5 s) or its NAK delay, whichever is longer, for each of 10
    // deliveries: 5 + 5 + 5 + 10 + 30 + 60 + 120 + 3 × 300 seconds.
    assert_eq!(
        dialer_routes().redelivery_horizon(),
        Duration::from_secs(1135)
    );
    assert!(
        dialer_routes().backoff.is_empty(),
        "ack_wait alone bounds a dead delivery"
    );
    assert_ne!(dialer_routes().name, dialer_statuses().name);
}

#[tokio::test]
async fn router_consumer_is_durable_explicit_and_idempotent() {
    let (_server, js) = provisioned().await;
    let spec = router_inbound();
    spec.ensure(&js).await.unwrap();
    let mut consumer = spec.ensure(&js).await.unwrap();
    let info = consumer.info().await.unwrap();
    let c = &info.config;
    assert_eq!(c.durable_name.as_deref(), Some("router"));
    assert_eq!(c.filter_subject, "call.inbound.>");
    assert_eq!(
        c.ack_policy,
        async_nats::jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(c.max_deliver, 10);
    assert_eq!(c.backoff, spec.backoff);
    assert_eq!(c.max_ack_pending, 10_000);
    let stream = js.get_stream("CALLS").await.unwrap();
    assert_eq!(stream.get_info().await.unwrap().state.consumer_count, 1);
}
