//! Carrier adapters behind one trait: Twilio's REST API ("modify a live call", through
//! [`switchboard_twilio::rest`]) and a sandbox that records every action and simulates
//! outcomes. Retries of transient failures (5xx, 429, timeouts) with exponential backoff and
//! jitter are the caller's, through [`with_retries`].

use crate::metrics::Metrics;
use crate::tenants::Tenants;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::Publisher;
use switchboard_contracts::{CallStatus, DialCallStatus, Envelope, FinalAction, TenantId};
use switchboard_telemetry::trace as otel;
use switchboard_twilio::{rest, twiml};
use time::OffsetDateTime;
use tracing::Instrument as _;

/// What the carrier must do with a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ring `number`; the outcome goes to `action_url` (the gateway's dial-status webhook of
    /// this step).
    Dial {
        /// E.164 number.
        number: String,
        /// Absolute URL Twilio posts the dial outcome to.
        action_url: String,
        /// Seconds to ring.
        timeout_secs: u32,
    },
    /// The final action; a voicemail's end requests `hangup_url`.
    Final {
        /// Voicemail or announcement.
        action: FinalAction,
        /// Absolute URL that answers `<Hangup/>`.
        hangup_url: String,
    },
}

impl Action {
    /// The action as TwiML ([`switchboard_twilio::twiml`], the gateway's writer too).
    pub fn twiml(&self) -> String {
        match self {
            Action::Dial {
                number,
                action_url,
                timeout_secs,
            } => twiml::dial(number, action_url, *timeout_secs),
            Action::Final { action, hangup_url } => twiml::final_action(action, hangup_url),
        }
    }
}

/// One request to the carrier about one live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The tenant (whose carrier account the call belongs to).
    pub tenant: TenantId,
    /// The carrier's call id (Twilio `CallSid`).
    pub call_id: String,
    /// The chain step.
    pub step: u32,
    /// What to do.
    pub action: Action,
}

/// The carrier did it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The carrier's id of the call it modified, when it says.
    pub sid: Option<String>,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// Worth retrying: 5xx, 429, timeout, connection failure.
    #[error("{0}")]
    Transient(String),
    /// Final: the carrier refused (4xx), or nothing can be sent (no credentials).
    #[error("{0}")]
    Refused(String),
    /// Sent, with no answer (timed out after sending, connection lost): the carrier may have
    /// done it. Never retried: a dial could ring its number twice, a final action play twice.
    #[error("{0}")]
    Unknown(String),
}

/// Why a step failed at the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the record.
    pub reason: String,
    /// The carrier may have run the step all the same.
    pub outcome_unknown: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The future of one carrier attempt.
pub type CarrierFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Accepted, CarrierError>> + Send + 'a>>;

/// A carrier that can change what a live call does.
pub trait Carrier: Send + Sync + 'static {
    /// One attempt at `request`; no retries.
    fn modify_call<'a>(&'a self, request: &'a Request) -> CarrierFuture<'a>;

    /// The carrier's name in metrics and spans (`twilio`, `sandbox`).
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// Bounded retries with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based): `min(max, base·2^(attempt-1))`,
    /// of which the upper half is jitter. The jitter is derived from the call and the attempt,
    /// so instances retrying different calls spread out while a test stays reproducible.
    pub fn delay(&self, attempt: u32, call_id: &str) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        let half = exp / 2;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (call_id, attempt).hash(&mut h);
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(h.finish() % span)
    }
}

/// Runs `request` until it is accepted, refused, or the attempts are used up; the error is
/// the reason the step failed.
pub async fn with_retries(
    carrier: &dyn Carrier,
    request: &Request,
    policy: RetryPolicy,
) -> Result<Accepted, Failure> {
    retry(carrier, request, policy, None).await
}

