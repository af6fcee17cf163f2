//! Why a call rings where it does, as data: the `reasons` of a `switchboard.call.route.v2`
//! decision. Each reason is a stable `code` with its parameters
//! (`{"code": "user_outside_working_hours", "rule": "assigned_user", "user_id": "u-42", …}`),
//! in the order the routing core met them; [`render`] turns them into English for `explain`,
//! the CLI and the API, and any CRM can render them in its own words.
//!
//! Numbers in reasons are full E.164, like `target` and `fallbacks` of the same event (they are
//! data, not prose); every rendering masks them. The English [`render`] gives is word for word
//! the prose that `switchboard.call.route.v1` decisions carried, so a v1 decision replayed by
//! today's code is compared line by line with what it recorded.

use crate::{
    AnonymousCallers, BlockedAction, E164, EntityId, FinalAction, FinalActionKind, PhoneError,
    RingMode, Rule, Target,
};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};
use std::sync::Arc;

pub mod recorded;

/// One step of a decision's reasoning. Unknown codes (from a newer producer) decode as
/// [`Reason::Unrecognized`] rather than failing the decision: consumers stay tolerant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// The router decided on the call's last delivery without knowing its settings were fresh
    /// (it could not read SETTINGS' last sequence, or its projection had not reached it).
    /// Always first when present; not part of the rules' reasoning, so replay leaves it out.
    SettingsMayBeStale {
        /// The sequence the decision was made at.
        #[serde(deserialize_with = "crate::events::u64_lenient")]
        settings_seq: u64,
        /// The SETTINGS sequence that was not applied yet; absent when it could not be read.
        #[serde(
            default,
            deserialize_with = "crate::events::u64_lenient_opt",
            skip_serializing_if = "Option::is_none"
        )]
        required_seq: Option<u64>,
    },
    /// The dialed number (`to`) does not parse as a phone number: no route.
    DialedNumberUnusable {
        /// The dialed text, masked (it is not a number, so there is nothing to keep whole).
        masked: String,
        /// What is wrong with it.
        error: PhoneError,
    },
    /// The dialed number is not one of the tenant's numbers: no route.
    NumberNotProvisioned {
        /// The dialed number.
        number: E164,
    },
    /// The dialed number was released by the tenant: no route.
    NumberReleased {
        /// The dialed number.
        number: E164,
    },
    /// The dialed number is one of the tenant's live numbers.
    NumberProvisioned {
        /// The dialed number.
        number: E164,
    },
    /// The caller is on the company's `blocked_callers`: nothing rings.
    CallerBlocked {
        /// The caller.
        number: E164,
        /// The block-list entry that matched (the number itself, or a `+`-prefix of it).
        entry: String,
        /// Rejected unanswered, or the announcement then hang up.
        action: BlockedAction,
    },
    /// The caller withheld their number and `anonymous_callers` is `voicemail` or `reject`:
    /// nothing rings.
    AnonymousCaller {
        /// What such callers get.
        action: AnonymousCallers,
    },
    /// Business hours are set and the company is open at the call.
    CompanyOpen {
        /// The business hours at the call.
        hours: HoursAt,
    },
    /// Business hours are set and the company is closed at the call: the after-hours action.
    CompanyClosed {
        /// The business hours at the call.
        hours: HoursAt,
    },
    /// Closed, and `after_hours` is the final action: nothing rings.
    AfterHoursFinalAction,
    /// Closed, and the after-hours forward is the only target (no fallbacks).
    AfterHoursForwardOnly {
        /// The forward.
        number: E164,
    },
    /// The number prefers its owner (`prefer: "number_owner"`): the direct line comes before
    /// the lead's assigned user.
    NumberPrefersOwner {
        /// The number's owner.
        user_id: EntityId,
    },
    /// The producer named the lead (`contact_id` of `call.inbound`).
    LeadNamed {
        /// The lead.
        contact_id: EntityId,
    },
    /// The lead the producer named is deleted; the caller is looked up instead.
    NamedLeadDeleted {
        /// The lead.
        contact_id: EntityId,
    },
    /// The lead the producer named is unknown; the caller is looked up instead.
    NamedLeadUnknown {
        /// The lead.
        contact_id: EntityId,
    },
    /// The caller withheld their number: no lead.
    CallerWithheld,
    /// The caller number does not parse: no lead.
    CallerUnusable {
        /// The caller text, masked.
        masked: String,
        /// What is wrong with it.
        error: PhoneError,
    },
    /// The caller is not a known lead.
    CallerUnknown {
        /// The caller.
        number: E164,
    },
    /// The caller is exactly one lead.
    CallerIsLead {
        /// The caller.
        number: E164,
        /// The lead.
        contact_id: EntityId,
    },
    /// The caller matches several leads; one was chosen.
    CallerMatchesLeads {
        /// The caller.
        number: E164,
        /// Every matching lead, the chosen one first.
        #[serde(default)]
        contact_ids: Vec<EntityId>,
        /// The lead chosen.
        chosen: EntityId,
        /// Whether it was chosen because its assigned user can take the call (else: no lead's
        /// user can, and the smallest contact id won).
        owner_reachable: bool,
    },
    /// There is no lead, so no assigned user.
    NoLead {
        /// The step that comes next.
        next: Rule,
    },
    /// The lead is not assigned to a user.
    LeadUnassigned {
        /// The lead.
        contact_id: EntityId,
        /// The step that comes next.
        next: Rule,
    },
    /// The user of a step (the lead's assigned user, or the number's owner) is unknown.
    UserUnknown(UserSkipped),
    /// The user of a step is deactivated.
    UserDeactivated(UserSkipped),
    /// The user of a step is unavailable (do not disturb).
    UserUnavailable(UserSkipped),
    /// The user of a step has no phone number.
    UserHasNoPhone(UserSkipped),
    /// The user of a step rings only in working hours, and the call is outside them.
    UserOutsideWorkingHours(UserSkipped),
    /// `returning_caller_days` is on and the lead has no eligible owner: the user who last
    /// answered this caller within that many days comes next (their eligibility follows).
    ReturningCaller {
        /// The caller.
        number: E164,
        /// Who answered them last.
        user_id: EntityId,
        /// When, RFC 3339 (UTC). A [`CompactString`]: `2026-12-04T15:04:05Z` is 20 bytes, held
        /// inline (up to 24), so recording a returning caller allocates nothing for it; on the
        /// wire it is a plain JSON string, as when it was a `String`.
        answered_at: CompactString,
        /// The company's `returning_caller_days`.
        #[serde(deserialize_with = "crate::events::u32_lenient")]
        days: u32,
    },
    /// `returning_caller_days` is on and the lead has no eligible owner, but nobody answered
    /// this caller within that many days (or the caller number is not known).
    NotReturningCaller {
        /// The company's `returning_caller_days`.
        #[serde(deserialize_with = "crate::events::u32_lenient")]
        days: u32,
        /// The step that comes next.
        next: Rule,
    },
    /// The dialed number has a ring group: its members' eligibility follows, in order.
    RingGroup {
        /// All at once or one after another.
        mode: RingMode,
        /// The members, in the group's order.
        #[serde(default)]
        user_ids: Vec<EntityId>,
    },
    /// A member's phone joins the simultaneous group's leg (the leg itself is the `target`
    /// reason after the members).
    GroupMember(Offer),
    /// No member of the ring group can ring (each member's reason is above).
    RingGroupEmpty,
    /// `screening: "forwarded"`: every leg but the company phone is screened (a whisper, and
    /// the person must press 1 to take the call).
    ScreeningOn,
    /// The user of a step can take the call.
    UserEligible {
        /// `assigned_user` or `direct_line`.
        rule: Rule,
        /// The user.
        user_id: EntityId,
        /// The lead, for `assigned_user`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<EntityId>,
        /// The user's working hours at the call, when they decided (`ring_only_in_working_hours`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours: Option<HoursAt>,
    },
    /// A step's number became the next leg of the chain. Positional: the n-th `target` reason
    /// is the n-th leg (`target`, then `fallbacks` in order), which holds its number, rule, user
    /// and ring timeout; the reason says only where in the reasoning it was added.
    Target,
    /// A step's number is not a usable phone number; skipped.
    PhoneUnusable {
        /// The step.
        rule: Rule,
        /// The user whose phone it is, for user steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<EntityId>,
        /// What is wrong with it.
        error: PhoneError,
    },
    /// A step's number is the dialed number itself; skipped to avoid a forwarding loop.
    DialedNumberSkipped(Offer),
    /// A step's number is already in the chain; not repeated.
    AlreadyInChain {
        /// The step.
        rule: Rule,
        /// The user whose phone it is, for user steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<EntityId>,
        /// The number.
        number: E164,
        /// The rule that put it in the chain first.
        earlier_rule: Rule,
    },
    /// The dialed number has no forwarding number.
    NoForwardingNumber {
        /// The dialed number.
        number: E164,
    },
    /// The company has no company phone.
    NoCompanyPhone,
    /// Every step was skipped: nothing rings.
    NoTargetLeft,
    /// A code this version does not know (from a newer producer).
    #[serde(other)]
    Unrecognized,
}

