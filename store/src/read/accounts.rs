//! Accounts (issue 12): listing users and their keys, checking credentials (API keys, passwords,
//! session tokens) and reading the audit log.
//!
//! A key or a session token is checked by looking up its SHA-256 (one indexed query); a
//! password by argon2id verification (constant-time in the argon2 crate), off the async threads.
//! Unknown accounts cost the same argon2 work as known ones, so timing does not tell them apart.
//!
//! Clients that send `Basic user:password` with every request (pypssl, passivetotal) would pay
//! an argon2 verification (tens of milliseconds of CPU) per request. A password that verified
//! is remembered for [`VERIFIED_TTL`] as a keyed digest — SHA-256 over a random per-process
//! secret, the stored PHC string and the password — never the password itself and never on
//! disk; the next request with the same password against the same stored hash skips argon2.
//! A new password changes the PHC string (new salt), so the old entry no longer matches; the
//! account row (role, `disabled`) is read on every request as before. Failures are not
//! remembered: a wrong guess always costs the full verification.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use certhist_model::views::{ApiKeyView, AuditEntryView, Role, UserView};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::write::accounts::{sha256, KEY_PREFIX, MAX_PASSWORD_BYTES};
use crate::{Conn, StoreError};

/// An account whose credentials were just verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// `users.id`.
    pub user_id: i64,
    /// The account name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The API key used, when it was one.
    pub key_id: Option<i64>,
}

/// A live web session (looked up by its token).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionAuth {
    /// Its account.
    pub user: Authenticated,
    /// SHA-256 of the session token (for logout).
    pub token_hash: [u8; 32],
    /// SHA-256 of its CSRF token.
    pub csrf_hash: [u8; 32],
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAuth")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The account of a live key (its hash); the last column says whether `last_used_at` is older
/// than a minute (it is written at most once a minute, so a busy client does not turn every
/// read into a write).
const KEY_LOOKUP: &str = "SELECT k.id, u.id, u.name, u.role,
        k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds'
   FROM api_keys k JOIN users u ON u.id = k.user_id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND NOT u.disabled";

/// The account of a live session (its token hash), and whether `last_seen_at` is a minute old.
const SESSION_LOOKUP: &str = "SELECT u.id, u.name, u.role, s.csrf_hash, s.expires_at,
        s.last_seen_at < now() - interval '60 seconds'
   FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT u.disabled";

