//! End to end through JetStream (file storage) on this machine: a backlog of `call.inbound`
//! drained by the real router (decode, freshness check, routing, publish with ack, ack), and
//! the same backlog drained by a bare relay (consume → publish with ack → ack; no decoding, no
//! routing, no projection). Both pull batches and keep up to [`MAX_IN_FLIGHT`] messages in
//! flight, with the same design: each polls all its in-flight work in one task (a
//! `FuturesUnordered`; see [`relay`]). Both are
//! timed the same way, from the consumer's own counters, each on a fresh nats-server holding
//! the same settings and backlog (80 % known contacts, 10 % unknown, 10 % withheld: see
//! [`fixtures::caller`]). The two alternate for several rounds and the medians are reported: on
//! a shared virtual machine the speed of the cores drifts within a minute, and one relay phase
//! followed by one router phase compared whatever the machine did in each.
//!
//! Each round starts with a third drain: the bare relay republishing every call padded (JSON
//! whitespace) to the mean size of the router's decision on the wire. It says how much of the
//! gap to the bare relay is the decision's size alone (the contract's target, fallbacks, final
//! action and structured reasons), which no change to the router's code can close.

use crate::fixtures;
use crate::host::CpuTimes;
use crate::openloop::Router;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{Envelope, EventData};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

#[derive(Debug, Clone, serde::Serialize)]
pub struct E2eResult {
    /// Calls in each round's backlog.
    pub calls: u64,
    pub contacts: u64,
    pub max_in_flight: usize,
    pub rounds: usize,
    /// Medians over the rounds.
    pub router_decisions_per_second: f64,
    pub relay_messages_per_second: f64,
    /// Median over the rounds of each round's router rate ÷ the relay rate of the phase just
    /// before it: the paired comparison the alternation is for (both phases ran on nearly the
    /// same machine state).
    pub router_to_relay_ratio: f64,
    /// Median router rate ÷ median relay rate (unpaired; shown beside the paired figure).
    pub ratio_of_medians: f64,
    /// CPU time per message (µs) of the client process (relay or router) and of nats-server,
    /// medians over the rounds.
    pub relay_cpu_us_per_message: CpuPerMessage,
    pub router_cpu_us_per_message: CpuPerMessage,
    /// Every round, in order: padded relay, relay, then router.
    pub each_round: Vec<Round>,
    /// What the messages weigh on the wire.
    pub wire: WireBytes,
    /// Median over the rounds of the relay padded to the decision's size.
    pub padded_relay_messages_per_second: f64,
    pub padded_relay_cpu_us_per_message: CpuPerMessage,
    /// Median over the rounds of each round's padded relay ÷ its bare relay: what the
    /// decision's size alone costs.
    pub padded_to_bare_relay_ratio: f64,
    /// Median over the rounds of each round's router ÷ its padded relay: the router's own
    /// work, at equal message size.
    pub router_to_padded_relay_ratio: f64,
}

/// Mean size in bytes of the fixture's events on the wire (the CloudEvents JSON body), over
/// [`WIRE_SAMPLE`] calls of the backlog's mix: a `call.inbound` as the relay republishes it,
/// and the `call.route` the routing core decides for it, as the router publishes it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WireBytes {
    pub call: f64,
    pub decision: f64,
}

/// Calls whose decisions are measured for [`WireBytes`].
const WIRE_SAMPLE: u64 = 2_000;

fn wire_bytes(contacts: u64) -> anyhow::Result<WireBytes> {
    let mut state = switchboard_routing::TenantState::new(fixtures::tenant());
    for change in fixtures::tenant_settings((contacts / 10).max(1), contacts) {
        state
            .apply(&change)
            .map_err(|e| anyhow::anyhow!("fixture settings: {e:?}"))?;
    }
    let now = OffsetDateTime::now_utc();
    let (mut call_bytes, mut decision_bytes) = (0usize, 0usize);
    for i in 0..WIRE_SAMPLE {
        let call = fixtures::call(i, contacts);
        let route = switchboard_routing::decide(&call, &state).into_route(&call, 1, now);
        decision_bytes += Envelope::new(route, "/switchboard/router", now)
            .to_json()?
            .len();
        call_bytes += encode(call, now).body.len();
    }
    let n = WIRE_SAMPLE as f64;
    Ok(WireBytes {
        call: call_bytes as f64 / n,
        decision: decision_bytes as f64 / n,
    })
}

