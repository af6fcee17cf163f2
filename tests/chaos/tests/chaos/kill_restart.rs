//! Calls in flight while both routers and the dialer are SIGKILLed and restarted and
//! nats-server is restarted (same port, same store).

use crate::figure;
use crate::support::*;
use std::time::{Duration, Instant};
use switchboard_testkit::{NatsServer, eventually};
use time::OffsetDateTime;

/// Router redeliveries wait for the consumer's 30 s `ack_wait` after the last fault, the
/// dialer's for its 2 s (5 s with production timing), plus the work itself: a deadline, not a
/// wait (every wait below ends as soon as its condition holds).
const AFTER_REDELIVERY: Duration = Duration::from_secs(150);

/// How many of the sandbox carrier's status reports are outstanding (stored, not yet
/// published): those the dialer about to be killed may hold.
pub async fn outstanding_reports(js: &async_nats::jetstream::Context) -> u64 {
    let Ok(stream) = js.get_stream(SANDBOX_STREAM).await else {
        return 0;
    };
    match stream.consumer_info(SANDBOX_CONSUMER).await {
        Ok(info) => info.num_pending + u64::try_from(info.num_ack_pending).unwrap(),
        Err(_) => 0,
    }
}

/// Fault timing, not synchronization: a random pause so faults do not always land on the same
/// instant of the pipeline (the seed is printed, `SWITCHBOARD_CHAOS_SEED` replays it).
async fn fault_pause(rng: &mut Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(0, 300) as u64)).await;
}

/// How long the calls are spread over, so that every fault lands while calls are in flight.
pub fn spread(n: usize) -> Duration {
    Duration::from_millis((n as u64 * 3).clamp(6_000, 60_000))
}

