//! The OpenAPI document as a contract, checked by schemathesis (PyPI, pinned with its whole
//! dependency closure in `tests/compat/requirements.txt`, venv at `target/pyenv` as for
//! `compat`): every operation of `/api/v1/openapi.json` is called with generated schema-valid
//! and schema-invalid requests against a real server (loopback socket, seeded database, an
//! admin account's API key), with every check (all are on by default) — no 5xx, status codes / content types / headers
//! / bodies as documented, schema-invalid requests rejected, schema-valid requests accepted,
//! credentials not ignored, 405 with `Allow` for undocumented methods.
//!
//! Reproducible and bounded: a fixed seed, deterministic generation (no example
//! database), `--max-examples`. `tests/compat/schemathesis.toml` and `schemathesis_hooks.py` say which
//! checks are relaxed for which operation, and why.

use std::path::PathBuf;
use std::process::Command;

use certhist_api::ServeConfig;
use certhist_model::views::Role;
use certhist_store::Actor;

use crate::compat::python;
use crate::*;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Examples per operation and phase (kept small: the run takes about a minute).
const MAX_EXAMPLES: &str = "30";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation() {
    let Some(py) = python() else { return };
    let has_schemathesis = Command::new(&py)
        .args(["-c", "import schemathesis"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_schemathesis {
        let how = "rm -rf target/pyenv && .ci/run (or pip install --no-deps -r tests/compat/requirements.txt into target/pyenv)";
        if std::env::var("CERTHIST_COMPAT_OPTIONAL").as_deref() == Ok("1") {
            eprintln!("SKIPPED: schemathesis is not in target/pyenv; {how}");
            return;
        }
        panic!("the contract test needs schemathesis in target/pyenv: {how}  (or CERTHIST_COMPAT_OPTIONAL=1)");
    }

    let db = seeded().await;
    let store = db.store();
    let key = {
        let mut conn = store.conn().await.unwrap();
        let who = Actor {
            name: Some("cli:test".to_owned()),
            source: Some("cli".to_owned()),
        };
        conn.user_add(&who, "contract", Role::Admin, None)
            .await
            .unwrap()
            .secret()
            .to_owned()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig {
        // Thousands of requests from one address and key in a minute: no rate limits.
        rate_limit_per_ip: None,
        rate_limit_per_key: None,
        // The `ignored_auth` check sends wrong credentials on purpose: many failed logins.
        login_failure_limit: certhist_api::auth::LoginLimit {
            per_minute: 1_000_000,
            burst: 1_000_000,
        },
        ..ServeConfig::default()
    };
    let server = tokio::spawn(certhist_api::serve_on(listener, store, config, async {
        let _ = stopped.await;
    }));

    let operations = {
        let doc = serde_json::to_value(certhist_api::openapi()).unwrap();
        doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum::<usize>()
    };
    let report = PathBuf::from(std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into()))
        .join(format!("schemathesis-{}.xml", std::process::id()));
    let compat = PathBuf::from(WORKSPACE).join("tests/compat");
    let url = format!("http://{addr}/api/v1/openapi.json");
    let args: Vec<String> = vec![
        "-m".into(),
        "schemathesis.cli".into(),
        "--no-color".into(),
        "--config-file".into(),
        compat.join("schemathesis.toml").display().to_string(),
        "run".into(),
        url,
        "--url".into(),
        format!("http://{addr}"),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--max-examples".into(),
        MAX_EXAMPLES.into(),
        "--seed".into(),
        "20261203".into(),
        "--generation-deterministic".into(),
        // One worker: hypothesis under CPython 3.11 fails in `ast.parse` from two threads
        // ("AST constructor recursion depth mismatch").
        "--workers".into(),
        "1".into(),
        "--request-timeout".into(),
        "60".into(),
        "--header".into(),
        format!("Authorization: Bearer {key}"),
        "--report".into(),
        "junit".into(),
        "--report-junit-path".into(),
        report.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .args(&args)
            // schemathesis keeps a `.schemathesis/` cache in its working directory.
            .current_dir(std::env::temp_dir())
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", &compat)
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let _ = stop.send(());
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The summary (operations, phases, test cases) for the log of the run.
    if let Some(at) = stdout.find("= SUMMARY =") {
        eprintln!("{}", &stdout[at..]);
    }
    assert!(
        out.status.success(),
        "schemathesis reported failures ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The run tested every operation of the document (none skipped by a filter or an error).
    let junit = std::fs::read_to_string(&report).expect("JUnit report");
    let _ = std::fs::remove_file(&report);
    let tested = junit.matches("<testcase").count();
    assert_eq!(
        tested, operations,
        "schemathesis tested {tested} of the document's {operations} operations:\n{stdout}"
    );
    assert!(
        !junit.contains("<failure") && !junit.contains("<error"),
        "{junit}"
    );
}