/// One padded-relay phase, one relay phase and the router phase right after it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Round {
    pub padded_relay_messages_per_second: f64,
    pub padded_relay_cpu_us_per_message: CpuPerMessage,
    pub relay_messages_per_second: f64,
    pub router_decisions_per_second: f64,
    pub relay_cpu_us_per_message: CpuPerMessage,
    pub router_cpu_us_per_message: CpuPerMessage,
}

/// Where one message's CPU time goes: in the client process and in nats-server; and the share
/// of the machine's CPU time the hypervisor took during the phase (see `host`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CpuPerMessage {
    pub client: f64,
    pub nats_server: f64,
    pub host_steal_percent: f64,
}

/// User + system CPU seconds of a process so far, from /proc (0 where unavailable).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Measures the CPU both processes spend while `work` runs, per message.
async fn with_cpu<T>(
    server_pid: &str,
    messages: u64,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, CpuPerMessage)> {
    let (client0, server0) = (cpu_seconds("self"), cpu_seconds(server_pid));
    let host0 = CpuTimes::now();
    let out = work.await?;
    let per = |seconds: f64| seconds * 1e6 / messages.max(1) as f64;
    Ok((
        out,
        CpuPerMessage {
            client: per(cpu_seconds("self") - client0),
            nats_server: per(cpu_seconds(server_pid) - server0),
            host_steal_percent: CpuTimes::now().steal_percent_since(host0),
        },
    ))
}

const MAX_IN_FLIGHT: usize = 1024;
/// Relay and router phases alternate this many times.
pub const ROUNDS: usize = 5;

pub async fn run(calls: u64, contacts: u64) -> anyhow::Result<E2eResult> {
    let wire = wire_bytes(contacts)?;
    let pad_to = wire.decision.round() as usize;
    println!(
        "  on the wire: call.inbound {:.0} bytes, call.route {:.0} bytes (means of {WIRE_SAMPLE})",
        wire.call, wire.decision
    );
    let mut each_round = Vec::new();
    for round in 0..ROUNDS {
        println!("  round {}: {calls} calls, {contacts} contacts", round + 1);
        let (padded, padded_cpu) = phase(Drainer::Relay { pad_to }, calls, contacts).await?;
        println!(
            "    relay padded to {pad_to} bytes: {padded:.0} messages/s; CPU µs/message: {padded_cpu:?}"
        );
        let (relay, relay_cpu) = phase(Drainer::Relay { pad_to: 0 }, calls, contacts).await?;
        println!("    bare relay: {relay:.0} messages/s; CPU µs/message: {relay_cpu:?}");
        let (decided, router_cpu) = phase(Drainer::Router, calls, contacts).await?;
        println!(
            "    router: {decided:.0} decisions/s ({:.2} of the relay, {:.2} of the padded relay); CPU µs/message: {router_cpu:?}",
            decided / relay,
            decided / padded
        );
        each_round.push(Round {
            padded_relay_messages_per_second: padded,
            padded_relay_cpu_us_per_message: padded_cpu,
            relay_messages_per_second: relay,
            router_decisions_per_second: decided,
            relay_cpu_us_per_message: relay_cpu,
            router_cpu_us_per_message: router_cpu,
        });
    }

    let relay = median(each_round.iter().map(|r| r.relay_messages_per_second));
    let decided = median(each_round.iter().map(|r| r.router_decisions_per_second));
    let cpu = |pick: fn(&Round) -> CpuPerMessage| CpuPerMessage {
        client: median(each_round.iter().map(|r| pick(r).client)),
        nats_server: median(each_round.iter().map(|r| pick(r).nats_server)),
        host_steal_percent: median(each_round.iter().map(|r| pick(r).host_steal_percent)),
    };
    let paired = median(
        each_round
            .iter()
            .map(|r| r.router_decisions_per_second / r.relay_messages_per_second),
    );
    let paired_median = |top: fn(&Round) -> f64, bottom: fn(&Round) -> f64| {
        median(each_round.iter().map(|r| top(r) / bottom(r)))
    };
    let padded_to_bare = paired_median(
        |r| r.padded_relay_messages_per_second,
        |r| r.relay_messages_per_second,
    );
    let router_to_padded = paired_median(
        |r| r.router_decisions_per_second,
        |r| r.padded_relay_messages_per_second,
    );
    println!(
        "  medians over {ROUNDS} rounds: relay {relay:.0}/s, router {decided:.0}/s, ratio {paired:.2} \
         (ratio of the medians {:.2}); padded relay ÷ relay {padded_to_bare:.2}, router ÷ padded relay \
         {router_to_padded:.2}",
        decided / relay
    );
    Ok(E2eResult {
        calls,
        contacts,
        max_in_flight: MAX_IN_FLIGHT,
        rounds: ROUNDS,
        router_decisions_per_second: decided,
        relay_messages_per_second: relay,
        router_to_relay_ratio: paired,
        ratio_of_medians: decided / relay,
        relay_cpu_us_per_message: cpu(|r| r.relay_cpu_us_per_message),
        router_cpu_us_per_message: cpu(|r| r.router_cpu_us_per_message),
        padded_relay_messages_per_second: median(
            each_round
                .iter()
                .map(|r| r.padded_relay_messages_per_second),
        ),
        padded_relay_cpu_us_per_message: cpu(|r| r.padded_relay_cpu_us_per_message),
        padded_to_bare_relay_ratio: padded_to_bare,
        router_to_padded_relay_ratio: router_to_padded,
        wire,
        each_round,
    })
}

