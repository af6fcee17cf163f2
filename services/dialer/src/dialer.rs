//! One delivery of a decision or a dial status: read the call's progress, ask the chain's
//! state machine ([`switchboard_chain::machine`]) what comes next, write it by compare-and-swap
//! (a step is claimed BEFORE the carrier is asked), run a step this delivery claimed at the
//! carrier, record the answer the same way, publish the call's dial events, and only then
//! settle the delivery.

use crate::carrier::{Action, Carrier, Request, RetryPolicy, retry};
use crate::metrics::Metrics;
use async_nats::jetstream::{AckKind, Message};
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::runtime::Delivery;
use switchboard_bus::{BusError, Publisher, TraceContext};
use switchboard_chain::{
    CarrierAnswer, Clock, Holder, Input, Progress, ProgressStore, StepState, Verdict, key,
};
use switchboard_contracts::{
    CallRejected, CallRoute, CallStatus, ContractError, Envelope, Rejection, TenantId,
};
use switchboard_telemetry::trace as otel;
use time::OffsetDateTime;
use tracing::Instrument as _;

/// The CloudEvents `source` of what the dialer publishes.
pub const SOURCE: &str = "/switchboard/dialer";
/// `switchboard.service` of the dialer's spans.
pub(crate) const SERVICE: &str = "dialer";

pub(crate) struct Dialer {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) publisher: Publisher,
    pub(crate) store: ProgressStore,
    pub(crate) carrier: Arc<dyn Carrier>,
    pub(crate) retry: RetryPolicy,
    pub(crate) public_base: String,
    pub(crate) ring_timeout_secs: u32,
    pub(crate) gateway_sync_mode: bool,
    pub(crate) claim_stale_after: Duration,
}

/// How a delivery is settled.
enum Outcome {
    /// Done (or nothing to do): acknowledge.
    Done,
    /// Refused and recorded as `call.rejected`: terminate.
    Rejected,
    /// Not now (a status before its decision, a step claimed by a delivery in progress):
    /// redeliver later.
    Later(String),
}

/// Which consumer a delivery came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Route,
    Status,
}

