//! Bulk writes: `COPY … FROM STDIN (FORMAT binary)` into per-connection temporary staging tables,
//! then one merge statement per table and batch, all inside the caller's transaction together
//! with the source's cursor.
//!
//! By subject: [`certs`] (certificates, their names, issuer linking), [`observations`] (IP
//! sightings), [`imports`] (bookkeeping of imported files), [`ct`] (CT logs, entries, cursors),
//! [`cache`] (CryptnetUrlCache entries), [`audit`] (the audit log), [`tags`] (tags and notes). Statements longer than a few lines are the `.sql` files
//! beside them.

pub(crate) mod accounts;
mod audit;
mod cache;
mod certs;
mod ct;
mod imports;
mod observations;
mod passive;
mod tags;

use deadpool_postgres::Transaction;

use crate::StoreError;

pub use audit::AuditEntry;
pub(crate) use audit::INSERT_AUDIT;
pub use cache::CacheEntryRow;
pub use certs::CertWriteStats;
pub use ct::{CtEntryRow, CtLogState};
pub use imports::ImportState;
pub(crate) use passive::resolve_stubs;
pub use passive::{FollowCursor, PassiveWriteStats};
pub use tags::{Author, NoteDeletion};

/// Temporary staging tables of a connection (created once per transaction that needs them).
const STAGING_DDL: &str = include_str!("staging.sql");

/// An open transaction on which batches are written. Commit with [`StoreTx::commit`].
pub struct StoreTx<'a> {
    tx: Transaction<'a>,
    staging_ready: bool,
}

impl std::fmt::Debug for StoreTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTx").finish_non_exhaustive()
    }
}

impl<'a> StoreTx<'a> {
    pub(crate) fn new(tx: Transaction<'a>) -> Self {
        StoreTx {
            tx,
            staging_ready: false,
        }
    }

    /// Commits data and cursors together.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    /// Creates the staging tables in this transaction, once.
    async fn ensure_staging(&mut self) -> Result<(), StoreError> {
        if !self.staging_ready {
            self.tx.batch_execute(STAGING_DDL).await?;
            self.staging_ready = true;
        }
        Ok(())
    }

    /// Ends the savepoint `certhist_copy` taken before a COPY straight into a table: released
    /// when the COPY succeeded (`true`); rolled back when it hit a unique key that a concurrent
    /// writer stored in between (`false`: the caller merges instead); any other error returned.
    async fn end_copy_savepoint(
        &mut self,
        copied: Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        match copied {
            Ok(()) => {
                self.tx
                    .batch_execute("RELEASE SAVEPOINT certhist_copy")
                    .await?;
                Ok(true)
            }
            Err(StoreError::Postgres(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                tracing::debug!("rows stored concurrently; merging instead: {e}");
                self.tx
                    .batch_execute("ROLLBACK TO SAVEPOINT certhist_copy")
                    .await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
