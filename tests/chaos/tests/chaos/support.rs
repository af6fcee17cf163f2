//! Shared helpers: the real service binaries as child processes (SIGKILL, SIGSTOP/SIGCONT,
//! resident memory), a seeded RNG, calls published through faults, and the checks made
//! afterwards from the CALLS stream itself and from the sandbox carrier's ledger.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallDial, CallInbound, CallRoute, DialEventKind, E164, Envelope, EventData, NumberSettings,
    TenantId,
};
use switchboard_testkit::{ReservedPort, eventually};
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
/// `SWITCHBOARD_CHAOS_BIN_DIR` runs the suite against the binaries of another directory (a
/// release build, a build with a deliberate fault to see a check fail).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = match std::env::var_os("SWITCHBOARD_CHAOS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => exe.parent().unwrap().parent().unwrap().to_path_buf(),
    };
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the services first with `cargo build -p switchboard-router -p switchboard-dialer --bins` \
         (make test and make test-chaos do it)",
        path.display()
    );
    path
}

/// The dialer's timing in the chaos suite. Bounded (`make test`): `ack_wait` 2 s (a delivery
/// held by a dialer that died comes back within 2 s) and carrier requests of at most 2 s, 5
/// attempts, backoff 250 ms up to 1 s — about 13 s of attempts, which rides out a stream
/// leader's election after its node died (4–9 s) — so a claim no redelivery recovers is stale
/// after 5 × (2 s + 1 s) + 5 s = 20 s (the dialer's `claim_stale_after`). At full scale
/// (`make test-chaos`, [`wait_for_redeliveries`]): the dialer's defaults (`ack_wait` 5 s, 4
/// attempts of 5 s, backoff up to 2 s: stale after 33 s).
pub fn dialer_timing() -> Vec<(&'static str, &'static str)> {
    if wait_for_redeliveries() {
        return Vec::new();
    }
    vec![
        ("SWITCHBOARD_ACK_WAIT_MS", "2000"),
        ("SWITCHBOARD_CARRIER_TIMEOUT_MS", "2000"),
        ("SWITCHBOARD_CARRIER_MAX_ATTEMPTS", "5"),
        ("SWITCHBOARD_CARRIER_BACKOFF_MS", "250"),
        ("SWITCHBOARD_CARRIER_BACKOFF_MAX_MS", "1000"),
    ]
}

/// A loopback port for a service's HTTP server, held while the value lives so that no
/// parallel test is given it first (see [`ReservedPort`]).
pub fn reserve_port() -> ReservedPort {
    ReservedPort::new().unwrap()
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
    /// Holds `http` (a new port for each process).
    http_port: ReservedPort,
    /// Log files of every process this instance ran, oldest first.
    logs: Vec<PathBuf>,
    /// The process id of each of those processes, in the same order.
    pids: Vec<u32>,
    pub kills: usize,
}

