//! Reading the streams: an ephemeral consumer from a start position up to what the stream held
//! when the read began (so a read always ends, even while producers keep publishing), and the
//! selection of calls an audit looks at.

use crate::AuditError;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;
use switchboard_contracts::reasons::recorded::RecordedRoute;
use switchboard_contracts::{CallRoute, EventData, TenantId};
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
        token(&self.subject, n)
    }
}

/// The `n`-th dot-separated token of `subject` (`subject.split('.').nth(n)`, without its
/// character searcher: replay asks it of every message).
pub fn token(subject: &str, n: usize) -> Option<&str> {
    let mut start = 0;
    for _ in 0..n {
        start += subject
            .as_bytes()
            .get(start..)?
            .iter()
            .position(|&b| b == b'.')?
            + 1;
    }
    let rest = subject.get(start..)?;
    Some(match rest.bytes().position(|b| b == b'.') {
        Some(end) => &rest[..end],
        None => rest,
    })
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

fn deliver_policy(start: Start) -> consumer::DeliverPolicy {
    match start {
        Start::First => consumer::DeliverPolicy::All,
        Start::Seq(seq) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        Start::Time(time) => consumer::DeliverPolicy::ByStartTime { start_time: time },
    }
}

/// An ephemeral consumer of `stream` (only `filters`, all of it when empty) from `deliver`,
/// and how many messages it has to deliver.
async fn open(
    handle: &jetstream::stream::Stream,
    stream: &str,
    filters: &[String],
    deliver_policy: consumer::DeliverPolicy,
) -> Result<(consumer::PullConsumer, u64), AuditError> {
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
    Ok((consumer, pending))
}

/// A consumer's messages, pulled in batches of [`BATCH`].
async fn pull(
    consumer: &consumer::PullConsumer,
    stream: &str,
) -> Result<consumer::pull::Stream, AuditError> {
    consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await
        .map_err(AuditError::nats(format!("read the {stream} stream")))
}

/// The next message of `messages` as [`Stored`], with the number of messages its consumer
/// has left to deliver after it; `None` at the end of the stream of messages.
async fn next_stored(
    messages: &mut consumer::pull::Stream,
    stream: &str,
) -> Result<Option<(Stored, u64)>, AuditError> {
    let Some(next) = messages.next().await else {
        return Ok(None);
    };
    let action = || format!("read the {stream} stream");
    let message = next.map_err(AuditError::nats(action()))?;
    let (seq, time, left) = match message.reply.as_deref().and_then(delivery) {
        Some(delivery) => delivery,
        None => {
            // Not the usual shape: `info` says what is wrong with it, or reads it anyway.
            let info = message.info().map_err(AuditError::nats(action()))?;
            (info.stream_sequence, info.published, info.pending)
        }
    };
    let message = message.message;
    let stored = Stored {
        seq,
        time,
        subject: message.subject,
        payload: message.payload,
    };
    Ok(Some((stored, left)))
}

/// The stream sequence, storage time and pending count of a JetStream delivery, read from its
/// `$JS.ACK.…` reply subject as `Message::info` reads them (both layouts of ADR-15: 7 tokens
/// after the prefix, or 9 and more with the domain and account hash first), without the
/// fields a read-only scan does not use and without `info`'s intermediate values: a quarter
/// of its instructions on the path every stored message takes. `None` when the subject is
/// not of that shape.
pub fn delivery(reply: &str) -> Option<(u64, OffsetDateTime, u64)> {
    let rest = reply.strip_prefix("$JS.ACK.")?;
    let mut tokens: [&[u8]; 10] = [b""; 10];
    let mut n = 0usize;
    for token in rest.as_bytes().split(|&b| b == b'.') {
        if let Some(slot) = tokens.get_mut(n) {
            *slot = token;
        }
        n += 1;
    }
    // `delivered`, `stream_sequence`, `consumer_sequence`, `published`, `pending`.
    let at = match n {
        7 => 2,
        n if n >= 9 => 4,
        _ => return None,
    };
    let [delivered, seq, consumer_seq, nanos, pending] =
        [at, at + 1, at + 2, at + 3, at + 4].map(|i| tokens.get(i).copied().unwrap_or_default());
    fn number<T: std::str::FromStr>(token: &[u8]) -> Option<T> {
        std::str::from_utf8(token).ok()?.parse().ok()
    }
    /// A token of at most 19 digits (whatever `u64` and `i64` hold), read without `parse`'s
    /// generality (`i128`'s, for the timestamp, is slow); anything else is left to `parse`.
    fn digits(token: &[u8]) -> Option<u64> {
        if token.is_empty() || token.len() > 19 || !token.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            token
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
        )
    }
    if digits(delivered).is_none_or(|n| i64::try_from(n).is_err()) {
        number::<i64>(delivered)?;
    }
    if digits(consumer_seq).is_none() {
        number::<u64>(consumer_seq)?;
    }
    let time = match digits(nanos) {
        // `from_unix_timestamp_nanos` of a non-negative value, without its 128-bit division.
        Some(n) => OffsetDateTime::from_unix_timestamp(i64::try_from(n / 1_000_000_000).ok()?)
            .ok()?
            .replace_nanosecond(u32::try_from(n % 1_000_000_000).ok()?)
            .ok()?,
        None => OffsetDateTime::from_unix_timestamp_nanos(number(nanos)?).ok()?,
    };
    let seq = match digits(seq) {
        Some(n) => n,
        None => number(seq)?,
    };
    let pending = match digits(pending) {
        Some(n) => n,
        None => number(pending)?,
    };
    Some((seq, time, pending))
}

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
    let (consumer, pending) = open(&handle, stream, filters, deliver_policy(start)).await?;
    progress.stage(stage, Some(pending));
    if pending == 0 {
        progress.finish();
        return Ok(());
    }
    let mut messages = pull(&consumer, stream).await?;
    let mut unreported = 0u64;
    while let Some((stored, left)) = next_stored(&mut messages, stream).await? {
        unreported += 1;
        if unreported == 1024 {
            progress.advance(unreported);
            unreported = 0;
        }
        if each(stored)? == Flow::Stop || left == 0 {
            break;
        }
    }
    progress.advance(unreported);
    progress.finish();
    Ok(())
}

