//! Follows the SETTINGS stream with an ordered consumer: decodes each message, files a
//! rejection for what cannot be applied, commits each batch to the store, then applies it to
//! the shared in-memory projection and announces the new sequence.

use crate::decode::{Decoded, decode};
use crate::{Projection, ProjectionError, Record, Store};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use switchboard_bus::{Publisher, SETTINGS, TraceContext};
use switchboard_contracts::{ContractError, Envelope, Rejection, SettingsRejected};
use switchboard_routing::Applied;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

/// Most messages applied in one transaction.
const MAX_BATCH: usize = 1000;
/// Most records applied to the in-memory projection under one write lock.
const LOCK_CHUNK: usize = 100;
/// How long to wait for a message the server said is pending before applying what we have.
const PENDING_WAIT: Duration = Duration::from_millis(100);
/// First and longest wait between retries of a transient failure.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// The CloudEvents `source` of the rejections the follower files.
const SOURCE: &str = "/switchboard/router";

/// The SETTINGS stream's last sequence now: what "fresh" means for a decision made after it.
///
/// The router asks this for every burst of calls, so the reply is read for the one field it
/// needs instead of into a whole `StreamInfo` (configuration, cluster, sources).
pub async fn settings_last_seq(js: &jetstream::Context) -> Result<u64, ProjectionError> {
    #[derive(serde::Deserialize)]
    struct Reply {
        state: Option<State>,
        error: Option<ApiError>,
    }
    #[derive(serde::Deserialize)]
    struct State {
        last_seq: u64,
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        description: String,
    }
    const ACTION: &str = "read the SETTINGS stream info";
    let reply: Reply = js
        .request(format!("STREAM.INFO.{SETTINGS}"), &())
        .await
        .map_err(ProjectionError::nats(ACTION))?;
    match (reply.state, reply.error) {
        (Some(state), None) => Ok(state.last_seq),
        (_, Some(e)) => Err(ProjectionError::nats(ACTION)(format!(
            "{} (code {})",
            e.description, e.code
        ))),
        (None, None) => Err(ProjectionError::nats(ACTION)("a reply without a state")),
    }
}

/// What the follower task reports.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The in-memory projection's applied sequence.
    applied: u64,
    /// Set when the task stopped on a fatal error.
    fatal: Option<ProjectionError>,
}

/// Follows the SETTINGS stream: keeps the store and the shared in-memory [`Projection`]
/// current.
pub struct Follower {
    projection: Arc<RwLock<Projection>>,
    /// Settings events found stale (filed as `stale_version` rejections) since start.
    stale: Arc<std::sync::atomic::AtomicU64>,
    progress: watch::Receiver<Progress>,
    ready_at: u64,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Hydrates the projection from `store`, takes the SETTINGS stream's last sequence as the
    /// readiness target and spawns the task that reads SETTINGS from the stored position + 1.
    /// `publisher` files `settings.<tenant>.rejected.<seq>` for events that cannot be applied.
    pub async fn start(
        js: jetstream::Context,
        store: Store,
        publisher: Publisher,
    ) -> Result<Follower, ProjectionError> {
        let projection = store.load().await?;
        let ready_at = settings_last_seq(&js).await?;
        let applied = projection.applied_seq();
        if applied > ready_at {
            return Err(ProjectionError::Corrupt(format!(
                "the store is at SETTINGS sequence {applied}, beyond the stream's last \
                 sequence {ready_at}: it was built from another (or a recreated) stream"
            )));
        }
        let projection = Arc::new(RwLock::new(projection));
        let (progress_tx, progress) = watch::channel(Progress {
            applied,
            fatal: None,
        });
        let (stop, stop_rx) = watch::channel(false);
        let stale = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = Task {
            js,
            store,
            publisher,
            projection: Arc::clone(&projection),
            progress: progress_tx,
            stale: Arc::clone(&stale),
        };
        let task = tokio::spawn(task.run(stop_rx));
        Ok(Follower {
            projection,
            stale,
            progress,
            ready_at,
            stop,
            task,
        })
    }

    /// The shared projection for deciding: read-lock it, briefly.
    pub fn projection(&self) -> Arc<RwLock<Projection>> {
        Arc::clone(&self.projection)
    }

