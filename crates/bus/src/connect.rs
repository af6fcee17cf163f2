//! Connecting to NATS with the options every service shares: URL, authentication (user and
//! password, token, credentials file, TLS with optional client certificate). Secrets are held
//! in `SecretString` and never printed, not even by `--help` (`hide_env_values`).

use crate::BusError;
use async_nats::{ConnectOptions, Event};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

/// NATS connection settings, as CLI flags with environment fallbacks.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// User name for user/password authentication.
    #[arg(long = "nats-user", env = "SWITCHBOARD_NATS_USER")]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[arg(
        long = "nats-password",
        env = "SWITCHBOARD_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<SecretString>,
    /// Token authentication.
    #[arg(
        long = "nats-token",
        env = "SWITCHBOARD_NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<SecretString>,
    /// A `.creds` file (JWT + NKey seed), as issued by the NATS account operator.
    #[arg(long = "nats-creds", env = "SWITCHBOARD_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server.
    #[arg(long = "nats-tls-ca", env = "SWITCHBOARD_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `--nats-tls-key`.
    #[arg(
        long = "nats-tls-cert",
        env = "SWITCHBOARD_NATS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(
        long = "nats-tls-key",
        env = "SWITCHBOARD_NATS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    #[arg(long = "nats-tls-required", env = "SWITCHBOARD_NATS_TLS_REQUIRED")]
    pub tls_required: bool,
}

impl NatsArgs {
    /// Plain settings for `url` (tests, tools).
    pub fn for_url(url: impl Into<String>) -> Self {
        NatsArgs {
            url: url.into(),
            user: None,
            password: None,
            token: None,
            creds: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_required: false,
        }
    }

    /// Connects as `client_name`; reconnects forever afterwards, logging each disconnect.
    pub async fn connect(&self, client_name: &str) -> Result<async_nats::Client, BusError> {
        let mut options = ConnectOptions::new()
            .name(client_name)
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    Event::Connected => tracing::info!("connected to NATS"),
                    Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                    other => tracing::info!(event = %other, "NATS client event"),
                }
            });
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.expose_secret().into());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose_secret().into());
        }
        if let Some(creds) = &self.creds {
            options = options.credentials_file(creds).await.map_err(|e| {
                BusError::conflict(
                    "read the NATS credentials file",
                    format!("{}: {e}", creds.display()),
                )
            })?;
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        options = options.require_tls(self.tls_required);
        // A comma-separated list names several servers of one cluster (as `--help` says).
        let servers = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::parse::<async_nats::ServerAddr>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                BusError::unavailable(format!("parse the NATS URL {}", redact_url(&self.url)), e)
            })?;
        options.connect(servers).await.map_err(|e| {
            BusError::unavailable(format!("connect to NATS at {}", redact_url(&self.url)), e)
        })
    }
}

/// The URL(s) without user info, which may carry a password or token.
pub fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***@{}", &url[..scheme], &url[at + 1..])
            }
            _ => url.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Longest [`close`] waits for the server to confirm it has read what was sent.
const CLOSE_CONFIRM_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Closes a service's connection at shutdown without losing what was sent on it.
///
/// JetStream acknowledgements are fire-and-forget publishes, and `Client::drain` only queues
/// the drain and returns: a process that exits right after it can lose acknowledgements still
/// in the client's buffer (a call decided, yet redelivered after `ack_wait`). So: flush, then
/// one request-reply round trip (the server reads a connection's messages in order, so its
/// answer proves everything sent before arrived), then drain. The request is the CALLS stream
/// info every service already makes at start-up (`ensure_streams`), so a user restricted to
/// what the services need may make it. Bounded, so a shutdown while the server is unreachable
/// still ends; the reason is logged.
pub async fn close(client: &async_nats::Client) {
    let confirmed = tokio::time::timeout(CLOSE_CONFIRM_WITHIN, async {
        client.flush().await.map_err(|e| e.to_string())?;
        client
            .request(
                format!("$JS.API.STREAM.INFO.{}", crate::CALLS),
                bytes::Bytes::new(),
            )
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no answer within {} ms",
            CLOSE_CONFIRM_WITHIN.as_millis()
        ))
    });
    if let Err(e) = confirmed {
        tracing::warn!(error = %e, "the server did not confirm the last messages before shutdown; unacknowledged ones are redelivered after ack_wait");
    }
    if let Err(e) = client.drain().await {
        tracing::warn!(error = %e, "draining the NATS connection failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            super::redact_url("nats://u:secret@h:4222,tls://tok@h2"),
            "nats://***@h:4222,tls://***@h2"
        );
        assert_eq!(super::redact_url("nats://h:4222"), "nats://h:4222");
    }
}
