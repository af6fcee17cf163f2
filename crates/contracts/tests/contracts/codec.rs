//! The Rust decoder refuses what the contract refuses, each with its documented
//! `ContractError` variant and `code()` (docs/events.md § Validation and rejection).

use crate::support::{contract_of, example_json, set_path};
use serde_json::{Value, json};
use switchboard_contracts::{
    CallInbound, CallRejected, CallRoute, CallStatus, CompanySettings, ContractError,
    DialCallStatus, Envelope, EventData, NumberSettings, Rejection, SettingsChange,
    SettingsRejected, TenantId, UserSettings,
};

const INBOUND: &str = "switchboard.call.inbound.v1.json";
const ROUTE: &str = "switchboard.call.route.v2.json";
const ROUTE_V1: &str = "switchboard.call.route.v1.json";
const STATUS: &str = "switchboard.call.status.v1.json";
const NUMBER: &str = "switchboard.settings.number.v1.json";
const CALL_REJECTED: &str = "switchboard.call.rejected.v1.json";
const SETTINGS_REJECTED: &str = "switchboard.settings.rejected.v1.json";
const CALL_INBOUND_ACME: &str = "call.inbound.acme";

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

/// The example `name` with `f` applied to it.
fn mutated(name: &str, f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = example_json(name);
    f(&mut v);
    body(&v)
}

fn decode_err<T: EventData + std::fmt::Debug>(body: &[u8], subject: &str) -> ContractError {
    match Envelope::<T>::decode(body, subject) {
        Ok(env) => panic!("accepted: {env:?}"),
        Err(e) => e,
    }
}

#[test]
fn codes_are_stable() {
    let all = [
        (ContractError::Malformed(String::new()), "malformed"),
        (ContractError::SpecVersion(String::new()), "spec_version"),
        (
            ContractError::DataContentType(String::new()),
            "data_content_type",
        ),
        (
            ContractError::UnexpectedType {
                expected: String::new(),
                found: String::new(),
            },
            "unexpected_type",
        ),
        (ContractError::Missing("x"), "missing_field"),
        (
            ContractError::InvalidTenant(String::new()),
            "invalid_tenant",
        ),
        (
            ContractError::InvalidId {
                field: "x",
                value: String::new(),
            },
            "invalid_id",
        ),
        (
            ContractError::InvalidPhone {
                field: "x",
                masked: String::new(),
                reason: String::new(),
            },
            "invalid_phone",
        ),
        (ContractError::TooLong { field: "x", max: 1 }, "too_long"),
        (
            ContractError::SubjectMismatch {
                subject: String::new(),
                expected: String::new(),
            },
            "subject_mismatch",
        ),
        (ContractError::Version, "invalid_version"),
        (
            ContractError::InvalidSetting {
                field: "x".into(),
                reason: String::new(),
            },
            "invalid_setting",
        ),
    ];
    for (err, code) in all {
        assert_eq!(err.code(), code, "{err:?}");
    }
}

#[test]
fn the_examples_decode_on_their_subjects() {
    Envelope::<CallInbound>::decode(&body(&example_json(INBOUND)), CALL_INBOUND_ACME)
        .expect("inbound");
    Envelope::<CallRoute>::decode(&body(&example_json(ROUTE)), "call.route.acme").expect("route");
    // The history of an earlier version decodes as that version, on the same subject.
    for (name, event_type) in [
        (ROUTE, CallRoute::TYPE),
        (
            "switchboard.call.route.v2.after_hours.json",
            CallRoute::TYPE,
        ),
        ("switchboard.call.route.v2.no_route.json", CallRoute::TYPE),
        (ROUTE_V1, "switchboard.call.route.v1"),
        (
            "switchboard.call.route.v1.after_hours.json",
            "switchboard.call.route.v1",
        ),
        (
            "switchboard.call.route.v1.no_route.json",
            "switchboard.call.route.v1",
        ),
    ] {
        let env = Envelope::<CallRoute>::decode(&body(&example_json(name)), "call.route.acme")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(env.event_type, event_type, "{name}");
        assert_eq!(CallRoute::accepted_type(event_type), Some(event_type));
    }
    Envelope::<NumberSettings>::decode(
        &body(&example_json(NUMBER)),
        "settings.acme.number.16502530000",
    )
    .expect("number");
    Envelope::<CallRejected>::decode(&body(&example_json(CALL_REJECTED)), "call.rejected.acme")
        .expect("call rejected");
    Envelope::<SettingsRejected>::decode(
        &body(&example_json(SETTINGS_REJECTED)),
        "settings.acme.rejected.987",
    )
    .expect("settings rejected");
}

