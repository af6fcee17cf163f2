//! Projection apply rate on SQLite (target: ≥ 50,000 settings events/s) and hydration rate.

use crate::fixtures;
use std::time::Instant;
use switchboard_projections::{Record, Store};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectionResult {
    pub events: u64,
    pub batch: usize,
    pub apply_events_per_second: f64,
    pub load_rows_per_second: f64,
}

pub async fn run(events: u64) -> anyhow::Result<ProjectionResult> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let store = Store::open(&url).await?;
    let users = (events / 100).max(1);
    let records: Vec<Record> = fixtures::tenant_settings(users, events - users - 2)
        .enumerate()
        .map(|(i, change)| Record {
            seq: i as u64 + 1,
            change: Some(change),
        })
        .collect();
    let batch = 1000;
    let started = Instant::now();
    for chunk in records.chunks(batch) {
        store.apply_batch(chunk).await?;
    }
    let apply = records.len() as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let projection = store.load().await?;
    let load = records.len() as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(projection.applied_seq() == records.len() as u64);
    println!(
        "  applied {} events in batches of {batch}: {apply:.0} events/s; hydrated at {load:.0} rows/s",
        records.len()
    );
    Ok(ProjectionResult {
        events: records.len() as u64,
        batch,
        apply_events_per_second: apply,
        load_rows_per_second: load,
    })
}
