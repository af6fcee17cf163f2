//! Freshness: a settings change acknowledged by JetStream before a call was published must be
//! visible to that call's decision.
//!
//! The call was stored before this instance received it, so the SETTINGS stream's last
//! sequence, read by a request sent *after* the call was received, is at least the sequence of
//! every settings change acknowledged before the call. The router waits until its projection
//! has applied that sequence before deciding.
//!
//! The [`Gate`] does the reading for the consume loop: delivered calls are held in it, one
//! read at a time is in flight, and each answer releases every call received before that read
//! was sent, with the sequence it must wait for. So the cost is one round trip per burst, not
//! per call, and a call is handled only once its bound is known: no call parks on a shared
//! answer, and only the gate keeps a timer. Under load the read takes milliseconds
//! (it queues at the server behind the router's own publishes); held calls count against
//! `--max-in-flight`, so that window must cover them.

use async_nats::jetstream::Message;
use futures::future::BoxFuture;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use switchboard_projections::{ProjectionError, settings_last_seq};
use tokio::time::{Instant, Sleep};

/// Longest one read may take before it counts as failed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause before a failed read is retried.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Reads the SETTINGS stream's last sequence; called once per read the gate sends.
pub type ReadLastSeq =
    Arc<dyn Fn() -> BoxFuture<'static, Result<u64, ProjectionError>> + Send + Sync>;

/// What a call must wait for before it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The projection must have applied this SETTINGS sequence.
    Applied(u64),
    /// No read sent after the call was received succeeded within the freshness timeout.
    Unknown,
}

/// A call released by the gate.
pub struct Released<M = Message> {
    /// The delivery.
    pub message: M,
    /// When the gate received it.
    pub received: Instant,
    /// What it must wait for.
    pub bound: Bound,
}

/// Holds delivered calls until a read of SETTINGS's last sequence, sent after they were
/// received, answers (or their freshness timeout passes while reads fail). Generic over the
/// delivery and the read so that its failure paths can be tested without a failing server.
pub struct Gate<M = Message> {
    read_last_seq: ReadLastSeq,
    timeout: Duration,
    /// In order of receipt.
    waiting: VecDeque<(M, Instant)>,
    /// The read in flight: how many of the calls held (from the front) it covers, and its
    /// answer. Counted, not compared by receipt time: two calls at the same instant of a coarse
    /// (or a test's paused) clock, one held before the read was started and one after, must not
    /// both count as before. Only this read releases calls while it is in flight, so the count
    /// stays true until it answers.
    read: Option<(usize, BoxFuture<'static, Result<u64, ReadError>>)>,
    retry: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Failed(#[from] ProjectionError),
    #[error("no answer within {} ms", READ_TIMEOUT.as_millis())]
    TimedOut,
}

impl Gate<Message> {
    /// A gate over JetStream deliveries whose calls wait at most `timeout` for a successful read.
    pub fn new(js: async_nats::jetstream::Context, timeout: Duration) -> Gate<Message> {
        let read_last_seq: ReadLastSeq = Arc::new(move || {
            let js = js.clone();
            Box::pin(async move { settings_last_seq(&js).await })
        });
        Gate::with_reader(read_last_seq, timeout)
    }
}

impl<M> Gate<M> {
    /// A gate whose reads go through `read_last_seq`.
    pub fn with_reader(read_last_seq: ReadLastSeq, timeout: Duration) -> Gate<M> {
        Gate {
            read_last_seq,
            timeout,
            waiting: VecDeque::new(),
            read: None,
            retry: None,
        }
    }

    /// Calls held.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no call is held.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Holds `message`, received now; starts a read if none is in flight.
    pub fn hold(&mut self, message: M) {
        self.waiting.push_back((message, Instant::now()));
        if self.read.is_none() && self.retry.is_none() {
            self.start_read();
        }
    }

    fn start_read(&mut self) {
        let answer = (self.read_last_seq)();
        let read = async move {
            match tokio::time::timeout(READ_TIMEOUT, answer).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(ReadError::TimedOut),
            }
        };
        // Covers the calls held now: it is sent when first polled, after their receipt.
        self.read = Some((self.waiting.len(), Box::pin(read)));
    }

    /// Waits for the next calls to release (never resolves while no call is held). Cancel
    /// safe: the read in flight and the held calls stay in the gate.
    pub fn released(&mut self) -> impl Future<Output = Vec<Released<M>>> + '_ {
        std::future::poll_fn(move |cx| self.poll_released(cx))
    }

    fn poll_released(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Released<M>>> {
        if let Some(retry) = &mut self.retry {
            if retry.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.retry = None;
            if !self.waiting.is_empty() {
                self.start_read();
            }
        }
        let Some((covered, read)) = &mut self.read else {
            return Poll::Pending;
        };
        let covered = *covered;
        let Poll::Ready(result) = read.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        self.read = None;
        let released = match result {
            Ok(last_seq) => self.release_first(covered, Bound::Applied(last_seq)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SETTINGS stream's last sequence");
                let now = Instant::now();
                let timeout = self.timeout;
                let released = self.release(|received| received + timeout <= now, Bound::Unknown);
                self.retry = Some(Box::pin(tokio::time::sleep(RETRY_AFTER)));
                // Registers the retry timer with this task's waker.
                let _ = self.retry.as_mut().map(|r| r.as_mut().poll(cx));
                released
            }
        };
        if self.read.is_none() && self.retry.is_none() && !self.waiting.is_empty() {
            self.start_read();
            // Registers the new read with this task's waker.
            cx.waker().wake_by_ref();
        }
        if released.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(released)
        }
    }

    /// Releases the first `count` calls held (or all, if fewer), with `bound`.
    fn release_first(&mut self, count: usize, bound: Bound) -> Vec<Released<M>> {
        let count = count.min(self.waiting.len());
        self.waiting
            .drain(..count)
            .map(|(message, received)| Released {
                message,
                received,
                bound,
            })
            .collect()
    }

    /// Releases the calls from the front whose receipt time passes `due`, with `bound`.
    fn release(&mut self, due: impl Fn(Instant) -> bool, bound: Bound) -> Vec<Released<M>> {
        let mut released = Vec::new();
        while let Some((_, received)) = self.waiting.front() {
            if !due(*received) {
                break;
            }
            if let Some((message, received)) = self.waiting.pop_front() {
                released.push(Released {
                    message,
                    received,
                    bound,
                });
            }
        }
        released
    }
}
