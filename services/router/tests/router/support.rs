//! Shared helpers: a real nats-server with both streams, settings and call events, decisions
//! read back from the CALLS stream, routers run in-process or as the real binary, HTTP probes.

use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard_bus::{CALLS, Published, Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallInbound, CallRejected, CallRoute, CompanySettings, ContactSettings, E164, EntityId,
    Envelope, EventData, FinalAction, NumberSettings, Rule, Target, TenantId, UserSettings,
};
use switchboard_router::{Config, RouterError};
use switchboard_testkit::{NatsServer, Postgres, ReservedPort, eventually};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Deadline for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(20);
/// The router's durable consumer.
pub const DURABLE: &str = "router";
const SOURCE: &str = "/switchboard/test";

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

pub fn e164(n: &str) -> E164 {
    E164::parse_strict(n).unwrap()
}

/// A target as the router must emit it.
pub fn target(number: &str, rule: Rule, user: Option<&str>) -> Target {
    Target {
        number: e164(number),
        user_id: user.map(id),
        rule,
        // No ring timeout set in these tenants: the company default.
        ring_timeout_secs: Some(switchboard_contracts::DEFAULT_RING_TIMEOUT_SECS),
        group: Vec::new(),
        screen: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Settings and calls
// ---------------------------------------------------------------------------------------------

/// One counter for every entity: versions only ever grow, which is all the guard needs.
static VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    VERSION.fetch_add(1, Ordering::Relaxed)
}

pub fn company(t: &str, phone: Option<&str>, final_action: Option<FinalAction>) -> CompanySettings {
    CompanySettings {
        tenant_id: tenant(t),
        version: next_version(),
        company_phone: phone.map(Into::into),
        default_region: None,
        final_action,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days: 0,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    }
}

pub fn number(t: &str, number: &str, forwarding: Option<&str>) -> NumberSettings {
    NumberSettings {
        tenant_id: tenant(t),
        version: next_version(),
        number: e164(number),
        forwarding_number: forwarding.map(Into::into),
        released: false,
        user_id: None,
        prefer: Default::default(),
        ring_timeout_secs: None,
        ring_group: None,
    }
}

pub fn released(t: &str, number_: &str, forwarding: Option<&str>) -> NumberSettings {
    NumberSettings {
        released: true,
        ..number(t, number_, forwarding)
    }
}

pub fn user(t: &str, user_id: &str, phone: Option<&str>, active: bool) -> UserSettings {
    UserSettings {
        tenant_id: tenant(t),
        version: next_version(),
        user_id: id(user_id),
        phone: phone.map(Into::into),
        active,
        available: true,
        working_hours: None,
        ring_only_in_working_hours: false,
    }
}

pub fn contact(
    t: &str,
    contact_id: &str,
    phones: &[&str],
    assigned: Option<&str>,
) -> ContactSettings {
    ContactSettings {
        tenant_id: tenant(t),
        version: next_version(),
        contact_id: id(contact_id),
        phones: phones.iter().map(|p| p.to_string()).collect(),
        assigned_user_id: assigned.map(id),
        deleted: false,
    }
}

/// An inbound call `call_id` to `to` from `from`.
pub fn call(t: &str, call_id: &str, to: &str, from: &str) -> CallInbound {
    CallInbound {
        call_id: call_id.into(),
        tenant_id: tenant(t),
        to: to.into(),
        from: from.into(),
        received_at: OffsetDateTime::now_utc(),
        contact_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/// A stored message of the CALLS stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub payload: Vec<u8>,
    pub msg_id: Option<String>,
}

/// A real nats-server with CALLS and SETTINGS provisioned, and a test client on it.
pub struct Nats {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub publisher: Publisher,
}

impl Nats {
    pub async fn start() -> Nats {
        let server = NatsServer::start().unwrap();
        let js = jetstream::new(server.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        let publisher = Publisher::new(js.clone());
        Nats {
            server,
            js,
            publisher,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Publishes `data` as its contract event and waits for JetStream's ack.
    pub async fn publish<T: EventData>(&self, data: T) -> Published {
        let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
        self.publisher
            .publish(&event, &TraceContext::default())
            .await
            .unwrap()
    }

    /// Publishes a settings event; its SETTINGS sequence.
    pub async fn settings<T: EventData>(&self, data: T) -> u64 {
        let published = self.publish(data).await;
        assert_eq!(published.stream, "SETTINGS");
        assert!(!published.duplicate, "settings event already stored");
        published.sequence
    }

    /// Publishes a call; its CALLS sequence.
    pub async fn call(&self, call: CallInbound) -> u64 {
        let published = self.publish(call).await;
        assert_eq!(published.stream, CALLS);
        published.sequence
    }

    /// Publishes `count` calls `<prefix>-<i>` to `to` from `from`, pipelined.
    pub async fn calls(
        &self,
        t: &str,
        prefix: &str,
        count: usize,
        to: &str,
        from: &str,
    ) -> Vec<String> {
        let ids: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
        for chunk in ids.chunks(500) {
            let mut pending = Vec::with_capacity(chunk.len());
            for call_id in chunk {
                let event = Envelope::new(
                    call(t, call_id, to, from),
                    SOURCE,
                    OffsetDateTime::now_utc(),
                );
                pending.push(
                    self.publisher
                        .send(&event, &TraceContext::default())
                        .await
                        .unwrap(),
                );
            }
            for ack in pending {
                ack.ack().await.unwrap();
            }
        }
        ids
    }

    /// Publishes `body` as is on `subject` with `Nats-Msg-Id: msg_id`.
    pub async fn raw(&self, subject: &str, msg_id: &str, body: &[u8]) -> Published {
        self.publisher
            .send_raw(
                subject.to_string(),
                msg_id,
                body.to_vec().into(),
                &TraceContext::default(),
            )
            .await
            .unwrap()
            .ack()
            .await
            .unwrap()
    }

    /// Every message on `filter` (of SETTINGS for `settings.…`, else of CALLS), in stream order.
    pub async fn read(&self, filter: &str) -> Vec<Stored> {
        let name = if filter.starts_with("settings.") {
            switchboard_bus::SETTINGS
        } else {
            CALLS
        };
        let stream = self.js.get_stream(name).await.unwrap();
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: filter.to_string(),
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::All,
                inactive_threshold: Duration::from_secs(10),
                ..Default::default()
            })
            .await
            .unwrap();
        let total = usize::try_from(consumer.cached_info().num_pending).unwrap();
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let mut batch = consumer
                .batch()
                .max_messages(total - out.len())
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .unwrap();
            let before = out.len();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                out.push(Stored {
                    subject: message.subject.to_string(),
                    payload: message.payload.to_vec(),
                    msg_id: message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.to_string()),
                });
            }
            assert!(
                out.len() > before,
                "reading {filter}: the stream stopped delivering"
            );
        }
        let _ = stream.delete_consumer(&consumer.cached_info().name).await;
        out
    }

    /// Every decision for tenant `t`, in stream order.
    pub async fn routes(&self, t: &str) -> Vec<Envelope<CallRoute>> {
        let subject = format!("call.route.{t}");
        self.read(&subject)
            .await
            .iter()
            .map(|m| Envelope::<CallRoute>::decode(&m.payload, &m.subject).unwrap())
            .collect()
    }

    /// The decision for `call_id` of tenant `t`, once it is stored.
    pub async fn route(&self, t: &str, call_id: &str) -> CallRoute {
        eventually(WAIT, &format!("the decision for {t}/{call_id}"), || async {
            self.routes(t)
                .await
                .into_iter()
                .find(|r| r.data.call_id == call_id)
        })
        .await
        .unwrap()
        .data
    }

    /// The rejection filed for the CALLS message at `seq` on `call.rejected.<t>`.
    pub async fn rejection(&self, t: &str, seq: u64) -> Envelope<CallRejected> {
        let subject = format!("call.rejected.{t}");
        eventually(WAIT, &format!("the rejection of CALLS/{seq}"), || async {
            self.read(&subject)
                .await
                .iter()
                .map(|m| Envelope::<CallRejected>::decode(&m.payload, &m.subject).unwrap())
                .find(|r| r.data.0.stream_seq == seq)
        })
        .await
        .unwrap()
    }

    /// How many messages CALLS holds on `filter` (cheap: from the stream state).
    pub async fn count(&self, filter: &str) -> usize {
        let stream = self.js.get_stream(CALLS).await.unwrap();
        let mut subjects = stream.info_with_subjects(filter).await.unwrap();
        let mut total = 0;
        while let Some(entry) = subjects.next().await {
            total += entry.unwrap().1;
        }
        total
    }

    /// Waits until CALLS holds `n` decisions for tenant `t`.
    pub async fn wait_routes(&self, t: &str, n: usize, deadline: Duration) {
        let subject = format!("call.route.{t}");
        eventually(deadline, &format!("{n} decisions for {t}"), || async {
            (self.count(&subject).await == n).then_some(())
        })
        .await
        .unwrap();
    }

    /// The router's durable consumer.
    pub async fn consumer(&self) -> consumer::Info {
        let stream = self.js.get_stream(CALLS).await.unwrap();
        stream.consumer_info(DURABLE).await.unwrap()
    }

    /// Waits until every `call.inbound` up to the stream's current end has been delivered to
    /// a router and settled (acked or terminated): nothing pending, nothing awaiting an ack.
    pub async fn wait_settled(&self, deadline: Duration) -> consumer::Info {
        eventually(deadline, "every call settled by the router", || async {
            let stream = self.js.get_stream(CALLS).await.ok()?;
            let info = stream.consumer_info(DURABLE).await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(info)
        })
        .await
        .unwrap()
    }

    /// Asserts that tenant `t` has exactly one decision per call in `calls` and no other.
    pub async fn assert_decided_once(&self, t: &str, calls: &[String]) {
        let routes = self.routes(t).await;
        let mut per_call: HashMap<&str, usize> = HashMap::new();
        for route in &routes {
            *per_call.entry(route.data.call_id.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = per_call.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "decided more than once: {twice:?}");
        let missing: Vec<_> = calls
            .iter()
            .filter(|c| !per_call.contains_key(c.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "never decided: {} calls, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        assert_eq!(
            routes.len(),
            calls.len(),
            "decisions for calls that were never made"
        );
        assert_eq!(self.count(&format!("call.route.{t}")).await, calls.len());
    }
}

// ---------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------

/// A projection database for one router; dropping it removes the file or the database.
pub enum Db {
    Sqlite { dir: TempDir, url: String },
    Postgres(Box<Postgres>),
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("router.db").display()
        );
        Db::Sqlite { dir, url }
    }

    pub fn postgres() -> Db {
        Db::Postgres(Box::new(Postgres::start().unwrap()))
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Sqlite { url, .. } => url,
            Db::Postgres(pg) => pg.url(),
        }
    }

    /// A directory that lives as long as this database (for logs).
    pub fn dir(&self) -> PathBuf {
        match self {
            Db::Sqlite { dir, .. } => dir.path().to_path_buf(),
            Db::Postgres(_) => std::env::temp_dir(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routers
// ---------------------------------------------------------------------------------------------

/// A loopback port nothing listens on until a server binds it, held while the value lives so
/// that no parallel test is given it meanwhile (see [`ReservedPort`]).
pub fn reserve_port() -> ReservedPort {
    ReservedPort::new().unwrap()
}

/// A router running in this process, on this test's runtime.
pub struct Router {
    pub http: SocketAddr,
    /// Holds `http` for the router.
    _http_port: ReservedPort,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RouterError>>>,
}

impl Router {
    /// Starts `switchboard_router::run` without waiting for it to be ready.
    pub fn spawn(nats_url: &str, db_url: &str) -> Router {
        Router::spawn_with(nats_url, db_url, &[])
    }

    /// [`spawn`](Self::spawn) with more command-line arguments.
    pub fn spawn_with(nats_url: &str, db_url: &str, args: &[&str]) -> Router {
        let http_port = reserve_port();
        let http = http_port.addr();
        let http_arg = http.to_string();
        let mut argv = vec![
            "switchboard-router",
            "--nats-url",
            nats_url,
            "--database-url",
            db_url,
            "--http-addr",
            &http_arg,
        ];
        argv.extend_from_slice(args);
        let config = Config::parse_from(argv);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_router::run(config, async move {
            let _ = stopped.await;
        }));
        Router {
            http,
            _http_port: http_port,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a router and waits until `/readyz` says it is ready.
    pub async fn start(nats_url: &str, db_url: &str) -> Router {
        let router = Router::spawn(nats_url, db_url);
        router.wait_ready().await;
        router
    }

    pub async fn wait_ready(&self) {
        wait_status(self.http, "/readyz", 200).await;
    }

    /// Whether `run` is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Waits for `run` to return on its own.
    pub async fn wait_exit(mut self) -> Result<(), RouterError> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the router did not stop on its own")
            .unwrap()
    }

    /// Requests shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), RouterError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the router did not stop in time")
            .unwrap()
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The real `switchboard-router` binary as a child process, logging JSON to a file.
pub struct Binary {
    pub http: SocketAddr,
    /// Holds `http` for the process.
    _http_port: ReservedPort,
    child: Option<Child>,
    log: PathBuf,
}

impl Binary {
    /// Spawns the binary; its log goes to `<log_dir>/router-<port>.log`.
    pub fn spawn(nats_url: &str, db_url: &str, log_dir: &std::path::Path) -> Binary {
        Binary::spawn_with(nats_url, db_url, log_dir, &[])
    }

    /// [`spawn`](Self::spawn) with more environment variables.
    pub fn spawn_with(
        nats_url: &str,
        db_url: &str,
        log_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Binary {
        let http_port = reserve_port();
        let http = http_port.addr();
        let log = log_dir.join(format!("router-{}.log", http.port()));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard-router"))
            .envs(env.iter().copied())
            .env("NATS_URL", nats_url)
            .env("DATABASE_URL", db_url)
            .env("SWITCHBOARD_HTTP_ADDR", http.to_string())
            .env(
                "RUST_LOG",
                "info,switchboard_router=debug,switchboard_projections=debug,switchboard_bus=debug",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Binary {
            http,
            _http_port: http_port,
            child: Some(child),
            log,
        }
    }

    pub async fn wait_ready(&self) {
        wait_status(self.http, "/readyz", 200).await;
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let log = self.log.clone();
        let child = self.child.as_mut().unwrap();
        let status = eventually(deadline, "the router process to exit", || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await;
        let status = status.unwrap_or_else(|e| {
            panic!(
                "{e}\n--- router log ---\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        self.child = None;
        status
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// The whole answer (head and body) of `GET path` on `addr` (HTTP/1.0), or `None`.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    })
    .await
    .unwrap()
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
        // "HTTP/1.0 200 OK"
        response.lines().next()?.split(' ').nth(1)?.parse().ok()
    })
    .await
    .unwrap()
}

/// Waits until `GET path` answers `status`.
pub async fn wait_status(addr: SocketAddr, path: &str, status: u16) {
    eventually(
        WAIT,
        &format!("GET {path} to answer {status}"),
        || async move { (http_status(addr, path).await == Some(status)).then_some(()) },
    )
    .await
    .unwrap();
}
