//! The decision itself. Each step appends one [`Reason`] (a stable code with its parameters);
//! rendering them as English is for `explain`, the CLI and the API ([`Decision::explanation`]),
//! never part of deciding.

use crate::view::{
    CallerHistory, ContactView, NoHistory, NumberView, SettingPhone, SettingsView, UserView,
};
use compact_str::CompactString;
use std::cell::Cell;
use switchboard_contracts::reasons::{HoursAt, Offer, Reason, UserSkipped};
use switchboard_contracts::schedule::{LocalHours, timestamp};
use switchboard_contracts::{
    AnonymousCallers, BlockedAction, CallInbound, CallRoute, E164, EntityId, FinalAction,
    FinalActionKind, GroupMember, Hours, PhoneError, Prefer, RingGroup, RingMode, Rule, Screening,
    Target,
};
use time::OffsetDateTime;

/// The outcome of [`decide`]: everything of a `call.route` event that depends on the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The rule that chose `target`; `NoRoute` when nothing can ring.
    pub rule: Rule,
    /// The first number to ring.
    pub target: Option<Target>,
    /// Further distinct targets, in rule order.
    pub fallbacks: Vec<Target>,
    /// What runs when every target failed or there is none.
    pub final_action: FinalAction,
    /// Why, step by step.
    pub reasons: Vec<Reason>,
    /// The caller as read in the tenant's region; `None` when withheld or unusable.
    pub caller: Option<E164>,
}

impl Decision {
    /// The reasons in English, one line each, then the outcome (numbers masked).
    pub fn explanation(&self) -> Vec<String> {
        switchboard_contracts::reasons::render(
            &self.reasons,
            self.target.as_ref(),
            &self.fallbacks,
            &self.final_action,
        )
    }

    /// The `call.route` data for `call`, made at `settings_seq` and `decided_at` (the caller
    /// supplies both: the engine has no clock and no stream).
    pub fn into_route(
        self,
        call: &CallInbound,
        settings_seq: u64,
        decided_at: OffsetDateTime,
    ) -> CallRoute {
        CallRoute {
            call_id: call.call_id.clone(),
            tenant_id: call.tenant_id.clone(),
            rule: self.rule,
            target: self.target,
            fallbacks: self.fallbacks,
            final_action: self.final_action,
            reasons: self.reasons,
            explanation: Vec::new(),
            settings_seq,
            calls_seq: 0,
            caller: self.caller,
            decided_at,
        }
    }
}

/// Decides where `call` rings, from `view` alone, at the call's `received_at` (never the
/// clock, so replay re-decides the same), without a returning-caller history.
pub fn decide(call: &CallInbound, view: &impl SettingsView) -> Decision {
    decide_with(call, view, &NoHistory)
}

/// Decides where `call` rings from `view` and the tenant's returning-caller `history`, at the
/// call's `received_at`.
pub fn decide_with<H: CallerHistory + ?Sized>(
    call: &CallInbound,
    view: &impl SettingsView,
    history: &H,
) -> Decision {
    let caller = E164::lookup_key(&call.from, view.region());
    let mut decision = decide_for(call, &caller, view, history);
    decision.caller = caller.ok();
    decision
}

