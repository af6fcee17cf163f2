//! The durable projection: one row per entity, written with a version-guarded upsert, and the
//! last applied SETTINGS sequence, written in the same transaction as the rows it covers.
//!
//! A row is the entity's key, its version (what the guard compares) and `data`: the event's
//! `data` as one JSON document, written by [`SettingsChange::to_data_json`] and read back by
//! [`SettingsChange::from_data_json`] — the contract's own types and validation. So a new
//! optional settings field needs nothing here: documents stored before it read as its
//! default, as events without it do.

use crate::{Migrator, Projection, ProjectionError, Record};
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Query};
use sea_orm::sqlx;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryResult,
    RuntimeErr, SqliteTransactionMode, TransactionOptions, TransactionTrait, TryGetable,
};
use sea_orm_migration::MigratorTrait;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;
use switchboard_contracts::{SettingsChange, TenantId, entity};

/// Rows per `INSERT`: 500 rows × 4 columns stays far below SQLite's and PostgreSQL's limits on
/// bound parameters.
const UPSERT_CHUNK: usize = 500;
const POSITION: &str = "projection_position";
/// The column holding an entity's settings document.
pub(crate) const DATA: &str = "data";

/// The projection store: SQLite (embedded default) or PostgreSQL (production), same schema.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// How [`Store::connect`] sets up its connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most connections the pool opens to PostgreSQL (at least 1). A SQLite store always has
    /// one connection, whatever this says.
    pub max_connections: u32,
}

impl StoreOptions {
    /// The default pool size on PostgreSQL. Its only user, the settings follower, uses one
    /// connection at a time (it loads, then applies one batch after another, each batch in one
    /// transaction); sqlx hands a released connection back to the pool in a background task,
    /// so the next statement may open a second meanwhile. 4 leaves room for that and for a
    /// connection being replaced, and 12 routers then hold at most 48 connections.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why [`Store::connect`] failed, sorted by whether waiting for the database can help. The
/// reasons never quote the database URL (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The database is not reachable or not accepting connections yet: connection refused,
    /// reset or timed out, a host name not resolved, the server starting up, shutting down or
    /// out of connections; SQLite busy. Retry.
    #[error("the projection store is not reachable: {0}")]
    Unreachable(String),
    /// Retrying cannot fix it: the server refused the credentials, the role or the database
    /// does not exist, the URL does not parse or names no supported database, TLS cannot be
    /// set up, a SQLite file cannot be opened.
    #[error("cannot open the projection store (retrying cannot fix this): {0}")]
    Fatal(String),
}

impl OpenError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, OpenError::Unreachable(_))
    }
}

