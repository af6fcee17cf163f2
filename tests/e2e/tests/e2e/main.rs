//! Gateway, router and dialer (sandbox carrier) in this process against a real nats-server:
//! the trace of one call across the three services, and the metrics they expose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

mod metrics;
mod otlp;
mod support;
mod traces;
