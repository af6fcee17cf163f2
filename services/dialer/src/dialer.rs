//! One delivery of a decision or a dial status: read the call's progress, claim the next step
//! by compare-and-swap BEFORE asking the carrier, record the outcome the same way, publish the
//! call's dial events, and only then acknowledge.

use crate::carrier::{Action, Carrier, Request, RetryPolicy, retry};
use crate::metrics::Metrics;
use crate::progress::{Progress, ProgressStore, StepState, key};
use async_nats::jetstream::{AckKind, Message};
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{BusError, Publisher, PullConsumerSpec, TraceContext};
use switchboard_contracts::{
    CallDial, CallRejected, CallRoute, CallStatus, ContractError, DialCallStatus, DialEventKind,
    Envelope, EventData, FinalActionKind, Rejection, Target,
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
pub(crate) enum Input {
    Route,
    Status,
}

impl Dialer {
    /// Handles one delivery and settles it with JetStream.
    pub(crate) async fn handle(
        self: Arc<Self>,
        input: Input,
        spec: PullConsumerSpec,
        message: Message,
    ) {
        let (stream_seq, delivered) = message
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .unwrap_or((0, 1));
        if delivered > 1 {
            self.metrics.redelivered(spec.name);
        }
        let dest = match input {
            Input::Route => &otel::CALL_ROUTE,
            Input::Status => &otel::CALL_STATUS,
        };
        let span = otel::process(SERVICE, dest, spec.name, &message);
        let outcome = async {
            match input {
                Input::Route => self.route(&message, stream_seq).await,
                Input::Status => self.status(&message, stream_seq).await,
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
                AckKind::Nak(Some(spec.nak_delay(delivered)))
            }
            Err(e) => {
                tracing::warn!(error = %e, stream_seq, delivered, subject = %message.subject, "not handled; will be redelivered");
                AckKind::Nak(Some(spec.nak_delay(delivered)))
            }
        };
        if let Err(e) = message.ack_with(settle).await {
            tracing::warn!(error = %e, stream_seq, "failed to settle the delivery with JetStream");
        }
    }

    async fn reject(
        &self,
        message: &Message,
        stream_seq: u64,
        error: &ContractError,
    ) -> Result<Outcome, BusError> {
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

    // -----------------------------------------------------------------------------------------
    // Decisions
    // -----------------------------------------------------------------------------------------

    async fn route(&self, message: &Message, stream_seq: u64) -> Result<Outcome, BusError> {
        let decision = match Envelope::<CallRoute>::decode(&message.payload, &message.subject) {
            Ok(envelope) => envelope.data,
            Err(error) => return self.reject(message, stream_seq, &error).await,
        };
        let key = key(&decision.tenant_id, &decision.call_id);
        loop {
            let Some((progress, revision)) = self.store.get(&key).await? else {
                let first = self.first_progress(decision.clone());
                let Some(revision) = self.store.create(&key, &first).await? else {
                    continue; // another delivery created it first: look again
                };
                self.metrics.steps(&first.events);
                tracing::info!(
                    tenant = %decision.tenant_id,
                    call_id = %decision.call_id,
                    steps = first.chain_len(),
                    "dialing a new decision"
                );
                return self.drive(message, &key, first, revision).await;
            };
            // A redelivered (or re-published) decision: its chain is already under way.
            if progress.state == StepState::Claimed {
                if let Some(outcome) = self
                    .recover_claim(message, &key, progress, revision)
                    .await?
                {
                    return Ok(outcome);
                }
                continue;
            }
            self.publish_events(&progress, message).await?;
            return Ok(Outcome::Done);
        }
    }

    fn first_progress(&self, decision: CallRoute) -> Progress {
        let now = OffsetDateTime::now_utc();
        let mut progress = Progress {
            decision,
            step: 0,
            state: StepState::Claimed,
            since: now,
            events: Vec::new(),
        };
        if progress.chain_len() == 0 {
            progress.events.push(event(
                &progress,
                0,
                DialEventKind::ChainExhausted,
                Some("no_route: nothing to ring".into()),
                None,
            ));
        }
        if self.gateway_sync_mode {
            // The gateway's sync answer already did step 0: the `<Dial>` of the target, or the
            // final action when there is none.
            if progress.chain_len() == 0 {
                progress.state = StepState::FinalTaken;
                let kind = final_kind(&progress);
                progress.events.push(event(
                    &progress,
                    0,
                    DialEventKind::FinalActionTaken,
                    Some(format!("{kind} (answered by the gateway in sync mode)")),
                    None,
                ));
            } else {
                progress.state = StepState::Ringing;
                progress.events.push(event(
                    &progress,
                    0,
                    DialEventKind::StepStarted,
                    Some("rung by the gateway in sync mode".into()),
                    None,
                ));
            }
        }
        progress
    }

    /// A step claimed by a delivery that did not finish. Fresh: that delivery may still be at
    /// the carrier, come back later. Stale: the dialer died between the claim and the
    /// carrier's answer, and whether the carrier was reached is unknown; ringing the step again
    /// could ring its target twice, so the step is failed and the chain moves on. Returns
    /// `None` when the progress changed meanwhile (look again).
    async fn recover_claim(
        &self,
        message: &Message,
        key: &str,
        progress: Progress,
        revision: u64,
    ) -> Result<Option<Outcome>, BusError> {
        let age = OffsetDateTime::now_utc() - progress.since;
        if age < self.claim_stale_after {
            return Ok(Some(Outcome::Later(format!(
                "step {} of call {} is claimed by a delivery in progress",
                progress.step, progress.decision.call_id
            ))));
        }
        let step = progress.step;
        let before = progress.events.len();
        tracing::warn!(
            call_id = %progress.decision.call_id,
            step,
            "step claimed by a dialer that stopped before the carrier answered; failing it (never ring twice)"
        );
        let mut next = progress;
        let reason = "the dialer stopped before the carrier confirmed this step; not retried, so nobody is rung twice";
        if next.target(step).is_some() {
            fail_step(&mut next, reason.into(), None);
        } else {
            next.state = StepState::FinalFailed;
            next.events.push(event(
                &next,
                step,
                DialEventKind::StepFailed,
                Some(reason.into()),
                None,
            ));
        }
        next.since = OffsetDateTime::now_utc();
        let Some(revision) = self.store.update(key, &next, revision).await? else {
            return Ok(None);
        };
        self.metrics.steps(&next.events[before..]);
        if next.state == StepState::Claimed {
            return self.drive(message, key, next, revision).await.map(Some);
        }
        self.publish_events(&next, message).await?;
        Ok(Some(Outcome::Done))
    }

    // -----------------------------------------------------------------------------------------
    // Statuses
    // -----------------------------------------------------------------------------------------

    async fn status(&self, message: &Message, stream_seq: u64) -> Result<Outcome, BusError> {
        let status = match Envelope::<CallStatus>::decode(&message.payload, &message.subject) {
            Ok(envelope) => envelope.data,
            Err(error) => return self.reject(message, stream_seq, &error).await,
        };
        let key = key(&status.tenant_id, &status.call_id);
        loop {
            let Some((progress, revision)) = self.store.get(&key).await? else {
                return Ok(Outcome::Later(format!(
                    "no decision dialed yet for call {}",
                    status.call_id
                )));
            };
            let current = matches!(progress.state, StepState::Claimed | StepState::Ringing)
                && progress.step == status.step
                && progress.target(status.step).is_some();
            if !current {
                tracing::debug!(
                    call_id = %status.call_id,
                    status_step = status.step,
                    step = progress.step,
                    "status of a step that is not the current one (stale or duplicate); ignored"
                );
                self.publish_events(&progress, message).await?;
                return Ok(Outcome::Done);
            }
            let before = progress.events.len();
            let mut next = progress;
            next.since = OffsetDateTime::now_utc();
            if status.dial_call_status == DialCallStatus::Completed {
                next.state = StepState::Answered;
                next.events.push(event(
                    &next,
                    status.step,
                    DialEventKind::Answered,
                    None,
                    status.dial_call_sid.clone(),
                ));
            } else {
                fail_step(
                    &mut next,
                    format!("dial status {}", status.dial_call_status.as_str()),
                    status.dial_call_sid.clone(),
                );
            }
            let Some(revision) = self.store.update(&key, &next, revision).await? else {
                continue; // changed meanwhile: look again
            };
            self.metrics.steps(&next.events[before..]);
            tracing::info!(
                call_id = %status.call_id,
                step = status.step,
                status = status.dial_call_status.as_str(),
                "dial step ended"
            );
            if next.state == StepState::Claimed {
                return self.drive(message, &key, next, revision).await;
            }
            self.publish_events(&next, message).await?;
            return Ok(Outcome::Done);
        }
    }

    // -----------------------------------------------------------------------------------------
    // The chain
    // -----------------------------------------------------------------------------------------

    /// Runs the claimed step of `progress` (at `revision`) and every step after it that fails
    /// at the carrier, until one rings, the final action is taken, or another delivery moved
    /// the call on.
    async fn drive(
        &self,
        message: &Message,
        key: &str,
        mut progress: Progress,
        mut revision: u64,
    ) -> Result<Outcome, BusError> {
        while progress.state == StepState::Claimed {
            let step = progress.step;
            // Carrier retries can take a while: keep the delivery from being redelivered.
            if let Err(e) = message.ack_with(AckKind::Progress).await {
                tracing::debug!(error = %e, "failed to extend the delivery's ack deadline");
            }
            let tenant = progress.decision.tenant_id.clone();
            let call_id = progress.decision.call_id.clone();
            let target = progress.target(step).cloned();
            let action = match &target {
                Some(target) => Action::Dial {
                    number: target.number.as_str().to_string(),
                    action_url: format!(
                        "{}/v1/tenants/{tenant}/twilio/dial-status?step={step}",
                        self.public_base
                    ),
                    timeout_secs: self.ring_timeout_secs,
                },
                None => Action::Final {
                    action: progress.decision.final_action.clone(),
                    hangup_url: format!("{}/v1/twiml/hangup", self.public_base),
                },
            };
            let request = Request {
                tenant,
                call_id,
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
            let mut next = progress.clone();
            next.since = OffsetDateTime::now_utc();
            match (result, &target) {
                (Ok(accepted), Some(_)) => {
                    next.state = StepState::Ringing;
                    next.events.push(event(
                        &next,
                        step,
                        DialEventKind::StepStarted,
                        None,
                        accepted.sid,
                    ));
                }
                (Ok(accepted), None) => {
                    next.state = StepState::FinalTaken;
                    let kind = final_kind(&next);
                    next.events.push(event(
                        &next,
                        step,
                        DialEventKind::FinalActionTaken,
                        Some(kind.into()),
                        accepted.sid,
                    ));
                }
                (Err(reason), Some(_)) => {
                    tracing::warn!(call_id = %request.call_id, step, %reason, "carrier did not run the step; moving on");
                    fail_step(&mut next, format!("carrier: {reason}"), None);
                }
                (Err(reason), None) => {
                    tracing::error!(call_id = %request.call_id, step, %reason, "carrier did not run the final action");
                    next.state = StepState::FinalFailed;
                    next.events.push(event(
                        &next,
                        step,
                        DialEventKind::StepFailed,
                        Some(format!("carrier: {reason}")),
                        None,
                    ));
                }
            }
            match self.store.update(key, &next, revision).await? {
                Some(r) => {
                    self.metrics.steps(&next.events[progress.events.len()..]);
                    revision = r;
                    progress = next;
                }
                None => {
                    // Another delivery (this step's status) moved the call on meanwhile; it
                    // publishes what it recorded.
                    tracing::info!(call_id = %request.call_id, step, "call moved on meanwhile");
                    return Ok(Outcome::Done);
                }
            }
        }
        self.publish_events(&progress, message).await?;
        Ok(Outcome::Done)
    }

    /// Publishes every dial event of the call (pipelined); JetStream drops those already
    /// stored (same `Nats-Msg-Id`), so this repairs a crash between a state change and its
    /// publication.
    async fn publish_events(&self, progress: &Progress, message: &Message) -> Result<(), BusError> {
        if progress.events.is_empty() {
            return Ok(());
        }
        let incoming = TraceContext::from_headers(message.headers.as_ref());
        // One producer span for the call's batch of dial events.
        let span = otel::send(
            SERVICE,
            &otel::CALL_DIAL,
            progress.decision.tenant_id.as_str(),
            "",
        );
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
        sent
    }
}

/// The current step failed: record why and claim the next one (the final action after the
/// last target, announced by `chain_exhausted`).
fn fail_step(progress: &mut Progress, reason: String, carrier_sid: Option<String>) {
    let step = progress.step;
    progress.events.push(event(
        progress,
        step,
        DialEventKind::StepFailed,
        Some(reason),
        carrier_sid,
    ));
    progress.step = step.saturating_add(1);
    progress.state = StepState::Claimed;
    if progress.step >= progress.chain_len() {
        let len = progress.chain_len();
        progress.events.push(event(
            progress,
            len,
            DialEventKind::ChainExhausted,
            Some(format!("all {len} targets tried")),
            None,
        ));
    }
}

fn final_kind(progress: &Progress) -> &'static str {
    match progress.decision.final_action.kind {
        FinalActionKind::Voicemail => "voicemail",
        FinalActionKind::AnnounceHangup => "announce_hangup",
    }
}

fn event(
    progress: &Progress,
    step: u32,
    kind: DialEventKind,
    reason: Option<String>,
    carrier_sid: Option<String>,
) -> CallDial {
    let target: Option<Target> = match kind {
        DialEventKind::StepStarted | DialEventKind::Answered | DialEventKind::StepFailed => {
            progress.target(step).cloned()
        }
        DialEventKind::ChainExhausted | DialEventKind::FinalActionTaken => None,
    };
    let data = CallDial {
        call_id: progress.decision.call_id.clone(),
        tenant_id: progress.decision.tenant_id.clone(),
        step,
        kind,
        target,
        // Reasons quote carriers; keep them within the contract's text limit.
        reason: reason.map(|r| {
            r.chars()
                .take(switchboard_contracts::MAX_TEXT_LEN)
                .collect()
        }),
        carrier_sid: carrier_sid.map(|s| s.chars().take(256).collect()),
        at: OffsetDateTime::now_utc(),
    };
    debug_assert!(data.validate().is_ok());
    data
}
