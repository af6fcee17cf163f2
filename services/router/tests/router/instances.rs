//! Several router instances share the durable consumer: every call is decided exactly once.

use crate::support::*;
use switchboard_contracts::Rule;

const T: &str = "busy";
const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";

/// Given three routers, each with its own SQLite projection, sharing the `router` consumer,
/// when 600 calls arrive, then every call has exactly one decision and no call has two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_decide_every_call_exactly_once() {
    const CALLS: usize = 600;
    let nats = Nats::start().await;
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let dbs = [Db::sqlite(), Db::sqlite(), Db::sqlite()];
    let mut routers = Vec::new();
    for db in &dbs {
        routers.push(Router::start(&nats.url(), db.url()).await);
    }

    let calls = nats.calls(T, "multi", CALLS, DIALED, "+14158675310").await;

    nats.wait_routes(T, CALLS, WAIT).await;
    let info = nats.wait_settled(WAIT).await;
    assert_eq!(info.num_redelivered, 0);
    nats.assert_decided_once(T, &calls).await;
    assert!(
        nats.routes(T)
            .await
            .iter()
            .all(|r| r.data.rule == Rule::ForwardingNumber)
    );
    for router in routers {
        router.stop().await.unwrap();
    }
}
