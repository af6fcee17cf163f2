//! Freshness: a settings change acknowledged by JetStream before a call was published must be
//! visible to that call's decision.
//!
//! The call was stored before this instance received it, so the SETTINGS stream's last
//! sequence, read by a request sent *after* the call was received, is at least the sequence of
//! every settings change acknowledged before the call. The router waits until its projection
//! has applied that sequence. Requests are coalesced: one stream-info request answers every
//! call received before it was sent, so the cost is one round trip per burst, not per call.

use std::sync::Arc;
use std::time::Duration;
use switchboard_projections::settings_last_seq;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

#[derive(Clone, Copy)]
struct Observation {
    requested_at: Instant,
    last_seq: u64,
}

/// Observes SETTINGS's last sequence on demand, coalescing concurrent needs.
pub(crate) struct Freshness {
    observations: watch::Receiver<Option<Observation>>,
    wanted: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Freshness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Freshness {
    pub(crate) fn start(js: async_nats::jetstream::Context) -> Freshness {
        let (tx, rx) = watch::channel(None);
        let wanted = Arc::new(Notify::new());
        let task = tokio::spawn(observe(js, tx, wanted.clone()));
        Freshness {
            observations: rx,
            wanted,
            task,
        }
    }

    /// SETTINGS's last sequence as read by a request sent at or after `received`.
    pub(crate) async fn last_seq_after(&self, received: Instant, timeout: Duration) -> Option<u64> {
        let mut rx = self.observations.clone();
        let deadline = received + timeout;
        loop {
            if let Some(o) = *rx.borrow_and_update()
                && o.requested_at >= received
            {
                return Some(o.last_seq);
            }
            self.wanted.notify_one();
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }
}

async fn observe(
    js: async_nats::jetstream::Context,
    tx: watch::Sender<Option<Observation>>,
    wanted: Arc<Notify>,
) {
    loop {
        wanted.notified().await;
        let requested_at = Instant::now();
        match settings_last_seq(&js).await {
            Ok(last_seq) => {
                tx.send_replace(Some(Observation {
                    requested_at,
                    last_seq,
                }));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SETTINGS stream's last sequence");
                tokio::time::sleep(Duration::from_millis(100)).await;
                wanted.notify_one();
            }
        }
    }
}
