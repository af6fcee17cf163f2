//! A synthetic tenant: numbers, users, contacts with phones, and calls from them.

use switchboard_contracts::schedule::Schedule;
use switchboard_contracts::{
    CallInbound, CompanySettings, ContactSettings, E164, EntityId, NumberSettings, SettingsChange,
    TenantId, UserSettings,
};
use time::OffsetDateTime;

pub const DIALED: &str = "+16502530000";

pub fn tenant() -> TenantId {
    TenantId::new("bench").expect("valid tenant")
}

fn id(prefix: &str, i: u64) -> EntityId {
    EntityId::parse("id", format!("{prefix}{i}")).expect("valid id")
}

/// A valid US number, distinct for each `i` below 8 000 000.
pub fn phone(i: u64) -> String {
    format!("+1415{:07}", 2_000_000 + i)
}

/// Open around the clock, every day: a schedule that is always checked and never closes, so
/// the routing policy v2 (business hours, working hours) costs what it costs on every call
/// while every rule still decides as without it.
fn all_week() -> Schedule {
    serde_json::from_value(serde_json::json!({
        "weekly": {
            "mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]],
            "wed": [["00:00", "24:00"]], "thu": [["00:00", "24:00"]],
            "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
            "sun": [["00:00", "24:00"]]
        }
    }))
    .expect("valid schedule")
}

/// Entries of the bench tenant's block list: as many as a company may have, none of them a
/// prefix of a caller of the mix (premium-rate `+1900…` numbers), so every call pays for the
/// lookup and none is blocked.
pub const BLOCKED_CALLERS: u64 = switchboard_contracts::MAX_BLOCKED_CALLERS as u64;

/// Days returning callers are remembered in the bench tenant.
pub const RETURNING_CALLER_DAYS: u32 = 30;

/// Settings events for a tenant with `users` users and `contacts` contacts, contact `i`
/// having phone `phone(i)` and assigned to user `i % users`. The routing policy v2 is on:
/// business hours in `America/Chicago`, working hours on every user, who rings only in them,
/// returning callers for 30 days (every call without an eligible owner looks its caller up)
/// and a 10,000-entry block list (every call is checked against it).
pub fn tenant_settings(users: u64, contacts: u64) -> impl Iterator<Item = SettingsChange> {
    let t = tenant();
    let head = vec![
        SettingsChange::Company(CompanySettings {
            tenant_id: t.clone(),
            version: 1,
            company_phone: Some("+16172531234".into()),
            default_region: None,
            final_action: None,
            time_zone: Some("America/Chicago".into()),
            business_hours: Some(all_week()),
            after_hours: None,
            ring_timeout_secs: None,
            returning_caller_days: RETURNING_CALLER_DAYS,
            blocked_callers: (0..BLOCKED_CALLERS)
                .map(|i| format!("+1900{:07}", 2_000_000 + i))
                .collect(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
        }),
        SettingsChange::Number(NumberSettings {
            tenant_id: t.clone(),
            version: 1,
            number: E164::parse_strict(DIALED).expect("valid number"),
            forwarding_number: Some("+13127654321".into()),
            released: false,
            user_id: None,
            prefer: Default::default(),
            ring_timeout_secs: None,
            ring_group: None,
        }),
    ];
    let t_users = t.clone();
    let users_iter = (0..users).map(move |u| {
        SettingsChange::User(UserSettings {
            tenant_id: t_users.clone(),
            version: 1,
            user_id: id("u", u),
            phone: (u % 10 != 0).then(|| format!("+1206{:07}", 2_000_000 + u)),
            active: u % 20 != 0,
            available: true,
            working_hours: Some(all_week()),
            ring_only_in_working_hours: true,
        })
    });
    let contacts_iter = (0..contacts).map(move |c| {
        SettingsChange::Contact(ContactSettings {
            tenant_id: t.clone(),
            version: 1,
            contact_id: id("c", c),
            phones: vec![phone(c)],
            assigned_user_id: (c % 4 != 0).then(|| id("u", c % users.max(1))),
            deleted: false,
        })
    });
    head.into_iter().chain(users_iter).chain(contacts_iter)
}

/// The caller of call `i` in a tenant of `contacts` contacts: by `i % 10`, 0 is withheld
/// (`anonymous`), 1 an unknown number (valid, in no contact: `phone(contacts + i % 1000)`), and
/// 2–9 a known contact (`phone(i % contacts)`). So 80 % known, 10 % unknown, 10 % withheld,
/// in every run of ten consecutive calls.
pub fn caller(i: u64, contacts: u64) -> String {
    match i % 10 {
        0 => "anonymous".to_string(),
        1 => phone(contacts + i % 1000),
        _ => phone(i % contacts.max(1)),
    }
}

/// Call `i`, from [`caller`]`(i, contacts)` to [`DIALED`].
pub fn call(i: u64, contacts: u64) -> CallInbound {
    CallInbound {
        call_id: format!("CA{i:032x}"),
        tenant_id: tenant(),
        to: DIALED.into(),
        from: caller(i, contacts),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    }
}
