//! The returning-caller history: follows the `call.dial` events of CALLS with an ordered
//! consumer and folds the `answered` ones into an [`AnswerBook`] ("who answered whom, when").
//!
//! Freshness: the router does **not** wait for this history before deciding (unlike settings,
//! which it waits for). An answer is seen by a later call's decision if the follower applied it
//! first — usually within milliseconds of the dialer recording it, so a caller who calls back
//! one second after hanging up is routed back; one who calls back while the follower lags (a
//! router restart catching up) may not be. Why not wait: settings are correctness (a removed
//! user must never ring) while returning callers are a preference with a safe fallback (the
//! ring group, the forwarding number), and waiting would need the last sequence of CALLS — the
//! hottest stream — for every call. Either way the decision records the sequence it saw
//! (`calls_seq`), so replay is exact.
//!
//! Start: from 90 days back (the longest `returning_caller_days`), so a restarted router knows
//! every answer a decision can still use once it has caught up.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use switchboard_bus::CALLS;
use switchboard_contracts::{CallDial, EventData, MAX_RETURNING_CALLER_DAYS};
use switchboard_routing::AnswerBook;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// Pause before the consumer is opened again after it failed.
const REOPEN: Duration = Duration::from_millis(500);

/// The `call.dial` subjects of every tenant.
const DIAL_SUBJECTS: &str = "call.dial.>";

/// Follows CALLS' `call.dial` events into the shared [`AnswerBook`].
pub(crate) struct AnswersFollower {
    book: Arc<RwLock<AnswerBook>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AnswersFollower {
    /// Starts following from 90 days back.
    pub(crate) fn start(js: jetstream::Context, metrics: Arc<Metrics>) -> AnswersFollower {
        let book = Arc::new(RwLock::new(AnswerBook::new()));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(follow(js, Arc::clone(&book), metrics, stop_rx));
        AnswersFollower { book, stop, task }
    }

    /// The shared history for deciding: read-lock it, briefly.
    pub(crate) fn book(&self) -> Arc<RwLock<AnswerBook>> {
        Arc::clone(&self.book)
    }

    /// Stops following.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn follow(
    js: jetstream::Context,
    book: Arc<RwLock<AnswerBook>>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let window = time::Duration::days(i64::from(MAX_RETURNING_CALLER_DAYS));
    loop {
        let applied = read(&book).applied_seq();
        let deliver_policy = if applied == 0 {
            consumer::DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::now_utc() - window,
            }
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: applied + 1,
            }
        };
        let open = async {
            let stream = js.get_stream(CALLS).await.map_err(|e| e.to_string())?;
            let config = consumer::pull::OrderedConfig {
                deliver_policy,
                filter_subject: DIAL_SUBJECTS.into(),
                description: Some("Switchboard returning-caller history".into()),
                ..Default::default()
            };
            let consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let opened = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            opened = open => opened,
        };
        match opened {
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow call.dial for returning callers; retrying")
            }
            Ok(mut messages) => loop {
                let next = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    next = messages.next() => next,
                };
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "returning-caller history: consumer error; reopening");
                        break;
                    }
                    None => break,
                };
                let Ok(info) = message.info() else { continue };
                let seq = info.stream_sequence;
                let (applied, callers) = apply(&book, seq, &message.subject, &message.payload);
                metrics
                    .answers_seq
                    .set(i64::try_from(applied).unwrap_or(i64::MAX));
                if let Some(callers) = callers {
                    metrics
                        .answers_callers
                        .set(i64::try_from(callers).unwrap_or(i64::MAX));
                }
            },
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(REOPEN) => {}
        }
    }
}

/// Folds one `call.dial` message; what does not decode only advances the sequence (the
/// router that recorded a bad event is not this history's concern: the audit files it).
/// Returns the sequence applied and, when it learned an answer, how many callers are
/// remembered.
fn apply(
    book: &RwLock<AnswerBook>,
    seq: u64,
    subject: &str,
    payload: &[u8],
) -> (u64, Option<usize>) {
    let dial = switchboard_contracts::Envelope::<CallDial>::decode(payload, subject)
        .ok()
        .map(|e| e.data)
        .filter(|d| d.validate().is_ok());
    let mut book = match book.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    let learned = match dial {
        Some(dial) => book.apply(seq, &dial),
        None => {
            book.skip(seq);
            false
        }
    };
    if learned {
        tracing::debug!(seq, "returning-caller history learned an answer");
    }
    // Counting walks the tenants: only when it changed.
    (book.applied_seq(), learned.then(|| book.len()))
}

/// Read-locks the book (a poisoned lock still holds a consistent book: writers only insert).
pub(crate) fn read(book: &RwLock<AnswerBook>) -> std::sync::RwLockReadGuard<'_, AnswerBook> {
    match book.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
