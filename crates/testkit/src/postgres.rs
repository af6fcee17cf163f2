//! Throwaway PostgreSQL: a fresh database on `$DATABASE_URL`'s server, or a private
//! server in a temp dir (run as the `postgres` OS user when we are root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::{ReservedPort, TestkitError, tail};

/// A PostgreSQL database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct Postgres {
    url: String,
    database: String,
    psql: PathBuf,
    /// The private server's temp dir (removed after `cleanup` has run).
    dir: Option<TempDir>,
    /// The private server's port, held while it runs (released after `cleanup` has run).
    _port: Option<ReservedPort>,
    /// Run on Drop: drops the database, or stops the private server.
    cleanup: Command,
}

impl Postgres {
    /// A fresh database on `$DATABASE_URL`'s server if that is set, else a private server.
    pub fn start() -> Result<Self, TestkitError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Self::on_server(&url),
            _ => Self::start_local(),
        }
    }

    /// Creates a uniquely named database on the server at `admin_url` (via `psql`);
    /// it is dropped again on Drop.
    pub fn on_server(admin_url: &str) -> Result<Self, TestkitError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let psql = find_pg_binary("psql")?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let database = format!("testkit_{}_{count}_{nanos}", std::process::id());
        let admin = |sql: String| {
            let mut psql = Command::new(&psql);
            psql.arg(admin_url)
                .args(["-v", "ON_ERROR_STOP=1", "-qc", &sql]);
            psql
        };
        run(&mut admin(format!("CREATE DATABASE {database}")))?;
        let cleanup = admin(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        Ok(Self {
            url: with_database(admin_url, &database),
            database,
            psql,
            dir: None,
            _port: None,
            cleanup,
        })
    }

    /// Initialises and starts a private server on a free 127.0.0.1 port, with its data
    /// and socket in a temp dir; its URL is `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn start_local() -> Result<Self, TestkitError> {
        // Resolve symlinks (e.g. /usr/local/bin/initdb) to find its sibling binaries.
        let initdb = find_pg_binary("initdb")?;
        let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        let (pg_ctl, psql) = (
            initdb.with_file_name("pg_ctl"),
            initdb.with_file_name("psql"),
        );
        if let Some(missing) = [&pg_ctl, &psql].into_iter().find(|bin| !bin.is_file()) {
            let binary = missing.display().to_string();
            return Err(TestkitError::PostgresMissing { binary });
        }
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg-")
            .tempdir()
            .map_err(TestkitError::io("creating a temp dir for PostgreSQL"))?;
        // initdb refuses to run as root: hand the dir to the `postgres` user and run as it.
        let as_postgres = is_root()?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()))?;
        }
        let (data, log) = (dir.path().join("data"), dir.path().join("postgres.log"));
        let pg = |bin: &Path, args: &str| {
            let mut command = pg_command(bin, as_postgres, dir.path());
            command.arg("-D").arg(&data).args(args.split(' '));
            command
        };
        run(&mut pg(
            &initdb,
            "-A trust -U postgres --no-sync --no-instructions -E UTF8 --locale=C",
        ))?;

        // PostgreSQL sets SO_REUSEADDR, so it can listen on the reserved port.
        let port = ReservedPort::new()?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            port.port(),
            dir.path().display()
        );
        run(pg(&pg_ctl, "-w -t 30 start")
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options))
        .map_err(|e| TestkitError::Start {
            what: "PostgreSQL".to_owned(),
            detail: e.to_string(),
            log_tail: tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20),
        })?;
        Ok(Self {
            url: format!("postgres://postgres@{}/postgres", port.addr()),
            database: "postgres".to_owned(),
            psql,
            cleanup: pg(&pg_ctl, "-m immediate -w stop"),
            dir: Some(dir),
            _port: Some(port),
        })
    }

    /// The connection URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name (`postgres` on a private server).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs `sql` with `psql` (unaligned, tuples only, stopping at the first error) and
    /// returns its output, e.g. `"42\n"` for `select 42`.
    pub fn psql(&self, sql: &str) -> Result<String, TestkitError> {
        run(Command::new(&self.psql)
            .arg(&self.url)
            .args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql]))
    }

    /// The private server's data dir; `None` for a database on someone else's server.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.path().join("data"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Best effort: a failure here must not hide the test's own outcome.
        let _ = run(&mut self.cleanup);
    }
}

/// `bin` as a command, run as the `postgres` user via `runuser` when asked, in `cwd`.
fn pg_command(bin: &Path, as_postgres: bool, cwd: &Path) -> Command {
    let mut command = if as_postgres {
        let mut runuser = Command::new("runuser");
        runuser.args(["-u", "postgres", "--"]).arg(bin);
        runuser
    } else {
        Command::new(bin)
    };
    command.current_dir(cwd);
    command
}

/// Runs `command` to completion and returns its stdout; an error carries its status and output.
fn run(command: &mut Command) -> Result<String, TestkitError> {
    let out = command
        .output()
        .map_err(TestkitError::io(format!("running {command:?}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(TestkitError::Command {
        command: format!("{command:?}"),
        output: format!(
            "{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

fn is_root() -> Result<bool, TestkitError> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(TestkitError::io("running `id -u`"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `name` from the first `PATH` dir that has it, else from the newest `/usr/lib/postgresql/*/bin`.
fn find_pg_binary(name: &str) -> Result<PathBuf, TestkitError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).map(|dir| dir.join(name));
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry
                .file_name()
                .to_string_lossy()
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some((major, entry.path().join("bin").join(name)))
        })
        .collect();
    versioned.sort();
    on_path
        .chain(versioned.into_iter().rev().map(|(_, path)| path))
        .find(|path| path.is_file())
        .ok_or_else(|| TestkitError::PostgresMissing {
            binary: name.to_owned(),
        })
}

/// `url` with its database (path) replaced by `database`, keeping any `?query`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}/{database}{query}", &base[..path])
}
