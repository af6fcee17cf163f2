//! The decision itself. Each step appends one [`Reason`] (a stable code with its parameters);
//! rendering them as English is for `explain`, the CLI and the API ([`Decision::explanation`]),
//! never part of deciding.

use crate::view::{ContactView, NumberView, SettingPhone, SettingsView, UserView};
use switchboard_contracts::reasons::{HoursAt, Offer, Reason, UserSkipped};
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
    pub reasons: Vec<Reason>,
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
            decided_at,
        }
    }
}

/// Decides where `call` rings, from `view` alone, at the call's `received_at` (never the
/// clock, so replay re-decides the same).
pub fn decide(call: &CallInbound, view: &impl SettingsView) -> Decision {
    // A decision is about 6 to 9 reasons and at most 4 targets: sized once, never regrown.
    let mut why = Why(Vec::with_capacity(10));
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
    let lead = find_lead(call, view, at, &mut why);
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
    let after_first = match second {
        Rule::DirectLine if number.user_id.is_none() => Rule::ForwardingNumber,
        other => other,
    };
    for (step, next) in [(first, after_first), (second, Rule::ForwardingNumber)] {
        match step {
            Rule::AssignedUser => assigned_user(lead, view, at, next, &mut chain, &mut why),
            _ => direct_line(&number, view, at, next, &mut chain, &mut why),
        }
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
        why: &mut Why,
    ) {
        let number = match phone {
            SettingPhone::Invalid(error) => {
                why.push(Reason::PhoneUnusable {
                    rule,
                    user_id: user_id.cloned(),
                    error: error.clone(),
                });
                return;
            }
            SettingPhone::Valid(number) => number,
        };
        if number == self.dialed {
            why.push(Reason::DialedNumberSkipped(Offer {
                rule,
                user_id: user_id.cloned(),
                number: number.clone(),
            }));
        } else if let Some(earlier) = self.targets.iter().find(|t| &t.number == number) {
            why.push(Reason::AlreadyInChain {
                rule,
                user_id: user_id.cloned(),
                number: number.clone(),
                earlier_rule: earlier.rule,
            });
        } else {
            why.push(Reason::Target);
            self.targets.push(Target {
                number: number.clone(),
                user_id: user_id.cloned(),
                rule,
                ring_timeout_secs: Some(self.ring_timeout_secs),
            });
        }
    }

    /// The decision: the first target, the others as fallbacks, then the final action.
    fn into_decision(self, final_action: FinalAction, mut why: Why) -> Decision {
        let mut targets = self.targets.into_iter();
        let Some(target) = targets.next() else {
            why.push(Reason::NoTargetLeft);
            return why.nothing_rings(Rule::NoRoute, final_action);
        };
        Decision {
            rule: target.rule,
            target: Some(target),
            fallbacks: targets.collect(),
            final_action,
            reasons: why.0,
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

/// The user step `rule` for `user_id` (with the lead, for `assigned_user`): offered to the
/// chain if eligible, else skipped with the reason.
#[allow(clippy::too_many_arguments)] // Each is one fact of the step; a struct would only rename them.
fn user_step(
    rule: Rule,
    user_id: &EntityId,
    contact_id: Option<&EntityId>,
    view: &impl SettingsView,
    at: Moment<'_>,
    next: Rule,
    chain: &mut Chain<'_>,
    why: &mut Why,
) {
    match eligible(view.user(user_id), at) {
        Err(reason) => why.push(reason.reason(rule, user_id, contact_id, next)),
        Ok((phone, hours)) => {
            why.push(Reason::UserEligible {
                rule,
                user_id: user_id.clone(),
                contact_id: contact_id.cloned(),
                hours: hours.map(|h| h.to_reason()),
            });
            chain.offer(phone, rule, Some(user_id), why);
        }
    }
}

fn assigned_user(
    lead: Option<ContactView<'_>>,
    view: &impl SettingsView,
    at: Moment<'_>,
    next: Rule,
    chain: &mut Chain<'_>,
    why: &mut Why,
) {
    let Some(lead) = lead else {
        why.push(Reason::NoLead { next });
        return;
    };
    let Some(user_id) = lead.assigned_user_id else {
        why.push(Reason::LeadUnassigned {
            contact_id: lead.contact_id.clone(),
            next,
        });
        return;
    };
    user_step(
        Rule::AssignedUser,
        user_id,
        Some(lead.contact_id),
        view,
        at,
        next,
        chain,
        why,
    );
}

/// The dialed number's owner (its `user_id`), if eligible.
fn direct_line(
    number: &NumberView<'_>,
    view: &impl SettingsView,
    at: Moment<'_>,
    next: Rule,
    chain: &mut Chain<'_>,
    why: &mut Why,
) {
    // A number that is nobody's direct line skips the step without a word.
    let Some(user_id) = number.user_id else {
        return;
    };
    user_step(Rule::DirectLine, user_id, None, view, at, next, chain, why);
}

/// Finds the lead: the producer's `contact_id` if it names a live contact, else the contacts
/// whose phones contain the caller number.
fn find_lead<'v>(
    call: &CallInbound,
    view: &'v impl SettingsView,
    at: Moment<'_>,
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
    let caller = match E164::lookup_key(&call.from, view.region()) {
        Ok(caller) => caller,
        Err(PhoneError::Withheld) => {
            why.push(Reason::CallerWithheld);
            return None;
        }
        Err(error) => {
            why.push(Reason::CallerUnusable {
                masked: switchboard_contracts::phone::mask(&call.from),
                error,
            });
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
            why.push(Reason::CallerUnknown { number: caller });
            None
        }
        1 => {
            let lead = leads.remove(0);
            why.push(Reason::CallerIsLead {
                number: caller,
                contact_id: lead.contact_id.clone(),
            });
            Some(lead)
        }
        _ => {
            // Deterministic choice: a lead whose assigned user can take the call wins, so a
            // person who owns this caller rings; ties go to the smallest contact id.
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
    }
}

/// Whether the lead's assigned user is eligible for the call, with a valid phone.
fn reachable_owner(contact: &ContactView<'_>, view: &impl SettingsView, at: Moment<'_>) -> bool {
    contact
        .assigned_user_id
        .is_some_and(|id| matches!(eligible(view.user(id), at), Ok((SettingPhone::Valid(_), _))))
}

/// The reasons so far.
struct Why(Vec<Reason>);

impl Why {
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
        }
    }
}
