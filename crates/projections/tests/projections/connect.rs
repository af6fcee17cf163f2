//! Connecting to the store: the pool's size, and which failures are worth retrying.

use crate::support::*;
use switchboard_projections::{OpenError, Store, StoreOptions};
use switchboard_testkit::ReservedPort;

/// A PostgreSQL URL on a loopback port nothing listens on, and that port, held until dropped
/// so that no parallel test's server is given it meanwhile.
fn closed_port_url() -> (String, ReservedPort) {
    let port = ReservedPort::new().unwrap();
    let url = format!(
        "postgres://switchboard:s3cret-pw@{}/switchboard",
        port.addr()
    );
    (url, port)
}

/// `url` with its database (the path) replaced by `database`.
fn on_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{database}")
}

#[tokio::test]
async fn the_pool_has_the_configured_size_on_postgres_and_one_connection_on_sqlite() {
    let pg = Backend::postgres();
    let store = Store::connect(pg.url(), &StoreOptions { max_connections: 3 })
        .await
        .unwrap();
    assert_eq!(store.max_connections(), Some(3));
    store.migrate().await.unwrap();
    assert_eq!(
        store
            .apply_batch(&[record(1, user("acme", "u1", 1, None))])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        Store::open(pg.url()).await.unwrap().max_connections(),
        Some(StoreOptions::DEFAULT_MAX_CONNECTIONS)
    );
    assert_eq!(StoreOptions::default().max_connections, 4);

    let sqlite = Backend::sqlite();
    let store = Store::connect(
        sqlite.url(),
        &StoreOptions {
            max_connections: 50,
        },
    )
    .await
    .unwrap();
    assert_eq!(store.max_connections(), Some(1));
    assert_eq!(
        Store::open(sqlite.url()).await.unwrap().max_connections(),
        Some(1)
    );
}

/// Nothing listening: transient, with the server's answer (refused), not the pool's timeout.
#[tokio::test]
async fn an_unreachable_server_is_transient_and_says_refused() {
    let (url, _port) = closed_port_url();
    let started = std::time::Instant::now();
    let error = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(matches!(error, OpenError::Unreachable(_)), "{error:?}");
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// What retrying cannot fix is fatal, and no reason quotes the URL's password.
#[tokio::test]
async fn a_missing_database_or_a_bad_url_is_fatal_and_keeps_the_password_out() {
    let pg = Backend::postgres();
    let missing = on_database(pg.url(), "no_such_database");
    let bad_port = "postgres://switchboard:s3cret-pw@127.0.0.1:notaport/switchboard";
    let no_driver = "mysql://switchboard:s3cret-pw@127.0.0.1:3306/switchboard";
    let no_dir = "sqlite:///no/such/dir/projection.db?mode=rwc";
    for url in [missing.as_str(), bad_port, no_driver, no_dir] {
        let error = Store::connect(url, &StoreOptions::default())
            .await
            .unwrap_err();
        assert!(!error.is_transient(), "{url}: {error}");
        assert!(matches!(error, OpenError::Fatal(_)), "{url}: {error:?}");
        assert!(!error.to_string().contains("s3cret-pw"), "{url}: {error}");
    }
}
