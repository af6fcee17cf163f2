//! The two streams, which are also the audit log: `CALLS` (`call.>`) and `SETTINGS`
//! (`settings.>`). File storage, long retention, an explicit de-duplication window, deletes of
//! single messages denied so history cannot be edited quietly.

use crate::BusError;
use async_nats::jetstream::{self, stream};
use std::time::Duration;
use switchboard_contracts::subjects;

/// Name of the stream of call events.
pub const CALLS: &str = "CALLS";
/// Name of the stream of settings events.
pub const SETTINGS: &str = "SETTINGS";
/// Name of the indexes derived from the streams (kept by the gateway's indexers; read by
/// `switchboard_audit::index`): for each call id, the CALLS sequences of its events; for each
/// phone key of a tenant, the SETTINGS sequences of the contact events listing it.
pub const INDEX: &str = "INDEX";

/// What operators may tune about the streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// How long events are kept (the audit horizon). Default 400 days.
    pub max_age: Duration,
    /// How long a `Nats-Msg-Id` is remembered. Must exceed every consumer's redelivery
    /// horizon, so a re-published decision is always recognized. Default 2 hours.
    pub duplicate_window: Duration,
    /// Replicas per stream: 1 on a single server, 3 on a production cluster.
    pub replicas: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_age: Duration::from_secs(400 * 24 * 3600),
            duplicate_window: Duration::from_secs(2 * 3600),
            replicas: 1,
        }
    }
}

/// The configuration of the streams for `options`: the two audit logs and the indexes, which
/// live as long as what they point into.
pub fn stream_configs(options: &StreamOptions) -> [stream::Config; 3] {
    let base = |name: &str, subject: &str, description: &str| stream::Config {
        name: name.to_string(),
        description: Some(description.to_string()),
        subjects: vec![format!("{subject}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: options.max_age,
        duplicate_window: options.duplicate_window,
        num_replicas: options.replicas,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    };
    [
        base(
            CALLS,
            subjects::CALLS_PREFIX,
            "Switchboard call events: inbound calls, routing decisions, dial steps (audit log)",
        ),
        base(
            SETTINGS,
            subjects::SETTINGS_PREFIX,
            "Switchboard settings changes: company, numbers, users, contacts (audit log)",
        ),
        base(
            INDEX,
            subjects::INDEX_PREFIX,
            "Switchboard indexes derived from CALLS and SETTINGS: each call id's events, each contact phone's settings events",
        ),
    ]
}

/// Creates the streams, or brings existing ones to `options`. Safe to call from every
/// instance at every start.
pub async fn ensure_streams(
    js: &jetstream::Context,
    options: &StreamOptions,
) -> Result<(), BusError> {
    for mut wanted in stream_configs(options) {
        let action = format!("ensure stream {}", wanted.name);
        let mut stream = js
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| BusError::unavailable(&action, e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| BusError::unavailable(&action, e))?;
        let current = &info.config;
        if current.storage != wanted.storage {
            return Err(BusError::conflict(
                action,
                format!(
                    "stream exists with {:?} storage, Switchboard requires file storage",
                    current.storage
                ),
            ));
        }
        // Never shrink replicas from here: any process that provisions (a CLI left on its
        // default of 1, say) would otherwise turn production's R3 streams into R1. Lowering is
        // an operator's explicit `nats stream edit`.
        if current.num_replicas > wanted.num_replicas {
            tracing::warn!(
                stream = %wanted.name,
                current = current.num_replicas,
                requested = wanted.num_replicas,
                "keeping the stream's higher replica count; lower it with `nats stream edit` if meant"
            );
            wanted.num_replicas = current.num_replicas;
        }
        let drifted = current.subjects != wanted.subjects
            || current.max_age != wanted.max_age
            || current.duplicate_window != wanted.duplicate_window
            || current.num_replicas != wanted.num_replicas
            || current.deny_delete != wanted.deny_delete
            || current.allow_direct != wanted.allow_direct;
        if drifted {
            js.update_stream(wanted)
                .await
                .map_err(|e| BusError::conflict(&action, e))?;
        }
    }
    Ok(())
}

/// Stream settings as CLI flags with environment fallbacks, for services that provision.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Days events are kept in CALLS and SETTINGS (the audit horizon).
    #[arg(
        long = "stream-max-age-days",
        env = "SWITCHBOARD_STREAM_MAX_AGE_DAYS",
        default_value_t = 400
    )]
    pub max_age_days: u64,
    /// Seconds a `Nats-Msg-Id` is remembered; must exceed every consumer's redelivery horizon.
    #[arg(
        long = "stream-duplicate-window-secs",
        env = "SWITCHBOARD_STREAM_DUPLICATE_WINDOW_SECS",
        default_value_t = 7200
    )]
    pub duplicate_window_secs: u64,
    /// Replicas per stream (3 on a production cluster).
    #[arg(
        long = "stream-replicas",
        env = "SWITCHBOARD_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
}

impl StreamArgs {
    /// As [`StreamOptions`].
    pub fn options(&self) -> StreamOptions {
        StreamOptions {
            max_age: Duration::from_secs(self.max_age_days.saturating_mul(24 * 3600)),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            replicas: self.replicas,
        }
    }
}

/// The last message stored on `subject` in `stream` (one direct read, no scan): its sequence
/// and payload, or `None` when the subject holds none. What a read-then-write producer checks
/// (the current version of a settings entity) before publishing.
pub async fn last_on_subject(
    js: &jetstream::Context,
    stream: &str,
    subject: &str,
) -> Result<Option<(u64, bytes::Bytes)>, BusError> {
    let read = format!("read the last message on {subject}");
    let stream = js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| BusError::unavailable(read.clone(), e))?;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(Some((message.sequence, message.payload))),
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            Ok(None)
        }
        Err(e) => Err(BusError::unavailable(read, e)),
    }
}
