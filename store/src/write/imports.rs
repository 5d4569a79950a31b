//! Bookkeeping of imported files (`imported_files`): how far an import of a file got.

use certhist_model::Sha256;

use super::StoreTx;
use crate::StoreError;

/// Insert or move the state of one file's import.
const SET_IMPORT_STATE: &str = include_str!("set_import_state.sql");

/// Bookkeeping of one imported file (by content hash and importer kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportState {
    /// Rows of the file already committed.
    pub rows_done: i64,
    /// The whole file was imported.
    pub complete: bool,
}

impl StoreTx<'_> {
    /// The state of an import of the file with this content hash by this importer, if any.
    pub async fn import_state(
        &self,
        content_sha256: &Sha256,
        kind: &str,
    ) -> Result<Option<ImportState>, StoreError> {
        let row = self
            .tx
            .query_opt(
                "SELECT rows_done, complete FROM imported_files WHERE content_sha256 = $1 AND kind = $2 FOR UPDATE",
                &[&&content_sha256[..], &kind],
            )
            .await?;
        Ok(row.map(|r| ImportState {
            rows_done: r.get(0),
            complete: r.get(1),
        }))
    }

    /// Records that the first `rows_done` rows of the file are stored (and whether that is all).
    pub async fn set_import_state(
        &mut self,
        content_sha256: &Sha256,
        kind: &str,
        path: &str,
        state: &ImportState,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                SET_IMPORT_STATE,
                &[
                    &&content_sha256[..],
                    &kind,
                    &path,
                    &state.rows_done,
                    &state.complete,
                ],
            )
            .await?;
        Ok(())
    }
}
