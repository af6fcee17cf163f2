//! The `call.missed` of a call whose chain ended without anyone answering, derived from its
//! progress alone (no I/O, no clock): the machine records it in the [`Progress`] written by the
//! same compare-and-swap that reaches the end, so every later publication repeats the same
//! event under the same id (`<tenant>:<call_id>:missed`) and JetStream keeps one.

use crate::{Progress, StepState};
use switchboard_contracts::{
    CallMissed, DialEventKind, E164, EntityId, FinalActionKind, MissedEnd, Reason, Rule, Target,
};
use time::OffsetDateTime;

/// What a decision's reasons say about the call: the dialed number, the caller's lead and the
/// lead's owner, each when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// The tenant's number that was dialed (`number_provisioned`).
    pub dialed: Option<E164>,
    /// The caller's lead (`lead_named`, `caller_is_lead`, or the one `caller_matches_leads`
    /// chose).
    pub contact_id: Option<EntityId>,
    /// The lead's assigned user: the first user reason of rule `assigned_user`, whatever became
    /// of that user (unknown, unavailable, eligible...): the owner is who the CRM should tell.
    pub owner_user_id: Option<EntityId>,
}

/// Reads [`Known`] from a decision's reasons (the first of each kind wins).
pub fn known(reasons: &[Reason]) -> Known {
    let mut k = Known::default();
    for reason in reasons {
        match reason {
            Reason::NumberProvisioned { number } => {
                k.dialed.get_or_insert_with(|| number.clone());
            }
            Reason::LeadNamed { contact_id } | Reason::CallerIsLead { contact_id, .. } => {
                k.contact_id.get_or_insert_with(|| contact_id.clone());
            }
            Reason::CallerMatchesLeads { chosen, .. } => {
                k.contact_id.get_or_insert_with(|| chosen.clone());
            }
            _ => {}
        }
        if let Some(user) = assigned_user(reason) {
            k.owner_user_id.get_or_insert_with(|| user.clone());
        }
    }
    k
}

/// The user of a user reason whose rule is `assigned_user`.
fn assigned_user(reason: &Reason) -> Option<&EntityId> {
    let (rule, user) = match reason {
        Reason::UserUnknown(s)
        | Reason::UserDeactivated(s)
        | Reason::UserUnavailable(s)
        | Reason::UserHasNoPhone(s)
        | Reason::UserOutsideWorkingHours(s) => (s.rule, Some(&s.user_id)),
        Reason::UserEligible { rule, user_id, .. } => (*rule, Some(user_id)),
        Reason::PhoneUnusable { rule, user_id, .. }
        | Reason::AlreadyInChain { rule, user_id, .. } => (*rule, user_id.as_ref()),
        Reason::DialedNumberSkipped(offer) | Reason::GroupMember(offer) => {
            (offer.rule, offer.user_id.as_ref())
        }
        _ => return None,
    };
    (rule == Rule::AssignedUser).then_some(user).flatten()
}

/// Whether the carrier may have rung step `step`: it accepted it (or the gateway rang it in
/// sync mode), reported how it ended (a dial status, with the dialed leg's sid), answered it,
/// or its outcome is unknown. A step the carrier refused outright rang nobody.
fn rang(progress: &Progress, step: u32) -> bool {
    progress.events.iter().any(|e| {
        e.step == step
            && match e.kind {
                DialEventKind::StepStarted | DialEventKind::Answered => true,
                DialEventKind::StepFailed => e.outcome_unknown || e.carrier_sid.is_some(),
                DialEventKind::ChainExhausted | DialEventKind::FinalActionTaken => false,
            }
    })
}

/// The legs the carrier may have rung, in chain order.
pub fn tried(progress: &Progress) -> Vec<Target> {
    (0..progress.chain_len())
        .filter(|step| rang(progress, *step))
        .filter_map(|step| progress.target(step).cloned())
        .collect()
}

