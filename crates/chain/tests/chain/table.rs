//! One transition at a time: each row is an input applied to a progress, and what must follow.

use crate::*;
use switchboard_chain::{Input, Progress, StepState, Verdict, next};
use switchboard_contracts::{Actor, DialCallStatus, DialEventKind};

fn write(v: Verdict) -> Progress {
    match v {
        Verdict::Write(p) => p,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn kinds(p: &Progress) -> Vec<(u32, DialEventKind, bool)> {
    p.events
        .iter()
        .map(|e| (e.step, e.kind, e.outcome_unknown))
        .collect()
}

fn started(targets: usize) -> Progress {
    let by = holder("dialer-route", 1, 1);
    write(next(
        None,
        Input::Decision {
            decision: &decision(targets),
            by: &by,
            sync_mode: false,
        },
        clock(0),
    ))
}

#[test]
fn a_new_decision_claims_step_zero_for_its_delivery() {
    let p = started(3);
    assert_eq!((p.step, p.state), (0, StepState::Claimed));
    assert_eq!(p.holder, Some(holder("dialer-route", 1, 1)));
    assert!(p.events.is_empty());
}

#[test]
fn no_route_claims_the_final_action_at_once() {
    let p = started(0);
    assert_eq!((p.step, p.state), (0, StepState::Claimed));
    assert_eq!(kinds(&p), vec![(0, DialEventKind::ChainExhausted, false)]);
    assert!(p.target(0).is_none());
}

#[test]
fn sync_mode_records_step_zero_as_rung_by_the_gateway() {
    let by = holder("dialer-route", 1, 1);
    let p = write(next(
        None,
        Input::Decision {
            decision: &decision(2),
            by: &by,
            sync_mode: true,
        },
        clock(0),
    ));
    assert_eq!(
        (p.step, p.state, p.holder.clone()),
        (0, StepState::Ringing, None)
    );
    assert_eq!(p.events[0].acted_by, Some(Actor::Gateway));
}

#[test]
fn the_holder_s_carrier_answer_moves_the_step_on() {
    let p = started(3);
    let by = holder("dialer-route", 1, 1);
    let ringing = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &by,
            result: &Ok(Some("CA1".into())),
        },
        clock(1),
    ));
    assert_eq!((ringing.step, ringing.state), (0, StepState::Ringing));
    assert_eq!(ringing.events[0].carrier_sid.as_deref(), Some("CA1"));
    let refused = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &by,
            result: &Err(refused("HTTP 400")),
        },
        clock(1),
    ));
    assert_eq!((refused.step, refused.state), (1, StepState::Claimed));
    assert_eq!(
        refused.holder,
        Some(by),
        "the same delivery runs the next step"
    );
}

#[test]
fn a_redelivered_decision_waits_for_a_live_claim_and_recovers_an_abandoned_one() {
    let p = started(3);
    // Another message (a re-published decision) while the claim is young: wait.
    let other = holder("dialer-route", 7, 1);
    let v = next(
        Some(&p),
        Input::Decision {
            decision: &decision(3),
            by: &other,
            sync_mode: false,
        },
        clock(5),
    );
    assert!(matches!(v, Verdict::Later(_)), "{v:?}");
    // The same message delivered again: its first delivery was abandoned.
    let again = holder("dialer-route", 1, 2);
    let r = write(next(
        Some(&p),
        Input::Decision {
            decision: &decision(3),
            by: &again,
            sync_mode: false,
        },
        clock(5),
    ));
    assert_eq!((r.step, r.state), (1, StepState::Claimed));
    assert_eq!(r.holder, Some(again));
    assert_eq!(kinds(&r), vec![(0, DialEventKind::StepFailed, true)]);
    assert!(
        r.events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("nobody is rung twice")
    );
    // Any message once the claim is older than the horizon.
    let r = write(next(
        Some(&p),
        Input::Decision {
            decision: &decision(3),
            by: &other,
            sync_mode: false,
        },
        clock(31),
    ));
    assert_eq!(r.holder, Some(other));
}

