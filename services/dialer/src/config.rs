//! The dialer's configuration: CLI flags with environment fallbacks.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use switchboard_bus::{NatsArgs, StreamArgs};

/// Which carrier the dialer drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CarrierKind {
    /// No carrier: every action is recorded and logged, and dial outcomes are simulated as
    /// `call.status` events (`--sandbox-outcomes`), so the whole flow runs offline.
    Sandbox,
    /// Twilio's REST API: modify the live call with TwiML.
    Twilio,
}

/// `switchboard-dialer` — turns routing decisions into what the caller hears.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "switchboard-dialer", version, about)]
pub struct Config {
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream provisioning.
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "SWITCHBOARD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// `sandbox` (no carrier, simulated outcomes) or `twilio`.
    #[arg(long, env = "SWITCHBOARD_CARRIER", value_enum, default_value_t = CarrierKind::Sandbox)]
    pub carrier: CarrierKind,
    /// Base URL of Twilio's REST API (a fake in tests).
    #[arg(
        long,
        env = "SWITCHBOARD_TWILIO_API_BASE",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_base: String,
    /// The gateway's public base URL, as Twilio sees it: the `<Dial action>` of each step is
    /// `<base>/v1/tenants/<tenant>/twilio/dial-status?step=<n>`. Required with `--carrier twilio`.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// JSON secrets file of the tenants, the gateway's format:
    /// `{"acme": {"twilio_auth_token": "...", "twilio_account_sid": "AC..."}}` (the account SID is
    /// required for the dialer).
    #[arg(long, env = "SWITCHBOARD_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
    /// The same JSON from the environment; its tenants override the file's. Never printed.
    #[arg(long, env = "SWITCHBOARD_TENANTS_JSON", hide_env_values = true)]
    pub tenants_json: Option<SecretString>,
    /// Seconds each step rings before it gives up (`<Dial timeout>`).
    #[arg(long, env = "SWITCHBOARD_RING_TIMEOUT_SECS", default_value_t = 20)]
    pub ring_timeout_secs: u32,
    /// How the gateway answers calls: the gateway's `--answer-mode`, given to both alike.
    /// `async`: the dialer rings every step; `sync`: the gateway answered with step 0's
    /// `<Dial>` (or the final action) itself, so the dialer records step 0 as started without
    /// calling the carrier.
    // Deprecated spellings of `sync`, hidden, below this flag and its variable:
    // `--gateway-sync-mode` and `SWITCHBOARD_GATEWAY_SYNC_MODE=true` (see `answer_mode_default`).
    #[arg(long = "answer-mode", env = "SWITCHBOARD_ANSWER_MODE", value_name = "MODE",
          action = clap::ArgAction::Set,
          value_parser = clap::builder::TypedValueParser::map(
              clap::builder::PossibleValuesParser::new(["async", "sync"]),
              |mode: String| mode == "sync"),
          default_value = answer_mode_default(),
          default_value_if("legacy_gateway_sync_mode", "true", Some("sync")))]
    pub gateway_sync_mode: bool,
    /// Deprecated: `--answer-mode sync`.
    #[arg(long = "gateway-sync-mode", hide = true)]
    pub legacy_gateway_sync_mode: bool,
    /// Timeout of one carrier request.
    #[arg(long, env = "SWITCHBOARD_CARRIER_TIMEOUT_MS", default_value_t = 5_000)]
    pub carrier_timeout_ms: u64,
    /// Attempts per carrier request on 5xx, 429 and timeouts (then the step fails).
    #[arg(long, env = "SWITCHBOARD_CARRIER_MAX_ATTEMPTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub carrier_max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[arg(long, env = "SWITCHBOARD_CARRIER_BACKOFF_MS", default_value_t = 250)]
    pub carrier_backoff_ms: u64,
    /// Longest retry delay.
    #[arg(
        long,
        env = "SWITCHBOARD_CARRIER_BACKOFF_MAX_MS",
        default_value_t = 2_000
    )]
    pub carrier_backoff_max_ms: u64,
    /// Sandbox: the simulated outcome of each step, comma-separated (`completed`, `busy`,
    /// `no_answer`, `failed`, `canceled`); the last one repeats. Default: nobody answers, so a
    /// demo walks the whole chain to the final action.
    #[arg(
        long,
        env = "SWITCHBOARD_SANDBOX_OUTCOMES",
        default_value = "no_answer",
        value_delimiter = ','
    )]
    pub sandbox_outcomes: Vec<String>,
    /// Sandbox: how long a simulated step rings before its outcome is published.
    #[arg(long, env = "SWITCHBOARD_SANDBOX_RING_MS", default_value_t = 1_000)]
    pub sandbox_ring_ms: u64,
    /// Days a call's dial progress is kept in the `DIAL_PROGRESS` bucket.
    #[arg(long, env = "SWITCHBOARD_PROGRESS_MAX_AGE_DAYS", default_value_t = 7)]
    pub progress_max_age_days: u64,
    /// Deliveries handled concurrently per consumer by this instance.
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// `ack_wait` of the dialer's consumers: a delivery held by a dialer that died goes to
    /// another instance (or the restarted one) this long after its last heartbeat, which bounds
    /// how long a chain waits after a crash. Shared by every instance (the last to start sets
    /// it). Heartbeats go out every third of it.
    #[arg(long, env = "SWITCHBOARD_ACK_WAIT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(300..=300_000))]
    pub ack_wait_ms: u64,
}

/// The deprecated environment variable of `--answer-mode sync`.
const LEGACY_ANSWER_MODE_ENV: &str = "SWITCHBOARD_GATEWAY_SYNC_MODE";

/// The default of `--answer-mode`: `sync` when the deprecated `SWITCHBOARD_GATEWAY_SYNC_MODE`
/// is true (`true`, `1`, `yes`, `on`), `async` when it is false or unset; any other value is
/// handed to the flag's parser, which stops the dialer with an error naming it.
fn answer_mode_default() -> &'static str {
    static DEFAULT: OnceLock<String> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        let legacy = std::env::var(LEGACY_ANSWER_MODE_ENV).unwrap_or_default();
        match legacy.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => "sync".to_string(),
            "false" | "0" | "no" | "off" | "" => "async".to_string(),
            _ => legacy,
        }
    })
}

impl Config {
    pub(crate) fn carrier_timeout(&self) -> Duration {
        Duration::from_millis(self.carrier_timeout_ms.max(1))
    }

    /// The longest one carrier request can take with every retry: a step claimed longer ago
    /// than this by a delivery that did not finish was abandoned (the dialer died).
    pub(crate) fn claim_stale_after(&self) -> Duration {
        let attempts = u64::from(self.carrier_max_attempts);
        Duration::from_millis(
            attempts * self.carrier_timeout_ms + attempts * self.carrier_backoff_max_ms,
        ) + Duration::from_secs(5)
    }

    pub(crate) fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms)
    }

    pub(crate) fn progress_max_age(&self) -> Duration {
        Duration::from_secs(self.progress_max_age_days.max(1) * 24 * 3600)
    }
}
