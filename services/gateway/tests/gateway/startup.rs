//! Start-up while NATS is not reachable yet: the gateway waits for it (alive, not ready),
//! becomes ready once it is up, and stops promptly when asked to meanwhile.

use crate::support::*;
use async_nats::jetstream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, SETTINGS};
use switchboard_testkit::{NatsServer, eventually};

/// Given no NATS on the gateway's URL yet, when the gateway starts, then `/healthz` answers 200
/// and `/readyz` 503 "connecting to NATS" (and a webhook 503 with `Retry-After`); once a
/// nats-server starts on that URL, the gateway provisions the streams, becomes ready and
/// stores calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_nats_alive_but_not_ready_then_serves_once_it_is_up() {
    let port = reserve_port();
    let gw = Gateway::spawn(&port.nats_url(), &[]).await;
    gw.wait_status("/healthz", 200).await;
    let readyz = get(gw.addr, "/readyz").await;
    assert_eq!(readyz.status, 503);
    assert_eq!(readyz.text(), "connecting to NATS\n");
    let params = voice_params("CA0500", "+16502530000", "+14158675310");
    let early = twilio(gw.addr, &voice_path("acme"), ACME_TOKEN, &params).await;
    assert_eq!(early.status, 503, "{}", early.text());
    assert_eq!(early.header("retry-after"), Some("1"));
    assert_eq!(get(gw.addr, "/healthz").await.status, 200, "still alive");

    let server = NatsServer::start_on_port(port).unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    let nats = Nats { server, js };
    gw.wait_status("/readyz", 200).await;
    for stream in [CALLS, SETTINGS] {
        assert!(
            nats.js.get_stream(stream).await.is_ok(),
            "{stream} not provisioned"
        );
    }
    let resp = twilio(gw.addr, &voice_path("acme"), ACME_TOKEN, &params).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(nats.count("call.inbound.acme").await, 1);
    gw.stop().await.unwrap();
}

/// Given a gateway waiting for NATS, when shutdown is requested, then `run` returns `Ok`
/// promptly (not after a backoff or a connect attempt) and the port is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_waiting_for_nats_returns_promptly() {
    let unreachable = reserve_port();
    let gw = Gateway::spawn(&unreachable.nats_url(), &[]).await;
    let addr = gw.addr;
    gw.wait_status("/healthz", 200).await;
    assert_eq!(get(addr, "/readyz").await.status, 503);
    let asked = Instant::now();
    gw.stop().await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting"
    );
}

/// Given `--nats-connect-timeout-secs 1` and no NATS, when the gateway starts, then it gives
/// up after about a second with an error that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_connect_timeout() {
    let unreachable = reserve_port();
    let gw = Gateway::spawn(
        &unreachable.nats_url(),
        &["--nats-connect-timeout-secs", "1"],
    )
    .await;
    let addr = gw.addr;
    gw.wait_status("/healthz", 200).await;
    eventually(WAIT, "the gateway to give up", || async move {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await
    .unwrap();
    let error = gw.stop().await.unwrap_err().to_string();
    assert!(
        error.contains("gave up") && error.contains("--nats-connect-timeout-secs"),
        "{error}"
    );
}

/// Given the gateway process waiting for NATS (it logs each failed attempt with the reason),
/// when it receives SIGTERM, then it exits promptly with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_nats_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.log");
    let (http_port, unreachable) = (reserve_port(), reserve_port());
    let http = http_port.addr();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
            .env("NATS_URL", unreachable.nats_url())
            .env("SWITCHBOARD_HTTP_ADDR", http.to_string())
            .env("SWITCHBOARD_PUBLIC_BASE_URL", PUBLIC)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    eventually(WAIT, "GET /healthz to answer 200", || async move {
        tokio::net::TcpStream::connect(http).await.ok()?;
        (get(http, "/healthz").await.status == 200).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(get(http, "/readyz").await.status, 503);
    eventually(WAIT, "a retried attempt in the log", || async {
        read_log()
            .contains("cannot connect to NATS yet; retrying")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let asked = Instant::now();
    let exited = eventually(Duration::from_secs(10), "the gateway to exit", || {
        let exited = child.0.try_wait().unwrap();
        async move { exited }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", read_log()));
    assert!(exited.success(), "exit status {exited}\n{}", read_log());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    let logged = read_log();
    assert!(logged.contains("refused"), "the reason is logged: {logged}");
}