#[test]
fn rejections_decode_only_on_their_subjects() {
    let call = body(&example_json(CALL_REJECTED));
    let settings = body(&example_json(SETTINGS_REJECTED));
    let err = decode_err::<CallRejected>(&call, "call.rejected.globex");
    assert_eq!(
        err,
        ContractError::SubjectMismatch {
            subject: "call.rejected.globex".into(),
            expected: "call.rejected.acme".into(),
        }
    );
    // The sequence is the last subject token of a settings rejection.
    let err = decode_err::<SettingsRejected>(&settings, "settings.acme.rejected.988");
    assert_eq!(err.code(), "subject_mismatch");
    // Same data, other type: each type is accepted only as itself.
    let err = decode_err::<SettingsRejected>(&call, "settings.acme.rejected.2087");
    assert_eq!(err.code(), "unexpected_type");
    let err = decode_err::<CallRejected>(&settings, "call.rejected.acme");
    assert_eq!(err.code(), "unexpected_type");
    // Settings consumers skip rejections by their type (SettingsChange refuses them as such).
    let err = SettingsChange::decode(&settings, "settings.acme.rejected.987").expect_err("skip");
    assert_eq!(
        err,
        ContractError::UnexpectedType {
            expected: "switchboard.settings.{company,number,user,contact}.v1".into(),
            found: SettingsRejected::TYPE.into(),
        }
    );
    // A bad tenant id in a rejection is refused like anywhere else.
    let err = decode_err::<CallRejected>(
        &mutated(CALL_REJECTED, |v| v["data"]["tenant_id"] = json!("a.b")),
        "call.rejected.a.b",
    );
    assert_eq!(err.code(), "invalid_tenant");
    // `stream_seq` is a JSON number or a decimal string, and is required.
    let env = Envelope::<SettingsRejected>::decode(
        &mutated(SETTINGS_REJECTED, |v| {
            v["data"]["stream_seq"] = json!("987")
        }),
        "settings.acme.rejected.987",
    )
    .expect("decimal string");
    assert_eq!(env.data.0.stream_seq, 987);
    let err = decode_err::<SettingsRejected>(
        &mutated(SETTINGS_REJECTED, |v| {
            v["data"]
                .as_object_mut()
                .expect("object")
                .remove("stream_seq");
        }),
        "settings.acme.rejected.987",
    );
    assert_eq!(err.code(), "malformed");
}

/// The tenant of a rejection is the tenant token of the refused event's subject, or the
/// reserved `_invalid` when there is no valid one; id and subjects follow from stream and seq.
#[test]
fn rejections_are_filed_under_the_subjects_tenant_or_invalid() {
    let err = ContractError::Missing("to");
    for (subject, tenant) in [
        (CALL_INBOUND_ACME, "acme"),
        ("call.inbound.acme.extra", "acme"),
        ("settings.acme.user.u-42", "acme"),
        ("settings.globex", "globex"),
        ("call.inbound.ac:me", "_invalid"),
        ("call.inbound", "_invalid"),
        ("settings", "_invalid"),
        ("other.acme", "_invalid"),
        ("", "_invalid"),
    ] {
        let r = Rejection::new("CALLS", 5, subject, b"{}", &err);
        assert_eq!(r.tenant_id.as_str(), tenant, "{subject:?}");
        assert_eq!(r.original_subject, subject);
        assert_eq!(r.code, "missing_field");
        assert_eq!(r.reason, "missing or empty field `to`");
    }
    assert_eq!(TenantId::unknown().as_str(), "_invalid");

    let r = Rejection::new("SETTINGS", 42, "settings.a*b.user.u", b"\xffok", &err);
    assert_eq!(
        r.original_payload, "\u{FFFD}ok",
        "invalid UTF-8 is replaced"
    );
    let call = CallRejected(r.clone());
    assert_eq!(call.nats_subject(), "call.rejected._invalid");
    assert_eq!(call.event_id(), "rejected:SETTINGS:42");
    assert_eq!(call.ce_subject(), "SETTINGS/42");
    let settings = SettingsRejected(r);
    assert_eq!(settings.nats_subject(), "settings._invalid.rejected.42");
    assert_eq!(settings.event_id(), "rejected:SETTINGS:42");
    assert_eq!(settings.ce_subject(), "SETTINGS/42");
}

