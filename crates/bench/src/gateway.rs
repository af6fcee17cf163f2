//! Webhook → decision latency through the whole ingress path: a signed Twilio voice webhook to
//! the gateway (HTTP, signature check, JetStream publish with ack, TwiML answer), the router's
//! decision, and the `call.route` event reaching a subscriber. Offered open-loop at a fixed
//! rate (requests leave on schedule whatever the answers do) and measured from each request's
//! *scheduled* time, so a stall shows up in the tail instead of slowing the offered load.
//! Then the maximum sustained webhook rate, closed-loop on many connections.

use crate::fixtures;
use crate::openloop::{RouteCollector, Router, wait_router_drained};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_testkit::NatsServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TOKEN: &str = "bench-token";
const CONNECTIONS: usize = 32;

#[derive(Debug, Clone, serde::Serialize)]
pub struct GatewayResult {
    pub offered_per_second: u64,
    pub seconds: u64,
    pub decisions: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub max_sustained_webhooks_per_second: f64,
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
    // Warm-up: connections, the router's caches; then let the router finish the warm-up
    // backlog, so the measured calls do not queue behind it.
    closed_loop(addr, &public, 2_000, "warm").await?;
    wait_router_drained(&js).await?;
    let _ = collector.take()?;

    // Open loop: request i leaves at start + i / rate, on one of CONNECTIONS connections.
    let total = rate * seconds;
    let (tx, rx) = async_channel::<(String, Instant)>(CONNECTIONS * 4);
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let rx = rx.clone();
        let public = public.clone();
        senders.push(tokio::spawn(async move {
            let mut conn = Connection::open(addr).await?;
            while let Ok((call_id, _)) = rx.recv().await {
                conn.webhook(&public, &call_id).await?;
            }
            anyhow::Ok(())
        }));
    }
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let call_id = format!("CAopen{i:026}");
        collector.schedule(call_id.clone(), due);
        tx.send((call_id, due)).await?;
    }
    drop(tx);
    for s in senders {
        s.await??;
    }
    collector.wait_all().await?;
    let p = collector.take()?;
    let (decisions, p50, p99, p999, max) = (p.count, p.p50_ms, p.p99_ms, p.p999_ms, p.max_ms);
    println!(
        "  webhook → call.route at {rate}/s for {seconds} s: p50 {p50:.2} ms, p99 {p99:.2} ms, \
         p99.9 {p999:.2} ms, max {max:.2} ms ({decisions} decisions)"
    );

    let n = 20_000;
    let started = Instant::now();
    closed_loop(addr, &public, n, "max").await?;
    let max_rate = n as f64 / started.elapsed().as_secs_f64();
    println!("  maximum sustained webhooks: {max_rate:.0}/s ({CONNECTIONS} connections)");

    let _ = stop_gateway.send(());
    gateway.await??;
    router.stop().await?;
    collector.stop();
    Ok(GatewayResult {
        offered_per_second: rate,
        seconds,
        decisions,
        p50_ms: p50,
        p99_ms: p99,
        p999_ms: p999,
        max_ms: max,
        max_sustained_webhooks_per_second: max_rate,
    })
}

fn async_channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    (tx, Arc::new(tokio::sync::Mutex::new(rx)).into())
}

type Sender<T> = tokio::sync::mpsc::Sender<T>;

/// A multi-consumer receiver over tokio's mpsc.
struct Receiver<T>(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>);

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver(self.0.clone())
    }
}

impl<T> From<Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>> for Receiver<T> {
    fn from(inner: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<T>>>) -> Self {
        Receiver(inner)
    }
}

impl<T> Receiver<T> {
    async fn recv(&self) -> Result<T, ()> {
        self.0.lock().await.recv().await.ok_or(())
    }
}

/// `n` webhooks as fast as CONNECTIONS connections carry them.
async fn closed_loop(addr: SocketAddr, public: &str, n: u64, tag: &str) -> anyhow::Result<()> {
    let per = n / CONNECTIONS as u64;
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let public = public.to_string();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(addr).await?;
            for i in 0..per {
                conn.webhook(&public, &format!("CA{tag}{c:04}{i:020}"))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut conn) = Connection::open(addr).await
            && conn.get("/readyz").await.unwrap_or(0) == 200
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the gateway never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A keep-alive HTTP/1.1 connection: just enough client for the benchmark.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }

    async fn webhook(&mut self, public: &str, call_id: &str) -> anyhow::Result<()> {
        let path = format!("/v1/tenants/{}/twilio/voice", fixtures::tenant());
        let params = vec![
            ("AccountSid".to_string(), format!("AC{}", "0".repeat(32))),
            ("ApiVersion".to_string(), "2010-04-01".to_string()),
            ("CallSid".to_string(), call_id.to_string()),
            ("CallStatus".to_string(), "ringing".to_string()),
            ("Direction".to_string(), "inbound".to_string()),
            (
                "From".to_string(),
                fixtures::phone(call_id.len() as u64 % 1000),
            ),
            ("To".to_string(), fixtures::DIALED.to_string()),
        ];
        let signature =
            switchboard_gateway::signature::compute(TOKEN, &format!("{public}{path}"), &params);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             X-Twilio-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let status = self.read_response().await?;
        anyhow::ensure!(status == 200, "webhook answered {status}");
        Ok(())
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<u16> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<u16> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
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
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}