    /// How many settings events this follower found stale (a version not newer than the one
    /// applied) and filed as `stale_version` rejections, since it started.
    pub fn stale_events(&self) -> u64 {
        self.stale.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sequence the in-memory projection has applied.
    pub fn applied_seq(&self) -> u64 {
        self.progress.borrow().applied
    }

    /// Waits until the projection has applied at least `seq` (the freshness check: the router
    /// asks [`settings_last_seq`] after receiving a call and waits for it here). Fails with
    /// [`ProjectionError::Timeout`] after `timeout`, or with the task's fatal error.
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> Result<u64, ProjectionError> {
        let mut progress = self.progress.clone();
        let reached = tokio::time::timeout(
            timeout,
            progress.wait_for(|p| p.applied >= seq || p.fatal.is_some()),
        )
        .await;
        match reached {
            Ok(Ok(p)) => match &p.fatal {
                Some(fatal) if p.applied < seq => Err(fatal.clone()),
                _ => Ok(p.applied),
            },
            Ok(Err(_)) => Err(self.health().err().unwrap_or(ProjectionError::Stopped)),
            Err(_) => Err(ProjectionError::Timeout {
                wanted: seq,
                applied: self.applied_seq(),
                waited: timeout,
            }),
        }
    }

    /// Waits until the projection has caught up with SETTINGS as of [`start`](Self::start).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ProjectionError> {
        self.wait_applied(self.ready_at, timeout).await.map(|_| ())
    }

    /// Whether the projection has caught up with SETTINGS as of [`start`](Self::start).
    pub fn is_ready(&self) -> bool {
        self.applied_seq() >= self.ready_at
    }

    /// `Err` with the fatal error once the task has stopped on one (it has then also been
    /// logged); `Ok` while it runs (transient failures are retried and only logged).
    pub fn health(&self) -> Result<(), ProjectionError> {
        match &self.progress.borrow().fatal {
            Some(fatal) => Err(fatal.clone()),
            None if self.task.is_finished() => Err(ProjectionError::Stopped),
            None => Ok(()),
        }
    }

    /// Stops the task once the batch in hand is committed (a batch still waiting for the
    /// database is abandoned uncommitted, to be read again at the next start).
    pub async fn shutdown(self) {
        // The task may already have ended on a fatal error; then nobody listens.
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            error!(error = %e, "settings follower task failed");
        }
    }
}

/// Why the task stopped.
enum Halt {
    Stop,
    Fatal(ProjectionError),
}

/// One message, with what the follower needs of its metadata.
struct Delivered {
    seq: u64,
    published: OffsetDateTime,
    message: jetstream::Message,
}

struct Task {
    js: jetstream::Context,
    store: Store,
    publisher: Publisher,
    projection: Arc<RwLock<Projection>>,
    progress: watch::Sender<Progress>,
    stale: Arc<std::sync::atomic::AtomicU64>,
}

