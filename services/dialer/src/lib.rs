//! The dialer: consumes every tenant's `call.route` and `call.status` on two durable pull
//! consumers shared by all instances, and carries out each decision through the carrier: ring
//! the target, on no-answer, busy or failure the next fallback, then the final action
//! (voicemail or announcement and hang-up), so no call ends in silence. Per-call progress lives
//! in the `DIAL_PROGRESS` key-value bucket, changed by compare-and-swap, with each step claimed
//! before the carrier is asked: a redelivered decision or status never rings a target twice,
//! and a restarted dialer resumes each chain where it was. Every step is published as
//! `call.dial` to CALLS, and a call that ended without anyone answering as one `call.missed`.
//! A leg rings every member of a simultaneous ring group at once, with the gateway's whisper
//! when it is screened; a call the carrier says is no longer in progress ends its chain.
//!
//! Must not: decide routes (the router does), ring a step it has not claimed, or acknowledge a
//! delivery whose outcome is not stored and published.

pub mod carrier;
mod config;
mod dialer;
mod metrics;
/// The chain's progress and its store, shared with the gateway's dead-man's switch.
pub use switchboard_chain as progress;
pub(crate) use switchboard_tenants as tenants;
pub mod twiml;

pub use carrier::{Carrier, Sandbox, SandboxEntry, SandboxOptions, SandboxRecord, Twilio};
pub use config::{CarrierKind, Config};
pub use dialer::SOURCE;
pub use tenants::{LiveTenants, TenantSecrets, Tenants, TenantsError};

use carrier::RetryPolicy;
use dialer::{Dialer, Kind};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::health::{self, Health};
use switchboard_bus::runtime::{self, ConsumeOptions};
use switchboard_bus::{BusError, Publisher, dialer_routes, dialer_statuses};
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

/// Resolves on SIGTERM or SIGINT (the services' one shutdown signal).
pub use switchboard_bus::runtime::shutdown_signal;

/// Runs the dialer with the carrier `config` names until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DialerError> {
    run_with(config, None, shutdown).await
}

/// Runs the dialer until `shutdown` resolves, then stops pulling, finishes the deliveries in
/// flight and drains the NATS connection. `carrier` replaces the one `config` names (tests
/// inspecting a [`Sandbox`]).
///
/// The configuration is checked first; then the health endpoints listen, and the dialer waits
/// for NATS (retrying with backoff, `/readyz` 503 "connecting to NATS" meanwhile, until
/// `--nats-connect-timeout-secs` if set) and provisions the streams. `shutdown` is honoured
/// while it waits: the dialer then stops without consuming and returns `Ok`. `/readyz` answers
/// 200 once `DIAL_PROGRESS` is open and both consumers are started.
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
    // A Twilio dialer checks every tenant's credentials at start-up and on every reload (a
    // reload that would leave a tenant without them is refused, keeping the ones in force).
    let twilio = config.carrier == CarrierKind::Twilio && carrier.is_none();
    let tenants = LiveTenants::load(
        config.tenants_file.clone(),
        config.tenants_json.clone(),
        twilio.then_some(credentials_check as tenants::Check),
    )
    .map_err(|e| match e {
        TenantsError::Refused(reason) => DialerError::Config(reason),
        other => DialerError::Tenants(other),
    })?;
    let _tenants_watch = AbortOnDrop(tokio::spawn(
        tenants.clone().watch(|_| {}, std::future::pending()),
    ));
    let outcomes =
        Sandbox::parse_outcomes(&config.sandbox_outcomes).map_err(DialerError::Config)?;

    let mut shutdown = std::pin::pin!(shutdown);
    let metrics = Arc::new(metrics::Metrics::new());
    let status = Health::new("starting\n", metrics.clone(), metrics::Metrics::render);
    let addr = config.http_addr;
    let health = health::serve(addr, status.clone())
        .await
        .map_err(|source| DialerError::Http { addr, source })?;
    let options = config.streams.options();
    let Some(client) = config
        .nats
        .connect_and_provision(
            "switchboard-dialer",
            &options,
            |client| status.connected(client.clone()),
            shutdown.as_mut(),
        )
        .await?
    else {
        tracing::info!("stopped before start-up completed");
        return Ok(());
    };
    status.started();
    let js = async_nats::jetstream::new(client.clone());
    let store =
        progress::ProgressStore::open(&js, config.progress_max_age(), options.replicas).await?;
    // Hydrate nothing: the chain's state is read per call from the bucket.
    let publisher = Publisher::new(js.clone());

    let carrier: Arc<dyn Carrier> = match (carrier, config.carrier) {
        (Some(carrier), _) => carrier,
        (None, CarrierKind::Sandbox) => Arc::new(
            Sandbox::open(
                &js,
                SandboxOptions {
                    outcomes,
                    ring: Duration::from_millis(config.sandbox_ring_ms),
                    timeout: config.carrier_timeout(),
                    ack_wait: config.ack_wait(),
                    replicas: options.replicas,
                    max_in_flight: config.max_in_flight.max(1024),
                },
            )
            .await?,
        ),
        (None, CarrierKind::Twilio) => Arc::new(
            Twilio::new(&config.twilio_api_base, tenants, config.carrier_timeout())
                .map_err(DialerError::Config)?,
        ),
    };
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

    switchboard_bus::runtime::load_phone_metadata().await;
    let routes = dialer_routes().with_ack_wait(config.ack_wait());
    let statuses = dialer_statuses().with_ack_wait(config.ack_wait());
    let route_consumer = routes.ensure(&js).await?;
    let status_consumer = statuses.ensure(&js).await?;
    let sampler = metrics.sample_pending(vec![
        (routes.name, route_consumer.clone()),
        (statuses.name, status_consumer.clone()),
    ]);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for (consumer, spec, kind) in [
        (route_consumer, routes, Kind::Route),
        (status_consumer, statuses, Kind::Status),
    ] {
        let options = ConsumeOptions::for_spec(&spec, config.max_in_flight);
        let dialer = dialer.clone();
        loops.spawn(runtime::consume(
            consumer,
            spec,
            options,
            stop_rx.clone(),
            move |delivery| dialer.clone().handle(kind, delivery),
        ));
    }
    status.set_ready(true);
    tracing::info!(carrier = ?config.carrier, sync = config.gateway_sync_mode, "ready: consuming call.route and call.status");

    shutdown.await;
    status.set_ready(false);
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    sampler.abort();
    drop(health);
    switchboard_bus::close(&client).await;
    tracing::info!("stopped");
    Ok(())
}

/// Refuses tenants a Twilio dialer could not act for: every tenant needs an account SID and a
/// token, and there must be at least one tenant.
fn credentials_check(tenants: &Tenants) -> Result<(), String> {
    if tenants.is_empty() {
        return Err(
            "--carrier twilio needs the tenants' credentials (--tenants-file or SWITCHBOARD_TENANTS_JSON); none are configured".into(),
        );
    }
    let lacking = tenants.lacking_rest_credentials();
    if !lacking.is_empty() {
        let names: Vec<&str> = lacking.iter().map(|t| t.as_str()).collect();
        return Err(format!(
            "tenant(s) {} lack twilio_account_sid or twilio_auth_token: the dialer could not act on their calls",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Stops a task when the dialer stops, however `run` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
