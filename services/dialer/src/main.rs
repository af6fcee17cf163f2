//! `switchboard-dialer`: parse the configuration, start telemetry, run until SIGTERM/SIGINT.

use clap::Parser;
use switchboard_dialer::{Config, run, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = switchboard_telemetry::init("switchboard-dialer");
    run(config, shutdown_signal()).await?;
    Ok(())
}
