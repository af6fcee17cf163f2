//! Issue 15 in the audit: "`what-if` covers the new fields (e.g. "what if we close at 17:00 on
//! Fridays"); `lint` finds: a company whose business hours are never open, users with
//! `ring_only_in_working_hours` whose schedule is never open, direct lines owned by an
//! inactive or unknown user, ring timeouts outside 15–20 s (warning, with the reason),
//! after-hours forwards to the dialed number itself."

use crate::support::*;
use switchboard_audit::lint::{lint_settings, lint_warnings};
use switchboard_audit::read::NoProgress;
use switchboard_audit::{Selection, SettingsLog, parse_settings_file, what_if};
use switchboard_contracts::{Rule, SettingsChange};
use time::OffsetDateTime;
use time::macros::datetime;

/// `change` with `f` applied to its data as JSON, validated as a settings file would be.
fn edited(change: SettingsChange, f: impl FnOnce(&mut serde_json::Value)) -> SettingsChange {
    let (kind, mut data) = match &change {
        SettingsChange::Company(c) => ("company", serde_json::to_value(c).unwrap()),
        SettingsChange::Number(n) => ("number", serde_json::to_value(n).unwrap()),
        SettingsChange::User(u) => ("user", serde_json::to_value(u).unwrap()),
        SettingsChange::Contact(c) => ("contact", serde_json::to_value(c).unwrap()),
    };
    f(&mut data);
    let file =
        serde_json::json!([{"type": format!("switchboard.settings.{kind}.v1"), "data": data}]);
    parse_settings_file(&file.to_string())
        .unwrap()
        .pop()
        .unwrap()
}

fn log_of(changes: Vec<SettingsChange>) -> SettingsLog {
    let mut log = SettingsLog::new();
    for (i, change) in changes.iter().enumerate() {
        log.apply(i as u64 + 1, OffsetDateTime::UNIX_EPOCH, change);
    }
    log
}

const NEVER: &str = r#"{"weekly": {}, "overrides": [{"date": "2026-12-25", "hours": []}]}"#;
const OFFICE: &str = r#"{"weekly": {"mon": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]}}"#;

fn schedule(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}

#[test]
fn lint_finds_the_routing_policy_problems() {
    let log = log_of(vec![
        // Business hours never open, forwarding after hours to its own N1, ringing 30 s.
        edited(company("acme", 1, Some(COMPANY)), |d| {
            d["time_zone"] = "America/Chicago".into();
            d["business_hours"] = schedule(NEVER);
            d["after_hours"] = serde_json::json!({"kind": "forward", "number": N1});
            d["ring_timeout_secs"] = 30.into();
        }),
        // Direct lines of an unknown, a deactivated and a phoneless user; N1 rings 10 s.
        edited(num("acme", 1, N1, Some(FORWARD), false), |d| {
            d["user_id"] = "u-ghost".into();
            d["ring_timeout_secs"] = 10.into();
        }),
        edited(num("acme", 1, N2, Some(FORWARD), false), |d| {
            d["user_id"] = "u-carol".into();
            d["ring_timeout_secs"] = 18.into();
        }),
        edited(num("acme", 1, N3, Some(FORWARD), false), |d| {
            d["user_id"] = "u-dan".into();
        }),
        user("acme", 1, "u-carol", Some(BOB), false),
        user("acme", 1, "u-dan", None, true),
        // Rings only in working hours that never open; the same hours without the flag, or
        // open hours with it, are fine.
        edited(user("acme", 1, "u-eve", Some(ALICE), true), |d| {
            d["working_hours"] = schedule(NEVER);
            d["ring_only_in_working_hours"] = true.into();
        }),
        edited(user("acme", 1, "u-fay", Some(ALICE), true), |d| {
            d["working_hours"] = schedule(NEVER);
        }),
        edited(user("acme", 1, "u-gus", Some(ALICE), true), |d| {
            d["working_hours"] = schedule(OFFICE);
            d["ring_only_in_working_hours"] = true.into();
        }),
        // A sound tenant.
        edited(company("globex", 1, Some(COMPANY)), |d| {
            d["business_hours"] = schedule(OFFICE);
            d["after_hours"] = serde_json::json!({"kind": "forward", "number": FORWARD});
            d["ring_timeout_secs"] = 15.into();
        }),
        edited(num("globex", 1, N1, Some(FORWARD), false), |d| {
            d["user_id"] = "u-gus".into();
        }),
        user("globex", 1, "u-gus", Some(ALICE), true),
    ]);

    let findings = lint_settings(&log);
    let found: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| (f.tenant_id.as_str(), f.code.as_str(), f.entity.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("acme", "after_hours_forward_loop", "company/main"),
            ("acme", "business_hours_never_open", "company/main"),
            (
                "acme",
                "direct_line_owner_deactivated",
                "number/+16*******01"
            ),
            ("acme", "direct_line_owner_unknown", "number/+16*******00"),
            (
                "acme",
                "direct_line_owner_without_phone",
                "number/+16*******02"
            ),
            ("acme", "working_hours_never_open", "user/u-eve"),
        ],
        "{findings:#?}"
    );
    let never = &findings[1];
    assert!(
        never
            .problem
            .contains("every call gets the after-hours action"),
        "{}",
        never.problem
    );
    assert!(!never.problem.contains(N1), "numbers are masked");
    assert!(
        findings[0].problem.contains("a loop"),
        "{}",
        findings[0].problem
    );
    for f in &findings {
        assert!(!f.fix.is_empty(), "{f:?}");
    }

    // Ring timeouts outside 15–20 s are warnings, each with its reason.
    let warnings = lint_warnings(&log);
    let warned: Vec<(&str, &str, &str)> = warnings
        .iter()
        .map(|f| (f.tenant_id.as_str(), f.code.as_str(), f.entity.as_str()))
        .collect();
    assert_eq!(
        warned,
        vec![
            ("acme", "ring_timeout_outside_15_20", "company/main"),
            ("acme", "ring_timeout_outside_15_20", "number/+16*******00"),
        ]
    );
    assert!(
        warnings[0].problem.contains("30 s") && warnings[0].problem.contains("voicemail"),
        "{}",
        warnings[0].problem
    );
    assert!(
        warnings[1].problem.contains("10 s") && warnings[1].problem.contains("answer"),
        "{}",
        warnings[1].problem
    );
}

