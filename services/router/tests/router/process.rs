//! The real binary: killed with SIGKILL, stopped with SIGTERM, and what it logs.

use crate::health::hold_write_lock;
use crate::support::*;
use std::time::Duration;
use switchboard_contracts::Rule;

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const FORWARDING: &str = "+13127654321";
/// Redeliveries of calls a dead router held wait for the consumer's 30 s `ack_wait`.
const AFTER_ACK_WAIT: Duration = Duration::from_secs(75);

/// Waits until more than `n` calls of tenant `T` are decided; how many are.
async fn more_than(nats: &Nats, n: usize) -> usize {
    switchboard_testkit::eventually(WAIT, &format!("more than {n} decisions"), || async {
        let decided = nats.count("call.route.acme").await;
        (decided > n).then_some(decided)
    })
    .await
    .unwrap()
}

/// Given a router process deciding a backlog of 5000 calls, when it is killed with SIGKILL
/// after deciding some but not all, and started again on the same projection file, then
/// every call is decided, none twice — including the calls the dead process had received,
/// and perhaps decided, without acknowledging them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_call_and_decides_none_twice() {
    const CALLS: usize = 5000;
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    // The backlog is stored before the router starts, so the router cannot finish it while it
    // is still being published: the kill lands mid-stream however fast the router is.
    let calls = nats.calls(T, "kill", CALLS, DIALED, CALLER).await;
    let mut router = Binary::spawn(&nats.url(), db.url(), &db.dir());
    router.wait_ready().await;
    more_than(&nats, 50).await;
    router.kill();
    let decided_before_kill = nats.count("call.route.acme").await;
    assert!(
        decided_before_kill < CALLS,
        "the router decided everything before it was killed: nothing was tested"
    );

    let restarted = Binary::spawn(&nats.url(), db.url(), &db.dir());
    restarted.wait_ready().await;
    nats.wait_routes(T, CALLS, AFTER_ACK_WAIT).await;
    // Wait for the redeliveries of what the dead process held too: they must not add decisions.
    nats.wait_settled(AFTER_ACK_WAIT).await;
    nats.assert_decided_once(T, &calls).await;
}

/// Given a router process deciding a backlog of calls, when it receives SIGTERM, then it exits
/// with status 0 promptly, leaving every call it had received settled (nothing awaiting an
/// ack, nothing redelivered); a new process decides the rest before any redelivery could
/// have happened, each call exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_and_exits_zero() {
    const CALLS: usize = 5000;
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    // Stored before the router starts: SIGTERM lands mid-stream however fast the router is.
    let calls = nats.calls(T, "term", CALLS, DIALED, CALLER).await;
    let mut router = Binary::spawn(&nats.url(), db.url(), &db.dir());
    router.wait_ready().await;
    more_than(&nats, 50).await;
    router.terminate();
    let status = router.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}\n{}", router.log());
    let decided_at_exit = nats.count("call.route.acme").await;
    assert!(
        decided_at_exit < CALLS,
        "the router decided everything before SIGTERM: nothing was tested"
    );
    assert!(router.log().contains("stopped"), "{}", router.log());

    // Every delivered call was decided and acknowledged before the exit.
    let settled = switchboard_testkit::eventually(WAIT, "no call awaiting an ack", || async {
        let info = nats.consumer().await;
        (info.num_ack_pending == 0).then_some(info)
    })
    .await;
    let info = match settled {
        Ok(info) => info,
        Err(e) => panic!(
            "{e}: {:?}; {decided_at_exit} decided at exit\n{}",
            nats.consumer().await,
            router.log()
        ),
    };
    assert_eq!(info.num_redelivered, 0);
    assert_eq!(
        info.num_pending,
        u64::try_from(CALLS - decided_at_exit).unwrap(),
        "every call is either decided or still waiting in the consumer"
    );

    // Well within the 30 s ack_wait: nothing is waiting for a redelivery.
    let restarted = Binary::spawn(&nats.url(), db.url(), &db.dir());
    restarted.wait_ready().await;
    nats.wait_routes(T, CALLS, WAIT).await;
    nats.wait_settled(WAIT).await;
    nats.assert_decided_once(T, &calls).await;
}

/// Given a router process still catching up with SETTINGS (its projection cannot commit),
/// when it receives SIGTERM, then it exits with status 0 without deciding anything, and the
/// call that arrived meanwhile is decided by the next process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_catching_up_exits_zero() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let lock = hold_write_lock(&db).await;
    let mut router = Binary::spawn(&nats.url(), db.url(), &db.dir());
    wait_status(router.http, "/healthz", 200).await;
    assert_eq!(http_status(router.http, "/readyz").await, Some(503));
    nats.call(call(T, "waiting", DIALED, CALLER)).await;

    router.terminate();
    lock.rollback().await.unwrap();
    let status = router.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}\n{}", router.log());
    assert_eq!(nats.count("call.route.>").await, 0);

    let next = Binary::spawn(&nats.url(), db.url(), &db.dir());
    next.wait_ready().await;
    assert_eq!(
        nats.route(T, "waiting").await.target,
        Some(target(FORWARDING, Rule::ForwardingNumber, None))
    );
    let info = nats.wait_settled(WAIT).await;
    assert_eq!(info.num_redelivered, 0);
}

/// Given a router process with debug logs, when it decides calls and rejects an event that
/// carries a phone number where a string belongs, then its log shows what happened but no
/// phone number in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_show_phone_numbers() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    nats.settings(user(T, "u1", Some("+12064561234"), true))
        .await;
    nats.settings(contact(T, "c1", &[CALLER], Some("u1"))).await;
    let mut router = Binary::spawn(&nats.url(), db.url(), &db.dir());
    router.wait_ready().await;

    nats.call(call(T, "logged", DIALED, CALLER)).await;
    let bad = format!(
        r#"{{"specversion":"1.0","id":"x","source":"/t","type":"switchboard.call.inbound.v1","time":"2026-11-22T09:00:00Z","subject":"CA1","datacontenttype":"application/json","data":{{"call_id":"CA1","tenant_id":"acme","to":16502530000,"from":"{CALLER}","received_at":"2026-11-22T09:00:00Z"}}}}"#
    );
    let seq = nats
        .raw("call.inbound.acme", "bad", bad.as_bytes())
        .await
        .sequence;
    assert_eq!(nats.route(T, "logged").await.rule, Rule::AssignedUser);
    assert_eq!(nats.rejection(T, seq).await.data.0.code, "malformed");

    router.terminate();
    assert!(router.wait_exit(Duration::from_secs(15)).await.success());
    let log = router.log();
    assert!(
        log.contains("decided"),
        "the decision is logged at debug: {log}"
    );
    assert!(log.contains("rejecting call event"), "{log}");
    for number in [DIALED, CALLER, FORWARDING, "+12064561234"] {
        let digits = &number[2..]; // without +1: national digits are as telling
        assert!(
            !log.contains(digits),
            "the log shows {number} in full:\n{log}"
        );
    }
}
