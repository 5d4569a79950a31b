//! The database URL is a secret (issue 11, item 8): its password never shows in `Debug` output or
//! in the error of a failed open.

use certhist_store::{DbConfig, Store, StoreError};

const PASSWORD: &str = "s3cr3t-pw";

/// A loopback port nothing listens on: taken from the system, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(url: &str) -> DbConfig {
    DbConfig {
        url: Some(url.to_owned().into()),
        ..DbConfig::managed("/nonexistent/certhist-home")
    }
}

/// Issue 11: `Debug` of the config and of a pool, and the error of an open that cannot connect,
/// hold no password.
#[tokio::test]
async fn the_password_is_not_in_debug_output_or_connection_errors() {
    let url = format!("postgres://u:{PASSWORD}@127.0.0.1:{}/x", closed_port());
    let with_url = config(&url);
    let debug = format!("{with_url:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("postgres://u:***@127.0.0.1:"), "{debug}");

    let err = Store::open(&with_url).await.unwrap_err();
    assert!(matches!(err, StoreError::Pool(_)), "{err:?}");
    let text = format!("{err} / {err:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("refused"), "{text}");

    let store = Store::connect_only(url.parse().unwrap(), 1).unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("127.0.0.1"), "{debug}");

    let kv = config(&format!(
        "host=127.0.0.1 port={} user=u password={PASSWORD} dbname=x",
        closed_port()
    ));
    let debug = format!("{kv:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("password=***"), "{debug}");
}

/// Issue 11: a URL that does not parse is quoted in the error with its password masked.
#[tokio::test]
async fn a_bad_url_is_quoted_without_its_password() {
    let err = Store::open(&config(&format!(
        "postgres://u:{PASSWORD}@127.0.0.1:notaport/x"
    )))
    .await
    .unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        text.contains("postgres://u:***@127.0.0.1:notaport/x"),
        "{text}"
    );
}
