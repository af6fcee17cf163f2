//! The router: consumes every tenant's `call.inbound` on one durable pull consumer shared by
//! all instances, decides with the routing core from the settings projection, publishes
//! `call.route` with a `Nats-Msg-Id` derived from the call, and acknowledges the input only
//! after JetStream stored the decision.
//!
//! Must not: hold settings anywhere but the projection, decide without the settings that were
//! acknowledged before the call (see `freshness`), or acknowledge a call it has not decided or
//! recorded as rejected.

mod answers;
mod config;
mod database;
pub mod freshness;
mod handler;
mod metrics;
mod probes;

pub use config::Config;

use futures::StreamExt;
use futures::future::{FusedFuture, FutureExt};
use futures::stream::FuturesUnordered;
use probes::{Phase, Probes};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{BusError, Publisher, router_inbound};
use switchboard_projections::{Follower, OpenError, ProjectionError};

/// Why the router stopped.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// NATS / JetStream failed in a way retries did not fix.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The projection store or follower failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The projection store's database refused the connection in a way retrying cannot fix
    /// (credentials, a missing role or database, a URL that does not parse).
    #[error(transparent)]
    Database(#[from] OpenError),
    /// The database stayed unreachable until `--database-connect-timeout-secs`.
    #[error(
        "cannot connect to the projection store: gave up after {attempts} attempts in {waited_secs:.1} s (--database-connect-timeout-secs); last error: {last}"
    )]
    DatabaseGaveUp {
        /// Attempts made.
        attempts: u64,
        /// Time spent, in seconds.
        waited_secs: f64,
        /// The last attempt's error.
        last: String,
    },
    /// The health endpoint could not listen.
    #[error("failed to serve health endpoints on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Resolves on SIGTERM or SIGINT (the services' one shutdown signal).
pub use switchboard_bus::runtime::shutdown_signal;

/// Runs the router until `shutdown` resolves, then stops pulling, finishes and acknowledges
/// the calls in flight, and drains the NATS connection. The health endpoints listen first;
/// then the router waits for NATS (retrying with backoff, `/readyz` 503 "connecting to NATS"
/// meanwhile, until `--nats-connect-timeout-secs` if set) and provisions the streams, then
/// waits for the projection store's database the same way ("connecting to the database",
/// until `--database-connect-timeout-secs` if set; refused credentials or a URL that does not
/// parse fail at once) and migrates it. `shutdown` is honoured during start-up too (waiting
/// for NATS or the database, or catching up with SETTINGS, can take long): the router then
/// stops without consuming and returns `Ok`. Returns an error when start-up fails or when the
/// settings projection stops on a fatal error (the router cannot decide with fresh settings
/// any more; let it be restarted).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RouterError> {
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    let metrics = Arc::new(metrics::Metrics::new());
    let status = Probes::new(metrics.clone());
    let addr = config.http_addr;
    let health = probes::serve(addr, status.clone())
        .await
        .map_err(|source| RouterError::Http { addr, source })?;

    let started = config
        .nats
        .connect_and_provision(
            "switchboard-router",
            &config.streams.options(),
            |client| status.connected(client.clone()),
            shutdown.as_mut(),
        )
        .await;
    let client = match started {
        Ok(Some(client)) => client,
        Ok(None) => {
            tracing::info!("stopped before start-up completed");
            return Ok(());
        }
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return Err(e.into());
        }
    };
    let js = async_nats::jetstream::new(client.clone());

    let outcome = route_calls(&config, js, &status, &metrics, shutdown).await;

    status.set_ready(false);
    drop(health);
    switchboard_bus::close(&client).await;
    match &outcome {
        Ok(()) => tracing::info!("stopped"),
        Err(e) => tracing::error!(error = %e, "stopped on an error"),
    }
    outcome
}

/// Start-up after the connection (projection store, catch-up, consumer), then consuming until
/// shutdown or a fatal projection error; the follower is shut down on every way out.
async fn route_calls<S: FusedFuture<Output = ()>>(
    config: &Config,
    js: async_nats::jetstream::Context,
    status: &Probes,
    metrics: &Arc<metrics::Metrics>,
    mut shutdown: Pin<&mut S>,
) -> Result<(), RouterError> {
    let Some(store) = database::open(config, status, shutdown.as_mut()).await? else {
        tracing::info!("stopped before start-up completed");
        return Ok(());
    };
    status.set_phase(Phase::Started);
    let start = Follower::start(js.clone(), store, Publisher::new(js.clone()));
    let follower = tokio::select! {
        biased;
        () = shutdown.as_mut() => return Ok(()),
        follower = start => Arc::new(follower?),
    };
    let outcome = consume_when_ready(config, js, &follower, status, metrics, shutdown).await;
    match Arc::try_unwrap(follower) {
        Ok(follower) => follower.shutdown().await,
        Err(_) => tracing::error!("the settings follower is still shared; not shut down"),
    }
    outcome
}

