//! The audit log (issue 12): every write, login, failed login and account change, with who, when,
//! what and from where. Entries are written in the same transaction as the change they record
//! ([`StoreTx::audit`]), or on their own ([`crate::Conn::audit`]) for events that change nothing
//! else (a failed login).

use crate::{StoreError, StoreTx};

/// One audit entry. Never put a key, a password or a token in any field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// The account that acted; `None` for the local user of an open (loopback, no accounts)
    /// server, or an unknown user in a failed login (then `target` names what was tried).
    pub actor: Option<String>,
    /// What happened, e.g. `login`, `login_failed`, `user_add`, `key_revoke`, `tag_add`,
    /// `note_add`, `upload`.
    pub action: String,
    /// What it happened to (an account name, `certificate:<sha1>`, a file name …).
    pub target: Option<String>,
    /// Where the request came from (remote address), or `cli` for the command line.
    pub source: Option<String>,
    /// Anything else worth keeping (counts, the role given …), as JSON.
    pub detail: Option<serde_json::Value>,
}

pub(crate) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (actor, action, target, source, detail) VALUES ($1, $2, $3, $4, $5)";

impl StoreTx<'_> {
    /// Records `entry` in this transaction: it commits (or rolls back) with the change.
    pub async fn audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.tx
            .execute(
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
}