/// What the readers of [`scan_parts`] make of a message.
#[derive(Debug)]
pub enum Decoded<T> {
    /// An item for `apply`.
    Item(T),
    /// Nothing for `apply`: read on.
    Skip,
    /// Stop here: neither this message nor any later one reaches `apply`.
    Stop,
}

/// What decodes the messages of one part of a [`PartsReader`], on its reader's task.
pub trait PartDecoder<T>: Send + 'static {
    /// What the message comes to.
    fn decode(&mut self, message: Stored) -> Result<Decoded<T>, AuditError>;
    /// What the part comes to after its last message (not after a [`Decoded::Stop`]), given
    /// to the caller after the part's items.
    fn end(self) -> Option<T>;
}

/// A [`PartDecoder`] that is a function of each message alone.
#[derive(Debug, Clone)]
pub struct EachMessage<D>(pub D);

impl<T, D> PartDecoder<T> for EachMessage<D>
where
    D: FnMut(Stored) -> Result<Decoded<T>, AuditError> + Send + 'static,
{
    fn decode(&mut self, message: Stored) -> Result<Decoded<T>, AuditError> {
        (self.0)(message)
    }
    fn end(self) -> Option<T> {
        None
    }
}

/// How [`scan_parts`] reads.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// Consumers reading consecutive ranges of the stream at once (1: one reader).
    pub readers: usize,
    /// Decoded items a reader may hold ahead of `apply` (`None`: no limit, so that every
    /// reader reads at full speed whatever `apply` does; what is held is still bounded by the
    /// parts: at most `readers` parts are started at once, of `span` sequences each).
    pub ahead: Option<usize>,
    /// When the filters select nearly all of what is read (all but an eighth), read it whole
    /// and apply the filters here instead: filtering costs nats-server (2.12) about a third
    /// more per message it delivers, more than delivering the few it would have skipped.
    pub filter_here: bool,
    /// Stream sequences per part when there are several readers ([`PART_SPAN`]; at least as
    /// many parts as readers).
    pub span: u64,
}

