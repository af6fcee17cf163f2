//! The dialer: consumes every tenant's `call.route` and `call.status` on two durable pull
//! consumers shared by all instances, and carries out each decision through the carrier: ring
//! the target, on no-answer, busy or failure the next fallback, then the final action
//! (voicemail or announcement and hang-up), so no call ends in silence. Per-call progress lives
//! in the `DIAL_PROGRESS` key-value bucket, changed by compare-and-swap, with each step claimed
//! before the carrier is asked: a redelivered decision or status never rings a target twice,
//! and a restarted dialer resumes each chain where it was. Every step is published as
//! `call.dial` to CALLS.
//!
//! Must not: decide routes (the router does), ring a step it has not claimed, or acknowledge a
//! delivery whose outcome is not stored and published.

pub mod carrier;
mod config;
mod dialer;
mod health;
mod metrics;
pub mod progress;
pub(crate) use switchboard_tenants as tenants;
pub mod twiml;

pub use carrier::{Carrier, Sandbox, SandboxRecord, Twilio};
pub use config::{CarrierKind, Config};
pub use dialer::SOURCE;
pub use tenants::{TenantSecrets, Tenants, TenantsError};

use carrier::RetryPolicy;
use dialer::{Dialer, Input};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use switchboard_bus::{
    BusError, Publisher, PullConsumerSpec, dialer_routes, dialer_statuses, ensure_streams,
};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the dialer stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    /// NATS / JetStream failed at start-up.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The tenants' secrets could not be loaded.
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The health endpoint could not listen.
    #[error("failed to serve health endpoints on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, so a signal
/// during start-up is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (term, int) => {
                for e in [term.err(), int.err()].into_iter().flatten() {
                    tracing::warn!(error = %e, "cannot install a signal handler");
                }
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}

/// Runs the dialer with the carrier `config` names until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DialerError> {
    run_with(config, None, shutdown).await
}

/// Runs the dialer until `shutdown` resolves, then stops pulling, finishes the deliveries in
/// flight and drains the NATS connection. `carrier` replaces the one `config` names (tests
/// inspecting a [`Sandbox`]).
pub async fn run_with(
    config: Config,
    carrier: Option<Arc<dyn Carrier>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DialerError> {
    let public_base = match (&config.public_base_url, config.carrier) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, CarrierKind::Sandbox) => "http://sandbox.invalid".to_string(),
        (None, CarrierKind::Twilio) => {
            return Err(DialerError::Config(
                "--public-base-url (the gateway's public URL) is required with --carrier twilio"
                    .into(),
            ));
        }
    };
    let tenants = Tenants::load(config.tenants_file.as_deref(), config.tenants_json.as_ref())?;
    let outcomes =
        Sandbox::parse_outcomes(&config.sandbox_outcomes).map_err(DialerError::Config)?;

    let client = config.nats.connect("switchboard-dialer").await?;
    let js = async_nats::jetstream::new(client.clone());
    let options = config.streams.options();
    ensure_streams(&js, &options).await?;
    let store =
        progress::ProgressStore::open(&js, config.progress_max_age(), options.replicas).await?;
    let publisher = Publisher::new(js.clone());

    let carrier: Arc<dyn Carrier> = match (carrier, config.carrier) {
        (Some(carrier), _) => carrier,
        (None, CarrierKind::Sandbox) => Arc::new(Sandbox::new(
            publisher.clone(),
            outcomes,
            Duration::from_millis(config.sandbox_ring_ms),
        )),
        (None, CarrierKind::Twilio) => {
            if tenants.is_empty() {
                tracing::warn!("no tenants configured: every Twilio step will fail");
            }
            Arc::new(
                Twilio::new(&config.twilio_api_base, tenants, config.carrier_timeout())
                    .map_err(DialerError::Config)?,
            )
        }
    };
    let metrics = Arc::new(metrics::Metrics::new());
    let dialer = Arc::new(Dialer {
        metrics: metrics.clone(),
        publisher,
        store,
        carrier,
        retry: RetryPolicy {
            max_attempts: config.carrier_max_attempts.max(1),
            base: Duration::from_millis(config.carrier_backoff_ms),
            max: Duration::from_millis(
                config.carrier_backoff_max_ms.max(config.carrier_backoff_ms),
            ),
        },
        public_base,
        ring_timeout_secs: config.ring_timeout_secs,
        gateway_sync_mode: config.gateway_sync_mode,
        claim_stale_after: config.claim_stale_after(),
    });

    let ready = Arc::new(AtomicBool::new(false));
    let health = health::serve(
        config.http_addr,
        client.clone(),
        ready.clone(),
        metrics.clone(),
    )
    .await?;

    let routes = dialer_routes();
    let statuses = dialer_statuses();
    let route_consumer = routes.ensure(&js).await?;
    let status_consumer = statuses.ensure(&js).await?;
    let sampler = metrics.sample_pending(vec![
        (routes.name, route_consumer.clone()),
        (statuses.name, status_consumer.clone()),
    ]);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    let max_in_flight = config.max_in_flight.max(1);
    loops.spawn(consume(
        route_consumer,
        routes,
        Input::Route,
        dialer.clone(),
        max_in_flight,
        stop_rx.clone(),
    ));
    loops.spawn(consume(
        status_consumer,
        statuses,
        Input::Status,
        dialer,
        max_in_flight,
        stop_rx,
    ));
    ready.store(true, Ordering::SeqCst);
    tracing::info!(carrier = ?config.carrier, sync = config.gateway_sync_mode, "ready: consuming call.route and call.status");

    shutdown.await;
    ready.store(false, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    sampler.abort();
    health.abort();
    switchboard_bus::close(&client).await;
    tracing::info!("stopped");
    Ok(())
}

/// Longest a pull request waits at the server before the next one is sent.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Pause before a failed pull request is retried.
const PULL_RETRY: Duration = Duration::from_millis(250);

/// Pulls batches and hands each delivery to its own task, up to `max_in_flight` at once; on
/// stop, finishes (and settles) what was pulled.
async fn consume(
    consumer: async_nats::jetstream::consumer::PullConsumer,
    spec: PullConsumerSpec,
    input: Input,
    dialer: Arc<Dialer>,
    max_in_flight: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight = JoinSet::new();
    while !*stop.borrow() {
        let capacity = max_in_flight.saturating_sub(in_flight.len());
        if capacity == 0 {
            tokio::select! {
                _ = stop.changed() => {}
                Some(done) = in_flight.join_next() => settled(done),
            }
            continue;
        }
        let pulled = tokio::select! {
            _ = stop.changed() => continue,
            pulled = consumer.batch().max_messages(capacity).expires(PULL_EXPIRES).messages() => pulled,
        };
        let mut batch = match pulled {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, consumer = spec.name, "pull request failed; retrying");
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(PULL_RETRY) => {}
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                Some(done) = in_flight.join_next() => settled(done),
                next = batch.next() => match next {
                    Some(Ok(message)) => {
                        in_flight.spawn(dialer.clone().handle(input, spec.clone(), message));
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, consumer = spec.name, "pull batch error"),
                    None => break,
                },
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        settled(done);
    }
}

fn settled(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a delivery handler failed; it will be redelivered");
    }
}
