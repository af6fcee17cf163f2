//! The HTTP API: Twilio's voice webhook, dial status callback and screened legs' whisper, the
//! JSON API for CRM producers, health, metrics and the two static Twilio helpers (ringback
//! audio, hang-up).
//!
//! Every request that publishes answers 2xx only after JetStream acknowledged the event;
//! when NATS cannot store it the answer is 503 with `Retry-After`.

use crate::config::AnswerMode;
use crate::metrics::Metrics;
use crate::signature;
use crate::tenants::{Denied, LiveTenants, TenantSecrets};
use crate::twiml;
use crate::waiters::Waiters;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, Published, Publisher, TraceContext};
use switchboard_contracts::{
    CallInbound, CallStatus, ContractError, DialCallStatus, E164, EntityId, Envelope, EventData,
    Region, TenantId,
};
use switchboard_telemetry::trace::{self as otel, Destination};
use switchboard_twilio::urls;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument as _;

/// `switchboard.service` of the gateway's spans.
const SERVICE: &str = "gateway";
/// The CloudEvents `source` of everything the gateway publishes.
pub const SOURCE: &str = "/switchboard/gateway";
/// `Retry-After` of a 503: NATS usually comes back (or fails over) within seconds.
const RETRY_AFTER_SECS: &str = "1";
/// Header naming the error code of a refused webhook (its TwiML body says it to the caller
/// only in general terms).
pub const ERROR_HEADER: &str = "x-switchboard-error";
/// What a caller hears when a webhook cannot be served.
const CALLER_APOLOGY: &str = "We are sorry, this call cannot be connected right now.";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Everything a request needs.
pub(crate) struct App {
    pub publisher: Publisher,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    /// The tenants' secrets as they are now (reloaded on change and on SIGHUP).
    pub tenants: Arc<LiveTenants>,
    pub public_base: String,
    pub answer_mode: AnswerMode,
    pub sync_deadline: Duration,
    pub publish_timeout: Duration,
    pub ringback_url: String,
    pub dial_timeout_secs: u32,
    pub max_body_bytes: usize,
    pub region: Region,
    pub waiters: Waiters,
    pub metrics: Arc<Metrics>,
    pub ringback_wav: Bytes,
    /// Dial progress, shared with the dialer: the dead-man's switch takes a call's end here.
    pub progress: switchboard_chain::ProgressStore,
    pub no_instruction_timeout_secs: u32,
    pub claim_grace: Duration,
    /// Screened legs offered and accepted (`SCREENING`): see [`crate::screening`].
    pub screening: crate::screening::ScreeningStore,
    /// The companies' caller policies, for refusing at the webhook: see [`crate::callers`].
    pub callers: Arc<crate::callers::CallerPolicies>,
}

type Shared = Arc<App>;

mod call_lookup;
mod settings;

/// The routes.
pub(crate) fn router(app: Shared) -> Router {
    Router::new()
        .route(urls::VOICE_ROUTE, post(twilio_voice))
        .route(urls::DIAL_STATUS_ROUTE, post(twilio_dial_status))
        .route(urls::NO_INSTRUCTION_ROUTE, post(twilio_no_instruction))
        .route(urls::SCREEN_ROUTE, post(twilio_screen))
        .route(urls::SCREEN_RESULT_ROUTE, post(twilio_screen_result))
        .route("/v1/tenants/{tenant}/calls", post(create_call))
        .route(call_lookup::ROUTE, get(call_lookup::get_call))
        .route(
            settings::ROUTE,
            axum::routing::put(settings::put_setting).get(settings::get_setting),
        )
        .route("/v1/assets/ringback.wav", get(ringback_wav))
        .route(urls::HANGUP_ROUTE, get(hangup).post(hangup))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

/// Who the answer is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Twilio: TwiML bodies (a bare 403 for bad signatures).
    Twilio,
    /// CRM producers: JSON `{"code", "reason"}`.
    Json,
}

