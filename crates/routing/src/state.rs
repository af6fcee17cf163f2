//! One tenant's settings in memory, kept current by applying settings-change events, with the
//! per-entity version guard: an event whose version is not newer than the one applied for its
//! entity changes nothing, so duplicates and out-of-order delivery never regress state.

use crate::view::{ContactView, NumberView, SettingPhone, SettingsView, UserView};
use std::collections::HashMap;
use switchboard_contracts::{E164, EntityId, FinalAction, Region, SettingsChange, TenantId};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was newer than the entity's state and replaced it.
    Changed,
    /// The entity already had this or a newer version; nothing changed.
    Stale {
        /// The version already applied.
        current: u64,
    },
}

/// An event that cannot be applied to this state at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The event belongs to another tenant: tenants never see each other's data.
    #[error("event for tenant {event} applied to the state of tenant {state}")]
    WrongTenant {
        /// The state's tenant.
        state: TenantId,
        /// The event's tenant.
        event: TenantId,
    },
}

#[derive(Debug, Clone)]
struct Company {
    version: u64,
    phone: Option<SettingPhone>,
    region: Region,
    final_action: Option<FinalAction>,
}

#[derive(Debug, Clone)]
struct Number {
    version: u64,
    forwarding_raw: Option<String>,
    forwarding: Option<SettingPhone>,
    released: bool,
}

#[derive(Debug, Clone)]
struct User {
    version: u64,
    phone_raw: Option<String>,
    phone: Option<SettingPhone>,
    active: bool,
}

#[derive(Debug, Clone)]
struct Contact {
    version: u64,
    id: EntityId,
    phones: Vec<String>,
    assigned_user_id: Option<EntityId>,
    deleted: bool,
}

/// The settings of one tenant, indexed for constant-time lookups by the routing rules.
#[derive(Debug, Clone)]
pub struct TenantState {
    tenant: TenantId,
    company: Option<Company>,
    numbers: HashMap<E164, Number>,
    users: HashMap<EntityId, User>,
    contacts: HashMap<EntityId, Contact>,
    /// Caller number → contacts listing it (sorted, no duplicates).
    by_phone: HashMap<E164, Vec<EntityId>>,
}

fn normalize(raw: &Option<String>, region: Region) -> Option<SettingPhone> {
    raw.as_deref().map(|r| SettingPhone::normalize(r, region))
}

fn guard(current: Option<u64>, new: u64) -> Option<Applied> {
    match current {
        Some(current) if current >= new => Some(Applied::Stale { current }),
        _ => None,
    }
}

impl TenantState {
    /// An empty state for `tenant`.
    pub fn new(tenant: TenantId) -> Self {
        TenantState {
            tenant,
            company: None,
            numbers: HashMap::new(),
            users: HashMap::new(),
            contacts: HashMap::new(),
            by_phone: HashMap::new(),
        }
    }

    /// The tenant this state belongs to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// How many contacts are held (deleted ones included, as tombstones).
    pub fn contact_count(&self) -> usize {
        self.contacts.len()
    }

    /// The version applied for an entity (`company`/`number`/`user`/`contact`, id as in the
    /// event's subject), if any.
    pub fn version_of(&self, entity: &str, id: &str) -> Option<u64> {
        use switchboard_contracts::entity;
        match entity {
            entity::COMPANY => self.company.as_ref().map(|c| c.version),
            entity::NUMBER => E164::parse_strict(&format!("+{id}"))
                .ok()
                .and_then(|n| self.numbers.get(&n))
                .map(|n| n.version),
            entity::USER => EntityId::parse("user_id", id)
                .ok()
                .and_then(|id| self.users.get(&id))
                .map(|u| u.version),
            entity::CONTACT => EntityId::parse("contact_id", id)
                .ok()
                .and_then(|id| self.contacts.get(&id))
                .map(|c| c.version),
            _ => None,
        }
    }

