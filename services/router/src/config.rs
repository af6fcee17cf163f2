//! The router's configuration: CLI flags with environment fallbacks.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_bus::{NatsArgs, StreamArgs};
use switchboard_projections::StoreOptions;

/// `switchboard-router` — decides where every inbound call rings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "switchboard-router", version, about)]
pub struct Config {
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream provisioning.
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Projection store: a SQLite file (embedded default) or a PostgreSQL URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://switchboard-router.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: SecretString,
    /// Most connections the projection store's pool opens to PostgreSQL (1–100). A router uses
    /// one at a time (its settings follower applies batches one after another); the pool may
    /// briefly open a second while the first is handed back. Budget replicas × this. A SQLite
    /// store always uses one connection.
    #[arg(long, env = "SWITCHBOARD_DATABASE_MAX_CONNECTIONS", default_value_t = StoreOptions::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub database_max_connections: u32,
    /// How long start-up keeps retrying to connect to the database (from when NATS is
    /// connected and the streams are provisioned) before the process exits with an error, in
    /// seconds; 0 = retry forever (alive, not ready, meanwhile). Each attempt is bounded on its
    /// own; retries back off exponentially up to 5 s. Refused credentials or a URL that does
    /// not parse fail at once.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 0
    )]
    pub database_connect_timeout_secs: u64,
    /// Address of /healthz and /readyz.
    #[arg(long, env = "SWITCHBOARD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Calls held or decided concurrently by this instance (bounded memory, pipelined
    /// publishes). Calls waiting for the freshness read count too: under load that read takes
    /// milliseconds, and a window of 512 then limited throughput (by about a fifth in the
    /// benchmark). The consumer's `max_ack_pending` (10,000) is shared by all instances.
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// How long a call may wait for the projection to apply the settings acknowledged before
    /// it; then it is retried later (NAK with delay).
    #[arg(
        long,
        env = "SWITCHBOARD_FRESHNESS_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub freshness_timeout_ms: u64,
    /// How long start-up may take to catch up with SETTINGS before giving up.
    #[arg(long, env = "SWITCHBOARD_READY_TIMEOUT_SECS", default_value_t = 600)]
    pub ready_timeout_secs: u64,
}

impl Config {
    pub(crate) fn freshness_timeout(&self) -> Duration {
        Duration::from_millis(self.freshness_timeout_ms)
    }

    pub(crate) fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready_timeout_secs)
    }

    pub(crate) fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_connections: self.database_max_connections,
        }
    }

    /// `None`: retry forever.
    pub(crate) fn database_connect_timeout(&self) -> Option<Duration> {
        (self.database_connect_timeout_secs > 0)
            .then(|| Duration::from_secs(self.database_connect_timeout_secs))
    }
}
