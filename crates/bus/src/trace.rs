//! W3C trace context (`traceparent`, `tracestate`) carried in NATS headers, and the
//! OpenTelemetry propagation carriers over it: [`TraceContext`] and the NATS [`HeaderMap`]
//! implement [`Extractor`] (and [`TraceContext`] [`Injector`]), so a `TextMapPropagator` reads
//! and writes them directly. Spans, sampling and export are `switchboard-telemetry`'s.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use switchboard_contracts::envelope::headers;

/// W3C trace context carried in NATS headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent` header.
    pub traceparent: Option<String>,
    /// `tracestate` header.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// Reads the trace context of a received message.
    pub fn from_headers(map: Option<&HeaderMap>) -> Self {
        let get = |name: &str| {
            map.and_then(|m| m.get(name))
                .map(|v| v.as_str().to_string())
                .filter(|v| !v.is_empty())
        };
        TraceContext {
            traceparent: get(headers::TRACEPARENT),
            tracestate: get(headers::TRACESTATE),
        }
    }

    /// Whether there is no trace context at all.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none()
    }

    /// Writes the context into `map` (the headers of an outgoing message).
    pub fn inject(&self, map: &mut HeaderMap) {
        if let Some(v) = &self.traceparent {
            map.insert(headers::TRACEPARENT, v.as_str());
        }
        if let Some(v) = &self.tracestate {
            map.insert(headers::TRACESTATE, v.as_str());
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(headers::TRACEPARENT) {
            self.traceparent.as_deref()
        } else if key.eq_ignore_ascii_case(headers::TRACESTATE) {
            self.tracestate.as_deref()
        } else {
            None
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::with_capacity(2);
        if self.traceparent.is_some() {
            keys.push(headers::TRACEPARENT);
        }
        if self.tracestate.is_some() {
            keys.push(headers::TRACESTATE);
        }
        keys
    }
}

impl Injector for TraceContext {
    /// Keeps the two W3C keys; a propagator writing anything else (baggage) is ignored, since
    /// only these travel with an event.
    fn set(&mut self, key: &str, value: String) {
        let value = Some(value).filter(|v| !v.is_empty());
        if key.eq_ignore_ascii_case(headers::TRACEPARENT) {
            self.traceparent = value;
        } else if key.eq_ignore_ascii_case(headers::TRACESTATE) {
            self.tracestate = value;
        }
    }
}

/// A received message's headers as an OpenTelemetry [`Extractor`] (no copies).
#[derive(Debug, Clone, Copy)]
pub struct NatsHeaders<'a>(pub &'a HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// An outgoing message's headers as an OpenTelemetry [`Injector`].
#[derive(Debug)]
pub struct NatsHeadersMut<'a>(pub &'a mut HeaderMap);

impl Injector for NatsHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn trace_context_is_a_carrier_both_ways() {
        let mut t = TraceContext::default();
        Injector::set(&mut t, "traceparent", PARENT.into());
        Injector::set(&mut t, "baggage", "k=v".into());
        assert_eq!(t.traceparent.as_deref(), Some(PARENT));
        assert_eq!(Extractor::get(&t, "TraceParent"), Some(PARENT));
        assert_eq!(Extractor::keys(&t), vec!["traceparent"]);
        let mut map = HeaderMap::new();
        t.inject(&mut map);
        assert_eq!(NatsHeaders(&map).get("traceparent"), Some(PARENT));
        assert_eq!(TraceContext::from_headers(Some(&map)), t);
        let mut map = HeaderMap::new();
        NatsHeadersMut(&mut map).set("tracestate", "a=b".into());
        assert_eq!(NatsHeaders(&map).get("tracestate"), Some("a=b"));
    }
}
