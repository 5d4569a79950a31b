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
