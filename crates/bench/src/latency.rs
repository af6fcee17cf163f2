//! `call.inbound` publish → `call.route` latency at fixed offered rates, open loop: the real
//! router in-process, one nats-server, and a generator on its own thread and tokio runtime
//! (with its own NATS connection) that publishes each call at its *scheduled* time whatever
//! the acknowledgements do. Latency runs from that scheduled time to the call's `call.route`
//! reaching a core NATS subscriber, into an HDR histogram, so a stall of the generator, the
//! server or the router shows in the tail instead of lowering the offered load.

use crate::fixtures;
use crate::openloop::{Percentiles, RouteCollector, Router, schedule, wait_router_drained};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::Envelope;
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

/// Calls offered at 1,000/s before the measured rates (connections, caches, JIT-free but
/// cold allocator and SQLite pages), then drained; not recorded.
const WARMUP_CALLS: u64 = 2_000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyResult {
    pub contacts: u64,
    pub warmup_calls: u64,
    pub runs: Vec<LatencyRun>,
    /// The same measurement at the first rate with a bare relay in the router's place.
    pub relay_baseline: LatencyRun,
}

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
    /// Share of the machine's CPU time the hypervisor took during the run.
    pub host_steal_percent: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

pub async fn run(rates: &[u64], seconds: u64, contacts: u64) -> anyhow::Result<LatencyResult> {
    let server = NatsServer::start()?;
    let client = server.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = OffsetDateTime::now_utc();
    for change in fixtures::tenant_settings((contacts / 10).max(1), contacts) {
        let (subject, id, body) = crate::e2e::encode_settings(change, now);
        publisher
            .send_raw(subject, &id, body, &TraceContext::default())
            .await?
            .ack()
            .await?;
    }

    let router = Router::start(&server.url())?;
    let collector = RouteCollector::start(&client).await?;
    let mut next_call = 0u64;

    // Warm-up, then let the router finish it so the measured calls do not queue behind it.
    let warm = offer(
        &server.url(),
        &collector,
        1_000,
        WARMUP_CALLS,
        contacts,
        next_call,
    )
    .await?;
    next_call += WARMUP_CALLS;
    collector.wait_all().await;
    anyhow::ensure!(warm.publish_failures == 0, "warm-up publishes failed");
    collector
        .take()?
        .ensure_complete(WARMUP_CALLS)
        .map_err(|e| e.context("warm-up"))?;
    wait_router_drained(&js).await?;

    let mut runs = Vec::new();
    for &rate in rates {
        let calls = rate * seconds;
        let host0 = crate::host::CpuTimes::now();
        let sent = offer(&server.url(), &collector, rate, calls, contacts, next_call).await?;
        next_call += calls;
        collector.wait_all().await;
        let steal = crate::host::CpuTimes::now().steal_percent_since(host0);
        let p = collector.take()?;
        let run = LatencyRun::measured(rate, seconds, &sent, steal, &p);
        run.print("publish → call.route");
        p.ensure_complete(calls)?;
        wait_router_drained(&js).await?;
        runs.push(run);
    }

    router.stop().await?;
    collector.stop();
    let relay_baseline = relay_baseline(rates.first().copied().unwrap_or(1_000), seconds).await?;
    Ok(LatencyResult {
        contacts,
        warmup_calls: WARMUP_CALLS,
        runs,
        relay_baseline,
    })
}

/// The same open-loop measurement with the router replaced by the e2e benchmark's bare relay
/// (consume → publish with ack → ack, no decoding, no freshness read, no routing), which
/// republishes each `call.inbound` body to `call.route.<tenant>` where the collector reads its
/// call id. On a fresh nats-server: what the machine, nats-server and the client library
/// alone cost at this rate, against which the router's figures can be read.
async fn relay_baseline(rate: u64, seconds: u64) -> anyhow::Result<LatencyRun> {
    let server = NatsServer::start()?;
    let client = server.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js, &StreamOptions::default()).await?;
    let collector = RouteCollector::start(&client).await?;
    let calls = rate * seconds;
    let relay = tokio::spawn(crate::e2e::relay(
        js.clone(),
        WARMUP_CALLS + calls,
        "call.route.bench",
    ));
    // The relay stops only once it has relayed every call: if one is lost, the run fails
    // without waiting for it.
    let measured = async {
        let warm = offer(&server.url(), &collector, 1_000, WARMUP_CALLS, 1, 0).await?;
        anyhow::ensure!(warm.publish_failures == 0, "warm-up publishes failed");
        collector.wait_all().await;
        collector
            .take()?
            .ensure_complete(WARMUP_CALLS)
            .map_err(|e| e.context("warm-up"))?;

        let host0 = crate::host::CpuTimes::now();
        let sent = offer(&server.url(), &collector, rate, calls, 1, WARMUP_CALLS).await?;
        collector.wait_all().await;
        let steal = crate::host::CpuTimes::now().steal_percent_since(host0);
        let p = collector.take()?;
        let run = LatencyRun::measured(rate, seconds, &sent, steal, &p);
        run.print("baseline, bare relay instead of the router,");
        p.ensure_complete(calls)?;
        anyhow::Ok(run)
    }
    .await;
    if measured.is_err() {
        relay.abort();
    }
    let run = measured?;
    relay.await?;
    collector.stop();
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
            "  {what} at {}/s for {} s: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms \
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
