//! Prometheus metrics (OpenMetrics text on `/metrics`): requests by route and status, publish
//! latency by event type, signature failures by route, sync answers by outcome.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn publish_histogram() -> Histogram {
    // 0.5 ms .. ~4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// Every metric of the gateway, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    publish: HistogramFamily<EventLabels>,
    signature_failures: Family<RouteLabel, Counter>,
    sync_answers: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status code",
            requests.clone(),
        );
        let publish: HistogramFamily<EventLabels> = Family::new_with_constructor(publish_histogram);
        registry.register(
            "publish_duration_seconds",
            "Time from sending an event to JetStream's acknowledgement (or failure)",
            publish.clone(),
        );
        let signature_failures = Family::<RouteLabel, Counter>::default();
        registry.register(
            "signature_failures",
            "Webhooks refused for a missing or wrong X-Twilio-Signature, by route",
            signature_failures.clone(),
        );
        let sync_answers = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "sync_answers",
            "Sync-mode voice answers: dial, final_action, or deadline (the async answer)",
            sync_answers.clone(),
        );
        Metrics {
            registry,
            requests,
            publish,
            signature_failures,
            sync_answers,
        }
    }

    pub(crate) fn request(&self, route: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                status: status.to_string(),
            })
            .inc();
    }

    pub(crate) fn published(&self, event: &'static str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.publish
            .get_or_create(&EventLabels { event, outcome })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn signature_failure(&self, route: &'static str) {
        self.signature_failures
            .get_or_create(&RouteLabel { route })
            .inc();
    }

    pub(crate) fn sync_answer(&self, outcome: &'static str) {
        self.sync_answers
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