/// A user step that was skipped, and what comes next.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserSkipped {
    /// `assigned_user` or `direct_line`.
    pub rule: Rule,
    /// The user.
    pub user_id: EntityId,
    /// The lead, for `assigned_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<EntityId>,
    /// The step that comes next.
    pub next: Rule,
    /// The user's working hours at the call, for `user_outside_working_hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HoursAt>,
}

/// A step's number, offered to the chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offer {
    /// The step.
    pub rule: Rule,
    /// The user whose phone it is, for user steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<EntityId>,
    /// The number.
    pub number: E164,
}

/// One interval of a [`HoursAt`], half-open, `["09:00","17:00"]`.
pub type HoursInterval = [CompactString; 2];

/// A schedule (business or working hours) seen at the call: its local date and time, and that
/// date's hours.
///
/// The texts are [`CompactString`]s: inline up to 24 bytes (every date, day, time and nearly
/// every zone name), so the routing core records a schedule without an allocation per text (a
/// decision records two). On the wire each is a plain JSON string, as when they were `String`s.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HoursAt {
    /// The IANA zone the schedule was read in.
    pub time_zone: CompactString,
    /// The call's local date, `YYYY-MM-DD`.
    pub date: CompactString,
    /// The local date's day, `mon` … `sun`.
    pub weekday: CompactString,
    /// The call's local time, `HH:MM`.
    pub time: CompactString,
    /// The date's intervals, half-open (`[["09:00","17:00"]]`); empty: closed all day.
    ///
    /// Shared (`Arc`) with the compiled schedule they were read from, which writes them once:
    /// the routing core records a schedule with a reference count instead of allocating and
    /// writing them on every call. On the wire it is the same JSON array as when it was a
    /// `Vec`.
    #[serde(
        default,
        serialize_with = "intervals::serialize",
        deserialize_with = "intervals::deserialize"
    )]
    pub hours: Arc<[HoursInterval]>,
    /// Whether the hours come from an override of the date rather than the weekly hours.
    #[serde(rename = "override", default, skip_serializing_if = "is_false")]
    pub overridden: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// [`HoursAt::hours`] on the wire: a JSON array of intervals, as a `Vec` of them is (serde
