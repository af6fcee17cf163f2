//! `call.missed`: every way a chain can end, and the one `call.missed` (or none) the write
//! that ends it records.

use crate::*;
use switchboard_chain::{CarrierAnswer, Input, Progress, StepState, Verdict, next};
use switchboard_contracts::reasons::UserSkipped;
use switchboard_contracts::{
    CallMissed, CallRoute, DialCallStatus, DialEventKind, EntityId, FinalAction, FinalActionKind,
    MissedEnd, Reason,
};

const CALLER: &str = "+14158675310";
const DIALED: &str = "+16502530000";

fn write(v: Verdict) -> Progress {
    match v {
        Verdict::Write(p) => p,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

/// A decision with `targets` legs, `rule` and a final action of `kind`, whose reasons name the
/// dialed number, the caller's lead and the lead's (unavailable) owner.
fn decided(targets: usize, rule: Rule, kind: FinalActionKind) -> CallRoute {
    let mut d = decision(targets);
    d.rule = rule;
    d.caller = Some(E164::parse_strict(CALLER).unwrap());
    d.final_action = FinalAction {
        kind,
        message: if kind == FinalActionKind::Reject {
            Default::default()
        } else {
            "Sorry".into()
        },
    };
    d.reasons = vec![
        Reason::NumberProvisioned {
            number: E164::parse_strict(DIALED).unwrap(),
        },
        Reason::CallerIsLead {
            number: E164::parse_strict(CALLER).unwrap(),
            contact_id: id("c-7"),
        },
        Reason::UserUnavailable(UserSkipped {
            rule: Rule::AssignedUser,
            user_id: id("u-owner"),
            contact_id: Some(id("c-7")),
            next: Rule::ForwardingNumber,
            hours: None,
        }),
    ];
    d
}

fn start(d: &CallRoute, sync_mode: bool) -> Progress {
    let by = holder("dialer-route", 1, 1);
    write(next(
        None,
        Input::Decision {
            decision: d,
            by: &by,
            sync_mode,
        },
        clock(0),
    ))
}

/// The carrier's answer to the step `p` claimed, at `secs`.
fn carrier(p: &Progress, result: CarrierAnswer, secs: i64) -> Progress {
    assert_eq!(p.state, StepState::Claimed, "{p:?}");
    let by = p.holder.clone().unwrap();
    write(next(
        Some(p),
        Input::Carrier {
            step: p.step,
            by: &by,
            result: &result,
        },
        clock(secs),
    ))
}

/// The dial status of the step `p` rings, at `secs`.
fn dial_status(p: &Progress, s: DialCallStatus, secs: i64) -> Progress {
    let by = holder("dialer-status", 100 + u64::from(p.step), 1);
    write(next(
        Some(p),
        Input::Status {
            status: &status(p.step, s),
            by: &by,
        },
        clock(secs),
    ))
}

/// Rings every leg (nobody answers), then the carrier takes `last` for the final action.
fn unanswered(d: &CallRoute, last: CarrierAnswer) -> Progress {
    let mut p = start(d, false);
    let mut secs = 0;
    while p.target(p.step).is_some() {
        secs += 1;
        p = carrier(&p, Ok(Some("CA1".into())), secs);
        secs += 1;
        p = dial_status(&p, DialCallStatus::NoAnswer, secs);
    }
    carrier(&p, last, secs + 1)
}

fn ended_as(p: &Progress) -> Option<(MissedEnd, Option<FinalActionKind>)> {
    p.missed.as_ref().map(|m| (m.ended, m.final_action))
}

#[test]
fn every_ending_records_one_call_missed_or_none() {
    use FinalActionKind::*;
    use MissedEnd::*;
    // (what, legs, rule, final action, expected)
    let table = [
        (
            "voicemail after every leg",
            3,
            Rule::AssignedUser,
            Voicemail,
            Some((FinalAction, Some(Voicemail))),
        ),
        (
            "announcement after every leg",
            2,
            Rule::AssignedUser,
            AnnounceHangup,
            Some((FinalAction, Some(AnnounceHangup))),
        ),
        (
            "no route",
            0,
            Rule::NoRoute,
            AnnounceHangup,
            Some((FinalAction, Some(AnnounceHangup))),
        ),
        (
            "after hours",
            0,
            Rule::AfterHours,
            Voicemail,
            Some((FinalAction, Some(Voicemail))),
        ),
        (
            "anonymous to voicemail",
            0,
            Rule::Anonymous,
            Voicemail,
            Some((FinalAction, Some(Voicemail))),
        ),
        ("blocked, announced", 0, Rule::Blocked, AnnounceHangup, None),
        ("blocked, rejected", 0, Rule::Blocked, Reject, None),
        ("anonymous, rejected", 0, Rule::Anonymous, Reject, None),
    ];
    for (what, legs, rule, kind, expected) in table {
        let d = decided(legs, rule, kind);
        let p = unanswered(&d, Ok(Some("CA1".into())));
        assert_eq!(p.state, StepState::FinalTaken, "{what}");
        assert_eq!(ended_as(&p), expected, "{what}");
        let Some(m) = &p.missed else { continue };
        let legs_secs = i64::try_from(2 * legs + 1).unwrap();
        assert_eq!(
            m,
            &CallMissed {
                call_id: "CA1".into(),
                tenant_id: d.tenant_id.clone(),
                caller: d.caller.clone(),
                dialed: Some(E164::parse_strict(DIALED).unwrap()),
                contact_id: Some(id("c-7")),
                owner_user_id: Some(id("u-owner")),
                rule,
                tried: switchboard_chain::chain(&d).into_iter().cloned().collect(),
                ended: MissedEnd::FinalAction,
                final_action: Some(kind),
                at: clock(legs_secs).now,
            },
            "{what}"
        );
    }
}

#[test]
fn an_answered_call_is_not_missed_even_after_late_inputs() {
    let d = decided(3, Rule::AssignedUser, FinalActionKind::Voicemail);
    let p = start(&d, false);
    let p = carrier(&p, Ok(Some("CA1".into())), 1);
    let p = dial_status(&p, DialCallStatus::NoAnswer, 2);
    let p = carrier(&p, Ok(Some("CA1".into())), 3);
    let p = dial_status(&p, DialCallStatus::Completed, 4);
    assert_eq!((p.state, p.missed.clone()), (StepState::Answered, None));
    // A late status of an earlier step and the dead-man's switch change nothing.
    let by = holder("dialer-status", 7, 1);
    let late = next(
        Some(&p),
        Input::Status {
            status: &status(0, DialCallStatus::NoAnswer),
            by: &by,
        },
        clock(5),
    );
    assert_eq!(late, Verdict::Unchanged);
    let dead_man = next(
        Some(&p),
        Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::from_secs(30),
        },
        clock(60),
    );
    assert_eq!(dead_man, Verdict::Unchanged);
}

/// Twilio requests the `<Dial action>` when the caller hangs up during the dial too (CallStatus
/// `completed`, DialCallStatus of the leg: usually `no-answer`); the gateway publishes it like
/// any status, the chain claims the next step, and the carrier refuses it: the call is over.
#[test]
fn the_caller_hanging_up_while_a_leg_rings_ends_the_chain_as_missed() {
    let d = decided(3, Rule::AssignedUser, FinalActionKind::Voicemail);
    let p = start(&d, false);
    let p = carrier(&p, Ok(Some("CA1".into())), 1);
    let p = dial_status(&p, DialCallStatus::NoAnswer, 2);
    assert_eq!((p.step, p.state), (1, StepState::Claimed));
    let p = carrier(&p, Err(ended()), 3);
    assert_eq!(
        (p.step, p.state, p.holder.clone()),
        (1, StepState::HungUp, None)
    );
    let last = p.events.last().unwrap();
    assert_eq!((last.step, last.kind), (1, DialEventKind::StepFailed));
    assert!(
        last.reason
            .as_deref()
            .unwrap()
            .contains("had already ended"),
        "{last:?}"
    );
    assert!(!last.outcome_unknown);
    let m = p.missed.clone().unwrap();
    assert_eq!((m.ended, m.final_action), (MissedEnd::CallerHungUp, None));
    assert_eq!(
        m.tried,
        vec![d.target.clone().unwrap()],
        "step 1 never rang"
    );
    assert_eq!(m.at, clock(3).now);
    assert!(m.validate_ok());
    // Over: nothing more is asked, whoever asks.
    let by = holder("dialer-route", 1, 2);
    let again = Input::Decision {
        decision: &d,
        by: &by,
        sync_mode: false,
    };
    assert_eq!(next(Some(&p), again, clock(100)), Verdict::Unchanged);
    let dead_man = Input::DeadMan {
        fallback: &decision(0),
        claim_grace: std::time::Duration::ZERO,
    };
    assert_eq!(next(Some(&p), dead_man, clock(100)), Verdict::Unchanged);
}

#[test]
fn the_caller_gone_before_the_final_action_is_missed_as_hung_up() {
    let d = decided(1, Rule::ForwardingNumber, FinalActionKind::Voicemail);
    let p = unanswered(&d, Err(ended()));
    assert_eq!((p.step, p.state), (1, StepState::HungUp));
    assert!(
        !p.events
            .iter()
            .any(|e| e.kind == DialEventKind::FinalActionTaken),
        "the voicemail never played: {:?}",
        p.events
    );
    assert_eq!(ended_as(&p), Some((MissedEnd::CallerHungUp, None)));
    assert_eq!(p.missed.unwrap().tried.len(), 1);
}

/// The gateway refused a blocked caller at its webhook; the dialer's `<Reject>` then finds the
/// call over. That is the end the decision asked for: taken, not failed (no retry, no dead-man).
#[test]
fn a_reject_refused_because_the_call_ended_is_taken_and_not_missed() {
    for rule in [Rule::Blocked, Rule::Anonymous] {
        let d = decided(0, rule, FinalActionKind::Reject);
        let p = unanswered(&d, Err(ended()));
        assert_eq!((p.state, p.holder.clone()), (StepState::FinalTaken, None));
        let taken = p.events.last().unwrap();
        assert_eq!(taken.kind, DialEventKind::FinalActionTaken);
        assert!(!taken.outcome_unknown);
        let reason = taken.reason.as_deref().unwrap();
        assert!(
            reason.starts_with("reject (the call had already ended"),
            "{reason}"
        );
        assert_eq!(p.missed, None, "{rule:?}");
        let dead_man = Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::ZERO,
        };
        assert_eq!(next(Some(&p), dead_man, clock(100)), Verdict::Unchanged);
    }
    // Still in progress (the gateway's block list was behind): the `<Reject>` ends it.
    let d = decided(0, Rule::Blocked, FinalActionKind::Reject);
    let p = unanswered(&d, Ok(Some("CA1".into())));
    assert_eq!(p.state, StepState::FinalTaken);
    assert_eq!(p.events.last().unwrap().reason.as_deref(), Some("reject"));
    assert_eq!(p.missed, None);
}