fn decide_for<H: CallerHistory + ?Sized>(
    call: &CallInbound,
    caller: &Result<E164, PhoneError>,
    view: &impl SettingsView,
    history: &H,
) -> Decision {
    // A decision is about 6 to 9 reasons and at most 4 targets: sized once, never regrown.
    let mut why = Why(Vec::with_capacity(10));
    // Either way the message is shared (`Arc<str>`), counted rather than copied.
    let final_action = match view.final_action() {
        Some(action) => action.clone(),
        None => FinalAction::default(),
    };
    let region = view.region();

    // Step 0: the dialed number must be one of the tenant's live numbers, whatever the hours.
    // Lookup keys: numbers in canonical E.164 (what carriers send) skip full parsing; a
    // number that is not valid can only miss, since stored numbers were validated.
    let dialed = match E164::lookup_key(&call.to, region) {
        Ok(number) => number,
        Err(error) => {
            why.push(Reason::DialedNumberUnusable {
                masked: switchboard_contracts::phone::mask(&call.to),
                error,
            });
            return why.nothing_rings(Rule::NoRoute, final_action);
        }
    };
    let Some(number) = view.number(&dialed) else {
        why.push(Reason::NumberNotProvisioned { number: dialed });
        return why.nothing_rings(Rule::NoRoute, final_action);
    };
    if number.released {
        why.push(Reason::NumberReleased { number: dialed });
        return why.nothing_rings(Rule::NoRoute, final_action);
    }
    why.push(Reason::NumberProvisioned {
        number: dialed.clone(),
    });

    let company = view.company();

    // Step 0 (issue 17), at any hour: a blocked caller, then an anonymous one the company does
    // not route.
    if let Ok(number) = caller
        && let Some(entry) = view.blocked(number)
    {
        why.push(Reason::CallerBlocked {
            number: number.clone(),
            entry: entry.to_owned(),
            action: company.blocked_action,
        });
        let action = match company.blocked_action {
            BlockedAction::Reject => reject(),
            BlockedAction::Announce => FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: final_action.message,
            },
        };
        return why.nothing_rings(Rule::Blocked, action);
    }
    if matches!(caller, Err(PhoneError::Withheld))
        && company.anonymous_callers != AnonymousCallers::Route
    {
        why.push(Reason::AnonymousCaller {
            action: company.anonymous_callers,
        });
        let action = match company.anonymous_callers {
            AnonymousCallers::Reject => reject(),
            _ => FinalAction {
                kind: FinalActionKind::Voicemail,
                message: match final_action.kind {
                    FinalActionKind::Voicemail => final_action.message,
                    _ => FinalAction::default().message,
                },
            },
        };
        return why.nothing_rings(Rule::Anonymous, action);
    }
    let screen = company.screening == Screening::Forwarded;
    if screen {
        why.push(Reason::ScreeningOn);
    }

    let at = &Moment {
        instant: timestamp(call.received_at),
        time_zone: company.time_zone,
        seen: Default::default(),
    };
    let mut chain = Chain {
        dialed: &dialed,
        targets: Vec::with_capacity(4),
        ring_timeout_secs: number
            .ring_timeout_secs
            .unwrap_or(company.ring_timeout_secs),
        screen,
    };

    // Step 1: a closed company gets its after-hours action, and nothing else rings.
    if let Some(hours) = company.business_hours {
        let local = at.hours(hours);
        if local.is_open() {
            why.push(Reason::CompanyOpen {
                hours: local.to_reason(),
            });
        } else {
            why.push(Reason::CompanyClosed {
                hours: local.to_reason(),
            });
            match company.after_hours {
                None => {
                    why.push(Reason::AfterHoursFinalAction);
                    return why.nothing_rings(Rule::AfterHours, final_action);
                }
                Some(phone) => {
                    chain.offer(phone, Rule::AfterHours, None, &mut why);
                    let Some(target) = chain.targets.first() else {
                        // The forward was skipped (a loop, or not a number): the final action.
                        why.push(Reason::NoTargetLeft);
                        return why.nothing_rings(Rule::AfterHours, final_action);
                    };
                    why.push(Reason::AfterHoursForwardOnly {
                        number: target.number.clone(),
                    });
                }
            }
            return chain.into_decision(final_action, why);
        }
    }

    // Step 2: the lead's assigned user and the number owner's direct line (in the number's
    // preferred order), the forwarding number, the company phone.
    let lead = find_lead(call, caller, view, at, &mut why);
    let owner_first = number.prefer == Prefer::NumberOwner;
    let (first, second) = if owner_first {
        (Rule::DirectLine, Rule::AssignedUser)
    } else {
        (Rule::AssignedUser, Rule::DirectLine)
    };
    if owner_first && let Some(owner) = number.user_id {
        why.push(Reason::NumberPrefersOwner {
            user_id: owner.clone(),
        });
    }
    let returning_days = company.returning_caller_days;
    // What comes after the user steps, given whether the lead's owner was eligible.
    let after_users = |owner_eligible: bool| {
        if returning_days > 0 && !owner_eligible {
            Rule::ReturningCaller
        } else if number.ring_group.is_some() {
            Rule::RingGroup
        } else {
            Rule::ForwardingNumber
        }
    };
    let after_first = match second {
        Rule::DirectLine if number.user_id.is_none() => after_users(false),
        other => other,
    };
    let mut owner_eligible = false;
    for step in [first, second] {
        let next = if step == first {
            after_first
        } else {
            after_users(owner_eligible)
        };
        match step {
            Rule::AssignedUser => {
                owner_eligible = assigned_user(lead, view, at, next, &mut chain, &mut why);
            }
            _ => direct_line(&number, view, at, next, &mut chain, &mut why),
        }
    }

    // A returning caller whose lead has no eligible owner: who answered them last.
    if returning_days > 0 && !owner_eligible {
        let next = if number.ring_group.is_some() {
            Rule::RingGroup
        } else {
            Rule::ForwardingNumber
        };
        let window_start = call.received_at.unix_timestamp() - i64::from(returning_days) * 86_400;
        let last = caller
            .as_ref()
            .ok()
            .and_then(|number| Some((number, history.last_answer(number)?)))
            .filter(|(_, answer)| answer.answered_at >= window_start);
        match last {
            None => why.push(Reason::NotReturningCaller {
                days: returning_days,
                next,
            }),
            Some((number, answer)) => {
                why.push(Reason::ReturningCaller {
                    number: number.clone(),
                    user_id: answer.user_id.clone(),
                    answered_at: rfc3339(answer.answered_at),
                    days: returning_days,
                });
                if let Some(phone) = user_step(
                    Rule::ReturningCaller,
                    &answer.user_id,
                    None,
                    view.user(&answer.user_id),
                    at,
                    next,
                    &mut why,
                ) {
                    chain.offer(
                        phone,
                        Rule::ReturningCaller,
                        Some(&answer.user_id),
                        &mut why,
                    );
                }
            }
        }
    }

    // The dialed number's ring group.
    if let Some(group) = number.ring_group {
        ring_group(group, view, at, &mut chain, &mut why);
    }

    // The dialed number's forwarding number.
    match number.forwarding_number {
        None => why.push(Reason::NoForwardingNumber {
            number: dialed.clone(),
        }),
        Some(phone) => chain.offer(phone, Rule::ForwardingNumber, None, &mut why),
    }

    // The company phone.
    match view.company_phone() {
        None => why.push(Reason::NoCompanyPhone),
        Some(phone) => chain.offer(phone, Rule::CompanyPhone, None, &mut why),
    }

    chain.into_decision(final_action, why)
}

