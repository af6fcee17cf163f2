//! `/healthz` (the process serves) and `/readyz` (projection caught up, consuming, NATS
//! connected) for Kubernetes probes, and `/metrics` (Prometheus). They listen from the start,
//! before NATS is reachable: while the router connects, `/readyz` answers 503 with the reason
//! (alive but not ready, rather than a crash loop).

use crate::RouterError;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::task::JoinHandle;

/// Where start-up is, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Waiting for the first connection to NATS.
    Connecting = 0,
    /// Connected; creating or updating the streams.
    Provisioning = 1,
    /// Connected and provisioned: readiness is the `ready` flag and the connection state.
    Started = 2,
}

/// What the probes read; shared with `run`.
pub(crate) struct Health {
    phase: AtomicU8,
    client: OnceLock<async_nats::Client>,
    /// Projection caught up and consuming.
    pub ready: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

impl Health {
    pub(crate) fn new(ready: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Arc<Health> {
        Arc::new(Health {
            phase: AtomicU8::new(Phase::Connecting as u8),
            client: OnceLock::new(),
            ready,
            metrics,
        })
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// Connected: `/readyz` follows this client's connection state from now on.
    pub(crate) fn connected(&self, client: async_nats::Client) {
        let _ = self.client.set(client);
        self.set_phase(Phase::Provisioning);
    }
}

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    let phase = h.phase.load(Ordering::SeqCst);
    if phase == Phase::Connecting as u8 {
        return (StatusCode::SERVICE_UNAVAILABLE, "connecting to NATS\n");
    }
    let connected = h
        .client
        .get()
        .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
    if !connected {
        (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n")
    } else if phase == Phase::Provisioning as u8 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "provisioning the streams\n",
        )
    } else if h.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with SETTINGS\n",
        )
    }
}

pub(crate) async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
) -> Result<JoinHandle<()>, RouterError> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(h): State<Arc<Health>>| async move { h.metrics.render() }),
        )
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RouterError::Http { addr, source })?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "health endpoints listening");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health endpoints stopped");
        }
    }))
}