/// reads and writes an `Arc` only with its `rc` feature, which would apply to every crate).
pub(crate) mod intervals {
    use super::HoursInterval;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub(crate) fn serialize<S: Serializer>(
        hours: &Arc<[HoursInterval]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hours.iter())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<[HoursInterval]>, D::Error> {
        Vec::<HoursInterval>::deserialize(deserializer).map(Arc::from)
    }
}

impl HoursAt {
    /// Whether the call falls inside the hours (as `HH:MM` strings compare like times).
    pub fn is_open(&self) -> bool {
        self.hours.iter().any(|[start, end]| {
            start.as_str() <= self.time.as_str() && self.time.as_str() < end.as_str()
        })
    }
}

/// `Mon 09:00–17:00 America/Chicago` (or `2026-12-24 (override) 09:00–12:00 …`, `Sun closed
/// all day …`).
impl fmt::Display for HoursAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.overridden {
            write!(f, "{} (override)", self.date)?;
        } else {
            f.write_str(crate::schedule::day_name(&self.weekday))?;
        }
        if self.hours.is_empty() {
            f.write_str(" closed all day")?;
        }
        for (i, [start, end]) in self.hours.iter().enumerate() {
            write!(f, "{}{start}–{end}", if i == 0 { " " } else { ", " })?;
        }
        write!(f, " {}", self.time_zone)
    }
}

