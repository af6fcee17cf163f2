//! The read-only view of one tenant's settings that a decision is made from.

use switchboard_contracts::{E164, EntityId, FinalAction, PhoneError, Region};

/// A phone number taken from settings, normalized once when the setting was applied, so a
/// decision never re-parses it and a bad one is explained rather than dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingPhone {
    /// A dialable E.164 number.
    Valid(E164),
    /// Not a usable number; the reason says why (the raw value is not kept in the message).
    Invalid(PhoneError),
}

impl SettingPhone {
    /// Normalizes a number as entered, reading national numbers in `region`.
    pub fn normalize(raw: &str, region: Region) -> SettingPhone {
        match E164::parse(raw, region) {
            Ok(n) => SettingPhone::Valid(n),
            Err(e) => SettingPhone::Invalid(e),
        }
    }
}

/// A provisioned number of the tenant.
#[derive(Debug, Clone, Copy)]
pub struct NumberView<'a> {
    /// Settings > Phone Numbers > Edit > forwarding number.
    pub forwarding_number: Option<&'a SettingPhone>,
    /// A released number no longer belongs to the tenant.
    pub released: bool,
}

/// A user of the tenant.
#[derive(Debug, Clone, Copy)]
pub struct UserView<'a> {
    /// The User Phone (Team Management).
    pub phone: Option<&'a SettingPhone>,
    /// Deactivated or deleted users are never routed to.
    pub active: bool,
}

/// A contact (lead) of the tenant.
#[derive(Debug, Clone, Copy)]
pub struct ContactView<'a> {
    /// The contact's id.
    pub contact_id: &'a EntityId,
    /// The user the lead is assigned to.
    pub assigned_user_id: Option<&'a EntityId>,
    /// Deleted contacts are never matched.
    pub deleted: bool,
}

/// One tenant's projected settings, as the routing rules read them. Implementations must make
/// every lookup constant-time: the router calls them on the hot path.
pub trait SettingsView {
    /// Region for reading numbers without a country code (tenant setting, default US).
    fn region(&self) -> Region;
    /// Business Info > Company Data > phone.
    fn company_phone(&self) -> Option<&SettingPhone>;
    /// The tenant's configured final action, if any.
    fn final_action(&self) -> Option<&FinalAction>;
    /// The settings of one of the tenant's numbers.
    fn number(&self, number: &E164) -> Option<NumberView<'_>>;
    /// A user by id.
    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>>;
    /// A contact by id.
    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>>;
    /// Ids of the contacts that list `phone` among their numbers, deleted ones included.
    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId];
}