impl Store {
    /// Connects and runs the migrations, with the default [`StoreOptions`]. `sqlite://path?mode=rwc`
    /// creates the file; SQLite runs with the WAL journal and `synchronous=NORMAL`.
    /// `postgres://…` for PostgreSQL. One attempt (sqlx's pool itself retries a refused
    /// connection until its 30 s acquire timeout); services start with [`connect`](Self::connect).
    pub async fn open(database_url: &str) -> Result<Store, ProjectionError> {
        let db = Database::connect(connect_options(database_url, &StoreOptions::default()))
            .await
            .map_err(ProjectionError::db("connect to the projection store"))?;
        let store = Store { db };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects once, without migrating: a service's start-up, which retries while the error
    /// [`is_transient`](OpenError::is_transient), then calls [`migrate`](Self::migrate). For
    /// PostgreSQL one connection is made on its own first, so that the answer is the server's
    /// (a refused connection at once, where sqlx's pool would retry it until its acquire timeout
    /// and report only that it timed out); then the pool opens with `options`. Not bounded in
    /// time: the caller bounds an attempt.
    pub async fn connect(database_url: &str, options: &StoreOptions) -> Result<Store, OpenError> {
        if is_postgres(database_url) {
            let probe: PgConnectOptions = database_url
                .parse()
                .map_err(|e| sort_sqlx_error(&e, true))?;
            let conn = probe
                .connect()
                .await
                .map_err(|e| sort_sqlx_error(&e, true))?;
            // Only the pool's connections are kept.
            let _ = conn.close().await;
        }
        let db = Database::connect(connect_options(database_url, options))
            .await
            .map_err(|e| sort_connect_error(&e, is_postgres(database_url)))?;
        Ok(Store { db })
    }

    /// Runs the migrations (at every start: they create what is missing). A lost connection is
    /// transient ([`ProjectionError::Database`]); anything else is
    /// [`ProjectionError::Migration`].
    pub async fn migrate(&self) -> Result<(), ProjectionError> {
        Migrator::up(&self.db, None).await.map_err(|e| match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
                ProjectionError::db("migrate the projection store")(e)
            }
            other => ProjectionError::Migration(other.to_string()),
        })
    }

    /// The most connections the pool opens, as the pool itself is configured.
    pub fn max_connections(&self) -> Option<u32> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Some(
                self.db
                    .get_postgres_connection_pool()
                    .options()
                    .get_max_connections(),
            ),
            DbBackend::Sqlite => Some(
                self.db
                    .get_sqlite_connection_pool()
                    .options()
                    .get_max_connections(),
            ),
            _ => None,
        }
    }

    /// The last applied SETTINGS stream sequence (0 when empty).
    pub async fn position(&self) -> Result<u64, ProjectionError> {
        read_position(&self.db, false).await
    }

    /// Hydrates the in-memory projection: every tenant's state, at the stored position.
    pub async fn load(&self) -> Result<Projection, ProjectionError> {
        // The position is read first: rows read afterwards are at least that new, and replaying
        // from position + 1 under the version guard converges even if a writer sharing this
        // database commits in between.
        let position = self.position().await?;
        let mut projection = Projection::new();
        // Companies first: their region is how the other entities' numbers are read.
        for kind in Kind::ALL {
            let select = Query::select().column(DATA).from(kind.table()).to_owned();
            let rows = self
                .db
                .query_all(&select)
                .await
                .map_err(ProjectionError::db("load the projection"))?;
            for row in rows {
                let _ = projection.apply_change(&kind.decode(&row)?);
            }
        }
        projection.set_applied_seq(position);
        Ok(projection)
    }

    /// Applies a batch in one transaction: records at or below the stored position are skipped
    /// (exactly once on redelivery and restart); for the others, the newest version of each
    /// entity is upserted under the version guard; then the position becomes the batch's
    /// highest sequence. Returns the position after the batch.
    pub async fn apply_batch(&self, batch: &[Record]) -> Result<u64, ProjectionError> {
        let Some(last) = batch.iter().map(|r| r.seq).max() else {
            return self.position().await;
        };
        let options = TransactionOptions {
            // Take SQLite's write lock up front, so reading the position never has to upgrade.
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = self
            .db
            .begin_with_options(options)
            .await
            .map_err(ProjectionError::db("begin a projection transaction"))?;
        // Locks the position row on PostgreSQL: writers sharing a database take turns.
        let position = read_position(&txn, true).await?;
        if last <= position {
            txn.rollback()
                .await
                .map_err(ProjectionError::db("end a projection transaction"))?;
            return Ok(position);
        }
        let fresh = batch.iter().filter(|r| r.seq > position);
        for (kind, changes) in newest_per_entity(fresh) {
            upsert(&txn, kind, &changes).await?;
        }
        let update = Query::update()
            .table(POSITION)
            .value("settings_seq", to_i64("sequence", last)?)
            .and_where(Expr::col("id").eq(1))
            .to_owned();
        txn.execute(&update)
            .await
            .map_err(ProjectionError::db("advance the projection position"))?;
        txn.commit()
            .await
            .map_err(ProjectionError::db("commit a projection batch"))?;
        Ok(last)
    }
}

fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres:") || database_url.starts_with("postgresql:")
}

/// sea-orm's options for `database_url`. SQLite: one connection (one writer per file; sea-orm's
/// default for SQLite, made explicit), the WAL journal, `synchronous=NORMAL` and a 10 s busy
/// timeout. PostgreSQL: at most `options.max_connections`; sqlx's other defaults (idle
/// connections closed after 10 minutes, each replaced after 30, 30 s to acquire one).
fn connect_options(database_url: &str, options: &StoreOptions) -> ConnectOptions {
    let mut connect = ConnectOptions::new(database_url);
    connect.sqlx_logging(false);
    if database_url.starts_with("sqlite:") {
        connect.max_connections(1);
        connect.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        connect.max_connections(Ord::max(options.max_connections, 1));
    }
    connect
}