/// What a step is called in English: `forwarding number`, `phone of user u-42`, …
struct StepName<'a>(Rule, Option<&'a EntityId>);

impl fmt::Display for StepName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (_, Some(user)) => write!(f, "phone of user {user}"),
            (Rule::AfterHours, None) => f.write_str("after-hours forward"),
            (Rule::ForwardingNumber, None) => f.write_str("forwarding number"),
            (Rule::CompanyPhone, None) => f.write_str("company phone"),
            (Rule::RingGroup, None) => f.write_str("ring group"),
            (rule, None) => write!(f, "{} number", rule.as_str()),
        }
    }
}

/// `the forwarding number comes next`, …
struct Next(Rule);

impl fmt::Display for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Rule::DirectLine => "the direct line comes next",
            Rule::AssignedUser => "the lead's assigned user comes next",
            Rule::CompanyPhone => "the company phone comes next",
            Rule::ReturningCaller => "the user who last answered this caller comes next",
            Rule::RingGroup => "the ring group comes next",
            _ => "the forwarding number comes next",
        })
    }
}

/// `Lead c-1 is assigned to user u-42` or `The dialed number is the direct line of user u-42`.
struct UserStep<'a>(Rule, &'a EntityId, Option<&'a EntityId>);

impl fmt::Display for UserStep<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.2) {
            (Rule::AssignedUser, Some(lead)) => {
                write!(f, "Lead {lead} is assigned to user {}", self.1)
            }
            (Rule::ReturningCaller, _) => {
                write!(f, "User {} answered this caller last", self.1)
            }
            (Rule::RingGroup, _) => write!(f, "Ring group member user {}", self.1),
            _ => write!(f, "The dialed number is the direct line of user {}", self.1),
        }
    }
}

