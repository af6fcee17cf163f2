//! Carrier adapters behind one trait: Twilio's REST API ("modify a live call", through
//! [`switchboard_twilio::rest`]) and a sandbox that records every action and simulates
//! outcomes. Retries of transient failures (5xx, 429, timeouts) with exponential backoff and
//! jitter are the caller's, through [`with_retries`].

use crate::metrics::Metrics;
use crate::tenants::LiveTenants;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, AckKind, context::PublishErrorKind};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::runtime::{self, ConsumeOptions, Delivery};
use switchboard_bus::{BusError, Publisher, PullConsumerSpec, TraceContext};
use switchboard_contracts::{CallStatus, DialCallStatus, Envelope, FinalAction, TenantId};
use switchboard_telemetry::trace as otel;
use switchboard_twilio::{rest, twiml};
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument as _;

/// What the carrier must do with a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ring `numbers` at once (one, or every member of a simultaneous ring group: the first
    /// to answer wins); the outcome goes to `action_url` (the gateway's dial-status webhook of
    /// this step).
    Dial {
        /// E.164 numbers, in the leg's order.
        numbers: Vec<String>,
        /// A screened leg's whisper (`<Number url>`, the gateway's screen URL of this step).
        screen_url: Option<String>,
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
                numbers,
                screen_url,
                action_url,
                timeout_secs,
            } => {
                let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
                twiml::dial_numbers(&numbers, screen_url.as_deref(), action_url, *timeout_secs)
            }
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
    /// Final: the call is no longer in progress (Twilio: HTTP 400, code 21220, "Call is not
    /// in-progress"): the caller hung up, or the gateway refused the call at its webhook.
    /// Nothing can be done to it any more.
    #[error("{0}")]
    CallEnded(String),
}

/// Twilio's error code for a call that can no longer be modified because it is not in
/// progress (it ended: the caller hung up, or it was rejected at the webhook).
pub const CALL_NOT_IN_PROGRESS: u32 = 21220;

/// Whether a refusal from [`rest::Client`] (`Twilio HTTP 400 (code 21220): …`) says the call is
/// no longer in progress.
pub fn is_call_not_in_progress(reason: &str) -> bool {
    reason.contains(&format!("(code {CALL_NOT_IN_PROGRESS})"))
}

/// Why a step failed at the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the record.
    pub reason: String,
    /// The carrier may have run the step all the same.
    pub outcome_unknown: bool,
    /// The call is no longer in progress ([`CarrierError::CallEnded`]).
    pub call_ended: bool,
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
        call_ended: false,
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
            // Over: no retry, and nothing else to ask (the chain records how it ended).
            Err(CarrierError::CallEnded(reason)) => {
                return Err(Failure {
                    call_ended: true,
                    ..failed(reason, false)
                });
            }
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
    /// The tenants' credentials as they are now (reloaded on change and on SIGHUP).
    tenants: Arc<LiveTenants>,
}

impl Twilio {
    /// A client of `api_base` (no trailing slash needed) for `tenants`; each request times out
    /// after `timeout`.
    pub fn new(
        api_base: &str,
        tenants: Arc<LiveTenants>,
        timeout: Duration,
    ) -> Result<Twilio, String> {
        let user_agent = concat!("switchboard-dialer/", env!("CARGO_PKG_VERSION"));
        Ok(Twilio {
            client: rest::Client::new(api_base, timeout, user_agent)?,
            tenants,
        })
    }