#[test]
fn a_redelivered_status_recovers_the_step_it_claimed() {
    // Issue 14, item 1: status N claimed step N+1 and the dialer died at the carrier. The
    // redelivered status must move the chain on, not be dropped as stale.
    let p = started(3);
    let route = holder("dialer-route", 1, 1);
    let ringing = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &route,
            result: &Ok(None),
        },
        clock(1),
    ));
    let st = holder("dialer-status", 2, 1);
    let no_answer = status(0, DialCallStatus::NoAnswer);
    let claimed = write(next(
        Some(&ringing),
        Input::Status {
            status: &no_answer,
            by: &st,
        },
        clock(20),
    ));
    assert_eq!((claimed.step, claimed.state), (1, StepState::Claimed));
    assert_eq!(claimed.holder, Some(st.clone()));
    let again = holder("dialer-status", 2, 2);
    let recovered = write(next(
        Some(&claimed),
        Input::Status {
            status: &no_answer,
            by: &again,
        },
        clock(26),
    ));
    assert_eq!((recovered.step, recovered.state), (2, StepState::Claimed));
    assert_eq!(recovered.holder, Some(again));
    assert_eq!(
        kinds(&recovered)[1..],
        [
            (0, DialEventKind::StepFailed, false),
            (1, DialEventKind::StepFailed, true)
        ]
    );
    // A duplicate of the status from another message is stale while the claim is young.
    let dup = holder("dialer-status", 9, 1);
    assert_eq!(
        next(
            Some(&claimed),
            Input::Status {
                status: &no_answer,
                by: &dup
            },
            clock(21)
        ),
        Verdict::Unchanged
    );
}

#[test]
fn an_abandoned_final_action_is_recorded_as_taken_never_asked_twice() {
    let p = started(0);
    let again = holder("dialer-route", 1, 2);
    let r = write(next(
        Some(&p),
        Input::Decision {
            decision: &decision(0),
            by: &again,
            sync_mode: false,
        },
        clock(6),
    ));
    assert_eq!((r.step, r.state), (0, StepState::FinalTaken));
    let last = r.events.last().unwrap();
    assert_eq!(
        (last.kind, last.outcome_unknown),
        (DialEventKind::FinalActionTaken, true)
    );
    assert!(
        last.reason
            .as_deref()
            .unwrap()
            .contains("dead-man's switch")
    );
    // The dead-man's switch finds the call over: it answers the final action, records nothing.
    assert_eq!(
        next(
            Some(&r),
            Input::DeadMan {
                fallback: &decision(0),
                claim_grace: std::time::Duration::from_secs(30)
            },
            clock(60)
        ),
        Verdict::Unchanged
    );
}

#[test]
fn a_status_before_its_decision_waits() {
    let st = holder("dialer-status", 2, 1);
    let v = next(
        None,
        Input::Status {
            status: &status(0, DialCallStatus::Busy),
            by: &st,
        },
        clock(0),
    );
    assert!(matches!(v, Verdict::Later(_)));
}

#[test]
fn a_status_that_beats_the_carrier_s_answer_moves_on_and_the_answer_is_still_recorded() {
    let p = started(2);
    let st = holder("dialer-status", 2, 1);
    let busy = status(0, DialCallStatus::Busy);
    let moved = write(next(
        Some(&p),
        Input::Status {
            status: &busy,
            by: &st,
        },
        clock(1),
    ));
    assert_eq!((moved.step, moved.state), (1, StepState::Claimed));
    let route = holder("dialer-route", 1, 1);
    let late = write(next(
        Some(&moved),
        Input::Carrier {
            step: 0,
            by: &route,
            result: &Ok(Some("CA1".into())),
        },
        clock(2),
    ));
    assert_eq!(
        (late.step, late.state),
        (1, StepState::Claimed),
        "nothing else changes"
    );
    let last = late.events.last().unwrap();
    assert_eq!((last.step, last.kind), (0, DialEventKind::StepStarted));
    assert_eq!(last.carrier_sid.as_deref(), Some("CA1"));
    // Recorded once.
    assert_eq!(
        next(
            Some(&late),
            Input::Carrier {
                step: 0,
                by: &route,
                result: &Ok(Some("CA1".into()))
            },
            clock(3)
        ),
        Verdict::Unchanged
    );
}

