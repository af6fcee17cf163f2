//! The probes while the gateway starts: it listens before NATS is reachable so that Kubernetes
//! sees it alive but not ready (rather than a crash loop) while it waits for NATS and provisions
//! the streams. `/healthz` 200, `/readyz` 503 with the reason, `/metrics` (nothing counted yet),
//! anything else 503 with `Retry-After`. Once started, the full API (`http`) takes over the same
//! listener.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Start-up as the probes see it.
#[derive(Default)]
pub(crate) struct Starting {
    /// Connected; provisioning the streams.
    provisioning: AtomicBool,
    /// Renders the (empty) metrics, so that scrapes succeed during start-up too.
    metrics: Metrics,
}

impl Starting {
    pub(crate) fn provisioning(&self) {
        self.provisioning.store(true, Ordering::SeqCst);
    }

    fn reason(&self) -> &'static str {
        if self.provisioning.load(Ordering::SeqCst) {
            "provisioning the streams\n"
        } else {
            "connecting to NATS\n"
        }
    }
}

async fn readyz(State(s): State<Arc<Starting>>) -> (StatusCode, &'static str) {
    (StatusCode::SERVICE_UNAVAILABLE, s.reason())
}

async fn not_yet(State(s): State<Arc<Starting>>) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("starting: {}", s.reason()),
    )
        .into_response()
}

/// The routes served until the gateway has started.
pub(crate) fn router(starting: Arc<Starting>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Starting>>| async move { s.metrics.render() }),
        )
        .fallback(not_yet)
        .with_state(starting)
}
