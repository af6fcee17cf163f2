//! A 3-node JetStream cluster with R3 streams: one node (the CALLS stream leader) is killed
//! while calls are in flight and brought back.

use crate::figure;
use crate::kill_restart::spread;
use crate::support::*;
use std::time::{Duration, Instant};
use switchboard_testkit::{NatsCluster, eventually};
use time::OffsetDateTime;

const AFTER_REDELIVERY: Duration = Duration::from_secs(150);

/// The node leading CALLS (its index; nodes are named n1..n3) and since when, as the stream's
/// leader reports it; `None` while no leader answers (an election).
async fn calls_leader(js: &async_nats::jetstream::Context) -> Option<(usize, OffsetDateTime)> {
    let mut calls = js.get_stream("CALLS").await.ok()?;
    let cluster = calls.info().await.ok()?.cluster.clone()?;
    let node = cluster
        .leader?
        .strip_prefix('n')
        .and_then(|i| i.parse::<usize>().ok())
        .map(|i| i - 1)
        .expect("node names are n1..n3");
    Some((node, cluster.leader_since?))
}

/// Makes node `node` the CALLS leader again if leadership moved (an election on a loaded
/// machine): asks the leader to step down in its favour, until it leads.
async fn lead_calls(js: &async_nats::jetstream::Context, node: usize) {
    eventually(WAIT, &format!("n{} leading CALLS", node + 1), || async {
        match calls_leader(js).await {
            Some((leader, _)) if leader == node => Some(()),
            Some(_) => {
                let request =
                    serde_json::json!({"placement": {"preferred": format!("n{}", node + 1)}});
                let _ = js
                    .client()
                    .request(
                        "$JS.API.STREAM.LEADER.STEPDOWN.CALLS",
                        request.to_string().into(),
                    )
                    .await;
                None
            }
            None => None,
        }
    })
    .await
    .unwrap();
}