#[test]
fn envelope_attributes_are_checked() {
    let err = decode_err::<CallInbound>(b"{not json", CALL_INBOUND_ACME);
    assert_eq!(err.code(), "malformed");

    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["specversion"] = json!("0.3")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err, ContractError::SpecVersion("0.3".into()));
    assert_eq!(err.code(), "spec_version");

    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["datacontenttype"] = json!("application/xml")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(
        err,
        ContractError::DataContentType("application/xml".into())
    );
    assert_eq!(err.code(), "data_content_type");

    for attr in [
        "specversion",
        "datacontenttype",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "data",
    ] {
        let err = decode_err::<CallInbound>(
            &mutated(INBOUND, |v| {
                v.as_object_mut().expect("object").remove(attr);
            }),
            CALL_INBOUND_ACME,
        );
        assert_eq!(err, ContractError::Missing(attr), "without {attr}");
        assert_eq!(err.code(), "missing_field");
    }
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"] = Value::Null),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err, ContractError::Missing("data"));
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["id"] = json!("  ")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err, ContractError::Missing("id"));

    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["time"] = json!("14/03/2025")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err.code(), "malformed");
}

#[test]
fn type_and_subject_must_match() {
    // A call.inbound where a call.route is expected.
    let inbound = body(&example_json(INBOUND));
    let err = decode_err::<CallRoute>(&inbound, "call.route.acme");
    assert_eq!(
        err,
        ContractError::UnexpectedType {
            expected: CallRoute::TYPE.into(),
            found: CallInbound::TYPE.into(),
        }
    );
    assert_eq!(err.code(), "unexpected_type");
    // Only the versions a type decodes: not a later one, not one that never existed.
    for other in [
        "switchboard.call.route.v3",
        "switchboard.call.route.v0",
        "switchboard.call.route",
    ] {
        let err = decode_err::<CallRoute>(
            &mutated(ROUTE, |v| v["type"] = json!(other)),
            "call.route.acme",
        );
        assert_eq!(
            err,
            ContractError::UnexpectedType {
                expected: CallRoute::TYPE.into(),
                found: other.into(),
            }
        );
    }
    let err =
        SettingsChange::decode(&inbound, "settings.acme.user.u-42").expect_err("not settings");
    assert_eq!(err.code(), "unexpected_type");

    // The subject's tenant differs from data.tenant_id.
    let err = decode_err::<CallInbound>(&inbound, "call.inbound.globex");
    assert_eq!(
        err,
        ContractError::SubjectMismatch {
            subject: "call.inbound.globex".into(),
            expected: CALL_INBOUND_ACME.into(),
        }
    );
    assert_eq!(err.code(), "subject_mismatch");
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["tenant_id"] = json!("globex")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err.code(), "subject_mismatch");

    // A settings event on another entity's subject.
    let number = body(&example_json(NUMBER));
    let err = SettingsChange::decode(&number, "settings.acme.number.14155550123")
        .expect_err("other number");
    assert_eq!(err.code(), "subject_mismatch");
    let err = decode_err::<NumberSettings>(&number, "settings.acme.user.16502530000");
    assert_eq!(err.code(), "subject_mismatch");
}