impl Reason {
    /// This reason in English, one sentence; numbers masked. `leg` is the chain's leg this
    /// reason added, for a [`Reason::Target`] (see [`render`]).
    pub fn write_english(&self, leg: Option<&Target>, out: &mut impl fmt::Write) -> fmt::Result {
        let skipped = |out: &mut dyn fmt::Write, s: &UserSkipped, who: &dyn fmt::Display| {
            write!(
                out,
                "{}, {who}; {}.",
                UserStep(s.rule, &s.user_id, s.contact_id.as_ref()),
                Next(s.next)
            )
        };
        match self {
            Reason::SettingsMayBeStale {
                settings_seq,
                required_seq,
            } => {
                write!(
                    out,
                    "Settings may be stale: decided at SETTINGS sequence {settings_seq} on the last delivery; "
                )?;
                match required_seq {
                    Some(required) => write!(out, "sequence {required} was not applied."),
                    None => out.write_str("the stream's last sequence could not be read."),
                }
            }
            Reason::DialedNumberUnusable { masked, error } => write!(
                out,
                "The dialed number {masked} is not a usable phone number ({error})."
            ),
            Reason::NumberNotProvisioned { number } => write!(
                out,
                "The dialed number {number} is not provisioned for this tenant."
            ),
            Reason::NumberReleased { number } => write!(
                out,
                "The dialed number {number} has been released by this tenant."
            ),
            Reason::NumberProvisioned { number } => {
                write!(out, "The dialed number {number} belongs to this tenant.")
            }
            Reason::CallerBlocked {
                number,
                entry,
                action,
            } => write!(
                out,
                "The caller {number} is blocked (blocked_callers entry {}): {}.",
                crate::phone::mask(entry),
                match action {
                    BlockedAction::Reject => "the call is rejected unanswered and nothing rings",
                    BlockedAction::Announce =>
                        "the caller hears the announcement, then the call ends; nothing rings",
                }
            ),
            Reason::AnonymousCaller { action } => write!(
                out,
                "The caller withheld their number and anonymous callers are {}; nothing rings.",
                match action {
                    AnonymousCallers::Reject => "rejected",
                    _ => "sent to voicemail",
                }
            ),
            Reason::ReturningCaller {
                number,
                user_id,
                answered_at,
                days,
            } => write!(
                out,
                "The caller {number} last spoke with user {user_id} (answered {answered_at}, within {days} days)."
            ),
            Reason::NotReturningCaller { days, next } => write!(
                out,
                "Nobody answered this caller in the last {days} days; {}.",
                Next(*next)
            ),
            Reason::RingGroup { mode, user_ids } => {
                write!(
                    out,
                    "The dialed number's ring group rings {} user{} {}: ",
                    user_ids.len(),
                    if user_ids.len() == 1 { "" } else { "s" },
                    match mode {
                        RingMode::Simultaneous => "at once",
                        RingMode::Sequential => "one after another",
                    }
                )?;
                for (i, id) in user_ids.iter().enumerate() {
                    write!(out, "{}{id}", if i == 0 { "" } else { ", " })?;
                }
                out.write_str(".")
            }
            Reason::GroupMember(o) => write!(
                out,
                "The {} {} rings with the rest of the group.",
                StepName(o.rule, o.user_id.as_ref()),
                o.number
            ),
            Reason::RingGroupEmpty => out.write_str(
                "No member of the ring group can take the call; the forwarding number comes next.",
            ),
            Reason::ScreeningOn => out.write_str(
                "Call screening is on: whoever answers a leg other than the company phone hears a whisper and must press 1.",
            ),
            Reason::CompanyOpen { hours } | Reason::CompanyClosed { hours } => write!(
                out,
                "The company is {}: {hours}, the call came at {} local.",
                if matches!(self, Reason::CompanyOpen { .. }) {
                    "open"
                } else {
                    "closed"
                },
                hours.time
            ),
            Reason::AfterHoursFinalAction => {
                out.write_str("After hours nothing rings (after_hours: final action).")
            }
            Reason::AfterHoursForwardOnly { number } => write!(
                out,
                "After hours only the forward {number} rings, with no fallbacks."
            ),
            Reason::NumberPrefersOwner { user_id } => write!(
                out,
                "This number prefers its owner: user {user_id}'s direct line comes before the lead's assigned user."
            ),
            Reason::LeadNamed { contact_id } => {
                write!(out, "Lead {contact_id} was named by the producer.")
            }
            Reason::NamedLeadDeleted { contact_id } => write!(
                out,
                "Lead {contact_id} named by the producer is deleted; looking the caller up instead."
            ),
            Reason::NamedLeadUnknown { contact_id } => write!(
                out,
                "Lead {contact_id} named by the producer is unknown; looking the caller up instead."
            ),
            Reason::CallerWithheld => {
                out.write_str("The caller withheld their number, so no lead can be found.")
            }
            Reason::CallerUnusable { masked, error } => write!(
                out,
                "The caller number {masked} is not usable ({error}), so no lead can be found."
            ),
            Reason::CallerUnknown { number } => {
                write!(out, "The caller {number} is not a known lead.")
            }
            Reason::CallerIsLead { number, contact_id } => {
                write!(out, "The caller {number} is lead {contact_id}.")
            }
            Reason::CallerMatchesLeads {
                number,
                contact_ids,
                chosen,
                owner_reachable,
            } => {
                write!(
                    out,
                    "The caller {number} matches {} leads (",
                    contact_ids.len()
                )?;
                for (i, id) in contact_ids.iter().enumerate() {
                    write!(out, "{}{id}", if i == 0 { "" } else { ", " })?;
                }
                write!(
                    out,
                    "); chose {chosen}: {}.",
                    if *owner_reachable {
                        "the first (by contact id) assigned to an active user with a phone"
                    } else {
                        "none is assigned to an active user with a phone; the smallest contact id"
                    }
                )
            }
            Reason::NoLead { next } => write!(
                out,
                "Without a lead there is no assigned user; {}.",
                Next(*next)
            ),
            Reason::LeadUnassigned { contact_id, next } => write!(
                out,
                "Lead {contact_id} is not assigned to a user; {}.",
                Next(*next)
            ),
            Reason::UserUnknown(s) => skipped(out, s, &"who is unknown"),
            Reason::UserDeactivated(s) => skipped(out, s, &"who is deactivated"),
            Reason::UserUnavailable(s) => skipped(out, s, &"who is unavailable (do not disturb)"),
            Reason::UserHasNoPhone(s) => skipped(out, s, &"who has no phone number"),
            Reason::UserOutsideWorkingHours(s) => match &s.hours {
                Some(hours) => skipped(
                    out,
                    s,
                    &format_args!(
                        "who is outside working hours: {hours}, the call came at {} local",
                        hours.time
                    ),
                ),
                None => skipped(out, s, &"who is outside working hours"),
            },
            Reason::UserEligible {
                rule,
                user_id,
                contact_id,
                hours,
            } => {
                write!(
                    out,
                    "{}, who is active",
                    UserStep(*rule, user_id, contact_id.as_ref())
                )?;
                if let Some(hours) = hours {
                    write!(
                        out,
                        ", inside working hours: {hours}, the call came at {} local",
                        hours.time
                    )?;
                }
                out.write_str(".")
            }
            Reason::Target => match leg {
                Some(t) => write!(
                    out,
                    "The {} {} is a target ({}).",
                    StepName(t.rule, t.user_id.as_ref()),
                    t.number,
                    t.rule.as_str()
                ),
                None => out.write_str("A number was added to the chain."),
            },
            Reason::PhoneUnusable {
                rule,
                user_id,
                error,
            } => write!(
                out,
                "The {} is not a usable phone number ({error}); skipped.",
                StepName(*rule, user_id.as_ref())
            ),
            Reason::DialedNumberSkipped(o) => write!(
                out,
                "The {} {} is the dialed number itself; skipped to avoid a forwarding loop.",
                StepName(o.rule, o.user_id.as_ref()),
                o.number
            ),
            Reason::AlreadyInChain {
                rule,
                user_id,
                number,
                earlier_rule,
            } => write!(
                out,
                "The {} {number} is already in the chain ({}); not repeated.",
                StepName(*rule, user_id.as_ref()),
                earlier_rule.as_str()
            ),
            Reason::NoForwardingNumber { number } => write!(
                out,
                "The dialed number {number} has no forwarding number; the company phone comes next."
            ),
            Reason::NoCompanyPhone => out.write_str("The company has no company phone set up."),
            Reason::NoTargetLeft => out.write_str("No number is left to ring."),
            Reason::Unrecognized => {
                out.write_str("(A reason this version of Switchboard does not know.)")
            }
        }
    }

