//! Settings as the router saw them: [`SettingsLog`], the latest applied event of every entity
//! with the stream sequence and time it was stored at — what explain shows as "the settings in
//! force" and what lint inspects. SETTINGS messages are decoded by the router's own decoder
//! ([`switchboard_projections::Record::decode`]: what it could not apply changes nothing) and
//! applied under the same version guard ([`SettingsChange::supersedes`]).

use std::collections::BTreeMap;
use switchboard_contracts::schedule::DAY_KEYS;
use switchboard_contracts::{
    AfterHoursKind, BlockedAction, CompanySettings, ContactSettings, E164, EntityId,
    NumberSettings, Prefer, Region, RingMode, Schedule, SettingsChange, TenantId, UserSettings,
};
use time::OffsetDateTime;

/// An entity's latest event, with where and when it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// Its SETTINGS sequence.
    pub seq: u64,
    /// When SETTINGS stored it.
    pub time: OffsetDateTime,
    /// The event data.
    pub data: T,
}

/// One tenant's settings, latest applied event per entity.
#[derive(Debug, Clone, Default)]
pub struct TenantSettings {
    /// Company data.
    pub company: Option<Versioned<CompanySettings>>,
    /// The tenant's numbers.
    pub numbers: BTreeMap<E164, Versioned<NumberSettings>>,
    /// Users.
    pub users: BTreeMap<EntityId, Versioned<UserSettings>>,
    /// Contacts (leads), deleted ones included.
    pub contacts: BTreeMap<EntityId, Versioned<ContactSettings>>,
    /// Numbers that are released now → when they were released (the first event of the
    /// current release).
    pub released_at: BTreeMap<E164, OffsetDateTime>,
}

impl TenantSettings {
    /// The region national numbers are read in.
    pub fn region(&self) -> Region {
        self.company
            .as_ref()
            .and_then(|c| c.data.default_region.as_deref())
            .and_then(Region::parse)
            .unwrap_or_default()
    }
}

/// Every tenant's settings, as of the last event applied.
#[derive(Debug, Clone, Default)]
pub struct SettingsLog {
    /// By tenant.
    pub tenants: BTreeMap<TenantId, TenantSettings>,
}

/// Stores `data` of `change` under the version guard: only a change that supersedes what is
/// there replaces it. Returns whether it did.
fn guarded<K: Ord, T>(
    map: &mut BTreeMap<K, Versioned<T>>,
    key: K,
    change: &SettingsChange,
    version: impl Fn(&T) -> u64,
    new: Versioned<T>,
) -> bool {
    if change.supersedes(map.get(&key).map(|current| version(&current.data))) {
        map.insert(key, new);
        true
    } else {
        false
    }
}

impl SettingsLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `change`, stored at `seq` and `time`, under the per-entity version guard.
    pub fn apply(&mut self, seq: u64, time: OffsetDateTime, change: &SettingsChange) {
        let tenant = self.tenants.entry(change.tenant_id().clone()).or_default();
        match change {
            SettingsChange::Company(c) => {
                if change.supersedes(tenant.company.as_ref().map(|current| current.data.version)) {
                    tenant.company = Some(Versioned {
                        seq,
                        time,
                        data: c.clone(),
                    });
                }
            }
            SettingsChange::Number(n) => {
                let was_released = tenant
                    .numbers
                    .get(&n.number)
                    .is_some_and(|v| v.data.released);
                let new = Versioned {
                    seq,
                    time,
                    data: n.clone(),
                };
                if guarded(
                    &mut tenant.numbers,
                    n.number.clone(),
                    change,
                    |d| d.version,
                    new,
                ) {
                    if !n.released {
                        tenant.released_at.remove(&n.number);
                    } else if !was_released {
                        tenant.released_at.insert(n.number.clone(), time);
                    }
                }
            }
            SettingsChange::User(u) => {
                let new = Versioned {
                    seq,
                    time,
                    data: u.clone(),
                };
                guarded(
                    &mut tenant.users,
                    u.user_id.clone(),
                    change,
                    |d| d.version,
                    new,
                );
            }
            SettingsChange::Contact(c) => {
                let new = Versioned {
                    seq,
                    time,
                    data: c.clone(),
                };
                guarded(
                    &mut tenant.contacts,
                    c.contact_id.clone(),
                    change,
                    |d| d.version,
                    new,
                );
            }
        }
    }

    /// One tenant's settings.
    pub fn tenant(&self, tenant: &TenantId) -> Option<&TenantSettings> {
        self.tenants.get(tenant)
    }
}