/// When the call came, and the zone of schedules that name none (the company's); with the
/// schedules already read at that instant.
struct Moment<'a> {
    instant: jiff::Timestamp,
    time_zone: &'a jiff::tz::TimeZone,
    /// The last schedules read ([`Moment::hours`]), most recent first.
    seen: [Cell<Option<(&'a Hours, LocalHours<'a>)>>; 2],
}

impl<'a> Moment<'a> {
    /// The call seen through `hours`. Users share compiled schedules (and business hours equal
    /// to a user's are the same compiled schedule, see `HoursCache` in state.rs), so the
    /// second look at a schedule within a decision reuses the first's local date and time
    /// instead of converting the instant to the zone again.
    fn hours(&self, hours: &'a Hours) -> LocalHours<'a> {
        let [last, before] = &self.seen;
        for cell in [last, before] {
            if let Some((seen, local)) = cell.get()
                && std::ptr::eq(seen, hours)
            {
                return local;
            }
        }
        let local = hours.at(self.instant, self.time_zone);
        before.set(last.get());
        last.set(Some((hours, local)));
        local
    }
}

/// Two ASCII digits of `n` (below 100).
fn two_digits(n: u16) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// ASCII digits and separators as an inline [`CompactString`] (up to 24 bytes: no allocation).
fn ascii(bytes: &[u8]) -> CompactString {
    CompactString::from_utf8(bytes).unwrap_or_default()
}

/// The targets found so far, without the dialed number and without repeats.
struct Chain<'a> {
    dialed: &'a E164,
    targets: Vec<Target>,
    /// Every leg's ring timeout: the number's, else the company's.
    ring_timeout_secs: u32,
    /// `screening: "forwarded"`: every leg but the company phone is screened.
    screen: bool,
}

