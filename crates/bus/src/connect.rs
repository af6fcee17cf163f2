//! Connecting to NATS with the options every service shares: URL, authentication (user and
//! password, token, credentials file, TLS with optional client certificate). Secrets are held
//! in `SecretString` and never printed, not even by `--help` (`hide_env_values`).
//!
//! Two ways to connect: [`NatsArgs::connect`] makes one attempt and fails at once (the CLI);
//! [`NatsArgs::connect_with_retry`] is the services' start-up, which waits for NATS instead of
//! exiting (a slow NATS start must not turn into a crash loop): each attempt bounded,
//! exponential backoff, every failure logged with its reason, until connected, until
//! `--nats-connect-timeout-secs` if set, or until shutdown is requested.
//! [`NatsArgs::connect_and_provision`] is the whole start-up of a service: that, then
//! provisioning the streams the same way.

use crate::BusError;
use async_nats::{ConnectOptions, Event};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// NATS connection settings, as CLI flags with environment fallbacks. Global: a command line
/// with subcommands (`switchboard lint --nats-url …`) takes them after the subcommand too.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long = "nats-url",
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,
    /// User name for user/password authentication.
    #[arg(long = "nats-user", global = true, env = "SWITCHBOARD_NATS_USER")]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[arg(
        long = "nats-password",
        global = true,
        env = "SWITCHBOARD_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<SecretString>,
    /// Token authentication.
    #[arg(
        long = "nats-token",
        global = true,
        env = "SWITCHBOARD_NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<SecretString>,
    /// A `.creds` file (JWT + NKey seed), as issued by the NATS account operator.
    #[arg(long = "nats-creds", global = true, env = "SWITCHBOARD_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server.
    #[arg(long = "nats-tls-ca", global = true, env = "SWITCHBOARD_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `--nats-tls-key`.
    #[arg(
        long = "nats-tls-cert",
        global = true,
        env = "SWITCHBOARD_NATS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(
        long = "nats-tls-key",
        global = true,
        env = "SWITCHBOARD_NATS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    #[arg(
        long = "nats-tls-required",
        global = true,
        env = "SWITCHBOARD_NATS_TLS_REQUIRED"
    )]
    pub tls_required: bool,
    /// Services: how long start-up keeps retrying to connect to NATS and to provision the
    /// streams before the process exits with an error, in seconds; 0 = retry forever (alive,
    /// not ready, meanwhile). Each attempt is bounded on its own; retries back off
    /// exponentially up to 5 s. The `switchboard` CLI never retries: it makes one attempt.
    #[arg(
        long = "nats-connect-timeout-secs",
        global = true,
        env = "SWITCHBOARD_NATS_CONNECT_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 0
    )]
    pub connect_timeout_secs: u64,
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
            connect_timeout_secs: 0,
        }
    }

    /// Connects as `client_name` in one attempt, failing at once when NATS is not reachable
    /// (the CLI); reconnects forever afterwards, logging each disconnect. Services start with
    /// [`connect_with_retry`](Self::connect_with_retry).
    pub async fn connect(&self, client_name: &str) -> Result<async_nats::Client, BusError> {
        let mut options = ConnectOptions::new()
            .name(client_name)
            .connection_timeout(HANDSHAKE_TIMEOUT)
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
        let servers = self.servers()?;
        options.connect(servers).await.map_err(|e| {
            BusError::unavailable(format!("connect to NATS at {}", redact_url(&self.url)), e)
        })
    }

    /// Connects as `client_name` like [`connect`](Self::connect), but waits for NATS: retries
    /// with `retry` (from [`startup_retry`](Self::startup_retry)) until connected. `Ok(None)`
    /// when `shutdown` resolved first (the service should stop cleanly, exit 0). Fails at once
    /// on a URL that does not parse or an unreadable credentials file (configuration), and on
    /// `retry`'s deadline (the reason of the last attempt in the error).
    pub async fn connect_with_retry(
        &self,
        client_name: &str,
        retry: &StartupRetry,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<async_nats::Client>, BusError> {
        self.servers()?;
        tracing::info!(url = %redact_url(&self.url), "connecting to NATS");
        retry
            .run("connect to NATS", || self.connect(client_name), shutdown)
            .await
    }

    /// A service's start-up: connects as `client_name` ([`connect_with_retry`]), hands the
    /// client to `connected` (the probes say "provisioning the streams" from then on), then
    /// provisions the streams with `options` ([`StartupRetry::ensure_streams`]); both steps are
    /// retried under one [`startup_retry`] policy, so they share one deadline. `Ok(None)` when
    /// `shutdown` resolved first. When provisioning fails or is interrupted, the connection is
    /// [`close`]d before returning.
    ///
    /// [`connect_with_retry`]: Self::connect_with_retry
    /// [`startup_retry`]: Self::startup_retry
    pub async fn connect_and_provision(
        &self,
        client_name: &str,
        options: &crate::StreamOptions,
        connected: impl FnOnce(&async_nats::Client),
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<async_nats::Client>, BusError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let retry = self.startup_retry();
        let Some(client) = self
            .connect_with_retry(client_name, &retry, shutdown.as_mut())
            .await?
        else {
            return Ok(None);
        };
        connected(&client);
        let js = async_nats::jetstream::new(client.clone());
        match retry.ensure_streams(&js, options, shutdown).await {
            Ok(Some(())) => Ok(Some(client)),
            interrupted_or_failed => {
                close(&client).await;
                interrupted_or_failed.map(|_| None)
            }
        }
    }

    /// The services' start-up retry policy: attempts bounded by what the client itself allows
    /// for every server of `--nats-url`, backoff from 100 ms doubling up to 5 s, and the
    /// deadline of `--nats-connect-timeout-secs` (counted from now) unless it is 0.
    pub fn startup_retry(&self) -> StartupRetry {
        let servers = u32::try_from(self.url.split(',').filter(|u| !u.trim().is_empty()).count())
            .unwrap_or(u32::MAX)
            .max(1);
        StartupRetry {
            attempt_timeout: HANDSHAKE_TIMEOUT
                .saturating_mul(servers)
                .saturating_add(ATTEMPT_SLACK),
            first_delay: FIRST_DELAY,
            max_delay: MAX_DELAY,
            give_up_at: (self.connect_timeout_secs > 0)
                .then(|| Instant::now() + Duration::from_secs(self.connect_timeout_secs)),
        }
    }

    /// The server addresses: a comma-separated list names several servers of one cluster (as
    /// `--help` says).
    fn servers(&self) -> Result<Vec<async_nats::ServerAddr>, BusError> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::parse::<async_nats::ServerAddr>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                BusError::unavailable(format!("parse the NATS URL {}", redact_url(&self.url)), e)
            })
    }
}

