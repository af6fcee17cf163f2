//! The read-only view of one tenant's settings that a decision is made from.

use jiff::tz::TimeZone;
use switchboard_contracts::{
    AnonymousCallers, BlockedAction, E164, EntityId, FinalAction, Hours, PhoneError, Prefer,
    Region, RingGroup, Screening,
};

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
    /// Users who ring after the lead's owner, the direct line and a returning caller's last
    /// answerer, before the forwarding number.
    pub ring_group: Option<&'a RingGroup>,
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
    /// Days a returning caller goes back to who answered them last; 0 is off.
    pub returning_caller_days: u32,
    /// What a blocked caller gets.
    pub blocked_action: BlockedAction,
    /// What a caller who withholds their number gets.
    pub anonymous_callers: AnonymousCallers,
    /// Whether legs outside the company are screened.
    pub screening: Screening,
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
        returning_caller_days: 0,
        blocked_action: BlockedAction::Reject,
        anonymous_callers: AnonymousCallers::Route,
        screening: Screening::Off,
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
    /// The company's `blocked_callers` entry that blocks `caller`, if one does.
    fn blocked(&self, caller: &E164) -> Option<&str>;
}

/// A company's `blocked_callers`, compiled once when the setting is applied: prefix-free (an
/// entry under a shorter entry blocks nothing more and is dropped, so at most one entry
/// matches a caller) and hashed, with the distinct entry lengths beside it: a caller is checked
/// with one hash probe per distinct length (one or two in practice — full numbers and a few
/// prefixes), nothing at all for an empty list. A binary search over the sorted entries cost
/// about 14 string comparisons per call at 10,000 entries, the largest single cost of a
/// decision in the routing-core benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockList {
    entries: std::collections::HashSet<Box<str>, crate::state::Hasher>,
    /// The entries' distinct lengths, shortest first.
    lengths: Vec<usize>,
}

impl Default for BlockList {
    fn default() -> Self {
        BlockList {
            entries: std::collections::HashSet::with_hasher(crate::state::hasher()),
            lengths: Vec::new(),
        }
    }
}

impl BlockList {
    /// Compiles the entries as written (validated events hold `+` and digits only).
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> BlockList {
        let mut sorted: Vec<&str> = entries.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut kept: Vec<&str> = Vec::with_capacity(sorted.len());
        for entry in sorted {
            // Sorted order puts a prefix right before the entries it covers.
            if kept.last().is_some_and(|p| entry.starts_with(p)) {
                continue;
            }
            kept.push(entry);
        }
        let mut lengths: Vec<usize> = kept.iter().map(|e| e.len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut entries =
            std::collections::HashSet::with_capacity_and_hasher(kept.len(), crate::state::hasher());
        entries.extend(kept.into_iter().map(Box::from));
        BlockList { entries, lengths }
    }

    /// How many entries are in force (after dropping covered ones).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that blocks `caller`, if one does.
    pub fn matching(&self, caller: &str) -> Option<&str> {
        self.lengths
            .iter()
            .take_while(|&&len| len <= caller.len())
            .find_map(|&len| caller.get(..len).and_then(|p| self.entries.get(p)))
            .map(|e| &**e)
    }
}

/// When a caller was last answered, and by whom (see [`crate::AnswerBook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAnswer {
    /// The user who answered.
    pub user_id: EntityId,
    /// When (the dialer's `answered` event's `at`), Unix seconds.
    pub answered_at: i64,
    /// The CALLS sequence of that event.
    pub seq: u64,
}

/// One tenant's "who answered whom": what returning callers read.
pub trait CallerHistory {
    /// The last answer of a call from `caller`, if any is known.
    fn last_answer(&self, caller: &E164) -> Option<&LastAnswer>;
}

/// No history: returning callers never match (tools deciding without CALLS).
pub struct NoHistory;

impl CallerHistory for NoHistory {
    fn last_answer(&self, _: &E164) -> Option<&LastAnswer> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::BlockList;