/// The code of a refused request, left in the response's extensions for the metrics.
#[derive(Debug, Clone, Copy)]
struct Refused(&'static str);

/// A refused request: status, a stable code, a specific reason.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    code: &'static str,
    reason: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            reason: reason.into(),
        }
    }

    fn bad_request(e: &ContractError) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    }

    fn unavailable(reason: impl Into<String>) -> Failure {
        Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", reason)
    }

    fn render(self, flavor: Flavor) -> Response {
        let mut response = match flavor {
            Flavor::Json => (
                self.status,
                [(header::CONTENT_TYPE, JSON)],
                json!({"code": self.code, "reason": self.reason}).to_string(),
            )
                .into_response(),
            // Nothing useful to say to a forger.
            Flavor::Twilio if self.status == StatusCode::FORBIDDEN => self.status.into_response(),
            Flavor::Twilio => (
                self.status,
                [(header::CONTENT_TYPE, twiml::CONTENT_TYPE)],
                twiml::error(CALLER_APOLOGY),
            )
                .into_response(),
        };
        if flavor == Flavor::Twilio
            && let Ok(value) = HeaderValue::from_str(self.code)
        {
            response.headers_mut().insert(ERROR_HEADER, value);
        }
        response.extensions_mut().insert(Refused(self.code));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------

/// The tenant of the path: well-formed (400) and served by this gateway (404), with its
/// secrets as they are now (reloaded on change).
fn tenant(
    app: &App,
    path: Result<Path<String>, PathRejection>,
) -> Result<(TenantId, TenantSecrets), Failure> {
    let tenant = tenant_id(path)?;
    let secrets = served(app, &tenant)?;
    Ok((tenant, secrets))
}

/// The tenant of the path, well-formed (400).
fn tenant_id(path: Result<Path<String>, PathRejection>) -> Result<TenantId, Failure> {
    let Path(raw) =
        path.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_tenant", e.body_text()))?;
    TenantId::new(raw).map_err(|e| Failure::bad_request(&e))
}

/// The secrets of a tenant this gateway serves (404 otherwise).
fn served(app: &App, tenant: &TenantId) -> Result<TenantSecrets, Failure> {
    app.tenants.get().get(tenant).cloned().ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("tenant {tenant} is not served by this gateway"),
        )
    })
}

/// The tenant of a path of the JSON API, whose request must carry one of the tenant's API
/// keys (`Authorization: Bearer …`): 401 without a valid key, 403 with another tenant's —
/// checked before whether the tenant is served, so that an unauthenticated caller learns
/// nothing about which tenants exist. The key is never logged.
fn authorized_tenant(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Result<TenantId, Failure> {
    authorized(app, tenant_id(path)?, headers)
}

/// [`authorized_tenant`] of an already well-formed tenant id.
fn authorized(app: &App, tenant: TenantId, headers: &HeaderMap) -> Result<TenantId, Failure> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match app.tenants.get().authorize(&tenant, authorization) {
        Ok(key_id) => {
            tracing::debug!(%tenant, key_id, "API key accepted");
        }
        Err(denied) => {
            let (status, code) = match denied {
                Denied::OtherTenant => (StatusCode::FORBIDDEN, "forbidden"),
                Denied::Missing | Denied::Unknown => (StatusCode::UNAUTHORIZED, "unauthorized"),
            };
            tracing::warn!(%tenant, reason = %denied, "refused an API request");
            return Err(Failure::new(status, code, denied.to_string()));
        }
    }
    served(app, &tenant)?;
    Ok(tenant)
}

/// The body, if its content type is `expected` (415) and it is not larger than allowed (413).
async fn body(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<Bytes, Failure> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(expected) {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {expected}, got {content_type:?}"),
        ));
    }
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {} bytes", app.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > app.max_body_bytes as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, app.max_body_bytes)
        .await
        .map_err(|_| too_large())
}

/// W3C trace context of the request, carried into the event's headers.
fn trace_context(headers: &HeaderMap) -> TraceContext {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 512)
            .map(str::to_string)
    };
    TraceContext {
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
    }
}

