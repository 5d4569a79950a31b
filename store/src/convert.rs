//! The in-place conversion of a database migrated to schema V7 (lean observations) while it
//! held observation rows: V7 renamed the old table to `observations_v6` and left a cursor in
//! `observation_conversion`; [`convert_batch`] (run by `certhist db upgrade`) copies it into
//! `cert_keys` and `sightings` in committed batches — first an identity for every SHA-1 (in
//! SHA-1 order), then the rows in the old primary key's order — and at the end builds the
//! indexes of `sightings` and drops the old table and the cursor. Every batch commits with its
//! cursor, so a killed conversion continues where it stopped. While it is pending, commands that
//! use observations refuse ([`Store::refuse_if_converting`]).

use postgres_types::Type;

use crate::{Conn, Store, StoreError};

/// Advisory lock key held by a running conversion ("lean-obs" in ASCII).
const CONVERSION_LOCK_KEY: i64 = 0x6c65_616e_2d6f_6273;

/// How far a pending conversion is.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConversionProgress {
    /// Rows of the old table.
    pub rows_total: i64,
    /// Rows copied.
    pub rows_done: i64,
    /// Certificate identities (`cert_keys`) added.
    pub keys_done: i64,
    /// Every SHA-1 has its identity (the row copy has begun).
    pub keys_complete: bool,
}

/// What one [`convert_batch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversionStep {
    /// Nothing to convert (no conversion pending).
    Nothing,
    /// Added this many certificate identities.
    Keys(i64),
    /// Copied this many rows.
    Rows(i64),
    /// Built the indexes and dropped the old table: the conversion is complete.
    Finished,
}

/// Whether a conversion is pending (its cursor table exists; dropped when it has finished).
const PENDING: &str = "SELECT to_regclass('observation_conversion') IS NOT NULL";
const STATE: &str = "SELECT rows_total, rows_done, keys_done, keys_complete, key_cursor,
                            row_cursor_ip, row_cursor_port, row_cursor_sha1
                     FROM observation_conversion";

const KEYS_BATCH: &str = "WITH b AS MATERIALIZED (
        SELECT DISTINCT sha1 FROM observations_v6
        WHERE $1::bytea IS NULL OR sha1 > $1
        ORDER BY sha1
        LIMIT $2
    ), ins AS (
        INSERT INTO cert_keys (sha1) SELECT sha1 FROM b ORDER BY sha1
        ON CONFLICT (sha1) DO NOTHING
    )
    SELECT count(*), (SELECT sha1 FROM b ORDER BY sha1 DESC LIMIT 1) FROM b";

const ROWS_BATCH: &str = "WITH b AS MATERIALIZED (
        SELECT ip, port, sha1, first_seen, last_seen, times_seen, sources
        FROM observations_v6
        WHERE $1::inet IS NULL OR (ip, port, sha1) > ($1, $2, $3)
        ORDER BY ip, port, sha1
        LIMIT $4
    ), sets AS MATERIALIZED (
        SELECT d.sources, source_set_id(d.sources) AS id
        FROM (SELECT DISTINCT sources FROM b) d
    ), ins AS (
        INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
        SELECT (SELECT k.id FROM cert_keys k WHERE k.sha1 = b.sha1),
               s2k(b.first_seen), s2k(b.last_seen), least(b.times_seen, 2147483647)::integer,
               (b.port - 32768)::smallint,
               (SELECT sets.id FROM sets WHERE sets.sources = b.sources),
               b.ip
        FROM b
        RETURNING 1
    ), last AS (
        SELECT ip, port, sha1 FROM b ORDER BY ip DESC, port DESC, sha1 DESC LIMIT 1
    )
    SELECT (SELECT count(*) FROM ins), last.ip, last.port, last.sha1 FROM last";

const FINISH: &str = "SET LOCAL maintenance_work_mem = '256MB';
    ALTER TABLE sightings ADD PRIMARY KEY (ip, port, cert_id);
    CREATE INDEX sightings_cert_id_idx ON sightings (cert_id, ip);
    DROP TABLE observations_v6;
    DROP TABLE observation_conversion";

