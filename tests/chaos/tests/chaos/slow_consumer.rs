//! Backpressure: a stalled dialer (SIGSTOP) does not make the router lose or re-decide calls,
//! and the router's memory stays bounded while the dialer's backlog grows.

use crate::figure;
use crate::support::*;
use std::time::{Duration, Instant};
use switchboard_testkit::{NatsServer, eventually};

/// Resident memory the router may reach while deciding the backlog: generous (a debug build
/// idles at ~20-40 MiB), but far below what holding every call of the backlog would take at
/// the full scale.
const RSS_LIMIT_KIB: u64 = 256 * 1024;

/// Given a router and a dialer as real processes, when the dialer is frozen (SIGSTOP) and N
/// calls arrive, then the router decides every call exactly once without the dialer, its
/// resident memory stays under a bound, the decisions wait in the dialer's consumer (none was
/// handed to the frozen process); and when the dialer resumes (SIGCONT) it acts on every
/// decision, rings no number twice, takes every call to its end (two carrier actions each),
/// and the router never decided a call again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_dialer_neither_loses_nor_redecides_calls_and_router_memory_stays_bounded() {
    let n = calls_per_scenario();
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    let mut router = Service::router("router", &nats.url(), dir.path(), &[]);
    let mut dialer = Service::dialer("dialer", &nats.url(), dir.path(), &[]);
    router.wait_ready(WAIT).await;
    dialer.wait_ready(WAIT).await;
    let rss_idle = router.rss_kib();

    dialer.pause();
    // The frozen dialer must hold no open pull request, or it would be handed calls it cannot
    // take: its requests expire after 500 ms, and the server then counts no waiting request.
    eventually(
        WAIT,
        "no pull request of the frozen dialer left",
        || async {
            let stream = js.get_stream("CALLS").await.ok()?;
            let info = stream.consumer_info("dialer-route").await.ok()?;
            (info.num_waiting == 0).then_some(())
        },
    )
    .await
    .unwrap();

    let started = Instant::now();
    let publishing = Publishing::start(js.clone(), "stall", n, Duration::from_secs(2));
    let routes = format!("call.route.{T}");
    let mut rss_peak = rss_idle;
    let end = Instant::now() + Duration::from_secs(120);
    // Sample the router's memory while it decides the backlog.
    while count(&js, &routes).await.unwrap_or(0) < n {
        rss_peak = rss_peak.max(router.rss_kib());
        assert!(
            Instant::now() < end,
            "the router did not decide {n} calls in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = publishing.stats.clone();
    let ids = publishing.finish().await;
    wait_settled(&js, "router", WAIT).await;
    let decided_in = started.elapsed();
    rss_peak = rss_peak.max(router.rss_kib());

    let stream = js.get_stream("CALLS").await.unwrap();
    let backlog = stream.consumer_info("dialer-route").await.unwrap();
    assert_eq!(
        (backlog.num_pending, backlog.num_ack_pending),
        (n as u64, 0),
        "every decision waits for the stalled dialer, none was handed to it"
    );
    Audit::read(&js).await.assert_decided_exactly_once(&ids);
    assert!(
        rss_peak < RSS_LIMIT_KIB,
        "router RSS {rss_peak} KiB (idle {rss_idle} KiB) over {RSS_LIMIT_KIB} KiB"
    );

    dialer.resume();
    let stalled_for = started.elapsed();
    let (audit, ledger, never_asked) = wait_dialer(&js, &[&dialer], Duration::from_secs(120)).await;
    let drained_in = started.elapsed() - stalled_for;
    audit.assert_decided_exactly_once(&ids);
    ledger.assert_no_action_twice(&audit);
    // No fault: no re-decision, no publish left unacknowledged, no request the carrier missed.
    let redecided = assert_redecisions_explained(&[&router], &audit, &[]);
    stats.assert_bounded(0);
    assert_eq!(
        never_asked, 0,
        "requests the carrier never took, with no fault: outcome unknown {:?}, failed by the carrier {:?}",
        audit.outcome_unknown, audit.carrier_failed
    );
    assert!(router.is_running() && dialer.is_running());
    figure!(
        "slow consumer: {n} calls decided in {decided_in:?} with the dialer frozen (backlog {} decisions), \
         lost 0, re-decided {}; router RSS idle {rss_idle} KiB, peak {rss_peak} KiB (limit {RSS_LIMIT_KIB} KiB); \
         dialer drained the backlog, every call at its end, in {drained_in:?}: {} carrier actions over {} (call, step) pairs \
         (2 per call), numbers rung twice 0, final actions repeated {}",
        backlog.num_pending,
        redecided.count,
        ledger.total,
        ledger.actions.len(),
        ledger.repeated_finals()
    );
}
