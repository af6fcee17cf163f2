//! `call.inbound` publish → `call.route` latency at fixed offered rates, open loop, the real
//! router against the bare relay of the throughput benchmark in interleaved rounds. At each
//! rate, `pairs` times: a relay round, then a router round. Every round has a fresh
//! nats-server holding the same tenant settings, its own collector, a warm-up and then the
//! measured calls, offered by a generator on its own thread and tokio runtime (with its own
//! NATS connection) that publishes each call at its *scheduled* time whatever the
//! acknowledgements do. Latency runs from that scheduled time to the call's `call.route`
//! (or the relay's copy) reaching a core NATS subscriber, into an HDR histogram, so a stall
//! of the generator, the server or the consumer shows in the tail instead of lowering the
//! offered load. The router's p99 is read against the p99 of the relay round just before it
//! (both ran on nearly the same machine: the speed of this virtual machine drifts within a
//! minute), and the median of those paired ratios is the figure.

use crate::fixtures;
use crate::openloop::{Percentiles, RouteCollector, Router, schedule, wait_drained};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::Envelope;
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

/// Calls offered at 1,000/s at the start of every round (connections, caches, cold allocator
/// and SQLite pages), checked and drained; not recorded.
const WARMUP_CALLS: u64 = 2_000;

/// The subject the bare relay republishes each call to (the collector reads `call.route.>`).
const RELAY_SUBJECT: &str = "call.route.bench";

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyResult {
    pub contacts: u64,
    /// Calls offered at 1,000/s before each round's measured calls.
    pub warmup_calls: u64,
    /// Seconds each round offers its rate.
    pub seconds: u64,
    /// Relay round + router round pairs at each rate.
    pub pairs: usize,
    /// Each offered rate, in the order run.
    pub rates: Vec<LatencyRate>,
}

/// One offered rate: its relay and router rounds, summed up and paired.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyRate {
    pub offered_per_second: u64,
    /// The router's rounds: medians of their percentiles, totals of their counts.
    pub router: RoundsSummary,
    /// The bare relay's rounds, the same way.
    pub relay: RoundsSummary,
    /// Median over the pairs of the router round's p99 ÷ the p99 of the relay round just
    /// before it: the figure the target is for.
    pub p99_ratio: f64,
    /// Median router p99 ÷ median relay p99 (unpaired; shown beside the paired figure).
    pub p99_ratio_of_medians: f64,
    /// Issue 18: ≤ 1.5 at 1,000/s (and below), ≤ 2 above.
    pub target_p99_ratio: f64,
    pub meets_target: bool,
    /// Every pair, in order: the relay round, then the router round.
    pub each_pair: Vec<LatencyPair>,
}

/// A relay round and the router round right after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyPair {
    pub relay: LatencyRun,
    pub router: LatencyRun,
    /// `router.p99_ms / relay.p99_ms`.
    pub p99_ratio: f64,
}

/// Several rounds of one consumer at one rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundsSummary {
    pub rounds: usize,
    /// Calls offered, decisions recorded, lost and late: totals over the rounds (each round
    /// fails unless its decisions are its calls, so `lost` is 0 in any finished run).
    pub calls: u64,
    pub decisions: u64,
    pub lost: u64,
    pub late: u64,
    pub publish_failures: u64,
    /// Medians over the rounds of each round's percentile (ms).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Median over the rounds of the hypervisor's steal (%).
    pub host_steal_percent: f64,
}

/// One round: one consumer, one rate, on a fresh nats-server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyRun {
    pub offered_per_second: u64,
    pub seconds: u64,
    pub calls: u64,
    /// Decisions seen and recorded: the run fails unless this is `calls`.
    pub decisions: u64,
    /// Calls whose decision was never seen (the run fails if there is any).
    pub lost: u64,
    /// Decisions later than the histogram's 60 s range, recorded at 60 s.
    pub late: u64,
    /// Publishes JetStream did not acknowledge.
    pub publish_failures: u64,
    /// Furthest the generator fell behind its schedule (ms); included in the latencies.
    pub max_send_lag_ms: f64,
    /// Share of the machine's CPU time the hypervisor took during the round's measured calls
    /// (from the first send to the last decision).
    pub host_steal_percent: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// What consumes `call.inbound` in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consumer {
    /// `crate::e2e::relay`, republishing each call to [`RELAY_SUBJECT`].
    Relay,
    /// The real router.
    Router,
}

