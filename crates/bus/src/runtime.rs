//! One consume loop for a durable pull consumer: pulls in batches, runs each delivery on its
//! own task with bounded in-flight work, keeps every delivery in progress (`+WPI`) while its
//! handler runs, and settles a delivery its handler dropped unsettled with a NAK (in the manner
//! of wadm's `ScopedMessage`), so nothing pulled is ever left waiting out a long `ack_wait`.
//!
//! Why the heartbeat: the consumer's `ack_wait` can then be short (seconds), which bounds how
//! long a delivery held by a process that died waits before another instance gets it.
//!
//! Also the services' [`shutdown_signal`] (SIGTERM or SIGINT).

use crate::PullConsumerSpec;
use async_nats::jetstream::{AckKind, Message, consumer::PullConsumer};
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest a pull request waits at the server before the next one is sent.
const PULL_EXPIRES: Duration = Duration::from_millis(500);
/// Pause before a failed pull request is retried.
const PULL_RETRY: Duration = Duration::from_millis(250);

/// A delivery that must be settled exactly once: [`Delivery::settle`]; dropped unsettled (a
/// handler that returned early or panicked), it is NAKed at once so it is redelivered without
/// waiting for `ack_wait`.
pub struct Delivery {
    message: Option<Message>,
    spec: PullConsumerSpec,
}

impl Delivery {
    /// Wraps `message` of the consumer `spec`.
    pub fn new(message: Message, spec: PullConsumerSpec) -> Delivery {
        Delivery {
            message: Some(message),
            spec,
        }
    }

    /// The message (until settled).
    pub fn message(&self) -> &Message {
        // Only `settle` (which consumes self) and `drop` take the message.
        self.message
            .as_ref()
            .unwrap_or_else(|| unreachable!("a delivery is readable until settled"))
    }

    /// The consumer it came from.
    pub fn spec(&self) -> &PullConsumerSpec {
        &self.spec
    }

    /// The message's stream sequence and delivery count (1-based).
    pub fn position(&self) -> (u64, i64) {
        self.message()
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .unwrap_or((0, 1))
    }

    /// The NAK delay this consumer asks for a message on its current delivery.
    pub fn nak_delay(&self) -> Duration {
        self.spec.nak_delay(self.position().1)
    }

    /// Acknowledges, NAKs or terminates; logged when JetStream cannot be told.
    pub async fn settle(mut self, kind: AckKind) {
        if let Some(message) = self.message.take()
            && let Err(e) = message.ack_with(kind).await
        {
            tracing::warn!(error = %e, consumer = self.spec.name, subject = %message.subject, "failed to settle a delivery with JetStream");
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let Some(message) = self.message.take() else {
            return;
        };
        tracing::warn!(consumer = self.spec.name, subject = %message.subject, "delivery dropped unsettled; NAK");
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}

/// How a consume loop runs.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOptions {
    /// Deliveries handled at once by this instance.
    pub max_in_flight: usize,
    /// How often a delivery whose handler still runs is kept in progress (`+WPI`); a third of
    /// the consumer's `ack_wait` leaves room for two lost heartbeats.
    pub heartbeat: Duration,
}

impl ConsumeOptions {
    /// `max_in_flight` deliveries at once, heartbeats at a third of `spec.ack_wait`.
    pub fn for_spec(spec: &PullConsumerSpec, max_in_flight: usize) -> ConsumeOptions {
        ConsumeOptions {
            max_in_flight: max_in_flight.max(1),
            heartbeat: (spec.ack_wait / 3).max(Duration::from_millis(100)),
        }
    }
}

/// Pulls from `consumer` and runs `handle` on each delivery until `stop` turns true, then
/// finishes (and settles) what was pulled.
pub async fn consume<H, F>(
    consumer: PullConsumer,
    spec: PullConsumerSpec,
    options: ConsumeOptions,
    mut stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Delivery) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut in_flight = JoinSet::new();
    let run = |message: Message| {
        let heartbeat = message.clone();
        let work = handle(Delivery::new(message, spec.clone()));
        with_heartbeat(work, heartbeat, options.heartbeat)
    };
    while !*stop.borrow() {
        let capacity = options.max_in_flight.saturating_sub(in_flight.len());
        if capacity == 0 {
            tokio::select! {
                _ = stop.changed() => {}
                Some(done) = in_flight.join_next() => settled(done),
            }
            continue;
        }
        let pulled = tokio::select! {
            _ = stop.changed() => continue,
            pulled = consumer.batch().max_messages(capacity).expires(PULL_EXPIRES).messages() => pulled,
        };
        let mut batch = match pulled {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, consumer = spec.name, "pull request failed; retrying");
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(PULL_RETRY) => {}
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                Some(done) = in_flight.join_next() => settled(done),
                next = batch.next() => match next {
                    Some(Ok(message)) => {
                        in_flight.spawn(run(message));
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, consumer = spec.name, "pull batch error"),
                    None => break,
                },
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        settled(done);
    }
}

/// Runs `work`, telling JetStream every `every` that `message` is still in progress.
async fn with_heartbeat(work: impl Future<Output = ()>, message: Message, every: Duration) {
    tokio::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = &mut work => return,
            _ = ticks.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "failed to extend a delivery's ack deadline");
                }
            }
        }
    }
}

fn settled(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a delivery handler failed; it will be redelivered");
    }
}

/// Builds the phone-number metadata (libphonenumber's, in the `phonenumber` crate) off the
/// runtime; every service calls it before it consumes or serves. Every event's validation
/// reads numbers with it (`CallInbound` and `CallRoute` validation, `E164::parse_strict`), and
/// it is built on first use: in the dialer, left to the first delivery, that CPU-bound build (about 0.1 s in a debug build on an idle machine,
/// seconds on a loaded one) ran inside a handler on a runtime worker and held the whole dialer
/// — pulls, `+WPI` heartbeats, the NATS connection — until it was done. Past `ack_wait`, every
/// decision delivered meanwhile came back as if this dialer had died: its claims were taken
/// over and recorded as outcome unknown, and every first step waited out the build (found by
/// the chaos suite's hanging-carrier scenario).
pub async fn load_phone_metadata() {
    let built = tokio::task::spawn_blocking(|| {
        switchboard_contracts::E164::parse_strict("+14155550100").is_ok()
    })
    .await;
    if !matches!(built, Ok(true)) {
        tracing::warn!("the phone-number metadata could not be built ahead of the first event");
    }
}

/// Resolves on SIGTERM or SIGINT. The signal handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives while the service is still
/// starting is not lost (with the default disposition it would kill the process instead).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (term, int) => {
                for e in [term.err(), int.err()].into_iter().flatten() {
                    tracing::warn!(error = %e, "cannot install a signal handler");
                }
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}