#[test]
fn a_refused_final_action_is_missed_once_the_dead_man_s_switch_plays_it() {
    let d = decided(1, Rule::AssignedUser, FinalActionKind::AnnounceHangup);
    let p = unanswered(&d, Err(refused("HTTP 401")));
    assert_eq!((p.state, p.missed.clone()), (StepState::FinalFailed, None));
    let taken = write(next(
        Some(&p),
        Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::from_secs(30),
        },
        clock(60),
    ));
    assert_eq!(taken.state, StepState::FinalTaken);
    let m = taken.missed.unwrap();
    assert_eq!(
        (m.ended, m.final_action, m.at),
        (
            MissedEnd::FinalAction,
            Some(FinalActionKind::AnnounceHangup),
            clock(60).now
        )
    );
}

#[test]
fn the_dead_man_s_switch_on_a_call_no_dialer_saw_records_it_missed() {
    let taken = write(next(
        None,
        Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::from_secs(30),
        },
        clock(60),
    ));
    let m = taken.missed.unwrap();
    assert_eq!(
        (m.ended, m.rule, m.tried.len()),
        (MissedEnd::FinalAction, Rule::NoRoute, 0)
    );
}

#[test]
fn the_recorded_call_missed_is_kept_by_later_writes() {
    let d = decided(2, Rule::AssignedUser, FinalActionKind::Voicemail);
    // Step 0's status beats the carrier's acceptance; the chain runs to its end.
    let p = start(&d, false);
    let route = p.holder.clone().unwrap();
    let p = dial_status(&p, DialCallStatus::NoAnswer, 1);
    let p = carrier(&p, Ok(Some("CA1".into())), 2);
    let p = dial_status(&p, DialCallStatus::Busy, 3);
    let p = carrier(&p, Ok(Some("CA1".into())), 4);
    let first = p.missed.clone().unwrap();
    assert_eq!(first.at, clock(4).now);
    // The late acceptance of step 0 is recorded, and the call.missed stays as it was.
    let late = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &route,
            result: &Ok(Some("CA1".into())),
        },
        clock(9),
    ));
    assert_eq!(late.events.len(), p.events.len() + 1);
    assert_eq!(late.missed, Some(first));
}