impl App {
    /// Publishes `event` and waits for JetStream's acknowledgement; 503 when NATS cannot
    /// store it now (disconnected, timed out, refused).
    /// The event goes out under a `send` span (a child of the request's span) whose W3C
    /// context it carries; without traces, the caller's `traceparent` is handed through.
    async fn publish<T: EventData>(
        &self,
        event: &Envelope<T>,
        trace: &TraceContext,
        metric: &'static str,
        dest: &Destination,
    ) -> Result<Published, Failure> {
        let span = otel::send(SERVICE, dest, event.data.tenant_id().as_str(), &event.id);
        if self.client.connection_state() != async_nats::connection::State::Connected {
            self.metrics.published(metric, false, Duration::ZERO);
            otel::fail(&span, "not connected to NATS");
            return Err(Failure::unavailable("not connected to NATS; retry later"));
        }
        let trace = otel::outgoing(&span, trace);
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            self.publish_timeout,
            self.publisher
                .publish(event, &trace)
                .instrument(span.clone()),
        )
        .await;
        let took = started.elapsed();
        match &outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => otel::fail(&span, e),
            Err(_) => otel::fail(&span, "publish timed out"),
        }
        match outcome {
            Ok(Ok(published)) => {
                self.metrics.published(metric, true, took);
                if published.duplicate {
                    tracing::info!(id = %event.id, "already stored (duplicate)");
                }
                Ok(published)
            }
            Ok(Err(e)) => {
                self.metrics.published(metric, false, took);
                tracing::warn!(id = %event.id, error = %e, "publish failed");
                Err(Failure::unavailable(
                    "the event could not be stored; retry later",
                ))
            }
            Err(_) => {
                self.metrics.published(metric, false, took);
                tracing::warn!(id = %event.id, "publish timed out");
                Err(Failure::unavailable(
                    "the event store did not acknowledge in time; retry later",
                ))
            }
        }
    }

    /// The signed URL: the public base plus the path and query exactly as received.
    fn public_url(&self, uri: &Uri) -> String {
        let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        format!("{}{}", self.public_base, path)
    }

    /// A Twilio request up to its parameters: tenant, body, signature, account.
    async fn twilio_params(
        &self,
        route: &'static str,
        path: Result<Path<String>, PathRejection>,
        uri: &Uri,
        headers: &HeaderMap,
        raw: Body,
    ) -> Result<(TenantId, Params), Failure> {
        let (tenant, secrets) = tenant(self, path)?;
        let bytes = body(self, headers, raw, FORM).await?;
        let params = Params(form_urlencoded::parse(&bytes).into_owned().collect());
        let signed = headers
            .get(signature::HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| {
                signature::verify(
                    secrets.twilio_auth_token.expose_secret(),
                    &self.public_url(uri),
                    &params.0,
                    sig,
                )
            });
        if !signed {
            self.metrics.signature_failure(route);
            tracing::warn!(%tenant, route, "refused a webhook with a missing or wrong signature");
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "invalid_signature",
                "missing or wrong X-Twilio-Signature",
            ));
        }
        if let Some(account) = &secrets.twilio_account_sid
            && params.get("AccountSid") != Some(account.as_str())
        {
            tracing::warn!(%tenant, route, "refused a webhook of another Twilio account");
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "wrong_account",
                "AccountSid is not the tenant's Twilio account",
            ));
        }
        Ok((tenant, params))
    }

    /// Ringback while the dialer acts on the call, bounded by the dead-man's switch: after the
    /// tenant's no-instruction timeout (whole 6-second cycles of the ringback tone) Twilio asks
    /// the no-instruction endpoint, unless a dialer instruction replaced this answer first.
    fn waiting(&self, tenant: &TenantId) -> String {
        let secs = self
            .tenants
            .get()
            .get(tenant)
            .and_then(|s| s.no_instruction_timeout_secs)
            .unwrap_or(self.no_instruction_timeout_secs);
        let loops = secs.div_ceil(RINGBACK_CYCLE_SECS).max(1);
        twiml::ringback_then_redirect(
            &self.ringback_url,
            loops,
            &urls::no_instruction(&self.public_base, tenant),
        )
    }

    fn twiml(&self, status: StatusCode, xml: String) -> Response {
        (status, [(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], xml).into_response()
    }
}

/// The form parameters, every one, in the order received.
struct Params(Vec<(String, String)>);

impl Params {
    /// The first value of `name`, if non-empty after trimming.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// `To` read in the configured region; a specific reason when it is not a dialable number.
fn dialed_number(raw: &str, region: Region, field: &'static str) -> Result<E164, Failure> {
    E164::accept(field, raw, region).map_err(|e| Failure::bad_request(&e))
}

// ---------------------------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------------------------

async fn twilio_voice(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match voice(&app, path, &uri, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Twilio),
    }
}

