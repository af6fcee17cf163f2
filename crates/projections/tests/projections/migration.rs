//! A store of the first layout (`m0001`: one column per settings field) migrates to entity
//! documents (`m0002`) on SQLite and PostgreSQL: every entity reads back as it was written,
//! the position is kept, and the version guard holds on the migrated rows.

use crate::support::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use switchboard_contracts::{
    CompanySettings, ContactSettings, FinalAction, FinalActionKind, SettingsChange,
};
use switchboard_projections::{Migrator, Projection, Store};
use switchboard_routing::SettingsView;

const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const USER_PHONE: &str = "+12064561234";
const OTHER_PHONE: &str = "+13127654321";
/// More contacts than the migration reads at a time, spread over two tenants.
const BULK: usize = 12_001;

async fn insert(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&'static str],
    rows: Vec<Vec<Expr>>,
) {
    for chunk in rows.chunks(500) {
        let mut insert = Query::insert();
        insert
            .into_table(table.to_owned())
            .columns(columns.iter().copied());
        for row in chunk {
            insert.values(row.clone()).unwrap();
        }
        db.execute(&insert).await.unwrap();
    }
}

fn text(s: &str) -> Expr {
    Expr::val(s)
}

fn none() -> Expr {
    Expr::val(Option::<String>::None)
}

fn int(v: i64) -> Expr {
    Expr::val(v)
}

fn flag(v: bool) -> Expr {
    Expr::val(v)
}

fn bulk_phone(i: usize) -> String {
    format!("+1415{:07}", 2_000_000 + i)
}

/// The rows below, as the events that wrote them.
fn changes() -> Vec<SettingsChange> {
    let mut changes = vec![
        SettingsChange::Company(CompanySettings {
            tenant_id: tenant("acme"),
            version: 3,
            company_phone: Some("(617) 253-1234".into()),
            default_region: Some("US".into()),
            final_action: Some(FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "We are closed.".into(),
            }),
            time_zone: None,
            business_hours: None,
            after_hours: None,
            ring_timeout_secs: None,
            returning_caller_days: 0,
            blocked_callers: Vec::new(),
            blocked_action: None,
            anonymous_callers: None,
            screening: None,
        }),
        company("globex", 1, None, None),
        number("acme", DIALED, 2, Some(OTHER_PHONE)),
        {
            let SettingsChange::Number(mut n) = number("acme", "+16502539999", 1, None) else {
                unreachable!()
            };
            n.released = true;
            SettingsChange::Number(n)
        },
        user("acme", "u1", 1, Some(USER_PHONE)),
        {
            let SettingsChange::User(mut u) = user("acme", "u2", 4, None) else {
                unreachable!()
            };
            u.active = false;
            SettingsChange::User(u)
        },
        contact("acme", "c1", 1, &["(415) 867-5310"], Some("u1")),
        SettingsChange::Contact(ContactSettings {
            tenant_id: tenant("acme"),
            version: 2,
            contact_id: id("c2"),
            phones: vec![],
            assigned_user_id: None,
            deleted: true,
        }),
        contact("globex", "c1", 1, &[CALLER, OTHER_PHONE], None),
    ];
    for i in 0..BULK {
        let t = if i % 2 == 0 { "bulk-a" } else { "bulk-b" };
        changes.push(contact(
            t,
            &format!("c{i}"),
            1,
            &[&bulk_phone(i)],
            Some("u1"),
        ));
    }
    changes
}

