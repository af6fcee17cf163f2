//! The decision itself. Each step appends one line to the explanation; numbers in the
//! explanation are masked, since explanations are shown to people and may reach logs (the
//! full numbers are in `target` and `fallbacks`).

use crate::view::{ContactView, NumberView, SettingPhone, SettingsView, UserView};
use std::fmt::Write as _;
use switchboard_contracts::schedule::{LocalHours, timestamp};
use switchboard_contracts::{
    CallInbound, CallRoute, E164, EntityId, FinalAction, PhoneError, Prefer, Rule, Target,
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
    pub explanation: Vec<String>,
}

impl Decision {
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
            explanation: self.explanation,
            settings_seq,
            decided_at,
        }
    }
}

/// Decides where `call` rings, from `view` alone, at the call's `received_at` (never the
/// clock, so replay re-decides the same).
pub fn decide(call: &CallInbound, view: &impl SettingsView) -> Decision {
    // A decision is about 6 to 9 lines and at most 4 targets: sized once, never regrown.
    let mut why = Explanation(Vec::with_capacity(10));
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
        Err(e) => {
            why.line(format_args!(
                "The dialed number {} is not a usable phone number ({e}).",
                switchboard_contracts::phone::mask(&call.to)
            ));
            return why.no_route(final_action);
        }
    };
    let Some(number) = view.number(&dialed) else {
        why.line(format_args!(
            "The dialed number {dialed} is not provisioned for this tenant."
        ));
        return why.no_route(final_action);
    };
    if number.released {
        why.line(format_args!(
            "The dialed number {dialed} has been released by this tenant."
        ));
        return why.no_route(final_action);
    }
    why.line(format_args!(
        "The dialed number {dialed} belongs to this tenant."
    ));

    let company = view.company();
    let at = Moment {
        instant: timestamp(call.received_at),
        time_zone: company.time_zone,
    };
    let mut chain = Chain {
        dialed: &dialed,
        targets: Vec::with_capacity(4),
        ring_timeout_secs: number
            .ring_timeout_secs
            .unwrap_or(company.ring_timeout_secs),
    };

    // Step 1: a closed company gets its after-hours action, and nothing else rings.
    if let Some(hours) = company.business_hours {
        let local = hours.at(at.instant, at.time_zone);
        let open = local.is_open();
        why.line(format_args!(
            "The company is {}: {}, the call came at {} local.",
            if open { "open" } else { "closed" },
            local.hours_text(),
            local.time_text()
        ));
        if !open {
            match company.after_hours {
                None => {
                    why.push("After hours nothing rings (after_hours: final action).".into());
                    return why.no_route(final_action);
                }
                Some(phone) => {
                    chain.offer(
                        phone,
                        Rule::AfterHours,
                        None,
                        &"after-hours forward",
                        &mut why,
                    );
                    if let Some(target) = chain.targets.first() {
                        why.line(format_args!(
                            "After hours only the forward {} rings, with no fallbacks.",
                            target.number
                        ));
                    }
                }
            }
            return chain.into_decision(final_action, why);
        }
    }

    // Step 2: the lead's assigned user and the number owner's direct line (in the number's
    // preferred order), the forwarding number, the company phone.
    let lead = find_lead(call, view, at, &mut why);
    let owner_first = number.prefer == Prefer::NumberOwner;
    let (first, second) = if owner_first {
        (Step::DirectLine, Step::AssignedUser)
    } else {
        (Step::AssignedUser, Step::DirectLine)
    };
    if owner_first && let Some(owner) = number.user_id {
        why.line(format_args!(
            "This number prefers its owner: user {owner}'s direct line comes before the lead's assigned user."
        ));
    }
    let after_second = "the forwarding number comes next";
    let after_first = match second {
        Step::DirectLine if number.user_id.is_some() => "the direct line comes next",
        Step::DirectLine => after_second,
        Step::AssignedUser => "the lead's assigned user comes next",
    };
    for (step, next) in [(first, after_first), (second, after_second)] {
        match step {
            Step::AssignedUser => assigned_user(lead, view, at, next, &mut chain, &mut why),
            Step::DirectLine => direct_line(&number, view, at, next, &mut chain, &mut why),
        }
    }

    // The dialed number's forwarding number.
    match number.forwarding_number {
        None => why.line(format_args!(
            "The dialed number {dialed} has no forwarding number; the company phone comes next."
        )),
        Some(phone) => chain.offer(
            phone,
            Rule::ForwardingNumber,
            None,
            &"forwarding number",
            &mut why,
        ),
    }

    // The company phone.
    match view.company_phone() {
        None => why.push("The company has no company phone set up.".into()),
        Some(phone) => chain.offer(phone, Rule::CompanyPhone, None, &"company phone", &mut why),
    }

    chain.into_decision(final_action, why)
}

/// The two user steps of the chain, whose order the number's `prefer` sets.
#[derive(Debug, Clone, Copy)]
enum Step {
    AssignedUser,
    DirectLine,
}

/// When the call came, and the zone of schedules that name none (the company's).
#[derive(Clone, Copy)]
struct Moment<'a> {
    instant: jiff::Timestamp,
    time_zone: &'a jiff::tz::TimeZone,
}