async fn voice(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let started = Instant::now();
    let (tenant, params) = app
        .twilio_params("twilio_voice", path, uri, headers, raw)
        .await?;
    if let Some(direction) = params.get("Direction")
        && direction != "inbound"
    {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "not_inbound",
            format!("Direction is {direction:?}; only inbound calls are routed"),
        ));
    }
    let call_id = params
        .get("CallSid")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("CallSid")))?;
    let to = params
        .get("To")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("To")))?;
    let to = dialed_number(to, app.region, "To")?;
    let call = CallInbound {
        call_id: call_id.to_string(),
        tenant_id: tenant.clone(),
        to: to.as_str().to_string(),
        from: params.get("From").unwrap_or("").to_string(),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    };
    call.validate().map_err(|e| Failure::bad_request(&e))?;
    let event = Envelope::new(call, SOURCE, OffsetDateTime::now_utc());

    // Sync mode: listen for the decision before it can possibly be made.
    let waiter = (app.answer_mode == AnswerMode::Sync)
        .then(|| app.waiters.register(&tenant, &event.data.call_id));
    app.publish(
        &event,
        &trace_context(headers),
        "call_inbound",
        &otel::CALL_INBOUND,
    )
    .await?;
    tracing::info!(%tenant, call_id = %event.data.call_id, to = %to.logged(), "call accepted");

    let Some(mut waiter) = waiter else {
        // Stored first: the router records the decision (blocked / anonymous) all the same.
        if let Some(refusal) = app.callers.refusal(&tenant, &event.data.from) {
            app.metrics.webhook_reject(refusal.label());
            tracing::info!(%tenant, call_id = %event.data.call_id, from = %switchboard_contracts::phone::logged(&event.data.from), reason = refusal.label(), "caller refused at the webhook (busy)");
            return Ok(app.twiml(StatusCode::OK, twiml::reject()));
        }
        return Ok(app.twiml(StatusCode::OK, app.waiting(&tenant)));
    };
    // A redirect after a missed deadline: the caller is connected and hears nothing while this
    // request waits, so it waits briefly (a decision that already came is answered at once).
    let attempt = sync_attempt(uri);
    let budget = if attempt > 1 {
        app.sync_deadline.min(REDIRECT_WAIT)
    } else {
        app.sync_deadline
    };
    let left = budget.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, &mut waiter.decision).await {
        Ok(Ok(route)) => {
            let outcome = if route.target.is_some() {
                "dial"
            } else {
                "final_action"
            };
            app.metrics.sync_answer(outcome);
            // Step 0, as the dialer would have rung it (the same TwiML and callback URLs).
            let xml = twiml::route(
                &route,
                &urls::dial_status(&app.public_base, &tenant, 0),
                app.dial_timeout_secs,
                &urls::hangup(&app.public_base),
            );
            Ok(app.twiml(StatusCode::OK, xml))
        }
        _ if attempt >= MAX_SYNC_ATTEMPTS => {
            app.metrics.sync_answer("gave_up");
            tracing::warn!(%tenant, call_id = %event.data.call_id, attempt, "no decision after every redirect; apologizing and hanging up");
            Ok(app.twiml(StatusCode::OK, twiml::error(NO_DECISION)))
        }
        _ => {
            // Not the plain async ringback: in sync mode the dialer leaves step 0 to the
            // gateway, so the gateway must come back for the decision.
            app.metrics.sync_answer(if attempt > 1 {
                "still_waiting"
            } else {
                "deadline"
            });
            tracing::info!(%tenant, call_id = %event.data.call_id, attempt, "no decision yet; ringback, then asking again");
            let next = urls::voice_redirect(&app.public_url(uri), attempt + 1);
            Ok(app.twiml(
                StatusCode::OK,
                twiml::ringback_then_redirect(&app.ringback_url, SYNC_RINGBACK_LOOPS, &next),
            ))
        }
    }
}

/// Sync mode: redirects (one ringback cycle each, 6 s with the built-in tone) before the
/// gateway gives up on a decision.
const MAX_SYNC_ATTEMPTS: u32 = 10;
/// Sync mode: ringback cycles before each redirect back to the voice webhook.
const SYNC_RINGBACK_LOOPS: u32 = 1;
/// Sync mode: longest wait for the decision on a redirected request.
const REDIRECT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Said before hanging up when no decision came in time.
const NO_DECISION: &str =
    "We are sorry, we could not connect your call right now. Please call again later.";

/// Which sync attempt a voice request is: `attempt` in its query string, else the first.
fn sync_attempt(uri: &Uri) -> u32 {
    uri.query()
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == urls::ATTEMPT_PARAM)
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

