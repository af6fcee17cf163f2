//! NATS subjects of contract v1. Every subject carries the tenant, so consumers and
//! permissions can be scoped per tenant and a stream filter selects one tenant's history.

use crate::TenantId;

/// Prefix of every call event; the `CALLS` stream holds `call.>`.
pub const CALLS_PREFIX: &str = "call";
/// Prefix of every settings event; the `SETTINGS` stream holds `settings.>`.
pub const SETTINGS_PREFIX: &str = "settings";
/// Prefix of the indexes derived from the streams; the `INDEX` stream holds `index.>`.
pub const INDEX_PREFIX: &str = "index";

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

/// `call.missed.<tenant>`: a call that ended without anyone answering.
pub fn call_missed(tenant: &TenantId) -> String {
    format!("call.missed.{tenant}")
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

/// `index.call.<call>`: the call index's entries for one call id, each naming the CALLS
/// sequence of one of the call's events (so a call is found without scanning CALLS). The call
/// id is written as [`call_token`] makes it; the tenant is not in the subject, so a call is
/// found by id alone, as `switchboard explain` takes it.
pub fn call_index(call_id: &str) -> String {
    format!("{INDEX_PREFIX}.call.{}", call_token(call_id))
}

/// `index.phone.<tenant>.<key>`: the contact-phone index's entries, each naming the SETTINGS
/// sequence of a contact settings event that lists a phone with this key
/// ([`phone_index_keys`]), so the contacts that may have a number as of any SETTINGS sequence
/// are found without reading every contact.
pub fn phone_index(tenant: &TenantId, key: &str) -> String {
    format!("{INDEX_PREFIX}.phone.{tenant}.{key}")
}

/// Digits a phone index key keeps: the last seven, which every way of writing a number ends
/// with whatever the region it is read in (a country code or a national prefix only ever
/// changes the front).
const PHONE_KEY_DIGITS: usize = 7;

/// The key of a normalized number in the contact-phone index: its last seven digits.
pub fn phone_index_key(number: &crate::E164) -> String {
    last_digits(number.digits())
}

/// The keys under which a phone as entered in a contact's settings is indexed: the last seven
/// digits as written (up to an extension or a letter), and those of the number it parses to in
/// the default region (which spells out letters and drops extensions). A superset is harmless:
/// the lookup decides which contacts really have the number, as the router would.
pub fn phone_index_keys(raw: &str) -> Vec<String> {
    let written: String = raw
        .chars()
        .take_while(|c| !(c.is_alphabetic() || matches!(c, '#' | ';' | ',')))
        .filter(char::is_ascii_digit)
        .collect();
    let mut keys = Vec::with_capacity(2);
    if !written.is_empty() {
        keys.push(last_digits(&written));
    }
    if let Ok(parsed) = crate::E164::parse(raw, crate::Region::DEFAULT) {
        let key = phone_index_key(&parsed);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

fn last_digits(digits: &str) -> String {
    digits[digits.len().saturating_sub(PHONE_KEY_DIGITS)..].to_string()
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
    fn phones_are_indexed_under_the_last_seven_digits_however_written() {
        let t = TenantId::new("acme").unwrap();
        let number = crate::E164::parse_strict("+14158675310").unwrap();
        assert_eq!(phone_index_key(&number), "8675310");
        assert_eq!(phone_index(&t, "8675310"), "index.phone.acme.8675310");
        for raw in [
            "+14158675310",
            "(415) 867-5310",
            "415.867.5310 ext. 12",
            "1 415 867 5310#3",
        ] {
            assert!(
                phone_index_keys(raw).contains(&"8675310".to_string()),
                "{raw}"
            );
        }
        // Letters are spelled out by the parse (a vanity number).
        assert!(phone_index_keys("+1 800 FLOWERS").contains(&"3569377".to_string()));
        // Another region's national form ends the same.
        assert_eq!(phone_index_keys("020 7946 0000")[0], "9460000");
        assert!(phone_index_keys("no phone").is_empty());
    }

    #[test]
    fn call_ids_become_one_injective_subject_token() {
        assert_eq!(call_index("CA0123abcd"), "index.call.CA0123abcd");
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
