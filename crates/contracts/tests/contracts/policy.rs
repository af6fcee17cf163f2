//! Issue 17's contract: the settings of returning callers, blocked and anonymous callers,
//! screening and ring groups, the decisions that refuse a caller, and `call.missed` — what each
//! defaults to, and every refusal with its specific error (the field named, numbers masked).

use crate::support::example_json;
use serde_json::{Value, json};
use switchboard_contracts::{
    AnonymousCallers, BlockedAction, CallMissed, CallRoute, CompanySettings, ContractError,
    Envelope, EventData, FinalActionKind, MAX_BLOCKED_CALLERS, MAX_RETURNING_CALLER_DAYS,
    MAX_RING_GROUP, MissedEnd, NumberSettings, RingMode, Rule, Screening,
};

const COMPANY: &str = "switchboard.settings.company.v1.policy.json";
const NUMBER: &str = "switchboard.settings.number.v1.ring_group.json";
const ROUTE: &str = "switchboard.call.route.v2.json";
const BLOCKED: &str = "switchboard.call.route.v2.blocked.json";
const RING_GROUP: &str = "switchboard.call.route.v2.ring_group.json";
const MISSED: &str = "switchboard.call.missed.v1.json";

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn company_with(f: impl FnOnce(&mut Value)) -> Result<CompanySettings, ContractError> {
    let mut v = example_json(COMPANY);
    f(&mut v["data"]);
    Envelope::<CompanySettings>::decode(&body(&v), "settings.acme.company.main").map(|e| e.data)
}

fn number_with(f: impl FnOnce(&mut Value)) -> Result<NumberSettings, ContractError> {
    let mut v = example_json(NUMBER);
    f(&mut v["data"]);
    Envelope::<NumberSettings>::decode(&body(&v), "settings.acme.number.16502530001")
        .map(|e| e.data)
}

fn route_with(example: &str, f: impl FnOnce(&mut Value)) -> Result<CallRoute, ContractError> {
    let mut v = example_json(example);
    f(&mut v["data"]);
    Envelope::<CallRoute>::decode(&body(&v), "call.route.acme").map(|e| e.data)
}

fn missed_with(f: impl FnOnce(&mut Value)) -> Result<CallMissed, ContractError> {
    let mut v = example_json(MISSED);
    f(&mut v["data"]);
    Envelope::<CallMissed>::decode(&body(&v), "call.missed.acme").map(|e| e.data)
}

/// The refusal's field and reason, for an `invalid_setting` (its message names the field).
fn invalid_setting(result: Result<impl std::fmt::Debug, ContractError>) -> (String, String) {
    match result {
        Err(e @ ContractError::InvalidSetting { .. }) => {
            assert_eq!(e.code(), "invalid_setting");
            let text = e.to_string();
            let ContractError::InvalidSetting { field, reason } = e else {
                unreachable!()
            };
            assert!(text.contains(&format!("`{field}`")), "{text}");
            (field, reason)
        }
        other => panic!("expected invalid_setting, got {other:?}"),
    }
}