#[test]
fn tenant_and_entity_ids_are_subject_tokens() {
    assert_eq!(
        TenantId::new("a.b"),
        Err(ContractError::InvalidTenant("a.b".into()))
    );
    assert_eq!(
        TenantId::new("a.b").map_err(|e| e.code()),
        Err("invalid_tenant")
    );

    // A bad tenant id in `data` is reported as such; a bad entity id is `malformed`, with the
    // serde error carrying the reason.
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["tenant_id"] = json!("a.b")),
        "call.inbound.a.b",
    );
    assert_eq!(err, ContractError::InvalidTenant("a.b".into()));
    assert_eq!(err.code(), "invalid_tenant");

    let user = example_json("switchboard.settings.user.v1.json");
    let mut bad = user.clone();
    bad["data"]["user_id"] = json!("u.42");
    let err = decode_err::<UserSettings>(&body(&bad), "settings.acme.user.u.42");
    assert!(
        matches!(&err, ContractError::Malformed(m) if m.contains("invalid id \"u.42\"")),
        "{err:?}"
    );
    let mut bad = user;
    bad["data"]["user_id"] = json!("");
    assert_eq!(
        decode_err::<UserSettings>(&body(&bad), "settings.acme.user.").code(),
        "malformed"
    );
}

#[test]
fn call_ids_are_checked() {
    for blank in ["", "   "] {
        let err = decode_err::<CallInbound>(
            &mutated(INBOUND, |v| v["data"]["call_id"] = json!(blank)),
            CALL_INBOUND_ACME,
        );
        assert_eq!(err, ContractError::Missing("call_id"), "{blank:?}");
        assert_eq!(err.code(), "missing_field");
    }
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["call_id"] = json!("CA 1")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err.code(), "malformed");
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["call_id"] = json!("C".repeat(129))),
        CALL_INBOUND_ACME,
    );
    assert_eq!(
        err,
        ContractError::TooLong {
            field: "call_id",
            max: 128
        }
    );
    assert_eq!(err.code(), "too_long");
    let err = decode_err::<CallRoute>(
        &mutated(ROUTE, |v| v["data"]["call_id"] = json!("")),
        "call.route.acme",
    );
    assert_eq!(err, ContractError::Missing("call_id"));

    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["to"] = json!(" ")),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err, ContractError::Missing("to"));
}