/// The call's `call.missed`, ended `at`, when its chain is over without anyone answering: the
/// final action was taken (a voicemail greeting or an announcement, after hours and no route
/// included), or the call ended under the dialer (the caller hung up while a leg rang or before
/// the final action). None for an answered call, a chain still running (a refused final action
/// included: the gateway's dead-man's switch still plays it), and a blocked or rejected caller.
pub fn missed(progress: &Progress, at: OffsetDateTime) -> Option<CallMissed> {
    let decision = &progress.decision;
    if decision.rule == Rule::Blocked || decision.final_action.kind == FinalActionKind::Reject {
        return None;
    }
    let (ended, final_action) = match progress.state {
        StepState::FinalTaken => (MissedEnd::FinalAction, Some(decision.final_action.kind)),
        StepState::HungUp => (MissedEnd::CallerHungUp, None),
        StepState::Claimed | StepState::Ringing | StepState::Answered | StepState::FinalFailed => {
            return None;
        }
    };
    let known = known(&decision.reasons);
    Some(CallMissed {
        call_id: decision.call_id.clone(),
        tenant_id: decision.tenant_id.clone(),
        caller: decision.caller.clone(),
        dialed: known.dialed,
        contact_id: known.contact_id,
        owner_user_id: known.owner_user_id,
        rule: decision.rule,
        tried: tried(progress),
        ended,
        final_action,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::reasons::{Offer, UserSkipped};

    fn e164(n: &str) -> E164 {
        E164::parse_strict(n).unwrap()
    }

    fn id(s: &str) -> EntityId {
        EntityId::parse("id", s).unwrap()
    }

    fn skipped(rule: Rule, user: &str) -> UserSkipped {
        UserSkipped {
            rule,
            user_id: id(user),
            contact_id: None,
            next: Rule::CompanyPhone,
            hours: None,
        }
    }

    #[test]
    fn nothing_known_from_no_reasons() {
        assert_eq!(known(&[]), Known::default());
    }

    #[test]
    fn the_dialed_number_lead_and_owner_are_read_from_the_reasons() {
        let reasons = [
            Reason::NumberProvisioned {
                number: e164("+16502530000"),
            },
            Reason::CallerIsLead {
                number: e164("+14158675310"),
                contact_id: id("c-1"),
            },
            // The direct line's user is not the owner.
            Reason::UserEligible {
                rule: Rule::DirectLine,
                user_id: id("u-line"),
                contact_id: None,
                hours: None,
            },
            Reason::UserUnavailable(skipped(Rule::AssignedUser, "u-owner")),
            Reason::UserEligible {
                rule: Rule::AssignedUser,
                user_id: id("u-later"),
                contact_id: None,
                hours: None,
            },
        ];
        assert_eq!(
            known(&reasons),
            Known {
                dialed: Some(e164("+16502530000")),
                contact_id: Some(id("c-1")),
                owner_user_id: Some(id("u-owner")),
            }
        );
    }

    #[test]
    fn a_named_lead_or_the_chosen_one_of_several_is_the_contact() {
        let named = [Reason::LeadNamed {
            contact_id: id("c-named"),
        }];
        assert_eq!(known(&named).contact_id, Some(id("c-named")));
        let several = [Reason::CallerMatchesLeads {
            number: e164("+14158675310"),
            contact_ids: vec![id("c-2"), id("c-3")],
            chosen: id("c-3"),
            owner_reachable: true,
        }];
        let k = known(&several);
        assert_eq!(k.contact_id, Some(id("c-3")));
        assert_eq!((k.dialed, k.owner_user_id), (None, None));
    }

    #[test]
    fn an_owner_is_any_user_reason_of_rule_assigned_user() {
        let owner = |reason: Reason| known(&[reason]).owner_user_id;
        assert_eq!(
            owner(Reason::UserUnknown(skipped(Rule::AssignedUser, "u-1"))),
            Some(id("u-1"))
        );
        assert_eq!(
            owner(Reason::DialedNumberSkipped(Offer {
                rule: Rule::AssignedUser,
                user_id: Some(id("u-2")),
                number: e164("+16502530000"),
            })),
            Some(id("u-2"))
        );
        assert_eq!(
            owner(Reason::UserOutsideWorkingHours(skipped(
                Rule::ReturningCaller,
                "u-3"
            ))),
            None,
            "a returning caller's last answerer is not the owner"
        );
        assert_eq!(
            owner(Reason::LeadUnassigned {
                contact_id: id("c-1"),
                next: Rule::ForwardingNumber,
            }),
            None
        );
    }
}