#[test]
fn answered_ends_the_chain_and_later_inputs_change_nothing() {
    let p = started(2);
    let route = holder("dialer-route", 1, 1);
    let ringing = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &route,
            result: &Ok(None),
        },
        clock(1),
    ));
    let st = holder("dialer-status", 2, 1);
    let done = write(next(
        Some(&ringing),
        Input::Status {
            status: &status(0, DialCallStatus::Completed),
            by: &st,
        },
        clock(9),
    ));
    assert_eq!(done.state, StepState::Answered);
    for input in [
        Input::Status {
            status: &status(0, DialCallStatus::Completed),
            by: &st,
        },
        Input::Decision {
            decision: &decision(2),
            by: &route,
            sync_mode: false,
        },
        Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::from_secs(30),
        },
    ] {
        assert_eq!(next(Some(&done), input, clock(100)), Verdict::Unchanged);
    }
}

#[test]
fn the_dead_man_s_switch_takes_the_end_unless_a_dialer_is_merely_slow() {
    let grace = std::time::Duration::from_secs(30);
    let fallback = decision(0);
    // No dialer ever started the chain.
    let p = write(next(
        None,
        Input::DeadMan {
            fallback: &fallback,
            claim_grace: grace,
        },
        clock(45),
    ));
    assert_eq!(p.state, StepState::FinalTaken);
    let last = p.events.last().unwrap();
    assert_eq!(
        (last.kind, last.acted_by),
        (DialEventKind::FinalActionTaken, Some(Actor::Gateway))
    );
    // A young claim: the dialer is at the carrier; not overtaken.
    let claimed = started(3);
    assert!(matches!(
        next(
            Some(&claimed),
            Input::DeadMan {
                fallback: &fallback,
                claim_grace: grace
            },
            clock(10)
        ),
        Verdict::Later(_)
    ));
    // An old claim: the dialer is gone.
    let taken = write(next(
        Some(&claimed),
        Input::DeadMan {
            fallback: &fallback,
            claim_grace: grace,
        },
        clock(31),
    ));
    assert_eq!((taken.step, taken.state), (3, StepState::FinalTaken));
    assert_eq!(
        kinds(&taken),
        vec![
            (0, DialEventKind::StepFailed, true),
            (3, DialEventKind::FinalActionTaken, false)
        ]
    );
    // The late dialer stands down: its claim is gone, its decision changes nothing.
    let route = holder("dialer-route", 1, 2);
    assert_eq!(
        next(
            Some(&taken),
            Input::Decision {
                decision: &decision(3),
                by: &route,
                sync_mode: false
            },
            clock(32)
        ),
        Verdict::Unchanged
    );
}

#[test]
fn the_dead_man_s_switch_plays_a_final_action_the_carrier_refused() {
    let p = started(0);
    let route = holder("dialer-route", 1, 1);
    let failed = write(next(
        Some(&p),
        Input::Carrier {
            step: 0,
            by: &route,
            result: &Err(refused("no credentials")),
        },
        clock(1),
    ));
    assert_eq!(failed.state, StepState::FinalFailed);
    let taken = write(next(
        Some(&failed),
        Input::DeadMan {
            fallback: &decision(0),
            claim_grace: std::time::Duration::from_secs(30),
        },
        clock(45),
    ));
    assert_eq!(taken.state, StepState::FinalTaken);
}
