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
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
mod ndjson;
mod params;
pub mod replicas;
mod routes;
pub mod stage_timing;
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
    /// Read replicas (`--replica-url`): reads go to them, writes to the primary (see
    /// [`replicas`]). `None`: everything on the primary.
    pub replicas: Option<replicas::ReplicaSet>,
    /// Per-request stage timing (issue 17): histograms of pool wait, query, decode,
    /// serialisation and write per route, served at `/debug/stage-timing` to loopback admins
    /// and printed at shutdown (see `stage_timing`). Off: no layer, no route, no clock reads.
    pub stage_timing: bool,
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
            replicas: None,
            stage_timing: false,
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

    /// A connection for a read-only request: a usable replica's when `--replica-url` gave
    /// any (see [`replicas`]), else the primary's. Never for a statement that writes.
    pub(crate) async fn read_conn(&self) -> Result<Conn, ApiError> {
        if let Some(set) = &self.config.replicas {
            if let Some(conn) = set.read_conn().await {
                return Ok(conn);
            }
        }
        self.conn().await
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
    // The parameter grammars (`params.rs`), referenced by the operations' parameters.
    components(schemas(
        params::CertHashText,
        params::Sha1Text,
        params::IpText,
        params::IpOrCidrText,
        params::Timestamp,
        params::CursorText,
        params::SearchFieldName,
        params::MatchModeName,
        params::CertFormatName,
        params::ExportFormatName,
        params::TargetKindName,
        params::TagText,
        params::SerialText,
        params::UploadFormatName,
        params::ScanFormatName,
    )),
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
    let (router, mut openapi) = routes::openapi_router().with_state(state).split_for_parts();
    common_responses(&mut openapi);
    (router, openapi)
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = routes::openapi_router().split_for_parts().1;
    common_responses(&mut openapi);
    openapi
}

/// Adds the error responses every operation can give, in the one error shape, where the
/// handler's annotation does not name them already: 401 (no or bad credentials), 403 (role too
/// low, missing CSRF token), 429 (rate limit, with `Retry-After`) on every authenticated
/// operation; 413 (body limit) on every operation with a body; 503 (database unavailable,
/// statement or request timeout, with `Retry-After`) everywhere.
fn common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr, ResponseBuilder};

    let error = |description: &str, retry_after: bool| {
        let mut b = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if retry_after {
            b = b.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
        RefOr::T(b.build())
    };
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            // `security(())`: the operation is open (no credentials needed).
            let open = op
                .security
                .as_ref()
                .is_some_and(|reqs| reqs.iter().any(|r| r == &Default::default()));
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, response: RefOr<utoipa::openapi::Response>| {
                responses.entry(status.to_owned()).or_insert(response);
            };
            if !open {
                add("401", error("Not authenticated: no credentials, or wrong ones (`WWW-Authenticate` names the schemes)", false));
                add(
                    "403",
                    error(
                        "The account's role is too low, or a session request lacks its CSRF token",
                        false,
                    ),
                );
                add(
                    "429",
                    error("Rate limit of the source address or account exceeded", true),
                );
            }
            if has_body {
                add(
                    "413",
                    error("Request body larger than the server accepts", false),
                );
            }
            responses.insert(
                "503".to_owned(),
                error("The database is unavailable, or the statement or request timeout was reached; retry later (narrowing the query helps with timeouts)", true),
            );
        }
    }
}

/// The whole application: `/api/v1/…`, the OpenAPI document, request logging, a request
/// timeout, a body limit, panic catching, and the one error shape for every error response.
pub fn router(store: Store, config: ServeConfig) -> Router {
    router_and_timing(store, config).0
}

/// [`router`], and the stage timing recorder when `config.stage_timing` is on.
fn router_and_timing(
    store: Store,
    config: ServeConfig,
) -> (Router, Option<std::sync::Arc<stage_timing::Recorder>>) {
    let timing = config
        .stage_timing
        .then(|| std::sync::Arc::new(stage_timing::Recorder::default()));
    // The API's own pool: every connection carries the statement timeout from its startup.
    let import_store = store.clone();
    let store = match store.for_requests(config.statement_timeout) {
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
    let api = match &timing {
        Some(recorder) => api.merge(
            Router::new()
                .route(
                    stage_timing::PATH,
                    axum::routing::get(stage_timing::report).delete(stage_timing::reset),
                )
                .with_state(recorder.clone()),
        ),
        None => api,
    };
    let doc = serde_json::to_vec_pretty(&openapi).unwrap_or_default();
    let app = api
        .route(
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
        });
    // Innermost (after authentication): a read a replica failed is run again on the primary.
    let app = match &config.replicas {
        Some(set) => app.layer(axum::middleware::from_fn_with_state(
            set.clone(),
            replicas::retry_on_primary,
        )),
        None => app,
    };
    let app = app
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
        .layer(axum::middleware::from_fn(compat::envelopes));
    // Stage timing wraps everything, so its `total` is the whole server-side request.
    let app = match &timing {
        Some(recorder) => app.layer(axum::middleware::from_fn_with_state(
            recorder.clone(),
            stage_timing::layer,
        )),
        None => app,
    };
    (app, timing)
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
    // The web UI's cache upload form (`/cryptnet/upload`) is an upload too.
    let upload =
        req.uri().path().starts_with("/api/v1/uploads/") || req.uri().path() == "/cryptnet/upload";
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
    let (app, timing) = router_and_timing(store, config);
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY (issue 17): axum does not set it, so a response hyper writes in more than one
    // piece could wait on Nagle's algorithm for the client's delayed ACK (40 ms on Linux).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("server stopped");
    if let Some(recorder) = timing {
        // The library logs; the binary's subscriber decides where it goes (stderr by default).
        tracing::info!(
            "stage timing since start or the last reset\n{}",
            recorder.text()
        );
    }
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
    let body = certhist_store::stage::timed_sync(certhist_store::stage::Stage::Serialise, || {
        serde_json::to_vec(value)
    });
    match body {
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
