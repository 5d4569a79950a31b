//! What the read-replica routing of `certhist serve` and `certhist db replica status` ask a
//! server about streaming replication (issue 15).

use crate::{Conn, StoreError};

/// A WAL position (`X/Y`, hexadecimal) as a byte offset.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// A standby's replay position, as the standby reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplayState {
    /// `pg_is_in_recovery()`: false on a primary (or a promoted standby).
    pub in_recovery: bool,
    /// `pg_last_wal_replay_lsn()` as a byte offset (`None` on a primary).
    pub replay_lsn: Option<u64>,
    /// `pg_last_wal_receive_lsn()` as a byte offset.
    pub receive_lsn: Option<u64>,
    /// Seconds since the commit time of the last replayed transaction
    /// (`clock_timestamp() - pg_last_xact_replay_timestamp()`), `None` before the first.
    pub replay_age_seconds: Option<f64>,
}

impl Conn {
    /// The primary's current WAL write position (`pg_current_wal_lsn()`), as a byte offset.
    /// Fails on a standby.
    pub async fn current_wal_lsn(&self) -> Result<u64, StoreError> {
        let row = self
            .client()
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await?;
        let text: &str = row.get(0);
        parse_lsn(text)
            .ok_or_else(|| StoreError::InvalidInput(format!("unexpected WAL position {text:?}")))
    }

    /// This server's replay state (meaningful on a standby).
    pub async fn replay_state(&self) -> Result<ReplayState, StoreError> {
        let row = self
            .client()
            .query_one(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
                 pg_last_wal_receive_lsn()::text, \
                 extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8",
                &[],
            )
            .await?;
        Ok(ReplayState {
            in_recovery: row.get(0),
            replay_lsn: row.get::<_, Option<&str>>(1).and_then(parse_lsn),
            receive_lsn: row.get::<_, Option<&str>>(2).and_then(parse_lsn),
            replay_age_seconds: row.get(3),
        })
    }
}

impl crate::Store {
    /// A pool on a read replica given by `url` (application name `certhist-replica-reader`
    /// and a 2 s connect timeout unless the URL sets them). Migrations are not run: a standby is read-only and receives
    /// the primary's schema by replication.
    pub fn connect_replica(url: &str, max_connections: usize) -> Result<crate::Store, StoreError> {
        let mut config = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| StoreError::BadUrl {
                url: crate::redact::redact_url(url),
                reason: crate::redact::scrub(&e.to_string(), url),
            })?;
        if config.get_application_name().is_none() {
            config.application_name("certhist-replica-reader");
        }
        // A replica that does not answer is skipped quickly rather than waited for.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(2));
        }
        // Verified recycling: a replica can die between two health checks, leaving idle pooled
        // connections to a dead server; checking each one before it is handed out turns that
        // into a failed checkout (the replica is marked down and the read goes to the primary)
        // instead of a failed request. One empty round trip per read on a replica.
        crate::Store::connect_recycling(
            config,
            max_connections,
            deadpool_postgres::RecyclingMethod::Verified,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_parsing() {
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B_3748));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("x"), None);
        assert_eq!(parse_lsn("0/zz"), None);
    }
}