#[test]
fn data_shapes_are_checked() {
    // Enum values are names; numbers and unknown names are refused.
    for rule in [
        json!(1),
        json!("round_robin"),
        json!("rule_unspecified"),
        json!("ASSIGNED_USER"),
    ] {
        let err = decode_err::<CallRoute>(
            &mutated(ROUTE, |v| v["data"]["rule"] = rule.clone()),
            "call.route.acme",
        );
        assert_eq!(err.code(), "malformed", "rule {rule}");
    }
    // A wrong JSON type.
    let err = decode_err::<CallInbound>(
        &mutated(INBOUND, |v| v["data"]["to"] = json!(16502530000u64)),
        CALL_INBOUND_ACME,
    );
    assert_eq!(err.code(), "malformed");
    let err = decode_err::<CallRoute>(
        &mutated(ROUTE, |v| v["data"]["settings_seq"] = json!("many")),
        "call.route.acme",
    );
    assert_eq!(err.code(), "malformed");
    // A required field missing.
    let err = decode_err::<CallRoute>(
        &mutated(ROUTE, |v| {
            v["data"]
                .as_object_mut()
                .expect("object")
                .remove("final_action");
        }),
        "call.route.acme",
    );
    assert_eq!(err.code(), "malformed");
    // `target` is null when `rule` is no_route, and may be for after_hours (v2: closed, the
    // final action only); it is set for every other rule.
    for route in [ROUTE, ROUTE_V1] {
        let err = decode_err::<CallRoute>(
            &mutated(route, |v| v["data"]["rule"] = json!("no_route")),
            "call.route.acme",
        );
        assert_eq!(err.code(), "malformed", "{route}");
        let err = decode_err::<CallRoute>(
            &mutated(route, |v| v["data"]["target"] = Value::Null),
            "call.route.acme",
        );
        assert_eq!(err.code(), "malformed", "{route}");
    }
    for rule in [
        "assigned_user",
        "direct_line",
        "forwarding_number",
        "company_phone",
    ] {
        let err = decode_err::<CallRoute>(
            &mutated("switchboard.call.route.v2.after_hours.json", |v| {
                v["data"]["rule"] = json!(rule);
            }),
            "call.route.acme",
        );
        assert_eq!(err.code(), "malformed", "{rule} without a target");
    }
    let closed = Envelope::<CallRoute>::decode(
        &body(&example_json("switchboard.call.route.v2.after_hours.json")),
        "call.route.acme",
    )
    .expect("after_hours without a target");
    assert_eq!(
        (closed.data.rule, closed.data.target),
        (switchboard_contracts::Rule::AfterHours, None)
    );
    // Reasons: a list of objects, each with a string `code` and the parameters that code
    // requires; an unknown code is not an error (see proto_conformance).
    for bad in [
        json!({"code": "no_target_left"}),
        json!(["no_target_left"]),
        json!([{"number": "+16502530000"}]),
        json!([{"code": 4}]),
        json!([{"code": "caller_is_lead", "number": "+14158675310"}]),
        json!([{"code": "no_lead", "next": "nobody"}]),
        json!([{"code": "caller_unusable", "masked": "+1 ***", "error": {"problem": "missing"}}]),
        json!([{"code": "caller_unusable", "masked": "+1 ***", "error": {"problem": "unparseable"}}]),
        json!([{"code": "company_open", "hours": {"time_zone": "UTC"}}]),
        json!([{"code": "user_eligible", "rule": "assigned_user", "user_id": "u.42"}]),
    ] {
        let err = decode_err::<CallRoute>(
            &mutated(ROUTE, |v| v["data"]["reasons"] = bad.clone()),
            "call.route.acme",
        );
        assert_eq!(err.code(), "malformed", "reasons {bad}");
    }
    // Over-long text.
    let err = decode_err::<CallRoute>(
        &mutated(ROUTE, |v| {
            v["data"]["final_action"]["message"] = json!("a".repeat(2001))
        }),
        "call.route.acme",
    );
    assert_eq!(
        err,
        ContractError::TooLong {
            field: "final_action.message",
            max: 2000
        }
    );
}

#[test]
fn number_settings_need_canonical_e164() {
    for bad in [
        "4158675310",
        "+1 415 867 5310",
        "+1 (415) 867-5310",
        "+10000000000",
        "anonymous",
    ] {
        let err = decode_err::<NumberSettings>(
            &mutated(NUMBER, |v| v["data"]["number"] = json!(bad)),
            "settings.acme.number.16502530000",
        );
        match &err {
            ContractError::InvalidPhone { field, masked, .. } => {
                assert_eq!(*field, "number");
                assert!(
                    bad.len() <= 6 || !masked.contains(&bad[3..bad.len() - 2]),
                    "{masked} is masked"
                );
            }
            other => panic!("{bad:?}: {other:?}"),
        }
        assert_eq!(err.code(), "invalid_phone");
    }
}

#[test]
fn settings_versions_start_at_one() {
    for zero in [json!(0), json!("0")] {
        let body = mutated(NUMBER, |v| v["data"]["version"] = zero.clone());
        let err = decode_err::<NumberSettings>(&body, "settings.acme.number.16502530000");
        assert_eq!(err, ContractError::Version);
        assert_eq!(err.code(), "invalid_version");
        let err = SettingsChange::decode(&body, "settings.acme.number.16502530000")
            .expect_err("version 0");
        assert_eq!(err, ContractError::Version);
    }
    for bad in [
        json!(-1),
        json!(1.5),
        json!("1e3"),
        json!("18446744073709551616"),
    ] {
        let err = decode_err::<NumberSettings>(
            &mutated(NUMBER, |v| v["data"]["version"] = bad.clone()),
            "settings.acme.number.16502530000",
        );
        assert_eq!(err.code(), "malformed", "version {bad}");
    }
}