/// Given two routers and a dialer (sandbox carrier) as real processes and N calls arriving,
/// when router A, the dialer (while the carrier's status reports of its dials are outstanding),
/// nats-server and router B are each killed (SIGKILL) and restarted while calls are in flight,
/// then, read back from CALLS by call id: every accepted call has exactly one decision, no
/// decision exists for a call never accepted, and each re-decision is explained by a fault;
/// and from the carrier's ledger: no number rung twice, every decision acted on, every call
/// at its end with exactly the carrier actions expected (two per call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_and_a_nats_restart_lose_nothing_and_repeat_nothing() {
    let n = calls_per_scenario();
    let (mut rng, seed) = Rng::from_env(0x5EED_0008);
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start().unwrap();
    let url = nats.url();
    let js = connect(&url).await;
    provision(&js, 1).await;
    let mut router_a = Service::router("router-a", &url, dir.path(), &[]);
    let mut router_b = Service::router("router-b", &url, dir.path(), &[]);
    let mut dialer = Service::dialer("dialer", &url, dir.path(), &[]);
    router_a.wait_ready(WAIT).await;
    router_b.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;

    let started = Instant::now();
    let routes = format!("call.route.{T}");
    let publishing = Publishing::start(js.clone(), "kill", n, spread(n));
    let mut faults: Vec<String> = Vec::new();
    let mut struck: Vec<OffsetDateTime> = Vec::new();
    let mut note = |fault: String, decided: usize, at: OffsetDateTime| {
        assert!(
            decided < n,
            "{fault}: every call was already decided, the fault tested nothing"
        );
        faults.push(format!(
            "{fault} at {decided} decisions, t={:?}",
            started.elapsed()
        ));
        struck.push(at);
    };

    // The faults are spread over the first ~40 % of the calls.
    let step = (n / 10).max(20);

    // 1. Router A, once it is deciding.
    let decided = wait_count(&js, &routes, step, WAIT).await;
    fault_pause(&mut rng).await;
    let at = OffsetDateTime::now_utc();
    router_a.kill_and_restart();
    note("SIGKILL router-a".into(), decided, at);

    // 2. The dialer, once it has taken carrier actions.
    eventually(WAIT, "the dialer acting on decisions", || async {
        (Ledger::count(&[&dialer]) >= 20).then_some(())
    })
    .await
    .unwrap();
    fault_pause(&mut rng).await;
    // Killed only while the carrier's status reports of its dials are outstanding: that is
    // what this fault is for. They come and go (each dial's report is due 200 ms after it), so
    // wait for one rather than test whichever instant the pause ended on: a router just
    // killed, or a loaded machine, can leave a moment with none.
    let reports = eventually(WAIT, "a carrier status report outstanding", || async {
        let reports = outstanding_reports(&js).await;
        (reports > 0).then_some(reports)
    })
    .await
    .unwrap();
    let decided = count(&js, &routes).await.unwrap();
    let at = OffsetDateTime::now_utc();
    dialer.kill_and_restart();
    note(
        format!("SIGKILL dialer ({reports} carrier status reports outstanding)"),
        decided,
        at,
    );
    assert!(
        reports > 0,
        "no status report was outstanding when the dialer died: its survival was not tested"
    );

    // 3. nats-server (same port, same store dir), once the restarted instances are working.
    router_a.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;
    let decided = wait_count(&js, &routes, decided + step, WAIT).await;
    fault_pause(&mut rng).await;
    let nats_restarted = OffsetDateTime::now_utc();
    tokio::task::block_in_place(|| nats.restart()).unwrap();
    note(
        "nats-server SIGKILL + restart".into(),
        decided,
        nats_restarted,
    );

    // 4. Router B, once decisions flow again after the server restart.
    let decided = wait_count(&js, &routes, decided + step, WAIT).await;
    fault_pause(&mut rng).await;
    let at = OffsetDateTime::now_utc();
    router_b.kill_and_restart();
    note("SIGKILL router-b".into(), decided, at);
    assert!(
        !publishing.done() || count(&js, &routes).await.unwrap_or(0) < n,
        "faults must land while calls are in flight"
    );

    router_a.wait_ready(WAIT).await;
    router_b.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;
    let stats = publishing.stats.clone();
    let ids = publishing.finish().await;
    let published_at = started.elapsed();

    wait_count(&js, &routes, n, AFTER_REDELIVERY).await;
    wait_settled(&js, "router", AFTER_REDELIVERY).await;
    let decided_at = started.elapsed();
    let (audit, ledger, never_asked) = wait_dialer(&js, &[&dialer], AFTER_REDELIVERY).await;
    let ended_at = started.elapsed();
    audit.assert_decided_exactly_once(&ids);
    ledger.assert_no_action_twice_around(&audit, &[nats_restarted]);
    // One server fault (the nats-server restart) can leave the publisher's calls unacknowledged.
    stats.assert_bounded(1);
    let redecided = assert_redecisions_explained(&[&router_a, &router_b], &audit, &struck);
    for service in [&mut router_a, &mut router_b, &mut dialer] {
        assert!(
            service.is_running(),
            "{} died:\n{}",
            service.name,
            service.log_tail(40)
        );
    }

    let (resent, duplicates) = stats.counts();
    figure!("kill/restart: seed {seed}, {n} calls published in {published_at:?}");
    for fault in &faults {
        figure!("kill/restart: fault: {fault}");
    }
    figure!(
        "kill/restart: accepted {}, decided {}, lost 0, decided twice 0, re-decisions {} (their decisions stored {:?} ms from the fault explaining each; \
         dropped by JetStream as duplicates), calls resent by the publisher {resent} of which already stored {duplicates}; all decided at {decided_at:?}",
        audit.accepted.len(),
        audit.routes.len(),
        redecided.count,
        redecided.stored_ms,
    );
    figure!(
        "kill/restart: carrier actions {} over {} (call, step) pairs = 2 x {} calls - {never_asked} requests the carrier never took \
         (steps recorded failed: outcome unknown {}, by the carrier {}); numbers rung twice 0, final actions repeated {} (each explained); every call at its end at {ended_at:?}; total {:?}",
        ledger.total,
        ledger.actions.len(),
        audit.routes.len(),
        audit.outcome_unknown.len(),
        audit.carrier_failed.len(),
        ledger.repeated_finals(),
        started.elapsed()
    );
}
