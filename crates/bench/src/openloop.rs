//! What the open-loop latency benchmarks share (webhook → call.route in gateway.rs, publish →
//! call.route in latency.rs): the real router in-process, a core NATS subscriber that matches
//! each `call.route` to its call's *scheduled* send time into an HDR histogram, and the wait
//! for the router's backlog to drain.

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
    _dir: tempfile::TempDir,
}

impl Router {
    /// With the router's default configuration.
    pub fn start(nats_url: &str) -> anyhow::Result<Router> {
        Router::start_with(nats_url, &[])
    }

    /// With `extra` command-line flags on top.
    pub fn start_with(nats_url: &str, extra: &[&str]) -> anyhow::Result<Router> {
        let dir = tempfile::tempdir()?;
        let mut args = vec![
            "switchboard-router".to_string(),
            "--nats-url".into(),
            nats_url.to_string(),
            "--database-url".into(),
            format!("sqlite://{}/router.db?mode=rwc", dir.path().display()),
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
            _dir: dir,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Waits until the router's consumer exists and has nothing pending or unacknowledged.
pub async fn wait_router_drained(js: &async_nats::jetstream::Context) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The router creates its consumer once ready; until then it is not found.
        if let Ok(mut consumer) = js
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                "router", "CALLS",
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
            "the router's backlog never drained"
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

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// `call.route` events on a core NATS subscription, each recorded (µs from its call's
/// scheduled time) when its call id was registered with [`RouteCollector::schedule`].
pub struct RouteCollector {
    scheduled: Arc<Mutex<HashMap<String, Instant>>>,
    histogram: Arc<Mutex<Histogram<u64>>>,
    task: JoinHandle<()>,
}

impl RouteCollector {
    pub async fn start(client: &async_nats::Client) -> anyhow::Result<RouteCollector> {
        let scheduled: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
            1, 60_000_000, 3,
        )?));
        let mut routes = client.subscribe("call.route.>").await?;
        let (s, h) = (scheduled.clone(), histogram.clone());
        let task = tokio::spawn(async move {
            while let Some(message) = routes.next().await {
                // Only the call id: a full decode validates every number with the phone
                // library, CPU the machine under test would lose to the observer.
                let Ok(route) = serde_json::from_slice::<RouteCallId<'_>>(&message.payload) else {
                    continue;
                };
                let at = s.lock().ok().and_then(|mut m| m.remove(route.data.call_id));
                if let (Some(at), Ok(mut hist)) = (at, h.lock()) {
                    let _ = hist.record(at.elapsed().as_micros().max(1) as u64);
                }
            }
        });
        Ok(RouteCollector {
            scheduled,
            histogram,
            task,
        })
    }

    /// The map of call ids awaiting their decision, shareable with a generator thread.
    pub fn schedule_handle(&self) -> Arc<Mutex<HashMap<String, Instant>>> {
        self.scheduled.clone()
    }

    /// Waits (up to 60 s) until every scheduled call has its decision.
    pub async fn wait_all(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let missing = self.scheduled.lock().map(|m| m.len()).unwrap_or(0);
            if missing == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{missing} decisions missing after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The percentiles recorded so far, and a fresh histogram for what follows.
    pub fn take(&self) -> anyhow::Result<Percentiles> {
        let mut hist = self
            .histogram
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let p = Percentiles {
            count: hist.len(),
            p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            p999_ms: hist.value_at_quantile(0.999) as f64 / 1000.0,
            max_ms: hist.max() as f64 / 1000.0,
        };
        hist.reset();
        Ok(p)
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// Registers `call_id` in a map from [`RouteCollector::schedule_handle`].
pub fn schedule(scheduled: &Mutex<HashMap<String, Instant>>, call_id: String, due: Instant) {
    if let Ok(mut m) = scheduled.lock() {
        m.insert(call_id, due);
    }
}
