-- Record how far the import of one file (by content hash and importer kind) got; finished_at is
-- set when it is complete. $1 content_sha256, $2 kind, $3 path, $4 rows_done, $5 complete.
INSERT INTO imported_files (content_sha256, kind, path, rows_done, complete, finished_at)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN now() END)
ON CONFLICT (content_sha256, kind) DO UPDATE
SET rows_done   = excluded.rows_done,
    complete    = excluded.complete,
    finished_at = excluded.finished_at,
    path        = excluded.path
