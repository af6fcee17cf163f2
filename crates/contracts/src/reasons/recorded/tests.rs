//! [`RecordedRoute`] against `CallRoute`'s derived decoding: every reason as Switchboard writes
//! it decodes the fast way to the same value, and no input (mutations of those reasons: fields
//! reordered, repeated, removed, added, replaced by any JSON, codes changed) decodes the fast
//! way to anything but what the derived decoding gives.

use super::{BODY_VARIANTS, RecordedRoute};
use crate::reasons::{HoursAt, Offer, UserSkipped};
use crate::{
    AnonymousCallers, BlockedAction, CallRoute, E164, EntityId, FinalAction, PhoneError, Reason,
    RingMode, Rule, Target, TenantId,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use time::macros::datetime;

fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

fn number(s: &str) -> E164 {
    E164::parse_strict(s).unwrap()
}

fn hours(overridden: bool, open: bool) -> HoursAt {
    HoursAt {
        time_zone: "America/Chicago".into(),
        date: "2026-12-24".into(),
        weekday: "thu".into(),
        time: "10:30".into(),
        hours: if open {
            vec![
                ["09:00".into(), "12:00".into()],
                ["13:00".into(), "17:00".into()],
            ]
            .into()
        } else {
            Vec::new().into()
        },
        overridden,
    }
}

fn skipped(contact: bool, with_hours: bool) -> UserSkipped {
    UserSkipped {
        rule: if contact {
            Rule::AssignedUser
        } else {
            Rule::DirectLine
        },
        user_id: id("u-42"),
        contact_id: contact.then(|| id("c-7")),
        next: Rule::ForwardingNumber,
        hours: with_hours.then(|| hours(false, true)),
    }
}

fn offer(user: bool) -> Offer {
    Offer {
        rule: Rule::RingGroup,
        user_id: user.then(|| id("u-9")),
        number: number("+14155550123"),
    }
}

/// Every variant, with and without its optional parts (a new variant fails to compile in
/// [`variant_name`] until it is added here and to `ReasonDef`).
fn every_reason() -> Vec<Reason> {
    let mut all = vec![
        Reason::SettingsMayBeStale {
            settings_seq: 1042,
            required_seq: Some(1043),
        },
        Reason::SettingsMayBeStale {
            settings_seq: u64::MAX,
            required_seq: None,
        },
        Reason::DialedNumberUnusable {
            masked: "+1415***".into(),
            error: PhoneError::Unparseable(
                "The string supplied did not seem to be a phone number".into(),
            ),
        },
        Reason::DialedNumberUnusable {
            masked: String::new(),
            error: PhoneError::Withheld,
        },
        Reason::NumberNotProvisioned {
            number: number("+16502530000"),
        },
        Reason::NumberReleased {
            number: number("+16502530000"),
        },
        Reason::NumberProvisioned {
            number: number("+16502530000"),
        },
        Reason::CallerBlocked {
            number: number("+19005550100"),
            entry: "+1900".into(),
            action: BlockedAction::Reject,
        },
        Reason::CallerBlocked {
            number: number("+19005550100"),
            entry: "+19005550100".into(),
            action: BlockedAction::Announce,
        },
        Reason::AnonymousCaller {
            action: AnonymousCallers::Voicemail,
        },
        Reason::AnonymousCaller {
            action: AnonymousCallers::Reject,
        },
        Reason::CompanyOpen {
            hours: hours(false, true),
        },
        Reason::CompanyClosed {
            hours: hours(true, false),
        },
        Reason::AfterHoursFinalAction,
        Reason::AfterHoursForwardOnly {
            number: number("+13127654321"),
        },
        Reason::NumberPrefersOwner { user_id: id("u-1") },
        Reason::LeadNamed {
            contact_id: id("c-1"),
        },
        Reason::NamedLeadDeleted {
            contact_id: id("c-1"),
        },
        Reason::NamedLeadUnknown {
            contact_id: id("c-1"),
        },
        Reason::CallerWithheld,
        Reason::CallerUnusable {
            masked: "12***".into(),
            error: PhoneError::Invalid,
        },
        Reason::CallerUnknown {
            number: number("+14155550100"),
        },
        Reason::CallerIsLead {
            number: number("+14155550100"),
            contact_id: id("c-2"),
        },
        Reason::CallerMatchesLeads {
            number: number("+14155550100"),
            contact_ids: vec![id("c-2"), id("c-3")],
            chosen: id("c-2"),
            owner_reachable: true,
        },
        Reason::CallerMatchesLeads {
            number: number("+14155550100"),
            contact_ids: Vec::new(),
            chosen: id("c-3"),
            owner_reachable: false,
        },
        Reason::NoLead {
            next: Rule::ReturningCaller,
        },
        Reason::LeadUnassigned {
            contact_id: id("c-4"),
            next: Rule::DirectLine,
        },
        Reason::ReturningCaller {
            number: number("+14155550100"),
            user_id: id("u-5"),
            answered_at: "2026-12-01T10:00:00Z".into(),
            days: 30,
        },
        Reason::NotReturningCaller {
            days: 90,
            next: Rule::ForwardingNumber,
        },
        Reason::RingGroup {
            mode: RingMode::Simultaneous,
            user_ids: vec![id("u-1"), id("u-2")],
        },
        Reason::RingGroup {
            mode: RingMode::Sequential,
            user_ids: Vec::new(),
        },
        Reason::GroupMember(offer(true)),
        Reason::GroupMember(offer(false)),
        Reason::RingGroupEmpty,
        Reason::ScreeningOn,
        Reason::UserEligible {
            rule: Rule::AssignedUser,
            user_id: id("u-6"),
            contact_id: Some(id("c-6")),
            hours: Some(hours(false, true)),
        },
        Reason::UserEligible {
            rule: Rule::DirectLine,
            user_id: id("u-6"),
            contact_id: None,
            hours: None,
        },
        Reason::Target,
        Reason::PhoneUnusable {
            rule: Rule::CompanyPhone,
            user_id: None,
            error: PhoneError::Unparseable("too short".into()),
        },
        Reason::PhoneUnusable {
            rule: Rule::AssignedUser,
            user_id: Some(id("u-7")),
            error: PhoneError::Invalid,
        },
        Reason::DialedNumberSkipped(offer(true)),
        Reason::DialedNumberSkipped(offer(false)),
        Reason::AlreadyInChain {
            rule: Rule::CompanyPhone,
            user_id: None,
            number: number("+16172531234"),
            earlier_rule: Rule::ForwardingNumber,
        },
        Reason::AlreadyInChain {
            rule: Rule::DirectLine,
            user_id: Some(id("u-8")),
            number: number("+16172531234"),
            earlier_rule: Rule::AssignedUser,
        },
        Reason::NoForwardingNumber {
            number: number("+16502530000"),
        },
        Reason::NoCompanyPhone,
        Reason::NoTargetLeft,
        Reason::Unrecognized,
    ];
    for s in [
        skipped(true, false),
        skipped(false, true),
        skipped(true, true),
    ] {
        all.push(Reason::UserUnknown(s.clone()));
        all.push(Reason::UserDeactivated(s.clone()));
        all.push(Reason::UserUnavailable(s.clone()));
        all.push(Reason::UserHasNoPhone(s.clone()));
        all.push(Reason::UserOutsideWorkingHours(s));
    }
    all
}

/// The variant's name, exhaustively: adding a variant to `Reason` breaks this until the tests
/// (and `ReasonDef`) know it.
fn variant_name(reason: &Reason) -> &'static str {
    match reason {
        Reason::SettingsMayBeStale { .. } => "SettingsMayBeStale",
        Reason::DialedNumberUnusable { .. } => "DialedNumberUnusable",
        Reason::NumberNotProvisioned { .. } => "NumberNotProvisioned",
        Reason::NumberReleased { .. } => "NumberReleased",
        Reason::NumberProvisioned { .. } => "NumberProvisioned",
        Reason::CallerBlocked { .. } => "CallerBlocked",
        Reason::AnonymousCaller { .. } => "AnonymousCaller",
        Reason::CompanyOpen { .. } => "CompanyOpen",
        Reason::CompanyClosed { .. } => "CompanyClosed",
        Reason::AfterHoursFinalAction => "AfterHoursFinalAction",
        Reason::AfterHoursForwardOnly { .. } => "AfterHoursForwardOnly",
        Reason::NumberPrefersOwner { .. } => "NumberPrefersOwner",
        Reason::LeadNamed { .. } => "LeadNamed",
        Reason::NamedLeadDeleted { .. } => "NamedLeadDeleted",
        Reason::NamedLeadUnknown { .. } => "NamedLeadUnknown",
        Reason::CallerWithheld => "CallerWithheld",
        Reason::CallerUnusable { .. } => "CallerUnusable",
        Reason::CallerUnknown { .. } => "CallerUnknown",
        Reason::CallerIsLead { .. } => "CallerIsLead",
        Reason::CallerMatchesLeads { .. } => "CallerMatchesLeads",
        Reason::NoLead { .. } => "NoLead",
        Reason::LeadUnassigned { .. } => "LeadUnassigned",
        Reason::UserUnknown(_) => "UserUnknown",
        Reason::UserDeactivated(_) => "UserDeactivated",
        Reason::UserUnavailable(_) => "UserUnavailable",
        Reason::UserHasNoPhone(_) => "UserHasNoPhone",
        Reason::UserOutsideWorkingHours(_) => "UserOutsideWorkingHours",
        Reason::ReturningCaller { .. } => "ReturningCaller",
        Reason::NotReturningCaller { .. } => "NotReturningCaller",
        Reason::RingGroup { .. } => "RingGroup",
        Reason::GroupMember(_) => "GroupMember",
        Reason::RingGroupEmpty => "RingGroupEmpty",
        Reason::ScreeningOn => "ScreeningOn",
        Reason::UserEligible { .. } => "UserEligible",
        Reason::Target => "Target",
        Reason::PhoneUnusable { .. } => "PhoneUnusable",
        Reason::DialedNumberSkipped(_) => "DialedNumberSkipped",
        Reason::AlreadyInChain { .. } => "AlreadyInChain",
        Reason::NoForwardingNumber { .. } => "NoForwardingNumber",
        Reason::NoCompanyPhone => "NoCompanyPhone",
        Reason::NoTargetLeft => "NoTargetLeft",
        Reason::Unrecognized => "Unrecognized",
    }
}

