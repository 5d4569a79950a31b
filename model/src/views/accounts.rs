//! Accounts of the team server (issue 12).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an account may do. Each role includes the ones before it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read.
    Reader,
    /// A reader who also adds tags, notes, uploads and exports.
    Analyst,
    /// An analyst who also manages accounts and reads the audit log.
    Admin,
}

impl Role {
    /// Every role, least to most.
    pub const ALL: [Role; 3] = [Role::Reader, Role::Analyst, Role::Admin];

    /// The stored and user-facing name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Reads the stored or user-facing name.
    pub fn from_name(text: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as listed by `certhist user list` and the API. Never holds a key, a password or
/// a hash of one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// The account name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// A disabled account cannot sign in; its keys and sessions stop working.
    pub disabled: bool,
    /// True when a password is set (the login form and Basic `user:password` work).
    pub has_password: bool,
    /// When the account was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its API keys, revoked ones included, oldest first.
    pub keys: Vec<ApiKeyView>,
}

/// An API key as listed: its prefix (enough to tell keys apart), never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    /// The key's id (for `certhist user key revoke NAME ID`).
    pub id: i64,
    /// The key's first characters, e.g. `chk_3f9a1c2b`.
    pub prefix: String,
    /// What it is for, as given when it was made.
    pub label: Option<String>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One audit-log entry: who did what, to what, when and from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    /// Increasing id.
    pub id: i64,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The account that acted (`cli:<os user>` for the command line); `null` for the local
    /// user of an open server or an unknown account in a failed login.
    pub actor: Option<String>,
    /// What happened: `login`, `login.failed`, `logout`, `user.add`, `user.disable`,
    /// `user.enable`, `user.passwd`, `key.new`, `key.revoke`, and the writes of other features.
    pub action: String,
    /// What it happened to (an account name, a key prefix, a tagged value …).
    pub target: Option<String>,
    /// Where the request came from (the remote address), or `cli`.
    pub source: Option<String>,
    /// More about it (the role given, why a login failed …); never a secret.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// The signed-in account of a request (`GET /api/v1/session`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The account name; `null` for the local user of an open server.
    pub user: Option<String>,
    /// What it may do.
    pub role: Role,
    /// How the request was authenticated: `session`, `key`, `password` or `open`.
    pub via: String,
    /// For a cookie session: the CSRF token every state-changing request must carry (form field
    /// `csrf` or header `X-CSRF-Token`); `null` otherwise.
    pub csrf_token: Option<String>,
    /// For a cookie session: when it expires.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for SessionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionView")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("via", &self.via)
            .field(
                "csrf_token",
                &self.csrf_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
