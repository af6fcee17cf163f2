use crate::support::*;
use std::collections::BTreeSet;
use switchboard_audit::read::{DEFAULT_LOOKBACK, NoProgress};
use switchboard_audit::{ReplayOptions, Selection, replay, replay_with, replay_with_options};
use switchboard_contracts::{
    CallInbound, E164, EntityId, FinalAction, Reason, Region, Rule, SettingsChange,
};
use switchboard_routing::{
    CallerHistory, CompanyView, ContactView, Decision, NumberView, SettingPhone, SettingsView,
    TenantState, UserView, decide, decide_with,
};

/// The routing rules with one deliberately altered: forwarding numbers are ignored.
struct WithoutForwarding<'a>(&'a TenantState);

impl SettingsView for WithoutForwarding<'_> {
    fn region(&self) -> Region {
        self.0.region()
    }
    fn company_phone(&self) -> Option<&SettingPhone> {
        self.0.company_phone()
    }
    fn final_action(&self) -> Option<&FinalAction> {
        self.0.final_action()
    }
    fn company(&self) -> CompanyView<'_> {
        self.0.company()
    }
    fn number(&self, number: &E164) -> Option<NumberView<'_>> {
        self.0.number(number).map(|n| NumberView {
            forwarding_number: None,
            ..n
        })
    }
    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>> {
        self.0.user(user_id)
    }
    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>> {
        self.0.contact(contact_id)
    }
    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
        self.0.contacts_with_phone(phone)
    }
    fn blocked(&self, caller: &E164) -> Option<&str> {
        self.0.blocked(caller)
    }
}

