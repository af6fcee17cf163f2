use crate::support::*;
use switchboard_audit::read::NoProgress;
use switchboard_audit::what_if::ReturningCallers;
use switchboard_audit::{Selection, parse_settings_file, what_if};
use switchboard_contracts::{DialEventKind, NumberSettings, Rule, SettingsChange};

#[tokio::test]
async fn what_if_shows_how_past_calls_would_ring_with_a_proposed_change() {
    // Given the morning's settings and calls recorded
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    for call in calls("acme", "am") {
        rec.call(call).await;
    }
    // When removing N1's forwarding number is proposed (version 1 again: a proposal wins)
    let proposal = parse_settings_file(&format!(
        r#"[{{"type": "switchboard.settings.number.v1",
             "data": {{"tenant_id": "acme", "version": 1, "number": "{N1}",
                       "forwarding_number": null, "released": false}}}}]"#
    ))
    .unwrap();
    let report = what_if(
        &rec.streams.js,
        &proposal,
        &Selection::default(),
        2,
        &NoProgress,
    )
    .await
    .unwrap();

    // Then the 4 calls to N1 that rang the forwarding number ring the company phone instead
    // (the one from alice's lead still rings alice), and nothing else moves
    let counts: Vec<(&str, u64, u64, u64)> = report
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.recorded, r.before, r.after))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("assigned_user", 2, 2, 2),
            ("direct_line", 0, 0, 0),
            ("returning_caller", 0, 0, 0),
            ("ring_group", 0, 0, 0),
            ("forwarding_number", 4, 4, 0),
            ("company_phone", 4, 4, 8),
            ("after_hours", 0, 0, 0),
            ("blocked", 0, 0, 0),
            ("anonymous", 0, 0, 0),
            ("no_route", 0, 0, 0),
        ],
        "{}",
        report.to_text()
    );
    assert_eq!((report.calls, report.changed), (10, 5));
    assert_eq!(report.examples.len(), 2);
    assert_eq!(report.examples[0].call_id, "CA-am-0-0");
    assert_eq!(
        report.examples[0].before,
        "assigned_user: +12*******01 → +13*******21 → +16*******34"
    );
    assert_eq!(
        report.examples[0].after,
        "assigned_user: +12*******01 → +16*******34"
    );
    assert_eq!(report.examples[1].after, "company_phone: +16*******34");
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert_eq!(
        report.returning_callers, None,
        "the proposal leaves returning callers off"
    );
    let text = report.to_text();
    assert!(
        text.contains("10 past call(s) decided again, 5 would ring differently"),
        "{text}"
    );
    assert!(text.contains("forwarding_number"), "{text}");
    assert!(!text.contains(FORWARD), "{text}");

    // And nothing was published
    assert_eq!(rec.streams.calls_stored().await, 20);
}

#[test]
fn a_bad_settings_file_is_refused_with_the_item_and_reason() {
    let err = parse_settings_file("{}").unwrap_err();
    assert!(err.to_string().contains("JSON array"), "{err}");
    let err = parse_settings_file(r#"[{"type": "switchboard.settings.pet.v1", "data": {}}]"#)
        .unwrap_err();
    assert!(
        err.to_string().contains("item 1: unknown settings type"),
        "{err}"
    );
    let err = parse_settings_file(
        r#"[{"type": "switchboard.settings.user.v1",
             "data": {"tenant_id": "acme", "version": 0, "user_id": "u-1", "phone": null}}]"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("item 1: invalid switchboard.settings.user.v1"),
        "{err}"
    );
}

/// A proposal for tenant acme's company: the company phone, and `returning_caller_days`.
fn returning_for(days: u32) -> Vec<SettingsChange> {
    parse_settings_file(&format!(
        r#"[{{"type": "switchboard.settings.company.v1",
             "data": {{"tenant_id": "acme", "version": 2, "company_phone": "{COMPANY}",
                       "returning_caller_days": {days}}}}}]"#
    ))
    .unwrap()
}

