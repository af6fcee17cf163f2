//! `proto/` and the Rust contract agree: the proto files compile, the examples are valid for
//! both, everything Rust emits is valid proto3 JSON of its message, and what proto3 JSON
//! producers in other languages emit decodes in Rust with the same meaning.

use crate::support::{
    Contract, compile, contract_of, contracts, envelope, example_json, examples, message,
    message_of, pool, proto_files, set_path, validate,
};
use proptest::prelude::*;
use prost_reflect::{DynamicMessage, Kind, Value as PValue};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use switchboard_contracts::schedule::{Schedule, ScheduleOverride, WeeklyHours};
use switchboard_contracts::{
    Actor, CallDial, CallInbound, CallRejected, CallRoute, CallStatus, CompanySettings,
    ContactSettings, ContractError, DialCallStatus, DialEventKind, E164, EntityId, Envelope,
    EventData, FinalAction, FinalActionKind, NumberSettings, PhoneError, RawEnvelope, Region,
    Rejection, Rule, SettingsChange, SettingsRejected, Target, TenantId, UserSettings,
};
use switchboard_contracts::{AfterHours, AfterHoursKind, Prefer};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

const PACKAGE: &str = "switchboard.v1";
/// Messages of the package that are parts of event data, not event data themselves.
const PART_MESSAGES: [&str; 6] = [
    "switchboard.v1.Target",
    "switchboard.v1.FinalAction",
    "switchboard.v1.Schedule",
    "switchboard.v1.WeeklyHours",
    "switchboard.v1.ScheduleOverride",
    "switchboard.v1.AfterHours",
];
/// Messages that are the data of several event types, with exactly those types.
const SHARED_MESSAGES: [(&str, [&str; 2]); 1] = [(
    "switchboard.v1.Rejection",
    [CallRejected::TYPE, SettingsRejected::TYPE],
)];

// ---------------------------------------------------------------------------------------------
// The proto files themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn proto_files_compile_without_protoc() {
    let files = proto_files();
    assert_eq!(
        files,
        [
            "switchboard/v1/calls.proto",
            "switchboard/v1/rejections.proto",
            "switchboard/v1/settings.proto"
        ],
        "proto/switchboard holds exactly the v1 files"
    );
    let compiler = compile().unwrap_or_else(|e| panic!("proto/ does not compile: {e:?}"));
    let opened: Vec<&str> = compiler
        .files()
        .filter(|f| !f.is_import())
        .map(|f| f.name())
        .collect();
    assert_eq!(opened, files);
    let pool = compiler.descriptor_pool();
    for name in &files {
        let file = pool.get_file_by_name(name).expect("compiled");
        assert_eq!(file.package_name(), PACKAGE, "{name}");
        assert_eq!(file.file_descriptor_proto().syntax(), "proto3", "{name}");
    }
}

#[test]
fn every_field_keeps_its_snake_case_name_in_json() {
    for msg in pool()
        .all_messages()
        .filter(|m| m.package_name() == PACKAGE)
    {
        for field in msg.fields() {
            assert_eq!(
                field.json_name(),
                field.name(),
                "{}: set [json_name = \"{}\"] so canonical proto3 JSON uses the contract name",
                field.full_name(),
                field.name()
            );
        }
    }
}

#[test]
fn every_declaration_is_commented() {
    let compiler = compile().expect("compiles");
    let set = compiler.file_descriptor_set();
    for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
        let info = file.source_code_info.as_ref().expect("source info");
        let commented = |path: &[i32]| {
            info.location
                .iter()
                .any(|l| l.path == path && l.leading_comments().trim().len() > 3)
        };
        // FileDescriptorProto: 4 = message_type, 5 = enum_type; DescriptorProto / EnumDescriptorProto: 2 = field / value.
        for (i, m) in file.message_type.iter().enumerate() {
            let i = i32::try_from(i).expect("index");
            assert!(
                commented(&[4, i]),
                "{}: message {} has no comment",
                file.name(),
                m.name()
            );
            for (j, f) in m.field.iter().enumerate() {
                let j = i32::try_from(j).expect("index");
                assert!(
                    commented(&[4, i, 2, j]),
                    "{}.{} has no comment",
                    m.name(),
                    f.name()
                );
            }
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            let i = i32::try_from(i).expect("index");
            assert!(
                commented(&[5, i]),
                "{}: enum {} has no comment",
                file.name(),
                e.name()
            );
            for (j, v) in e.value.iter().enumerate() {
                let j = i32::try_from(j).expect("index");
                assert!(
                    commented(&[5, i, 2, j]),
                    "{}.{} has no comment",
                    e.name(),
                    v.name()
                );
            }
        }
        let header = info
            .location
            .iter()
            .find(|l| l.path == [12])
            .map(|l| {
                format!(
                    "{}\n{}",
                    l.leading_detached_comments.join("\n"),
                    l.leading_comments()
                )
            })
            .unwrap_or_default();
        for needle in ["switchboard.", "stream", " on "] {
            assert!(
                header.contains(needle),
                "{}: the header comment names the CloudEvents types, subjects and stream",
                file.name()
            );
        }
        // …and lists, one per line, each type whose data is defined in the file with its message.
        for c in contracts() {
            let msg = message(c.message);
            if msg.parent_file().name() == file.name() {
                let listed = header.lines().any(|line| {
                    line.split_whitespace().any(|w| w == c.event_type)
                        && line.contains(&format!("data = {}", msg.name()))
                });
                assert!(
                    listed,
                    "{}: the header comment lists `{}  data = {}  on  <subject>`",
                    file.name(),
                    c.event_type,
                    msg.name()
                );
            }
        }
    }
}

#[test]
fn the_type_map_covers_every_event_type_of_the_rust_contract() {
    let rust_types = [
        CallInbound::TYPE,
        CallRoute::TYPE,
        CallStatus::TYPE,
        CallDial::TYPE,
        CallRejected::TYPE,
        CompanySettings::TYPE,
        NumberSettings::TYPE,
        UserSettings::TYPE,
        ContactSettings::TYPE,
        SettingsRejected::TYPE,
    ];
    let mapped: Vec<&str> = contracts().iter().map(|c| c.event_type).collect();
    assert_eq!(
        mapped.iter().copied().collect::<BTreeSet<_>>(),
        rust_types.into_iter().collect::<BTreeSet<_>>(),
        "contracts() maps exactly the Rust event types"
    );
    assert_eq!(mapped.len(), rust_types.len(), "no type is mapped twice");

    // Every message is the data of exactly one type (or of exactly the types it is listed with
    // in SHARED_MESSAGES), or a part of one.
    let mut types_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in contracts() {
        types_of.entry(c.message).or_default().insert(c.event_type);
    }
    for (msg, types) in &types_of {
        let expected: BTreeSet<&str> = SHARED_MESSAGES
            .iter()
            .find(|(m, _)| m == msg)
            .map(|(_, shared)| shared.iter().copied().collect())
            .unwrap_or_else(|| types.iter().take(1).copied().collect());
        assert_eq!(
            types, &expected,
            "{msg} is the data of these types; list it in SHARED_MESSAGES if that is intended"
        );
    }
    let messages: BTreeSet<&str> = types_of.keys().copied().collect();
    for (shared, _) in SHARED_MESSAGES {
        assert!(messages.contains(shared), "{shared} is not in contracts()");
    }
    for msg in pool()
        .all_messages()
        .filter(|m| m.package_name() == PACKAGE)
    {
        assert!(
            messages.contains(msg.full_name()) || PART_MESSAGES.contains(&msg.full_name()),
            "{} is neither the data of an event type nor a known part: map it in contracts()",
            msg.full_name()
        );
    }
    for c in contracts() {
        message(c.message);
        // switchboard.<a>.<b>.v1 → <B>, e.g. settings.company → CompanySettings.
        let parts: Vec<&str> = c.event_type.split('.').collect();
        assert_eq!(parts.first(), Some(&"switchboard"), "{}", c.event_type);
        assert_eq!(parts.last(), Some(&"v1"), "{}", c.event_type);
    }
}

