//! The fuzz harness, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the corpus
//! replay test (`tests/chaos`, which includes this file): each entry point takes arbitrary
//! bytes, must never panic, and returns what the input led to (one line per decoder). The
//! `assert!`s are properties of the code under test; a fuzzer reports a broken one as a crash.

use switchboard_contracts::{
    CallDial, CallInbound, CallRejected, CallRoute, CallStatus, ContractError, DialCallStatus,
    E164, Envelope, EventData, Region, SettingsChange, SettingsRejected, TenantId, phone,
};
use switchboard_gateway::signature;

/// Event decoding, as every consumer does it: `RawEnvelope::parse`, then each typed decode
/// (`Envelope::<T>::decode`, `SettingsChange::decode`). A typed decode refused only because of
/// the NATS subject must succeed on the subject the error names; whatever decodes re-encodes
/// and decodes to the same event.
pub fn decode_event(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    out.push(match switchboard_contracts::RawEnvelope::parse(data) {
        Ok(raw) => format!("raw: ok {}", raw.event_type),
        Err(e) => format!("raw: {}", e.code()),
    });
    out.push(typed::<CallInbound>(data, "call.inbound.acme"));
    out.push(typed::<CallRoute>(data, "call.route.acme"));
    out.push(typed::<CallStatus>(data, "call.status.acme"));
    out.push(typed::<CallDial>(data, "call.dial.acme"));
    out.push(typed::<CallRejected>(data, "call.rejected.acme"));
    out.push(typed::<SettingsRejected>(data, "settings.acme.rejected.1"));
    out.push(settings(data, "settings.acme.user.u-42"));
    out
}

fn typed<T: EventData + PartialEq + std::fmt::Debug>(data: &[u8], subject: &str) -> String {
    let decoded = match Envelope::<T>::decode(data, subject) {
        Err(ContractError::SubjectMismatch { expected, .. }) => {
            match Envelope::<T>::decode(data, &expected) {
                Ok(event) => event,
                Err(e) => panic!(
                    "{}: refused on {expected}, the subject it asked for: {e}",
                    T::TYPE
                ),
            }
        }
        Err(e) => return format!("{}: {}", T::TYPE, e.code()),
        Ok(event) => event,
    };
    let json = match decoded.to_json() {
        Ok(json) => json,
        Err(e) => panic!("{}: a decoded event does not encode: {e}", T::TYPE),
    };
    match Envelope::<T>::decode(&json, &decoded.data.nats_subject()) {
        Ok(again) => assert_eq!(again, decoded, "{}: re-encoding changed the event", T::TYPE),
        Err(e) => panic!("{}: a re-encoded event is refused: {e}", T::TYPE),
    }
    format!("{}: ok", T::TYPE)
}

fn settings(data: &[u8], subject: &str) -> String {
    let change = match SettingsChange::decode(data, subject) {
        Err(ContractError::SubjectMismatch { expected, .. }) => {
            match SettingsChange::decode(data, &expected) {
                Ok(change) => change,
                Err(e) => panic!("settings: refused on {expected}, the subject it asked for: {e}"),
            }
        }
        Err(e) => return format!("settings: {}", e.code()),
        Ok(change) => change,
    };
    let (kind, id) = change.key();
    assert!(!id.is_empty(), "settings: an entity without an id");
    format!("settings: ok {kind} v{}", change.version())
}

/// Phone-number normalization: the input is a number as entered, optionally preceded by a
/// region (`GB:020 7946 0958`). A number that normalizes is canonical E.164 (strict parsing
/// gives it back, its lookup key is itself); masking never panics.
pub fn phone(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (region, raw) = match text.split_once(':') {
        Some((code, rest)) if code.len() == 2 => match Region::parse(code) {
            Some(region) => (region, rest),
            None => (Region::DEFAULT, text.as_ref()),
        },
        _ => (Region::DEFAULT, text.as_ref()),
    };
    let masked = phone::mask(raw);
    assert_eq!(
        masked.chars().count(),
        raw.chars().count(),
        "masking changed the length"
    );
    assert!(
        masked.chars().filter(|c| *c != '*').count() <= 5,
        "masking shows more than five characters"
    );
    let strict = E164::parse_strict(raw).ok();
    let lookup = E164::lookup_key(raw, region).is_ok();
    match E164::parse(raw, region) {
        Ok(number) => {
            let digits = number.digits();
            assert!(
                number.as_str().starts_with('+')
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit()),
                "not E.164: {number:?}"
            );
            assert_eq!(
                E164::parse_strict(number.as_str()).ok().as_ref(),
                Some(&number),
                "a normalized number is not canonical"
            );
            assert_eq!(
                E164::lookup_key(number.as_str(), region).ok().as_ref(),
                Some(&number),
                "the lookup key of a canonical number is not itself"
            );
            if let Some(strict) = &strict {
                assert_eq!(strict, &number, "strict and lenient parsing disagree");
            }
            format!("phone: ok (strict {}, lookup {lookup})", strict.is_some())
        }
        Err(e) => {
            assert!(
                strict.is_none() || region != Region::DEFAULT,
                "strict accepts what parse refuses"
            );
            format!(
                "phone: refused ({})",
                e.to_string().chars().take(40).collect::<String>()
            )
        }
    }
}

/// Twilio webhook bodies and signatures, read as the gateway reads them: the input is
/// `<auth token>\n<public URL>\n<form body>[\n<X-Twilio-Signature>]`; the body is parsed with
/// `form_urlencoded` (every parameter, in order, as the gateway keeps them), the signature with
/// the gateway's `signature` module. Twilio's own signature verifies in any parameter order, a
/// changed value does not, any header value is checked without panicking; the fields the
/// webhooks read are then normalized and validated as the gateway does.
pub fn twilio_form(data: &[u8]) -> String {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();

    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let computed = signature::compute(&token, &url, &params);
    assert!(
        signature::verify(&token, &url, &params, &computed),
        "the signature Twilio would send does not verify"
    );
    let mut reversed = params.clone();
    reversed.reverse();
    assert!(
        signature::verify(&token, &url, &reversed, &computed),
        "the parameter order changed the signature"
    );
    if let Some(first) = params.first() {
        let mut tampered = params.clone();
        tampered[0].1 = format!("{}x", first.1);
        assert!(
            !signature::verify(&token, &url, &tampered, &computed),
            "a changed parameter still verifies"
        );
    }
    let signed = signature::verify(&token, &url, &params, &header);

    // What the webhooks read: the first non-blank value of a parameter.
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let to = get("To").map(|to| E164::parse(to, Region::DEFAULT));
    let status = get("DialCallStatus").map(DialCallStatus::from_twilio);
    let valid_call = match (get("CallSid"), &to) {
        (Some(call_id), Some(Ok(to))) => {
            let call = CallInbound {
                call_id: call_id.to_string(),
                tenant_id: TenantId::unknown(),
                to: to.as_str().to_string(),
                from: get("From").unwrap_or("").to_string(),
                received_at: time::OffsetDateTime::UNIX_EPOCH,
                contact_id: None,
            };
            Some(call.validate().is_ok())
        }
        _ => None,
    };
    format!(
        "twilio: {} params, signed {signed}, To {:?}, DialCallStatus {:?}, valid call {valid_call:?}",
        params.len(),
        to.map(|r| r.is_ok()),
        status.map(|s| s.map(DialCallStatus::as_str)),
    )
}