impl Chain<'_> {
    fn offer(
        &mut self,
        phone: &SettingPhone,
        rule: Rule,
        user_id: Option<&EntityId>,
        why: &mut Why,
    ) {
        let timeout = self.ring_timeout_secs;
        self.offer_for(phone, rule, user_id, timeout, why);
    }

    /// The number of `phone` if it may join the chain (valid, not the dialed number, not in
    /// the chain yet nor among `pending` members), else `None` with the reason.
    fn admit<'p>(
        &self,
        phone: &'p SettingPhone,
        rule: Rule,
        user_id: Option<&EntityId>,
        pending: &[GroupMember],
        why: &mut Why,
    ) -> Option<&'p E164> {
        let number = match phone {
            SettingPhone::Invalid(error) => {
                why.push(Reason::PhoneUnusable {
                    rule,
                    user_id: user_id.cloned(),
                    error: error.clone(),
                });
                return None;
            }
            SettingPhone::Valid(number) => number,
        };
        if number == self.dialed {
            why.push(Reason::DialedNumberSkipped(Offer {
                rule,
                user_id: user_id.cloned(),
                number: number.clone(),
            }));
            return None;
        }
        // A leg rings its group's members, or its number alone (`Target::numbers`).
        let earlier = self
            .targets
            .iter()
            .find(|t| match t.group.as_slice() {
                [] => &t.number == number,
                members => members.iter().any(|m| &m.number == number),
            })
            .map(|t| t.rule)
            .or_else(|| pending.iter().any(|m| &m.number == number).then_some(rule));
        if let Some(earlier_rule) = earlier {
            why.push(Reason::AlreadyInChain {
                rule,
                user_id: user_id.cloned(),
                number: number.clone(),
                earlier_rule,
            });
            return None;
        }
        Some(number)
    }

    /// Adds a leg: screened when screening is on, unless it is the company phone.
    fn push(&mut self, mut target: Target, why: &mut Why) {
        why.push(Reason::Target);
        target.screen = self.screen && target.rule != Rule::CompanyPhone;
        self.targets.push(target);
    }

    fn offer_for(
        &mut self,
        phone: &SettingPhone,
        rule: Rule,
        user_id: Option<&EntityId>,
        ring_timeout_secs: u32,
        why: &mut Why,
    ) {
        if let Some(number) = self.admit(phone, rule, user_id, &[], why) {
            let target = Target::single(
                number.clone(),
                user_id.cloned(),
                rule,
                Some(ring_timeout_secs),
            );
            self.push(target, why);
        }
    }

    /// The decision: the first target, the others as fallbacks, then the final action.
    fn into_decision(self, final_action: FinalAction, mut why: Why) -> Decision {
        let mut fallbacks = self.targets;
        if fallbacks.is_empty() {
            why.push(Reason::NoTargetLeft);
            return why.nothing_rings(Rule::NoRoute, final_action);
        }
        let target = fallbacks.remove(0);
        Decision {
            rule: target.rule,
            target: Some(target),
            fallbacks,
            final_action,
            reasons: why.0,
            caller: None,
        }
    }
}

/// Why a user cannot take the call, if they cannot.
enum Ineligible<'a> {
    Unknown,
    Deactivated,
    Unavailable,
    NoPhone,
    OutsideHours(LocalHours<'a>),
}

impl Ineligible<'_> {
    /// The reason for skipping user `user_id` at step `rule` (with the lead, for
    /// `assigned_user`), `next` coming next.
    fn reason(
        self,
        rule: Rule,
        user_id: &EntityId,
        contact_id: Option<&EntityId>,
        next: Rule,
    ) -> Reason {
        let skipped = |hours: Option<HoursAt>| UserSkipped {
            rule,
            user_id: user_id.clone(),
            contact_id: contact_id.cloned(),
            next,
            hours,
        };
        match self {
            Ineligible::Unknown => Reason::UserUnknown(skipped(None)),
            Ineligible::Deactivated => Reason::UserDeactivated(skipped(None)),
            Ineligible::Unavailable => Reason::UserUnavailable(skipped(None)),
            Ineligible::NoPhone => Reason::UserHasNoPhone(skipped(None)),
            Ineligible::OutsideHours(local) => {
                Reason::UserOutsideWorkingHours(skipped(Some(local.to_reason())))
            }
        }
    }
}

