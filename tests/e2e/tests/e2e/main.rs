//! Gateway, router and dialer (sandbox carrier) in this process against a real nats-server:
//! the trace of one call across the three services, the metrics they expose, and returning
//! callers learned from the answers the dialer recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)]

mod metrics;
mod otlp;
mod returning;
mod support;
mod traces;