    async fn attempt(&self, request: &Request) -> Result<Accepted, CarrierError> {
        let tenants = self.tenants.get();
        let secrets = tenants.get(&request.tenant).ok_or_else(|| {
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
                rest::Error::Refused(reason) if is_call_not_in_progress(&reason) => {
                    CarrierError::CallEnded(reason)
                }
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

/// The stream in which the sandbox carrier keeps every request it accepts, one
/// [`SandboxEntry`] (JSON) per request: its ledger, and the status reports still due of the
/// dials it "rings". Subjects `sandbox.carrier.dial.<tenant>` and
/// `sandbox.carrier.final.<tenant>`; and `sandbox.carrier.ended.<tenant>.<call>` (the call's
/// `DIAL_PROGRESS` key) for a call that ended at the carrier ([`end_call`]), which it then
/// refuses to modify as Twilio does. Entries are kept a day.
pub const SANDBOX_STREAM: &str = "SANDBOX_CARRIER";
/// The subjects of [`SANDBOX_STREAM`].
pub const SANDBOX_SUBJECTS: &str = "sandbox.carrier.>";
/// The durable consumer, shared by every sandbox dialer, that publishes each dial's
/// `call.status` when it is due.
pub const SANDBOX_CONSUMER: &str = "sandbox-carrier-status";
const SANDBOX_DIALS: &str = "sandbox.carrier.dial.>";
const SANDBOX_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// The CloudEvents `source` of the statuses the sandbox simulates.
pub const SANDBOX_SOURCE: &str = "/switchboard/dialer/sandbox";

/// An action the sandbox carrier took (in this process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    /// The request.
    pub request: Request,
    /// The simulated outcome published for a dial (`None` for a final action).
    pub outcome: Option<DialCallStatus>,
}

/// What the sandbox carrier was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxAction {
    /// Ring a target; its status is reported when due.
    Dial,
    /// The final action.
    Final,
    /// Not a request: the call ended at the carrier (the caller hung up, or the gateway
    /// refused it at its webhook). Every later request for it is refused as not in progress.
    Ended,
}

impl SandboxAction {
    fn as_str(self) -> &'static str {
        match self {
            SandboxAction::Dial => "dial",
            SandboxAction::Final => "final",
            SandboxAction::Ended => "ended",
        }
    }
}

/// The subject of the mark that `call_id` of `tenant` ended at the sandbox carrier.
fn ended_subject(tenant: &TenantId, call_id: &str) -> String {
    format!(
        "sandbox.carrier.ended.{}",
        switchboard_chain::key(tenant, call_id)
    )
}

/// Ends `call_id` at the sandbox carrier, as a caller hanging up (or the gateway's `<Reject>`
/// at the webhook) ends a real call: from now on every sandbox dialer refuses to modify it with
/// the error Twilio gives ([`CarrierError::CallEnded`], code 21220). Idempotent.
pub async fn end_call(
    js: &jetstream::Context,
    tenant: &TenantId,
    call_id: &str,
) -> Result<(), BusError> {
    let entry = SandboxEntry {
        tenant: tenant.clone(),
        call_id: call_id.to_string(),
        step: 0,
        action: SandboxAction::Ended,
        outcome: None,
        accepted_at: OffsetDateTime::now_utc(),
        status_due: None,
        pid: std::process::id(),
    };
    let unavailable = |e: String| BusError::Unavailable {
        action: format!("end call {call_id} at the sandbox carrier"),
        reason: e,
    };
    let body = serde_json::to_vec(&entry).map_err(|e| unavailable(e.to_string()))?;
    let subject = ended_subject(tenant, call_id);
    let mut headers = async_nats::HeaderMap::new();
    // Once per call, however often it is marked.
    headers.insert("Nats-Msg-Id", subject.as_str());
    js.publish_with_headers(subject, headers, body.into())
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(())
}

/// One request the sandbox carrier accepted, as stored in [`SANDBOX_STREAM`]: stored before
/// the request returns, so "accepted" means "in the ledger, its status report on its way"
/// whatever becomes of the dialer that asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxEntry {
    /// The call's tenant.
    pub tenant: TenantId,
    /// The call.
    pub call_id: String,
    /// The chain step.
    pub step: u32,
    /// Dial or final action.
    pub action: SandboxAction,
    /// A dial's simulated outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<DialCallStatus>,
    /// When the carrier accepted the request.
    #[serde(with = "time::serde::rfc3339")]
    pub accepted_at: OffsetDateTime,
    /// When a dial's status is reported (after it rang).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_due: Option<OffsetDateTime>,
    /// The process id of the dialer that asked (for tests that kill dialers).
    pub pid: u32,
}

/// How a [`Sandbox`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOptions {
    /// The simulated outcome of each step (the last one repeats).
    pub outcomes: Vec<DialCallStatus>,
    /// How long a dial rings before its status is reported.
    pub ring: Duration,
    /// Longest a request waits for the ledger's acknowledgement (`--carrier-timeout-ms`); then
    /// the outcome is unknown, as with a real carrier that did not answer.
    pub timeout: Duration,
    /// `ack_wait` of [`SANDBOX_CONSUMER`]: a status report held by a dialer that died is
    /// published by another one (or the restarted one) this long after.
    pub ack_wait: Duration,
    /// Replicas of [`SANDBOX_STREAM`] when it is created.
    pub replicas: usize,
    /// Status reports waiting for their due time at once in this process.
    pub max_in_flight: usize,
}

