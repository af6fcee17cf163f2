//! Router start-up with a large projection (issue 18: "a router with 1,000,000 contacts in its
//! projection is ready (hydrated and caught up) in ≤ 10 s"). One nats-server holds the bench
//! tenant's settings (`contacts` contacts, one user per 100 contacts); a first router builds its
//! SQLite store by reading all of SETTINGS (the **cold** start: an empty store), then stops; a
//! second router on the same store starts (the **warm** start: hydrate the in-memory index from
//! SQLite, read SETTINGS' last sequence, apply what is past the store). Ready means what the
//! router's `/readyz` means: its `router` consumer on CALLS exists, which it creates only once
//! the projection has caught up (`consume_when_ready`); the bench deletes that consumer between
//! the two starts so the second one's creation is what is timed.

use crate::e2e::{encode_settings, publish_raw_all};
use crate::fixtures;
use crate::openloop::Router;
use async_nats::jetstream;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, StreamOptions, ensure_streams};
use switchboard_testkit::NatsServer;
use time::OffsetDateTime;

#[derive(Debug, Clone, serde::Serialize)]
pub struct StartupRun {
    pub contacts: u64,
    /// Settings events in SETTINGS (users, contacts, the company and its number).
    pub settings_events: u64,
    /// Seconds from start to ready with an empty store (every event read and applied).
    pub cold_seconds: f64,
    /// Seconds from start to ready with the store at SETTINGS' last sequence (hydration).
    pub warm_seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StartupResult {
    pub runs: Vec<StartupRun>,
}

pub async fn run(sizes: &[u64]) -> anyhow::Result<StartupResult> {
    let mut runs = Vec::new();
    for &contacts in sizes {
        runs.push(one(contacts).await?);
    }
    Ok(StartupResult { runs })
}

async fn one(contacts: u64) -> anyhow::Result<StartupRun> {
    let server = NatsServer::start()?;
    let js = jetstream::new(server.client().await?);
    ensure_streams(&js, &StreamOptions::default()).await?;
    let publisher = Publisher::new(js.clone());
    let now = OffsetDateTime::now_utc();
    let users = (contacts / 100).max(1);
    let published = Instant::now();
    let events = publish_raw_all(
        &publisher,
        fixtures::tenant_settings(users, contacts).map(|c| encode_settings(c, now)),
    )
    .await?;
    println!(
        "  {contacts} contacts: {events} settings events published in {:.1} s",
        published.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}/router.db?mode=rwc", dir.path().display());
    let cold = time_to_ready(&server, &js, &database).await?;
    js.delete_consumer_from_stream("router", switchboard_bus::CALLS)
        .await?;
    let warm = time_to_ready(&server, &js, &database).await?;
    println!("    ready in {cold:.2} s from an empty store, {warm:.2} s from a full one");
    Ok(StartupRun {
        contacts,
        settings_events: events,
        cold_seconds: cold,
        warm_seconds: warm,
    })
}

/// Starts a router on `database` and returns the seconds until its consumer exists; then stops
/// it.
async fn time_to_ready(
    server: &NatsServer,
    js: &jetstream::Context,
    database: &str,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let router = Router::start_on(&server.url(), database, &[])?;
    let deadline = started + Duration::from_secs(600);
    loop {
        let found = js
            .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(
                "router",
                switchboard_bus::CALLS,
            )
            .await;
        if found.is_ok() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the router was not ready within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    router.stop().await?;
    Ok(seconds)
}
