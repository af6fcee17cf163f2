//! The gateway's configuration: CLI flags with environment fallbacks.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use switchboard_bus::{NatsArgs, StreamArgs};

/// How the gateway answers Twilio's voice webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerMode {
    /// Answer at once with ringback; the dialer acts on the decision through the carrier's
    /// REST API.
    Async,
    /// Wait for this call's `call.route` (up to `--sync-deadline-ms`) and answer with the
    /// `<Dial>` directly; the async answer at the deadline.
    Sync,
}

/// `switchboard-gateway` — where calls enter: carrier webhooks and CRM requests become
/// `call.inbound` events.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "switchboard-gateway", version, about)]
pub struct Config {
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream provisioning (the gateway ensures CALLS and SETTINGS exist, like every service).
    #[command(flatten)]
    pub streams: StreamArgs,
    /// Address the HTTP API listens on (webhooks, API, /healthz, /readyz, /metrics).
    #[arg(long, env = "SWITCHBOARD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// The public base URL Twilio calls, scheme and host (and port) as the carrier sees them,
    /// e.g. `https://switchboard.example.com`: the ingress rewrites both, and Twilio signs the
    /// public URL. No default: a wrong value makes every signature fail.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_BASE_URL")]
    pub public_base_url: String,
    /// JSON secrets file of the tenants this gateway serves:
    /// `{"acme": {"twilio_auth_token": "...", "twilio_account_sid": "AC..."}}`.
    #[arg(long, env = "SWITCHBOARD_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
    /// The same JSON as `--tenants-file`, from the environment (a Kubernetes secret as an env
    /// var); its tenants override the file's. Never printed.
    #[arg(long, env = "SWITCHBOARD_TENANTS_JSON", hide_env_values = true)]
    pub tenants_json: Option<SecretString>,
    /// `async` (answer at once with ringback) or `sync` (wait for the decision, answer `<Dial>`).
    #[arg(long, env = "SWITCHBOARD_ANSWER_MODE", value_enum, default_value_t = AnswerMode::Async)]
    pub answer_mode: AnswerMode,
    /// Sync mode: longest wait for the decision before the async answer. At most 10 000, well
    /// under Twilio's 15-second webhook timeout.
    #[arg(long, env = "SWITCHBOARD_SYNC_DEADLINE_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub sync_deadline_ms: u64,
    /// Audio the caller hears while the call waits (`<Play loop="0">`); by default the US
    /// ringback tone the gateway serves itself at `/v1/assets/ringback.wav`.
    #[arg(long, env = "SWITCHBOARD_RINGBACK_URL")]
    pub ringback_url: Option<String>,
    /// Seconds a `<Dial>` of the sync answer rings before it gives up (Twilio `timeout`) when
    /// the decision's target carries no ring timeout of its own (decisions recorded before ring
    /// timeouts existed): the dialer's setting of the same name, for later steps (set both alike).
    // Deprecated spellings, hidden: `--dial-timeout-secs` and `SWITCHBOARD_DIAL_TIMEOUT_SECS`
    // (see `ring_timeout_default`).
    #[arg(long = "ring-timeout-secs", alias = "dial-timeout-secs",
          env = "SWITCHBOARD_RING_TIMEOUT_SECS", value_name = "SECS",
          default_value = ring_timeout_default())]
    pub dial_timeout_secs: u32,
    /// Largest accepted request body; larger ones get 413.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// How long a publish may wait for JetStream's acknowledgement before the request gets
    /// 503 (the carrier retries or fails over).
    #[arg(long, env = "SWITCHBOARD_PUBLISH_TIMEOUT_MS", default_value_t = 4_000)]
    pub publish_timeout_ms: u64,
    /// ISO 3166-1 region used to read a dialed number written without a country code.
    #[arg(long, env = "SWITCHBOARD_DEFAULT_REGION", default_value = "US")]
    pub default_region: String,
    /// The dead-man's switch: the longest a caller hears ringback with no dialer instruction
    /// (after the call is answered, and after each dial step ends) before the gateway plays the
    /// call's final action itself. Rounded up to whole 6-second ringback cycles. A tenant's
    /// `no_instruction_timeout_secs` in the tenants file overrides it.
    #[arg(long, env = "SWITCHBOARD_NO_INSTRUCTION_TIMEOUT_SECS", default_value_t = 45,
          value_parser = clap::value_parser!(u32).range(15..=300))]
    pub no_instruction_timeout_secs: u32,
    /// The dead-man's switch never overtakes a dialer whose claim of a step is younger than
    /// this (it is at the carrier): one more ringback cycle each time, up to this long. Set it
    /// to the dialer's longest carrier request with retries (33 s with the dialer's defaults).
    #[arg(long, env = "SWITCHBOARD_CLAIM_GRACE_SECS", default_value_t = 35,
          value_parser = clap::value_parser!(u32).range(1..=600))]
    pub claim_grace_secs: u32,
    /// Days a call's dial progress is kept in the `DIAL_PROGRESS` bucket, if the gateway is
    /// the first to create it (the dialer's setting of the same name).
    #[arg(long, env = "SWITCHBOARD_PROGRESS_MAX_AGE_DAYS", default_value_t = 7)]
    pub progress_max_age_days: u64,
    /// Keep the indexes in `INDEX` (a call found by id without scanning CALLS, a caller's
    /// contacts as of a decision without reading every contact). Every instance shares the
    /// work; `false` leaves it to other instances (lookups stay complete, they scan what is not
    /// yet indexed).
    #[arg(long, env = "SWITCHBOARD_CALL_INDEX", default_value_t = true,
          action = clap::ArgAction::Set, value_name = "true|false")]
    pub call_index: bool,
}

/// The deprecated environment variable of `--ring-timeout-secs`.
const LEGACY_RING_TIMEOUT_ENV: &str = "SWITCHBOARD_DIAL_TIMEOUT_SECS";

/// The default of `--ring-timeout-secs`: the deprecated `SWITCHBOARD_DIAL_TIMEOUT_SECS` when it
/// is set (validated like the flag: a bad value stops the gateway), else 20. So the old name
/// still works, below the new one and the flag.
fn ring_timeout_default() -> &'static str {
    static DEFAULT: OnceLock<String> = OnceLock::new();
    DEFAULT.get_or_init(|| {
        std::env::var(LEGACY_RING_TIMEOUT_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "20".to_string())
    })
}

impl Config {
    pub(crate) fn sync_deadline(&self) -> Duration {
        Duration::from_millis(self.sync_deadline_ms)
    }

    pub(crate) fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms.max(1))
    }

    /// The public base URL without a trailing slash.
    pub(crate) fn public_base(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Config {
        let mut args = vec!["switchboard-gateway", "--public-base-url", "https://h"];
        args.extend_from_slice(extra);
        Config::try_parse_from(args).unwrap()
    }

    #[test]
    fn the_ring_timeout_has_the_dialers_name_and_keeps_the_old_one_hidden() {
        assert_eq!(parse(&[]).dial_timeout_secs, 20);
        assert_eq!(parse(&["--ring-timeout-secs", "31"]).dial_timeout_secs, 31);
        assert_eq!(parse(&["--dial-timeout-secs", "32"]).dial_timeout_secs, 32);
        assert_eq!(
            parse(&["--answer-mode", "sync"]).answer_mode,
            AnswerMode::Sync
        );
        let help = <Config as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("--ring-timeout-secs <SECS>")
                && help.contains("SWITCHBOARD_RING_TIMEOUT_SECS")
                && !help.contains("dial-timeout")
                && !help.contains("DIAL_TIMEOUT"),
            "{help}"
        );
    }
}
