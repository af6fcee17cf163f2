//! A tenant built from settings events, as the router would see it.

use switchboard_contracts::{
    CallInbound, CompanySettings, ContactSettings, EntityId, FinalAction, NumberSettings,
    SettingsChange, TenantId, UserSettings,
};
use switchboard_routing::{Decision, TenantState, decide};
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

/// `(number, rule)` of the target followed by the fallbacks.
pub fn chain(d: &Decision) -> Vec<(String, &'static str)> {
    d.target
        .iter()
        .chain(d.fallbacks.iter())
        .map(|t| (t.number.as_str().to_string(), t.rule.as_str()))
        .collect()
}

pub fn explains(d: &Decision, needle: &str) -> bool {
    d.explanation.iter().any(|line| line.contains(needle))
}
