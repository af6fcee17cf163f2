//! The spans of one call's trace, named and attributed after OpenTelemetry's semantic
//! conventions, and W3C trace-context propagation through NATS headers.
//!
//! One trace per call: the gateway's HTTP `server` span → `send call.inbound` (`producer`) →
//! the router's `process call.inbound` (`consumer`) → `send call.route` → the dialer's
//! `process call.route` → `carrier modify_call` (`client`) and `send call.dial`; the sandbox
//! carrier's simulated `send call.status` continues it into the dialer's
//! `process call.status`.
//!
//! **Consumer spans are children of the producer's context and also link to it.** A
//! `process` span handles exactly one message, so the messaging conventions allow the
//! creation context as its parent, which keeps a call in one trace id across the three
//! services; the link is what the conventions require of every consumer span (batch
//! consumers can only link), so backends that follow links see the same edge.
//!
//! Attributes: `messaging.system` = `nats`, `messaging.operation.type` / `.name` = `send` or
//! `process`, `messaging.destination.name` = the subject **template** (`call.inbound.{tenant}`:
//! low cardinality; the tenant is `switchboard.tenant`), `messaging.message.id` = the event
//! id (`Nats-Msg-Id`), `messaging.consumer.group.name` = the durable consumer, and
//! `switchboard.service` = the service that made the span (spans of several services share
//! one exporter when tests run them in one process). No span carries a phone number; one that
//! ever does records it as `switchboard_contracts::phone::logged` shows it (the operator's
//! `SWITCHBOARD_LOG_NUMBERS` form), like the logs.
//!
//! Cost when traces are off: every span here is on the target [`TARGET`], which the log
//! filter always disables and only the trace exporter's layer enables, so the macros return
//! a disabled span at the call site's cached interest check, without evaluating any field, and
//! [`outgoing`] hands the incoming context through without allocating.

use async_nats::jetstream::Message;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Status, TraceContextExt as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::borrow::Cow;
use switchboard_bus::{BusError, NatsHeaders, Published, Publisher, TraceContext};
use switchboard_contracts::{Envelope, EventData};
use tracing::field::Empty;
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The `tracing` target of every span made here: enabled only for the trace exporter.
pub const TARGET: &str = "switchboard_otel";

/// A NATS destination of the CALLS stream, as spans name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The producer span's name, `send <destination>`.
    pub send: &'static str,
    /// The consumer span's name, `process <destination>`.
    pub process: &'static str,
    /// `messaging.destination.name`: the subject template.
    pub template: &'static str,
    /// The subject up to the tenant.
    prefix: &'static str,
}

impl Destination {
    /// The tenant of a subject of this destination (`call.inbound.acme` → `acme`).
    pub fn tenant<'a>(&self, subject: &'a str) -> &'a str {
        subject.strip_prefix(self.prefix).unwrap_or("")
    }
}

macro_rules! destination {
    ($name:ident, $kind:literal, $doc:literal) => {
        #[doc = $doc]
        pub const $name: Destination = Destination {
            send: concat!("send call.", $kind),
            process: concat!("process call.", $kind),
            template: concat!("call.", $kind, ".{tenant}"),
            prefix: concat!("call.", $kind, "."),
        };
    };
}

destination!(
    CALL_INBOUND,
    "inbound",
    "`call.inbound.{tenant}`: calls entering."
);
destination!(CALL_ROUTE, "route", "`call.route.{tenant}`: decisions.");
destination!(
    CALL_STATUS,
    "status",
    "`call.status.{tenant}`: dial outcomes."
);
destination!(CALL_DIAL, "dial", "`call.dial.{tenant}`: dial steps.");
destination!(
    CALL_MISSED,
    "missed",
    "`call.missed.{tenant}`: calls whose chain ended unanswered."
);
destination!(
    CALL_REJECTED,
    "rejected",
    "`call.rejected.{tenant}`: refused input."
);

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// The producer span of sending one event (or one batch of events of one call, with an empty
/// `message_id`) to `dest`; a child of the current span. Inject it with [`outgoing`].
pub fn send(service: &'static str, dest: &Destination, tenant: &str, message_id: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "send",
        "otel.name" = dest.send,
        "otel.kind" = "producer",
        "messaging.system" = "nats",
        "messaging.operation.type" = "send",
        "messaging.operation.name" = "send",
        "messaging.destination.name" = dest.template,
        "messaging.message.id" = Empty,
        "switchboard.service" = service,
        "switchboard.tenant" = tenant,
    );
    if !message_id.is_empty() && !span.is_disabled() {
        span.record("messaging.message.id", message_id);
    }
    span
}

/// Publishes `event` to `dest` under a [`send`] span carrying its context, and waits for
/// JetStream's acknowledgement within it. The span is a child of the current span or, when
/// there is none (a task that continues a trace later), of `incoming`; `incoming` is handed
/// through unchanged when traces are off.
pub async fn publish<T: EventData>(
    publisher: &Publisher,
    service: &'static str,
    dest: &Destination,
    event: &Envelope<T>,
    incoming: &TraceContext,
) -> Result<Published, BusError> {
    let span = send(service, dest, event.data.tenant_id().as_str(), &event.id);
    if !span.is_disabled() && Span::current().is_none() {
        set_parent(&span, incoming);
    }
    let trace = outgoing(&span, incoming);
    let result = publisher
        .publish(event, &trace)
        .instrument(span.clone())
        .await;
    if let Err(e) = &result {
        fail(&span, e);
    }
    result
}

