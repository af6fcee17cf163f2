//! Sync mode: requests waiting for their call's `call.route`. One core-NATS subscription to
//! `call.route.>` per gateway feeds a map from call to waiters; a request registers before it
//! publishes its `call.inbound`, so the decision cannot arrive unseen. Every decision is also
//! kept for a while ([`RECENT_FOR`], at most [`RECENT_MAX`], without its explanation), so a
//! request that comes after it (the redirect of a call that missed the deadline, on any
//! instance, or a Twilio retry) is answered at once.

use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use switchboard_contracts::{CallRoute, Envelope, TenantId, subjects};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type Key = (TenantId, String);

/// How long a decision stays available to requests that come after it.
pub const RECENT_FOR: Duration = Duration::from_secs(120);
/// Most decisions kept (about 300 bytes each without the explanation).
pub const RECENT_MAX: usize = 100_000;

#[derive(Default)]
struct Inner {
    next: u64,
    waiting: HashMap<Key, Vec<(u64, oneshot::Sender<CallRoute>)>>,
    recent: HashMap<Key, CallRoute>,
    /// When each decision was kept, oldest first.
    recent_order: VecDeque<(Instant, Key)>,
}

impl Inner {
    fn keep(&mut self, key: Key, mut route: CallRoute) {
        let now = Instant::now();
        while let Some((at, _)) = self.recent_order.front() {
            if now.duration_since(*at) < RECENT_FOR && self.recent_order.len() < RECENT_MAX {
                break;
            }
            if let Some((_, old)) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        // What TwiML needs; the explanation is most of the size.
        route.explanation = Vec::new();
        route.reasons = Vec::new();
        if self.recent.insert(key.clone(), route).is_none() {
            self.recent_order.push_back((now, key));
        }
    }
}

/// The waiting requests.
#[derive(Clone, Default)]
pub struct Waiters(Arc<Mutex<Inner>>);

/// One registered request; deregisters on drop.
pub struct Waiter {
    waiters: Waiters,
    key: Key,
    id: u64,
    /// Resolves with the decision.
    pub decision: oneshot::Receiver<CallRoute>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut inner = self.waiters.lock();
        if let Some(list) = inner.waiting.get_mut(&self.key) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                inner.waiting.remove(&self.key);
            }
        }
    }
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent under every operation: a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers interest in the decision for `call_id` of `tenant`.
    pub fn register(&self, tenant: &TenantId, call_id: &str) -> Waiter {
        let (tx, rx) = oneshot::channel();
        let key = (tenant.clone(), call_id.to_string());
        let mut inner = self.lock();
        inner.next += 1;
        let id = inner.next;
        match inner.recent.get(&key) {
            Some(route) => {
                let _ = tx.send(route.clone());
            }
            None => inner.waiting.entry(key.clone()).or_default().push((id, tx)),
        }
        drop(inner);
        Waiter {
            waiters: self.clone(),
            key,
            id,
            decision: rx,
        }
    }

    fn deliver(&self, route: CallRoute) {
        let key = (route.tenant_id.clone(), route.call_id.clone());
        let mut inner = self.lock();
        let taken = inner.waiting.remove(&key);
        inner.keep(key, route.clone());
        drop(inner);
        for (_, tx) in taken.into_iter().flatten() {
            let _ = tx.send(route.clone());
        }
    }

    /// How many requests wait.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().waiting.values().map(Vec::len).sum()
    }

    /// Subscribes to every decision and delivers each to its waiters until the connection
    /// closes. The subscription is registered with the server before this returns.
    pub async fn follow(
        &self,
        client: &async_nats::Client,
    ) -> Result<JoinHandle<()>, async_nats::Error> {
        let mut subscriber = client.subscribe(subjects::ALL_CALL_ROUTE).await?;
        client.flush().await?;
        let waiters = self.clone();
        Ok(tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                match Envelope::<CallRoute>::decode(&message.payload, message.subject.as_str()) {
                    Ok(event) => waiters.deliver(event.data),
                    Err(e) => {
                        tracing::debug!(error = %e, subject = %message.subject, "ignoring an undecodable decision")
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_get_their_decision_and_deregister_on_drop() {
        let waiters = Waiters::default();
        let tenant = TenantId::new("acme").unwrap();
        let mut first = waiters.register(&tenant, "CA1");
        let second = waiters.register(&tenant, "CA2");
        assert_eq!(waiters.len(), 2);
        drop(second);
        assert_eq!(waiters.len(), 1);
        let route: CallRoute = serde_json::from_value(serde_json::json!({
            "call_id": "CA1", "tenant_id": "acme", "rule": "no_route", "target": null,
            "final_action": {"kind": "voicemail", "message": "hi"},
            "decided_at": "2025-03-14T16:20:05Z"
        }))
        .unwrap();
        waiters.deliver(route);
        assert_eq!(first.decision.try_recv().unwrap().call_id, "CA1");
        assert_eq!(waiters.len(), 0);

        // A request that comes after its decision gets it at once, without waiting.
        let mut late = waiters.register(&tenant, "CA1");
        assert_eq!(late.decision.try_recv().unwrap().call_id, "CA1");
        assert_eq!(waiters.len(), 0);
        let mut other = waiters.register(&tenant, "CA3");
        assert!(
            other.decision.try_recv().is_err(),
            "no decision for CA3 yet"
        );
    }
}
