//! `/healthz` and `/readyz`.

use crate::support::*;
use sea_orm::{
    Database, DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use switchboard_contracts::Rule;
use switchboard_projections::Store;

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const USER_PHONE: &str = "+12064561234";

/// Holds SQLite's write lock on the projection file, so the router can read it but cannot
/// commit what it applies: its catch-up with SETTINGS is held back for as long as the lock.
pub async fn hold_write_lock(db: &Db) -> DatabaseTransaction {
    // The schema first (as the router would create it), then the lock.
    drop(Store::open(db.url()).await.unwrap());
    let conn = Database::connect(db.url()).await.unwrap();
    conn.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Given SETTINGS with history and a projection that cannot commit yet, when the router
/// starts, then `/healthz` answers 200 while `/readyz` answers 503 and no call is decided;
/// once the projection has caught up, `/readyz` answers 200 and the waiting call is decided
/// with the settings published before the router started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_projection_caught_up_then_200() {
    let nats = Nats::start().await;
    nats.settings(number(T, DIALED, None)).await;
    nats.settings(user(T, "u1", Some(USER_PHONE), true)).await;
    let last = nats.settings(contact(T, "c1", &[CALLER], Some("u1"))).await;
    let db = Db::sqlite();
    let lock = hold_write_lock(&db).await;

    let router = Router::spawn(&nats.url(), db.url());
    wait_status(router.http, "/healthz", 200).await;
    assert_eq!(http_status(router.http, "/readyz").await, Some(503));
    nats.call(call(T, "early", DIALED, CALLER)).await;
    assert_eq!(http_status(router.http, "/readyz").await, Some(503));
    assert_eq!(nats.count("call.route.>").await, 0, "decided before ready");

    lock.rollback().await.unwrap();
    router.wait_ready().await;
    assert_eq!(http_status(router.http, "/healthz").await, Some(200));
    let route = nats.route(T, "early").await;
    assert_eq!(
        route.target,
        Some(target(USER_PHONE, Rule::AssignedUser, Some("u1")))
    );
    assert!(route.settings_seq >= last);
    router.stop().await.unwrap();
}

/// Given a projection built from another SETTINGS stream (it is ahead of this one), when the
/// router starts on it, then it never becomes ready and `run` returns the projection's error
/// instead of deciding calls from settings that are not this stream's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_from_another_stream_stops_the_router_with_an_error() {
    let db = Db::sqlite();
    {
        let elsewhere = Nats::start().await;
        elsewhere.settings(number(T, DIALED, None)).await;
        elsewhere
            .settings(user(T, "u1", Some(USER_PHONE), true))
            .await;
        let router = Router::start(&elsewhere.url(), db.url()).await;
        router.stop().await.unwrap();
    }
    let nats = Nats::start().await;
    nats.settings(number(T, DIALED, None)).await;

    let router = Router::spawn(&nats.url(), db.url());
    let http = router.http;
    let error = router.wait_exit().await.unwrap_err();
    assert!(
        error.to_string().contains("corrupt"),
        "unexpected error: {error}"
    );
    assert_eq!(http_status(http, "/readyz").await, None, "still serving");
}