/// [`with_retries`], each attempt in a `carrier modify_call` client span and, with `metrics`,
/// measured.
pub(crate) async fn retry(
    carrier: &dyn Carrier,
    request: &Request,
    policy: RetryPolicy,
    metrics: Option<&Metrics>,
) -> Result<Accepted, Failure> {
    let attempts = policy.max_attempts.max(1);
    let failed = |reason: String, outcome_unknown: bool| Failure {
        reason,
        outcome_unknown,
    };
    let mut attempt = 1;
    loop {
        let span = otel::carrier(
            crate::dialer::SERVICE,
            carrier.name(),
            request.tenant.as_str(),
            request.step,
            attempt,
        );
        let started = Instant::now();
        let result = carrier.modify_call(request).instrument(span.clone()).await;
        if let Some(metrics) = metrics {
            metrics.carrier_request(carrier.name(), &result, started.elapsed());
        }
        if let Err(e) = &result {
            otel::fail(&span, e);
        }
        drop(span);
        match result {
            Ok(accepted) => return Ok(accepted),
            Err(CarrierError::Refused(reason)) => return Err(failed(reason, false)),
            // The carrier may be ringing the number, or playing the final action, already:
            // never ask again (the dead-man's switch covers a final action that did not land).
            Err(CarrierError::Unknown(reason)) => {
                return Err(failed(format!("{reason}; not retried"), true));
            }
            Err(CarrierError::Transient(reason)) if attempt >= attempts => {
                return Err(failed(
                    format!("{reason} (gave up after {attempts} attempts)"),
                    false,
                ));
            }
            Err(CarrierError::Transient(reason)) => {
                let delay = policy.delay(attempt, &request.call_id);
                tracing::warn!(
                    call_id = %request.call_id,
                    step = request.step,
                    attempt,
                    error = %reason,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "carrier request failed; retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------------------------

/// Twilio's REST API ([`rest::Client`]: `POST {base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`
/// with the form parameter `Twiml`, HTTP Basic auth with the account SID and auth token), with
/// each tenant's credentials.
pub struct Twilio {
    client: rest::Client,
    tenants: Tenants,
}

impl Twilio {
    /// A client of `api_base` (no trailing slash needed) for `tenants`; each request times out
    /// after `timeout`.
    pub fn new(api_base: &str, tenants: Tenants, timeout: Duration) -> Result<Twilio, String> {
        let user_agent = concat!("switchboard-dialer/", env!("CARGO_PKG_VERSION"));
        Ok(Twilio {
            client: rest::Client::new(api_base, timeout, user_agent)?,
            tenants,
        })
    }

    async fn attempt(&self, request: &Request) -> Result<Accepted, CarrierError> {
        let secrets = self.tenants.get(&request.tenant).ok_or_else(|| {
            CarrierError::Refused(format!(
                "no Twilio credentials for tenant {}",
                request.tenant
            ))
        })?;
        let account = secrets.twilio_account_sid.as_deref().ok_or_else(|| {
            CarrierError::Refused(format!(
                "no twilio_account_sid for tenant {}",
                request.tenant
            ))
        })?;
        let modified = self
            .client
            .modify_call(
                account,
                &secrets.twilio_auth_token,
                &request.call_id,
                &request.action.twiml(),
            )
            .await
            .map_err(|e| match e {
                rest::Error::Transient(reason) => CarrierError::Transient(reason),
                rest::Error::Refused(reason) => CarrierError::Refused(reason),
                rest::Error::Unknown(reason) => CarrierError::Unknown(reason),
            })?;
        Ok(Accepted { sid: modified.sid })
    }
}

impl Carrier for Twilio {
    fn modify_call<'a>(&'a self, request: &'a Request) -> CarrierFuture<'a> {
        Box::pin(self.attempt(request))
    }

    fn name(&self) -> &'static str {
        "twilio"
    }
}

// ---------------------------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------------------------

/// An action the sandbox carrier took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    /// The request.
    pub request: Request,
    /// The simulated outcome published for a dial (`None` for a final action).
    pub outcome: Option<DialCallStatus>,
}

/// No carrier: records and logs every action, and for each dial publishes the `call.status`
/// the gateway would have, after `ring`, with the configured outcome of that step (the last
/// one repeats).
pub struct Sandbox {
    publisher: Publisher,
    outcomes: Vec<DialCallStatus>,
    ring: Duration,
    records: Arc<Mutex<Vec<SandboxRecord>>>,
}

/// The CloudEvents `source` of the statuses the sandbox simulates.
pub const SANDBOX_SOURCE: &str = "/switchboard/dialer/sandbox";

impl Sandbox {
    /// A sandbox publishing simulated statuses with `publisher`.
    pub fn new(publisher: Publisher, outcomes: Vec<DialCallStatus>, ring: Duration) -> Sandbox {
        Sandbox {
            publisher,
            outcomes,
            ring,
            records: Arc::default(),
        }
    }

    /// Parses outcome names (`completed`, `busy`, `no_answer`/`no-answer`, `failed`,
    /// `canceled`).
    pub fn parse_outcomes(names: &[String]) -> Result<Vec<DialCallStatus>, String> {
        names
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .map(|n| {
                DialCallStatus::from_twilio(n)
                    .ok_or_else(|| format!("unknown sandbox outcome {n:?}"))
            })
            .collect()
    }

    /// Every action taken so far.
    pub fn records(&self) -> Vec<SandboxRecord> {
        match self.records.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn outcome(&self, step: u32) -> DialCallStatus {
        let i = usize::try_from(step).unwrap_or(usize::MAX);
        self.outcomes
            .get(i)
            .or(self.outcomes.last())
            .copied()
            .unwrap_or(DialCallStatus::NoAnswer)
    }

    async fn act(&self, request: &Request) -> Result<Accepted, CarrierError> {
        let outcome = match &request.action {
            Action::Dial { .. } => Some(self.outcome(request.step)),
            Action::Final { .. } => None,
        };
        // The TwiML holds the full number: log what was done with the number masked.
        let action = match &request.action {
            Action::Dial { number, .. } => {
                format!("dial {}", switchboard_contracts::phone::mask(number))
            }
            Action::Final { .. } => "final action".to_string(),
        };
        tracing::info!(
            tenant = %request.tenant,
            call_id = %request.call_id,
            step = request.step,
            action,
            outcome = outcome.map(DialCallStatus::as_str),
            "sandbox carrier: call modified"
        );
        match self.records.lock() {
            Ok(mut r) => r.push(SandboxRecord {
                request: request.clone(),
                outcome,
            }),
            Err(poisoned) => poisoned.into_inner().push(SandboxRecord {
                request: request.clone(),
                outcome,
            }),
        }
        if let Some(outcome) = outcome {
            let status = CallStatus {
                call_id: request.call_id.clone(),
                tenant_id: request.tenant.clone(),
                step: request.step,
                dial_call_status: outcome,
                dial_call_sid: Some(format!("SB{}x{}", request.step, request.call_id.len())),
                dial_call_duration: Some(if outcome == DialCallStatus::Completed {
                    30
                } else {
                    0
                }),
                received_at: OffsetDateTime::now_utc(),
            };
            let publisher = self.publisher.clone();
            let ring = self.ring;
            // The simulated callback continues the call's trace (as Twilio's would not).
            let trace = otel::context_of(&tracing::Span::current());
            tokio::spawn(async move {
                tokio::time::sleep(ring).await;
                let event = Envelope::new(status, SANDBOX_SOURCE, OffsetDateTime::now_utc());
                let published = otel::publish(
                    &publisher,
                    crate::dialer::SERVICE,
                    &otel::CALL_STATUS,
                    &event,
                    &trace,
                )
                .await;
                if let Err(e) = published {
                    tracing::warn!(error = %e, "sandbox carrier: failed to publish the simulated status");
                }
            });
        }
        Ok(Accepted {
            sid: Some(format!("SB-{}", request.call_id)),
        })
    }
}

impl Carrier for Sandbox {
    fn modify_call<'a>(&'a self, request: &'a Request) -> CarrierFuture<'a> {
        Box::pin(self.act(request))
    }

    fn name(&self) -> &'static str {
        "sandbox"
    }
}

impl<C: Carrier> Carrier for Arc<C> {
    fn modify_call<'a>(&'a self, request: &'a Request) -> CarrierFuture<'a> {
        (**self).modify_call(request)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_bounded_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let d1 = p.delay(1, "CA1");
        assert!(
            d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(100),
            "{d1:?}"
        );
        let d3 = p.delay(3, "CA1");
        assert!(
            d3 >= Duration::from_millis(200) && d3 < Duration::from_millis(400),
            "{d3:?}"
        );
        let d9 = p.delay(9, "CA1");
        assert!(
            d9 >= Duration::from_millis(500) && d9 < Duration::from_millis(1000),
            "{d9:?}"
        );
        assert_eq!(p.delay(2, "CA1"), p.delay(2, "CA1"));
    }
}
