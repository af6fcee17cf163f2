//! `switchboard-dialer`: parse the configuration, start telemetry, run until SIGTERM/SIGINT.

use clap::Parser;
use switchboard_dialer::{Config, run, shutdown_signal};

/// mimalloc rather than glibc malloc: allocation was about a quarter of the router's CPU per
/// decision (docs/benchmarks.md); the same allocator everywhere keeps the services alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    // Also sets how phone numbers appear in logs and traces (SWITCHBOARD_LOG_NUMBERS).
    let _telemetry = switchboard_telemetry::init("switchboard-dialer")?;
    run(config, shutdown_signal()).await?;
    Ok(())
}
