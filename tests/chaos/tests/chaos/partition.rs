//! Latency and partitions between the services and NATS: the router and the dialer reach
//! nats-server only through a TCP proxy each (proxy.rs), which adds latency, then blackholes
//! every connection (a partition the connections survive), then cuts them all and refuses new
//! ones (a partition that kills them). The test itself talks to nats-server directly: calls
//! keep arriving during each partition.

use crate::fault_support::*;
use crate::figure;
use crate::proxy::{Link, Proxy};
use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

/// After a heal, what a partition held reaches its peers and is handled, with the
/// redeliveries it caused: a repeated final action taken this long after the heal is still the
/// partition's doing.
const HEAL_GRACE: Duration = Duration::from_secs(5);
/// Added one-way latency of the first phase (each direction, each proxy).
const LATENCY: Duration = Duration::from_millis(25);

/// Given a router and a sandbox dialer whose NATS connections go through a proxy each, when
/// (1) every chunk is delayed, (2) both links are blackholed while calls are being decided and
/// dialed and more calls arrive, then healed, (3) both links are cut (connections closed, new
/// ones refused) while more calls arrive, then healed: then no call published during a
/// partition is decided before it heals; after each heal every call is decided and its chain
/// ends within a bound; and read back from CALLS and the carrier's ledger, every call has
/// exactly one decision (ids matched), every chain exactly one end, no carrier action was taken
/// twice, and both services reconnected on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_partitions_between_the_services_and_nats_lose_nothing_and_repeat_nothing() {
    // Full scale (`make test-chaos`): longer partitions, more calls, and the cut lands while
    // calls are in flight, whose deliveries it loses: the router's come back after its 30 s
    // `ack_wait`. Bounded (`make test`): the cut lands between bursts.
    let full = full_scale();
    let per_phase = (scale("SWITCHBOARD_CHAOS_CALLS", 240) / 3).max(20);
    let partition = if full {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(3)
    };
    // Time for a phase's calls to be decided and their chains to end (10 ms a call on top).
    // From a heal to every call decided and every chain ended (`bound`): the clients' reconnect
    // backoff (at most 4 s), the dialer's `ack_wait` (2 s here) for what a partition held past
    // it, the work itself; at full scale also the router's `ack_wait` (30 s) for what the cut
    // lost.
    let work = WAIT + Duration::from_millis(per_phase as u64 * 10);
    let bound = work
        + if full {
            Duration::from_secs(45)
        } else {
            Duration::ZERO
        };

    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    let upstream = SocketAddr::from(([127, 0, 0, 1], nats.port()));
    let router_link = Proxy::start(upstream).await;
    let dialer_link = Proxy::start(upstream).await;
    let links = [&router_link, &dialer_link];
    let mut router = Service::router("router", &router_link.nats_url(), dir.path(), &[]);
    // The chaos suite's dialer timing (`ack_wait` 2 s in `make test`).
    let mut dialer = Service::dialer("dialer", &dialer_link.nats_url(), dir.path(), &[]);
    router.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;
    let started = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    let mut figures: Vec<String> = Vec::new();
    // Each partition's (start, heal), wall clock: what explains a repeated final action.
    let mut windows: Vec<(OffsetDateTime, OffsetDateTime)> = Vec::new();

    // 1. Latency.
    for link in links {
        link.set_latency(LATENCY);
    }
    let rtt = nats_round_trip(&router_link.nats_url()).await;
    assert!(
        rtt >= LATENCY * 2,
        "a NATS round trip through the proxy took {rtt:?}: the latency is not injected"
    );
    let t = Instant::now();
    ids.extend(publish_calls(&js, "slow", per_phase, Duration::from_secs(1)).await);
    wait_decided(&js, ids.len(), work).await;
    let decided_in = t.elapsed();
    wait_ended(&js, &ids, work).await;
    figures.push(format!(
        "latency +{LATENCY:?} each way (NATS round trip {rtt:?}): {per_phase} calls decided in {decided_in:?}, every chain ended in {:?}",
        t.elapsed()
    ));
    for link in links {
        link.set_latency(Duration::ZERO);
    }

    // 2. Blackhole, once a burst is decided and while its chains ring (the sandbox rings 200 ms
    // before it reports a status): the dialer holds deliveries and the sandbox's status
    // reports are due during the partition; the calls arriving during it are handed to the
    // router's pull request already at the server, through the blackholed connection.
    let burst = publish_calls(&js, "hole-a", per_phase / 2, Duration::ZERO).await;
    ids.extend(burst.iter().cloned());
    wait_decided(&js, ids.len(), work).await;
    for link in links {
        link.set_link(Link::Blackhole);
    }
    let cut_at = Instant::now();
    let cut_wall = OffsetDateTime::now_utc();
    let ended_at_cut = ends(&dial_events(&js).await).len();
    assert!(
        ended_at_cut < ids.len(),
        "every chain had ended before the partition: it tested nothing"
    );
    let during = publish_calls(&js, "hole-b", per_phase - per_phase / 2, Duration::ZERO).await;
    ids.extend(during.iter().cloned());
    sleep_rest_of(partition, cut_at).await;
    let decided = decisions(&js).await;
    let leaked = decided_among(&during, &decided);
    assert!(
        leaked.is_empty(),
        "calls published during the blackhole were decided before it healed: {}",
        sample(&leaked)
    );
    let decided_at_heal = decided.len();
    for link in links {
        link.set_link(Link::Up);
    }
    let healed = Instant::now();
    windows.push((cut_wall, OffsetDateTime::now_utc()));
    let decided_in = wait_decided(&js, ids.len(), bound).await;
    wait_ended(&js, &ids, bound).await;
    let ended_in = healed.elapsed();
    assert!(
        healed.elapsed() <= bound,
        "recovery after the blackhole took {:?}",
        healed.elapsed()
    );
    figures.push(format!(
        "blackhole {partition:?} (chains ended at the cut {ended_at_cut} of {}; {} calls arrived during it, none decided before the heal; {decided_at_heal} decided by then): \
         all decided {decided_in:?} and every chain ended {ended_in:?} after the heal",
        ids.len() - during.len(),
        during.len()
    ));

    // 3. Cut: every connection closed, new ones refused.
    let accepted_before: Vec<usize> = links.iter().map(|l| l.accepted()).collect();
    let in_flight = if full {
        // Calls in flight at the cut: what it loses comes back after `ack_wait`.
        publish_calls(&js, "cut-a", per_phase / 2, Duration::ZERO).await
    } else {
        // Between bursts: nothing in flight to lose, so the heal is not bounded by the router's
        // 30 s `ack_wait` (the kill/restart scenario covers lost deliveries).
        wait_settled(&js, "router", work).await;
        wait_settled(&js, "dialer-route", work).await;
        wait_settled(&js, "dialer-status", work).await;
        Vec::new()
    };
    for link in links {
        link.set_link(Link::Down);
    }
    let cut_at = Instant::now();
    let cut_wall = OffsetDateTime::now_utc();
    ids.extend(in_flight.iter().cloned());
    for link in links {
        wait_until(WAIT, "the proxies' connections closed", || link.open() == 0).await;
    }
    let cut: Vec<usize> = links.iter().map(|l| l.cut()).collect();
    assert!(
        cut.iter().all(|c| *c > 0),
        "the cut closed no connection of a service: {cut:?}"
    );
    if !full {
        // No pull request of a closed connection is left to hand a call to.
        wait_no_pull_waiting(
            &js,
            "CALLS",
            &["router", "dialer-route", "dialer-status"],
            WAIT,
        )
        .await;
    }
    let during = publish_calls(&js, "cut-b", per_phase - per_phase / 2, Duration::ZERO).await;
    ids.extend(during.iter().cloned());
    sleep_rest_of(partition, cut_at).await;
    let decided = decisions(&js).await;
    let leaked = decided_among(&during, &decided);
    assert!(
        leaked.is_empty(),
        "calls published while the links were down were decided before they came up: {}",
        sample(&leaked)
    );
    let refused: Vec<usize> = links.iter().map(|l| l.refused()).collect();
    assert!(
        refused.iter().all(|r| *r > 0),
        "a service did not try to reconnect during the cut (refused {refused:?})"
    );
    for link in links {
        link.set_link(Link::Up);
    }
    let healed = Instant::now();
    windows.push((cut_wall, OffsetDateTime::now_utc()));
    let decided_in = wait_decided(&js, ids.len(), bound).await;
    wait_ended(&js, &ids, bound).await;
    let ended_in = healed.elapsed();
    assert!(
        healed.elapsed() <= bound,
        "recovery after the cut took {:?}",
        healed.elapsed()
    );
    // Connections the services opened after the cut, refused ones aside.
    let reconnected: Vec<usize> = links
        .iter()
        .zip(&accepted_before)
        .map(|(link, before)| link.accepted() - before - link.refused())
        .collect();
    assert!(
        reconnected.iter().all(|r| *r > 0),
        "a service did not reconnect after the cut: {reconnected:?} (router, dialer)"
    );
    figures.push(format!(
        "cut {partition:?} ({} calls in flight; (router, dialer): connections closed {cut:?}, reconnections refused {refused:?}, reconnected {reconnected:?}; \
         {} calls arrived during it, none decided before the heal): all decided {decided_in:?} and every chain ended {ended_in:?} after the heal",
        in_flight.len(),
        during.len()
    ));

    // Read back from CALLS and the carrier's ledger.
    wait_settled(&js, "router", bound).await;
    let (audit, ledger, never_asked) = wait_dialer(&js, &[&dialer], bound).await;
    audit.assert_decided_exactly_once(&ids);
    // No number rung twice. A final action may be repeated (ADR 0003: a claim whose delivery is
    // redelivered is abandoned, and a final action rings nobody) — here only because a
    // partition held the delivery past `ack_wait`: the earlier one taken during a partition,
    // or at its heal (what it held arrives then, its redelivery with it).
    ledger.assert_no_action_twice_around(&audit, &fault_instants(&windows));
    let events = dial_events(&js).await;
    assert_one_end_each(&events, &ids);
    for service in [&mut router, &mut dialer] {
        assert!(
            service.is_running(),
            "{} died:\n{}",
            service.name,
            service.log_tail(40)
        );
    }
    let redecided = redecisions(&[&router]);
    let again: Vec<(&String, &usize)> = redecided.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.is_empty(),
        "calls re-decided more than once: {}",
        sample(&again)
    );
    let redecided = redecided.len();
    let unknown = events.iter().filter(|e| e.outcome_unknown).count();
    for f in &figures {
        figure!("partition: {f}");
    }
    figure!(
        "partition: {} calls, decided {}, lost 0, decided twice 0, re-decisions dropped as duplicates {redecided}; \
         carrier actions {} over {} (call, step) pairs, dials taken twice 0, never received {never_asked}, steps outcome-unknown {unknown}; every chain ended once; total {:?}",
        ids.len(),
        audit.routes.len(),
        ledger.total,
        ledger.actions.len(),
        started.elapsed()
    );
}

/// The partitions as fault instants for [`Ledger::assert_no_action_twice_around`], which
/// explains a repeated final action by a fault within [`FAULT_WINDOW`] after the earlier one:
/// every [`FAULT_WINDOW`] / 2 from each partition's start to [`HEAL_GRACE`] after its heal, so
/// that any earlier action from `FAULT_WINDOW` before the partition to `HEAL_GRACE` after its
/// heal is explained, and nothing later.
fn fault_instants(windows: &[(OffsetDateTime, OffsetDateTime)]) -> Vec<OffsetDateTime> {
    let step = FAULT_WINDOW / 2;
    let mut instants = Vec::new();
    for (start, heal) in windows {
        let mut at = *start;
        while at < *heal + HEAL_GRACE {
            instants.push(at);
            at += step;
        }
        instants.push(*heal + HEAL_GRACE);
    }
    instants
}
