//! One call's trace across the three services, as an OTLP/HTTP collector receives it.
//!
//! The services share this process, so they share one tracer provider (resource
//! `service.name` = `switchboard-e2e`); each span says which service made it in
//! `switchboard.service`, which is what the assertions separate services by.

use crate::otlp::{KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, Receiver, Span};
use crate::support::*;
use std::time::Duration;
use switchboard_telemetry::TraceExport;
use switchboard_testkit::eventually;

/// Every span of one answered call (sandbox: step 0 answers), by name.
const CHAIN: [&str; 9] = [
    "POST /v1/tenants/{tenant}/calls",
    "send call.inbound",
    "process call.inbound",
    "send call.route",
    "process call.route",
    "carrier modify_call",
    "send call.dial",
    "send call.status",
    "process call.status",
];

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert!(!found.is_empty(), "no span {name:?} in {spans:#?}");
    found[0]
}

/// The spans of the trace whose router span processed `call_id`, once all of [`CHAIN`] arrived.
async fn trace_of(receiver: &Receiver, call_id: &str) -> Vec<Span> {
    let message_id = format!("{TENANT}:{call_id}:inbound");
    eventually(WAIT, &format!("the whole trace of {call_id}"), || async {
        let spans = receiver.spans();
        let trace_id = spans
            .iter()
            .find(|s| {
                s.name == "process call.inbound"
                    && s.attr("messaging.message.id") == Some(message_id.as_str())
            })?
            .trace_id
            .clone();
        let trace: Vec<Span> = spans
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect();
        CHAIN
            .iter()
            .all(|name| trace.iter().any(|s| s.name == *name))
            .then_some(trace)
    })
    .await
    .unwrap_or_else(|e| {
        let received: Vec<(String, String, String)> = receiver
            .spans()
            .into_iter()
            .map(|s| {
                let service = s.attr("switchboard.service").unwrap_or("").to_string();
                (s.trace_id, s.name, service)
            })
            .collect();
        panic!("{e}; received {received:#?}")
    })
}

fn assert_child(child: &Span, parent: &Span) {
    assert_eq!(
        child.parent_span_id, parent.span_id,
        "{:?} is not a child of {:?}",
        child.name, parent.name
    );
    assert_eq!(child.trace_id, parent.trace_id);
}

/// A consumer span: child of the producer's span and linked to it.
fn assert_consumes(consumer: &Span, producer: &Span) {
    assert_child(consumer, producer);
    assert!(
        consumer
            .links
            .contains(&(producer.trace_id.clone(), producer.span_id.clone())),
        "{:?} does not link to {:?}: {:?}",
        consumer.name,
        producer.name,
        consumer.links
    );
}

fn assert_messaging(span: &Span, operation: &str, template: &str, service: &str) {
    assert_eq!(span.attr("messaging.system"), Some("nats"), "{span:?}");
    assert_eq!(
        span.attr("messaging.operation.type"),
        Some(operation),
        "{span:?}"
    );
    assert_eq!(
        span.attr("messaging.destination.name"),
        Some(template),
        "{span:?}"
    );
    assert_eq!(span.attr("switchboard.service"), Some(service), "{span:?}");
    assert_eq!(span.attr("switchboard.tenant"), Some(TENANT), "{span:?}");
    let kind = if operation == "send" {
        KIND_PRODUCER
    } else {
        KIND_CONSUMER
    };
    assert_eq!(span.kind, kind, "{span:?}");
}