/// The consumer span of processing one delivered `message` of `dest` on the durable
/// `consumer`: a child of the producer's context from the message's headers, and linked to it.
pub fn process(
    service: &'static str,
    dest: &Destination,
    consumer: &'static str,
    message: &Message,
) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "process",
        "otel.name" = dest.process,
        "otel.kind" = "consumer",
        "messaging.system" = "nats",
        "messaging.operation.type" = "process",
        "messaging.operation.name" = "process",
        "messaging.destination.name" = dest.template,
        "messaging.consumer.group.name" = consumer,
        "messaging.message.id" = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map_or("", |v| v.as_str()),
        "messaging.nats.delivery_count" = message.info().map_or(1, |i| i.delivered),
        "switchboard.service" = service,
        "switchboard.tenant" = dest.tenant(message.subject.as_str()),
    );
    if !span.is_disabled()
        && let Some(headers) = &message.headers
    {
        let cx = propagator().extract(&NatsHeaders(headers));
        let producer = cx.span().span_context().clone();
        if producer.is_valid() {
            let _ = span.set_parent(cx);
            span.add_link(producer);
        }
    }
    span
}

/// The server span of one HTTP request (`POST /v1/tenants/{tenant}/calls`), a child of the
/// caller's W3C context when it sent one. Record the answer with [`http_status`].
pub fn http_server(
    service: &'static str,
    method: &str,
    route: &'static str,
    incoming: &TraceContext,
) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "http",
        "otel.name" = format!("{method} {route}"),
        "otel.kind" = "server",
        "http.request.method" = method,
        "http.route" = route,
        "http.response.status_code" = Empty,
        "switchboard.service" = service,
    );
    set_parent(&span, incoming);
    span
}

/// Records the HTTP status of `span` (a 5xx marks it as an error).
pub fn http_status(span: &Span, status: u16) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}

/// The client span of one attempt at a carrier request (`carrier modify_call`).
pub fn carrier(
    service: &'static str,
    carrier: &'static str,
    tenant: &str,
    step: u32,
    attempt: u32,
) -> Span {
    tracing::info_span!(
        target: TARGET,
        "carrier",
        "otel.name" = "carrier modify_call",
        "otel.kind" = "client",
        "switchboard.carrier" = carrier,
        "switchboard.step" = step,
        "switchboard.attempt" = attempt,
        "switchboard.service" = service,
        "switchboard.tenant" = tenant,
    )
}

/// An internal span of `service` (`name` must be a literal-like constant).
pub fn internal(service: &'static str, name: &'static str) -> Span {
    tracing::info_span!(
        target: TARGET,
        "internal",
        "otel.name" = name,
        "switchboard.service" = service,
    )
}

/// Records `attribute` = `value` on an enabled `span` (an attribute not declared at creation;
/// a phone number only as `switchboard_contracts::phone::logged(number).to_string()`).
pub fn attribute(span: &Span, attribute: &'static str, value: impl Into<opentelemetry::Value>) {
    if !span.is_disabled() {
        span.set_attribute(attribute, value);
    }
}

/// Marks `span` as failed, with `reason`.
pub fn fail(span: &Span, reason: impl std::fmt::Display) {
    if !span.is_disabled() {
        span.set_status(Status::error(reason.to_string()));
    }
}

/// Makes `incoming` (a W3C context from a header) the parent of the not yet entered `span`.
pub fn set_parent(span: &Span, incoming: &TraceContext) {
    if span.is_disabled() || incoming.traceparent.is_none() {
        return;
    }
    let cx = propagator().extract(incoming);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace context to send with a message published under `span`: `span`'s own when traces
/// are on, otherwise `incoming` handed through unchanged (so a caller's `traceparent` still
/// reaches the next service), without allocating.
pub fn outgoing<'a>(span: &Span, incoming: &'a TraceContext) -> Cow<'a, TraceContext> {
    if span.is_disabled() {
        return Cow::Borrowed(incoming);
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Cow::Borrowed(incoming);
    }
    let mut out = TraceContext::default();
    propagator().inject_context(&cx, &mut out);
    Cow::Owned(out)
}

/// The W3C context of `span` (empty when traces are off): for work that continues the trace
/// later, without keeping `span` open.
pub fn context_of(span: &Span) -> TraceContext {
    outgoing(span, &TraceContext::default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_name_templates() {
        assert_eq!(CALL_INBOUND.send, "send call.inbound");
        assert_eq!(CALL_ROUTE.process, "process call.route");
        assert_eq!(CALL_DIAL.template, "call.dial.{tenant}");
        assert_eq!(CALL_MISSED.send, "send call.missed");
        assert_eq!(CALL_MISSED.template, "call.missed.{tenant}");
        assert_eq!(CALL_STATUS.tenant("call.status.acme-2"), "acme-2");
        assert_eq!(CALL_STATUS.tenant("call.route.acme"), "");
    }

    #[test]
    fn without_a_subscriber_context_is_handed_through() {
        let incoming = TraceContext {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        };
        let span = send("test", &CALL_INBOUND, "acme", "id");
        assert!(span.is_disabled());
        assert!(matches!(outgoing(&span, &incoming), Cow::Borrowed(t) if *t == incoming));
        assert!(context_of(&span).is_empty());
    }
}
