//! A carrier that hangs: the dialer (the real binary, `--carrier twilio`) drives the dialer
//! tests' faithful Twilio stand-in (services/dialer/tests/dialer/fake_twilio.rs, shared as is),
//! which never answers a request that dials some numbers. The test plays the rest of the
//! carrier: each dial the stand-in accepted gets its status (`call.status`, as the gateway
//! would publish Twilio's callback) after a short ring.

use crate::fake_twilio::{ACCOUNT, FakeTwilio, Mode, TOKEN};
use crate::fault_support::*;
use crate::figure;
use crate::support::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{
    CallDial, CallRoute, CallStatus, DialCallStatus, DialEventKind, Envelope, FinalAction, Rule,
    Target, TenantId,
};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

/// Numbers the stand-in never answers for.
const HANGING: [&str; 2] = ["+14155550101", "+14155550102"];
/// Numbers it serves normally.
const ANSWERING: [&str; 3] = ["+14155550201", "+14155550202", "+14155550203"];
/// The dialer's timeout of one carrier request: what a hanging step costs. Long enough that
/// the stand-in, which answers the other numbers at once, is never timed out by a loaded
/// machine (that would be a different, legitimate outcome: unknown).
const CARRIER_TIMEOUT: Duration = Duration::from_millis(2000);
/// Slack on top of the carrier timeout for the chain to move on from a hanging step.
const SLACK: Duration = Duration::from_secs(4);
const SOURCE: &str = "/switchboard/chaos-test";