#[test]
fn tried_holds_the_legs_that_may_have_rung_not_those_the_carrier_refused() {
    let d = decided(3, Rule::AssignedUser, FinalActionKind::Voicemail);
    let p = start(&d, false);
    // Step 0 refused outright: nothing rang.
    let p = carrier(&p, Err(refused("HTTP 400")), 1);
    assert_eq!((p.step, p.state), (1, StepState::Claimed));
    // Step 1's dialer dies at the carrier; the redelivery records it outcome unknown.
    let by = holder("dialer-route", 1, 2);
    let p = write(next(
        Some(&p),
        Input::Decision {
            decision: &d,
            by: &by,
            sync_mode: false,
        },
        clock(2),
    ));
    assert_eq!((p.step, p.state), (2, StepState::Claimed));
    let p = carrier(&p, Ok(Some("CA1".into())), 3);
    let p = dial_status(&p, DialCallStatus::NoAnswer, 4);
    let p = carrier(&p, Ok(Some("CA1".into())), 5);
    let tried = p.missed.unwrap().tried;
    assert_eq!(
        tried, d.fallbacks,
        "legs 1 (maybe rung) and 2 (rung), not 0"
    );
}

#[test]
fn sync_mode_ends_are_missed_as_the_gateway_answered_them() {
    let p = start(
        &decided(0, Rule::AfterHours, FinalActionKind::Voicemail),
        true,
    );
    assert_eq!(p.state, StepState::FinalTaken);
    assert_eq!(
        ended_as(&p),
        Some((MissedEnd::FinalAction, Some(FinalActionKind::Voicemail)))
    );
    assert_eq!(p.missed.unwrap().at, clock(0).now);
    let p = start(&decided(0, Rule::Blocked, FinalActionKind::Reject), true);
    assert_eq!((p.state, p.missed), (StepState::FinalTaken, None));
    // Step 0 rung by the gateway counts as tried.
    let d = decided(1, Rule::AssignedUser, FinalActionKind::Voicemail);
    let p = start(&d, true);
    let p = dial_status(&p, DialCallStatus::NoAnswer, 1);
    let p = carrier(&p, Ok(None), 2);
    assert_eq!(p.missed.unwrap().tried, vec![d.target.unwrap()]);
}

trait ValidateOk {
    fn validate_ok(&self) -> bool;
}

impl ValidateOk for CallMissed {
    /// The contract's own check (what the publisher runs).
    fn validate_ok(&self) -> bool {
        use switchboard_contracts::EventData;
        self.validate().is_ok()
    }
}
