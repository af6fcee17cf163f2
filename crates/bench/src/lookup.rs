//! A call in one lookup (target: under 50 ms at 1,000,000 calls): on the replay benchmark's
//! stream (1,000,000 recorded calls, a `call.inbound` and a `call.route` each, and its settings
//! events), a gateway started after the fact indexes CALLS from its first message (the
//! migration of a stream that predates the index; its rate is reported), then calls drawn at
//! random are looked up by id, one at a time: `switchboard_audit::explain` (what
//! `switchboard explain` runs) and `GET /v1/tenants/{tenant}/calls/{call_id}` on the gateway.

use crate::fixtures;
use crate::gateway::{Connection, wait_ready};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use switchboard_audit::NoProgress;

/// Calls looked up, each way.
const LOOKUPS: u64 = 300;
const KEY: &str = "sbk_bench-lookup-0000000000000000000000000000";

#[derive(Debug, Clone, serde::Serialize)]
pub struct LookupResult {
    pub calls: u64,
    /// CALLS messages indexed by the gateway from scratch, and at what rate.
    pub indexed_messages: u64,
    pub index_messages_per_second: f64,
    pub lookups: u64,
    pub explain_p50_ms: f64,
    pub explain_p99_ms: f64,
    pub explain_max_ms: f64,
    pub get_p50_ms: f64,
    pub get_p99_ms: f64,
    pub get_max_ms: f64,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(
    server_url: &str,
    js: &async_nats::jetstream::Context,
    calls: u64,
) -> anyhow::Result<LookupResult> {
    let messages = js
        .get_stream(switchboard_bus::CALLS)
        .await?
        .info()
        .await?
        .state
        .messages;
    let key = switchboard_tenants::api_keys::stored("bench", KEY).map_err(anyhow::Error::msg)?;
    let tenants = serde_json::json!({
        fixtures::tenant().as_str(): {
            "twilio_auth_token": "bench-token",
            "api_keys": [key.to_json()],
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = <switchboard_gateway::Config as clap::Parser>::parse_from([
        "switchboard-gateway".to_string(),
        "--nats-url".into(),
        server_url.to_string(),
        "--public-base-url".into(),
        format!("http://{addr}"),
        "--tenants-json".into(),
        tenants.to_string(),
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let gateway = tokio::spawn(switchboard_gateway::run_with_listener(
        config,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_ready(addr).await?;

    // The gateway indexes everything stored before it started.
    let calls_stream = js.get_stream(switchboard_bus::CALLS).await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let info = calls_stream
            .consumer_info(switchboard_bus::call_indexer().name)
            .await;
        if let Ok(info) = info
            && info.num_pending == 0
            && info.num_ack_pending == 0
            && info.ack_floor.stream_sequence >= messages
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the index did not catch up in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let index_seconds = started.elapsed().as_secs_f64();
    let index_rate = messages as f64 / index_seconds;
    println!(
        "  a gateway indexed {messages} CALLS messages from scratch in {index_seconds:.1} s: \
         {index_rate:.0}/s"
    );

    // Calls drawn at random (a fixed LCG: the same calls every run).
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut pick = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % calls
    };
    let tenant = fixtures::tenant();
    let mut explain = Histogram::<u64>::new(3)?;
    for _ in 0..LOOKUPS {
        let call_id = fixtures::call(pick(), 1).call_id;
        let started = Instant::now();
        let life = switchboard_audit::explain(js, &call_id, Some(&tenant), &NoProgress).await?;
        explain.record(started.elapsed().as_micros() as u64)?;
        let life = life.ok_or_else(|| anyhow::anyhow!("call {call_id} not found"))?;
        anyhow::ensure!(
            life.decisions.len() == 1
                && life.inbound.len() == 1
                && life.lookup.scanned_from.is_none()
                && !life.lookup.settings_scanned
                && life.replay.as_ref().is_some_and(|r| r.agrees),
            "call {call_id}: unexpected life {:?}",
            life.lookup
        );
    }
    let ids: Vec<String> = (0..LOOKUPS)
        .map(|_| fixtures::call(pick(), 1).call_id)
        .collect();
    let tenant_path = tenant.to_string();
    let get = tokio::task::spawn_blocking(move || -> anyhow::Result<Histogram<u64>> {
        let mut h = Histogram::<u64>::new(3)?;
        let mut conn = Connection::open(addr)?;
        for id in ids {
            let request = format!(
                "GET /v1/tenants/{tenant_path}/calls/{id} HTTP/1.1\r\nHost: bench\r\n\
                 Authorization: Bearer {KEY}\r\n\r\n"
            );
            let started = Instant::now();
            let status = conn.exchange(request.as_bytes())?;
            h.record(started.elapsed().as_micros() as u64)?;
            anyhow::ensure!(status == 200, "GET call {id}: {status}");
        }
        Ok(h)
    })
    .await??;
    let _ = stop.send(());
    let _ = gateway.await;
    let result = LookupResult {
        calls,
        indexed_messages: messages,
        index_messages_per_second: index_rate,
        lookups: LOOKUPS,
        explain_p50_ms: ms(&explain, 0.5),
        explain_p99_ms: ms(&explain, 0.99),
        explain_max_ms: explain.max() as f64 / 1000.0,
        get_p50_ms: ms(&get, 0.5),
        get_p99_ms: ms(&get, 0.99),
        get_max_ms: get.max() as f64 / 1000.0,
    };
    println!(
        "  lookups of {LOOKUPS} random calls among {calls}: explain p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; GET p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        result.explain_p50_ms,
        result.explain_p99_ms,
        result.explain_max_ms,
        result.get_p50_ms,
        result.get_p99_ms,
        result.get_max_ms
    );
    Ok(result)
}
