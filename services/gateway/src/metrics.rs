//! Prometheus metrics (OpenMetrics text on `/metrics`): requests by route and status, publish
//! latency by event type, refused requests by route and code, signature failures by route,
//! sync answers by outcome, callers refused at the webhook, screened legs.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

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
struct RejectionLabels {
    route: &'static str,
    code: &'static str,
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
    Histogram::new(switchboard_telemetry::metrics::latency_buckets())
}

/// Every metric of the gateway, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    publish: HistogramFamily<EventLabels>,
    signature_failures: Family<RouteLabel, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    sync_answers: Family<OutcomeLabel, Counter>,
    dead_man: Family<OutcomeLabel, Counter>,
    tenants_reloads: Family<OutcomeLabel, Counter>,
    index: Family<IndexLabels, Counter>,
    webhook_rejects: Family<ReasonLabel, Counter>,
    screening: Family<OutcomeLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IndexLabels {
    index: &'static str,
    outcome: &'static str,
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
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "rejections",
            "Requests refused (4xx) or not stored (503), by route and error code",
            rejections.clone(),
        );
        let sync_answers = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "sync_answers",
            "Sync-mode voice answers: dial, final_action, or deadline (the async answer)",
            sync_answers.clone(),
        );
        let dead_man = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "no_instruction",
            "Dead-man's switch requests (a caller's wait ran out with no dialer instruction), by outcome: took_end (the gateway played the final action), waited (a dialer was still at the carrier), already_over, unrecorded (the progress store was unreachable; the default final action was played)",
            dead_man.clone(),
        );
        let tenants_reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "tenants_reloads",
            "Reloads of the tenants' secrets (on a file change or SIGHUP), by outcome: ok, or failed (the previous secrets stay in force; the log says why)",
            tenants_reloads.clone(),
        );
        let index = Family::<IndexLabels, Counter>::default();
        registry.register(
            "index_events",
            "Events seen by the indexers, by index (call: CALLS events by call id; contact_phone: contact settings events by phone) and outcome: indexed, nothing (nothing to index), failed (an entry could not be written; the event is retried)",
            index.clone(),
        );
        let webhook_rejects = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "webhook_rejects",
            "Calls refused unanswered at the voice webhook (<Reject reason=\"busy\"/>, call.inbound still published), by reason: blocked (on the company's blocked_callers, blocked_action reject) or anonymous (withheld caller, anonymous_callers reject)",
            webhook_rejects.clone(),
        );
        let screening = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "screening",
            "Screened legs, by outcome: whisper (served), accepted (key 1), declined (another key), not_accepted (a completed dial of a step offered and never accepted, published as no_answer), unscreened (the offer could not be recorded; the leg was connected without the whisper)",
            screening.clone(),
        );
        Metrics {
            registry,
            webhook_rejects,
            screening,
            index,
            requests,
            publish,
            signature_failures,
            rejections,
            sync_answers,
            dead_man,
            tenants_reloads,
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

    pub(crate) fn rejection(&self, route: &'static str, code: &'static str) {
        self.rejections
            .get_or_create(&RejectionLabels { route, code })
            .inc();
    }

    pub(crate) fn sync_answer(&self, outcome: &'static str) {
        self.sync_answers
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub(crate) fn dead_man(&self, outcome: &'static str) {
        self.dead_man.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub(crate) fn webhook_reject(&self, reason: &'static str) {
        self.webhook_rejects
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(crate) fn screening(&self, outcome: &'static str) {
        self.screening
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub(crate) fn tenants_reloaded(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.tenants_reloads
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The `/metrics` answer: content type and OpenMetrics text.
    pub fn render(&self) -> ([(&'static str, &'static str); 1], String) {
        switchboard_telemetry::metrics::render(&self.registry)
    }
}

impl crate::index::IndexEvents for Metrics {
    fn indexed(&self, index: crate::index::Index, named_something: bool) {
        let outcome = if named_something {
            "indexed"
        } else {
            "nothing"
        };
        let index = index.label();
        self.index
            .get_or_create(&IndexLabels { index, outcome })
            .inc();
    }

    fn failed(&self, index: crate::index::Index) {
        let index = index.label();
        self.index
            .get_or_create(&IndexLabels {
                index,
                outcome: "failed",
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
