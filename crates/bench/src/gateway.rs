//! Webhook → decision latency through the whole ingress path: a signed Twilio voice webhook to
//! the gateway (HTTP, signature check, JetStream publish with ack, TwiML answer), the router's
//! decision, and the `call.route` event reaching a subscriber. Offered open-loop at a fixed
//! rate (requests leave on schedule whatever the answers do) and measured from each request's
//! *scheduled* time, so a stall shows up in the tail instead of slowing the offered load.
//! Webhook i comes from the caller of the throughput backlog's call i ([`fixtures::caller`]),
//! so known contacts, unknown numbers and withheld callers (`From=anonymous`, which the gateway
//! passes on as it is and the router decides like any call) appear in the same proportions.
//! Its p99 is read against the bare relay's publish → decision p99 at the same rate, from the
//! latency benchmark's relay rounds ([`GatewayResult::compare_with`]), when that ran too.
//! Then the maximum sustained webhook rate, closed-loop on many connections.

use crate::fixtures;
use crate::openloop::{RouteCollector, Router, schedule, wait_router_drained};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_testkit::NatsServer;

const TOKEN: &str = "bench-token";
const CONNECTIONS: usize = 32;
/// Webhooks sent closed-loop before the open-loop run, each checked decided.
const WARMUP_WEBHOOKS: u64 = 2_000;
/// Issue 18: webhook → decision p99 ≤ 2 × the bare relay's publish → decision p99 at 1,000/s.
pub const TARGET_P99_TO_RELAY: f64 = 2.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct GatewayResult {
    pub offered_per_second: u64,
    pub seconds: u64,
    /// Webhooks offered open loop.
    pub calls: u64,
    /// Decisions seen and recorded: the run fails unless this is `calls`.
    pub decisions: u64,
    /// Webhooks answered 200 whose decision was never seen (the run fails if there is any).
    pub lost: u64,
    /// Decisions later than the histogram's 60 s range, recorded at 60 s.
    pub late: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Furthest the generator fell behind its schedule (ms); included in the latencies.
    pub max_send_lag_ms: f64,
    /// Share of the machine's CPU time the hypervisor took during the open-loop run.
    pub host_steal_percent: f64,
    /// The bare relay's publish → decision p99 at `offered_per_second` (ms): the median over
    /// the latency benchmark's relay rounds at that rate; `None` when that benchmark did not
    /// run or did not offer this rate.
    pub relay_p99_ms: Option<f64>,
    /// `p99_ms / relay_p99_ms` (not paired: the relay rounds ran at another time).
    pub p99_to_relay_p99: Option<f64>,
    /// Issue 18's bound on `p99_to_relay_p99`.
    pub target_p99_to_relay_p99: f64,
    pub max_sustained_webhooks_per_second: f64,
}

impl GatewayResult {
    /// Reads the p99 against the bare relay's median publish → decision p99 at the same rate.
    pub fn compare_with(&mut self, latency: &crate::latency::LatencyResult) {
        self.relay_p99_ms = latency.relay_p99_ms_at(self.offered_per_second);
        self.p99_to_relay_p99 = self.relay_p99_ms.map(|relay| self.p99_ms / relay);
        match (self.relay_p99_ms, self.p99_to_relay_p99) {
            (Some(relay), Some(ratio)) => println!(
                "  webhook → call.route p99 {:.2} ms ÷ bare relay publish → decision p99 {relay:.2} ms \
                 at {}/s: {ratio:.2} (target ≤ {TARGET_P99_TO_RELAY})",
                self.p99_ms, self.offered_per_second
            ),
            _ => println!(
                "  webhook → call.route: no bare-relay round at {}/s to read its p99 against",
                self.offered_per_second
            ),
        }
    }
}