impl SandboxOptions {
    /// `outcomes` after `ring`, with the dialer's defaults for the rest.
    pub fn new(outcomes: Vec<DialCallStatus>, ring: Duration) -> SandboxOptions {
        SandboxOptions {
            outcomes,
            ring,
            timeout: Duration::from_secs(5),
            ack_wait: switchboard_bus::DIALER_ACK_WAIT,
            replicas: 1,
            max_in_flight: 1024,
        }
    }
}

/// No carrier: every request is stored in the ledger stream [`SANDBOX_STREAM`] before it is
/// accepted, logged and recorded; for each dial, the `call.status` the gateway would have
/// published (the configured outcome of that step, the last one repeating) is published after
/// `ring` by whichever sandbox dialer is alive then ([`SANDBOX_CONSUMER`]), as a real carrier's
/// callback arrives whatever became of the dialer that asked. A status published twice (a
/// dialer died after publishing it) is dropped by CALLS: its id is
/// `<tenant>:<call>:status:<step>`.
pub struct Sandbox {
    js: jetstream::Context,
    /// [`SANDBOX_STREAM`], for the calls that ended.
    ledger: jetstream::stream::Stream,
    outcomes: Vec<DialCallStatus>,
    ring: Duration,
    timeout: Duration,
    records: Arc<Mutex<Vec<SandboxRecord>>>,
    /// This sandbox's id (process id and start time: unique across restarts, where a
    /// container's process id is not) and its requests so far, for the requests' ids.
    instance: String,
    requests: std::sync::atomic::AtomicU64,
    stop: watch::Sender<bool>,
}