impl Consumer {
    /// Its durable consumer on CALLS.
    fn durable(self) -> &'static str {
        match self {
            Consumer::Relay => "relay",
            Consumer::Router => "router",
        }
    }
}

/// Issue 18's bound on router p99 ÷ relay p99: 1.5 at 1,000/s, 2 at 5,000/s and 10,000/s
/// (1.5 at any rate up to 1,000/s, 2 above).
pub fn target_p99_ratio(rate: u64) -> f64 {
    if rate <= 1_000 { 1.5 } else { 2.0 }
}

pub async fn run(
    rates: &[u64],
    seconds: u64,
    pairs: usize,
    contacts: u64,
) -> anyhow::Result<LatencyResult> {
    anyhow::ensure!(pairs > 0, "at least one relay/router pair per rate");
    let mut result = Vec::new();
    for &rate in rates {
        let mut each_pair = Vec::new();
        for pair in 1..=pairs {
            println!("  {rate}/s, pair {pair} of {pairs}:");
            let relay = round(Consumer::Relay, rate, seconds, contacts).await?;
            relay.print("bare relay");
            let router = round(Consumer::Router, rate, seconds, contacts).await?;
            router.print("router");
            let p99_ratio = router.p99_ms / relay.p99_ms;
            println!("    router p99 ÷ relay p99: {p99_ratio:.2}");
            each_pair.push(LatencyPair {
                relay,
                router,
                p99_ratio,
            });
        }
        let rate = LatencyRate::from_pairs(rate, each_pair);
        println!(
            "  {}/s, medians over {pairs} pairs: router p99 {:.2} ms, relay p99 {:.2} ms, \
             paired ratio {:.2} (ratio of the medians {:.2}; target ≤ {})",
            rate.offered_per_second,
            rate.router.p99_ms,
            rate.relay.p99_ms,
            rate.p99_ratio,
            rate.p99_ratio_of_medians,
            rate.target_p99_ratio
        );
        result.push(rate);
    }
    Ok(LatencyResult {
        contacts,
        warmup_calls: WARMUP_CALLS,
        seconds,
        pairs,
        rates: result,
    })
}

impl LatencyResult {
    /// The median relay p99 at `rate`, if the section offered that rate.
    pub fn relay_p99_ms_at(&self, rate: u64) -> Option<f64> {
        self.rates
            .iter()
            .find(|r| r.offered_per_second == rate)
            .map(|r| r.relay.p99_ms)
    }
}

impl LatencyRate {
    fn from_pairs(rate: u64, each_pair: Vec<LatencyPair>) -> LatencyRate {
        let router = RoundsSummary::of(each_pair.iter().map(|p| &p.router));
        let relay = RoundsSummary::of(each_pair.iter().map(|p| &p.relay));
        let p99_ratio = median(each_pair.iter().map(|p| p.p99_ratio));
        let target = target_p99_ratio(rate);
        LatencyRate {
            offered_per_second: rate,
            p99_ratio_of_medians: router.p99_ms / relay.p99_ms,
            router,
            relay,
            p99_ratio,
            target_p99_ratio: target,
            meets_target: p99_ratio <= target,
            each_pair,
        }
    }
}

impl RoundsSummary {
    fn of<'a>(runs: impl Iterator<Item = &'a LatencyRun> + Clone) -> RoundsSummary {
        let sum = |pick: fn(&LatencyRun) -> u64| runs.clone().map(pick).sum::<u64>();
        let med = |pick: fn(&LatencyRun) -> f64| median(runs.clone().map(pick));
        RoundsSummary {
            rounds: runs.clone().count(),
            calls: sum(|r| r.calls),
            decisions: sum(|r| r.decisions),
            lost: sum(|r| r.lost),
            late: sum(|r| r.late),
            publish_failures: sum(|r| r.publish_failures),
            p50_ms: med(|r| r.p50_ms),
            p99_ms: med(|r| r.p99_ms),
            p999_ms: med(|r| r.p999_ms),
            max_ms: med(|r| r.max_ms),
            host_steal_percent: med(|r| r.host_steal_percent),
        }
    }
}

