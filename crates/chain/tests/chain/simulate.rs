//! Deliveries, a carrier and crashes, interleaved at random: every read, write and carrier
//! request is a separate move, and a handler may die between any two. JetStream's part is
//! modelled as it behaves: an unsettled delivery comes back with its count raised (after
//! `ack_wait`), a NAKed one comes back, an acknowledged one never does; the carrier reports
//! the outcome of every dial it accepted, whatever happens to the dialer.
//!
//! Whatever the interleaving: no target is asked for twice, every carrier action is in the
//! record (its sid, or its step as outcome unknown), once the crashes stop every call
//! reaches exactly one end, and a call that ends unanswered (the final action, or the caller
//! gone) has its one `call.missed`, recorded once and never changed by a later write.

use crate::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use switchboard_chain::{Input, Progress, StepState, Verdict, next};
use switchboard_contracts::{CallMissed, CallStatus, DialCallStatus, DialEventKind, MissedEnd};

#[derive(Debug, Clone)]
enum Msg {
    Route,
    Status(CallStatus),
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a test's few handlers
enum Stage {
    /// Reads the progress next.
    Read,
    /// Has read (progress, revision) and writes what the machine says next.
    Write(Option<Progress>, u64),
    /// Asks the carrier for `step` next.
    Carrier(u32),
}

#[derive(Debug, Clone)]
struct Handler {
    seq: u64,
    delivered: i64,
    stage: Stage,
    answer: Option<(u32, switchboard_chain::CarrierAnswer)>,
}

struct World {
    store: Option<(Progress, u64)>,
    messages: BTreeMap<u64, (String, Msg)>,
    /// Messages waiting for a delivery: (seq, delivery count of the next delivery).
    pending: Vec<(u64, i64)>,
    handlers: Vec<Handler>,
    next_seq: u64,
    /// Carrier ledger: (step, number or "final").
    ledger: Vec<(u32, String)>,
    /// Outcome the carrier reports for each step (`true` = answered).
    answers: Vec<bool>,
    refuse_first_attempt_of: Option<u32>,
    time_out_first_answer_of: Option<u32>,
    /// The caller hangs up before this step is asked for: the carrier refuses it and every
    /// later one as no longer in progress.
    hang_up_before: Option<u32>,
    /// The first `call.missed` written, which every later write must keep.
    missed: Option<CallMissed>,
    now: i64,
    stale_after: i64,
}

impl World {
    fn new(answers: Vec<bool>, refuse: Option<u32>, extra_route: bool) -> World {
        let mut w = World {
            store: None,
            messages: BTreeMap::new(),
            pending: Vec::new(),
            handlers: Vec::new(),
            next_seq: 1,
            ledger: Vec::new(),
            answers,
            refuse_first_attempt_of: refuse,
            time_out_first_answer_of: None,
            hang_up_before: None,
            missed: None,
            now: 0,
            stale_after: 1_000_000,
        };
        w.publish("dialer-route", Msg::Route);
        if extra_route {
            w.publish("dialer-route", Msg::Route); // a re-published decision
        }
        w
    }

    fn publish(&mut self, consumer: &str, msg: Msg) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.messages.insert(seq, (consumer.to_string(), msg));
        self.pending.push((seq, 1));
    }

    fn clock(&self) -> switchboard_chain::Clock {
        switchboard_chain::Clock {
            now: t0() + time::Duration::milliseconds(self.now),
            stale_after: std::time::Duration::from_millis(u64::try_from(self.stale_after).unwrap()),
        }
    }

