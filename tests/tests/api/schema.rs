//! Both backends get the same schema from their migrations.

use std::collections::BTreeSet;

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use guichet_store::{DatabaseUrl, PoolOptions, Store};

#[derive(diesel::QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

fn columns(store: &Store, sql: &str) -> BTreeSet<(String, String)> {
    let mut conn = store.conn().unwrap();
    diesel::sql_query(sql)
        .load::<Column>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .filter(|(t, _)| !t.starts_with("__diesel"))
        .collect()
}

#[test]
fn sqlite_and_postgres_have_the_same_tables_and_columns() {
    let Some(pg) = guichet_tests::PgDatabase::create() else {
        eprintln!("skipped: needs GUICHET_TEST_DATABASE_URL to compare with PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::connect(
        &DatabaseUrl::Sqlite(dir.path().join("s.db")),
        &PoolOptions::default(),
    )
    .unwrap();
    let postgres = Store::connect(
        &DatabaseUrl::parse(&pg.url).unwrap(),
        &PoolOptions::default(),
    )
    .unwrap();

    let in_sqlite = columns(
        &sqlite,
        "SELECT m.name AS table_name, p.name AS column_name \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    );
    let in_postgres = columns(
        &postgres,
        "SELECT table_name::text AS table_name, column_name::text AS column_name \
         FROM information_schema.columns WHERE table_schema = 'public'",
    );

    assert!(!in_sqlite.is_empty());
    assert_eq!(in_sqlite, in_postgres);
}
