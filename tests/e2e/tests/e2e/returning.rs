//! Returning callers end to end (issue 17): the dialer records who answered a caller, the
//! router learns it from CALLS, routes the caller's next call back to that user once their lead
//! has no owner, and replay re-decides both calls from the recorded history with no difference.

use crate::support::*;
use switchboard_audit::read::NoProgress;
use switchboard_audit::{Selection, replay};
use switchboard_contracts::{
    CallDial, CallRoute, CompanySettings, ContactSettings, DialEventKind, E164, EntityId, Envelope,
    Reason, Rule, TenantId, UserSettings,
};
use switchboard_testkit::eventually;

const USER: &str = "u-42";
const USER_PHONE: &str = "+13125550142";
const CONTACT: &str = "c-7";

fn tenant() -> TenantId {
    TenantId::new(TENANT).unwrap()
}

fn company(version: u64, returning_caller_days: u32) -> CompanySettings {
    CompanySettings {
        tenant_id: tenant(),
        version,
        company_phone: Some(COMPANY.into()),
        default_region: None,
        final_action: None,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    }
}

fn contact(version: u64, owner: Option<&str>) -> ContactSettings {
    ContactSettings {
        tenant_id: tenant(),
        version,
        contact_id: EntityId::parse("contact_id", CONTACT).unwrap(),
        phones: vec![CALLER.into()],
        assigned_user_id: owner.map(|o| EntityId::parse("user_id", o).unwrap()),
        deleted: false,
    }
}

/// The decision recorded for `call_id`, once there is one, with its CALLS sequence.
async fn route_of(stack: &Stack, call_id: &str) -> (u64, CallRoute) {
    eventually(WAIT, &format!("a decision for {call_id}"), || async {
        stack
            .calls("call.route.")
            .await
            .into_iter()
            .filter_map(|(seq, subject, payload)| {
                let route = Envelope::<CallRoute>::decode(&payload, &subject).ok()?.data;
                (route.call_id == call_id).then_some((seq, route))
            })
            .next()
    })
    .await
    .unwrap()
}

/// The `answered` event of `call_id`, once the dialer recorded it, with its CALLS sequence.
async fn answered(stack: &Stack, call_id: &str) -> (u64, CallDial) {
    eventually(WAIT, &format!("{call_id} answered"), || async {
        stack
            .calls("call.dial.")
            .await
            .into_iter()
            .filter_map(|(seq, subject, payload)| {
                let dial = Envelope::<CallDial>::decode(&payload, &subject).ok()?.data;
                (dial.call_id == call_id && dial.kind == DialEventKind::Answered)
                    .then_some((seq, dial))
            })
            .next()
    })
    .await
    .unwrap()
}

/// The router's `switchboard_router_returning_caller_history_seq`.
async fn history_seq(stack: &Stack) -> u64 {
    stack
        .metrics(stack.router)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_router_returning_caller_history_seq "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_returning_caller_rings_who_answered_them_and_replays_without_difference() {
    // Given returning callers on for 30 days, and the caller's lead assigned to u-42
    let stack = Stack::start().await;
    stack.settings(company(2, 30)).await;
    stack
        .settings(UserSettings {
            tenant_id: tenant(),
            version: 1,
            user_id: EntityId::parse("user_id", USER).unwrap(),
            phone: Some(USER_PHONE.into()),
            active: true,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        })
        .await;
    stack.settings(contact(1, Some(USER))).await;

    // When the caller calls and u-42 answers (the sandbox carrier answers step 0)
    assert_eq!(stack.call_from("CA-first", CALLER).await, 202);
    let (_, first) = route_of(&stack, "CA-first").await;
    assert_eq!(first.rule, Rule::AssignedUser);
    let (answer_seq, answer) = answered(&stack, "CA-first").await;
    // (the dialer recorded whom it answered: what the router learns from)
    assert_eq!(answer.caller, Some(E164::parse_strict(CALLER).unwrap()));
    assert_eq!(
        answer
            .target
            .as_ref()
            .and_then(|t| t.user_id.as_ref())
            .map(|u| u.as_str()),
        Some(USER)
    );

    // And the lead loses its owner, and the router has learned the answer
    stack.settings(contact(2, None)).await;
    eventually(WAIT, "the router to apply the answer", || async {
        (history_seq(&stack).await >= answer_seq).then_some(())
    })
    .await
    .unwrap();

    // Then the caller's next call rings u-42 again, as a returning caller
    assert_eq!(stack.call_from("CA-second", CALLER).await, 202);
    let (_, second) = route_of(&stack, "CA-second").await;
    assert_eq!(second.rule, Rule::ReturningCaller, "{:?}", second.reasons);
    let target = second.target.as_ref().unwrap();
    assert_eq!(target.number.as_str(), USER_PHONE);
    assert_eq!(target.user_id.as_ref().map(|u| u.as_str()), Some(USER));
    assert!(second.calls_seq >= answer_seq);
    assert!(second.reasons.iter().any(|r| matches!(
        r,
        Reason::ReturningCaller { user_id, days: 30, .. } if user_id.as_str() == USER
    )));
    // (the first decision was made with the history too: returning callers were on)
    assert!(first.calls_seq < answer_seq);

    // And replay, rebuilding the history as of each decision's calls_seq, finds no difference
    let js = async_nats::jetstream::new(stack.nats.client().await.unwrap());
    let report = replay(&js, &Selection::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.calls_replayed, 2, "{}", report.to_text());
    assert!(report.is_clean(), "{}", report.to_text());

    // And with the history left out, replay would see the second call differently: the
    // history is what decided it
    let without = switchboard_audit::replay_with(
        &js,
        &Selection::default(),
        switchboard_audit::read::DEFAULT_LOOKBACK,
        &NoProgress,
        |call: &_, state: &_, _: &dyn switchboard_routing::CallerHistory| {
            switchboard_routing::decide(call, state)
        },
    )
    .await
    .unwrap();
    let differing: Vec<&str> = without
        .differences
        .iter()
        .map(|d| d.call_id.as_str())
        .collect();
    assert_eq!(differing, ["CA-second"], "{}", without.to_text());
    stack.stop().await;
}
