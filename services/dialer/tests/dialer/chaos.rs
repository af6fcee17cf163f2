//! Issue 14's chaos test: two dialer replicas (the real binary) carry out many concurrent
//! chains against a carrier that answers slowly, fails with 5xx and times out, while replicas
//! are SIGKILLed at seeded random instants and restarted. The carrier's status callbacks are
//! the test's own (a real carrier's survive a dialer's death). Asserted from CALLS and the
//! carrier's ledger: one end per call, no number rung twice, every carrier action recorded,
//! and every chain moving on within the bound after each status.
//!
//! `SWITCHBOARD_CHAOS_SCALE` (default 1) multiplies the calls and the kills: `make test` runs
//! 60 chains and 8 kills, `make test-chaos` 10×.

use crate::fake_twilio::{FakeTwilio, Mode};
use crate::support::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use switchboard_bus::TraceContext;
use switchboard_contracts::{CallDial, DialCallStatus, DialEventKind, Envelope, FinalAction};
use time::OffsetDateTime;

/// A status is followed by the chain's next event within this bound: `ack_wait` (2 s here)
/// after a kill, a restart, then one carrier request with its retries (3 × up to 1 s + backoff).
const BOUND: Duration = Duration::from_secs(15);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn scale() -> usize {
    std::env::var("SWITCHBOARD_CHAOS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn chaos_args(nats_url: &str, base: &str, tag: &str) -> Vec<String> {
    let mut args = args(nats_url, &format!("{base}/via/{tag}"));
    for (flag, value) in [
        ("--carrier-timeout-ms", "1000"),
        ("--ack-wait-ms", "2000"),
        ("--max-in-flight", "64"),
    ] {
        let i = args.iter().position(|a| a == flag);
        match i {
            Some(i) => args[i + 1] = value.into(),
            None => {
                args.push(flag.into());
                args.push(value.into());
            }
        }
    }
    args
}

fn step_of(number: &str) -> u32 {
    match number {
        USER_PHONE => 0,
        FORWARDING => 1,
        _ => 2,
    }
}

#[tokio::test]
async fn two_dialers_killed_at_random_instants_end_every_call_once_and_ring_nobody_twice() {
    let seed: u64 = std::env::var("SWITCHBOARD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    let calls = 60 * scale();
    let kills = 8 * scale();
    let mut rng = Rng(seed | 1);
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    for number in [USER_PHONE, FORWARDING, COMPANY] {
        twilio.fake.set_mode(number, Mode::Flaky { seed });
    }
    let tags = ["a", "b"];
    let mut replicas: Vec<Process> = tags
        .iter()
        .map(|tag| Process::spawn(&chaos_args(&nats.url(), &twilio.base, tag)))
        .collect();

    let ids: Vec<String> = (0..calls).map(|i| format!("CAchaos{i:05}")).collect();
    for id in &ids {
        nats.publish(full_chain(id, FinalAction::default())).await;
    }

    // The carrier's side: every accepted dial gets its status after a ring time, whatever
    // happens to the dialers; about one in five is answered.
    let carrier = {
        let fake = twilio.fake.clone();
        let publisher = nats.publisher.clone();
        let mut rng = Rng(seed.rotate_left(17) | 1);
        tokio::spawn(async move {
            let mut handled: HashSet<usize> = HashSet::new();
            let published = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut ringing = tokio::task::JoinSet::new();
            loop {
                let ledger = fake.ledger();
                for (i, r) in ledger.iter().enumerate() {
                    if !r.accepted || r.number == "final" || !handled.insert(i) {
                        continue;
                    }
                    let step = step_of(&r.number);
                    let answered = rng.below(5) == 0;
                    let outcome = if answered {
                        DialCallStatus::Completed
                    } else {
                        DialCallStatus::NoAnswer
                    };
                    let ring = Duration::from_millis(100 + rng.below(400));
                    let (publisher, published, call) =
                        (publisher.clone(), published.clone(), r.call_sid.clone());
                    ringing.spawn(async move {
                        tokio::time::sleep(ring).await;
                        let event = Envelope::new(
                            status(&call, step, outcome),
                            "/switchboard/test/carrier",
                            OffsetDateTime::now_utc(),
                        );
                        publisher
                            .publish(&event, &TraceContext::default())
                            .await
                            .unwrap();
                        published
                            .lock()
                            .unwrap()
                            .push((call, step, Instant::now(), answered));
                    });
                }
                if CARRIER_STOP.load(std::sync::atomic::Ordering::SeqCst) {
                    while ringing.join_next().await.is_some() {}
                    return published.lock().unwrap().clone();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Kill a replica at a seeded random instant, restart it at once.
    let started = Instant::now();
    let mut last_kill = Instant::now();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1700))).await;
        let i = usize::try_from(rng.below(2)).unwrap();
        replicas[i].kill();
        last_kill = Instant::now();
        replicas[i] = Process::spawn(&chaos_args(&nats.url(), &twilio.base, tags[i]));
    }

    // Every call reaches an end.
    let deadline = last_kill + Duration::from_secs(60);
    let events = loop {
        let events = nats.read::<CallDial>(&format!("call.dial.{T}")).await;
        let ended: HashSet<&str> = events
            .iter()
            .filter(|e| {
                matches!(
                    e.data.kind,
                    DialEventKind::Answered | DialEventKind::FinalActionTaken
                )
            })
            .map(|e| e.data.call_id.as_str())
            .collect();
        if ended.len() == calls {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {calls} calls ended 60 s after the last kill",
            ended.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    CARRIER_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    let statuses = carrier.await.unwrap();
    let ledger = twilio.fake.ledger();

    let mut by_call: BTreeMap<&str, Vec<&CallDial>> = BTreeMap::new();
    for e in &events {
        by_call
            .entry(e.data.call_id.as_str())
            .or_default()
            .push(&e.data);
    }
    assert_eq!(by_call.len(), calls);
    // One end per call.
    for (call, evs) in &by_call {
        let ends = evs
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    DialEventKind::Answered | DialEventKind::FinalActionTaken
                )
            })
            .count();
        assert_eq!(ends, 1, "{call}: {evs:#?}");
    }
    // No number rung twice: at most one accepted dial per (call, number).
    let mut rung: HashMap<(&str, &str), usize> = HashMap::new();
    for r in ledger.iter().filter(|r| r.accepted && r.number != "final") {
        *rung
            .entry((r.call_sid.as_str(), r.number.as_str()))
            .or_default() += 1;
    }
    let twice: Vec<_> = rung.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "rung twice: {twice:?}");
    // Every carrier action recorded: its step started with the carrier's sid, reported by the
    // carrier's status, or marked outcome unknown; every accepted final action is an end.
    let mut unknown = 0;
    for r in ledger.iter().filter(|r| r.accepted) {
        let evs = &by_call[r.call_sid.as_str()];
        let recorded = if r.number == "final" {
            evs.iter()
                .any(|e| e.kind == DialEventKind::FinalActionTaken)
        } else {
            let step = step_of(&r.number);
            evs.iter().any(|e| {
                e.step == step
                    && match e.kind {
                        DialEventKind::StepStarted | DialEventKind::Answered => {
                            e.carrier_sid.is_some()
                        }
                        DialEventKind::StepFailed => e.outcome_unknown || e.carrier_sid.is_some(),
                        _ => false,
                    }
            })
        };
        assert!(recorded, "carrier action not recorded: {r:?} in {evs:#?}");
    }
    for evs in by_call.values() {
        unknown += evs.iter().filter(|e| e.outcome_unknown).count();
    }
    // Each status moved its chain on within the bound.
    let status_at: HashMap<(String, u32), Instant> = statuses
        .iter()
        .filter(|(_, _, _, answered)| !answered)
        .map(|(c, s, at, _)| ((c.clone(), *s), *at))
        .collect();
    let wall = OffsetDateTime::now_utc();
    let now = Instant::now();
    let mut worst = Duration::ZERO;
    for ((call, step), at) in &status_at {
        let evs = &by_call[call.as_str()];
        let next = evs
            .iter()
            .filter(|e| {
                e.step > *step
                    && matches!(
                        e.kind,
                        DialEventKind::StepStarted
                            | DialEventKind::StepFailed
                            | DialEventKind::FinalActionTaken
                    )
            })
            .map(|e| e.at)
            .min();
        let Some(next) = next else {
            // Another step's status already ended the chain (answered).
            continue;
        };
        let status_wall = wall - (now - *at);
        let gap = Duration::try_from(next - status_wall).unwrap_or_default();
        worst = worst.max(gap);
    }
    let requests = ledger.len();
    let accepted = ledger.iter().filter(|r| r.accepted).count();
    let finals = ledger
        .iter()
        .filter(|r| r.accepted && r.number == "final")
        .count();
    eprintln!(
        "chaos: seed {seed:#x}, {calls} calls, {kills} kills in {:?}; carrier requests {requests}, accepted {accepted} (final actions {finals}); steps outcome-unknown {unknown}; worst status→next step {worst:?}",
        last_kill - started
    );
    assert!(worst <= BOUND, "a chain waited {worst:?} after a status");
    // By id, the other way round: every final action recorded as done was accepted by the
    // carrier for that call. One recorded with its outcome unknown (a dialer died while it was
    // asked, or before) may or may not have reached the carrier: the gateway's dead-man's
    // switch covers the caller then, and it is counted, not required.
    let mut finals_unknown = 0;
    for (call, evs) in &by_call {
        for e in evs
            .iter()
            .filter(|e| e.kind == DialEventKind::FinalActionTaken)
        {
            if e.outcome_unknown {
                finals_unknown += 1;
                continue;
            }
            assert!(
                ledger
                    .iter()
                    .any(|r| r.accepted && r.number == "final" && r.call_sid == *call),
                "{call}: a final action recorded as done was never accepted by the carrier: {evs:#?}"
            );
        }
    }
    eprintln!("chaos: final actions recorded with their outcome unknown: {finals_unknown}");
}

static CARRIER_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