    /// This reason in English, `leg` as for [`Reason::write_english`].
    pub fn english(&self, leg: Option<&Target>) -> String {
        let mut line = String::with_capacity(128);
        let _ = self.write_english(leg, &mut line);
        line
    }

    /// Whether this is the router's staleness note rather than a step of the rules.
    pub fn is_staleness_note(&self) -> bool {
        matches!(self, Reason::SettingsMayBeStale { .. })
    }
}

/// The reasons the rules gave, without the router's staleness note (what replay compares).
pub fn rules_reasons(reasons: &[Reason]) -> &[Reason] {
    match reasons.split_first() {
        Some((first, rest)) if first.is_staleness_note() => rest,
        _ => reasons,
    }
}

/// The rule as a v1 decision recorded it: v1 had no target-less `after_hours` (a closed
/// company playing its final action was `no_route`).
pub fn v1_rule(rule: Rule, target: Option<&Target>) -> Rule {
    match (rule, target) {
        (Rule::AfterHours, None) => Rule::NoRoute,
        _ => rule,
    }
}

/// What the caller hears when nobody answers, in English.
pub fn final_action_words(action: &FinalAction) -> &'static str {
    match action.kind {
        FinalActionKind::Reject => "the call is rejected unanswered",
        FinalActionKind::Voicemail => "the caller hears the greeting and can leave a voicemail",
        FinalActionKind::AnnounceHangup => "the caller hears the announcement, then the call ends",
    }
}

