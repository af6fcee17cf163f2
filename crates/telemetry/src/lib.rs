//! Telemetry shared by every service: structured logs, OpenTelemetry traces exported over
//! OTLP/HTTP, and the Prometheus plumbing (`/metrics` rendering).
//!
//! - **Logs** go to stderr: JSON lines when stderr is not a terminal (containers, CI),
//!   human-readable on one; filter from `RUST_LOG` (default `info`).
//! - **Traces** are on only when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`, and
//!   `OTEL_TRACES_EXPORTER` is not `none`). Off, no exporter, thread or provider exists and the
//!   spans of [`trace`] are disabled at their call site (no allocation). On, spans go through
//!   `tracing-opentelemetry` to a batch span processor and the OTLP/HTTP protobuf exporter;
//!   every other setting comes from the standard variables (`OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`,
//!   `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` / `TIMEOUT`). The [`Guard`] flushes on shutdown.
//! - **Metrics**: each service owns a `prometheus_client` registry; [`metrics`] renders it.
//!
//! - **Phone numbers** reach logs and span attributes only through
//!   `switchboard_contracts::phone::logged` / `E164::logged`, in the form the operator chose
//!   with `SWITCHBOARD_LOG_NUMBERS` ([`init`] reads it): `masked` (`+14*******10`, the default)
//!   or `last-four` (`+1******5310`, for support staff matching a number to a CRM record).
//!   Anything else that prints an `E164` (`Display`, `Debug`) is masked whatever the setting.
//!
//! Must not: log event payloads or secrets (exporter headers are never logged, endpoints are
//! logged without user info or query), or a phone number in any other form than the above.

pub mod metrics;
pub mod trace;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::io::IsTerminal;
use std::time::Duration;
use switchboard_contracts::phone::LogForm;
use tracing_subscriber::filter::{Directive, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Keeps telemetry alive; flushes and stops the trace exporter when dropped (or
/// [`Guard::shutdown`]).
#[must_use = "telemetry is flushed when the guard drops"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether traces are exported.
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every finished span now (blocks until the exporter answered or timed out).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }

    /// Flushes and stops the trace exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing traces at shutdown failed");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where and how traces are exported; `None` from [`TraceExport::from_env`] means off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceExport {
    /// The full OTLP/HTTP traces URL (`…/v1/traces`). `None`: the exporter reads
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (+
    /// `/v1/traces`).
    pub endpoint: Option<String>,
    /// Delay between two batch exports. `None`: `OTEL_BSP_SCHEDULE_DELAY`, default 5 s.
    pub batch_delay: Option<Duration>,
}

impl TraceExport {
    /// Traces as the standard `OTEL_*` environment variables say: `None` (off) unless an OTLP
    /// endpoint is set.
    pub fn from_env() -> Option<TraceExport> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<TraceExport> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return None;
        }
        if let Some(exporter) = set("OTEL_TRACES_EXPORTER")
            && !exporter.split(',').any(|e| e.trim() == "otlp")
        {
            return None;
        }
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        endpoint.map(|_| TraceExport::default())
    }
}

/// The environment variable that chooses how phone numbers appear in logs and traces.
pub const LOG_NUMBERS_ENV: &str = "SWITCHBOARD_LOG_NUMBERS";

/// A telemetry setting the operator got wrong: the service does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelemetryError {
    /// `SWITCHBOARD_LOG_NUMBERS` names no form.
    LogNumbers(String),
}

impl std::fmt::Display for TelemetryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LogNumbers(value) => write!(
                f,
                "{LOG_NUMBERS_ENV}={value:?} is not a phone-number form for logs and traces; \
                 use masked (the default) or last-four"
            ),
        }
    }
}

impl std::error::Error for TelemetryError {}

/// The form `SWITCHBOARD_LOG_NUMBERS` names: unset or empty is the default (masked); anything
/// but `masked` and `last-four`, exactly, is an error (a typo must not pass unnoticed).
pub fn log_numbers(value: Option<&str>) -> Result<LogForm, TelemetryError> {
    match value {
        None | Some("") => Ok(LogForm::default()),
        Some(name) => LogForm::parse(name).ok_or_else(|| TelemetryError::LogNumbers(name.into())),
    }
}