/// The reason of a `malformed` refusal.
fn malformed(result: Result<impl std::fmt::Debug, ContractError>) -> String {
    match result {
        Err(ContractError::Malformed(reason)) => reason,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn the_policy_example_decodes_with_every_field() {
    let company = company_with(|_| {}).expect("the example decodes");
    assert_eq!(company.returning_caller_days, 30);
    assert_eq!(company.blocked_callers, ["+12125550123", "+1900", "+1976"]);
    assert_eq!(company.blocked_action, Some(BlockedAction::Reject));
    assert_eq!(company.anonymous_callers, Some(AnonymousCallers::Voicemail));
    assert_eq!(company.screening, Some(Screening::Forwarded));
    let group = number_with(|_| {})
        .expect("the example decodes")
        .ring_group
        .expect("a ring group");
    assert_eq!(group.mode, RingMode::Simultaneous);
    assert_eq!(group.user_ids.len(), 3);
    assert_eq!(group.ring_timeout_secs, Some(25));
}

/// Absent, `null` and proto3 JSON's omitted defaults all read as off / empty / unset.
#[test]
fn omitted_policy_fields_are_off() {
    let company = company_with(|d| {
        let d = d.as_object_mut().expect("object");
        for key in [
            "returning_caller_days",
            "blocked_callers",
            "blocked_action",
            "anonymous_callers",
            "screening",
        ] {
            d.remove(key);
        }
    })
    .expect("decodes");
    assert_eq!(company.returning_caller_days, 0);
    assert!(company.blocked_callers.is_empty());
    assert_eq!(
        (
            company.blocked_action,
            company.anonymous_callers,
            company.screening
        ),
        (None, None, None)
    );
    let nulls = company_with(|d| {
        for key in [
            "returning_caller_days",
            "blocked_callers",
            "blocked_action",
            "anonymous_callers",
            "screening",
        ] {
            d[key] = Value::Null;
        }
    })
    .expect("null reads as the default");
    assert_eq!(nulls, company);
    let number = number_with(|d| d["ring_group"] = Value::Null).expect("decodes");
    assert_eq!(number.ring_group, None);
}

#[test]
fn returning_caller_days_are_at_most_90() {
    let (field, reason) = invalid_setting(company_with(|d| d["returning_caller_days"] = json!(91)));
    assert_eq!(field, "returning_caller_days");
    assert!(reason.contains("91") && reason.contains("90"), "{reason}");
    assert_eq!(MAX_RETURNING_CALLER_DAYS, 90);
    let max = company_with(|d| d["returning_caller_days"] = json!(90)).expect("90 is allowed");
    assert_eq!(max.returning_caller_days, 90);
    // Canonical proto3 JSON may write a uint32 as a decimal string.
    let string = company_with(|d| d["returning_caller_days"] = json!("30")).expect("a string");
    assert_eq!(string.returning_caller_days, 30);
    let (field, _) = invalid_setting(company_with(|d| d["returning_caller_days"] = json!("91")));
    assert_eq!(field, "returning_caller_days");
    for bad in [
        json!(-1),
        json!(1.5),
        json!("thirty"),
        json!(u64::from(u32::MAX) + 1),
    ] {
        malformed(company_with(|d| d["returning_caller_days"] = bad.clone()));
    }
}

#[test]
fn blocked_callers_entries_are_plus_and_1_to_15_digits() {
    for (bad, what) in [
        ("4158675310", "must start with `+`"),
        ("+1900abc", "digits"),
        ("+1 900", "digits"),
        ("+", "digits"),
        ("+0800", "never start with 0"),
        ("+1234567890123456", "digits"),
    ] {
        let (field, reason) = invalid_setting(company_with(|d| {
            d["blocked_callers"] = json!(["+12125550123", bad]);
        }));
        assert_eq!(field, "blocked_callers[1]", "{bad}");
        assert!(reason.contains(what), "{bad}: {reason}");
        if bad.len() > 6 {
            assert!(!reason.contains(bad), "{bad} is masked: {reason}");
        }
    }
    // 15 digits, and a one-digit prefix, are entries.
    let ok = company_with(|d| d["blocked_callers"] = json!(["+123456789012345", "+7"]))
        .expect("valid entries");
    assert_eq!(ok.blocked_callers, ["+123456789012345", "+7"]);
    malformed(company_with(|d| d["blocked_callers"] = json!("+1900")));
    malformed(company_with(|d| {
        d["blocked_callers"] = json!([19005550142u64])
    }));
}

#[test]
fn blocked_callers_hold_at_most_10000_entries() {
    assert_eq!(MAX_BLOCKED_CALLERS, 10_000);
    let entries = |n: usize| -> Vec<String> { (0..n).map(|i| format!("+1900555{i:05}")).collect() };
    let full = company_with(|d| d["blocked_callers"] = json!(entries(10_000)))
        .expect("10,000 entries are allowed");
    assert_eq!(full.blocked_callers.len(), 10_000);
    let (field, reason) = invalid_setting(company_with(|d| {
        d["blocked_callers"] = json!(entries(10_001))
    }));
    assert_eq!(field, "blocked_callers");
    assert!(
        reason.contains("10001") && reason.contains("10000"),
        "{reason}"
    );
}

#[test]
fn policy_enums_take_only_their_wire_names() {
    for (key, good, expected) in [
        ("blocked_action", "announce", "Announce"),
        ("anonymous_callers", "reject", "Reject"),
        ("anonymous_callers", "route", "Route"),
        ("screening", "off", "Off"),
    ] {
        let company = company_with(|d| d[key] = json!(good)).expect("a wire name");
        let debug = format!(
            "{:?} {:?} {:?}",
            company.blocked_action, company.anonymous_callers, company.screening
        );
        assert!(debug.contains(expected), "{key}: {good} → {debug}");
    }
    for (key, bad) in [
        ("blocked_action", "voicemail"),
        ("blocked_action", "Reject"),
        ("anonymous_callers", "announce"),
        ("screening", "on"),
        ("screening", "blocked_action_unspecified"),
    ] {
        let reason = malformed(company_with(|d| d[key] = json!(bad)));
        assert!(
            reason.contains(&format!("unknown variant `{bad}`")),
            "{key}: {reason}"
        );
    }
}

#[test]
fn ring_groups_have_1_to_10_distinct_users() {
    assert_eq!(MAX_RING_GROUP, 10);
    let users = |n: usize| -> Vec<String> { (0..n).map(|i| format!("u-{i}")).collect() };
    for (user_ids, what) in [
        (json!([]), "at least one user"),
        (json!(users(11)), "11 users"),
        (json!(["u-44", "u-45", "u-44"]), "u-44 is listed twice"),
    ] {
        let (field, reason) = invalid_setting(number_with(|d| {
            d["ring_group"]["user_ids"] = user_ids.clone()
        }));
        assert_eq!(field, "ring_group.user_ids", "{user_ids}");
        assert!(reason.contains(what), "{user_ids}: {reason}");
    }
    let ten = number_with(|d| d["ring_group"]["user_ids"] = json!(users(10))).expect("10 users");
    assert_eq!(ten.ring_group.expect("group").user_ids.len(), 10);

    for bad in [0, 4, 601] {
        let (field, _) = invalid_setting(number_with(|d| {
            d["ring_group"]["ring_timeout_secs"] = json!(bad)
        }));
        assert_eq!(field, "ring_group.ring_timeout_secs", "{bad}");
    }
    let five = number_with(|d| d["ring_group"]["ring_timeout_secs"] = json!("5")).expect("5 s");
    assert_eq!(five.ring_group.expect("group").ring_timeout_secs, Some(5));

    // `mode` is required and one of the two wire names; a user id is an entity id.
    malformed(number_with(|d| {
        d["ring_group"]
            .as_object_mut()
            .expect("object")
            .remove("mode");
    }));
    malformed(number_with(|d| {
        d["ring_group"]["mode"] = json!("round_robin")
    }));
    malformed(number_with(|d| {
        d["ring_group"]["user_ids"] = json!(["u 44"])
    }));
    let sequential =
        number_with(|d| d["ring_group"]["mode"] = json!("sequential")).expect("sequential");
    assert_eq!(
        sequential.ring_group.expect("group").mode,
        RingMode::Sequential
    );
}

/// A refused caller's decision rings nothing; `reject` is only for refused callers; a group
/// leg's `number` is its first member's.
#[test]
fn refusing_decisions_are_checked() {
    let blocked = route_with(BLOCKED, |_| {}).expect("the blocked example decodes");
    assert_eq!(blocked.rule, Rule::Blocked);
    assert_eq!(blocked.final_action.kind, FinalActionKind::Reject);
    assert!(blocked.target.is_none());

    let leg = json!({"number": "+13125550199", "user_id": "u-42", "rule": "assigned_user"});
    for rule in ["blocked", "anonymous"] {
        let reason = malformed(route_with(BLOCKED, |d| {
            d["rule"] = json!(rule);
            d["target"] = leg.clone();
        }));
        assert!(reason.contains("`target` must be null"), "{rule}: {reason}");
        let reason = malformed(route_with(ROUTE, |d| d["target"]["rule"] = json!(rule)));
        assert!(reason.contains(&format!("cannot be {rule}")), "{reason}");
    }
    // `anonymous` without a target and with `reject` is the other refused decision.
    let anonymous = route_with(BLOCKED, |d| d["rule"] = json!("anonymous")).expect("decodes");
    assert_eq!(anonymous.rule, Rule::Anonymous);

    let reason = malformed(route_with(ROUTE, |d| {
        d["final_action"] = json!({"kind": "reject", "message": ""});
    }));
    assert!(
        reason.contains("`reject` final action is only for rule blocked or anonymous"),
        "{reason}"
    );
    let reason = malformed(route_with(ROUTE, |d| d["target"] = Value::Null));
    assert!(reason.contains("may be null only"), "{reason}");

    let group = route_with(RING_GROUP, |_| {}).expect("the ring group example decodes");
    let target = group.target.expect("a group leg");
    assert_eq!(target.numbers().count(), 2);
    assert!(target.screen);
    assert_eq!(group.calls_seq, 88_412);
    assert_eq!(
        group.caller.as_ref().map(|c| c.as_str()),
        Some("+17735550187")
    );
    let reason = malformed(route_with(RING_GROUP, |d| {
        d["target"]["number"] = json!("+13125550145");
    }));
    assert!(reason.contains("first member"), "{reason}");
    match route_with(RING_GROUP, |d| {
        d["target"]["group"][1]["number"] = json!("13125550145")
    }) {
        Err(e @ ContractError::InvalidPhone { .. }) => {
            assert!(!e.to_string().contains("13125550145"), "masked: {e}");
        }
        other => panic!("expected invalid_phone, got {other:?}"),
    }
    // `calls_seq` is a 64-bit integer: a decimal string is read exactly.
    let seq = route_with(RING_GROUP, |d| d["calls_seq"] = json!(u64::MAX.to_string()))
        .expect("a decimal string");
    assert_eq!(seq.calls_seq, u64::MAX);
}

#[test]
fn a_missed_call_that_ran_the_final_action_names_it() {
    let missed = missed_with(|_| {}).expect("the example decodes");
    assert_eq!(missed.ended, MissedEnd::FinalAction);
    assert_eq!(missed.final_action, Some(FinalActionKind::Voicemail));
    assert_eq!(
        missed.event_id(),
        "acme:CA7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4:missed"
    );

    for no_action in [None, Some(Value::Null)] {
        let err = missed_with(|d| {
            let d = d.as_object_mut().expect("object");
            match &no_action {
                None => {
                    d.remove("final_action");
                }
                Some(null) => {
                    d.insert("final_action".into(), null.clone());
                }
            }
        })
        .expect_err("ended: final_action without one");
        assert!(
            matches!(err, ContractError::Missing("final_action")),
            "{err:?}"
        );
        assert_eq!(err.code(), "missing_field");
    }
    let hung_up = missed_with(|d| {
        d["ended"] = json!("caller_hung_up");
        d.as_object_mut().expect("object").remove("final_action");
    })
    .expect("a caller who hung up has no final action");
    assert_eq!(hung_up.ended, MissedEnd::CallerHungUp);
    for bad in ["hung_up", "missed_end_unspecified"] {
        malformed(missed_with(|d| d["ended"] = json!(bad)));
    }
    malformed(missed_with(|d| {
        d.as_object_mut().expect("object").remove("rule");
    }));
    // The subject is the tenant's: another tenant's subject is refused.
    let err = Envelope::<CallMissed>::decode(&body(&example_json(MISSED)), "call.missed.globex")
        .expect_err("another tenant's subject");
    assert_eq!(err.code(), "subject_mismatch");
}