/// Given a dialer whose carrier never answers requests that ring some numbers, and N calls
/// whose chains (3 targets each, seeded) run into those numbers at any step, then every call
/// reaches exactly one end (answered, or the final action taken); each hanging step is asked of
/// the carrier exactly once (never again), recorded as `step_failed` with its outcome unknown
/// (never as started), and followed by the next step within the carrier timeout plus a slack;
/// every other step is rung exactly once and recorded as the carrier's answer and the call's
/// status say; nothing is rung after a call's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_carrier_is_timed_out_recorded_as_unknown_never_asked_again_and_every_call_ends()
{
    let n = (scale("SWITCHBOARD_CHAOS_CALLS", 1200) / 20).max(30);
    let (mut rng, seed) = Rng::from_env(0x5EED_0D14);
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    let twilio = FakeTwilio::start().await;
    for number in HANGING {
        twilio.fake.set_mode(number, Mode::Hang);
    }
    let mut dialer = Service::spawn(
        "dialer",
        binary("switchboard-dialer"),
        [
            ("NATS_URL", nats.url()),
            ("SWITCHBOARD_CARRIER", "twilio".into()),
            ("SWITCHBOARD_TWILIO_API_BASE", twilio.base.clone()),
            ("SWITCHBOARD_PUBLIC_BASE_URL", "https://gw.example.test".into()),
            (
                "SWITCHBOARD_TENANTS_JSON",
                format!(
                    r#"{{"{T}": {{"twilio_auth_token": "{TOKEN}", "twilio_account_sid": "{ACCOUNT}"}}}}"#
                ),
            ),
            (
                "SWITCHBOARD_CARRIER_TIMEOUT_MS",
                CARRIER_TIMEOUT.as_millis().to_string(),
            ),
            ("SWITCHBOARD_CARRIER_MAX_ATTEMPTS", "3".into()),
            ("SWITCHBOARD_CARRIER_BACKOFF_MS", "50".into()),
            ("SWITCHBOARD_CARRIER_BACKOFF_MAX_MS", "200".into()),
            ("SWITCHBOARD_ACK_WAIT_MS", "2000".into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        dir.path(),
    );
    dialer.wait_ready(WAIT).await;
    let started = Instant::now();

    // The chains: 3 distinct numbers of the 5 each, so a hanging number comes at any step,
    // sometimes twice in a row.
    let mut chains: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for i in 0..n {
        let mut pool: Vec<&str> = HANGING.iter().chain(&ANSWERING).copied().collect();
        let chain: Vec<&str> = (0..3).map(|_| pool.remove(rng.below(pool.len()))).collect();
        chains.insert(format!("CAhang{i:05}"), chain);
    }
    let ids: Vec<String> = chains.keys().cloned().collect();

    // The rest of the carrier: a status for every dial the stand-in accepted, after a ring of
    // 100-400 ms; about one in six answered.
    let stop = Arc::new(AtomicBool::new(false));
    let answered: Arc<Mutex<HashSet<(String, u32)>>> = Arc::default();
    let carrier = {
        let (fake, stop, answered) = (twilio.fake.clone(), stop.clone(), answered.clone());
        let publisher = Publisher::new(js.clone());
        let chains = chains.clone();
        let mut rng = Rng::new(seed.rotate_left(17));
        tokio::spawn(async move {
            let mut reported: HashSet<usize> = HashSet::new();
            let mut ringing = tokio::task::JoinSet::new();
            loop {
                let ledger = fake.ledger();
                for (i, r) in ledger.iter().enumerate() {
                    if !r.accepted || !reported.insert(i) {
                        continue;
                    }
                    let Some(chain) = chains.get(&r.call_sid) else {
                        continue;
                    };
                    let Some(step) = chain.iter().position(|n| *n == r.number) else {
                        continue; // the final action
                    };
                    let step = u32::try_from(step).unwrap();
                    let status = if rng.below(6) == 0 {
                        answered.lock().unwrap().insert((r.call_sid.clone(), step));
                        DialCallStatus::Completed
                    } else {
                        DialCallStatus::NoAnswer
                    };
                    let ring = Duration::from_millis(rng.range(100, 400) as u64);
                    let (publisher, call) = (publisher.clone(), r.call_sid.clone());
                    ringing.spawn(async move {
                        tokio::time::sleep(ring).await;
                        let event = Envelope::new(
                            CallStatus {
                                call_id: call.clone(),
                                tenant_id: TenantId::new(T).unwrap(),
                                step,
                                dial_call_status: status,
                                dial_call_sid: Some(format!("CAleg{step}{call}")),
                                dial_call_duration: None,
                                received_at: OffsetDateTime::now_utc(),
                            },
                            SOURCE,
                            OffsetDateTime::now_utc(),
                        );
                        publisher
                            .publish(&event, &TraceContext::default())
                            .await
                            .unwrap();
                    });
                }
                if stop.load(Ordering::SeqCst) {
                    while ringing.join_next().await.is_some() {}
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The decisions.
    let publisher = Publisher::new(js.clone());
    let mut decided_at: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    for (id, chain) in &chains {
        // From JSON, so that fields the contract adds later keep their defaults.
        let target = |number: &str| -> Target {
            serde_json::from_value(serde_json::json!({
                "number": number,
                "rule": Rule::ForwardingNumber.as_str(),
            }))
            .unwrap()
        };
        let now = OffsetDateTime::now_utc();
        let route = CallRoute {
            call_id: id.clone(),
            tenant_id: TenantId::new(T).unwrap(),
            rule: Rule::ForwardingNumber,
            target: Some(target(chain[0])),
            fallbacks: chain[1..].iter().map(|n| target(n)).collect(),
            final_action: FinalAction::default(),
            reasons: Vec::new(),
            explanation: vec!["chaos: a hanging carrier".into()],
            settings_seq: 1,
            calls_seq: 0,
            caller: None,
            decided_at: now,
        };
        publisher
            .publish(&Envelope::new(route, SOURCE, now), &TraceContext::default())
            .await
            .unwrap();
        decided_at.insert(id.clone(), now);
    }

    // Every call reaches an end.
    let deadline = WAIT + CARRIER_TIMEOUT * 3 + SLACK + Duration::from_millis(n as u64 * 10);
    let ended_in = wait_ended(&js, &ids, deadline).await;
    wait_quiet_dialer(&js).await;
    stop.store(true, Ordering::SeqCst);
    carrier.await.unwrap();
    let events = dial_events(&js).await;
    assert_one_end_each(&events, &ids);
    let ledger = twilio.fake.ledger();
    let answered = answered.lock().unwrap().clone();

    // Each call, step by step.
    let mut by_call: BTreeMap<&str, Vec<&CallDial>> = BTreeMap::new();
    for e in &events {
        by_call.entry(e.call_id.as_str()).or_default().push(e);
    }
    let mut requests: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for r in &ledger {
        let entry = requests
            .entry((r.call_sid.as_str(), r.number.as_str()))
            .or_default();
        entry.0 += 1;
        entry.1 += usize::from(r.accepted);
    }
    let (mut hung, mut worst_move_on) = (0, Duration::ZERO);
    for (id, chain) in &chains {
        let evs = by_call.get(id.as_str()).cloned().unwrap_or_default();
        let at_step = |step: u32, kind: DialEventKind| -> Vec<&CallDial> {
            evs.iter()
                .copied()
                .filter(|e| e.step == step && e.kind == kind)
                .collect()
        };
        let asked = |number: &str| requests.get(&(id.as_str(), number)).copied();
        // When the chain moved on to the current step (the decision, then each failure).
        let mut moved_on = decided_at[id];
        let mut ended = false;
        for (s, number) in chain.iter().enumerate() {
            let step = u32::try_from(s).unwrap();
            if ended {
                assert_eq!(
                    asked(number),
                    None,
                    "{id}: {number} rung after the call ended"
                );
                assert!(
                    !evs.iter().any(|e| e.step == step),
                    "{id}: events at step {step} after the call ended: {evs:#?}"
                );
                continue;
            }
            if HANGING.contains(number) {
                hung += 1;
                assert_eq!(
                    asked(number),
                    Some((1, 0)),
                    "{id} step {step}: the hanging request must be asked exactly once (requests, accepted)"
                );
                let failed = at_step(step, DialEventKind::StepFailed);
                assert!(
                    failed.len() == 1
                        && failed[0].outcome_unknown
                        && failed[0].carrier_sid.is_none(),
                    "{id} step {step}: the hanging step must be recorded once as failed with its outcome unknown: {evs:#?}"
                );
                assert!(
                    at_step(step, DialEventKind::StepStarted).is_empty(),
                    "{id} step {step}: a hanging step recorded as started: {evs:#?}"
                );
                let gap = Duration::try_from(failed[0].at - moved_on).unwrap_or_default();
                worst_move_on = worst_move_on.max(gap);
                moved_on = failed[0].at;
            } else {
                assert_eq!(
                    asked(number),
                    Some((1, 1)),
                    "{id} step {step}: {number} must be rung exactly once (requests, accepted)"
                );
                let started = at_step(step, DialEventKind::StepStarted);
                assert!(
                    started.len() == 1 && started[0].carrier_sid.is_some(),
                    "{id} step {step}: the accepted dial must be recorded once as started with the carrier's sid: {evs:#?}"
                );
                if answered.contains(&(id.clone(), step)) {
                    assert_eq!(
                        at_step(step, DialEventKind::Answered).len(),
                        1,
                        "{id} step {step}: answered: {evs:#?}"
                    );
                    ended = true;
                } else {
                    let failed = at_step(step, DialEventKind::StepFailed);
                    assert!(
                        failed.len() == 1 && !failed[0].outcome_unknown,
                        "{id} step {step}: no answer must be recorded once as failed: {evs:#?}"
                    );
                    moved_on = failed[0].at;
                }
            }
        }
        let len = u32::try_from(chain.len()).unwrap();
        if ended {
            assert_eq!(asked("final"), None, "{id}: a final action after an answer");
        } else {
            assert_eq!(
                at_step(len, DialEventKind::FinalActionTaken).len(),
                1,
                "{id}: the final action: {evs:#?}"
            );
            assert_eq!(
                asked("final"),
                Some((1, 1)),
                "{id}: the final action asked of the carrier once"
            );
        }
    }
    assert!(
        hung > 0,
        "no chain ran into a hanging number: nothing was tested"
    );
    // With many calls at once, a step may also wait for one of the dialer's 256 delivery slots.
    let move_on_bound = CARRIER_TIMEOUT + SLACK + Duration::from_millis(n as u64 * 4);
    assert!(
        worst_move_on <= move_on_bound,
        "a chain waited {worst_move_on:?} on a hanging step (carrier timeout {CARRIER_TIMEOUT:?})"
    );
    assert!(
        dialer.is_running(),
        "the dialer died:\n{}",
        dialer.log_tail(40)
    );
    let answered_calls = events
        .iter()
        .filter(|e| e.kind == DialEventKind::Answered)
        .count();
    figure!(
        "hanging carrier: seed {seed}, {n} calls over chains of 3 (2 of 5 numbers never answered by the carrier): {hung} hanging steps, each asked once, \
         recorded outcome-unknown, moved on within {worst_move_on:?} (carrier timeout {CARRIER_TIMEOUT:?}); carrier requests {}, \
         every call ended once ({answered_calls} answered, {} final actions) in {ended_in:?}; total {:?}",
        ledger.len(),
        n - answered_calls,
        started.elapsed()
    );
}

/// Waits until the dialer's consumers are settled (nothing pending, nothing unacknowledged).
async fn wait_quiet_dialer(js: &async_nats::jetstream::Context) {
    wait_settled(js, "dialer-route", WAIT).await;
    wait_settled(js, "dialer-status", WAIT).await;
}