/// The decision's last line: what rings, in order, then the final action.
pub fn outcome_english(
    target: Option<&Target>,
    fallbacks: &[Target],
    final_action: &FinalAction,
) -> String {
    let mut line = String::with_capacity(256);
    match target {
        None => {
            let _ = write!(line, "No route: {}.", final_action_words(final_action));
        }
        Some(target) => {
            let _ = write!(line, "Ring {} ({})", target.number, target.rule.as_str());
            for t in fallbacks {
                let _ = write!(line, ", then {} ({})", t.number, t.rule.as_str());
            }
            let _ = write!(
                line,
                "; if no one answers, {}.",
                final_action_words(final_action)
            );
        }
    }
    line
}

/// A decision's reasons in English, one line each, then the outcome line: word for word the
/// `explanation` a v1 decision carried for the same reasoning.
pub fn render(
    reasons: &[Reason],
    target: Option<&Target>,
    fallbacks: &[Target],
    final_action: &FinalAction,
) -> Vec<String> {
    let mut legs = target.into_iter().chain(fallbacks);
    let mut lines: Vec<String> = reasons
        .iter()
        .map(|r| match r {
            Reason::Target => r.english(legs.next()),
            _ => r.english(None),
        })
        .collect();
    lines.push(outcome_english(target, fallbacks, final_action));
    lines
}