/// Masks a phone number as entered in settings (it may not be E.164).
pub(crate) fn masked_raw(raw: &str) -> String {
    switchboard_contracts::phone::mask(raw)
}

/// A one-line summary of an entity's settings, numbers masked; the routing-policy fields
/// only when set.
pub fn summary(change: &SettingsChange) -> String {
    let phone = |p: &Option<String>| p.as_deref().map_or("none".to_string(), masked_raw);
    let ring = |secs: Option<u32>| secs.map_or(String::new(), |s| format!(", rings {s} s"));
    match change {
        SettingsChange::Company(c) => format!(
            "company phone {}, region {}, final action {}{}{}{}{}{}",
            phone(&c.company_phone),
            c.default_region.as_deref().unwrap_or("US (default)"),
            c.final_action
                .as_ref()
                .map_or("voicemail (default)", |a| a.kind.as_str()),
            c.time_zone
                .as_ref()
                .map_or(String::new(), |z| format!(", time zone {z}")),
            c.business_hours
                .as_ref()
                .map_or(String::new(), |h| format!(", business hours {}", hours(h))),
            c.after_hours
                .as_ref()
                .map_or(String::new(), |a| match a.kind {
                    AfterHoursKind::FinalAction => ", after hours the final action".to_string(),
                    AfterHoursKind::Forward => {
                        format!(", after hours forward to {}", phone(&a.number))
                    }
                }),
            ring(c.ring_timeout_secs),
            callers(c),
        ),
        SettingsChange::Number(n) => format!(
            "number {}: forwarding number {}{}{}{}{}",
            n.number,
            phone(&n.forwarding_number),
            if n.released { ", released" } else { "" },
            n.user_id.as_ref().map_or(String::new(), |u| format!(
                ", direct line of {u}{}",
                if n.prefer == Prefer::NumberOwner {
                    " (preferred over the lead's user)"
                } else {
                    ""
                }
            )),
            ring(n.ring_timeout_secs),
            n.ring_group.as_ref().map_or(String::new(), |g| format!(
                ", ring group {} ({}{})",
                g.user_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                match g.mode {
                    RingMode::Simultaneous => "all at once",
                    RingMode::Sequential => "one after another",
                },
                ring(g.ring_timeout_secs)
            )),
        ),
        SettingsChange::User(u) => format!(
            "user {}: phone {}, {}{}{}",
            u.user_id,
            phone(&u.phone),
            if u.active { "active" } else { "deactivated" },
            if u.available { "" } else { ", unavailable" },
            u.working_hours.as_ref().map_or(String::new(), |h| format!(
                ", working hours {}{}",
                hours(h),
                if u.ring_only_in_working_hours {
                    " (rings only then)"
                } else {
                    ""
                }
            )),
        ),
        SettingsChange::Contact(c) => format!(
            "contact {}: phones [{}], assigned to {}{}",
            c.contact_id,
            c.phones
                .iter()
                .map(|p| masked_raw(p))
                .collect::<Vec<_>>()
                .join(", "),
            c.assigned_user_id
                .as_ref()
                .map_or("nobody".to_string(), ToString::to_string),
            if c.deleted { ", deleted" } else { "" }
        ),
    }
}

/// The company's caller policies (issue 17), each only when set: blocked callers, anonymous
/// callers, returning callers, screening.
fn callers(c: &CompanySettings) -> String {
    let mut out = String::new();
    if !c.blocked_callers.is_empty() || c.blocked_action.is_some() {
        out.push_str(&format!(
            ", {} blocked caller entr{}, blocked action {}",
            c.blocked_callers.len(),
            if c.blocked_callers.len() == 1 {
                "y"
            } else {
                "ies"
            },
            c.blocked_action
                .map_or("reject (default)", BlockedAction::as_str)
        ));
    }
    if let Some(anonymous) = c.anonymous_callers {
        out.push_str(&format!(", anonymous callers {}", anonymous.as_str()));
    }
    if c.returning_caller_days > 0 {
        out.push_str(&format!(
            ", returning callers to their last answerer for {} day(s)",
            c.returning_caller_days
        ));
    }
    if let Some(screening) = c.screening {
        out.push_str(&format!(", screening {}", screening.as_str()));
    }
    out
}

