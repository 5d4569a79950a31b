//! Who is asking (issue 12): the [`Principal`] of a request and the role checks handlers make.
//!
//! Every handler that writes takes a `Principal` and calls [`Principal::require`] with the role
//! it needs; reads need [`Role::Reader`]. The authentication layer (API keys, Basic, session
//! cookies) puts the principal into the request's extensions. A server without accounts on a
//! loopback listener is open: its requests act as the local user with every role.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use certhist_model::views::Role;

use crate::error::ApiError;

/// The account a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The account name; `None` for the local user of an open server.
    pub user: Option<String>,
    /// What it may do.
    pub role: Role,
    /// The remote address, when known.
    pub source: Option<IpAddr>,
}

impl Principal {
    /// The local user of an open server (loopback listener, no accounts): every role.
    pub fn local(source: Option<IpAddr>) -> Self {
        Principal {
            user: None,
            role: Role::Admin,
            source,
        }
    }

    /// `Ok` when the principal has `role` (or more), else a 403 naming the role needed.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError {
                status: StatusCode::FORBIDDEN,
                detail: format!(
                    "this needs the {role} role; your account is a {}",
                    self.role
                ),
            })
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Option<String> {
        self.user.clone()
    }

    /// The source recorded in the audit log.
    pub fn source_text(&self) -> Option<String> {
        self.source.map(|ip| ip.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Principal>() {
            Some(p) => Ok(p.clone()),
            // No authentication layer ran: an open server (see the module docs).
            None => Ok(Principal::local(None)),
        }
    }
}
