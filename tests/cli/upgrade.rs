//! `certhist db upgrade`: a database created before schema V7 (lean observations) is converted
//! in place, in committed batches; killed mid-way and run again, it gives exactly the rows a
//! fresh V7 database gets from the same writes. While the conversion is pending, commands that
//! use observations refuse with a message naming `certhist db upgrade`.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use certhist_model::ObservationRow;
use certhist_test_support::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use tokio_postgres::types::Type;

use crate::support::{certhist, client, stderr, url};

/// V6's merge of sightings (store/src/write/merge_observations.sql before V7), from arrays of
/// one batch with one source label.
const V6_MERGE: &str = "INSERT INTO observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
SELECT ip, port, sha1, f, l, n, ARRAY[$7::text]
FROM unnest($1::inet[], $2::int4[], $3::bytea[], $4::timestamptz[], $5::timestamptz[], $6::int8[])
     AS u(ip, port, sha1, f, l, n)
ON CONFLICT (ip, port, sha1) DO UPDATE SET
    first_seen = least(observations.first_seen, excluded.first_seen),
    last_seen  = greatest(observations.last_seen, excluded.last_seen),
    times_seen = observations.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ observations.sources THEN observations.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(observations.sources || excluded.sources) AS u(s) ORDER BY s)
                 END";

/// Deterministic batches of sightings: IPv4 and IPv6 addresses, ports 0 to 65535, sub-second
/// times, counts past the int4 range, certificates on several addresses, and later batches that
/// overlap earlier keys with other source labels.
fn batches() -> Vec<Vec<ObservationRow>> {
    let t0: DateTime<Utc> = Utc.with_ymd_and_hms(2019, 3, 1, 12, 0, 0).unwrap();
    let row = |i: u32, source: &str| {
        let ip: IpAddr = if i % 7 == 0 {
            format!("2001:db8::{:x}", i % 97).parse().unwrap()
        } else {
            format!("10.{}.{}.{}", i % 3, (i / 3) % 250, i % 11)
                .parse()
                .unwrap()
        };
        let port = match i % 5 {
            0 => 0,
            1 => 65535,
            2 => 8443,
            _ => 443,
        };
        let mut sha1 = [0u8; 20];
        sha1[..4].copy_from_slice(&(i.wrapping_mul(2654435761) % 331).to_be_bytes());
        sha1[19] = (i % 13) as u8;
        let first = t0
            + chrono::Duration::seconds(i64::from(i) * 3607)
            + chrono::Duration::microseconds(i64::from(i % 1000) * 997);
        ObservationRow {
            ip,
            port,
            sha1,
            first_seen: first,
            last_seen: first + chrono::Duration::hours(i64::from(i % 48)),
            times_seen: if i % 101 == 0 {
                3_000_000_000
            } else {
                1 + i64::from(i % 9)
            },
            source: source.to_owned(),
        }
    };
    let dedup = |rows: Vec<ObservationRow>| {
        let mut seen = std::collections::HashSet::new();
        rows.into_iter()
            .filter(|r| seen.insert((r.ip, r.port, r.sha1)))
            .collect::<Vec<_>>()
    };
    vec![
        dedup((0..700).map(|i| row(i, "sonar")).collect()),
        dedup((350..900).map(|i| row(i, "censys")).collect()),
        dedup((0..200).step_by(3).map(|i| row(i, "sonar")).collect()),
        dedup((600..650).map(|i| row(i, "aardvark")).collect()),
    ]
}

/// Turns a V7 test database into a V6 one holding no observation yet: the schema dropped and
/// V1–V6 applied from schema/, recorded without checksums (as by a runner before checksums;
/// the V7 runner backfills them).
async fn make_v6(db: &TestDb) {
    let c = client(db).await;
    c.batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await
        .unwrap();
    c.batch_execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now(), sql_sha256 bytea)",
    )
    .await
    .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for v in 1..=6 {
        let path = files
            .iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("V{v}__"))
            })
            .unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        let name = name.split_once("__").unwrap().1;
        c.batch_execute(&std::fs::read_to_string(path).unwrap())
            .await
            .unwrap();
        c.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&v, &name],
        )
        .await
        .unwrap();
    }
}