/// How long the client waits for one server's connection handshake (async-nats's default,
/// made explicit: the start-up attempt bound is derived from it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Added to a start-up connection attempt's bound for name resolution, which the client does
/// not bound itself.
const ATTEMPT_SLACK: Duration = Duration::from_secs(5);
/// Pause after the first failed start-up attempt; it doubles after each failure...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ... up to this.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Bound of one attempt at provisioning the streams: a handful of JetStream requests, each
/// already bounded by the context's request timeout (5 s by default).
const PROVISION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a service retries its start-up steps (the first connection to NATS, provisioning the
/// streams) instead of exiting: every attempt bounded by `attempt_timeout`, failures logged
/// with their reason and retried after a pause that starts at `first_delay` and doubles up to
/// `max_delay` (less up to a fifth, so that instances restarted together spread out), until
/// `give_up_at` if set. Build it with [`NatsArgs::startup_retry`]; one policy for all the
/// steps of a start-up shares one deadline.
#[derive(Debug, Clone)]
pub struct StartupRetry {
    /// Longest one attempt may take before it counts as failed.
    pub attempt_timeout: Duration,
    /// Pause after the first failure.
    pub first_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
    /// When to stop retrying and fail (`None`: never).
    pub give_up_at: Option<Instant>,
}

impl StartupRetry {
    /// Runs `attempt` until it succeeds (`Ok(Some(value))`), fails with an error that retrying
    /// cannot fix (not [`BusError::is_transient`]: returned at once), or the deadline passes
    /// (the last error, saying so). `shutdown` is watched throughout, during attempts and
    /// pauses alike: `Ok(None)` as soon as it resolves. `what` names the step in the logs
    /// ("connect to NATS").
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<T>, BusError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BusError>>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let started = Instant::now();
        let mut delay = self.first_delay;
        let mut attempts: u64 = 0;
        loop {
            attempts += 1;
            let bound = match self.give_up_at {
                Some(at) => self
                    .attempt_timeout
                    .min(at.saturating_duration_since(Instant::now())),
                None => self.attempt_timeout,
            };
            let outcome = tokio::select! {
                biased;
                () = shutdown.as_mut() => {
                    tracing::info!(attempts, "shutdown requested while trying to {what}");
                    return Ok(None);
                }
                outcome = tokio::time::timeout(bound, attempt()) => outcome,
            };
            let error = match outcome {
                Ok(Ok(value)) => {
                    if attempts > 1 {
                        tracing::info!(attempts, "{what}: done after retrying");
                    }
                    return Ok(Some(value));
                }
                Ok(Err(e)) if !e.is_transient() => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => BusError::unavailable(
                    what,
                    format!("no answer within {} ms", bound.as_millis()),
                ),
            };
            let pause = jittered(delay, attempts);
            if let Some(at) = self.give_up_at
                && Instant::now() + pause >= at
            {
                tracing::error!(attempt = attempts, error = %error, "cannot {what}; giving up (--nats-connect-timeout-secs)");
                let last = match error {
                    BusError::Unavailable { action, reason } => format!("{action}: {reason}"),
                    conflict => conflict.to_string(),
                };
                return Err(BusError::unavailable(
                    format!(
                        "{what} (gave up after {attempts} attempts in {:.1} s, --nats-connect-timeout-secs)",
                        started.elapsed().as_secs_f64()
                    ),
                    last,
                ));
            }
            tracing::warn!(
                attempt = attempts,
                error = %error,
                retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                "cannot {what} yet; retrying"
            );
            tokio::select! {
                biased;
                () = shutdown.as_mut() => {
                    tracing::info!(attempts, "shutdown requested while trying to {what}");
                    return Ok(None);
                }
                () = tokio::time::sleep(pause) => {}
            }
            delay = delay.saturating_mul(2).min(self.max_delay);
        }
    }

    /// [`ensure_streams`](crate::ensure_streams), retried like a connection while JetStream is
    /// unavailable (a cluster still electing its leader, say); a configuration conflict fails
    /// at once. `Ok(None)` when `shutdown` resolved first.
    pub async fn ensure_streams(
        &self,
        js: &async_nats::jetstream::Context,
        options: &crate::StreamOptions,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<()>, BusError> {
        let retry = StartupRetry {
            attempt_timeout: self.attempt_timeout.max(PROVISION_ATTEMPT_TIMEOUT),
            ..self.clone()
        };
        retry
            .run(
                "provision the streams",
                || crate::ensure_streams(js, options),
                shutdown,
            )
            .await
    }
}

/// `delay` less up to a fifth, varying with the process and the attempt.
fn jittered(delay: Duration, attempt: u64) -> Duration {
    use std::hash::BuildHasher;
    let permille = std::collections::hash_map::RandomState::new().hash_one(attempt) % 200;
    delay.saturating_sub(delay.saturating_mul(u32::try_from(permille).unwrap_or(0)) / 1000)
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
    use super::{NatsArgs, StartupRetry};
    use std::time::Duration;
    use tokio::time::Instant;

    /// A quick policy for tests: short attempts and pauses, giving up after `give_up`.
    fn quick(give_up: Option<Duration>) -> StartupRetry {
        StartupRetry {
            attempt_timeout: Duration::from_millis(300),
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            give_up_at: give_up.map(|d| Instant::now() + d),
        }
    }

    /// A loopback port nothing listens on until a server binds it, held while the value lives
    /// so that no parallel test is given it meanwhile.
    fn reserve_port() -> switchboard_testkit::ReservedPort {
        switchboard_testkit::ReservedPort::new().unwrap()
    }

    #[test]
    fn the_flag_sets_the_deadline_and_every_server_gets_its_handshake_time() {
        let mut args = NatsArgs::for_url("nats://a:4222, nats://b:4222,nats://c:4222");
        let retry = args.startup_retry();
        assert_eq!(retry.give_up_at, None, "0 = forever");
        assert_eq!(retry.attempt_timeout, Duration::from_secs(3 * 5 + 5));
        assert_eq!(retry.max_delay, Duration::from_secs(5));
        args.connect_timeout_secs = 30;
        let before = Instant::now();
        let at = args.startup_retry().give_up_at.unwrap();
        assert!(
            at >= before + Duration::from_secs(30)
                && at <= Instant::now() + Duration::from_secs(30)
        );
    }

    #[test]
    fn pauses_lose_at_most_a_fifth() {
        let delay = Duration::from_millis(1000);
        for attempt in 0..100 {
            let pause = super::jittered(delay, attempt);
            assert!(
                pause <= delay && pause > Duration::from_millis(800),
                "{pause:?}"
            );
        }
    }

    /// Given a server that accepts connections but never speaks, when a service connects, then
    /// every attempt ends at its bound and is retried, and the deadline ends the whole with the
    /// reason.
    #[tokio::test]
    async fn a_hanging_attempt_times_out_and_is_retried_until_the_deadline() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", silent.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let holder = tokio::spawn({
            let accepted = accepted.clone();
            async move {
                let mut held = Vec::new();
                while let Ok((stream, _)) = silent.accept().await {
                    held.push(stream);
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        let started = Instant::now();
        let error = NatsArgs::for_url(url)
            .connect_with_retry(
                "test",
                &quick(Some(Duration::from_millis(1500))),
                std::future::pending(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("gave up after"), "{error}");
        assert!(error.contains("no answer within"), "{error}");
        let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            attempts >= 2,
            "the hung attempt was not retried: {attempts}"
        );
        holder.abort();
    }

    /// Given nothing listening, when shutdown is requested while retrying, then the retry loop
    /// ends at once with `None`.
    #[tokio::test]
    async fn shutdown_ends_the_retry_loop() {
        let unreachable = reserve_port();
        let args = NatsArgs::for_url(unreachable.nats_url());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let retrying = tokio::spawn(async move {
            args.connect_with_retry("test", &quick(None), async move {
                let _ = stopped.await;
            })
            .await
        });
        stop.send(()).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(5), retrying)
            .await
            .expect("still retrying after shutdown")
            .unwrap();
        assert!(matches!(outcome, Ok(None)), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_fails_at_once() {
        let error = NatsArgs::for_url("nats://host:notaport")
            .connect_with_retry("test", &quick(None), std::future::pending())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("parse the NATS URL"), "{error}");
    }

    /// Given nothing listening on a port yet, when a nats-server starts there while the
    /// service retries, then it connects.
    #[tokio::test]
    async fn connects_once_the_server_comes_up() {
        let port = reserve_port();
        let args = NatsArgs::for_url(port.nats_url());
        let retrying = tokio::spawn(async move {
            args.connect_with_retry("test", &quick(None), std::future::pending())
                .await
        });
        let server = tokio::task::spawn_blocking(move || {
            switchboard_testkit::NatsServer::start_on_port(port).unwrap()
        })
        .await
        .unwrap();
        let client = tokio::time::timeout(Duration::from_secs(20), retrying)
            .await
            .expect("not connected in time")
            .unwrap()
            .unwrap()
            .expect("connected");
        client.flush().await.unwrap();
        drop(server);
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            super::redact_url("nats://u:secret@h:4222,tls://tok@h2"),
            "nats://***@h:4222,tls://***@h2"
        );
        assert_eq!(super::redact_url("nats://h:4222"), "nats://h:4222");
    }
}
