//! Invariants over generated tenants and calls: never the dialed number, always a target or a
//! final action, closed → never a user, same inputs → same decision, and any order of the same
//! settings events gives the same decisions.

use crate::fixture::{DIALED, always, id, office_hours, schedule, tenant};
use proptest::prelude::*;
use switchboard_contracts::schedule::{Schedule, timestamp};
use switchboard_contracts::{
    AfterHours, AfterHoursKind, CallInbound, CompanySettings, ContactSettings, E164, EventData,
    NumberSettings, Prefer, Reason, Region, Rule, SettingsChange, UserSettings,
};
use switchboard_routing::{SettingsView, TenantState, decide};
use time::OffsetDateTime;
use time::macros::datetime;

/// A small pool so that collisions (loops, repeats, several leads) happen often.
const NUMBERS: [&str; 6] = [
    DIALED,
    "+14158675310",
    "+12064561234",
    "+13127654321",
    "(617) 253-1234",
    "not a number",
];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
const CONTACTS: [&str; 4] = ["c1", "c2", "c3", "c4"];

fn number() -> impl Strategy<Value = String> {
    prop::sample::select(&NUMBERS[..]).prop_map(String::from)
}

/// Valid numbers only (an after-hours forward to an invalid one is refused), the dialed one
/// among them.
fn valid_number() -> impl Strategy<Value = String> {
    prop::sample::select(&NUMBERS[..5]).prop_map(String::from)
}

fn zone() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(vec!["America/Chicago", "Pacific/Auckland", "Europe/Berlin"])
            .prop_map(String::from),
    )
}

/// Schedules: office hours (in the company's zone or their own), always, never, a DST night.
fn hours() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        Just(office_hours(None)),
        Just(office_hours(Some("Pacific/Auckland"))),
        Just(always(None)),
        Just(schedule(None, &[], &[])),
        Just(schedule(
            Some("America/Chicago"),
            &[("sun", &[("01:00", "03:00")])],
            &[("2026-11-26", &[])],
        )),
    ]
}

fn after_hours() -> impl Strategy<Value = Option<AfterHours>> {
    prop::option::of(prop_oneof![
        Just(AfterHours::default()),
        valid_number().prop_map(|n| AfterHours {
            kind: AfterHoursKind::Forward,
            number: Some(n),
        }),
    ])
}

fn ring_timeout() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop::sample::select(vec![5u32, 15, 20, 600]))
}

fn setting(version: u64) -> impl Strategy<Value = SettingsChange> {
    prop_oneof![
        (
            prop::option::of(number()),
            zone(),
            prop::option::of(hours()),
            after_hours(),
            ring_timeout()
        )
            .prop_map(
                move |(phone, time_zone, business_hours, after_hours, ring_timeout_secs)| {
                    SettingsChange::Company(CompanySettings {
                        tenant_id: tenant(),
                        version,
                        company_phone: phone,
                        default_region: None,
                        final_action: None,
                        time_zone,
                        business_hours,
                        after_hours,
                        ring_timeout_secs,
                    })
                }
            ),
        (
            prop::option::of(number()),
            any::<bool>(),
            prop::option::of(prop::sample::select(&USERS[..])),
            prop::sample::select(vec![Prefer::ContactOwner, Prefer::NumberOwner]),
            ring_timeout()
        )
            .prop_map(move |(fwd, released, owner, prefer, ring_timeout_secs)| {
                SettingsChange::Number(NumberSettings {
                    tenant_id: tenant(),
                    version,
                    number: E164::parse_strict(DIALED).unwrap(),
                    forwarding_number: fwd,
                    released,
                    user_id: owner.map(id),
                    prefer,
                    ring_timeout_secs,
                })
            }),
        (
            prop::sample::select(&USERS[..]),
            prop::option::of(number()),
            any::<bool>(),
            prop::bool::weighted(0.8),
            prop::option::of(hours()),
            any::<bool>()
        )
            .prop_map(
                move |(u, phone, active, available, working_hours, ring_only)| {
                    SettingsChange::User(UserSettings {
                        tenant_id: tenant(),
                        version,
                        user_id: id(u),
                        phone,
                        active,
                        available,
                        working_hours,
                        ring_only_in_working_hours: ring_only,
                    })
                }
            ),
        (
            prop::sample::select(&CONTACTS[..]),
            prop::collection::vec(number(), 0..3),
            prop::option::of(prop::sample::select(&USERS[..])),
            any::<bool>()
        )
            .prop_map(move |(c, phones, assigned, deleted)| {
                SettingsChange::Contact(ContactSettings {
                    tenant_id: tenant(),
                    version,
                    contact_id: id(c),
                    phones,
                    assigned_user_id: assigned.map(id),
                    deleted,
                })
            }),
    ]
}

/// Settings events with distinct versions (a producer's monotonic counter).
fn settings() -> impl Strategy<Value = Vec<SettingsChange>> {
    prop::collection::vec(0u64..1, 0..24).prop_flat_map(|slots| {
        slots
            .iter()
            .enumerate()
            .map(|(i, _)| setting(i as u64 + 1))
            .collect::<Vec<_>>()
    })
}

/// Any instant of 2026 to the second, or one around a DST change of the zones above.
fn received_at() -> impl Strategy<Value = OffsetDateTime> {
    let start = datetime!(2026-01-01 00:00 UTC).unix_timestamp();
    let edges = [
        datetime!(2026-03-08 08:00 UTC),
        datetime!(2026-11-01 07:00 UTC),
        datetime!(2026-04-04 14:00 UTC),
        datetime!(2026-03-29 01:00 UTC),
    ];
    prop_oneof![
        (0i64..365 * 86_400)
            .prop_map(move |s| { OffsetDateTime::from_unix_timestamp(start + s).unwrap() }),
        (prop::sample::select(edges.to_vec()), -7200i64..7200)
            .prop_map(|(edge, s)| edge + time::Duration::seconds(s)),
    ]
}

