//! Start-up against the projection store's database: the router waits for a PostgreSQL that is
//! not listening yet (alive, not ready, `/readyz` saying so), fails at once on what retrying
//! cannot fix, stops promptly when asked to while waiting, and sizes its pool as configured.

use crate::support::*;
use clap::Parser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_contracts::Rule;
use switchboard_router::Config;
use switchboard_testkit::{Postgres, eventually};
use tokio::net::{TcpListener, TcpStream};

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const FORWARDING: &str = "+13127654321";

/// The status and body of `GET path` on `addr` (HTTP/1.0), or `None` when nothing answers.
async fn readyz(addr: SocketAddr) -> Option<(u16, String)> {
    let response = http_get(addr, "/readyz").await?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Waits until `/readyz` answers 503 with `reason`.
async fn wait_reason(addr: SocketAddr, reason: &str) {
    eventually(WAIT, &format!("/readyz to say {reason:?}"), || async move {
        (readyz(addr).await == Some((503, reason.to_string()))).then_some(())
    })
    .await
    .unwrap();
}

/// `url` (`scheme://[user[:password]@]host:port/…`) with its host and port replaced by `addr`.
fn with_addr(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{addr}/{path}")
}

/// The `host:port` of `url`.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap().to_string()
}

/// A loopback port nothing listens on, held for as long as this lives: a socket bound to it
/// and not listening, so connecting is refused and no other test can take the port (one that
/// was only bound then released was taken, once, by a parallel test's HTTP server, and the
/// router read its answer as PostgreSQL's). [`Reserved::listen`] starts listening on it.
struct Reserved {
    socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl Reserved {
    fn listen(self) -> TcpListener {
        self.socket.listen(1024).unwrap()
    }
}

/// A PostgreSQL URL on a [`Reserved`] port, and the reservation.
fn unreachable_postgres() -> (String, Reserved) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (
        format!("postgres://postgres@{addr}/postgres"),
        Reserved { socket, addr },
    )
}

/// Forwards every connection `listener` accepts to `server` (the database the router reaches
/// only through this address). Dropped with the returned task.
async fn forward(listener: TcpListener, server: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&server).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

fn start_postgres() -> Postgres {
    tokio::task::block_in_place(Postgres::start).unwrap()
}

/// Given NATS up but nothing listening on the router's PostgreSQL address, when the router
/// starts, then `/healthz` answers 200 and `/readyz` 503 "connecting to the database" for as
/// long as that lasts; once PostgreSQL listens there, the router migrates the store, becomes
/// ready and decides calls with the settings it stored there. (The router reaches PostgreSQL
/// through a forwarder on an address of its own, which starts listening only after
/// PostgreSQL is up: the test's private server picks its own port.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_postgres_then_becomes_ready_and_decides() {
    let nats = Nats::start().await;
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    // With DATABASE_URL set, the test's database (its name is made up when it is created) has
    // to exist first; the router still finds nothing listening on its address until later.
    let external = std::env::var("DATABASE_URL").is_ok_and(|url| !url.is_empty());
    let early = external.then(start_postgres);
    let (mut url, reserved) = unreachable_postgres();
    let addr = reserved.addr;
    if let Some(pg) = &early {
        url = with_addr(pg.url(), addr);
    }
    let router = Router::spawn(&nats.url(), &url);
    wait_status(router.http, "/healthz", 200).await;
    wait_reason(router.http, "connecting to the database\n").await;
    assert!(router.is_running());

    let pg = match early {
        Some(pg) => pg,
        None => start_postgres(),
    };
    assert_eq!(with_addr(pg.url(), addr), url);
    // Still waiting: nothing answers on its address yet.
    assert_eq!(
        readyz(router.http).await,
        Some((503, "connecting to the database\n".into()))
    );
    let forwarder = forward(reserved.listen(), host_port(pg.url())).await;
    router.wait_ready().await;
    assert_eq!(
        pg.psql("select settings_seq from projection_position where id = 1")
            .unwrap()
            .trim(),
        "1"
    );
    nats.call(call(T, "after-the-wait", DIALED, CALLER)).await;
    assert_eq!(
        nats.route(T, "after-the-wait").await.target,
        Some(target(FORWARDING, Rule::ForwardingNumber, None))
    );
    router.stop().await.unwrap();
    forwarder.abort();
}

/// Given a router waiting for its database, when shutdown is requested, then `run` returns `Ok`
/// promptly and the health endpoints are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_waiting_for_the_database_returns_promptly() {
    let nats = Nats::start().await;
    let (url, _reserved) = unreachable_postgres();
    let router = Router::spawn(&nats.url(), &url);
    let http = router.http;
    wait_reason(http, "connecting to the database\n").await;
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

/// Given `--database-connect-timeout-secs 1` and nothing listening on the database's address,
/// when the router starts, then `run` returns an error after about a second that says it gave
/// up, and why the last attempt failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_database_connect_timeout() {
    let nats = Nats::start().await;
    let (url, _reserved) = unreachable_postgres();
    let router = Router::spawn_with(&nats.url(), &url, &["--database-connect-timeout-secs", "1"]);
    let started = Instant::now();
    let error = router.wait_exit().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains("gave up") && error.contains("--database-connect-timeout-secs"),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
}