#[test]
fn enum_value_names_are_the_rust_wire_names() {
    let rule = pool()
        .get_enum_by_name("switchboard.v1.Rule")
        .expect("Rule");
    // In declaration order (the order the rules apply, as `Rule::ALL`), not number order (the
    // order they were added in).
    let names: Vec<String> = rule
        .enum_descriptor_proto()
        .value
        .iter()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().to_string())
        .collect();
    let wire: Vec<String> = Rule::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let json = serde_json::to_value(r).expect("JSON");
            assert_eq!(json, r.as_str(), "serde and as_str agree");
            assert_eq!(r.index(), i, "Rule::index is the position in Rule::ALL");
            r.as_str().to_string()
        })
        .collect();
    assert_eq!(names, wire);
    assert_eq!(
        rule.get_value(0).map(|v| v.name().to_string()).as_deref(),
        Some("rule_unspecified")
    );

    let kind = pool()
        .get_enum_by_name("switchboard.v1.FinalActionKind")
        .expect("FinalActionKind");
    let names: Vec<Value> = kind
        .values()
        .filter(|v| v.number() != 0)
        .map(|v| Value::from(v.name()))
        .collect();
    let wire: Vec<Value> = [FinalActionKind::Voicemail, FinalActionKind::AnnounceHangup]
        .iter()
        .map(|k| serde_json::to_value(k).expect("JSON"))
        .collect();
    assert_eq!(names, wire);

    let status = pool()
        .get_enum_by_name("switchboard.v1.DialCallStatus")
        .expect("DialCallStatus");
    let names: Vec<String> = status
        .values()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().to_string())
        .collect();
    let wire: Vec<String> = [
        DialCallStatus::Completed,
        DialCallStatus::Busy,
        DialCallStatus::NoAnswer,
        DialCallStatus::Failed,
        DialCallStatus::Canceled,
    ]
    .iter()
    .map(|s| {
        let json = serde_json::to_value(s).expect("JSON");
        assert_eq!(json, s.as_str(), "serde and as_str agree");
        s.as_str().to_string()
    })
    .collect();
    assert_eq!(names, wire);

    let dial = pool()
        .get_enum_by_name("switchboard.v1.DialEventKind")
        .expect("DialEventKind");
    let names: Vec<String> = dial
        .values()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().to_string())
        .collect();
    let wire: Vec<String> = [
        DialEventKind::StepStarted,
        DialEventKind::Answered,
        DialEventKind::StepFailed,
        DialEventKind::ChainExhausted,
        DialEventKind::FinalActionTaken,
    ]
    .iter()
    .map(|k| {
        let json = serde_json::to_value(k).expect("JSON");
        assert_eq!(json, k.as_str(), "serde and as_str agree");
        k.as_str().to_string()
    })
    .collect();
    assert_eq!(names, wire);
}

// ---------------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------------

#[test]
fn every_event_type_has_an_example() {
    let names: Vec<String> = examples().into_iter().map(|(n, _)| n).collect();
    for c in contracts() {
        let file = format!("{}.json", c.event_type);
        assert!(names.contains(&file), "proto/examples/{file} is missing");
    }
}

