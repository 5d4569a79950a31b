//! Who is asking (issue 12): the authentication layer, the [`Principal`] of a request, the
//! role checks handlers make, and the rate limits.
//!
//! Every handler that writes takes a `Principal` and calls [`Principal::require`] with the role
//! it needs; reads need [`Role::Reader`], which every authenticated account has, so the layer
//! alone guards them. The layer (`authenticate`) accepts, in this order:
//!
//! - `Authorization: Bearer KEY`;
//! - `Authorization: Basic base64(user:KEY)` or `Basic base64(user:password)` (what pypssl and
//!   passivetotal send);
//! - a bare `Authorization: KEY` (pypssl's token form);
//! - the web session cookie [`SESSION_COOKIE`] (from `POST /login`); a state-changing request
//!   authenticated by the cookie must carry the session's CSRF token (header `X-CSRF-Token` or
//!   form field `csrf`).
//!
//! Missing or wrong credentials, a disabled account or a revoked key answer 401 with
//! `WWW-Authenticate: Basic realm="certhist", Bearer`; a role too low answers 403. Keys are
//! checked on every request (one indexed lookup of their SHA-256; no cache), so disabling an
//! account or revoking a key takes effect at the next request.
//!
//! **Open mode**: a server whose listener is a loopback address and whose database has no
//! accounts needs no credentials: requests act as the local user with every role, as before
//! accounts existed. Once one account exists, every listener (loopback too) requires
//! authentication; the server notices a new account within a second. `--no-auth` turns
//! authentication off entirely (requests act as the local user).
//!
//! A `Principal` already in the request's extensions when the layer runs (put there in-process
//! by an outer layer or a test driving the router) is kept; HTTP clients cannot set extensions.
//! A handler asking for a `Principal` of a request the layer did not see gets a 401.
//!
//! **Limits**: requests are limited per source address and per account (token buckets,
//! `governor`; 429 with `Retry-After`), when authentication is on. Failed logins (a wrong key or
//! password) are limited much more strictly by [`FailureLimiter`]: per source address, and per
//! account name for sources that failed recently — so an attacker locks out only their own
//! addresses, and the real user, from an address without failures, still signs in. Failed
//! logins are audited as `login.failed` (rejected attempts of a blocked source are not, so an
//! attack cannot flood the log); form logins as `login`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use certhist_model::views::Role;
use certhist_store::read::accounts::{self, Authenticated};
use certhist_store::{AuditEntry, Store, KEY_PREFIX};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::{error_response, ApiError};
use crate::{AppState, ServeConfig};

/// Name of the web session cookie.
pub const SESSION_COOKIE: &str = "certhist_session";
/// Header carrying the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The challenge of every 401.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"certhist\", Bearer";
/// How long a negative "no accounts yet" answer is trusted in open mode.
const ACCOUNTS_RECHECK: Duration = Duration::from_secs(1);
/// Entries kept per failure map before recovered ones are swept.
const FAILURE_MAP_SWEEP_AT: usize = 10_000;

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
            // The authentication layer did not run for this route (a route added outside it, or
            // one of the open paths): refuse rather than act as anyone.
            None => {
                tracing::error!("a handler asked for the principal of a request the authentication layer did not see");
                Err(unauthorized("authentication required"))
            }
        }
    }
}

/// How a request was authenticated (a request extension beside the [`Principal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// Open mode or `--no-auth`: no credentials.
    Open,
    /// An API key (Bearer, Basic `user:KEY` or bare).
    Key,
    /// Basic `user:password`.
    Password,
    /// The web session cookie.
    Session,
}

impl AuthMethod {
    /// The name used in `GET /api/v1/session`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Open => "open",
            AuthMethod::Key => "key",
            AuthMethod::Password => "password",
            AuthMethod::Session => "session",
        }
    }
}

