//! The health endpoints of the dialer (the router has its own, `services/router/src/probes.rs`,
//! which also reports its wait for the database): `/healthz` (the process serves), `/readyz`
//! (NATS connected, streams provisioned, and the service's own readiness) for Kubernetes probes,
//! and `/metrics` (the service's own rendering). They listen from the start, before NATS is
//! reachable: while the service connects, `/readyz` answers 503 with the reason (alive but not
//! ready, rather than a crash loop).
//!
//! `/readyz` answers, in this order: "connecting to NATS" (no connection yet), "not connected
//! to NATS" (connected once, not now), "provisioning the streams", then "ready" (200) or the
//! service's own reason why not yet (503).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::task::JoinHandle;

/// Where start-up is, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Waiting for the first connection to NATS.
    Connecting = 0,
    /// Connected; creating or updating the streams.
    Provisioning = 1,
    /// Connected and provisioned: readiness is the `ready` flag and the connection state.
    Started = 2,
}

/// What the probes read; the service moves it along its start-up.
pub struct Health {
    phase: AtomicU8,
    client: OnceLock<async_nats::Client>,
    /// The service's own readiness, once started.
    ready: AtomicBool,
    /// `/readyz`'s answer when started but not ready (ends with a newline).
    not_ready: &'static str,
    /// Renders `/metrics`.
    metrics: Box<dyn Fn() -> Response + Send + Sync>,
}

impl Health {
    /// Connecting, not ready. `not_ready` is what `/readyz` says once started but not ready
    /// ("catching up with SETTINGS\n"); `/metrics` answers `render(&metrics)`.
    pub fn new<M, R>(
        not_ready: &'static str,
        metrics: Arc<M>,
        render: impl Fn(&M) -> R + Send + Sync + 'static,
    ) -> Arc<Health>
    where
        M: Send + Sync + 'static,
        R: IntoResponse,
    {
        Arc::new(Health {
            phase: AtomicU8::new(Phase::Connecting as u8),
            client: OnceLock::new(),
            ready: AtomicBool::new(false),
            not_ready,
            metrics: Box::new(move || render(&metrics).into_response()),
        })
    }

    /// Connected: `/readyz` follows this client's connection state from now on, and says the
    /// streams are being provisioned.
    pub fn connected(&self, client: async_nats::Client) {
        let _ = self.client.set(client);
        self.set_phase(Phase::Provisioning);
    }

    /// Connected and provisioned: `/readyz` follows [`set_ready`](Self::set_ready) from now on.
    pub fn started(&self) {
        self.set_phase(Phase::Started);
    }

    /// The service's own readiness (consuming, caught up...).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// `/readyz`'s answer now.
    fn readiness(&self) -> (StatusCode, &'static str) {
        let phase = self.phase.load(Ordering::SeqCst);
        if phase == Phase::Connecting as u8 {
            return (StatusCode::SERVICE_UNAVAILABLE, "connecting to NATS\n");
        }
        let connected = self
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
        } else if self.ready.load(Ordering::SeqCst) {
            (StatusCode::OK, "ready\n")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, self.not_ready)
        }
    }
}

/// The endpoints' task; dropping it stops them (whichever way the service's `run` returns).
pub struct Serving(JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on `addr` and serves the endpoints of `health` until the returned [`Serving`] is
/// dropped. Fails when `addr` cannot be bound.
pub async fn serve(addr: SocketAddr, health: Arc<Health>) -> std::io::Result<Serving> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(h): State<Arc<Health>>| async move { h.readiness() }),
        )
        .route(
            "/metrics",
            get(|State(h): State<Arc<Health>>| async move { (h.metrics)() }),
        )
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "health endpoints listening");
    Ok(Serving(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health endpoints stopped");
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::Health;
    use axum::http::StatusCode;
    use std::sync::Arc;

    #[test]
    fn not_connected_yet_says_so_whatever_the_readiness() {
        let health = Health::new("starting\n", Arc::new(()), |()| "metrics");
        assert_eq!(
            health.readiness(),
            (StatusCode::SERVICE_UNAVAILABLE, "connecting to NATS\n")
        );
        health.set_ready(true);
        health.started();
        assert_eq!(
            health.readiness(),
            (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n"),
            "started without a client is not connected"
        );
    }
}