impl Task {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        match self.follow(&mut stop).await {
            Halt::Stop => debug!("settings follower stopped"),
            Halt::Fatal(e) => {
                error!(error = %e, "settings follower stopped on a fatal error");
                self.progress.send_modify(|p| p.fatal = Some(e));
            }
        }
    }

    fn applied(&self) -> u64 {
        self.progress.borrow().applied
    }

    /// Reads SETTINGS from the applied sequence + 1, reopening the consumer after errors.
    async fn follow(&self, stop: &mut watch::Receiver<bool>) -> Halt {
        loop {
            let start_sequence = self.applied() + 1;
            let open = || async {
                let stream = self
                    .js
                    .get_stream(SETTINGS)
                    .await
                    .map_err(ProjectionError::nats("open the SETTINGS stream"))?;
                let config = consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                    description: Some("Switchboard settings projection".into()),
                    ..Default::default()
                };
                let consumer = stream
                    .create_consumer(config)
                    .await
                    .map_err(ProjectionError::nats("create the SETTINGS consumer"))?;
                consumer
                    .messages()
                    .await
                    .map_err(ProjectionError::nats("read the SETTINGS consumer"))
            };
            let mut messages = match retry(stop, "open the SETTINGS consumer", open).await {
                Ok(messages) => messages,
                Err(halt) => return halt,
            };
            loop {
                let next = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return Halt::Stop,
                    next = messages.next() => next,
                };
                let Some(first) = delivered(next) else { break };
                let (batch, broken) = collect(first, &mut messages).await;
                if let Err(halt) = self.process(batch, stop).await {
                    return halt;
                }
                if broken {
                    break;
                }
            }
            // The consumer ended or failed: pause briefly, then reopen where we are.
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Halt::Stop,
                _ = tokio::time::sleep(BACKOFF.0) => {}
            }
        }
    }

    /// Commits a batch to the store, then to the in-memory projection, then announces it.
    async fn process(
        &self,
        batch: Vec<Delivered>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Halt> {
        let mut records = Vec::with_capacity(batch.len());
        for d in &batch {
            let change = match decode(d.message.subject.as_str(), &d.message.payload) {
                Decoded::Change(change) => Some(change),
                Decoded::Skip => None,
                Decoded::Reject(err) => {
                    self.reject(d, &err, stop).await?;
                    None
                }
            };
            records.push(Record { seq: d.seq, change });
        }
        retry(stop, "apply a settings batch", || {
            self.store.apply_batch(&records)
        })
        .await?;
        // Short write-lock scopes: readers between two chunks see a consistent prefix.
        let mut applied = self.applied();
        let mut stale = Vec::new();
        for (c, chunk) in records.chunks(LOCK_CHUNK).enumerate() {
            let mut projection = self.projection.write().map_err(|_| {
                Halt::Fatal(ProjectionError::Corrupt(
                    "the in-memory projection's lock is poisoned".into(),
                ))
            })?;
            for (i, record) in chunk.iter().enumerate() {
                if let Some(Applied::Stale { current }) = projection.apply(record)
                    && let Some(change) = &record.change
                {
                    stale.push((c * LOCK_CHUNK + i, change.version(), current));
                }
            }
            applied = projection.applied_seq();
        }
        self.progress.send_modify(|p| p.applied = applied);
        // A stale version changed nothing: say so where producers and auditors look, instead
        // of dropping it in silence.
        for (i, version, current) in stale {
            self.stale
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let err = ContractError::StaleVersion { version, current };
            self.reject(&batch[i], &err, stop).await?;
        }
        Ok(())
    }

    /// Files a `SettingsRejected` event for the message (its id is deterministic, so every
    /// router instance filing the same rejection stores it once) and logs it without the
    /// payload or reason, which may hold phone numbers.
    async fn reject(
        &self,
        d: &Delivered,
        err: &ContractError,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Halt> {
        let subject = d.message.subject.as_str();
        let rejection = Rejection::new(SETTINGS, d.seq, subject, &d.message.payload, err);
        warn!(
            seq = d.seq,
            tenant = %rejection.tenant_id,
            code = err.code(),
            "rejected a settings event"
        );
        let event = Envelope::new(SettingsRejected(rejection), SOURCE, d.published);
        retry(stop, "publish a settings rejection", || async {
            self.publisher
                .publish(&event, &TraceContext::default())
                .await
                .map_err(ProjectionError::nats("publish a settings rejection"))
        })
        .await
        .map(|_| ())
    }
}

/// Collects what is immediately available after `first`, up to [`MAX_BATCH`] messages: more
/// is awaited only while the server reports messages pending. The flag says the consumer
/// failed or ended and must be reopened.
async fn collect(
    first: Delivered,
    messages: &mut consumer::pull::Ordered,
) -> (Vec<Delivered>, bool) {
    let mut pending = pending_of(&first);
    let mut batch = vec![first];
    while pending > 0 && batch.len() < MAX_BATCH {
        match tokio::time::timeout(PENDING_WAIT, messages.next()).await {
            Err(_) => break,
            Ok(next) => match delivered(next) {
                Some(d) => {
                    pending = pending_of(&d);
                    batch.push(d);
                }
                None => return (batch, true),
            },
        }
    }
    (batch, false)
}

fn pending_of(d: &Delivered) -> u64 {
    d.message.info().map(|i| i.pending).unwrap_or(0)
}

/// The delivered message, or `None` (logged) when the consumer failed or ended.
fn delivered(
    next: Option<Result<jetstream::Message, consumer::pull::OrderedError>>,
) -> Option<Delivered> {
    let message = match next {
        Some(Ok(message)) => message,
        Some(Err(e)) => {
            warn!(error = %e, "SETTINGS consumer failed; reopening it");
            return None;
        }
        None => {
            warn!("SETTINGS consumer ended; reopening it");
            return None;
        }
    };
    match message.info() {
        Ok(info) => {
            let (seq, published) = (info.stream_sequence, info.published);
            Some(Delivered {
                seq,
                published,
                message,
            })
        }
        Err(e) => {
            warn!(error = %e, "SETTINGS message without stream metadata; reopening");
            None
        }
    }
}

/// Runs `op` until it succeeds, retrying transient failures with exponential backoff.
async fn retry<T, Fut>(
    stop: &mut watch::Receiver<bool>,
    what: &str,
    mut op: impl FnMut() -> Fut,
) -> Result<T, Halt>
where
    Fut: Future<Output = Result<T, ProjectionError>>,
{
    let mut delay = BACKOFF.0;
    loop {
        // A stop abandons the attempt: a dropped transaction rolls back, and the batch is
        // read again from the stored position at the next start.
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Err(Halt::Stop),
            outcome = op() => outcome,
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => {
                warn!(error = %e, retry_in = ?delay, "failed to {what}; retrying");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return Err(Halt::Stop),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(BACKOFF.1);
            }
            Err(e) => return Err(Halt::Fatal(e)),
        }
    }
}
