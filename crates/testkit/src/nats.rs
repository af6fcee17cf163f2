//! nats-server processes: one restartable JetStream server, or a JetStream cluster on loopback.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{ReservedPort, TestkitError, tail, wait_for};

/// How long a server may take to become ready (and, in a cluster, to see a meta leader).
const START_DEADLINE: Duration = Duration::from_secs(10);
/// The system nats-server's port: tests must never talk to it.
const SYSTEM_PORT: u16 = 4222;
const LISTENING: &str = "Listening for client connections on 127.0.0.1:";
const READY: &str = "Server is ready";
/// In both "JetStream cluster new metadata leader: n3/c" and "Self is new JetStream cluster metadata leader".
const META_LEADER: &str = "metadata leader";

/// The nats-server to use: `$SWITCHBOARD_NATS_SERVER`, else `<workspace>/.tools/bin/nats-server`
/// (never one on `PATH`), checked to be at least version 2.10.
pub fn nats_server_binary() -> Result<PathBuf, TestkitError> {
    let path = match std::env::var_os("SWITCHBOARD_NATS_SERVER") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let workspace = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
            workspace.join(".tools/bin/nats-server")
        }
    };
    check_version(&path)?;
    Ok(path)
}

/// Fails unless `path` runs and reports a version >= 2.10 ("nats-server: v2.12.8").
fn check_version(path: &Path) -> Result<(), TestkitError> {
    let missing = |reason: String| TestkitError::NatsServerMissing {
        path: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(missing("no such file".to_owned()));
    }
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| missing(e.to_string()))?;
    if !out.status.success() {
        return Err(missing(format!("`--version` exited with {}", out.status)));
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let numbers: Vec<u32> = version
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    match numbers.as_slice() {
        [major, minor, ..] if (*major, *minor) >= (2, 10) => Ok(()),
        _ => Err(TestkitError::NatsServerTooOld {
            path: path.to_owned(),
            version,
        }),
    }
}

/// A real nats-server with JetStream on 127.0.0.1, its store and log in a temp dir.
///
/// It keeps its port and store dir across [`restart`](Self::restart), so JetStream data
/// survives. Dropping it kills the process and removes the temp dir.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    dir: TempDir,
    name: String,
    /// 0 until the first start has read the port the server chose.
    port: u16,
    /// The ports it was given (client, and route in a cluster), held while it lives so that
    /// no other test is given them between restarts.
    reserved: Vec<ReservedPort>,
    cluster_args: Vec<String>,
    child: Option<Child>,
    /// Length of the log before the current run started: readiness is read after it.
    log_offset: usize,
}

