//! SIGSTOP of one of two routers while calls arrive, SIGCONT later: the other keeps deciding,
//! the frozen one's deliveries come back to the other after the consumer's `ack_wait`, and the
//! thawed one, finishing what it held, decides nothing twice in CALLS.

use crate::fault_support::*;
use crate::figure;
use crate::support::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_contracts::{CallInbound, Envelope};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

/// The router consumer's `ack_wait` (crates/bus `router_inbound`, 30 s; the router has no flag
/// for it): how long a delivery held by the frozen router waits before it is redelivered.
const ROUTER_ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a router's pull request waits at the server (the router's `PULL_EXPIRES`, 500 ms),
/// with a margin: a call published this long after the freeze cannot be handed to the frozen
/// router.
const PULL_GONE: Duration = Duration::from_secs(1);
/// The working router decides a call within this of its publication.
const PROMPT: Duration = Duration::from_secs(10);
/// Freezes attempted until the frozen router held a delivery.
const ATTEMPTS: usize = 3;

/// Given two routers deciding calls, when router A is frozen (SIGSTOP) while calls arrive,
/// then router B decides every call published once A's pull request is gone within a few
/// seconds, B receives A's deliveries again after `ack_wait` and decides them, and every call
/// is decided while A is still frozen; when A is thawed (SIGCONT) and finishes what it held,
/// CALLS still holds exactly one decision per call (ids matched), and the re-decisions (publish
/// acks flagged duplicate, logged by the routers) are at most the deliveries redelivered, each
/// explained by the freeze or the thaw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_router_is_covered_by_the_other_and_decides_nothing_twice_when_thawed() {
    let full = full_scale();
    // A burst large enough to keep both routers busy for a moment (it is decided in about a
    // second), then calls spread over `spread` while A is frozen.
    let burst = (scale("SWITCHBOARD_CHAOS_CALLS", 3000) / 3).max(1000);
    let per_round = (scale("SWITCHBOARD_CHAOS_CALLS", 1200) / 3).max(100);
    let spread = if full {
        Duration::from_millis(per_round as u64 * 3).clamp(Duration::from_secs(3), WAIT)
    } else {
        Duration::from_secs(3)
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    let mut router_a = Service::router("router-a", &nats.url(), dir.path(), &[]);
    let mut router_b = Service::router("router-b", &nats.url(), dir.path(), &[]);
    router_a.wait_ready(WAIT).await;
    router_b.wait_ready(WAIT).await;
    let started = Instant::now();
    let redeliveries = || async {
        metric(router_b.http, "switchboard_router_redeliveries_total")
            .await
            .expect("router B's /metrics")
    };

    // Freeze A while both routers work through a burst, so that it is frozen holding
    // deliveries; then calls keep arriving. (Should A have held none, it is thawed and frozen
    // again: a freeze that strands nothing tests nothing.)
    let mut ids: Vec<String> = Vec::new();
    let mut round = 0;
    let (stopped_at, stopped_wall, redelivered, all_decided_in) = loop {
        round += 1;
        let before = redeliveries().await;
        let burst = Publishing::start(js.clone(), &format!("burst{round}"), burst, Duration::ZERO);
        wait_decided(&js, ids.len() + burst.total / 10, WAIT).await;
        router_a.pause();
        let stopped_at = Instant::now();
        let stopped_wall = OffsetDateTime::now_utc();
        // SIGSTOP is delivered asynchronously: wait for the process to be stopped.
        let pid = router_a.pid();
        wait_until(WAIT, "router A stopped", || process_state(pid) == 'T').await;
        ids.extend(burst.finish().await);
        let after = publish_calls(&js, &format!("frozen{round}"), per_round, spread).await;
        ids.extend(after);
        // Every call decided while A is frozen: B's own at once, A's after `ack_wait`.
        wait_decided(&js, ids.len(), ROUTER_ACK_WAIT + WAIT).await;
        let all_decided_in = stopped_at.elapsed();
        assert_eq!(
            process_state(router_a.pid()),
            'T',
            "router A was thawed before every call was decided"
        );
        let redelivered = redeliveries().await - before;
        if redelivered > 0.0 {
            break (stopped_at, stopped_wall, redelivered, all_decided_in);
        }
        assert!(
            round < ATTEMPTS,
            "router A held no delivery when frozen, {ATTEMPTS} times: nothing was redelivered to router B"
        );
        router_a.resume();
        router_a.wait_ready(WAIT).await;
    };
    assert!(
        all_decided_in <= ROUTER_ACK_WAIT + WAIT,
        "the frozen router's calls were decided {all_decided_in:?} after the freeze"
    );

    // While A was frozen, B decided every call published after A's pull request was gone
    // promptly; the calls decided late are the frozen router's, published before that.
    let published = published_at(&js).await;
    let decided = decisions(&js).await;
    let mut late = Vec::new();
    let mut slowest_after_freeze = Duration::ZERO;
    let gone = stopped_wall + PULL_GONE;
    for id in &ids {
        let latency =
            Duration::try_from(decided[id].decided_at - published[id]).unwrap_or_default();
        if published[id] >= gone {
            slowest_after_freeze = slowest_after_freeze.max(latency);
        } else if latency > PROMPT {
            late.push(id.clone());
        }
    }
    assert!(
        slowest_after_freeze <= PROMPT,
        "with router A frozen, router B took {slowest_after_freeze:?} to decide a call"
    );
    assert!(
        late.len() as f64 <= redelivered,
        "{} calls decided late, but only {redelivered} deliveries were redelivered: {}",
        late.len(),
        sample(&late)
    );

    // Thaw A: it finishes what it held (its decisions are duplicates now), then works again.
    router_a.resume();
    router_a.wait_ready(WAIT).await;
    let after = publish_calls(&js, "thawed", per_round / 4, Duration::from_millis(500)).await;
    ids.extend(after);
    wait_decided(&js, ids.len(), WAIT).await;
    wait_settled(&js, "router", WAIT).await;
    for router in [&mut router_a, &mut router_b] {
        assert!(
            router.is_running(),
            "{} died:\n{}",
            router.name,
            router.log_tail(40)
        );
    }
    let audit = Audit::read(&js).await;
    audit.assert_decided_exactly_once(&ids);
    // Re-decisions: only of calls the frozen router could hold, none twice, at most one per
    // redelivered delivery.
    let redecided = redecisions(&[&router_a, &router_b]);
    let unexplained: Vec<&String> = redecided
        .keys()
        .filter(|id| published.get(*id).is_none_or(|at| *at >= gone))
        .collect();
    assert!(
        unexplained.is_empty(),
        "calls re-decided that the frozen router could not hold (published after its pull request was gone): {}",
        sample(&unexplained)
    );
    let again: Vec<(&String, &usize)> = redecided.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.is_empty(),
        "calls re-decided more than once: {}",
        sample(&again)
    );
    assert!(
        redecided.len() as f64 <= redelivered,
        "{} calls re-decided, more than the {redelivered} deliveries redelivered",
        redecided.len()
    );
    let redecided = redecided.len();
    figure!(
        "sigstop: router A frozen at {:?} (freeze {round}) amid a burst of {burst} calls, then {per_round} calls arrived over {spread:?}: router B decided every call published after the freeze within {slowest_after_freeze:?}; \
         A's deliveries redelivered to B {redelivered}, {} calls decided late (after `ack_wait` {ROUTER_ACK_WAIT:?}), all decided {all_decided_in:?} after the freeze; \
         after the thaw: {} calls in all, decided {}, decided twice 0, re-decisions dropped as duplicates {redecided} (≤ redelivered, none twice); total {:?}",
        stopped_at - started,
        late.len(),
        ids.len(),
        audit.routes.len(),
        started.elapsed()
    );
}

/// The state letter of process `pid` (`T`: stopped), from /proc/<pid>/stat.
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or_else(|| panic!("/proc/{pid}/stat: {stat}"))
}

/// When each call was published (its `received_at`, set by the test as it publishes).
async fn published_at(js: &async_nats::jetstream::Context) -> BTreeMap<String, OffsetDateTime> {
    read(js, &format!("call.inbound.{T}"))
        .await
        .into_iter()
        .map(|m| {
            let call = Envelope::<CallInbound>::decode(&m.payload, &m.subject).unwrap();
            (call.data.call_id, call.data.received_at)
        })
        .collect()
}