    fn entries(list: &BlockList) -> Vec<&str> {
        let mut entries: Vec<&str> = list.entries.iter().map(|e| &**e).collect();
        entries.sort_unstable();
        entries
    }

    /// An entry under a shorter one blocks nothing more: compiled away, as are repeats.
    #[test]
    fn compiling_drops_covered_and_repeated_entries() {
        let list = BlockList::new([
            "+14158675310",
            "+1900",
            "+1415",
            "+19005550100",
            "+1415",
            "+44",
            "+1415867",
        ]);
        assert_eq!(entries(&list), vec!["+1415", "+1900", "+44"]);
        assert_eq!(list.len(), 3);
        // A longer entry first, its prefix later: the order written does not matter.
        let list = BlockList::new(["+14158675310", "+14158675310", "+141"]);
        assert_eq!(entries(&list), vec!["+141"]);
        // Siblings are kept: neither starts the other.
        let list = BlockList::new(["+14158675311", "+14158675310", "+1415867531"]);
        assert_eq!(entries(&list), vec!["+1415867531"]);
        let list = BlockList::new(["+14158675311", "+14158675310"]);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn an_exact_entry_blocks_that_number() {
        let list = BlockList::new(["+12064561234", "+14158675310", "+19175550100"]);
        assert_eq!(list.matching("+14158675310"), Some("+14158675310"));
        assert_eq!(list.matching("+12064561234"), Some("+12064561234"));
        assert_eq!(list.matching("+19175550100"), Some("+19175550100"));
    }

    #[test]
    fn a_prefix_entry_blocks_every_number_it_starts() {
        let list = BlockList::new(["+1206", "+1900", "+44"]);
        assert_eq!(list.matching("+12064561234"), Some("+1206"));
        assert_eq!(list.matching("+12069999999"), Some("+1206"));
        assert_eq!(list.matching("+19005550100"), Some("+1900"));
        assert_eq!(list.matching("+442079460018"), Some("+44"));
        // Past the last entry, still under it.
        assert_eq!(list.matching("+449999999999"), Some("+44"));
    }

    /// A caller that sorts between two entries, before the first or after the last, and is
    /// started by none, is not blocked — nor is a caller shorter than an entry it starts.
    #[test]
    fn a_caller_between_entries_is_not_blocked() {
        let list = BlockList::new(["+1206", "+14158675310", "+1900"]);
        for caller in [
            "+12055550100",
            "+13125550100",
            "+14158675311",
            "+14158675309",
            "+1415867531",
            "+18005550100",
            "+19015550100",
            "+33123456789",
            "+1",
        ] {
            assert_eq!(list.matching(caller), None, "{caller}");
        }
    }

    #[test]
    fn an_empty_list_blocks_nobody() {
        let list = BlockList::new([]);
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
        assert_eq!(list.matching("+14158675310"), None);
        assert_eq!(list.matching(""), None);
        assert_eq!(list, BlockList::default());
    }

    /// The compiled list agrees with the plain reading of the rule ("an entry blocks every
    /// caller number that starts with it") over every pair of a small alphabet.
    #[test]
    fn matching_agrees_with_starts_with() {
        let pool = ["+1", "+12", "+121", "+122", "+13", "+2", "+21", "+3"];
        let callers = [
            "+1", "+11", "+12", "+121", "+1211", "+123", "+13", "+2", "+22", "+4",
        ];
        for mask in 0u32..(1 << pool.len()) {
            let chosen: Vec<&str> = (0..pool.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| pool[i])
                .collect();
            let list = BlockList::new(chosen.iter().copied());
            for caller in callers {
                let blocked = chosen.iter().any(|e| caller.starts_with(e));
                let found = list.matching(caller);
                assert_eq!(found.is_some(), blocked, "{chosen:?} {caller}");
                if let Some(entry) = found {
                    assert!(chosen.contains(&entry) && caller.starts_with(entry));
                }
            }
        }
    }
}
