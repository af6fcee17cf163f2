//! NATS subjects of contract v1. Every subject carries the tenant, so consumers and
//! permissions can be scoped per tenant and a stream filter selects one tenant's history.

use crate::TenantId;

/// Prefix of every call event; the `CALLS` stream holds `call.>`.
pub const CALLS_PREFIX: &str = "call";
/// Prefix of every settings event; the `SETTINGS` stream holds `settings.>`.
pub const SETTINGS_PREFIX: &str = "settings";
/// Prefix of the call index; the `CALL_INDEX` stream holds `callindex.>`.
pub const CALL_INDEX_PREFIX: &str = "callindex";

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

/// Filter for every call event of every tenant.
pub const ALL_CALLS: &str = "call.>";
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

/// `callindex.<call>`: the call index's entries for one call id, each naming the CALLS
/// sequence of one of the call's events (so a call is found without scanning CALLS). The call
/// id is written as [`call_token`] makes it; the tenant is not in the subject, so a call is
/// found by id alone, as `switchboard explain` takes it.
pub fn call_index(call_id: &str) -> String {
    format!("{CALL_INDEX_PREFIX}.{}", call_token(call_id))
}

/// A call id as one subject token: letters, digits and `-` as they are, every other byte as
/// `_` and two upper-case hex digits (`CA.1` → `CA_2E1`). Injective, so two ids never share a
/// token, and readable for the ids carriers and CRMs use (`CA…` SIDs, UUIDs), which pass
/// unchanged. Call ids may hold `.`, `*` and `>`, which a subject token must not.
pub fn call_token(call_id: &str) -> String {
    use std::fmt::Write;
    let mut token = String::with_capacity(call_id.len());
    for b in call_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            token.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(token, "_{b:02X}");
        }
    }
    token
}

/// The call id of a stored call event, read from its body without validating the rest: `data.call_id`,
/// or for a `call.rejected` the `data.call_id` of the refused body it quotes (so a call's
/// rejections are found with it). `None` for anything else.
pub fn call_id_of(subject: &str, payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        call_id: Option<String>,
        original_payload: Option<String>,
    }
    let data = serde_json::from_slice::<Body>(payload).ok()?.data;
    let call_id = if subject.split('.').nth(1) == Some("rejected") {
        call_id_of("", data.original_payload?.as_bytes())?
    } else {
        data.call_id?
    };
    (!call_id.is_empty()).then_some(call_id)
}

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

    #[test]
    fn call_ids_become_one_injective_subject_token() {
        assert_eq!(call_index("CA0123abcd"), "callindex.CA0123abcd");
        assert_eq!(
            call_token("3f2b1c9e-0d4e-4c4f-9a63-5b1de2f0a7c1"),
            "3f2b1c9e-0d4e-4c4f-9a63-5b1de2f0a7c1"
        );
        assert_eq!(call_token("CA.1"), "CA_2E1");
        assert_eq!(call_token("a*b>c"), "a_2Ab_3Ec");
        assert_eq!(call_token("é"), "_C3_A9");
        // `_` itself is escaped, so an escaped id never equals another raw one.
        assert_eq!(call_token("CA_2E1"), "CA_5F2E1");
        assert_ne!(call_token("CA_2E1"), call_token("CA.1"));
        let inbound =
            br#"{"type":"switchboard.call.inbound.v1","data":{"call_id":"CA.1","to":"+1"}}"#;
        assert_eq!(
            call_id_of("call.inbound.acme", inbound).as_deref(),
            Some("CA.1")
        );
        let rejected = serde_json::json!({"data": {
            "original_payload": String::from_utf8_lossy(inbound),
            "code": "malformed"
        }});
        let rejected = serde_json::to_vec(&rejected).unwrap();
        assert_eq!(
            call_id_of("call.rejected.acme", &rejected).as_deref(),
            Some("CA.1")
        );
        assert_eq!(
            call_id_of(
                "call.rejected.acme",
                br#"{"data":{"original_payload":"{oops"}}"#
            ),
            None
        );
        assert_eq!(call_id_of("call.inbound.acme", b"not json"), None);
        assert_eq!(
            call_id_of("call.inbound.acme", br#"{"data":{"call_id":""}}"#),
            None
        );
        for id in ["x.y", "x y", "x*", "a>b", "tab\there", "ü", "#1", "a_b"] {
            let token = call_token(id);
            assert!(
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id:?} → {token:?}"
            );
        }
    }
}
