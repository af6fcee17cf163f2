//! Issue 15 (routing policy v2): the decision order, direct lines, availability, working
//! hours, business hours and ring timeouts. One test per rule and per skip reason, each citing
//! the sentence of the issue it proves.

use crate::fixture::*;
use switchboard_contracts::{
    AfterHours, AfterHoursKind, FinalAction, FinalActionKind, Prefer, Reason, Rule,
};
use time::macros::datetime;

const OWNER_PHONE: &str = "+13125550188";
const AFTER_HOURS: &str = "+13125550100";
/// Monday 2026-11-23, 10:05 in Chicago (CST, UTC−6): inside office hours.
const MON_1005_CHICAGO: time::OffsetDateTime = datetime!(2026-11-23 16:05 UTC);
/// Monday 2026-11-23, 18:05 in Chicago: after office hours.
const MON_1805_CHICAGO: time::OffsetDateTime = datetime!(2026-11-24 00:05 UTC);

/// A tenant in Chicago open Monday to Friday 09:00–17:00, with a forwarding number, a company
/// phone, lead c1 (the caller) assigned to u1, and the dialed number owned by u2.
fn chicago() -> Fixture {
    let mut f = Fixture::new();
    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = Some(office_hours(None));
    })
    .number_with(|n| {
        n.forwarding_number = Some(FORWARDING.into());
        n.user_id = Some(id("u2"));
    })
    .user("u1", Some(USER_PHONE), true)
    .user("u2", Some(OWNER_PHONE), true)
    .contact("c1", &[CALLER], Some("u1"));
    f
}

fn closed_with(after_hours: Option<AfterHours>) -> Fixture {
    let mut f = chicago();
    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = Some(office_hours(None));
        c.after_hours = after_hours;
    });
    f
}

fn forward(number: &str) -> Option<AfterHours> {
    Some(AfterHours {
        kind: AfterHoursKind::Forward,
        number: Some(number.into()),
    })
}

// ---------------------------------------------------------------------------------------------
// 0. Dead numbers
// ---------------------------------------------------------------------------------------------