/// A call to `to` from alice's lead at `at`.
fn call_at(call_id: &str, to: &str, at: OffsetDateTime) -> switchboard_contracts::CallInbound {
    switchboard_contracts::CallInbound {
        received_at: at,
        ..inbound("acme", call_id, to, CALLERS[0])
    }
}

/// Issue 15: "`what-if` covers the new fields (e.g. "what if we close at 17:00 on Fridays")".
#[tokio::test]
async fn what_if_we_close_at_17_on_fridays() {
    // Given calls recorded on a Thursday and a Friday, before and after 17:00 in Chicago
    // (CST, UTC−6), by a company without business hours
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    for (id, at) in [
        ("CA-thu-1630", datetime!(2026-11-19 22:30 UTC)),
        ("CA-thu-1730", datetime!(2026-11-19 23:30 UTC)),
        ("CA-fri-1630", datetime!(2026-11-20 22:30 UTC)),
        ("CA-fri-1730", datetime!(2026-11-20 23:30 UTC)),
    ] {
        let (_, route) = rec.call(call_at(id, N1, at)).await;
        assert_eq!(route.rule, Rule::AssignedUser);
    }

    // When closing at 17:00 on Fridays (18:00 other weekdays) is proposed, forwarding after
    // hours to FORWARD_2
    let proposal = parse_settings_file(&format!(
        r#"[{{"type": "switchboard.settings.company.v1",
             "data": {{"tenant_id": "acme", "version": 2, "company_phone": "{COMPANY}",
                       "time_zone": "America/Chicago",
                       "business_hours": {{"weekly": {{
                           "mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]],
                           "wed": [["09:00", "18:00"]], "thu": [["09:00", "18:00"]],
                           "fri": [["09:00", "17:00"]]}}}},
                       "after_hours": {{"kind": "forward", "number": "{FORWARD_2}"}}}}}}]"#
    ))
    .unwrap();
    let report = what_if(
        &rec.streams.js,
        &proposal,
        &Selection::default(),
        5,
        &NoProgress,
    )
    .await
    .unwrap();

    // Then only Friday's 17:30 call would go to the after-hours forward
    let counts: Vec<(&str, u64, u64, u64)> = report
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.recorded, r.before, r.after))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("assigned_user", 4, 4, 3),
            ("direct_line", 0, 0, 0),
            ("returning_caller", 0, 0, 0),
            ("ring_group", 0, 0, 0),
            ("forwarding_number", 0, 0, 0),
            ("company_phone", 0, 0, 0),
            ("after_hours", 0, 0, 1),
            ("blocked", 0, 0, 0),
            ("anonymous", 0, 0, 0),
            ("no_route", 0, 0, 0),
        ],
        "{}",
        report.to_text()
    );
    assert_eq!((report.calls, report.changed), (4, 1));
    assert_eq!(report.examples.len(), 1);
    assert_eq!(report.examples[0].call_id, "CA-fri-1730");
    assert_eq!(report.examples[0].after, "after_hours: +13*******00");

    // And a proposal that is not valid is refused naming the field
    let err = parse_settings_file(
        r#"[{"type": "switchboard.settings.company.v1",
             "data": {"tenant_id": "acme", "version": 3,
                      "business_hours": {"weekly": {"fri": [["9am", "5pm"]]}}}}]"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("business_hours.weekly.fri[0]"),
        "{err}"
    );
}