#[test]
fn company_regions_are_iso_codes() {
    let company = "switchboard.settings.company.v1.json";
    let err = decode_err::<CompanySettings>(
        &mutated(company, |v| v["data"]["default_region"] = json!("USA")),
        "settings.acme.company.main",
    );
    assert_eq!(err.code(), "malformed");
    Envelope::<CompanySettings>::decode(
        &mutated(company, |v| v["data"]["default_region"] = json!("gb")),
        "settings.acme.company.main",
    )
    .expect("case-insensitive region");
}

/// `null` means absent for the fields documented as "or null"; for the others (booleans,
/// lists, plain strings) it is refused: omit them instead.
#[test]
fn null_is_absent_only_for_nullable_fields() {
    let company = "switchboard.settings.company.v1.json";
    let nullable: [(&str, &str, &str); 10] = [
        (INBOUND, "contact_id", CALL_INBOUND_ACME),
        (ROUTE, "target.user_id", "call.route.acme"),
        (company, "company_phone", "settings.acme.company.main"),
        (company, "default_region", "settings.acme.company.main"),
        (company, "final_action", "settings.acme.company.main"),
        (
            NUMBER,
            "forwarding_number",
            "settings.acme.number.16502530000",
        ),
        (
            "switchboard.settings.user.v1.json",
            "phone",
            "settings.acme.user.u-42",
        ),
        (
            "switchboard.settings.contact.v1.json",
            "assigned_user_id",
            "settings.acme.contact.c-1001",
        ),
        (
            "switchboard.call.route.v2.no_route.json",
            "target",
            "call.route.acme",
        ),
        (
            "switchboard.call.route.v2.after_hours.json",
            "target",
            "call.route.acme",
        ),
    ];
    for (example, field, subject) in nullable {
        let body = mutated(example, |v| set_path(&mut v["data"], field, Value::Null));
        let raw = switchboard_contracts::RawEnvelope::parse(&body).expect("envelope");
        let decoded = contract_of(&raw.event_type).map(|c| (c.decode)(&body));
        assert!(
            matches!(decoded, Some(Ok(ref d)) if d.nats_subject == subject),
            "{example}: {field}: null refused: {decoded:?}"
        );
    }

    // proto3 JSON reads `null` on a non-optional field as its default value; so does Rust.
    let defaulted: [(&str, &str); 6] = [
        (INBOUND, "from"),
        (ROUTE, "fallbacks"),
        (ROUTE, "reasons"),
        (NUMBER, "released"),
        ("switchboard.settings.user.v1.json", "active"),
        ("switchboard.settings.contact.v1.json", "phones"),
    ];
    for (example, field) in defaulted {
        let body = mutated(example, |v| set_path(&mut v["data"], field, Value::Null));
        let raw = switchboard_contracts::RawEnvelope::parse(&body).expect("envelope");
        let contract = contract_of(&raw.event_type).expect("known type");
        assert!(
            (contract.decode)(&body).is_ok(),
            "{example}: {field}: null should read as the default"
        );
    }
    // v1 history: `null` prose reads as none.
    for field in ["explanation", "fallbacks"] {
        let v1 = mutated(ROUTE_V1, |v| v["data"][field] = Value::Null);
        let env = Envelope::<CallRoute>::decode(&v1, "call.route.acme")
            .unwrap_or_else(|e| panic!("v1 {field}: null should read as the default: {e}"));
        assert_eq!(env.event_type, "switchboard.call.route.v1");
    }
    let inbound = mutated(INBOUND, |v| v["data"]["from"] = Value::Null);
    let call =
        switchboard_contracts::Envelope::<CallInbound>::decode(&inbound, "call.inbound.acme")
            .expect("null `from` reads as withheld");
    assert_eq!(call.data.from, "");
}

