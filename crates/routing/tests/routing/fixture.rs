//! A tenant built from settings events, as the router would see it.

use switchboard_contracts::schedule::{Schedule, ScheduleOverride, WeeklyHours};
use switchboard_contracts::{
    CallDial, CallInbound, CompanySettings, ContactSettings, DialEventKind, E164, EntityId,
    EventData, FinalAction, NumberSettings, Rule, SettingsChange, Target, TenantId, UserSettings,
};
use switchboard_routing::{CallerHistory, Decision, TenantState, decide, decide_with};
use time::OffsetDateTime;
use time::macros::datetime;

pub const DIALED: &str = "+16502530000";
pub const CALLER: &str = "+14158675310";
pub const USER_PHONE: &str = "+12064561234";
pub const FORWARDING: &str = "+13127654321";
pub const COMPANY: &str = "+16172531234";

pub fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

pub fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

pub struct Fixture {
    pub state: TenantState,
    version: u64,
}

impl Fixture {
    /// A tenant whose number `DIALED` is provisioned, with nothing else set up.
    pub fn new() -> Self {
        let mut f = Fixture {
            state: TenantState::new(tenant()),
            version: 0,
        };
        f.number(DIALED, None, false);
        f
    }

    fn next(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    pub fn apply(&mut self, change: SettingsChange) -> &mut Self {
        self.state.apply(&change).unwrap();
        self
    }

    /// The company as `f` sets it (over no phone, no region, no final action, no hours),
    /// validated as the router's decoder would.
    pub fn company_with(&mut self, f: impl FnOnce(&mut CompanySettings)) -> &mut Self {
        let mut c = CompanySettings {
            tenant_id: tenant(),
            version: self.next(),
            company_phone: None,
            default_region: None,
            final_action: None,
            time_zone: None,
            business_hours: None,
            after_hours: None,
            ring_timeout_secs: None,
            returning_caller_days: 0,
            blocked_callers: Vec::new(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
        };
        f(&mut c);
        c.validate().unwrap();
        self.apply(SettingsChange::Company(c))
    }

    /// The dialed number as `f` sets it (over: no forwarding number, not released, nobody's
    /// direct line), validated.
    pub fn number_with(&mut self, f: impl FnOnce(&mut NumberSettings)) -> &mut Self {
        let mut n = NumberSettings {
            tenant_id: tenant(),
            version: self.next(),
            number: switchboard_contracts::E164::parse_strict(DIALED).unwrap(),
            forwarding_number: None,
            released: false,
            user_id: None,
            prefer: Default::default(),
            ring_timeout_secs: None,
            ring_group: None,
        };
        f(&mut n);
        n.validate().unwrap();
        self.apply(SettingsChange::Number(n))
    }

    /// An active, available user with `phone`, as `f` further sets it, validated.
    pub fn user_with(
        &mut self,
        user_id: &str,
        phone: Option<&str>,
        f: impl FnOnce(&mut UserSettings),
    ) -> &mut Self {
        let mut u = UserSettings {
            tenant_id: tenant(),
            version: self.next(),
            user_id: id(user_id),
            phone: phone.map(Into::into),
            active: true,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        };
        f(&mut u);
        u.validate().unwrap();
        self.apply(SettingsChange::User(u))
    }

    pub fn company(&mut self, phone: Option<&str>) -> &mut Self {
        self.company_full(phone, None, None)
    }

    pub fn company_full(
        &mut self,
        phone: Option<&str>,
        region: Option<&str>,
        final_action: Option<FinalAction>,
    ) -> &mut Self {
        let version = self.next();
        self.apply(SettingsChange::Company(CompanySettings {
            tenant_id: tenant(),
            version,
            company_phone: phone.map(Into::into),
            default_region: region.map(Into::into),
            final_action,
            time_zone: None,
            business_hours: None,
            after_hours: None,
            ring_timeout_secs: None,
            returning_caller_days: 0,
            blocked_callers: Vec::new(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
        }))
    }

    pub fn number(&mut self, number: &str, forwarding: Option<&str>, released: bool) -> &mut Self {
        let version = self.next();
        self.apply(SettingsChange::Number(NumberSettings {
            tenant_id: tenant(),
            version,
            number: switchboard_contracts::E164::parse_strict(number).unwrap(),
            forwarding_number: forwarding.map(Into::into),
            released,
            user_id: None,
            prefer: Default::default(),
            ring_timeout_secs: None,
            ring_group: None,
        }))
    }

    pub fn forwarding(&mut self, forwarding: Option<&str>) -> &mut Self {
        self.number(DIALED, forwarding, false)
    }

    pub fn user(&mut self, user_id: &str, phone: Option<&str>, active: bool) -> &mut Self {
        let version = self.next();
        self.apply(SettingsChange::User(UserSettings {
            tenant_id: tenant(),
            version,
            user_id: id(user_id),
            phone: phone.map(Into::into),
            active,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        }))
    }

    pub fn contact(
        &mut self,
        contact_id: &str,
        phones: &[&str],
        assigned: Option<&str>,
    ) -> &mut Self {
        self.contact_full(contact_id, phones, assigned, false)
    }

    pub fn contact_full(
        &mut self,
        contact_id: &str,
        phones: &[&str],
        assigned: Option<&str>,
        deleted: bool,
    ) -> &mut Self {
        let version = self.next();
        self.apply(SettingsChange::Contact(ContactSettings {
            tenant_id: tenant(),
            version,
            contact_id: id(contact_id),
            phones: phones.iter().map(|p| p.to_string()).collect(),
            assigned_user_id: assigned.map(id),
            deleted,
        }))
    }

    pub fn decide(&self, call: &CallInbound) -> Decision {
        decide(call, &self.state)
    }

    /// The decision with a returning-caller `history`.
    pub fn decide_with(&self, call: &CallInbound, history: &impl CallerHistory) -> Decision {
        decide_with(call, &self.state, history)
    }
}

/// The dialer's `answered` event of a call from `caller` that user `user_id` (on `phone`)
/// took at `at`: what teaches returning callers.
pub fn answered(caller: &str, user_id: &str, phone: &str, at: OffsetDateTime) -> CallDial {
    CallDial {
        call_id: format!("CA-{user_id}-{}", at.unix_timestamp()),
        tenant_id: tenant(),
        step: 0,
        kind: DialEventKind::Answered,
        target: Some(Target::single(
            E164::parse_strict(phone).unwrap(),
            Some(id(user_id)),
            Rule::AssignedUser,
            Some(20),
        )),
        reason: None,
        carrier_sid: None,
        outcome_unknown: false,
        acted_by: None,
        caller: Some(E164::parse_strict(caller).unwrap()),
        at,
    }
}

pub fn call_from(from: &str) -> CallInbound {
    CallInbound {
        call_id: "CA0001".into(),
        tenant_id: tenant(),
        to: DIALED.into(),
        from: from.into(),
        received_at: datetime!(2026-11-22 09:00 UTC),
        contact_id: None,
    }
}

/// A call from `from` received at `at`.
pub fn call_at(from: &str, at: OffsetDateTime) -> CallInbound {
    CallInbound {
        received_at: at,
        ..call_from(from)
    }
}

/// Intervals as written: `&[("09:00", "17:00")]`.
pub type Day<'a> = &'a [(&'a str, &'a str)];

fn intervals(day: Day<'_>) -> Vec<[String; 2]> {
    day.iter()
        .map(|(a, b)| [a.to_string(), b.to_string()])
        .collect()
}

/// A schedule: `weekly` as `(day key, intervals)`, `overrides` as `(date, intervals)`.
pub fn schedule(
    time_zone: Option<&str>,
    weekly: &[(&str, Day<'_>)],
    overrides: &[(&str, Day<'_>)],
) -> Schedule {
    let mut week = WeeklyHours::default();
    for (key, day) in weekly {
        let slot = match *key {
            "mon" => &mut week.mon,
            "tue" => &mut week.tue,
            "wed" => &mut week.wed,
            "thu" => &mut week.thu,
            "fri" => &mut week.fri,
            "sat" => &mut week.sat,
            "sun" => &mut week.sun,
            other => panic!("day key {other}"),
        };
        *slot = intervals(day);
    }
    Schedule {
        time_zone: time_zone.map(Into::into),
        weekly: Box::new(week),
        overrides: overrides
            .iter()
            .map(|(date, day)| ScheduleOverride {
                date: date.to_string(),
                hours: intervals(day),
            })
            .collect(),
    }
}

/// Monday to Friday, 09:00–17:00, in `time_zone` (or the company's).
pub fn office_hours(time_zone: Option<&str>) -> Schedule {
    let day: Day<'_> = &[("09:00", "17:00")];
    schedule(
        time_zone,
        &[
            ("mon", day),
            ("tue", day),
            ("wed", day),
            ("thu", day),
            ("fri", day),
        ],
        &[],
    )
}

/// Every day, all day.
pub fn always(time_zone: Option<&str>) -> Schedule {
    let day: Day<'_> = &[("00:00", "24:00")];
    let week: Vec<(&str, Day<'_>)> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .into_iter()
        .map(|k| (k, day))
        .collect();
    schedule(time_zone, &week, &[])
}

/// `(number, rule)` of the target followed by the fallbacks.
pub fn chain(d: &Decision) -> Vec<(String, &'static str)> {
    d.target
        .iter()
        .chain(d.fallbacks.iter())
        .map(|t| (t.number.as_str().to_string(), t.rule.as_str()))
        .collect()
}

pub fn explains(d: &Decision, needle: &str) -> bool {
    d.explanation().iter().any(|line| line.contains(needle))
}