async fn consume_when_ready<S: FusedFuture<Output = ()>>(
    config: &Config,
    js: async_nats::jetstream::Context,
    follower: &Arc<Follower>,
    status: &Probes,
    metrics: &Arc<metrics::Metrics>,
    mut shutdown: Pin<&mut S>,
) -> Result<(), RouterError> {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => {
            tracing::info!("stopping before the projection caught up");
            return Ok(());
        }
        caught_up = follower.wait_ready(config.ready_timeout()) => caught_up?,
    }

    switchboard_bus::runtime::load_phone_metadata().await;
    let spec = router_inbound();
    let consumer = spec.ensure(&js).await?;
    let sampler = metrics
        .clone()
        .sample(consumer.clone(), js.clone(), follower.clone());
    let answers = answers::AnswersFollower::start(js.clone(), metrics.clone());
    let router = Arc::new(handler::Router {
        metrics: metrics.clone(),
        publisher: Publisher::new(js.clone()),
        projection: follower.projection(),
        answers: answers.book(),
        follower: follower.clone(),
        freshness_timeout: config.freshness_timeout(),
        consumer: spec,
    });
    status.set_ready(true);
    tracing::info!(
        settings_seq = follower.applied_seq(),
        "ready: projection caught up, consuming call.inbound"
    );

    // Resolves only if the follower stops on a fatal error.
    let follower_failed = async {
        match follower.wait_applied(u64::MAX, Duration::MAX).await {
            Err(e) => e,
            Ok(_) => ProjectionError::Stopped,
        }
    };
    let gate = freshness::Gate::new(js, config.freshness_timeout());
    let outcome = consume(
        &consumer,
        gate,
        router,
        config.max_in_flight.max(1),
        shutdown,
        follower_failed.fuse(),
    )
    .await;
    sampler.abort();
    // Its handle on the follower must be gone before the follower is shut down.
    let _ = sampler.await;
    answers.shutdown().await;
    status.set_ready(false);
    outcome.map_err(RouterError::from)
}

/// Longest a pull request waits at the server for calls before the next one is sent.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Pause before a failed pull request is retried.
const PULL_RETRY: Duration = Duration::from_millis(250);

/// Pulls batches, holds each call in the freshness gate, and handles each call the gate
/// releases as a future polled by this same task (as the bare relay of the benchmarks does):
/// no task spawned per call, and the publishes of a batch leave together, so the connection
/// writes them in few system calls. At most `max_in_flight` calls are held or in flight at
/// once. A call's handler that panics is reported, and its call redelivered. On shutdown
/// (or when the projection fails): no new pull; the messages of the current pull are still
/// handled (they were delivered to this instance and would otherwise wait for `ack_wait`),
/// then every call held or in flight is finished and settled.
async fn consume<S, F>(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
    mut gate: freshness::Gate,
    router: Arc<handler::Router>,
    max_in_flight: usize,
    mut shutdown: Pin<&mut S>,
    follower_failed: F,
) -> Result<(), ProjectionError>
where
    S: FusedFuture<Output = ()>,
    F: FusedFuture<Output = ProjectionError>,
{
    let mut follower_failed = std::pin::pin!(follower_failed);
    let mut failure = None;
    let mut in_flight = FuturesUnordered::new();
    let start = |in_flight: &mut FuturesUnordered<_>, released: Vec<freshness::Released>| {
        for call in released {
            in_flight
                .push(std::panic::AssertUnwindSafe(router.clone().handle(call)).catch_unwind());
        }
    };
    while !shutdown.is_terminated() && failure.is_none() {
        let capacity = max_in_flight.saturating_sub(in_flight.len() + gate.len());
        if capacity == 0 {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => {}
                e = follower_failed.as_mut() => failure = Some(e),
                released = gate.released(), if !gate.is_empty() => start(&mut in_flight, released),
                Some(done) = in_flight.next(), if !in_flight.is_empty() => settled(done),
            }
            continue;
        }
        let pull = consumer
            .batch()
            .max_messages(capacity)
            .expires(PULL_EXPIRES)
            .messages();
        let pulled = tokio::select! {
            biased;
            () = shutdown.as_mut() => continue,
            e = follower_failed.as_mut() => {
                failure = Some(e);
                continue;
            }
            pulled = pull => pulled,
        };
        let mut batch = match pulled {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "pull request failed; retrying");
                let pause = tokio::time::sleep(PULL_RETRY);
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        biased;
                        () = shutdown.as_mut() => break,
                        e = follower_failed.as_mut() => {
                            failure = Some(e);
                            break;
                        }
                        released = gate.released(), if !gate.is_empty() => start(&mut in_flight, released),
                        Some(done) = in_flight.next(), if !in_flight.is_empty() => settled(done),
                        () = &mut pause => break,
                    }
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => {}
                e = follower_failed.as_mut() => failure = Some(e),
                released = gate.released(), if !gate.is_empty() => start(&mut in_flight, released),
                Some(done) = in_flight.next(), if !in_flight.is_empty() => settled(done),
                next = batch.next() => match next {
                    Some(Ok(message)) => gate.hold(message),
                    Some(Err(e)) => tracing::warn!(error = %e, "pull batch error"),
                    None => break,
                },
            }
        }
    }
    // Calls still held are released once a read answers, or as `Unknown` at their timeout.
    while !gate.is_empty() {
        let released = gate.released().await;
        start(&mut in_flight, released);
    }
    while let Some(done) = in_flight.next().await {
        settled(done);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reports a call handler that panicked; its call is redelivered after `ack_wait`.
fn settled(done: std::thread::Result<()>) {
    if let Err(panic) = done {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        tracing::error!(
            error = what,
            "a call handler failed; the call will be redelivered"
        );
    }
}
