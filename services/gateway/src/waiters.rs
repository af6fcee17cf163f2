//! Sync mode: requests waiting for their call's `call.route`. One core-NATS subscription to
//! `call.route.>` per gateway feeds a map from call to waiters; a request registers before it
//! publishes its `call.inbound`, so the decision cannot arrive unseen.

use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use switchboard_contracts::{CallRoute, Envelope, TenantId, subjects};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type Key = (TenantId, String);

#[derive(Default)]
struct Inner {
    next: u64,
    waiting: HashMap<Key, Vec<(u64, oneshot::Sender<CallRoute>)>>,
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
        inner.waiting.entry(key.clone()).or_default().push((id, tx));
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
        let taken = self.lock().waiting.remove(&key);
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
    }
}
