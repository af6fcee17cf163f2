//! Throwaway PostgreSQL: private servers, and fresh databases on a given server.

use switchboard_testkit::Postgres;

#[test]
fn a_local_server_runs_sql_and_is_removed_on_drop() {
    let pg = Postgres::start_local().unwrap();
    assert!(
        pg.url().starts_with("postgres://postgres@127.0.0.1:"),
        "{}",
        pg.url()
    );
    assert!(
        !pg.url().contains(":5432/"),
        "must not use the system server"
    );
    assert_eq!(pg.psql("select 1").unwrap(), "1\n");
    pg.psql(
        "create table calls (id int primary key, who text); insert into calls values (42, 'ada')",
    )
    .unwrap();
    assert_eq!(
        pg.psql("select who from calls where id = 42").unwrap(),
        "ada\n"
    );
    assert!(pg.psql("select * from no_such_table").is_err());

    // The URL also works for an outside client.
    let out = std::process::Command::new("psql")
        .args([pg.url(), "-tAc", "select count(*) from calls"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let data_dir = pg.data_dir().unwrap();
    assert!(data_dir.join("PG_VERSION").is_file());
    drop(pg);
    assert!(!data_dir.exists(), "drop removes the data dir");
    assert!(
        !data_dir.parent().unwrap().exists(),
        "drop removes the temp dir"
    );
}

#[test]
fn two_local_servers_are_independent() {
    let a = Postgres::start_local().unwrap();
    let b = Postgres::start_local().unwrap();
    assert_ne!(a.url(), b.url(), "different ports");
    assert_ne!(a.data_dir(), b.data_dir());
    a.psql("create table only_in_a (x int)").unwrap();
    assert_eq!(a.psql("select count(*) from only_in_a").unwrap(), "0\n");
    assert!(b.psql("select count(*) from only_in_a").is_err());
}

#[test]
fn databases_on_a_given_server_are_fresh_and_dropped() {
    // A private server stands in for the one DATABASE_URL would name.
    let server = Postgres::start_local().unwrap();
    let one = Postgres::on_server(server.url()).unwrap();
    let two = Postgres::on_server(server.url()).unwrap();
    assert_ne!(one.database(), two.database());
    assert_eq!(one.data_dir(), None);
    assert!(
        one.url().ends_with(&format!("/{}", one.database())),
        "{}",
        one.url()
    );
    assert_eq!(
        one.psql("select current_database()").unwrap(),
        format!("{}\n", one.database())
    );

    one.psql("create table t (x int); insert into t values (7)")
        .unwrap();
    assert_eq!(one.psql("select x from t").unwrap(), "7\n");
    assert!(
        two.psql("select x from t").is_err(),
        "databases are separate"
    );

    let name = two.database().to_owned();
    drop(two);
    let exists = format!("select count(*) from pg_database where datname = '{name}'");
    assert_eq!(
        server.psql(&exists).unwrap(),
        "0\n",
        "drop drops the database"
    );
}
