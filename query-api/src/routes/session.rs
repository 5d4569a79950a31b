//! The web login (issue 12): `GET /login` (a minimal form), `POST /login` (password → session
//! cookie), `POST /logout`, and `GET /api/v1/session` (who is signed in, and the CSRF token
//! the page sends with state-changing requests).
//!
//! The pages are server-rendered without script; every value they show is HTML-escaped. The
//! cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the server runs TLS.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certhist_model::views::SessionView;
use certhist_store::read::accounts;
use certhist_store::Actor;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{self, AuthMethod, Principal, SessionContext, SESSION_COOKIE};
use crate::error::{error_response, ApiError};
use crate::{json, AppState};

/// The login form's fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginForm {
    /// Account name.
    #[allow(dead_code)]
    user: String,
    /// Its password.
    #[allow(dead_code)]
    #[schema(format = Password)]
    password: String,
}

/// The login page with an optional message, the user name to fill in and where to go after
/// (the web UI's template: escaped by the template engine).
fn login_page(
    status: StatusCode,
    message: Option<&str>,
    user: &str,
    next: Option<&str>,
) -> Response {
    crate::web::login_page(status, message, user, next)
}

/// The sign-in page: a form posting `user` and `password` to `/login`.
#[utoipa::path(
    get,
    path = "/login",
    tag = "certhist",
    responses((status = 200, description = "The sign-in form", content_type = "text/html", body = String)),
    security(())
)]
pub(crate) async fn login_form(RawQuery(raw): RawQuery) -> Response {
    let next = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    login_page(StatusCode::OK, None, "", next.as_deref())
}

/// True when the request's `Origin` (if any) is this server (login CSRF: another site must not
/// sign a browser in).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// The session cookie (`max_age_secs` 0 clears it).
fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("certhist_session=; Max-Age=0"))
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    resp.headers_mut().insert(header::LOCATION, value);
    resp
}

/// Signs in with a password: on success a session cookie and a redirect to `/`; a wrong
/// password re-shows the form (401). Failed attempts are limited per source address and
/// account name (429 with `Retry-After`) and audited as `login.failed`; successful ones as
/// `login`.
#[utoipa::path(
    post,
    path = "/login",
    tag = "certhist",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: `Set-Cookie: certhist_session=…` and `Location: /`"),
        (status = 400, description = "The form lacks `user` or `password`", content_type = "text/html", body = String),
        (status = 401, description = "Wrong user name or password, or a disabled account", content_type = "text/html", body = String),
        (status = 403, description = "Posted from another site (`Origin` is not this server)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed logins; see `Retry-After`", content_type = "text/html", body = String),
    ),
    security(())
)]
pub(crate) async fn login(State(state): State<AppState>, req: Request) -> Response {
    let source: Option<IpAddr> = auth::source_of(req.extensions());
    if !same_origin(req.headers()) {
        return error_response(
            StatusCode::FORBIDDEN,
            "the login form was posted from another site",
        );
    }
    let body: Bytes = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(_) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let mut user = None;
    let mut password = None;
    let mut next = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "user" => user = Some(v.into_owned()),
            "password" => password = Some(v.into_owned()),
            "next" => next = Some(v.into_owned()),
            _ => {}
        }
    }
    let next = next.as_deref();
    let (Some(user), Some(password)) = (user, password) else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("enter a user name and a password"),
            "",
            next,
        );
    };
    let user = user.trim().to_lowercase();
    if let Some(wait) = state.auth.failures.blocked(source, Some(&user)) {
        let mut resp = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("too many failed sign-ins; wait a minute and try again"),
            &user,
            next,
        );
        let secs = wait.as_secs().max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let conn = match state.conn().await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let found = match accounts::verify_password(&conn, &user, &password).await {
        Ok(f) => f,
        Err(e) => return ApiError::from(e).into_response(),
    };
    drop(conn);
    let Some(account) = found else {
        state.auth.failures.record_failure(source, Some(&user));
        auth::audit_failed_login(&state.store, source, Some(&user), "form").await;
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("wrong user name or password"),
            &user,
            next,
        );
    };
    let who = Actor {
        name: Some(account.name.clone()),
        source: source.map(|s| s.to_string()),
    };
    let session = match state.store.conn().await {
        Ok(mut conn) => conn
            .session_create(&who, &account, state.auth.session_ttl())
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match session {
        Ok(s) => {
            let mut resp = see_other(&crate::web::safe_next(next));
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(
                    s.token(),
                    state.auth.session_ttl().as_secs(),
                    state.auth.tls(),
                ),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// Signs out: ends the session (a cookie-authenticated request must carry the CSRF token, as
/// every state-changing request does), clears the cookie and redirects to `/login`.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "certhist",
    responses(
        (status = 303, description = "Signed out: the cookie is cleared, `Location: /login`"),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
        (status = 403, description = "Missing or wrong CSRF token", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let principal = req.extensions().get::<Principal>().cloned();
    if let Some(s) = req.extensions().get::<SessionContext>() {
        let who = Actor {
            name: principal.as_ref().and_then(Principal::actor),
            source: principal.as_ref().and_then(Principal::source_text),
        };
        let done = match state.store.conn().await {
            Ok(mut conn) => conn
                .session_delete(&who, &s.token_hash)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(ApiError::from(e)),
        };
        if let Err(e) = done {
            return e.into_response();
        }
    }
    let mut resp = see_other("/login");
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, state.auth.tls()));
    resp
}

/// Who the request is signed in as, how, and — for a cookie session — the CSRF token the page
/// must send with state-changing requests (header `X-CSRF-Token` or form field `csrf`).
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "certhist",
    responses(
        (status = 200, description = "The signed-in account", body = SessionView),
        (status = 401, description = "Not authenticated", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn session(req: Request) -> Response {
    let ext = req.extensions();
    let principal = ext
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(|| Principal::local(None));
    let method = ext.get::<AuthMethod>().copied().unwrap_or(AuthMethod::Open);
    let session = ext.get::<SessionContext>();
    json(&SessionView {
        user: principal.user,
        role: principal.role,
        via: method.as_str().to_owned(),
        csrf_token: session.map(|s| s.csrf_token.clone()),
        expires_at: session.map(|s| s.expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(header::HOST, "certhist.example:8443".parse().unwrap());
        h.insert(
            header::ORIGIN,
            "https://certhist.example:8443".parse().unwrap(),
        );
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
