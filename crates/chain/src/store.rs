//! Per-call dial progress and the JetStream key-value bucket `DIAL_PROGRESS` it lives in (file
//! storage, history 1), keyed `<tenant>.<call_id>`, changed only by compare-and-swap on the
//! entry's revision: two deliveries, two dialers, or a dialer and the gateway's dead-man's
//! switch can never both advance the same step. See docs/adr/0003-dial-progress-store.md.

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use switchboard_bus::BusError;
use switchboard_contracts::{CallDial, CallMissed, CallRoute, Target, TenantId};
use time::OffsetDateTime;

/// The bucket.
pub const BUCKET: &str = "DIAL_PROGRESS";

/// Where a call's chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// `step` is claimed: the carrier is being (or was about to be) asked to run it. Claimed
    /// before the carrier is called, so a redelivery never calls it again for this step.
    Claimed,
    /// The carrier accepted `step`: its target rings, a `call.status` for it is awaited.
    Ringing,
    /// `step`'s target answered: the chain is over.
    Answered,
    /// The final action was handed to the carrier: the chain is over.
    FinalTaken,
    /// The carrier refused the final action too: nothing more the dialer can do.
    FinalFailed,
    /// The call ended before anyone answered it: the carrier refused to change it because it
    /// is no longer in progress (Twilio 21220: the caller hung up while a leg rang or before
    /// the final action). Nothing more can be done to it: the chain is over.
    HungUp,
}

impl StepState {
    /// Whether nothing more will happen to this call.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            StepState::Answered
                | StepState::FinalTaken
                | StepState::FinalFailed
                | StepState::HungUp
        )
    }
}

/// The delivery that holds a claim: which consumer, which message, which delivery of it.
/// A later delivery of the same message means this one was abandoned (JetStream redelivers a
/// message only when its holder stopped heartbeating or gave it back), so the claim can be
/// recovered at once instead of after a long staleness horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The durable consumer (`dialer-route`, `dialer-status`).
    pub consumer: String,
    /// The message's stream sequence.
    pub stream_seq: u64,
    /// The delivery count of the message when it claimed (1-based).
    pub delivered: i64,
}

/// One call's progress: the decision, the current step and its state, and every `call.dial`
/// event recorded so far (republished idempotently, so a crash between a state change and its
/// publication loses nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The decision being carried out.
    pub decision: CallRoute,
    /// 0 the target, 1.. the fallbacks, `chain_len()` the final action.
    pub step: u32,
    /// The state of `step`.
    pub state: StepState,
    /// When `state` was entered.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Who holds the claim while `state` is `claimed` (absent in entries written before
    /// holders were recorded: those recover by age alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    /// The call's dial events, in order.
    pub events: Vec<CallDial>,
    /// The call's `call.missed`, recorded by the write that ended the chain unanswered
    /// ([`crate::missed`]) and published with the events (same id every time: JetStream keeps
    /// one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<CallMissed>,
}

impl Progress {
    /// The number of targets: the decision's target and fallbacks.
    pub fn chain_len(&self) -> u32 {
        chain(&self.decision).len().try_into().unwrap_or(u32::MAX)
    }

    /// The target of `step`, or `None` for the final action.
    pub fn target(&self, step: u32) -> Option<&Target> {
        chain(&self.decision)
            .into_iter()
            .nth(usize::try_from(step).unwrap_or(usize::MAX))
    }
}

/// The decision's targets in ringing order.
pub fn chain(decision: &CallRoute) -> Vec<&Target> {
    decision
        .target
        .iter()
        .chain(decision.fallbacks.iter())
        .collect()
}

/// The key of a call: `<tenant>.<call_id>`, with every byte of the call id outside
/// `[A-Za-z0-9_-]` written `=XX` (KV keys allow only `[-/_=.A-Za-z0-9]`).
pub fn key(tenant: &TenantId, call_id: &str) -> String {
    let mut key = format!("{tenant}.");
    for b in call_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("={b:02X}"));
        }
    }
    key
}