/// Writes `changes()` in the `m0001` layout, exactly as its store wrote them, at position 42.
async fn first_layout(url: &str) {
    let db = Database::connect(url).await.unwrap();
    Migrator::up(&db, Some(1)).await.unwrap();
    let mut companies = Vec::new();
    let mut numbers = Vec::new();
    let mut users = Vec::new();
    let mut contacts = Vec::new();
    for change in changes() {
        let t = text(change.tenant_id().as_str());
        let v = int(change.version() as i64);
        let opt = |s: &Option<String>| s.as_deref().map_or_else(none, text);
        match change {
            SettingsChange::Company(c) => companies.push(vec![
                t,
                v,
                opt(&c.company_phone),
                opt(&c.default_region),
                c.final_action
                    .map_or_else(none, |a| text(&serde_json::to_string(&a).unwrap())),
            ]),
            SettingsChange::Number(n) => numbers.push(vec![
                t,
                text(n.number.as_str()),
                v,
                opt(&n.forwarding_number),
                flag(n.released),
            ]),
            SettingsChange::User(u) => users.push(vec![
                t,
                text(u.user_id.as_str()),
                v,
                opt(&u.phone),
                flag(u.active),
            ]),
            SettingsChange::Contact(c) => contacts.push(vec![
                t,
                text(c.contact_id.as_str()),
                v,
                text(&serde_json::to_string(&c.phones).unwrap()),
                c.assigned_user_id
                    .as_ref()
                    .map_or_else(none, |u| text(u.as_str())),
                flag(c.deleted),
            ]),
        }
    }
    let company_columns = [
        "tenant_id",
        "version",
        "company_phone",
        "default_region",
        "final_action",
    ];
    insert(&db, "companies", &company_columns, companies).await;
    let number_columns = [
        "tenant_id",
        "number",
        "version",
        "forwarding_number",
        "released",
    ];
    insert(&db, "numbers", &number_columns, numbers).await;
    let user_columns = ["tenant_id", "user_id", "version", "phone", "active"];
    insert(&db, "users", &user_columns, users).await;
    let contact_columns = [
        "tenant_id",
        "contact_id",
        "version",
        "phones",
        "assigned_user_id",
        "deleted",
    ];
    insert(&db, "contacts", &contact_columns, contacts).await;
    let position = Query::update()
        .table("projection_position")
        .value("settings_seq", 42i64)
        .and_where(Expr::col("id").eq(1))
        .to_owned();
    db.execute(&position).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_store_of_the_first_layout_migrates_to_documents() {
    on_both(|url| async move {
        // Given a store of the first layout
        first_layout(&url).await;

        // When it is opened
        let store = Store::open(&url).await.unwrap();

        // Then the position is kept and every entity reads back as the events gave it
        assert_eq!(store.position().await.unwrap(), 42);
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.applied_seq(), 42);
        let changes = changes();
        let mut expected = Projection::new();
        for (i, change) in changes.iter().enumerate() {
            expected.apply(&record(i as u64 + 1, change.clone()));
        }
        assert_eq!(loaded.contact_count(), 3 + BULK);
        assert_eq!(dump(&loaded, &changes), dump(&expected, &changes));
        let acme = loaded.tenant(&tenant("acme")).unwrap();
        assert_eq!(
            acme.final_action().map(|a| &*a.message),
            Some("We are closed.")
        );
        for c in [
            call("acme", DIALED, CALLER),
            call("acme", "+16502539999", CALLER),
            call("globex", DIALED, CALLER),
            call("bulk-b", DIALED, &bulk_phone(BULK - 2)),
        ] {
            assert_eq!(decide_in(&loaded, &c), decide_in(&expected, &c));
        }

        // And the tables are key, version and document
        let db = Database::connect(url.as_str()).await.unwrap();
        for (table, columns, gone) in [
            ("companies", "tenant_id, version, data", "company_phone"),
            ("numbers", "tenant_id, number, version, data", "forwarding_number"),
            ("users", "tenant_id, user_id, version, data", "phone"),
            ("contacts", "tenant_id, contact_id, version, data", "phones"),
        ] {
            let sql = format!("SELECT {columns} FROM {table}");
            assert!(db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.is_ok(), "{table}");
            let old = format!("SELECT {gone} FROM {table}");
            assert!(db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), old)).await.is_err(), "{table}");
        }
        if url.starts_with("postgres") {
            // The primary keys carry their tables' names, as m0001 created them.
            let sql = "SELECT conname FROM pg_constraint WHERE contype = 'p' \
                       AND conrelid::regclass::text IN ('companies', 'numbers', 'users', 'contacts') \
                       ORDER BY conname";
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap();
            let names: Vec<String> = rows.iter().map(|r| r.try_get("", "conname").unwrap()).collect();
            assert_eq!(names, ["companies_pkey", "contacts_pkey", "numbers_pkey", "users_pkey"]);
        }
        db.close().await.unwrap();

        // And the version guard holds on the migrated rows
        let stale = user("acme", "u2", 3, Some(OTHER_PHONE));
        store.apply_batch(&[record(43, stale)]).await.unwrap();
        let reloaded = store.load().await.unwrap();
        let u2 = reloaded.tenant(&tenant("acme")).unwrap();
        assert_eq!(u2.version_of("user", "u2"), Some(4));
        let newer = user("acme", "u2", 5, Some(OTHER_PHONE));
        store.apply_batch(&[record(44, newer)]).await.unwrap();
        drop(store);

        // And reopening migrates nothing again
        let reopened = Store::open(&url).await.unwrap();
        assert_eq!(reopened.position().await.unwrap(), 44);
        let p = reopened.load().await.unwrap();
        assert_eq!(p.tenant(&tenant("acme")).unwrap().version_of("user", "u2"), Some(5));
        assert_eq!(p.contact_count(), 3 + BULK);
    })
    .await;
}
