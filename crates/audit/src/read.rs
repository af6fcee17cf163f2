//! Reading the streams: an ephemeral consumer from a start position up to what the stream held
//! when the read began (so a read always ends, even while producers keep publishing), and the
//! selection of calls an audit looks at.

use crate::AuditError;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;
use switchboard_contracts::{EventData, TenantId};
use time::OffsetDateTime;

/// How far before a selected window calls are read to find the inbound event of a decision
/// made in the window: well past the router's redelivery horizon (38.5 minutes).
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(6 * 3600);

/// Which calls an audit looks at. Decisions are selected by the time (and CALLS sequence) at
/// which they were stored.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this tenant (its subjects only are read).
    pub tenant: Option<TenantId>,
    /// Only decisions stored at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only decisions stored before this time.
    pub until: Option<OffsetDateTime>,
    /// Only decisions at or after this CALLS sequence.
    pub from_seq: Option<u64>,
}

impl Selection {
    /// Whether an event stored at `seq`, `time` is in the selection.
    pub fn contains(&self, seq: u64, time: OffsetDateTime) -> bool {
        self.from_seq.is_none_or(|from| seq >= from)
            && self.since.is_none_or(|since| time >= since)
            && self.until.is_none_or(|until| time < until)
    }

    /// Whether an event stored at `time` is past the selection (reading can stop).
    pub fn is_past(&self, time: OffsetDateTime) -> bool {
        self.until.is_some_and(|until| time >= until)
    }

    /// Checks the selection makes sense.
    pub fn validate(&self) -> Result<(), AuditError> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(AuditError::BadInput(
                "--since must be before --until".into(),
            ));
        }
        if self.from_seq == Some(0) {
            return Err(AuditError::BadInput(
                "--from-seq counts from 1 (the first stream sequence)".into(),
            ));
        }
        Ok(())
    }

    /// The CALLS subjects of `kinds` (`inbound`, `route`, …) for the selected tenant.
    pub fn call_subjects(&self, kinds: &[&str]) -> Vec<String> {
        let tenant = self.tenant.as_ref().map_or(">", TenantId::as_str);
        kinds.iter().map(|k| format!("call.{k}.{tenant}")).collect()
    }

    /// The SETTINGS subjects of the selected tenant.
    pub fn settings_subjects(&self) -> Vec<String> {
        match &self.tenant {
            Some(t) => vec![format!("settings.{t}.>")],
            None => vec![switchboard_contracts::subjects::ALL_SETTINGS.to_string()],
        }
    }
}

/// Reports how far a long read has come (the CLI draws a progress bar from it).
pub trait Progress: Sync {
    /// A new stage begins, with its total if known.
    fn stage(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
    /// The current stage ended.
    fn finish(&self) {}
}

/// Progress that goes nowhere (tests, library callers).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
}

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first message of the stream.
    First,
    /// This stream sequence.
    Seq(u64),
    /// The first message stored at or after this time.
    Time(OffsetDateTime),
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its stream sequence.
    pub seq: u64,
    /// When the stream stored it.
    pub time: OffsetDateTime,
    /// Its subject.
    pub subject: async_nats::Subject,
    /// Its body.
    pub payload: Bytes,
}

impl Stored {
    /// The `n`-th dot-separated token of the subject.
    pub fn token(&self, n: usize) -> Option<&str> {
        self.subject.split('.').nth(n)
    }
}

/// Whether a read goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Deliver the next message.
    Continue,
    /// Stop here.
    Stop,
}

/// Messages asked for in one pull.
const BATCH: usize = 4096;