/// What drains a backlog.
#[derive(Clone, Copy)]
enum Drainer {
    /// The bare relay, each call padded to `pad_to` bytes (0: as it is).
    Relay {
        pad_to: usize,
    },
    Router,
}

/// One drain on a fresh nats-server holding the tenant's settings and a backlog of `calls`
/// calls, so relay and router start from identical server state (a server that already
/// holds earlier phases' messages and de-duplication ids is slower); returns messages per
/// second and CPU per message.
async fn phase(
    drainer: Drainer,
    calls: u64,
    contacts: u64,
) -> anyhow::Result<(f64, CpuPerMessage)> {
    let server = NatsServer::start()?;
    let client = server.client().await?;
    let js = jetstream::new(client.clone());
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = OffsetDateTime::now_utc();
    let settings =
        fixtures::tenant_settings((contacts / 10).max(1), contacts).map(|change| match change {
            switchboard_contracts::SettingsChange::Company(c) => encode(c, now),
            switchboard_contracts::SettingsChange::Number(c) => encode(c, now),
            switchboard_contracts::SettingsChange::User(c) => encode(c, now),
            switchboard_contracts::SettingsChange::Contact(c) => encode(c, now),
        });
    publish_all(&publisher, settings).await?;
    publish_all(
        &publisher,
        (0..calls).map(|i| encode(fixtures::call(i, contacts), now)),
    )
    .await?;
    let server_pid = server.pid().map(|p| p.to_string()).unwrap_or_default();

    match drainer {
        Drainer::Relay { pad_to } => {
            with_cpu(
                &server_pid,
                calls,
                drain_rate(
                    &js,
                    "relay",
                    calls,
                    relay(js.clone(), calls, "call.relay.bench", pad_to),
                ),
            )
            .await
        }
        Drainer::Router => {
            let window = MAX_IN_FLIGHT.to_string();
            let router = Router::start_with(&server.url(), &["--max-in-flight", &window])?;
            let measured = with_cpu(
                &server_pid,
                calls,
                drain_rate(&js, "router", calls, std::future::pending::<()>()),
            )
            .await;
            router.stop().await?;
            measured
        }
    }
}

/// The median of some figures (the upper middle one of an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A settings change as `(subject, id, body)`.
pub fn encode_settings(
    change: switchboard_contracts::SettingsChange,
    now: OffsetDateTime,
) -> (String, String, bytes::Bytes) {
    let e = match change {
        switchboard_contracts::SettingsChange::Company(c) => encode(c, now),
        switchboard_contracts::SettingsChange::Number(c) => encode(c, now),
        switchboard_contracts::SettingsChange::User(c) => encode(c, now),
        switchboard_contracts::SettingsChange::Contact(c) => encode(c, now),
    };
    (e.subject, e.id, e.body)
}

struct Encoded {
    subject: String,
    id: String,
    body: bytes::Bytes,
}

fn encode<T: EventData>(data: T, now: OffsetDateTime) -> Encoded {
    let envelope = Envelope::new(data, "/switchboard/bench", now);
    Encoded {
        subject: envelope.data.nats_subject(),
        id: envelope.id.clone(),
        body: envelope.to_json().expect("encodable").into(),
    }
}

/// Publishes `(subject, id, body)` events, a window of acknowledgements at a time; how many.
pub async fn publish_raw_all(
    publisher: &Publisher,
    events: impl Iterator<Item = (String, String, bytes::Bytes)>,
) -> anyhow::Result<u64> {
    let mut count = 0u64;
    publish_all(
        publisher,
        events.map(|(subject, id, body)| {
            count += 1;
            Encoded { subject, id, body }
        }),
    )
    .await?;
    Ok(count)
}

