//! The gateway: where calls enter. Turns Twilio's voice webhooks and CRM requests into
//! `call.inbound` events, Twilio's dial status callbacks into `call.status` events, and answers
//! Twilio with TwiML (ringback at once, or in sync mode the decision's `<Dial>`; busy for a
//! caller the company refuses, see `callers`). Serves screened legs' whisper (`screening`).
//!
//! Must not: answer 2xx for an event JetStream has not acknowledged, accept a webhook whose
//! signature does not verify, log a tenant's secrets, or decide routes (that is the router).

mod callers;
mod config;
mod health;
mod http;
pub mod index;
mod metrics;
mod ringback;
mod screening;
pub mod signature;
pub(crate) use switchboard_tenants as tenants;
mod twiml;
mod waiters;

pub use config::{AnswerMode, Config};
pub use http::{ERROR_HEADER, SOURCE};
pub use tenants::{LiveTenants, TenantSecrets, Tenants, TenantsError};

use axum::Router;
use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use switchboard_bus::{BusError, Publisher};
use switchboard_contracts::Region;
use tokio::net::TcpListener;
use tower_service::Service as _;
use waiters::Waiters;

/// Why the gateway stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// NATS / JetStream failed at start-up.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The tenants' secrets could not be loaded.
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The sync-mode subscription to decisions failed.
    #[error("failed to subscribe to decisions: {0}")]
    Subscribe(String),
    /// The HTTP listener failed.
    #[error("failed to serve HTTP on {addr}: {source}")]
    Http {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Resolves on SIGTERM or SIGINT (the services' one shutdown signal).
pub use switchboard_bus::runtime::shutdown_signal;

/// Binds `config.http_addr` and runs the gateway until `shutdown` resolves (see
/// [`run_with_listener`]).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let addr = config.http_addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Http {
            addr: addr.to_string(),
            source,
        })?;
    run_with_listener(config, listener, shutdown).await
}