/// Explain shows the settings in force: the routing-policy fields are in their summaries.
#[test]
fn settings_summaries_show_the_routing_policy() {
    use switchboard_audit::settings::summary;
    let company = edited(company("acme", 1, Some(COMPANY)), |d| {
        d["time_zone"] = "America/Chicago".into();
        d["business_hours"] = schedule(OFFICE);
        d["after_hours"] = serde_json::json!({"kind": "forward", "number": FORWARD});
        d["ring_timeout_secs"] = 15.into();
    });
    let text = summary(&company);
    assert!(
        text.contains(
            ", time zone America/Chicago, business hours mon 09:00–17:00; fri 09:00–17:00, \
             after hours forward to +13*******21, rings 15 s"
        ),
        "{text}"
    );
    let number = edited(num("acme", 1, N1, None, false), |d| {
        d["user_id"] = "u-alice".into();
        d["prefer"] = "number_owner".into();
    });
    assert!(
        summary(&number).ends_with(", direct line of u-alice (preferred over the lead's user)"),
        "{}",
        summary(&number)
    );
    let user = edited(user("acme", 1, "u-eve", Some(ALICE), true), |d| {
        d["available"] = false.into();
        d["working_hours"] = schedule(NEVER);
        d["ring_only_in_working_hours"] = true.into();
    });
    assert!(
        summary(&user).ends_with(
            "active, unavailable, working hours closed every day (1 override(s)) (rings only then)"
        ),
        "{}",
        summary(&user)
    );
    // Without the new fields, as before.
    assert_eq!(summary(&user_plain()), "user u-bob: phone none, active");
}

fn user_plain() -> SettingsChange {
    user("acme", 1, "u-bob", None, true)
}

/// Issue 15: "Every leg carries its ring timeout", and replay "re-decides v1 … history":
/// decisions recorded before ring timeouts existed (none on their targets) replay clean, and
/// a recorded timeout that the rules no longer give is a difference, shown as such.
#[tokio::test]
async fn replay_compares_ring_timeouts_only_where_they_were_recorded() {
    use switchboard_audit::replay;
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    let publish = |call_id: &str, ring: Option<u32>| {
        let call = inbound("acme", call_id, N1, CALLERS[3]);
        let mut route = rec.route_for(&call);
        for t in route.target.iter_mut().chain(route.fallbacks.iter_mut()) {
            assert_eq!(t.ring_timeout_secs, Some(20), "the default, on every leg");
            t.ring_timeout_secs = ring;
        }
        (call, route)
    };
    let old = publish("CA-before-timeouts", None);
    let odd = publish("CA-other-timeout", Some(30));
    for (call, route) in [old, odd] {
        rec.streams.publish(call).await;
        rec.streams.publish(route).await;
    }

    let report = replay(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.calls_replayed, 2);
    assert_eq!(report.differences.len(), 1, "{}", report.to_text());
    let d = &report.differences[0];
    assert_eq!(d.call_id, "CA-other-timeout");
    assert_eq!(d.fields[0].field, "target");
    assert_eq!(
        d.fields[0].recorded,
        "+13*******21 (forwarding_number, rings 30 s)"
    );
    assert_eq!(
        d.fields[0].replayed,
        "+13*******21 (forwarding_number, rings 20 s)"
    );
}
