//! The in-memory projection the router decides from: every tenant's [`TenantState`] and the
//! SETTINGS sequence it reflects.

use std::collections::HashMap;
use switchboard_contracts::{SettingsChange, TenantId};
use switchboard_routing::{Applied, TenantState};

/// One SETTINGS stream message as the projection sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its SETTINGS stream sequence.
    pub seq: u64,
    /// The change it carries; `None` for messages that only advance the position (rejected
    /// events and our own rejection audit records).
    pub change: Option<SettingsChange>,
}

/// All tenants in memory: what decisions read.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    tenants: HashMap<TenantId, TenantState>,
    applied_seq: u64,
}

impl Projection {
    /// An empty projection at sequence 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last SETTINGS sequence applied.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Applies `record` if it is newer than [`applied_seq`](Self::applied_seq) (routing the
    /// change to its tenant's state, created on first use) and advances the sequence; what the
    /// version guard made of its change, if it had one and was not applied before.
    pub fn apply(&mut self, record: &Record) -> Option<Applied> {
        if record.seq <= self.applied_seq {
            return None;
        }
        let applied = record.change.as_ref().and_then(|c| self.apply_change(c));
        self.applied_seq = record.seq;
        applied
    }

    /// Applies a change under the version guard, without touching the sequence (hydration).
    pub(crate) fn apply_change(&mut self, change: &SettingsChange) -> Option<Applied> {
        let tenant = change.tenant_id();
        let state = self
            .tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantState::new(tenant.clone()));
        // The state is looked up by the change's own tenant, so WrongTenant cannot happen.
        match state.apply(change) {
            Ok(applied) => Some(applied),
            Err(e) => {
                tracing::error!(error = %e, "settings change routed to the wrong tenant");
                None
            }
        }
    }

    pub(crate) fn set_applied_seq(&mut self, seq: u64) {
        self.applied_seq = seq;
    }

    /// The state of one tenant, if it has any settings.
    pub fn tenant(&self, tenant: &TenantId) -> Option<&TenantState> {
        self.tenants.get(tenant)
    }

    /// Every tenant's state, in no particular order.
    pub fn tenants(&self) -> impl Iterator<Item = &TenantState> {
        self.tenants.values()
    }

    /// How many contacts are held over all tenants (deleted ones included).
    pub fn contact_count(&self) -> usize {
        self.tenants.values().map(TenantState::contact_count).sum()
    }
}
