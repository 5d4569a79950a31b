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