/// Sorts what `Database::connect` returned.
fn sort_connect_error(e: &DbErr, postgres: bool) -> OpenError {
    match e {
        DbErr::Conn(RuntimeErr::SqlxError(e)) => sort_sqlx_error(e, postgres),
        DbErr::ConnectionAcquire(_) => OpenError::Unreachable(e.to_string()),
        // sea-orm's own: a URL it cannot parse or has no driver for. Its message quotes the URL.
        _ => OpenError::Fatal(
            "the database URL does not parse or names no supported database (`sqlite:` or \
             `postgres:`); the URL is not shown, it may hold a password"
                .into(),
        ),
    }
}

/// I/O errors and the pool's own timeouts are transient; so are PostgreSQL's connection
/// exceptions (SQLSTATE class 08), insufficient resources (class 53, e.g. 53300
/// `too_many_connections`) and 57P01–57P03 (shutting down, crashed, `cannot_connect_now` while
/// starting up), and SQLite's busy and locked. Anything else (refused credentials 28P01, a role
/// or database that does not exist 28000 / 3D000, configuration, TLS, protocol) is fatal.
fn sort_sqlx_error(e: &sqlx::Error, postgres: bool) -> OpenError {
    let transient = match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            if postgres {
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
            } else {
                // Extended result codes keep the primary code in their low byte.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            }
        }),
        _ => false,
    };
    if transient {
        OpenError::Unreachable(e.to_string())
    } else {
        OpenError::Fatal(e.to_string())
    }
}

async fn read_position(conn: &impl ConnectionTrait, lock: bool) -> Result<u64, ProjectionError> {
    let mut select = Query::select();
    select
        .column("settings_seq")
        .from(POSITION)
        .and_where(Expr::col("id").eq(1));
    if lock {
        select.lock(LockType::Update);
    }
    let row = conn
        .query_one(&select)
        .await
        .map_err(ProjectionError::db("read the projection position"))?
        .ok_or_else(|| ProjectionError::Corrupt(format!("{POSITION} has no row 1")))?;
    let seq: i64 = get(&row, "settings_seq")?;
    u64::try_from(seq).map_err(|_| ProjectionError::Corrupt(format!("negative position {seq}")))
}

/// Per entity, the change that sequential application would leave in place: the highest
/// version, and of equal versions the first delivered. Grouped by table, since PostgreSQL
/// refuses an `INSERT … ON CONFLICT DO UPDATE` that touches one row twice.
fn newest_per_entity<'a>(
    records: impl Iterator<Item = &'a Record>,
) -> Vec<(Kind, Vec<&'a SettingsChange>)> {
    type Key<'a> = (&'a TenantId, &'static str, String);
    let mut newest: HashMap<Key<'a>, (u64, &'a SettingsChange)> = HashMap::new();
    for record in records {
        let Some(change) = &record.change else {
            continue;
        };
        let (entity, id) = change.key();
        match newest.entry((change.tenant_id(), entity, id)) {
            Entry::Vacant(slot) => {
                slot.insert((record.seq, change));
            }
            Entry::Occupied(mut slot) => {
                let (seq, current) = *slot.get();
                let old = current.version();
                if change.supersedes(Some(old)) || (change.version() == old && record.seq < seq) {
                    slot.insert((record.seq, change));
                }
            }
        }
    }
    let mut by_kind: HashMap<Kind, Vec<&SettingsChange>> = HashMap::new();
    for (_, change) in newest.into_values() {
        by_kind.entry(Kind::of(change)).or_default().push(change);
    }
    Kind::ALL
        .into_iter()
        .filter_map(|kind| by_kind.remove(&kind).map(|changes| (kind, changes)))
        .collect()
}

/// `INSERT … VALUES (…), (…) ON CONFLICT (<key>) DO UPDATE SET version = excluded.version,
/// data = excluded.data WHERE excluded.version > <table>.version`, in chunks: the version guard
/// ([`SettingsChange::supersedes`]) in SQL.
async fn upsert(
    conn: &impl ConnectionTrait,
    kind: Kind,
    changes: &[&SettingsChange],
) -> Result<(), ProjectionError> {
    let table = kind.table();
    let on_conflict = OnConflict::columns(kind.key().iter().copied())
        .update_columns(["version", DATA])
        .action_and_where(Expr::col(("excluded", "version")).gt(Expr::col((table, "version"))))
        .to_owned();
    write_rows(conn, kind, table, changes, Some(on_conflict)).await
}

