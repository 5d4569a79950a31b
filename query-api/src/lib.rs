//! HTTP query API of certhist: `/api/v1` JSON endpoints over the same store functions the CLI
//! uses (`certhist_store::read`), answering with the view types of `certhist_model::views`,
//! and an OpenAPI document generated from the handlers.
//!
//! - [`router`] builds the whole application (tests call it without a socket);
//! - [`serve`] binds, serves and shuts down gracefully on Ctrl-C / SIGTERM (`certhist serve`
//!   in the binary fills [`ServeConfig`] from its flags).
//!
//! Every request takes one pooled connection and sets `statement_timeout` on it before its
//! queries run; a cancelled statement becomes a 503 in the one error shape.

pub mod auth;
mod compat;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod ndjson;
mod params;
mod routes;
pub mod tls;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use certhist_store::{Conn, Store};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use error::ApiError;
pub use tls::serve_tls_on;

/// Configuration of the API server, read once at startup.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `statement_timeout` of every query; a cancelled query answers 503.
    pub statement_timeout: Duration,
    /// Whole-request timeout (503 after it; NDJSON streams are exempt once the body started).
    pub request_timeout: Duration,
    /// Widest IPv4 block accepted by `/ip` and `expand` (prefix length; 16 = at most a /16).
    pub widest_prefix_v4: u8,
    /// Widest IPv6 block accepted (prefix length).
    pub widest_prefix_v6: u8,
    /// Certificates served by more than this many distinct addresses are `shared`.
    pub shared_threshold: i64,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Page size when `limit` is not given.
    pub default_page_size: i64,
    /// Largest `limit` accepted.
    pub max_page_size: i64,
    /// Largest `max_nodes` of `/expand`.
    pub max_expand_nodes: usize,
    /// Largest `hops` of `/expand`.
    pub max_expand_hops: u32,
    /// Authentication off (`--no-auth`): every request acts as the local user with every role.
    pub no_auth: bool,
    /// The server runs TLS: session cookies are marked `Secure`.
    pub tls: bool,
    /// Requests per source address (`None` = unlimited); applied when authentication is on.
    pub rate_limit_per_ip: Option<auth::RateLimit>,
    /// Requests per API key (or per account for password and session requests).
    pub rate_limit_per_key: Option<auth::RateLimit>,
    /// Failed logins per source address, and per account name for sources that failed.
    pub login_failure_limit: auth::LoginLimit,
    /// How long a web session lasts.
    pub session_ttl: Duration,
    /// Largest upload body (`/api/v1/uploads/…`), in bytes; `body_limit_bytes` does not apply
    /// to uploads.
    pub upload_limit_bytes: u64,
    /// Whole-request timeout of uploads (receiving and importing), instead of
    /// `request_timeout`.
    pub upload_timeout: Duration,
    /// Where uploads are spooled before they are imported (`None`: the system's temporary
    /// directory).
    pub upload_dir: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            statement_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            widest_prefix_v4: 16,
            widest_prefix_v6: 48,
            shared_threshold: certhist_model::views::Commonness::DEFAULT_THRESHOLD,
            body_limit_bytes: 64 * 1024,
            default_page_size: 100,
            max_page_size: 1000,
            max_expand_nodes: 2000,
            max_expand_hops: 6,
            no_auth: false,
            tls: false,
            rate_limit_per_ip: Some(auth::RateLimit {
                per_second: 100,
                burst: 200,
            }),
            rate_limit_per_key: Some(auth::RateLimit {
                per_second: 50,
                burst: 100,
            }),
            login_failure_limit: auth::LoginLimit::default(),
            session_ttl: Duration::from_secs(12 * 3600),
            upload_limit_bytes: 1 << 30,
            upload_timeout: Duration::from_secs(3600),
            upload_dir: None,
        }
    }
}

/// Errors of [`serve`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The database could not be reached at startup.
    #[error(transparent)]
    Store(#[from] certhist_store::StoreError),
}

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    /// The pool without the statement timeout: imports of uploads run long statements.
    pub(crate) import_store: Store,
    pub(crate) config: ServeConfig,
    pub(crate) auth: auth::SharedAuth,
}

impl AppState {
    /// A pooled connection (its statement timeout is set at connect: see `router`).
    pub(crate) async fn conn(&self) -> Result<Conn, ApiError> {
        Ok(self.store.conn().await?)
    }
}

/// The OpenAPI document (paths are added from the handlers by `utoipa-axum`).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "certhist API",
        description = "Passive certificate history: IP ↔ certificate pivots, reverse search, field search, serial / OCSP CertID lookup, overlap and graph expansion. Errors are always {\"errors\":[{\"detail\": …}]}.",
        license(name = "Apache-2.0")
    ),
    tags((name = "certhist", description = "certhist query API v1")),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("basic" = []), ("cookie" = []))
)]
pub struct ApiDoc;