#[test]
fn every_example_is_valid_proto_and_decodes_in_rust() {
    let all = examples();
    assert!(all.len() >= contracts().len());
    for (name, body) in &all {
        let raw = RawEnvelope::parse(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Contract {
            event_type,
            message,
            decode,
        } = contract_of(&raw.event_type)
            .unwrap_or_else(|| panic!("{name}: unknown type {}", raw.event_type));
        let rest = name
            .strip_prefix(event_type)
            .unwrap_or_else(|| panic!("{name} must be named <type>[.<variant>].json"));
        assert!(
            rest == ".json" || (rest.starts_with('.') && rest.len() > ".json".len() + 1),
            "{name} must be named <type>[.<variant>].json"
        );

        validate(message, &raw.data)
            .unwrap_or_else(|e| panic!("{name}: data is not a valid {message}: {e}"));

        let decoded =
            decode(body).unwrap_or_else(|e| panic!("{name}: Rust decoder refused it: {e}"));
        assert_eq!(
            decoded.id, decoded.event_id,
            "{name}: `id` is not the derived event id"
        );
        assert_eq!(
            decoded.subject, decoded.ce_subject,
            "{name}: `subject` is not the derived one"
        );
        assert_eq!(raw.id, decoded.event_id, "{name}");

        if event_type == CallRejected::TYPE || event_type == SettingsRejected::TYPE {
            let data: Rejection =
                serde_json::from_value(raw.data.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (stream, nats_subject) = if event_type == CallRejected::TYPE {
                ("CALLS", "call.rejected.acme".to_string())
            } else {
                (
                    "SETTINGS",
                    format!("settings.acme.rejected.{}", data.stream_seq),
                )
            };
            assert_eq!(data.stream, stream, "{name}");
            assert_eq!(decoded.nats_subject, nats_subject, "{name}");
            assert_eq!(raw.source, "/switchboard/router", "{name}");
            // Settings consumers see it on `settings.>` and skip it by its type.
            if event_type == SettingsRejected::TYPE {
                let err = SettingsChange::decode(body, &decoded.nats_subject)
                    .expect_err("a rejection is not a settings change");
                assert!(
                    matches!(&err, ContractError::UnexpectedType { found, .. } if found == event_type),
                    "{name}: {err:?}"
                );
            }
        } else if event_type.starts_with("switchboard.settings.") {
            let change = SettingsChange::decode(body, &decoded.nats_subject)
                .unwrap_or_else(|e| panic!("{name}: SettingsChange::decode: {e}"));
            let (entity, id) = change.key();
            assert_eq!(format!("{entity}/{id}"), raw.subject, "{name}");
            assert_eq!(change.tenant_id().as_str(), "acme", "{name}");
            assert!(
                raw.id.ends_with(&format!(":v{}", change.version())),
                "{name}"
            );
        } else {
            assert!(decoded.nats_subject.starts_with("call."), "{name}");
        }
        assert!(
            decoded.nats_subject.contains(".acme"),
            "{name}: tenant acme"
        );
    }
}

/// The phone numbers in the examples are real numbers: what must be E.164 is canonical E.164,
/// what may be national parses in the default region, a withheld caller reads as withheld.
#[test]
fn example_phone_numbers_are_valid() {
    fn strict(name: &str, field: &str, v: &Value) {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {field} is not a string"));
        E164::parse_strict(s).unwrap_or_else(|e| panic!("{name}: {field} {s:?}: {e}"));
    }
    fn lenient(name: &str, field: &str, v: &Value) {
        if let Some(s) = v.as_str() {
            E164::parse(s, Region::DEFAULT)
                .unwrap_or_else(|e| panic!("{name}: {field} {s:?}: {e}"));
        }
    }
    let mut checked = 0;
    for (name, body) in examples() {
        let raw = RawEnvelope::parse(&body).expect("envelope");
        let d = &raw.data;
        match raw.event_type.as_str() {
            CallInbound::TYPE => {
                lenient(&name, "to", &d["to"]);
                match E164::parse(d["from"].as_str().unwrap_or(""), Region::DEFAULT) {
                    Ok(_) | Err(PhoneError::Withheld) => {}
                    Err(e) => panic!("{name}: from: {e}"),
                }
            }
            CallRoute::TYPE => {
                if !d["target"].is_null() {
                    strict(&name, "target.number", &d["target"]["number"]);
                }
                for t in d["fallbacks"].as_array().into_iter().flatten() {
                    strict(&name, "fallbacks[].number", &t["number"]);
                }
            }
            CallDial::TYPE => {
                if !d["target"].is_null() {
                    strict(&name, "target.number", &d["target"]["number"]);
                }
            }
            CompanySettings::TYPE => lenient(&name, "company_phone", &d["company_phone"]),
            NumberSettings::TYPE => {
                strict(&name, "number", &d["number"]);
                lenient(&name, "forwarding_number", &d["forwarding_number"]);
            }
            UserSettings::TYPE => lenient(&name, "phone", &d["phone"]),
            ContactSettings::TYPE => {
                for p in d["phones"].as_array().into_iter().flatten() {
                    lenient(&name, "phones[]", p);
                }
            }
            // No phone fields; the refused originals are checked by
            // `rejection_examples_are_what_rust_files_for_their_original_event`.
            CallRejected::TYPE | SettingsRejected::TYPE | CallStatus::TYPE => {}
            other => panic!("{name}: unknown type {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, examples().len());
}

/// A rejection example is exactly what Switchboard files for its original: decoding
/// `original_payload` on `original_subject` the way the router (calls) or its settings follower
/// (settings) does fails, and `Rejection::new` of that failure is the example's `data`.
#[test]
fn rejection_examples_are_what_rust_files_for_their_original_event() {
    type Refuse = fn(&[u8], &str) -> Option<ContractError>;
    let mut checked = 0;
    for (name, body) in examples() {
        let raw = RawEnvelope::parse(&body).expect("envelope");
        let (stream, refuse): (&str, Refuse) = match raw.event_type.as_str() {
            CallRejected::TYPE => ("CALLS", |b, s| Envelope::<CallInbound>::decode(b, s).err()),
            SettingsRejected::TYPE => ("SETTINGS", |b, s| SettingsChange::decode(b, s).err()),
            _ => continue,
        };
        let data: Rejection =
            serde_json::from_value(raw.data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let original = data.original_payload.as_bytes();
        let err = refuse(original, &data.original_subject)
            .unwrap_or_else(|| panic!("{name}: the original event is accepted"));
        let filed = Rejection::new(
            stream,
            data.stream_seq,
            &data.original_subject,
            original,
            &err,
        );
        assert_eq!(filed, data, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 2, "one example per rejection type");
}

// ---------------------------------------------------------------------------------------------
// Rust → proto: everything Rust emits is valid for its message
// ---------------------------------------------------------------------------------------------

/// Wraps `data` as Rust publishes it, checks the body's `data` is valid proto3 JSON of its
/// message (unknown fields denied) and that Rust decodes the body back to the same envelope.
fn emit<T: EventData + Debug + Clone + PartialEq>(
    data: T,
    time: OffsetDateTime,
) -> (Envelope<T>, DynamicMessage) {
    let env = Envelope::new(data, "/switchboard/test", time);
    let body = env
        .to_json()
        .unwrap_or_else(|e| panic!("to_json failed for {env:?}: {e}"));
    let json: Value = serde_json::from_slice(&body).expect("to_json is JSON");
    let msg = validate(message_of::<T>(), &json["data"]).unwrap_or_else(|e| {
        panic!(
            "{} data emitted by Rust is not a valid {}: {e}\n{json}",
            T::TYPE,
            message_of::<T>()
        )
    });
    let back = Envelope::<T>::decode(&body, &env.data.nats_subject())
        .unwrap_or_else(|e| panic!("Rust does not decode what it emitted: {e}\n{json}"));
    assert_eq!(back, env);
    (env, msg)
}

/// Re-serializes the proto message as canonical proto3 JSON (what generated code in another
/// language emits: defaults omitted, uint64 as strings, timestamps in UTC) and checks Rust
/// decodes it to the same data.
fn through_canonical_proto_json<T: EventData + Debug + PartialEq>(
    env: &Envelope<T>,
    msg: &DynamicMessage,
) {
    let canonical = serde_json::to_value(msg).expect("canonical proto3 JSON");
    let body = envelope(T::TYPE, &env.id, &env.subject, canonical.clone());
    let back = Envelope::<T>::decode(&body, &env.data.nats_subject()).unwrap_or_else(|e| {
        panic!(
            "Rust refuses canonical proto3 JSON of {}: {e}\n{canonical}",
            T::TYPE
        )
    });
    assert_eq!(back.data, env.data, "canonical proto3 JSON: {canonical}");
}

fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant")
}
fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).expect("entity id")
}
fn e164(s: &str) -> E164 {
    E164::parse_strict(s).expect("E.164")
}

fn fixed_calls_inbound() -> Vec<CallInbound> {
    vec![
        CallInbound {
            call_id: "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into(),
            tenant_id: tenant("acme"),
            to: "+16502530000".into(),
            from: "+14158675310".into(),
            received_at: datetime!(2025-03-14 16:20:05.120 UTC),
            contact_id: Some(id("c-1001")),
        },
        CallInbound {
            call_id: "x".into(),
            tenant_id: tenant("A_b-9"),
            to: "(415) 867-5310".into(),
            from: String::new(),
            received_at: datetime!(2025-03-14 09:02:41.000000001 -07:00),
            contact_id: None,
        },
        CallInbound {
            call_id: "call/with:punctuation".into(),
            tenant_id: tenant("acme"),
            to: "4158675310".into(),
            from: "anonymous".into(),
            received_at: datetime!(1999-12-31 23:59:59.5 +05:30),
            contact_id: None,
        },
    ]
}

fn fixed_calls_status() -> Vec<CallStatus> {
    let base = CallStatus {
        call_id: "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into(),
        tenant_id: tenant("acme"),
        step: 0,
        dial_call_status: DialCallStatus::Completed,
        dial_call_sid: Some("CAb2c3d4e5f60718293a4b5c6d7e8f9012".into()),
        dial_call_duration: Some(42),
        received_at: datetime!(2025-03-14 16:20:31.402 UTC),
    };
    vec![
        base.clone(),
        CallStatus {
            step: 1,
            dial_call_status: DialCallStatus::Busy,
            dial_call_duration: Some(0),
            ..base.clone()
        },
        CallStatus {
            step: 2,
            dial_call_status: DialCallStatus::NoAnswer,
            dial_call_sid: None,
            dial_call_duration: None,
            ..base.clone()
        },
        CallStatus {
            step: u32::MAX,
            dial_call_status: DialCallStatus::Failed,
            tenant_id: tenant("A_b-9"),
            received_at: datetime!(2025-03-14 09:02:41.000000001 -07:00),
            ..base.clone()
        },
        CallStatus {
            dial_call_status: DialCallStatus::Canceled,
            dial_call_duration: Some(u32::MAX),
            ..base
        },
    ]
}

fn fixed_calls_dial() -> Vec<CallDial> {
    let base = CallDial {
        call_id: "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into(),
        tenant_id: tenant("acme"),
        step: 0,
        kind: DialEventKind::StepStarted,
        target: Some(Target {
            number: e164("+14158675310"),
            user_id: Some(id("u-alice")),
            rule: Rule::AssignedUser,
            ring_timeout_secs: Some(20),
        }),
        reason: None,
        carrier_sid: Some("CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into()),
        outcome_unknown: false,
        acted_by: None,
        at: datetime!(2025-03-14 16:20:31.402 UTC),
    };
    vec![
        base.clone(),
        CallDial {
            step: 1,
            kind: DialEventKind::StepFailed,
            target: Some(Target {
                number: e164("+13127654321"),
                user_id: None,
                rule: Rule::ForwardingNumber,
                ring_timeout_secs: None,
            }),
            reason: Some("carrier refused: 400 <Twiml> \"invalid\" & more".into()),
            carrier_sid: None,
            ..base.clone()
        },
        CallDial {
            kind: DialEventKind::Answered,
            tenant_id: tenant("A_b-9"),
            at: datetime!(2025-03-14 09:02:41.000000001 -07:00),
            ..base.clone()
        },
        CallDial {
            step: 2,
            kind: DialEventKind::ChainExhausted,
            target: None,
            carrier_sid: None,
            ..base.clone()
        },
        CallDial {
            step: 1,
            kind: DialEventKind::StepFailed,
            reason: Some("the dialer stopped before the carrier answered".into()),
            carrier_sid: None,
            outcome_unknown: true,
            acted_by: Some(Actor::Dialer),
            ..base.clone()
        },
        CallDial {
            step: 3,
            kind: DialEventKind::FinalActionTaken,
            target: None,
            reason: Some("voicemail".into()),
            acted_by: Some(Actor::Gateway),
            ..base.clone()
        },
        CallDial {
            step: u32::MAX,
            kind: DialEventKind::FinalActionTaken,
            target: None,
            reason: Some("voicemail".into()),
            ..base
        },
    ]
}

fn fixed_calls_route() -> Vec<CallRoute> {
    let target = |number: &str, rule: Rule, user: Option<&str>| Target {
        number: e164(number),
        user_id: user.map(id),
        rule,
        ring_timeout_secs: Some(20),
    };
    let base = CallRoute {
        call_id: "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into(),
        tenant_id: tenant("acme"),
        rule: Rule::AssignedUser,
        target: Some(target("+13125550199", Rule::AssignedUser, Some("u-42"))),
        fallbacks: vec![
            target("+14155550123", Rule::ForwardingNumber, None),
            target("+14155550100", Rule::CompanyPhone, None),
        ],
        final_action: FinalAction::default(),
        explanation: vec!["caller matched contact c-1001".into(), "ring u-42".into()],
        settings_seq: 1042,
        decided_at: datetime!(2025-03-14 16:20:05.183 UTC),
    };
    vec![
        base.clone(),
        CallRoute {
            rule: Rule::ForwardingNumber,
            target: Some(target("+14155550123", Rule::ForwardingNumber, None)),
            fallbacks: vec![],
            explanation: vec![],
            final_action: FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Goodbye.".into(),
            },
            settings_seq: u64::MAX,
            ..base.clone()
        },
        CallRoute {
            rule: Rule::CompanyPhone,
            target: Some(Target {
                ring_timeout_secs: None,
                ..target("+442079460018", Rule::CompanyPhone, None)
            }),
            fallbacks: vec![],
            settings_seq: 1,
            ..base.clone()
        },
        CallRoute {
            rule: Rule::DirectLine,
            target: Some(Target {
                ring_timeout_secs: Some(u32::MAX),
                ..target("+13125550188", Rule::DirectLine, Some("u-43"))
            }),
            fallbacks: vec![Target {
                ring_timeout_secs: Some(0),
                ..target("+14155550100", Rule::CompanyPhone, None)
            }],
            ..base.clone()
        },
        CallRoute {
            rule: Rule::AfterHours,
            target: Some(target("+13125550100", Rule::AfterHours, None)),
            fallbacks: vec![],
            ..base.clone()
        },
        CallRoute {
            rule: Rule::NoRoute,
            target: None,
            fallbacks: vec![],
            final_action: FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "This number is no longer in service.".into(),
            },
            ..base.clone()
        },
        // Zero and empty values: valid, and emitted by Rust with the field present.
        CallRoute {
            rule: Rule::NoRoute,
            target: None,
            fallbacks: vec![],
            explanation: vec![String::new()],
            final_action: FinalAction {
                kind: FinalActionKind::Voicemail,
                message: String::new(),
            },
            settings_seq: 0,
            ..base
        },
    ]
}

/// A schedule with every part set: weekly hours, an override, a closed date, a time zone.
fn full_schedule(time_zone: Option<&str>) -> Schedule {
    let i = |a: &str, b: &str| [a.to_string(), b.to_string()];
    Schedule {
        time_zone: time_zone.map(Into::into),
        weekly: Box::new(WeeklyHours {
            mon: vec![i("09:00", "12:30"), i("13:30", "17:00")],
            fri: vec![i("00:00", "24:00")],
            sun: vec![i("22:00", "24:00")],
            ..WeeklyHours::default()
        }),
        overrides: vec![
            ScheduleOverride {
                date: "2026-12-24".into(),
                hours: vec![i("09:00", "12:00")],
            },
            ScheduleOverride {
                date: "2026-12-25".into(),
                hours: vec![],
            },
        ],
    }
}

fn fixed_company() -> Vec<CompanySettings> {
    let base = CompanySettings {
        tenant_id: tenant("acme"),
        version: 1,
        company_phone: None,
        default_region: None,
        final_action: None,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
    };
    vec![
        CompanySettings {
            version: 3,
            company_phone: Some("(415) 555-0100".into()),
            default_region: Some("US".into()),
            final_action: Some(FinalAction::default()),
            time_zone: Some("America/Chicago".into()),
            business_hours: Some(full_schedule(None)),
            after_hours: Some(AfterHours {
                kind: AfterHoursKind::Forward,
                number: Some("(312) 555-0100".into()),
            }),
            ring_timeout_secs: Some(15),
            ..base.clone()
        },
        CompanySettings {
            tenant_id: tenant("globex"),
            version: u64::MAX,
            company_phone: Some(String::new()),
            default_region: Some("gb".into()),
            final_action: Some(FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: String::new(),
            }),
            time_zone: Some("Pacific/Auckland".into()),
            business_hours: Some(Schedule::default()),
            after_hours: Some(AfterHours::default()),
            ring_timeout_secs: Some(600),
        },
        base,
    ]
}

fn fixed_number() -> Vec<NumberSettings> {
    vec![
        NumberSettings {
            tenant_id: tenant("acme"),
            version: 2,
            number: e164("+16502530000"),
            forwarding_number: Some("+14155550123".into()),
            released: false,
            user_id: None,
            prefer: Prefer::ContactOwner,
            ring_timeout_secs: None,
        },
        NumberSettings {
            tenant_id: tenant("acme"),
            version: 4,
            number: e164("+442079460018"),
            forwarding_number: None,
            released: true,
            user_id: None,
            prefer: Prefer::ContactOwner,
            ring_timeout_secs: None,
        },
        NumberSettings {
            tenant_id: tenant("acme"),
            version: 5,
            number: e164("+13125550188"),
            forwarding_number: None,
            released: false,
            user_id: Some(id("u-43")),
            prefer: Prefer::NumberOwner,
            ring_timeout_secs: Some(18),
        },
    ]
}

fn fixed_user() -> Vec<UserSettings> {
    vec![
        UserSettings {
            tenant_id: tenant("acme"),
            version: 5,
            user_id: id("u-42"),
            phone: Some("+1 312 555 0199".into()),
            active: true,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        },
        UserSettings {
            tenant_id: tenant("acme"),
            version: 6,
            user_id: id("u-42"),
            phone: None,
            active: false,
            available: false,
            working_hours: Some(full_schedule(Some("Europe/Berlin"))),
            ring_only_in_working_hours: true,
        },
    ]
}

fn fixed_contact() -> Vec<ContactSettings> {
    vec![
        ContactSettings {
            tenant_id: tenant("acme"),
            version: 7,
            contact_id: id("c-1001"),
            phones: vec!["(415) 867-5310".into(), "+1 917 555 0142".into()],
            assigned_user_id: Some(id("u-42")),
            deleted: false,
        },
        ContactSettings {
            tenant_id: tenant("acme"),
            version: 8,
            contact_id: id("c-1001"),
            phones: vec![],
            assigned_user_id: None,
            deleted: true,
        },
    ]
}

/// What the router files for `payload` refused on `subject` of stream `CALLS` at `seq`.
fn call_rejection(seq: u64, subject: &str, payload: &[u8]) -> Rejection {
    let err = Envelope::<CallInbound>::decode(payload, subject).expect_err("refused");
    Rejection::new("CALLS", seq, subject, payload, &err)
}

/// What the settings follower files for `payload` refused on `subject` of `SETTINGS` at `seq`.
fn settings_rejection(seq: u64, subject: &str, payload: &[u8]) -> Rejection {
    let err = SettingsChange::decode(payload, subject).expect_err("refused");
    Rejection::new("SETTINGS", seq, subject, payload, &err)
}

fn fixed_call_rejections() -> Vec<Rejection> {
    let mut inbound = example_json("switchboard.call.inbound.v1.json");
    inbound["data"]["to"] = json!("");
    let no_to = serde_json::to_vec(&inbound).expect("JSON");
    inbound["data"]["tenant_id"] = json!("globex");
    let other_tenant = serde_json::to_vec(&inbound).expect("JSON");
    vec![
        call_rejection(2087, "call.inbound.acme", &no_to),
        call_rejection(1, "call.inbound.acme", &other_tenant),
        // No valid tenant token in the subject: filed under `_invalid`.
        call_rejection(u64::MAX, "call.inbound.ac:me", b"{not json"),
        call_rejection(
            3,
            "call.inbound",
            "日本語 \"quoted\"\n\t\u{1F4DE}".as_bytes(),
        ),
    ]
}

fn fixed_settings_rejections() -> Vec<Rejection> {
    let mut user = example_json("switchboard.settings.user.v1.json");
    let valid = serde_json::to_vec(&user).expect("JSON");
    user["data"]["version"] = json!(0);
    let version_zero = serde_json::to_vec(&user).expect("JSON");
    vec![
        settings_rejection(987, "settings.acme.user.u-42", &version_zero),
        settings_rejection(988, "settings.acme.user.u-43", &valid),
        // Not UTF-8: invalid bytes are replaced. No valid tenant token: filed under `_invalid`.
        settings_rejection(u64::MAX, "settings.a:b.user.u-42", b"\xff\xfe{\"data\":1}"),
        settings_rejection(1, "settings", b"[]"),
    ]
}

#[test]
fn fixed_events_emitted_by_rust_are_valid_proto() {
    let at = datetime!(2025-03-14 16:20:05 UTC);
    let mut rules = BTreeSet::new();
    let mut kinds = Vec::new();
    for v in fixed_calls_inbound() {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    for v in fixed_calls_route() {
        rules.insert(v.rule);
        rules.extend(v.target.iter().chain(&v.fallbacks).map(|t| t.rule));
        kinds.push(v.final_action.kind);
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    let mut statuses = BTreeSet::new();
    for v in fixed_calls_status() {
        statuses.insert(v.dial_call_status.as_str());
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    assert_eq!(statuses.len(), 5, "every DialCallStatus variant is covered");
    let mut dial_kinds = BTreeSet::new();
    for v in fixed_calls_dial() {
        dial_kinds.insert(v.kind.as_str());
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    assert_eq!(
        dial_kinds.len(),
        5,
        "every DialEventKind variant is covered"
    );
    for v in fixed_company() {
        kinds.extend(v.final_action.as_ref().map(|a| a.kind));
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    for v in fixed_number() {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    for v in fixed_user() {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    for v in fixed_contact() {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    let mut codes = BTreeSet::new();
    let mut tenants = BTreeSet::new();
    for v in fixed_call_rejections() {
        codes.insert(v.code.clone());
        tenants.insert(v.tenant_id.clone());
        let (env, msg) = emit(CallRejected(v), at);
        through_canonical_proto_json(&env, &msg);
    }
    for v in fixed_settings_rejections() {
        codes.insert(v.code.clone());
        tenants.insert(v.tenant_id.clone());
        let (env, msg) = emit(SettingsRejected(v), at);
        through_canonical_proto_json(&env, &msg);
    }
    assert!(
        tenants.contains(&TenantId::unknown()),
        "`_invalid` is covered"
    );
    assert!(codes.len() >= 4, "{codes:?}");
    // An empty body: Rust emits `"original_payload": ""`, valid proto, and reads it back. Not
    // sent through canonical proto3 JSON, which omits the empty string: contract v1 decoders
    // refuse an absent `original_payload` (documented in rejections.proto).
    let empty = call_rejection(4, "call.inbound.acme", b"");
    assert_eq!(empty.code, "malformed");
    emit(CallRejected(empty.clone()), at);
    emit(SettingsRejected(empty), at);
    assert_eq!(
        rules.len(),
        Rule::ALL.len(),
        "every Rule variant is covered"
    );
    assert!(
        kinds.contains(&FinalActionKind::Voicemail)
            && kinds.contains(&FinalActionKind::AnnounceHangup)
    );
}

mod strategies {
    use super::*;

    pub fn tenant() -> impl Strategy<Value = TenantId> {
        "[A-Za-z0-9_-]{1,64}".prop_map(|s| TenantId::new(s).expect("pattern"))
    }

    pub fn entity_id() -> impl Strategy<Value = EntityId> {
        "[A-Za-z0-9_-]{1,128}".prop_map(|s| EntityId::parse("id", s).expect("pattern"))
    }

    /// Carrier call ids: 1-128 bytes, no whitespace or control characters.
    pub fn call_id() -> impl Strategy<Value = String> {
        prop_oneof!["CA[0-9a-f]{32}", "[!-~]{1,128}", "[!-~é日]{1,40}"]
    }

    /// Free text, possibly empty, any Unicode.
    pub fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).expect("regex")
    }

    pub fn e164() -> impl Strategy<Value = E164> {
        let area = prop::sample::select(vec![
            201u16, 202, 212, 305, 312, 415, 512, 617, 646, 702, 718, 917,
        ]);
        let us = (area, 200u16..1000, 0u16..10_000)
            .prop_filter_map("valid US number", |(a, x, l)| {
                E164::parse_strict(&format!("+1{a}{x}{l:04}")).ok()
            });
        let fixed = prop::sample::select(vec![
            "+442079460018",
            "+4930901820",
            "+18005551212",
            "+12125550123",
        ])
        .prop_map(|s| E164::parse_strict(s).expect("valid"));
        prop_oneof![3 => us, 1 => fixed]
    }

    /// Any instant from 1970 to 2199 in any whole-minute offset, with 0, 3 or 9 fractional digits.
    pub fn time() -> impl Strategy<Value = OffsetDateTime> {
        let nanos = prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|ms| ms * 1_000_000),
            0u32..1_000_000_000
        ];
        (0i64..7_258_118_400, nanos, -1439i32..=1439).prop_map(|(secs, nanos, minutes)| {
            OffsetDateTime::from_unix_timestamp(secs)
                .expect("in range")
                .replace_nanosecond(nanos)
                .expect("in range")
                .to_offset(UtcOffset::from_whole_seconds(minutes * 60).expect("offset"))
        })
    }

    pub fn final_action() -> impl Strategy<Value = FinalAction> {
        (
            prop::sample::select(vec![
                FinalActionKind::Voicemail,
                FinalActionKind::AnnounceHangup,
            ]),
            text(80),
        )
            .prop_map(|(kind, message)| FinalAction { kind, message })
    }

    pub fn target() -> impl Strategy<Value = Target> {
        (
            e164(),
            prop::option::of(entity_id()),
            prop::sample::select(
                Rule::ALL
                    .into_iter()
                    .filter(|r| *r != Rule::NoRoute)
                    .collect::<Vec<_>>(),
            ),
            prop::option::of(any::<u32>()),
        )
            .prop_map(|(number, user_id, rule, ring_timeout_secs)| Target {
                number,
                user_id,
                rule,
                ring_timeout_secs,
            })
    }

    pub fn call_inbound() -> impl Strategy<Value = CallInbound> {
        (
            call_id(),
            tenant(),
            text(30).prop_filter("non-blank", |s| !s.trim().is_empty()),
            text(30),
            time(),
            prop::option::of(entity_id()),
        )
            .prop_map(|(call_id, tenant_id, to, from, received_at, contact_id)| {
                CallInbound {
                    call_id,
                    tenant_id,
                    to,
                    from,
                    received_at,
                    contact_id,
                }
            })
    }

    pub fn call_route() -> impl Strategy<Value = CallRoute> {
        (
            call_id(),
            tenant(),
            prop::sample::select(Rule::ALL.to_vec()),
            target(),
            prop::collection::vec(target(), 0..4),
            final_action(),
            prop::collection::vec(text(60), 0..5),
            prop_oneof![Just(0u64), any::<u64>()],
            time(),
        )
            .prop_map(
                |(
                    call_id,
                    tenant_id,
                    rule,
                    target,
                    fallbacks,
                    final_action,
                    explanation,
                    settings_seq,
                    decided_at,
                )| {
                    CallRoute {
                        call_id,
                        tenant_id,
                        rule,
                        target: (rule != Rule::NoRoute).then_some(target),
                        fallbacks,
                        final_action,
                        explanation,
                        settings_seq,
                        decided_at,
                    }
                },
            )
    }

    pub fn version() -> impl Strategy<Value = u64> {
        prop_oneof![1u64..1000, 1u64..=u64::MAX]
    }

    /// IANA names, among them zones with DST on either side of the equator and east of the
    /// date line.
    pub fn time_zone() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "UTC",
            "America/Chicago",
            "Europe/Berlin",
            "Pacific/Auckland",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ])
        .prop_map(String::from)
    }

    /// A valid day: sorted, disjoint intervals drawn from cut points of the day.
    fn day() -> impl Strategy<Value = Vec<[String; 2]>> {
        prop::collection::btree_set(0u16..=1440, 0..7).prop_map(|cuts| {
            let cuts: Vec<u16> = cuts.into_iter().collect();
            let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
            cuts.chunks_exact(2)
                .map(|pair| [hhmm(pair[0]), hhmm(pair[1])])
                .collect()
        })
    }

    /// A valid schedule.
    pub fn schedule() -> impl Strategy<Value = Schedule> {
        (
            prop::option::of(time_zone()),
            prop::collection::vec(day(), 7),
            prop::collection::btree_map((2000i16..2100, 1i8..=12, 1i8..=28), day(), 0..3),
        )
            .prop_map(|(time_zone, days, overrides)| {
                let mut weekly = Box::<WeeklyHours>::default();
                for (slot, hours) in weekly.days_mut().into_iter().zip(days) {
                    *slot = hours;
                }
                Schedule {
                    time_zone,
                    weekly,
                    overrides: overrides
                        .into_iter()
                        .map(|((y, m, d), hours)| ScheduleOverride {
                            date: format!("{y:04}-{m:02}-{d:02}"),
                            hours,
                        })
                        .collect(),
                }
            })
    }

    pub fn ring_timeout() -> impl Strategy<Value = Option<u32>> {
        prop::option::of(5u32..=600)
    }

    pub fn after_hours() -> impl Strategy<Value = AfterHours> {
        prop_oneof![
            Just(AfterHours::default()),
            e164().prop_map(|n| AfterHours {
                kind: AfterHoursKind::Forward,
                number: Some(n.as_str().to_string()),
            }),
        ]
    }

    pub fn company() -> impl Strategy<Value = CompanySettings> {
        (
            (
                tenant(),
                version(),
                prop::option::of(text(30)),
                prop::option::of(
                    prop::sample::select(vec!["US", "GB", "DE", "CA", "fr"]).prop_map(String::from),
                ),
                prop::option::of(final_action()),
            ),
            (
                prop::option::of(time_zone()),
                prop::option::of(schedule()),
                prop::option::of(after_hours()),
                ring_timeout(),
            ),
        )
            .prop_map(
                |(
                    (tenant_id, version, company_phone, default_region, final_action),
                    (time_zone, business_hours, after_hours, ring_timeout_secs),
                )| {
                    CompanySettings {
                        tenant_id,
                        version,
                        company_phone,
                        default_region,
                        final_action,
                        time_zone,
                        business_hours,
                        after_hours,
                        ring_timeout_secs,
                    }
                },
            )
    }

    pub fn number() -> impl Strategy<Value = NumberSettings> {
        (
            tenant(),
            version(),
            e164(),
            prop::option::of(text(30)),
            any::<bool>(),
            prop::option::of(entity_id()),
            prop::sample::select(vec![Prefer::ContactOwner, Prefer::NumberOwner]),
            ring_timeout(),
        )
            .prop_map(
                |(
                    tenant_id,
                    version,
                    number,
                    forwarding_number,
                    released,
                    user_id,
                    prefer,
                    ring_timeout_secs,
                )| NumberSettings {
                    tenant_id,
                    version,
                    number,
                    forwarding_number,
                    released,
                    user_id,
                    prefer,
                    ring_timeout_secs,
                },
            )
    }

    pub fn user() -> impl Strategy<Value = UserSettings> {
        (
            tenant(),
            version(),
            entity_id(),
            prop::option::of(text(30)),
            any::<bool>(),
            any::<bool>(),
            prop::option::of(schedule()),
            any::<bool>(),
        )
            .prop_map(
                |(
                    tenant_id,
                    version,
                    user_id,
                    phone,
                    active,
                    available,
                    working_hours,
                    ring_only_in_working_hours,
                )| UserSettings {
                    tenant_id,
                    version,
                    user_id,
                    phone,
                    active,
                    available,
                    working_hours,
                    ring_only_in_working_hours,
                },
            )
    }

    /// Any refusal `Rejection::new` can be given.
    pub fn contract_error() -> impl Strategy<Value = ContractError> {
        let field = prop::sample::select(vec!["to", "call_id", "data", "phones", "time"]);
        prop_oneof![
            text(60).prop_map(ContractError::Malformed),
            text(10).prop_map(ContractError::SpecVersion),
            text(30).prop_map(ContractError::DataContentType),
            (text(40), text(40))
                .prop_map(|(expected, found)| ContractError::UnexpectedType { expected, found }),
            field.clone().prop_map(ContractError::Missing),
            text(70).prop_map(ContractError::InvalidTenant),
            (field.clone(), text(40))
                .prop_map(|(field, value)| ContractError::InvalidId { field, value }),
            (field.clone(), text(20), text(40)).prop_map(|(field, masked, reason)| {
                ContractError::InvalidPhone {
                    field,
                    masked,
                    reason,
                }
            }),
            (field.clone(), 1usize..3000)
                .prop_map(|(field, max)| ContractError::TooLong { field, max }),
            (field, text(40)).prop_map(|(field, reason)| ContractError::InvalidSetting {
                field: format!("working_hours.weekly.{field}[0]"),
                reason,
            }),
            (text(40), text(40)).prop_map(|(subject, expected)| ContractError::SubjectMismatch {
                subject,
                expected
            }),
            Just(ContractError::Version),
        ]
    }

    /// A rejection filed by `Rejection::new` for an event of `stream` whose subject starts with
    /// `prefix` (or is any string, so the tenant may be `_invalid`).
    pub fn rejection(
        stream: &'static str,
        prefix: &'static str,
    ) -> impl Strategy<Value = Rejection> {
        let subject = prop_oneof![
            3 => tenant().prop_map(move |t| format!("{prefix}.{t}")),
            // NATS subjects are never empty.
            1 => "[!-~]{1,40}",
        ];
        // Non-empty: see the empty body in `fixed_events_emitted_by_rust_are_valid_proto`.
        let payload = prop_oneof![
            text(200)
                .prop_filter("non-empty", |s| !s.is_empty())
                .prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 1..100),
        ];
        (
            prop_oneof![1u64..10_000, 1u64..=u64::MAX],
            subject,
            payload,
            contract_error(),
        )
            .prop_map(move |(seq, subject, payload, err)| {
                Rejection::new(stream, seq, &subject, &payload, &err)
            })
    }

    pub fn contact() -> impl Strategy<Value = ContactSettings> {
        (
            tenant(),
            version(),
            entity_id(),
            prop::collection::vec(text(30), 0..4),
            prop::option::of(entity_id()),
            any::<bool>(),
        )
            .prop_map(
                |(tenant_id, version, contact_id, phones, assigned_user_id, deleted)| {
                    ContactSettings {
                        tenant_id,
                        version,
                        contact_id,
                        phones,
                        assigned_user_id,
                        deleted,
                    }
                },
            )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_call_inbound_emitted_by_rust_is_valid_proto(v in strategies::call_inbound(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_call_route_emitted_by_rust_is_valid_proto(v in strategies::call_route(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_company_settings_emitted_by_rust_are_valid_proto(v in strategies::company(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_number_settings_emitted_by_rust_are_valid_proto(v in strategies::number(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_user_settings_emitted_by_rust_are_valid_proto(v in strategies::user(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_contact_settings_emitted_by_rust_are_valid_proto(v in strategies::contact(), at in strategies::time()) {
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_call_rejected_emitted_by_rust_is_valid_proto(v in strategies::rejection("CALLS", "call.inbound"), at in strategies::time()) {
        let (env, msg) = emit(CallRejected(v), at);
        through_canonical_proto_json(&env, &msg);
    }

    #[test]
    fn arbitrary_settings_rejected_emitted_by_rust_is_valid_proto(v in strategies::rejection("SETTINGS", "settings"), at in strategies::time()) {
        let (env, msg) = emit(SettingsRejected(v), at);
        through_canonical_proto_json(&env, &msg);
    }
}

// ---------------------------------------------------------------------------------------------
// proto → Rust: what proto3 JSON producers in other languages emit
// ---------------------------------------------------------------------------------------------

/// Canonical proto3 JSON of a message built field by field, as generated code would build it.
fn canonical(message_name: &str, fields: &[(&str, PValue)]) -> Value {
    let mut msg = DynamicMessage::new(message(message_name));
    for (name, value) in fields {
        msg.try_set_field_by_name(name, value.clone())
            .unwrap_or_else(|e| panic!("{message_name}.{name}: {e}"));
    }
    serde_json::to_value(&msg).expect("canonical proto3 JSON")
}

fn s(v: &str) -> PValue {
    PValue::String(v.into())
}

#[test]
fn canonical_proto3_json_of_settings_with_defaults_decodes_with_the_same_meaning() {
    // Company: only the required fields; version 7 is written as the string "7".
    let data = canonical(
        "switchboard.v1.CompanySettings",
        &[("tenant_id", s("acme")), ("version", PValue::U64(7))],
    );
    assert_eq!(
        data,
        json!({"tenant_id": "acme", "version": "7"}),
        "defaults omitted, uint64 as string"
    );
    let body = envelope(
        CompanySettings::TYPE,
        "acme:company:main:v7",
        "company/main",
        data,
    );
    let env =
        Envelope::<CompanySettings>::decode(&body, "settings.acme.company.main").expect("decodes");
    assert_eq!(
        env.data,
        CompanySettings {
            tenant_id: tenant("acme"),
            version: 7,
            company_phone: None,
            default_region: None,
            final_action: None,
            time_zone: None,
            business_hours: None,
            after_hours: None,
            ring_timeout_secs: None,
        }
    );

    // Number: `released` false and `forwarding_number` unset are omitted.
    let data = canonical(
        "switchboard.v1.NumberSettings",
        &[
            ("tenant_id", s("acme")),
            ("version", PValue::U64(u64::MAX)),
            ("number", s("+16502530000")),
            ("released", PValue::Bool(false)),
        ],
    );
    assert_eq!(
        data,
        json!({"tenant_id": "acme", "version": u64::MAX.to_string(), "number": "+16502530000"})
    );
    let event_id = format!("acme:number:16502530000:v{}", u64::MAX);
    let body = envelope(NumberSettings::TYPE, &event_id, "number/16502530000", data);
    let env = Envelope::<NumberSettings>::decode(&body, "settings.acme.number.16502530000")
        .expect("decodes");
    assert_eq!(
        env.data.version,
        u64::MAX,
        "a 64-bit string version is read exactly"
    );
    assert!(!env.data.released);
    assert_eq!(env.data.forwarding_number, None);
    assert_eq!(env.data.event_id(), event_id);
    match SettingsChange::decode(&body, "settings.acme.number.16502530000").expect("decodes") {
        SettingsChange::Number(n) => assert_eq!(n, env.data),
        other => panic!("decoded as {other:?}"),
    }

    // Number: an explicitly set empty optional string is present (proto3 `optional` has presence).
    let data = canonical(
        "switchboard.v1.NumberSettings",
        &[
            ("tenant_id", s("acme")),
            ("version", PValue::U64(3)),
            ("number", s("+16502530000")),
            ("forwarding_number", s("")),
            ("released", PValue::Bool(true)),
        ],
    );
    let body = envelope(
        NumberSettings::TYPE,
        "acme:number:16502530000:v3",
        "number/16502530000",
        data,
    );
    let env = Envelope::<NumberSettings>::decode(&body, "settings.acme.number.16502530000")
        .expect("decodes");
    assert_eq!(env.data.forwarding_number.as_deref(), Some(""));
    assert!(env.data.released);

    // User: `active` false and `phone` unset are omitted.
    let data = canonical(
        "switchboard.v1.UserSettings",
        &[
            ("tenant_id", s("acme")),
            ("version", PValue::U64(5)),
            ("user_id", s("u-42")),
        ],
    );
    assert_eq!(
        data,
        json!({"tenant_id": "acme", "version": "5", "user_id": "u-42"})
    );
    let body = envelope(UserSettings::TYPE, "acme:user:u-42:v5", "user/u-42", data);
    let env = Envelope::<UserSettings>::decode(&body, "settings.acme.user.u-42").expect("decodes");
    assert_eq!(
        env.data,
        UserSettings {
            tenant_id: tenant("acme"),
            version: 5,
            user_id: id("u-42"),
            phone: None,
            active: false,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        },
        "an absent `available` is true (issue 15: \"Omitted fields take their defaults\")"
    );

    // Contact: empty `phones`, `deleted` false and no assigned user are omitted.
    let data = canonical(
        "switchboard.v1.ContactSettings",
        &[
            ("tenant_id", s("acme")),
            ("version", PValue::U64(7)),
            ("contact_id", s("c-1001")),
            ("phones", PValue::List(vec![])),
            ("deleted", PValue::Bool(false)),
        ],
    );
    assert_eq!(
        data,
        json!({"tenant_id": "acme", "version": "7", "contact_id": "c-1001"})
    );
    let body = envelope(
        ContactSettings::TYPE,
        "acme:contact:c-1001:v7",
        "contact/c-1001",
        data,
    );
    let env = Envelope::<ContactSettings>::decode(&body, "settings.acme.contact.c-1001")
        .expect("decodes");
    assert_eq!(
        env.data,
        ContactSettings {
            tenant_id: tenant("acme"),
            version: 7,
            contact_id: id("c-1001"),
            phones: vec![],
            assigned_user_id: None,
            deleted: false,
        }
    );
}

#[test]
fn canonical_proto3_json_of_calls_decodes_with_the_same_meaning() {
    let ts = |seconds: i64, nanos: i32| {
        let mut m = DynamicMessage::new(message("google.protobuf.Timestamp"));
        m.set_field_by_name("seconds", PValue::I64(seconds));
        m.set_field_by_name("nanos", PValue::I32(nanos));
        PValue::Message(m)
    };
    let call = "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c";

    // Inbound, caller withheld as "", contact unknown: both omitted.
    let data = canonical(
        "switchboard.v1.CallInbound",
        &[
            ("call_id", s(call)),
            ("tenant_id", s("acme")),
            ("to", s("+16502530000")),
            ("from", s("")),
            ("received_at", ts(1_741_969_205, 120_000_000)),
        ],
    );
    assert_eq!(
        data,
        json!({"call_id": call, "tenant_id": "acme", "to": "+16502530000", "received_at": "2025-03-14T16:20:05.120Z"})
    );
    let body = envelope(
        CallInbound::TYPE,
        &format!("acme:{call}:inbound"),
        call,
        data,
    );
    let env = Envelope::<CallInbound>::decode(&body, "call.inbound.acme").expect("decodes");
    assert_eq!(env.data.from, "");
    assert_eq!(env.data.contact_id, None);
    assert_eq!(env.data.received_at, datetime!(2025-03-14 16:20:05.120 UTC));

    // Route without target: `target`, `fallbacks` and `explanation` omitted.
    let mut action = DynamicMessage::new(message("switchboard.v1.FinalAction"));
    action.set_field_by_name("kind", PValue::EnumNumber(2));
    action.set_field_by_name("message", s("Goodbye."));
    let data = canonical(
        "switchboard.v1.CallRoute",
        &[
            ("call_id", s(call)),
            ("tenant_id", s("acme")),
            ("rule", PValue::EnumNumber(4)),
            ("final_action", PValue::Message(action)),
            ("settings_seq", PValue::U64(12)),
            ("decided_at", ts(1_741_969_205, 0)),
        ],
    );
    assert_eq!(data["rule"], "no_route");
    assert_eq!(data["final_action"]["kind"], "announce_hangup");
    assert_eq!(data["settings_seq"], "12");
    assert!(data.get("target").is_none() && data.get("fallbacks").is_none());
    let body = envelope(CallRoute::TYPE, &format!("acme:{call}:route"), call, data);
    let env = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
    assert_eq!(env.data.rule, Rule::NoRoute);
    assert_eq!(env.data.target, None);
    assert!(env.data.fallbacks.is_empty() && env.data.explanation.is_empty());
    assert_eq!(env.data.settings_seq, 12);
    assert_eq!(env.data.final_action.kind, FinalActionKind::AnnounceHangup);
}

#[test]
fn canonical_proto3_json_of_rejections_decodes_with_the_same_meaning() {
    for (example, subject) in [
        ("switchboard.call.rejected.v1.json", "call.rejected.acme"),
        (
            "switchboard.settings.rejected.v1.json",
            "settings.acme.rejected.987",
        ),
    ] {
        let env = example_json(example);
        let expected: Rejection = serde_json::from_value(env["data"].clone()).expect("data");
        let data = canonical(
            "switchboard.v1.Rejection",
            &[
                ("tenant_id", s(expected.tenant_id.as_str())),
                ("stream", s(&expected.stream)),
                ("stream_seq", PValue::U64(expected.stream_seq)),
                ("original_subject", s(&expected.original_subject)),
                ("original_payload", s(&expected.original_payload)),
                ("code", s(&expected.code)),
                ("reason", s(&expected.reason)),
            ],
        );
        assert_eq!(
            data["stream_seq"],
            expected.stream_seq.to_string(),
            "uint64 as string"
        );
        let id = env["id"].as_str().expect("id");
        let ce_subject = env["subject"].as_str().expect("subject");
        let event_type = env["type"].as_str().expect("type");
        let body = envelope(event_type, id, ce_subject, data);
        let decoded = if event_type == CallRejected::TYPE {
            Envelope::<CallRejected>::decode(&body, subject).map(|e| e.data.0)
        } else {
            Envelope::<SettingsRejected>::decode(&body, subject).map(|e| e.data.0)
        };
        assert_eq!(decoded.expect("decodes"), expected, "{example}");
    }

    // `_invalid`, the reserved tenant of rejections whose original names no valid tenant.
    let data = canonical(
        "switchboard.v1.Rejection",
        &[
            ("tenant_id", s("_invalid")),
            ("stream", s("CALLS")),
            ("stream_seq", PValue::U64(u64::MAX)),
            ("original_subject", s("call.inbound")),
            ("original_payload", s("{}")),
            ("code", s("missing_field")),
            ("reason", s("missing or empty field `specversion`")),
        ],
    );
    let id = format!("rejected:CALLS:{}", u64::MAX);
    let body = envelope(
        CallRejected::TYPE,
        &id,
        &format!("CALLS/{}", u64::MAX),
        data,
    );
    let env = Envelope::<CallRejected>::decode(&body, "call.rejected._invalid").expect("decodes");
    assert_eq!(env.data.0.tenant_id, TenantId::unknown());
    assert_eq!(env.data.0.stream_seq, u64::MAX);
    assert_eq!(env.data.event_id(), id);
}

// ---------------------------------------------------------------------------------------------
// Negative: the proto checker can fail
// ---------------------------------------------------------------------------------------------

/// `data` with `path` (`a.b`) set to `value`.
fn with(mut data: Value, path: &str, value: Value) -> Value {
    set_path(&mut data, path, value);
    data
}

#[test]
fn proto_validation_rejects_invalid_data() {
    let inbound = example_json("switchboard.call.inbound.v1.json")["data"].clone();
    let route = example_json("switchboard.call.route.v1.json")["data"].clone();
    let number = example_json("switchboard.settings.number.v1.json")["data"].clone();
    let contact = example_json("switchboard.settings.contact.v1.json")["data"].clone();
    let rejected = example_json("switchboard.call.rejected.v1.json")["data"].clone();
    let rejection = message_of::<CallRejected>();
    assert_eq!(rejection, message_of::<SettingsRejected>());
    let calls_inbound = message_of::<CallInbound>();
    let calls_route = message_of::<CallRoute>();
    let settings_number = message_of::<NumberSettings>();
    let settings_contact = message_of::<ContactSettings>();
    // The baselines are valid, so each rejection below is for the mutation.
    for (m, d) in [
        (calls_inbound, &inbound),
        (calls_route, &route),
        (settings_number, &number),
        (settings_contact, &contact),
        (rejection, &rejected),
    ] {
        validate(m, d).unwrap_or_else(|e| panic!("baseline {m}: {e}"));
    }

    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "unknown prefer",
            settings_number,
            with(number.clone(), "prefer", json!("owner")),
        ),
        (
            "ring timeout as a negative number",
            settings_number,
            with(number.clone(), "ring_timeout_secs", json!(-20)),
        ),
        (
            "unknown weekly key",
            message_of::<CompanySettings>(),
            with(
                example_json("switchboard.settings.company.v1.json")["data"].clone(),
                "business_hours.weekly.monday",
                json!([["09:00", "17:00"]]),
            ),
        ),
        (
            "unknown after-hours kind",
            message_of::<CompanySettings>(),
            with(
                example_json("switchboard.settings.company.v1.json")["data"].clone(),
                "after_hours.kind",
                json!("voicemail"),
            ),
        ),
        (
            "unknown rule",
            calls_route,
            with(route.clone(), "rule", json!("round_robin")),
        ),
        (
            "unknown target rule",
            calls_route,
            with(route.clone(), "target.rule", json!("nobody")),
        ),
        (
            "unknown final action kind",
            calls_route,
            with(route.clone(), "final_action.kind", json!("music")),
        ),
        (
            "enum as number",
            calls_route,
            with(route.clone(), "rule", json!(1)),
        ),
        (
            "unspecified enum",
            calls_route,
            with(route.clone(), "rule", json!("rule_unspecified")),
        ),
        (
            "target not a message",
            calls_route,
            with(route.clone(), "target", json!("+13125550199")),
        ),
        (
            "fallbacks not a list",
            calls_route,
            with(route.clone(), "fallbacks", json!({"number": "+1"})),
        ),
        (
            "negative settings_seq",
            calls_route,
            with(route.clone(), "settings_seq", json!(-1)),
        ),
        (
            "settings_seq not a number",
            calls_route,
            with(route.clone(), "settings_seq", json!("many")),
        ),
        (
            "unknown field",
            calls_route,
            with(route.clone(), "priority", json!(1)),
        ),
        (
            "to is a number",
            calls_inbound,
            with(inbound.clone(), "to", json!(16502530000u64)),
        ),
        (
            "received_at not RFC 3339",
            calls_inbound,
            with(inbound.clone(), "received_at", json!("yesterday")),
        ),
        (
            "received_at as epoch",
            calls_inbound,
            with(inbound.clone(), "received_at", json!(1_741_969_205)),
        ),
        ("lowerCamelCase name", calls_inbound, {
            let mut d = inbound.clone();
            let v = d
                .as_object_mut()
                .and_then(|o| o.remove("call_id"))
                .expect("call_id");
            with(d, "callId", v)
        }),
        (
            "released is a string",
            settings_number,
            with(number.clone(), "released", json!("yes")),
        ),
        (
            "null boolean",
            settings_number,
            with(number.clone(), "released", Value::Null),
        ),
        (
            "null list",
            settings_contact,
            with(contact.clone(), "phones", Value::Null),
        ),
        (
            "version is fractional",
            settings_number,
            with(number.clone(), "version", json!(1.5)),
        ),
        (
            "version is not decimal",
            settings_number,
            with(number.clone(), "version", json!("v2")),
        ),
        (
            "phones not a list",
            settings_contact,
            with(contact.clone(), "phones", json!("+14158675310")),
        ),
        (
            "phones hold a number",
            settings_contact,
            with(contact.clone(), "phones", json!([14158675310u64])),
        ),
        ("data not an object", settings_contact, json!(["acme"])),
        (
            "negative stream_seq",
            rejection,
            with(rejected.clone(), "stream_seq", json!(-1)),
        ),
        (
            "stream_seq not decimal",
            rejection,
            with(rejected.clone(), "stream_seq", json!("0x10")),
        ),
        (
            "original_payload as a JSON object",
            rejection,
            with(
                rejected.clone(),
                "original_payload",
                example_json("switchboard.call.inbound.v1.json"),
            ),
        ),
        (
            "code is a number",
            rejection,
            with(rejected.clone(), "code", json!(3)),
        ),
        (
            "null reason",
            rejection,
            with(rejected.clone(), "reason", Value::Null),
        ),
        (
            "unknown field",
            rejection,
            with(rejected.clone(), "retry", json!(true)),
        ),
    ];
    for (what, message_name, data) in cases {
        assert!(
            validate(message_name, &data).is_err(),
            "{what}: proto validation accepted {data}"
        );
    }
}

/// Unknown fields: a producer must not send them (proto validation denies them), but a v1
/// consumer ignores them, which is what makes adding an optional field compatible.
#[test]
fn unknown_fields_are_refused_by_proto_validation_but_ignored_by_consumers() {
    let mut example = example_json("switchboard.settings.user.v1.json");
    example["data"]["nickname"] = json!("Sam");
    assert!(validate(message_of::<UserSettings>(), &example["data"]).is_err());
    let body = serde_json::to_vec(&example).expect("JSON");
    let env = Envelope::<UserSettings>::decode(&body, "settings.acme.user.u-42").expect("ignored");
    assert_eq!(env.data.user_id.as_str(), "u-42");
}

/// Every field of every message has a kind the JSON mapping above covers (no maps, bytes, floats
/// or oneofs slipped in unnoticed).
#[test]
fn messages_use_only_the_kinds_the_contract_maps() {
    for msg in pool()
        .all_messages()
        .filter(|m| m.package_name() == PACKAGE)
    {
        assert_eq!(
            msg.oneofs().filter(|o| !o.is_synthetic()).count(),
            0,
            "{}",
            msg.full_name()
        );
        for field in msg.fields() {
            assert!(!field.is_map(), "{}", field.full_name());
            let ok = match field.kind() {
                Kind::String | Kind::Bool | Kind::Uint32 | Kind::Uint64 | Kind::Enum(_) => true,
                // ListValue: a schedule's interval, `["09:00", "17:00"]` (a JSON array).
                Kind::Message(m) => {
                    m.package_name() == PACKAGE
                        || m.full_name() == "google.protobuf.Timestamp"
                        || (m.full_name() == "google.protobuf.ListValue" && field.is_list())
                }
                _ => false,
            };
            assert!(
                ok,
                "{}: kind {:?} is not part of the v1 JSON mapping",
                field.full_name(),
                field.kind()
            );
        }
    }
}