/// Issue 17: "what if we turn on returning callers for 30 days" answered from the recorded
/// history. Given an unassigned lead who called N1 once, then was answered by u-2 on u-2's
/// direct line (the dialer's `answered` event, with the caller), then called N1 twice more, and
/// another unassigned caller who was never answered: with 30 days the two calls after the
/// answer would go to u-2 first — not the one before it (the history as of each call, in
/// CALLS order), not the other caller's — and with returning callers off nothing moves.
#[tokio::test]
async fn what_if_returning_callers_counts_calls_that_would_go_back_to_the_last_answerer() {
    let mut rec = Recorder::start().await;
    let direct_line = match num("acme", 1, N2, None, false) {
        SettingsChange::Number(n) => SettingsChange::Number(NumberSettings {
            user_id: Some(id("u-2")),
            ..n
        }),
        _ => unreachable!(),
    };
    rec.settings(vec![
        company("acme", 1, Some(COMPANY)),
        num("acme", 1, N1, Some(FORWARD), false),
        direct_line,
        user("acme", 1, "u-2", Some(BOB), true),
        contact("acme", 1, "c-3", CALLERS[2], None),
    ])
    .await;
    let (_, before_answer) = rec.call(inbound("acme", "CA-0", N1, CALLERS[2])).await;
    assert_eq!(before_answer.rule, Rule::ForwardingNumber);
    let (_, answered) = rec.call(inbound("acme", "CA-1", N2, CALLERS[2])).await;
    assert_eq!(answered.rule, Rule::DirectLine);
    rec.dial(&answered, 0, DialEventKind::StepStarted, None)
        .await;
    rec.dial(&answered, 0, DialEventKind::Answered, None).await;
    for call_id in ["CA-2", "CA-3"] {
        let (_, route) = rec.call(inbound("acme", call_id, N1, CALLERS[2])).await;
        assert_eq!(
            route.rule,
            Rule::ForwardingNumber,
            "recorded with returning callers off"
        );
    }
    rec.call(inbound("acme", "CA-4", N1, CALLERS[3])).await;

    // When returning callers for 30 days are proposed
    let report = what_if(
        &rec.streams.js,
        &returning_for(30),
        &Selection::default(),
        10,
        &NoProgress,
    )
    .await
    .unwrap();

    // Then the two calls after the answer go to u-2, then the forwarding number
    assert_eq!(
        report.returning_callers,
        Some(ReturningCallers {
            days: 30,
            calls: 2,
            answers: 1
        }),
        "{}",
        report.to_text()
    );
    assert_eq!(
        (report.calls, report.changed),
        (5, 2),
        "{}",
        report.to_text()
    );
    let counts = |rule: &str| {
        let r = report.rules.iter().find(|r| r.rule == rule).unwrap();
        (r.recorded, r.before, r.after)
    };
    assert_eq!(counts("returning_caller"), (0, 0, 2));
    assert_eq!(counts("forwarding_number"), (4, 4, 2));
    assert_eq!(counts("direct_line"), (1, 1, 1));
    let changed: Vec<&str> = report.examples.iter().map(|e| e.call_id.as_str()).collect();
    assert_eq!(changed, vec!["CA-2", "CA-3"]);
    assert_eq!(
        report.examples[0].after,
        "returning_caller: +12*******02 → +13*******21 → +16*******34"
    );
    let text = report.to_text();
    assert!(
        text.contains(
            "returning callers for 30 day(s): 2 past call(s) with no eligible owner would have \
             gone back to the person who answered that caller before"
        ),
        "{text}"
    );

    // And with returning callers off, nothing moves and nothing is counted
    let off = what_if(
        &rec.streams.js,
        &returning_for(0),
        &Selection::default(),
        10,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((off.calls, off.changed), (5, 0), "{}", off.to_text());
    assert_eq!(off.returning_callers, None);
    assert!(!off.to_text().contains("returning callers for"));
}