/// Issue 15: "0. A released or unprovisioned number gives `no_route` as today, whatever the
/// hours."
#[test]
fn a_released_or_unprovisioned_number_is_no_route_whatever_the_hours() {
    for at in [MON_1005_CHICAGO, MON_1805_CHICAGO] {
        let mut f = closed_with(forward(AFTER_HOURS));
        let mut call = call_at(CALLER, at);
        call.to = "+16502530001".into();
        let d = f.decide(&call);
        assert_eq!(d.rule, Rule::NoRoute);
        assert!(explains(&d, "is not provisioned"), "{:?}", d.explanation());
        assert!(!explains(&d, "The company is"), "hours are not even read");

        f.number_with(|n| n.released = true);
        let d = f.decide(&call_at(CALLER, at));
        assert_eq!(d.rule, Rule::NoRoute);
        assert!(explains(&d, "has been released"));
        assert!(!explains(&d, "The company is"));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Business hours
// ---------------------------------------------------------------------------------------------

/// Issue 15: "1. The company is closed (business hours) → the after-hours action (rule
/// `after_hours`): with `forward`, that number is the target and has no fallbacks before the
/// final action … Nothing else rings."
#[test]
fn closed_with_a_forward_rings_only_the_forward() {
    let f = closed_with(forward(AFTER_HOURS));
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(d.rule, Rule::AfterHours);
    assert_eq!(chain(&d), vec![(AFTER_HOURS.into(), "after_hours")]);
    assert!(d.fallbacks.is_empty());
    assert_eq!(d.target.as_ref().unwrap().user_id, None);
    assert!(
        explains(
            &d,
            "The company is closed: Mon 09:00–17:00 America/Chicago, the call came at 18:05 local."
        ),
        "{:?}",
        d.explanation()
    );
    assert!(!explains(&d, "Lead c1"), "the lead is not even looked up");
}

/// Issue 15: "with `final_action`, there is no target."
#[test]
fn closed_with_the_final_action_rings_nobody() {
    let action = FinalAction {
        kind: FinalActionKind::AnnounceHangup,
        message: "We are closed.".into(),
    };
    for after_hours in [
        Some(AfterHours {
            kind: AfterHoursKind::FinalAction,
            number: None,
        }),
        // Issue 15: `{"kind": "final_action"}` is "the default".
        None,
    ] {
        let mut f = closed_with(after_hours.clone());
        let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
        // Issue 15: "The company is closed (business hours) → the after-hours action (rule
        // `after_hours`)", also when that action is the final action alone.
        assert_eq!(d.rule, Rule::AfterHours, "{after_hours:?}");
        assert_eq!(d.target, None);
        assert!(
            matches!(
                d.reasons.as_slice(),
                [
                    Reason::NumberProvisioned { .. },
                    Reason::CompanyClosed { hours },
                    Reason::AfterHoursFinalAction
                ] if !hours.is_open() && hours.time == "18:05" && hours.weekday == "mon"
                    && hours.time_zone == "America/Chicago"
            ),
            "{:#?}",
            d.reasons
        );
        assert!(
            explains(&d, "After hours nothing rings"),
            "{:?}",
            d.explanation()
        );

        // The company's final action is what plays.
        f.company_with(|c| {
            c.time_zone = Some("America/Chicago".into());
            c.business_hours = Some(office_hours(None));
            c.after_hours = after_hours;
            c.final_action = Some(action.clone());
        });
        let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
        assert_eq!(d.final_action, action);
    }
}

/// Issue 15: "A forward to the dialed number itself is skipped as a loop (the final action
/// follows)."
#[test]
fn an_after_hours_forward_to_the_dialed_number_is_skipped_as_a_loop() {
    let f = closed_with(forward(DIALED));
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    // Closed: the after-hours rule decided, and only the final action is left.
    assert_eq!(d.rule, Rule::AfterHours);
    assert_eq!(d.target, None);
    assert!(
        d.reasons.iter().any(|r| matches!(r,
            Reason::DialedNumberSkipped(o) if o.rule == Rule::AfterHours && o.number.as_str() == DIALED)),
        "{:#?}",
        d.reasons
    );
    assert!(explains(&d, "after-hours forward"), "{:?}", d.explanation());
    assert!(explains(&d, "forwarding loop"));
    assert!(explains(&d, "No route"));
}

/// Issue 15: "Otherwise the chain is these steps" — an open company routes as before, and
/// says it is open.
#[test]
fn an_open_company_routes_through_the_chain() {
    let f = closed_with(forward(AFTER_HOURS));
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(
        chain(&d),
        vec![
            (USER_PHONE.into(), "assigned_user"),
            (OWNER_PHONE.into(), "direct_line"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(explains(
        &d,
        "The company is open: Mon 09:00–17:00 America/Chicago, the call came at 10:05 local."
    ));
}

/// Issue 15: "`business_hours` (a Schedule or null — null means always open)".
#[test]
fn no_business_hours_means_always_open() {
    let mut f = chicago();
    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        c.after_hours = forward(AFTER_HOURS);
    });
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert!(!explains(&d, "The company is"));
}

/// Issue 15: "intervals are half-open, `[start, end)` — a call at 17:00 is outside
/// 09:00–17:00 —, `end` may be `"24:00"`".
#[test]
fn intervals_are_half_open() {
    let f = closed_with(forward(AFTER_HOURS));
    let rule_at = |at| f.decide(&call_at(CALLER, at)).rule;
    // Chicago is UTC−6 in November.
    assert_eq!(
        rule_at(datetime!(2026-11-23 14:59:59 UTC)),
        Rule::AfterHours
    );
    assert_eq!(rule_at(datetime!(2026-11-23 15:00 UTC)), Rule::AssignedUser);
    assert_eq!(
        rule_at(datetime!(2026-11-23 22:59:59.999 UTC)),
        Rule::AssignedUser
    );
    assert_eq!(rule_at(datetime!(2026-11-23 23:00 UTC)), Rule::AfterHours);

    // Up to 24:00: the last instant of the day is inside, midnight is the next day.
    let mut f = chicago();
    f.company_with(|c| {
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = Some(schedule(None, &[("mon", &[("20:00", "24:00")])], &[]));
        c.after_hours = forward(AFTER_HOURS);
    });
    let rule_at = |at| f.decide(&call_at(CALLER, at)).rule;
    assert_eq!(
        rule_at(datetime!(2026-11-24 05:59:59.999 UTC)),
        Rule::AssignedUser
    );
    assert_eq!(rule_at(datetime!(2026-11-24 06:00 UTC)), Rule::AfterHours);
}

/// Issue 15: "a missing day is closed" and "an override replaces that date's weekly hours
/// (empty = closed all day)".
#[test]
fn missing_days_are_closed_and_overrides_replace_the_week() {
    let mut f = chicago();
    f.company_with(|c| {
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = Some(schedule(
            None,
            &[
                ("thu", &[("09:00", "17:00")]),
                ("fri", &[("09:00", "17:00")]),
            ],
            &[
                ("2026-12-24", &[("09:00", "12:00")]),
                ("2026-12-25", &[]),
                // An override opens a day the week leaves closed.
                ("2026-12-27", &[("10:00", "11:00")]),
            ],
        ));
        c.after_hours = forward(AFTER_HOURS);
    });
    let decide_at = |at| f.decide(&call_at(CALLER, at));
    // Saturday 2026-12-19, noon: no `sat` key.
    let d = decide_at(datetime!(2026-12-19 18:00 UTC));
    assert_eq!(d.rule, Rule::AfterHours);
    assert!(
        explains(&d, "Sat closed all day America/Chicago"),
        "{:?}",
        d.explanation()
    );
    // Thursday 2026-12-24: a short day, 13:00 is closed although the week says open.
    let d = decide_at(datetime!(2026-12-24 19:00 UTC));
    assert_eq!(d.rule, Rule::AfterHours);
    assert!(
        explains(
            &d,
            "2026-12-24 (override) 09:00–12:00 America/Chicago, the call came at 13:00 local"
        ),
        "{:?}",
        d.explanation()
    );
    assert_eq!(
        decide_at(datetime!(2026-12-24 16:00 UTC)).rule,
        Rule::AssignedUser
    );
    // Friday 2026-12-25: closed all day.
    let d = decide_at(datetime!(2026-12-25 16:00 UTC));
    assert_eq!(d.rule, Rule::AfterHours);
    assert!(
        explains(&d, "2026-12-25 (override) closed all day"),
        "{:?}",
        d.explanation()
    );
    // Sunday 2026-12-27, 10:30: open by override only.
    assert_eq!(
        decide_at(datetime!(2026-12-27 16:30 UTC)).rule,
        Rule::AssignedUser
    );
    // Friday 2027-01-01: the weekly hours again.
    assert_eq!(
        decide_at(datetime!(2027-01-01 16:00 UTC)).rule,
        Rule::AssignedUser
    );
}

/// Issue 15: "A schedule without a time zone uses the company's, and a company without one
/// uses UTC"; a schedule's own `time_zone` wins.
#[test]
fn a_schedule_without_a_zone_uses_the_companys_then_utc() {
    // 16:05 UTC on a Monday: 10:05 in Chicago, 16:05 in UTC, 17:05 in Berlin.
    let cases = [
        (None, None, Rule::AssignedUser, "UTC"),
        (
            Some("America/Chicago"),
            None,
            Rule::AssignedUser,
            "America/Chicago",
        ),
        (
            None,
            Some("Europe/Berlin"),
            Rule::AfterHours,
            "Europe/Berlin",
        ),
        (
            Some("America/Chicago"),
            Some("Europe/Berlin"),
            Rule::AfterHours,
            "Europe/Berlin",
        ),
    ];
    for (company_zone, schedule_zone, rule, shown) in cases {
        let mut f = chicago();
        f.company_with(|c| {
            c.time_zone = company_zone.map(Into::into);
            c.business_hours = Some(office_hours(schedule_zone));
            c.after_hours = forward(AFTER_HOURS);
        });
        let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
        assert_eq!(d.rule, rule, "{company_zone:?} {schedule_zone:?}");
        assert!(
            explains(&d, &format!("09:00–17:00 {shown}, the call came at")),
            "{:?}",
            d.explanation()
        );
    }
}

/// Issue 15: "Time is the call's `received_at`, never the router's clock, so replay stays
/// deterministic": the same call at another `received_at` is decided by that time alone.
#[test]
fn the_decision_follows_received_at() {
    let f = closed_with(forward(AFTER_HOURS));
    let open = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    let closed = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(open.rule, Rule::AssignedUser);
    assert_eq!(closed.rule, Rule::AfterHours);
    // Deciding again later gives the very same decisions.
    assert_eq!(f.decide(&call_at(CALLER, MON_1005_CHICAGO)), open);
    assert_eq!(f.decide(&call_at(CALLER, MON_1805_CHICAGO)), closed);
}

// ---------------------------------------------------------------------------------------------
// 2. The chain
// ---------------------------------------------------------------------------------------------

/// Issue 15: "the dialed number is an eligible user's direct line → that user's phone (rule
/// `direct_line`)".
#[test]
fn a_direct_line_rings_its_owner() {
    let mut f = chicago();
    f.contact("c1", &[CALLER], None);
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert_eq!(d.target.as_ref().unwrap().user_id, Some(id("u2")));
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(explains(
        &d,
        "The dialed number is the direct line of user u2, who is active."
    ));
    // A caller who is no lead reaches the owner too.
    let d = f.decide(&call_at("+14158675399", MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert!(
        explains(&d, "the direct line comes next"),
        "{:?}",
        d.explanation()
    );
}

/// Issue 15: "the caller's lead is assigned to an eligible user → that user's phone (rule
/// `assigned_user`); the dialed number is an eligible user's direct line → … (rule
/// `direct_line`)" — in this order by default (`prefer`: "`"contact_owner"` (default)").
#[test]
fn the_leads_user_comes_before_the_number_owner_by_default() {
    let f = chicago();
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert_eq!(
        chain(&d),
        vec![
            (USER_PHONE.into(), "assigned_user"),
            (OWNER_PHONE.into(), "direct_line"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert_eq!(d.fallbacks[0].user_id, Some(id("u2")));
}

/// Issue 15: "With `prefer: "number_owner"` the first two swap places."
#[test]
fn prefer_number_owner_swaps_the_first_two() {
    let mut f = chicago();
    f.number_with(|n| {
        n.forwarding_number = Some(FORWARDING.into());
        n.user_id = Some(id("u2"));
        n.prefer = Prefer::NumberOwner;
    });
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (USER_PHONE.into(), "assigned_user"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(
        explains(&d, "This number prefers its owner"),
        "{:?}",
        d.explanation()
    );

    // The owner skipped: the lead's user is next, and says so.
    f.user_with("u2", Some(OWNER_PHONE), |u| u.available = false);
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert!(
        explains(
            &d,
            "who is unavailable (do not disturb); the lead's assigned user comes next."
        ),
        "{:?}",
        d.explanation()
    );
}

/// Issue 15: "keeping only eligible ones and never the same number twice": a lead assigned to
/// the number's own owner rings them once.
#[test]
fn the_owner_who_is_also_the_leads_user_rings_once() {
    let mut f = chicago();
    f.contact("c1", &[CALLER], Some("u2"));
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "assigned_user"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(explains(
        &d,
        "already in the chain (assigned_user); not repeated"
    ));
}

/// Issue 15: "`available` (bool, default true — false is do-not-disturb: skip this user)",
/// for the lead's user and for the number's owner.
#[test]
fn an_unavailable_user_is_skipped() {
    let mut f = chicago();
    f.user_with("u1", Some(USER_PHONE), |u| u.available = false);
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert!(
        explains(
            &d,
            "Lead c1 is assigned to user u1, who is unavailable (do not disturb); the direct line comes next."
        ),
        "{:?}",
        d.explanation()
    );

    f.user_with("u2", Some(OWNER_PHONE), |u| u.available = false);
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(
        explains(
            &d,
            "The dialed number is the direct line of user u2, who is unavailable (do not disturb); the forwarding number comes next."
        ),
        "{:?}",
        d.explanation()
    );
}

/// Issue 15: "A user is **eligible** when active, `available`, has a phone, and — if
/// `ring_only_in_working_hours` — the call falls inside their working hours. Every skip is
/// explained ("u-42 is outside working hours: Mon 09:00–17:00 America/Chicago, the call came
/// at 18:05 local")."
#[test]
fn a_user_outside_working_hours_is_skipped_and_explained() {
    let mut f = chicago();
    // An always-open company, so that only the user's hours decide.
    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        c.time_zone = Some("America/Chicago".into());
    })
    .user_with("u-42", Some(USER_PHONE), |u| {
        u.working_hours = Some(office_hours(None));
        u.ring_only_in_working_hours = true;
    })
    .contact("c1", &[CALLER], Some("u-42"));
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert!(
        explains(
            &d,
            "u-42, who is outside working hours: Mon 09:00–17:00 America/Chicago, the call came at 18:05 local"
        ),
        "{:?}",
        d.explanation()
    );
    // Inside: rung, and the hours are shown.
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::AssignedUser);
    assert!(
        explains(
            &d,
            "who is active, inside working hours: Mon 09:00–17:00 America/Chicago, the call came at 10:05 local."
        ),
        "{:?}",
        d.explanation()
    );

    // The number's owner, the same way.
    f.user_with("u2", Some(OWNER_PHONE), |u| {
        u.working_hours = Some(office_hours(Some("Europe/Berlin")));
        u.ring_only_in_working_hours = true;
    });
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(
        explains(
            &d,
            "direct line of user u2, who is outside working hours: Tue 09:00–17:00 Europe/Berlin, the call came at 01:05 local"
        ),
        "{:?}",
        d.explanation()
    );
}

/// Issue 15: "`working_hours` (a Schedule or null — null means always)", and working hours
/// only matter with "`ring_only_in_working_hours` (bool, default false)".
#[test]
fn working_hours_matter_only_with_ring_only_in_working_hours() {
    let mut f = chicago();
    f.company_with(|c| c.time_zone = Some("America/Chicago".into()));
    // Hours, but the flag is off: rung at any time.
    f.user_with("u1", Some(USER_PHONE), |u| {
        u.working_hours = Some(office_hours(None));
    });
    assert_eq!(
        f.decide(&call_at(CALLER, MON_1805_CHICAGO)).rule,
        Rule::AssignedUser
    );
    // The flag without hours: always.
    f.user_with("u1", Some(USER_PHONE), |u| {
        u.ring_only_in_working_hours = true;
    });
    assert_eq!(
        f.decide(&call_at(CALLER, MON_1805_CHICAGO)).rule,
        Rule::AssignedUser
    );
    // Hours that are never open (an empty week) and the flag: never.
    f.user_with("u1", Some(USER_PHONE), |u| {
        u.working_hours = Some(schedule(None, &[], &[]));
        u.ring_only_in_working_hours = true;
    });
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(d.rule, Rule::DirectLine);
    assert!(
        explains(&d, "Mon closed all day America/Chicago"),
        "{:?}",
        d.explanation()
    );
}

/// Issue 15: a direct line "owned by an inactive or unknown user", or by one without a phone,
/// is skipped, and the skip explained.
#[test]
fn a_direct_line_whose_owner_cannot_take_the_call_is_skipped() {
    type SetUp = fn(&mut Fixture);
    let cases: [(&str, SetUp, &str); 4] = [
        (
            "unknown",
            |f| {
                f.number_with(|n| {
                    n.forwarding_number = Some(FORWARDING.into());
                    n.user_id = Some(id("ghost"));
                });
            },
            "direct line of user ghost, who is unknown",
        ),
        (
            "inactive",
            |f| {
                f.user("u2", Some(OWNER_PHONE), false);
            },
            "direct line of user u2, who is deactivated",
        ),
        (
            "no phone",
            |f| {
                f.user("u2", None, true);
            },
            "direct line of user u2, who has no phone number",
        ),
        (
            "bad phone",
            |f| {
                f.user("u2", Some("12"), true);
            },
            "The phone of user u2 is not a usable phone number",
        ),
    ];
    for (what, set_up, why) in cases {
        let mut f = chicago();
        f.contact("c1", &[CALLER], None);
        set_up(&mut f);
        let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
        assert_eq!(d.rule, Rule::ForwardingNumber, "{what}");
        assert!(explains(&d, why), "{what}: {:?}", d.explanation());
    }
}

/// Issue 15: eligibility also picks among several leads of one caller: the one whose user can
/// take the call now wins (contract v1: "A lead whose user can take the call wins").
#[test]
fn among_several_leads_one_whose_user_is_in_working_hours_wins() {
    let mut f = chicago();
    f.company_with(|c| c.time_zone = Some("America/Chicago".into()))
        .user_with("u1", Some(USER_PHONE), |u| {
            u.working_hours = Some(office_hours(None));
            u.ring_only_in_working_hours = true;
        })
        .user("u3", Some("+13125550177"), true)
        .contact("a", &[CALLER], Some("u1"))
        .contact("c1", &[CALLER], None)
        .contact("b", &[CALLER], Some("u3"));
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert!(explains(&d, "chose a"), "{:?}", d.explanation());
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert!(explains(&d, "chose b"), "{:?}", d.explanation());
    assert_eq!(d.target.as_ref().unwrap().user_id, Some(id("u3")));
}

// ---------------------------------------------------------------------------------------------
// Ring timeouts
// ---------------------------------------------------------------------------------------------

fn timeouts(d: &switchboard_routing::Decision) -> Vec<Option<u32>> {
    d.target
        .iter()
        .chain(&d.fallbacks)
        .map(|t| t.ring_timeout_secs)
        .collect()
}

/// Issue 15: "Every leg carries its ring timeout": the number's `ring_timeout_secs` ("null
/// means the company default"), else the company's "(integer, default 20)".
#[test]
fn every_leg_carries_its_ring_timeout() {
    let mut f = chicago();
    f.company_with(|c| c.company_phone = Some(COMPANY.into()));
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(timeouts(&d), vec![Some(20); 4], "the default");

    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        c.ring_timeout_secs = Some(15);
    });
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(timeouts(&d), vec![Some(15); 4], "the company's");

    f.number_with(|n| {
        n.forwarding_number = Some(FORWARDING.into());
        n.user_id = Some(id("u2"));
        n.ring_timeout_secs = Some(18);
    });
    let d = f.decide(&call_at(CALLER, MON_1005_CHICAGO));
    assert_eq!(timeouts(&d), vec![Some(18); 4], "the number's");
}

/// Issue 15: "Every leg carries its ring timeout", the after-hours forward's too.
#[test]
fn the_after_hours_forward_carries_its_ring_timeout() {
    let mut f = chicago();
    f.company_with(|c| {
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = Some(office_hours(None));
        c.after_hours = forward(AFTER_HOURS);
        c.ring_timeout_secs = Some(17);
    });
    let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
    assert_eq!(timeouts(&d), vec![Some(17)]);
    // The route event carries it.
    let route = d.into_route(&call_at(CALLER, MON_1805_CHICAGO), 1, MON_1805_CHICAGO);
    let json = serde_json::to_value(&route).unwrap();
    assert_eq!(json["target"]["ring_timeout_secs"], 17);
    assert_eq!(json["rule"], "after_hours");
}
