//! `/healthz` (the process serves) and `/readyz` (projection caught up, consuming, NATS
//! connected) for Kubernetes probes, and `/metrics` (Prometheus).

use crate::RouterError;
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

#[derive(Clone)]
struct Health {
    client: async_nats::Client,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    let connected = h.client.connection_state() == async_nats::connection::State::Connected;
    if h.ready.load(Ordering::SeqCst) && connected {
        (StatusCode::OK, "ready\n")
    } else if !connected {
        (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with SETTINGS\n",
        )
    }
}

pub(crate) async fn serve(
    addr: SocketAddr,
    client: async_nats::Client,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) -> Result<JoinHandle<()>, RouterError> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(h): State<Health>| async move { h.metrics.render() }),
        )
        .with_state(Health {
            client,
            ready,
            metrics,
        });
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
