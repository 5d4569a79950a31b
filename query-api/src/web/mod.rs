//! The analyst web UI (issue 13), served at `/` next to `/api/v1`.
//!
//! Server-rendered HTML: askama templates under `query-api/templates/` compiled into the
//! binary (auto-escaping: every certificate field is attacker-controlled), one CSS and one
//! small JS file under `/static/` with content-hashed names and year-long cache headers, and
//! the security headers of `security_headers` on every response (no inline script or style
//! anywhere, so the Content-Security-Policy allows only `'self'`).
//!
//! Pages read through the same store functions and view types as the API and take the
//! [`crate::auth::Principal`] extractor (reads need `Role::Reader`), so the
//! authentication layer applies to them unchanged. The role is passed to every template
//! (`Chrome::role`) for the controls that come with accounts and tags (login, tag and note
//! editing, cryptnet upload: the `nav` block of `base.html` is their hook).
//!
//! Web routes are not in the OpenAPI document.
//!
//! **Accounts** (when the server has them): a browser opening a page without a session is sent
//! to `/login?next=…` ([`login_redirect`], called by the authentication layer); the sign-in page
//! is [`login_page`]. Every page shows the signed-in account, its role and a sign-out button (a
//! form posting the session's CSRF token). The role decides which controls are drawn — tag and
//! note forms for analysts and admins (`tagging`), the cryptnet upload form for analysts
//! (`cryptnet`) — and the web routes behind those forms check the role again (`Principal::require`),
//! so a reader posting a form by hand gets a 403 page.

mod cryptnet;
mod pages;
pub mod recognise;
mod tagging;
mod timeline;

use askama::Template;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Request};
use axum::http::request::Parts;
use axum::http::Method;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::IpAddr;
use std::sync::OnceLock;

use crate::auth::{AuthMethod, Principal, SessionContext};
use crate::error::ApiError;
use crate::AppState;

/// The Content-Security-Policy of every UI response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

/// The UI routes (merged into the application router by `crate::router`).
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/ip/{ip}", get(pages::ip))
        .route("/ip/{addr}/{len}", get(pages::ip_cidr))
        .route("/certificate/{hash}", get(pages::certificate))
        .route("/names", get(pages::names))
        .route("/serial/{serial}", get(pages::serial))
        .route("/overlap", get(pages::overlap))
        .route("/graph", get(pages::graph))
        .route("/export/search.ndjson", get(pages::export_search))
        .route("/export/ip.ndjson", get(pages::export_ip))
        .route("/export/hosts.ndjson", get(pages::export_hosts))
        .route("/export/ip.csv", get(pages::export_ip_csv))
        .route("/export/search.csv", get(pages::export_search_csv))
        .route("/tags", get(tagging::tags_page))
        .route("/tags/add", post(tagging::add_tag))
        .route("/tags/remove", post(tagging::remove_tag))
        .route("/notes/add", post(tagging::add_note))
        .route("/notes/delete", post(tagging::delete_note))
        .route("/cryptnet", get(cryptnet::page).post(cryptnet::paste))
        .route("/cryptnet/upload", post(cryptnet::upload))
        .route("/static/{file}", get(asset))
        .with_state(state)
        .layer(axum::middleware::from_fn(security_headers))
}

/// Adds the security headers to every UI response.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// FNV-1a (64 bit): a stable content hash for the asset names.
fn fnv(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

struct Assets {
    css: String,
    js: String,
}

fn assets() -> &'static Assets {
    static A: OnceLock<Assets> = OnceLock::new();
    A.get_or_init(|| Assets {
        css: format!("app.{}.css", fnv(CSS.as_bytes())),
        js: format!("app.{}.js", fnv(JS.as_bytes())),
    })
}

/// `/static/app.<hash>.css|js`: immutable, cached for a year.
async fn asset(Path(file): Path<String>) -> Response {
    let a = assets();
    let (body, ctype) = if file == a.css {
        (CSS, "text/css; charset=utf-8")
    } else if file == a.js {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            "no such asset",
        )
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ctype)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Who is asking, as the pages need it: the [`Principal`] (role checks) and, for a cookie
/// session, its CSRF token (put into every form that posts).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// The account and role.
    pub principal: Principal,
    /// The session's CSRF token (`None` without a cookie session).
    pub csrf: Option<String>,
}