impl Sandbox {
    /// Creates (or opens) [`SANDBOX_STREAM`] and [`SANDBOX_CONSUMER`], and starts publishing
    /// the status reports that fall due (until the sandbox is dropped).
    pub async fn open(
        js: &jetstream::Context,
        options: SandboxOptions,
    ) -> Result<Sandbox, BusError> {
        let ledger = js.get_or_create_stream(jetstream::stream::Config {
            name: SANDBOX_STREAM.to_string(),
            description: Some(
                "Switchboard sandbox carrier: every request it accepted, and the status reports of its dials"
                    .into(),
            ),
            subjects: vec![SANDBOX_SUBJECTS.to_string()],
            storage: jetstream::stream::StorageType::File,
            retention: jetstream::stream::RetentionPolicy::Limits,
            max_age: SANDBOX_RETENTION,
            num_replicas: options.replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| BusError::Unavailable {
            action: format!("create the {SANDBOX_STREAM} stream"),
            reason: e.to_string(),
        })?;
        let spec = status_reports(options.ack_wait);
        let consumer = spec.ensure(js).await?;
        let (stop, stop_rx) = watch::channel(false);
        let publisher = Publisher::new(js.clone());
        let consume = ConsumeOptions::for_spec(&spec, options.max_in_flight);
        let reports_js = js.clone();
        tokio::spawn(runtime::consume(
            consumer,
            spec,
            consume,
            stop_rx,
            move |delivery| report_status(publisher.clone(), reports_js.clone(), delivery),
        ));
        Ok(Sandbox {
            js: js.clone(),
            ledger,
            outcomes: options.outcomes,
            ring: options.ring,
            timeout: options.timeout,
            records: Arc::default(),
            instance: format!(
                "{}-{}",
                std::process::id(),
                OffsetDateTime::now_utc().unix_timestamp_nanos()
            ),
            requests: std::sync::atomic::AtomicU64::new(0),
            stop,
        })
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

    /// Every action this sandbox took so far (the ledger stream holds every sandbox's).
    pub fn records(&self) -> Vec<SandboxRecord> {
        match self.records.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Ends `call_id` at this carrier ([`end_call`]).
    pub async fn end_call(&self, tenant: &TenantId, call_id: &str) -> Result<(), BusError> {
        end_call(&self.js, tenant, call_id).await
    }

    /// Whether `call_id` ended at this carrier ([`end_call`]).
    async fn ended(&self, tenant: &TenantId, call_id: &str) -> Result<bool, CarrierError> {
        match self
            .ledger
            .get_last_raw_message_by_subject(&ended_subject(tenant, call_id))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Err(e) => Err(CarrierError::Transient(format!(
                "sandbox carrier unavailable: {e}"
            ))),
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
        // As Twilio: a call that ended cannot be modified (HTTP 400, code 21220).
        if self.ended(&request.tenant, &request.call_id).await? {
            tracing::info!(tenant = %request.tenant, call_id = %request.call_id, step = request.step, "sandbox carrier: the call is not in progress; refused");
            return Err(CarrierError::CallEnded(format!(
                "sandbox carrier: HTTP 400 (code {CALL_NOT_IN_PROGRESS}): Call is not in-progress. Cannot redirect."
            )));
        }
        let now = OffsetDateTime::now_utc();
        let (action, outcome, status_due) = match &request.action {
            Action::Dial { .. } => (
                SandboxAction::Dial,
                Some(self.outcome(request.step)),
                Some(now + self.ring),
            ),
            Action::Final { .. } => (SandboxAction::Final, None, None),
        };
        let entry = SandboxEntry {
            tenant: request.tenant.clone(),
            call_id: request.call_id.clone(),
            step: request.step,
            action,
            outcome,
            accepted_at: now,
            status_due,
            pid: std::process::id(),
        };
        let body = serde_json::to_vec(&entry)
            .map_err(|e| CarrierError::Refused(format!("sandbox carrier: {e}")))?;
        // The status report continues the call's trace (as Twilio's callback would not).
        let mut headers = async_nats::HeaderMap::new();
        otel::context_of(&tracing::Span::current()).inject(&mut headers);
        let subject = format!("sandbox.carrier.{}.{}", action.as_str(), request.tenant);
        self.store(subject, headers, body).await?;
        // The TwiML holds the full number: log what was done with the number in the operator's
        // form (SWITCHBOARD_LOG_NUMBERS).
        let done = match &request.action {
            Action::Dial { numbers, .. } => {
                let logged: Vec<String> = numbers
                    .iter()
                    .map(|n| switchboard_contracts::phone::logged(n).to_string())
                    .collect();
                format!("dial {}", logged.join(", "))
            }
            Action::Final { .. } => "final action".to_string(),
        };
        tracing::info!(
            tenant = %request.tenant,
            call_id = %request.call_id,
            step = request.step,
            action = done,
            outcome = outcome.map(DialCallStatus::as_str),
            "sandbox carrier: call modified"
        );
        let record = SandboxRecord {
            request: request.clone(),
            outcome,
        };
        match self.records.lock() {
            Ok(mut r) => r.push(record),
            Err(poisoned) => poisoned.into_inner().push(record),
        }
        Ok(Accepted {
            sid: Some(format!("SB-{}", request.call_id)),
        })
    }

    /// Stores one entry in the ledger: the moment the sandbox carrier accepts the request.
    /// The sandbox stands for a carrier that stays up when a NATS server does not, so within
    /// the request's timeout it settles for no less than a definite answer: while no stream
    /// answers (a stream leader being elected, a server restarting) or a publish goes
    /// unconfirmed (its server died with it), it publishes again under the same `Nats-Msg-Id`
    /// — stored at most once, confirmed either way. After the timeout: nothing stored for sure,
    /// transient; a publish unconfirmed, unknown (it may be stored, and its status reported).
    async fn store(
        &self,
        subject: String,
        mut headers: async_nats::HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), CarrierError> {
        /// Pause between two attempts while no stream answers.
        const AGAIN: Duration = Duration::from_millis(100);
        /// Longest wait for one publish's confirmation before it is sent again.
        const CONFIRM: Duration = Duration::from_secs(1);
        enum Failed {
            /// Not sent, or no stream answered: nothing stored.
            NotStored(String),
            /// Refused by the server: nothing stored, never will be.
            Refused(String),
            /// Sent, then no confirmation: maybe stored.
            Unknown(String),
        }
        // One id per request: a publish sent again is de-duplicated, a request asked again by
        // the dialer is a new action (and shows twice in the ledger).
        let id = format!(
            "{}-{}",
            self.instance,
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        headers.insert("Nats-Msg-Id", id.as_str());
        let deadline = tokio::time::Instant::now() + self.timeout;
        let body = bytes::Bytes::from(body);
        let mut unconfirmed = None;
        loop {
            let attempt = async {
                let ack = self
                    .js
                    .publish_with_headers(subject.clone(), headers.clone(), body.clone())
                    .await
                    .map_err(|e| Failed::NotStored(e.to_string()))?;
                ack.await.map(drop).map_err(|e| match e.kind() {
                    PublishErrorKind::StreamNotFound => Failed::NotStored(e.to_string()),
                    PublishErrorKind::MaxPayloadExceeded => Failed::Refused(e.to_string()),
                    _ => Failed::Unknown(e.to_string()),
                })
            };
            let confirm_by = deadline.min(tokio::time::Instant::now() + CONFIRM);
            let failed = match tokio::time::timeout_at(confirm_by, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(failed)) => failed,
                Err(_) => Failed::Unknown(format!("no confirmation within {CONFIRM:?}")),
            };
            let reason = match failed {
                Failed::Refused(e) => {
                    return Err(CarrierError::Refused(format!("sandbox carrier: {e}")));
                }
                Failed::NotStored(e) => e,
                Failed::Unknown(e) => {
                    unconfirmed = Some(e.clone());
                    e
                }
            };
            if tokio::time::Instant::now() + AGAIN >= deadline {
                return Err(match unconfirmed {
                    Some(e) => CarrierError::Unknown(format!(
                        "sandbox carrier: no confirmation within {:?}: {e}",
                        self.timeout
                    )),
                    None => CarrierError::Transient(format!(
                        "sandbox carrier unavailable for {:?}: {reason}",
                        self.timeout
                    )),
                });
            }
            tracing::debug!(error = %reason, "sandbox carrier: not stored for sure; trying again");
            tokio::time::sleep(AGAIN).await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stops pulling; the reports in hand are still published when due.
        let _ = self.stop.send(true);
    }
}

/// [`SANDBOX_CONSUMER`]: every dial of every sandbox dialer, no limit on deliveries (a report
/// is never given up).
fn status_reports(ack_wait: Duration) -> PullConsumerSpec {
    PullConsumerSpec {
        name: SANDBOX_CONSUMER,
        stream: SANDBOX_STREAM,
        filter_subject: SANDBOX_DIALS,
        description: "Switchboard sandbox carrier: reports each simulated dial's status when due",
        ack_wait,
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 10_000,
        nak_delays: [1, 2, 5].into_iter().map(Duration::from_secs).collect(),
    }
}

/// Publishes the `call.status` of one stored dial once it is due, then settles the entry. A
/// `canceled` outcome is the sandbox's caller hanging up while the leg rang: the call is ended
/// first ([`end_call`]), so the chain's next request is refused as Twilio refuses it.
async fn report_status(publisher: Publisher, js: jetstream::Context, delivery: Delivery) {
    let message = delivery.message();
    let entry = match serde_json::from_slice::<SandboxEntry>(&message.payload) {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(error = %e, subject = %message.subject, "sandbox carrier: unreadable ledger entry; dropped");
            delivery.settle(AckKind::Term).await;
            return;
        }
    };
    let (Some(outcome), Some(due)) = (entry.outcome, entry.status_due) else {
        delivery.settle(AckKind::Ack).await;
        return;
    };
    // The simulated ringing: the report is due `ring` after the dial was accepted.
    if let Ok(left) = Duration::try_from(due - OffsetDateTime::now_utc()) {
        tokio::time::sleep(left).await;
    }
    if outcome == DialCallStatus::Canceled
        && let Err(e) = end_call(&js, &entry.tenant, &entry.call_id).await
    {
        tracing::warn!(error = %e, call_id = %entry.call_id, "sandbox carrier: failed to end the call; will retry");
        let delay = delivery.nak_delay();
        delivery.settle(AckKind::Nak(Some(delay))).await;
        return;
    }
    let status = CallStatus {
        dial_call_sid: Some(format!("SB{}x{}", entry.step, entry.call_id.len())),
        dial_call_duration: Some(if outcome == DialCallStatus::Completed {
            30
        } else {
            0
        }),
        call_id: entry.call_id,
        tenant_id: entry.tenant,
        step: entry.step,
        dial_call_status: outcome,
        received_at: OffsetDateTime::now_utc(),
    };
    let event = Envelope::new(status, SANDBOX_SOURCE, OffsetDateTime::now_utc());
    let trace = TraceContext::from_headers(message.headers.as_ref());
    match otel::publish(
        &publisher,
        crate::dialer::SERVICE,
        &otel::CALL_STATUS,
        &event,
        &trace,
    )
    .await
    {
        Ok(published) => {
            if published.duplicate {
                tracing::debug!(id = %event.id, "sandbox carrier: status already reported");
            }
            delivery.settle(AckKind::Ack).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, id = %event.id, "sandbox carrier: failed to publish the simulated status; will retry");
            let delay = delivery.nak_delay();
            delivery.settle(AckKind::Nak(Some(delay))).await;
        }
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