#[tokio::test]
async fn a_day_decided_by_the_router_replays_with_no_difference() {
    // Given a day of calls decided by the real router, with settings changes in between
    let streams = Streams::start().await;
    let calls = router_day(&streams, "acme").await;
    let routes = streams.routes().await;
    assert_eq!(routes.len() as u64, calls);
    let positions: BTreeSet<u64> = routes.iter().map(|(_, r)| r.settings_seq).collect();
    assert_eq!(
        positions.len(),
        3,
        "three settings positions: {positions:?}"
    );
    // (the changes matter: the same caller to the same number is routed differently)
    let rule_of = |id: &str| routes.iter().find(|(_, r)| r.call_id == id).unwrap().1.rule;
    assert_eq!(rule_of("CA-am-0-0"), Rule::AssignedUser);
    assert_eq!(rule_of("CA-noon-0-0"), Rule::ForwardingNumber);
    assert_eq!(rule_of("CA-pm-1-3"), Rule::NoRoute);

    // When every decision is replayed with the current code
    let report = replay(&streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then all are replayed, none differs, and a second run gives the same report
    assert_eq!(report.calls_replayed, calls, "{}", report.to_text());
    assert!(report.differences.is_empty(), "{}", report.to_text());
    assert!(report.unreplayable.is_empty(), "{}", report.to_text());
    assert_eq!(report.last_settings_seq, *positions.last().unwrap());
    let again = replay(&streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(again, report);
    assert_eq!(again.to_text(), report.to_text());
}

#[tokio::test]
async fn an_altered_rule_is_reported_for_exactly_the_calls_it_changes() {
    // Given a day decided by the real router
    let streams = Streams::start().await;
    let calls = router_day(&streams, "acme").await;
    // (the calls whose chain has a forwarding number are those the altered rule changes)
    let expected: BTreeSet<String> = streams
        .routes()
        .await
        .into_iter()
        .filter(|(_, r)| {
            r.target
                .iter()
                .chain(&r.fallbacks)
                .any(|t| t.rule == Rule::ForwardingNumber)
        })
        .map(|(_, r)| r.call_id)
        .collect();
    assert!(!expected.is_empty() && (expected.len() as u64) < calls);

    // When replayed with rules that ignore forwarding numbers
    let report = replay_with(
        &streams.js,
        &Selection::default(),
        DEFAULT_LOOKBACK,
        &NoProgress,
        |call: &_, state: &_, _: &dyn switchboard_routing::CallerHistory| {
            decide(call, &WithoutForwarding(state))
        },
    )
    .await
    .unwrap();

    // Then exactly those calls are listed, in CALLS order, with what changed
    let listed: BTreeSet<String> = report
        .differences
        .iter()
        .map(|d| d.call_id.clone())
        .collect();
    assert_eq!(listed, expected, "{}", report.to_text());
    assert_eq!(report.calls_replayed, calls);
    let seqs: Vec<u64> = report.differences.iter().map(|d| d.route_seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted);
    for d in &report.differences {
        let fields: Vec<&str> = d.fields.iter().map(|f| f.field.as_str()).collect();
        assert!(
            fields.contains(&"target") || fields.contains(&"fallbacks"),
            "{fields:?}"
        );
        for f in &d.fields {
            assert!(!f.recorded.contains("3127654"), "numbers are masked: {f:?}");
        }
    }
    let text = report.to_text();
    assert!(
        text.contains(&format!("{} difference(s)", expected.len())),
        "{text}"
    );
}

#[tokio::test]
async fn an_altered_recorded_decision_is_the_only_difference() {
    // Given calls recorded by the routing core at their settings sequences
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    let mut recorded = Vec::new();
    for call in calls("acme", "am") {
        recorded.push(rec.call(call).await);
    }
    rec.settings(day_noon("acme")).await;
    // and one decision that does not follow the rules (its target is tampered with)
    let call = inbound("acme", "CA-tampered", N1, CALLERS[3]);
    let mut route = rec.route_for(&call);
    assert_eq!(route.rule, Rule::ForwardingNumber);
    route.target.as_mut().unwrap().number = number(COMPANY);
    rec.streams.publish(call).await;
    let tampered_seq = rec.streams.publish(route).await;
    for call in calls("acme", "noon") {
        rec.call(call).await;
    }

    // When replayed
    let report = replay(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then only the tampered decision differs, in its target
    assert_eq!(report.calls_replayed, 21);
    assert_eq!(report.differences.len(), 1, "{}", report.to_text());
    let d = &report.differences[0];
    assert_eq!(
        (d.call_id.as_str(), d.route_seq),
        ("CA-tampered", tampered_seq)
    );
    assert_eq!(d.fields.len(), 1, "{:?}", d.fields);
    assert_eq!(d.fields[0].field, "target");
    assert_eq!(d.fields[0].recorded, "+16*******34 (forwarding_number)");
    assert_eq!(d.fields[0].replayed, "+13*******00 (forwarding_number)");
}

/// Issue 15: "`replay` re-decides v1 and v2 history" — "keep v1 history readable: `replay`
/// and `explain` work over a stream that holds both".
#[tokio::test]
async fn a_stream_holding_v1_and_v2_decisions_replays_both_and_finds_what_differs() {
    // Given a morning recorded by a v1 router (prose) and a noon by a v2 router (reasons),
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    for call in calls("acme", "am") {
        let (_, route) = rec.call_v1(call).await;
        assert!(route.is_v1() && route.reasons.is_empty());
    }
    rec.settings(day_noon("acme")).await;
    for call in calls("acme", "noon") {
        let (_, route) = rec.call(call).await;
        assert!(!route.is_v1() && !route.reasons.is_empty());
    }
    // with one tampered decision of each version (a v1 line and a v2 reason changed),
    let call = inbound("acme", "CA-v1-tampered", N1, CALLERS[3]);
    let mut route = v1(rec.route_for(&call));
    route.explanation[1] = "The caller is someone else.".into();
    rec.streams.publish(call).await;
    let v1_seq = rec.streams.publish_v1(route).await;
    let call = inbound("acme", "CA-v2-tampered", N1, CALLERS[3]);
    let mut route = rec.route_for(&call);
    route.reasons[0] = Reason::NoCompanyPhone;
    rec.streams.publish(call).await;
    let v2_seq = rec.streams.publish(route).await;

    // and a closed company whose after-hours action is the final action, recorded both ways
    // (v1 said `no_route`, v2 says `after_hours`):
    let mut closed = match company("acme", 2, Some(COMPANY)) {
        SettingsChange::Company(c) => c,
        _ => unreachable!(),
    };
    closed.business_hours = Some(serde_json::from_str(r#"{"weekly": {}}"#).unwrap());
    rec.settings(vec![SettingsChange::Company(closed)]).await;
    let (_, v1_closed) = rec
        .call_v1(inbound("acme", "CA-closed-v1", N1, CALLERS[0]))
        .await;
    let (_, v2_closed) = rec
        .call(inbound("acme", "CA-closed-v2", N1, CALLERS[0]))
        .await;
    assert_eq!(
        (v1_closed.rule, v2_closed.rule),
        (Rule::NoRoute, Rule::AfterHours)
    );
    // When replayed
    let report = replay(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then both versions are re-decided, and exactly the two tampered ones differ, each in
    // the first line (v1) or reason (v2) that was changed.
    assert_eq!(
        report.calls_replayed,
        10 + 10 + 2 + 2,
        "{}",
        report.to_text()
    );
    assert!(report.unreplayable.is_empty(), "{}", report.to_text());
    let found: Vec<(&str, u64, Vec<&str>)> = report
        .differences
        .iter()
        .map(|d| {
            (
                d.call_id.as_str(),
                d.route_seq,
                d.fields.iter().map(|f| f.field.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("CA-v1-tampered", v1_seq, vec!["explanation[2]"]),
            ("CA-v2-tampered", v2_seq, vec!["reasons[1]"]),
        ],
        "{}",
        report.to_text()
    );
    let v1_diff = &report.differences[0].fields[0];
    assert_eq!(v1_diff.recorded, "The caller is someone else.");
    assert_eq!(
        v1_diff.replayed,
        "The caller +14*******99 is not a known lead."
    );
    let v2_diff = &report.differences[1].fields[0];
    assert_eq!(v2_diff.recorded, "The company has no company phone set up.");
    assert!(
        v2_diff.replayed.starts_with("The dialed number +16"),
        "{v2_diff:?}"
    );
}

#[tokio::test]
async fn replay_reads_only_the_selected_tenant_and_sequences() {
    // Given two tenants' calls
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    rec.settings(day_start("globex")).await;
    let mut acme = Vec::new();
    for call in calls("acme", "am") {
        acme.push(rec.call(call).await.0);
    }
    for call in calls("globex", "am") {
        rec.call(call).await;
    }

    // When one tenant is replayed, and then from a CALLS sequence on
    let tenant_only = Selection {
        tenant: Some(tenant("acme")),
        ..Selection::default()
    };
    let report = replay(&rec.streams.js, &tenant_only, &NoProgress)
        .await
        .unwrap();
    let from = Selection {
        from_seq: Some(acme[5]),
        ..tenant_only.clone()
    };
    let later = replay(&rec.streams.js, &from, &NoProgress).await.unwrap();

    // Then only its calls, and only those from that sequence, are replayed
    assert_eq!(report.calls_replayed, 10);
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(later.calls_replayed, 5);
    assert!(later.is_clean(), "{}", later.to_text());

    // And a nonsensical selection is refused with a reason
    let bad = Selection {
        from_seq: Some(0),
        ..Selection::default()
    };
    let err = replay(&rec.streams.js, &bad, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--from-seq"), "{err}");
}

#[tokio::test]
async fn a_decision_without_its_inbound_call_is_listed_as_not_replayable() {
    // Given a decision whose call.inbound was never stored
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    let call = inbound("acme", "CA-orphan", N1, CALLERS[0]);
    let route = rec.route_for(&call);
    let seq = rec.streams.publish(route).await;

    // When replayed
    let report = replay(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then it is listed with the reason, and the replay is not clean
    assert_eq!(report.calls_replayed, 0);
    assert_eq!(report.unreplayable.len(), 1);
    assert_eq!(report.unreplayable[0].route_seq, seq);
    assert!(report.unreplayable[0].reason.contains("call.inbound"));
    assert!(!report.is_clean());
}

/// A window of one call: the pass that decides while reading CALLS holds back one call only.
fn window_of_one() -> ReplayOptions {
    ReplayOptions {
        window: 1,
        ..ReplayOptions::default()
    }
}

/// The routing core, with the final action's message changed for the calls `altered` names.
fn altering<'a>(
    altered: &'a [&'a str],
    seen: &'a mut Vec<String>,
) -> impl FnMut(&CallInbound, &TenantState, &dyn CallerHistory) -> Decision + 'a {
    move |call: &CallInbound, state: &TenantState, history: &dyn CallerHistory| {
        seen.push(call.call_id.clone());
        let mut decision = decide_with(call, state, history);
        if altered.contains(&call.call_id.as_str()) {
            decision.final_action.message = "altered".into();
        }
        decision
    }
}

#[tokio::test]
async fn calls_stored_after_later_settings_beyond_the_window_are_replayed_in_a_second_pass() {
    // Given calls decided at noon's settings, then calls stored after them by a router still
    // at the morning's (behind on SETTINGS), then calls at noon's again
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    let mut other = rec.projection.clone();
    rec.settings(day_noon("acme")).await;
    let noon = rec.projection.applied_seq();
    for call in calls("acme", "noon") {
        rec.call(call).await;
    }
    std::mem::swap(&mut rec.projection, &mut other);
    let mut behind = Vec::new();
    let mut otherwise = 0;
    for call in calls("acme", "am") {
        let (seq, route) = rec.call(call.clone()).await;
        assert!(route.settings_seq < noon);
        // (the settings matter: noon's decide some of them otherwise)
        std::mem::swap(&mut rec.projection, &mut other);
        let at_noon = rec.route_for(&call);
        std::mem::swap(&mut rec.projection, &mut other);
        if (at_noon.rule, &at_noon.target) != (route.rule, &route.target) {
            otherwise += 1;
        }
        behind.push((route.call_id, seq));
    }
    assert!(otherwise > 0);
    std::mem::swap(&mut rec.projection, &mut other);
    for call in calls("acme", "pm") {
        rec.call(call).await;
    }
    let js = &rec.streams.js;
    let all = Selection::default();

    // When replayed with the default window (which holds them all), and with a window of one
    // call (the one pass has applied noon's settings when the morning's calls come)
    let whole = replay(js, &all, &NoProgress).await.unwrap();
    let mut seen = Vec::new();
    let windowed = replay_with_options(
        js,
        &all,
        &window_of_one(),
        &NoProgress,
        altering(&[], &mut seen),
    )
    .await
    .unwrap();

    // Then every call is replayed, none differs, and the reports are the same
    assert_eq!(whole.calls_replayed, 30, "{}", whole.to_text());
    assert!(whole.is_clean(), "{}", whole.to_text());
    assert_eq!(windowed, whole, "{}", windowed.to_text());
    // (with a window of one, the morning's calls were decided last, in a second pass)
    let late: Vec<&str> = behind.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(seen.len(), 30);
    assert_eq!(&seen[20..], late.as_slice(), "{seen:?}");

    // And a difference in a call of the second pass (and one of the first) is reported for
    // exactly that call
    let (late_id, late_seq) = behind[3].clone();
    let mut seen = Vec::new();
    let altered = [late_id.as_str(), "CA-pm-1-2"];
    let report = replay_with_options(
        js,
        &all,
        &window_of_one(),
        &NoProgress,
        altering(&altered, &mut seen),
    )
    .await
    .unwrap();
    assert_eq!(report.calls_replayed, 30, "{}", report.to_text());
    assert!(report.unreplayable.is_empty(), "{}", report.to_text());
    let found: Vec<(&str, u64, Vec<&str>)> = report
        .differences
        .iter()
        .map(|d| {
            (
                d.call_id.as_str(),
                d.settings_seq,
                d.fields.iter().map(|f| f.field.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (late_id.as_str(), noon - 2, vec!["final_action"]),
            ("CA-pm-1-2", noon, vec!["final_action"]),
        ],
        "{}",
        report.to_text()
    );
    assert_eq!(report.differences[0].route_seq, late_seq);
    for d in &report.differences {
        assert!(d.fields[0].replayed.ends_with(": altered"), "{d:?}");
    }
}
