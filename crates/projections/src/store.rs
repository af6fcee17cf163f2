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
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, QueryResult,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, TryGetable,
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

impl Store {
    /// Connects and runs the migrations. `sqlite://path?mode=rwc` creates the file; SQLite runs
    /// with the WAL journal and `synchronous=NORMAL`. `postgres://…` for PostgreSQL.
    pub async fn open(database_url: &str) -> Result<Store, ProjectionError> {
        let mut options = ConnectOptions::new(database_url);
        options.sqlx_logging(false);
        if database_url.starts_with("sqlite:") {
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
            });
        }
        let db = Database::connect(options)
            .await
            .map_err(ProjectionError::db("connect to the projection store"))?;
        Migrator::up(&db, None).await.map_err(|e| match e {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
                ProjectionError::db("migrate the projection store")(e)
            }
            other => ProjectionError::Migration(other.to_string()),
        })?;
        Ok(Store { db })
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
