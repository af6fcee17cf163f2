//! Publishing contract events: structured-mode CloudEvents body, `Content-Type`,
//! `Nats-Msg-Id` = event id (JetStream de-duplication), W3C trace context headers. Sending and
//! awaiting the ack are separate steps, so callers can pipeline many publishes.

use crate::{BusError, TraceContext};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use async_nats::{HeaderMap, HeaderName};
use switchboard_contracts::envelope::{CONTENT_TYPE, headers};
use switchboard_contracts::{Envelope, EventData};

/// The header names, built at compile time: a name given as `&str` is validated and, unless
/// NATS knows it, copied for every message.
const CONTENT_TYPE_HEADER: HeaderName = HeaderName::from_static(headers::CONTENT_TYPE);
const MSG_ID_HEADER: HeaderName = HeaderName::from_static(headers::MSG_ID);

/// The contract headers of an event with id `id`.
pub fn event_headers(id: &str, trace: &TraceContext) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE_HEADER, CONTENT_TYPE);
    map.insert(MSG_ID_HEADER, id);
    trace.inject(&mut map);
    map
}

/// Where an event was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stream.
    pub stream: String,
    /// Its sequence in the stream (of the original, for a duplicate).
    pub sequence: u64,
    /// JetStream had already stored an event with this id within the duplicate window.
    pub duplicate: bool,
}

/// A sent publish whose acknowledgement has not been awaited yet.
pub struct PendingAck {
    subject: String,
    future: PublishAckFuture,
}

impl PendingAck {
    /// Waits for JetStream to acknowledge the event as stored.
    pub async fn ack(self) -> Result<Published, BusError> {
        let ack = self
            .future
            .await
            .map_err(|e| BusError::unavailable(format!("publish to {}", self.subject), e))?;
        Ok(Published {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// Publishes contract events to JetStream.
#[derive(Clone)]
pub struct Publisher {
    js: jetstream::Context,
}

impl Publisher {
    /// A publisher on `js`.
    pub fn new(js: jetstream::Context) -> Self {
        Publisher { js }
    }

    /// Sends `event` without waiting for its acknowledgement.
    pub async fn send<T: EventData>(
        &self,
        event: &Envelope<T>,
        trace: &TraceContext,
    ) -> Result<PendingAck, BusError> {
        let body = event
            .to_json()
            .map_err(|e| BusError::conflict(format!("encode event {}", event.id), e))?;
        self.send_raw(event.data.nats_subject(), &event.id, body.into(), trace)
            .await
    }

    /// Sends an already encoded envelope body on `subject` with id `id` (for tools that
    /// forward events written elsewhere, e.g. a settings file).
    pub async fn send_raw(
        &self,
        subject: String,
        id: &str,
        body: bytes::Bytes,
        trace: &TraceContext,
    ) -> Result<PendingAck, BusError> {
        let message = PublishMessage::build()
            .payload(body)
            .headers(event_headers(id, trace));
        let future = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| BusError::unavailable(format!("publish to {subject}"), e))?;
        Ok(PendingAck { subject, future })
    }

    /// Publishes `event` only if the last message on its subject is still the one at stream
    /// sequence `last_subject_seq` (0: the subject holds none): optimistic concurrency for a
    /// producer that read the current state before writing. `Ok(None)` when another write came
    /// first.
    pub async fn publish_if_last<T: EventData>(
        &self,
        event: &Envelope<T>,
        trace: &TraceContext,
        last_subject_seq: u64,
    ) -> Result<Option<Published>, BusError> {
        let subject = event.data.nats_subject();
        let body = event
            .to_json()
            .map_err(|e| BusError::conflict(format!("encode event {}", event.id), e))?;
        let message = PublishMessage::build()
            .payload(body.into())
            .headers(event_headers(&event.id, trace))
            .expected_last_subject_sequence(last_subject_seq);
        let future = self
            .js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| BusError::unavailable(format!("publish to {subject}"), e))?;
        match future.await {
            Ok(ack) => Ok(Some(Published {
                stream: ack.stream,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence =>
            {
                Ok(None)
            }
            Err(e) => Err(BusError::unavailable(format!("publish to {subject}"), e)),
        }
    }

    /// Sends `event` and waits until JetStream has stored it.
    pub async fn publish<T: EventData>(
        &self,
        event: &Envelope<T>,
        trace: &TraceContext,
    ) -> Result<Published, BusError> {
        self.send(event, trace).await?.ack().await
    }
}
