//! The CloudEvents 1.0 envelope in structured mode (CloudEvents NATS protocol binding): the
//! message body is this JSON object; the `Content-Type` header says
//! `application/cloudevents+json`; `Nats-Msg-Id` repeats `id` for JetStream de-duplication.

use crate::{ContractError, TenantId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `specversion` of every event.
pub const SPEC_VERSION: &str = "1.0";
/// `datacontenttype` of every event.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The `Content-Type` header value of structured-mode CloudEvents.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// NATS header names the contract uses.
pub mod headers {
    /// Structured-mode content type.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// JetStream de-duplication key; equals the event `id`.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
}

/// The `data` of one event type: its CloudEvents type, where it is published and how it is
/// validated beyond its JSON shape.
pub trait EventData: Serialize + DeserializeOwned {
    /// The CloudEvents `type`, versioned (`switchboard.<…>.v1`): what is produced.
    const TYPE: &'static str;

    /// Earlier versions of the type whose `data` this type still decodes (history on the
    /// streams): accepted on decode, never produced.
    const EARLIER_TYPES: &'static [&'static str] = &[];

    /// `event_type` as the static name of this type or of an earlier version it decodes.
    fn accepted_type(event_type: &str) -> Option<&'static str> {
        std::iter::once(Self::TYPE)
            .chain(Self::EARLIER_TYPES.iter().copied())
            .find(|t| *t == event_type)
    }

    /// The tenant the event belongs to.
    fn tenant_id(&self) -> &TenantId;

    /// The NATS subject the event is published on.
    fn nats_subject(&self) -> String;

    /// The CloudEvents `subject`: what the event is about, within its tenant.
    fn ce_subject(&self) -> String;

    /// The deterministic event id (and `Nats-Msg-Id`): the same fact always gets the same id,
    /// so a retried publish is de-duplicated by JetStream.
    fn event_id(&self) -> String;

    /// Checks what serde cannot: lengths, formats, consistency between fields.
    fn validate(&self) -> Result<(), ContractError>;
}

/// A CloudEvents 1.0 envelope around typed `data`.
///
/// The attributes that are constants for our own producers are `Cow`: borrowed when we
/// produce an event (no allocation per event on the router's hot path), owned when decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Always `1.0`.
    pub specversion: Cow<'static, str>,
    /// Unique per fact; the JetStream de-duplication key.
    pub id: String,
    /// URI-reference of the producer, e.g. `/switchboard/router`.
    pub source: Cow<'static, str>,
    /// Versioned event type.
    #[serde(rename = "type")]
    pub event_type: Cow<'static, str>,
    /// When the fact happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// What the event is about within the tenant (call id, `user/<id>`, …).
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: Cow<'static, str>,
    /// The event data.
    pub data: T,
}

impl<T: EventData> Envelope<T> {
    /// Wraps `data` produced by `source` at `time`, deriving id, type and subject from it.
    pub fn new(data: T, source: impl Into<Cow<'static, str>>, time: OffsetDateTime) -> Self {
        Envelope {
            specversion: Cow::Borrowed(SPEC_VERSION),
            id: data.event_id(),
            source: source.into(),
            event_type: Cow::Borrowed(T::TYPE),
            time,
            subject: data.ce_subject(),
            datacontenttype: Cow::Borrowed(DATA_CONTENT_TYPE),
            data,
        }
    }

    /// The JSON body. Fails only for times RFC 3339 cannot write (years outside 0000–9999).
    pub fn to_json(&self) -> Result<Vec<u8>, ContractError> {
        // Most events fit (a decision with its explanation is 1-1.5 KiB): one allocation
        // instead of a series of regrowths on the hot path.
        let mut body = Vec::with_capacity(2048);
        serde_json::to_writer(&mut body, self)
            .map_err(|e| ContractError::Malformed(format!("cannot encode {}: {e}", self.id)))?;
        Ok(body)
    }

    /// Decodes and validates a body that arrived on `nats_subject`.
    ///
    /// One typed pass over the body when it is valid (the hot path: the router decodes every
    /// call); anything that fails it is decoded again by the step-by-step path below, whose
    /// error is the one reported, so both paths always agree on what is wrong.
    pub fn decode(body: &[u8], nats_subject: &str) -> Result<Self, ContractError> {
        match Self::decode_typed(body, nats_subject) {
            Some(envelope) => Ok(envelope),
            None => RawEnvelope::parse(body)?.into_typed(nats_subject),
        }
    }