/// Given the three services exporting to one OTLP/HTTP receiver, when a call is placed through
/// the gateway, then one trace holds the gateway's request, the router's decision and the
/// dialer's carrier request and dial events, with each consumer span a child of (and linked to)
/// its producer's span, messaging attributes after the conventions, and no phone number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_call_across_the_three_services() {
    let (receiver, endpoint) = Receiver::start().await;
    let guard = switchboard_telemetry::init_with(
        "switchboard-e2e",
        Some(TraceExport {
            endpoint: Some(endpoint),
            batch_delay: Some(Duration::from_millis(100)),
        }),
    );
    assert!(guard.tracing(), "the trace exporter is installed");
    let stack = Stack::start().await;

    assert_eq!(stack.call("e2e-trace-1", None).await, 202);
    let spans = trace_of(&receiver, "e2e-trace-1").await;

    // Gateway: the HTTP request is the root; the event is sent under it.
    let http = one(&spans, CHAIN[0]);
    assert_eq!(http.kind, KIND_SERVER);
    assert_eq!(
        http.parent_span_id, "",
        "the request span is the trace's root"
    );
    assert_eq!(http.attr("http.request.method"), Some("POST"));
    assert_eq!(http.attr("http.route"), Some("/v1/tenants/{tenant}/calls"));
    assert_eq!(http.attr("http.response.status_code"), Some("202"));
    assert_eq!(http.attr("switchboard.service"), Some("gateway"));
    let send_inbound = one(&spans, "send call.inbound");
    assert_child(send_inbound, http);
    assert_messaging(send_inbound, "send", "call.inbound.{tenant}", "gateway");
    assert_eq!(
        send_inbound.attr("messaging.message.id"),
        Some("acme:e2e-trace-1:inbound")
    );

    // Router: processes the inbound event, sends the decision under it.
    let process_inbound = one(&spans, "process call.inbound");
    assert_consumes(process_inbound, send_inbound);
    assert_messaging(
        process_inbound,
        "process",
        "call.inbound.{tenant}",
        "router",
    );
    assert_eq!(
        process_inbound.attr("messaging.consumer.group.name"),
        Some("router")
    );
    let send_route = one(&spans, "send call.route");
    assert_child(send_route, process_inbound);
    assert_messaging(send_route, "send", "call.route.{tenant}", "router");

    // Dialer: processes the decision, asks the carrier, records the dial events.
    let process_route = one(&spans, "process call.route");
    assert_consumes(process_route, send_route);
    assert_messaging(process_route, "process", "call.route.{tenant}", "dialer");
    assert_eq!(
        process_route.attr("messaging.consumer.group.name"),
        Some("dialer-route")
    );
    let carrier = one(&spans, "carrier modify_call");
    assert_eq!(carrier.kind, KIND_CLIENT);
    assert_child(carrier, process_route);
    assert_eq!(carrier.attr("switchboard.carrier"), Some("sandbox"));
    assert_eq!(carrier.attr("switchboard.step"), Some("0"));
    assert_eq!(carrier.attr("switchboard.service"), Some("dialer"));
    let dial_events: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "send call.dial")
        .collect();
    assert!(
        dial_events
            .iter()
            .any(|s| s.parent_span_id == process_route.span_id),
        "the step's dial events are sent while processing the decision"
    );
    for s in &dial_events {
        assert_messaging(s, "send", "call.dial.{tenant}", "dialer");
    }

    // The sandbox's simulated dial status continues the trace into the dialer again.
    let send_status = one(&spans, "send call.status");
    assert_child(send_status, carrier);
    assert_messaging(send_status, "send", "call.status.{tenant}", "dialer");
    let process_status = one(&spans, "process call.status");
    assert_consumes(process_status, send_status);
    assert_messaging(process_status, "process", "call.status.{tenant}", "dialer");

    // Separation of services and hygiene.
    for service in ["gateway", "router", "dialer"] {
        assert!(
            spans
                .iter()
                .any(|s| s.attr("switchboard.service") == Some(service)),
            "no span of the {service}"
        );
    }
    for span in &spans {
        assert_eq!(span.resource_service, "switchboard-e2e");
        assert_eq!(span.scope, "switchboard");
        assert!(span.attr("switchboard.service").is_some(), "{span:?}");
        for (key, value) in &span.attributes {
            for number in [NUMBER, FORWARDING, COMPANY, CALLER] {
                assert!(
                    !value.contains(&number[2..]),
                    "{}: attribute {key} holds a phone number: {value}",
                    span.name
                );
            }
        }
    }
    let content_types = receiver.requests.lock().unwrap().clone();
    assert!(
        content_types.iter().all(|c| c == "application/x-protobuf"),
        "{content_types:?}"
    );

    // A caller's W3C context is continued, not replaced.
    let caller_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    assert_eq!(stack.call("e2e-trace-2", Some(&traceparent)).await, 202);
    let spans = trace_of(&receiver, "e2e-trace-2").await;
    let http = one(&spans, CHAIN[0]);
    assert_eq!(http.trace_id, caller_trace);
    assert_eq!(http.parent_span_id, caller_span);

    stack.stop().await;
    guard.shutdown();
}

/// Given the sandbox carrier leaving every step unanswered, when a call is placed, then the
/// chain ends missed and its `call.missed` is sent under a producer span of its own (`send
/// call.missed`, destination `call.missed.{tenant}`, the event's id), in the call's trace:
/// not inside a `send call.dial` batch, which names another subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_is_sent_under_its_own_span_in_the_calls_trace() {
    let (receiver, endpoint) = Receiver::start().await;
    let guard = switchboard_telemetry::init_with(
        "switchboard-e2e",
        Some(TraceExport {
            endpoint: Some(endpoint),
            batch_delay: Some(Duration::from_millis(100)),
        }),
    );
    let stack = Stack::start_with_outcomes("no_answer").await;

    assert_eq!(stack.call("e2e-missed-1", None).await, 202);
    let missed_id = format!("{TENANT}:e2e-missed-1:missed");
    let inbound_id = format!("{TENANT}:e2e-missed-1:inbound");
    let (missed, inbound) = eventually(WAIT, "the call.missed span and the call's trace", || {
        let spans = receiver.spans();
        let (missed_id, inbound_id) = (&missed_id, &inbound_id);
        async move {
            let find = |name: &str, id: &str| {
                spans
                    .iter()
                    .find(|s| s.name == name && s.attr("messaging.message.id") == Some(id))
                    .cloned()
            };
            Some((
                find("send call.missed", missed_id)?,
                find("process call.inbound", inbound_id)?,
            ))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", receiver.spans()));
    assert_messaging(&missed, "send", "call.missed.{tenant}", "dialer");
    assert_eq!(missed.trace_id, inbound.trace_id, "in the call's trace");

    stack.stop().await;
    guard.shutdown();
}