/// The targets found so far, without the dialed number and without repeats.
struct Chain<'a> {
    dialed: &'a E164,
    targets: Vec<Target>,
    /// Every leg's ring timeout: the number's, else the company's.
    ring_timeout_secs: u32,
}

impl Chain<'_> {
    fn offer(
        &mut self,
        phone: &SettingPhone,
        rule: Rule,
        user_id: Option<&EntityId>,
        what: &dyn std::fmt::Display,
        why: &mut Explanation,
    ) {
        let number = match phone {
            SettingPhone::Invalid(e) => {
                why.line(format_args!(
                    "The {what} is not a usable phone number ({e}); skipped."
                ));
                return;
            }
            SettingPhone::Valid(number) => number,
        };
        if number == self.dialed {
            why.line(format_args!(
                "The {what} {number} is the dialed number itself; skipped to avoid a forwarding loop."
            ));
        } else if let Some(earlier) = self.targets.iter().find(|t| &t.number == number) {
            why.line(format_args!(
                "The {what} {number} is already in the chain ({}); not repeated.",
                earlier.rule.as_str()
            ));
        } else {
            why.line(format_args!(
                "The {what} {number} is a target ({}).",
                rule.as_str()
            ));
            self.targets.push(Target {
                number: number.clone(),
                user_id: user_id.cloned(),
                rule,
                ring_timeout_secs: Some(self.ring_timeout_secs),
            });
        }
    }

    /// The decision: the first target, the others as fallbacks, then the final action.
    fn into_decision(self, final_action: FinalAction, mut why: Explanation) -> Decision {
        let mut targets = self.targets.into_iter();
        let Some(target) = targets.next() else {
            why.push("No number is left to ring.".into());
            return why.no_route(final_action);
        };
        let fallbacks: Vec<Target> = targets.collect();
        let mut ring = String::with_capacity(256);
        let _ = write!(ring, "Ring {} ({})", target.number, target.rule.as_str());
        for t in &fallbacks {
            let _ = write!(ring, ", then {} ({})", t.number, t.rule.as_str());
        }
        // The ring timeout is on every target; this line stays as it was before timeouts,
        // so that a replay of earlier decisions still matches.
        let _ = write!(
            ring,
            "; if no one answers, {}.",
            final_action_words(&final_action)
        );
        why.push(ring);
        Decision {
            rule: target.rule,
            target: Some(target),
            fallbacks,
            final_action,
            explanation: why.0,
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

/// Whether `user` can take a call at `at` (issue 15: "active, `available`, has a phone, and —
/// if `ring_only_in_working_hours` — the call falls inside their working hours"): their phone,
/// with their working hours at the call when those decided it, or why not.
fn eligible<'v>(
    user: Option<UserView<'v>>,
    at: Moment<'v>,
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
            let local = hours.at(at.instant, at.time_zone);
            if !local.is_open() {
                return Err(Ineligible::OutsideHours(local));
            }
            Some(local)
        }
        _ => None,
    };
    Ok((phone, hours))
}

impl std::fmt::Display for Ineligible<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::Unknown => f.write_str("who is unknown"),
            Ineligible::Deactivated => f.write_str("who is deactivated"),
            Ineligible::Unavailable => f.write_str("who is unavailable (do not disturb)"),
            Ineligible::NoPhone => f.write_str("who has no phone number"),
            Ineligible::OutsideHours(local) => write!(
                f,
                "who is outside working hours: {}, the call came at {} local",
                local.hours_text(),
                local.time_text()
            ),
        }
    }
}

/// `, inside working hours: Mon 09:00–17:00 Europe/Berlin, the call came at 10:05 local`, when
/// working hours decided.
struct InsideHours<'a>(Option<LocalHours<'a>>);

impl std::fmt::Display for InsideHours<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => Ok(()),
            Some(local) => write!(
                f,
                ", inside working hours: {}, the call came at {} local",
                local.hours_text(),
                local.time_text()
            ),
        }
    }
}

fn assigned_user(
    lead: Option<ContactView<'_>>,
    view: &impl SettingsView,
    at: Moment<'_>,
    next: &str,
    chain: &mut Chain<'_>,
    why: &mut Explanation,
) {
    let Some(lead) = lead else {
        why.line(format_args!(
            "Without a lead there is no assigned user; {next}."
        ));
        return;
    };
    let Some(user_id) = lead.assigned_user_id else {
        why.line(format_args!(
            "Lead {} is not assigned to a user; {next}.",
            lead.contact_id
        ));
        return;
    };
    match eligible(view.user(user_id), at) {
        Err(reason) => why.line(format_args!(
            "Lead {} is assigned to user {user_id}, {reason}; {next}.",
            lead.contact_id
        )),
        Ok((phone, hours)) => {
            why.line(format_args!(
                "Lead {} is assigned to user {user_id}, who is active{}.",
                lead.contact_id,
                InsideHours(hours)
            ));
            chain.offer(
                phone,
                Rule::AssignedUser,
                Some(user_id),
                &format_args!("phone of user {user_id}"),
                why,
            );
        }
    }
}