    /// One move of handler `i`; returns false when the handler is finished (settled).
    fn step(&mut self, i: usize, targets: usize) -> bool {
        let h = self.handlers[i].clone();
        let (consumer, msg) = self.messages[&h.seq].clone();
        let by = holder(&consumer, h.seq, h.delivered);
        let d = decision(targets);
        match h.stage {
            Stage::Read => {
                let (p, rev) = match &self.store {
                    Some((p, rev)) => (Some(p.clone()), *rev),
                    None => (None, 0),
                };
                self.handlers[i].stage = Stage::Write(p, rev);
                true
            }
            Stage::Write(current, rev) => {
                let input = match (&h.answer, &msg) {
                    (Some((step, result)), _) => Input::Carrier {
                        step: *step,
                        by: &by,
                        result,
                    },
                    (None, Msg::Route) => Input::Decision {
                        decision: &d,
                        by: &by,
                        sync_mode: false,
                    },
                    (None, Msg::Status(s)) => Input::Status { status: s, by: &by },
                };
                match next(current.as_ref(), input, self.clock()) {
                    Verdict::Later(_) => {
                        self.pending.push((h.seq, h.delivered + 1)); // NAK
                        false
                    }
                    Verdict::Unchanged => false, // ack
                    Verdict::Write(p) => {
                        let current_rev = self.store.as_ref().map_or(0, |(_, r)| *r);
                        if current_rev != rev {
                            self.handlers[i].stage = Stage::Read; // CAS lost
                            return true;
                        }
                        let claimed =
                            p.state == StepState::Claimed && p.holder.as_ref() == Some(&by);
                        let step = p.step;
                        match (&self.missed, &p.missed) {
                            (None, m) => self.missed = m.clone(),
                            (Some(first), m) => assert_eq!(
                                Some(first),
                                m.as_ref(),
                                "a recorded call.missed changed"
                            ),
                        }
                        self.store = Some((p, rev + 1));
                        if claimed {
                            self.handlers[i].stage = Stage::Carrier(step);
                            true
                        } else {
                            false // ack
                        }
                    }
                }
            }
            Stage::Carrier(step) => {
                let target = d
                    .target
                    .iter()
                    .chain(&d.fallbacks)
                    .nth(step as usize)
                    .cloned();
                let refuse_now = self.refuse_first_attempt_of == Some(step);
                let gone = self.hang_up_before.is_some_and(|s| step >= s);
                let result = if gone {
                    Err(ended())
                } else if refuse_now {
                    self.refuse_first_attempt_of = None;
                    Err(refused("HTTP 400"))
                } else {
                    let what = target
                        .as_ref()
                        .map_or("final".to_string(), |t| t.number.as_str().to_string());
                    self.ledger.push((step, what));
                    if target.is_some() {
                        let answered = self.answers.get(step as usize).copied().unwrap_or(false);
                        let s = status(
                            step,
                            if answered {
                                DialCallStatus::Completed
                            } else {
                                DialCallStatus::NoAnswer
                            },
                        );
                        self.publish("dialer-status", Msg::Status(s));
                    }
                    if self.time_out_first_answer_of == Some(step) {
                        // Done at the carrier, but the answer never came back.
                        self.time_out_first_answer_of = None;
                        Err(switchboard_chain::Failure {
                            reason: "timed out after the request was sent".into(),
                            outcome_unknown: true,
                            call_ended: false,
                        })
                    } else {
                        Ok(Some(format!("SID{step}")))
                    }
                };
                self.handlers[i].answer = Some((step, result));
                self.handlers[i].stage = Stage::Read;
                true
            }
        }
    }

    fn crash(&mut self, i: usize) {
        let h = self.handlers.remove(i);
        self.pending.push((h.seq, h.delivered + 1)); // ack_wait passes
    }

    fn deliver(&mut self, k: usize) {
        let (seq, delivered) = self.pending.remove(k);
        self.handlers.push(Handler {
            seq,
            delivered,
            stage: Stage::Read,
            answer: None,
        });
    }
}

fn run(
    targets: usize,
    answers: Vec<bool>,
    (refuse, time_out, hang_up): (Option<u32>, Option<u32>, Option<u32>),
    extra_route: bool,
    moves: &[(u8, u8)],
    crashes: usize,
) -> World {
    let mut w = World::new(answers, refuse, extra_route);
    w.time_out_first_answer_of = time_out;
    w.hang_up_before = hang_up;
    let mut crashes_left = crashes;
    let mut script = moves.iter().copied();
    let mut budget = 10_000;
    while !(w.pending.is_empty() && w.handlers.is_empty()) {
        budget -= 1;
        assert!(budget > 0, "no progress: {:?}", w.store);
        w.now += 10;
        let (kind, pick) = script.next().unwrap_or((0, 0));
        let options = w.pending.len() + w.handlers.len();
        let pick = usize::from(pick) % options;
        if kind % 7 == 6 && crashes_left > 0 && !w.handlers.is_empty() {
            crashes_left -= 1;
            let i = pick % w.handlers.len();
            w.crash(i);
        } else if pick < w.pending.len() {
            w.deliver(pick);
        } else {
            let i = pick - w.pending.len();
            if !w.step(i, targets) {
                w.handlers.remove(i);
            }
        }
    }
    // The gateway's dead-man's switch fires for a call whose final action the carrier refused.
    if let Some((p, rev)) = &w.store
        && p.state == StepState::FinalFailed
    {
        let fallback = decision(0);
        let input = Input::DeadMan {
            fallback: &fallback,
            claim_grace: std::time::Duration::from_secs(30),
        };
        match next(Some(p), input, w.clock()) {
            Verdict::Write(taken) => {
                assert!(w.missed.is_none(), "missed before the end: {:?}", w.missed);
                w.missed = taken.missed.clone();
                w.store = Some((taken, rev + 1));
            }
            other => panic!("the dead-man's switch must take a refused final action: {other:?}"),
        }
    }
    w
}

