//! Start-up while NATS is not reachable yet: the router waits for it (alive, not ready),
//! becomes ready once it is up, and stops promptly when asked to meanwhile.

use crate::support::*;
use async_nats::jetstream;
use clap::Parser;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_bus::{CALLS, Publisher, SETTINGS};
use switchboard_contracts::Rule;
use switchboard_router::Config;
use switchboard_testkit::{NatsServer, ReservedPort, eventually};

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const FORWARDING: &str = "+13127654321";

/// A NATS URL on a loopback port nothing listens on, and that port, held until dropped.
fn unreachable_nats() -> (String, ReservedPort) {
    let port = reserve_port();
    (port.nats_url(), port)
}

/// The status and body of `GET path` on `addr` (HTTP/1.0).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    })
    .await
    .unwrap()
}

/// Given no NATS on the router's URL yet, when the router starts, then `/healthz` answers 200
/// and `/readyz` 503 "connecting to NATS"; once a nats-server starts on that URL, the router
/// provisions the streams and its consumer, becomes ready and decides calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_nats_alive_but_not_ready_then_decides_once_it_is_up() {
    let (url, port) = unreachable_nats();
    let db = Db::sqlite();
    let router = Router::spawn(&url, db.url());
    wait_status(router.http, "/healthz", 200).await;
    assert_eq!(
        http_get(router.http, "/readyz").await,
        (503, "connecting to NATS\n".to_string())
    );
    assert!(router.is_running());

    let server = NatsServer::start_on_port(port).unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    let publisher = Publisher::new(js.clone());
    let nats = Nats {
        server,
        js,
        publisher,
    };
    router.wait_ready().await;
    for stream in [CALLS, SETTINGS] {
        assert!(
            nats.js.get_stream(stream).await.is_ok(),
            "{stream} not provisioned"
        );
    }
    assert_eq!(nats.consumer().await.name, DURABLE);
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    nats.call(call(T, "late", DIALED, CALLER)).await;
    assert_eq!(
        nats.route(T, "late").await.target,
        Some(target(FORWARDING, Rule::ForwardingNumber, None))
    );
    router.stop().await.unwrap();
}

/// Given a router waiting for NATS, when shutdown is requested, then `run` returns `Ok`
/// promptly (not after a backoff or a connect attempt) and the health endpoints are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_waiting_for_nats_returns_promptly() {
    let db = Db::sqlite();
    let (url, _port) = unreachable_nats();
    let router = Router::spawn(&url, db.url());
    let http = router.http;
    wait_status(http, "/healthz", 200).await;
    assert_eq!(http_status(http, "/readyz").await, Some(503));
    let asked = Instant::now();
    router.stop().await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    eventually(WAIT, "the health endpoints to close", || async move {
        http_status(http, "/healthz").await.is_none().then_some(())
    })
    .await
    .unwrap();
}

/// Given `--nats-connect-timeout-secs 1` and no NATS, when the router starts, then `run`
/// returns an error after about a second that says it gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_connect_timeout() {
    let db = Db::sqlite();
    let http_port = reserve_port();
    let http = http_port.addr().to_string();
    let (url, _port) = unreachable_nats();
    let config = Config::parse_from([
        "switchboard-router",
        "--nats-url",
        &url,
        "--nats-connect-timeout-secs",
        "1",
        "--database-url",
        db.url(),
        "--http-addr",
        &http,
    ]);
    let error = tokio::time::timeout(
        WAIT,
        switchboard_router::run(config, std::future::pending()),
    )
    .await
    .expect("still retrying")
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("gave up") && error.contains("--nats-connect-timeout-secs"),
        "{error}"
    );
}

/// Given the router process waiting for NATS (it logs each failed attempt with the reason),
/// when it receives SIGTERM, then it exits promptly with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_nats_exits_zero() {
    let db = Db::sqlite();
    let (url, _port) = unreachable_nats();
    let mut router = Binary::spawn(&url, db.url(), &db.dir());
    wait_status(router.http, "/healthz", 200).await;
    assert_eq!(http_status(router.http, "/readyz").await, Some(503));
    eventually(WAIT, "a retried attempt in the log", || async {
        router
            .log()
            .contains("cannot connect to NATS yet; retrying")
            .then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", router.log()));

    router.terminate();
    let asked = Instant::now();
    let status = router.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}\n{}", router.log());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert!(router.log().contains("refused"), "{}", router.log());
}
