//! Call screening's memory: which screened legs were offered the whisper and which were
//! accepted (key 1), in the JetStream key-value bucket `SCREENING` (file storage, history 1,
//! entries kept a day), keyed `<tenant>.<caller's CallSid>.<step>`.
//!
//! Why a record at all: when a whisper ends without the key (declined, timed out, hung up),
//! Twilio ends the called party's leg after it was *answered*, so the caller's `<Dial action>`
//! may report `completed` like a bridged call. The issue wants such a leg to count as no
//! answer, and nothing in the dial-status request tells the two apart. So the gateway, which
//! serves the whisper, records it:
//! - the whisper request *offers* the step (create-if-absent, before the whisper is answered:
//!   an offer never overwrites an acceptance of another member of the same ring-group leg);
//! - key 1 *accepts* it (written before the empty answer that bridges, so an accepted leg is
//!   recorded before it can be connected);
//! - the dial-status webhook reads the record of a `completed` step: offered and never
//!   accepted → `no_answer`; accepted, or never screened (no record) → `completed`.
//!
//! The gateway needs no copy of the decision for this (it works for step 0 of a sync answer
//! and every later step alike), and every failure keeps the status truthful: an acceptance
//! that cannot be stored is a 503 to the key press (the leg ends unbridged: no answer, as
//! recorded); an offer that cannot be stored connects the leg unscreened (a bridged call,
//! reported `completed`, which it is) — screening is then lost only while JetStream cannot
//! store anything, when the call's events cannot be stored either.

use async_nats::jetstream::{self, kv};
use std::time::Duration;
use switchboard_bus::BusError;
use switchboard_contracts::TenantId;

/// The bucket.
pub const BUCKET: &str = "SCREENING";
/// How long a record is kept: longer than any call (Twilio ends calls at 4 hours by default),
/// since a bridged call's dial status arrives when it ends.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

const OFFERED: &[u8] = b"offered";
const ACCEPTED: &[u8] = b"accepted";

/// What is known of a step's whisper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screened {
    /// The whisper was served; nobody pressed 1.
    Offered,
    /// Someone pressed 1.
    Accepted,
}

/// The key of `step` of the call `call_sid` (the caller's leg: `ParentCallSid` on the called
/// party's requests): the call's `DIAL_PROGRESS` key and the step.
pub(crate) fn key(tenant: &TenantId, call_sid: &str, step: u32) -> String {
    format!("{}.{step}", switchboard_chain::key(tenant, call_sid))
}

/// The bucket.
#[derive(Clone)]
pub(crate) struct ScreeningStore {
    kv: kv::Store,
}

use switchboard_chain::unavailable;

impl ScreeningStore {
    /// Creates the bucket (or opens it), like `DIAL_PROGRESS`: created if missing with
    /// `replicas`, never updated.
    pub(crate) async fn open(
        js: &jetstream::Context,
        replicas: usize,
    ) -> Result<ScreeningStore, BusError> {
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: BUCKET.to_string(),
                    description: "Switchboard gateway: screened legs offered and accepted".into(),
                    history: 1,
                    max_age: MAX_AGE,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("create the SCREENING bucket", e))?,
        };
        Ok(ScreeningStore { kv })
    }

    /// Records that `key`'s whisper was served, unless the step already has a record.
    pub(crate) async fn offer(&self, key: &str) -> Result<(), BusError> {
        match self.kv.create(key, OFFERED.into()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(unavailable("record a screened leg", e)),
        }
    }

    /// Records that `key`'s whisper was accepted.
    pub(crate) async fn accept(&self, key: &str) -> Result<(), BusError> {
        self.kv
            .put(key, ACCEPTED.into())
            .await
            .map(|_| ())
            .map_err(|e| unavailable("record an accepted screened leg", e))
    }

    /// The step's record, read from the bucket's stream leader (every acknowledged write
    /// included: `switchboard_chain::leader_entry`).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Screened>, BusError> {
        let entry = switchboard_chain::leader_entry(&self.kv, key, "read a screened leg").await?;
        let Some(message) = entry else {
            return Ok(None);
        };
        Ok(match &message.payload[..] {
            ACCEPTED => Some(Screened::Accepted),
            _ => Some(Screened::Offered),
        })
    }
}
