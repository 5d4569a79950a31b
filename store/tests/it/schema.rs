//! Schema rules checked through `pg_catalog` on a migrated test database (issue 2, item 3).

use std::collections::BTreeSet;

use certhist_test_support::TestDb;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn client(db: &TestDb) -> Client {
    let (client, connection) = db.pg_config().connect(NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// One index of a table in `public`, with its key columns as `pg_get_indexdef` prints them
/// (`name`, `reverse(name)`, `lower(issuer_cn)`).
#[derive(Debug, Clone)]
struct Index {
    table: String,
    unique: bool,
    primary: bool,
    partial: bool,
    method: String,
    columns: Vec<String>,
    opclasses: Vec<String>,
}

async fn indexes(client: &Client) -> Vec<Index> {
    let rows = client
        .query(
            "SELECT t.relname::text, i.indisunique, i.indisprimary,
                    i.indpred IS NOT NULL, am.amname::text,
                    array(SELECT pg_get_indexdef(i.indexrelid, k, true)
                          FROM generate_series(1, i.indnkeyatts::int) k ORDER BY k),
                    array(SELECT oc.opcname::text
                          FROM unnest(i.indclass::oid[]) WITH ORDINALITY u(oid, ord)
                          JOIN pg_opclass oc ON oc.oid = u.oid ORDER BY u.ord)
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_am am ON am.oid = c.relam
             WHERE t.relnamespace = 'public'::regnamespace AND i.indisvalid
             ORDER BY 1, c.relname",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| Index {
            table: r.get(0),
            unique: r.get(1),
            primary: r.get(2),
            partial: r.get(3),
            method: r.get(4),
            columns: r.get(5),
            opclasses: r.get(6),
        })
        .collect()
}

fn table_indexes<'a>(all: &'a [Index], table: &str) -> Vec<&'a Index> {
    all.iter().filter(|i| i.table == table).collect()
}

fn primary_key(all: &[Index], table: &str) -> Vec<String> {
    let pks: Vec<&Index> = all
        .iter()
        .filter(|i| i.table == table && i.primary)
        .collect();
    assert_eq!(
        pks.len(),
        1,
        "{table} must have exactly one primary key: {pks:?}"
    );
    pks[0].columns.clone()
}

/// A full (non-partial) btree index whose first key column is `column`.
fn has_btree_leading(all: &[Index], table: &str, column: &str) -> bool {
    table_indexes(all, table).iter().any(|i| {
        i.method == "btree" && !i.partial && i.columns.first().map(String::as_str) == Some(column)
    })
}

#[tokio::test]
async fn every_foreign_key_has_an_index_leading_with_its_columns() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let all = indexes(&client).await;
    let fks = client
        .query(
            "SELECT t.relname::text, con.conname::text,
                    array(SELECT a.attname::text
                          FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                          ORDER BY k.ord)
             FROM pg_constraint con
             JOIN pg_class t ON t.oid = con.conrelid
             WHERE con.contype = 'f' AND t.relnamespace = 'public'::regnamespace
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let fk_tables: BTreeSet<String> = fks.iter().map(|r| r.get::<_, String>(0)).collect();
    // V2 dropped the two foreign keys V1 had (certificate_names.sha1 → certificates and
    // ct_entries.log_id → ct_logs: their per-row checks were a third to a half of those tables'
    // COPY time, and the writers guarantee both references). The bulk-written tables stay
    // without foreign keys; V4's account tables (low volume) reference `users`. Every foreign
    // key must pass the rule below; the references the writers keep must still be indexed.
    let allowed: BTreeSet<String> = ["api_keys", "sessions"].map(String::from).into();
    assert!(fk_tables.is_subset(&allowed), "{fk_tables:?}");
    for (table, column) in [("certificate_names", "sha1"), ("ct_entries", "log_id")] {
        assert!(
            table_indexes(&all, table)
                .iter()
                .any(|i| !i.partial && i.columns.first().map(String::as_str) == Some(column)),
            "{table}.{column} has no index leading with it"
        );
    }
    let mut missing = Vec::new();
    for fk in &fks {
        let table: String = fk.get(0);
        let name: String = fk.get(1);
        let columns: Vec<String> = fk.get(2);
        let wanted: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
        let covered = table_indexes(&all, &table).iter().any(|i| {
            !i.partial
                && i.method == "btree"
                && i.columns.len() >= columns.len()
                && i.columns[..columns.len()]
                    .iter()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    == wanted
        });
        if !covered {
            missing.push(format!("{table}.{name} ({})", columns.join(", ")));
        }
    }
    assert!(
        missing.is_empty(),
        "foreign keys without a leading index: {missing:?}"
    );
}

