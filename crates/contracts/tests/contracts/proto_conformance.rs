//! `proto/` and the Rust contract agree: the proto files compile, the examples are valid for
//! both, everything Rust emits is valid proto3 JSON of its message, and what proto3 JSON
//! producers in other languages emit decodes in Rust with the same meaning. Earlier versions of
//! a type that Rust still decodes (`EARLIER_TYPES`: `switchboard.call.route.v1`) keep their own
//! message in the package of their version, and their history stays valid and readable.

use crate::support::{
    self, Contract, compile, decode_as, envelope, example_json, examples, message, pool,
    proto_files, set_path, validate, workspace_root,
};
use proptest::prelude::*;
use prost_reflect::{DynamicMessage, Kind, Value as PValue};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use switchboard_contracts::reasons::{HoursAt, Offer, Reason, UserSkipped};
use switchboard_contracts::schedule::{DAY_KEYS, Schedule, ScheduleOverride, WeeklyHours};
use switchboard_contracts::{
    Actor, CallDial, CallInbound, CallMissed, CallRejected, CallRoute, CallStatus, CompanySettings,
    ContactSettings, ContractError, DialCallStatus, DialEventKind, E164, EntityId, Envelope,
    EventData, FinalAction, FinalActionKind, NumberSettings, PhoneError, RawEnvelope, Region,
    Rejection, Rule, SettingsChange, SettingsRejected, Target, TenantId, UserSettings,
};
use switchboard_contracts::{
    AfterHours, AfterHoursKind, AnonymousCallers, BlockedAction, GroupMember, MissedEnd, Prefer,
    RingGroup, RingMode, Screening, blocked_entry,
};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

/// Messages of the contract packages that are parts of event data, not event data themselves.
const PART_MESSAGES: [&str; 11] = [
    "switchboard.v1.Target",
    "switchboard.v1.GroupMember",
    "switchboard.v1.FinalAction",
    "switchboard.v1.RingGroup",
    "switchboard.v1.Schedule",
    "switchboard.v1.WeeklyHours",
    "switchboard.v1.ScheduleOverride",
    "switchboard.v1.AfterHours",
    "switchboard.v2.Reason",
    "switchboard.v2.PhoneProblem",
    "switchboard.v2.HoursAt",
];
/// Messages without fields that only give an enum's values their own scope (proto enum values
/// share their parent's scope, and these enums' wire names clash with other enums' in the
/// package): never on the wire themselves, only their nested `Value`.
const SCOPE_MESSAGES: [&str; 3] = [
    "switchboard.v1.BlockedAction",
    "switchboard.v1.AnonymousCallers",
    "switchboard.v1.MissedEnd",
];
/// Fields v2's decision gained after v1 stopped being produced: v1 history never carries them,
/// so the v1 message (frozen history) does not have them.
const V2_ONLY_ROUTE_FIELDS: [&str; 2] = ["calls_seq", "caller"];
/// Messages that are the data of several event types, with exactly those types.
const SHARED_MESSAGES: [(&str, [&str; 2]); 1] = [(
    "switchboard.v1.Rejection",
    [CallRejected::TYPE, SettingsRejected::TYPE],
)];
/// The message of each earlier version of a type that Rust still decodes (`EARLIER_TYPES`):
/// history on the streams, defined in the package of its own version.
const EARLIER_MESSAGES: [(&str, &str); 1] =
    [("switchboard.call.route.v1", "switchboard.v1.CallRoute")];

/// Every Rust event type: its `TYPE` and its `EARLIER_TYPES`.
fn rust_types() -> [(&'static str, &'static [&'static str]); 11] {
    fn of<T: EventData>() -> (&'static str, &'static [&'static str]) {
        (T::TYPE, T::EARLIER_TYPES)
    }
    [
        of::<CallInbound>(),
        of::<CallRoute>(),
        of::<CallStatus>(),
        of::<CallDial>(),
        of::<CallMissed>(),
        of::<CallRejected>(),
        of::<CompanySettings>(),
        of::<NumberSettings>(),
        of::<UserSettings>(),
        of::<ContactSettings>(),
        of::<SettingsRejected>(),
    ]
}

/// The map from every type Rust produces to its proto message (`support::contracts()`).
fn contracts() -> Vec<Contract> {
    support::contracts().into_iter().collect()
}

/// The earlier types Rust still decodes, each with its own message ([`EARLIER_MESSAGES`]) and
/// the decoder of the Rust type that reads it. Only `CallRoute` has earlier types; the type-map
/// test fails when another type gains some, until they are added here.
fn earlier_contracts() -> Vec<Contract> {
    let mut out = Vec::new();
    for event_type in CallRoute::EARLIER_TYPES {
        let (_, message) = EARLIER_MESSAGES
            .iter()
            .find(|(t, _)| t == event_type)
            .unwrap_or_else(|| panic!("{event_type}: list its message in EARLIER_MESSAGES"));
        out.push(Contract {
            event_type,
            message,
            decode: decode_as::<CallRoute>,
        });
    }
    out
}

/// Every type on the wire: produced ([`contracts`]) and still decoded ([`earlier_contracts`]).
fn all_contracts() -> Vec<Contract> {
    let mut all = contracts();
    all.extend(earlier_contracts());
    all
}

/// The contract of an event type, produced or earlier.
fn contract_of(event_type: &str) -> Option<Contract> {
    all_contracts()
        .into_iter()
        .find(|c| c.event_type == event_type)
}

/// The proto message of the data `T` produces.
fn message_of<T: EventData>() -> &'static str {
    contracts()
        .into_iter()
        .find(|c| c.event_type == T::TYPE)
        .unwrap_or_else(|| panic!("{} is not in contracts()", T::TYPE))
        .message
}

/// `N` of a version token `v<N>` (N ≥ 1, no leading zero), else `None`.
fn version_token(token: &str) -> Option<u32> {
    let n: u32 = token.strip_prefix('v')?.parse().ok()?;
    (n >= 1 && format!("v{n}") == token).then_some(n)
}

/// `N` of a contract package `switchboard.v<N>`, else `None`.
fn package_version(package: &str) -> Option<u32> {
    version_token(package.strip_prefix("switchboard.")?)
}

/// `N` of an event type `switchboard.<…>.v<N>`.
fn type_version(event_type: &str) -> u32 {
    event_type
        .rsplit('.')
        .next()
        .and_then(version_token)
        .unwrap_or_else(|| panic!("{event_type} does not end in .v<N>"))
}

/// The package of a message's full name (`switchboard.v2.CallRoute` → `switchboard.v2`).
fn package_of(full_name: &str) -> &str {
    full_name.rsplit_once('.').map_or("", |(p, _)| p)
}

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
            "switchboard/v1/settings.proto",
            "switchboard/v2/calls.proto"
        ],
        "proto/switchboard holds exactly the v1 files and the v2 call file"
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
        // switchboard/v<N>/x.proto declares package switchboard.v<N>.
        let dir = name.split('/').nth(1).expect("switchboard/<dir>/<file>");
        assert_eq!(file.package_name(), format!("switchboard.{dir}"), "{name}");
        assert!(package_version(file.package_name()).is_some(), "{name}");
        assert_eq!(file.file_descriptor_proto().syntax(), "proto3", "{name}");
    }
}

/// The messages of the contract packages (`switchboard.v<N>`).
fn contract_messages() -> impl Iterator<Item = prost_reflect::MessageDescriptor> {
    pool()
        .all_messages()
        .filter(|m| package_version(m.package_name()).is_some())
}