pub async fn run(rate: u64, seconds: u64, contacts: u64) -> anyhow::Result<GatewayResult> {
    let server = NatsServer::start()?;
    let client = server.client().await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = time::OffsetDateTime::now_utc();
    for change in fixtures::tenant_settings((contacts / 10).max(1), contacts) {
        let (subject, id, body) = crate::e2e::encode_settings(change, now);
        publisher
            .send_raw(subject, &id, body, &TraceContext::default())
            .await?
            .ack()
            .await?;
    }

    let router = Router::start(&server.url())?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let public = format!("http://{addr}");
    let tenants = format!(
        r#"{{"{}": {{"twilio_auth_token": "{TOKEN}", "twilio_account_sid": "AC{}"}}}}"#,
        fixtures::tenant(),
        "0".repeat(32)
    );
    let gateway_config = <switchboard_gateway::Config as clap::Parser>::parse_from([
        "switchboard-gateway".to_string(),
        "--nats-url".into(),
        server.url(),
        "--public-base-url".into(),
        public.clone(),
        "--tenants-json".into(),
        tenants,
    ]);
    let (stop_gateway, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(switchboard_gateway::run_with_listener(
        gateway_config,
        listener,
        async move {
            let _ = gateway_stopped.await;
        },
    ));

    // Decisions, matched to their scheduled send time.
    let collector = RouteCollector::start(&client).await?;

    wait_ready(addr).await?;
    // Warm-up: connections, the router's caches; every warm-up webhook must be decided (as in
    // the open-loop run); then let the router finish the warm-up backlog, so the measured
    // calls do not queue behind it.
    closed_loop(
        addr,
        &public,
        WARMUP_WEBHOOKS,
        contacts,
        "warm",
        Some(collector.schedule_handle()),
    )
    .await?;
    collector.wait_all().await;
    collector
        .take()?
        .ensure_complete(WARMUP_WEBHOOKS)
        .map_err(|e| e.context("warm-up"))?;
    wait_router_drained(&js).await?;

    // Open loop, from a generator thread of its own (see `offer`).
    let total = rate * seconds;
    let scheduled = collector.schedule_handle();
    let public_for_generator = public.clone();
    let host0 = crate::host::CpuTimes::now();
    let sent = tokio::task::spawn_blocking(move || {
        offer(
            addr,
            &public_for_generator,
            rate,
            total,
            contacts,
            &scheduled,
        )
    })
    .await??;
    anyhow::ensure!(
        sent.failed == 0,
        "{} of {total} webhooks were not answered 200",
        sent.failed
    );
    collector.wait_all().await;
    let steal = crate::host::CpuTimes::now().steal_percent_since(host0);
    let p = collector.take()?;
    let (decisions, p50, p99, p999, max) = (p.count, p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms);
    println!(
        "  webhook → call.route at {rate}/s for {seconds} s: p50 {p50:.2} ms, p99 {p99:.2} ms, \
         p99.9 {p999:.2} ms, max {max:.2} ms ({decisions} of {total} webhooks decided, {} lost, \
         {} late beyond 60 s; generator at most {:.2} ms behind; hypervisor steal {steal:.1} %)",
        p.lost, p.late, sent.max_send_lag_ms
    );
    p.ensure_complete(total)?;

    let n = 20_000;
    let started = Instant::now();
    closed_loop(addr, &public, n, contacts, "max", None).await?;
    let max_rate = n as f64 / started.elapsed().as_secs_f64();
    println!("  maximum sustained webhooks: {max_rate:.0}/s ({CONNECTIONS} connections)");

    let _ = stop_gateway.send(());
    gateway.await??;
    router.stop().await?;
    collector.stop();
    Ok(GatewayResult {
        offered_per_second: rate,
        seconds,
        calls: total,
        decisions,
        lost: p.lost,
        late: p.late,
        p50_ms: p50,
        p99_ms: p99,
        p999_ms: p999,
        max_ms: max,
        max_send_lag_ms: sent.max_send_lag_ms,
        host_steal_percent: steal,
        relay_p99_ms: None,
        p99_to_relay_p99: None,
        target_p99_to_relay_p99: TARGET_P99_TO_RELAY,
        max_sustained_webhooks_per_second: max_rate,
    })
}

struct Offered {
    failed: u64,
    max_send_lag_ms: f64,
}

/// Offers `total` signed webhooks at `rate`/s, open loop, from a thread of its own with
/// blocking sockets: request i (from the backlog's caller i) is written at start + i / rate on
/// connection i % CONNECTIONS (HTTP/1.1 pipelining if its previous answer is late) and
/// registered in `scheduled` with that time. A reader thread per connection checks every answer. The requests are signed
/// before the clock starts, and `std::thread::sleep` keeps to the schedule within tens of
/// microseconds, where tokio's timer wheel rounds up to the next millisecond and would
/// add up to 1 ms of generator lag to every latency.
fn offer(
    addr: SocketAddr,
    public: &str,
    rate: u64,
    total: u64,
    contacts: u64,
    scheduled: &Mutex<HashMap<String, Instant>>,
) -> anyhow::Result<Offered> {
    let requests: Vec<(String, Vec<u8>)> = (0..total)
        .map(|i| {
            let call_id = format!("CAopen{i:026}");
            let from = fixtures::caller(i, contacts);
            let request = webhook_request(public, &call_id, &from).into_bytes();
            (call_id, request)
        })
        .collect();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for c in 0..CONNECTIONS as u64 {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let answers = (total + CONNECTIONS as u64 - 1 - c) / CONNECTIONS as u64;
        let mut reader = std::io::BufReader::new(stream.try_clone()?);
        readers.push(std::thread::spawn(move || -> anyhow::Result<u64> {
            let mut failed = 0;
            for _ in 0..answers {
                if read_response(&mut reader)? != 200 {
                    failed += 1;
                }
            }
            Ok(failed)
        }));
        writers.push(stream);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let mut max_lag = Duration::ZERO;
    for (i, (call_id, request)) in requests.into_iter().enumerate() {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        schedule(scheduled, call_id, due);
        writers[i % CONNECTIONS].write_all(&request)?;
    }
    let mut failed = 0;
    for reader in readers {
        failed += reader
            .join()
            .map_err(|_| anyhow::anyhow!("a response reader panicked"))??;
    }
    Ok(Offered {
        failed,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
    })
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; returns its status.
fn read_response(reader: &mut impl std::io::BufRead) -> anyhow::Result<u16> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}

/// A signed Twilio voice webhook for `call_id` from `from`, as HTTP/1.1 request bytes.
fn webhook_request(public: &str, call_id: &str, from: &str) -> String {
    let path = format!("/v1/tenants/{}/twilio/voice", fixtures::tenant());
    let params = vec![
        ("AccountSid".to_string(), format!("AC{}", "0".repeat(32))),
        ("ApiVersion".to_string(), "2010-04-01".to_string()),
        ("CallSid".to_string(), call_id.to_string()),
        ("CallStatus".to_string(), "ringing".to_string()),
        ("Direction".to_string(), "inbound".to_string()),
        ("From".to_string(), from.to_string()),
        ("To".to_string(), fixtures::DIALED.to_string()),
    ];
    let signature =
        switchboard_gateway::signature::compute(TOKEN, &format!("{public}{path}"), &params);
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `n` webhooks as fast as CONNECTIONS connections carry them, one blocking thread each
/// (off the services' runtime), webhook i from the backlog's caller i. With `scheduled`, each
/// webhook's call id is registered there (at its send time) so its decision is awaited.
async fn closed_loop(
    addr: SocketAddr,
    public: &str,
    n: u64,
    contacts: u64,
    tag: &str,
    scheduled: Option<Arc<Mutex<HashMap<String, Instant>>>>,
) -> anyhow::Result<()> {
    let mut threads = Vec::new();
    for c in 0..CONNECTIONS {
        let public = public.to_string();
        let tag = tag.to_string();
        let scheduled = scheduled.clone();
        let webhooks = share(n, c);
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut conn = Connection::open(addr)?;
            for i in webhooks {
                let call_id = format!("CA{tag}{c:04}{i:020}");
                let from = fixtures::caller(i, contacts);
                let request = webhook_request(&public, &call_id, &from);
                if let Some(scheduled) = &scheduled {
                    schedule(scheduled, call_id, Instant::now());
                }
                let status = conn.exchange(request.as_bytes())?;
                anyhow::ensure!(status == 200, "webhook answered {status}");
            }
            Ok(())
        }));
    }
    tokio::task::spawn_blocking(move || {
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a webhook sender panicked"))??;
        }
        anyhow::Ok(())
    })
    .await?
}

/// The webhooks connection `c` of CONNECTIONS sends of `n`: consecutive numbers, the first
/// `n % CONNECTIONS` connections one more than the others, so all `n` are sent.
fn share(n: u64, c: usize) -> std::ops::Range<u64> {
    let (per, rest, c) = (n / CONNECTIONS as u64, n % CONNECTIONS as u64, c as u64);
    let start = c * per + c.min(rest);
    start..start + per + u64::from(c < rest)
}

pub(crate) async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = tokio::task::spawn_blocking(move || {
            Connection::open(addr)
                .and_then(|mut conn| conn.exchange(b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n"))
                .is_ok_and(|status| status == 200)
        })
        .await?;
        if ready {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the gateway never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A blocking keep-alive HTTP/1.1 connection: just enough client for the benchmark.
pub(crate) struct Connection {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Connection {
    pub(crate) fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: std::io::BufReader::new(stream),
        })
    }

    /// Sends one request and reads its answer; returns the status.
    pub(crate) fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.reader.get_mut().write_all(request)?;
        read_response(&mut self.reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connections_share_every_webhook_once() {
        for n in [0, 1, 31, 32, 2_000, 20_000] {
            let mut next = 0;
            for c in 0..CONNECTIONS {
                let r = share(n, c);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }
}
