//! The dial chain as a pure state machine: [`next`] takes a call's progress (or none yet) and
//! one input, and returns what to write. No I/O, no clock of its own: the dialer and the
//! gateway do the compare-and-swap and the carrier calls, so every transition — including the
//! ones a crash leaves behind — is tested here exhaustively.
//!
//! The rules that make a crash harmless:
//! - a step is **claimed** (with the delivery that holds it) before the carrier is asked, and
//!   a claimed target step is never asked again: nobody is rung twice;
//! - a claim is **abandoned** when the message that holds it is delivered again (JetStream only
//!   redelivers a message whose holder stopped heartbeating), or when it is older than the
//!   staleness horizon; an abandoned target step is recorded as `step_failed` with
//!   `outcome_unknown` and the chain moves on; an abandoned final action is recorded as taken
//!   with its outcome unknown (the gateway's dead-man's switch covers the case it did not reach
//!   the call): every carrier request is made once;
//! - whoever writes first wins; a carrier answer that arrives after the chain moved on is still
//!   recorded (never a hole in the record), but changes nothing else;
//! - a call that ended under the dialer (the carrier refuses to change it: not in progress) is
//!   over: nothing more is asked, and a `<Reject>` it refused counts as taken (the call ended
//!   unanswered, which is what it asked for);
//! - the write that ends a chain unanswered also records its `call.missed`
//!   ([`crate::missed`]), which every later write keeps as it is: published once per call.

use crate::{Holder, Progress, StepState};
use switchboard_contracts::{
    Actor, CallDial, CallRoute, CallStatus, DialCallStatus, DialEventKind, FinalActionKind,
    MAX_TEXT_LEN, Target,
};
use time::OffsetDateTime;

/// The time of a transition and how old a claim may get before it counts as abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now.
    pub now: OffsetDateTime,
    /// A claim older than this is abandoned, whoever looks at it (the longest one carrier
    /// request can take with its retries, plus a margin).
    pub stale_after: std::time::Duration,
}

/// Why the carrier did not run a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// For the record.
    pub reason: String,
    /// The request may have been carried out all the same (sent, no answer): the step is
    /// never asked again, and is recorded as outcome unknown.
    pub outcome_unknown: bool,
    /// The carrier refused because the call is no longer in progress (Twilio 21220): the
    /// caller hung up, or the gateway refused the call at its webhook. The chain is over.
    pub call_ended: bool,
}

/// The carrier's answer to one step: accepted (with its sid, when it gave one) or not.
pub type CarrierAnswer = Result<Option<String>, Failure>;

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A decision was delivered to `by`.
    Decision {
        /// The decision.
        decision: &'a CallRoute,
        /// The delivery.
        by: &'a Holder,
        /// The gateway answered the call with step 0 itself (sync mode).
        sync_mode: bool,
    },
    /// A dial status was delivered to `by`.
    Status {
        /// The status.
        status: &'a CallStatus,
        /// The delivery.
        by: &'a Holder,
    },
    /// The carrier answered the request for `step` that `by` claimed: accepted (with the
    /// carrier's sid, when it gave one) or not (why).
    Carrier {
        /// The step asked for.
        step: u32,
        /// The delivery that claimed it.
        by: &'a Holder,
        /// The carrier's answer.
        result: &'a CarrierAnswer,
    },
    /// The gateway's dead-man's switch: the caller has waited the whole bound with no dialer
    /// instruction. `fallback` is the decision to record when the dialer never started one.
    DeadMan {
        /// Used only when the call has no progress at all.
        fallback: &'a CallRoute,
        /// A claim younger than this belongs to a dialer that is merely slow: not overtaken.
        claim_grace: std::time::Duration,
    },
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "built once per input and consumed at once: boxing would only add an allocation"
)]
pub enum Verdict {
    /// Write this progress (compare-and-swap), then re-publish its events; if its step is
    /// claimed by the input's delivery, run that step at the carrier.
    Write(Progress),
    /// Nothing changes: re-publish the events (a crash may have lost them) and settle.
    Unchanged,
    /// Not now (a status before its decision, a step held by a live delivery): redeliver later.
    Later(String),
}