#[test]
fn every_field_keeps_its_snake_case_name_in_json() {
    for msg in contract_messages() {
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
    let files: Vec<_> = set
        .file
        .iter()
        .filter(|f| package_version(f.package()).is_some())
        .collect();
    assert_eq!(files.len(), proto_files().len());
    for file in files {
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
        // …and lists, one per line, each type whose data is defined in the file with its message;
        // an earlier type (still decoded, no longer produced) says so on its line.
        let earlier: Vec<&str> = earlier_contracts().iter().map(|c| c.event_type).collect();
        for c in all_contracts() {
            let msg = message(c.message);
            if msg.parent_file().name() == file.name() {
                let line = header.lines().find(|line| {
                    line.split_whitespace().any(|w| w == c.event_type)
                        && line.contains(&format!("data = {}", msg.name()))
                });
                let Some(line) = line else {
                    panic!(
                        "{}: the header comment lists `{}  data = {}  on  <subject>`",
                        file.name(),
                        c.event_type,
                        msg.name()
                    )
                };
                assert_eq!(
                    line.contains("still decoded, no longer produced"),
                    earlier.contains(&c.event_type),
                    "{}: `{line}` says `still decoded, no longer produced` exactly for an \
                     earlier type",
                    file.name()
                );
            }
        }
    }
}

#[test]
fn the_type_map_covers_every_event_type_of_the_rust_contract() {
    let produced: Vec<&str> = rust_types().iter().map(|(t, _)| *t).collect();
    let mapped: Vec<&str> = contracts().iter().map(|c| c.event_type).collect();
    assert_eq!(
        mapped.iter().copied().collect::<BTreeSet<_>>(),
        produced.iter().copied().collect::<BTreeSet<_>>(),
        "contracts() maps exactly the Rust event types"
    );
    assert_eq!(mapped.len(), produced.len(), "no type is mapped twice");

    // The earlier types Rust still decodes are exactly those with a message in
    // EARLIER_MESSAGES, and each is an earlier version of the same type name.
    let rust_earlier: BTreeSet<&str> = rust_types()
        .iter()
        .flat_map(|(t, earlier)| {
            for e in *earlier {
                let (name, _) = e.rsplit_once('.').expect("versioned");
                assert_eq!(Some(name), t.rsplit_once('.').map(|(n, _)| n), "{e} of {t}");
                assert!(type_version(e) < type_version(t), "{e} is earlier than {t}");
            }
            earlier.iter().copied()
        })
        .collect();
    let earlier: Vec<&str> = earlier_contracts().iter().map(|c| c.event_type).collect();
    assert_eq!(
        earlier.iter().copied().collect::<BTreeSet<_>>(),
        rust_earlier,
        "earlier_contracts() maps exactly the Rust EARLIER_TYPES"
    );
    assert_eq!(
        earlier.len(),
        rust_earlier.len(),
        "no earlier type is mapped twice"
    );
    assert_eq!(
        EARLIER_MESSAGES
            .iter()
            .map(|(t, _)| *t)
            .collect::<BTreeSet<_>>(),
        rust_earlier,
        "EARLIER_MESSAGES lists only types Rust still decodes"
    );
    for c in support::contracts() {
        assert_eq!(
            contract_of(c.event_type).map(|l| l.message),
            Some(c.message)
        );
    }
    assert_eq!(
        support::message_of::<CallInbound>(),
        message_of::<CallInbound>()
    );
    for e in earlier_contracts() {
        // An earlier type maps to its own message, not to the current type's.
        let current = contracts()
            .into_iter()
            .find(|c| {
                c.event_type.rsplit_once('.').map(|(n, _)| n)
                    == e.event_type.rsplit_once('.').map(|(n, _)| n)
            })
            .expect("current version");
        assert_ne!(
            e.message, current.message,
            "{} has its own message",
            e.event_type
        );
    }

    // Every message is the data of exactly one type (or of exactly the types it is listed with
    // in SHARED_MESSAGES), or a part of one.
    let mut types_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in all_contracts() {
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
    for scope in SCOPE_MESSAGES {
        let msg = message(scope);
        assert_eq!(msg.fields().count(), 0, "{scope} only scopes its enum");
        assert_eq!(
            msg.child_enums()
                .map(|e| e.name().to_string())
                .collect::<Vec<_>>(),
            ["Value"],
            "{scope}"
        );
    }
    for msg in contract_messages() {
        assert!(
            messages.contains(msg.full_name())
                || PART_MESSAGES.contains(&msg.full_name())
                || SCOPE_MESSAGES.contains(&msg.full_name()),
            "{} is neither the data of an event type nor a known part: map it in contracts()",
            msg.full_name()
        );
    }
    for part in PART_MESSAGES {
        message(part);
    }
    for c in all_contracts() {
        message(c.message);
        // switchboard.<a>.<b>.v<N>, its data in package switchboard.v<N>.
        let parts: Vec<&str> = c.event_type.split('.').collect();
        assert_eq!(parts.first(), Some(&"switchboard"), "{}", c.event_type);
        assert_eq!(parts.len(), 4, "{}", c.event_type);
        assert_eq!(
            package_version(package_of(c.message)),
            Some(type_version(c.event_type)),
            "{}: its data {} is in the package of its version",
            c.event_type,
            c.message
        );
    }
}

/// v2's decision is v1's with `reasons` instead of `explanation`: every other field has the same
/// name, number, type, cardinality and presence, and v1's `explanation` is reserved in v2. The
/// only other fields are those v2 gained after v1 stopped being produced
/// ([`V2_ONLY_ROUTE_FIELDS`]), numbered after every v1 field so they never reuse one.
#[test]
fn v2_call_route_is_v1_with_reasons_instead_of_explanation() {
    let v1 = message("switchboard.v1.CallRoute");
    let v2 = message(message_of::<CallRoute>());
    assert_eq!(v2.full_name(), "switchboard.v2.CallRoute");
    let shape = |f: &prost_reflect::FieldDescriptor| {
        (
            f.name().to_string(),
            f.number(),
            format!("{:?}", f.kind()),
            f.is_list(),
            f.supports_presence(),
        )
    };
    let v1_fields: Vec<_> = v1
        .fields()
        .filter(|f| f.name() != "explanation")
        .map(|f| shape(&f))
        .collect();
    let v2_fields: Vec<_> = v2
        .fields()
        .filter(|f| f.name() != "reasons" && !V2_ONLY_ROUTE_FIELDS.contains(&f.name()))
        .map(|f| shape(&f))
        .collect();
    assert_eq!(v1_fields, v2_fields);
    let reasons_number = v2.get_field_by_name("reasons").expect("reasons").number();
    for name in V2_ONLY_ROUTE_FIELDS {
        let field = v2
            .get_field_by_name(name)
            .unwrap_or_else(|| panic!("v2 has {name}"));
        assert!(
            v1.get_field_by_name(name).is_none(),
            "v1 history has no {name}"
        );
        assert!(
            v1.fields().all(|f| f.number() < field.number()) && field.number() > reasons_number,
            "{name} is numbered after every earlier field"
        );
    }
    let reasons = v2.get_field_by_name("reasons").expect("reasons");
    assert!(reasons.is_list());
    assert!(matches!(reasons.kind(), Kind::Message(m) if m.full_name() == "switchboard.v2.Reason"));
    let explanation = v1.get_field_by_name("explanation").expect("explanation");
    assert!(v2.get_field(explanation.number()).is_none());
    let proto = v2.descriptor_proto();
    assert!(proto.reserved_name.iter().any(|n| n == "explanation"));
    assert!(
        proto
            .reserved_range
            .iter()
            .any(|r| r.start() <= 7 && 7 < r.end())
    );
    assert_eq!(explanation.number(), 7);
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

    // The enums of issue 17 and FinalActionKind: every value, in declaration order, its zero
    // value `<enum>_unspecified`. The `Value`s of SCOPE_MESSAGES are nested only to scope their
    // values; the wire names are the same.
    use FinalActionKind as K;
    let final_action = wire_names(&[K::Voicemail, K::AnnounceHangup, K::Reject], K::as_str);
    let blocked = wire_names(
        &[BlockedAction::Reject, BlockedAction::Announce],
        BlockedAction::as_str,
    );
    let anonymous = wire_names(
        &[
            AnonymousCallers::Route,
            AnonymousCallers::Voicemail,
            AnonymousCallers::Reject,
        ],
        AnonymousCallers::as_str,
    );
    let screening = wire_names(&[Screening::Off, Screening::Forwarded], Screening::as_str);
    let mode = wire_names(
        &[RingMode::Simultaneous, RingMode::Sequential],
        RingMode::as_str,
    );
    let ended = wire_names(
        &[MissedEnd::FinalAction, MissedEnd::CallerHungUp],
        MissedEnd::as_str,
    );
    for (full_name, zero, wire) in [
        (
            "switchboard.v1.FinalActionKind",
            "final_action_kind",
            final_action,
        ),
        (
            "switchboard.v1.BlockedAction.Value",
            "blocked_action",
            blocked,
        ),
        (
            "switchboard.v1.AnonymousCallers.Value",
            "anonymous_callers",
            anonymous,
        ),
        ("switchboard.v1.Screening", "screening", screening),
        ("switchboard.v1.RingMode", "ring_mode", mode),
        ("switchboard.v1.MissedEnd.Value", "missed_end", ended),
    ] {
        let e = pool()
            .get_enum_by_name(full_name)
            .unwrap_or_else(|| panic!("no enum {full_name}"));
        let names: Vec<String> = e
            .enum_descriptor_proto()
            .value
            .iter()
            .filter(|v| v.number() != 0)
            .map(|v| v.name().to_string())
            .collect();
        assert_eq!(names, wire, "{full_name}");
        assert_eq!(
            e.get_value(0).map(|v| v.name().to_string()),
            Some(format!("{zero}_unspecified")),
            "{full_name}"
        );
    }

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

    // A phone problem in a reason: `{"problem": "<name>", …}`.
    let problem = pool()
        .get_enum_by_name("switchboard.v2.PhoneProblemKind")
        .expect("PhoneProblemKind");
    let names: Vec<String> = problem
        .values()
        .filter(|v| v.number() != 0)
        .map(|v| v.name().to_string())
        .collect();
    let wire: Vec<String> = [
        PhoneError::Withheld,
        PhoneError::Unparseable("x".into()),
        PhoneError::Invalid,
    ]
    .iter()
    .map(|e| {
        let json = serde_json::to_value(e).expect("JSON");
        json["problem"].as_str().expect("problem").to_string()
    })
    .collect();
    assert_eq!(names, wire);
}

/// The wire names of `values` (their serde JSON), checked against `as_str`.
fn wire_names<T: serde::Serialize + Copy>(
    values: &[T],
    as_str: fn(T) -> &'static str,
) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            let json = serde_json::to_value(v).expect("JSON");
            assert_eq!(json, as_str(*v), "serde and as_str agree");
            as_str(*v).to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------------

#[test]
fn every_event_type_has_an_example() {
    let names: Vec<String> = examples().into_iter().map(|(n, _)| n).collect();
    for c in all_contracts() {
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

/// The route examples decode as the version they are: v2 with reasons and no prose; v1,
/// through the earlier type, with its prose and no reasons. Both give `explain` its lines.
#[test]
fn route_examples_of_both_versions_decode_as_their_version() {
    let mut seen = BTreeSet::new();
    for (name, body) in examples() {
        let raw = RawEnvelope::parse(&body).expect("envelope");
        if !raw.event_type.starts_with("switchboard.call.route.") {
            continue;
        }
        let env = Envelope::<CallRoute>::decode(&body, "call.route.acme")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            env.event_type, raw.event_type,
            "{name}: decoded as its own type"
        );
        seen.insert(raw.event_type.clone());
        let data = &env.data;
        if raw.event_type == CallRoute::TYPE {
            assert!(
                !data.reasons.is_empty() && data.explanation.is_empty() && !data.is_v1(),
                "{name}: v2 carries reasons, no prose"
            );
            assert!(
                !data.reasons.contains(&Reason::Unrecognized),
                "{name}: every code is known"
            );
            let lines = data.explanation_lines();
            assert_eq!(
                lines.len(),
                data.reasons.len() + 1,
                "{name}: a line per reason, then the outcome"
            );
            // Reasons hold full numbers; their English masks them.
            for r in d_numbers(&raw.data) {
                assert!(
                    lines.iter().all(|l| !l.contains(&r)),
                    "{name}: {r} unmasked in {lines:#?}"
                );
            }
        } else {
            assert!(
                data.reasons.is_empty() && !data.explanation.is_empty() && data.is_v1(),
                "{name}: v1 carries prose, no reasons"
            );
            assert_eq!(data.explanation_lines(), data.explanation, "{name}");
            assert_eq!(
                data.target.is_none(),
                data.rule == Rule::NoRoute,
                "{name}: v1 has a target exactly when its rule is not no_route"
            );
        }
    }
    let mut expected: BTreeSet<String> = CallRoute::EARLIER_TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    expected.insert(CallRoute::TYPE.to_string());
    assert_eq!(seen, expected, "examples of every route version");
}

/// Every full number in a route's data (caller, legs and their group members, reasons and the
/// block-list entries they name).
fn d_numbers(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(n) = v.as_str() {
            out.push(n.to_string());
        }
    };
    push(&data["caller"]);
    let legs = data["target"]
        .as_object()
        .map(|_| &data["target"])
        .into_iter();
    for t in legs.chain(data["fallbacks"].as_array().into_iter().flatten()) {
        push(&t["number"]);
        for m in t["group"].as_array().into_iter().flatten() {
            push(&m["number"]);
        }
    }
    for r in data["reasons"].as_array().into_iter().flatten() {
        push(&r["number"]);
        push(&r["entry"]);
    }
    out
}

/// A v2 decision written as v1 would have been (its reasons rendered as `explanation`, and a
/// closed company's final action as `no_route`) is a valid v1 decision that explains itself
/// with the same lines: the only semantic difference between the versions is that rule.
#[test]
fn v2_examples_written_as_v1_are_valid_v1_with_the_same_explanation() {
    let mut checked = 0;
    for (name, body) in examples() {
        let raw = RawEnvelope::parse(&body).expect("envelope");
        if raw.event_type != CallRoute::TYPE {
            continue;
        }
        let v2 = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
        if !recordable_by_v1(&v2.data) {
            continue;
        }
        let v1 = as_v1(&v2.data);
        let data = serde_json::to_value(&v1).expect("JSON");
        validate("switchboard.v1.CallRoute", &data)
            .unwrap_or_else(|e| panic!("{name} as v1: {e}\n{data}"));
        let back = envelope("switchboard.call.route.v1", &v2.id, &v2.subject, data);
        let back = Envelope::<CallRoute>::decode(&back, "call.route.acme").expect("v1 decodes");
        assert_eq!(back.data, v1, "{name}");
        assert_eq!(
            back.data.explanation_lines(),
            v2.data.explanation_lines(),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "three v2 examples");
}

/// `route` as a v1 producer recorded it: a closed company's final action as `no_route`, prose
/// instead of reasons, and without the fields v2 gained later ([`V2_ONLY_ROUTE_FIELDS`]).
fn as_v1(route: &CallRoute) -> CallRoute {
    CallRoute {
        rule: if route.target.is_none() && route.rule == Rule::AfterHours {
            Rule::NoRoute
        } else {
            route.rule
        },
        reasons: Vec::new(),
        explanation: route.explanation_lines(),
        calls_seq: 0,
        caller: None,
        ..route.clone()
    }
}

/// The rules that existed while v1 was produced.
const V1_RULES: [Rule; 6] = [
    Rule::AssignedUser,
    Rule::DirectLine,
    Rule::ForwardingNumber,
    Rule::CompanyPhone,
    Rule::AfterHours,
    Rule::NoRoute,
];

/// Whether a v1 producer could have recorded `route`: only rules and legs it knew.
fn recordable_by_v1(route: &CallRoute) -> bool {
    V1_RULES.contains(&route.rule)
        && route.final_action.kind != FinalActionKind::Reject
        && route
            .target
            .iter()
            .chain(&route.fallbacks)
            .all(|t| V1_RULES.contains(&t.rule) && t.group.is_empty() && !t.screen)
}

/// The phone numbers in the examples are real numbers: what must be E.164 is canonical E.164,
/// what may be national parses in the default region, a withheld caller reads as withheld.
#[test]
fn example_phone_numbers_are_valid() {
    fn strict(name: &str, field: &str, v: &Value) {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {field} is not a string"));
        let n = E164::parse_strict(s).unwrap_or_else(|e| panic!("{name}: {field} {s:?}: {e}"));
        // Real numbers: known to the metadata too, not only possible.
        assert!(
            n.is_known_valid(),
            "{name}: {field} {s:?} is unknown to the metadata"
        );
    }
    fn lenient(name: &str, field: &str, v: &Value) {
        if let Some(s) = v.as_str() {
            let n = E164::parse(s, Region::DEFAULT)
                .unwrap_or_else(|e| panic!("{name}: {field} {s:?}: {e}"));
            assert!(
                n.is_known_valid(),
                "{name}: {field} {s:?} is unknown to the metadata"
            );
        }
    }
    // A leg: its number, and a group leg's members (the first of them is the leg's number).
    fn leg(name: &str, field: &str, t: &Value) {
        strict(name, &format!("{field}.number"), &t["number"]);
        let group = t["group"].as_array().cloned().unwrap_or_default();
        for m in &group {
            strict(name, &format!("{field}.group[].number"), &m["number"]);
        }
        if let Some(first) = group.first() {
            assert_eq!(
                first["number"], t["number"],
                "{name}: {field}: the first member"
            );
            assert_eq!(
                first["user_id"], t["user_id"],
                "{name}: {field}: the first member"
            );
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
            t if t == CallRoute::TYPE || CallRoute::EARLIER_TYPES.contains(&t) => {
                if !d["target"].is_null() {
                    leg(&name, "target", &d["target"]);
                }
                for t in d["fallbacks"].as_array().into_iter().flatten() {
                    leg(&name, "fallbacks[]", t);
                }
                if let Some(caller) = d.get("caller") {
                    strict(&name, "caller", caller);
                }
                // Numbers in reasons are full E.164 too; what is not a number is masked.
                for r in d["reasons"].as_array().into_iter().flatten() {
                    if let Some(n) = r.get("number") {
                        strict(&name, "reasons[].number", n);
                    }
                    if let Some(entry) = r.get("entry") {
                        let entry = entry.as_str().expect("entry is a string");
                        blocked_entry(entry)
                            .unwrap_or_else(|e| panic!("{name}: reasons[].entry {entry:?}: {e}"));
                    }
                    if let Some(m) = r.get("masked") {
                        let m = m.as_str().expect("masked is a string");
                        assert!(m.contains('*'), "{name}: reasons[].masked {m:?} is masked");
                    }
                }
            }
            CallDial::TYPE => {
                if !d["target"].is_null() {
                    leg(&name, "target", &d["target"]);
                }
                if let Some(caller) = d.get("caller") {
                    strict(&name, "caller", caller);
                }
            }
            CallMissed::TYPE => {
                for field in ["caller", "dialed"] {
                    if let Some(n) = d.get(field) {
                        strict(&name, field, n);
                    }
                }
                for t in d["tried"].as_array().into_iter().flatten() {
                    leg(&name, "tried[]", t);
                }
            }
            CompanySettings::TYPE => {
                lenient(&name, "company_phone", &d["company_phone"]);
                for entry in d["blocked_callers"].as_array().into_iter().flatten() {
                    let entry = entry.as_str().expect("an entry is a string");
                    blocked_entry(entry)
                        .unwrap_or_else(|e| panic!("{name}: blocked_callers {entry:?}: {e}"));
                    // A whole number is a real one; a prefix is `+` and fewer digits.
                    if entry.len() > 8 {
                        strict(&name, "blocked_callers[]", &json!(entry));
                    }
                }
            }
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

/// Wraps `data` as a producer of the earlier type `event_type` did (history that is still on
/// the streams), checks its `data` is valid proto3 JSON of that type's own message, that Rust
/// decodes it through the earlier type to the same data, and so does its canonical proto3 JSON.
fn emit_earlier(event_type: &'static str, data: &CallRoute) {
    let message = contract_of(event_type)
        .unwrap_or_else(|| panic!("{event_type} is not an earlier type"))
        .message;
    let json = serde_json::to_value(data).expect("JSON");
    let msg = validate(message, &json)
        .unwrap_or_else(|e| panic!("{event_type} data is not a valid {message}: {e}\n{json}"));
    let canonical = serde_json::to_value(&msg).expect("canonical proto3 JSON");
    for data_json in [json, canonical] {
        let body = envelope(
            event_type,
            &data.event_id(),
            &data.ce_subject(),
            data_json.clone(),
        );
        let env = Envelope::<CallRoute>::decode(&body, &data.nats_subject())
            .unwrap_or_else(|e| panic!("Rust refuses {event_type}: {e}\n{data_json}"));
        assert_eq!(env.event_type, event_type);
        assert_eq!(&env.data, data, "{data_json}");
    }
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
            group: Vec::new(),
            screen: false,
        }),
        reason: None,
        carrier_sid: Some("CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into()),
        outcome_unknown: false,
        acted_by: None,
        caller: None,
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
                group: Vec::new(),
                screen: false,
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
        // Answered on a screened simultaneous group leg, with the caller (returning callers
        // learn from it).
        CallDial {
            kind: DialEventKind::Answered,
            target: Some(Target {
                number: e164("+13125550144"),
                user_id: Some(id("u-44")),
                rule: Rule::RingGroup,
                ring_timeout_secs: Some(25),
                group: vec![
                    GroupMember {
                        number: e164("+13125550144"),
                        user_id: id("u-44"),
                    },
                    GroupMember {
                        number: e164("+13125550145"),
                        user_id: id("u-45"),
                    },
                ],
                screen: true,
            }),
            carrier_sid: Some("CAb2c3d4e5f60718293a4b5c6d7e8f9012".into()),
            caller: Some(e164("+14158675310")),
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

/// `HoursAt` as the routing core records it.
fn hours_at(zone: &str, date: &str, weekday: &str, time: &str, hours: &[(&str, &str)]) -> HoursAt {
    HoursAt {
        time_zone: zone.into(),
        date: date.into(),
        weekday: weekday.into(),
        time: time.into(),
        hours: hours
            .iter()
            .map(|(a, b)| [(*a).into(), (*b).into()])
            .collect(),
        overridden: false,
    }
}

/// The position of `reason`'s variant in `Reason`: a new variant does not compile until it is
/// given a place here, and [`every_reason`] then fails until it has an instance.
fn variant_index(reason: &Reason) -> usize {
    match reason {
        Reason::SettingsMayBeStale { .. } => 0,
        Reason::DialedNumberUnusable { .. } => 1,
        Reason::NumberNotProvisioned { .. } => 2,
        Reason::NumberReleased { .. } => 3,
        Reason::NumberProvisioned { .. } => 4,
        Reason::CompanyOpen { .. } => 5,
        Reason::CompanyClosed { .. } => 6,
        Reason::AfterHoursFinalAction => 7,
        Reason::AfterHoursForwardOnly { .. } => 8,
        Reason::NumberPrefersOwner { .. } => 9,
        Reason::LeadNamed { .. } => 10,
        Reason::NamedLeadDeleted { .. } => 11,
        Reason::NamedLeadUnknown { .. } => 12,
        Reason::CallerWithheld => 13,
        Reason::CallerUnusable { .. } => 14,
        Reason::CallerUnknown { .. } => 15,
        Reason::CallerIsLead { .. } => 16,
        Reason::CallerMatchesLeads { .. } => 17,
        Reason::NoLead { .. } => 18,
        Reason::LeadUnassigned { .. } => 19,
        Reason::UserUnknown(_) => 20,
        Reason::UserDeactivated(_) => 21,
        Reason::UserUnavailable(_) => 22,
        Reason::UserHasNoPhone(_) => 23,
        Reason::UserOutsideWorkingHours(_) => 24,
        Reason::UserEligible { .. } => 25,
        Reason::Target => 26,
        Reason::PhoneUnusable { .. } => 27,
        Reason::DialedNumberSkipped(_) => 28,
        Reason::AlreadyInChain { .. } => 29,
        Reason::NoForwardingNumber { .. } => 30,
        Reason::NoCompanyPhone => 31,
        Reason::NoTargetLeft => 32,
        Reason::CallerBlocked { .. } => 33,
        Reason::AnonymousCaller { .. } => 34,
        Reason::ReturningCaller { .. } => 35,
        Reason::NotReturningCaller { .. } => 36,
        Reason::RingGroup { .. } => 37,
        Reason::GroupMember(_) => 38,
        Reason::RingGroupEmpty => 39,
        Reason::ScreeningOn => 40,
        Reason::Unrecognized => 41,
    }
}

/// How many codes a producer can send: every variant but `Unrecognized`.
const REASON_CODES: usize = 41;

/// One reason of every code a producer sends, each with every parameter that applies to it
/// set (so its JSON shows every field the code can carry).
fn every_reason() -> Vec<Reason> {
    let n = e164;
    let chicago = || {
        hours_at(
            "America/Chicago",
            "2025-03-14",
            "fri",
            "11:20",
            &[("09:00", "17:00")],
        )
    };
    let skipped = |rule: Rule, user: &str, lead: Option<&str>, next: Rule| UserSkipped {
        rule,
        user_id: id(user),
        contact_id: lead.map(id),
        next,
        hours: None,
    };
    vec![
        Reason::SettingsMayBeStale {
            settings_seq: 1042,
            required_seq: Some(1043),
        },
        Reason::DialedNumberUnusable {
            masked: switchboard_contracts::phone::mask("sip:front-desk"),
            error: E164::parse("sip:front-desk", Region::DEFAULT).expect_err("not a number"),
        },
        Reason::NumberNotProvisioned {
            number: n("+16502530009"),
        },
        Reason::NumberReleased {
            number: n("+16502530000"),
        },
        Reason::NumberProvisioned {
            number: n("+16502530000"),
        },
        Reason::CompanyOpen { hours: chicago() },
        Reason::CompanyClosed {
            hours: HoursAt {
                date: "2026-12-24".into(),
                weekday: "thu".into(),
                time: "13:05".into(),
                hours: vec![["09:00".into(), "12:00".into()]].into(),
                overridden: true,
                ..chicago()
            },
        },
        Reason::AfterHoursFinalAction,
        Reason::AfterHoursForwardOnly {
            number: n("+13125550100"),
        },
        Reason::NumberPrefersOwner {
            user_id: id("u-43"),
        },
        Reason::LeadNamed {
            contact_id: id("c-1001"),
        },
        Reason::NamedLeadDeleted {
            contact_id: id("c-1001"),
        },
        Reason::NamedLeadUnknown {
            contact_id: id("c-1001"),
        },
        Reason::CallerWithheld,
        Reason::CallerUnusable {
            masked: switchboard_contracts::phone::mask("+1 200 555 010"),
            error: E164::parse("+1 200 555 010", Region::DEFAULT).expect_err("impossible"),
        },
        Reason::CallerUnknown {
            number: n("+14158675310"),
        },
        Reason::CallerIsLead {
            number: n("+14158675310"),
            contact_id: id("c-1001"),
        },
        Reason::CallerMatchesLeads {
            number: n("+14158675310"),
            contact_ids: vec![id("c-1002"), id("c-1001")],
            chosen: id("c-1002"),
            owner_reachable: true,
        },
        Reason::NoLead {
            next: Rule::ForwardingNumber,
        },
        Reason::LeadUnassigned {
            contact_id: id("c-1001"),
            next: Rule::DirectLine,
        },
        Reason::UserUnknown(skipped(
            Rule::AssignedUser,
            "u-41",
            Some("c-1001"),
            Rule::DirectLine,
        )),
        Reason::UserDeactivated(skipped(
            Rule::DirectLine,
            "u-43",
            None,
            Rule::ForwardingNumber,
        )),
        Reason::UserUnavailable(skipped(
            Rule::AssignedUser,
            "u-42",
            Some("c-1001"),
            Rule::ForwardingNumber,
        )),
        Reason::UserHasNoPhone(skipped(
            Rule::AssignedUser,
            "u-bob",
            Some("c-1002"),
            Rule::ForwardingNumber,
        )),
        Reason::UserOutsideWorkingHours(UserSkipped {
            hours: Some(hours_at(
                "Europe/Berlin",
                "2025-03-14",
                "fri",
                "17:20",
                &[("08:00", "17:00")],
            )),
            ..skipped(Rule::AssignedUser, "u-42", Some("c-1001"), Rule::DirectLine)
        }),
        Reason::UserEligible {
            rule: Rule::AssignedUser,
            user_id: id("u-42"),
            contact_id: Some(id("c-1001")),
            hours: Some(hours_at(
                "America/Chicago",
                "2025-03-14",
                "fri",
                "11:20",
                &[("08:00", "12:00"), ("13:00", "17:30")],
            )),
        },
        Reason::Target,
        Reason::PhoneUnusable {
            rule: Rule::DirectLine,
            user_id: Some(id("u-43")),
            error: PhoneError::Invalid,
        },
        Reason::DialedNumberSkipped(Offer {
            rule: Rule::ForwardingNumber,
            user_id: None,
            number: n("+16502530000"),
        }),
        Reason::AlreadyInChain {
            rule: Rule::CompanyPhone,
            user_id: None,
            number: n("+14155550123"),
            earlier_rule: Rule::ForwardingNumber,
        },
        Reason::NoForwardingNumber {
            number: n("+16502530001"),
        },
        Reason::NoCompanyPhone,
        Reason::NoTargetLeft,
        Reason::CallerBlocked {
            number: n("+19005550142"),
            entry: "+1900".into(),
            action: BlockedAction::Announce,
        },
        Reason::AnonymousCaller {
            action: AnonymousCallers::Voicemail,
        },
        Reason::ReturningCaller {
            number: n("+14158675310"),
            user_id: id("u-44"),
            answered_at: "2025-03-10T15:02:11Z".into(),
            days: 30,
        },
        Reason::NotReturningCaller {
            days: 30,
            next: Rule::RingGroup,
        },
        Reason::RingGroup {
            mode: RingMode::Simultaneous,
            user_ids: vec![id("u-44"), id("u-45"), id("u-46")],
        },
        Reason::GroupMember(Offer {
            rule: Rule::RingGroup,
            user_id: Some(id("u-45")),
            number: n("+13125550145"),
        }),
        Reason::RingGroupEmpty,
        Reason::ScreeningOn,
    ]
}

#[test]
fn every_reason_has_one_instance_of_every_code() {
    let indices: Vec<usize> = every_reason().iter().map(variant_index).collect();
    assert_eq!(indices, (0..REASON_CODES).collect::<Vec<_>>());
    assert_eq!(variant_index(&Reason::Unrecognized), REASON_CODES);
}

/// `reason`'s code and the fields it carries, from its serde JSON.
fn code_and_fields(reason: &Reason) -> (String, Vec<String>) {
    let json = serde_json::to_value(reason).expect("JSON");
    let map = json.as_object().expect("a reason is an object");
    let code = map["code"].as_str().expect("code").to_string();
    let fields = map.keys().filter(|k| *k != "code").cloned().collect();
    (code, fields)
}

fn fixed_calls_route() -> Vec<CallRoute> {
    let target = |number: &str, rule: Rule, user: Option<&str>| Target {
        number: e164(number),
        user_id: user.map(id),
        rule,
        ring_timeout_secs: Some(20),
        group: Vec::new(),
        screen: false,
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
        reasons: vec![
            Reason::NumberProvisioned {
                number: e164("+16502530000"),
            },
            Reason::CallerIsLead {
                number: e164("+14158675310"),
                contact_id: id("c-1001"),
            },
            Reason::UserEligible {
                rule: Rule::AssignedUser,
                user_id: id("u-42"),
                contact_id: Some(id("c-1001")),
                hours: None,
            },
            Reason::Target,
        ],
        explanation: vec![],
        settings_seq: 1042,
        calls_seq: 0,
        caller: None,
        decided_at: datetime!(2025-03-14 16:20:05.183 UTC),
    };
    vec![
        base.clone(),
        // Every code in one decision (not one the rules would make: the proto does not care).
        CallRoute {
            rule: Rule::ForwardingNumber,
            target: Some(target("+14155550123", Rule::ForwardingNumber, None)),
            fallbacks: vec![],
            reasons: every_reason(),
            final_action: FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Goodbye.".into(),
            },
            settings_seq: u64::MAX,
            ..base.clone()
        },
        // No reasons: Rust omits the list.
        CallRoute {
            rule: Rule::CompanyPhone,
            target: Some(Target {
                ring_timeout_secs: None,
                ..target("+442079460018", Rule::CompanyPhone, None)
            }),
            fallbacks: vec![],
            reasons: vec![],
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
        // v2: closed, and the after-hours action is the final action.
        CallRoute {
            rule: Rule::AfterHours,
            target: None,
            fallbacks: vec![],
            reasons: vec![
                Reason::CompanyClosed {
                    hours: hours_at("America/Chicago", "2025-03-15", "sat", "10:00", &[]),
                },
                Reason::AfterHoursFinalAction,
            ],
            ..base.clone()
        },
        CallRoute {
            rule: Rule::NoRoute,
            target: None,
            fallbacks: vec![],
            reasons: vec![Reason::NumberReleased {
                number: e164("+16502530000"),
            }],
            final_action: FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "This number is no longer in service.".into(),
            },
            ..base.clone()
        },
        // A blocked caller, rejected: nothing rings, the carrier plays busy.
        CallRoute {
            rule: Rule::Blocked,
            target: None,
            fallbacks: vec![],
            reasons: vec![
                Reason::NumberProvisioned {
                    number: e164("+16502530000"),
                },
                Reason::CallerBlocked {
                    number: e164("+19005550142"),
                    entry: "+1900".into(),
                    action: BlockedAction::Reject,
                },
            ],
            final_action: FinalAction {
                kind: FinalActionKind::Reject,
                message: Default::default(),
            },
            caller: Some(e164("+19005550142")),
            ..base.clone()
        },
        // A blocked caller, announced.
        CallRoute {
            rule: Rule::Blocked,
            target: None,
            fallbacks: vec![],
            reasons: vec![Reason::CallerBlocked {
                number: e164("+14158675310"),
                entry: "+14158675310".into(),
                action: BlockedAction::Announce,
            }],
            final_action: FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Goodbye.".into(),
            },
            caller: Some(e164("+14158675310")),
            ..base.clone()
        },
        // An anonymous caller sent to voicemail (no caller), and one rejected.
        CallRoute {
            rule: Rule::Anonymous,
            target: None,
            fallbacks: vec![],
            reasons: vec![
                Reason::CallerWithheld,
                Reason::AnonymousCaller {
                    action: AnonymousCallers::Voicemail,
                },
            ],
            ..base.clone()
        },
        CallRoute {
            rule: Rule::Anonymous,
            target: None,
            fallbacks: vec![],
            reasons: vec![Reason::AnonymousCaller {
                action: AnonymousCallers::Reject,
            }],
            final_action: FinalAction {
                kind: FinalActionKind::Reject,
                message: Default::default(),
            },
            ..base.clone()
        },
        // A simultaneous ring group's leg, screened like the forwarding number after it (the
        // company phone never is), with the returning-caller position and the caller.
        CallRoute {
            rule: Rule::RingGroup,
            target: Some(Target {
                group: vec![
                    GroupMember {
                        number: e164("+13125550144"),
                        user_id: id("u-44"),
                    },
                    GroupMember {
                        number: e164("+13125550145"),
                        user_id: id("u-45"),
                    },
                    GroupMember {
                        number: e164("+13125550146"),
                        user_id: id("u-46"),
                    },
                ],
                screen: true,
                ring_timeout_secs: Some(25),
                ..target("+13125550144", Rule::RingGroup, Some("u-44"))
            }),
            fallbacks: vec![
                Target {
                    screen: true,
                    ..target("+14155550123", Rule::ForwardingNumber, None)
                },
                target("+14155550100", Rule::CompanyPhone, None),
            ],
            reasons: vec![
                Reason::ScreeningOn,
                Reason::CallerUnknown {
                    number: e164("+14158675310"),
                },
                Reason::NotReturningCaller {
                    days: 30,
                    next: Rule::RingGroup,
                },
                Reason::RingGroup {
                    mode: RingMode::Simultaneous,
                    user_ids: vec![id("u-44"), id("u-45"), id("u-46")],
                },
                Reason::GroupMember(Offer {
                    rule: Rule::RingGroup,
                    user_id: Some(id("u-44")),
                    number: e164("+13125550144"),
                }),
                Reason::GroupMember(Offer {
                    rule: Rule::RingGroup,
                    user_id: Some(id("u-45")),
                    number: e164("+13125550145"),
                }),
                Reason::GroupMember(Offer {
                    rule: Rule::RingGroup,
                    user_id: Some(id("u-46")),
                    number: e164("+13125550146"),
                }),
                Reason::Target,
                Reason::Target,
                Reason::Target,
            ],
            calls_seq: 88_412,
            caller: Some(e164("+14158675310")),
            ..base.clone()
        },
        // A returning caller's last answerer, then a sequential group: one leg per member.
        CallRoute {
            rule: Rule::ReturningCaller,
            target: Some(target("+13125550144", Rule::ReturningCaller, Some("u-44"))),
            fallbacks: vec![
                target("+13125550145", Rule::RingGroup, Some("u-45")),
                target("+13125550146", Rule::RingGroup, Some("u-46")),
            ],
            reasons: vec![
                Reason::ReturningCaller {
                    number: e164("+14158675310"),
                    user_id: id("u-44"),
                    answered_at: "2025-03-10T15:02:11Z".into(),
                    days: 90,
                },
                Reason::Target,
                Reason::RingGroup {
                    mode: RingMode::Sequential,
                    user_ids: vec![id("u-45"), id("u-46")],
                },
                Reason::Target,
                Reason::Target,
            ],
            calls_seq: u64::MAX,
            caller: Some(e164("+14158675310")),
            ..base.clone()
        },
        // Zero and empty values: valid, and emitted by Rust with the field present.
        CallRoute {
            rule: Rule::NoRoute,
            target: None,
            fallbacks: vec![],
            reasons: vec![
                Reason::SettingsMayBeStale {
                    settings_seq: 0,
                    required_seq: Some(0),
                },
                Reason::SettingsMayBeStale {
                    settings_seq: u64::MAX,
                    required_seq: None,
                },
                Reason::CallerUnusable {
                    masked: String::new(),
                    error: PhoneError::Unparseable(String::new()),
                },
                Reason::CallerMatchesLeads {
                    number: e164("+14158675310"),
                    contact_ids: vec![id("c-1"), id("c-2")],
                    chosen: id("c-1"),
                    owner_reachable: false,
                },
                Reason::NoTargetLeft,
            ],
            final_action: FinalAction {
                kind: FinalActionKind::Voicemail,
                message: Default::default(),
            },
            settings_seq: 0,
            ..base
        },
    ]
}

/// Decisions as v1 producers recorded them: English prose, no reasons; `target` null exactly
/// when `rule` is `no_route`. Only what v1 could record: no rule of issue 17's (v1 was no
/// longer produced by then).
fn fixed_v1_calls_route() -> Vec<CallRoute> {
    let v2 = fixed_calls_route();
    let mut out: Vec<CallRoute> = v2
        .iter()
        .filter(|r| recordable_by_v1(r))
        .map(|r| CallRoute {
            explanation: vec!["caller matched contact c-1001".into(), "ring u-42".into()],
            ..as_v1(r)
        })
        .collect();
    // Zero and empty values.
    out.push(CallRoute {
        explanation: vec![String::new()],
        settings_seq: 0,
        ..as_v1(&v2[v2.len() - 1])
    });
    out
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
        returning_caller_days: 0,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    };
    vec![
        // Every field of issue 17 set.
        CompanySettings {
            version: 9,
            returning_caller_days: 90,
            blocked_callers: vec!["+19005550142".into(), "+1900".into(), "+4".into()],
            blocked_action: Some(BlockedAction::Announce),
            anonymous_callers: Some(AnonymousCallers::Voicemail),
            screening: Some(Screening::Forwarded),
            ..base.clone()
        },
        CompanySettings {
            version: 10,
            returning_caller_days: 1,
            blocked_callers: vec!["+123456789012345".into()],
            blocked_action: Some(BlockedAction::Reject),
            anonymous_callers: Some(AnonymousCallers::Reject),
            screening: Some(Screening::Off),
            ..base.clone()
        },
        CompanySettings {
            version: 11,
            anonymous_callers: Some(AnonymousCallers::Route),
            ..base.clone()
        },
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
                message: Default::default(),
            }),
            time_zone: Some("Pacific/Auckland".into()),
            business_hours: Some(Schedule::default()),
            after_hours: Some(AfterHours::default()),
            ring_timeout_secs: Some(600),
            returning_caller_days: 0,
            blocked_callers: Vec::new(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
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
            ring_group: None,
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
            ring_group: None,
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
            ring_group: None,
        },
        // A simultaneous ring group of the most members, with its own ring timeout.
        NumberSettings {
            tenant_id: tenant("acme"),
            version: 6,
            number: e164("+16502530001"),
            forwarding_number: Some("+14155550123".into()),
            released: false,
            user_id: None,
            prefer: Prefer::ContactOwner,
            ring_timeout_secs: None,
            ring_group: Some(RingGroup {
                user_ids: (0..10).map(|i| id(&format!("u-{}", 40 + i))).collect(),
                mode: RingMode::Simultaneous,
                ring_timeout_secs: Some(25),
            }),
        },
        // A sequential one of one member, taking the number's ring timeout.
        NumberSettings {
            tenant_id: tenant("acme"),
            version: 7,
            number: e164("+16502530002"),
            forwarding_number: None,
            released: false,
            user_id: Some(id("u-43")),
            prefer: Prefer::ContactOwner,
            ring_timeout_secs: Some(18),
            ring_group: Some(RingGroup {
                user_ids: vec![id("u-44")],
                mode: RingMode::Sequential,
                ring_timeout_secs: None,
            }),
        },
    ]
}

fn fixed_calls_missed() -> Vec<CallMissed> {
    let leg = |number: &str, rule: Rule, user: Option<&str>| Target {
        number: e164(number),
        user_id: user.map(id),
        rule,
        ring_timeout_secs: Some(20),
        group: Vec::new(),
        screen: false,
    };
    let base = CallMissed {
        call_id: "CA5f1c8e2b9d3a4f6e8b0c1d2e3f4a5b6c".into(),
        tenant_id: tenant("acme"),
        caller: Some(e164("+14158675310")),
        dialed: Some(e164("+16502530000")),
        contact_id: Some(id("c-1001")),
        owner_user_id: Some(id("u-42")),
        rule: Rule::AssignedUser,
        tried: vec![
            leg("+13125550199", Rule::AssignedUser, Some("u-42")),
            Target {
                screen: true,
                ..leg("+14155550123", Rule::ForwardingNumber, None)
            },
        ],
        ended: MissedEnd::FinalAction,
        final_action: Some(FinalActionKind::Voicemail),
        at: datetime!(2025-03-14 16:21:12.503 UTC),
    };
    vec![
        base.clone(),
        // The caller hung up while a group leg rang.
        CallMissed {
            rule: Rule::RingGroup,
            contact_id: None,
            owner_user_id: None,
            tried: vec![Target {
                group: vec![
                    GroupMember {
                        number: e164("+13125550144"),
                        user_id: id("u-44"),
                    },
                    GroupMember {
                        number: e164("+13125550145"),
                        user_id: id("u-45"),
                    },
                ],
                ..leg("+13125550144", Rule::RingGroup, Some("u-44"))
            }],
            ended: MissedEnd::CallerHungUp,
            final_action: None,
            ..base.clone()
        },
        // Nothing could ring: after hours, the announcement; an anonymous caller's voicemail.
        CallMissed {
            rule: Rule::AfterHours,
            tried: vec![],
            final_action: Some(FinalActionKind::AnnounceHangup),
            at: datetime!(2025-03-14 18:40:12.051 -05:00),
            ..base.clone()
        },
        CallMissed {
            call_id: "x".into(),
            tenant_id: tenant("A_b-9"),
            caller: None,
            dialed: None,
            contact_id: None,
            owner_user_id: None,
            rule: Rule::Anonymous,
            tried: vec![],
            ..base
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
    let mut codes = BTreeSet::new();
    for v in fixed_calls_route() {
        rules.insert(v.rule);
        rules.extend(v.target.iter().chain(&v.fallbacks).map(|t| t.rule));
        kinds.push(v.final_action.kind);
        codes.extend(v.reasons.iter().map(variant_index));
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    assert_eq!(codes.len(), REASON_CODES, "every reason code is covered");
    for event_type in CallRoute::EARLIER_TYPES {
        for v in fixed_v1_calls_route() {
            emit_earlier(event_type, &v);
        }
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
    let mut ended = BTreeSet::new();
    for v in fixed_calls_missed() {
        ended.insert(v.ended.as_str());
        rules.insert(v.rule);
        let (env, msg) = emit(v, at);
        through_canonical_proto_json(&env, &msg);
    }
    assert_eq!(ended.len(), 2, "every MissedEnd variant is covered");
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
            && kinds.contains(&FinalActionKind::Reject)
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
            .prop_map(|(kind, message)| FinalAction {
                kind,
                message: message.into(),
            })
    }

    /// Any leg: every rule a target can have, a simultaneous group (its first member's number
    /// and user as the leg's) for some `ring_group` legs, screened or not.
    pub fn target() -> impl Strategy<Value = Target> {
        (
            v1_target(),
            prop::collection::vec((e164(), entity_id()), 2..5),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(leg, members, grouped, screen)| {
                let group: Vec<GroupMember> = members
                    .into_iter()
                    .map(|(number, user_id)| GroupMember { number, user_id })
                    .collect();
                match leg.rule {
                    Rule::RingGroup if grouped => Target {
                        number: group[0].number.clone(),
                        user_id: Some(group[0].user_id.clone()),
                        group,
                        screen,
                        ..leg
                    },
                    _ => Target { screen, ..leg },
                }
            })
    }

    /// A leg as v1 decisions (and any leg of a chain without groups or screening) hold it.
    pub fn v1_target() -> impl Strategy<Value = Target> {
        (
            e164(),
            prop::option::of(entity_id()),
            prop::sample::select(
                Rule::ALL
                    .into_iter()
                    .filter(|r| !matches!(r, Rule::NoRoute | Rule::Blocked | Rule::Anonymous))
                    .collect::<Vec<_>>(),
            ),
            prop::option::of(any::<u32>()),
        )
            .prop_map(|(number, user_id, rule, ring_timeout_secs)| {
                Target::single(number, user_id, rule, ring_timeout_secs)
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

    pub fn phone_error() -> impl Strategy<Value = PhoneError> {
        prop_oneof![
            Just(PhoneError::Withheld),
            Just(PhoneError::Invalid),
            text(40).prop_map(PhoneError::Unparseable),
        ]
    }

    /// A schedule as seen at a call.
    pub fn hours_at() -> impl Strategy<Value = HoursAt> {
        (
            time_zone(),
            (2000i16..2100, 1i8..=12, 1i8..=28),
            prop::sample::select(DAY_KEYS.to_vec()),
            (0u16..24, 0u16..60),
            day(),
            any::<bool>(),
        )
            .prop_map(
                |(time_zone, (y, m, d), weekday, (hh, mm), hours, overridden)| HoursAt {
                    time_zone: time_zone.into(),
                    date: format!("{y:04}-{m:02}-{d:02}").into(),
                    weekday: weekday.into(),
                    time: format!("{hh:02}:{mm:02}").into(),
                    hours: hours
                        .into_iter()
                        .map(|[start, end]| [start.into(), end.into()])
                        .collect(),
                    overridden,
                },
            )
    }

    fn user_rule() -> impl Strategy<Value = Rule> {
        prop::sample::select(vec![Rule::AssignedUser, Rule::DirectLine])
    }

    fn step_rule() -> impl Strategy<Value = Rule> {
        prop::sample::select(
            Rule::ALL
                .into_iter()
                .filter(|r| *r != Rule::NoRoute)
                .collect::<Vec<_>>(),
        )
    }

    fn user_skipped(with_hours: bool) -> impl Strategy<Value = UserSkipped> {
        (
            user_rule(),
            entity_id(),
            prop::option::of(entity_id()),
            step_rule(),
            hours_at(),
        )
            .prop_map(
                move |(rule, user_id, contact_id, next, hours)| UserSkipped {
                    rule,
                    user_id,
                    contact_id,
                    next,
                    hours: with_hours.then_some(hours),
                },
            )
    }

    /// A handful of representative reasons: 64-bit and optional parameters, a phone problem,
    /// hours, several leads, a newtype variant with and without hours, an offer, a
    /// parameterless code.
    pub fn reason() -> impl Strategy<Value = Reason> {
        prop_oneof![
            (any::<u64>(), prop::option::of(any::<u64>())).prop_map(
                |(settings_seq, required_seq)| Reason::SettingsMayBeStale {
                    settings_seq,
                    required_seq
                }
            ),
            (text(30), phone_error()).prop_map(|(raw, error)| Reason::CallerUnusable {
                masked: switchboard_contracts::phone::mask(&raw),
                error
            }),
            hours_at().prop_map(|hours| Reason::CompanyClosed { hours }),
            (
                e164(),
                prop::collection::vec(entity_id(), 2..5),
                any::<bool>()
            )
                .prop_map(|(number, contact_ids, owner_reachable)| {
                    Reason::CallerMatchesLeads {
                        number,
                        chosen: contact_ids[0].clone(),
                        contact_ids,
                        owner_reachable,
                    }
                }),
            user_skipped(true).prop_map(Reason::UserOutsideWorkingHours),
            user_skipped(false).prop_map(Reason::UserUnknown),
            (
                user_rule(),
                entity_id(),
                prop::option::of(entity_id()),
                prop::option::of(hours_at())
            )
                .prop_map(|(rule, user_id, contact_id, hours)| Reason::UserEligible {
                    rule,
                    user_id,
                    contact_id,
                    hours
                }),
            Just(Reason::Target),
            (
                step_rule(),
                prop::option::of(entity_id()),
                e164(),
                step_rule()
            )
                .prop_map(|(rule, user_id, number, earlier_rule)| {
                    Reason::AlreadyInChain {
                        rule,
                        user_id,
                        number,
                        earlier_rule,
                    }
                }),
            (entity_id(), step_rule())
                .prop_map(|(contact_id, next)| Reason::LeadUnassigned { contact_id, next }),
            Just(Reason::NoTargetLeft),
            (
                e164(),
                1usize..=15,
                prop::sample::select(vec![BlockedAction::Reject, BlockedAction::Announce])
            )
                .prop_map(|(number, digits, action)| Reason::CallerBlocked {
                    // A prefix of the number: `+` and up to all of its digits.
                    entry: number.as_str().chars().take(digits + 1).collect(),
                    number,
                    action,
                }),
            prop::sample::select(vec![AnonymousCallers::Voicemail, AnonymousCallers::Reject])
                .prop_map(|action| Reason::AnonymousCaller { action }),
            (e164(), entity_id(), time(), 1u32..=90).prop_map(|(number, user_id, at, days)| {
                Reason::ReturningCaller {
                    number,
                    user_id,
                    answered_at: at
                        .to_offset(UtcOffset::UTC)
                        .replace_nanosecond(0)
                        .expect("in range")
                        .format(&time::format_description::well_known::Rfc3339)
                        .expect("RFC 3339")
                        .into(),
                    days,
                }
            }),
            (any::<u32>(), step_rule())
                .prop_map(|(days, next)| Reason::NotReturningCaller { days, next }),
            (
                prop::sample::select(vec![RingMode::Simultaneous, RingMode::Sequential]),
                prop::collection::vec(entity_id(), 0..11)
            )
                .prop_map(|(mode, user_ids)| Reason::RingGroup { mode, user_ids }),
            (step_rule(), prop::option::of(entity_id()), e164()).prop_map(
                |(rule, user_id, number)| Reason::GroupMember(Offer {
                    rule,
                    user_id,
                    number
                })
            ),
            Just(Reason::RingGroupEmpty),
            Just(Reason::ScreeningOn),
        ]
    }

    /// A v2 decision: `target` null when `rule` is `no_route`, `blocked` or `anonymous`, and
    /// possibly when it is `after_hours`; a `reject` final action only with `blocked` or
    /// `anonymous`; reasons, no prose.
    pub fn call_route() -> impl Strategy<Value = CallRoute> {
        (
            (
                call_id(),
                tenant(),
                prop::sample::select(Rule::ALL.to_vec()),
            ),
            (
                target(),
                any::<bool>(),
                prop::collection::vec(target(), 0..4),
            ),
            (final_action(), any::<bool>()),
            prop::collection::vec(reason(), 0..8),
            (
                prop_oneof![Just(0u64), any::<u64>()],
                prop_oneof![Just(0u64), any::<u64>()],
                prop::option::of(e164()),
            ),
            time(),
        )
            .prop_map(
                |(
                    (call_id, tenant_id, rule),
                    (target, final_only, fallbacks),
                    (final_action, reject),
                    reasons,
                    (settings_seq, calls_seq, caller),
                    decided_at,
                )| {
                    let refused = matches!(rule, Rule::Blocked | Rule::Anonymous);
                    let target = match rule {
                        Rule::NoRoute | Rule::Blocked | Rule::Anonymous => None,
                        Rule::AfterHours if final_only => None,
                        _ => Some(target),
                    };
                    CallRoute {
                        call_id,
                        tenant_id,
                        rule,
                        fallbacks: if target.is_some() { fallbacks } else { vec![] },
                        target,
                        final_action: if refused && reject {
                            FinalAction {
                                kind: FinalActionKind::Reject,
                                message: Default::default(),
                            }
                        } else {
                            final_action
                        },
                        reasons,
                        explanation: Vec::new(),
                        settings_seq,
                        calls_seq,
                        caller,
                        decided_at,
                    }
                },
            )
    }

    /// A v1 decision: `target` null exactly when `rule` is `no_route`; prose, no reasons; only
    /// the rules and legs v1 producers knew, none of the fields v2 gained later.
    pub fn call_route_v1() -> impl Strategy<Value = CallRoute> {
        (
            call_route(),
            prop::sample::select(V1_RULES.to_vec()),
            v1_target(),
            prop::collection::vec(v1_target(), 0..4),
            prop::collection::vec(text(60), 0..5),
        )
            .prop_map(|(v2, rule, target, fallbacks, explanation)| {
                let v1_leg = |t: Target| {
                    if V1_RULES.contains(&t.rule) {
                        t
                    } else {
                        Target {
                            rule: Rule::ForwardingNumber,
                            ..t
                        }
                    }
                };
                let target = (rule != Rule::NoRoute).then(|| v1_leg(target));
                CallRoute {
                    rule,
                    fallbacks: if target.is_some() {
                        fallbacks.into_iter().map(v1_leg).collect()
                    } else {
                        vec![]
                    },
                    target,
                    final_action: if v2.final_action.kind == FinalActionKind::Reject {
                        FinalAction::default()
                    } else {
                        v2.final_action.clone()
                    },
                    reasons: Vec::new(),
                    explanation,
                    calls_seq: 0,
                    caller: None,
                    ..v2
                }
            })
    }

    /// A missed call: a final action exactly when it ended with one.
    pub fn call_missed() -> impl Strategy<Value = CallMissed> {
        (
            (
                call_id(),
                tenant(),
                prop::option::of(e164()),
                prop::option::of(e164()),
            ),
            (
                prop::option::of(entity_id()),
                prop::option::of(entity_id()),
                prop::sample::select(Rule::ALL.to_vec()),
                prop::collection::vec(target(), 0..4),
            ),
            (
                prop::sample::select(vec![MissedEnd::FinalAction, MissedEnd::CallerHungUp]),
                prop::sample::select(vec![
                    FinalActionKind::Voicemail,
                    FinalActionKind::AnnounceHangup,
                ]),
            ),
            time(),
        )
            .prop_map(
                |(
                    (call_id, tenant_id, caller, dialed),
                    (contact_id, owner_user_id, rule, tried),
                    (ended, kind),
                    at,
                )| CallMissed {
                    call_id,
                    tenant_id,
                    caller,
                    dialed,
                    contact_id,
                    owner_user_id,
                    rule,
                    tried,
                    ended,
                    final_action: (ended == MissedEnd::FinalAction).then_some(kind),
                    at,
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
            (
                prop_oneof![Just(0u32), 1u32..=90],
                prop::collection::vec("\\+[1-9][0-9]{0,14}", 0..6),
                prop::option::of(prop::sample::select(vec![
                    BlockedAction::Reject,
                    BlockedAction::Announce,
                ])),
                prop::option::of(prop::sample::select(vec![
                    AnonymousCallers::Route,
                    AnonymousCallers::Voicemail,
                    AnonymousCallers::Reject,
                ])),
                prop::option::of(prop::sample::select(vec![
                    Screening::Off,
                    Screening::Forwarded,
                ])),
            ),
        )
            .prop_map(
                |(
                    (tenant_id, version, company_phone, default_region, final_action),
                    (time_zone, business_hours, after_hours, ring_timeout_secs),
                    (
                        returning_caller_days,
                        blocked_callers,
                        blocked_action,
                        anonymous_callers,
                        screening,
                    ),
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
                        returning_caller_days,
                        blocked_callers,
                        blocked_action,
                        anonymous_callers,
                        screening,
                    }
                },
            )
    }

    /// A valid ring group: 1 to 10 distinct users.
    pub fn ring_group() -> impl Strategy<Value = RingGroup> {
        (
            prop::collection::btree_set(entity_id(), 1..=10),
            prop::sample::select(vec![RingMode::Simultaneous, RingMode::Sequential]),
            ring_timeout(),
        )
            .prop_map(|(user_ids, mode, ring_timeout_secs)| RingGroup {
                user_ids: user_ids.into_iter().collect(),
                mode,
                ring_timeout_secs,
            })
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
            (ring_timeout(), prop::option::of(ring_group())),
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
                    (ring_timeout_secs, ring_group),
                )| NumberSettings {
                    tenant_id,
                    version,
                    number,
                    forwarding_number,
                    released,
                    user_id,
                    prefer,
                    ring_timeout_secs,
                    ring_group,
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
    fn arbitrary_v1_call_route_history_is_valid_v1_proto_and_still_decodes(v in strategies::call_route_v1()) {
        for event_type in CallRoute::EARLIER_TYPES {
            emit_earlier(event_type, &v);
        }
    }

    #[test]
    fn arbitrary_call_missed_emitted_by_rust_is_valid_proto(v in strategies::call_missed(), at in strategies::time()) {
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
            returning_caller_days: 0,
            blocked_callers: Vec::new(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
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

    // Route without target: `target`, `fallbacks` and `reasons` omitted.
    let action = || {
        let mut action = DynamicMessage::new(message("switchboard.v1.FinalAction"));
        action.set_field_by_name("kind", PValue::EnumNumber(2));
        action.set_field_by_name("message", s("Goodbye."));
        PValue::Message(action)
    };
    let data = canonical(
        "switchboard.v2.CallRoute",
        &[
            ("call_id", s(call)),
            ("tenant_id", s("acme")),
            ("rule", PValue::EnumNumber(4)),
            ("final_action", action()),
            ("settings_seq", PValue::U64(12)),
            ("decided_at", ts(1_741_969_205, 0)),
        ],
    );
    assert_eq!(data["rule"], "no_route");
    assert_eq!(data["final_action"]["kind"], "announce_hangup");
    assert_eq!(data["settings_seq"], "12");
    assert!(data.get("target").is_none() && data.get("fallbacks").is_none());
    assert!(data.get("reasons").is_none());
    let body = envelope(
        CallRoute::TYPE,
        &format!("acme:{call}:route"),
        call,
        data.clone(),
    );
    let env = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
    assert_eq!(env.data.rule, Rule::NoRoute);
    assert_eq!(env.data.target, None);
    assert!(env.data.fallbacks.is_empty() && env.data.reasons.is_empty());
    assert!(env.data.explanation.is_empty());
    assert_eq!(env.data.settings_seq, 12);
    assert_eq!(env.data.final_action.kind, FinalActionKind::AnnounceHangup);

    // The same as v1 (history): still decoded, as v1.
    let v1 = canonical(
        "switchboard.v1.CallRoute",
        &[
            ("call_id", s(call)),
            ("tenant_id", s("acme")),
            ("rule", PValue::EnumNumber(4)),
            ("final_action", action()),
            ("explanation", PValue::List(vec![s("No route.")])),
            ("settings_seq", PValue::U64(12)),
            ("decided_at", ts(1_741_969_205, 0)),
        ],
    );
    let body = envelope(
        "switchboard.call.route.v1",
        &format!("acme:{call}:route"),
        call,
        v1,
    );
    let env_v1 = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("v1 decodes");
    assert_eq!(env_v1.event_type, "switchboard.call.route.v1");
    assert_eq!(env_v1.data.explanation, ["No route."]);
    assert_eq!(
        CallRoute {
            explanation: vec![],
            ..env_v1.data
        },
        env.data
    );

    // Reasons as generated code builds them: parameters a code does not use are unset, and
    // those it uses are set even when zero (`optional`), so `owner_reachable: false` is sent.
    let reason = |fields: &[(&str, PValue)]| {
        let mut m = DynamicMessage::new(message("switchboard.v2.Reason"));
        for (name, value) in fields {
            m.try_set_field_by_name(name, value.clone())
                .unwrap_or_else(|e| panic!("Reason.{name}: {e}"));
        }
        PValue::Message(m)
    };
    let interval = |a: &str, b: &str| {
        let mut list = DynamicMessage::new(message("google.protobuf.ListValue"));
        let value = |v: &str| {
            let mut m = DynamicMessage::new(message("google.protobuf.Value"));
            m.set_field_by_name("string_value", s(v));
            PValue::Message(m)
        };
        list.set_field_by_name("values", PValue::List(vec![value(a), value(b)]));
        PValue::Message(list)
    };
    let mut hours = DynamicMessage::new(message("switchboard.v2.HoursAt"));
    hours.set_field_by_name("time_zone", s("Europe/Berlin"));
    hours.set_field_by_name("date", s("2025-03-14"));
    hours.set_field_by_name("weekday", s("fri"));
    hours.set_field_by_name("time", s("17:20"));
    hours.set_field_by_name("hours", PValue::List(vec![interval("08:00", "17:00")]));
    let mut problem = DynamicMessage::new(message("switchboard.v2.PhoneProblem"));
    problem.set_field_by_name("problem", PValue::EnumNumber(1));
    let (assigned_user, direct_line, forwarding_number) = (1, 5, 2);
    let data = canonical(
        "switchboard.v2.CallRoute",
        &[
            ("call_id", s(call)),
            ("tenant_id", s("acme")),
            ("rule", PValue::EnumNumber(4)),
            ("final_action", action()),
            (
                "reasons",
                PValue::List(vec![
                    reason(&[("code", s("caller_withheld"))]),
                    reason(&[
                        ("code", s("caller_unusable")),
                        ("masked", s("")),
                        ("error", PValue::Message(problem)),
                    ]),
                    reason(&[
                        ("code", s("caller_matches_leads")),
                        ("number", s("+14158675310")),
                        ("contact_ids", PValue::List(vec![s("c-1"), s("c-2")])),
                        ("chosen", s("c-1")),
                        ("owner_reachable", PValue::Bool(false)),
                    ]),
                    reason(&[
                        ("code", s("user_outside_working_hours")),
                        ("rule", PValue::EnumNumber(assigned_user)),
                        ("user_id", s("u-42")),
                        ("contact_id", s("c-1")),
                        ("next", PValue::EnumNumber(direct_line)),
                        ("hours", PValue::Message(hours)),
                    ]),
                    reason(&[
                        ("code", s("target")),
                        ("rule", PValue::EnumNumber(forwarding_number)),
                        ("number", s("+14155550123")),
                    ]),
                ]),
            ),
            ("decided_at", ts(1_741_969_205, 0)),
        ],
    );
    assert_eq!(
        data["reasons"],
        json!([
            {"code": "caller_withheld"},
            {"code": "caller_unusable", "masked": "", "error": {"problem": "withheld"}},
            {"code": "caller_matches_leads", "number": "+14158675310", "contact_ids": ["c-1", "c-2"],
             "chosen": "c-1", "owner_reachable": false},
            {"code": "user_outside_working_hours", "rule": "assigned_user", "user_id": "u-42",
             "contact_id": "c-1", "next": "direct_line",
             "hours": {"time_zone": "Europe/Berlin", "date": "2025-03-14", "weekday": "fri",
                       "time": "17:20", "hours": [["08:00", "17:00"]]}},
            {"code": "target", "rule": "forwarding_number", "number": "+14155550123"},
        ]),
        "the serde shape: the code and its parameters side by side"
    );
    let body = envelope(CallRoute::TYPE, &format!("acme:{call}:route"), call, data);
    let env = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
    assert_eq!(
        env.data.reasons,
        [
            Reason::CallerWithheld,
            Reason::CallerUnusable {
                masked: String::new(),
                error: PhoneError::Withheld,
            },
            Reason::CallerMatchesLeads {
                number: e164("+14158675310"),
                contact_ids: vec![id("c-1"), id("c-2")],
                chosen: id("c-1"),
                owner_reachable: false,
            },
            Reason::UserOutsideWorkingHours(UserSkipped {
                rule: Rule::AssignedUser,
                user_id: id("u-42"),
                contact_id: Some(id("c-1")),
                next: Rule::DirectLine,
                hours: Some(hours_at(
                    "Europe/Berlin",
                    "2025-03-14",
                    "fri",
                    "17:20",
                    &[("08:00", "17:00")]
                )),
            }),
            Reason::Target,
        ]
    );
}

/// What the routing core does not know yet (a newer producer's code) decodes, as
/// `Reason::Unrecognized`, and the rest of the decision with it; the code is valid proto
/// (`code` is a string), and its unknown parameters are ignored like any unknown field.
#[test]
fn unknown_reason_codes_decode_as_unrecognized() {
    let mut example = example_json("switchboard.call.route.v2.json");
    let reasons = example["data"]["reasons"].as_array_mut().expect("reasons");
    let known = reasons.len();
    reasons.insert(1, json!({"code": "caller_is_vip", "contact_id": "c-1001"}));
    reasons.push(json!({"code": "lead_scored", "score": 97, "model": {"name": "x"}}));
    reasons.push(json!({"code": "Target", "rule": "company_phone", "number": "+14155550100"}));
    // Valid proto, but for the unknown fields of the second (which producers must not send).
    validate(
        message_of::<CallRoute>(),
        &json!({"reasons": [example["data"]["reasons"][1].clone()]}),
    )
    .expect("an unknown code with known fields is valid proto");
    let body = serde_json::to_vec(&example).expect("JSON");
    let env = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
    let reasons = &env.data.reasons;
    assert_eq!(reasons.len(), known + 3);
    assert_eq!(reasons[1], Reason::Unrecognized);
    assert_eq!(
        &reasons[known + 1..],
        [Reason::Unrecognized, Reason::Unrecognized]
    );
    let plain = Envelope::<CallRoute>::decode(
        &serde_json::to_vec(&example_json("switchboard.call.route.v2.json")).expect("JSON"),
        "call.route.acme",
    )
    .expect("decodes");
    let mut known_only = reasons.clone();
    known_only.retain(|r| *r != Reason::Unrecognized);
    assert_eq!(
        known_only, plain.data.reasons,
        "the known reasons are intact"
    );
    let lines = env.data.explanation_lines();
    assert_eq!(lines[1], Reason::Unrecognized.english(None));
}

/// Canonical proto3 JSON writes a reason's 64-bit parameters as decimal strings, which the
/// contract says every consumer accepts.
#[test]
fn canonical_reason_seqs_as_decimal_strings_decode() {
    let mut example = example_json("switchboard.call.route.v2.json");
    example["data"]["reasons"]
        .as_array_mut()
        .expect("reasons")
        .insert(0, json!({"code": "settings_may_be_stale", "settings_seq": "1042", "required_seq": "1043"}));
    validate(message_of::<CallRoute>(), &example["data"]).expect("valid proto");
    let body = serde_json::to_vec(&example).expect("JSON");
    let env = Envelope::<CallRoute>::decode(&body, "call.route.acme").expect("decodes");
    assert_eq!(
        env.data.reasons[0],
        Reason::SettingsMayBeStale {
            settings_seq: 1042,
            required_seq: Some(1043)
        }
    );
}

/// Every code is documented with the fields it carries: in the comment of `Reason` in the
/// proto (`<code>: <field>, <field>?. …` on one line), and in docs/events.md (a table row
/// `| `<code>` | `<field>`, … | <its English, from `Reason::english`> |`).
#[test]
fn every_reason_code_is_documented_with_its_fields() {
    let compiler = compile().expect("compiles");
    let set = compiler.file_descriptor_set();
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "switchboard/v2/calls.proto")
        .expect("v2 calls.proto");
    let index = file
        .message_type
        .iter()
        .position(|m| m.name() == "Reason")
        .expect("Reason");
    let comment = file
        .source_code_info
        .as_ref()
        .expect("source info")
        .location
        .iter()
        .find(|l| l.path == [4, i32::try_from(index).expect("index")])
        .map(|l| l.leading_comments().to_string())
        .expect("Reason is commented");
    let docs = std::fs::read_to_string(workspace_root().join("docs/events.md")).expect("docs");
    // The codes table: from its header row to the first line that is not a table row.
    let rows: Vec<&str> = docs
        .lines()
        .skip_while(|l| !l.starts_with("| code | parameters |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        !rows.is_empty(),
        "docs/events.md has no table `| code | parameters | …`"
    );

    let mut documented = BTreeSet::new();
    for line in comment.lines() {
        if let Some((code, _)) = line.trim().split_once(": ")
            && !code.contains(' ')
            && code.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            documented.insert(code.to_string());
        }
    }
    let mut codes = BTreeSet::new();
    for reason in every_reason() {
        let (code, fields) = code_and_fields(&reason);
        let line = comment
            .lines()
            .find(|l| l.trim().starts_with(&format!("{code}: ")))
            .unwrap_or_else(|| panic!("Reason's comment has no line `{code}: <fields>. …`"));
        let listed: &str = line.split_once(". ").map_or(line, |(f, _)| f);
        for field in &fields {
            assert!(
                listed
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == field),
                "{code}: the proto comment does not list `{field}`: {line}"
            );
        }
        let row = rows
            .iter()
            .find(|l| l.starts_with(&format!("| `{code}` |")))
            .unwrap_or_else(|| panic!("docs/events.md has no row for `{code}`"));
        for field in &fields {
            assert!(
                row.contains(&format!("`{field}`")),
                "{code}: docs/events.md does not list `{field}`: {row}"
            );
        }
        // A `target` reason names its leg: shown for the leg of `user_eligible`'s example.
        let leg = Target {
            number: E164::parse_strict("+13125550199").expect("valid"),
            user_id: Some(EntityId::parse("id", "u-42").expect("valid")),
            rule: Rule::AssignedUser,
            ring_timeout_secs: Some(20),
            group: Vec::new(),
            screen: false,
        };
        let english = reason.english((reason == Reason::Target).then_some(&leg));
        assert!(
            row.replace("\\*", "*").contains(&english),
            "{code}: docs/events.md does not show its English, {english:?}"
        );
        codes.insert(code);
    }
    assert_eq!(
        documented, codes,
        "the proto comment documents exactly the codes"
    );
    assert_eq!(
        rows.len(),
        codes.len() + 2,
        "docs/events.md: a row per code, nothing else"
    );
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
    let route = example_json("switchboard.call.route.v2.json")["data"].clone();
    let route_v1 = example_json("switchboard.call.route.v1.json")["data"].clone();
    // `route` with `f` applied to its reason `i`.
    let reason = |i: usize, f: &dyn Fn(&mut Value)| {
        let mut d = route.clone();
        f(&mut d["reasons"][i]);
        d
    };
    assert_eq!(route["reasons"][1]["code"], "company_open");
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
        ("switchboard.v1.CallRoute", &route_v1),
        (settings_number, &number),
        (settings_contact, &contact),
        (rejection, &rejected),
    ] {
        validate(m, d).unwrap_or_else(|e| panic!("baseline {m}: {e}"));
    }

    let policy = example_json("switchboard.settings.company.v1.policy.json")["data"].clone();
    let grouped = example_json("switchboard.settings.number.v1.ring_group.json")["data"].clone();
    let group_route = example_json("switchboard.call.route.v2.ring_group.json")["data"].clone();
    let missed = example_json("switchboard.call.missed.v1.json")["data"].clone();
    assert_eq!(group_route["reasons"][4]["code"], "not_returning_caller");
    assert_eq!(group_route["reasons"][5]["code"], "ring_group");
    let settings_company = message_of::<CompanySettings>();
    let calls_missed = message_of::<CallMissed>();
    for (m, d) in [
        (settings_company, &policy),
        (settings_number, &grouped),
        (calls_route, &group_route),
        (calls_missed, &missed),
    ] {
        validate(m, d).unwrap_or_else(|e| panic!("baseline {m}: {e}"));
    }
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "unknown blocked_action",
            settings_company,
            with(policy.clone(), "blocked_action", json!("hangup")),
        ),
        (
            "blocked_action is a final action kind",
            settings_company,
            with(policy.clone(), "blocked_action", json!("announce_hangup")),
        ),
        (
            "unknown anonymous_callers",
            settings_company,
            with(policy.clone(), "anonymous_callers", json!("block")),
        ),
        (
            "unspecified screening",
            settings_company,
            with(policy.clone(), "screening", json!("screening_unspecified")),
        ),
        (
            "returning_caller_days negative",
            settings_company,
            with(policy.clone(), "returning_caller_days", json!(-1)),
        ),
        (
            "blocked_callers not a list",
            settings_company,
            with(policy.clone(), "blocked_callers", json!("+1900")),
        ),
        (
            "unknown ring mode",
            settings_number,
            with(grouped.clone(), "ring_group.mode", json!("round_robin")),
        ),
        (
            "ring group users not a list",
            settings_number,
            with(grouped.clone(), "ring_group.user_ids", json!("u-44")),
        ),
        (
            "group member without a message shape",
            calls_route,
            with(group_route.clone(), "target.group", json!(["+13125550144"])),
        ),
        (
            "screen is a string",
            calls_route,
            with(group_route.clone(), "target.screen", json!("yes")),
        ),
        (
            "calls_seq not a number",
            calls_route,
            with(group_route.clone(), "calls_seq", json!("recent")),
        ),
        (
            "calls_seq in v1 history",
            "switchboard.v1.CallRoute",
            with(route_v1.clone(), "calls_seq", json!(7)),
        ),
        ("unknown ring mode in a reason", calls_route, {
            let mut d = group_route.clone();
            d["reasons"][5]["mode"] = json!("all");
            d
        }),
        ("days not a number", calls_route, {
            let mut d = group_route.clone();
            d["reasons"][4]["days"] = json!(1.5);
            d
        }),
        (
            "unknown missed end",
            calls_missed,
            with(missed.clone(), "ended", json!("hung_up")),
        ),
        (
            "missed final action as an object",
            calls_missed,
            with(missed.clone(), "final_action", json!({"kind": "voicemail"})),
        ),
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
            "v1 prose in v2",
            calls_route,
            with(route.clone(), "explanation", json!(["ring u-42"])),
        ),
        (
            "v2 reasons in v1",
            "switchboard.v1.CallRoute",
            with(route_v1.clone(), "reasons", route["reasons"].clone()),
        ),
        (
            "reasons not a list",
            calls_route,
            with(route.clone(), "reasons", json!({"code": "no_target_left"})),
        ),
        (
            "reason as a string",
            calls_route,
            with(route.clone(), "reasons", json!(["no_target_left"])),
        ),
        (
            "reason code not a string",
            calls_route,
            reason(0, &|r| r["code"] = json!(4)),
        ),
        (
            "unknown reason parameter",
            calls_route,
            reason(0, &|r| r["why"] = json!("because")),
        ),
        (
            "unknown reason rule",
            calls_route,
            reason(3, &|r| r["rule"] = json!("nobody")),
        ),
        (
            "unspecified next",
            calls_route,
            reason(5, &|r| r["next"] = json!("rule_unspecified")),
        ),
        (
            "reason number not a string",
            calls_route,
            reason(0, &|r| r["number"] = json!(16502530000u64)),
        ),
        (
            "hours as text",
            calls_route,
            reason(1, &|r| r["hours"] = json!("Fri 09:00–17:00")),
        ),
        (
            "hours' intervals not a list",
            calls_route,
            reason(1, &|r| r["hours"]["hours"] = json!("09:00-17:00")),
        ),
        (
            "override is a string",
            calls_route,
            reason(1, &|r| r["hours"]["override"] = json!("yes")),
        ),
        (
            "unknown phone problem",
            calls_route,
            reason(0, &|r| r["error"] = json!({"problem": "missing"})),
        ),
        (
            "phone problem as a string",
            calls_route,
            reason(0, &|r| r["error"] = json!("invalid")),
        ),
        (
            "owner_reachable is a string",
            calls_route,
            reason(2, &|r| r["owner_reachable"] = json!("yes")),
        ),
        (
            "contact_ids not a list",
            calls_route,
            reason(2, &|r| r["contact_ids"] = json!("c-1001")),
        ),
        (
            "negative settings_seq in a reason",
            calls_route,
            reason(0, &|r| r["settings_seq"] = json!(-1)),
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
    for msg in contract_messages() {
        let version = package_version(msg.package_name()).expect("contract package");
        // A package may use the parts of its own or an earlier version, never of a later one.
        let usable = |package: &str| package_version(package).is_some_and(|v| v <= version);
        assert_eq!(
            msg.oneofs().filter(|o| !o.is_synthetic()).count(),
            0,
            "{}",
            msg.full_name()
        );
        for field in msg.fields() {
            assert!(!field.is_map(), "{}", field.full_name());
            let ok = match field.kind() {
                Kind::String | Kind::Bool | Kind::Uint32 | Kind::Uint64 => true,
                Kind::Enum(e) => usable(e.package_name()),
                // ListValue: a schedule's interval, `["09:00", "17:00"]` (a JSON array).
                Kind::Message(m) => {
                    usable(m.package_name())
                        || m.full_name() == "google.protobuf.Timestamp"
                        || (m.full_name() == "google.protobuf.ListValue" && field.is_list())
                }
                _ => false,
            };
            assert!(
                ok,
                "{}: kind {:?} is not part of the contract's JSON mapping",
                field.full_name(),
                field.kind()
            );
        }
    }
}
