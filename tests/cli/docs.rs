//! Figures in the docs that are computed from committed data agree with that data.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{stderr, stdout};

/// The per-target fuzzing ledger in docs/RELIABILITY.md is the output of
/// `scripts/fuzz.sh --ledger` over the committed fuzz/runs.tsv: a run recorded without
/// regenerating the table (or a table edited by hand) fails here.
#[test]
fn reliability_fuzz_ledger_matches_runs_tsv() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/fuzz.sh"))
        .arg("--ledger")
        .output()
        .unwrap();
    assert!(out.status.success(), "fuzz.sh --ledger: {}", stderr(&out));
    let ledger = stdout(&out);
    let table: Vec<&str> = ledger.lines().filter(|l| l.starts_with('|')).collect();
    // A header and its rule, then one row per fuzz target of fuzz/Cargo.toml, in name order.
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let mut targets: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|bin| bin.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    targets.sort_unstable();
    let listed: Vec<&str> = table[2..]
        .iter()
        .map(|row| row.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(listed, targets, "{ledger}");

    let doc = std::fs::read_to_string(root.join("docs/RELIABILITY.md")).unwrap();
    let section = doc
        .split("### CPU time per target")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("docs/RELIABILITY.md has a \"### CPU time per target\" section");
    let documented: Vec<&str> = section.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(
        documented, table,
        "docs/RELIABILITY.md's ledger differs from `scripts/fuzz.sh --ledger`; paste its output"
    );
    let summary = ledger.lines().last().unwrap();
    assert!(
        section.contains(summary),
        "docs/RELIABILITY.md lacks the ledger's summary line {summary:?}"
    );
}

/// `scripts/fuzz.sh --reset` and the ledger's counting, on a runs.tsv written here: a target
/// counts only its `ok` runs after its last failure or `RESET` row, and `--reset` refuses what it
/// cannot record. Runs in a copy of the script beside a copy of fuzz/Cargo.toml (it reads the
/// target names from there and writes fuzz/runs.tsv).
#[test]
fn fuzz_ledger_counts_from_the_last_failure_or_reset() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::create_dir_all(dir.path().join("fuzz")).unwrap();
    std::fs::copy(
        root.join("scripts/fuzz.sh"),
        dir.path().join("scripts/fuzz.sh"),
    )
    .unwrap();
    std::fs::copy(
        root.join("fuzz/Cargo.toml"),
        dir.path().join("fuzz/Cargo.toml"),
    )
    .unwrap();
    let m = "2 cores, 23 GiB, x86_64";
    let rows = [
        format!("2026-01-01T00:00:00Z\t{m}\tx509\t100\t1000\t600\t10\t100\tok"),
        format!("2026-01-02T00:00:00Z\t{m}\tzeek\t100\t1000\t3000\t20\t100\tok"),
        format!("2026-01-03T00:00:00Z\t{m}\tzeek\t100\t500\t50\t21\t100\tPANIC fuzz/artifacts/zeek/crash-1"),
        format!("2026-01-04T00:00:00Z\t{m}\tzeek\t100\t2000\t1200\t22\t100\tok"),
        format!("2026-01-05T00:00:00Z\t{m}\tx509\t100\t3000\t3000\t11\t100\tok"),
    ];
    let header = "date\tmachine\ttarget\tseconds\texecs\tcpu_s\tcov\tpeak_rss_mb\tresult";
    std::fs::write(
        dir.path().join("fuzz/runs.tsv"),
        format!("{header}\n{}\n", rows.join("\n")),
    )
    .unwrap();
    let fuzz_sh = |args: &[&str]| {
        Command::new("bash")
            .arg(dir.path().join("scripts/fuzz.sh"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let row = |ledger: &str, target: &str| {
        ledger
            .lines()
            .find(|l| l.starts_with(&format!("| {target} |")))
            .unwrap()
            .to_owned()
    };

    let before = stdout(&fuzz_sh(&["--ledger"]));
    // x509: 600 + 3000 CPU s = 60.0 min, two runs, the goal met.
    assert_eq!(
        row(&before, "x509"),
        "| x509 | 2 | 4,000 | 3,000 | 60.0 | 11 | first run | **yes** |"
    );
    // zeek: only the run after the failure (1200 s = 20.0 min).
    assert_eq!(
        row(&before, "zeek"),
        "| zeek | 1 | 2,000 | 1,200 | 20.0 | 22 | failure 2026-01-03 | no |"
    );

    let reset = fuzz_sh(&["--reset", "x509", "abc123 parser rewritten"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    let after = stdout(&fuzz_sh(&["--ledger"]));
    assert!(
        row(&after, "x509").starts_with("| x509 | 0 | 0 | 0 | 0.0 | - | reset 20"),
        "{after}"
    );
    assert_eq!(row(&after, "zeek"), row(&before, "zeek"));
    assert!(after.ends_with("0 of 19 targets at 60 CPU-minutes; 0.3 CPU-hours in all\n"));
    let log = std::fs::read_to_string(dir.path().join("fuzz/runs.tsv")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(
        last.ends_with("\tx509\t0\t0\t0\t-\t-\tRESET abc123 parser rewritten"),
        "{last}"
    );

    for bad in [
        &["--reset", "nope", "why"][..],
        &["--reset", "x509", ""],
        &["--reset", "x509", "a\tb"],
        &["--reset", "x509"],
    ] {
        let out = fuzz_sh(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&out).contains("fuzz.sh --reset"), "{bad:?}");
    }
    let unchanged = std::fs::read_to_string(dir.path().join("fuzz/runs.tsv")).unwrap();
    assert_eq!(unchanged, log, "a refused --reset writes nothing");
}
