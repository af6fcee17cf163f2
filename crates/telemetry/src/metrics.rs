//! Prometheus plumbing shared by the services: each service registers its metrics in its own
//! `prometheus_client` registry (no global state) and serves [`render`] on `GET /metrics`.

pub use prometheus_client;

use prometheus_client::registry::Registry;

/// `Content-Type` of `/metrics` (OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The OpenMetrics text of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    out
}

/// The `/metrics` answer for `registry`: a header and the body, which axum (and anything
/// taking `(headers, body)` tuples) turns into a response.
pub fn render(registry: &Registry) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", CONTENT_TYPE)], encode(registry))
}

/// Latency buckets in seconds: 0.5 ms doubling up to ~4 s (14 buckets).
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14)
}
