//! A small migration runner: applies the embedded `schema/V<n>__<name>.sql` files in order, each
//! in its own transaction, under an advisory lock so that concurrent starts are safe.
//!
//! Every applied migration's SQL is recorded with its SHA-256 (`schema_migrations.sql_sha256`).
//! At every start the embedded SQL of each applied migration is checked against it: an edited
//! applied migration makes opening the store fail with [`StoreError::MigrationChanged`] rather
//! than leave databases that differ while claiming the same version. Databases migrated before
//! checksums existed get the column and the checksums of their applied migrations at first start.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::StoreError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Advisory lock key held while migrating ("certhist" in ASCII, as a bigint).
const MIGRATION_LOCK_KEY: i64 = 0x6365_7274_6869_7374;

/// Version of the runner's own bookkeeping (the `schema_migrations` table, which no migration
/// creates): 2 added `sql_sha256`. Part of [`schema_fingerprint`].
const BOOKKEEPING_VERSION: u32 = 2;

/// The bookkeeping table, as a new database gets it.
const CREATE_BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    sql_sha256 bytea CHECK (length(sql_sha256) = 32)
)";

/// The checksum column, for a database whose bookkeeping predates it (NULL until backfilled).
const ADD_CHECKSUM_COLUMN: &str = "ALTER TABLE schema_migrations
    ADD COLUMN IF NOT EXISTS sql_sha256 bytea CHECK (length(sql_sha256) = 32)";

/// Applies every migration the database does not have yet.
pub(crate) async fn run(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(CREATE_BOOKKEEPING)
        .await
        .or_else(|e| {
            // Two processes creating the table at once: the loser sees a unique violation.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = async {
        ensure_checksum_column(client).await?;
        apply_pending(client).await
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    result
}

/// SHA-256 of a migration's SQL, byte for byte as embedded.
fn sql_sha256(sql: &str) -> [u8; 32] {
    Sha256::digest(sql.as_bytes()).into()
}

/// Adds `schema_migrations.sql_sha256` when the table predates it (checked first, so that a
/// normal start takes no DDL lock).
async fn ensure_checksum_column(client: &Client) -> Result<(), StoreError> {
    let has_column = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute
                            WHERE attrelid = 'schema_migrations'::regclass
                              AND attname = 'sql_sha256' AND NOT attisdropped)",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    if !has_column {
        tracing::info!(
            "adding checksums to the migration bookkeeping (schema_migrations.sql_sha256)"
        );
        client.batch_execute(ADD_CHECKSUM_COLUMN).await?;
    }
    Ok(())
}

/// Checks the recorded checksum of every applied migration this binary embeds, records the
/// missing ones (migrations applied before checksums existed), then applies the pending ones.
async fn apply_pending(client: &mut Client) -> Result<(), StoreError> {
    let applied: Vec<(u32, Option<Vec<u8>>)> = client
        .query(
            "SELECT version, sql_sha256 FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, i32>(0) as u32, r.get(1)))
        .collect();
    let known_max = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if let Some(&(db_max, _)) = applied.last() {
        if db_max > known_max {
            return Err(StoreError::SchemaTooNew(db_max, known_max));
        }
    }
    let mut unrecorded = Vec::new();
    for (version, recorded) in &applied {
        let Some(&(_, name, sql)) = MIGRATIONS.iter().find(|m| m.0 == *version) else {
            continue;
        };
        let embedded = sql_sha256(sql);
        match recorded {
            None => unrecorded.push((*version, embedded)),
            Some(recorded) if recorded[..] != embedded[..] => {
                return Err(StoreError::MigrationChanged {
                    version: *version,
                    name: name.to_owned(),
                    recorded_sha256: hex::encode(recorded),
                    embedded_sha256: hex::encode(embedded),
                });
            }
            Some(_) => {}
        }
    }
    if !unrecorded.is_empty() {
        tracing::info!(
            migration.count = unrecorded.len(),
            "recording the checksums of {} migrations applied before checksums existed",
            unrecorded.len()
        );
        let tx = client.transaction().await?;
        for (version, sha) in &unrecorded {
            tx.execute(
                "UPDATE schema_migrations SET sql_sha256 = $2 WHERE version = $1 AND sql_sha256 IS NULL",
                &[&(*version as i32), &&sha[..]],
            )
            .await?;
        }
        tx.commit().await?;
    }
    for &(version, name, sql) in MIGRATIONS {
        if applied.iter().any(|a| a.0 == version) {
            continue;
        }
        tracing::info!(
            migration.version = version,
            migration.name = name,
            "applying migration V{version}__{name}"
        );
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .map_err(|source| StoreError::Migration {
                version,
                name: name.to_owned(),
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, sql_sha256) VALUES ($1, $2, $3)",
            &[&(version as i32), &name, &&sql_sha256(sql)[..]],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Version and name of every embedded migration, in version order.
pub fn applied_versions() -> Vec<(u32, &'static str)> {
    MIGRATIONS.iter().map(|m| (m.0, m.1)).collect()
}

/// Short hash of every embedded migration (version, name and SQL) and of the runner's
/// bookkeeping version: changes whenever the schema does (the test harness names its template
/// database after it).
pub fn schema_fingerprint() -> String {
    let mut bytes = format!("bookkeeping {BOOKKEEPING_VERSION}\0").into_bytes();
    for (version, name, sql) in MIGRATIONS {
        bytes.extend_from_slice(format!("{version}\0{name}\0").as_bytes());
        bytes.extend_from_slice(sql.as_bytes());
        bytes.push(0);
    }
    format!("{:012x}", crate::cluster::fnv1a64(&bytes) >> 16)
}
