//! The version guard and tenant isolation of the in-memory state.

use crate::fixture::*;
use switchboard_contracts::{SettingsChange, TenantId, UserSettings};
use switchboard_routing::{Applied, StateError, TenantState};

fn user(version: u64, phone: Option<&str>) -> SettingsChange {
    SettingsChange::User(UserSettings {
        tenant_id: tenant(),
        version,
        user_id: id("u1"),
        phone: phone.map(Into::into),
        active: true,
        available: true,
        working_hours: None,
        ring_only_in_working_hours: false,
    })
}

/// Contract v1: "an older or equal version never overwrites a newer one".
#[test]
fn older_or_equal_versions_change_nothing() {
    let mut s = TenantState::new(tenant());
    assert_eq!(s.apply(&user(5, Some(USER_PHONE))), Ok(Applied::Changed));
    assert_eq!(s.apply(&user(5, None)), Ok(Applied::Stale { current: 5 }));
    assert_eq!(s.apply(&user(3, None)), Ok(Applied::Stale { current: 5 }));
    assert_eq!(s.version_of("user", "u1"), Some(5));
    assert_eq!(s.apply(&user(6, None)), Ok(Applied::Changed));
    assert_eq!(s.version_of("user", "u1"), Some(6));
}

/// Tenants never see each other's data: another tenant's event is refused.
#[test]
fn another_tenants_event_is_refused() {
    let mut s = TenantState::new(TenantId::new("other").unwrap());
    assert!(matches!(
        s.apply(&user(1, Some(USER_PHONE))),
        Err(StateError::WrongTenant { .. })
    ));
    assert_eq!(s.version_of("user", "u1"), None);
}

/// Changing a contact's phones moves it in the caller index; deleting removes it.
#[test]
fn contact_updates_keep_the_caller_index_current() {
    use switchboard_contracts::{E164, Region};
    use switchboard_routing::SettingsView;
    let mut f = Fixture::new();
    f.contact("c1", &[CALLER], None);
    let caller = E164::parse(CALLER, Region::DEFAULT).unwrap();
    let other = E164::parse(USER_PHONE, Region::DEFAULT).unwrap();
    assert_eq!(f.state.contacts_with_phone(&caller), &[id("c1")]);
    f.contact("c1", &[USER_PHONE], None);
    assert!(f.state.contacts_with_phone(&caller).is_empty());
    assert_eq!(f.state.contacts_with_phone(&other), &[id("c1")]);
    f.contact_full("c1", &[USER_PHONE], None, true);
    assert!(f.state.contacts_with_phone(&other).is_empty());
    assert_eq!(
        f.state.contact_count(),
        1,
        "the tombstone keeps its version"
    );
    assert_eq!(f.state.version_of("number", &DIALED[1..]), Some(1));
}

/// The caller index agrees with a plain reading of the contacts (the live ones listing a
/// number, sorted by id) through thousands of updates: phones added, moved, shared by several
/// contacts, listed twice, removed, contacts deleted and brought back, while the index grows
/// and removes slots from the middle of its runs.
#[test]
fn the_caller_index_agrees_with_the_contacts_through_many_updates() {
    use std::collections::BTreeMap;
    use switchboard_contracts::E164;
    use switchboard_routing::SettingsView;

    const CONTACTS: u64 = 60;
    const NUMBERS: u64 = 40;
    let number = |n: u64| format!("+1415555{n:04}");
    let mut f = Fixture::new();
    // Contact → (phones, deleted): what the index must reflect.
    let mut model: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let check = |f: &Fixture, model: &BTreeMap<String, (Vec<String>, bool)>| {
        for n in 0..NUMBERS {
            let listed = number(n);
            let expected: Vec<_> = model
                .iter()
                .filter(|(_, (phones, deleted))| !deleted && phones.contains(&listed))
                .map(|(c, _)| id(c))
                .collect();
            let caller = E164::parse_strict(&listed).unwrap();
            assert_eq!(f.state.contacts_with_phone(&caller), expected, "{listed}");
        }
    };
    for round in 0..3_000 {
        let contact = format!("c{}", next(CONTACTS));
        // Mostly one phone, sometimes none or several (a repeat among them now and then).
        let count = [1, 1, 1, 0, 2, 3][next(6) as usize];
        let phones: Vec<String> = (0..count).map(|_| number(next(NUMBERS))).collect();
        let deleted = next(10) == 0;
        let refs: Vec<&str> = phones.iter().map(String::as_str).collect();
        f.contact_full(&contact, &refs, None, deleted);
        model.insert(
            contact,
            (if deleted { Vec::new() } else { phones }, deleted),
        );
        if round % 100 == 0 {
            check(&f, &model);
        }
    }
    check(&f, &model);
}

/// A view that records what a decision reads (as `explain` does) is asked for the caller's
/// contacts by the lead step alone: not by a decision that ends before it (a blocked caller,
/// a closed company), once by one that gets there; and it gets the in-memory state's decision.
#[test]
fn the_callers_contacts_are_read_by_the_lead_step_alone() {
    use std::cell::Cell;
    use switchboard_contracts::{E164, EntityId, FinalAction, Region};
    use switchboard_routing::{CompanyView, ContactView, NumberView, SettingPhone, SettingsView};
    use switchboard_routing::{UserView, decide};

    struct Counting<'a> {
        state: &'a TenantState,
        asked: Cell<usize>,
    }
    impl SettingsView for Counting<'_> {
        fn region(&self) -> Region {
            self.state.region()
        }
        fn company_phone(&self) -> Option<&SettingPhone> {
            self.state.company_phone()
        }
        fn final_action(&self) -> Option<&FinalAction> {
            self.state.final_action()
        }
        fn company(&self) -> CompanyView<'_> {
            self.state.company()
        }
        fn number(&self, number: &E164) -> Option<NumberView<'_>> {
            self.state.number(number)
        }
        fn user(&self, user_id: &EntityId) -> Option<UserView<'_>> {
            self.state.user(user_id)
        }
        fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>> {
            self.state.contact(contact_id)
        }
        fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
            self.asked.set(self.asked.get() + 1);
            self.state.contacts_with_phone(phone)
        }
        fn blocked(&self, caller: &E164) -> Option<&str> {
            self.state.blocked(caller)
        }
    }
    let asked = |f: &Fixture, from: &str| {
        let counting = Counting {
            state: &f.state,
            asked: Cell::new(0),
        };
        let call = call_from(from);
        let decision = decide(&call, &counting);
        assert_eq!(decision, decide(&call, &f.state), "the same decision");
        counting.asked.get()
    };
    let mut f = Fixture::new();
    f.company_with(|c| c.blocked_callers = vec![CALLER.into()])
        .user("u1", Some(USER_PHONE), true)
        .contact("c1", &[CALLER], Some("u1"))
        .contact("c2", &[FORWARDING], Some("u1"));
    assert_eq!(asked(&f, CALLER), 0, "blocked: no lead step");
    assert_eq!(asked(&f, FORWARDING), 1, "the lead step");
    f.company_with(|c| c.business_hours = Some(schedule(None, &[], &[])));
    assert_eq!(asked(&f, FORWARDING), 0, "closed: no lead step");
}
