//! Telemetry set-up shared by every service: structured logs now; OpenTelemetry traces and
//! Prometheus metrics join with the observability issue.
//!
//! Must not: log event payloads or secrets. Phone numbers reach logs only masked
//! (`switchboard_contracts::E164`'s `Display` masks).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Keeps telemetry alive; flushes on drop.
#[must_use = "telemetry is flushed when the guard drops"]
pub struct Guard {
    _private: (),
}

/// Installs the global subscriber for `service`: JSON lines when stderr is not a terminal
/// (containers, CI), human-readable otherwise; filter from `RUST_LOG`, default `info`.
pub fn init(service: &'static str) -> Guard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests running services in-process) keeps the first subscriber.
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    Guard { _private: () }
}