/// The number of `Reason` variants ([`variant_name`]'s arms).
const VARIANTS: usize = 42;

fn route(reasons: Vec<Reason>) -> CallRoute {
    CallRoute {
        call_id: "CA0001".into(),
        tenant_id: TenantId::new("acme").unwrap(),
        rule: Rule::ForwardingNumber,
        target: Some(Target::single(
            number("+13127654321"),
            None,
            Rule::ForwardingNumber,
            Some(20),
        )),
        fallbacks: vec![Target::single(
            number("+16172531234"),
            None,
            Rule::CompanyPhone,
            Some(20),
        )],
        final_action: FinalAction::default(),
        reasons,
        explanation: Vec::new(),
        settings_seq: 50_000,
        calls_seq: 7,
        caller: Some(number("+14155550100")),
        decided_at: datetime!(2026-12-06 02:00:46.998899196 UTC),
    }
}

/// The body of a route whose reasons are `reasons` (JSON texts, written as they are).
fn route_json(reasons: &[String]) -> String {
    let whole = serde_json::to_string(&route(Vec::new())).unwrap();
    let (head, tail) = whole.split_once(",\"settings_seq\"").unwrap();
    format!(
        "{head},\"reasons\":[{}],\"settings_seq\"{tail}",
        reasons.join(",")
    )
}

