//! The indexes in `INDEX`, kept from the streams so that one call's story is read without
//! scanning them (`switchboard_audit::index` reads them):
//! - the call index: for every CALLS event that names a call, an entry on `index.call.<call>`
//!   whose body is the event's CALLS sequence;
//! - the contact-phone index: for every contact settings event, an entry per phone key on
//!   `index.phone.<tenant>.<key>` whose body is the event's SETTINGS sequence (the contacts
//!   that may have a caller's number as of a decision).
//!
//! Each is kept by a durable consumer shared by every gateway instance, from its stream's
//! first message (a stream that predates the index is indexed when a gateway first starts).
//! Entries are written before their event is acknowledged, each with a deterministic
//! `Nats-Msg-Id`, so a crash between the two writes them again and JetStream keeps one.
//! Readers take the consumer's acknowledged floor and scan what lies past it, so an index
//! that is behind makes a lookup slower, never incomplete.

use async_nats::jetstream::{self, AckKind, message::PublishMessage};
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::runtime::{ConsumeOptions, Delivery, consume};
use switchboard_bus::{BusError, PullConsumerSpec, call_indexer, contact_phone_indexer};
use switchboard_contracts::{TenantId, subjects};
use tokio::sync::watch;

/// Events indexed at once by one instance, per index.
const IN_FLIGHT: usize = 1024;

/// Which index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Calls by id.
    Call,
    /// Contacts by phone.
    ContactPhone,
}

impl Index {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Index::Call => "call",
            Index::ContactPhone => "contact_phone",
        }
    }

    fn spec(self) -> PullConsumerSpec {
        match self {
            Index::Call => call_indexer(),
            Index::ContactPhone => contact_phone_indexer(),
        }
    }

    /// The entries (subject, message id) for the event at `seq`.
    fn entries(self, seq: u64, subject: &str, payload: &[u8]) -> Vec<(String, String)> {
        match self {
            Index::Call => subjects::call_id_of(subject, payload)
                .map(|id| vec![(subjects::call_index(&id), format!("idx:{seq}"))])
                .unwrap_or_default(),
            Index::ContactPhone => {
                let Some(tenant) = subjects::tenant_of(subject).and_then(|t| TenantId::new(t).ok())
                else {
                    return Vec::new();
                };
                let mut keys: Vec<String> = contact_phones(payload)
                    .iter()
                    .flat_map(|raw| subjects::phone_index_keys(raw))
                    .collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .map(|key| {
                        let id = format!("pidx:{seq}:{key}");
                        (subjects::phone_index(&tenant, &key), id)
                    })
                    .collect()
            }
        }
    }
}

/// The phones a contact settings event lists (none when it is not one).
fn contact_phones(payload: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(default)]
        phones: Vec<serde_json::Value>,
    }
    serde_json::from_slice::<Body>(payload)
        .map(|b| {
            b.data
                .phones
                .into_iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the indexers report, for metrics.
pub trait IndexEvents: Send + Sync + 'static {
    /// An event was indexed (`true`) or named nothing to index (`false`).
    fn indexed(&self, index: Index, named_something: bool);
    /// An entry could not be written; the event will be redelivered.
    fn failed(&self, index: Index);
}

/// Runs `index`'s indexer until `stop` turns true, then finishes what it pulled.
pub async fn run(
    index: Index,
    js: jetstream::Context,
    stop: watch::Receiver<bool>,
    events: Arc<dyn IndexEvents>,
) -> Result<(), BusError> {
    let spec = index.spec();
    let consumer = spec.ensure(&js).await?;
    let options = ConsumeOptions::for_spec(&spec, IN_FLIGHT);
    consume(consumer, spec, options, stop, move |delivery| {
        index_one(index, js.clone(), delivery, events.clone())
    })
    .await;
    Ok(())
}

async fn index_one(
    index: Index,
    js: jetstream::Context,
    delivery: Delivery,
    events: Arc<dyn IndexEvents>,
) {
    let (seq, _) = delivery.position();
    let message = delivery.message();
    let entries = index.entries(seq, &message.subject, &message.payload);
    if entries.is_empty() {
        events.indexed(index, false);
        delivery.settle(AckKind::Ack).await;
        return;
    }
    let mut written = Ok(());
    for (subject, id) in entries {
        let entry = PublishMessage::build()
            .payload(seq.to_string().into())
            .message_id(id);
        let stored = match js.send_publish(subject, entry).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if stored.is_err() {
            written = stored;
            break;
        }
    }
    match written {
        Ok(()) => {
            events.indexed(index, true);
            delivery.settle(AckKind::Ack).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, seq, index = index.label(), "could not write an index entry; retrying");
            events.failed(index);
            delivery
                .settle(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}