/// The next progress of a call.
pub fn next(current: Option<&Progress>, input: Input<'_>, clock: Clock) -> Verdict {
    match transition(current, input, clock) {
        Verdict::Write(mut next) => {
            // The write that ends the chain unanswered records its `call.missed`; later writes
            // (late carrier answers) keep it as it is.
            if next.missed.is_none() {
                next.missed = crate::missed::missed(&next, clock.now);
            }
            Verdict::Write(next)
        }
        other => other,
    }
}

fn transition(current: Option<&Progress>, input: Input<'_>, clock: Clock) -> Verdict {
    match (current, input) {
        (
            None,
            Input::Decision {
                decision,
                by,
                sync_mode,
            },
        ) => Verdict::Write(start(decision, by, sync_mode, clock.now)),
        (None, Input::Status { status, .. }) => Verdict::Later(format!(
            "no decision dialed yet for call {}",
            status.call_id
        )),
        // The entry is gone (expired or purged by hand): nothing to record it in.
        (None, Input::Carrier { .. }) => Verdict::Unchanged,
        (None, Input::DeadMan { fallback, .. }) => {
            let mut progress = Progress {
                decision: fallback.clone(),
                step: 0,
                state: StepState::Claimed,
                since: clock.now,
                holder: None,
                events: Vec::new(),
                missed: None,
            };
            progress.step = progress.chain_len();
            Verdict::Write(dead_man_takes(
                progress,
                "no decision reached the dialer".into(),
                clock.now,
            ))
        }
        (Some(p), Input::Decision { by, .. }) => match p.state {
            StepState::Claimed => recover_or_wait(p, by, clock),
            _ => Verdict::Unchanged,
        },
        (Some(p), Input::Status { status, by }) => on_status(p, status, by, clock),
        (Some(p), Input::Carrier { step, by, result }) => {
            on_carrier(p, step, by, result, clock.now)
        }
        (Some(p), Input::DeadMan { claim_grace, .. }) => {
            let fresh_claim = p.state == StepState::Claimed && age(p, clock.now) < claim_grace;
            // A final action the carrier refused is played by the gateway instead; a call that
            // ended does not ask the gateway anything.
            if matches!(
                p.state,
                StepState::Answered | StepState::FinalTaken | StepState::HungUp
            ) {
                Verdict::Unchanged
            } else if fresh_claim {
                Verdict::Later(format!(
                    "step {} is claimed by a dialer at the carrier",
                    p.step
                ))
            } else {
                let why = format!("the chain was {} at step {}", state_name(p.state), p.step);
                Verdict::Write(dead_man_takes(p.clone(), why, clock.now))
            }
        }
    }
}

/// Whether the step claimed in `p` (which must be `Claimed`) was abandoned, as seen by the
/// delivery `by`.
pub fn abandoned(p: &Progress, by: &Holder, clock: Clock) -> bool {
    let redelivered = p.holder.as_ref().is_some_and(|h| {
        h.consumer == by.consumer && h.stream_seq == by.stream_seq && by.delivered > h.delivered
    });
    redelivered || age(p, clock.now) >= clock.stale_after
}

fn age(p: &Progress, now: OffsetDateTime) -> std::time::Duration {
    (now - p.since).try_into().unwrap_or_default()
}

