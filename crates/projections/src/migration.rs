//! The schema, one set of migrations for SQLite and PostgreSQL. Rows hold exactly what the
//! events carried (raw phone strings, JSON as text); normalization happens in routing.
//!
//! `m0001` created one column per settings field; `m0002` turned each entity's fields into one
//! `data` document beside its key and version, so that a new optional field needs no
//! migration (see `store.rs`). The first layout is read only here, to convert it.

use crate::store::{self, DATA, Kind};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, TryGetable};
use sea_orm_migration::prelude::*;
use switchboard_contracts::SettingsChange;

/// Runs the projection's migrations (`Migrator::up(&db, None)`).
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateSettingsProjection),
            Box::new(SettingsAsDocuments),
        ]
    }
}

/// Tables `companies`, `numbers`, `users`, `contacts` and `projection_position` (seeded with
/// the single row `id = 1, settings_seq = 0`).
struct CreateSettingsProjection;

impl MigrationName for CreateSettingsProjection {
    fn name(&self) -> &str {
        "m0001_create_settings_projection"
    }
}

fn table(
    name: &'static str,
    key: &[&'static str],
    columns: Vec<ColumnDef>,
) -> TableCreateStatement {
    let mut table = Table::create();
    table.table(name).if_not_exists();
    for &k in key {
        table.col(ColumnDef::new(k).text().not_null());
    }
    let mut pk = Index::create();
    for &k in key {
        pk.col(k);
    }
    table.primary_key(&mut pk);
    table.col(ColumnDef::new("version").big_integer().not_null());
    for mut column in columns {
        table.col(&mut column);
    }
    table.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSettingsProjection {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |name: &'static str| ColumnDef::new(name).text().null().to_owned();
        let flag = |name: &'static str| ColumnDef::new(name).boolean().not_null().to_owned();
        let tables = [
            table(
                "companies",
                &["tenant_id"],
                vec![
                    text("company_phone"),
                    text("default_region"),
                    text("final_action"),
                ],
            ),
            table(
                "numbers",
                &["tenant_id", "number"],
                vec![text("forwarding_number"), flag("released")],
            ),
            table(
                "users",
                &["tenant_id", "user_id"],
                vec![text("phone"), flag("active")],
            ),
            table(
                "contacts",
                &["tenant_id", "contact_id"],
                vec![
                    ColumnDef::new("phones").text().not_null().to_owned(),
                    text("assigned_user_id"),
                    flag("deleted"),
                ],
            ),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("projection_position")
                    .if_not_exists()
                    .col(ColumnDef::new("id").integer().not_null().primary_key())
                    .col(ColumnDef::new("settings_seq").big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .execute(
                Query::insert()
                    .into_table("projection_position")
                    .columns(["id", "settings_seq"])
                    .values([1.into(), 0i64.into()])
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        // All or nothing on SQLite too.
        Some(true)
    }
}

/// Each entity table becomes key, `version` and `data` (the event's `data` document): every
/// row of the `m0001` layout is read back into the change that wrote it and stored as its
/// document in a new table, which then replaces the old one. One transaction.
///
/// The rows are written by the store's own writer (`store::write_rows`), so this creates the
/// layout the store uses; a later change of that layout needs its own migration, and a copy
/// of today's writer here.
struct SettingsAsDocuments;

impl MigrationName for SettingsAsDocuments {
    fn name(&self) -> &str {
        "m0002_settings_as_documents"
    }
}

/// Rows of the old layout read at a time (keyset pages, so memory stays bounded).
const PAGE: u64 = 5000;

#[async_trait::async_trait]
impl MigrationTrait for SettingsAsDocuments {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for kind in Kind::ALL {
            let table = kind.table();
            let staging = format!("{table}_m0002");
            let mut create = Table::create();
            create.table(staging.clone());
            let mut pk = Index::create();
            for &k in kind.key() {
                create.col(ColumnDef::new(k).text().not_null());
                pk.col(k);
            }
            create
                .primary_key(&mut pk)
                .col(ColumnDef::new("version").big_integer().not_null())
                .col(ColumnDef::new(DATA).text().not_null());
            manager.create_table(create).await?;

            let mut after: Option<Vec<Expr>> = None;
            loop {
                let mut select = Query::select();
                select.column(Asterisk).from(table).limit(PAGE);
                for &k in kind.key() {
                    select.order_by(k, Order::Asc);
                }
                if let Some(last) = after.take() {
                    let key = kind.key().iter().map(|&k| Expr::col(k));
                    select.and_where(Expr::tuple(key).gt(Expr::tuple(last)));
                }
                let rows = db.query_all(&select).await?;
                let changes = rows
                    .iter()
                    .map(|row| legacy(kind, row))
                    .collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<&SettingsChange> = changes.iter().collect();
                store::write_rows(db, kind, &staging, &refs, None)
                    .await
                    .map_err(|e| DbErr::Migration(e.to_string()))?;
                match rows.last() {
                    Some(last) if rows.len() as u64 == PAGE => {
                        after = Some(
                            kind.key()
                                .iter()
                                .map(|&k| column::<String>(last, k).map(Expr::val))
                                .collect::<Result<_, _>>()?,
                        );
                    }
                    _ => break,
                }
            }

            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
            manager
                .rename_table(Table::rename().table(staging.clone(), table).to_owned())
                .await?;
            if manager.get_database_backend() == DbBackend::Postgres {
                // The primary key keeps the name it was created with; give it the table's.
                db.execute_unprepared(&format!(
                    r#"ALTER TABLE "{table}" RENAME CONSTRAINT "{staging}_pkey" TO "{table}_pkey""#
                ))
                .await?;
            }
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

fn column<T: TryGetable>(row: &QueryResult, column: &str) -> Result<T, DbErr> {
    row.try_get("", column)
        .map_err(|e| DbErr::Migration(format!("reading `{column}` of the m0001 layout: {e}")))
}

/// A row of the `m0001` layout turned back into the change that wrote it: its columns, named
/// as the event's fields, make the `data` document, read by the contract's own reader (so a
/// field added to the contract later takes its default here too, and this never changes).
fn legacy(kind: Kind, row: &QueryResult) -> Result<SettingsChange, DbErr> {
    use serde_json::Value;
    let text = |name: &str| {
        column::<Option<String>>(row, name).map(|v| v.map_or(Value::Null, Value::String))
    };
    let flag = |name: &str| column::<bool>(row, name).map(Value::Bool);
    // JSON kept as text.
    let json = |name: &str| -> Result<Value, DbErr> {
        match column::<Option<String>>(row, name)? {
            None => Ok(Value::Null),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                DbErr::Migration(format!(
                    "a stored `{name}` of the m0001 layout is not JSON: {e}"
                ))
            }),
        }
    };
    let mut doc = serde_json::Map::new();
    doc.insert("tenant_id".into(), text("tenant_id")?);
    doc.insert("version".into(), column::<i64>(row, "version")?.into());
    let fields: Vec<(&str, Value)> = match kind {
        Kind::Company => vec![
            ("company_phone", text("company_phone")?),
            ("default_region", text("default_region")?),
            ("final_action", json("final_action")?),
        ],
        Kind::Number => vec![
            ("number", text("number")?),
            ("forwarding_number", text("forwarding_number")?),
            ("released", flag("released")?),
        ],
        Kind::User => vec![
            ("user_id", text("user_id")?),
            ("phone", text("phone")?),
            ("active", flag("active")?),
        ],
        Kind::Contact => vec![
            ("contact_id", text("contact_id")?),
            ("phones", json("phones")?),
            ("assigned_user_id", text("assigned_user_id")?),
            ("deleted", flag("deleted")?),
        ],
    };
    for (name, value) in fields {
        doc.insert(name.into(), value);
    }
    // The code only: the reason may quote the row, phone numbers included.
    SettingsChange::from_data_json(kind.entity(), &Value::Object(doc).to_string()).map_err(|e| {
        DbErr::Migration(format!(
            "a stored {} of the m0001 layout is unreadable ({})",
            kind.entity(),
            e.code()
        ))
    })
}