/// The dialed number's owner (its `user_id`), if eligible.
fn direct_line(
    number: &NumberView<'_>,
    view: &impl SettingsView,
    at: Moment<'_>,
    next: &str,
    chain: &mut Chain<'_>,
    why: &mut Explanation,
) {
    // A number that is nobody's direct line skips the step without a word.
    let Some(user_id) = number.user_id else {
        return;
    };
    match eligible(view.user(user_id), at) {
        Err(reason) => why.line(format_args!(
            "The dialed number is the direct line of user {user_id}, {reason}; {next}."
        )),
        Ok((phone, hours)) => {
            why.line(format_args!(
                "The dialed number is the direct line of user {user_id}, who is active{}.",
                InsideHours(hours)
            ));
            chain.offer(
                phone,
                Rule::DirectLine,
                Some(user_id),
                &format_args!("phone of user {user_id}"),
                why,
            );
        }
    }
}

/// Finds the lead: the producer's `contact_id` if it names a live contact, else the contacts
/// whose phones contain the caller number.
fn find_lead<'v>(
    call: &CallInbound,
    view: &'v impl SettingsView,
    at: Moment<'_>,
    why: &mut Explanation,
) -> Option<ContactView<'v>> {
    if let Some(contact_id) = &call.contact_id {
        match view.contact(contact_id) {
            Some(contact) if !contact.deleted => {
                why.line(format_args!("Lead {contact_id} was named by the producer."));
                return Some(contact);
            }
            Some(_) => why.line(format_args!(
                "Lead {contact_id} named by the producer is deleted; looking the caller up instead."
            )),
            None => why.line(format_args!(
                "Lead {contact_id} named by the producer is unknown; looking the caller up instead."
            )),
        }
    }
    let caller = match E164::lookup_key(&call.from, view.region()) {
        Ok(caller) => caller,
        Err(PhoneError::Withheld) => {
            why.push("The caller withheld their number, so no lead can be found.".into());
            return None;
        }
        Err(e) => {
            why.line(format_args!(
                "The caller number {} is not usable ({e}), so no lead can be found.",
                switchboard_contracts::phone::mask(&call.from)
            ));
            return None;
        }
    };
    let mut leads: Vec<ContactView<'v>> = view
        .contacts_with_phone(&caller)
        .iter()
        .filter_map(|id| view.contact(id))
        .filter(|c| !c.deleted)
        .collect();
    match leads.len() {
        0 => {
            why.line(format_args!("The caller {caller} is not a known lead."));
            None
        }
        1 => {
            let lead = leads.remove(0);
            why.line(format_args!(
                "The caller {caller} is lead {}.",
                lead.contact_id
            ));
            Some(lead)
        }
        n => {
            // Deterministic choice: a lead whose assigned user can take the call wins, so a
            // person who owns this caller rings; ties go to the smallest contact id.
            leads.sort_by_key(|c| (!reachable_owner(c, view, at), c.contact_id));
            let ids: Vec<&str> = leads.iter().map(|c| c.contact_id.as_str()).collect();
            let chosen = leads.remove(0);
            // Worded as before availability and working hours counted, so that a replay of
            // earlier decisions still matches ("active user with a phone" now also means
            // available and in working hours).
            let reason = if reachable_owner(&chosen, view, at) {
                "the first (by contact id) assigned to an active user with a phone"
            } else {
                "none is assigned to an active user with a phone; the smallest contact id"
            };
            why.line(format_args!(
                "The caller {caller} matches {n} leads ({}); chose {}: {reason}.",
                ids.join(", "),
                chosen.contact_id
            ));
            Some(chosen)
        }
    }
}

/// Whether the lead's assigned user is eligible for the call, with a valid phone.
fn reachable_owner(contact: &ContactView<'_>, view: &impl SettingsView, at: Moment<'_>) -> bool {
    contact
        .assigned_user_id
        .is_some_and(|id| matches!(eligible(view.user(id), at), Ok((SettingPhone::Valid(_), _))))
}

fn final_action_words(action: &FinalAction) -> &'static str {
    match action.kind {
        switchboard_contracts::FinalActionKind::Voicemail => {
            "the caller hears the greeting and can leave a voicemail"
        }
        switchboard_contracts::FinalActionKind::AnnounceHangup => {
            "the caller hears the announcement, then the call ends"
        }
    }
}

struct Explanation(Vec<String>);

impl Explanation {
    fn push(&mut self, line: String) {
        self.0.push(line);
    }

    /// Appends a formatted line, written into a buffer sized for a typical line once
    /// (`format!` sizes from the literal parts alone and regrows as the values come in).
    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        let mut line = String::with_capacity(128);
        let _ = line.write_fmt(args);
        self.0.push(line);
    }

    fn no_route(mut self, final_action: FinalAction) -> Decision {
        self.line(format_args!(
            "No route: {}.",
            final_action_words(&final_action)
        ));
        Decision {
            rule: Rule::NoRoute,
            target: None,
            fallbacks: Vec::new(),
            final_action,
            explanation: self.0,
        }
    }
}