impl NatsServer {
    /// Starts a single server on a random port, using [`nats_server_binary`].
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with_binary(nats_server_binary()?)
    }

    /// Starts a single server on the reserved `port` (a service may already be trying to
    /// connect there), using [`nats_server_binary`]; the server holds the reservation.
    pub fn start_on_port(port: ReservedPort) -> Result<Self, TestkitError> {
        let binary = nats_server_binary()?;
        let mut server = Self::new(binary, "testkit", port.port(), Vec::new())?;
        server.reserved.push(port);
        server.spawn()?;
        Ok(server)
    }

    /// Starts a single server from an explicit binary (checked to be >= 2.10).
    pub fn start_with_binary(binary: impl Into<PathBuf>) -> Result<Self, TestkitError> {
        let binary = binary.into();
        check_version(&binary)?;
        let mut server = Self::new(binary, "testkit", 0, Vec::new())?;
        server.spawn()?;
        Ok(server)
    }

    /// A server that is not running yet.
    fn new(
        binary: PathBuf,
        name: &str,
        port: u16,
        cluster_args: Vec<String>,
    ) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-nats-")
            .tempdir()
            .map_err(TestkitError::io("creating a temp dir for nats-server"))?;
        Ok(Self {
            binary,
            dir,
            name: name.to_owned(),
            port,
            reserved: Vec::new(),
            cluster_args,
            child: None,
            log_offset: 0,
        })
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store dir (`-sd`), inside the temp dir.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The whole server log (all runs), for diagnostics.
    pub fn log(&self) -> String {
        read_log(&self.log_path(), 0)
    }

    /// The process id while it runs (benchmarks read its CPU time from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL and reaps it; a no-op when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Either may fail only because the process already exited: nothing left to do then.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit (SIGKILL after 10s).
    pub fn stop_graceful(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        let exited = wait_for(START_DEADLINE, "nats-server to exit on SIGTERM", || {
            child.try_wait().ok().flatten()
        });
        if exited.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status.map_err(TestkitError::io("running `kill -TERM`"))?;
        exited.map(|_| ())
    }

    /// Kills the process if it runs, then starts it again on the same port and store dir
    /// and waits until it is ready.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill();
        self.spawn()
    }

    /// Connects an async-nats client to this server.
    pub async fn client(&self) -> Result<async_nats::Client, TestkitError> {
        connect(vec![self.url()]).await
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("nats.stderr")
    }

    /// Starts the process and waits until it is ready.
    fn spawn(&mut self) -> Result<(), TestkitError> {
        self.spawn_process()?;
        self.wait_ready()
    }

    /// Starts the process without waiting for it.
    fn spawn_process(&mut self) -> Result<(), TestkitError> {
        let log_path = self.log_path();
        self.log_offset = fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
        let stderr =
            File::create(self.stderr_path()).map_err(TestkitError::io("creating nats.stderr"))?;
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port, "-n", &self.name])
            .arg("-sd")
            .arg(self.store_dir())
            .arg("-l")
            .arg(&log_path)
            .args(&self.cluster_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(TestkitError::io(format!(
                "spawning {}",
                self.binary.display()
            )))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls this run's log until the server listens and is ready, and in a cluster
    /// also knows the JetStream meta leader. Kills the process on failure.
    fn wait_ready(&mut self) -> Result<(), TestkitError> {
        let (log_path, offset) = (self.log_path(), self.log_offset);
        let clustered = !self.cluster_args.is_empty();
        let child = &mut self.child;
        let mut exited: Option<ExitStatus> = None;
        let outcome = wait_for(START_DEADLINE, "nats-server to be ready", || {
            if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                exited = Some(status);
                return Some(None);
            }
            let log = read_log(&log_path, offset);
            let port = log
                .lines()
                .find_map(|line| line.split_once(LISTENING)?.1.trim().parse::<u16>().ok())?;
            let ready = log.contains(READY) && (!clustered || log.contains(META_LEADER));
            ready.then_some(Some(port))
        });
        let detail = match outcome {
            Ok(Some(port)) if port != SYSTEM_PORT => {
                self.port = port;
                return Ok(());
            }
            Ok(Some(port)) => format!("it listens on {port}, the system server's port"),
            Ok(None) => format!(
                "the process exited with {}",
                exited.map_or_else(String::new, |s| s.to_string())
            ),
            Err(_) => format!("not ready within {START_DEADLINE:?}"),
        };
        self.kill();
        let output = read_log(&log_path, offset) + &read_log(&self.stderr_path(), 0);
        Err(TestkitError::Start {
            what: format!("nats-server {} ({})", self.name, self.binary.display()),
            detail,
            log_tail: tail(&output, 20),
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JetStream cluster of real nats-servers on loopback, named `n1`, `n2`, ...
///
/// Nodes keep their client/route ports and store dirs across restarts. Dropping the
/// cluster kills every node and removes their temp dirs.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until each is ready and sees a JetStream meta leader.
    ///
    /// Starts a fresh cluster once more if the first does not get there: in a fresh-clone CI
    /// run (`2fef483`, every test binary running beside it on 2 cores) one node of three
    /// never logged a metadata leader within [`START_DEADLINE`] although its routes were up and
    /// the other two had elected one. The cause was not found; the failure is printed, so a
    /// run shows how often the second start is needed.
    pub fn start(size: usize) -> Result<Self, TestkitError> {
        let binary = nats_server_binary()?;
        Self::try_start(&binary, size).or_else(|first| {
            eprintln!(
                "testkit: a {size}-node cluster did not start ({first}); starting a fresh one"
            );
            Self::try_start(&binary, size)
        })
    }

    fn try_start(binary: &Path, size: usize) -> Result<Self, TestkitError> {
        let client_ports = ReservedPort::many(size)?;
        let route_ports = ReservedPort::many(size)?;
        let route_urls: Vec<String> = route_ports.iter().map(ReservedPort::nats_url).collect();
        let mut nodes = Vec::with_capacity(size);
        for (i, (client_port, route_port)) in client_ports.into_iter().zip(route_ports).enumerate()
        {
            let route_url = route_port.nats_url();
            let routes: Vec<String> = route_urls
                .iter()
                .filter(|url| **url != route_url)
                .cloned()
                .collect();
            let args = vec![
                "--cluster_name".to_owned(),
                "switchboard-test".to_owned(),
                "--cluster".to_owned(),
                route_url,
                "--routes".to_owned(),
                routes.join(","),
            ];
            let mut node = NatsServer::new(
                binary.to_owned(),
                &format!("n{}", i + 1),
                client_port.port(),
                args,
            )?;
            node.reserved = vec![client_port, route_port];
            nodes.push(node);
        }
        // All must run before any can see a meta leader.
        for node in &mut nodes {
            node.spawn_process()?;
        }
        for node in &mut nodes {
            node.wait_ready()?;
        }
        Ok(Self { nodes })
    }

    /// The nodes, in order `n1`, `n2`, ...
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// All client URLs, comma-joined (`nats://127.0.0.1:P1,nats://127.0.0.1:P2,...`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILLs node `i` (0-based).
    pub fn kill(&mut self, i: usize) -> Result<(), TestkitError> {
        self.node_mut(i)?.kill();
        Ok(())
    }

    /// Restarts node `i` (0-based) on its ports and store dir, waiting until it is ready
    /// and sees the meta leader.
    pub fn restart(&mut self, i: usize) -> Result<(), TestkitError> {
        self.node_mut(i)?.restart()
    }

    fn node_mut(&mut self, i: usize) -> Result<&mut NatsServer, TestkitError> {
        self.nodes.get_mut(i).ok_or(TestkitError::NoSuchNode(i))
    }

    /// Connects an async-nats client that knows every node.
    pub async fn client(&self) -> Result<async_nats::Client, TestkitError> {
        connect(self.nodes.iter().map(NatsServer::url).collect()).await
    }
}

async fn connect(urls: Vec<String>) -> Result<async_nats::Client, TestkitError> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(urls.as_slice())
        .await
        .map_err(|e| TestkitError::Connect {
            url: urls.join(","),
            detail: e.to_string(),
        })
}

/// The file's text from byte `offset` on ("" if it does not exist yet).
fn read_log(path: &Path, offset: usize) -> String {
    let bytes = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset..).unwrap_or_default()).into_owned()
}