/// The web session of a cookie-authenticated request (a request extension).
#[derive(Clone)]
pub struct SessionContext {
    /// SHA-256 of the session token.
    pub token_hash: [u8; 32],
    /// The session's CSRF token (handed to the page by `GET /api/v1/session`).
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A token-bucket request limit: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The failed-login limit: `burst` failures at once, then `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimit {
    /// Failures per minute, sustained.
    pub per_minute: u32,
    /// Failures allowed at once.
    pub burst: u32,
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit {
            per_minute: 5,
            burst: 10,
        }
    }
}

/// A token bucket of failures (full = no recent failures).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed-login limits per source address and per account name (see the module docs).
#[derive(Debug)]
pub struct FailureLimiter {
    per_second: f64,
    burst: f64,
    by_source: Mutex<HashMap<Option<IpAddr>, Bucket>>,
    by_user: Mutex<HashMap<String, Bucket>>,
}

impl FailureLimiter {
    /// A limiter allowing `limit.burst` failures at once and `limit.per_minute` after.
    pub fn new(limit: LoginLimit) -> Self {
        FailureLimiter {
            per_second: f64::from(limit.per_minute.max(1)) / 60.0,
            burst: f64::from(limit.burst.max(1)),
            by_source: Mutex::new(HashMap::new()),
            by_user: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, bucket: Option<&Bucket>, now: Instant) -> f64 {
        match bucket {
            None => self.burst,
            Some(b) => (b.tokens
                + now.saturating_duration_since(b.at).as_secs_f64() * self.per_second)
                .min(self.burst),
        }
    }

    fn wait_for_one(&self, level: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - level) / self.per_second).max(0.0))
    }

    /// How long an attempt from `source` for account `user` must wait, or `None` when it may
    /// be tried now. A source with failures left is always let through; the account's own
    /// limit applies only to sources that failed recently.
    pub fn blocked(&self, source: Option<IpAddr>, user: Option<&str>) -> Option<Duration> {
        self.blocked_at(Instant::now(), source, user)
    }

    /// [`FailureLimiter::blocked`] at time `now` (the clock is a parameter, for tests).
    pub fn blocked_at(
        &self,
        now: Instant,
        source: Option<IpAddr>,
        user: Option<&str>,
    ) -> Option<Duration> {
        let source_level = {
            let map = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
            self.level(map.get(&source), now)
        };
        if source_level < 1.0 {
            return Some(self.wait_for_one(source_level));
        }
        let source_failed_recently = source_level < self.burst;
        if let (true, Some(user)) = (source_failed_recently, user) {
            let map = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
            let user_level = self.level(map.get(user), now);
            if user_level < 1.0 {
                return Some(self.wait_for_one(user_level));
            }
        }
        None
    }

    /// Counts one failure against `source` and, when given, `user`.
    pub fn record_failure(&self, source: Option<IpAddr>, user: Option<&str>) {
        self.record_failure_at(Instant::now(), source, user);
    }

    /// [`FailureLimiter::record_failure`] at time `now`.
    pub fn record_failure_at(&self, now: Instant, source: Option<IpAddr>, user: Option<&str>) {
        {
            let mut map = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
            let level = self.level(map.get(&source), now);
            map.insert(
                source,
                Bucket {
                    tokens: (level - 1.0).max(0.0),
                    at: now,
                },
            );
            self.sweep(&mut map, now);
        }
        if let Some(user) = user {
            let mut map = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
            let level = self.level(map.get(user), now);
            map.insert(
                user.to_owned(),
                Bucket {
                    tokens: (level - 1.0).max(0.0),
                    at: now,
                },
            );
            self.sweep(&mut map, now);
        }
    }

    /// Bounds memory: drops buckets that have recovered fully (they equal a missing entry).
    fn sweep<K: std::hash::Hash + Eq>(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        if map.len() >= FAILURE_MAP_SWEEP_AT {
            map.retain(|_, b| self.level(Some(b), now) < self.burst);
        }
    }
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The authentication state of a server: mode, limiters.
pub struct AuthState {
    no_auth: bool,
    loopback: bool,
    tls: bool,
    session_ttl: Duration,
    accounts_seen: AtomicBool,
    accounts_checked: Mutex<Option<Instant>>,
    /// A request is re-checking for accounts now (see `required`).
    accounts_checking: AtomicBool,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
    /// Failed-login limits.
    pub failures: FailureLimiter,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("no_auth", &self.no_auth)
            .field("loopback", &self.loopback)
            .field("tls", &self.tls)
            .field("accounts_seen", &self.accounts_seen)
            .finish_non_exhaustive()
    }
}

fn keyed_limiter<K: Clone + std::hash::Hash + Eq>(
    limit: Option<RateLimit>,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let limit = limit?;
    let rate = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst).unwrap_or(rate);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl AuthState {
    /// The state for a server configured by `config`.
    pub fn new(config: &ServeConfig) -> Self {
        AuthState {
            no_auth: config.no_auth,
            loopback: config.listen.ip().is_loopback(),
            tls: config.tls,
            session_ttl: config.session_ttl,
            accounts_seen: AtomicBool::new(false),
            accounts_checked: Mutex::new(None),
            accounts_checking: AtomicBool::new(false),
            per_ip: keyed_limiter(config.rate_limit_per_ip),
            per_account: keyed_limiter(config.rate_limit_per_key),
            checks: AtomicU64::new(0),
            failures: FailureLimiter::new(config.login_failure_limit),
        }
    }

    /// True when requests must authenticate (see the module docs on open mode).
    async fn required(&self, store: &Store) -> Result<bool, ApiError> {
        if self.no_auth {
            return Ok(false);
        }
        if !self.loopback || self.accounts_seen.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let checked_before = {
            let checked = self
                .accounts_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if checked.is_some_and(|t| t.elapsed() < ACCOUNTS_RECHECK) {
                return Ok(false);
            }
            checked.is_some()
        };
        // One request re-checks at a time (issue 17: every request arriving while the answer was
        // stale took a pooled connection and ran the check, a burst each second under load);
        // the others keep the last "no accounts" answer for the few milliseconds the check
        // takes. Until the first answer, every request checks.
        let _recheck = if checked_before {
            if self.accounts_checking.swap(true, Ordering::AcqRel) {
                return Ok(false);
            }
            // Cleared when the check ends, however it ends (error, or the request dropped).
            Some(ClearOnDrop(&self.accounts_checking))
        } else {
            None
        };
        let has = accounts::has_accounts(&store.conn().await?).await?;
        if has {
            self.accounts_seen.store(true, Ordering::Relaxed);
        } else {
            *self
                .accounts_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        Ok(has)
    }

    /// Whether session cookies are marked `Secure`.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// How long a web session lasts.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    fn sweep_limiters(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            if let Some(l) = &self.per_ip {
                l.retain_recent();
            }
            if let Some(l) = &self.per_account {
                l.retain_recent();
            }
        }
    }

    fn limit_ip(&self, source: Option<IpAddr>) -> Option<Duration> {
        let (limiter, ip) = (self.per_ip.as_ref()?, source?);
        self.sweep_limiters();
        limiter
            .check_key(&ip)
            .err()
            .map(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    fn limit_account(&self, key: &str) -> Option<Duration> {
        let limiter = self.per_account.as_ref()?;
        limiter
            .check_key(&key.to_owned())
            .err()
            .map(|n| n.wait_time_from(DefaultClock::default().now()))
    }
}

/// Paths that need no credentials: health checks, the OpenAPI document, the login page and the
/// web UI's stylesheet and script (the login page uses them; they hold no data).
fn is_open_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/api/v1/healthz" | "/api/v1/openapi.json" | "/login"
    ) || path.starts_with("/static/")
}

/// Credentials found in a request. `Debug` never shows a secret.
enum Credentials {
    Key { user: Option<String>, key: String },
    Password { user: String, password: String },
    Session(String),
    Missing,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Key { user, .. } => write!(f, "Key {{ user: {user:?}, .. }}"),
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Credentials::Session(_) => f.write_str("Session(..)"),
            Credentials::Missing => f.write_str("Missing"),
        }
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

fn credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(match cookie(headers, SESSION_COOKIE) {
            Some(token) => Credentials::Session(token),
            None => Credentials::Missing,
        });
    };
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not ASCII"))?
        .trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Key {
            user: None,
            key: rest.to_owned(),
        });
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthorized("the Basic credentials are not base64 of user:secret"))?;
        let (user, secret) = decoded
            .split_once(':')
            .ok_or_else(|| unauthorized("the Basic credentials are not base64 of user:secret"))?;
        // Account names are lower case; clients may send `Analyst@Example.org`.
        let user = user.trim().to_lowercase();
        return Ok(if secret.starts_with(KEY_PREFIX) {
            Credentials::Key {
                user: Some(user),
                key: secret.to_owned(),
            }
        } else {
            Credentials::Password {
                user,
                password: secret.to_owned(),
            }
        });
    }
    if rest.is_empty() {
        // A bare key (pypssl's `Authorization: KEY`).
        return Ok(Credentials::Key {
            user: None,
            key: scheme.to_owned(),
        });
    }
    Err(unauthorized(
        "unsupported Authorization scheme; use Bearer KEY or Basic user:KEY",
    ))
}

/// A 401 in the one error shape, with the challenge.
pub fn unauthorized(detail: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        detail: detail.to_owned(),
    }
}

fn challenge(err: ApiError) -> Response {
    let mut resp = err.into_response();
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
    }
    resp
}

/// A 429 in the one error shape with `Retry-After` (whole seconds, at least 1).
pub fn too_many(wait: Duration, detail: &str) -> Response {
    let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS, detail);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The source address of a request (the TCP peer; forwarded headers are not trusted).
pub fn source_of(parts_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    parts_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Records a failed login (`login.failed`) on its own connection; errors are logged only.
pub async fn audit_failed_login(
    store: &Store,
    source: Option<IpAddr>,
    user: Option<&str>,
    via: &str,
) {
    let entry = AuditEntry {
        actor: None,
        action: "login.failed".to_owned(),
        target: user.map(str::to_owned),
        source: source.map(|s| s.to_string()),
        detail: Some(serde_json::json!({ "via": via })),
    };
    match store.conn().await {
        Ok(conn) => {
            if let Err(e) = conn.audit(&entry).await {
                tracing::error!(error = %e, "cannot record a failed login");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot record a failed login"),
    }
}

/// The authentication middleware (see the module docs).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let source = source_of(req.extensions());
    if is_open_path(req.uri().path()) {
        return next.run(req).await;
    }
    // A principal set in-process before this layer (an outer layer, or a test driving the
    // router) is kept: HTTP clients cannot set request extensions.
    if req.extensions().get::<Principal>().is_some() {
        if req.extensions().get::<AuthMethod>().is_none() {
            req.extensions_mut().insert(AuthMethod::Open);
        }
        return next.run(req).await;
    }
    let auth = state.auth.clone();
    match auth.required(&state.store).await {
        Ok(false) => {
            if !auth.no_auth {
                if let Err(e) = open_mode_guard(req.headers(), req.method()) {
                    return e.into_response();
                }
            }
            req.extensions_mut().insert(Principal::local(source));
            req.extensions_mut().insert(AuthMethod::Open);
            return next.run(req).await;
        }
        Ok(true) => {}
        Err(e) => return e.into_response(),
    }
    if let Some(wait) = auth.limit_ip(source) {
        return too_many(wait, "too many requests from this address; retry later");
    }
    let creds = match credentials(req.headers()) {
        Ok(c) => c,
        Err(e) => return challenge(e),
    };
    // A browser opening a UI page without a (valid) session goes to the sign-in page.
    let to_login = crate::web::login_redirect(&req);
    let verified = match verify(&state, source, creds).await {
        Ok(v) => v,
        Err(resp) => {
            return match to_login {
                Some(redirect) if resp.status() == StatusCode::UNAUTHORIZED => redirect,
                _ => resp,
            }
        }
    };
    let (user, method, session) = verified;
    let account_key = match user.key_id {
        Some(id) => format!("key:{id}"),
        None => format!("user:{}", user.user_id),
    };
    if let Some(wait) = auth.limit_account(&account_key) {
        return too_many(wait, "too many requests for this account; retry later");
    }
    if let Some(s) = &session {
        if !matches!(
            req.method(),
            &Method::GET | &Method::HEAD | &Method::OPTIONS
        ) {
            req = match check_csrf(req, s).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
        }
        req.extensions_mut().insert(s.clone());
    }
    req.extensions_mut().insert(Principal {
        user: Some(user.name),
        role: user.role,
        source,
    });
    req.extensions_mut().insert(method);
    next.run(req).await
}

/// True when `host` (a `Host` header value) names the loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Open mode answers without credentials, so it must answer only the local user: requests
/// addressed to another host name (a DNS-rebinding page in the user's browser) and
/// state-changing requests posted by another site (`Origin`) are refused.
fn open_mode_guard(headers: &HeaderMap, method: &Method) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(h) = host {
        if !is_loopback_host(h) {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                detail: "this server has no accounts and answers only requests addressed to localhost or a loopback address".to_owned(),
            });
        }
    }
    if !matches!(method, &Method::GET | &Method::HEAD | &Method::OPTIONS) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, rest)| rest.trim_end_matches('/'));
            let same =
                matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
            if !same {
                return Err(ApiError {
                    status: StatusCode::FORBIDDEN,
                    detail: "a state-changing request from another site (Origin) is refused"
                        .to_owned(),
                });
            }
        }
    }
    Ok(())
}

type Verified = (Authenticated, AuthMethod, Option<SessionContext>);

async fn verify(
    state: &AppState,
    source: Option<IpAddr>,
    creds: Credentials,
) -> Result<Verified, Response> {
    let auth = &state.auth;
    if matches!(creds, Credentials::Missing) {
        return Err(challenge(unauthorized(
            "authentication required: send Authorization: Bearer KEY (or Basic user:KEY), or sign in at /login",
        )));
    }
    let conn = state.conn().await.map_err(IntoResponse::into_response)?;
    match creds {
        Credentials::Missing => Err(challenge(unauthorized("authentication required"))),
        Credentials::Session(token) => {
            let s = accounts::session(&conn, &token)
                .await
                .map_err(|e| ApiError::from(e).into_response())?
                .ok_or_else(|| {
                    challenge(unauthorized(
                        "the session has ended or is not valid; sign in again at /login",
                    ))
                })?;
            let csrf_token = certhist_store::csrf_token_for(&token);
            Ok((
                s.user,
                AuthMethod::Session,
                Some(SessionContext {
                    token_hash: s.token_hash,
                    csrf_token,
                    expires_at: s.expires_at,
                }),
            ))
        }
        Credentials::Key { user, key } => {
            if let Some(wait) = auth.failures.blocked(source, user.as_deref()) {
                return Err(too_many(
                    wait,
                    "too many failed logins from this address; retry later",
                ));
            }
            let found = accounts::verify_api_key(&conn, &key)
                .await
                .map_err(|e| ApiError::from(e).into_response())?
                .filter(|a| user.as_deref().is_none_or(|u| u == a.name));
            match found {
                Some(a) => Ok((a, AuthMethod::Key, None)),
                None => {
                    auth.failures.record_failure(source, user.as_deref());
                    drop(conn);
                    audit_failed_login(&state.store, source, user.as_deref(), "key").await;
                    Err(challenge(unauthorized(
                        "the API key is not valid (unknown, revoked, or its account is disabled)",
                    )))
                }
            }
        }
        Credentials::Password { user, password } => {
            if let Some(wait) = auth.failures.blocked(source, Some(&user)) {
                return Err(too_many(
                    wait,
                    "too many failed logins from this address; retry later",
                ));
            }
            let found = accounts::verify_password(&conn, &user, &password)
                .await
                .map_err(|e| ApiError::from(e).into_response())?;
            match found {
                Some(a) => Ok((a, AuthMethod::Password, None)),
                None => {
                    auth.failures.record_failure(source, Some(&user));
                    drop(conn);
                    audit_failed_login(&state.store, source, Some(&user), "password").await;
                    Err(challenge(unauthorized(
                        "wrong user name or password (or the account is disabled)",
                    )))
                }
            }
        }
    }
}

/// Checks the CSRF token of a cookie-authenticated state-changing request: header
/// `X-CSRF-Token`, or field `csrf` of a form body (the body is read, up to the server's body
/// limit, and put back), or the first part `csrf` of a `multipart/form-data` body (the web UI's
/// upload form puts it first; only that part is read before the check, the rest streams on).
async fn check_csrf(req: Request, session: &SessionContext) -> Result<Request, Response> {
    let expected = certhist_store::sha256(session.csrf_token.as_bytes());
    let matches = |given: &str| certhist_store::sha256(given.as_bytes()) == expected;
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        return if v.to_str().is_ok_and(matches) {
            Ok(req)
        } else {
            Err(csrf_refused())
        };
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if let Some(boundary) = multipart_boundary(&content_type) {
        return check_multipart_csrf(req, &boundary, &matches).await;
    }
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    if !is_form {
        return Err(csrf_refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    let ok = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, v)| matches(&v));
    if !ok {
        return Err(csrf_refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The boundary of a `multipart/form-data` Content-Type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// Most bytes read of a multipart body before its first part (`csrf`) must have ended.
const MULTIPART_CSRF_PREFIX: usize = 16 * 1024;

/// The value of the first part of a multipart body when it is the field `csrf`; `None` when
/// `buf` does not hold the whole first part yet or it is another field.
fn first_part_csrf(buf: &[u8], boundary: &str) -> Option<Result<String, ()>> {
    let open = format!("--{boundary}\r\n");
    let close = format!("\r\n--{boundary}");
    let rest = buf.strip_prefix(open.as_bytes()).or_else(|| {
        // A preamble is allowed before the first boundary.
        let at = find(buf, format!("\r\n--{boundary}\r\n").as_bytes())?;
        buf.get(at + open.len() + 2..)
    });
    let Some(rest) = rest else {
        return (buf.len() >= open.len() + 2 + MULTIPART_CSRF_PREFIX).then_some(Err(()));
    };
    let head_end = find(rest, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(rest.get(..head_end)?).to_ascii_lowercase();
    let is_csrf = head.lines().any(|l| {
        l.starts_with("content-disposition:")
            && l.contains("form-data")
            && l.split(';').any(|p| p.trim() == "name=\"csrf\"")
    });
    if !is_csrf {
        return Some(Err(()));
    }
    let value = rest.get(head_end + 4..)?;
    let end = find(value, close.as_bytes())?;
    Some(
        std::str::from_utf8(value.get(..end)?)
            .map(str::to_owned)
            .map_err(|_| ()),
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn check_multipart_csrf(
    req: Request,
    boundary: &str,
    matches: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Request, Response> {
    use futures_util::StreamExt;
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let token = loop {
        if let Some(found) = first_part_csrf(&buf, boundary) {
            break found;
        }
        if buf.len() > MULTIPART_CSRF_PREFIX {
            break Err(());
        }
        match stream.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(_)) | None => break Err(()),
        }
    };
    match token {
        Ok(t) if matches(&t) => {
            let head = futures_util::stream::once(async move {
                Ok::<_, axum::Error>(axum::body::Bytes::from(buf))
            });
            let body = Body::from_stream(head.chain(stream));
            Ok(Request::from_parts(parts, body))
        }
        _ => Err(csrf_refused()),
    }
}

fn csrf_refused() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "missing or wrong CSRF token: a request signed in by the session cookie must send the token of GET /api/v1/session as header X-CSRF-Token or form field csrf (the first part of a multipart form)",
    )
}

/// The auth state shared by the middleware and the login handlers.
pub(crate) type SharedAuth = Arc<AuthState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_that_failed_blocks_itself_but_not_the_account_elsewhere() {
        let l = FailureLimiter::new(LoginLimit {
            per_minute: 1,
            burst: 3,
        });
        let attacker: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let user_home: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.blocked(attacker, Some("alice")), None);
            l.record_failure(attacker, Some("alice"));
        }
        assert!(l.blocked(attacker, Some("alice")).is_some());
        assert!(l.blocked(attacker, Some("bob")).is_some());
        // The account's bucket is empty, but a source without failures still gets through.
        assert_eq!(l.blocked(user_home, Some("alice")), None);
        // After one failure of its own, that source is subject to the account's limit.
        l.record_failure(user_home, Some("alice"));
        assert!(l.blocked(user_home, Some("alice")).is_some());
        assert!(l.blocked(user_home, Some("carol")).is_none());
    }

    #[test]
    fn a_blocked_source_recovers_with_time() {
        let l = FailureLimiter::new(LoginLimit {
            per_minute: 6,
            burst: 2,
        });
        let t0 = Instant::now();
        let src: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        l.record_failure_at(t0, src, Some("alice"));
        l.record_failure_at(t0, src, Some("alice"));
        // 6 a minute: one more try every 10 s.
        assert_eq!(
            l.blocked_at(t0, src, Some("alice")),
            Some(Duration::from_secs(10))
        );
        assert!(l
            .blocked_at(t0 + Duration::from_secs(9), src, None)
            .is_some());
        assert_eq!(
            l.blocked_at(t0 + Duration::from_secs(10), src, Some("alice")),
            None
        );
        // Fully recovered after burst / rate: the source counts as clean again.
        l.record_failure_at(t0 + Duration::from_secs(10), src, Some("alice"));
        assert!(l
            .blocked_at(t0 + Duration::from_secs(19), src, Some("alice"))
            .is_some());
        assert_eq!(
            l.blocked_at(t0 + Duration::from_secs(60), src, Some("alice")),
            None
        );
    }

    #[test]
    fn multipart_csrf_is_the_first_part() {
        let b = "B0und";
        let body = |first: &str| {
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{first}\"\r\n\r\ntok3n\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\ndata\r\n--{b}--\r\n")
        };
        assert_eq!(
            first_part_csrf(body("csrf").as_bytes(), b),
            Some(Ok("tok3n".to_owned()))
        );
        assert_eq!(first_part_csrf(body("label").as_bytes(), b), Some(Err(())));
        // Not all there yet: read on.
        let whole = body("csrf");
        assert_eq!(first_part_csrf(&whole.as_bytes()[..30], b), None);
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"B0und\""),
            Some("B0und".to_owned())
        );
        assert_eq!(multipart_boundary("text/plain; boundary=x"), None);
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:80",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "192.0.2.1:80",
            "localhost.evil.example",
            "[2001:db8::1]:80",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn credentials_never_show_secrets_in_debug() {
        let c = Credentials::Password {
            user: "alice".into(),
            password: "hunter2hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let k = Credentials::Key {
            user: None,
            key: "chk_0123456789".into(),
        };
        assert!(!format!("{k:?}").contains("chk_"));
    }

    #[test]
    fn authorization_forms_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer chk_ab".parse().unwrap());
        assert!(
            matches!(credentials(&h), Ok(Credentials::Key { user: None, key }) if key == "chk_ab")
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:chk_cd");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {b64}").parse().unwrap(),
        );
        assert!(
            matches!(credentials(&h), Ok(Credentials::Key { user: Some(u), key }) if u == "alice" && key == "chk_cd")
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:pw:with:colons");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {b64}").parse().unwrap(),
        );
        assert!(
            matches!(credentials(&h), Ok(Credentials::Password { user, password }) if user == "alice" && password == "pw:with:colons")
        );
        h.insert(header::AUTHORIZATION, "chk_ef".parse().unwrap());
        assert!(
            matches!(credentials(&h), Ok(Credentials::Key { user: None, key }) if key == "chk_ef")
        );
        h.insert(header::AUTHORIZATION, "Digest x=y".parse().unwrap());
        assert!(credentials(&h).is_err());
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            "a=b; certhist_session=0f0f".parse().unwrap(),
        );
        assert!(matches!(credentials(&c), Ok(Credentials::Session(t)) if t == "0f0f"));
    }
}
