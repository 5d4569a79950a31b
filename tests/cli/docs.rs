//! Figures in the docs that are computed from committed data agree with that data.

use std::path::PathBuf;
use std::process::Command;

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
    assert!(
        out.status.success(),
        "fuzz.sh --ledger: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ledger = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = ledger.lines().filter(|l| l.starts_with('|')).collect();
    // 19 targets, a header and its rule; every target listed.
    assert_eq!(table.len(), 21, "{ledger}");
    for target in ["x509", "zeek", "tls_stream", "ct_tile", "api_params"] {
        assert!(
            table
                .iter()
                .any(|l| l.starts_with(&format!("| {target} |"))),
            "{target} missing from\n{ledger}"
        );
    }

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