    /// Applies one settings change under the version guard.
    pub fn apply(&mut self, change: &SettingsChange) -> Result<Applied, StateError> {
        if change.tenant_id() != &self.tenant {
            return Err(StateError::WrongTenant {
                state: self.tenant.clone(),
                event: change.tenant_id().clone(),
            });
        }
        let region = self.region();
        Ok(match change {
            SettingsChange::Company(c) => {
                if let Some(stale) = guard(self.company.as_ref().map(|c| c.version), c.version) {
                    return Ok(stale);
                }
                let new_region = c
                    .default_region
                    .as_deref()
                    .and_then(Region::parse)
                    .unwrap_or_default();
                self.company = Some(Company {
                    version: c.version,
                    phone: normalize(&c.company_phone, new_region),
                    region: new_region,
                    final_action: c.final_action.clone(),
                });
                if new_region != region {
                    self.renormalize();
                }
                Applied::Changed
            }
            SettingsChange::Number(n) => {
                if let Some(stale) =
                    guard(self.numbers.get(&n.number).map(|n| n.version), n.version)
                {
                    return Ok(stale);
                }
                self.numbers.insert(
                    n.number.clone(),
                    Number {
                        version: n.version,
                        forwarding: normalize(&n.forwarding_number, region),
                        forwarding_raw: n.forwarding_number.clone(),
                        released: n.released,
                    },
                );
                Applied::Changed
            }
            SettingsChange::User(u) => {
                if let Some(stale) = guard(self.users.get(&u.user_id).map(|u| u.version), u.version)
                {
                    return Ok(stale);
                }
                self.users.insert(
                    u.user_id.clone(),
                    User {
                        version: u.version,
                        phone: normalize(&u.phone, region),
                        phone_raw: u.phone.clone(),
                        active: u.active,
                    },
                );
                Applied::Changed
            }
            SettingsChange::Contact(c) => {
                if let Some(stale) = guard(
                    self.contacts.get(&c.contact_id).map(|c| c.version),
                    c.version,
                ) {
                    return Ok(stale);
                }
                if let Some(old) = self.contacts.remove(&c.contact_id) {
                    self.unindex(&old, region);
                }
                let contact = Contact {
                    version: c.version,
                    id: c.contact_id.clone(),
                    phones: c.phones.clone(),
                    assigned_user_id: c.assigned_user_id.clone(),
                    deleted: c.deleted,
                };
                self.index(&contact, region);
                self.contacts.insert(c.contact_id.clone(), contact);
                Applied::Changed
            }
        })
    }

    fn contact_numbers(contact: &Contact, region: Region) -> impl Iterator<Item = E164> + '_ {
        contact
            .phones
            .iter()
            .filter_map(move |raw| E164::parse(raw, region).ok())
    }

    fn index(&mut self, contact: &Contact, region: Region) {
        if contact.deleted {
            return;
        }
        for number in Self::contact_numbers(contact, region) {
            let ids = self.by_phone.entry(number).or_default();
            if let Err(at) = ids.binary_search(&contact.id) {
                ids.insert(at, contact.id.clone());
            }
        }
    }

    fn unindex(&mut self, contact: &Contact, region: Region) {
        for number in Self::contact_numbers(contact, region) {
            if let Some(ids) = self.by_phone.get_mut(&number) {
                ids.retain(|id| id != &contact.id);
                if ids.is_empty() {
                    self.by_phone.remove(&number);
                }
            }
        }
    }

    /// The tenant's region changed: numbers entered without a country code mean something
    /// else now, so every stored number is normalized again.
    fn renormalize(&mut self) {
        let region = self.region();
        for number in self.numbers.values_mut() {
            number.forwarding = normalize(&number.forwarding_raw, region);
        }
        for user in self.users.values_mut() {
            user.phone = normalize(&user.phone_raw, region);
        }
        self.by_phone.clear();
        let contacts: Vec<Contact> = self.contacts.values().cloned().collect();
        for contact in &contacts {
            self.index(contact, region);
        }
    }
}

impl SettingsView for TenantState {
    fn region(&self) -> Region {
        self.company.as_ref().map(|c| c.region).unwrap_or_default()
    }

    fn company_phone(&self) -> Option<&SettingPhone> {
        self.company.as_ref().and_then(|c| c.phone.as_ref())
    }

    fn final_action(&self) -> Option<&FinalAction> {
        self.company.as_ref().and_then(|c| c.final_action.as_ref())
    }

    fn number(&self, number: &E164) -> Option<NumberView<'_>> {
        self.numbers.get(number).map(|n| NumberView {
            forwarding_number: n.forwarding.as_ref(),
            released: n.released,
        })
    }

    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>> {
        self.users.get(user_id).map(|u| UserView {
            phone: u.phone.as_ref(),
            active: u.active,
        })
    }

    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>> {
        self.contacts.get(contact_id).map(|c| ContactView {
            contact_id: &c.id,
            assigned_user_id: c.assigned_user_id.as_ref(),
            deleted: c.deleted,
        })
    }

    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
        self.by_phone.get(phone).map(Vec::as_slice).unwrap_or(&[])
    }
}