/// Given two routers and a dialer connected to a 3-node cluster whose streams (and the dial
/// progress bucket, and the sandbox carrier's ledger) have three replicas, when the node leading
/// CALLS — the only node the services were given — is killed (SIGKILL) while calls are in
/// flight (asserted: it led CALLS until it died, a new leader was elected after), decisions
/// continue on the two others, and the node is brought back, then every accepted call has
/// exactly one decision, none exists for a call never accepted, each re-decision is explained
/// by the fault, no number was rung twice, every call reached its end with the carrier actions
/// expected, and the restarted node catches up (every replica current).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stream_leader_node_loses_nothing_and_repeats_nothing() {
    let n = calls_per_scenario();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(3).unwrap();
    let urls = cluster.urls();
    let js = connect(&urls).await;
    provision(&js, 3).await;
    let r3 = [("SWITCHBOARD_STREAM_REPLICAS", "3")];
    // Each service is given ONE node's URL, the node leading CALLS (the one killed below; if
    // leadership moves meanwhile, it is handed back before the kill): it learns the other nodes
    // from the server and must fail over to them.
    let (first_leader, _) = eventually(WAIT, "CALLS has a leader", || calls_leader(&js))
        .await
        .unwrap();
    let node_url = cluster.nodes()[first_leader].url();
    let mut router_a = Service::router("router-a", &node_url, dir.path(), &r3);
    let mut router_b = Service::router("router-b", &node_url, dir.path(), &r3);
    let mut dialer = Service::dialer("dialer", &node_url, dir.path(), &r3);
    router_a.wait_ready(WAIT).await;
    router_b.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;

    let started = Instant::now();
    let routes = format!("call.route.{T}");
    let publishing = Publishing::start(js.clone(), "node", n, spread(n));
    let step = (n / 20).max(20);
    let decided = wait_count(&js, &routes, step, WAIT).await;
    // The node to kill: the CALLS leader, and the only node the services were given.
    let node = first_leader;
    lead_calls(&js, node).await;
    let (leader_before, _) = calls_leader(&js).await.expect("CALLS has a leader");
    let leader = cluster.nodes()[node].url();
    let kill_instant = OffsetDateTime::now_utc();
    tokio::task::block_in_place(|| cluster.kill(node)).unwrap();
    let killed_at = (decided, started.elapsed());
    assert!(
        decided < n,
        "every call was decided before the node died: nothing tested"
    );
    // It was the leader up to its death: leading just before the kill, and succeeded by a
    // leader elected after it (a leadership that had moved before the kill would date from
    // before it).
    assert_eq!(
        leader_before,
        node,
        "CALLS was led by n{} when n{} was killed",
        leader_before + 1,
        node + 1
    );
    let (successor, since) = eventually(WAIT, "a new CALLS leader", || async {
        calls_leader(&js).await.filter(|(l, _)| *l != node)
    })
    .await
    .unwrap();
    assert!(
        since >= kill_instant,
        "n{} has led CALLS since {since}, before n{} was killed at {kill_instant}: the node killed was not the leader",
        successor + 1,
        node + 1
    );

    // Two of three nodes keep the streams available: decisions go on while the node is down.
    let during = wait_count(&js, &routes, decided + step, Duration::from_secs(60)).await;
    let down_for = started.elapsed() - killed_at.1;
    let restart_instant = OffsetDateTime::now_utc();
    tokio::task::block_in_place(|| cluster.restart(node)).unwrap();
    let restarted_at = started.elapsed();

    let stats = publishing.stats.clone();
    let ids = publishing.finish().await;
    wait_count(&js, &routes, n, AFTER_REDELIVERY).await;
    wait_settled(&js, "router", AFTER_REDELIVERY).await;
    let decided_at = started.elapsed();
    // The restarted node catches up (and the audit reads complete replicas).
    eventually(WAIT, "every CALLS replica current", || async {
        let mut stream = js.get_stream("CALLS").await.ok()?;
        let info = stream.info().await.ok()?.clone();
        let cluster = info.cluster?;
        let replicas = cluster.replicas;
        (replicas.len() == 2 && replicas.iter().all(|p| p.current && !p.offline)).then_some(())
    })
    .await
    .unwrap();
    let (audit, ledger, never_asked) = wait_dialer(&js, &[&dialer], AFTER_REDELIVERY).await;
    let ended_at = started.elapsed();
    audit.assert_decided_exactly_once(&ids);
    ledger.assert_no_action_twice_around(&audit, &[kill_instant, restart_instant]);
    // The node's death and its return can each leave the publisher's calls unacknowledged.
    stats.assert_bounded(2);
    let redecided = assert_redecisions_explained(
        &[&router_a, &router_b],
        &audit,
        &[kill_instant, restart_instant],
    );
    let (resent, duplicates) = stats.counts();

    for service in [&mut router_a, &mut router_b, &mut dialer] {
        assert!(
            service.is_running(),
            "{} died:\n{}",
            service.name,
            service.log_tail(40)
        );
    }
    figure!(
        "cluster: {n} calls; node n{} at {leader} (CALLS leader until killed, n{} elected after; the services were given n{} only) SIGKILLed at {} decisions t={:?}, {} decided while it was down \
         ({down_for:?}), restarted at t={restarted_at:?}; accepted {}, decided {}, lost 0, decided twice 0, re-decisions {} (their decisions stored {:?} ms from the fault explaining each), \
         calls resent by the publisher {resent} of which already stored {duplicates}; all decided at {decided_at:?}",
        node + 1,
        successor + 1,
        first_leader + 1,
        killed_at.0,
        killed_at.1,
        during - decided,
        audit.accepted.len(),
        audit.routes.len(),
        redecided.count,
        redecided.stored_ms,
    );
    figure!(
        "cluster: carrier actions {} over {} (call, step) pairs = 2 x {} calls - {never_asked} requests the carrier never took (steps recorded failed: outcome unknown {}, by the carrier {}); \
         numbers rung twice 0, final actions repeated {}; every call at its end at {ended_at:?}; total {:?}",
        ledger.total,
        ledger.actions.len(),
        audit.routes.len(),
        audit.outcome_unknown.len(),
        audit.carrier_failed.len(),
        ledger.repeated_finals(),
        started.elapsed()
    );
}
