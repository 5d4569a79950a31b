//! Account changes (issue 12): users, passwords, API keys and web sessions. Every change writes
//! its audit entry in the same transaction, so a change is never without its record.
//!
//! Secrets never reach the database or a log: an API key (`chk_` + 40 hex digits, 160 bits from
//! the operating system's RNG) and a session token (256 bits) are stored as their SHA-256; a
//! password as an argon2id PHC string. [`NewApiKey`] and [`NewSession`] hold the one copy of
//! the secret the caller shows once; their `Debug` output redacts it.

use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use certhist_model::views::{ApiKeyView, Role};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::write::INSERT_AUDIT;
use crate::{AuditEntry, Conn, StoreError};

/// Every API key starts with this, so a leaked key is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "chk_";
/// Random bytes in an API key (160 bits).
const KEY_RANDOM_BYTES: usize = 20;
/// Characters of a key kept for listing (`chk_` + 8 hex digits).
pub const LISTED_PREFIX_CHARS: usize = 12;
/// Random bytes in a session token (256 bits).
const SESSION_RANDOM_BYTES: usize = 32;
/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest key label, in characters.
const MAX_LABEL_CHARS: usize = 200;

/// Who makes a change, as the audit log records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The account name (`cli:<os user>` for the command line); `None` for the local user of an
    /// open server.
    pub name: Option<String>,
    /// Where the request came from (a remote address, or `cli`).
    pub source: Option<String>,
}

/// A freshly made API key. The key itself is only here: show it once, then drop it.
pub struct NewApiKey {
    /// The key's id.
    pub id: i64,
    /// Its listed prefix.
    pub prefix: String,
    key: String,
}

