//! Schema rules checked through pg_catalog on a migrated test database.

use certhist_store::testing::TestDb;

#[tokio::test]
async fn smoke() {
    let db = TestDb::new().await;
    let conn = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    let (client, c) = conn;
    tokio::spawn(c);
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1);
}