fn call() -> impl Strategy<Value = CallInbound> {
    (
        prop::sample::select(vec!["+14158675310", "(206) 456-1234", "", "anonymous", "x"]),
        prop::option::of(prop::sample::select(&CONTACTS[..])),
        prop::sample::select(vec![DIALED, DIALED, "+16502530001", "bogus"]),
        received_at(),
    )
        .prop_map(|(from, contact, to, received_at)| CallInbound {
            call_id: "CA1".into(),
            tenant_id: tenant(),
            to: to.into(),
            from: from.into(),
            received_at,
            contact_id: contact.map(id),
        })
}

fn state_of(events: &[SettingsChange]) -> TenantState {
    let mut state = TenantState::new(tenant());
    for e in events {
        // Generated settings are valid ones, as the router's decoder would let through.
        match e {
            SettingsChange::Company(c) => c.validate().unwrap(),
            SettingsChange::Number(n) => n.validate().unwrap(),
            SettingsChange::User(u) => u.validate().unwrap(),
            SettingsChange::Contact(c) => c.validate().unwrap(),
        }
        state.apply(e).unwrap();
    }
    state
}

/// Where a rule sits in the chain: the two user steps swap with `prefer`, the rest is fixed.
fn rank(rule: Rule) -> u8 {
    match rule {
        Rule::AssignedUser | Rule::DirectLine => 0,
        Rule::ForwardingNumber => 1,
        Rule::CompanyPhone => 2,
        Rule::AfterHours => 3,
        Rule::NoRoute => 4,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_rings_the_dialed_number(events in settings(), call in call()) {
        let d = decide(&call, &state_of(&events));
        let dialed = E164::parse(&call.to, Region::DEFAULT).ok();
        for t in d.target.iter().chain(&d.fallbacks) {
            prop_assert_ne!(Some(&t.number), dialed.as_ref());
        }
    }

    #[test]
    fn always_a_target_or_a_final_action(events in settings(), call in call()) {
        let d = decide(&call, &state_of(&events));
        match &d.target {
            None => {
                // Nothing rings: no route, or a closed company playing its final action.
                prop_assert!(matches!(d.rule, Rule::NoRoute | Rule::AfterHours), "{:?}", d.rule);
                prop_assert!(d.fallbacks.is_empty());
            }
            Some(t) => prop_assert_eq!(d.rule, t.rule),
        }
        prop_assert!(!d.final_action.message.is_empty());
        prop_assert!(!d.explanation().is_empty());
        // Distinct targets, in rule order, each with its ring timeout.
        let chain: Vec<_> = d.target.iter().chain(&d.fallbacks).collect();
        for (i, a) in chain.iter().enumerate() {
            prop_assert!(a.ring_timeout_secs.is_some());
            for b in &chain[i + 1..] {
                prop_assert_ne!(&a.number, &b.number);
                prop_assert_ne!(a.rule, b.rule);
                prop_assert!(rank(a.rule) <= rank(b.rule));
            }
        }
    }

    /// Issue 15: "closed → never a user" ("Nothing else rings"): while the company's business
    /// hours are closed at the call's `received_at`, the decision is the after-hours forward
    /// alone, or nothing.
    #[test]
    fn closed_is_never_a_user(events in settings(), call in call()) {
        let state = state_of(&events);
        let company = state.company();
        let closed = company
            .business_hours
            .is_some_and(|h| !h.at(timestamp(call.received_at), company.time_zone).is_open());
        let d = decide(&call, &state);
        if closed {
            prop_assert!(d.fallbacks.is_empty(), "{:?}", d.explanation());
            for t in d.target.iter() {
                prop_assert_eq!(t.rule, Rule::AfterHours);
                prop_assert_eq!(t.user_id.as_ref(), None);
            }
            // After hours rules, unless the dialed number was not live (step 0 comes first).
            let live = d.reasons.iter().any(|r| matches!(r, Reason::NumberProvisioned { .. }));
            prop_assert_eq!(d.rule == Rule::AfterHours, live, "{:#?}", d.reasons);
        } else {
            prop_assert_ne!(d.rule, Rule::AfterHours);
        }
        // An empty week (and no override that day) is always closed: never a user.
        let never = events.iter().rev().find_map(|e| match e {
            SettingsChange::Company(c) => Some(c.business_hours == Some(schedule(None, &[], &[]))),
            _ => None,
        });
        if never == Some(true) {
            prop_assert!(d.target.iter().all(|t| t.user_id.is_none()));
        }
    }

    /// Issue 15: "a decision is a pure function of (settings, call)": the same settings and
    /// call give the same decision, whatever was decided before or in between (no clock, no
    /// hidden state).
    #[test]
    fn same_inputs_same_decision(events in settings(), call in call(), other in call()) {
        let state = state_of(&events);
        let a = decide(&call, &state);
        let _ = decide(&other, &state);
        let b = decide(&call, &state_of(&events));
        let c = decide(&call, &state);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, c);
    }

    /// Any permutation or duplication of the events converges to the in-order state.
    #[test]
    fn order_and_duplicates_do_not_matter(
        (events, shuffled) in settings().prop_flat_map(|e| {
            let mut doubled = e.clone();
            doubled.extend(e.iter().cloned());
            (Just(e), Just(doubled).prop_shuffle())
        }),
        call in call(),
    ) {
        let in_order = decide(&call, &state_of(&events));
        let any_order = decide(&call, &state_of(&shuffled));
        prop_assert_eq!(in_order, any_order);
    }
}