impl NewApiKey {
    /// The key, to be shown once to its owner.
    pub fn secret(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A freshly made web session. The token goes into the cookie and nowhere else.
pub struct NewSession {
    /// The account signed in.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    token: String,
}

impl NewSession {
    /// The session token (the cookie's value).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The session's CSRF token (see [`csrf_token_for`]).
    pub fn csrf_token(&self) -> String {
        csrf_token_for(&self.token)
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// SHA-256 of `data` (how keys, session tokens and CSRF tokens are stored).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The CSRF token of the session whose token is `session_token`: SHA-256 of a fixed label and
/// the token. It is as unguessable as the token (256 random bits) and needs no storage of its
/// own, so `GET /api/v1/session` can hand it to the page at any time; the database keeps only
/// its SHA-256 (`sessions.csrf_hash`).
pub fn csrf_token_for(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"certhist-csrf\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// `n` bytes from the operating system's RNG, as lower-case hex.
fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| StoreError::Crypto(format!("operating system RNG: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A new API key and its listed prefix.
fn generate_key() -> Result<(String, String), StoreError> {
    let key = format!("{KEY_PREFIX}{}", random_hex(KEY_RANDOM_BYTES)?);
    let prefix = key[..LISTED_PREFIX_CHARS].to_owned();
    Ok((key, prefix))
}

/// Checks an account name against the rule the schema enforces (`users.name`).
pub fn check_user_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "invalid user name {:?}: 1–64 characters a-z 0-9 . _ @ -, starting with a letter or digit",
            crate::read::shorten(name)
        )))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The argon2id PHC string of `password` (argon2 defaults: 19 MiB, 2 passes, 1 lane — the
/// OWASP recommendation), computed off the async threads.
pub async fn hash_password(password: &str) -> Result<String, StoreError> {
    let password = password.to_owned();
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| StoreError::Crypto(format!("operating system RNG: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Crypto(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Crypto(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| StoreError::Crypto(e.to_string()))?
}

fn check_label(label: Option<&str>) -> Result<(), StoreError> {
    match label {
        Some(l) if l.chars().count() > MAX_LABEL_CHARS => Err(StoreError::InvalidInput(format!(
            "the key label is too long: at most {MAX_LABEL_CHARS} characters"
        ))),
        _ => Ok(()),
    }
}

fn no_such_user(name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no user named {:?}; `certhist user list` shows them",
        crate::read::shorten(name)
    ))
}

async fn audit_in(
    tx: &Transaction<'_>,
    who: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let entry = AuditEntry {
        actor: who.name.clone(),
        action: action.to_owned(),
        target: Some(target.to_owned()),
        source: who.source.clone(),
        detail: Some(detail),
    };
    tx.execute(
        INSERT_AUDIT,
        &[
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.source,
            &entry.detail,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_key(
    tx: &Transaction<'_>,
    user_id: i64,
    label: Option<&str>,
) -> Result<NewApiKey, StoreError> {
    let (key, prefix) = generate_key()?;
    let hash = sha256(key.as_bytes()).to_vec();
    let row = tx
        .query_one(
            "INSERT INTO api_keys (user_id, key_hash, prefix, label) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&user_id, &hash, &prefix, &label],
        )
        .await?;
    Ok(NewApiKey {
        id: row.get(0),
        prefix,
        key,
    })
}

async fn user_id(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    tx.query_opt("SELECT id FROM users WHERE name = $1", &[&name])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| no_such_user(name))
}

impl Conn {
    /// Creates an account with `role` (and a password when given) and its first API key
    /// (label `initial`), returned for showing once. Audited as `user.add`.
    pub async fn user_add(
        &mut self,
        who: &Actor,
        name: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<NewApiKey, StoreError> {
        check_user_name(name)?;
        let hash = match password {
            Some(p) => {
                check_password(p)?;
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let tx = self.client.transaction().await?;
        let row = tx
            .query_opt(
                "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &role.as_str(), &hash],
            )
            .await?;
        let Some(row) = row else {
            return Err(StoreError::InvalidInput(format!(
                "a user named {name:?} already exists"
            )));
        };
        let key = insert_key(&tx, row.get(0), Some("initial")).await?;
        audit_in(
            &tx,
            who,
            "user.add",
            name,
            json!({"role": role, "password": hash.is_some(), "key_prefix": key.prefix}),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Disables (`true`) or enables an account. A disabled account's keys, password and
    /// sessions stop working at once (its sessions are deleted). Audited as `user.disable` /
    /// `user.enable`.
    pub async fn user_set_disabled(
        &mut self,
        who: &Actor,
        name: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let tx = self.client.transaction().await?;
        let id = tx
            .query_opt(
                "UPDATE users SET disabled = $2, updated_at = now() WHERE name = $1 RETURNING id",
                &[&name, &disabled],
            )
            .await?
            .map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| no_such_user(name))?;
        if disabled {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
                .await?;
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit_in(&tx, who, action, name, json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets an account's password (argon2id); its web sessions end. Audited as `user.passwd`.
    pub async fn user_set_password(
        &mut self,
        who: &Actor,
        name: &str,
        password: &str,
    ) -> Result<(), StoreError> {
        check_password(password)?;
        let hash = hash_password(password).await?;
        let tx = self.client.transaction().await?;
        let id = tx
            .query_opt(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE name = $1 RETURNING id",
                &[&name, &hash],
            )
            .await?
            .map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| no_such_user(name))?;
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await?;
        audit_in(&tx, who, "user.passwd", name, json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new API key for `name`, returned for showing once. Audited as `key.new`.
    pub async fn key_new(
        &mut self,
        who: &Actor,
        name: &str,
        label: Option<&str>,
    ) -> Result<NewApiKey, StoreError> {
        check_label(label)?;
        let tx = self.client.transaction().await?;
        let id = user_id(&tx, name).await?;
        let key = insert_key(&tx, id, label).await?;
        audit_in(
            &tx,
            who,
            "key.new",
            name,
            json!({"key_id": key.id, "key_prefix": key.prefix, "label": label}),
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Revokes a key of `name` given by its id or its listed prefix (an unambiguous start of
    /// it, at least 6 characters). Audited as `key.revoke`. Returns the key as it is now.
    pub async fn key_revoke(
        &mut self,
        who: &Actor,
        name: &str,
        which: &str,
    ) -> Result<ApiKeyView, StoreError> {
        let which = which.trim();
        let tx = self.client.transaction().await?;
        let id = user_id(&tx, name).await?;
        let rows = tx
            .query(
                "SELECT id, prefix FROM api_keys WHERE user_id = $1 ORDER BY id",
                &[&id],
            )
            .await?;
        let matches: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .filter(|(kid, prefix)| {
                kid.to_string() == which
                    || prefix == which
                    || (which.len() >= 6 && prefix.starts_with(which))
            })
            .collect();
        let (key_id, prefix) = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(StoreError::NotFound(format!(
                "user {name:?} has no key with id or prefix {:?}; `certhist user list` shows them",
                crate::read::shorten(which)
            )))
            }
            _ => {
                return Err(StoreError::InvalidInput(format!(
                    "{:?} matches {} keys of {name:?}; give the key's id",
                    crate::read::shorten(which),
                    matches.len()
                )))
            }
        };
        let row = tx
            .query_one(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                 RETURNING id, prefix, label, created_at, last_used_at, revoked_at",
                &[&key_id],
            )
            .await?;
        audit_in(
            &tx,
            who,
            "key.revoke",
            name,
            json!({"key_id": key_id, "key_prefix": prefix}),
        )
        .await?;
        tx.commit().await?;
        Ok(crate::read::accounts::key_from(&row))
    }

    /// Opens a web session for an account that has just proven its password, valid for `ttl`,
    /// and records the login (`login`, with `via`) in the same transaction. Expired sessions
    /// are swept at the same time.
    pub async fn session_create(
        &mut self,
        who: &Actor,
        user: &crate::read::accounts::Authenticated,
        ttl: Duration,
    ) -> Result<NewSession, StoreError> {
        let token = random_hex(SESSION_RANDOM_BYTES)?;
        let token_hash = sha256(token.as_bytes()).to_vec();
        let csrf_hash = sha256(csrf_token_for(&token).as_bytes()).to_vec();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let expires_at = Utc::now() + chrono::Duration::seconds(ttl_secs);
        let tx = self.client.transaction().await?;
        tx.execute("DELETE FROM sessions WHERE expires_at < now()", &[])
            .await?;
        tx.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_hash, expires_at) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &user.user_id, &csrf_hash, &expires_at],
        )
        .await?;
        audit_in(&tx, who, "login", &user.name, json!({"via": "form"})).await?;
        tx.commit().await?;
        Ok(NewSession {
            user: user.name.clone(),
            role: user.role,
            expires_at,
            token,
        })
    }

    /// Ends the session whose token hash is `token_hash` (logout), audited as `logout`.
    pub async fn session_delete(
        &mut self,
        who: &Actor,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        let tx = self.client.transaction().await?;
        let hash = token_hash.to_vec();
        let user: Option<String> = tx
            .query_opt(
                "DELETE FROM sessions s USING users u WHERE s.token_hash = $1 AND u.id = s.user_id
                 RETURNING u.name",
                &[&hash],
            )
            .await?
            .map(|r| r.get(0));
        if let Some(user) = user {
            audit_in(&tx, who, "logout", &user, json!({})).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_160_bit_hex_with_the_prefix_and_differ() {
        let (a, pa) = generate_key().unwrap();
        let (b, _) = generate_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), KEY_PREFIX.len() + 2 * KEY_RANDOM_BYTES);
        assert!(a.starts_with(KEY_PREFIX));
        assert!(a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(pa, a[..LISTED_PREFIX_CHARS]);
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let k = NewApiKey {
            id: 1,
            prefix: "chk_00000000".into(),
            key: "chk_secretsecret".into(),
        };
        assert!(!format!("{k:?}").contains("secretsecret"));
        let s = NewSession {
            user: "a".into(),
            role: Role::Reader,
            expires_at: Utc::now(),
            token: "tokentokentoken".into(),
        };
        assert!(!format!("{s:?}").contains("tokentokentoken"));
        assert!(!format!("{s:?}").contains(&s.csrf_token()));
    }

    #[test]
    fn user_names_follow_the_schema_rule() {
        for ok in ["alice", "a", "bob.smith@example", "x-1_2"] {
            check_user_name(ok).unwrap();
        }
        for bad in ["", "Alice", "-a", "a b", "ä", &"a".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
    }
}
