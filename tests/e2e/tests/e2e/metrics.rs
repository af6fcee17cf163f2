//! After a call, `/metrics` of the router and the dialer expose the series operators alert
//! and scale on.

use crate::support::*;
use switchboard_testkit::eventually;

async fn wait_series(stack: &Stack, addr: std::net::SocketAddr, series: &[&str]) -> String {
    eventually(WAIT, &format!("{series:?} on {addr}/metrics"), || async {
        let text = stack.metrics(addr).await;
        series.iter().all(|s| text.contains(s)).then_some(text)
    })
    .await
    .unwrap()
}

/// Given the stack without traces, when a call is decided and dialed, then the router shows
/// the decision by rule, its latency, the consumer's pending count and the projection lag,
/// and the dialer its carrier request latency and dial steps by outcome; when a malformed
/// event arrives, the router counts the rejection by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_and_dialer_expose_their_metrics_after_a_call() {
    let stack = Stack::start().await;
    assert_eq!(stack.call("e2e-metrics-1", None).await, 202);

    let router = wait_series(
        &stack,
        stack.router,
        &[
            "switchboard_router_decisions_total{rule=\"forwarding_number\"} 1",
            "switchboard_router_decision_duration_seconds_count 1",
            "switchboard_router_redeliveries_total 0",
            "switchboard_router_consumer_pending ",
            "switchboard_router_projection_lag ",
            "# EOF",
        ],
    )
    .await;
    assert!(
        !router.contains("switchboard_router_rejections_total"),
        "{router}"
    );
    // An event that is not a call.inbound: rejected, counted by reason.
    stack
        .publish_raw("call.inbound.acme", "e2e-garbage-1", b"not json")
        .await;
    wait_series(
        &stack,
        stack.router,
        &["switchboard_router_rejections_total{reason=\"malformed\"} 1"],
    )
    .await;

    let dialer = wait_series(
        &stack,
        stack.dialer,
        &[
            "switchboard_dialer_carrier_request_duration_seconds_count{carrier=\"sandbox\",outcome=\"ok\"} 1",
            "switchboard_dialer_dial_steps_total{outcome=\"step_started\"} 1",
            "switchboard_dialer_dial_steps_total{outcome=\"answered\"} 1",
            "switchboard_dialer_consumer_pending{consumer=\"dialer-route\"} ",
            "# EOF",
        ],
    )
    .await;
    assert!(
        !dialer.contains("switchboard_dialer_carrier_errors_total"),
        "no carrier error: {dialer}"
    );
    assert!(!dialer.contains("e2e-fake-token"));

    // The gateway counted the request and its publish.
    let gateway = stack.metrics(stack.gateway).await;
    assert!(
        gateway
            .contains("switchboard_gateway_http_requests_total{route=\"calls\",status=\"202\"} 1"),
        "{gateway}"
    );
    stack.stop().await;
}