async fn twilio_dial_status(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match dial_status(&app, path, &uri, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Twilio),
    }
}

async fn dial_status(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let (tenant, params) = app
        .twilio_params("twilio_dial_status", path, uri, headers, raw)
        .await?;
    let step = step_param(uri)?;
    let call_id = params
        .get("CallSid")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("CallSid")))?;
    let raw_status = params
        .get("DialCallStatus")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("DialCallStatus")))?;
    let mut dial_call_status = DialCallStatus::from_twilio(raw_status).ok_or_else(|| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_dial_call_status",
            format!("DialCallStatus {raw_status:?} is not completed, busy, no-answer, failed or canceled"),
        )
    })?;
    // A whisper that ended without the key ends an answered leg, which Twilio may report as
    // `completed`: a screened step offered and never accepted counts as no answer.
    if dial_call_status == DialCallStatus::Completed {
        let key = crate::screening::key(&tenant, call_id, step);
        let screened = app
            .screening
            .get(&key)
            .await
            .map_err(|e| Failure::unavailable(format!("the screening store failed: {e}")))?;
        if screened == Some(crate::screening::Screened::Offered) {
            app.metrics.screening("not_accepted");
            tracing::info!(%tenant, %call_id, step, "a screened leg ended without acceptance: no answer");
            dial_call_status = DialCallStatus::NoAnswer;
        }
    }
    let dial_call_duration = params
        .get("DialCallDuration")
        .map(|d| {
            d.parse::<u32>().map_err(|_| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("DialCallDuration {d:?} is not a number of seconds"),
                )
            })
        })
        .transpose()?;
    let status = CallStatus {
        call_id: call_id.to_string(),
        tenant_id: tenant.clone(),
        step,
        dial_call_status,
        dial_call_sid: params.get("DialCallSid").map(str::to_string),
        dial_call_duration,
        received_at: OffsetDateTime::now_utc(),
    };
    status.validate().map_err(|e| Failure::bad_request(&e))?;
    let event = Envelope::new(status, SOURCE, OffsetDateTime::now_utc());
    app.publish(
        &event,
        &trace_context(headers),
        "call_status",
        &otel::CALL_STATUS,
    )
    .await?;
    tracing::info!(%tenant, call_id = %event.data.call_id, step, status = dial_call_status.as_str(), "dial status recorded");
    // A bridged call that ended is over; otherwise the caller keeps hearing ringback while the
    // dialer moves the live call on (next fallback or the final action).
    let xml = if dial_call_status == DialCallStatus::Completed {
        twiml::hangup()
    } else {
        app.waiting(&tenant)
    };
    Ok(app.twiml(StatusCode::OK, xml))
}

/// `step` of the query string: 0 the target, 1.. the fallbacks (400 `invalid_step` otherwise).
fn step_param(uri: &Uri) -> Result<u32, Failure> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == urls::STEP_PARAM)
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .ok_or_else(|| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_step",
                "the query parameter `step` (0 the target, 1.. the fallbacks) is missing or not a number",
            )
        })
}

async fn twilio_screen(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match screen(&app, path, &uri, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Twilio),
    }
}

/// The caller's call of a screened leg's request: `ParentCallSid` (the request itself is on
/// the called party's leg), and the step.
fn screened_leg(
    tenant: &TenantId,
    uri: &Uri,
    params: &Params,
) -> Result<(String, u32, String), Failure> {
    let step = step_param(uri)?;
    let parent = params
        .get("ParentCallSid")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("ParentCallSid")))?;
    let key = crate::screening::key(tenant, parent, step);
    Ok((parent.to_string(), step, key))
}

/// A screened leg picked up (`<Number url>`): the whisper, once the offer is recorded (see
/// [`crate::screening`]; unrecorded, the leg is connected unscreened, which keeps its dial
/// status truthful).
async fn screen(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let (tenant, params) = app
        .twilio_params("twilio_screen", path, uri, headers, raw)
        .await?;
    let (call_id, step, key) = screened_leg(&tenant, uri, &params)?;
    if let Err(e) = app.screening.offer(&key).await {
        app.metrics.screening("unscreened");
        tracing::warn!(%tenant, %call_id, step, error = %e, "cannot record a screened leg; connecting it unscreened");
        return Ok(app.twiml(StatusCode::OK, twiml::proceed()));
    }
    app.metrics.screening("whisper");
    tracing::info!(%tenant, %call_id, step, "screened leg picked up: whisper");
    let prompt =
        format!("Incoming call for {tenant}. Press 1 to accept the call, or hang up to decline.");
    let action = urls::screen_result(&app.public_base, &tenant, step);
    Ok(app.twiml(StatusCode::OK, twiml::whisper(&prompt, &action)))
}

