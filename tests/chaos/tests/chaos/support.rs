//! Shared helpers: the real service binaries as child processes (SIGKILL, SIGSTOP/SIGCONT,
//! resident memory), a seeded RNG, calls published through faults, and the checks made
//! afterwards from the CALLS stream itself and from the sandbox carrier's ledger.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallDial, CallInbound, CallRoute, DialEventKind, E164, Envelope, EventData, NumberSettings,
    TenantId,
};
use switchboard_testkit::eventually;
use time::OffsetDateTime;

/// The tenant every chaos call belongs to.
pub const T: &str = "chaos";
/// The tenant's number (calls to it go to the forwarding number: one target, then the final
/// action — two carrier actions per call with the sandbox's `no_answer`).
pub const DIALED: &str = "+16502530000";
pub const FORWARDING: &str = "+13127654321";
pub const CALLER: &str = "+14158675310";
const SOURCE: &str = "/switchboard/chaos-test";
/// Deadline for what should happen promptly.
pub const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

/// A count from the environment (`make test-chaos` scales up), else `default`.
pub fn scale(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Calls per kill/restart scenario: `SWITCHBOARD_CHAOS_CALLS` (default 3,000).
pub fn calls_per_scenario() -> usize {
    scale("SWITCHBOARD_CHAOS_CALLS", 3_000)
}

/// Prints a figure for the report (`make test-chaos` runs with `--no-capture`).
#[macro_export]
macro_rules! figure {
    ($($arg:tt)*) => { eprintln!("[chaos] {}", format!($($arg)*)) };
}

// ---------------------------------------------------------------------------------------------
// Seeded RNG (SplitMix64): deterministic inputs and fault timing without a dependency
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n.max(1) as u64).unwrap()
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// The seed for this run: `SWITCHBOARD_CHAOS_SEED`, else a fixed one.
    pub fn from_env(default: u64) -> (Rng, u64) {
        let seed = std::env::var("SWITCHBOARD_CHAOS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default);
        (Rng::new(seed), seed)
    }
}

// ---------------------------------------------------------------------------------------------
// Service binaries
// ---------------------------------------------------------------------------------------------

/// `target/<profile>/<name>`: next to the directory of this test binary (`target/<profile>/deps`).
/// `cargo nextest run --workspace --all-targets` (make test) builds every service binary;
/// alone, build them first: `cargo build -p switchboard-router -p switchboard-dialer --bins`.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the services first with `cargo build -p switchboard-router -p switchboard-dialer --bins` \
         (make test and make test-chaos do it)",
        path.display()
    );
    path
}

/// A free TCP address on loopback (bound, then released: a small race is accepted).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One service instance run as its real binary; each (re)start is a new process with its own
/// log file; the instance keeps its environment (its SQLite projection file, for a router).
pub struct Service {
    pub name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
    child: Option<Child>,
    pub http: SocketAddr,
    /// Log files of every process this instance ran, oldest first.
    logs: Vec<PathBuf>,
    pub kills: usize,
}

impl Service {
    /// Spawns `binary` with `env` (plus `SWITCHBOARD_HTTP_ADDR` and JSON logs on stderr).
    pub fn spawn(name: &str, binary: PathBuf, env: Vec<(String, String)>, dir: &Path) -> Service {
        let mut service = Service {
            name: name.to_string(),
            binary,
            env,
            dir: dir.to_path_buf(),
            child: None,
            http: free_addr(),
            logs: Vec::new(),
            kills: 0,
        };
        service.start();
        service
    }