fn start(decision: &CallRoute, by: &Holder, sync_mode: bool, now: OffsetDateTime) -> Progress {
    let mut p = Progress {
        decision: decision.clone(),
        step: 0,
        state: StepState::Claimed,
        since: now,
        holder: Some(by.clone()),
        events: Vec::new(),
        missed: None,
    };
    if p.chain_len() == 0 {
        p.events.push(event(
            &p,
            0,
            DialEventKind::ChainExhausted,
            Some("no_route: nothing to ring".into()),
            None,
            now,
        ));
    }
    if sync_mode {
        // The gateway's sync answer already did step 0: the `<Dial>` of the target, or the
        // final action when there is none.
        p.holder = None;
        if p.chain_len() == 0 {
            p.state = StepState::FinalTaken;
            let reason = format!("{} (answered by the gateway in sync mode)", final_kind(&p));
            let mut e = event(
                &p,
                0,
                DialEventKind::FinalActionTaken,
                Some(reason),
                None,
                now,
            );
            e.acted_by = Some(Actor::Gateway);
            p.events.push(e);
        } else {
            p.state = StepState::Ringing;
            let mut e = event(
                &p,
                0,
                DialEventKind::StepStarted,
                Some("rung by the gateway in sync mode".into()),
                None,
                now,
            );
            e.acted_by = Some(Actor::Gateway);
            p.events.push(e);
        }
    }
    p
}

/// A claimed step: take it over if it was abandoned, else wait for its holder.
fn recover_or_wait(p: &Progress, by: &Holder, clock: Clock) -> Verdict {
    if abandoned(p, by, clock) {
        Verdict::Write(recover(p, by, clock.now))
    } else {
        Verdict::Later(format!(
            "step {} of call {} is claimed by a delivery in progress",
            p.step, p.decision.call_id
        ))
    }
}

/// The holder of `p`'s claim stopped before the carrier's answer was stored. A target step
/// may be ringing: recorded as outcome unknown, never asked again, and the next step is
/// claimed by `by`. The final action was most likely handed over: recorded as taken with its
/// outcome unknown, and never asked again either — if it did not reach the call, the caller
/// still hears ringback, whose bound is the gateway's dead-man's switch, and the switch plays
/// the final action of a call recorded as over. So a call's end is recorded and requested once.
fn recover(p: &Progress, by: &Holder, now: OffsetDateTime) -> Progress {
    let mut next = p.clone();
    next.since = now;
    next.holder = Some(by.clone());
    if next.target(next.step).is_some() {
        fail_step(
            &mut next,
            "the dialer stopped before the carrier's answer was stored; not retried, so nobody is rung twice".into(),
            None,
            true,
            now,
        );
    } else {
        final_outcome_unknown(
            &mut next,
            "the dialer stopped before the carrier's answer was stored".into(),
            now,
        );
    }
    next
}

/// The final action may or may not have reached the call: recorded as taken, outcome unknown,
/// never asked again (the gateway's dead-man's switch plays it if it did not).
fn final_outcome_unknown(p: &mut Progress, why: String, now: OffsetDateTime) {
    let step = p.step;
    p.state = StepState::FinalTaken;
    p.holder = None;
    p.since = now;
    let reason = format!(
        "{} ({why}; not repeated: if it did not reach the call, the gateway's dead-man's switch plays it)",
        final_kind(p)
    );
    let mut e = event(
        p,
        step,
        DialEventKind::FinalActionTaken,
        Some(reason),
        None,
        now,
    );
    e.outcome_unknown = true;
    p.events.push(e);
}

fn on_status(p: &Progress, status: &CallStatus, by: &Holder, clock: Clock) -> Verdict {
    let current = matches!(p.state, StepState::Claimed | StepState::Ringing)
        && p.step == status.step
        && p.target(status.step).is_some();
    if current {
        // Also when the step is still claimed: the carrier reported its end before the holder
        // stored the carrier's acceptance (the holder's late answer is then only recorded).
        let mut next = p.clone();
        next.since = clock.now;
        if status.dial_call_status == DialCallStatus::Completed {
            next.state = StepState::Answered;
            next.holder = None;
            next.events.push(event(
                &next,
                status.step,
                DialEventKind::Answered,
                None,
                status.dial_call_sid.clone(),
                clock.now,
            ));
        } else {
            next.holder = Some(by.clone());
            fail_step(
                &mut next,
                format!("dial status {}", status.dial_call_status.as_str()),
                status.dial_call_sid.clone(),
                false,
                clock.now,
            );
        }
        return Verdict::Write(next);
    }
    if p.state == StepState::Claimed && abandoned(p, by, clock) {
        // This status's earlier delivery claimed the next step and stopped, or the claim is
        // simply too old: the status is the trigger that moves the chain on.
        return Verdict::Write(recover(p, by, clock.now));
    }
    Verdict::Unchanged // a stale or duplicate status
}

