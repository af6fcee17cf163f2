//! The durable projection: one row per entity, written with a version-guarded upsert, and the
//! last applied SETTINGS sequence, written in the same transaction as the rows it covers.

use crate::{Migrator, Projection, ProjectionError, Record};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, LockType, OnConflict, Query};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, QueryResult,
    SqliteTransactionMode, TransactionOptions, TransactionTrait, TryGetable,
};
use sea_orm_migration::MigratorTrait;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;
use switchboard_contracts::{
    CompanySettings, ContactSettings, E164, EntityId, NumberSettings, SettingsChange, TenantId,
    UserSettings,
};

/// Rows per `INSERT`: 500 rows × 6 columns stays far below SQLite's and PostgreSQL's limits on
/// bound parameters.
const UPSERT_CHUNK: usize = 500;
const POSITION: &str = "projection_position";

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
            let select = Query::select()
                .column(Asterisk)
                .from(kind.table())
                .to_owned();
            let rows = self
                .db
                .query_all(&select)
                .await
                .map_err(ProjectionError::db("load the projection"))?;
            for row in rows {
                projection.apply_change(&kind.decode(&row)?);
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
                let (new, old) = (change.version(), current.version());
                if new > old || (new == old && record.seq < seq) {
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

/// `INSERT … VALUES (…), (…) ON CONFLICT (tenant_id, key) DO UPDATE SET version = excluded.version,
/// … WHERE excluded.version > <table>.version`, in chunks.
async fn upsert(
    conn: &impl ConnectionTrait,
    kind: Kind,
    changes: &[&SettingsChange],
) -> Result<(), ProjectionError> {
    let table = kind.table();
    let on_conflict = OnConflict::columns(kind.key().iter().copied())
        .update_columns(std::iter::once("version").chain(kind.data().iter().copied()))
        .action_and_where(Expr::col(("excluded", "version")).gt(Expr::col((table, "version"))))
        .to_owned();
    for chunk in changes.chunks(UPSERT_CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(table).columns(kind.columns());
        for change in chunk {
            insert
                .values(values(change)?)
                .map_err(|e| ProjectionError::Corrupt(format!("building an upsert: {e}")))?;
        }
        insert.on_conflict(on_conflict.clone());
        conn.execute(&insert)
            .await
            .map_err(ProjectionError::db("upsert settings"))?;
    }
    Ok(())
}

/// The row of a change, in the order of [`Kind::columns`]: exactly what the event carried.
fn values(change: &SettingsChange) -> Result<Vec<Expr>, ProjectionError> {
    let tenant = Expr::val(change.tenant_id().as_str());
    let version = Expr::val(to_i64("version", change.version())?);
    Ok(match change {
        SettingsChange::Company(c) => {
            let final_action = match &c.final_action {
                Some(action) => Some(
                    serde_json::to_string(action)
                        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
                ),
                None => None,
            };
            vec![
                tenant,
                version,
                Expr::val(c.company_phone.clone()),
                Expr::val(c.default_region.clone()),
                Expr::val(final_action),
            ]
        }
        SettingsChange::Number(n) => vec![
            tenant,
            Expr::val(n.number.as_str()),
            version,
            Expr::val(n.forwarding_number.clone()),
            Expr::val(n.released),
        ],
        SettingsChange::User(u) => vec![
            tenant,
            Expr::val(u.user_id.as_str()),
            version,
            Expr::val(u.phone.clone()),
            Expr::val(u.active),
        ],
        SettingsChange::Contact(c) => vec![
            tenant,
            Expr::val(c.contact_id.as_str()),
            version,
            Expr::val(
                serde_json::to_string(&c.phones)
                    .map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
            ),
            Expr::val(c.assigned_user_id.as_ref().map(EntityId::as_str)),
            Expr::val(c.deleted),
        ],
    })
}

fn to_i64(what: &str, value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value)
        .map_err(|_| ProjectionError::Corrupt(format!("{what} {value} does not fit a BIGINT")))
}

fn get<T: TryGetable>(row: &QueryResult, column: &str) -> Result<T, ProjectionError> {
    row.try_get("", column)
        .map_err(|e| ProjectionError::Corrupt(format!("reading `{column}`: {e}")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Corrupt(format!("stored {what} unreadable: {e}"))
}

/// The four entity tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Company,
    Number,
    User,
    Contact,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Company, Kind::Number, Kind::User, Kind::Contact];

    fn of(change: &SettingsChange) -> Kind {
        match change {
            SettingsChange::Company(_) => Kind::Company,
            SettingsChange::Number(_) => Kind::Number,
            SettingsChange::User(_) => Kind::User,
            SettingsChange::Contact(_) => Kind::Contact,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Company => "companies",
            Kind::Number => "numbers",
            Kind::User => "users",
            Kind::Contact => "contacts",
        }
    }

    /// The primary key.
    fn key(self) -> &'static [&'static str] {
        match self {
            Kind::Company => &["tenant_id"],
            Kind::Number => &["tenant_id", "number"],
            Kind::User => &["tenant_id", "user_id"],
            Kind::Contact => &["tenant_id", "contact_id"],
        }
    }

    /// The columns after the key and `version`.
    fn data(self) -> &'static [&'static str] {
        match self {
            Kind::Company => &["company_phone", "default_region", "final_action"],
            Kind::Number => &["forwarding_number", "released"],
            Kind::User => &["phone", "active"],
            Kind::Contact => &["phones", "assigned_user_id", "deleted"],
        }
    }

    fn columns(self) -> Vec<&'static str> {
        let mut columns = self.key().to_vec();
        columns.push("version");
        columns.extend_from_slice(self.data());
        columns
    }

    /// Turns a row back into the change that wrote it.
    fn decode(self, row: &QueryResult) -> Result<SettingsChange, ProjectionError> {
        let tenant_id =
            TenantId::new(get::<String>(row, "tenant_id")?).map_err(|e| corrupt("tenant id", e))?;
        let version: i64 = get(row, "version")?;
        let version = u64::try_from(version).map_err(|e| corrupt("version", e))?;
        let entity = |column: &'static str| -> Result<EntityId, ProjectionError> {
            EntityId::parse(column, get::<String>(row, column)?).map_err(|e| corrupt(column, e))
        };
        Ok(match self {
            Kind::Company => SettingsChange::Company(CompanySettings {
                tenant_id,
                version,
                company_phone: get(row, "company_phone")?,
                default_region: get(row, "default_region")?,
                final_action: get::<Option<String>>(row, "final_action")?
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|e| corrupt("final action", e))?,
            }),
            Kind::Number => SettingsChange::Number(NumberSettings {
                tenant_id,
                version,
                number: E164::parse_strict(&get::<String>(row, "number")?)
                    .map_err(|e| corrupt("number", e))?,
                forwarding_number: get(row, "forwarding_number")?,
                released: get(row, "released")?,
            }),
            Kind::User => SettingsChange::User(UserSettings {
                tenant_id,
                version,
                user_id: entity("user_id")?,
                phone: get(row, "phone")?,
                active: get(row, "active")?,
            }),
            Kind::Contact => SettingsChange::Contact(ContactSettings {
                tenant_id,
                version,
                contact_id: entity("contact_id")?,
                phones: serde_json::from_str(&get::<String>(row, "phones")?)
                    .map_err(|e| corrupt("phones", e))?,
                assigned_user_id: get::<Option<String>>(row, "assigned_user_id")?
                    .map(|id| EntityId::parse("assigned_user_id", id))
                    .transpose()
                    .map_err(|e| corrupt("assigned user id", e))?,
                deleted: get(row, "deleted")?,
            }),
        })
    }
}