/// Whether `user` can take a call at `at` (issue 15: "active, `available`, has a phone, and —
/// if `ring_only_in_working_hours` — the call falls inside their working hours"): their phone,
/// with their working hours at the call when those decided it, or why not.
fn eligible<'v>(
    user: Option<UserView<'v>>,
    at: &Moment<'v>,
) -> Result<(&'v SettingPhone, Option<LocalHours<'v>>), Ineligible<'v>> {
    let user = user.ok_or(Ineligible::Unknown)?;
    if !user.active {
        return Err(Ineligible::Deactivated);
    }
    if !user.available {
        return Err(Ineligible::Unavailable);
    }
    let phone = user.phone.ok_or(Ineligible::NoPhone)?;
    let hours = match user.working_hours {
        Some(hours) if user.ring_only_in_working_hours => {
            let local = at.hours(hours);
            if !local.is_open() {
                return Err(Ineligible::OutsideHours(local));
            }
            Some(local)
        }
        _ => None,
    };
    Ok((phone, hours))
}

/// The user step `rule` for `user_id` (with the lead, for `assigned_user`), whose settings are
/// `user` (`view.user(user_id)`): the user's phone if eligible (for the caller to offer to the
/// chain), else `None` with the reason.
fn user_step<'v>(
    rule: Rule,
    user_id: &EntityId,
    contact_id: Option<&EntityId>,
    user: Option<UserView<'v>>,
    at: &Moment<'v>,
    next: Rule,
    why: &mut Why,
) -> Option<&'v SettingPhone> {
    match eligible(user, at) {
        Err(reason) => {
            why.push(reason.reason(rule, user_id, contact_id, next));
            None
        }
        Ok((phone, hours)) => {
            why.push(Reason::UserEligible {
                rule,
                user_id: user_id.clone(),
                contact_id: contact_id.cloned(),
                hours: hours.map(|h| h.to_reason()),
            });
            Some(phone)
        }
    }
}

/// The lead's assigned user; whether that user was eligible with a phone that can ring.
fn assigned_user<'v>(
    lead: Option<ContactView<'v>>,
    view: &'v impl SettingsView,
    at: &Moment<'v>,
    next: Rule,
    chain: &mut Chain<'_>,
    why: &mut Why,
) -> bool {
    let Some(lead) = lead else {
        why.push(Reason::NoLead { next });
        return false;
    };
    let Some(user_id) = lead.assigned_user_id else {
        why.push(Reason::LeadUnassigned {
            contact_id: lead.contact_id.clone(),
            next,
        });
        return false;
    };
    let rule = Rule::AssignedUser;
    let user = view.user(user_id);
    match user_step(rule, user_id, Some(lead.contact_id), user, at, next, why) {
        None => false,
        Some(phone) => {
            chain.offer(phone, rule, Some(user_id), why);
            // The owner is reached only through a phone that can ring (a usable number, not
            // the dialed one); otherwise returning callers still apply.
            matches!(phone, SettingPhone::Valid(n) if n != chain.dialed)
        }
    }
}

/// The ring group's eligible members: one leg ringing them all at once, or one leg each.
fn ring_group<'v>(
    group: &'v RingGroup,
    view: &'v impl SettingsView,
    at: &Moment<'v>,
    chain: &mut Chain<'_>,
    why: &mut Why,
) {
    why.push(Reason::RingGroup {
        mode: group.mode,
        user_ids: group.user_ids.clone(),
    });
    let timeout = group.ring_timeout_secs.unwrap_or(chain.ring_timeout_secs);
    let rule = Rule::RingGroup;
    let legs_before = chain.targets.len();
    let mut members: Vec<GroupMember> = Vec::new();
    let last = group.user_ids.len().saturating_sub(1);
    for (i, user_id) in group.user_ids.iter().enumerate() {
        let next = if i == last {
            Rule::ForwardingNumber
        } else {
            Rule::RingGroup
        };
        let Some(phone) = user_step(rule, user_id, None, view.user(user_id), at, next, why) else {
            continue;
        };
        match group.mode {
            RingMode::Sequential => chain.offer_for(phone, rule, Some(user_id), timeout, why),
            RingMode::Simultaneous => {
                if let Some(number) = chain.admit(phone, rule, Some(user_id), &members, why) {
                    why.push(Reason::GroupMember(Offer {
                        rule,
                        user_id: Some(user_id.clone()),
                        number: number.clone(),
                    }));
                    members.push(GroupMember {
                        number: number.clone(),
                        user_id: user_id.clone(),
                    });
                }
            }
        }
    }
    if let Some(first) = members.first() {
        let mut leg = Target::single(
            first.number.clone(),
            Some(first.user_id.clone()),
            rule,
            Some(timeout),
        );
        if members.len() > 1 {
            leg.group = members;
        }
        chain.push(leg, why);
    }
    if chain.targets.len() == legs_before {
        why.push(Reason::RingGroupEmpty);
    }
}