fn on_carrier(
    p: &Progress,
    step: u32,
    by: &Holder,
    result: &CarrierAnswer,
    now: OffsetDateTime,
) -> Verdict {
    let mine = p.state == StepState::Claimed && p.step == step && p.holder.as_ref() == Some(by);
    if !mine {
        return late_answer(p, step, result, now);
    }
    let mut next = p.clone();
    next.since = now;
    let target = p.target(step).is_some();
    match (result, target) {
        (Ok(sid), true) => {
            next.state = StepState::Ringing;
            next.holder = None;
            next.events.push(event(
                &next,
                step,
                DialEventKind::StepStarted,
                None,
                sid.clone(),
                now,
            ));
        }
        (Ok(sid), false) => {
            next.state = StepState::FinalTaken;
            next.holder = None;
            let kind = final_kind(&next);
            next.events.push(event(
                &next,
                step,
                DialEventKind::FinalActionTaken,
                Some(kind.into()),
                sid.clone(),
                now,
            ));
        }
        (Err(failure), target) if failure.call_ended => call_ended(&mut next, failure, target, now),
        (Err(failure), true) => {
            let reason = format!("carrier: {}", failure.reason);
            fail_step(&mut next, reason, None, failure.outcome_unknown, now);
        }
        (Err(failure), false) if failure.outcome_unknown => {
            final_outcome_unknown(&mut next, format!("carrier: {}", failure.reason), now);
        }
        (Err(failure), false) => {
            next.state = StepState::FinalFailed;
            next.holder = None;
            let mut e = event(
                &next,
                step,
                DialEventKind::StepFailed,
                Some(format!("carrier: {}", failure.reason)),
                None,
                now,
            );
            e.outcome_unknown = failure.outcome_unknown;
            next.events.push(e);
        }
    }
    Verdict::Write(next)
}

/// The carrier refused the claimed step of `p` because the call is no longer in progress.
/// A `<Reject>` asked for exactly that end (the gateway usually refused the call at its
/// webhook already): taken. Anything else found the caller gone: the step is recorded as
/// failed and the chain is over — nothing more is asked, no retry, and the gateway's
/// dead-man's switch is not involved (a call that ended requests nothing from it).
fn call_ended(p: &mut Progress, failure: &Failure, target: bool, now: OffsetDateTime) {
    let step = p.step;
    p.holder = None;
    p.since = now;
    let reject = p.decision.final_action.kind == FinalActionKind::Reject;
    if !target && reject {
        p.state = StepState::FinalTaken;
        let reason = format!(
            "{} (the call had already ended, refused at the webhook or by the caller hanging up; carrier: {})",
            final_kind(p),
            failure.reason
        );
        p.events.push(event(
            p,
            step,
            DialEventKind::FinalActionTaken,
            Some(reason),
            None,
            now,
        ));
        return;
    }
    p.state = StepState::HungUp;
    let reason = format!(
        "carrier: {} (the call had already ended: the caller hung up before anyone answered)",
        failure.reason
    );
    p.events.push(event(
        p,
        step,
        DialEventKind::StepFailed,
        Some(reason),
        None,
        now,
    ));
}

/// The carrier answered a request whose step the chain has left meanwhile (its claim was
/// recovered, a status moved it on, the gateway took the call's end). An acceptance is still
/// recorded, once, so the audit holds every carrier action; a refusal changed nothing.
fn late_answer(p: &Progress, step: u32, result: &CarrierAnswer, now: OffsetDateTime) -> Verdict {
    let Ok(sid) = result else {
        return Verdict::Unchanged;
    };
    let kind = if p.target(step).is_some() {
        DialEventKind::StepStarted
    } else {
        DialEventKind::FinalActionTaken
    };
    if p.events.iter().any(|e| e.step == step && e.kind == kind) {
        return Verdict::Unchanged;
    }
    let mut next = p.clone();
    let reason = format!(
        "the carrier accepted this step after the chain had moved on (it was {} at step {})",
        state_name(p.state),
        p.step
    );
    next.events
        .push(event(&next, step, kind, Some(reason), sid.clone(), now));
    Verdict::Write(next)
}