/// Given a PostgreSQL role whose password is not the one in the URL, when the router process
/// starts, then it exits with status 1 within seconds (no retrying), the error says the server
/// refused the password, and the password appears nowhere in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_at_once() {
    let nats = Nats::start().await;
    let pg = start_postgres();
    let url = match pg.data_dir() {
        // A private server (trust authentication): a role that must give its password.
        Some(data) => {
            pg.psql("CREATE ROLE switchboard LOGIN PASSWORD 'the-right-one'")
                .unwrap();
            let hba = data.join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).unwrap();
            std::fs::write(
                &hba,
                format!("host all switchboard 127.0.0.1/32 scram-sha-256\n{rules}"),
            )
            .unwrap();
            pg.psql("select pg_reload_conf()").unwrap();
            format!(
                "postgres://switchboard:not-the-password@{}/{}",
                host_port(pg.url()),
                pg.database()
            )
        }
        // DATABASE_URL's server: a role that does not exist.
        None => format!(
            "postgres://no_such_role:not-the-password@{}/{}",
            host_port(pg.url()),
            pg.database()
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut router = Binary::spawn(&nats.url(), &url, dir.path());
    let started = Instant::now();
    let status = router.wait_exit(WAIT).await;
    let log = router.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}\n{log}",
        started.elapsed()
    );
    assert!(log.contains("retrying cannot fix this"), "{log}");
    assert!(
        log.contains("password authentication failed") || log.contains("does not exist"),
        "{log}"
    );
    assert!(!log.contains("not-the-password"), "{log}");
    assert!(
        !log.contains("cannot connect to the projection store yet"),
        "it retried:\n{log}"
    );
}

/// Given a database URL that does not parse, or names no supported database, when the router
/// starts, then `run` fails at once, and the error does not quote the URL (it may hold a
/// password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_does_not_parse_fails_at_once_without_quoting_it() {
    let nats = Nats::start().await;
    for url in [
        "postgres://switchboard:s3cret-pw@127.0.0.1:notaport/switchboard",
        "mysql://switchboard:s3cret-pw@127.0.0.1:3306/switchboard",
    ] {
        let router = Router::spawn(&nats.url(), url);
        let error = router.wait_exit().await.unwrap_err().to_string();
        assert!(error.contains("retrying cannot fix this"), "{url}: {error}");
        assert!(!error.contains("s3cret-pw"), "{url}: {error}");
    }
}

/// `--database-max-connections` is 1 to 100: another value is a start-up error naming the
/// flag and the range (the environment variable's too, for the process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_size_must_be_between_1_and_100() {
    let parse = |value: &str| {
        Config::try_parse_from([
            "switchboard-router".to_string(),
            format!("--database-max-connections={value}"),
        ])
    };
    for bad in ["0", "101", "-1", "four"] {
        let error = parse(bad).unwrap_err().to_string();
        assert!(
            error.contains("--database-max-connections"),
            "{bad}: {error}"
        );
    }
    assert!(parse("0").unwrap_err().to_string().contains("1..=100"));
    assert_eq!(parse("1").unwrap().database_max_connections, 1);
    assert_eq!(parse("100").unwrap().database_max_connections, 100);
    let default = Config::try_parse_from(["switchboard-router"]).unwrap();
    assert_eq!(default.database_max_connections, 4);
    assert_eq!(default.database_connect_timeout_secs, 0);

    let dir = tempfile::tempdir().unwrap();
    let mut router = Binary::spawn_with(
        "nats://127.0.0.1:1",
        "sqlite::memory:",
        dir.path(),
        &[("SWITCHBOARD_DATABASE_MAX_CONNECTIONS", "0")],
    );
    let status = router.wait_exit(WAIT).await;
    let log = router.log();
    assert!(!status.success(), "{log}");
    assert!(log.contains("1..=100"), "{log}");
}

/// Given a PostgreSQL store, when the router process starts, then its pool allows 4
/// connections (the pool's own setting, logged once the store is open); with
/// `SWITCHBOARD_DATABASE_MAX_CONNECTIONS=2`, 2, and while it applies settings batch after batch
/// it holds no more connections than that; a SQLite store always has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_size_reaches_the_pool() {
    let nats = Nats::start().await;
    let pg = start_postgres();
    let dir = tempfile::tempdir().unwrap();
    let opened = |max: u32| format!("\"max_connections\":{max}");
    let position = || {
        pg.psql("select settings_seq from projection_position where id = 1")
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    // The router's: not this psql's, nor those of the psql runs before it (a backend may
    // outlive its client for a moment).
    let connections = || {
        pg.psql(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and application_name <> 'psql'",
        )
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap()
    };

    let router = Binary::spawn(&nats.url(), pg.url(), dir.path());
    router.wait_ready().await;
    assert!(router.log().contains(&opened(4)), "{}", router.log());
    drop(router);

    let router = Binary::spawn_with(
        &nats.url(),
        pg.url(),
        dir.path(),
        &[("SWITCHBOARD_DATABASE_MAX_CONNECTIONS", "2")],
    );
    router.wait_ready().await;
    assert!(router.log().contains(&opened(2)), "{}", router.log());
    let mut most = 0;
    for i in 0..40 {
        let forwarding = format!("+1312765{:04}", 4000 + i);
        let seq = nats.settings(number(T, DIALED, Some(&forwarding))).await;
        // One batch each: the next is published once this one is stored.
        eventually(WAIT, &format!("SETTINGS/{seq} stored"), || async {
            (position() >= seq).then_some(())
        })
        .await
        .unwrap();
        most = most.max(connections());
    }
    assert!((1..=2).contains(&most), "{most} connections open");
    drop(router);

    let db = Db::sqlite();
    let router = Binary::spawn_with(
        &nats.url(),
        db.url(),
        dir.path(),
        &[("SWITCHBOARD_DATABASE_MAX_CONNECTIONS", "50")],
    );
    router.wait_ready().await;
    assert!(router.log().contains(&opened(1)), "{}", router.log());
}
