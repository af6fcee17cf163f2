//! The gateway: where calls enter. Turns Twilio's voice webhooks and CRM requests into
//! `call.inbound` events, Twilio's dial status callbacks into `call.status` events, and answers
//! Twilio with TwiML (ringback at once, or in sync mode the decision's `<Dial>`).
//!
//! Must not: answer 2xx for an event JetStream has not acknowledged, accept a webhook whose
//! signature does not verify, log a tenant's secrets, or decide routes (that is the router).

mod config;
mod http;
mod metrics;
mod ringback;
pub mod signature;
pub(crate) use switchboard_tenants as tenants;
mod twiml;
mod waiters;

pub use config::{AnswerMode, Config};
pub use http::{ERROR_HEADER, SOURCE};
pub use tenants::{TenantSecrets, Tenants, TenantsError};

use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use switchboard_bus::{BusError, Publisher, ensure_streams};
use switchboard_contracts::Region;
use tokio::net::TcpListener;
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

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, so a
/// signal during start-up is not lost.
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
    let tenants = Tenants::load(config.tenants_file.as_deref(), config.tenants_json.as_ref())?;
    if tenants.is_empty() {
        tracing::warn!("no tenants configured: every tenant request will get 404");
    }

    let client = config.nats.connect("switchboard-gateway").await?;
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(config.publish_timeout());
    ensure_streams(&js, &config.streams.options()).await?;

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
    let ringback_url = config
        .ringback_url
        .clone()
        .unwrap_or_else(|| format!("{public_base}/v1/assets/ringback.wav"));
    let app = Arc::new(http::App {
        publisher: Publisher::new(js.clone()),
        client: client.clone(),
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
        metrics: Metrics::new(),
        ringback_wav: ringback::wav(),
    });
    tracing::info!(
        %addr,
        mode = ?config.answer_mode,
        tenants = app.tenants.len(),
        "gateway listening"
    );
    // Answers are small and latency-bound: never hold one back waiting for an ACK (Nagle).
    let listener =
        axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
            }
        });
    let served = axum::serve(listener, http::router(app))
        .with_graceful_shutdown(shutdown)
        .await;

    if let Some(follower) = follower {
        follower.abort();
    }
    switchboard_bus::close(&client).await;
    tracing::info!("stopped");
    served.map_err(|source| GatewayError::Http { addr, source })
}
