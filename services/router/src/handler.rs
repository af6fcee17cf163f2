//! One call: decode, wait for fresh settings, decide, publish the decision, then acknowledge.

use crate::freshness::{Bound, Released};
use async_nats::jetstream::{AckKind, Message};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use switchboard_bus::{BusError, Publisher, TraceContext};
use switchboard_contracts::{CallInbound, CallRejected, Envelope, Reason, Rejection};
use switchboard_projections::{Follower, Projection};
use switchboard_routing::{AnswerBook, SettingsView, TenantState, decide_with};
use switchboard_telemetry::trace as otel;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument as _;

/// The CloudEvents `source` of what the router publishes.
pub(crate) const SOURCE: &str = "/switchboard/router";
/// `switchboard.service` of the router's spans.
const SERVICE: &str = "router";

pub(crate) struct Router {
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    pub(crate) publisher: Publisher,
    pub(crate) follower: Arc<Follower>,
    pub(crate) projection: Arc<RwLock<Projection>>,
    /// Who answered whom: returning callers (see `answers`).
    pub(crate) answers: Arc<RwLock<AnswerBook>>,
    pub(crate) freshness_timeout: Duration,
    pub(crate) consumer: switchboard_bus::PullConsumerSpec,
}

/// What became of a call.
enum Outcome {
    /// `call.route` stored: acknowledge.
    Decided,
    /// `call.rejected` stored: terminate, never redeliver.
    Rejected,
}

impl Router {
    /// Handles one delivery, released by the freshness gate with what it must wait for, and
    /// settles it with JetStream (ack, term or nak).
    pub(crate) async fn handle(self: Arc<Self>, released: Released) {
        let Released {
            message,
            received,
            bound,
        } = released;
        let (stream_seq, delivered) = message
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .unwrap_or((0, 1));
        let last_attempt = delivered >= self.consumer.max_deliver;
        if delivered > 1 {
            self.metrics.redelivered();
        }
        // Disabled (no allocation) when traces are off.
        let span = otel::process(SERVICE, &otel::CALL_INBOUND, self.consumer.name, &message);
        let settle = match self
            .process(&message, received, bound, stream_seq, last_attempt)
            .instrument(span.clone())
            .await
        {
            Ok(Outcome::Decided) => AckKind::Ack,
            Ok(Outcome::Rejected) => AckKind::Term,
            Err(e) => {
                otel::fail(&span, &e);
                tracing::warn!(error = %e, stream_seq, delivered, "call not decided; will be redelivered");
                AckKind::Nak(Some(self.consumer.nak_delay(delivered)))
            }
        };
        if let Err(e) = message.ack_with(settle).await {
            // Not fatal: an unacknowledged call is redelivered and its decision de-duplicated.
            tracing::warn!(error = %e, stream_seq, "failed to settle the call with JetStream");
        }
    }

    async fn process(
        &self,
        message: &Message,
        received: Instant,
        bound: Bound,
        stream_seq: u64,
        last_attempt: bool,
    ) -> Result<Outcome, BusError> {
        let trace = TraceContext::from_headers(message.headers.as_ref());
        let call = match Envelope::<CallInbound>::decode(&message.payload, &message.subject) {
            Ok(envelope) => envelope.data,
            Err(error) => {
                // Not the reason: it may quote the payload (a phone number where a string
                // belongs); the rejection event carries it for people with access to CALLS.
                tracing::warn!(
                    code = error.code(),
                    subject = %message.subject,
                    stream_seq,
                    "rejecting call event"
                );
                self.metrics.rejected(error.code());
                let rejection = CallRejected(Rejection::new(
                    switchboard_bus::CALLS,
                    stream_seq,
                    &message.subject,
                    &message.payload,
                    &error,
                ));
                let event = Envelope::new(rejection, SOURCE, OffsetDateTime::now_utc());
                otel::publish(
                    &self.publisher,
                    SERVICE,
                    &otel::CALL_REJECTED,
                    &event,
                    &trace,
                )
                .await?;
                return Ok(Outcome::Rejected);
            }
        };

        let stale = self.wait_for_fresh_settings(received, bound).await;
        if let Some(stale) = &stale
            && !last_attempt
        {
            return Err(BusError::Unavailable {
                action: "wait for the settings projection".into(),
                reason: match stale {
                    Stale::Behind(required) => format!(
                        "projection at {} has not reached SETTINGS sequence {required}",
                        self.follower.applied_seq()
                    ),
                    Stale::Unknown => "cannot read the SETTINGS stream's last sequence".into(),
                },
            });
        }

        let route = {
            let projection = match self.projection.read() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let settings_seq = projection.applied_seq();
            let empty;
            let state = match projection.tenant(&call.tenant_id) {
                Some(state) => state,
                None => {
                    empty = TenantState::new(call.tenant_id.clone());
                    &empty
                }
            };
            let answers = crate::answers::read(&self.answers);
            let mut decision = decide_with(&call, state, answers.tenant(&call.tenant_id));
            // Recorded only when the rule could read it, so replay reads the history only then.
            let calls_seq = if state.company().returning_caller_days > 0 {
                answers.applied_seq()
            } else {
                0
            };
            drop(answers);
            if let Some(stale) = stale {
                decision.reasons.insert(
                    0,
                    Reason::SettingsMayBeStale {
                        settings_seq,
                        required_seq: match stale {
                            Stale::Behind(required) => Some(required),
                            Stale::Unknown => None,
                        },
                    },
                );
            }
            let mut route = decision.into_route(&call, settings_seq, OffsetDateTime::now_utc());
            route.calls_seq = calls_seq;
            route
        };
        tracing::debug!(
            call_id = %call.call_id,
            tenant = %call.tenant_id,
            rule = route.rule.as_str(),
            // In the operator's form (SWITCHBOARD_LOG_NUMBERS). Not `target`: JSON logs already
            // use that key.
            first = route.target.as_ref().map(|t| tracing::field::display(t.number.logged())),
            settings_seq = route.settings_seq,
            "decided"
        );
        let event = Envelope::new(route, SOURCE, OffsetDateTime::now_utc());
        let published =
            otel::publish(&self.publisher, SERVICE, &otel::CALL_ROUTE, &event, &trace).await?;
        self.metrics.decided(event.data.rule, received.elapsed());
        if published.duplicate {
            tracing::info!(call_id = %call.call_id, "call was already decided; kept the first decision");
        }
        Ok(Outcome::Decided)
    }

    /// Waits until the projection has applied every settings change acknowledged before the
    /// call was received. Returns why not, if that did not happen in time.
    async fn wait_for_fresh_settings(&self, received: Instant, bound: Bound) -> Option<Stale> {
        let required = match bound {
            Bound::Applied(required) => required,
            Bound::Unknown => return Some(Stale::Unknown),
        };
        // Usually already applied: answer without arming a timer.
        if self.follower.applied_seq() >= required {
            return None;
        }
        let remaining = self.freshness_timeout.saturating_sub(received.elapsed());
        match self.follower.wait_applied(required, remaining).await {
            Ok(_) => None,
            Err(_) => Some(Stale::Behind(required)),
        }
    }
}

/// Why the settings a call would be decided with may miss a change acknowledged before it.
enum Stale {
    /// The projection had not applied this SETTINGS sequence in time.
    Behind(u64),
    /// The SETTINGS stream's last sequence could not be read in time.
    Unknown,
}
