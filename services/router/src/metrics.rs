//! Prometheus metrics (OpenMetrics text on `/metrics`): decisions by rule, decision latency,
//! redeliveries, rejections by reason, the consumer's pending count and the projection's lag
//! behind SETTINGS (both sampled).
//!
//! The per-call updates are atomic increments on counters created up front (no map lookup,
//! no allocation); only rejections, which are rare, go through a labelled family.

use async_nats::jetstream;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use switchboard_contracts::Rule;
use switchboard_projections::Follower;
use switchboard_telemetry::metrics::prometheus_client;
use tokio::task::JoinHandle;

/// How often the consumer's pending count and the projection lag are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

type Labels1 = [(&'static str, &'static str); 1];

/// Every metric of the router, in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    /// One per rule, indexed by [`Rule::index`].
    decisions: [Counter; Rule::ALL.len()],
    decision_seconds: Histogram,
    redeliveries: Counter,
    rejections: Family<Labels1, Counter>,
    pending: Gauge,
    ack_pending: Gauge,
    projection_lag: Gauge,
    settings_stale: Counter,
    /// The CALLS sequence the returning-caller history has applied.
    pub(crate) answers_seq: Gauge,
    /// Callers the returning-caller history remembers, over all tenants.
    pub(crate) answers_callers: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard_router");
        let by_rule = Family::<Labels1, Counter>::default();
        registry.register(
            "decisions",
            "Decisions published and acknowledged by JetStream, by rule (a redelivered call decided again counts again)",
            by_rule.clone(),
        );
        let decisions =
            Rule::ALL.map(|rule| by_rule.get_or_create(&[("rule", rule.as_str())]).clone());
        let decision_seconds = Histogram::new(switchboard_telemetry::metrics::latency_buckets());
        registry.register(
            "decision_duration_seconds",
            "From receiving a call to JetStream's acknowledgement of its decision (freshness wait included)",
            decision_seconds.clone(),
        );
        let redeliveries = Counter::default();
        registry.register(
            "redeliveries",
            "Deliveries of call.inbound that were not the first",
            redeliveries.clone(),
        );
        let rejections = Family::<Labels1, Counter>::default();
        registry.register(
            "rejections",
            "call.inbound events refused and recorded as call.rejected, by reason code",
            rejections.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "consumer_pending",
            "call.inbound messages not yet delivered to the router consumer (num_pending, sampled)",
            pending.clone(),
        );
        let ack_pending = Gauge::default();
        registry.register(
            "consumer_ack_pending",
            "call.inbound messages delivered but not yet acknowledged (num_ack_pending, sampled)",
            ack_pending.clone(),
        );
        let projection_lag = Gauge::default();
        registry.register(
            "projection_lag",
            "SETTINGS last sequence minus the sequence this instance's projection applied (sampled)",
            projection_lag.clone(),
        );
        let settings_stale = Counter::default();
        registry.register(
            "settings_stale",
            "Settings events whose version was not newer than the one applied: they changed nothing, and each is filed as a settings.rejected with code stale_version (sampled)",
            settings_stale.clone(),
        );
        let answers_seq = Gauge::default();
        registry.register(
            "returning_caller_history_seq",
            "The CALLS sequence up to which this instance's returning-caller history (answered call.dial events) is applied",
            answers_seq.clone(),
        );
        let answers_callers = Gauge::default();
        registry.register(
            "returning_caller_history_callers",
            "Callers this instance's returning-caller history remembers (last answerer per tenant and caller)",
            answers_callers.clone(),
        );
        Metrics {
            answers_seq,
            answers_callers,
            registry,
            decisions,
            decision_seconds,
            redeliveries,
            rejections,
            pending,
            ack_pending,
            projection_lag,
            settings_stale,
        }
    }

    /// A call decided by `rule`, `took` after it was received.
    pub(crate) fn decided(&self, rule: Rule, took: Duration) {
        self.decisions[rule.index()].inc();
        self.decision_seconds.observe(took.as_secs_f64());
    }

    /// A delivery that was not the first.
    pub(crate) fn redelivered(&self) {
        self.redeliveries.inc();
    }

    /// A call refused with `code`.
    pub(crate) fn rejected(&self, code: &'static str) {
        self.rejections.get_or_create(&[("reason", code)]).inc();
    }

    /// The `/metrics` answer.
    pub(crate) fn render(&self) -> ([(&'static str, &'static str); 1], String) {
        switchboard_telemetry::metrics::render(&self.registry)
    }

    /// Samples the consumer's pending counts and the projection lag every [`SAMPLE_EVERY`]
    /// until aborted.
    pub(crate) fn sample(
        self: Arc<Self>,
        mut consumer: jetstream::consumer::PullConsumer,
        js: jetstream::Context,
        follower: Arc<Follower>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut stale_seen = 0;
            loop {
                let stale = follower.stale_events();
                self.settings_stale.inc_by(stale.saturating_sub(stale_seen));
                stale_seen = stale;
                match consumer.info().await {
                    Ok(info) => {
                        self.pending
                            .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                        self.ack_pending
                            .set(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read the consumer's info"),
                }
                // One STREAM.INFO request; the applied sequence is read after it, so a lag of
                // 0 means every settings event stored before the request is applied.
                match switchboard_projections::settings_last_seq(&js).await {
                    Ok(last) => {
                        let lag = last.saturating_sub(follower.applied_seq());
                        self.projection_lag
                            .set(i64::try_from(lag).unwrap_or(i64::MAX));
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read SETTINGS info"),
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    }
}