#[test]
fn call_status_is_one_event_per_step_with_twilio_statuses_mapped() {
    let env = Envelope::<CallStatus>::decode(&body(&example_json(STATUS)), "call.status.acme")
        .expect("status");
    assert_eq!(env.data.dial_call_status, DialCallStatus::NoAnswer);
    assert_eq!(env.id, "acme:CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c:status:0");
    assert_eq!(env.data.event_id(), env.id);
    for (twilio, wire) in [
        ("completed", DialCallStatus::Completed),
        ("busy", DialCallStatus::Busy),
        ("no-answer", DialCallStatus::NoAnswer),
        ("failed", DialCallStatus::Failed),
        ("canceled", DialCallStatus::Canceled),
    ] {
        assert_eq!(DialCallStatus::from_twilio(twilio), Some(wire));
    }
    assert_eq!(DialCallStatus::from_twilio("ringing"), None);

    let twilio_spelling = mutated(STATUS, |v| {
        v["data"]["dial_call_status"] = json!("no-answer");
    });
    assert!(matches!(
        decode_err::<CallStatus>(&twilio_spelling, "call.status.acme"),
        ContractError::Malformed(_)
    ));
    let blank_sid = mutated(STATUS, |v| v["data"]["dial_call_sid"] = json!(""));
    assert_eq!(
        decode_err::<CallStatus>(&blank_sid, "call.status.acme"),
        ContractError::Missing("dial_call_sid")
    );
    assert!(matches!(
        decode_err::<CallStatus>(&body(&example_json(STATUS)), "call.status.other"),
        ContractError::SubjectMismatch { .. }
    ));
}

/// The projection store keeps each entity as its event's `data` document: written by
/// `to_data_json`, read back by `from_data_json` through the event's own types and validation.
#[test]
fn settings_data_documents_round_trip_and_take_defaults_for_absent_fields() {
    for name in [
        "switchboard.settings.company.v1.json",
        "switchboard.settings.number.v1.json",
        "switchboard.settings.number.v1.released.json",
        "switchboard.settings.user.v1.json",
        "switchboard.settings.contact.v1.json",
    ] {
        let example = example_json(name);
        let subject = match SettingsChange::decode(&body(&example), "settings.x.y.z") {
            Err(ContractError::SubjectMismatch { expected, .. }) => expected,
            other => panic!("{name}: {other:?}"),
        };
        let change = SettingsChange::decode(&body(&example), &subject).expect("decodes");
        let json = change.to_data_json().expect("encodes");
        let (entity, _) = change.key();
        assert_eq!(
            SettingsChange::from_data_json(entity, &json).expect("reads back"),
            change,
            "{name}"
        );
        // The event's own `data`, as sent, reads the same.
        let data = serde_json::to_string(&example["data"]).expect("JSON");
        assert_eq!(
            SettingsChange::from_data_json(entity, &data).expect("reads"),
            change,
            "{name}"
        );
    }

    // A document without the optional fields (one stored before a field existed) reads with
    // the contract's defaults.
    let bare = r#"{"tenant_id":"acme","version":3,"number":"+16502530000"}"#;
    match SettingsChange::from_data_json("number", bare).expect("reads") {
        SettingsChange::Number(n) => {
            assert_eq!(n.version, 3);
            assert_eq!(n.forwarding_number, None);
            assert!(!n.released);
        }
        other => panic!("{other:?}"),
    }
    let bare = r#"{"tenant_id":"acme","version":1}"#;
    match SettingsChange::from_data_json("company", bare).expect("reads") {
        SettingsChange::Company(c) => {
            assert_eq!(
                (c.company_phone, c.default_region, c.final_action),
                (None, None, None)
            );
        }
        other => panic!("{other:?}"),
    }

    // Validated as an event is.
    let zero = r#"{"tenant_id":"acme","version":0,"user_id":"u1"}"#;
    assert_eq!(
        SettingsChange::from_data_json("user", zero),
        Err(ContractError::Version)
    );
    let bad_number = r#"{"tenant_id":"acme","version":1,"number":"6502530000"}"#;
    assert!(matches!(
        SettingsChange::from_data_json("number", bad_number),
        Err(ContractError::InvalidPhone { .. })
    ));
    assert!(SettingsChange::from_data_json("rejected", "{}").is_err());
}
