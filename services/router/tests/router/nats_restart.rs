//! The router rides out a nats-server restart.

use crate::support::*;
use std::time::Duration;

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";
/// Calls the server had delivered but whose acks it lost come back after the 30 s `ack_wait`.
const AFTER_ACK_WAIT: Duration = Duration::from_secs(75);

/// Given a router deciding a backlog of calls, when nats-server is killed (readiness turns 503)
/// and restarted on the same port and store, then readiness returns, the backlog and calls
/// published after the restart are all decided, and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_resumes_after_a_nats_server_restart() {
    let mut nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let mut calls = nats.calls(T, "before", 1500, DIALED, "+14158675310").await;
    switchboard_testkit::eventually(WAIT, "some decisions", || async {
        (nats.count("call.route.acme").await > 50).then_some(())
    })
    .await
    .unwrap();

    tokio::task::block_in_place(|| nats.server.kill());
    wait_status(router.http, "/readyz", 503).await;
    tokio::task::block_in_place(|| nats.server.restart()).unwrap();
    router.wait_ready().await;

    // The test's own client reconnects too; then more calls arrive.
    let more = switchboard_testkit::eventually(WAIT, "publishing after the restart", || async {
        nats.js.get_stream("CALLS").await.ok().map(|_| ())
    })
    .await;
    more.unwrap();
    calls.extend(nats.calls(T, "after", 500, DIALED, "+14158675310").await);
    // Settings changes keep flowing to the projection as well.
    let seq = nats.settings(number(T, DIALED, None)).await;
    nats.call(call(T, "after-settings", DIALED, "+14158675310"))
        .await;
    calls.push("after-settings".into());

    nats.wait_routes(T, calls.len(), AFTER_ACK_WAIT).await;
    nats.wait_settled(AFTER_ACK_WAIT).await;
    nats.assert_decided_once(T, &calls).await;
    let last = nats.route(T, "after-settings").await;
    assert!(last.settings_seq >= seq);
    assert_eq!(last.rule, switchboard_contracts::Rule::NoRoute);
    router.stop().await.unwrap();
}
