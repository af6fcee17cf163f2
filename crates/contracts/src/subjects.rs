//! NATS subjects of contract v1. Every subject carries the tenant, so consumers and
//! permissions can be scoped per tenant and a stream filter selects one tenant's history.

use crate::TenantId;

/// Prefix of every call event; the `CALLS` stream holds `call.>`.
pub const CALLS_PREFIX: &str = "call";
/// Prefix of every settings event; the `SETTINGS` stream holds `settings.>`.
pub const SETTINGS_PREFIX: &str = "settings";

/// `call.inbound.<tenant>`: a call arrived.
pub fn call_inbound(tenant: &TenantId) -> String {
    format!("call.inbound.{tenant}")
}

/// `call.route.<tenant>`: the router's decision for a call.
pub fn call_route(tenant: &TenantId) -> String {
    format!("call.route.{tenant}")
}

/// `call.rejected.<tenant>`: a call event that was refused, with the reason.
pub fn call_rejected(tenant: &TenantId) -> String {
    format!("call.rejected.{tenant}")
}

/// `call.status.<tenant>`: how one dial step of a call ended (carrier dial status callback).
pub fn call_status(tenant: &TenantId) -> String {
    format!("call.status.{tenant}")
}

/// `call.dial.<tenant>`: the dialer's progress through a call's chain (step started, answered,
/// failed, chain exhausted, final action taken).
pub fn call_dial(tenant: &TenantId) -> String {
    format!("call.dial.{tenant}")
}

/// `settings.<tenant>.<entity>.<id>`: a settings change of one entity.
pub fn settings(tenant: &TenantId, entity: &str, id: &str) -> String {
    format!("settings.{tenant}.{entity}.{id}")
}

/// Filter for every `call.inbound` of every tenant.
pub const ALL_CALL_INBOUND: &str = "call.inbound.>";
/// Filter for every `call.route` of every tenant.
pub const ALL_CALL_ROUTE: &str = "call.route.>";
/// Filter for every `call.status` of every tenant.
pub const ALL_CALL_STATUS: &str = "call.status.>";
/// Filter for every `call.dial` of every tenant.
pub const ALL_CALL_DIAL: &str = "call.dial.>";
/// Filter for every settings event.
pub const ALL_SETTINGS: &str = "settings.>";

/// The tenant token of a subject (`call.<kind>.<tenant>` or `settings.<tenant>.…`), if any.
pub fn tenant_of(subject: &str) -> Option<&str> {
    let mut tokens = subject.split('.');
    match tokens.next()? {
        CALLS_PREFIX => tokens.nth(1),
        SETTINGS_PREFIX => tokens.next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_carry_the_tenant() {
        let t = TenantId::new("acme").unwrap();
        assert_eq!(call_inbound(&t), "call.inbound.acme");
        assert_eq!(call_route(&t), "call.route.acme");
        assert_eq!(call_status(&t), "call.status.acme");
        assert_eq!(call_dial(&t), "call.dial.acme");
        assert_eq!(settings(&t, "user", "u1"), "settings.acme.user.u1");
        assert_eq!(tenant_of("call.route.acme"), Some("acme"));
        assert_eq!(tenant_of("settings.acme.user.u1"), Some("acme"));
        assert_eq!(tenant_of("other.acme"), None);
    }
}
