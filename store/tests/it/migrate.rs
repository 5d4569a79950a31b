//! The migration runner's checksums (issue 11, item 8): every applied migration's SQL is recorded
//! with its SHA-256, an edited applied migration is refused, and a database migrated before
//! checksums existed gets them at its next start.

use std::collections::BTreeMap;
use std::path::PathBuf;

use certhist_store::{Store, StoreError};
use certhist_test_support::TestDb;
use sha2::Digest;
use tokio_postgres::{Client, NoTls};

async fn client(db: &TestDb) -> Client {
    let (client, connection) = db.pg_config().connect(NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// SHA-256 of every `schema/V<n>__<name>.sql`, read from disk here (not through the runner):
/// version → (name, hex SHA-256).
fn schema_files() -> BTreeMap<i32, (String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = file.strip_prefix('V').and_then(|f| f.strip_suffix(".sql")) else {
            continue;
        };
        let (version, name) = stem.split_once("__").unwrap();
        let sql = std::fs::read(&path).unwrap();
        out.insert(
            version.parse().unwrap(),
            (name.to_owned(), hex::encode(sha2::Sha256::digest(&sql))),
        );
    }
    assert!(out.len() >= 3, "{out:?}");
    out
}

/// version → (name, hex of the recorded checksum, if any).
async fn recorded(client: &Client) -> BTreeMap<i32, (String, Option<String>)> {
    client
        .query(
            "SELECT version, name, encode(sql_sha256, 'hex') FROM schema_migrations",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn as_recorded(files: BTreeMap<i32, (String, String)>) -> BTreeMap<i32, (String, Option<String>)> {
    files
        .into_iter()
        .map(|(v, (name, sha))| (v, (name, Some(sha))))
        .collect()
}

/// Issue 11: a migrated database records the SHA-256 of each migration's SQL.
#[tokio::test]
async fn every_applied_migration_has_its_checksum_recorded() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    assert_eq!(recorded(&c).await, as_recorded(schema_files()));
    // Opening again checks them and changes nothing.
    Store::open_with(db.pg_config(), 1).await.unwrap();
    assert_eq!(recorded(&c).await, as_recorded(schema_files()));
}

/// Issue 11: when an applied migration's SQL no longer matches its recorded checksum (here the
/// recorded one is changed, which is the same mismatch), opening the store fails, names the
/// migration and says what to do; nothing is written.
#[tokio::test]
async fn an_edited_applied_migration_is_refused_by_name() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    c.execute(
        "UPDATE schema_migrations SET sql_sha256 = sha256('edited'::bytea) WHERE version = 2",
        &[],
    )
    .await
    .unwrap();
    let before = recorded(&c).await;
    let err = Store::open_with(db.pg_config(), 1).await.unwrap_err();
    let files = schema_files();
    let v2_name = files[&2].0.clone();
    match &err {
        StoreError::MigrationChanged {
            version,
            name,
            recorded_sha256,
            embedded_sha256,
        } => {
            assert_eq!((*version, name.as_str()), (2, v2_name.as_str()));
            assert_eq!(
                recorded_sha256,
                &hex::encode(sha2::Sha256::digest(b"edited"))
            );
            assert_eq!(embedded_sha256, &files[&2].1);
        }
        other => panic!("expected MigrationChanged, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("V2__{v2_name}")), "{msg}");
    assert!(msg.contains("new migration"), "{msg}");
    assert_eq!(recorded(&c).await, before);
}

/// Issue 11: a database migrated before checksums existed — without the column, or with the
/// column still NULL — gets the checksums of its applied migrations at the next start.
#[tokio::test]
async fn a_database_migrated_before_checksums_is_backfilled() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    c.batch_execute("ALTER TABLE schema_migrations DROP COLUMN sql_sha256")
        .await
        .unwrap();
    Store::open_with(db.pg_config(), 1).await.unwrap();
    assert_eq!(recorded(&c).await, as_recorded(schema_files()));

    c.batch_execute("UPDATE schema_migrations SET sql_sha256 = NULL WHERE version IN (1, 3)")
        .await
        .unwrap();
    Store::open_with(db.pg_config(), 1).await.unwrap();
    assert_eq!(recorded(&c).await, as_recorded(schema_files()));

    // The column keeps its length check after being added to an old table.
    let short = c
        .execute(
            "UPDATE schema_migrations SET sql_sha256 = '\\x00' WHERE version = 1",
            &[],
        )
        .await;
    assert!(short.is_err(), "a 1-byte checksum must be refused");
}