/// Reads `stream` (only `filters`, all of it when empty) from `start` up to the last message
/// matching the filters when the read began, calling `each` for every message in order.
pub async fn scan(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    start: Start,
    progress: &dyn Progress,
    stage: &str,
    mut each: impl FnMut(Stored) -> Result<Flow, AuditError>,
) -> Result<(), AuditError> {
    let handle = js
        .get_stream(stream)
        .await
        .map_err(AuditError::nats(format!("open the {stream} stream")))?;
    let deliver_policy = match start {
        Start::First => consumer::DeliverPolicy::All,
        Start::Seq(seq) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        Start::Time(time) => consumer::DeliverPolicy::ByStartTime { start_time: time },
    };
    // An ephemeral consumer without acknowledgements, pulled in large batches: a read-only
    // scan needs no durable state and no acks, and batches of 500 (the ordered consumer's)
    // leave the reader waiting on the server between batches.
    let mut config = consumer::pull::Config {
        description: Some("switchboard audit (read-only)".into()),
        deliver_policy,
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(60),
        memory_storage: true,
        ..Default::default()
    };
    match filters {
        [] => {}
        [one] => config.filter_subject = one.clone(),
        many => config.filter_subjects = many.to_vec(),
    }
    let action = format!("read the {stream} stream");
    let mut consumer = handle
        .create_consumer(config)
        .await
        .map_err(AuditError::nats(&action))?;
    let pending = consumer
        .info()
        .await
        .map_err(AuditError::nats(&action))?
        .num_pending;
    progress.stage(stage, Some(pending));
    if pending == 0 {
        progress.finish();
        return Ok(());
    }
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .map_err(AuditError::nats(&action))?;
    let mut unreported = 0u64;
    while let Some(next) = messages.next().await {
        let message = next.map_err(AuditError::nats(&action))?;
        let (seq, time, left) = {
            let info = message.info().map_err(AuditError::nats(&action))?;
            (info.stream_sequence, info.published, info.pending)
        };
        let message = message.message;
        unreported += 1;
        if unreported == 1024 {
            progress.advance(unreported);
            unreported = 0;
        }
        let flow = each(Stored {
            seq,
            time,
            subject: message.subject,
            payload: message.payload,
        })?;
        if flow == Flow::Stop || left == 0 {
            break;
        }
    }
    progress.advance(unreported);
    progress.finish();
    Ok(())
}

/// The time `seq` was stored in `stream`, if it is there.
pub async fn time_of(
    js: &jetstream::Context,
    stream: &str,
    seq: u64,
) -> Result<Option<OffsetDateTime>, AuditError> {
    let handle = js
        .get_stream(stream)
        .await
        .map_err(AuditError::nats(format!("open the {stream} stream")))?;
    match handle.get_raw_message(seq).await {
        Ok(message) => Ok(Some(message.time)),
        Err(e)
            if e.kind() == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound =>
        {
            Ok(None)
        }
        Err(e) => Err(AuditError::nats(format!("read {stream} #{seq}"))(e)),
    }
}

/// Where to start reading CALLS so that every decision in `selection` is read with its
/// inbound event (which precedes it by at most `lookback`); `None` when nothing can match.
pub async fn calls_start(
    js: &jetstream::Context,
    selection: &Selection,
    lookback: Duration,
) -> Result<Option<Start>, AuditError> {
    let mut from = selection.since;
    if let Some(seq) = selection.from_seq {
        let Some(time) = time_of(js, switchboard_bus::CALLS, seq).await? else {
            // Past the end (or expired): start at the sequence itself; nothing earlier counts.
            return Ok(Some(Start::Seq(seq)));
        };
        from = Some(from.map_or(time, |since| since.max(time)));
    }
    Ok(Some(match from {
        None => Start::First,
        Some(time) => Start::Time(time - lookback),
    }))
}

#[derive(serde::Deserialize)]
struct Typed<T> {
    #[serde(rename = "type")]
    event_type: String,
    data: T,
}

/// Decodes the data of a stored event straight into its type, checking its type, its
/// validity and its subject: what `Envelope::decode` accepts, without the intermediate JSON
/// tree (replay reads millions of events; this halves the cost of each).
pub fn decode<T: EventData>(payload: &[u8], subject: &str) -> Option<T> {
    let typed: Typed<T> = serde_json::from_slice(payload).ok()?;
    (T::accepted_type(&typed.event_type).is_some()
        && typed.data.validate().is_ok()
        && typed.data.nats_subject() == subject)
        .then_some(typed.data)
}

/// Decodes a decision (or another event Switchboard itself produced) checking its type and
/// subject only: validating a `call.route` again parses every target number, which would
/// triple the cost of reading a million of them, and replay compares what was recorded
/// whatever it is.
pub fn decode_recorded<T: EventData>(payload: &[u8], subject: &str) -> Option<T> {
    let typed: Typed<T> = serde_json::from_slice(payload).ok()?;
    (T::accepted_type(&typed.event_type).is_some() && typed.data.nats_subject() == subject)
        .then_some(typed.data)
}