impl Reason {
    /// The reason as JSON for people-facing output (explain, logs): the same shape as on the
    /// wire, with every phone number masked as in the English rendering.
    pub fn masked_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(fields) = value.as_object_mut() {
            for key in ["number", "entry"] {
                if let Some(serde_json::Value::String(number)) = fields.get_mut(key) {
                    *number = crate::phone::mask(number);
                }
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `HoursAt` as it was when its texts were `String`s: the wire contract.
    #[derive(Debug, Serialize, Deserialize)]
    struct StringHoursAt {
        time_zone: String,
        date: String,
        weekday: String,
        time: String,
        #[serde(default)]
        hours: Vec<[String; 2]>,
        #[serde(rename = "override", default, skip_serializing_if = "is_false")]
        overridden: bool,
    }

    fn both(
        zone: &str,
        date: &str,
        weekday: &str,
        time: &str,
        hours: &[[&str; 2]],
        overridden: bool,
    ) -> (HoursAt, StringHoursAt) {
        (
            HoursAt {
                time_zone: zone.into(),
                date: date.into(),
                weekday: weekday.into(),
                time: time.into(),
                hours: hours
                    .iter()
                    .map(|[a, b]| [(*a).into(), (*b).into()])
                    .collect(),
                overridden,
            },
            StringHoursAt {
                time_zone: zone.into(),
                date: date.into(),
                weekday: weekday.into(),
                time: time.into(),
                hours: hours
                    .iter()
                    .map(|[a, b]| [(*a).into(), (*b).into()])
                    .collect(),
                overridden,
            },
        )
    }

    /// Also for `hours`, now shared (`Arc<[HoursInterval]>`) where it was a `Vec`: the same JSON
    /// array, decoded back equal.
    #[test]
    fn hours_at_json_is_byte_identical_to_the_string_fields_and_round_trips() {
        let cases = [
            both(
                "America/Chicago",
                "2026-12-24",
                "thu",
                "10:30",
                &[["09:00", "12:00"]],
                false,
            ),
            both("UTC", "2026-12-25", "fri", "00:00", &[], true),
            both(
                // Longer than a `CompactString` holds inline: on the heap, the same JSON.
                "America/Argentina/ComodRivadavia",
                "0999-02-28",
                "sun",
                "23:59",
                &[
                    ["00:00", "12:00"],
                    ["13:00", "24:00"],
                    ["x", "\"quoted\" é"],
                ],
                false,
            ),
            both("", "", "", "", &[["", ""]], false),
        ];
        for (hours, strings) in cases {
            let json = serde_json::to_string(&hours).expect("encodes");
            assert_eq!(json, serde_json::to_string(&strings).expect("encodes"));
            let back: HoursAt = serde_json::from_str(&json).expect("decodes");
            assert_eq!(back, hours);
            assert_eq!(back.to_string(), hours.to_string());
            let value: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert_eq!(
                serde_json::from_value::<HoursAt>(value).expect("decodes"),
                hours
            );
        }
        // What the string fields accepted, this accepts (absent `hours` and `override`).
        let minimal = r#"{"time_zone":"UTC","date":"2026-01-01","weekday":"thu","time":"09:00"}"#;
        let hours: HoursAt = serde_json::from_str(minimal).expect("decodes");
        assert!(hours.hours.is_empty() && !hours.overridden && !hours.is_open());
        assert_eq!(
            serde_json::to_string(&hours).expect("encodes"),
            minimal.replace('}', r#","hours":[]}"#)
        );
        let strings: StringHoursAt = serde_json::from_str(minimal).expect("decodes");
        assert_eq!(
            serde_json::to_string(&hours).expect("encodes"),
            serde_json::to_string(&strings).expect("encodes")
        );
        // And what they refused, this refuses.
        for bad in [
            r#"{"time_zone":1,"date":"d","weekday":"w","time":"t"}"#,
            r#"{"date":"d","weekday":"w","time":"t"}"#,
            r#"{"time_zone":"z","date":"d","weekday":"w","time":"t","hours":[["a"]]}"#,
        ] {
            assert!(serde_json::from_str::<HoursAt>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<StringHoursAt>(bad).is_err(), "{bad}");
        }
    }

    /// `returning_caller` as it was when `answered_at` was a `String`: the wire contract.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "code", rename_all = "snake_case")]
    enum StringReason {
        ReturningCaller {
            number: E164,
            user_id: EntityId,
            answered_at: String,
            days: u32,
        },
    }

    #[test]
    fn returning_caller_json_is_byte_identical_to_the_string_field_and_round_trips() {
        let number = E164::parse_strict("+14155550100").expect("valid");
        let user_id = EntityId::parse("user_id", "u-42").expect("valid");
        for answered_at in [
            "2026-12-04T15:04:05Z",
            "",
            // Longer than a `CompactString` holds inline: on the heap, the same JSON.
            "-000001-12-31T23:59:59Z and \"more\" é",
        ] {
            let reason = Reason::ReturningCaller {
                number: number.clone(),
                user_id: user_id.clone(),
                answered_at: answered_at.into(),
                days: 30,
            };
            let strings = StringReason::ReturningCaller {
                number: number.clone(),
                user_id: user_id.clone(),
                answered_at: answered_at.into(),
                days: 30,
            };
            let json = serde_json::to_string(&reason).expect("encodes");
            assert_eq!(json, serde_json::to_string(&strings).expect("encodes"));
            assert_eq!(
                serde_json::from_str::<Reason>(&json).expect("decodes"),
                reason
            );
        }
        // What the string field refused, this refuses.
        let bad = r#"{"code":"returning_caller","number":"+14155550100","user_id":"u-42","answered_at":1,"days":30}"#;
        assert!(serde_json::from_str::<StringReason>(bad).is_err());
        assert!(serde_json::from_str::<Reason>(bad).is_err());
    }

    #[test]
    fn is_open_compares_the_clock_texts() {
        let (hours, _) = both(
            "UTC",
            "2026-12-24",
            "thu",
            "12:00",
            &[["09:00", "12:00"], ["12:00", "13:00"]],
            false,
        );
        assert!(hours.is_open());
        let (hours, _) = both(
            "UTC",
            "2026-12-24",
            "thu",
            "13:00",
            &[["09:00", "12:00"], ["12:00", "13:00"]],
            false,
        );
        assert!(!hours.is_open());
    }
}