fn check(w: &World, targets: usize) {
    let (p, _) = w.store.as_ref().expect("the decision was dialed");
    // Exactly one end: answered, the final action, or the caller gone (no end event then).
    assert!(
        matches!(
            p.state,
            StepState::Answered | StepState::FinalTaken | StepState::HungUp
        ),
        "the chain ended: {p:?}"
    );
    // Missed exactly when nobody answered, as it ended.
    let missed = p.missed.as_ref().map(|m| (m.ended, m.final_action));
    match p.state {
        StepState::Answered => assert_eq!(missed, None),
        StepState::FinalTaken => assert_eq!(
            missed,
            Some((MissedEnd::FinalAction, Some(p.decision.final_action.kind)))
        ),
        _ => assert_eq!(missed, Some((MissedEnd::CallerHungUp, None))),
    }
    assert_eq!(p.missed, w.missed, "the first call.missed recorded is kept");
    let want_ends = usize::from(p.state != StepState::HungUp);
    let ends = p
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                DialEventKind::Answered | DialEventKind::FinalActionTaken
            )
        })
        .count();
    assert_eq!(ends, want_ends, "one end: {:?}", p.events);
    // Nobody rung twice.
    let mut rung: Vec<&str> = w
        .ledger
        .iter()
        .filter(|(_, n)| n != "final")
        .map(|(_, n)| n.as_str())
        .collect();
    let all = rung.len();
    rung.sort_unstable();
    rung.dedup();
    assert_eq!(rung.len(), all, "a number rung twice: {:?}", w.ledger);
    // The final action asked for once at most.
    let finals = w.ledger.iter().filter(|(_, n)| n == "final").count();
    assert!(finals <= 1, "the final action asked twice: {:?}", w.ledger);
    // Every carrier action in the record.
    for (step, what) in &w.ledger {
        let recorded = p.events.iter().any(|e| {
            // The carrier's sid of the step, the carrier's own report of its end (a status,
            // with the dialed leg's sid), or the step marked outcome unknown.
            e.step == *step
                && ((e.kind == DialEventKind::StepStarted && e.carrier_sid.is_some())
                    || (e.kind == DialEventKind::Answered && e.carrier_sid.is_some())
                    || (e.kind == DialEventKind::StepFailed
                        && (e.outcome_unknown || e.carrier_sid.is_some()))
                    || (what == "final" && e.kind == DialEventKind::FinalActionTaken))
        });
        assert!(
            recorded,
            "carrier action {step}/{what} not recorded: {:?}",
            p.events
        );
    }
    // Steps move forward only, each at most once started.
    let n = u32::try_from(targets).unwrap();
    assert!(p.step <= n);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, .. ProptestConfig::default() })]

    #[test]
    fn every_interleaving_ends_once_and_rings_nobody_twice(
        targets in 0usize..=3,
        answers in proptest::collection::vec(any::<bool>(), 3),
        refuse in proptest::option::of(0u32..=3),
        time_out in proptest::option::of(0u32..=3),
        hang_up in proptest::option::of(0u32..=4),
        extra_route in any::<bool>(),
        crashes in 0usize..4,
        moves in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..400),
    ) {
        let w = run(targets, answers, (refuse, time_out, hang_up), extra_route, &moves, crashes);
        check(&w, targets);
    }
}

#[test]
fn the_issue_s_repro_a_dialer_dies_at_the_carrier_for_step_one() {
    // Route delivery rings step 0; the status of step 0 claims step 1 and its dialer dies
    // while the carrier request is in flight; the status is delivered again.
    let mut w = World::new(vec![false, false, true], None, false);
    w.deliver(0);
    while w.step(0, 3) {}
    w.handlers.clear();
    assert_eq!(w.ledger.len(), 1);
    let k = w.pending.iter().position(|(s, _)| *s == 2).unwrap();
    w.deliver(k);
    let h = w.handlers.len() - 1;
    while !matches!(w.handlers[h].stage, Stage::Carrier(1)) {
        assert!(w.step(h, 3));
    }
    w.crash(h);
    let mut w = {
        // Run to quiescence with no more crashes.
        let mut budget = 1000;
        while !(w.pending.is_empty() && w.handlers.is_empty()) {
            budget -= 1;
            assert!(budget > 0);
            if w.handlers.is_empty() {
                w.deliver(0);
            }
            if !w.step(0, 3) {
                w.handlers.remove(0);
            }
        }
        w
    };
    check(&w, 3);
    let (p, _) = w.store.take().unwrap();
    let failed_1 = p
        .events
        .iter()
        .find(|e| e.step == 1 && e.kind == DialEventKind::StepFailed)
        .unwrap();
    assert!(failed_1.outcome_unknown);
    assert_eq!(p.state, StepState::Answered);
    assert_eq!(p.step, 2);
}
