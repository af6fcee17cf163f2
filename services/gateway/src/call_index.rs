//! The call index: for every event stored in CALLS that names a call, one entry on
//! `callindex.<call>` in `CALL_INDEX` whose body is the event's CALLS sequence. A call is then
//! found by id with a few direct gets (`switchboard_audit::index`) instead of a scan of CALLS.
//!
//! Kept by a durable consumer shared by every gateway instance, from CALLS' first message (a
//! stream that predates the index is indexed when a gateway first starts). An entry is written
//! before its event is acknowledged, with `Nats-Msg-Id: idx:<seq>`, so a crash between the two
//! writes it again and JetStream keeps one. Lookups read the consumer's acknowledged floor and
//! scan what lies past it, so the index being behind makes a lookup slower, never incomplete.

use async_nats::jetstream::{self, AckKind};
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::runtime::{ConsumeOptions, Delivery, consume};
use switchboard_bus::{BusError, call_indexer};
use switchboard_contracts::subjects;
use tokio::sync::watch;

/// Entries written at once by one instance.
const IN_FLIGHT: usize = 1024;

/// What the indexer reports, for metrics.
pub trait IndexEvents: Send + Sync + 'static {
    /// An event was indexed (`true`) or named no call (`false`).
    fn indexed(&self, named_a_call: bool);
    /// An entry could not be written; the event will be redelivered.
    fn failed(&self);
}

/// Runs the indexer until `stop` turns true, then finishes what it pulled.
pub async fn run(
    js: jetstream::Context,
    stop: watch::Receiver<bool>,
    events: Arc<dyn IndexEvents>,
) -> Result<(), BusError> {
    let spec = call_indexer();
    let consumer = spec.ensure(&js).await?;
    let options = ConsumeOptions::for_spec(&spec, IN_FLIGHT);
    consume(consumer, spec, options, stop, move |delivery| {
        index_one(js.clone(), delivery, events.clone())
    })
    .await;
    Ok(())
}

async fn index_one(js: jetstream::Context, delivery: Delivery, events: Arc<dyn IndexEvents>) {
    let (seq, _) = delivery.position();
    let message = delivery.message();
    let Some(call_id) = subjects::call_id_of(&message.subject, &message.payload) else {
        events.indexed(false);
        delivery.settle(AckKind::Ack).await;
        return;
    };
    let entry = jetstream::message::PublishMessage::build()
        .payload(seq.to_string().into())
        .message_id(format!("idx:{seq}"));
    let written = match js.send_publish(subjects::call_index(&call_id), entry).await {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match written {
        Ok(()) => {
            events.indexed(true);
            delivery.settle(AckKind::Ack).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, seq, "could not write a call index entry; retrying");
            events.failed();
            delivery
                .settle(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}
