//! Helpers of the network, database, SIGSTOP and hanging-carrier scenarios (partition.rs,
//! postgres_outage.rs, sigstop.rs, hanging_carrier.rs), on top of support.rs.

use crate::support::{Publishing, Service, T, read, sample, wait_count};
use async_nats::jetstream;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_contracts::{CallDial, CallRoute, DialEventKind, Envelope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether this is the full-scale run (`make test-chaos` sets `SWITCHBOARD_CHAOS_CALLS`):
/// longer faults, and faults that lose deliveries in flight, waiting out the router's 30 s
/// `ack_wait`. Otherwise the bounded run inside `make test`.
pub fn full_scale() -> bool {
    std::env::var("SWITCHBOARD_CHAOS_CALLS").is_ok_and(|v| !v.trim().is_empty())
}

/// Publishes calls `<prefix>-0 .. <prefix>-<n-1>` over about `over`, each acknowledged by
/// JetStream; their ids.
pub async fn publish_calls(
    js: &jetstream::Context,
    prefix: &str,
    n: usize,
    over: Duration,
) -> Vec<String> {
    Publishing::start(js.clone(), prefix, n, over)
        .finish()
        .await
}

/// `call.route.<tenant>`.
pub fn routes_subject() -> String {
    format!("call.route.{T}")
}

/// Waits until CALLS holds at least `n` decisions; how long that took.
pub async fn wait_decided(js: &jetstream::Context, n: usize, deadline: Duration) -> Duration {
    let started = Instant::now();
    wait_count(js, &routes_subject(), n, deadline).await;
    started.elapsed()
}

/// Every decision in CALLS, by call id (the audit's exactly-once check is separate).
pub async fn decisions(js: &jetstream::Context) -> BTreeMap<String, CallRoute> {
    read(js, &routes_subject())
        .await
        .into_iter()
        .map(|m| {
            let route = Envelope::<CallRoute>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid decision: {e}", m.seq));
            (route.data.call_id.clone(), route.data)
        })
        .collect()
}

/// Every dial event in CALLS, in stream order.
pub async fn dial_events(js: &jetstream::Context) -> Vec<CallDial> {
    read(js, &format!("call.dial.{T}"))
        .await
        .into_iter()
        .map(|m| {
            Envelope::<CallDial>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid dial event: {e}", m.seq))
                .data
        })
        .collect()
}

/// Whether a dial event ends its call (answered, or the final action taken).
pub fn is_end(kind: DialEventKind) -> bool {
    matches!(
        kind,
        DialEventKind::Answered | DialEventKind::FinalActionTaken
    )
}

/// End events per call.
pub fn ends(events: &[CallDial]) -> BTreeMap<&str, usize> {
    let mut ends = BTreeMap::new();
    for e in events.iter().filter(|e| is_end(e.kind)) {
        *ends.entry(e.call_id.as_str()).or_insert(0) += 1;
    }
    ends
}

/// Waits until every call of `ids` has reached an end (answered or final action) in CALLS;
/// how long that took. On the deadline, fails naming the chains still open.
pub async fn wait_ended(js: &jetstream::Context, ids: &[String], deadline: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let events = dial_events(js).await;
        let ended = ends(&events);
        let open: Vec<&String> = ids
            .iter()
            .filter(|c| !ended.contains_key(c.as_str()))
            .collect();
        if open.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "calls whose chain never reached an end (stuck) within {deadline:?}: {}",
            sample(&open)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every call of `ids` reached exactly one end; no end for a call outside `ids`.
pub fn assert_one_end_each(events: &[CallDial], ids: &[String]) {
    let ended = ends(events);
    let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let stuck: Vec<&&str> = expected
        .iter()
        .filter(|c| !ended.contains_key(**c))
        .collect();
    let twice: Vec<(&&str, &usize)> = ended.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<&&str> = ended.keys().filter(|c| !expected.contains(**c)).collect();
    assert!(
        stuck.is_empty(),
        "chains that never reached an end: {}",
        sample(&stuck)
    );
    assert!(
        twice.is_empty(),
        "calls that reached more than one end: {}",
        sample(&twice)
    );
    assert!(
        unknown.is_empty(),
        "ends of calls never published: {}",
        sample(&unknown)
    );
}

/// The ids of `ids` that have a decision in `decided`.
pub fn decided_among<'a>(
    ids: &'a [String],
    decided: &BTreeMap<String, CallRoute>,
) -> Vec<&'a String> {
    ids.iter().filter(|c| decided.contains_key(*c)).collect()
}

/// The body of `GET path` on `addr` when it answers 200 (HTTP/1.0), else `None`.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let connect = tokio::net::TcpStream::connect(addr);
    let mut stream = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .ok()?
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.lines().next()?.split(' ').nth(1)? == "200").then(|| body.to_string())
}

/// The sum of every sample of the Prometheus metric `name` (all label sets) in `/metrics` of
/// `addr`; `None` when the endpoint does not answer.
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let body = http_get(addr, "/metrics").await?;
    let mut total = 0.0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            total += value;
        }
    }
    Some(total)
}

/// The round trip of a request to nats-server through `url` (a proxy): JetStream's account
/// info, answered by the server itself.
pub async fn nats_round_trip(url: &str) -> Duration {
    let client = async_nats::connect(url).await.unwrap();
    client.request("$JS.API.INFO", "".into()).await.unwrap();
    let started = Instant::now();
    client.request("$JS.API.INFO", "".into()).await.unwrap();
    let rtt = started.elapsed();
    drop(client);
    rtt
}

/// Waits until no pull request is waiting on the durable consumers `names` of `stream`: a
/// connection that was cut can then be handed nothing.
pub async fn wait_no_pull_waiting(
    js: &jetstream::Context,
    stream: &str,
    names: &[&str],
    deadline: Duration,
) {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        if let Ok(s) = js.get_stream(stream).await {
            for name in names {
                match s.consumer_info(*name).await {
                    Ok(info) if info.num_waiting == 0 => {}
                    Ok(info) => waiting.push((*name, Some(info.num_waiting))),
                    Err(_) => waiting.push((*name, None)),
                }
            }
        } else {
            waiting.push((stream, None));
        }
        if waiting.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < deadline,
            "pull requests still waiting after {deadline:?}: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The rest of a fault window that began at `since` (fault timing, not synchronization).
pub async fn sleep_rest_of(window: Duration, since: Instant) {
    if let Some(rest) = window.checked_sub(since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
}

/// Polls `condition` until it holds, failing after `deadline`.
pub async fn wait_until(deadline: Duration, what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Re-decisions per call id: a router deciding a call whose decision CALLS already held (its
/// publish ack had the `duplicate` flag), which it logs as "call was already decided" with the
/// call id. JetStream drops the second copy, so CALLS cannot show them.
pub fn redecisions(routers: &[&Service]) -> BTreeMap<String, usize> {
    let mut redecided = BTreeMap::new();
    for router in routers {
        for line in router.log().lines() {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if json["message"] == "call was already decided; kept the first decision"
                && let Some(call) = json["call_id"].as_str()
            {
                *redecided.entry(call.to_string()).or_insert(0) += 1;
            }
        }
    }
    redecided
}