impl std::ops::Deref for Viewer {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let csrf = parts
            .extensions
            .get::<SessionContext>()
            .map(|s| s.csrf_token.clone());
        let _ = parts.extensions.get::<AuthMethod>();
        Ok(Viewer { principal, csrf })
    }
}

/// The response to a browser that opens a UI page without a valid session: `303` to
/// `/login?next=<the page>`. `None` for API, compatibility and asset paths, for methods other
/// than GET/HEAD, and for clients that do not accept HTML (scripts get the API's 401).
pub(crate) fn login_redirect(req: &Request) -> Option<Response> {
    if !matches!(req.method(), &Method::GET | &Method::HEAD) {
        return None;
    }
    let path = req.uri().path();
    if path.starts_with("/api/")
        || path.starts_with("/compat/")
        || path.starts_with("/static/")
        || path.starts_with("/export/")
    {
        return None;
    }
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if !html {
        return None;
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let location = if target == "/" {
        "/login".to_owned()
    } else {
        format!("/login?{}", links::query(&[("next", &target)]))
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Some(resp)
}

/// A `next` target after sign-in: a path of this site (`/…`, not `//host` or `/\host`), else `/`.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2048
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    title: String,
    message: Option<String>,
    user: String,
    next: String,
}

/// The sign-in page (status, an optional message, the user name to fill in, where to go after):
/// the UI's layout without the search box, with the UI's security headers and `no-store`.
pub(crate) fn login_page(
    status: StatusCode,
    message: Option<&str>,
    user: &str,
    next: Option<&str>,
) -> Response {
    let mut chrome = Chrome::new(
        &Viewer {
            principal: Principal::local(None),
            csrf: None,
        },
        "",
    );
    chrome.user = None;
    chrome.bare = true;
    let page = LoginPage {
        chrome,
        title: "Sign in".to_owned(),
        message: message.map(visible),
        user: visible(user),
        next: safe_next(next),
    };
    let mut resp = html(status, &page);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// What every page's layout needs: asset paths, the search box text, who is asking.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    /// Stylesheet path.
    pub css: String,
    /// Script path.
    pub js: String,
    /// Text of the search box.
    pub q: String,
    /// Autofocus the search box (home page).
    pub autofocus: bool,
    /// Account name, when there are accounts.
    pub user: Option<String>,
    /// Role name (`reader`, `analyst`, `admin`): which controls appear.
    pub role: String,
    /// The session's CSRF token, for the forms that post (empty without a cookie session).
    pub csrf: String,
    /// A cookie session: the sign-out button is shown.
    pub session: bool,
    /// Analyst or admin: tag, note and upload forms are shown.
    pub can_edit: bool,
    /// No search box and navigation (the sign-in page).
    pub bare: bool,
}

impl Chrome {
    pub(crate) fn new(viewer: &Viewer, q: impl Into<String>) -> Self {
        let a = assets();
        let principal = &viewer.principal;
        Chrome {
            css: format!("/static/{}", a.css),
            js: format!("/static/{}", a.js),
            q: q.into(),
            autofocus: false,
            user: principal.user.clone(),
            role: principal.role.to_string(),
            csrf: viewer.csrf.clone().unwrap_or_default(),
            session: viewer.csrf.is_some(),
            can_edit: principal.role >= certhist_model::views::Role::Analyst,
            bare: false,
        }
    }
}

/// Makes attacker-controlled text visible as it is: control characters, bidi overrides and
/// other invisible format characters (U+202E would reverse `gpj.exe` into `exe.jpg`) are shown
/// as `\u{…}` — the same classes as the CLI's `output::clean`. HTML escaping is the template
/// engine's job; this only keeps the text from lying about itself. Link targets keep the raw
/// value.
pub(crate) fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let invisible = ch.is_control()
            || matches!(ch as u32, 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2069 | 0xFEFF);
        if invisible {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    out
}

/// Renders a template as an HTML response.
pub(crate) fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    // Timed as the `serialise` stage under `serve --stage-timing` (issue 17).
    let rendered =
        certhist_store::stage::timed_sync(certhist_store::stage::Stage::Serialise, || {
            page.render()
        });
    match rendered {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            Body::from(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                "internal error; the server log has the details",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    status: u16,
    detail: String,
}

/// An error shown as a page (the API's message and status).
#[derive(Debug)]
pub(crate) struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut chrome = Chrome::new(
            &Viewer {
                principal: Principal::local(None),
                csrf: None,
            },
            "",
        );
        chrome.user = None;
        chrome.can_edit = false;
        let page = ErrorPage {
            chrome,
            title: self
                .0
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_owned(),
            status: self.0.status.as_u16(),
            detail: self.0.detail,
        };
        html(self.0.status, &page)
    }
}

