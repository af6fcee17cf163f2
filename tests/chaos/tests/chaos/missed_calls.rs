//! Issue 17: `call.missed` stays exactly once per unanswered call while dialers are SIGKILLed
//! at seeded random instants and restarted. Two dialers (the real binary, sandbox carrier whose
//! steps answer no answer, busy, then completed) act on decisions published straight to CALLS:
//! chains that end unanswered (nothing to ring, one leg, two legs) and answered ones (the third
//! leg answers), and blocked callers. Asserted from CALLS: each unanswered call has exactly one
//! stored `call.missed` message (distinct stream messages, not ids), answered and blocked calls
//! none, and every call exactly one end.

use crate::fault_support::{assert_one_end_each, dial_events, full_scale};
use crate::figure;
use crate::support::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{
    CallMissed, CallRoute, DialEventKind, E164, Envelope, FinalAction, FinalActionKind, MissedEnd,
    Rule, Target, TenantId,
};
use switchboard_testkit::{NatsServer, eventually};
use time::OffsetDateTime;

const SOURCE: &str = "/switchboard/chaos-test";
/// The legs of the chains, in order (the sandbox answers them no answer, busy, completed).
const LEGS: [&str; 3] = ["+14155550301", "+14155550302", "+14155550303"];
/// After the last kill, the bound for every call to reach its end and its `call.missed`:
/// a killed dialer's deliveries come back after its `ack_wait` (2 s; 5 s at full scale) and
/// the sandbox's status reports after theirs, then a chain takes a few carrier requests.
const DEADLINE: Duration = Duration::from_secs(120);

/// How a call's chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing to ring: the final action at once (missed).
    NoRoute,
    /// One leg, no answer, then the final action (missed).
    OneLeg,
    /// Two legs, no answer then busy, then the final action (missed).
    TwoLegs,
    /// Three legs, the third answers (not missed).
    Answered,
    /// A blocked caller, announced and hung up (not missed).
    Blocked,
}

impl Kind {
    fn missed(self) -> Option<FinalActionKind> {
        match self {
            Kind::NoRoute | Kind::TwoLegs => Some(FinalActionKind::Voicemail),
            Kind::OneLeg => Some(FinalActionKind::AnnounceHangup),
            Kind::Answered | Kind::Blocked => None,
        }
    }
}

fn decision(call_id: &str, kind: Kind) -> CallRoute {
    let legs = match kind {
        Kind::NoRoute | Kind::Blocked => 0,
        Kind::OneLeg => 1,
        Kind::TwoLegs => 2,
        Kind::Answered => 3,
    };
    let mut chain = LEGS.iter().take(legs).map(|n| {
        Target::single(
            E164::parse_strict(n).unwrap(),
            None,
            Rule::ForwardingNumber,
            Some(20),
        )
    });
    CallRoute {
        call_id: call_id.into(),
        tenant_id: TenantId::new(T).unwrap(),
        rule: match kind {
            Kind::NoRoute => Rule::NoRoute,
            Kind::Blocked => Rule::Blocked,
            _ => Rule::ForwardingNumber,
        },
        target: chain.next(),
        fallbacks: chain.collect(),
        final_action: FinalAction {
            kind: kind.missed().unwrap_or(FinalActionKind::AnnounceHangup),
            message: "Sorry".into(),
        },
        reasons: Vec::new(),
        explanation: vec!["chaos: call.missed under dialer kills".into()],
        settings_seq: 1,
        calls_seq: 0,
        caller: Some(E164::parse_strict(CALLER).unwrap()),
        decided_at: OffsetDateTime::now_utc(),
    }
}

