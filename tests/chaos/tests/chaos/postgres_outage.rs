//! A PostgreSQL outage under a router whose projection store is PostgreSQL: the router reaches
//! PostgreSQL only through a TCP proxy (proxy.rs), which cuts every connection and refuses new
//! ones for the outage (as a database server that went down would), then lets them through
//! again. Other tests' databases are not touched.

use crate::fault_support::*;
use crate::figure;
use crate::proxy::{Link, Proxy};
use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{Envelope, NumberSettings};
use switchboard_testkit::{NatsServer, Postgres, eventually};
use time::OffsetDateTime;

/// Where the tenant's number forwards after the change published during the outage.
const FORWARDING_V2: &str = "+13125550142";

/// Given a router on PostgreSQL (through a proxy) deciding calls, when PostgreSQL goes away
/// (every connection cut, new ones refused) and, during the outage, the tenant's number is
/// given a new forwarding number and calls arrive, then: the router stays up and decides none
/// of those calls with the settings it can no longer bring up to date (none is decided during
/// the outage); once PostgreSQL is back, every call is decided within a bound, with the new
/// settings, and the store holds them; and, read back from CALLS, every call has exactly one
/// decision (ids matched) — none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_the_router_loses_no_call_and_decides_none_with_stale_settings() {
    let full = full_scale();
    let per_phase = (scale("SWITCHBOARD_CHAOS_CALLS", 240) / 3).max(20);
    let outage = if full {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(3)
    };
    // From PostgreSQL's return to every call decided: the follower's next retry (its backoff
    // doubles from 100 ms: at most 3.2 s into a 3 s outage, 5 s later on), then the calls'
    // next redelivery on the router's NAK schedule (1, 2, 5, 10, 30 s ... after each 0.5 s
    // freshness wait), then the work itself.
    let work = WAIT + Duration::from_millis(per_phase as u64 * 10);
    let bound = if full {
        work + Duration::from_secs(45)
    } else {
        Duration::from_secs(20)
    };

    let pg = tokio::task::block_in_place(Postgres::start).unwrap();
    let pg_link = Proxy::start(server_addr(pg.url())).await;
    let database_url = through(pg.url(), pg_link.addr);
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start().unwrap();
    let js = connect(&nats.url()).await;
    provision(&js, 1).await;
    // A call waits at most 0.5 s for the projection to apply what was acknowledged before it,
    // then it is NAKed and redelivered: the outage exercises the redelivery path.
    let mut router = Service::spawn(
        "router",
        binary("switchboard-router"),
        vec![
            ("NATS_URL".into(), nats.url()),
            ("DATABASE_URL".into(), database_url),
            ("SWITCHBOARD_FRESHNESS_TIMEOUT_MS".into(), "500".into()),
            ("RUST_LOG".into(), "info".into()),
        ],
        dir.path(),
    );
    router.wait_ready(WAIT).await;
    let started = Instant::now();
    // The projection is in PostgreSQL: the number's settings, at SETTINGS sequence 1.
    eventually(WAIT, "the projection stored in PostgreSQL", || async {
        (psql(
            &pg,
            "select settings_seq from projection_position where id = 1",
        )
        .await
            == "1")
            .then_some(())
    })
    .await
    .unwrap();

    // Before: decided with the first settings.
    let before = publish_calls(&js, "pg-before", per_phase, Duration::from_millis(500)).await;
    let mut ids = before.clone();
    wait_decided(&js, ids.len(), work).await;

    // The outage.
    let open_at_outage = pg_link.open();
    assert!(
        open_at_outage > 0,
        "the router holds no connection to PostgreSQL: the outage would test nothing"
    );
    pg_link.set_link(Link::Down);
    let down_at = Instant::now();
    wait_until(WAIT, "the router's PostgreSQL connections cut", || {
        pg_link.open() == 0
    })
    .await;
    // From JSON, so that fields the contract adds later keep their defaults.
    let change: NumberSettings = serde_json::from_value(serde_json::json!({
        "tenant_id": T,
        "version": 2,
        "number": DIALED,
        "forwarding_number": FORWARDING_V2,
    }))
    .unwrap();
    let change_seq = Publisher::new(js.clone())
        .publish(
            &Envelope::new(change, "/switchboard/chaos-test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap()
        .sequence;
    let during = publish_calls(&js, "pg-during", per_phase, outage / 2).await;
    ids.extend(during.iter().cloned());
    sleep_rest_of(outage, down_at).await;
    let decided = decisions(&js).await;
    let stale = decided_among(&during, &decided);
    assert!(
        stale.is_empty(),
        "calls decided during the outage, when the projection could not apply the change \
         acknowledged before them: {}",
        sample(&stale)
    );
    assert!(
        router.is_running(),
        "the router died during the outage:\n{}",
        router.log_tail(40)
    );
    let store_failures = router
        .log()
        .matches("failed to apply a settings batch; retrying")
        .count();
    assert!(
        store_failures > 0,
        "the router never failed to write to PostgreSQL: the outage did not reach it"
    );
    let refused = pg_link.refused();

    // PostgreSQL is back.
    pg_link.set_link(Link::Up);
    let back = Instant::now();
    let recovered = eventually(bound, "every call decided after the outage", || async {
        count(&js, &routes_subject())
            .await
            .filter(|n| *n >= ids.len())
    })
    .await;
    if recovered.is_err() {
        let position = psql(
            &pg,
            "select settings_seq from projection_position where id = 1",
        )
        .await;
        let consumer = js
            .get_stream("CALLS")
            .await
            .unwrap()
            .consumer_info("router")
            .await
            .unwrap();
        let log = router.log();
        let log: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("call not decided"))
            .collect();
        panic!(
            "{} of {} calls decided {bound:?} after PostgreSQL came back; the store is at SETTINGS \
             {position} (the change is {change_seq}); the router's consumer: awaiting ack {}, \
             redelivered {}, backoff {:?}, delivered {}; the router's log (NAKs of calls left \
             out):\n{}",
            count(&js, &routes_subject()).await.unwrap_or(0),
            ids.len(),
            consumer.num_ack_pending,
            consumer.num_redelivered,
            consumer.config.backoff,
            consumer.delivered.consumer_sequence,
            log[log.len().saturating_sub(20)..].join("\n")
        );
    }
    let decided_in = back.elapsed();
    let after = publish_calls(&js, "pg-after", per_phase, Duration::from_millis(500)).await;
    ids.extend(after.iter().cloned());
    wait_decided(&js, ids.len(), work).await;
    wait_settled(&js, "router", work).await;

    // Read back.
    let audit = Audit::read(&js).await;
    audit.assert_decided_exactly_once(&ids);
    let decided = decisions(&js).await;
    let forwards = |id: &String| {
        let route = &decided[id];
        (
            route.target.as_ref().map(|t| t.number.as_str().to_string()),
            route.settings_seq,
        )
    };
    for id in &before {
        let (number, seq) = forwards(id);
        assert_eq!(number.as_deref(), Some(FORWARDING), "{id} (seq {seq})");
        assert!(seq < change_seq, "{id} decided at SETTINGS {seq}");
    }
    for id in during.iter().chain(&after) {
        let (number, seq) = forwards(id);
        assert_eq!(
            number.as_deref(),
            Some(FORWARDING_V2),
            "{id}, acknowledged after the change, decided at SETTINGS {seq} without it"
        );
        assert!(seq >= change_seq, "{id} decided at SETTINGS {seq}");
    }
    let stored = psql(
        &pg,
        "select p.settings_seq || ' ' || n.version from projection_position p, numbers n where p.id = 1",
    )
    .await;
    assert_eq!(
        stored,
        format!("{change_seq} 2"),
        "the store after the outage (position, number's version)"
    );
    assert!(
        router.is_running(),
        "the router died:\n{}",
        router.log_tail(40)
    );
    let redelivered = metric(router.http, "switchboard_router_redeliveries_total")
        .await
        .unwrap_or(f64::NAN);
    // The outage never reaches NATS: a call is NAKed, never decided and then decided again.
    let redecided = redecisions(&[&router]).len();
    assert_eq!(redecided, 0, "calls re-decided");
    figure!(
        "postgres outage: {outage:?} (router's connections cut {}, reconnections refused {refused}, store writes failed and retried {store_failures}); \
         the number's forwarding changed during it and {} calls arrived: none decided during the outage, \
         all decided {decided_in:?} after PostgreSQL came back, with the new settings; {} calls in all, decided {}, lost 0, decided twice 0, \
         redeliveries {redelivered}, re-decisions dropped as duplicates {redecided}; total {:?}",
        pg_link.cut(),
        during.len(),
        ids.len(),
        audit.routes.len(),
        started.elapsed()
    );
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn server_addr(url: &str) -> SocketAddr {
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    host_port
        .parse()
        .unwrap_or_else(|e| panic!("{host_port} in {url}: {e}"))
}

/// `url` with its `host:port` replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let server = server_addr(url).to_string();
    assert!(url.contains(&server), "{url}");
    url.replacen(&server, &addr.to_string(), 1)
}

/// `psql` on the database directly (not through the proxy): its trimmed output.
async fn psql(pg: &Postgres, sql: &str) -> String {
    tokio::task::block_in_place(|| pg.psql(sql))
        .unwrap()
        .trim()
        .to_string()
}