/// Installs logs and, when the `OTEL_*` environment asks for it, trace export for `service`
/// (the default `service.name`; `OTEL_SERVICE_NAME` overrides it), and sets the process's form
/// of phone numbers in logs and traces from `SWITCHBOARD_LOG_NUMBERS`. Every service calls it
/// first thing; an unknown form is an error (the service does not start).
pub fn init(service: &'static str) -> Result<Guard, TelemetryError> {
    let form = log_numbers(std::env::var(LOG_NUMBERS_ENV).ok().as_deref())?;
    switchboard_contracts::phone::set_log_form(form);
    Ok(init_with(service, TraceExport::from_env()))
}

/// [`init`] with an explicit trace configuration (`None`: off), for tests, which cannot set
/// environment variables safely. Installs the process-wide subscriber once: a second call
/// (services run in-process by tests) keeps the first one and returns an inert guard.
pub fn init_with(service: &'static str, traces: Option<TraceExport>) -> Guard {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The per-call spans are for the trace exporter only, never for the log lines: disabled at
    // their call site when traces are off, whatever RUST_LOG says.
    if let Ok(directive) = format!("{}=off", trace::TARGET).parse::<Directive>() {
        filter = filter.add_directive(directive);
    }
    let fmt = if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .boxed()
    };

    let mut problems = Vec::new();
    let provider = traces.and_then(|export| match provider(service, &export) {
        Ok(provider) => Some(provider),
        Err(e) => {
            problems.push(format!("traces are off: {e}"));
            None
        }
    });
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("switchboard"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target(trace::TARGET, LevelFilter::TRACE))
    });
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .is_ok();
    for problem in problems {
        tracing::warn!("{problem}");
    }
    if !installed {
        // A second init in one process: the first subscriber (and its exporter) stays.
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Guard { provider: None };
    }
    let numbers = switchboard_contracts::phone::log_form().as_str();
    match &provider {
        Some(_) => tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            traces = %trace_destination(),
            numbers,
            "starting"
        ),
        None => tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            numbers,
            "starting"
        ),
    }
    Guard { provider }
}

fn provider(service: &'static str, export: &TraceExport) -> Result<SdkTracerProvider, String> {
    if let Some(protocol) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .ok()
        .filter(|p| !p.trim().is_empty() && p.trim() != "http/protobuf")
    {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?} is not supported (only http/protobuf)"
        ));
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(endpoint) = &export.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let exporter = builder
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let mut batch = BatchConfigBuilder::default();
    if let Some(delay) = export.batch_delay {
        batch = batch.with_scheduled_delay(delay);
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch.build())
        .build();
    // `Resource::builder` reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").map_or(true, |s| s.trim().is_empty()) {
        resource = resource.with_service_name(service);
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    // The sampler comes from OTEL_TRACES_SAMPLER (default parentbased_always_on).
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// Where traces go, for the start-up log line: the endpoint without user info or query.
fn trace_destination() -> String {
    let configured = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_else(|_| "(set by the caller)".into());
    redact_url(&configured)
}

/// `scheme://host[:port]/path` of `url`: no user info, query or fragment.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(TraceExport::from_vars(vars(&[])), None);
        assert_eq!(
            TraceExport::from_vars(vars(&[
                ("OTEL_SERVICE_NAME", "x"),
                ("OTEL_TRACES_SAMPLER", "always_on")
            ])),
            None
        );
        assert_eq!(
            TraceExport::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            None
        );
        assert!(
            TraceExport::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]))
                .is_some()
        );
        assert!(
            TraceExport::from_vars(vars(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )]))
            .is_some()
        );
        assert_eq!(
            TraceExport::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])),
            None
        );
        assert_eq!(
            TraceExport::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])),
            None
        );
    }

    #[test]
    fn endpoints_are_logged_without_credentials() {
        assert_eq!(
            redact_url("https://user:secret@otel.example:4318/v1/traces?token=x"),
            "https://otel.example:4318/v1/traces"
        );
        assert_eq!(redact_url("http://c:4318"), "http://c:4318");
    }

    #[test]
    fn the_phone_number_form_is_read_strictly() {
        assert_eq!(log_numbers(None), Ok(LogForm::Masked));
        assert_eq!(log_numbers(Some("")), Ok(LogForm::Masked));
        assert_eq!(log_numbers(Some("masked")), Ok(LogForm::Masked));
        assert_eq!(log_numbers(Some("last-four")), Ok(LogForm::LastFour));
        let err = log_numbers(Some("last4")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SWITCHBOARD_LOG_NUMBERS=\"last4\" is not a phone-number form for logs and traces; \
             use masked (the default) or last-four"
        );
        assert!(log_numbers(Some("Last-Four")).is_err());
    }
}
