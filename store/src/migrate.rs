//! A small migration runner: applies the embedded `schema/V<n>__<name>.sql` files in order, each
//! in its own transaction, under an advisory lock so that concurrent starts are safe.

use tokio_postgres::Client;

use crate::StoreError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Advisory lock key held while migrating ("certhist" in ASCII, as a bigint).
const MIGRATION_LOCK_KEY: i64 = 0x6365_7274_6869_7374;

/// Applies every migration the database does not have yet.
pub(crate) async fn run(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
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
    let result = apply_pending(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    result
}

async fn apply_pending(client: &mut Client) -> Result<(), StoreError> {
    let applied: Vec<u32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i32>(0) as u32)
        .collect();
    let known_max = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if let Some(&db_max) = applied.last() {
        if db_max > known_max {
            return Err(StoreError::SchemaTooNew(db_max, known_max));
        }
    }
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
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
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&(version as i32), &name],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Versions of the embedded migrations (for tests and `db status`).
pub fn applied_versions() -> Vec<(u32, &'static str)> {
    MIGRATIONS.iter().map(|m| (m.0, m.1)).collect()
}

/// Short hash of every embedded migration (version, name and SQL): changes whenever the schema
/// does (the test harness names its template database after it).
pub fn schema_fingerprint() -> String {
    let mut bytes = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        bytes.extend_from_slice(format!("{version}\0{name}\0").as_bytes());
        bytes.extend_from_slice(sql.as_bytes());
        bytes.push(0);
    }
    format!("{:012x}", crate::cluster::fnv1a64(&bytes) >> 16)
}