    /// A router with its own SQLite projection in `dir`.
    pub fn router(name: &str, nats_url: &str, dir: &Path, extra: &[(&str, &str)]) -> Service {
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("{name}.db")).display()
        );
        let mut env = vec![
            ("NATS_URL".to_string(), nats_url.to_string()),
            ("DATABASE_URL".to_string(), db),
            ("RUST_LOG".to_string(), "info".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Service::spawn(name, binary("switchboard-router"), env, dir)
    }

    /// The dialer with the sandbox carrier: nobody answers (`no_answer`), so every call is a
    /// dial of its target then the final action; the sandbox logs each action it takes (the
    /// ledger read by [`Ledger::read`]).
    pub fn dialer(name: &str, nats_url: &str, dir: &Path, extra: &[(&str, &str)]) -> Service {
        let mut env = vec![
            ("NATS_URL".to_string(), nats_url.to_string()),
            ("SWITCHBOARD_CARRIER".to_string(), "sandbox".to_string()),
            (
                "SWITCHBOARD_SANDBOX_OUTCOMES".to_string(),
                "no_answer".to_string(),
            ),
            ("SWITCHBOARD_SANDBOX_RING_MS".to_string(), "50".to_string()),
            ("RUST_LOG".to_string(), "info".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Service::spawn(name, binary("switchboard-dialer"), env, dir)
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.http = free_addr();
        let log = self
            .dir
            .join(format!("{}-{}.log", self.name, self.logs.len()));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SWITCHBOARD_HTTP_ADDR", self.http.to_string())
            .env("RUST_BACKTRACE", "0")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.logs.push(log);
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
            .id()
    }

    /// SIGKILL, reaped.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.kills += 1;
    }

    /// SIGKILL then a new process with the same configuration.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.start();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// SIGSTOP: the process is frozen (a stalled consumer), its connections stay open.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Whether the current process is alive (not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Resident memory of the current process (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status", self.pid()))
    }

    /// Waits until `/readyz` answers 200 (the process must stay alive meanwhile).
    pub async fn wait_ready(&mut self, deadline: Duration) {
        let addr = self.http;
        let end = Instant::now() + deadline;
        loop {
            assert!(
                self.is_running(),
                "{} exited while starting:\n{}",
                self.name,
                self.log_tail(40)
            );
            if http_status(addr, "/readyz").await == Some(200) {
                return;
            }
            assert!(
                Instant::now() < end,
                "{} not ready within {deadline:?}:\n{}",
                self.name,
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every log line of every process of this instance.
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process must be able to die: SIGKILL works on stopped processes too.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status code of `GET path` on `addr` (HTTP/1.0), or `None` when nothing answers.
pub async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.lines().next()?.split(' ').nth(1)?.parse().ok()
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/// A test client that reconnects forever (it rides out the server restarts it causes).
pub async fn connect(urls: &str) -> jetstream::Context {
    let urls: Vec<String> = urls.split(',').map(str::to_string).collect();
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(urls.as_slice())
        .await
        .unwrap();
    jetstream::new(client)
}

/// Provisions both streams and the tenant's number (forwarding to [`FORWARDING`]).
pub async fn provision(js: &jetstream::Context, replicas: usize) {
    let options = StreamOptions {
        replicas,
        ..StreamOptions::default()
    };
    // A cluster that just elected its meta leader may not know every peer yet ("no suitable
    // peers for placement"): retry until the streams exist.
    eventually(WAIT, "both streams provisioned", || async {
        ensure_streams(js, &options).await.ok()
    })
    .await
    .unwrap();
    let number = NumberSettings {
        tenant_id: TenantId::new(T).unwrap(),
        version: 1,
        number: E164::parse_strict(DIALED).unwrap(),
        forwarding_number: Some(FORWARDING.into()),
        released: false,
        user_id: None,
        prefer: Default::default(),
        ring_timeout_secs: None,
    };
    let event = Envelope::new(number, SOURCE, OffsetDateTime::now_utc());
    Publisher::new(js.clone())
        .publish(&event, &TraceContext::default())
        .await
        .unwrap();
}

/// The envelope of call `call_id`: its body and `Nats-Msg-Id`.
fn call_message(call_id: &str) -> (String, String, Vec<u8>) {
    let call = CallInbound {
        call_id: call_id.into(),
        tenant_id: TenantId::new(T).unwrap(),
        to: DIALED.into(),
        from: CALLER.into(),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    };
    let event = Envelope::new(call, SOURCE, OffsetDateTime::now_utc());
    (
        event.data.nats_subject(),
        event.id.clone(),
        event.to_json().unwrap(),
    )
}

/// Publishes calls `<prefix>-0 .. <prefix>-<n-1>` in chunks, spread over about `over` (so they
/// are in flight while faults are injected). Each publish is retried with the same
/// `Nats-Msg-Id` until JetStream acknowledges it, so a server restart loses none and stores
/// none twice. Returns the ids acknowledged (all of them) when done.
pub struct Publishing {
    pub published: Arc<AtomicUsize>,
    pub total: usize,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Publishing {
    pub fn start(js: jetstream::Context, prefix: &str, n: usize, over: Duration) -> Publishing {
        let published = Arc::new(AtomicUsize::new(0));
        let counter = published.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            const CHUNK: usize = 100;
            let chunks = n.div_ceil(CHUNK).max(1);
            let pause = over / u32::try_from(chunks).unwrap();
            let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
            let started = Instant::now();
            for (c, chunk) in ids.chunks(CHUNK).enumerate() {
                publish_acked(&js, chunk).await;
                counter.fetch_add(chunk.len(), Ordering::SeqCst);
                // Pacing (load shape, not synchronization): keep calls arriving during the faults.
                let due = pause * u32::try_from(c + 1).unwrap();
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            ids
        });
        Publishing {
            published,
            total: n,
            task,
        }
    }

    pub fn done(&self) -> bool {
        self.published.load(Ordering::SeqCst) >= self.total
    }

    pub async fn finish(self) -> Vec<String> {
        tokio::time::timeout(Duration::from_secs(300), self.task)
            .await
            .expect("publishing did not finish")
            .unwrap()
    }
}

/// Publishes `ids` pipelined; retries each unacknowledged one (same id) until acknowledged.
async fn publish_acked(js: &jetstream::Context, ids: &[String]) {
    let mut left: Vec<&String> = ids.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !left.is_empty() {
        let mut pending = Vec::with_capacity(left.len());
        for call_id in &left {
            let (subject, msg_id, body) = call_message(call_id);
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            let sent = js.publish_with_headers(subject, headers, body.into()).await;
            pending.push((*call_id, sent));
        }
        let mut failed = Vec::new();
        for (call_id, sent) in pending {
            let acked = match sent {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if !acked {
                failed.push(call_id);
            }
        }
        left = failed;
        if !left.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} calls never acknowledged by JetStream, e.g. {}",
                left.len(),
                left[0]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A stored message of CALLS.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    pub subject: String,
    pub payload: bytes::Bytes,
    pub msg_id: Option<String>,
}

/// Every CALLS message on `filter`, in stream order, read with an ephemeral consumer; the read
/// starts over when the cluster answers "no responders" (a consumer or stream leader being
/// elected after a node came back), for up to [`WAIT`].
pub async fn read(js: &jetstream::Context, filter: &str) -> Vec<Stored> {
    let end = Instant::now() + WAIT;
    loop {
        // A consumer placed on a replica still catching up (a node just restarted) delivers
        // only what that replica holds: compare with the stream leader's count.
        let stored = count(js, filter).await;
        match try_read(js, filter).await {
            Ok(messages) if stored.is_some_and(|n| messages.len() >= n) => return messages,
            Ok(messages) if Instant::now() < end => {
                eprintln!(
                    "reading {filter}: {} messages read, the stream holds {stored:?}; reading again",
                    messages.len()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(messages) => panic!(
                "reading {filter}: {} messages read, the stream holds {stored:?}",
                messages.len()
            ),
            Err(e) if Instant::now() < end => {
                eprintln!("reading {filter}: {e}; reading again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("reading {filter}: {e}"),
        }
    }
}

async fn try_read(js: &jetstream::Context, filter: &str) -> Result<Vec<Stored>, String> {
    let stream = js.get_stream(CALLS).await.map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter.to_string(),
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let total = usize::try_from(consumer.cached_info().num_pending).unwrap();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let mut batch = consumer
            .batch()
            .max_messages((total - out.len()).min(10_000))
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let before = out.len();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            out.push(Stored {
                seq,
                subject: message.subject.to_string(),
                payload: message.payload.clone(),
                msg_id: message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.to_string()),
            });
        }
        if out.len() == before {
            return Err("the stream stopped delivering".into());
        }
    }
    let _ = stream.delete_consumer(&consumer.cached_info().name).await;
    Ok(out)
}

/// How many messages CALLS holds on `filter` (from the stream state); `None` while the server
/// does not answer (restarting).
pub async fn count(js: &jetstream::Context, filter: &str) -> Option<usize> {
    let stream = js.get_stream(CALLS).await.ok()?;
    let mut subjects = stream.info_with_subjects(filter).await.ok()?;
    let mut total = 0;
    while let Some(entry) = subjects.next().await {
        total += entry.ok()?.1;
    }
    Some(total)
}

/// Waits until `filter` holds at least `n` messages; how many it holds.
pub async fn wait_count(
    js: &jetstream::Context,
    filter: &str,
    n: usize,
    deadline: Duration,
) -> usize {
    eventually(deadline, &format!("{n} messages on {filter}"), || async {
        count(js, filter).await.filter(|c| *c >= n)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the durable consumer `name` has delivered and settled everything (nothing
/// pending, nothing awaiting an ack); its info.
pub async fn wait_settled(
    js: &jetstream::Context,
    name: &str,
    deadline: Duration,
) -> consumer::Info {
    let end = Instant::now() + deadline;
    let mut last = None;
    loop {
        if let Ok(stream) = js.get_stream(CALLS).await
            && let Ok(info) = stream.consumer_info(name).await
        {
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return info;
            }
            last = Some((info.num_pending, info.num_ack_pending, info.num_redelivered));
        }
        assert!(
            Instant::now() < end,
            "consumer {name} not settled within {deadline:?}: last (pending, ack pending, redelivered) = {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Checks from the streams and the carrier's ledger
// ---------------------------------------------------------------------------------------------

/// A short list for a failure message.
pub fn sample<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<&T> = items.iter().take(20).collect();
    format!("{} in all, e.g. {shown:?}", items.len())
}

/// What CALLS says about tenant [`T`] after a scenario.
pub struct Audit {
    /// Call ids of the stored `call.inbound` events (accepted calls).
    pub accepted: BTreeSet<String>,
    /// Decisions per call id.
    pub routes: BTreeMap<String, usize>,
    pub route_messages: usize,
    /// The dial events: (call id, step, kind).
    pub dials: Vec<(String, u32, DialEventKind, Option<String>)>,
}

impl Audit {
    pub async fn read(js: &jetstream::Context) -> Audit {
        let mut accepted = BTreeSet::new();
        for m in read(js, &format!("call.inbound.{T}")).await {
            let call = Envelope::<CallInbound>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid call: {e}", m.seq));
            accepted.insert(call.data.call_id);
        }
        let mut routes = BTreeMap::new();
        let route_messages = read(js, &format!("call.route.{T}")).await;
        for m in &route_messages {
            let route = Envelope::<CallRoute>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid decision: {e}", m.seq));
            let expected = format!("{T}:{}:route", route.data.call_id);
            assert_eq!(
                m.msg_id.as_deref(),
                Some(expected.as_str()),
                "CALLS/{}: the decision's Nats-Msg-Id",
                m.seq
            );
            *routes.entry(route.data.call_id).or_insert(0) += 1;
        }
        let mut dials = Vec::new();
        for m in read(js, &format!("call.dial.{T}")).await {
            let dial = Envelope::<CallDial>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid dial event: {e}", m.seq));
            dials.push((
                dial.data.call_id,
                dial.data.step,
                dial.data.kind,
                dial.data.reason,
            ));
        }
        Audit {
            accepted,
            routes,
            route_messages: route_messages.len(),
            dials,
        }
    }

    /// Every accepted call has exactly one decision, and no decision exists for a call that
    /// was never accepted; `expected` (the ids the publisher got acks for) were all accepted.
    pub fn assert_decided_exactly_once(&self, expected: &[String]) {
        let not_stored: Vec<&String> = expected
            .iter()
            .filter(|c| !self.accepted.contains(*c))
            .collect();
        assert!(
            not_stored.is_empty(),
            "acknowledged by JetStream but not in CALLS: {}",
            sample(&not_stored)
        );
        let lost: Vec<&String> = self
            .accepted
            .iter()
            .filter(|c| !self.routes.contains_key(*c))
            .collect();
        let twice: Vec<(&String, &usize)> = self.routes.iter().filter(|(_, n)| **n > 1).collect();
        let unknown: Vec<&String> = self
            .routes
            .keys()
            .filter(|c| !self.accepted.contains(*c))
            .collect();
        assert!(
            lost.is_empty(),
            "accepted calls never decided (lost): {}",
            sample(&lost)
        );
        assert!(
            twice.is_empty(),
            "calls decided more than once: {}",
            sample(&twice)
        );
        assert!(
            unknown.is_empty(),
            "decisions for calls never accepted: {}",
            sample(&unknown)
        );
        assert_eq!(self.route_messages, self.accepted.len());
    }

    /// Dial events of `kind` per (call, step).
    pub fn dial_count(&self, kind: DialEventKind) -> HashMap<(&str, u32), usize> {
        let mut out = HashMap::new();
        for (call, step, k, _) in &self.dials {
            if *k == kind {
                *out.entry((call.as_str(), *step)).or_insert(0) += 1;
            }
        }
        out
    }
}

/// The carrier actions the sandbox took, read from every dialer process's log: one line
/// "sandbox carrier: call modified" per action, written when the action is taken (for the
/// sandbox, logging and recording the action IS the carrier call).
pub struct Ledger {
    /// (call id, step) → how many times the carrier was asked to act.
    pub actions: BTreeMap<(String, u32), usize>,
    pub total: usize,
}

impl Ledger {
    pub fn read(dialers: &[&Service]) -> Ledger {
        let mut actions = BTreeMap::new();
        let mut total = 0;
        for dialer in dialers {
            for line in dialer.log().lines() {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if json["message"] != "sandbox carrier: call modified" || json["tenant"] != T {
                    continue;
                }
                let call = json["call_id"].as_str().unwrap().to_string();
                let step = u32::try_from(json["step"].as_u64().unwrap()).unwrap();
                *actions.entry((call, step)).or_insert(0) += 1;
                total += 1;
            }
        }
        Ledger { actions, total }
    }

    /// How many actions so far (cheap enough to poll on a few thousand lines).
    pub fn count(dialers: &[&Service]) -> usize {
        Ledger::read(dialers).total
    }

    /// No carrier action was taken twice; every action is for a decided call; every dial event
    /// that says the carrier acted matches one action.
    pub fn assert_no_action_twice(&self, audit: &Audit) {
        let twice: Vec<(&(String, u32), &usize)> =
            self.actions.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "carrier actions taken more than once ((call, step) → times): {}",
            sample(&twice)
        );
        let undecided: Vec<&(String, u32)> = self
            .actions
            .keys()
            .filter(|(call, _)| !audit.routes.contains_key(call))
            .collect();
        assert!(
            undecided.is_empty(),
            "carrier actions for calls without a decision: {}",
            sample(&undecided)
        );
        // A final action recorded with its outcome unknown (the dialer stopped between its
        // claim and the carrier's answer) may never have been asked: the gateway's dead-man's
        // switch covers that case, so it needs no ledger entry.
        let unknown: BTreeSet<(&str, u32)> = audit
            .dials
            .iter()
            .filter(|(_, _, k, reason)| {
                *k == DialEventKind::FinalActionTaken
                    && reason
                        .as_deref()
                        .is_some_and(|r| r.contains("not repeated:"))
            })
            .map(|(call, step, ..)| (call.as_str(), *step))
            .collect();
        let mut unmatched = Vec::new();
        for kind in [DialEventKind::StepStarted, DialEventKind::FinalActionTaken] {
            for ((call, step), n) in audit.dial_count(kind) {
                assert_eq!(n, 1, "{kind:?} of {call} step {step} stored {n} times");
                if !self.actions.contains_key(&(call.to_string(), step))
                    && !unknown.contains(&(call, step))
                {
                    unmatched.push((call.to_string(), step, kind));
                }
            }
        }
        assert!(
            unmatched.is_empty(),
            "dial events without a carrier action in the ledger: {}",
            sample(&unmatched)
        );
    }
}

/// The decisions the dialer has not handled yet: neither was their first step acted on by the
/// carrier, nor (when a dialer died between claiming it and the carrier's answer) was it failed
/// without being rung again.
pub fn undialed(audit: &Audit, ledger: &Ledger) -> Vec<String> {
    let failed_claims: BTreeSet<&str> = audit
        .dials
        .iter()
        .filter(|(_, step, kind, reason)| {
            *step == 0
                && *kind == DialEventKind::StepFailed
                && reason
                    .as_deref()
                    .is_some_and(|r| r.contains("not retried, so nobody is rung twice"))
        })
        .map(|(call, ..)| call.as_str())
        .collect();
    audit
        .routes
        .keys()
        .filter(|c| {
            !ledger.actions.contains_key(&((*c).clone(), 0)) && !failed_claims.contains(c.as_str())
        })
        .cloned()
        .collect()
}

/// The dialer handled every decision (see [`undialed`]).
pub fn assert_every_decision_dialed(audit: &Audit, ledger: &Ledger) {
    let undialed = undialed(audit, ledger);
    assert!(
        undialed.is_empty(),
        "decisions the dialer never acted on: {}",
        sample(&undialed)
    );
}

/// Whether to wait for the dialer's redeliveries, which come 60 s (`ack_wait`) after a dialer
/// or a server died holding them: `make test-chaos` does (`SWITCHBOARD_CHAOS_WAIT_REDELIVERIES=1`);
/// the bounded run inside `make test` accounts for them instead (see [`wait_dialer`]).
pub fn wait_for_redeliveries() -> bool {
    std::env::var("SWITCHBOARD_CHAOS_WAIT_REDELIVERIES").is_ok_and(|v| v.trim() == "1")
}

/// Waits for the dialer after a scenario; the stream audit, the ledger of `dialers`, and how
/// many decisions were still awaiting redelivery at the end.
///
/// Waiting for redeliveries: until the `dialer-route` consumer has settled everything, then
/// every decision must have been acted on. Otherwise: until nothing is pending and every
/// decision not acted on yet is accounted for by a delivery still awaiting its ack (held by a
/// dialer that died, to be redelivered after `ack_wait`) — a decision the dialer acknowledged
/// without acting on it, or lost, fails either way.
pub async fn wait_dialer(
    js: &jetstream::Context,
    dialers: &[&Service],
    deadline: Duration,
) -> (Audit, Ledger, usize) {
    if wait_for_redeliveries() {
        wait_settled(js, "dialer-route", deadline).await;
        let audit = Audit::read(js).await;
        let ledger = Ledger::read(dialers);
        assert_every_decision_dialed(&audit, &ledger);
        return (audit, ledger, 0);
    }
    let end = Instant::now() + deadline;
    loop {
        let audit = Audit::read(js).await;
        let ledger = Ledger::read(dialers);
        let undialed = undialed(&audit, &ledger);
        let stream = js.get_stream(CALLS).await.unwrap();
        let info = stream.consumer_info("dialer-route").await.unwrap();
        if info.num_pending == 0 && undialed.len() <= info.num_ack_pending {
            return (audit, ledger, undialed.len());
        }
        assert!(
            Instant::now() < end,
            "decisions neither acted on nor awaiting redelivery (pending {}, awaiting ack {}): {}",
            info.num_pending,
            info.num_ack_pending,
            sample(&undialed)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