/// Runs the gateway on an already bound `listener` (`config.http_addr` is ignored; bind port
/// 0 and read `local_addr()` to learn the port) until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish (a sync-mode request waits at most its deadline),
/// and drains the NATS connection.
///
/// Start-up: the configuration is checked first (an error at once); then the listener serves
/// the probes (`/healthz` 200, `/readyz` 503 "connecting to NATS") while the gateway waits for
/// NATS (retrying with backoff, until `--nats-connect-timeout-secs` if set) and provisions the
/// streams; then the full API. `shutdown` during start-up returns `Ok` promptly.
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a: SocketAddr| a.to_string());
    let public_base = config.public_base().to_string();
    if !(public_base.starts_with("https://") || public_base.starts_with("http://")) {
        return Err(GatewayError::Config(format!(
            "--public-base-url {public_base:?} must start with https:// or http://"
        )));
    }
    let region = Region::parse(&config.default_region).ok_or_else(|| {
        GatewayError::Config(format!(
            "--default-region {:?} is not an ISO 3166-1 alpha-2 region",
            config.default_region
        ))
    })?;
    let tenants = LiveTenants::load(
        config.tenants_file.clone(),
        config.tenants_json.clone(),
        None,
    )?;
    if tenants.get().is_empty() {
        tracing::warn!("no tenants configured: every tenant request will get 404");
    }

    let mut shutdown = Box::pin(shutdown);
    // One server for the whole life of the process: the start-up probes answer until the API
    // is built, then the API. (Two servers handing one socket over dropped the connections
    // accepted during the handover.)
    let starting = Arc::new(health::Starting::default());
    let api: Arc<OnceLock<Router>> = Arc::default();
    let (stop_serving, serving_stopped) = tokio::sync::oneshot::channel::<()>();
    // Answers are small and latency-bound: never hold one back waiting for an ACK (Nagle).
    let listener =
        axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
            }
        });
    let server = tokio::spawn(
        axum::serve(
            listener,
            front_door(health::router(starting.clone()), api.clone()),
        )
        .with_graceful_shutdown(async move {
            let _ = serving_stopped.await;
        })
        .into_future(),
    );
    let served_on = addr.clone();
    let stop = |server: tokio::task::JoinHandle<std::io::Result<()>>| async move {
        let _ = stop_serving.send(());
        match server.await {
            Ok(served) => served.map_err(|source| GatewayError::Http {
                addr: served_on,
                source,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "the HTTP server task failed");
                Ok(())
            }
        }
    };

    let started = async {
        let Some(client) = config
            .nats
            .connect_and_provision(
                "switchboard-gateway",
                &config.streams.options(),
                |_| starting.provisioning(),
                shutdown.as_mut(),
            )
            .await?
        else {
            return Ok(None);
        };
        let built = build(&config, client.clone(), tenants, public_base, region).await;
        match built {
            Ok(built) => Ok(Some((client, built))),
            Err(e) => {
                switchboard_bus::close(&client).await;
                Err(e)
            }
        }
    }
    .await;
    let (client, (app, follower)) = match started {
        Ok(Some(started)) => started,
        Ok(None) => {
            tracing::info!("stopped before start-up completed");
            return stop(server).await;
        }
        Err(e) => {
            let _ = stop(server).await;
            return Err(e);
        }
    };
    tracing::info!(
        %addr,
        mode = ?config.answer_mode,
        tenants = app.tenants.get().len(),
        "gateway listening"
    );
    // Keys and credentials change without a restart: on SIGHUP, or when the file changes.
    let watched = app.clone();
    let _tenants_watch = AbortOnDrop(tokio::spawn(app.tenants.clone().watch(
        move |ok| watched.metrics.tenants_reloaded(ok),
        std::future::pending(),
    )));
    let (stop_indexing, indexing_stopped) = tokio::sync::watch::channel(false);
    let indexers: Vec<_> = if config.call_index {
        [index::Index::Call, index::Index::ContactPhone]
            .into_iter()
            .map(|which| {
                tokio::spawn(index::run(
                    which,
                    app.js.clone(),
                    indexing_stopped.clone(),
                    app.metrics.clone(),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    // The companies' caller policies (refusals at the webhook); `/readyz` waits for them.
    let callers = AbortOnDrop(tokio::spawn(callers::follow(
        app.js.clone(),
        app.callers.clone(),
    )));
    // Before the API answers: the first request would otherwise build it (see the function).
    switchboard_bus::runtime::load_phone_metadata().await;
    let _ = api.set(http::router(app));

    shutdown.await;
    let served = stop(server).await;
    let _ = stop_indexing.send(true);
    for indexer in indexers {
        match indexer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "an indexer could not start"),
            Err(e) => tracing::warn!(error = %e, "an indexer failed"),
        }
    }
    if let Some(follower) = follower {
        follower.abort();
    }
    drop(callers);
    switchboard_bus::close(&client).await;
    tracing::info!("stopped");
    served
}

/// Stops a task when the gateway stops, however `run_with_listener` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The gateway's state once connected: the API's state, and the sync-mode follower of
/// decisions.
async fn build(
    config: &Config,
    client: async_nats::Client,
    tenants: Arc<LiveTenants>,
    public_base: String,
    region: Region,
) -> Result<(Arc<http::App>, Option<tokio::task::JoinHandle<()>>), GatewayError> {
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(config.publish_timeout());
    let waiters = Waiters::default();
    let follower = match config.answer_mode {
        AnswerMode::Sync => Some(
            waiters
                .follow(&client)
                .await
                .map_err(|e| GatewayError::Subscribe(e.to_string()))?,
        ),
        AnswerMode::Async => None,
    };
    let progress = switchboard_chain::ProgressStore::open(
        &js,
        Duration::from_secs(config.progress_max_age_days.max(1) * 24 * 3600),
        config.streams.options().replicas,
    )
    .await?;
    let screening = screening::ScreeningStore::open(&js, config.streams.options().replicas).await?;
    let ringback_url = config
        .ringback_url
        .clone()
        .unwrap_or_else(|| format!("{public_base}/v1/assets/ringback.wav"));
    let app = Arc::new(http::App {
        publisher: Publisher::new(js.clone()),
        client,
        js,
        tenants,
        public_base,
        answer_mode: config.answer_mode,
        sync_deadline: config.sync_deadline(),
        publish_timeout: config.publish_timeout(),
        ringback_url,
        dial_timeout_secs: config.dial_timeout_secs,
        max_body_bytes: config.max_body_bytes,
        region,
        waiters,
        metrics: Arc::new(Metrics::new()),
        ringback_wav: ringback::wav(),
        progress,
        no_instruction_timeout_secs: config.no_instruction_timeout_secs,
        claim_grace: Duration::from_secs(config.claim_grace_secs.into()),
        screening,
        callers: Arc::default(),
    });
    Ok((app, follower))
}

/// Every request goes to the API once it is built, to the start-up probes until then.
fn front_door(probes: Router, api: Arc<OnceLock<Router>>) -> Router {
    Router::new().fallback(move |request: axum::extract::Request| {
        let mut router = api.get().cloned().unwrap_or_else(|| probes.clone());
        async move {
            match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
}
