//! Backends, settings events and a canonical dump of a projection for comparisons.

use std::collections::BTreeSet;
use std::future::Future;
use switchboard_bus::{Published, Publisher, TraceContext};
use switchboard_contracts::{
    CallInbound, CompanySettings, ContactSettings, E164, EntityId, Envelope, NumberSettings,
    SettingsChange, TenantId, UserSettings,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{Decision, SettingPhone, SettingsView, decide};
use switchboard_testkit::Postgres;
use tempfile::TempDir;
use time::macros::datetime;

/// A database for one test; dropping it removes the file or the database.
pub enum Backend {
    Sqlite { _dir: TempDir, url: String },
    Postgres(Box<Postgres>),
}

impl Backend {
    /// A fresh SQLite file in a temp dir.
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("projection.db").display()
        );
        Backend::Sqlite { _dir: dir, url }
    }

    /// A fresh PostgreSQL database.
    pub fn postgres() -> Backend {
        Backend::Postgres(Box::new(Postgres::start().unwrap()))
    }

    pub fn url(&self) -> &str {
        match self {
            Backend::Sqlite { url, .. } => url,
            Backend::Postgres(pg) => pg.url(),
        }
    }
}

/// Runs the same test body against SQLite and PostgreSQL.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in [Backend::sqlite(), Backend::postgres()] {
        test(backend.url().to_owned()).await;
    }
}

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

pub fn record(seq: u64, change: SettingsChange) -> Record {
    Record {
        seq,
        change: Some(change),
    }
}

pub fn skipped(seq: u64) -> Record {
    Record { seq, change: None }
}

pub fn company(t: &str, version: u64, phone: Option<&str>, region: Option<&str>) -> SettingsChange {
    SettingsChange::Company(CompanySettings {
        tenant_id: tenant(t),
        version,
        company_phone: phone.map(Into::into),
        default_region: region.map(Into::into),
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
    })
}

pub fn number(t: &str, number: &str, version: u64, forwarding: Option<&str>) -> SettingsChange {
    SettingsChange::Number(NumberSettings {
        tenant_id: tenant(t),
        version,
        number: E164::parse_strict(number).unwrap(),
        forwarding_number: forwarding.map(Into::into),
        released: false,
        user_id: None,
        prefer: Default::default(),
        ring_timeout_secs: None,
        ring_group: None,
    })
}

pub fn user(t: &str, user_id: &str, version: u64, phone: Option<&str>) -> SettingsChange {
    SettingsChange::User(UserSettings {
        tenant_id: tenant(t),
        version,
        user_id: id(user_id),
        phone: phone.map(Into::into),
        active: true,
        available: true,
        working_hours: None,
        ring_only_in_working_hours: false,
    })
}

pub fn contact(
    t: &str,
    contact_id: &str,
    version: u64,
    phones: &[&str],
    assigned: Option<&str>,
) -> SettingsChange {
    SettingsChange::Contact(ContactSettings {
        tenant_id: tenant(t),
        version,
        contact_id: id(contact_id),
        phones: phones.iter().map(|p| p.to_string()).collect(),
        assigned_user_id: assigned.map(id),
        deleted: false,
    })
}

/// Publishes a settings change as its contract event and waits for the ack.
pub async fn publish(publisher: &Publisher, change: &SettingsChange) -> Published {
    let at = datetime!(2026-11-22 09:00 UTC);
    let trace = TraceContext::default();
    let source = "/switchboard/test";
    let published = match change {
        SettingsChange::Company(c) => {
            publisher
                .publish(&Envelope::new(c.clone(), source, at), &trace)
                .await
        }
        SettingsChange::Number(n) => {
            publisher
                .publish(&Envelope::new(n.clone(), source, at), &trace)
                .await
        }
        SettingsChange::User(u) => {
            publisher
                .publish(&Envelope::new(u.clone(), source, at), &trace)
                .await
        }
        SettingsChange::Contact(c) => {
            publisher
                .publish(&Envelope::new(c.clone(), source, at), &trace)
                .await
        }
    };
    published.unwrap()
}

/// An inbound call to `to` from `from` for tenant `t`.
pub fn call(t: &str, to: &str, from: &str) -> CallInbound {
    CallInbound {
        call_id: "CA1".into(),
        tenant_id: tenant(t),
        to: to.into(),
        from: from.into(),
        received_at: datetime!(2026-11-22 09:00 UTC),
        contact_id: None,
    }
}

/// The decision for `call` from the projection (no route when the tenant has no settings).
pub fn decide_in(projection: &Projection, call: &CallInbound) -> Option<Decision> {
    projection
        .tenant(&call.tenant_id)
        .map(|state| decide(call, state))
}

fn phone(p: Option<&SettingPhone>) -> String {
    match p {
        None => "-".into(),
        Some(SettingPhone::Valid(n)) => n.as_str().into(),
        Some(SettingPhone::Invalid(e)) => format!("invalid ({e})"),
    }
}

/// A canonical, complete text dump of every entity the `changes` mention, as the projection
/// holds it: versions, views and the caller index.
pub fn dump(projection: &Projection, changes: &[SettingsChange]) -> String {
    let tenants: BTreeSet<&TenantId> = changes.iter().map(|c| c.tenant_id()).collect();
    let mut out = String::new();
    for t in tenants {
        let Some(state) = projection.tenant(t) else {
            out += &format!("{t}: none\n");
            continue;
        };
        let region = state.region();
        out += &format!(
            "{t}: region {region:?} company {:?} phone {} final {:?}\n",
            state.version_of("company", "main"),
            phone(state.company_phone()),
            state.final_action()
        );
        let mine = changes.iter().filter(|c| c.tenant_id() == t);
        let mut phones = BTreeSet::new();
        for (entity, key) in mine.clone().map(|c| c.key()).collect::<BTreeSet<_>>() {
            let version = state.version_of(entity, &key);
            let view = match entity {
                "number" => {
                    let n = E164::parse_strict(&format!("+{key}")).unwrap();
                    state.number(&n).map(|v| {
                        format!("fwd {} released {}", phone(v.forwarding_number), v.released)
                    })
                }
                "user" => state
                    .user(&id(&key))
                    .map(|v| format!("phone {} active {}", phone(v.phone), v.active)),
                "contact" => state
                    .contact(&id(&key))
                    .map(|v| format!("assigned {:?} deleted {}", v.assigned_user_id, v.deleted)),
                _ => Some(String::new()),
            };
            out += &format!("  {entity}/{key} v{version:?}: {view:?}\n");
        }
        for c in mine {
            if let SettingsChange::Contact(c) = c {
                phones.extend(c.phones.iter().filter_map(|p| E164::parse(p, region).ok()));
            }
        }
        for p in phones {
            out += &format!("  {} -> {:?}\n", p.as_str(), state.contacts_with_phone(&p));
        }
    }
    out
}
