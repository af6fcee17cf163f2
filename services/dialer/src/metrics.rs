//! Prometheus metrics (OpenMetrics text on `/metrics`): carrier request latency and errors by
//! carrier, dial steps by outcome, redeliveries and pending deliveries by consumer.

use crate::carrier::CarrierError;
use async_nats::jetstream;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;
use switchboard_contracts::CallDial;
use tokio::task::JoinHandle;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(switchboard_telemetry::metrics::latency_buckets())
}

/// How often consumer pending counts are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Every metric of the dialer, in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    carrier_requests: HistogramFamily<Labels2>,
    carrier_errors: Family<Labels2, Counter>,
    steps: Family<Labels1, Counter>,
    redeliveries: Family<Labels1, Counter>,
    pending: Family<Labels1, Gauge>,
    ack_pending: Family<Labels1, Gauge>,
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard_dialer");
        let carrier_requests: HistogramFamily<Labels2> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "carrier_request_duration_seconds",
            "One carrier request (one attempt), by carrier and outcome (ok, transient, refused)",
            carrier_requests.clone(),
        );
        let carrier_errors = Family::<Labels2, Counter>::default();
        registry.register(
            "carrier_errors",
            "Failed carrier attempts, by carrier and kind (transient: retried; refused: final)",
            carrier_errors.clone(),
        );
        let steps = Family::<Labels1, Counter>::default();
        registry.register(
            "dial_steps",
            "Dial events recorded, by outcome (step_started, answered, step_failed, chain_exhausted, final_action_taken)",
            steps.clone(),
        );
        let redeliveries = Family::<Labels1, Counter>::default();
        registry.register(
            "redeliveries",
            "Deliveries that were not the first of their message, by consumer",
            redeliveries.clone(),
        );
        let pending = Family::<Labels1, Gauge>::default();
        registry.register(
            "consumer_pending",
            "Messages not yet delivered to the consumer (num_pending, sampled), by consumer",
            pending.clone(),
        );
        let ack_pending = Family::<Labels1, Gauge>::default();
        registry.register(
            "consumer_ack_pending",
            "Messages delivered but not yet acknowledged (num_ack_pending, sampled), by consumer",
            ack_pending.clone(),
        );
        Metrics {
            registry,
            carrier_requests,
            carrier_errors,
            steps,
            redeliveries,
            pending,
            ack_pending,
        }
    }

    /// One carrier attempt of `carrier` ended with `result` after `took`.
    pub(crate) fn carrier_request<T>(
        &self,
        carrier: &'static str,
        result: &Result<T, CarrierError>,
        took: Duration,
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(CarrierError::Transient(_)) => "transient",
            // A call no longer in progress is a refusal too (as Twilio answers it: HTTP 400).
            Err(CarrierError::Refused(_) | CarrierError::CallEnded(_)) => "refused",
            Err(CarrierError::Unknown(_)) => "unknown",
        };
        self.carrier_requests
            .get_or_create(&[("carrier", carrier), ("outcome", outcome)])
            .observe(took.as_secs_f64());
        if result.is_err() {
            self.carrier_errors
                .get_or_create(&[("carrier", carrier), ("kind", outcome)])
                .inc();
        }
    }

    /// Dial events newly recorded in a call's progress.
    pub(crate) fn steps(&self, events: &[CallDial]) {
        for event in events {
            self.steps
                .get_or_create(&[("outcome", event.kind.as_str())])
                .inc();
        }
    }

    /// A delivery of `consumer` that was not the first.
    pub(crate) fn redelivered(&self, consumer: &'static str) {
        self.redeliveries
            .get_or_create(&[("consumer", consumer)])
            .inc();
    }

    /// The `/metrics` answer.
    pub(crate) fn render(&self) -> ([(&'static str, &'static str); 1], String) {
        switchboard_telemetry::metrics::render(&self.registry)
    }

    /// Samples the pending counts of `consumers` every [`SAMPLE_EVERY`] until aborted.
    pub(crate) fn sample_pending(
        self: std::sync::Arc<Self>,
        consumers: Vec<(&'static str, jetstream::consumer::PullConsumer)>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut consumers = consumers;
            loop {
                for (name, consumer) in &mut consumers {
                    match consumer.info().await {
                        Ok(info) => {
                            let labels = [("consumer", *name)];
                            self.pending
                                .get_or_create(&labels)
                                .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                            self.ack_pending
                                .get_or_create(&labels)
                                .set(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, consumer = *name, "cannot read consumer info")
                        }
                    }
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    }
}