/// The security schemes of the API (docs/API.md § Authentication).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `certhist user add` / `certhist user key new` (`chk_…`); also accepted as a bare `Authorization: KEY`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "`user:KEY` or `user:password` (the form pypssl and passivetotal send).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The web session from `POST /login`. State-changing requests must also send the session's CSRF token (`GET /api/v1/session`) as header `X-CSRF-Token` or form field `csrf`.",
            ))),
        );
    }
}

fn api_router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = routes::openapi_router().with_state(state).split_for_parts();
    (router, openapi)
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi_router().split_for_parts().1
}

/// The whole application: `/api/v1/…`, the OpenAPI document, request logging, a request
/// timeout, a body limit, panic catching, and the one error shape for every error response.
pub fn router(store: Store, config: ServeConfig) -> Router {
    // The API's own pool: every connection carries the statement timeout from its startup.
    let import_store = store.clone();
    let store = match store.with_statement_timeout(config.statement_timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build a pool with statement_timeout; queries run without it");
            store
        }
    };
    let state = AppState {
        store,
        import_store,
        config: config.clone(),
        auth: std::sync::Arc::new(auth::AuthState::new(&config)),
    };
    let auth_layer = axum::middleware::from_fn_with_state(state.clone(), auth::authenticate);
    let (api, openapi) = api_router(state.clone());
    // Compatibility APIs (CIRCL, PassiveTotal): not in the OpenAPI document, see `compat`.
    let api = api.merge(compat::router(state.clone()));
    // The analyst web UI at `/` (HTML; not in the OpenAPI document, see `web`).
    let api = api.merge(web::router(state));
    let doc = serde_json::to_vec_pretty(&openapi).unwrap_or_default();
    api.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    doc,
                )
            }
        }),
    )
    .fallback(|| async {
        error::error_response(
            StatusCode::NOT_FOUND,
            "no such endpoint; see /api/v1/openapi.json",
        )
    })
    .method_not_allowed_fallback(|| async {
        error::error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; /api/v1/openapi.json lists the methods of each route",
        )
    })
    .layer(auth_layer)
    .layer(axum::middleware::from_fn(error_shape))
    .layer(CatchPanicLayer::custom(
        |_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            error::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; the server log has the details",
            )
        },
    ))
    .layer(axum::middleware::from_fn_with_state(
        Limits::of(&config),
        limits,
    ))
    .layer(TraceLayer::new_for_http())
    // Outermost: errors on /compat/… paths in the upstream envelopes (keep it last).
    .layer(axum::middleware::from_fn(compat::envelopes))
}

/// Request timeout and body limit: uploads (`/api/v1/uploads/`) get their own, larger ones.
#[derive(Clone, Copy, Debug)]
struct Limits {
    body_bytes: u64,
    timeout: Duration,
    upload_bytes: u64,
    upload_timeout: Duration,
}

impl Limits {
    fn of(config: &ServeConfig) -> Self {
        Limits {
            body_bytes: u64::try_from(config.body_limit_bytes).unwrap_or(u64::MAX),
            timeout: config.request_timeout,
            upload_bytes: config.upload_limit_bytes,
            upload_timeout: config.upload_timeout,
        }
    }
}

/// Applies [`Limits`]: 413 when the body is (or turns out) larger than allowed, 503 when the
/// response does not start in time (a streamed body, once started, is not cut).
async fn limits(
    axum::extract::State(limits): axum::extract::State<Limits>,
    req: Request,
    next: Next,
) -> Response {
    let upload = req.uri().path().starts_with("/api/v1/uploads/");
    let (max_bytes, timeout) = if upload {
        (limits.upload_bytes, limits.upload_timeout)
    } else {
        (limits.body_bytes, limits.timeout)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return error::error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large (at most {max_bytes} bytes)"),
        );
    }
    let cap = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, cap)));
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took longer than the server allows; narrow it and retry",
        ),
    }
}

/// Rewrites error responses produced outside the handlers (body limit, timeout, framework
/// rejections) into the one error shape; responses already in it pass through.
async fn error_shape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // JSON errors are in the shape already; the login page answers its errors as HTML.
    let keep = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if keep {
        return resp;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => {
            "the request took longer than the server allows; narrow it and retry".to_owned()
        }
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut out = error::error_response(status, detail);
    for (k, v) in resp.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Serves the API on `config.listen` until Ctrl-C or SIGTERM, then finishes in-flight
/// requests and returns.
pub async fn serve(store: Store, config: ServeConfig) -> Result<(), ServeError> {
    // Fail fast when the database is unreachable.
    drop(store.conn().await?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_on(listener, store, config, shutdown_signal()).await
}

/// Serves the API on an already bound listener until `shutdown` completes, then finishes
/// in-flight requests and returns (tests bind `127.0.0.1:0` and pass a channel).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    store: Store,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    tracing::info!(http.listen = %local, "serving /api/v1");
    // Connect info gives the authentication layer the source address (rate limits, audit).
    let app = router(store, config).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("server stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (the shutdown signal of [`serve`]).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// JSON response helper.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Body::from(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serialising a response");
            error::error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