#[tokio::test]
async fn every_table_has_a_primary_key() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let rows = client
        .query(
            "SELECT c.relname::text,
                    EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conrelid = c.oid AND con.contype = 'p')
             FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let tables: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    for t in [
        "certificates",
        "certificate_names",
        "sightings",
        "cert_keys",
        "source_sets",
        "ct_logs",
        "ct_entries",
        "cache_entries",
        "imported_files",
        "schema_migrations",
    ] {
        assert!(tables.contains(t), "table {t} missing; have {tables:?}");
    }
    let without: Vec<String> = rows
        .iter()
        .filter(|r| !r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    assert!(
        without.is_empty(),
        "tables without a primary key: {without:?}"
    );
}

#[tokio::test]
async fn key_tables_have_their_keys_and_lookup_indexes() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let all = indexes(&client).await;

    // certificates: keyed by SHA-1, SHA-256 unique.
    assert_eq!(primary_key(&all, "certificates"), ["sha1"]);
    assert!(
        table_indexes(&all, "certificates")
            .iter()
            .any(|i| i.unique && !i.partial && i.columns == ["sha256"]),
        "certificates needs a unique index on sha256: {:?}",
        table_indexes(&all, "certificates")
    );

    // sightings (schema V7, seen through the `observations` view): one row per (ip, port,
    // certificate key); reverse lookup by the key; the key by SHA-1.
    assert_eq!(primary_key(&all, "sightings"), ["ip", "port", "cert_id"]);
    assert!(
        has_btree_leading(&all, "sightings", "cert_id"),
        "sightings needs an index leading with cert_id"
    );
    assert_eq!(primary_key(&all, "cert_keys"), ["id"]);
    assert!(
        table_indexes(&all, "cert_keys")
            .iter()
            .any(|i| i.unique && !i.partial && i.columns == ["sha1"]),
        "cert_keys needs a unique index on sha1"
    );

    // ct_entries: position in a log; lookup by certificate.
    assert_eq!(primary_key(&all, "ct_entries"), ["log_id", "entry_index"]);
    assert!(
        has_btree_leading(&all, "ct_entries", "sha1"),
        "ct_entries needs an index leading with sha1"
    );
}

#[tokio::test]
async fn certificate_names_support_exact_prefix_suffix_and_substring_search() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let all = indexes(&client).await;
    let btree_pattern_on = |table: &str, column: &str| {
        table_indexes(&all, table).iter().any(|i| {
            i.method == "btree"
                && !i.partial
                && i.columns.first().map(String::as_str) == Some(column)
                && i.opclasses.first().map(String::as_str) == Some("text_pattern_ops")
        })
    };
    // Exact and prefix searches go straight to the certificates' name rows; suffix, substring
    // and regex ones find the distinct names in `names` first (V3), then their rows by name.
    assert!(
        btree_pattern_on("certificate_names", "name"),
        "prefix search and the join from `names` need certificate_names (name text_pattern_ops): {all:?}"
    );
    assert!(
        btree_pattern_on("names", "reverse(name)"),
        "suffix search needs names (reverse(name) text_pattern_ops): {all:?}"
    );
    let names = table_indexes(&all, "names");
    assert!(
        names
            .iter()
            .any(|i| i.method == "gin" && i.columns == ["name"] && i.opclasses == ["gin_trgm_ops"]),
        "substring search needs a GIN trigram index on names.name: {names:?}"
    );
    assert!(
        names.iter().any(|i| i.unique && i.columns == ["name"]),
        "each distinct name is stored once: {names:?}"
    );
    // Each name once in the trigram index, not once per certificate.
    assert!(
        !table_indexes(&all, "certificate_names")
            .iter()
            .any(|i| i.method == "gin"),
        "certificate_names should have no trigram index since V3"
    );
}