/// The progress of a pending conversion, `None` when there is none.
pub async fn conversion_progress(conn: &Conn) -> Result<Option<ConversionProgress>, StoreError> {
    let exists: bool = conn.client().query_one(PENDING, &[]).await?.get(0);
    if !exists {
        return Ok(None);
    }
    let Some(r) = conn.client().query_opt(STATE, &[]).await? else {
        return Ok(None);
    };
    Ok(Some(ConversionProgress {
        rows_total: r.get(0),
        rows_done: r.get(1),
        keys_done: r.get(2),
        keys_complete: r.get(3),
    }))
}

impl Store {
    /// Fails with [`StoreError::ConversionPending`] while the database's observations are being
    /// converted to the lean layout (schema V7) by `certhist db upgrade`.
    pub async fn refuse_if_converting(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        match conversion_progress(&conn).await? {
            None => Ok(()),
            Some(p) => Err(StoreError::ConversionPending {
                rows_done: p.rows_done,
                rows_total: p.rows_total,
            }),
        }
    }

    /// A connection holding the conversion's advisory lock (session level), or `None` when
    /// another session holds it.
    pub async fn conversion_conn(&self) -> Result<Option<Conn>, StoreError> {
        let conn = self.conn().await?;
        let locked: bool = conn
            .client()
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CONVERSION_LOCK_KEY])
            .await?
            .get(0);
        Ok(locked.then_some(conn))
    }

    /// [`Store::conversion_conn`], waiting for the lock: the backend of a conversion killed
    /// mid-batch holds it until it has rolled back that batch.
    pub async fn conversion_conn_wait(&self) -> Result<Conn, StoreError> {
        let conn = self.conn().await?;
        conn.client()
            .execute("SELECT pg_advisory_lock($1)", &[&CONVERSION_LOCK_KEY])
            .await?;
        Ok(conn)
    }
}

/// Runs one batch of the conversion (at most `batch` identities or rows) in its own
/// transaction, committed with the cursor; the last call builds the indexes and drops the old
/// table. Call on the connection from [`Store::conversion_conn`].
pub async fn convert_batch(conn: &mut Conn, batch: i64) -> Result<ConversionStep, StoreError> {
    let batch = batch.max(1);
    let tx = conn.client.transaction().await?;
    let exists: bool = tx.query_one(PENDING, &[]).await?.get(0);
    if !exists {
        return Ok(ConversionStep::Nothing);
    }
    let Some(state) = tx.query_opt(&format!("{STATE} FOR UPDATE"), &[]).await? else {
        return Ok(ConversionStep::Nothing);
    };
    let keys_complete: bool = state.get(3);
    if !keys_complete {
        let cursor: Option<Vec<u8>> = state.get(4);
        let r = tx
            .query_typed(KEYS_BATCH, &[(&cursor, Type::BYTEA), (&batch, Type::INT8)])
            .await?;
        let (n, last): (i64, Option<Vec<u8>>) = (r[0].get(0), r[0].get(1));
        tx.execute(
            "UPDATE observation_conversion
             SET keys_done = keys_done + $1, key_cursor = coalesce($2, key_cursor),
                 keys_complete = $3",
            &[&n, &last, &(n < batch)],
        )
        .await?;
        tx.commit().await?;
        return Ok(ConversionStep::Keys(n));
    }
    let (ip, port, sha1): (Option<std::net::IpAddr>, Option<i32>, Option<Vec<u8>>) =
        (state.get(5), state.get(6), state.get(7));
    let rows = tx
        .query_typed(
            ROWS_BATCH,
            &[
                (&ip, Type::INET),
                (&port, Type::INT4),
                (&sha1, Type::BYTEA),
                (&batch, Type::INT8),
            ],
        )
        .await?;
    match rows.first() {
        Some(r) => {
            let n: i64 = r.get(0);
            let (ip, port, sha1): (std::net::IpAddr, i32, Vec<u8>) = (r.get(1), r.get(2), r.get(3));
            tx.execute(
                "UPDATE observation_conversion
                 SET rows_done = rows_done + $1, row_cursor_ip = $2, row_cursor_port = $3,
                     row_cursor_sha1 = $4",
                &[&n, &ip, &port, &sha1],
            )
            .await?;
            tx.commit().await?;
            Ok(ConversionStep::Rows(n))
        }
        None => {
            tx.batch_execute(FINISH).await?;
            tx.commit().await?;
            conn.client
                .batch_execute("ANALYZE sightings; ANALYZE cert_keys; ANALYZE source_sets")
                .await?;
            Ok(ConversionStep::Finished)
        }
    }
}
