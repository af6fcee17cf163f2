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
    // ack_wait (30 s) or the NAK delay, whichever is longer, for each of 10 deliveries:
    // 5 × 30 + 60 + 120 + 3 × 300 seconds.
    assert_eq!(
        router_inbound().redelivery_horizon(),
        Duration::from_secs(1230)
    );
    assert!(
        router_inbound().backoff.is_empty(),
        "a backoff list would stretch every NAK delay"
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

/// Consumers created by an earlier release (with a backoff list, a 60 s `ack_wait`) are updated
/// in place to today's policy at start-up: no manual step when upgrading.
#[tokio::test]
async fn consumers_of_an_earlier_release_are_updated_in_place() {
    let (_server, js) = provisioned().await;
    for spec in [router_inbound(), dialer_routes()] {
        let mut old = spec.clone();
        old.ack_wait = Duration::from_secs(60);
        old.backoff = vec![
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(300),
        ];
        old.ensure(&js).await.unwrap();
        let mut consumer = spec.ensure(&js).await.unwrap();
        let c = consumer.info().await.unwrap().config.clone();
        assert_eq!(c.ack_wait, spec.ack_wait, "{}", spec.name);
        assert!(c.backoff.is_empty(), "{}: {:?}", spec.name, c.backoff);
    }
}