/// A schedule in one line: `mon 09:00–17:00; fri 09:00–12:00, 13:00–17:00 (Europe/Berlin;
/// 2 overrides)`.
fn hours(schedule: &Schedule) -> String {
    let days: Vec<String> = DAY_KEYS
        .iter()
        .zip(schedule.weekly.days())
        .filter(|(_, intervals)| !intervals.is_empty())
        .map(|(key, intervals)| {
            let spans: Vec<String> = intervals.iter().map(|[a, b]| format!("{a}–{b}")).collect();
            format!("{key} {}", spans.join(", "))
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(zone) = &schedule.time_zone {
        notes.push(zone.clone());
    }
    if !schedule.overrides.is_empty() {
        notes.push(format!("{} override(s)", schedule.overrides.len()));
    }
    format!(
        "{}{}",
        if days.is_empty() {
            "closed every day".to_string()
        } else {
            days.join("; ")
        },
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        }
    )
}

/// One entity's settings as the router holds them: what its SETTINGS history (read by direct
/// gets on its subject, no scan) leaves in force under the router's decoder and version guard,
/// and where its last event, applied or not, is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityInForce {
    /// The sequence of the last event stored on the entity's subject (refused ones included):
    /// a writer that must not race another states it as the expected last sequence.
    pub last_seq: Option<u64>,
    /// The applied event with the highest version, and its sequence; `None` when no event of
    /// the entity could be applied.
    pub applied: Option<(u64, SettingsChange)>,
}

impl EntityInForce {
    /// Why `change` cannot be published over this entity, if it cannot: a version not newer
    /// than the one in force (unless `change` is exactly that event: a re-run, `Ok(true)`).
    /// `Ok(false)`: publish it.
    pub fn check(&self, change: &SettingsChange) -> Result<bool, String> {
        match &self.applied {
            Some((seq, current)) if current.version() >= change.version() => {
                if current == change {
                    Ok(true)
                } else {
                    Err(format!(
                        "stale: version {} is not newer than the version in force {} (SETTINGS #{seq}); use version {} or higher",
                        change.version(),
                        current.version(),
                        current.version() + 1
                    ))
                }
            }
            _ => Ok(false),
        }
    }
}

/// The settings in force of the entity on SETTINGS `subject`.
pub async fn entity_in_force(
    js: &async_nats::jetstream::Context,
    subject: &str,
) -> Result<EntityInForce, crate::AuditError> {
    let history = crate::index::entity_history(js, subject, u64::MAX).await?;
    let mut in_force = EntityInForce {
        last_seq: history.last().map(|m| m.seq),
        applied: None,
    };
    for m in history {
        let record = switchboard_projections::Record::decode(m.seq, &m.subject, &m.payload);
        if let Some(change) = record.change
            && change.supersedes(in_force.applied.as_ref().map(|(_, c)| c.version()))
        {
            in_force.applied = Some((m.seq, change));
        }
    }
    Ok(in_force)
}

/// When a publish of `change` was answered "duplicate" (its event id was already stored, at
/// `seq`): `Ok(())` if what is stored there is `change` itself (a retry), else why the
/// version is spent — the same id was used by another body (an event that was refused, whose
/// version cannot be used again while JetStream remembers its id).
pub async fn duplicate_is_same(
    js: &async_nats::jetstream::Context,
    seq: u64,
    change: &SettingsChange,
) -> Result<Result<(), String>, crate::AuditError> {
    let settings = js
        .get_stream_no_info(switchboard_bus::SETTINGS)
        .await
        .map_err(crate::AuditError::nats("open the SETTINGS stream"))?;
    let stored = settings
        .direct_get(seq)
        .await
        .map_err(crate::AuditError::nats(format!("read SETTINGS #{seq}")))?;
    let same = SettingsChange::decode(&stored.payload, &stored.subject).is_ok_and(|s| s == *change);
    Ok(if same {
        Ok(())
    } else {
        Err(format!(
            "version {} is spent: its event id was used at SETTINGS #{seq} by another body (refused: see its settings.rejected); use version {} or higher",
            change.version(),
            change.version() + 1
        ))
    })
}