impl Dialer {
    /// Handles one delivery and settles it with JetStream.
    pub(crate) async fn handle(self: Arc<Self>, kind: Kind, delivery: Delivery) {
        let (stream_seq, delivered) = delivery.position();
        let consumer = delivery.spec().name;
        if delivered > 1 {
            self.metrics.redelivered(consumer);
        }
        let message = delivery.message();
        let dest = match kind {
            Kind::Route => &otel::CALL_ROUTE,
            Kind::Status => &otel::CALL_STATUS,
        };
        let span = otel::process(SERVICE, dest, consumer, message);
        let holder = Holder {
            consumer: consumer.to_string(),
            stream_seq,
            delivered,
        };
        let outcome = async {
            match kind {
                Kind::Route => self.route(message, &holder).await,
                Kind::Status => self.status(message, &holder).await,
            }
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &outcome {
            otel::fail(&span, e);
        }
        drop(span);
        let settle = match outcome {
            Ok(Outcome::Done) => AckKind::Ack,
            Ok(Outcome::Rejected) => AckKind::Term,
            Ok(Outcome::Later(why)) => {
                tracing::info!(stream_seq, delivered, subject = %message.subject, reason = %why, "not yet; will be redelivered");
                AckKind::Nak(Some(delivery.nak_delay()))
            }
            Err(e) => {
                tracing::warn!(error = %e, stream_seq, delivered, subject = %message.subject, "not handled; will be redelivered");
                AckKind::Nak(Some(delivery.nak_delay()))
            }
        };
        delivery.settle(settle).await;
    }

    async fn reject(&self, message: &Message, error: &ContractError) -> Result<Outcome, BusError> {
        let stream_seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        tracing::warn!(code = error.code(), subject = %message.subject, stream_seq, "rejecting call event");
        let rejection = CallRejected(Rejection::new(
            switchboard_bus::CALLS,
            stream_seq,
            &message.subject,
            &message.payload,
            error,
        ));
        let event = Envelope::new(rejection, SOURCE, OffsetDateTime::now_utc());
        otel::publish(
            &self.publisher,
            SERVICE,
            &otel::CALL_REJECTED,
            &event,
            &TraceContext::from_headers(message.headers.as_ref()),
        )
        .await?;
        Ok(Outcome::Rejected)
    }

    async fn route(&self, message: &Message, holder: &Holder) -> Result<Outcome, BusError> {
        let decision = match Envelope::<CallRoute>::decode(&message.payload, &message.subject) {
            Ok(envelope) => envelope.data,
            Err(error) => return self.reject(message, &error).await,
        };
        let input = Input::Decision {
            decision: &decision,
            by: holder,
            sync_mode: self.gateway_sync_mode,
        };
        self.advance(
            message,
            &decision.tenant_id,
            &decision.call_id,
            holder,
            input,
        )
        .await
    }

    async fn status(&self, message: &Message, holder: &Holder) -> Result<Outcome, BusError> {
        let status = match Envelope::<CallStatus>::decode(&message.payload, &message.subject) {
            Ok(envelope) => envelope.data,
            Err(error) => return self.reject(message, &error).await,
        };
        let input = Input::Status {
            status: &status,
            by: holder,
        };
        self.advance(message, &status.tenant_id, &status.call_id, holder, input)
            .await
    }

    fn clock(&self) -> Clock {
        Clock {
            now: OffsetDateTime::now_utc(),
            stale_after: self.claim_stale_after,
        }
    }

    /// Applies `input` to the call's progress, then runs every step this delivery claims at
    /// the carrier and applies each answer, until the chain waits for a status, is over, or
    /// was moved on by someone else. Every write is a compare-and-swap; a lost race re-reads.
    async fn advance(
        &self,
        message: &Message,
        tenant: &TenantId,
        call_id: &str,
        holder: &Holder,
        input: Input<'_>,
    ) -> Result<Outcome, BusError> {
        let key = key(tenant, call_id);
        // The carrier's answer to the step this delivery ran last, once it has one.
        let mut answer: Option<(u32, CarrierAnswer)> = None;
        loop {
            let (current, revision) = match self.store.get(&key).await? {
                Some((progress, revision)) => (Some(progress), Some(revision)),
                None => (None, None),
            };
            let input = match &answer {
                Some((step, result)) => Input::Carrier {
                    step: *step,
                    by: holder,
                    result,
                },
                None => input,
            };
            let next = match switchboard_chain::next(current.as_ref(), input, self.clock()) {
                Verdict::Later(why) => return Ok(Outcome::Later(why)),
                Verdict::Unchanged => {
                    if let Some(current) = &current {
                        self.publish_events(current, message).await?;
                    }
                    return Ok(Outcome::Done);
                }
                Verdict::Write(next) => next,
            };
            if self.store.put(&key, &next, revision).await?.is_none() {
                continue; // changed meanwhile: look again
            }
            let before = current.as_ref().map_or(0, |c| c.events.len());
            self.metrics
                .steps(&next.events[before.min(next.events.len())..]);
            if next.state == StepState::Claimed && next.holder.as_ref() == Some(holder) {
                let step = next.step;
                answer = Some((step, self.run_step(&next, step).await));
                continue;
            }
            self.publish_events(&next, message).await?;
            return Ok(Outcome::Done);
        }
    }

    /// Asks the carrier to run `step` of `progress` (a target's `<Dial>` or the final
    /// action), with bounded retries; the error is why the step failed.
    async fn run_step(&self, progress: &Progress, step: u32) -> CarrierAnswer {
        let tenant = progress.decision.tenant_id.clone();
        let action = match progress.target(step) {
            // One `<Dial>` for the leg: its number, or every member of a simultaneous group;
            // each with the step's whisper when the leg is screened.
            Some(target) => Action::Dial {
                numbers: target.numbers().map(|n| n.as_str().to_string()).collect(),
                screen_url: target
                    .screen
                    .then(|| switchboard_twilio::urls::screen(&self.public_base, &tenant, step)),
                action_url: switchboard_twilio::urls::dial_status(&self.public_base, &tenant, step),
                // The leg's own ring timeout (number, else company settings); decisions made
                // before ring timeouts existed use the dialer's.
                timeout_secs: target.ring_timeout_secs.unwrap_or(self.ring_timeout_secs),
            },
            None => Action::Final {
                action: progress.decision.final_action.clone(),
                hangup_url: switchboard_twilio::urls::hangup(&self.public_base),
            },
        };
        let request = Request {
            tenant,
            call_id: progress.decision.call_id.clone(),
            step,
            action,
        };
        let result = retry(
            self.carrier.as_ref(),
            &request,
            self.retry,
            Some(&self.metrics),
        )
        .await;
        // The number rung, in the operator's form (SWITCHBOARD_LOG_NUMBERS): what support staff
        // match to a CRM record.
        let number = match &request.action {
            Action::Dial { numbers, .. } => numbers
                .first()
                .map(|n| switchboard_contracts::phone::logged(n)),
            Action::Final { .. } => None,
        };
        match &result {
            Ok(_) => tracing::info!(
                call_id = %request.call_id,
                step,
                number = number.map(tracing::field::display),
                "carrier accepted the step"
            ),
            Err(failure) if failure.call_ended => {
                tracing::info!(call_id = %request.call_id, step, reason = %failure, "the call had already ended; the chain is over")
            }
            Err(failure) => {
                tracing::warn!(call_id = %request.call_id, step, reason = %failure, outcome_unknown = failure.outcome_unknown, "carrier did not run the step")
            }
        }
        result
            .map(|accepted| accepted.sid)
            .map_err(|f| switchboard_chain::Failure {
                reason: f.reason,
                outcome_unknown: f.outcome_unknown,
                call_ended: f.call_ended,
            })
    }

    /// Publishes every dial event of the call, then its `call.missed` when it has one;
    /// JetStream drops those already stored (same `Nats-Msg-Id`), so this repairs a crash
    /// between a state change and its publication. The `call.missed` is the one the progress
    /// recorded when the chain ended, the same at every publication: stored once. Each goes
    /// under its own producer span (`send call.dial` for the batch, `send call.missed`), so
    /// that a trace names the subject each was sent to.
    async fn publish_events(&self, progress: &Progress, message: &Message) -> Result<(), BusError> {
        let incoming = TraceContext::from_headers(message.headers.as_ref());
        let tenant = progress.decision.tenant_id.as_str();
        if !progress.events.is_empty() {
            // One producer span for the call's batch of dial events, pipelined.
            let span = otel::send(SERVICE, &otel::CALL_DIAL, tenant, "");
            otel::attribute(
                &span,
                "messaging.batch.message_count",
                i64::try_from(progress.events.len()).unwrap_or(i64::MAX),
            );
            let trace = otel::outgoing(&span, &incoming);
            let sent = async {
                let mut pending = Vec::with_capacity(progress.events.len());
                for data in &progress.events {
                    let event = Envelope::new(data.clone(), SOURCE, data.at);
                    pending.push(self.publisher.send(&event, &trace).await?);
                }
                for ack in pending {
                    ack.ack().await?;
                }
                Ok(())
            }
            .instrument(span.clone())
            .await;
            if let Err(e) = &sent {
                otel::fail(&span, e);
            }
            sent?;
        }
        if let Some(missed) = &progress.missed {
            let event = Envelope::new(missed.clone(), SOURCE, missed.at);
            let span = otel::send(SERVICE, &otel::CALL_MISSED, tenant, &event.id);
            let trace = otel::outgoing(&span, &incoming);
            let sent = self
                .publisher
                .publish(&event, &trace)
                .instrument(span.clone())
                .await
                .map(|_| ());
            if let Err(e) = &sent {
                otel::fail(&span, e);
            }
            sent?;
        }
        Ok(())
    }
}
