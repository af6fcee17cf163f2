//! The schema, one set of migrations for SQLite and PostgreSQL. Rows hold exactly what the
//! events carried (raw phone strings, JSON as text); normalization happens in routing.

use sea_orm_migration::prelude::*;

/// Runs the projection's migrations (`Migrator::up(&db, None)`).
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSettingsProjection)]
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