impl Service {
    /// Spawns `binary` with `env` (plus `SWITCHBOARD_HTTP_ADDR` and JSON logs on stderr).
    pub fn spawn(name: &str, binary: PathBuf, env: Vec<(String, String)>, dir: &Path) -> Service {
        let http_port = reserve_port();
        let mut service = Service {
            name: name.to_string(),
            binary,
            env,
            dir: dir.to_path_buf(),
            child: None,
            http: http_port.addr(),
            http_port,
            logs: Vec::new(),
            pids: Vec::new(),
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
    /// dial of its target then the final action. The sandbox stores each request it accepts in
    /// its ledger stream (read by [`Ledger::fetch`]) and reports each dial's status 200 ms
    /// later from whichever dialer is alive then; it also logs each action (the dialers' own
    /// account, [`Ledger::read`]). Timing: see [`dialer_timing`].
    pub fn dialer(name: &str, nats_url: &str, dir: &Path, extra: &[(&str, &str)]) -> Service {
        let mut env = vec![
            ("NATS_URL".to_string(), nats_url.to_string()),
            ("SWITCHBOARD_CARRIER".to_string(), "sandbox".to_string()),
            (
                "SWITCHBOARD_SANDBOX_OUTCOMES".to_string(),
                "no_answer".to_string(),
            ),
            ("SWITCHBOARD_SANDBOX_RING_MS".to_string(), "200".to_string()),
            ("RUST_LOG".to_string(), "info".to_string()),
        ];
        env.extend(
            dialer_timing()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Service::spawn(name, binary("switchboard-dialer"), env, dir)
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.http_port = reserve_port();
        self.http = self.http_port.addr();
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
        self.pids.push(child.id());
        self.child = Some(child);
    }

    /// The process ids of this instance's processes that are gone (killed), oldest first.
    pub fn dead_pids(&self) -> Vec<u32> {
        let live = self.child.as_ref().map(Child::id);
        self.pids
            .iter()
            .copied()
            .filter(|p| Some(*p) != live)
            .collect()
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

    /// Each process's log with its process id, oldest first.
    pub fn logs_by_process(&self) -> Vec<(u32, String)> {
        self.pids
            .iter()
            .zip(&self.logs)
            .map(|(pid, p)| (*pid, std::fs::read_to_string(p).unwrap_or_default()))
            .collect()
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
        ring_group: None,
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

/// Calls published at once by [`Publishing`] (the acks of one chunk are awaited before the next
/// is sent): a server fault can leave at most one chunk unacknowledged.
pub const CHUNK: usize = 100;

/// What the publisher's acks said.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Calls published again (same `Nats-Msg-Id`) after a publish got no acknowledgement.
    pub resent: Mutex<BTreeSet<String>>,
    /// Calls whose acknowledgement had the `duplicate` flag: JetStream had stored them already.
    pub duplicates: Mutex<BTreeSet<String>>,
}

impl PublishStats {
    /// (calls resent, calls found stored already).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.resent.lock().unwrap().len(),
            self.duplicates.lock().unwrap().len(),
        )
    }

    /// Only a call resent after an unacknowledged publish can be a duplicate (by id), and only
    /// a server fault leaves publishes unacknowledged: at most one chunk per fault.
    pub fn assert_bounded(&self, server_faults: usize) {
        let resent = self.resent.lock().unwrap();
        let duplicates = self.duplicates.lock().unwrap();
        let unexplained: Vec<&String> = duplicates.difference(&resent).collect();
        assert!(
            unexplained.is_empty(),
            "calls JetStream already held on their first publish: {}",
            sample(&unexplained)
        );
        let limit = CHUNK * server_faults;
        assert!(
            resent.len() <= limit,
            "{} calls resent after unacknowledged publishes, more than the {limit} in flight at \
             {server_faults} server fault(s): {}",
            resent.len(),
            sample(&resent.iter().collect::<Vec<_>>())
        );
    }
}

/// Publishes calls `<prefix>-0 .. <prefix>-<n-1>` in chunks, spread over about `over` (so they
/// are in flight while faults are injected). Each publish is retried with the same
/// `Nats-Msg-Id` until JetStream acknowledges it, so a server restart loses none and stores
/// none twice. Returns the ids acknowledged (all of them) when done; [`Publishing::stats`]
/// counts the retries and the duplicates JetStream reported.
pub struct Publishing {
    pub published: Arc<AtomicUsize>,
    pub total: usize,
    pub stats: Arc<PublishStats>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Publishing {
    pub fn start(js: jetstream::Context, prefix: &str, n: usize, over: Duration) -> Publishing {
        let published = Arc::new(AtomicUsize::new(0));
        let counter = published.clone();
        let stats = Arc::new(PublishStats::default());
        let acks = stats.clone();
        let prefix = prefix.to_string();
        let task = tokio::spawn(async move {
            let chunks = n.div_ceil(CHUNK).max(1);
            let pause = over / u32::try_from(chunks).unwrap();
            let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
            let started = Instant::now();
            for (c, chunk) in ids.chunks(CHUNK).enumerate() {
                publish_acked(&js, chunk, &acks).await;
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
            stats,
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
async fn publish_acked(js: &jetstream::Context, ids: &[String], stats: &PublishStats) {
    let mut left: Vec<&String> = ids.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first = true;
    while !left.is_empty() {
        if !first {
            stats
                .resent
                .lock()
                .unwrap()
                .extend(left.iter().map(|c| (*c).clone()));
        }
        first = false;
        let mut pending = Vec::with_capacity(left.len());
        for call_id in &left {
            let (subject, msg_id, body) = call_message(call_id);
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            let sent = js.publish_with_headers(subject, headers, body.into()).await;
            pending.push((*call_id, sent));
        }
        // Awaited together: each ack's timeout (5 s) starts when it is awaited, so awaiting them
        // one by one after the server died with the chunk in flight would take 5 s per call.
        let acks =
            futures::future::join_all(pending.into_iter().map(|(call_id, sent)| async move {
                match sent {
                    Ok(ack) => (call_id, ack.await.ok()),
                    Err(_) => (call_id, None),
                }
            }))
            .await;
        let mut failed = Vec::new();
        for (call_id, ack) in acks {
            match ack {
                Some(ack) => {
                    if ack.duplicate {
                        stats.duplicates.lock().unwrap().insert(call_id.clone());
                    }
                }
                None => failed.push(call_id),
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
    /// When the stream stored it (the server's clock, the same host's as the test's).
    pub stored_at: OffsetDateTime,
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
        match try_read(js, CALLS, filter).await {
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

async fn try_read(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
) -> Result<Vec<Stored>, String> {
    let stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
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
            let (seq, stored_at) = message
                .info()
                .map(|i| (i.stream_sequence, i.published))
                .map_err(|e| e.to_string())?;
            out.push(Stored {
                seq,
                stored_at,
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
    /// Stored `call.inbound` events per call id (more than one: stored twice).
    pub inbound: BTreeMap<String, usize>,
    /// Decisions per call id.
    pub routes: BTreeMap<String, usize>,
    pub route_messages: usize,
    /// When each call's first decision was stored.
    pub decided_at: BTreeMap<String, OffsetDateTime>,
    /// The dial events: (call id, step, kind, reason).
    pub dials: Vec<(String, u32, DialEventKind, Option<String>)>,
    /// (call id, step) of the dial events recorded with `outcome_unknown`.
    pub outcome_unknown: BTreeSet<(String, u32)>,
    /// (call id, step) the carrier failed for sure (`step_failed` "carrier: …", outcome
    /// known): it refused, or could not be reached within the dialer's attempts.
    pub carrier_failed: BTreeSet<(String, u32)>,
}

impl Audit {
    pub async fn read(js: &jetstream::Context) -> Audit {
        let mut accepted = BTreeSet::new();
        let mut inbound = BTreeMap::new();
        for m in read(js, &format!("call.inbound.{T}")).await {
            let call = Envelope::<CallInbound>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid call: {e}", m.seq));
            *inbound.entry(call.data.call_id.clone()).or_insert(0) += 1;
            accepted.insert(call.data.call_id);
        }
        let mut routes = BTreeMap::new();
        let mut decided_at = BTreeMap::new();
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
            decided_at
                .entry(route.data.call_id.clone())
                .or_insert(m.stored_at);
            *routes.entry(route.data.call_id).or_insert(0) += 1;
        }
        let mut dials = Vec::new();
        let mut outcome_unknown = BTreeSet::new();
        let mut carrier_failed = BTreeSet::new();
        for m in read(js, &format!("call.dial.{T}")).await {
            let dial = Envelope::<CallDial>::decode(&m.payload, &m.subject)
                .unwrap_or_else(|e| panic!("CALLS/{} is not a valid dial event: {e}", m.seq));
            if dial.data.outcome_unknown {
                outcome_unknown.insert((dial.data.call_id.clone(), dial.data.step));
            } else if dial.data.kind == DialEventKind::StepFailed
                && dial
                    .data
                    .reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("carrier: "))
            {
                carrier_failed.insert((dial.data.call_id.clone(), dial.data.step));
            }
            dials.push((
                dial.data.call_id,
                dial.data.step,
                dial.data.kind,
                dial.data.reason,
            ));
        }
        Audit {
            accepted,
            inbound,
            routes,
            route_messages: route_messages.len(),
            decided_at,
            dials,
            outcome_unknown,
            carrier_failed,
        }
    }

    /// Every call the publisher got an ack for (`expected`) is stored once, every stored call
    /// was published, every accepted call has exactly one decision, and no decision exists for
    /// a call never accepted — all compared by call id. (A second copy of a call or of a
    /// decision with the same `Nats-Msg-Id` is dropped by JetStream before it can be counted
    /// here: [`PublishStats::assert_bounded`] and [`assert_redecisions_explained`] count those.)
    pub fn assert_decided_exactly_once(&self, expected: &[String]) {
        let expected_ids: BTreeSet<&String> = expected.iter().collect();
        let not_stored: Vec<&&String> = expected_ids
            .iter()
            .filter(|c| !self.accepted.contains(**c))
            .collect();
        assert!(
            not_stored.is_empty(),
            "acknowledged by JetStream but not in CALLS: {}",
            sample(&not_stored)
        );
        let stored_twice: Vec<(&String, &usize)> =
            self.inbound.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            stored_twice.is_empty(),
            "calls stored more than once in CALLS: {}",
            sample(&stored_twice)
        );
        let never_published: Vec<&String> = self
            .accepted
            .iter()
            .filter(|c| !expected_ids.contains(c))
            .collect();
        assert!(
            never_published.is_empty(),
            "calls in CALLS that the test never published: {}",
            sample(&never_published)
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

    /// Whether CALLS records the carrier acting on (call, step): the step started, answered or
    /// the final action taken; a status reported for it ("dial status …", the carrier rang it);
    /// or recorded with its outcome unknown (the dialer could not know).
    fn records_action(&self, call: &str, step: u32) -> bool {
        self.outcome_unknown.contains(&(call.to_string(), step))
            || self.dials.iter().any(|(c, s, kind, reason)| {
                c == call
                    && *s == step
                    && match kind {
                        DialEventKind::StepStarted
                        | DialEventKind::Answered
                        | DialEventKind::FinalActionTaken => true,
                        DialEventKind::StepFailed => reason
                            .as_deref()
                            .is_some_and(|r| r.starts_with("dial status ")),
                        DialEventKind::ChainExhausted => false,
                    }
            })
    }
}

/// How long after a decision was stored (or a carrier action taken) a fault can still find it
/// unrecorded: the router acknowledges right after JetStream stored the decision, the dialer
/// records the carrier's answer right after it came, so a call re-decided (or a final action
/// taken again) must have been decided (taken) within this before a fault.
pub const FAULT_WINDOW: Duration = Duration::from_secs(10);
/// A fault's instant is taken just before the signal is sent; what the process had sent by
/// then may still be stored for a few milliseconds after.
const FAULT_SLACK: Duration = Duration::from_millis(250);

/// Re-decisions found by [`assert_redecisions_explained`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Redecisions {
    /// Calls re-decided.
    pub count: usize,
    /// The earliest and latest a re-decided call's decision was stored relative to the fault
    /// that explains it, in milliseconds (negative: before the fault); `None` without any.
    pub stored_ms: Option<(i64, i64)>,
}

/// The re-decisions of `routers` — a router deciding a call whose decision CALLS already held:
/// its publish ack had the `duplicate` flag, and it logs "call was already decided" with the call
/// id. JetStream drops the second copy, so "decided twice" cannot see them; this check can.
/// Each must be explained by a fault (a router SIGKILLed, a server lost) that struck within
/// [`FAULT_WINDOW`] after the call's decision was stored (while its delivery could still be
/// unacknowledged); none may be re-decided twice.
pub fn assert_redecisions_explained(
    routers: &[&Service],
    audit: &Audit,
    faults: &[OffsetDateTime],
) -> Redecisions {
    let mut redecided: BTreeMap<String, usize> = BTreeMap::new();
    for router in routers {
        for line in router.log().lines() {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if json["message"] == "call was already decided; kept the first decision" {
                let call = json["call_id"].as_str().unwrap().to_string();
                *redecided.entry(call).or_insert(0) += 1;
            }
        }
    }
    let mut unexplained = Vec::new();
    let mut stored_ms: Option<(i64, i64)> = None;
    for call in redecided.keys() {
        let Some(decided) = audit.decided_at.get(call) else {
            unexplained.push((call.clone(), "no decision stored".to_string()));
            continue;
        };
        // The decision relative to the nearest fault that can explain it.
        let offset = faults
            .iter()
            .map(|fault| *decided - *fault)
            .filter(|offset| *offset <= FAULT_SLACK && -*offset <= FAULT_WINDOW)
            .min_by_key(|offset| offset.abs());
        match offset {
            Some(offset) => {
                let ms = i64::try_from(offset.whole_milliseconds()).unwrap();
                stored_ms = Some(stored_ms.map_or((ms, ms), |(lo, hi)| (lo.min(ms), hi.max(ms))));
            }
            None => unexplained.push((call.clone(), format!("decided at {decided}"))),
        }
    }
    assert!(
        unexplained.is_empty(),
        "calls re-decided with no fault within {FAULT_WINDOW:?} after their decision (faults at {faults:?}): {}",
        sample(&unexplained)
    );
    let again: Vec<(&String, &usize)> = redecided.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.is_empty(),
        "calls re-decided more than once: {}",
        sample(&again)
    );
    Redecisions {
        count: redecided.len(),
        stored_ms,
    }
}

/// One action the carrier took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierAction {
    pub call: String,
    pub step: u32,
    /// The final action (else a dial).
    pub final_action: bool,
    /// The dialer process that asked for it.
    pub pid: u32,
    /// When the carrier accepted it.
    pub at: OffsetDateTime,
}

/// An RFC 3339 timestamp of a JSON document.
fn timestamp(value: &serde_json::Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// The stream in which the sandbox carrier stores every request it accepts (the dialer's
/// `carrier::SANDBOX_STREAM`): its ledger.
pub const SANDBOX_STREAM: &str = "SANDBOX_CARRIER";
/// The sandbox carrier's consumer that reports each dial's status when due.
pub const SANDBOX_CONSUMER: &str = "sandbox-carrier-status";

/// The carrier's ledger: every action the sandbox carrier accepted, and what explains an
/// action taken more than once.
pub struct Ledger {
    /// (call id, step) → how many times the carrier was asked to act (and accepted).
    pub actions: BTreeMap<(String, u32), usize>,
    pub total: usize,
    /// Every action, in the order the ledger holds them.
    pub entries: Vec<CarrierAction>,
    /// Process ids of the dialers' processes that died (SIGKILLed).
    pub dead: BTreeSet<u32>,
    /// (call, step) a dialer asked the carrier again after a failed attempt ("carrier request
    /// failed; retrying"): the first attempt may have been carried out all the same.
    pub retried: BTreeSet<(String, u32)>,
}

impl Ledger {
    /// The carrier's own ledger: the sandbox's stream, one entry per request it accepted, stored
    /// before it answered the dialer (so an action is in the ledger whatever became of the
    /// dialer that asked).
    pub async fn fetch(js: &jetstream::Context, dialers: &[&Service]) -> Ledger {
        let end = Instant::now() + WAIT;
        let messages = loop {
            let held = async {
                let mut stream = js.get_stream(SANDBOX_STREAM).await.ok()?;
                Some(usize::try_from(stream.info().await.ok()?.state.messages).unwrap())
            }
            .await;
            match try_read(js, SANDBOX_STREAM, "sandbox.carrier.>").await {
                Ok(messages) if held.is_some_and(|n| messages.len() >= n) => break messages,
                outcome => {
                    assert!(
                        Instant::now() < end,
                        "reading the carrier's ledger: {:?} (the stream holds {held:?})",
                        outcome.map(|m| m.len())
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let entries = messages
            .iter()
            .filter_map(|m| {
                let json: serde_json::Value = serde_json::from_slice(&m.payload)
                    .unwrap_or_else(|e| panic!("{SANDBOX_STREAM}/{}: {e}", m.seq));
                // A mark that a call ended (issue 17) is not an action.
                (json["tenant"] == T && json["action"] != "ended").then(|| CarrierAction {
                    call: json["call_id"].as_str().unwrap().to_string(),
                    step: u32::try_from(json["step"].as_u64().unwrap()).unwrap(),
                    final_action: json["action"] == "final",
                    pid: u32::try_from(json["pid"].as_u64().unwrap()).unwrap(),
                    at: timestamp(&json["accepted_at"]),
                })
            })
            .collect();
        Ledger::of(entries, dialers)
    }

    /// The dialers' own account of the carrier's actions: one log line "sandbox carrier: call
    /// modified" per action, written once the carrier accepted it (a dialer killed between
    /// the two leaves an action out: [`Ledger::fetch`] is the carrier's ledger).
    pub fn read(dialers: &[&Service]) -> Ledger {
        let mut entries = Vec::new();
        for dialer in dialers {
            for (pid, log) in dialer.logs_by_process() {
                for line in log.lines() {
                    let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                        continue;
                    };
                    if json["message"] != "sandbox carrier: call modified" || json["tenant"] != T {
                        continue;
                    }
                    entries.push(CarrierAction {
                        call: json["call_id"].as_str().unwrap().to_string(),
                        step: u32::try_from(json["step"].as_u64().unwrap()).unwrap(),
                        final_action: json["action"] == "final action",
                        pid,
                        at: timestamp(&json["timestamp"]),
                    });
                }
            }
        }
        Ledger::of(entries, dialers)
    }

    fn of(entries: Vec<CarrierAction>, dialers: &[&Service]) -> Ledger {
        let mut actions = BTreeMap::new();
        for e in &entries {
            *actions.entry((e.call.clone(), e.step)).or_insert(0) += 1;
        }
        let mut retried = BTreeSet::new();
        for dialer in dialers {
            for line in dialer.log().lines() {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if json["message"] == "carrier request failed; retrying"
                    && let (Some(call), Some(step)) =
                        (json["call_id"].as_str(), json["step"].as_u64())
                {
                    retried.insert((call.to_string(), u32::try_from(step).unwrap()));
                }
            }
        }
        Ledger {
            total: entries.len(),
            actions,
            entries,
            dead: dialers.iter().flat_map(|d| d.dead_pids()).collect(),
            retried,
        }
    }

    /// How many actions so far, from the dialers' logs (cheap enough to poll on a few thousand
    /// lines).
    pub fn count(dialers: &[&Service]) -> usize {
        Ledger::read(dialers).total
    }

    /// Final actions taken again (beyond the first per call and step).
    pub fn repeated_finals(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.final_action)
            .count()
            .saturating_sub(
                self.entries
                    .iter()
                    .filter(|e| e.final_action)
                    .map(|e| (&e.call, e.step))
                    .collect::<BTreeSet<_>>()
                    .len(),
            )
    }

    /// [`Ledger::assert_no_action_twice_around`] with no server fault.
    pub fn assert_no_action_twice(&self, audit: &Audit) {
        self.assert_no_action_twice_around(audit, &[]);
    }

    /// No number was rung twice: no dial taken twice (by (call, step)). A final action rings
    /// nobody, and the dialer asks for it again after an attempt with no confirmation (a
    /// request that may have been carried out): each repetition must be explained — the
    /// process that took the earlier one died, or it logged a retry of that step, or a server
    /// fault (at `server_faults`) struck within [`FAULT_WINDOW`] after the earlier one was
    /// taken. Every action is for a decided call; every `step_started` /
    /// `final_action_taken` in CALLS is stored once and matches an action (unless recorded
    /// with its outcome unknown); and every action is recorded in CALLS (no hole).
    pub fn assert_no_action_twice_around(&self, audit: &Audit, server_faults: &[OffsetDateTime]) {
        let mut dials: BTreeMap<(&str, u32), usize> = BTreeMap::new();
        let mut finals: BTreeMap<(&str, u32), Vec<&CarrierAction>> = BTreeMap::new();
        for e in &self.entries {
            if e.final_action {
                finals.entry((&e.call, e.step)).or_default().push(e);
            } else {
                *dials.entry((&e.call, e.step)).or_insert(0) += 1;
            }
        }
        let twice: Vec<(&(&str, u32), &usize)> = dials.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "numbers rung more than once ((call, step) → times): {}",
            sample(&twice)
        );
        let fault_after = |at: OffsetDateTime| {
            server_faults.iter().any(|fault| {
                let after = *fault - at;
                -after <= FAULT_SLACK && after <= FAULT_WINDOW
            })
        };
        // ((call, step), [(pid, taken at)]) of each final action repeated unexplained.
        type Repeated<'a> = (&'a (&'a str, u32), Vec<(u32, OffsetDateTime)>);
        let unexplained: Vec<Repeated> = finals
            .iter()
            .filter(|((call, step), taken)| {
                taken.len() > 1
                    && !self.retried.contains(&(call.to_string(), *step))
                    && !taken[..taken.len() - 1]
                        .iter()
                        .all(|e| self.dead.contains(&e.pid) || fault_after(e.at))
            })
            .map(|(key, taken)| (key, taken.iter().map(|e| (e.pid, e.at)).collect()))
            .collect();
        assert!(
            unexplained.is_empty(),
            "final actions repeated with neither a dialer death, a retry nor a server fault to explain them \
             ((call, step) → (pid, taken at); dead: {:?}, server faults at {server_faults:?}): {}",
            self.dead,
            sample(&unexplained)
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
        let mut unmatched = Vec::new();
        for kind in [DialEventKind::StepStarted, DialEventKind::FinalActionTaken] {
            for ((call, step), n) in audit.dial_count(kind) {
                assert_eq!(n, 1, "{kind:?} of {call} step {step} stored {n} times");
                let key = (call.to_string(), step);
                // Recorded with its outcome unknown: the carrier may never have had it.
                if !self.actions.contains_key(&key) && !audit.outcome_unknown.contains(&key) {
                    unmatched.push((call.to_string(), step, kind));
                }
            }
        }
        assert!(
            unmatched.is_empty(),
            "dial events without a carrier action in the ledger: {}",
            sample(&unmatched)
        );
        let contradicted: Vec<&(String, u32)> = self
            .actions
            .keys()
            .filter(|key| audit.carrier_failed.contains(*key))
            .collect();
        assert!(
            contradicted.is_empty(),
            "carrier actions CALLS records as failed by the carrier, outcome known: {}",
            sample(&contradicted)
        );
        let holes: Vec<&(String, u32)> = self
            .actions
            .keys()
            .filter(|(call, step)| !audit.records_action(call, *step))
            .collect();
        assert!(
            holes.is_empty(),
            "carrier actions CALLS has no record of (a hole in the audit): {}",
            sample(&holes)
        );
    }
}

/// The dialer handled every decision: the carrier dialed its first step, or CALLS records why
/// not — failed with its outcome unknown and never asked again (a dialer died between claiming
/// the step and the carrier's answer, or the carrier did not confirm: ADR 0003), or failed by
/// the carrier for sure (refused, or unreachable through all of the dialer's attempts). By
/// call id.
pub fn assert_every_decision_dialed(audit: &Audit, ledger: &Ledger) {
    let undialed = undialed(audit, ledger);
    assert!(
        undialed.is_empty(),
        "decisions the dialer never acted on: {}",
        sample(&undialed)
    );
}

/// The decisions neither dialed nor recorded as failed (outcome unknown, or by the carrier).
fn undialed(audit: &Audit, ledger: &Ledger) -> Vec<String> {
    audit
        .routes
        .keys()
        .filter(|c| {
            let first = ((*c).clone(), 0);
            !ledger.actions.contains_key(&first)
                && !audit.outcome_unknown.contains(&first)
                && !audit.carrier_failed.contains(&first)
        })
        .cloned()
        .collect()
}

/// The decided calls without an end: neither answered nor with their final action recorded in
/// CALLS, or with a final action recorded as taken (outcome known) that the carrier's ledger
/// does not hold. (A final action recorded with its outcome unknown — its dialer died before
/// the carrier's answer was stored — is not asked again, ADR 0003: the ledger may lack it.)
fn unended(audit: &Audit, ledger: &Ledger) -> Vec<String> {
    let mut answered = BTreeSet::new();
    // call → whether every `final_action_taken` of it has its outcome unknown
    let mut final_recorded: BTreeMap<&str, bool> = BTreeMap::new();
    for (call, step, kind, _) in &audit.dials {
        match kind {
            DialEventKind::Answered => {
                answered.insert(call.as_str());
            }
            DialEventKind::FinalActionTaken => {
                let unknown = audit.outcome_unknown.contains(&(call.clone(), *step));
                let all_unknown = final_recorded.entry(call.as_str()).or_insert(true);
                *all_unknown = *all_unknown && unknown;
            }
            _ => {}
        }
    }
    let finals: BTreeSet<&str> = ledger
        .entries
        .iter()
        .filter(|e| e.final_action)
        .map(|e| e.call.as_str())
        .collect();
    audit
        .routes
        .keys()
        .filter(|c| {
            let c = c.as_str();
            let ended = answered.contains(c)
                || final_recorded
                    .get(c)
                    .is_some_and(|unknown| finals.contains(c) || *unknown);
            !ended
        })
        .cloned()
        .collect()
}

/// What CALLS, the carrier's ledger and `DIAL_PROGRESS` say about `calls`, and the state of
/// the dialers' consumers: for a failure message.
async fn explain(
    js: &jetstream::Context,
    audit: &Audit,
    ledger: &Ledger,
    calls: &[String],
) -> String {
    let mut out = String::new();
    let progress = js.get_key_value("DIAL_PROGRESS").await.ok();
    for call in calls {
        let dials: Vec<_> = audit.dials.iter().filter(|d| d.0 == *call).collect();
        let actions: Vec<_> = ledger.entries.iter().filter(|e| e.call == *call).collect();
        let entry = match &progress {
            Some(kv) => match kv.get(format!("{T}.{call}")).await {
                Ok(Some(v)) => String::from_utf8_lossy(&v).into_owned(),
                other => format!("{other:?}"),
            },
            None => "no DIAL_PROGRESS bucket".into(),
        };
        out.push_str(&format!(
            "- {call}: decided at {:?}; dial events {dials:?}; carrier actions {actions:?}; progress {entry}\n",
            audit.decided_at.get(call)
        ));
    }
    for (stream, name) in [
        (CALLS, "dialer-route"),
        (CALLS, "dialer-status"),
        (SANDBOX_STREAM, SANDBOX_CONSUMER),
    ] {
        if let Ok(stream) = js.get_stream(stream).await
            && let Ok(info) = stream.consumer_info(name).await
        {
            out.push_str(&format!(
                "- consumer {name}: pending {}, awaiting ack {}, delivered {:?}, ack floor {:?}, redelivered {}\n",
                info.num_pending,
                info.num_ack_pending,
                info.delivered,
                info.ack_floor,
                info.num_redelivered
            ));
        }
    }
    out
}

/// Every decided call reached its end — CALLS holds its `final_action_taken` (or `answered`)
/// and the carrier's ledger its final action, unless CALLS records that final action with its
/// outcome unknown — and the ledger holds exactly the actions expected: two per call (its
/// target's dial and the final action: nobody answers in these scenarios) less the requests
/// the carrier never took, each matched by id to a step CALLS records as failed (outcome
/// unknown, or by the carrier: [`assert_every_decision_dialed`]) or as a final action of
/// unknown outcome. Returns how many requests the carrier never took.
pub fn assert_every_call_ended(audit: &Audit, ledger: &Ledger) -> usize {
    let no_end = unended(audit, ledger);
    assert!(
        no_end.is_empty(),
        "calls that never reached an end (no answer or final action in CALLS, or a final action taken that the carrier's ledger lacks): {}",
        sample(&no_end)
    );
    let finals: BTreeSet<&str> = ledger
        .entries
        .iter()
        .filter(|e| e.final_action)
        .map(|e| e.call.as_str())
        .collect();
    let never_taken: usize = audit
        .routes
        .keys()
        .map(|c| {
            usize::from(!ledger.actions.contains_key(&(c.clone(), 0)))
                + usize::from(!finals.contains(c.as_str()))
        })
        .sum();
    let expected = 2 * audit.routes.len() - never_taken;
    assert_eq!(
        ledger.actions.len(),
        expected,
        "carrier actions ((call, step) pairs) short of or beyond 2 per call ({} calls, {never_taken} requests the carrier never took)",
        audit.routes.len()
    );
    never_taken
}

/// Whether this is the full-scale run (`make test-chaos` sets
/// `SWITCHBOARD_CHAOS_WAIT_REDELIVERIES=1`): scenarios may then also wait out the router's 30 s
/// `ack_wait` for what a fault took from it. The dialer's checks ([`wait_dialer`]) are strict in
/// both modes: its redeliveries come within its `ack_wait` of seconds ([`dialer_timing`]).
pub fn wait_for_redeliveries() -> bool {
    std::env::var("SWITCHBOARD_CHAOS_WAIT_REDELIVERIES").is_ok_and(|v| v.trim() == "1")
}

/// Waits until the dialers and the sandbox carrier are quiet: `dialer-route`, `dialer-status`
/// and the sandbox's status reports all settled (nothing pending, nothing awaiting an ack), with
/// nothing delivered between two looks.
pub async fn wait_quiet(js: &jetstream::Context, deadline: Duration) {
    let consumers = [
        (CALLS, "dialer-route"),
        (CALLS, "dialer-status"),
        (SANDBOX_STREAM, SANDBOX_CONSUMER),
    ];
    let end = Instant::now() + deadline;
    let mut previous: Option<Vec<u64>> = None;
    let mut last = Vec::new();
    loop {
        let mut delivered = Vec::new();
        last.clear();
        for (stream, name) in consumers {
            let info = async {
                let stream = js.get_stream(stream).await.ok()?;
                stream.consumer_info(name).await.ok()
            }
            .await;
            match info {
                Some(info) => {
                    last.push((name, Some((info.num_pending, info.num_ack_pending))));
                    if info.num_pending == 0 && info.num_ack_pending == 0 {
                        delivered.push(info.delivered.stream_sequence);
                    }
                }
                None => last.push((name, None)),
            }
        }
        let settled = delivered.len() == consumers.len();
        if settled && previous.as_ref() == Some(&delivered) {
            return;
        }
        previous = settled.then_some(delivered);
        assert!(
            Instant::now() < end,
            "the dialers were not quiet within {deadline:?}: (consumer, pending, awaiting ack) = {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for the dialers after a scenario (see [`wait_quiet`]), then checks from CALLS and the
/// carrier's ledger that every decision was acted on and every call reached its end. Returns
/// the stream audit, the ledger, and how many requests the carrier never took (see
/// [`assert_every_call_ended`]).
pub async fn wait_dialer(
    js: &jetstream::Context,
    dialers: &[&Service],
    deadline: Duration,
) -> (Audit, Ledger, usize) {
    wait_quiet(js, deadline).await;
    let audit = Audit::read(js).await;
    let ledger = Ledger::fetch(js, dialers).await;
    let stuck: Vec<String> = undialed(&audit, &ledger)
        .into_iter()
        .chain(unended(&audit, &ledger))
        .take(5)
        .collect();
    if !stuck.is_empty() {
        eprintln!(
            "calls the dialers left behind, in detail:\n{}",
            explain(js, &audit, &ledger, &stuck).await
        );
    }
    assert_every_decision_dialed(&audit, &ledger);
    let never_asked = assert_every_call_ended(&audit, &ledger);
    (audit, ledger, never_asked)
}