impl Parts {
    /// As many readers as the machine runs threads at once, from 2 to 4, none held back:
    /// each consumer is served by its own goroutine of nats-server, which a single consumer
    /// keeps at most one core busy, and its messages decoded on its own task.
    pub fn parallel() -> Parts {
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Parts {
            readers: threads.clamp(2, 4),
            ahead: None,
            filter_here: true,
            span: PART_SPAN,
        }
    }
}

/// Whether `subject` matches the NATS subject filter `filter` (`*`: one token, `>` as the
/// last token: one or more).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.as_bytes().split(|&b| b == b'.');
    for token in filter.as_bytes().split(|&b| b == b'.') {
        match (token, subject.next()) {
            (b">", Some(_)) => return true,
            (_, None) => return false,
            (b"*", Some(_)) => {}
            (token, Some(s)) if token == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// Items sent at once from a reader to `apply`.
const CHUNK: usize = 256;

/// What a reader sends.
enum Chunk<T> {
    Items(Vec<T>),
    Stop,
}

enum Sender<T> {
    Bounded(tokio::sync::mpsc::Sender<Result<Chunk<T>, AuditError>>),
    Unbounded(tokio::sync::mpsc::UnboundedSender<Result<Chunk<T>, AuditError>>),
}

impl<T> Sender<T> {
    /// Sends; `false` once `apply` has stopped listening.
    async fn send(&self, chunk: Result<Chunk<T>, AuditError>) -> bool {
        match self {
            Sender::Bounded(tx) => tx.send(chunk).await.is_ok(),
            Sender::Unbounded(tx) => tx.send(chunk).is_ok(),
        }
    }
}

enum Receiver<T> {
    Bounded(tokio::sync::mpsc::Receiver<Result<Chunk<T>, AuditError>>),
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<Result<Chunk<T>, AuditError>>),
}

impl<T> Receiver<T> {
    async fn recv(&mut self) -> Option<Result<Chunk<T>, AuditError>> {
        match self {
            Receiver::Bounded(rx) => rx.recv().await,
            Receiver::Unbounded(rx) => rx.recv().await,
        }
    }
}

fn channel<T>(ahead: Option<usize>) -> (Sender<T>, Receiver<T>) {
    match ahead {
        Some(items) => {
            let (tx, rx) = tokio::sync::mpsc::channel(items.div_ceil(CHUNK).max(1));
            (Sender::Bounded(tx), Receiver::Bounded(rx))
        }
        None => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Sender::Unbounded(tx), Receiver::Unbounded(rx))
        }
    }
}

/// Where a reader starts: the read's first consumer (its first message already read), or a
/// consumer of its own from a sequence.
enum From {
    Opened(Box<consumer::pull::Stream>, (Stored, u64), Box<Delete>),
    Seq(Box<jetstream::stream::Stream>, Vec<String>, u64),
}

/// An ephemeral consumer to delete when its part is read: the server then stops delivering
/// the rest of its last pull (up to a batch past the part's end) rather than sending it to
/// a reader that has gone.
struct Delete(jetstream::stream::Stream, String);