async fn twilio_screen_result(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match screen_result(&app, path, &uri, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Twilio),
    }
}

/// The whisper's key: 1 records the acceptance, then answers the empty document that bridges
/// the caller (unrecorded: 503, the leg ends unbridged, counted as no answer); any other key
/// hangs the leg up.
async fn screen_result(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let (tenant, params) = app
        .twilio_params("twilio_screen_result", path, uri, headers, raw)
        .await?;
    let (call_id, step, key) = screened_leg(&tenant, uri, &params)?;
    if params.get("Digits") != Some("1") {
        app.metrics.screening("declined");
        tracing::info!(%tenant, %call_id, step, "screened leg declined");
        return Ok(app.twiml(StatusCode::OK, twiml::hangup()));
    }
    app.screening.accept(&key).await.map_err(|e| {
        tracing::warn!(%tenant, %call_id, step, error = %e, "cannot record an accepted screened leg; ending it");
        Failure::unavailable("the acceptance could not be stored; retry later")
    })?;
    app.metrics.screening("accepted");
    tracing::info!(%tenant, %call_id, step, "screened leg accepted");
    Ok(app.twiml(StatusCode::OK, twiml::proceed()))
}

/// Length of one cycle of the ringback tone (`ringback.rs`): the unit of the dead-man's bound.
const RINGBACK_CYCLE_SECS: u32 = 6;

async fn twilio_no_instruction(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match no_instruction(&app, path, &uri, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Twilio),
    }
}