/// Publishes everything, a window of acknowledgements at a time.
async fn publish_all(
    publisher: &Publisher,
    events: impl Iterator<Item = Encoded>,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(2048);
    for e in events {
        pending.push(
            publisher
                .send_raw(e.subject, &e.id, e.body, &TraceContext::default())
                .await?,
        );
        if pending.len() == 2048 {
            for p in pending.drain(..) {
                p.ack().await?;
            }
        }
    }
    for p in pending {
        p.ack().await?;
    }
    Ok(())
}

/// Runs `work` until the durable consumer `name` has acknowledged `total` messages, and
/// returns messages per second between its first delivery and its last acknowledgement,
/// both read from the consumer's own state.
async fn drain_rate(
    js: &jetstream::Context,
    name: &str,
    total: u64,
    work: impl std::future::Future<Output = ()>,
) -> anyhow::Result<f64> {
    let mut work = std::pin::pin!(work);
    let mut first: Option<(Instant, u64)> = None;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        tokio::select! {
            _ = &mut work => {},
            _ = tokio::time::sleep(Duration::from_millis(10)) => {},
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not finish within 30 minutes"
        );
        let Ok(mut consumer) = js
            .get_consumer_from_stream::<consumer::pull::Config, _, _>(name, "CALLS")
            .await
        else {
            continue;
        };
        let info = consumer.info().await?;
        let acked = info.ack_floor.consumer_sequence;
        if first.is_none() && info.delivered.consumer_sequence > 0 {
            first = Some((Instant::now(), acked));
        }
        if acked >= total && info.num_ack_pending == 0 {
            let (start, acked_at_start) = first.unwrap_or((Instant::now(), 0));
            let seconds = start.elapsed().as_secs_f64().max(1e-9);
            return Ok((total - acked_at_start) as f64 / seconds);
        }
    }
}

/// The bare relay: the router's pull pattern (batches of up to the free in-flight window,
/// 500 ms expiry) with nothing in between. Republishes `total` calls to `to` (the latency
/// benchmark's relay rounds point it at `call.route.<tenant>`), each padded with trailing
/// JSON whitespace to `pad_to` bytes when shorter (0: as it is).
///
/// All of it runs in the one task that polls this future: each message's publish, publish ack
/// and input ack is a future in one `FuturesUnordered`, polled between the batch's deliveries.
/// In the throughput phases that task is the bench's own (`drain_rate` polls it inside
/// `Runtime::block_on`, on the main thread); in the latency rounds it is spawned. The router
/// has the same design: its consume loop polls every released call's handling as a future of
/// its own task (`switchboard_router`'s consume loop).
pub async fn relay(js: jetstream::Context, total: u64, to: &'static str, pad_to: usize) {
    let stream = js.get_stream("CALLS").await.expect("CALLS exists");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("relay".into()),
            filter_subject: "call.inbound.>".into(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .expect("relay consumer");
    let mut done = 0u64;
    let mut in_flight = FuturesUnordered::new();
    while done < total {
        let capacity = MAX_IN_FLIGHT - in_flight.len();
        if capacity == 0 {
            in_flight.next().await;
            done += 1;
            continue;
        }
        let mut batch = consumer
            .batch()
            .max_messages(capacity)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("pull");
        loop {
            tokio::select! {
                biased;
                Some(()) = in_flight.next(), if !in_flight.is_empty() => done += 1,
                next = batch.next() => match next {
                    Some(Ok(message)) => {
                        let js = js.clone();
                        in_flight.push(async move {
                            let id = message
                                .headers
                                .as_ref()
                                .and_then(|h| h.get("Nats-Msg-Id"))
                                .map(|v| format!("{}:relay", v.as_str()))
                                .unwrap_or_default();
                            let mut headers = async_nats::HeaderMap::new();
                            headers.insert("Nats-Msg-Id", id.as_str());
                            let payload = if message.payload.len() < pad_to {
                                let mut padded = Vec::with_capacity(pad_to);
                                padded.extend_from_slice(&message.payload);
                                padded.resize(pad_to, b' ');
                                padded.into()
                            } else {
                                message.payload.clone()
                            };
                            let ack = js
                                .publish_with_headers(to, headers, payload)
                                .await
                                .expect("publish");
                            ack.await.expect("publish ack");
                            message.ack().await.expect("ack");
                        });
                    }
                    Some(Err(e)) => println!("  relay pull error: {e}"),
                    None => break,
                },
            }
        }
    }
    while in_flight.next().await.is_some() {}
}