/// Inserts the rows of `changes` into `table` (of `kind`'s layout) in chunks, with
/// `on_conflict` if given.
pub(crate) async fn write_rows(
    conn: &impl ConnectionTrait,
    kind: Kind,
    table: &str,
    changes: &[&SettingsChange],
    on_conflict: Option<OnConflict>,
) -> Result<(), ProjectionError> {
    for chunk in changes.chunks(UPSERT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(table.to_owned()).columns(kind.columns());
        for change in chunk {
            insert
                .values(values(change)?)
                .map_err(|e| ProjectionError::Corrupt(format!("building an upsert: {e}")))?;
        }
        if let Some(on_conflict) = &on_conflict {
            insert.on_conflict(on_conflict.clone());
        }
        conn.execute(&insert)
            .await
            .map_err(ProjectionError::db("upsert settings"))?;
    }
    Ok(())
}

/// The row of a change, in the order of [`Kind::columns`]: its key, version and document.
fn values(change: &SettingsChange) -> Result<Vec<Expr>, ProjectionError> {
    let mut row = vec![Expr::val(change.tenant_id().as_str())];
    match change {
        SettingsChange::Company(_) => {}
        SettingsChange::Number(n) => row.push(Expr::val(n.number.as_str())),
        SettingsChange::User(u) => row.push(Expr::val(u.user_id.as_str())),
        SettingsChange::Contact(c) => row.push(Expr::val(c.contact_id.as_str())),
    }
    row.push(Expr::val(to_i64("version", change.version())?));
    let data = change
        .to_data_json()
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    row.push(Expr::val(data));
    Ok(row)
}

fn to_i64(what: &str, value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value)
        .map_err(|_| ProjectionError::Corrupt(format!("{what} {value} does not fit a BIGINT")))
}

fn get<T: TryGetable>(row: &QueryResult, column: &str) -> Result<T, ProjectionError> {
    row.try_get("", column)
        .map_err(|e| ProjectionError::Corrupt(format!("reading `{column}`: {e}")))
}

/// The four entity tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Company,
    Number,
    User,
    Contact,
}

impl Kind {
    /// Companies first: their region is how the other entities' numbers are read.
    pub(crate) const ALL: [Kind; 4] = [Kind::Company, Kind::Number, Kind::User, Kind::Contact];

    fn of(change: &SettingsChange) -> Kind {
        match change {
            SettingsChange::Company(_) => Kind::Company,
            SettingsChange::Number(_) => Kind::Number,
            SettingsChange::User(_) => Kind::User,
            SettingsChange::Contact(_) => Kind::Contact,
        }
    }

    pub(crate) fn table(self) -> &'static str {
        match self {
            Kind::Company => "companies",
            Kind::Number => "numbers",
            Kind::User => "users",
            Kind::Contact => "contacts",
        }
    }

    /// The entity kind, as in subjects and [`SettingsChange::key`].
    pub(crate) fn entity(self) -> &'static str {
        match self {
            Kind::Company => entity::COMPANY,
            Kind::Number => entity::NUMBER,
            Kind::User => entity::USER,
            Kind::Contact => entity::CONTACT,
        }
    }

    /// The primary key.
    pub(crate) fn key(self) -> &'static [&'static str] {
        match self {
            Kind::Company => &["tenant_id"],
            Kind::Number => &["tenant_id", "number"],
            Kind::User => &["tenant_id", "user_id"],
            Kind::Contact => &["tenant_id", "contact_id"],
        }
    }

    /// The key, `version` and `data`.
    pub(crate) fn columns(self) -> Vec<&'static str> {
        let mut columns = self.key().to_vec();
        columns.extend(["version", DATA]);
        columns
    }

    /// Turns a row back into the change that wrote it.
    fn decode(self, row: &QueryResult) -> Result<SettingsChange, ProjectionError> {
        let data: String = get(row, DATA)?;
        // The code only: the reason may quote the document, phone numbers included.
        SettingsChange::from_data_json(self.entity(), &data).map_err(|e| {
            ProjectionError::Corrupt(format!(
                "a stored {} document is unreadable ({})",
                self.entity(),
                e.code()
            ))
        })
    }
}
