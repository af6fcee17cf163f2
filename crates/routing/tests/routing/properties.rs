//! Invariants over generated tenants and calls: never the dialed number, always a target or a
//! final action, same inputs → same decision, and any order of the same settings events gives
//! the same decisions.

use crate::fixture::{DIALED, id, tenant};
use proptest::prelude::*;
use switchboard_contracts::{
    CallInbound, CompanySettings, ContactSettings, E164, NumberSettings, Region, Rule,
    SettingsChange, UserSettings,
};
use switchboard_routing::{TenantState, decide};
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

fn setting(version: u64) -> impl Strategy<Value = SettingsChange> {
    prop_oneof![
        prop::option::of(number()).prop_map(move |phone| SettingsChange::Company(
            CompanySettings {
                tenant_id: tenant(),
                version,
                company_phone: phone,
                default_region: None,
                final_action: None,
            }
        )),
        (prop::option::of(number()), any::<bool>()).prop_map(move |(fwd, released)| {
            SettingsChange::Number(NumberSettings {
                tenant_id: tenant(),
                version,
                number: E164::parse_strict(DIALED).unwrap(),
                forwarding_number: fwd,
                released,
            })
        }),
        (
            prop::sample::select(&USERS[..]),
            prop::option::of(number()),
            any::<bool>()
        )
            .prop_map(
                move |(u, phone, active)| SettingsChange::User(UserSettings {
                    tenant_id: tenant(),
                    version,
                    user_id: id(u),
                    phone,
                    active,
                })
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

fn call() -> impl Strategy<Value = CallInbound> {
    (
        prop::sample::select(vec!["+14158675310", "(206) 456-1234", "", "anonymous", "x"]),
        prop::option::of(prop::sample::select(&CONTACTS[..])),
        prop::sample::select(vec![DIALED, "+16502530001", "bogus"]),
    )
        .prop_map(|(from, contact, to)| CallInbound {
            call_id: "CA1".into(),
            tenant_id: tenant(),
            to: to.into(),
            from: from.into(),
            received_at: datetime!(2026-11-22 09:00 UTC),
            contact_id: contact.map(id),
        })
}

fn state_of(events: &[SettingsChange]) -> TenantState {
    let mut state = TenantState::new(tenant());
    for e in events {
        state.apply(e).unwrap();
    }
    state
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
                prop_assert_eq!(d.rule, Rule::NoRoute);
                prop_assert!(d.fallbacks.is_empty());
            }
            Some(t) => prop_assert_eq!(d.rule, t.rule),
        }
        prop_assert!(!d.final_action.message.is_empty());
        prop_assert!(!d.explanation.is_empty());
        // Distinct targets, in rule order.
        let chain: Vec<_> = d.target.iter().chain(&d.fallbacks).collect();
        for (i, a) in chain.iter().enumerate() {
            for b in &chain[i + 1..] {
                prop_assert_ne!(&a.number, &b.number);
                prop_assert!(a.rule < b.rule);
            }
        }
    }

    #[test]
    fn same_inputs_same_decision(events in settings(), call in call()) {
        let a = decide(&call, &state_of(&events));
        let b = decide(&call, &state_of(&events));
        prop_assert_eq!(a, b);
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