    /// The single typed pass: `None` on any problem, left for the step-by-step path to name.
    fn decode_typed(body: &[u8], nats_subject: &str) -> Option<Self> {
        // The attributes are borrowed from the body where JSON needs no unescaping: only `id`,
        // `source` and `subject` are kept, so the others cost no allocation on the hot path.
        /// serde borrows a `Cow` only as a field of its own (not inside `Option`).
        #[derive(Deserialize)]
        struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
        #[derive(Deserialize)]
        struct Typed<'a, T> {
            #[serde(borrow)]
            specversion: Option<Text<'a>>,
            #[serde(borrow)]
            id: Option<Text<'a>>,
            #[serde(borrow)]
            source: Option<Text<'a>>,
            #[serde(rename = "type", borrow)]
            event_type: Option<Text<'a>>,
            #[serde(borrow)]
            time: Option<Text<'a>>,
            #[serde(borrow)]
            subject: Option<Text<'a>>,
            #[serde(borrow)]
            datacontenttype: Option<Text<'a>>,
            data: Option<T>,
        }
        let typed: Typed<'_, T> = serde_json::from_slice(body).ok()?;
        fn present(v: Option<Text<'_>>) -> Option<Cow<'_, str>> {
            v.map(|t| t.0).filter(|v| !v.trim().is_empty())
        }
        if present(typed.specversion)? != SPEC_VERSION
            || present(typed.datacontenttype)? != DATA_CONTENT_TYPE
        {
            return None;
        }
        let event_type = T::accepted_type(&present(typed.event_type)?)?;
        let time = OffsetDateTime::parse(&present(typed.time)?, &Rfc3339).ok()?;
        let data = typed.data?;
        data.validate().ok()?;
        if data.nats_subject() != nats_subject {
            return None;
        }
        Some(Envelope {
            specversion: Cow::Borrowed(SPEC_VERSION),
            id: present(typed.id)?.into_owned(),
            source: Cow::Owned(present(typed.source)?.into_owned()),
            event_type: Cow::Borrowed(event_type),
            time,
            subject: present(typed.subject)?.into_owned(),
            datacontenttype: Cow::Borrowed(DATA_CONTENT_TYPE),
            data,
        })
    }
}

/// An envelope whose attributes are checked but whose `data` is not yet typed: the first step
/// of decoding, and what a consumer of several event types dispatches on.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEnvelope {
    /// `id` attribute.
    pub id: String,
    /// `source` attribute.
    pub source: String,
    /// `type` attribute.
    pub event_type: String,
    /// `time` attribute.
    pub time: OffsetDateTime,
    /// `subject` attribute.
    pub subject: String,
    /// `data`, untyped.
    pub data: serde_json::Value,
}

#[derive(Deserialize)]
struct Loose {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    time: Option<String>,
    subject: Option<String>,
    datacontenttype: Option<String>,
    data: Option<serde_json::Value>,
}

fn required(value: Option<String>, name: &'static str) -> Result<String, ContractError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ContractError::Missing(name)),
    }
}

impl RawEnvelope {
    /// Parses the JSON body and checks the CloudEvents attributes.
    pub fn parse(body: &[u8]) -> Result<Self, ContractError> {
        let loose: Loose = serde_json::from_slice(body)
            .map_err(|e| ContractError::Malformed(format!("not a CloudEvents JSON object: {e}")))?;
        let specversion = required(loose.specversion, "specversion")?;
        if specversion != SPEC_VERSION {
            return Err(ContractError::SpecVersion(specversion));
        }
        let content_type = required(loose.datacontenttype, "datacontenttype")?;
        if content_type != DATA_CONTENT_TYPE {
            return Err(ContractError::DataContentType(content_type));
        }
        let time = required(loose.time, "time")?;
        let time = OffsetDateTime::parse(&time, &Rfc3339)
            .map_err(|e| ContractError::Malformed(format!("`time` is not RFC 3339: {e}")))?;
        let data = match loose.data {
            Some(serde_json::Value::Null) | None => return Err(ContractError::Missing("data")),
            Some(data) => data,
        };
        Ok(RawEnvelope {
            id: required(loose.id, "id")?,
            source: required(loose.source, "source")?,
            event_type: required(loose.event_type, "type")?,
            time,
            subject: required(loose.subject, "subject")?,
            data,
        })
    }

    /// Types the data as `T`, validates it, and checks it belongs on `nats_subject`.
    pub fn into_typed<T: EventData>(
        self,
        nats_subject: &str,
    ) -> Result<Envelope<T>, ContractError> {
        // Report a bad tenant id as such, before serde folds it into a shape error.
        if let Some(tenant) = self.data.get("tenant_id").and_then(|t| t.as_str()) {
            TenantId::new_or_unknown(tenant)?;
        }
        let Some(event_type) = T::accepted_type(&self.event_type) else {
            return Err(ContractError::UnexpectedType {
                expected: T::TYPE.to_string(),
                found: self.event_type,
            });
        };
        let data: T = serde_json::from_value(self.data)
            .map_err(|e| ContractError::Malformed(format!("`data` of {}: {e}", T::TYPE)))?;
        data.validate()?;
        let expected = data.nats_subject();
        if expected != nats_subject {
            return Err(ContractError::SubjectMismatch {
                subject: nats_subject.to_string(),
                expected,
            });
        }
        Ok(Envelope {
            specversion: Cow::Borrowed(SPEC_VERSION),
            id: self.id,
            source: Cow::Owned(self.source),
            event_type: Cow::Borrowed(event_type),
            time: self.time,
            subject: self.subject,
            datacontenttype: Cow::Borrowed(DATA_CONTENT_TYPE),
            data,
        })
    }
}