async fn write_v6(db: &TestDb, batch: &[ObservationRow]) {
    let c = client(db).await;
    let ips: Vec<IpAddr> = batch.iter().map(|r| r.ip).collect();
    let ports: Vec<i32> = batch.iter().map(|r| i32::from(r.port)).collect();
    let sha1s: Vec<Vec<u8>> = batch.iter().map(|r| r.sha1.to_vec()).collect();
    let firsts: Vec<DateTime<Utc>> = batch.iter().map(|r| r.first_seen).collect();
    let lasts: Vec<DateTime<Utc>> = batch.iter().map(|r| r.last_seen).collect();
    let counts: Vec<i64> = batch.iter().map(|r| r.times_seen).collect();
    c.execute_typed(
        V6_MERGE,
        &[
            (&ips, Type::INET_ARRAY),
            (&ports, Type::INT4_ARRAY),
            (&sha1s, Type::BYTEA_ARRAY),
            (&firsts, Type::TIMESTAMPTZ_ARRAY),
            (&lasts, Type::TIMESTAMPTZ_ARRAY),
            (&counts, Type::INT8_ARRAY),
            (&batch[0].source, Type::TEXT),
        ],
    )
    .await
    .unwrap();
}

/// Rows and a digest of `SELECT … FROM observations ORDER BY ip, port, sha1`.
async fn digest(db: &TestDb) -> (i64, String) {
    let c = client(db).await;
    c.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let r = c
        .query_one(
            "SELECT count(*), md5(coalesce(string_agg(
                 format('%s|%s|%s|%s|%s|%s|%s', ip, port, encode(sha1, 'hex'), first_seen,
                        last_seen, times_seen, sources), E'\\n' ORDER BY ip, port, sha1), ''))
             FROM observations",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn a_v6_database_converted_with_a_kill_in_between_equals_a_fresh_v7_database() {
    // Expected: the same writes on V7.
    let fresh = TestDb::new().await;
    let store = fresh.store();
    for batch in batches() {
        let mut conn = store.conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.write_observations(&batch).await.unwrap();
        tx.commit().await.unwrap();
    }
    let expected = digest(&fresh).await;
    assert!(expected.0 > 500, "{expected:?}");

    // The same writes on V6, then the new binary.
    let old = TestDb::new().await;
    make_v6(&old).await;
    for batch in batches() {
        write_v6(&old, &batch).await;
    }
    let v6_rows: i64 = client(&old)
        .await
        .query_one("SELECT count(*) FROM observations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v6_rows, expected.0);

    // Any command using observations applies V7, then refuses until the conversion is done.
    let o = certhist(&old, &["query", "ip", "10.0.0.0/8"]);
    assert!(!o.status.success());
    let message = stderr(&o);
    assert!(
        message.contains("certhist db upgrade")
            && message.contains(&format!("0 of {v6_rows} rows")),
        "{message}"
    );

    // Small batches, killed once rows are being copied.
    let mut child = Command::new(env!("CARGO_BIN_EXE_certhist"))
        .args(["--json", "db", "upgrade", "--batch-rows", "7"])
        .env("DATABASE_URL", url(&old))
        .env("CERTHIST_UPGRADE_PAUSE_MS", "15")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut killed_at = None;
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = v["rows_done"].as_i64().unwrap();
        if v["phase"] == "rows" && done >= 70 {
            assert!(v["seconds_left"].as_f64().is_some(), "{v}");
            child.kill().unwrap();
            killed_at = Some(done);
            break;
        }
    }
    child.wait().unwrap();
    let killed_at = killed_at.expect("the conversion reached the row copy");
    assert!(killed_at < v6_rows);
    let c = client(&old).await;
    let (done, total): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT rows_done, rows_total FROM observation_conversion",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(done >= killed_at && done < total, "{done} of {total}");
    let copied: i64 = c
        .query_one("SELECT count(*) FROM sightings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(copied, done, "the cursor commits with its batch");
    let o = certhist(&old, &["db", "status"]);
    assert!(
        !o.status.success() && stderr(&o).contains(&format!("{done} of {total} rows")),
        "{}",
        stderr(&o)
    );

    // Run again: continues from the cursor and finishes.
    let o = certhist(&old, &["db", "upgrade", "--batch-rows", "500"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(digest(&old).await, expected);
    let leftovers: (bool, bool) = {
        let r = c
            .query_one(
                "SELECT to_regclass('observations_v6') IS NULL,
                        to_regclass('observation_conversion') IS NULL",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(leftovers, (true, true));
    // The same indexes as a new database's.
    let indexes = |c: tokio_postgres::Client| async move {
        c.query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'sightings' ORDER BY indexname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
    };
    assert_eq!(indexes(c).await, indexes(client(&fresh).await).await);
    // Commands work again, and a second upgrade has nothing to do.
    crate::support::ok(&old, &["query", "ip", "10.0.0.0/8"]);
    let again = crate::support::ok(&old, &["db", "upgrade"]);
    assert!(again.contains("up to date"), "{again}");
}