/// Given two sandbox dialers (real processes) and N decisions published over a few seconds —
/// chains ending unanswered (nothing to ring, one leg, two legs), answered ones and blocked
/// callers, seeded — when the dialers are SIGKILLed and restarted at seeded random instants
/// while the chains run, then within the deadline every call reaches exactly one end, and
/// CALLS holds exactly one `call.missed` message for each unanswered call (with how it ended
/// and the legs tried) and none for the answered and blocked ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_missed_stays_exactly_once_while_dialers_are_killed_at_random() {
    let n = (scale("SWITCHBOARD_CHAOS_CALLS", 1200) / 10).max(60);
    let kills = if full_scale() { 12 } else { 4 };
    let (mut rng, seed) = Rng::from_env(0x5EED_0017);
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let js = connect(&url).await;
    provision(&js, 1).await;
    let outcomes = [("SWITCHBOARD_SANDBOX_OUTCOMES", "no_answer,busy,completed")];
    let mut dialers = [
        Service::dialer("dialer-a", &url, dir.path(), &outcomes),
        Service::dialer("dialer-b", &url, dir.path(), &outcomes),
    ];
    for dialer in &mut dialers {
        dialer.wait_ready(WAIT).await;
    }

    let kinds = [
        Kind::NoRoute,
        Kind::OneLeg,
        Kind::TwoLegs,
        Kind::TwoLegs,
        Kind::Answered,
        Kind::Blocked,
    ];
    let calls: BTreeMap<String, Kind> = (0..n)
        .map(|i| (format!("CAmissed{i:05}"), kinds[rng.below(kinds.len())]))
        .collect();
    let unanswered = calls.values().filter(|k| k.missed().is_some()).count();
    let started = Instant::now();

    // The decisions, paced (load shape) so the kills below land while chains run.
    let spread = Duration::from_millis((n as u64 * 25).clamp(8_000, 60_000));
    let publishing = {
        let publisher = Publisher::new(js.clone());
        let calls = calls.clone();
        tokio::spawn(async move {
            let pause = spread / u32::try_from(calls.len()).unwrap();
            for (id, kind) in &calls {
                let event = Envelope::new(decision(id, *kind), SOURCE, OffsetDateTime::now_utc());
                publisher
                    .publish(&event, &TraceContext::default())
                    .await
                    .unwrap();
                tokio::time::sleep(pause).await;
            }
        })
    };

    // The kills: at seeded random instants (fault timing, not synchronization), a seeded
    // dialer, each while unanswered calls are still without their `call.missed`.
    let missed_subject = format!("call.missed.{T}");
    let mut faults = Vec::new();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.range(300, 1500) as u64)).await;
        let stored = count(&js, &missed_subject).await.unwrap_or(0);
        assert!(
            stored < unanswered,
            "every call.missed was stored before the kill: the kill tested nothing"
        );
        let i = rng.below(dialers.len());
        dialers[i].kill_and_restart();
        faults.push(format!(
            "SIGKILL {} at {stored} call.missed stored, t={:?}",
            dialers[i].name,
            started.elapsed()
        ));
    }
    publishing.await.unwrap();
    let published_at = started.elapsed();

    // Every unanswered call's `call.missed` stored, and the dialers quiet (whatever a killed
    // dialer held redelivered and settled), within the deadline.
    wait_count(&js, &missed_subject, unanswered, DEADLINE).await;
    wait_quiet(&js, DEADLINE).await;
    let ended_at = started.elapsed();

    let ids: Vec<String> = calls.keys().cloned().collect();
    let dials = dial_events(&js).await;
    assert_one_end_each(&dials, &ids);
    // A step whose claim a kill abandoned is recorded `step_failed` with `outcome_unknown` and
    // the chain moves on (nobody is rung twice): if the carrier had in fact connected that leg,
    // the chain ends at its final action all the same and is reported missed. That is the
    // dialer's contract for unknown outcomes; any other answered call missed is a bug.
    let unknown_outcome = |id: &str| {
        dials
            .iter()
            .any(|d| d.call_id == id && d.kind == DialEventKind::StepFailed && d.outcome_unknown)
    };
    let mut stored: BTreeMap<String, Vec<(u64, CallMissed)>> = BTreeMap::new();
    for m in read(&js, &missed_subject).await {
        let missed = Envelope::<CallMissed>::decode(&m.payload, &m.subject)
            .unwrap_or_else(|e| panic!("CALLS/{} is not a valid call.missed: {e}", m.seq))
            .data;
        assert_eq!(
            m.msg_id.as_deref(),
            Some(format!("{T}:{}:missed", missed.call_id).as_str())
        );
        stored
            .entry(missed.call_id.clone())
            .or_default()
            .push((m.seq, missed));
    }
    let mut twice = Vec::new();
    let mut lost = Vec::new();
    let mut wrong = Vec::new();
    let mut unexpected = Vec::new();
    let mut abandoned = Vec::new();
    for (id, kind) in &calls {
        let messages = stored.get(id).map(Vec::as_slice).unwrap_or_default();
        match (kind.missed(), messages) {
            (None, []) => {}
            (None, [_]) if unknown_outcome(id) => abandoned.push(id),
            (None, _) => unexpected.push((id, *kind)),
            (Some(_), []) => lost.push((id, *kind)),
            (Some(action), [(_, m)]) => {
                let legs = decision(id, *kind).fallbacks.len()
                    + usize::from(decision(id, *kind).target.is_some());
                if (m.ended, m.final_action, m.tried.len())
                    != (MissedEnd::FinalAction, Some(action), legs)
                {
                    wrong.push((id, m.clone()));
                }
            }
            (Some(_), many) => {
                twice.push((id, many.iter().map(|(seq, _)| *seq).collect::<Vec<_>>()))
            }
        }
    }
    let foreign: Vec<&String> = stored.keys().filter(|c| !calls.contains_key(*c)).collect();
    assert!(
        lost.is_empty(),
        "unanswered calls never missed: {}",
        sample(&lost)
    );
    assert!(
        twice.is_empty(),
        "calls missed more than once (stream sequences): {}",
        sample(&twice)
    );
    assert!(
        unexpected.is_empty(),
        "answered or blocked calls missed: {}",
        sample(&unexpected)
    );
    assert!(
        wrong.is_empty(),
        "call.missed not as the chain ended: {}",
        sample(&wrong)
    );
    assert!(
        foreign.is_empty(),
        "call.missed of unknown calls: {}",
        sample(&foreign)
    );
    for dialer in &mut dialers {
        assert!(
            dialer.is_running(),
            "{} died:\n{}",
            dialer.name,
            dialer.log_tail(40)
        );
    }
    eventually(WAIT, "the restarted dialers ready", || async {
        for dialer in &dialers {
            if http_status(dialer.http, "/readyz").await != Some(200) {
                return None;
            }
        }
        Some(())
    })
    .await
    .unwrap();

    figure!(
        "missed: seed {seed}, {n} calls ({unanswered} unanswered) published in {published_at:?}"
    );
    for fault in &faults {
        figure!("missed: fault: {fault}");
    }
    figure!(
        "missed: call.missed stored {} (exactly one per unanswered call, none for {} answered or blocked, except {} answered on a leg a kill left with its outcome unknown); every call at its end at {ended_at:?}",
        stored.values().map(Vec::len).sum::<usize>(),
        n - unanswered,
        abandoned.len()
    );
}
