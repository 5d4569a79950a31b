//! Issue 15: the schema stays within the Citus plan of `docs/SCALING.md`, checked on the live
//! catalog of a migrated database.
//!
//! The plan is read from the ```` ```citus-plan ```` block of `docs/SCALING.md` (table, kind —
//! `distributed`, `reference` or `local` —, distribution column, co-location group) and the
//! known departures from its rules from the ```` ```citus-exceptions ```` block. The rules:
//!
//! 1. every table of `public` is classified, and every classified table exists;
//! 2. a distribution column exists, is `NOT NULL`, and its type has a default hash operator
//!    class; tables of one co-location group have distribution columns of one type;
//! 3. every primary key, unique constraint and unique index of a distributed table contains its
//!    distribution column as a plain key column;
//! 4. a foreign key between distributed tables joins the two distribution columns and the two
//!    tables are in one co-location group; a distributed table may reference a reference table;
//!    a reference table references only reference tables; a local table references only local
//!    or reference tables; nothing references a local table but a local table;
//! 5. no sequence-generated column (identity, `serial`) on a distributed table (a departure is
//!    named `table.column` in the exceptions block).
//!
//! The departures found must be exactly the documented exceptions: a new one fails (fix the
//! schema or document it), and so does a documented one that is gone (update the document).

use std::collections::{BTreeMap, BTreeSet};

use certhist_test_support::TestDb;
use tokio_postgres::{Client, NoTls};

const SCALING_MD: &str = include_str!("../../../docs/SCALING.md");

#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    kind: String,
    column: Option<String>,
    group: Option<String>,
}

/// The lines of the fenced block ```` ```NAME ```` (comments and blank lines skipped).
fn block<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("```{name}");
    let mut lines = text.lines().skip_while(|l| l.trim() != open);
    assert!(
        lines.next().is_some(),
        "docs/SCALING.md has no {open} block"
    );
    lines
        .take_while(|l| l.trim() != "```")
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn plan() -> BTreeMap<String, Plan> {
    let mut out = BTreeMap::new();
    for line in block(SCALING_MD, "citus-plan") {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            f.len(),
            4,
            "citus-plan line {line:?}: table kind column group"
        );
        let opt = |s: &str| (s != "-").then(|| s.to_owned());
        assert!(
            ["distributed", "reference", "local"].contains(&f[1]),
            "citus-plan line {line:?}: unknown kind"
        );
        assert_eq!(
            f[1] == "distributed",
            f[2] != "-",
            "citus-plan line {line:?}: a distribution column for distributed tables only"
        );
        let old = out.insert(
            f[0].to_owned(),
            Plan {
                kind: f[1].to_owned(),
                column: opt(f[2]),
                group: opt(f[3]),
            },
        );
        assert!(old.is_none(), "{} classified twice", f[0]);
    }
    out
}

async fn client(db: &TestDb) -> Client {
    let (client, connection) = db.pg_config().connect(NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

#[tokio::test]
async fn schema_keeps_the_citus_plan() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    let plan = plan();
    let exceptions: BTreeSet<String> = block(SCALING_MD, "citus-exceptions")
        .into_iter()
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let mut found: BTreeSet<String> = BTreeSet::new();

    // 1. Every table classified, every classified table present.
    let tables: BTreeSet<String> = c
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let planned: BTreeSet<String> = plan.keys().cloned().collect();
    let unclassified: Vec<_> = tables.difference(&planned).collect();
    assert!(
        unclassified.is_empty(),
        "tables missing from the citus-plan block of docs/SCALING.md: {unclassified:?} (classify them: distributed by which column, reference or local)"
    );
    let gone: Vec<_> = planned.difference(&tables).collect();
    assert!(
        gone.is_empty(),
        "docs/SCALING.md plans tables that do not exist: {gone:?}"
    );

    // 2. Distribution columns: present, NOT NULL, hashable; one type per co-location group.
    let mut group_types: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (table, p) in &plan {
        let Some(col) = &p.column else { continue };
        let row = c
            .query_opt(
                "SELECT a.attnotnull, format_type(a.atttypid, a.atttypmod),
                        EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                                WHERE am.amname = 'hash' AND oc.opcdefault
                                  AND oc.opcintype = a.atttypid)
                 FROM pg_attribute a
                 WHERE a.attrelid = ('public.' || quote_ident($1))::regclass AND a.attname = $2
                   AND NOT a.attisdropped",
                &[table, col],
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{table}: no distribution column {col}"));
        let (not_null, ty, hashable): (bool, String, bool) = (row.get(0), row.get(1), row.get(2));
        assert!(
            not_null,
            "{table}.{col}: a distribution column must be NOT NULL"
        );
        assert!(
            hashable,
            "{table}.{col}: type {ty} has no hash operator class"
        );
        if let Some(g) = &p.group {
            let (first, first_ty) = group_types
                .entry(g.clone())
                .or_insert_with(|| (table.clone(), ty.clone()))
                .clone();
            assert_eq!(
                ty, first_ty,
                "co-location group {g}: {table}.{col} is {ty} but {first}'s column is {first_ty}"
            );
        }
    }

    // 3. Unique indexes of distributed tables contain the distribution column.
    let uniques = c
        .query(
            "SELECT t.relname::text, ic.relname::text,
                    array(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k)
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = 'public' AND i.indisunique",
            &[],
        )
        .await
        .unwrap();
    let mut checked_unique = 0;
    for r in &uniques {
        let (table, index, cols): (String, String, Vec<String>) = (r.get(0), r.get(1), r.get(2));
        let Some(col) = plan.get(&table).and_then(|p| p.column.as_ref()) else {
            continue;
        };
        checked_unique += 1;
        if !cols.contains(col) {
            found.insert(index);
        }
    }
    assert!(
        checked_unique >= 5,
        "too few unique indexes checked: {checked_unique}"
    );

    // 4. Foreign keys.
    let fks = c
        .query(
            "SELECT con.conname::text, t.relname::text, rt.relname::text,
                    array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
                    array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
             FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
             JOIN pg_class rt ON rt.oid = con.confrelid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = 'public' AND con.contype = 'f'",
            &[],
        )
        .await
        .unwrap();
    for r in &fks {
        let (name, from, to, cols, ref_cols): (String, String, String, Vec<String>, Vec<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let (pf, pt) = (&plan[&from], &plan[&to]);
        let ok = match (pf.kind.as_str(), pt.kind.as_str()) {
            ("distributed", "distributed") => {
                pf.group.is_some()
                    && pf.group == pt.group
                    && cols.iter().zip(&ref_cols).any(|(a, b)| {
                        Some(a) == pf.column.as_ref() && Some(b) == pt.column.as_ref()
                    })
            }
            ("distributed", "reference") => true,
            ("reference", "reference") => true,
            ("local", "local" | "reference") => true,
            _ => false,
        };
        if !ok {
            found.insert(name);
        }
    }

    // 5. No sequence-generated column on a distributed table.
    for (table, p) in &plan {
        if p.kind != "distributed" {
            continue;
        }
        let generated: Vec<String> = c
            .query(
                "SELECT a.attname::text FROM pg_attribute a
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = ('public.' || quote_ident($1))::regclass AND a.attnum > 0
                   AND NOT a.attisdropped
                   AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')",
                &[table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // A departure named `table.column`, documented in the exceptions block.
        for col in generated {
            found.insert(format!("{table}.{col}"));
        }
    }

    assert_eq!(
        found, exceptions,
        "departures from the Citus rules (left) differ from the citus-exceptions block of docs/SCALING.md (right): fix the schema, or document the departure and how it is resolved before distribution"
    );
}
