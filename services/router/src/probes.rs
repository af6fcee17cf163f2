//! The router's health endpoints: `/healthz` (the process serves), `/readyz` (start-up done,
//! NATS connected, the projection caught up) and `/metrics`. They listen from the start, before
//! NATS or the database is reachable: while the router waits for either, `/readyz` answers 503
//! with what it waits for (alive but not ready, rather than a crash loop).
//!
//! The same answers as `switchboard_bus::health` (the dialer's), with the router's own step in
//! between: `/readyz` says, in this order, "connecting to NATS" (no connection yet), "not
//! connected to NATS" (connected once, not now), "provisioning the streams", "connecting to the
//! database", "migrating the database", then "ready" (200) or "catching up with SETTINGS" (503).

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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
    ConnectingNats = 0,
    /// Connected; creating or updating the streams.
    Provisioning = 1,
    /// Waiting for the projection store's database.
    ConnectingDatabase = 2,
    /// Connected to it; running the migrations.
    Migrating = 3,
    /// Start-up done: readiness is the `ready` flag and the connection state.
    Started = 4,
}

/// What the probes read; the router moves it along its start-up.
pub(crate) struct Probes {
    phase: AtomicU8,
    client: OnceLock<async_nats::Client>,
    ready: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Probes {
    /// Connecting to NATS, not ready.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Arc<Probes> {
        Arc::new(Probes {
            phase: AtomicU8::new(Phase::ConnectingNats as u8),
            client: OnceLock::new(),
            ready: AtomicBool::new(false),
            metrics,
        })
    }

    /// Connected: `/readyz` follows this client's connection state from now on, and says the
    /// streams are being provisioned.
    pub(crate) fn connected(&self, client: async_nats::Client) {
        let _ = self.client.set(client);
        self.set_phase(Phase::Provisioning);
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// The router's own readiness once started (caught up and consuming).
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// `/readyz`'s answer now.
    fn readiness(&self) -> (StatusCode, &'static str) {
        let phase = self.phase.load(Ordering::SeqCst);
        if phase == Phase::ConnectingNats as u8 {
            return (StatusCode::SERVICE_UNAVAILABLE, "connecting to NATS\n");
        }
        let connected = self
            .client
            .get()
            .is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
        let reason = if !connected {
            "not connected to NATS\n"
        } else if phase == Phase::Provisioning as u8 {
            "provisioning the streams\n"
        } else if phase == Phase::ConnectingDatabase as u8 {
            "connecting to the database\n"
        } else if phase == Phase::Migrating as u8 {
            "migrating the database\n"
        } else if self.ready.load(Ordering::SeqCst) {
            return (StatusCode::OK, "ready\n");
        } else {
            "catching up with SETTINGS\n"
        };
        (StatusCode::SERVICE_UNAVAILABLE, reason)
    }
}

/// The endpoints' task; dropping it stops them (whichever way `run` returns).
pub(crate) struct Serving(JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on `addr` and serves the endpoints of `probes` until the returned [`Serving`] is
/// dropped. Fails when `addr` cannot be bound.
pub(crate) async fn serve(addr: SocketAddr, probes: Arc<Probes>) -> std::io::Result<Serving> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(p): State<Arc<Probes>>| async move { p.readiness() }),
        )
        .route(
            "/metrics",
            get(|State(p): State<Arc<Probes>>| async move { p.metrics.render().into_response() }),
        )
        .with_state(probes);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "health endpoints listening");
    Ok(Serving(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health endpoints stopped");
        }
    })))
}