/// The final action of a refused call: nothing is answered, the caller's carrier plays busy.
fn reject() -> FinalAction {
    FinalAction {
        kind: FinalActionKind::Reject,
        // Empty: `Arc::<str>::default` shares one, allocating nothing.
        message: Default::default(),
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-12-04T15:04:05Z`): what `jiff::Timestamp` displays,
/// written digit by digit from the year 0000 to the end of `jiff`'s range (`jiff` itself before
/// it, which it writes signed, and `""` past its range). A [`CompactString`]: the 20 bytes are
/// held inline, so a returning caller's reason allocates nothing for its `answered_at`.
fn rfc3339(unix: i64) -> CompactString {
    /// 0000-01-01T00:00:00Z.
    const FIRST: i64 = -62_167_219_200;
    if !(FIRST..=jiff::Timestamp::MAX.as_second()).contains(&unix) {
        return jiff::Timestamp::from_second(unix)
            .map(|t| CompactString::from(t.to_string()))
            .unwrap_or_default();
    }
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    let [y1, y2] = two_digits(year / 100);
    let [y3, y4] = two_digits(year % 100);
    let [mo1, mo2] = two_digits(month);
    let [d1, d2] = two_digits(day);
    // Below 86,400: every part fits a u16.
    let part = |n: i64| u16::try_from(n).unwrap_or(0);
    let [h1, h2] = two_digits(part(secs / 3600));
    let [mi1, mi2] = two_digits(part(secs / 60 % 60));
    let [s1, s2] = two_digits(part(secs % 60));
    ascii(&[
        y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T', h1, h2, b':', mi1, mi2, b':', s1, s2,
        b'Z',
    ])
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), for days of the years 0–9999.
fn civil_from_days(days: i64) -> (u16, u16, u16) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let part = |n: i64| u16::try_from(n).unwrap_or(0);
    (part(year), part(month), part(day))
}

/// The dialed number's owner (its `user_id`), if eligible.
fn direct_line<'v>(
    number: &NumberView<'v>,
    view: &'v impl SettingsView,
    at: &Moment<'v>,
    next: Rule,
    chain: &mut Chain<'_>,
    why: &mut Why,
) {
    // A number that is nobody's direct line skips the step without a word.
    let Some(user_id) = number.user_id else {
        return;
    };
    let user = view.user(user_id);
    if let Some(phone) = user_step(Rule::DirectLine, user_id, None, user, at, next, why) {
        chain.offer(phone, Rule::DirectLine, Some(user_id), why);
    }
}

/// Finds the lead: the producer's `contact_id` if it names a live contact, else the contacts
/// whose phones contain the caller number.
fn find_lead<'v>(
    call: &CallInbound,
    caller: &Result<E164, PhoneError>,
    view: &'v impl SettingsView,
    at: &Moment<'v>,
    why: &mut Why,
) -> Option<ContactView<'v>> {
    if let Some(contact_id) = &call.contact_id {
        match view.contact(contact_id) {
            Some(contact) if !contact.deleted => {
                why.push(Reason::LeadNamed {
                    contact_id: contact_id.clone(),
                });
                return Some(contact);
            }
            Some(_) => why.push(Reason::NamedLeadDeleted {
                contact_id: contact_id.clone(),
            }),
            None => why.push(Reason::NamedLeadUnknown {
                contact_id: contact_id.clone(),
            }),
        }
    }
    let caller = match caller {
        Ok(caller) => caller.clone(),
        Err(PhoneError::Withheld) => {
            why.push(Reason::CallerWithheld);
            return None;
        }
        Err(error) => {
            why.push(Reason::CallerUnusable {
                masked: switchboard_contracts::phone::mask(&call.from),
                error: error.clone(),
            });
            return None;
        }
    };
    // Nearly every caller is one lead or none: found without collecting the matches.
    let mut live = view
        .contacts_with_phone(&caller)
        .iter()
        .filter_map(|id| view.contact(id))
        .filter(|c| !c.deleted);
    let Some(first) = live.next() else {
        why.push(Reason::CallerUnknown { number: caller });
        return None;
    };
    let Some(second) = live.next() else {
        why.push(Reason::CallerIsLead {
            number: caller,
            contact_id: first.contact_id.clone(),
        });
        return Some(first);
    };
    // Deterministic choice: a lead whose assigned user can take the call wins, so a person
    // who owns this caller rings; ties go to the smallest contact id.
    let mut leads: Vec<ContactView<'v>> = [first, second].into_iter().chain(live).collect();
    leads.sort_by_key(|c| (!reachable_owner(c, view, at), c.contact_id));
    let contact_ids = leads.iter().map(|c| c.contact_id.clone()).collect();
    let chosen = leads.remove(0);
    why.push(Reason::CallerMatchesLeads {
        number: caller,
        contact_ids,
        chosen: chosen.contact_id.clone(),
        owner_reachable: reachable_owner(&chosen, view, at),
    });
    Some(chosen)
}

/// Whether the lead's assigned user is eligible for the call, with a valid phone.
fn reachable_owner<'v>(
    contact: &ContactView<'v>,
    view: &'v impl SettingsView,
    at: &Moment<'v>,
) -> bool {
    contact
        .assigned_user_id
        .is_some_and(|id| matches!(eligible(view.user(id), at), Ok((SettingPhone::Valid(_), _))))
}

/// The reasons so far.
struct Why(Vec<Reason>);

impl Why {
    /// Inlined into every step: a call per reason cost about 30 instructions a decision
    /// (callgrind; the reason is still built on the stack and copied into the vector).
    #[inline(always)]
    fn push(&mut self, reason: Reason) {
        self.0.push(reason);
    }

    /// A decision where nothing rings: `rule` is `no_route`, or `after_hours` when the company
    /// is closed and its after-hours action is the final action.
    fn nothing_rings(self, rule: Rule, final_action: FinalAction) -> Decision {
        Decision {
            rule,
            target: None,
            fallbacks: Vec::new(),
            final_action,
            reasons: self.0,
            caller: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    /// What the decision wrote before `rfc3339` wrote the digits itself.
    fn jiff(unix: i64) -> String {
        jiff::Timestamp::from_second(unix)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Written digit by digit, the text is `jiff`'s: across the years it writes that way
    /// (0000–9999, leap days and century years included), at their edges, and past them.
    #[test]
    fn rfc3339_is_what_jiff_displays() {
        let edges = [
            -62_167_219_201, // 0000-01-01 minus a second: jiff writes the year signed
            -62_167_219_200, // 0000-01-01T00:00:00Z
            -62_162_035_201, // 0000-02-29T23:59:59Z (year 0 is a leap year)
            -2_208_988_800,  // 1900-01-01
            -5_364_662_401,  // 1799-12-31T23:59:59Z
            -1,
            0,
            951_782_400,     // 2000-02-29
            1_798_761_599,   // 2026-12-31T23:59:59Z
            4_107_542_400,   // 2100-03-01
            253_402_207_199, // 9999-12-30T21:59:59Z
            253_402_207_200, // 9999-12-30T22:00:00Z, jiff's last second
            253_402_207_201, // past it: nothing
            253_402_300_799, // 9999-12-31T23:59:59Z
            253_402_300_800, // 10000-01-01
            i64::MIN,
            i64::MAX,
        ];
        for unix in edges {
            assert_eq!(rfc3339(unix), jiff(unix), "{unix}");
        }
        // Written inline: a returning caller's `answered_at` allocates nothing.
        assert!(!rfc3339(1_798_761_599).is_heap_allocated());
        // Every day of four centuries around 1970, at a second that moves through the day.
        let mut unix = -12_622_780_800; // 1570-01-01
        while unix < 12_622_780_800 {
            assert_eq!(rfc3339(unix), jiff(unix), "{unix}");
            unix += 86_400 + 7_919;
        }
    }
}