/// Every hash column (`sha1`, `sha256`, `*_sha1`, `*_sha256`) checks its length, or is a
/// single-column foreign key to one that does.
#[tokio::test]
async fn hash_columns_check_their_length() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let columns = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    array(SELECT pg_get_constraintdef(con.oid)
                          FROM pg_constraint con
                          WHERE con.conrelid = c.oid AND con.contype = 'c' AND a.attnum = ANY (con.conkey)),
                    EXISTS (SELECT 1 FROM pg_constraint con
                            WHERE con.conrelid = c.oid AND con.contype = 'f' AND con.conkey = ARRAY[a.attnum])
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname ~ '(^|_)sha(1|256)$'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let checked: Vec<String> = columns
        .iter()
        .map(|r| format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    for expected in [
        "certificates.sha1",
        "certificates.sha256",
        "certificates.spki_sha256",
        "certificates.key_sha1",
        "certificate_names.sha1",
        "cert_keys.sha1",
        "ct_entries.sha1",
        "imported_files.content_sha256",
    ] {
        assert!(
            checked.contains(&expected.to_owned()),
            "{expected} not found among {checked:?}"
        );
    }
    let mut bad = Vec::new();
    for r in &columns {
        let table: String = r.get(0);
        let column: String = r.get(1);
        let ty: String = r.get(2);
        let checks: Vec<String> = r.get(3);
        let is_foreign_key: bool = r.get(4);
        if is_foreign_key {
            // A foreign key to a length-checked hash column is as good as a check.
            continue;
        }
        let bytes = if column.ends_with("sha1") { 20 } else { 32 };
        let wanted = format!("length({column}) = {bytes}");
        if ty != "bytea" || !checks.iter().any(|c| c.contains(&wanted)) {
            bad.push(format!(
                "{table}.{column} ({ty}): checks {checks:?}, want {wanted}"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "hash columns without a length CHECK: {bad:?}"
    );
}

/// The CHECKs are enforced: a 19-byte SHA-1 or a 31-byte SHA-256 is refused.
#[tokio::test]
async fn wrong_length_hashes_are_rejected() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    let err = client
        .execute(
            "INSERT INTO certificates (sha1, sha256, der) VALUES ($1, $2, '\\x30'::bytea)",
            &[&vec![0u8; 19], &vec![0u8; 32]],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{err}");
    let err = client
        .execute(
            "INSERT INTO certificates (sha1, sha256, der) VALUES ($1, $2, '\\x30'::bytea)",
            &[&vec![0u8; 20], &vec![0u8; 31]],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{err}");
    let n = client
        .execute(
            "INSERT INTO certificates (sha1, sha256, der) VALUES ($1, $2, '\\x30'::bytea)",
            &[&vec![1u8; 20], &vec![1u8; 32]],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// The test database is migrated to the latest embedded version, isolated from other test
/// databases, and dropped with its `TestDb`.
#[tokio::test]
async fn test_databases_are_migrated_isolated_and_dropped() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    assert_ne!(a.name(), b.name());
    let ca = client(&a).await;
    let cb = client(&b).await;
    let versions: Vec<i32> = ca
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let embedded: Vec<i32> = certhist_store::applied_versions()
        .iter()
        .map(|v| v.0 as i32)
        .collect();
    assert!(!embedded.is_empty());
    assert_eq!(versions, embedded);

    ca.execute(
        "INSERT INTO ct_logs (url, kind) VALUES ('https://a.example/', 'rfc6962')",
        &[],
    )
    .await
    .unwrap();
    let in_b: i64 = cb
        .query_one("SELECT count(*) FROM ct_logs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_b, 0, "databases must be isolated");

    // The Store from the harness works too.
    let conn = a.store().conn().await.unwrap();
    drop(conn);

    let a_name = a.name().to_owned();
    let exists = |name: String| {
        let cb = &cb;
        async move {
            cb.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(exists(a_name.clone()).await);
    drop(ca);
    drop(a);
    assert!(
        !exists(a_name).await,
        "dropping TestDb must drop its database"
    );
}

/// Schema V7 (docs/SCALING.md §3): a sighting of an IPv4 address is a 55-byte heap tuple (60 B
/// with alignment and its line pointer), and the `observations` view keeps the old columns.
/// Sizes per row of real data are measured by scripts (docs/BENCHMARKS.md), not asserted here.
#[tokio::test]
async fn sightings_are_lean_and_the_observations_view_keeps_the_old_shape() {
    let db = TestDb::new().await;
    let client = client(&db).await;
    client
        .batch_execute(
            "INSERT INTO cert_keys (sha1) VALUES ('\\x00112233445566778899aabbccddeeff00112233');
             INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
             SELECT id, s2k('2024-01-01T00:00:00.75Z'), s2k('2024-02-01Z'), 3, (443 - 32768)::smallint,
                    source_set_id('{sonar,scan,sonar}'), '192.0.2.1'
             FROM cert_keys",
        )
        .await
        .unwrap();
    let size: i32 = client
        .query_one("SELECT pg_column_size(s.*) FROM sightings s", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(size, 55, "24-byte tuple header + 31 bytes of data");
    let types: Vec<(String, String)> = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE a.attrelid = 'observations'::regclass AND a.attnum > 0 ORDER BY a.attnum",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [
        ("ip", "inet"),
        ("port", "integer"),
        ("sha1", "bytea"),
        ("first_seen", "timestamp with time zone"),
        ("last_seen", "timestamp with time zone"),
        ("times_seen", "bigint"),
        ("sources", "text[]"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(types, want);
    let r = client
        .query_one(
            "SELECT port, encode(sha1, 'hex'), first_seen = '2024-01-01Z', times_seen,
                    sources FROM observations",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 443);
    assert_eq!(
        r.get::<_, String>(1),
        "00112233445566778899aabbccddeeff00112233"
    );
    assert!(
        r.get::<_, bool>(2),
        "seconds since 2000, sub-second parts dropped"
    );
    assert_eq!(r.get::<_, i64>(3), 3);
    assert_eq!(r.get::<_, Vec<String>>(4), ["scan", "sonar"]);
}