/// One reader: decodes the messages from `from` below `upper` (all of them when `None`) that
/// match `filters` (all of them when `None`) and sends the items, in order, to `tx`.
#[allow(clippy::too_many_arguments)]
async fn read_part<T, D>(
    from: From,
    stream: String,
    upper: Option<u64>,
    filters: Option<std::sync::Arc<[String]>>,
    mut decoder: D,
    tx: Sender<T>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
) where
    D: PartDecoder<T>,
{
    let mut items = Vec::with_capacity(CHUNK);
    let mut unreported = 0u64;
    let mut delete = None;
    let result: Result<Option<Chunk<T>>, AuditError> = async {
        let (mut messages, mut next) = match from {
            From::Opened(messages, first, consumer) => {
                delete = Some(*consumer);
                (*messages, Some(first))
            }
            From::Seq(handle, consumer_filters, seq) => {
                let policy = consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: seq,
                };
                let (consumer, pending) = open(&handle, &stream, &consumer_filters, policy).await?;
                delete = Some(Delete(*handle, consumer.cached_info().name.clone()));
                if pending == 0 {
                    // Nothing from here on (expired meanwhile): an empty part.
                    return Ok(None);
                }
                (pull(&consumer, &stream).await?, None)
            }
        };
        loop {
            let (stored, left) = match next.take() {
                Some(next) => next,
                None => match next_stored(&mut messages, &stream).await? {
                    Some(next) => next,
                    None => return Ok(None),
                },
            };
            if upper.is_some_and(|upper| stored.seq >= upper) {
                return Ok(None);
            }
            unreported += 1;
            if unreported == 1024 {
                read.fetch_add(unreported, std::sync::atomic::Ordering::Relaxed);
                unreported = 0;
            }
            let selected = filters
                .as_deref()
                .is_none_or(|filters| filters.iter().any(|f| subject_matches(f, &stored.subject)));
            if !selected {
                if left == 0 {
                    return Ok(None);
                }
                continue;
            }
            match decoder.decode(stored)? {
                Decoded::Item(item) => {
                    items.push(item);
                    if items.len() == CHUNK {
                        let full = std::mem::replace(&mut items, Vec::with_capacity(CHUNK));
                        if !tx.send(Ok(Chunk::Items(full))).await {
                            return Ok(None);
                        }
                    }
                }
                Decoded::Skip => {}
                Decoded::Stop => return Ok(Some(Chunk::Stop)),
            }
            if left == 0 {
                return Ok(None);
            }
        }
    }
    .await;
    read.fetch_add(unreported, std::sync::atomic::Ordering::Relaxed);
    if let Ok(None) = result
        && let Some(end) = decoder.end()
    {
        items.push(end);
    }
    if !items.is_empty() && !tx.send(Ok(Chunk::Items(items))).await {
        return;
    }
    match result {
        Ok(Some(stop)) => {
            tx.send(Ok(stop)).await;
        }
        Ok(None) => {}
        Err(e) => {
            tx.send(Err(e)).await;
        }
    }
    // The next part starts on what was sent; the consumer goes after.
    drop(tx);
    if let Some(Delete(handle, name)) = delete {
        let _ = handle.delete_consumer(&name).await;
    }
}

/// Starts a part: its reader's task, and what it sends.
type StartPart<T> = Box<dyn FnOnce() -> (tokio::task::JoinHandle<()>, Receiver<T>) + Send>;

/// Stream sequences per part of a read by several readers: parts are read in turn, as many
/// at once as there are readers, so that what is read ahead stays bounded (a part's items at
/// most per reader); each reads past its end by at most a pull batch, which is discarded.
pub const PART_SPAN: u64 = 262_144;

/// A read of a stream split in two: `decode`, which runs on the readers' own tasks (in
/// parallel on a multi-threaded runtime), and the caller, which takes what they decoded in
/// stream order with [`next`](PartsReader::next), up to the first [`Decoded::Stop`]: what a
/// [`scan`] calling `decode` on each message would see, in the same order.
///
/// With several readers the range from the first message to the stream's last sequence when
/// the read began is split into consecutive parts, each read by its own consumer at once;
/// the last part reads on to the end as [`scan`] does.
pub struct PartsReader<T> {
    /// The parts started and not yet taken, in order: what their readers send, and their
    /// readers (aborted when the read is dropped or stopped).
    started: std::collections::VecDeque<(Receiver<T>, tokio::task::JoinHandle<()>)>,
    /// The parts not started yet, in order.
    waiting: std::collections::VecDeque<StartPart<T>>,
    /// The items received and not yet taken.
    items: std::vec::IntoIter<T>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Messages the read will deliver, as its consumer counted them when it began.
    pending: u64,
    /// The stream's last sequence when the read began.
    last_sequence: u64,
}

