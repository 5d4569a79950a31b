//! Table sizes: exact counts for `certhist db status`, and cheap figures for `/stats` that use
//! the planner's estimates on big tables.

use certhist_model::views::{Counts, Stats};

use crate::{Conn, StoreError};

/// Exact row counts (fine for a local database; the API may prefer estimates on big ones).
pub async fn counts(conn: &Conn) -> Result<Counts, StoreError> {
    let r = conn
        .client()
        .query_one(
            "SELECT (SELECT count(*) FROM certificates),
                    (SELECT count(*) FROM certificates WHERE parse_error IS NOT NULL),
                    (SELECT count(*) FROM certificate_names),
                    (SELECT count(*) FROM sightings),
                    (SELECT count(DISTINCT ip) FROM sightings),
                    (SELECT count(*) FROM ct_entries),
                    (SELECT count(*) FROM cache_entries)",
            &[],
        )
        .await?;
    Ok(Counts {
        certificates: r.get(0),
        unparsable: r.get(1),
        names: r.get(2),
        observations: r.get(3),
        distinct_ips: r.get(4),
        ct_entries: r.get(5),
        cache_entries: r.get(6),
    })
}

/// Table sizes: exact counts for tables the planner estimates below `exact_below` rows (or has
/// never analysed), otherwise the estimate (`pg_class.reltuples`, `pg_stats.n_distinct`), so
/// the call stays cheap on a database of any size.
pub async fn stats(conn: &Conn, exact_below: i64) -> Result<Stats, StoreError> {
    let est = conn
        .client()
        .query_one(
            "SELECT (SELECT reltuples::bigint FROM pg_class WHERE oid = 'certificates'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'certificate_names'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'sightings'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'ct_entries'::regclass),
                    (SELECT reltuples::bigint FROM pg_class WHERE oid = 'cache_entries'::regclass),
                    (SELECT n_distinct::float8 FROM pg_stats
                      WHERE schemaname = current_schema() AND tablename = 'sightings' AND attname = 'ip')",
            &[],
        )
        .await?;
    let mut estimated = false;
    let mut figure = |estimate: i64, table: &str| {
        let exact = estimate < exact_below;
        if !exact {
            estimated = true;
        }
        (exact, estimate, table.to_owned())
    };
    let parts = [
        figure(est.get(0), "certificates"),
        figure(est.get(1), "certificate_names"),
        figure(est.get(2), "sightings"),
        figure(est.get(3), "ct_entries"),
        figure(est.get(4), "cache_entries"),
    ];
    let mut values = [0i64; 5];
    for (slot, (exact, estimate, table)) in values.iter_mut().zip(parts.iter()) {
        *slot = if *exact {
            // `table` is one of the fixed names above, never user input.
            conn.client()
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await?
                .get(0)
        } else {
            *estimate
        };
    }
    let observations_exact = parts[2].0;
    let distinct_ips = if observations_exact {
        conn.client()
            .query_one("SELECT count(DISTINCT ip) FROM sightings", &[])
            .await?
            .get(0)
    } else {
        let n_distinct: Option<f64> = est.get(5);
        match n_distinct {
            Some(d) if d < 0.0 => (-d * values[2] as f64) as i64,
            Some(d) => d as i64,
            None => 0,
        }
    };
    Ok(Stats {
        estimated,
        certificates: values[0],
        names: values[1],
        observations: values[2],
        distinct_ips,
        ct_entries: values[3],
        cache_entries: values[4],
    })
}
