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