/// The median (the mean of the two middle figures of an even count; 0 for none).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One round on a fresh nats-server holding the bench tenant's settings (for the relay too,
/// so both consumers meet the same server state: streams, stored messages, de-duplication
/// window): `consumer` started, ready (its durable consumer exists), a warm-up of
/// [`WARMUP_CALLS`] at 1,000/s checked complete and drained, then `rate` × `seconds` calls
/// measured. Nothing of one round (server, stream contents, router store and caches,
/// collector, connections) is left for the next.
async fn round(
    consumer: Consumer,
    rate: u64,
    seconds: u64,
    contacts: u64,
) -> anyhow::Result<LatencyRun> {
    let server = NatsServer::start()?;
    let client = server.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = OffsetDateTime::now_utc();
    crate::e2e::publish_raw_all(
        &publisher,
        fixtures::tenant_settings((contacts / 10).max(1), contacts)
            .map(|change| crate::e2e::encode_settings(change, now)),
    )
    .await?;
    let collector = RouteCollector::start(&client).await?;
    let calls = rate * seconds;
    let url = server.url();

    let run = match consumer {
        Consumer::Relay => {
            // The relay stops only once it has relayed every call: if one is lost, the round
            // fails without waiting for it.
            let relay = tokio::spawn(crate::e2e::relay(
                js.clone(),
                WARMUP_CALLS + calls,
                RELAY_SUBJECT,
                0,
            ));
            let measured = measure(consumer, &url, &js, &collector, rate, seconds, contacts).await;
            if measured.is_err() {
                relay.abort();
            }
            let run = measured?;
            relay.await?;
            run
        }
        Consumer::Router => {
            let router = Router::start(&url)?;
            let measured = measure(consumer, &url, &js, &collector, rate, seconds, contacts).await;
            let stopped = router.stop().await;
            let run = measured?;
            stopped?;
            run
        }
    };
    collector.stop();
    Ok(run)
}

/// The warm-up and the measured calls of a round whose consumer is starting.
async fn measure(
    consumer: Consumer,
    url: &str,
    js: &async_nats::jetstream::Context,
    collector: &RouteCollector,
    rate: u64,
    seconds: u64,
    contacts: u64,
) -> anyhow::Result<LatencyRun> {
    // Ready: the router creates its consumer only once its projection has caught up, so the
    // warm-up meets a running consumer rather than a backlog.
    wait_drained(js, consumer.durable()).await?;
    let warm = offer(url, collector, 1_000, WARMUP_CALLS, contacts, 0).await?;
    anyhow::ensure!(
        warm.publish_failures == 0,
        "warm-up publishes failed: {}",
        warm.publish_failures
    );
    collector.wait_all().await;
    collector
        .take()?
        .ensure_complete(WARMUP_CALLS)
        .map_err(|e| e.context("warm-up"))?;
    // The measured calls must not queue behind the warm-up's acknowledgements.
    wait_drained(js, consumer.durable()).await?;

    let calls = rate * seconds;
    let host0 = crate::host::CpuTimes::now();
    let sent = offer(url, collector, rate, calls, contacts, WARMUP_CALLS).await?;
    collector.wait_all().await;
    let steal = crate::host::CpuTimes::now().steal_percent_since(host0);
    let p = collector.take()?;
    let run = LatencyRun::measured(rate, seconds, &sent, steal, &p);
    // The figures of a failing round are printed before it fails the run.
    if p.ensure_complete(calls).is_err() {
        run.print(match consumer {
            Consumer::Relay => "bare relay (failed)",
            Consumer::Router => "router (failed)",
        });
    }
    p.ensure_complete(calls)?;
    Ok(run)
}

impl LatencyRun {
    fn measured(
        rate: u64,
        seconds: u64,
        sent: &Offered,
        host_steal_percent: f64,
        p: &Percentiles,
    ) -> LatencyRun {
        LatencyRun {
            offered_per_second: rate,
            seconds,
            calls: rate * seconds,
            decisions: p.count,
            lost: p.lost,
            late: p.late,
            publish_failures: sent.publish_failures,
            max_send_lag_ms: sent.max_send_lag_ms,
            host_steal_percent,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            p999_ms: p.p999_ms,
            max_ms: p.max_ms,
        }
    }

    fn print(&self, what: &str) {
        println!(
            "    {what} at {}/s for {} s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms \
             ({} of {} calls decided, {} lost, {} late beyond 60 s; generator at most {:.2} ms \
             behind; hypervisor steal {:.1} %)",
            self.offered_per_second,
            self.seconds,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.decisions,
            self.calls,
            self.lost,
            self.late,
            self.max_send_lag_ms,
            self.host_steal_percent
        );
    }
}

struct Offered {
    publish_failures: u64,
    max_send_lag_ms: f64,
}