/// The dead-man's switch: the caller heard ringback for the whole bound and no dialer
/// instruction replaced it. Takes the call's end in `DIAL_PROGRESS` (compare-and-swap, as the
/// dialer does: whoever takes it first wins), records it as the gateway's `call.dial`, and
/// answers the final action — the decision's when the dialer stored one, else the default
/// apology with voicemail. A dialer whose claim is young is at the carrier: one more ringback
/// cycle, up to the claim grace.
async fn no_instruction(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let (tenant, params) = app
        .twilio_params("twilio_no_instruction", path, uri, headers, raw)
        .await?;
    let call_id = params
        .get("CallSid")
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("CallSid")))?
        .to_string();
    let attempt = sync_attempt(uri);
    let grace_cycles = u32::try_from(app.claim_grace.as_secs())
        .unwrap_or(u32::MAX)
        .div_ceil(RINGBACK_CYCLE_SECS);
    // Past the grace the claim's dialer is presumed gone, however young its claim looks.
    let claim_grace = if attempt > grace_cycles {
        Duration::ZERO
    } else {
        app.claim_grace
    };
    let fallback = switchboard_contracts::CallRoute {
        call_id: call_id.clone(),
        tenant_id: tenant.clone(),
        rule: switchboard_contracts::Rule::NoRoute,
        target: None,
        fallbacks: Vec::new(),
        final_action: switchboard_contracts::FinalAction::default(),
        reasons: Vec::new(),
        explanation: Vec::new(),
        settings_seq: 0,
        calls_seq: 0,
        caller: None,
        decided_at: OffsetDateTime::now_utc(),
    };
    let key = switchboard_chain::key(&tenant, &call_id);
    let hangup_url = urls::hangup(&app.public_base);
    loop {
        let read = match app.progress.get(&key).await {
            Ok(read) => read,
            Err(e) => {
                // Nothing can be recorded; the caller still must not be left in silence.
                app.metrics.dead_man("unrecorded");
                tracing::error!(%tenant, %call_id, error = %e, "dead-man's switch: the progress store is unreachable; playing the default final action unrecorded");
                return Ok(app.twiml(
                    StatusCode::OK,
                    twiml::final_action(&fallback.final_action, &hangup_url),
                ));
            }
        };
        let (current, revision) = match read {
            Some((p, r)) => (Some(p), Some(r)),
            None => (None, None),
        };
        let clock = switchboard_chain::Clock {
            now: OffsetDateTime::now_utc(),
            stale_after: claim_grace,
        };
        let input = switchboard_chain::Input::DeadMan {
            fallback: &fallback,
            claim_grace,
        };
        match switchboard_chain::next(current.as_ref(), input, clock) {
            switchboard_chain::Verdict::Later(why) => {
                app.metrics.dead_man("waited");
                tracing::info!(%tenant, %call_id, attempt, reason = %why, "dead-man's switch: a dialer is still acting; one more ringback cycle");
                let next = urls::voice_redirect(&app.public_url(uri), attempt + 1);
                return Ok(app.twiml(
                    StatusCode::OK,
                    twiml::ringback_then_redirect(&app.ringback_url, 1, &next),
                ));
            }
            switchboard_chain::Verdict::Unchanged => {
                app.metrics.dead_man("already_over");
                let xml = match current {
                    Some(p) if p.state == switchboard_chain::StepState::Answered => twiml::hangup(),
                    Some(p) => twiml::final_action(&p.decision.final_action, &hangup_url),
                    None => twiml::final_action(&fallback.final_action, &hangup_url),
                };
                return Ok(app.twiml(StatusCode::OK, xml));
            }
            switchboard_chain::Verdict::Write(next) => {
                let written = app.progress.put(&key, &next, revision).await.map_err(|e| {
                    Failure::unavailable(format!("the dial progress store failed: {e}"))
                })?;
                if written.is_none() {
                    continue; // a dialer moved the call meanwhile: look again
                }
                let before = current.as_ref().map_or(0, |p| p.events.len());
                let trace = trace_context(headers);
                for data in &next.events[before..] {
                    let event = Envelope::new(data.clone(), SOURCE, data.at);
                    // Recorded in DIAL_PROGRESS already: a dialer re-publishes it if this fails.
                    if let Err(e) = app
                        .publish(&event, &trace, "call_dial", &otel::CALL_DIAL)
                        .await
                    {
                        tracing::warn!(%tenant, %call_id, reason = %e.reason, "dead-man's switch: call.dial not stored yet");
                    }
                }
                // The chain ended unanswered here: its `call.missed`, recorded by the same write
                // (same id at every publication, as the dialer publishes it: stored once).
                if let Some(missed) = &next.missed {
                    let event = Envelope::new(missed.clone(), SOURCE, missed.at);
                    if let Err(e) = app
                        .publish(&event, &trace, "call_missed", &otel::CALL_MISSED)
                        .await
                    {
                        tracing::warn!(%tenant, %call_id, reason = %e.reason, "dead-man's switch: call.missed not stored yet");
                    }
                }
                app.metrics.dead_man("took_end");
                tracing::warn!(%tenant, %call_id, "dead-man's switch: no dialer instruction reached the call; the gateway plays its final action");
                return Ok(app.twiml(
                    StatusCode::OK,
                    twiml::final_action(&next.decision.final_action, &hangup_url),
                ));
            }
        }
    }
}

async fn ringback_wav(State(app): State<Shared>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        app.ringback_wav.clone(),
    )
        .into_response()
}

