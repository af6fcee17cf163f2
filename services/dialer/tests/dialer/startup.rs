//! Start-up while NATS is not reachable yet: the dialer waits for it (alive, not ready),
//! becomes ready once it is up and dials, and stops promptly when asked to meanwhile.

use crate::fake_twilio::FakeTwilio;
use crate::support::*;
use async_nats::jetstream;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, Publisher, SETTINGS};
use switchboard_contracts::{DialEventKind, FinalAction};
use switchboard_dialer::Config;
use switchboard_dialer::progress::BUCKET;
use switchboard_testkit::{NatsServer, ReservedPort, eventually};
use tempfile::TempDir;

/// A loopback port nothing listens on until a server binds it, held while the value lives so
/// that no parallel test is given it meanwhile (see [`ReservedPort`]).
fn reserve_port() -> ReservedPort {
    ReservedPort::new().unwrap()
}

/// A NATS URL on a loopback port nothing listens on, and that port, held until dropped.
fn unreachable_nats() -> (String, ReservedPort) {
    let port = reserve_port();
    (port.nats_url(), port)
}

/// `args` with the health endpoints on `http` instead of an ephemeral port.
fn on_http(args: Vec<String>, http: SocketAddr) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            if a == "127.0.0.1:0" {
                http.to_string()
            } else {
                a
            }
        })
        .collect()
}

/// The sandbox dialer's arguments: every step answered after 20 ms of ringing.
fn sandbox_args(nats_url: &str, http: SocketAddr) -> Vec<String> {
    [
        "switchboard-dialer",
        "--nats-url",
        nats_url,
        "--http-addr",
        &http.to_string(),
        "--sandbox-outcomes",
        "completed",
        "--sandbox-ring-ms",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The status and body of `GET path` on `addr`, or `None` when nothing answers.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Waits until `GET path` answers `status`; returns the body.
async fn wait_status(addr: SocketAddr, path: &str, status: u16) -> String {
    eventually(
        WAIT,
        &format!("GET {path} to answer {status}"),
        || async move {
            http_get(addr, path)
                .await
                .and_then(|(s, body)| (s == status).then_some(body))
        },
    )
    .await
    .unwrap()
}

/// A nats-server started on `port`, where a dialer is already trying to connect.
async fn nats_on_port(port: ReservedPort) -> Nats {
    let server = tokio::task::spawn_blocking(move || NatsServer::start_on_port(port).unwrap())
        .await
        .unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    let publisher = Publisher::new(js.clone());
    Nats {
        server,
        js,
        publisher,
    }
}

/// What a dialer provisions at start-up: both streams, the progress bucket, both consumers.
async fn assert_provisioned(nats: &Nats) {
    for stream in [CALLS, SETTINGS] {
        assert!(
            nats.js.get_stream(stream).await.is_ok(),
            "{stream} not provisioned"
        );
    }
    assert!(
        nats.js.get_key_value(BUCKET).await.is_ok(),
        "{BUCKET} not created"
    );
    let calls = nats.js.get_stream(CALLS).await.unwrap();
    for consumer in ["dialer-route", "dialer-status"] {
        assert!(
            calls
                .get_consumer::<jetstream::consumer::pull::Config>(consumer)
                .await
                .is_ok(),
            "{consumer} not created"
        );
    }
}

/// Given no NATS on the dialer's URL yet, when the dialer starts, then `/healthz` answers 200
/// and `/readyz` 503 "connecting to NATS"; once a nats-server starts on that URL, the dialer
/// provisions the streams, the progress bucket and its consumers, becomes ready and dials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_nats_alive_but_not_ready_then_dials_once_it_is_up() {
    let (url, port) = unreachable_nats();
    let http_port = reserve_port();
    let http = http_port.addr();
    let dialer = Dialer::start(sandbox_args(&url, http));
    wait_status(http, "/healthz", 200).await;
    assert_eq!(
        http_get(http, "/readyz").await,
        Some((503, "connecting to NATS\n".to_string()))
    );

    let nats = nats_on_port(port).await;
    assert_eq!(wait_status(http, "/readyz", 200).await, "ready\n");
    assert_provisioned(&nats).await;
    let call = "SBlate";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.wait_dial(call, 0, DialEventKind::Answered).await;
    nats.wait_settled().await;
    dialer.stop().await;
}

/// Given a dialer waiting for NATS, when shutdown is requested, then `run_with` returns `Ok`
/// promptly (not after a backoff or a connect attempt) and the health endpoints are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_waiting_for_nats_returns_promptly() {
    let (http_port, (url, _port)) = (reserve_port(), unreachable_nats());
    let http = http_port.addr();
    let dialer = Dialer::start(sandbox_args(&url, http));
    wait_status(http, "/healthz", 200).await;
    assert_eq!(
        http_get(http, "/readyz").await.map(|(status, _)| status),
        Some(503)
    );
    let asked = Instant::now();
    dialer.stop().await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    eventually(WAIT, "the health endpoints to close", || async move {
        http_get(http, "/healthz").await.is_none().then_some(())
    })
    .await
    .unwrap();
}

/// Given `--nats-connect-timeout-secs 1` and no NATS, when the dialer starts, then `run`
/// returns an error after about a second that says it gave up, and the health endpoints are
/// gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_connect_timeout() {
    let (http_port, (url, _port)) = (reserve_port(), unreachable_nats());
    let http = http_port.addr();
    let mut args = sandbox_args(&url, http);
    args.extend(["--nats-connect-timeout-secs".to_string(), "1".to_string()]);
    let config = Config::try_parse_from(args).unwrap();
    let started = Instant::now();
    let error = tokio::time::timeout(
        WAIT,
        switchboard_dialer::run(config, std::future::pending()),
    )
    .await
    .expect("still retrying")
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("gave up") && error.contains("--nats-connect-timeout-secs"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(http_get(http, "/healthz").await, None);
}

