use crate::support::*;
use switchboard_audit::read::NoProgress;
use switchboard_audit::{Selection, parse_settings_file, what_if};

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
            ("forwarding_number", 4, 4, 0),
            ("company_phone", 4, 4, 8),
            ("after_hours", 0, 0, 0),
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
