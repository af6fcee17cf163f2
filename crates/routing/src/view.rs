//! The read-only view of one tenant's settings that a decision is made from.

use jiff::tz::TimeZone;
use switchboard_contracts::{E164, EntityId, FinalAction, Hours, PhoneError, Prefer, Region};

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
    /// The user whose direct line this number is.
    pub user_id: Option<&'a EntityId>,
    /// Whom to try first when the lead's user and the number's owner differ.
    pub prefer: Prefer,
    /// Seconds each leg of this number's calls rings; `None` means the company's.
    pub ring_timeout_secs: Option<u32>,
}

/// A user of the tenant.
#[derive(Debug, Clone, Copy)]
pub struct UserView<'a> {
    /// The User Phone (Team Management).
    pub phone: Option<&'a SettingPhone>,
    /// Deactivated or deleted users are never routed to.
    pub active: bool,
    /// `false` is do-not-disturb: the user is skipped.
    pub available: bool,
    /// When the user works (compiled when the setting was applied); `None` means always.
    pub working_hours: Option<&'a Hours>,
    /// Ring the user only inside `working_hours`.
    pub ring_only_in_working_hours: bool,
}

/// The company's hours and ring timeout, with the defaults of contract v1 applied.
#[derive(Debug, Clone, Copy)]
pub struct CompanyView<'a> {
    /// The tenant's time zone (UTC when it names none): the zone of every schedule that names
    /// none.
    pub time_zone: &'a TimeZone,
    /// When the company is open (compiled when the setting was applied); `None` means always.
    pub business_hours: Option<&'a Hours>,
    /// The after-hours forward; `None` means the final action.
    pub after_hours: Option<&'a SettingPhone>,
    /// Seconds each leg rings, for numbers that set none.
    pub ring_timeout_secs: u32,
}

/// The time zone of a tenant that names none.
pub static UTC: TimeZone = TimeZone::UTC;

impl CompanyView<'static> {
    /// A tenant without company settings: UTC, always open, the final action after hours, and
    /// the default ring timeout.
    pub const DEFAULT: CompanyView<'static> = CompanyView {
        time_zone: &UTC,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: switchboard_contracts::DEFAULT_RING_TIMEOUT_SECS,
    };
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
    /// The company's time zone, business hours, after-hours action and ring timeout.
    fn company(&self) -> CompanyView<'_>;
    /// The settings of one of the tenant's numbers.
    fn number(&self, number: &E164) -> Option<NumberView<'_>>;
    /// A user by id.
    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>>;
    /// A contact by id.
    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>>;
    /// Ids of the contacts that list `phone` among their numbers, deleted ones included.
    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId];
}
