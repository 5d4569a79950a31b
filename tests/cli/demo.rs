//! `certhist demo` on its own managed cluster (the embedded default path, as in README.md).

use std::process::Command;

#[test]
fn demo_runs_on_a_fresh_managed_home_and_is_repeatable() {
    let home = tempfile::Builder::new()
        .prefix("certhist-demo-")
        .tempdir_in("/tmp")
        .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_certhist"))
            .args(args)
            .env("CERTHIST_HOME", home.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let first = run(&["demo"]);
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}\n{out}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("15 new, 0 already known, 1 unparsable"),
        "{out}"
    );
    assert!(
        out.contains("10 rows stored, 1 invalid row(s) skipped"),
        "{out}"
    );
    assert!(out.contains("seen on 3 host(s)"), "{out}");
    assert!(
        out.contains("Web UI on this data: certhist serve, then open http://127.0.0.1:8080/"),
        "{out}"
    );
    let second = run(&["demo"]);
    let out2 = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(out2.contains("0 new, 15 already known"), "{out2}");
    assert!(out2.contains("already imported"), "{out2}");
    let status = run(&["--json", "db", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["running"], true);
    // 15 bundled certificates and 10 sightings; 4 OCSP responder certificates carried in the
    // cryptnet cache's responses (the same each run); and per run of the scan demo 5 freshly
    // generated certificates (4 servers + 1 rotation) and 5 (ip, port, sha1) keys.
    assert!(
        out.contains("round 2: 4 handshakes ok of 5 attempts"),
        "{out}"
    );
    // CT: 1024 navigli precertificates and 5 issuers, once: the second run resumes at 1024.
    assert!(out.contains("\"entries\":1024,\"certs_new\":1029"), "{out}");
    assert!(
        out.contains("first seen in CT: 2025-05-03 17:13:19Z"),
        "{out}"
    );
    assert!(out2.contains("\"entries\":0"), "{out2}");
    assert_eq!(v["counts"]["ct_entries"], 1024);
    assert_eq!(v["counts"]["certificates"], 15 + 4 + 2 * 5 + 1029);
    assert_eq!(v["counts"]["observations"], 10 + 2 * 5);
    // The cryptnet example stored the 12 entries of the cache under the label `demo`.
    assert!(
        out.contains("http://ocsp.omniroot.com/baltimoreroot/"),
        "{out}"
    );
    // The URL list (tests/data/demo/README.md: the OCSP GET URL computed with Python's
    // cryptography for the bundled github.com certificate) resolves to that certificate, its
    // names and the one address observations.csv has it on.
    let (_, cryptnet_urls) = out
        .split_once("cryptnet tests/data/demo/cryptnet-urls.txt")
        .expect("the demo runs the URL-list cryptnet example");
    assert!(
        cryptnet_urls.contains("e3b32dab1e685b16945d1499824f6569583a9a61 (serial_and_issuer_name)"),
        "{cryptnet_urls}"
    );
    assert!(
        cryptnet_urls.contains("github.com www.github.com"),
        "{cryptnet_urls}"
    );
    assert!(
        cryptnet_urls.contains("192.0.2.10:443 2026-01-07 12:00:00Z..2026-03-30 12:00:00Z"),
        "{cryptnet_urls}"
    );
    let url = run(&["db", "url"]);
    assert!(String::from_utf8_lossy(&url.stdout).contains("certhist"));
    let stop = run(&["db", "stop"]);
    assert!(String::from_utf8_lossy(&stop.stdout).contains("stopped"));
}
