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

mod pages;
pub mod recognise;
mod timeline;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::IpAddr;
use std::sync::OnceLock;

use crate::auth::Principal;
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
        HeaderValue::from_static("no-referrer"),
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
}

impl Chrome {
    pub(crate) fn new(principal: &Principal, q: impl Into<String>) -> Self {
        let a = assets();
        Chrome {
            css: format!("/static/{}", a.css),
            js: format!("/static/{}", a.js),
            q: q.into(),
            autofocus: false,
            user: principal.user.clone(),
            role: principal.role.to_string(),
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
        let page = ErrorPage {
            chrome: Chrome::new(&Principal::local(None), ""),
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
        format!("/certificate/{}", hex::encode(sha1))
    }

    fn query(pairs: &[(&str, &str)]) -> String {
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
    fn invisible_characters_become_visible() {
        assert_eq!(visible("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(visible("a\u{1b}[31mb\0c"), "a\\u{1b}[31mb\\u{0}c");
        assert_eq!(visible("x\u{200b}y\u{feff}"), "x\\u{200b}y\\u{feff}");
        assert_eq!(visible("<b>é</b>"), "<b>é</b>");
    }
}