/// The bucket, with compare-and-swap writes.
#[derive(Clone)]
pub struct ProgressStore {
    kv: kv::Store,
}

/// A bucket operation that failed: worth retrying.
pub fn unavailable(action: &str, e: impl ToString) -> BusError {
    BusError::Unavailable {
        action: action.to_string(),
        reason: e.to_string(),
    }
}

/// The entry of `key` in bucket `kv` as its stream leader holds it (every acknowledged write
/// included), `None` when there is none or it was deleted; `action` names the read in errors.
/// Not a direct get (`kv::Store::entry`): any replica may answer one, and a replica still
/// catching up (a server just restarted) answers with an older entry or none. A dialer that
/// read "none" while holding the carrier's answer took the call for vanished and settled the
/// delivery without recording the step: the call never reached its end (found by the chaos
/// suite's cluster test).
pub async fn leader_entry(
    kv: &kv::Store,
    key: &str,
    action: &str,
) -> Result<Option<async_nats::jetstream::message::StreamMessage>, BusError> {
    let subject = format!("{}{key}", kv.prefix);
    let message = match kv.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(unavailable(action, e)),
    };
    // A delete or purge marker (`KV-Operation`), or a server's marker: no entry.
    let operation = message.headers.get("KV-Operation").map(|v| v.as_str());
    if matches!(operation, Some("DEL" | "PURGE"))
        || message.headers.get("Nats-Marker-Reason").is_some()
    {
        return Ok(None);
    }
    Ok(Some(message))
}

impl ProgressStore {
    /// Creates the bucket (or opens it). Entries expire after `max_age`.
    pub async fn open(
        js: &jetstream::Context,
        max_age: Duration,
        replicas: usize,
    ) -> Result<ProgressStore, BusError> {
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_string(),
                    description: "Switchboard dialer: per-call dial progress (compare-and-swap)"
                        .into(),
                    history: 1,
                    max_age,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("create the DIAL_PROGRESS bucket", e))?,
        };
        Ok(ProgressStore { kv })
    }

    /// The call's progress and its revision, as the bucket's stream leader holds it
    /// ([`leader_entry`]).
    pub async fn get(&self, key: &str) -> Result<Option<(Progress, u64)>, BusError> {
        let Some(message) = leader_entry(&self.kv, key, "read dial progress").await? else {
            return Ok(None);
        };
        let progress =
            serde_json::from_slice(&message.payload).map_err(|e| BusError::Conflict {
                action: format!("read dial progress {key}"),
                reason: e.to_string(),
            })?;
        Ok(Some((progress, message.sequence)))
    }

    /// Stores the first progress of a call; `None` when the call already has one.
    pub async fn create(&self, key: &str, progress: &Progress) -> Result<Option<u64>, BusError> {
        let value = encode(progress)?;
        match self.kv.create(key, value).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(unavailable("create dial progress", e)),
        }
    }

    /// Writes `progress` as the first entry (`revision` `None`) or over `revision`; `None`
    /// when someone else wrote first.
    pub async fn put(
        &self,
        key: &str,
        progress: &Progress,
        revision: Option<u64>,
    ) -> Result<Option<u64>, BusError> {
        match revision {
            None => self.create(key, progress).await,
            Some(revision) => self.update(key, progress, revision).await,
        }
    }

    /// Replaces the progress at `revision`; `None` when someone else changed it first.
    pub async fn update(
        &self,
        key: &str,
        progress: &Progress,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        let value = encode(progress)?;
        match self.kv.update(key, value, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(unavailable("update dial progress", e)),
        }
    }
}

fn encode(progress: &Progress) -> Result<bytes::Bytes, BusError> {
    serde_json::to_vec(progress)
        .map(Into::into)
        .map_err(|e| BusError::Conflict {
            action: "encode dial progress".into(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_valid_kv_keys() {
        let t = switchboard_contracts::TenantId::new("acme").unwrap();
        assert_eq!(super::key(&t, "CA12ab"), "acme.CA12ab");
        assert_eq!(super::key(&t, "a.b/c=é"), "acme.a=2Eb=2Fc=3D=C3=A9");
    }
}