/// Link builders: every href of the UI comes from here, from parsed values (addresses, hex)
/// or with the value percent-encoded into a query string.
pub(crate) mod links {
    use super::IpAddr;
    use ipnet::IpNet;

    /// `/ip/{ip}`.
    pub fn ip(ip: IpAddr) -> String {
        format!("/ip/{ip}")
    }

    /// `/ip/{addr}/{len}` (an address for a full-length prefix).
    pub fn net(net: &IpNet) -> String {
        if net.prefix_len() == net.max_prefix_len() {
            ip(net.addr())
        } else {
            format!("/ip/{}/{}", net.network(), net.prefix_len())
        }
    }

    /// `/certificate/{sha1}`.
    pub fn cert(sha1: &[u8]) -> String {
        format!("/certificate/{}", certhist_model::hex_lower(sha1))
    }

    /// A query string of `pairs`, percent-encoded.
    pub fn query(pairs: &[(&str, &str)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// `/names?field=…&q=…[&match=…]`.
    pub fn search(field: &str, q: &str, mode: Option<&str>) -> String {
        let mut pairs = vec![("field", field), ("q", q)];
        if let Some(m) = mode {
            pairs.push(("match", m));
        }
        format!("/names?{}", query(&pairs))
    }

    /// An exact-value search (certificate fields are values, never patterns: `*.example.com`
    /// as a SAN is the literal wildcard name).
    pub fn exact(field: &str, q: &str) -> String {
        search(field, q, Some("exact"))
    }

    /// `/serial/{serial}` (hex or decimal digits only), optionally narrowed to a CertID.
    pub fn serial(serial: &str, name_hash: Option<&str>, key_hash: Option<&str>) -> String {
        let clean: String = serial
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut pairs = Vec::new();
        if let Some(n) = name_hash {
            pairs.push(("issuer_name_hash", n));
        }
        if let Some(k) = key_hash {
            pairs.push(("issuer_key_hash", k));
        }
        if pairs.is_empty() {
            format!("/serial/{clean}")
        } else {
            format!("/serial/{clean}?{}", query(&pairs))
        }
    }

    /// `/tags?q=…`: the targets carrying a tag.
    pub fn tag(tag: &str) -> String {
        format!("/tags?{}", query(&[("q", tag)]))
    }

    /// `/api/v1/export?format=…&<selector>` (STIX / MISP bundles of a list).
    pub fn export(format: &str, selector: &[(&str, &str)]) -> String {
        let mut pairs = vec![("format", format)];
        pairs.extend_from_slice(selector);
        format!("/api/v1/export?{}", query(&pairs))
    }

    /// Appends `cursor=…` to a link (`?` or `&` as needed).
    pub fn with_cursor(base: &str, cursor: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{}", query(&[("cursor", cursor)]))
    }
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn sign_in_returns_only_to_pages_here() {
        use super::safe_next;
        assert_eq!(
            safe_next(Some("/ip/192.0.2.1?limit=5")),
            "/ip/192.0.2.1?limit=5"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a b")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn invisible_characters_become_visible() {
        assert_eq!(visible("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(visible("a\u{1b}[31mb\0c"), "a\\u{1b}[31mb\\u{0}c");
        assert_eq!(visible("x\u{200b}y\u{feff}"), "x\\u{200b}y\\u{feff}");
        assert_eq!(visible("<b>é</b>"), "<b>é</b>");
    }
}
