//! What the open-loop latency benchmarks share (webhook → call.route in gateway.rs, publish →
//! call.route in latency.rs): the real router in-process, a core NATS subscriber that matches
//! each `call.route` (or the bare relay's copy of the call) to its call's *scheduled* send
//! time into an HDR histogram, and the wait for a consumer's backlog to drain.

use futures::StreamExt;
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The real router (`switchboard_router::run`, SQLite projection in a temporary directory)
/// running on the current tokio runtime.
pub struct Router {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    /// The store's directory, when the router made its own (removed when it is dropped).
    _dir: Option<tempfile::TempDir>,
}

impl Router {
    /// With the router's default configuration.
    pub fn start(nats_url: &str) -> anyhow::Result<Router> {
        Router::start_with(nats_url, &[])
    }

    /// With `extra` command-line flags on top.
    pub fn start_with(nats_url: &str, extra: &[&str]) -> anyhow::Result<Router> {
        let dir = tempfile::tempdir()?;
        let database = format!("sqlite://{}/router.db?mode=rwc", dir.path().display());
        let mut router = Router::start_on(nats_url, &database, extra)?;
        router._dir = Some(dir);
        Ok(router)
    }

    /// On the SQLite store at `database_url` (which outlives the router), with `extra` flags.
    pub fn start_on(nats_url: &str, database_url: &str, extra: &[&str]) -> anyhow::Result<Router> {
        let mut args = vec![
            "switchboard-router".to_string(),
            "--nats-url".into(),
            nats_url.to_string(),
            "--database-url".into(),
            database_url.to_string(),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let config = <switchboard_router::Config as clap::Parser>::parse_from(args);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            switchboard_router::run(config, async move {
                let _ = stopped.await;
            })
            .await?;
            anyhow::Ok(())
        });
        Ok(Router {
            stop,
            task,
            _dir: None,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Waits until the router's consumer exists and has nothing pending or unacknowledged.
pub async fn wait_router_drained(js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
    wait_drained(js, "router").await
}

/// Waits (up to 60 s) until the durable consumer `durable` on CALLS exists and has nothing
/// pending or unacknowledged: the router creates its consumer once its projection has caught
/// up (ready), the bare relay as it starts.
pub async fn wait_drained(
    js: &async_nats::jetstream::Context,
    durable: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Until its consumer exists, it is not found.
        if let Ok(mut consumer) = js
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                durable, "CALLS",
            )
            .await
        {
            let info = consumer.info().await?;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return Ok(());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the {durable} consumer's backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one field of a `call.route` envelope the collector needs.
#[derive(serde::Deserialize)]
struct RouteCallId<'a> {
    #[serde(borrow)]
    data: CallIdOnly<'a>,
}

#[derive(serde::Deserialize)]
struct CallIdOnly<'a> {
    call_id: &'a str,
}

/// Latency percentiles in milliseconds, and what the histogram could not show as measured.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    /// Decisions matched to a scheduled call and recorded.
    pub count: u64,
    /// Scheduled calls whose decision was never seen (still missing when [`RouteCollector::take`]
    /// was called, after [`RouteCollector::wait_all`]).
    pub lost: u64,
    /// Decisions that came later than the histogram's range ([`HIGHEST_US`]): recorded at its
    /// top, so they still count in every percentile, but their true latency is higher.
    pub late: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The histogram's range: 60 s, in µs. A later decision is recorded saturated and counted late.
pub const HIGHEST_US: u64 = 60_000_000;

/// Longest [`RouteCollector::wait_all`] waits for the decisions still missing.
const WAIT_ALL: Duration = Duration::from_secs(60);

/// What the collector has recorded since the last [`RouteCollector::take`].
struct Recorded {
    histogram: Histogram<u64>,
    late: u64,
}

impl Recorded {
    fn record(&mut self, micros: u64) {
        if micros > HIGHEST_US {
            self.late += 1;
        }
        self.histogram
            .saturating_record(micros.clamp(1, HIGHEST_US));
    }
}

/// `call.route` events on a core NATS subscription, each recorded (µs from its call's
/// scheduled time) when its call id was registered with [`schedule`] in the map of
/// [`RouteCollector::schedule_handle`]. A call is taken out of that map and its latency recorded
/// under the map's lock, so every scheduled call is, at any moment, either still awaited or
/// recorded: [`RouteCollector::take`] reports the awaited ones as lost.
pub struct RouteCollector {
    scheduled: Arc<Mutex<HashMap<String, Instant>>>,
    recorded: Arc<Mutex<Recorded>>,
    task: JoinHandle<()>,
}

impl RouteCollector {
    pub async fn start(client: &async_nats::Client) -> anyhow::Result<RouteCollector> {
        let scheduled: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let recorded = Arc::new(Mutex::new(Recorded {
            histogram: Histogram::<u64>::new_with_bounds(1, HIGHEST_US, 3)?,
            late: 0,
        }));
        let mut routes = client.subscribe("call.route.>").await?;
        let (s, r) = (scheduled.clone(), recorded.clone());
        let task = tokio::spawn(async move {
            while let Some(message) = routes.next().await {
                // Only the call id: a full decode validates every number with the phone
                // library, CPU the machine under test would lose to the observer.
                let Ok(route) = serde_json::from_slice::<RouteCallId<'_>>(&message.payload) else {
                    continue;
                };
                // Lock order: the schedule, then the record (as in `take`).
                let Ok(mut scheduled) = s.lock() else {
                    continue;
                };
                if let Some(at) = scheduled.remove(route.data.call_id)
                    && let Ok(mut recorded) = r.lock()
                {
                    recorded.record(at.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
                }
            }
        });
        Ok(RouteCollector {
            scheduled,
            recorded,
            task,
        })
    }

    /// The map of call ids awaiting their decision, shareable with a generator thread.
    pub fn schedule_handle(&self) -> Arc<Mutex<HashMap<String, Instant>>> {
        self.scheduled.clone()
    }

    /// Waits (up to 60 s) until every scheduled call has its decision; the calls still
    /// without one are reported as lost by [`RouteCollector::take`].
    pub async fn wait_all(&self) {
        let deadline = Instant::now() + WAIT_ALL;
        while self
            .scheduled
            .lock()
            .map(|m| !m.is_empty())
            .unwrap_or(false)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The percentiles recorded so far, with the calls still awaited counted as lost (and
    /// forgotten); then a fresh histogram and schedule for what follows.
    pub fn take(&self) -> anyhow::Result<Percentiles> {
        let poisoned = || anyhow::anyhow!("poisoned");
        let mut scheduled = self.scheduled.lock().map_err(|_| poisoned())?;
        let mut recorded = self.recorded.lock().map_err(|_| poisoned())?;
        let hist = &recorded.histogram;
        let p = Percentiles {
            count: hist.len(),
            lost: scheduled.len() as u64,
            late: recorded.late,
            p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            p999_ms: hist.value_at_quantile(0.999) as f64 / 1000.0,
            max_ms: hist.max() as f64 / 1000.0,
        };
        scheduled.clear();
        recorded.histogram.reset();
        recorded.late = 0;
        Ok(p)
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Percentiles {
    /// Fails unless every one of `calls` scheduled calls was decided and recorded.
    pub fn ensure_complete(&self, calls: u64) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lost == 0 && self.count == calls,
            "{} of {calls} calls decided and recorded, {} decisions lost (never seen within {} s \
             of the last send)",
            self.count,
            self.lost,
            WAIT_ALL.as_secs()
        );
        Ok(())
    }
}

/// Registers `call_id` in a map from [`RouteCollector::schedule_handle`].
pub fn schedule(scheduled: &Mutex<HashMap<String, Instant>>, call_id: String, due: Instant) {
    if let Ok(mut m) = scheduled.lock() {
        m.insert(call_id, due);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_decisions_are_counted_and_recorded_at_the_top() {
        let mut r = Recorded {
            histogram: Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("bounds"),
            late: 0,
        };
        r.record(0);
        r.record(1_000);
        r.record(HIGHEST_US);
        r.record(HIGHEST_US + 1);
        r.record(u64::MAX);
        assert_eq!(r.histogram.len(), 5);
        assert_eq!(r.late, 2);
        assert!(r.histogram.max() >= HIGHEST_US);
    }

    #[test]
    fn a_missing_decision_fails_the_run() {
        let p = |count, lost| Percentiles {
            count,
            lost,
            late: 0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            max_ms: 0.0,
        };
        assert!(p(10, 0).ensure_complete(10).is_ok());
        assert!(p(9, 1).ensure_complete(10).is_err());
        assert!(p(9, 0).ensure_complete(10).is_err());
    }
}
