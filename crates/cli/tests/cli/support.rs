//! Shared helpers: a real nats-server with the streams, the real router in this process, and
//! the `switchboard` binary run as a process.

use async_nats::jetstream;
use clap::Parser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use switchboard_bus::{StreamOptions, ensure_streams};
use switchboard_testkit::{NatsServer, ReservedPort, eventually};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deadline for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(20);

/// The demo tenant `make run` loads (the spec's rules), as the README's first steps use it.
pub fn demo_acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo/acme.json")
}

/// A real nats-server with CALLS and SETTINGS provisioned, and a scratch directory (the
/// binary's working directory, and where test files go).
pub struct Stack {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub dir: TempDir,
    router: Option<Router>,
}

impl Stack {
    pub async fn start() -> Stack {
        let server = NatsServer::start().unwrap();
        let js = jetstream::new(server.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        Stack {
            server,
            js,
            dir: tempfile::tempdir().unwrap(),
            router: None,
        }
    }

    /// Also runs the router (in this process), ready to decide.
    pub async fn with_router() -> Stack {
        let mut stack = Stack::start().await;
        stack.router = Some(Router::start(&stack.server.url(), stack.dir.path()).await);
        stack
    }

    /// Writes `text` to `name` in the scratch directory; returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Runs `switchboard ARGS --nats-url <this server>`.
    pub async fn run(&self, args: &[&str]) -> Out {
        let url = self.server.url();
        let mut all = args.to_vec();
        all.extend(["--nats-url", &url]);
        switchboard(self.dir.path(), &all).await
    }

    /// How many SETTINGS messages are stored on `filter`.
    pub async fn settings_count(&self, filter: &str) -> u64 {
        use futures::StreamExt;
        let stream = self.js.get_stream(switchboard_bus::SETTINGS).await.unwrap();
        let mut subjects = stream.info_with_subjects(filter).await.unwrap();
        let mut total = 0;
        while let Some(entry) = subjects.next().await {
            total += entry.unwrap().1 as u64;
        }
        total
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(router) = &mut self.router
            && let Some(stop) = router.stop.take()
        {
            let _ = stop.send(());
        }
    }
}

/// What a run of the binary printed, and its exit code.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout as exactly one JSON document (whitespace around it allowed, nothing else).
    pub fn json(&self) -> serde_json::Value {
        let mut documents =
            serde_json::Deserializer::from_str(&self.stdout).into_iter::<serde_json::Value>();
        let first = match documents.next() {
            Some(Ok(value)) => value,
            other => panic!("stdout is not a JSON document ({other:?}):\n{self}"),
        };
        match documents.next() {
            None => first,
            Some(rest) => panic!("stdout holds more than one JSON document ({rest:?}):\n{self}"),
        }
    }

    /// Fails unless the exit code is `code`.
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\n{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit {} --- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the `switchboard` binary in `dir` (so no `.run/nats-url` of a checkout is found), with
/// stdin not a terminal and no `NATS_URL` from the environment.
pub async fn switchboard(dir: &Path, args: &[&str]) -> Out {
    let out = tokio::time::timeout(
        WAIT * 2,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .current_dir(dir)
            .env_remove("NATS_URL")
            .env_remove("SWITCHBOARD_TENANTS_FILE")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("switchboard {args:?} did not exit"))
    .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The real router, in this process.
struct Router {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Holds the router's HTTP port, so that no parallel test is given it.
    _http_port: ReservedPort,
}

impl Router {
    async fn start(nats_url: &str, dir: &Path) -> Router {
        let db = format!("sqlite://{}?mode=rwc", dir.join("router.db").display());
        let http_port = ReservedPort::new().unwrap();
        let http = http_port.addr();
        let http_arg = http.to_string();
        let config = switchboard_router::Config::parse_from([
            "switchboard-router",
            "--nats-url",
            nats_url,
            "--database-url",
            &db,
            "--http-addr",
            &http_arg,
        ]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(switchboard_router::run(config, async move {
            let _ = stopped.await;
        }));
        eventually(WAIT, "the router to be ready", || ready(http))
            .await
            .unwrap();
        Router {
            stop: Some(stop),
            _http_port: http_port,
        }
    }
}

/// `GET /readyz` answers 200.
async fn ready(addr: SocketAddr) -> Option<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: router\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer);
    (answer.split_whitespace().nth(1) == Some("200")).then_some(())
}
