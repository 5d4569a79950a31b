//! Accounts in the store (issue 12): credentials, atomic audit entries, sessions.

use certhist_model::views::Role;
use certhist_store::read::accounts;
use certhist_store::{Actor, StoreError};
use certhist_test_support::TestDb;

fn cli() -> Actor {
    Actor {
        name: Some("cli:test".to_owned()),
        source: Some("cli".to_owned()),
    }
}

async fn audit_rows(conn: &certhist_store::Conn) -> usize {
    accounts::audit_entries(conn, None, None, 1000)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn passwords_verify_only_for_enabled_accounts() {
    let db = TestDb::new().await;
    let mut conn = db.store().conn().await.unwrap();
    conn.user_add(&cli(), "alice", Role::Analyst, Some("s3cret password"))
        .await
        .unwrap();
    conn.user_add(&cli(), "keysonly", Role::Reader, None)
        .await
        .unwrap();
    let ok = accounts::verify_password(&conn, "alice", "s3cret password")
        .await
        .unwrap()
        .expect("the right password");
    assert_eq!((ok.name.as_str(), ok.role), ("alice", Role::Analyst));
    for (user, pw) in [
        ("alice", "s3cret passwor"),
        ("alice", ""),
        ("nobody", "s3cret password"),
        ("keysonly", ""),
        ("keysonly", "anything at all"),
    ] {
        assert_eq!(
            accounts::verify_password(&conn, user, pw).await.unwrap(),
            None,
            "{user}"
        );
    }
    conn.user_set_disabled(&cli(), "alice", true).await.unwrap();
    assert_eq!(
        accounts::verify_password(&conn, "alice", "s3cret password")
            .await
            .unwrap(),
        None
    );
    // The stored hash is an argon2id PHC string, not the password.
    let users = accounts::users(&conn).await.unwrap();
    assert!(users.iter().all(|u| u.name != "alice" || u.disabled));
}

#[tokio::test]
async fn a_failed_change_leaves_no_audit_entry_and_a_change_always_has_one() {
    let db = TestDb::new().await;
    let mut conn = db.store().conn().await.unwrap();
    conn.user_add(&cli(), "bob", Role::Reader, None)
        .await
        .unwrap();
    assert_eq!(audit_rows(&conn).await, 1);
    let dup = conn.user_add(&cli(), "bob", Role::Admin, None).await;
    assert!(matches!(dup, Err(StoreError::InvalidInput(_))), "{dup:?}");
    let short = conn.user_set_password(&cli(), "bob", "short").await;
    assert!(matches!(short, Err(StoreError::InvalidInput(_))));
    let missing = conn.user_set_disabled(&cli(), "carol", true).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    let unknown_key = conn.key_revoke(&cli(), "bob", "chk_ffffffff").await;
    assert!(matches!(unknown_key, Err(StoreError::NotFound(_))));
    assert_eq!(audit_rows(&conn).await, 1, "failed changes are not audited");

    let key = conn.key_new(&cli(), "bob", Some("ci")).await.unwrap();
    let found = accounts::verify_api_key(&conn, key.secret())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key_id, Some(key.id));
    let revoked = conn
        .key_revoke(&cli(), "bob", &key.id.to_string())
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        accounts::verify_api_key(&conn, key.secret()).await.unwrap(),
        None
    );
    let entries = accounts::audit_entries(&conn, None, None, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["key.revoke", "key.new", "user.add"]);
    assert_eq!(entries[0].actor.as_deref(), Some("cli:test"));
    assert_eq!(
        entries[0].detail.as_ref().unwrap()["key_prefix"],
        key.prefix
    );
    // `since` in the future: nothing.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(accounts::audit_entries(&conn, Some(later), None, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sessions_end_when_the_account_is_disabled_or_its_password_changes() {
    let db = TestDb::new().await;
    let mut conn = db.store().conn().await.unwrap();
    conn.user_add(&cli(), "dave", Role::Admin, Some("first password"))
        .await
        .unwrap();
    let who = accounts::verify_password(&conn, "dave", "first password")
        .await
        .unwrap()
        .unwrap();
    let ttl = std::time::Duration::from_secs(3600);
    let s = conn.session_create(&cli(), &who, ttl).await.unwrap();
    let live = accounts::session(&conn, s.token()).await.unwrap().unwrap();
    assert_eq!(live.user.name, "dave");
    assert_eq!(
        live.csrf_hash,
        certhist_store::sha256(s.csrf_token().as_bytes())
    );
    assert_eq!(accounts::session(&conn, "00").await.unwrap(), None);

    conn.user_set_password(&cli(), "dave", "second password")
        .await
        .unwrap();
    assert_eq!(accounts::session(&conn, s.token()).await.unwrap(), None);

    let s = conn.session_create(&cli(), &who, ttl).await.unwrap();
    conn.user_set_disabled(&cli(), "dave", true).await.unwrap();
    assert_eq!(accounts::session(&conn, s.token()).await.unwrap(), None);

    let s = conn.session_create(&cli(), &who, ttl).await.unwrap();
    conn.user_set_disabled(&cli(), "dave", false).await.unwrap();
    let live = accounts::session(&conn, s.token()).await.unwrap().unwrap();
    conn.session_delete(&cli(), &live.token_hash).await.unwrap();
    assert_eq!(accounts::session(&conn, s.token()).await.unwrap(), None);
}