fn role_from(text: &str) -> Result<Role, StoreError> {
    Role::from_name(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}

/// An `api_keys` row (id, prefix, label, created_at, last_used_at, revoked_at) as a view.
pub(crate) fn key_from(row: &Row) -> ApiKeyView {
    ApiKeyView {
        id: row.get(0),
        prefix: row.get(1),
        label: row.get(2),
        created_at: row.get(3),
        last_used_at: row.get(4),
        revoked_at: row.get(5),
    }
}

/// Every account with its keys (never the keys themselves), by name.
pub async fn users(conn: &Conn) -> Result<Vec<UserView>, StoreError> {
    let users = conn
        .client()
        .query(
            "SELECT id, name, role, disabled, password_hash IS NOT NULL, created_at
               FROM users ORDER BY name",
            &[],
        )
        .await?;
    let keys = conn
        .client()
        .query(
            "SELECT id, prefix, label, created_at, last_used_at, revoked_at, user_id
               FROM api_keys ORDER BY id",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(users.len());
    for u in &users {
        let id: i64 = u.get(0);
        out.push(UserView {
            name: u.get(1),
            role: role_from(u.get(2))?,
            disabled: u.get(3),
            has_password: u.get(4),
            created_at: u.get(5),
            keys: keys
                .iter()
                .filter(|k| k.get::<_, i64>(6) == id)
                .map(key_from)
                .collect(),
        });
    }
    Ok(out)
}

/// True when at least one account exists (then every request must authenticate).
pub async fn has_accounts(conn: &Conn) -> Result<bool, StoreError> {
    Ok(conn
        .client()
        .query_one("SELECT EXISTS (SELECT 1 FROM users)", &[])
        .await?
        .get(0))
}

/// The account of an API key, when the key exists, is not revoked and its account is enabled;
/// `None` otherwise. Marks the key used (at most once a minute).
pub async fn verify_api_key(conn: &Conn, key: &str) -> Result<Option<Authenticated>, StoreError> {
    if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
        return Ok(None);
    }
    let hash = sha256(key.as_bytes()).to_vec();
    // Prepared once per connection: the lookup runs on every authenticated request.
    let statement = conn.client.prepare_cached(KEY_LOOKUP).await?;
    let row = conn.client().query_opt(&statement, &[&hash]).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key_id: i64 = row.get(0);
    if row.get::<_, bool>(4) {
        conn.client()
            .execute(
                "UPDATE api_keys SET last_used_at = now() WHERE id = $1",
                &[&key_id],
            )
            .await?;
    }
    Ok(Some(Authenticated {
        user_id: row.get(1),
        name: row.get(2),
        role: role_from(row.get(3))?,
        key_id: Some(key_id),
    }))
}

/// A PHC string of a random password, verified against when the account does not exist or has
/// no password, so those cases cost the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        // 16 constant bytes always encode; on the impossible failure verification just fails.
        SaltString::encode_b64(b"certhist-dummy-s")
            .ok()
            .and_then(|salt| {
                Argon2::default()
                    .hash_password(b"no account has this password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

/// How long a verified password is remembered (see the module documentation).
pub const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Most verified passwords remembered at once (the oldest half is dropped when full).
const VERIFIED_MAX: usize = 4096;

/// Keyed digests of (PHC string, password) pairs that verified, with when.
struct VerifiedPasswords {
    secret: [u8; 32],
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl VerifiedPasswords {
    fn get() -> &'static VerifiedPasswords {
        static CACHE: OnceLock<VerifiedPasswords> = OnceLock::new();
        CACHE.get_or_init(|| {
            let mut secret = [0u8; 32];
            // Without randomness the secret stays zero and nothing is remembered (`digest`).
            if getrandom::getrandom(&mut secret).is_err() {
                secret = [0u8; 32];
            }
            VerifiedPasswords {
                secret,
                seen: Mutex::new(HashMap::new()),
            }
        })
    }

    fn digest(&self, phc: &str, password: &str) -> Option<[u8; 32]> {
        if self.secret == [0u8; 32] {
            return None;
        }
        let mut input = Vec::with_capacity(32 + phc.len() + 1 + password.len());
        input.extend_from_slice(&self.secret);
        input.extend_from_slice(phc.as_bytes());
        input.push(0);
        input.extend_from_slice(password.as_bytes());
        Some(sha256(&input))
    }

    fn verified_recently(&self, digest: &[u8; 32]) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(digest)
            .is_some_and(|at| at.elapsed() < VERIFIED_TTL)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= VERIFIED_MAX {
            seen.retain(|_, at| at.elapsed() < VERIFIED_TTL);
            if seen.len() >= VERIFIED_MAX {
                let mut ages: Vec<Instant> = seen.values().copied().collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                seen.retain(|_, at| *at > cut);
            }
        }
        seen.insert(digest, Instant::now());
    }
}

/// Argon2id verification of `password` against a PHC string, off the async threads — or, for a
/// pair that verified within [`VERIFIED_TTL`], the remembered answer.
async fn password_matches(phc: String, password: &str) -> Result<bool, StoreError> {
    let cache = VerifiedPasswords::get();
    let digest = cache.digest(&phc, password);
    if digest.is_some_and(|d| cache.verified_recently(&d)) {
        return Ok(true);
    }
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| StoreError::Crypto(e.to_string()))?;
    if let (true, Some(d)) = (matches, digest) {
        cache.remember(d);
    }
    Ok(matches)
}

/// The account `name` when `password` is its password and the account is enabled; `None`
/// otherwise (unknown account, no password set, wrong password, disabled).
pub async fn verify_password(
    conn: &Conn,
    name: &str,
    password: &str,
) -> Result<Option<Authenticated>, StoreError> {
    if password.len() > MAX_PASSWORD_BYTES || name.len() > 64 {
        return Ok(None);
    }
    let row = conn
        .client()
        .query_opt(
            "SELECT id, name, role, password_hash, disabled FROM users WHERE name = $1",
            &[&name],
        )
        .await?;
    let (phc, account) = match &row {
        Some(r) => match r.get::<_, Option<String>>(3) {
            Some(phc) => (phc, Some(r)),
            None => (dummy_hash().to_owned(), None),
        },
        None => (dummy_hash().to_owned(), None),
    };
    let matches = password_matches(phc, password).await?;
    match account {
        Some(r) if matches && !r.get::<_, bool>(4) => Ok(Some(Authenticated {
            user_id: r.get(0),
            name: r.get(1),
            role: role_from(r.get(2))?,
            key_id: None,
        })),
        _ => Ok(None),
    }
}

/// The live session of a session token: not expired, account enabled. Marks it seen (at most
/// once a minute).
pub async fn session(conn: &Conn, token: &str) -> Result<Option<SessionAuth>, StoreError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let token_hash = sha256(token.as_bytes());
    let hash = token_hash.to_vec();
    let statement = conn.client.prepare_cached(SESSION_LOOKUP).await?;
    let row = conn.client().query_opt(&statement, &[&hash]).await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.get::<_, bool>(5) {
        conn.client()
            .execute(
                "UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1",
                &[&hash],
            )
            .await?;
    }
    Ok(Some(SessionAuth {
        user: Authenticated {
            user_id: row.get(0),
            name: row.get(1),
            role: role_from(row.get(2))?,
            key_id: None,
        },
        token_hash,
        csrf_hash: crate::read::fixed(row.get::<_, Vec<u8>>(3))?,
        expires_at: row.get(4),
    }))
}

/// Audit entries newest first: at or after `since` when given, with ids below `before_id` (the
/// cursor of the previous page) when given, at most `limit`.
pub async fn audit_entries(
    conn: &Conn,
    since: Option<DateTime<Utc>>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntryView>, StoreError> {
    let limit = crate::read::check_limit(limit)?;
    let rows = conn
        .client()
        .query(
            "SELECT id, at, actor, action, target, source, detail FROM audit_log
              WHERE ($1::timestamptz IS NULL OR at >= $1)
                AND ($2::bigint IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3",
            &[&since, &before_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntryView {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            target: r.get(4),
            source: r.get(5),
            detail: r.get(6),
        })
        .collect())
}