async fn hangup() -> Response {
    (
        [(header::CONTENT_TYPE, twiml::CONTENT_TYPE)],
        twiml::hangup(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// JSON API
// ---------------------------------------------------------------------------------------------

/// The `call.inbound` data as a CRM producer sends it; `tenant_id` and `received_at` are
/// optional (the path's tenant, the time of the request).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    received_at: Option<String>,
    #[serde(default)]
    contact_id: Option<String>,
}

async fn create_call(
    State(app): State<Shared>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    match call(&app, path, &headers, raw).await {
        Ok(response) => response,
        Err(failure) => failure.render(Flavor::Json),
    }
}

async fn call(
    app: &App,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    raw: Body,
) -> Result<Response, Failure> {
    let tenant = authorized_tenant(app, path, headers)?;
    let bytes = body(app, headers, raw, JSON).await?;
    // Strictly: a JSON object (serde's derive would also take an array, field by field), no
    // unknown field (named, with the fields allowed), a wrong type named.
    let request: CallRequest = switchboard_contracts::strict::from_slice(&bytes).map_err(|e| {
        Failure::bad_request(&match e {
            ContractError::Malformed(reason) => ContractError::Malformed(format!(
                "the body is not a call.inbound data object: {reason}"
            )),
            other => other,
        })
    })?;
    if let Some(named) = &request.tenant_id
        && named != tenant.as_str()
    {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "tenant_mismatch",
            format!("tenant_id {named:?} is not the tenant of the path ({tenant})"),
        ));
    }
    let call_id = request
        .call_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("call_id")))?;
    let to = request
        .to
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Failure::bad_request(&ContractError::Missing("to")))?;
    let to = dialed_number(&to, app.region, "to")?;
    let received_at = match &request.received_at {
        None => OffsetDateTime::now_utc(),
        Some(at) => OffsetDateTime::parse(at, &Rfc3339).map_err(|e| {
            Failure::bad_request(&ContractError::Malformed(format!(
                "`received_at` is not RFC 3339: {e}"
            )))
        })?,
    };
    let contact_id = request
        .contact_id
        .map(|c| EntityId::parse("contact_id", c))
        .transpose()
        .map_err(|e| Failure::bad_request(&e))?;
    let data = CallInbound {
        call_id,
        tenant_id: tenant.clone(),
        to: to.as_str().to_string(),
        from: request.from.unwrap_or_default(),
        received_at,
        contact_id,
    };
    data.validate().map_err(|e| Failure::bad_request(&e))?;
    let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
    let published = app
        .publish(
            &event,
            &trace_context(headers),
            "call_inbound",
            &otel::CALL_INBOUND,
        )
        .await?;
    tracing::info!(%tenant, call_id = %event.data.call_id, duplicate = published.duplicate, "call accepted from the API");
    Ok((
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, JSON)],
        json!({
            "id": event.id,
            "duplicate": published.duplicate,
            "stream": published.stream,
            "sequence": published.sequence,
        })
        .to_string(),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Health and metrics
// ---------------------------------------------------------------------------------------------

async fn readyz(State(app): State<Shared>) -> (StatusCode, &'static str) {
    if app.client.connection_state() != async_nats::connection::State::Connected {
        return (StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS\n");
    }
    if !app.callers.caught_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "catching up with the companies' settings\n",
        );
    }
    match tokio::time::timeout(Duration::from_secs(2), app.js.get_stream(CALLS)).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n"),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the CALLS stream is not reachable\n",
        ),
    }
}

async fn metrics_text(State(app): State<Shared>) -> Response {
    app.metrics.render().into_response()
}

/// The route label of a path, for metrics (never the tenant: bounded cardinality).
fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        "/v1/assets/ringback.wav" => "ringback",
        "/v1/twiml/hangup" => "hangup",
        p if p.starts_with("/v1/tenants/") && p.ends_with("/twilio/voice") => "twilio_voice",
        p if p.starts_with("/v1/tenants/") && p.ends_with("/twilio/dial-status") => {
            "twilio_dial_status"
        }
        p if p.starts_with("/v1/tenants/") && p.ends_with("/twilio/no-instruction") => {
            "twilio_no_instruction"
        }
        p if p.starts_with("/v1/tenants/") && p.ends_with("/twilio/screen") => "twilio_screen",
        p if p.starts_with("/v1/tenants/") && p.ends_with("/twilio/screen-result") => {
            "twilio_screen_result"
        }
        p if p.starts_with("/v1/tenants/") && p.ends_with("/calls") => "calls",
        p if p.starts_with("/v1/tenants/") && p.contains("/calls/") => "call_lookup",
        p if p.starts_with("/v1/tenants/") && p.contains("/settings/") => "settings",
        _ => "other",
    }
}

/// The path template of a route that publishes (the HTTP span's `http.route`); `None` for
/// probes, metrics and static answers, which get no span.
fn traced_route(route: &'static str) -> Option<&'static str> {
    match route {
        "twilio_voice" => Some(urls::VOICE_ROUTE),
        "twilio_dial_status" => Some(urls::DIAL_STATUS_ROUTE),
        "twilio_no_instruction" => Some(urls::NO_INSTRUCTION_ROUTE),
        "calls" => Some("/v1/tenants/{tenant}/calls"),
        _ => None,
    }
}

async fn track(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    let span = match traced_route(route) {
        Some(template) => otel::http_server(
            SERVICE,
            request.method().as_str(),
            template,
            &trace_context(request.headers()),
        ),
        None => tracing::Span::none(),
    };
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    otel::http_status(&span, status);
    app.metrics.request(route, status);
    if let Some(Refused(code)) = response.extensions().get::<Refused>().copied() {
        app.metrics.rejection(route, code);
    }
    response
}