impl<T: Send + 'static> PartsReader<T> {
    /// Starts reading `stream` (only `filters`, all of it when empty) from `start`, each part
    /// decoded by a decoder of its own from `decoder`.
    pub async fn open<D: PartDecoder<T>>(
        js: &jetstream::Context,
        stream: &str,
        filters: &[String],
        start: Start,
        parts: Parts,
        decoder: impl Fn() -> D,
    ) -> Result<PartsReader<T>, AuditError> {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;

        let mut reader = PartsReader {
            started: std::collections::VecDeque::new(),
            waiting: std::collections::VecDeque::new(),
            items: Vec::new().into_iter(),
            read: Arc::new(AtomicU64::new(0)),
            pending: 0,
            last_sequence: 0,
        };
        let handle = js
            .get_stream(stream)
            .await
            .map_err(AuditError::nats(format!("open the {stream} stream")))?;
        let last = handle.cached_info().state.last_sequence;
        reader.last_sequence = last;
        let (mut consumer, mut pending) =
            open(&handle, stream, filters, deliver_policy(start)).await?;
        // Whether the filters are applied here, on the whole stream read.
        let mut here: Option<Arc<[String]>> = None;
        if parts.filter_here && !filters.is_empty() && pending > 0 {
            let (whole, all) = open(&handle, stream, &[], deliver_policy(start)).await?;
            let unused = if all <= pending.saturating_add(pending / 8) {
                here = Some(filters.into());
                pending = all;
                std::mem::replace(&mut consumer, whole)
            } else {
                whole
            };
            // Ephemeral either way; deleted now rather than when it expires.
            let _ = handle.delete_consumer(&unused.cached_info().name).await;
        }
        let consumer_filters: Vec<String> = if here.is_some() {
            Vec::new()
        } else {
            filters.to_vec()
        };
        reader.pending = pending;
        if pending == 0 {
            return Ok(reader);
        }
        let mut messages = pull(&consumer, stream).await?;
        let Some(first) = next_stored(&mut messages, stream).await? else {
            return Ok(reader);
        };
        // Parts of the range from the first message to `last`: [bounds[k], bounds[k + 1]).
        let lo = first.0.seq;
        let span = last.saturating_sub(lo).saturating_add(1);
        let count = if parts.readers > 1 {
            span.div_ceil(parts.span.max(1))
                .max(u64::try_from(parts.readers).unwrap_or(u64::MAX))
                .min(span)
                .min(pending)
                .max(1)
        } else {
            1
        };
        let bounds: Vec<u64> = (0..count)
            .map(|k| {
                let offset = u128::from(k) * u128::from(span) / u128::from(count);
                lo.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
            })
            .collect();
        let mut first = Some((messages, first));
        for (k, &from) in bounds.iter().enumerate() {
            let upper = bounds.get(k + 1).copied();
            let from = match first.take() {
                Some((messages, next)) => From::Opened(
                    Box::new(messages),
                    next,
                    Box::new(Delete(handle.clone(), consumer.cached_info().name.clone())),
                ),
                None => From::Seq(Box::new(handle.clone()), consumer_filters.clone(), from),
            };
            let (stream, here, decoder, read, ahead) = (
                stream.to_string(),
                here.clone(),
                decoder(),
                Arc::clone(&reader.read),
                parts.ahead,
            );
            reader.waiting.push_back(Box::new(move || {
                let (tx, rx) = channel(ahead);
                let task = tokio::spawn(read_part(from, stream, upper, here, decoder, tx, read));
                (task, rx)
            }));
        }
        for _ in 0..parts.readers.max(1) {
            reader.start_next();
        }
        Ok(reader)
    }

    /// Starts the next part waiting, if any.
    fn start_next(&mut self) {
        if let Some(start) = self.waiting.pop_front() {
            let (task, rx) = start();
            self.started.push_back((rx, task));
        }
    }

    /// The next item in stream order; `None` at the end of the read (or at a stop).
    pub async fn next(&mut self) -> Result<Option<T>, AuditError> {
        loop {
            if let Some(item) = self.items.next() {
                return Ok(Some(item));
            }
            let Some((rx, _)) = self.started.front_mut() else {
                return Ok(None);
            };
            match rx.recv().await {
                Some(chunk) => match chunk? {
                    Chunk::Items(items) => self.items = items.into_iter(),
                    Chunk::Stop => self.close(),
                },
                None => {
                    // The part is read, unless its reader panicked: then so does the read,
                    // as `scan` would have with `decode` on this task.
                    if let Some((_, task)) = self.started.pop_front()
                        && let Err(e) = task.await
                        && e.is_panic()
                    {
                        std::panic::resume_unwind(e.into_panic());
                    }
                    self.start_next();
                }
            }
        }
    }

    /// Messages the read delivers, as its consumer counted them when it began.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The stream's last sequence when the read began: the read delivers every message up to
    /// it (that the filters select) before it ends.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Messages the readers have read so far.
    pub fn read(&self) -> u64 {
        self.read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the read: [`next`](Self::next) gives what it already holds, then `None`.
    fn close(&mut self) {
        for (_, task) in self.started.drain(..) {
            task.abort();
        }
        self.waiting.clear();
    }
}

