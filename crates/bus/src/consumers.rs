//! Durable pull consumers, each fully explicit, defined here and nowhere else.

use crate::{BusError, CALLS};
use async_nats::jetstream::{self, consumer};
use std::time::Duration;
use switchboard_contracts::subjects;

/// A durable pull consumer with explicit acknowledgement and an explicit redelivery policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullConsumerSpec {
    /// Durable name, shared by every instance of the service.
    pub name: &'static str,
    /// The stream consumed.
    pub stream: &'static str,
    /// Subject filter.
    pub filter_subject: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Time to process one delivery before it is redelivered (the first backoff step).
    pub ack_wait: Duration,
    /// Deliveries before a message is given up (then advisory + rejection by the consumer).
    pub max_deliver: i64,
    /// Waits before each redelivery; the last repeats.
    pub backoff: Vec<Duration>,
    /// Unacknowledged messages in flight across all instances.
    pub max_ack_pending: i64,
    /// Delay of the n-th NAK (transient failure) before redelivery; the last repeats. Each is
    /// at most the matching `backoff` step, so [`PullConsumerSpec::redelivery_horizon`] still
    /// bounds the time a message can keep coming back.
    pub nak_delays: Vec<Duration>,
}

/// The router's consumer of every tenant's `call.inbound`.
pub fn router_inbound() -> PullConsumerSpec {
    PullConsumerSpec {
        name: "router",
        stream: CALLS,
        filter_subject: subjects::ALL_CALL_INBOUND,
        description: "Switchboard router: decides a route for every inbound call",
        ack_wait: Duration::from_secs(30),
        max_deliver: 10,
        // No backoff list: with one, nats-server measures a NAK's delay from the backoff step
        // rather than from `ack_wait` (a second NAK of 2 s came back after 32 s), so calls NAKed
        // during a short outage waited minutes (found by the chaos suite's PostgreSQL outage).
        backoff: Vec::new(),
        max_ack_pending: 10_000,
        // About 14 minutes of outage ridden out before the last delivery.
        nak_delays: [1, 2, 5, 10, 30, 60, 120, 300]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
    }
}

/// `ack_wait` of the dialer's consumers: how long a delivery held by a dialer that died waits
/// before another instance (or the restarted one) gets it. Deliveries in progress are kept alive
/// by heartbeats ([`crate::runtime`]), so carrier retries may take longer than this.
pub const DIALER_ACK_WAIT: Duration = Duration::from_secs(5);

/// The dialer's redelivery policy, shared by its two consumers: a short `ack_wait` and no
/// backoff list, so a delivery abandoned by a dead dialer comes back within seconds (the chain's
/// recovery bound rests on it); transient failures (JetStream, a status that arrived before its
/// decision) are NAKed and retried for about 9 minutes before the last delivery.
fn dialer_spec(
    name: &'static str,
    filter_subject: &'static str,
    description: &'static str,
) -> PullConsumerSpec {
    PullConsumerSpec {
        name,
        stream: CALLS,
        filter_subject,
        description,
        ack_wait: DIALER_ACK_WAIT,
        max_deliver: 10,
        backoff: Vec::new(),
        max_ack_pending: 10_000,
        nak_delays: [1, 2, 5, 10, 30, 60, 120, 300]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
    }
}

/// The dialer's consumer of every tenant's `call.route`: starts each decision's chain.
pub fn dialer_routes() -> PullConsumerSpec {
    dialer_spec(
        "dialer-route",
        subjects::ALL_CALL_ROUTE,
        "Switchboard dialer: rings the first target of every routing decision",
    )
}

/// The dialer's consumer of every tenant's `call.status`: moves each chain on.
pub fn dialer_statuses() -> PullConsumerSpec {
    dialer_spec(
        "dialer-status",
        subjects::ALL_CALL_STATUS,
        "Switchboard dialer: next fallback or final action on every dial status",
    )
}

/// The gateway's consumer of every call event: writes the call index (`INDEX`). From the
/// first message, so a stream that predates the index is indexed when a gateway first starts.
/// Redelivered without limit: an entry must never be given up (an event without a call id is
/// acknowledged with no entry). An entry written twice past the de-duplication window is
/// harmless: a lookup reads each CALLS sequence once.
pub fn call_indexer() -> PullConsumerSpec {
    PullConsumerSpec {
        name: "call-index",
        stream: CALLS,
        filter_subject: subjects::ALL_CALLS,
        description: "Switchboard gateway: indexes every call event by call id (INDEX)",
        ack_wait: Duration::from_secs(30),
        max_deliver: -1,
        backoff: Vec::new(),
        max_ack_pending: 20_000,
        nak_delays: vec![Duration::from_secs(1)],
    }
}

/// The gateway's consumer of every contact settings event: writes the contact-phone index
/// (`INDEX`), as [`call_indexer`] writes the call index.
pub fn contact_phone_indexer() -> PullConsumerSpec {
    PullConsumerSpec {
        name: "contact-phone-index",
        stream: crate::SETTINGS,
        filter_subject: "settings.*.contact.>",
        description: "Switchboard gateway: indexes every contact settings event by phone (INDEX)",
        ..call_indexer()
    }
}

impl PullConsumerSpec {
    /// The same consumer with another `ack_wait` (and no backoff list): tests and operators
    /// trading the recovery bound against tolerance of stalls.
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> PullConsumerSpec {
        self.ack_wait = ack_wait;
        self.backoff.clear();
        self
    }

    /// The server-side configuration.
    pub fn config(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.name.to_string()),
            name: Some(self.name.to_string()),
            description: Some(self.description.to_string()),
            filter_subject: self.filter_subject.to_string(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            backoff: self.backoff.clone(),
            max_ack_pending: self.max_ack_pending,
            replay_policy: consumer::ReplayPolicy::Instant,
            ..Default::default()
        }
    }

    /// The longest time between a message's first delivery and its last redelivery: the
    /// de-duplication window of what it publishes must be longer.
    pub fn redelivery_horizon(&self) -> Duration {
        let waits = usize::try_from(self.max_deliver).unwrap_or(0);
        (0..waits)
            .map(|i| self.step(i).max(self.nak_delay(i as i64 + 1)))
            .sum()
    }

    /// How long to wait before redelivering a message that failed transiently on its
    /// `delivered`-th delivery (1-based).
    pub fn nak_delay(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.saturating_sub(1)).unwrap_or(0);
        self.nak_delays
            .get(i)
            .or(self.nak_delays.last())
            .copied()
            .unwrap_or(self.ack_wait)
    }

    fn step(&self, i: usize) -> Duration {
        self.backoff
            .get(i)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(self.ack_wait)
    }

    /// Creates the consumer, or updates it to this definition.
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
    ) -> Result<consumer::PullConsumer, BusError> {
        let action = format!("ensure consumer {} on {}", self.name, self.stream);
        let stream = js
            .get_stream(self.stream)
            .await
            .map_err(|e| BusError::unavailable(&action, e))?;
        stream
            .create_consumer(self.config())
            .await
            .map_err(|e| BusError::conflict(&action, e))
    }
}
