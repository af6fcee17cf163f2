//! Which callers the voice webhook refuses unanswered (issue 17, async mode): a caller on the
//! company's `blocked_callers` under `blocked_action: reject` (the default), or a withheld
//! caller under `anonymous_callers: reject`. They hear busy (`<Reject reason="busy"/>`) and
//! nothing is answered or billed; `call.inbound` is still published first, so the router
//! records the decision (rule `blocked` / `anonymous`) and nothing acknowledged is lost.
//! `announce` is not refused here: the router's decision plays the announcement via the dialer.
//!
//! The policies come from an in-memory follower of the companies' settings
//! (`settings.*.company.>` of SETTINGS, an ordered consumer replaying them from the first),
//! decoded exactly as the router's projection decodes them (`switchboard_projections::decode`)
//! and kept under the same version guard (the newest version wins, whatever the order), with
//! the block list compiled as the router compiles it and the caller read with the router's
//! normalization (`E164::lookup_key` in the company's `default_region`). The gateway is not
//! ready before the follower has caught up once. Past that, a follower that is behind (a
//! settings change not read yet) only means the call proceeds as before the change: ringback,
//! then the router decides `blocked` and the dialer ends the call — later, never wrongly.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use switchboard_bus::SETTINGS;
use switchboard_contracts::{
    AnonymousCallers, BlockedAction, CompanySettings, E164, PhoneError, Region, SettingsChange,
    TenantId, entity, subjects,
};
use switchboard_projections::Decoded;
use switchboard_routing::BlockList;

/// Pause before reopening the consumer after it failed.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Why a caller is refused at the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// On the block list, `blocked_action: reject`.
    Blocked,
    /// Withheld, `anonymous_callers: reject`.
    Anonymous,
}

impl Refusal {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Blocked => "blocked",
            Refusal::Anonymous => "anonymous",
        }
    }
}

/// One company's caller policy, compiled once per settings change.
struct Policy {
    version: u64,
    region: Region,
    blocked: BlockList,
    blocked_action: BlockedAction,
    anonymous_callers: AnonymousCallers,
}

impl Policy {
    fn new(c: &CompanySettings) -> Policy {
        Policy {
            version: c.version,
            region: c
                .default_region
                .as_deref()
                .and_then(Region::parse)
                .unwrap_or_default(),
            blocked: BlockList::new(c.blocked_callers.iter().map(String::as_str)),
            blocked_action: c.blocked_action.unwrap_or_default(),
            anonymous_callers: c.anonymous_callers.unwrap_or_default(),
        }
    }

    fn refusal(&self, from: &str) -> Option<Refusal> {
        match E164::lookup_key(from, self.region) {
            Ok(caller) => (self.blocked_action == BlockedAction::Reject
                && self.blocked.matching(caller.as_str()).is_some())
            .then_some(Refusal::Blocked),
            Err(PhoneError::Withheld) => {
                (self.anonymous_callers == AnonymousCallers::Reject).then_some(Refusal::Anonymous)
            }
            Err(_) => None,
        }
    }
}

/// Every company's caller policy, as far as the follower has read.
#[derive(Default)]
pub(crate) struct CallerPolicies {
    companies: RwLock<HashMap<TenantId, Policy>>,
    caught_up: AtomicBool,
}

impl CallerPolicies {
    /// Why `from` (the webhook's `From`, as received) calling `tenant` is refused, if it is.
    pub(crate) fn refusal(&self, tenant: &TenantId, from: &str) -> Option<Refusal> {
        let companies = self.companies.read().ok()?;
        companies.get(tenant)?.refusal(from)
    }

    /// Whether the follower has read every company settings event stored when it started.
    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::SeqCst)
    }

    /// Applies a company's settings under the version guard.
    fn apply(&self, c: &CompanySettings) {
        let Ok(mut companies) = self.companies.write() else {
            return;
        };
        let current = companies.get(&c.tenant_id).map(|p| p.version);
        // `SettingsChange::supersedes`, as the router's projection guards it.
        if current.is_none_or(|current| c.version > current) {
            companies.insert(c.tenant_id.clone(), Policy::new(c));
        }
    }
}

/// The subjects of the companies' settings.
fn filter() -> String {
    format!("{}.*.{}.>", subjects::SETTINGS_PREFIX, entity::COMPANY)
}

/// Follows the companies' settings into `policies` until aborted, reopening the consumer after
/// the last sequence read when it fails.
pub(crate) async fn follow(js: jetstream::Context, policies: std::sync::Arc<CallerPolicies>) {
    let mut next_seq = 1;
    loop {
        if let Err(e) = read(&js, &policies, &mut next_seq).await {
            tracing::warn!(error = %e, "the companies' settings follower failed; reopening");
        }
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

/// Reads from `next_seq` until the consumer ends or fails.
async fn read(
    js: &jetstream::Context,
    policies: &CallerPolicies,
    next_seq: &mut u64,
) -> Result<(), String> {
    let stream = js.get_stream(SETTINGS).await.map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: *next_seq,
            },
            description: Some("Switchboard gateway: company caller policies".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    if consumer.cached_info().num_pending == 0 {
        caught_up(policies);
    }
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let info = message.info().map_err(|e| e.to_string())?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if let Decoded::Change(SettingsChange::Company(company)) =
            switchboard_projections::decode::decode(&message.subject, &message.payload)
        {
            policies.apply(&company);
        }
        *next_seq = seq + 1;
        if pending == 0 {
            caught_up(policies);
        }
    }
    Ok(())
}

fn caught_up(policies: &CallerPolicies) {
    if !policies.caught_up.swap(true, Ordering::SeqCst) {
        tracing::info!("caught up with the companies' settings");
    }
}