impl<T> Drop for PartsReader<T> {
    fn drop(&mut self) {
        for (_, task) in &self.started {
            task.abort();
        }
    }
}

/// [`scan`] through a [`PartsReader`]: `decode` on the readers' tasks, `apply` on the
/// caller's, in stream order. The result is that of `scan` calling `decode` then `apply` on
/// each message.
#[allow(clippy::too_many_arguments)]
pub async fn scan_parts<T, D>(
    js: &jetstream::Context,
    stream: &str,
    filters: &[String],
    start: Start,
    parts: Parts,
    progress: &dyn Progress,
    stage: &str,
    decode: D,
    mut apply: impl FnMut(T) -> Result<(), AuditError>,
) -> Result<(), AuditError>
where
    T: Send + 'static,
    D: FnMut(Stored) -> Result<Decoded<T>, AuditError> + Clone + Send + 'static,
{
    let mut reader = PartsReader::open(js, stream, filters, start, parts, || {
        EachMessage(decode.clone())
    })
    .await?;
    progress.stage(stage, Some(reader.pending()));
    let mut reported = 0u64;
    while let Some(item) = reader.next().await? {
        apply(item)?;
        let read = reader.read();
        if read >= reported + 1024 {
            progress.advance(read - reported);
            reported = read;
        }
    }
    progress.advance(reader.read().saturating_sub(reported));
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
struct Typed<'a, T> {
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    data: T,
}

/// Parses a stored body: as text when it is UTF-8 (checked once for the whole body, rather
/// than string by string as `serde_json::from_slice` does, which was a tenth of replay's
/// instructions), else as bytes. The same parser either way, so the same value or error.
fn parse<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(payload),
    }
}

/// Decodes the data of a stored event straight into its type, checking its type, its
/// validity and its subject: what `Envelope::decode` accepts, without the intermediate JSON
/// tree (replay reads millions of events; this halves the cost of each).
pub fn decode<T: EventData>(payload: &[u8], subject: &str) -> Option<T> {
    let typed: Typed<'_, T> = parse(payload).ok()?;
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
    let typed: Typed<'_, T> = parse(payload).ok()?;
    (T::accepted_type(&typed.event_type).is_some() && typed.data.nats_subject() == subject)
        .then_some(typed.data)
}

/// [`decode_recorded`] of a decision, its reasons read without buffering each when they are
/// written as Switchboard writes them ([`RecordedRoute`]: the same value, or a failure); any
/// other body is decoded by [`decode_recorded`], whose verdict stands.
pub fn decode_recorded_route(payload: &[u8], subject: &str) -> Option<CallRoute> {
    match parse::<Typed<'_, RecordedRoute>>(payload) {
        Ok(typed) => {
            let route = typed.data.0;
            (CallRoute::accepted_type(&typed.event_type).is_some()
                && route.nats_subject() == subject)
                .then_some(route)
        }
        Err(_) => decode_recorded::<CallRoute>(payload, subject),
    }
}
