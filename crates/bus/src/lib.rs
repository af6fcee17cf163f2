//! JetStream wiring for every Switchboard service: the stream and consumer definitions (in one
//! place, created idempotently), publishing events with de-duplication and trace headers, and
//! reading the contract headers back; and what the services share around them: start-up
//! (connecting and provisioning, retried), the consume loop and the shutdown signal
//! (`runtime`), and the consuming services' health endpoints (`health`).
//!
//! Must not: decide anything about calls or settings, or decode event data beyond the
//! envelope (that is `switchboard-contracts`), or own a connection's lifetime (services do).

mod connect;
mod consumers;
mod error;
pub mod health;
mod publish;
pub mod runtime;
mod streams;
mod trace;

pub use connect::{NatsArgs, StartupRetry, close};
pub use consumers::{
    DIALER_ACK_WAIT, PullConsumerSpec, call_indexer, contact_phone_indexer, dialer_routes,
    dialer_statuses, router_inbound,
};
pub use error::BusError;
pub use publish::{PendingAck, Published, Publisher};
pub use streams::{
    CALLS, INDEX, SETTINGS, StreamArgs, StreamOptions, ensure_streams, last_on_subject,
    stream_configs,
};
pub use trace::{NatsHeaders, NatsHeadersMut, TraceContext};
