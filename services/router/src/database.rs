//! Opening the projection store at start-up: the router waits for its database the way it
//! waits for NATS (`switchboard_bus::StartupRetry`): each attempt bounded, failures logged with
//! their reason and retried with exponential backoff, until connected, until
//! `--database-connect-timeout-secs` if set, or until shutdown is requested; `/readyz` says
//! "connecting to the database" meanwhile. What retrying cannot fix (refused credentials, a role
//! or database that does not exist, a URL that does not parse) fails at once.

use crate::RouterError;
use crate::probes::{Phase, Probes};
use futures::future::FusedFuture;
use secrecy::ExposeSecret;
use std::pin::Pin;
use std::time::Duration;
use switchboard_projections::{OpenError, ProjectionError, Store};
use tokio::time::Instant;

/// Longest one connection attempt may take (the server's answer to one connection, then the
/// pool's first one) before it counts as failed. The migrations that follow are not bounded:
/// converting a large store may take longer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after the first failed attempt; it doubles after each failure...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ... up to this (the NATS start-up's policy).
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Why one attempt failed.
enum Failed {
    Open(OpenError),
    Migrate(ProjectionError),
}

impl Failed {
    fn is_transient(&self) -> bool {
        match self {
            Failed::Open(e) => e.is_transient(),
            Failed::Migrate(e) => e.is_transient(),
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Open(e) => e.fmt(f),
            Failed::Migrate(e) => e.fmt(f),
        }
    }
}

impl From<Failed> for RouterError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Open(e) => RouterError::Database(e),
            Failed::Migrate(e) => RouterError::Projection(e),
        }
    }
}

/// Connects to the projection store and migrates it, retrying while the database is
/// unreachable; moves `probes` through "connecting to the database" and "migrating the
/// database". `Ok(None)` when `shutdown` resolved first (during an attempt or a pause alike).
pub(crate) async fn open<S: FusedFuture<Output = ()>>(
    config: &crate::Config,
    probes: &Probes,
    mut shutdown: Pin<&mut S>,
) -> Result<Option<Store>, RouterError> {
    let url = config.database_url.expose_secret();
    let options = config.store_options();
    let started = Instant::now();
    let give_up_at = config.database_connect_timeout().map(|t| started + t);
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    tracing::info!(backend, "connecting to the projection store");
    let mut delay = FIRST_DELAY;
    let mut attempts: u64 = 0;
    loop {
        attempts += 1;
        probes.set_phase(Phase::ConnectingDatabase);
        let bound = give_up_at.map_or(ATTEMPT_TIMEOUT, |at| {
            ATTEMPT_TIMEOUT.min(at.saturating_duration_since(Instant::now()))
        });
        let attempt = async {
            let store = tokio::time::timeout(bound, Store::connect(url, &options))
                .await
                .map_err(|_| {
                    Failed::Open(OpenError::Unreachable(format!(
                        "no answer within {} ms",
                        bound.as_millis()
                    )))
                })?
                .map_err(Failed::Open)?;
            probes.set_phase(Phase::Migrating);
            store.migrate().await.map_err(Failed::Migrate)?;
            Ok::<_, Failed>(store)
        };
        let outcome = tokio::select! {
            biased;
            () = shutdown.as_mut() => {
                tracing::info!(attempts, "shutdown requested while connecting to the projection store");
                return Ok(None);
            }
            outcome = attempt => outcome,
        };
        let error = match outcome {
            Ok(store) => {
                tracing::info!(
                    backend,
                    attempts,
                    max_connections = store.max_connections(),
                    "projection store connected and migrated"
                );
                return Ok(Some(store));
            }
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, "cannot open the projection store; not retrying");
                return Err(e.into());
            }
            Err(e) => e,
        };
        let pause = jittered(delay, attempts);
        if let Some(at) = give_up_at
            && Instant::now() + pause >= at
        {
            let waited = started.elapsed();
            tracing::error!(attempt = attempts, error = %error, "cannot connect to the projection store; giving up (--database-connect-timeout-secs)");
            return Err(RouterError::DatabaseGaveUp {
                attempts,
                waited_secs: waited.as_secs_f64(),
                last: error.to_string(),
            });
        }
        tracing::warn!(
            attempt = attempts,
            error = %error,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "cannot connect to the projection store yet; retrying"
        );
        tokio::select! {
            biased;
            () = shutdown.as_mut() => {
                tracing::info!(attempts, "shutdown requested while connecting to the projection store");
                return Ok(None);
            }
            () = tokio::time::sleep(pause) => {}
        }
        delay = delay.saturating_mul(2).min(MAX_DELAY);
    }
}

/// `delay` less up to a fifth, varying with the process and the attempt (so that routers
/// restarted together spread out), as the NATS start-up does.
fn jittered(delay: Duration, attempt: u64) -> Duration {
    use std::hash::BuildHasher;
    let permille = std::collections::hash_map::RandomState::new().hash_one(attempt) % 200;
    delay.saturating_sub(delay.saturating_mul(u32::try_from(permille).unwrap_or(0)) / 1000)
}