/// The real `switchboard-dialer` binary with the fake Twilio's tenant, logging to a file;
/// killed (and reaped) when the test ends, passed or not.
struct Binary {
    http: SocketAddr,
    /// Holds `http` for the process.
    _http_port: ReservedPort,
    child: Option<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl Binary {
    fn spawn(nats_url: &str, api_base: &str) -> Binary {
        Self::spawn_with(nats_url, api_base, &[])
    }

    /// [`Binary::spawn`] with more environment variables.
    fn spawn_with(nats_url: &str, api_base: &str, env: &[(&str, &str)]) -> Binary {
        let http_port = reserve_port();
        let http = http_port.addr();
        let dir = tempfile::tempdir().unwrap();
        let tenants = dir.path().join("tenants.json");
        std::fs::write(&tenants, tenants_json()).unwrap();
        let log = dir.path().join("dialer.log");
        let args = on_http(args(nats_url, api_base), http);
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard-dialer"))
            .args(&args[1..])
            .arg("--tenants-file")
            .arg(&tenants)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Binary {
            http,
            _http_port: http_port,
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").arg("-TERM").arg(pid).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit on its own.
    async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let status = eventually(deadline, "the dialer process to exit", || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- dialer log ---\n{}", self.log()));
        self.child = None;
        status
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

/// Given the dialer binary (Twilio carrier) started before NATS, when a nats-server starts on
/// its URL, then it becomes ready, rings the decision's first target at the carrier, and stops
/// with status 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_waits_for_nats_then_dials_through_the_carrier() {
    let twilio = FakeTwilio::start().await;
    let (url, port) = unreachable_nats();
    let mut dialer = Binary::spawn(&url, &twilio.base);
    wait_status(dialer.http, "/healthz", 200).await;
    assert_eq!(
        http_get(dialer.http, "/readyz").await,
        Some((503, "connecting to NATS\n".to_string()))
    );

    let nats = nats_on_port(port).await;
    wait_status(dialer.http, "/readyz", 200).await;
    let call = "CAlate";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    let numbers: Vec<Vec<String>> = twilio
        .fake
        .for_call(call)
        .into_iter()
        .map(|m| m.numbers)
        .collect();
    assert_eq!(numbers, vec![vec![USER_PHONE.to_string()]]);
    nats.wait_settled().await;
    // The number rung is logged masked by default (SWITCHBOARD_LOG_NUMBERS unset).
    eventually(WAIT, "the step in the log", || async {
        dialer
            .log()
            .contains("carrier accepted the step")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dialer.log()));
    let log = dialer.log();
    assert!(log.contains("+14*******10"), "{log}");
    assert!(!log.contains("8675310"), "{log}");

    dialer.terminate();
    let status = dialer.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}\n{}", dialer.log());
}

/// Issue 16: "let an operator choose the last-four form (`+1******1234`) for support staff".
/// Given the dialer binary started with `SWITCHBOARD_LOG_NUMBERS=last-four`, when it rings a
/// decision's first target, then its log shows that number's last four digits (and never the
/// whole number); a typo in the value stops it at start, naming the allowed values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_can_log_numbers_with_their_last_four_digits() {
    let twilio = FakeTwilio::start().await;
    let nats = Nats::start().await;
    let mut dialer = Binary::spawn_with(
        &nats.url(),
        &twilio.base,
        &[("SWITCHBOARD_LOG_NUMBERS", "last-four")],
    );
    wait_status(dialer.http, "/readyz", 200).await;
    let call = "CAlastfour";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    // USER_PHONE is +14158675310.
    eventually(WAIT, "the step in the log", || async {
        dialer
            .log()
            .contains("carrier accepted the step")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dialer.log()));
    let log = dialer.log();
    assert!(log.contains("+1******5310"), "{log}");
    assert!(log.contains("\"numbers\":\"last-four\""), "{log}");
    assert!(
        !log.contains("+14*******10") && !log.contains("4158675310"),
        "{log}"
    );
    dialer.terminate();
    let status = dialer.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}\n{}", dialer.log());

    let mut typo = Binary::spawn_with(
        &nats.url(),
        &twilio.base,
        &[("SWITCHBOARD_LOG_NUMBERS", "last4")],
    );
    let status = typo.wait_exit(WAIT).await;
    assert!(!status.success(), "{}", typo.log());
    let log = typo.log();
    assert!(
        log.contains("SWITCHBOARD_LOG_NUMBERS=\"last4\"")
            && log.contains("masked")
            && log.contains("last-four"),
        "{log}"
    );
}

/// Given the dialer process waiting for NATS (it logs each failed attempt with the reason),
/// when it receives SIGTERM, then it exits promptly with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_nats_exits_zero() {
    let (url, _port) = unreachable_nats();
    let mut dialer = Binary::spawn(&url, "http://127.0.0.1:9");
    wait_status(dialer.http, "/healthz", 200).await;
    assert_eq!(
        http_get(dialer.http, "/readyz")
            .await
            .map(|(status, _)| status),
        Some(503)
    );
    eventually(WAIT, "a retried attempt in the log", || async {
        dialer
            .log()
            .contains("cannot connect to NATS yet; retrying")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", dialer.log()));

    dialer.terminate();
    let asked = Instant::now();
    let status = dialer.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}\n{}", dialer.log());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert!(dialer.log().contains("refused"), "{}", dialer.log());
}