/// The property: the fast decoding gives the derived decoding's value, or fails.
fn check(body: &str) -> Option<CallRoute> {
    let derived = serde_json::from_str::<CallRoute>(body);
    let fast = serde_json::from_str::<RecordedRoute>(body);
    if let Ok(RecordedRoute(fast)) = fast {
        match &derived {
            Ok(derived) => assert_eq!(&fast, derived, "{body}"),
            Err(e) => panic!("fast decoding accepted what the derived one refuses ({e}): {body}"),
        }
        Some(fast)
    } else {
        None
    }
}

#[test]
fn every_variant_is_listed() {
    let all = every_reason();
    let mut names: Vec<&str> = all.iter().map(variant_name).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), VARIANTS);
    // The fast codes are the derived serialization's, every one but `unrecognized`.
    let mut codes: Vec<String> = all
        .iter()
        .filter(|r| **r != Reason::Unrecognized)
        .map(|r| {
            serde_json::to_value(r).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let mut body: Vec<&str> = BODY_VARIANTS.to_vec();
    body.sort_unstable();
    assert_eq!(codes, body);
}

#[test]
fn every_reason_as_switchboard_writes_it_decodes_the_fast_way() {
    let all = every_reason();
    let written = route(all.clone());
    let body = serde_json::to_string(&written).unwrap();
    let fast = check(&body).expect("the fast decoding takes what Switchboard writes");
    assert_eq!(fast, written);
    for reason in all {
        let one = serde_json::to_string(&reason).unwrap();
        let fast = check(&route_json(&[one])).expect("fast");
        assert_eq!(fast.reasons, vec![reason]);
    }
    // No reasons, or `null`, as the derived decoding reads them.
    for reasons in ["[]", "null"] {
        let body = route_json(&[]).replace("\"reasons\":[]", &format!("\"reasons\":{reasons}"));
        assert!(check(&body).is_some_and(|r| r.reasons.is_empty()), "{body}");
    }
    let without = serde_json::to_string(&route(Vec::new())).unwrap();
    assert!(check(&without).is_some_and(|r| r.reasons.is_empty()));
}

#[test]
fn what_switchboard_does_not_write_is_left_to_the_derived_decoding() {
    let number = r#""number":"+16502530000""#;
    for (reason, derived_ok) in [
        // The code after another field: the derived decoding takes it.
        (format!(r#"{{{number},"code":"number_released"}}"#), true),
        // An escaped key or code.
        (format!(r#"{{"co\u0064e":"number_released",{number}}}"#), true),
        (format!(r#"{{"code":"number_rel\u0065ased",{number}}}"#), true),
        // A field the reason does not have: skipped by the derived decoding.
        (format!(r#"{{"code":"number_released",{number},"note":1}}"#), true),
        (r#"{"code":"target","note":[1,{"a":null}]}"#.to_string(), true),
        (
            r#"{"code":"company_open","hours":{"time_zone":"UTC","date":"2026-01-01","weekday":"thu","time":"10:00","extra":true}}"#.to_string(),
            true,
        ),
        (
            r#"{"code":"caller_unusable","masked":"1","error":{"problem":"invalid","extra":0}}"#.to_string(),
            true,
        ),
        (
            r#"{"code":"user_unknown","rule":"direct_line","user_id":"u-1","next":"company_phone","extra":"x"}"#.to_string(),
            true,
        ),
        // An unknown code with fields: `Unrecognized` for the derived decoding.
        (format!(r#"{{"code":"from_the_future",{number}}}"#), true),
        // The code twice, a field twice, a missing field, a wrong type: refused by both.
        (format!(r#"{{"code":"number_released",{number},"code":"number_released"}}"#), false),
        (format!(r#"{{"code":"number_released",{number},{number}}}"#), false),
        (r#"{"code":"number_released"}"#.to_string(), false),
        (r#"{"code":"number_released","number":5}"#.to_string(), false),
        (r#"{"code":7,"number":"+16502530000"}"#.to_string(), false),
        (r#"{}"#.to_string(), false),
        (r#""target""#.to_string(), false),
    ] {
        let body = route_json(std::slice::from_ref(&reason));
        assert_eq!(
            serde_json::from_str::<CallRoute>(&body).is_ok(),
            derived_ok,
            "{reason}"
        );
        assert!(check(&body).is_none(), "the fast decoding took {reason}");
    }
    // An unknown code alone is `Unrecognized` both ways.
    let body = route_json(&[r#"{"code":"from_the_future"}"#.to_string()]);
    assert_eq!(
        check(&body).expect("fast").reasons,
        vec![Reason::Unrecognized]
    );
}

/// Nesting past serde_json's recursion limit inside a field the reason does not have: the
/// derived decoding buffers it and refuses it; the fast one must not take it either.
#[test]
fn deep_nesting_in_an_unknown_field_is_refused_as_before() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    for reason in [
        format!(r#"{{"code":"target","junk":{deep}}}"#),
        format!(
            r#"{{"code":"company_open","hours":{{"time_zone":"UTC","date":"2026-01-01","weekday":"thu","time":"10:00","junk":{deep}}}}}"#
        ),
        format!(
            r#"{{"code":"caller_unusable","masked":"1","error":{{"problem":"invalid","junk":{deep}}}}}"#
        ),
    ] {
        let body = route_json(&[reason]);
        assert!(serde_json::from_str::<CallRoute>(&body).is_err());
        assert!(check(&body).is_none());
    }
}

// ------------------------------------------------------------------------------------------
// Mutations
// ------------------------------------------------------------------------------------------

/// A JSON object with its keys in order and repeats kept (serde_json's `Value` sorts them and
/// keeps one of each).
#[derive(Debug, Clone)]
struct Object(Vec<(String, Json)>);

#[derive(Debug, Clone)]
enum Json {
    Object(Object),
    Other(Value),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    entries.push((k, v));
                }
                Ok(Json::Object(Object(entries)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(Json::Other(Value::Array(items)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Other(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Other(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Other(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Other(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Other(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Other(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

impl Json {
    fn text(&self) -> String {
        match self {
            Json::Other(v) => v.to_string(),
            Json::Object(Object(entries)) => {
                let fields: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v.text()))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
}

/// Keys and strings a mutation draws from: the reasons' own (so that mutations often make
/// something meaningful), `code`, and some that are not.
fn words() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = BODY_VARIANTS.iter().map(|s| s.to_string()).collect();
    known.extend(
        [
            "code",
            "number",
            "entry",
            "action",
            "hours",
            "time_zone",
            "date",
            "weekday",
            "time",
            "override",
            "user_id",
            "contact_id",
            "contact_ids",
            "chosen",
            "owner_reachable",
            "next",
            "rule",
            "masked",
            "error",
            "problem",
            "detail",
            "settings_seq",
            "required_seq",
            "answered_at",
            "days",
            "mode",
            "user_ids",
            "earlier_rule",
            "direct_line",
            "assigned_user",
            "simultaneous",
            "invalid",
            "withheld",
            "unparseable",
            "reject",
            "+16502530000",
            "u-1",
            "c-1",
            "09:00",
            "30",
            "unknown_thing",
            "",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    prop_oneof![
        4 => proptest::sample::select(known),
        1 => "[a-z_]{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        words().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((words(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Swap two fields (index modulo the object's length).
    Swap(usize, usize),
    /// Remove a field.
    Remove(usize),
    /// Repeat a field at another place.
    Repeat(usize, usize),
    /// Insert a field.
    Insert(usize, String, Value),
    /// Replace a field's value.
    Replace(usize, Value),
    /// Rename a field.
    Rename(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Repeat(a, b)),
        (any::<usize>(), words(), json_value()).prop_map(|(a, k, v)| Mutation::Insert(a, k, v)),
        (any::<usize>(), json_value()).prop_map(|(a, v)| Mutation::Replace(a, v)),
        (any::<usize>(), words()).prop_map(|(a, k)| Mutation::Rename(a, k)),
    ]
}

fn apply(object: &mut Object, mutation: &Mutation) {
    let len = object.0.len();
    match mutation.clone() {
        Mutation::Swap(a, b) if len > 0 => object.0.swap(a % len, b % len),
        Mutation::Remove(a) if len > 0 => {
            object.0.remove(a % len);
        }
        Mutation::Repeat(a, b) if len > 0 => {
            let field = object.0[a % len].clone();
            object.0.insert(b % (len + 1), field);
        }
        Mutation::Insert(a, k, v) => object.0.insert(a % (len + 1), (k, Json::Other(v))),
        Mutation::Replace(a, v) if len > 0 => object.0[a % len].1 = Json::Other(v),
        Mutation::Rename(a, k) if len > 0 => object.0[a % len].0 = k,
        _ => {}
    }
}

/// Applies `mutations` to `reason` (each to the object it names: the reason itself or one
/// nested in it, by index modulo their number).
fn mutated(reason: &Reason, mutations: &[(usize, Mutation)]) -> String {
    let text = serde_json::to_string(reason).unwrap();
    let mut json: Json = serde_json::from_str(&text).unwrap();
    for (target, mutation) in mutations {
        let Json::Object(top) = &mut json else {
            break;
        };
        // The reason's object (0) or one of the objects nested in its fields.
        let nested: usize = top
            .0
            .iter()
            .filter(|(_, v)| matches!(v, Json::Object(_)))
            .count();
        let pick = target % (nested + 1);
        if pick == 0 {
            apply(top, mutation);
        } else if let Some((_, Json::Object(inner))) = top
            .0
            .iter_mut()
            .filter(|(_, v)| matches!(v, Json::Object(_)))
            .nth(pick - 1)
        {
            apply(inner, mutation);
        }
    }
    json.text()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Whatever a reason is turned into, the fast decoding never gives anything but the
    /// derived decoding's value.
    #[test]
    fn a_mutated_reason_decodes_the_fast_way_only_as_the_derived_way(
        pick in any::<usize>(),
        mutations in proptest::collection::vec((any::<usize>(), mutation()), 1..4),
    ) {
        let all = every_reason();
        let reason = &all[pick % all.len()];
        let text = mutated(reason, &mutations);
        check(&route_json(&[text]));
    }

    /// Several reasons, some mutated: the same, for the whole array.
    #[test]
    fn reasons_with_a_mutated_one_decode_the_fast_way_only_as_the_derived_way(
        picks in proptest::collection::vec(any::<usize>(), 1..6),
        mutations in proptest::collection::vec((any::<usize>(), mutation()), 0..3),
        at in any::<usize>(),
    ) {
        let all = every_reason();
        let mut texts: Vec<String> = picks
            .iter()
            .map(|p| serde_json::to_string(&all[p % all.len()]).unwrap())
            .collect();
        let i = at % texts.len();
        texts[i] = mutated(&all[picks[i] % all.len()], &mutations);
        check(&route_json(&texts));
    }
}