/// The gateway's dead-man's switch takes the call's end: the final action, in the gateway's
/// answer to the carrier.
fn dead_man_takes(mut p: Progress, why: String, now: OffsetDateTime) -> Progress {
    let step = p.chain_len();
    if p.state == StepState::Claimed && p.target(p.step).is_some() {
        let mut e = event(
            &p,
            p.step,
            DialEventKind::StepFailed,
            Some(
                "the gateway's dead-man's switch took the call while this step was claimed".into(),
            ),
            None,
            now,
        );
        e.outcome_unknown = true;
        e.acted_by = Some(Actor::Gateway);
        p.events.push(e);
    }
    p.step = step;
    p.state = StepState::FinalTaken;
    p.holder = None;
    p.since = now;
    let reason = format!(
        "{} (dead-man's switch: no dialer instruction reached the call; {why})",
        final_kind(&p)
    );
    let mut e = event(
        &p,
        step,
        DialEventKind::FinalActionTaken,
        Some(reason),
        None,
        now,
    );
    e.acted_by = Some(Actor::Gateway);
    p.events.push(e);
    p
}

/// The current step failed: record why and claim the next one (the final action after the
/// last target, announced by `chain_exhausted`). The holder stays whoever holds `progress`.
fn fail_step(
    progress: &mut Progress,
    reason: String,
    carrier_sid: Option<String>,
    outcome_unknown: bool,
    now: OffsetDateTime,
) {
    let step = progress.step;
    let mut failed = event(
        progress,
        step,
        DialEventKind::StepFailed,
        Some(reason),
        carrier_sid,
        now,
    );
    failed.outcome_unknown = outcome_unknown;
    progress.events.push(failed);
    progress.step = step.saturating_add(1);
    progress.state = StepState::Claimed;
    progress.since = now;
    if progress.step >= progress.chain_len() {
        let len = progress.chain_len();
        progress.events.push(event(
            progress,
            len,
            DialEventKind::ChainExhausted,
            Some(format!("all {len} targets tried")),
            None,
            now,
        ));
    }
}

/// The wire name of the decision's final action.
pub fn final_kind(progress: &Progress) -> &'static str {
    progress.decision.final_action.kind.as_str()
}

fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Claimed => "claimed",
        StepState::Ringing => "ringing",
        StepState::Answered => "answered",
        StepState::FinalTaken => "final_taken",
        StepState::FinalFailed => "final_failed",
        StepState::HungUp => "hung_up",
    }
}

fn event(
    progress: &Progress,
    step: u32,
    kind: DialEventKind,
    reason: Option<String>,
    carrier_sid: Option<String>,
    at: OffsetDateTime,
) -> CallDial {
    let target: Option<Target> = match kind {
        DialEventKind::StepStarted | DialEventKind::Answered | DialEventKind::StepFailed => {
            progress.target(step).cloned()
        }
        DialEventKind::ChainExhausted | DialEventKind::FinalActionTaken => None,
    };
    CallDial {
        call_id: progress.decision.call_id.clone(),
        tenant_id: progress.decision.tenant_id.clone(),
        step,
        kind,
        target,
        // Reasons quote carriers; keep them within the contract's text limit.
        reason: reason.map(|r| r.chars().take(MAX_TEXT_LEN).collect()),
        carrier_sid: carrier_sid.map(|s| s.chars().take(256).collect()),
        outcome_unknown: false,
        acted_by: None,
        // What returning callers learn from: who answered whom.
        caller: match kind {
            DialEventKind::Answered => progress.decision.caller.clone(),
            _ => None,
        },
        at,
    }
}