/// Publishes `calls` calls (numbered from `first`) at `rate`/s from a generator thread with
/// its own current-thread tokio runtime and NATS connection, so it shares neither the
/// router's runtime nor its connection, paced by a ticker thread.
async fn offer(
    url: &str,
    collector: &RouteCollector,
    rate: u64,
    calls: u64,
    contacts: u64,
    first: u64,
) -> anyhow::Result<Offered> {
    let url = url.to_string();
    let scheduled = collector.schedule_handle();
    let thread = std::thread::Builder::new()
        .name("bench-generator".into())
        .spawn(move || -> anyhow::Result<Offered> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(generate(url, scheduled, rate, calls, contacts, first))
        })?;
    tokio::task::spawn_blocking(move || {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the generator panicked"))?
    })
    .await?
}

async fn generate(
    url: String,
    scheduled: Arc<Mutex<HashMap<String, Instant>>>,
    rate: u64,
    calls: u64,
    contacts: u64,
    first: u64,
) -> anyhow::Result<Offered> {
    let client = async_nats::connect(url).await?;
    let publisher = Publisher::new(async_nats::jetstream::new(client.clone()));
    // Acknowledgements are awaited off the send path: a slow ack must not delay the next send.
    let (acks, mut pending) = tokio::sync::mpsc::unbounded_channel::<switchboard_bus::PendingAck>();
    let acker = tokio::spawn(async move {
        let mut failures = 0u64;
        while let Some(ack) = pending.recv().await {
            if ack.ack().await.is_err() {
                failures += 1;
            }
        }
        failures
    });
    // The schedule is kept by a ticker thread with `std::thread::sleep` (tens of µs late at
    // most); tokio's timer wheel rounds sleeps up to the next millisecond, which would add
    // up to 1 ms of generator lag to every latency.
    let (ticks, mut due_calls) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let ticker = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(20);
        for i in 0..calls {
            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if ticks.send((i, due)).is_err() {
                return;
            }
        }
    });
    let mut max_lag = Duration::ZERO;
    while let Some((i, due)) = due_calls.recv().await {
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        let call = fixtures::call(first + i, contacts);
        let envelope = Envelope::new(call, "/switchboard/bench", OffsetDateTime::now_utc());
        schedule(&scheduled, envelope.data.call_id.clone(), due);
        acks.send(publisher.send(&envelope, &TraceContext::default()).await?)
            .map_err(|_| anyhow::anyhow!("the acknowledgement task stopped"))?;
    }
    ticker
        .join()
        .map_err(|_| anyhow::anyhow!("the ticker panicked"))?;
    drop(acks);
    let publish_failures = acker.await?;
    Ok(Offered {
        publish_failures,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p99_ms: f64, late: u64) -> LatencyRun {
        LatencyRun {
            offered_per_second: 1_000,
            seconds: 10,
            calls: 10_000,
            decisions: 10_000,
            lost: 0,
            late,
            publish_failures: 0,
            max_send_lag_ms: 0.1,
            host_steal_percent: 0.0,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            p999_ms: p99_ms * 2.0,
            max_ms: p99_ms * 3.0,
        }
    }

    fn pair(relay: f64, router: f64) -> LatencyPair {
        LatencyPair {
            relay: run(relay, 0),
            router: run(router, 1),
            p99_ratio: router / relay,
        }
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn the_ratio_is_the_median_of_the_pairs_not_of_the_medians() {
        // A noisy minute doubles both sides of the second pair: the paired ratio ignores it.
        let rate =
            LatencyRate::from_pairs(1_000, vec![pair(1.0, 1.2), pair(4.0, 4.8), pair(1.1, 1.3)]);
        assert!((rate.p99_ratio - 1.2 / 1.0).abs() < 1e-9);
        assert_eq!(rate.relay.p99_ms, 1.1);
        assert_eq!(rate.router.p99_ms, 1.3);
        assert!((rate.p99_ratio_of_medians - 1.3 / 1.1).abs() < 1e-9);
        assert_eq!(rate.router.rounds, 3);
        assert_eq!(rate.router.calls, 30_000);
        assert_eq!(rate.router.late, 3);
        assert_eq!(rate.relay.late, 0);
        assert_eq!(rate.target_p99_ratio, 1.5);
        assert!(rate.meets_target);
    }

    #[test]
    fn the_targets_follow_the_issue() {
        assert_eq!(target_p99_ratio(1_000), 1.5);
        assert_eq!(target_p99_ratio(5_000), 2.0);
        assert_eq!(target_p99_ratio(10_000), 2.0);
        let fast = LatencyRate::from_pairs(5_000, vec![pair(1.0, 2.5)]);
        assert!(!fast.meets_target);
    }
}
