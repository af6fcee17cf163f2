//! The decision itself. Each step appends one line to the explanation; numbers in the
//! explanation are masked, since explanations are shown to people and may reach logs (the
//! full numbers are in `target` and `fallbacks`).

use crate::view::{ContactView, SettingPhone, SettingsView};
use std::fmt::Write as _;
use switchboard_contracts::{
    CallInbound, CallRoute, E164, EntityId, FinalAction, PhoneError, Rule, Target,
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

/// Decides where `call` rings, from `view` alone.
pub fn decide(call: &CallInbound, view: &impl SettingsView) -> Decision {
    // A decision is about 6 to 9 lines and at most 3 targets: sized once, never regrown.
    let mut why = Explanation(Vec::with_capacity(10));
    let final_action = match view.final_action() {
        Some(action) => action.clone(),
        None => FinalAction::default(),
    };
    let region = view.region();

    // The dialed number must be one of the tenant's live numbers.
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

    let mut chain = Chain {
        dialed: &dialed,
        targets: Vec::with_capacity(3),
    };

    // Rule 1: the lead's assigned user, if active and with a phone.
    match find_lead(call, view, &mut why) {
        None => why.push(
            "Without a lead there is no assigned user; the forwarding number comes next.".into(),
        ),
        Some(lead) => assigned_user(lead, view, &mut chain, &mut why),
    }

    // Rule 2: the dialed number's forwarding number.
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

    // Rule 3: the company phone.
    match view.company_phone() {
        None => why.push("The company has no company phone set up.".into()),
        Some(phone) => chain.offer(phone, Rule::CompanyPhone, None, &"company phone", &mut why),
    }

    let mut targets = chain.targets.into_iter();
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

/// The targets found so far, without the dialed number and without repeats.
struct Chain<'a> {
    dialed: &'a E164,
    targets: Vec<Target>,
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
            });
        }
    }
}

fn assigned_user(
    lead: ContactView<'_>,
    view: &impl SettingsView,
    chain: &mut Chain<'_>,
    why: &mut Explanation,
) {
    let Some(user_id) = lead.assigned_user_id else {
        why.line(format_args!(
            "Lead {} is not assigned to a user; the forwarding number comes next.",
            lead.contact_id
        ));
        return;
    };
    match view.user(user_id) {
        None => why.line(format_args!(
            "Lead {} is assigned to user {user_id}, who is unknown; the forwarding number comes next.",
            lead.contact_id
        )),
        Some(user) if !user.active => why.line(format_args!(
            "Lead {} is assigned to user {user_id}, who is deactivated; the forwarding number comes next.",
            lead.contact_id
        )),
        Some(user) => match user.phone {
            None => why.line(format_args!(
                "Lead {} is assigned to user {user_id}, who has no phone number; the forwarding number comes next.",
                lead.contact_id
            )),
            Some(phone) => {
                why.line(format_args!(
                    "Lead {} is assigned to user {user_id}, who is active.",
                    lead.contact_id
                ));
                chain.offer(
                    phone,
                    Rule::AssignedUser,
                    Some(user_id),
                    &format_args!("phone of user {user_id}"),
                    why,
                );
            }
        },
    }
}

/// Finds the lead: the producer's `contact_id` if it names a live contact, else the contacts
/// whose phones contain the caller number.
fn find_lead<'v>(
    call: &CallInbound,
    view: &'v impl SettingsView,
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
            leads.sort_by_key(|c| (!reachable_owner(c, view), c.contact_id));
            let ids: Vec<&str> = leads.iter().map(|c| c.contact_id.as_str()).collect();
            let chosen = leads.remove(0);
            let reason = if reachable_owner(&chosen, view) {
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

fn reachable_owner(contact: &ContactView<'_>, view: &impl SettingsView) -> bool {
    contact
        .assigned_user_id
        .and_then(|id| view.user(id))
        .is_some_and(|u| u.active && matches!(u.phone, Some(SettingPhone::Valid(_))))
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
