//! The analyst web UI (issue 13) against a real database, in two layers:
//!
//! - HTTP: security headers, cached assets, the search box's redirects and readings, HTML
//!   error pages, and no inline script or style on any page (through the router, no socket);
//! - a real browser: Debian `chromium` driven headless through `chromedriver` (fantoccini) on
//!   the app served on 127.0.0.1:0. It walks the seed workflow (search an IP → its history and
//!   timeline → a certificate → its hosts → a SAN → search results → another IP) asserting
//!   values computed from the fixture list below, and renders certificates whose CN, O, OU,
//!   SAN and issuer hold script, markup, `javascript:`, U+202E and a 5,000-character string:
//!   shown literally, no dialog, no injected element, no horizontal overflow at 1280 px.
//!
//! Screenshots of every page go to `target/ui-screenshots/` (the current ones are copied to
//! `docs/ui/` for the README). Without chromium/chromedriver the browser tests fail with the
//! install command; `CERTHIST_UI_OPTIONAL=1` skips them instead (local runs only).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use certhist_api::ServeConfig;
use certhist_model::{ObservationRow, Sha1};
use certhist_test_support::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use tower::ServiceExt;

// ------------------------------------------------------------------------------ fixtures

macro_rules! cert_file {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/certs/",
            $path
        ))
    };
}

struct Fixture {
    der: &'static [u8],
    sha1: &'static str,
    cn: &'static str,
}

// Values from tests/data/certs/CERT_INVENTORY.tsv.
const GITHUB: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-github.0.der"),
    sha1: "e3b32dab1e685b16945d1499824f6569583a9a61",
    cn: "github.com",
};
const HN: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-hn.0.der"),
    sha1: "7fb49b663c99cbe8adef4be0ad2082241aefd22e",
    cn: "news.ycombinator.com",
};
const WIKIPEDIA: Fixture = Fixture {
    der: cert_file!("rustls/rustls-test/benches/data/cert-wikipedia.0.der"),
    sha1: "390917308a9acfd9af6fbe16586c31eaf62a3bd5",
    cn: "*.wikipedia.org",
};
const GOOGLE_2013: Fixture = Fixture {
    der: cert_file!("certificate-transparency/python/ct/crypto/testdata/google_cert.der"),
    sha1: "570fe2e3bfee986ed4a158aed8770f2e21614659",
    cn: "*.google.com",
};
const ALL: [&Fixture; 4] = [&GITHUB, &HN, &WIKIPEDIA, &GOOGLE_2013];

/// Addresses serving WIKIPEDIA besides 192.0.2.10 (above the shared threshold of 50).
const SHARED_IPS: u8 = 60;

fn sha1(hex_text: &str) -> Sha1 {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn o(ip: &str, port: u16, sha: &str, first: DateTime<Utc>, last: DateTime<Utc>) -> ObservationRow {
    ObservationRow {
        ip: ip.parse().unwrap(),
        port,
        sha1: sha1(sha),
        first_seen: first,
        last_seen: last,
        times_seen: 2,
        source: "test".to_owned(),
    }
}

fn observations() -> Vec<ObservationRow> {
    let mut v = vec![
        o(
            "192.0.2.10",
            443,
            GITHUB.sha1,
            day(2024, 1, 1),
            day(2024, 3, 1),
        ),
        o("192.0.2.10", 443, HN.sha1, day(2024, 2, 1), day(2024, 6, 1)),
        o(
            "192.0.2.10",
            443,
            WIKIPEDIA.sha1,
            day(2023, 1, 1),
            day(2023, 2, 1),
        ),
        o(
            "192.0.2.10",
            8443,
            GOOGLE_2013.sha1,
            day(2022, 6, 1),
            day(2022, 7, 1),
        ),
        o(
            "192.0.2.11",
            443,
            GITHUB.sha1,
            day(2024, 2, 15),
            day(2024, 4, 1),
        ),
        o("192.0.2.12", 443, HN.sha1, day(2024, 3, 1), day(2024, 3, 2)),
    ];
    for i in 1..=SHARED_IPS {
        v.push(o(
            &format!("198.51.100.{i}"),
            443,
            WIKIPEDIA.sha1,
            day(2024, 1, 1),
            day(2024, 1, 2),
        ));
    }
    v
}

fn ymd(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

async fn seeded() -> TestDb {
    let db = TestDb::new().await;
    let records: Vec<_> = ALL
        .iter()
        .map(|f| certhist_x509::parse_der(f.der))
        .collect();
    for (r, f) in records.iter().zip(ALL.iter()) {
        assert_eq!(hex::encode(r.sha1), f.sha1, "fixture SHA-1");
    }
    let mut conn = db.store().conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&records).await.unwrap();
    tx.write_observations(&observations()).await.unwrap();
    tx.commit().await.unwrap();
    db
}

/// Hostile text, one per field.
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const JS_URL: &str = "javascript:alert(1)";
const RLO: &str = "\u{202e}gpj.exe";

/// Two self-signed certificates full of hostile text, seen on 192.0.2.66; their SHA-1s.
async fn add_hostile(db: &TestDb) -> (String, String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![
        format!("{SCRIPT}.example"),
        IMG.to_owned(),
        JS_URL.to_owned(),
    ])
    .unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, SCRIPT);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, IMG);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, RLO);
    let a = p.self_signed(&key).unwrap();
    let long = "W".repeat(5000);
    let mut p2 =
        rcgen::CertificateParams::new(vec![format!("{}.example", "w".repeat(60))]).unwrap();
    p2.distinguished_name
        .push(rcgen::DnType::CommonName, long.clone());
    p2.distinguished_name
        .push(rcgen::DnType::OrganizationName, RLO);
    let b = p2.self_signed(&key).unwrap();
    let records = vec![
        certhist_x509::parse_der(a.der()),
        certhist_x509::parse_der(b.der()),
    ];
    let sa = hex::encode(records[0].sha1);
    let sb = hex::encode(records[1].sha1);
    let mut conn = db.store().conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&records).await.unwrap();
    tx.write_observations(&[
        o("192.0.2.66", 443, &sa, day(2025, 1, 1), day(2025, 2, 1)),
        o("192.0.2.66", 443, &sb, day(2025, 2, 1), day(2025, 3, 1)),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (sa, sb, long)
}

// ------------------------------------------------------------------------------ HTTP layer

async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn assert_security_headers(uri: &str, h: &axum::http::HeaderMap) {
    assert_eq!(
        h.get(header::CONTENT_SECURITY_POLICY).unwrap(),
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "{uri}"
    );
    assert_eq!(
        h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
        "nosniff",
        "{uri}"
    );
    assert_eq!(
        h.get(header::REFERRER_POLICY).unwrap(),
        "same-origin",
        "{uri}"
    );
}

/// No inline script, style or event handler: the CSP would block them, so none may be relied on.
fn assert_no_inline(uri: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<style"), "{uri}: <style> element");
    assert!(!lower.contains(" style="), "{uri}: style attribute");
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..lower[i..].find('>').map_or(lower.len(), |e| i + e)];
        assert!(
            tag.contains(" src=\"/static/"),
            "{uri}: inline script {tag}"
        );
    }
    // Event-handler attributes inside any tag (escaped text has no raw `<`, so every `<` starts
    // a tag the template wrote).
    for (i, _) in lower.match_indices('<') {
        let tag = &lower[i..lower[i..].find('>').map_or(lower.len(), |e| i + e)];
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onmouseover=",
            " onfocus=",
        ] {
            assert!(!tag.contains(handler), "{uri}: event handler in {tag}");
        }
    }
}

#[tokio::test]
async fn pages_carry_security_headers_and_no_inline_code() {
    let db = seeded().await;
    let (hostile_a, hostile_b, _) = add_hostile(&db).await;
    let app = certhist_api::router(db.store(), ServeConfig::default());
    let pages = [
        "/".to_owned(),
        "/ip/192.0.2.10".to_owned(),
        "/ip/192.0.2.0/24".to_owned(),
        format!("/certificate/{}", GITHUB.sha1),
        format!("/certificate/{hostile_a}"),
        format!("/certificate/{hostile_b}"),
        "/ip/192.0.2.66".to_owned(),
        "/names?field=name&q=github.com".to_owned(),
        "/serial/2765689FEE52F85C4C8A47650E84BBE".to_owned(),
        "/overlap".to_owned(),
        "/graph".to_owned(),
        "/graph?seed=192.0.2.10".to_owned(),
        format!("/graph?seed={hostile_a}"),
        "/overlap?members=192.0.2.10+192.0.2.11".to_owned(),
        format!("/search?q={}", GITHUB.sha1),
        "/cryptnet".to_owned(),
        "/tags?q=apt28".to_owned(),
        "/login".to_owned(),
    ];
    for uri in &pages {
        let (status, h, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert_eq!(
            h.get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8",
            "{uri}"
        );
        assert_security_headers(uri, &h);
        assert_no_inline(uri, &body);
        // Hostile text never appears unescaped.
        assert!(!body.contains(SCRIPT), "{uri}: raw script");
        assert!(!body.contains("<img"), "{uri}: raw img");
        assert!(
            !body.contains("href=\"javascript"),
            "{uri}: javascript: link"
        );
    }
    // The stylesheet and script the layout links to: content-hashed, cached for a year.
    let (_, _, home) = get(&app, "/").await;
    let assets: Vec<&str> = home
        .match_indices("/static/app.")
        .map(|(i, _)| &home[i..i + home[i..].find('"').unwrap()])
        .collect();
    for kind in [".css", ".js"] {
        let needle = *assets
            .iter()
            .find(|p| p.ends_with(kind))
            .unwrap_or_else(|| panic!("no {kind} asset linked"));
        let (status, h, body) = get(&app, needle).await;
        assert_eq!(status, StatusCode::OK, "{needle}");
        assert_eq!(
            h.get(header::CACHE_CONTROL).unwrap(),
            "public, max-age=31536000, immutable"
        );
        assert!(!body.is_empty());
    }
    let (status, _, _) = get(&app, "/static/app.0000000000000000.css").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The search box: one reading → a redirect; several → the choice; none → a 404 page.
    let cases = [
        ("192.0.2.10", "/ip/192.0.2.10"),
        ("192.0.2.0%2F24", "/ip/192.0.2.0/24"),
        ("github.com", "/names?field=name&q=github.com"),
        ("02%3A76%3A56", "/serial/027656"),
    ];
    for (q, location) in cases {
        let (status, h, _) = get(&app, &format!("/search?q={q}")).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{q}");
        assert_eq!(h.get(header::LOCATION).unwrap(), location, "{q}");
    }
    let (status, _, body) = get(&app, &format!("/search?q={}", GITHUB.sha1)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("href=\"/certificate/{}\"", GITHUB.sha1)));
    assert!(body.contains(&format!("href=\"/serial/{}\"", GITHUB.sha1.to_uppercase())));
    let (status, h, body) = get(&app, "/search?q=a%2Fb").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_security_headers("/search", &h);
    assert!(body.contains("Not recognised"));

    // Errors are HTML pages naming the parameter, with the API's status.
    let (status, h, body) = get(&app, "/ip/not-an-ip").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(body.contains("invalid parameter `ip`"), "{body}");
    let (status, _, body) = get(&app, &format!("/certificate/{}", "ab".repeat(20))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no certificate with hash"), "{body}");
    let (status, _, body) = get(&app, "/names?field=nope&q=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("`field`"), "{body}");

    // Overlap by certificates: the addresses that served both GitHub and HN.
    let (status, _, body) = get(
        &app,
        &format!("/overlap?members={}+{}", GITHUB.sha1, HN.sha1),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let both: Vec<IpAddr> = {
        let obs = observations();
        let served = |s: &str, ip: IpAddr| obs.iter().any(|o| o.sha1 == sha1(s) && o.ip == ip);
        let mut v: Vec<IpAddr> = obs
            .iter()
            .map(|o| o.ip)
            .filter(|ip| served(GITHUB.sha1, *ip) && served(HN.sha1, *ip))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(both, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
    for ip in &both {
        assert!(
            body.contains(&format!("<a href=\"/ip/{ip}\">{ip}</a>")),
            "{body}"
        );
    }
    assert!(!body.contains("href=\"/ip/192.0.2.11\""), "{body}");
    let (status, _, body) = get(&app, "/overlap?members=192.0.2.10").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("`members`"), "{body}");

    // Exports: the API's NDJSON, as downloads.
    let (status, h, body) = get(&app, "/export/ip.ndjson?ip=192.0.2.10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/x-ndjson");
    assert_eq!(body.lines().count(), 4);
    let (status, _, body) = get(
        &app,
        &format!("/export/hosts.ndjson?hash={}", WIKIPEDIA.sha1),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.lines().count(), usize::from(SHARED_IPS) + 1);
    // CSV: a header and one line per row, values from the fixture list.
    let (status, h, body) = get(&app, "/export/ip.csv?ip=192.0.2.10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "text/csv; charset=utf-8"
    );
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("ip,port,sha1,"), "{body}");
    let ip10: IpAddr = "192.0.2.10".parse().unwrap();
    let mut rows: Vec<ObservationRow> = observations()
        .into_iter()
        .filter(|o| o.ip == ip10)
        .collect();
    rows.sort_by_key(|o| (o.port, o.sha1));
    assert_eq!(lines.len(), rows.len() + 1);
    for (line, o) in lines[1..].iter().zip(&rows) {
        assert!(
            line.starts_with(&format!("192.0.2.10,{},{},", o.port, hex::encode(o.sha1))),
            "{line}"
        );
        assert!(line.contains(
            &o.first_seen
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    // Tags go into the exports: one on the address, one on the certificate.
    {
        use certhist_model::views::Target;
        let by = certhist_store::Author {
            name: "alice".to_owned(),
            actor: Some("alice".to_owned()),
            source: None,
        };
        let mut conn = db.store().conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.add_tag(&Target::Ip(ip10), "apt28", &by).await.unwrap();
        tx.add_tag(
            &Target::Certificate(sha1(GOOGLE_2013.sha1)),
            "c2-panel",
            &by,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let (_, _, body) = get(&app, "/export/ip.csv?ip=192.0.2.10").await;
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].ends_with(",sources,tags"), "{body}");
    assert_eq!(lines.len(), rows.len() + 1);
    for line in &lines[1..] {
        assert!(
            line.split(',').next_back().unwrap().contains("apt28"),
            "{line}"
        );
    }
    let (status, _, body) = get(&app, "/export/search.csv?field=cn&q=*.google.com").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(body.contains(GOOGLE_2013.sha1));
    assert!(body.lines().next().unwrap().ends_with(",tags"), "{body}");
    assert!(
        body.lines().nth(1).unwrap().ends_with(",c2-panel"),
        "{body}"
    );
    let (status, _, body) = get(&app, "/export/search.ndjson?field=name&q=*.google.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(GOOGLE_2013.sha1), "{body}");
}

/// Paging a reverse search page by page (limit 7) visits every host exactly once.
#[tokio::test]
async fn host_pages_visit_every_address_once() {
    let db = seeded().await;
    let app = certhist_api::router(db.store(), ServeConfig::default());
    let mut uri = format!("/certificate/{}?limit=7", WIKIPEDIA.sha1);
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..100 {
        let (status, _, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        for (i, _) in body.match_indices("class=\"host\">") {
            let rest = &body[i + "class=\"host\">".len()..];
            seen.push(rest[..rest.find('<').unwrap()].to_owned());
        }
        match body.find("\" id=\"next-page\"") {
            Some(end) => {
                let start = body[..end].rfind("href=\"").unwrap() + "href=\"".len();
                uri = body[start..end].replace("&amp;", "&");
                uri = uri.split('#').next().unwrap().to_owned();
            }
            None => break,
        }
    }
    let mut expected: Vec<IpAddr> = observations()
        .iter()
        .filter(|o| o.sha1 == sha1(WIKIPEDIA.sha1))
        .map(|o| o.ip)
        .collect();
    expected.sort();
    let got: Vec<IpAddr> = seen.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(got, expected);
}

// ------------------------------------------------------------------------------ browser

/// A chromedriver process, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts chromedriver on a free loopback port, or explains why not. `None` = skip.
async fn driver() -> Option<Driver> {
    let (Some(chromedriver), Some(_)) = (
        which("chromedriver"),
        which("chromium").or_else(|| which("chromium-browser")),
    ) else {
        if std::env::var("CERTHIST_UI_OPTIONAL").as_deref() == Ok("1") {
            eprintln!("skipping the browser tests: chromium / chromedriver not installed");
            return None;
        }
        panic!(
            "the web UI tests need Debian's chromium and chromedriver: \
             `apt-get install -y chromium chromium-driver` (or CERTHIST_UI_OPTIONAL=1 to skip locally)"
        );
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(d);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on port {port}");
}

async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--force-device-scale-factor=1"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a chromium session through chromedriver")
}

/// Serves the app on 127.0.0.1:0; the base URL.
async fn serve(db: &TestDb) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let store = db.store();
    tokio::spawn(async move {
        let _ = certhist_api::serve_on(listener, store, ServeConfig::default(), async {
            let _ = rx.await;
        })
        .await;
    });
    (format!("http://{addr}"), tx)
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn path_of(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// Marks the page in view, before a click that leaves it.
async fn leave(c: &Client) {
    c.execute("document.documentElement.dataset.left = '1';", vec![])
        .await
        .unwrap();
}

/// Waits until the browser shows a page loaded after `leave`: waiting for an element
/// alone can find it on the page being left.
async fn arrive(c: &Client) {
    for _ in 0..400 {
        let v = c
            .execute(
                "return document.readyState === 'complete' && !document.documentElement.dataset.left;",
                vec![],
            )
            .await;
        if matches!(v, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "no new page 10 s after the click: still at {}",
        c.current_url().await.unwrap()
    );
}

/// The page fits 1280 px: no horizontal scrolling.
async fn assert_fits(c: &Client, what: &str) {
    let dims = c
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.outerWidth];",
            vec![],
        )
        .await
        .unwrap();
    let dims: Vec<u64> = dims
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(dims[2], 1280, "{what}: window width");
    assert!(
        dims[0] <= dims[1],
        "{what}: page is {} px wide in a {} px viewport",
        dims[0],
        dims[1]
    );
}

/// No dialog is open (an alert would have been raised by injected script).
async fn assert_no_dialog(c: &Client, what: &str) {
    assert!(
        c.get_alert_text().await.is_err(),
        "{what}: a JavaScript dialog is open"
    );
}

#[tokio::test]
async fn browser_walks_the_seed_workflow() {
    let Some(d) = driver().await else { return };
    let db = seeded().await;
    let (base, _stop) = serve(&db).await;
    let c = browser(&d).await;
    let obs = observations();

    // Home: the search box has focus.
    c.goto(&format!("{base}/")).await.unwrap();
    let active = c.active_element().await.unwrap();
    assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("q"));
    shot(&c, "home").await;

    // Search an IP.
    let q = c.find(Locator::Id("q")).await.unwrap();
    q.send_keys("192.0.2.10\n").await.unwrap();
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    assert_eq!(path_of(&c).await, "/ip/192.0.2.10");
    let ip10: IpAddr = "192.0.2.10".parse().unwrap();
    let mut expected: Vec<&ObservationRow> = obs.iter().filter(|o| o.ip == ip10).collect();
    expected.sort_by_key(|o| (o.port, o.sha1));
    let sha1s: Vec<String> = {
        let mut v = Vec::new();
        for e in c.find_all(Locator::Css("#history a.sha1")).await.unwrap() {
            v.push(e.attr("title").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(
        sha1s,
        expected
            .iter()
            .map(|o| hex::encode(o.sha1))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&c, "#history td.first").await,
        expected
            .iter()
            .map(|o| ymd(o.first_seen))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&c, "#history td.last").await,
        expected
            .iter()
            .map(|o| ymd(o.last_seen))
            .collect::<Vec<_>>()
    );
    // One timeline bar per (certificate, port), with year ticks.
    let bars = c.find_all(Locator::Css("#timeline rect")).await.unwrap();
    assert_eq!(bars.len(), expected.len());
    let years = texts(&c, "#timeline text.ticklabel").await;
    assert!(
        years.contains(&"2023".to_owned()) && years.contains(&"2024".to_owned()),
        "{years:?}"
    );
    // Elsewhere: GitHub also on one other address; Wikipedia shared.
    let rows = texts(&c, "#history tbody tr").await;
    let github_row = rows.iter().find(|r| r.contains(GITHUB.cn)).unwrap();
    assert!(
        github_row.contains("also on 1 other address"),
        "{github_row}"
    );
    let wiki_row = rows.iter().find(|r| r.contains(WIKIPEDIA.cn)).unwrap();
    assert!(wiki_row.contains("shared"), "{wiki_row}");
    assert!(wiki_row.contains("on more than 50 addresses"), "{wiki_row}");
    assert_fits(&c, "ip").await;
    shot(&c, "ip").await;

    // Click the GitHub certificate.
    leave(&c).await;
    c.find(Locator::Css(&format!(
        "#history a.sha1[title='{}']",
        GITHUB.sha1
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    arrive(&c).await;
    c.wait().for_element(Locator::Id("record")).await.unwrap();
    assert_eq!(path_of(&c).await, format!("/certificate/{}", GITHUB.sha1));
    assert_eq!(texts(&c, "#heading").await, vec![GITHUB.cn.to_owned()]);
    let mut gh_hosts: Vec<&ObservationRow> =
        obs.iter().filter(|o| o.sha1 == sha1(GITHUB.sha1)).collect();
    gh_hosts.sort_by_key(|o| (o.ip, o.port));
    assert_eq!(
        texts(&c, "#host-table a.host").await,
        gh_hosts
            .iter()
            .map(|o| o.ip.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&c, "#host-table td.first").await,
        gh_hosts
            .iter()
            .map(|o| ymd(o.first_seen))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        c.find_all(Locator::Css("#timeline rect"))
            .await
            .unwrap()
            .len(),
        gh_hosts.len()
    );
    assert_eq!(
        texts(&c, "#commonness").await,
        vec!["served by 2 addresses"]
    );
    // Every SAN is a link; the serial is a pivot.
    let sans = texts(&c, "#names a.san").await;
    assert!(
        sans.contains(&"github.com".to_owned()) && sans.contains(&"www.github.com".to_owned()),
        "{sans:?}"
    );
    let serial_link = c
        .find(Locator::Css("#record a[href^='/serial/']"))
        .await
        .unwrap();
    assert_eq!(
        serial_link.text().await.unwrap(),
        "2765689FEE52F85C4C8A47650E84BBE"
    );
    assert_fits(&c, "certificate").await;
    shot(&c, "certificate").await;

    // Click a SAN → search results.
    leave(&c).await;
    c.find(Locator::XPath(
        "//table[@id='names']//a[text()='www.github.com']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    arrive(&c).await;
    c.wait().for_element(Locator::Id("query")).await.unwrap();
    assert_eq!(
        path_of(&c).await,
        "/names?field=name&q=www.github.com&match=exact"
    );
    let hits: Vec<String> = {
        let mut v = Vec::new();
        for e in c.find_all(Locator::Css("#results a.sha1")).await.unwrap() {
            v.push(e.attr("title").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(hits, vec![GITHUB.sha1.to_owned()]);
    assert_fits(&c, "results").await;
    shot(&c, "results").await;

    // Result → certificate → another IP.
    leave(&c).await;
    c.find(Locator::Css("#results a.sha1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("host-table"))
        .await
        .unwrap();
    leave(&c).await;
    c.find(Locator::XPath(
        "//table[@id='host-table']//a[text()='192.0.2.11']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    arrive(&c).await;
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    assert_eq!(path_of(&c).await, "/ip/192.0.2.11");
    let mut titles = Vec::new();
    for e in c.find_all(Locator::Css("#history a.sha1")).await.unwrap() {
        titles.push(e.attr("title").await.unwrap().unwrap());
    }
    assert_eq!(titles, vec![GITHUB.sha1.to_owned()]);
    assert_eq!(texts(&c, "#history td.first").await, vec!["2024-02-15"]);

    // `/` focuses the search box from anywhere (app.js); ambiguous input offers readings.
    c.find(Locator::Css("h1"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    let active = c.active_element().await.unwrap();
    assert_eq!(active.attr("id").await.unwrap().as_deref(), Some("q"));
    active.clear().await.unwrap();
    active
        .send_keys(&format!("{}\n", GITHUB.sha1))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("readings")).await.unwrap();
    let readings = texts(&c, "#readings a").await;
    assert_eq!(readings.len(), 2, "{readings:?}");
    shot(&c, "readings").await;

    // Overlap of the two addresses that served GitHub: one certificate, both periods, their
    // intersection; one timeline bar per (certificate, address).
    c.goto(&format!("{base}/overlap?members=192.0.2.10,192.0.2.11"))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("overlap")).await.unwrap();
    let mut shared = Vec::new();
    for e in c.find_all(Locator::Css("#overlap a.sha1")).await.unwrap() {
        shared.push(e.attr("title").await.unwrap().unwrap());
    }
    assert_eq!(shared, vec![GITHUB.sha1.to_owned()]);
    // GitHub: 192.0.2.10 2024-01-01 → 03-01, 192.0.2.11 2024-02-15 → 04-01.
    assert_eq!(
        texts(&c, "#overlap td.intersection").await,
        vec!["2024-02-15 → 2024-03-01 (15 days)"]
    );
    assert_eq!(
        c.find_all(Locator::Css("#timeline rect"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_fits(&c, "overlap").await;
    shot(&c, "overlap").await;

    // The graph around 192.0.2.10, two hops: its 4 certificates, then the addresses of the
    // unshared ones (Wikipedia is shared: pruned).
    c.goto(&format!("{base}/graph?seed=192.0.2.10&hops=2"))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("graph")).await.unwrap();
    let certs_of_10: Vec<Sha1> = obs
        .iter()
        .filter(|o| o.ip == ip10)
        .map(|o| o.sha1)
        .collect();
    let mut hop2: Vec<IpAddr> = obs
        .iter()
        .filter(|o| certs_of_10.contains(&o.sha1) && o.sha1 != sha1(WIKIPEDIA.sha1) && o.ip != ip10)
        .map(|o| o.ip)
        .collect();
    hop2.sort();
    hop2.dedup();
    let edges = obs
        .iter()
        .filter(|o| o.ip == ip10 || (hop2.contains(&o.ip) && certs_of_10.contains(&o.sha1)))
        .count();
    assert_eq!(
        c.find_all(Locator::Css("#graph circle"))
            .await
            .unwrap()
            .len(),
        1 + hop2.len()
    );
    assert_eq!(
        c.find_all(Locator::Css("#graph rect")).await.unwrap().len(),
        certs_of_10.len()
    );
    assert_eq!(
        c.find_all(Locator::Css("#graph line")).await.unwrap().len(),
        edges
    );
    assert_eq!(
        c.find_all(Locator::Css("#graph rect.shared"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_fits(&c, "graph").await;
    shot(&c, "graph").await;
    // Clicking a node pivots to its page.
    leave(&c).await;
    c.find(Locator::Css("#graph a[href='/ip/192.0.2.12']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    assert_eq!(path_of(&c).await, "/ip/192.0.2.12");

    // A block.
    c.goto(&format!("{base}/ip/192.0.2.0/24")).await.unwrap();
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    let in_block = obs
        .iter()
        .filter(|o| matches!(o.ip, IpAddr::V4(v) if v.octets()[..3] == [192, 0, 2]))
        .count();
    assert_eq!(
        c.find_all(Locator::Css("#history tbody tr"))
            .await
            .unwrap()
            .len(),
        in_block
    );
    assert_fits(&c, "cidr").await;
    shot(&c, "cidr").await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn browser_shows_hostile_certificates_literally() {
    let Some(d) = driver().await else { return };
    let db = seeded().await;
    let (sa, sb, long) = add_hostile(&db).await;
    let (base, _stop) = serve(&db).await;
    let c = browser(&d).await;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pages = [
        ("xss-ip", "/ip/192.0.2.66".to_owned()),
        ("xss-certificate", format!("/certificate/{sa}")),
        ("xss-long", format!("/certificate/{sb}")),
        (
            "xss-results",
            format!("/names?field=cn&q={}&match=exact", enc(SCRIPT)),
        ),
        (
            "xss-results-o",
            format!("/names?field=subject-o&q={}&match=exact", enc(IMG)),
        ),
        ("xss-search", format!("/search?q={}", enc(SCRIPT))),
    ];
    for (name, path) in &pages {
        c.goto(&format!("{base}{path}")).await.unwrap();
        c.wait().for_element(Locator::Css("main")).await.unwrap();
        assert_no_dialog(&c, path).await;
        assert!(
            c.find_all(Locator::Css("img")).await.unwrap().is_empty(),
            "{path}: an injected <img>"
        );
        let scripts = c.find_all(Locator::Css("script")).await.unwrap();
        assert_eq!(scripts.len(), 1, "{path}: only app.js");
        assert!(c
            .find_all(Locator::Css("a[href^='javascript'], a[href^='JAVASCRIPT']"))
            .await
            .unwrap()
            .is_empty());
        // Layout intact: no horizontal overflow at 1280 px.
        assert_fits(&c, path).await;
        shot(&c, name).await;
    }
    // Shown literally, as text.
    c.goto(&format!("{base}/certificate/{sa}")).await.unwrap();
    assert_eq!(texts(&c, "#heading").await, vec![SCRIPT.to_owned()]);
    let record = texts(&c, "#record").await.join("\n");
    // U+202E is shown as an escape (it would turn `gpj.exe` into `exe.jpg` on screen).
    for s in [SCRIPT, IMG, "\\u{202e}gpj.exe"] {
        assert!(record.contains(s), "record lacks {s:?}: {record}");
    }
    assert!(!record.contains(RLO), "raw U+202E on the page: {record}");
    let sans = texts(&c, "#names a.san").await;
    for s in [
        JS_URL.to_owned(),
        IMG.to_ascii_lowercase(),
        format!("{SCRIPT}.example"),
    ] {
        assert!(sans.contains(&s), "SAN {s:?} not shown literally: {sans:?}");
    }
    // The javascript: SAN is a pivot to a search, not a link to javascript:.
    let js = c
        .find(Locator::XPath(&format!("//a[text()='{JS_URL}']")))
        .await
        .unwrap();
    let href = js.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("/names?"), "{href}");
    leave(&c).await;
    js.click().await.unwrap();
    arrive(&c).await;
    c.wait().for_element(Locator::Id("query")).await.unwrap();
    assert_no_dialog(&c, "after clicking the javascript: SAN").await;
    assert_eq!(texts(&c, "#query").await, vec![JS_URL.to_owned()]);
    // The 5,000-character CN, whole.
    c.goto(&format!("{base}/certificate/{sb}")).await.unwrap();
    assert_eq!(texts(&c, "#heading").await, vec![long]);
    // Open mode (no accounts): the local user's forms post (same-origin `Origin`), and a
    // hostile note is shown as typed, by `local`.
    c.goto(&format!("{base}/ip/192.0.2.66")).await.unwrap();
    c.find(Locator::Id("note-input"))
        .await
        .unwrap()
        .send_keys(IMG)
        .await
        .unwrap();
    leave(&c).await;
    c.find(Locator::Id("note-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("note-list"))
        .await
        .unwrap();
    assert_eq!(path_of(&c).await, "/ip/192.0.2.66");
    assert_no_dialog(&c, "note in open mode").await;
    assert!(c
        .find_all(Locator::Css("main img"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        texts(&c, "#note-list .note-body").await,
        vec![IMG.to_owned()]
    );
    assert_eq!(
        texts(&c, "#note-list .note-author").await,
        vec!["local".to_owned()]
    );
    // The search box keeps hostile input as a value.
    c.goto(&format!("{base}/search?q={}", enc(IMG)))
        .await
        .unwrap();
    let q = c.find(Locator::Id("q")).await.unwrap();
    assert_eq!(q.prop("value").await.unwrap().as_deref(), Some(IMG));
    assert_no_dialog(&c, "search box").await;
    c.close().await.unwrap();
}

/// Paging through a reverse search of 250 addresses in the browser (the next-page link, 100 a
/// page): every address exactly once, in order.
#[tokio::test]
async fn browser_pages_through_250_hosts() {
    let Some(d) = driver().await else { return };
    let db = seeded().await;
    let many: Vec<ObservationRow> = (0..250u32)
        .map(|i| {
            o(
                &format!("203.0.113.{}", i % 250),
                443 + u16::try_from(i / 250).unwrap(),
                GOOGLE_2013.sha1,
                day(2021, 1, 1),
                day(2021, 2, 1),
            )
        })
        .collect();
    let mut conn = db.store().conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_observations(&many).await.unwrap();
    tx.commit().await.unwrap();
    drop(conn);
    let mut expected: Vec<IpAddr> = observations()
        .into_iter()
        .chain(many)
        .filter(|o| o.sha1 == sha1(GOOGLE_2013.sha1))
        .map(|o| o.ip)
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 251);
    let (base, _stop) = serve(&db).await;
    let c = browser(&d).await;
    c.goto(&format!("{base}/certificate/{}", GOOGLE_2013.sha1))
        .await
        .unwrap();
    let mut seen: Vec<IpAddr> = Vec::new();
    let mut pages = 0;
    loop {
        c.wait()
            .for_element(Locator::Id("host-table"))
            .await
            .unwrap();
        pages += 1;
        for t in texts(&c, "#host-table a.host").await {
            seen.push(t.parse().unwrap());
        }
        match c.find(Locator::Id("next-page")).await {
            Ok(next) => {
                leave(&c).await;
                next.click().await.unwrap();
                arrive(&c).await;
            }
            Err(_) => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
    c.close().await.unwrap();
}

// ------------------------------------------------------------------------------ accounts

const PASSWORD: &str = "correct horse battery staple";

/// An analyst (`alice`) and a reader (`rita`), both with the password: the server now requires
/// authentication.
async fn add_accounts(db: &TestDb) {
    let who = certhist_store::Actor {
        name: Some("admin-cli".to_owned()),
        source: Some("cli".to_owned()),
    };
    let mut conn = db.store().conn().await.unwrap();
    conn.user_add(
        &who,
        "alice",
        certhist_model::views::Role::Analyst,
        Some(PASSWORD),
    )
    .await
    .unwrap();
    conn.user_add(
        &who,
        "rita",
        certhist_model::views::Role::Reader,
        Some(PASSWORD),
    )
    .await
    .unwrap();
}

/// The leaf of x509-parser's assets (CN=lists.for-our.info; SHA-1 and serial from
/// tests/data/certs/CERT_INVENTORY.tsv) and its issuer, Let's Encrypt Authority X3.
const LEAF_SHA1: &str = "5c1d97cc16c11a4d4fadbab82c9178be1b50b9f4";
const LEAF_CN: &str = "lists.for-our.info";
const LEAF_SERIAL: &str = "32048030BBB3410F9093C57F2CB8308C805";
const LEAF_DER: &[u8] = cert_file!("x509-parser/assets/certificate.der");
const LE_X3_DER: &[u8] = cert_file!("x509-parser/assets/lets-encrypt-x3-cross-signed.der");

/// Stores the leaf and its issuer, the leaf seen on 192.0.2.44:443 and [2001:db8::44]:8443;
/// the OCSP GET URL asking about the leaf (the input a Windows machine would have cached).
async fn add_ocsp_leaf(db: &TestDb) -> String {
    use sha1::Digest;
    assert_eq!(hex::encode(sha1::Sha1::digest(LEAF_DER)), LEAF_SHA1);
    let mut conn = db.store().conn().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.write_certs(&[
        certhist_x509::parse_der(LE_X3_DER),
        certhist_x509::parse_der(LEAF_DER),
    ])
    .await
    .unwrap();
    tx.write_observations(&leaf_observations()).await.unwrap();
    tx.commit().await.unwrap();
    let id = certhist_cryptnet::ocsp::cert_id_of(
        LEAF_DER,
        LE_X3_DER,
        certhist_cryptnet::HashAlgorithm::Sha1,
    )
    .unwrap();
    assert_eq!(id.serial.to_hex(), LEAF_SERIAL);
    certhist_cryptnet::build_get_url("http://ocsp.int-x3.letsencrypt.org", &[id]).unwrap()
}

fn leaf_observations() -> Vec<ObservationRow> {
    vec![
        o(
            "192.0.2.44",
            443,
            LEAF_SHA1,
            day(2019, 8, 1),
            day(2019, 8, 20),
        ),
        o(
            "2001:db8::44",
            8443,
            LEAF_SHA1,
            day(2019, 9, 1),
            day(2019, 9, 2),
        ),
    ]
}

/// How the report shows a host of the leaf: `ip`, `port`, `first → last (n×)`.
fn leaf_hosts() -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = leaf_observations()
        .iter()
        .map(|o| {
            (
                o.ip.to_string(),
                o.port.to_string(),
                format!(
                    "{} → {} ({}×)",
                    ymd(o.first_seen),
                    ymd(o.last_seen),
                    o.times_seen
                ),
            )
        })
        .collect();
    v.sort();
    v
}

/// The first entry of a fixture cache with an OCSP CertID, from EXPECTED.tsv: (url, serial).
fn fixture_ocsp(repo: &str) -> (String, String) {
    let tsv = include_str!("../../tests/data/cryptnet/EXPECTED.tsv");
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (repo_c, url_c) = (col("repo"), col("url"));
    let id_c = head.len() - 1;
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f[repo_c] == repo && f.get(id_c).is_some_and(|v| !v.is_empty()))
        .map(|f| {
            let serial = f[id_c].split('|').next().unwrap().to_owned();
            (f[url_c].to_owned(), serial)
        })
        .unwrap()
}

/// A zip of the `mohdan__codingTest` fixture cache (as collected from the machine, under
/// `…/CryptnetUrlCache/`), plus one MetaData entry for `url` downloaded at 2024-05-01 12:00 UTC.
fn cache_zip(url: &str) -> Vec<u8> {
    use std::io::Write;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/cryptnet/mohdan__codingTest/7de46a191103");
    let prefix = "Users/pc/AppData/LocalLow/Microsoft/CryptnetUrlCache";
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for sub in ["MetaData", "Content"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for n in names {
            zip.start_file(format!("{prefix}/{sub}/{n}"), opts).unwrap();
            zip.write_all(&std::fs::read(root.join(sub).join(&n)).unwrap())
                .unwrap();
        }
    }
    let meta = certhist_cryptnet::Metadata {
        url: url.to_owned(),
        last_download: Some(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()),
        object_type: 3,
        this_update: None,
        next_update: None,
        expiry: None,
        last_modified: None,
        etag: None,
        content_size_bytes: 0,
        trailing_bytes: 0,
    };
    zip.start_file(
        format!(
            "{prefix}/MetaData/{}",
            certhist_cryptnet::metadata::url_md5_name(url)
        ),
        opts,
    )
    .unwrap();
    zip.write_all(&certhist_cryptnet::metadata::build_metadata(&meta))
        .unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// A request through the router: (status, headers, body).
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(header::HeaderName, String)],
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = match body {
        Some((ctype, bytes)) => req
            .header(header::CONTENT_TYPE, ctype)
            .body(Body::from(bytes))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Signs in through `POST /login`: (the `Cookie` header value, the session's CSRF token).
async fn sign_in(app: &Router, user: &str) -> (String, String) {
    let form = format!("user={user}&password={}", PASSWORD.replace(' ', "+"));
    let (status, h, _) = send(
        app,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", form.into_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = h.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let (status, _, body) = send(
        app,
        "GET",
        "/api/v1/session",
        &[(header::COOKIE, cookie.clone())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    (cookie, v["csrf_token"].as_str().unwrap().to_owned())
}

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, data) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// With accounts: browsers are sent to the sign-in page, scripts get 401; the sign-in page is
/// the UI's; forms need the session's CSRF token (a multipart upload as its first part); the role
/// is checked by the server whatever the page showed.
#[tokio::test]
async fn accounts_sign_in_csrf_and_roles_over_http() {
    let db = seeded().await;
    let url = add_ocsp_leaf(&db).await;
    add_accounts(&db).await;
    let app = certhist_api::router(db.store(), ServeConfig::default());
    let html_accept = (header::ACCEPT, "text/html,application/xhtml+xml".to_owned());

    // A browser without a session → the sign-in page, remembering where it was going.
    let (status, h, _) = send(
        &app,
        "GET",
        "/ip/192.0.2.10?limit=5",
        std::slice::from_ref(&html_accept),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.get(header::LOCATION).unwrap(),
        "/login?next=%2Fip%2F192.0.2.10%3Flimit%3D5"
    );
    // A script (no text/html) gets the API's 401; so does a browser asking the API.
    let (status, _, _) = send(&app, "GET", "/ip/192.0.2.10", &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &app,
        "GET",
        "/api/v1/ip/192.0.2.10",
        std::slice::from_ref(&html_accept),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The sign-in page: the UI's layout and headers, its stylesheet served without a session.
    let (status, h, body) = send(&app, "GET", "/login?next=%2Fip%2F192.0.2.10", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_security_headers("/login", &h);
    assert_no_inline("/login", &body);
    assert!(
        body.contains("name=\"next\" value=\"/ip/192.0.2.10\""),
        "{body}"
    );
    let css = &body[body.find("/static/app.").unwrap()..];
    let css = &css[..css.find('"').unwrap()];
    let (status, _, _) = send(&app, "GET", css, &[], None).await;
    assert_eq!(status, StatusCode::OK, "{css}");
    // After signing in: `next` when it is a path here, `/` otherwise.
    for (next, location) in [
        ("%2Fip%2F192.0.2.10", "/ip/192.0.2.10"),
        ("%2F%2Fevil.example%2F", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
    ] {
        let form = format!(
            "user=alice&password={}&next={next}",
            PASSWORD.replace(' ', "+")
        );
        let (status, h, _) = send(
            &app,
            "POST",
            "/login",
            &[],
            Some(("application/x-www-form-urlencoded", form.into_bytes())),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(h.get(header::LOCATION).unwrap(), location, "{next}");
    }

    let (alice, alice_csrf) = sign_in(&app, "alice").await;
    let (rita, rita_csrf) = sign_in(&app, "rita").await;
    let form = |csrf: &str, tag: &str| {
        format!(
            "csrf={csrf}&kind=certificate&value={}&tag={tag}&back=%2Fcertificate%2F{}",
            GITHUB.sha1, GITHUB.sha1
        )
        .into_bytes()
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    // Without the CSRF token: refused.
    let (status, _, _) = send(
        &app,
        "POST",
        "/tags/add",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, form("wrong", "x1"))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A reader with the right token: refused by the role check (an HTML page saying why).
    let (status, h, body) = send(
        &app,
        "POST",
        "/tags/add",
        &[(header::COOKIE, rita.clone())],
        Some((FORM, form(&rita_csrf, "x1"))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(body.contains("needs the analyst role"), "{body}");
    // The analyst: tagged, and back to the page.
    let (status, h, _) = send(
        &app,
        "POST",
        "/tags/add",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, form(&alice_csrf, "x1"))),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.get(header::LOCATION).unwrap().to_str().unwrap(),
        format!("/certificate/{}#tags", GITHUB.sha1)
    );
    let (_, _, page) = send(
        &app,
        "GET",
        &format!("/certificate/{}", GITHUB.sha1),
        &[(header::COOKIE, rita.clone())],
        None,
    )
    .await;
    assert!(
        page.contains("<a href=\"/tags?q=x1\" class=\"tag-name\">x1</a>"),
        "{page}"
    );
    assert!(
        !page.contains("action=\"/tags/add\""),
        "a reader sees no tag form"
    );
    assert!(!page.contains("action=\"/tags/remove\""));
    assert!(!page.contains("action=\"/notes/add\""));
    // A note by the analyst: the reader may not delete it; its author may. The tag comes off.
    let note = format!(
        "csrf={alice_csrf}&kind=certificate&value={}&body=seen+in+phishing",
        GITHUB.sha1
    );
    let (status, _, _) = send(
        &app,
        "POST",
        "/notes/add",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, note.into_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cert_uri = format!("/certificate/{}", GITHUB.sha1);
    let (_, _, page) = send(
        &app,
        "GET",
        &cert_uri,
        &[(header::COOKIE, rita.clone())],
        None,
    )
    .await;
    let marker = "class=\"note\" id=\"note-";
    let at = page.find(marker).expect("the note is shown") + marker.len();
    let id: i64 = page[at..at + page[at..].find('"').unwrap()]
        .parse()
        .unwrap();
    assert!(page.contains("seen in phishing"), "{page}");
    let delete = |csrf: &str| format!("csrf={csrf}&id={id}").into_bytes();
    let (status, _, _) = send(
        &app,
        "POST",
        "/notes/delete",
        &[(header::COOKIE, rita.clone())],
        Some((FORM, delete(&rita_csrf))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(
        &app,
        "POST",
        "/notes/delete",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, delete(&alice_csrf))),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &app,
        "POST",
        "/tags/remove",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, form(&alice_csrf, "x1"))),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = send(
        &app,
        "GET",
        &cert_uri,
        &[(header::COOKIE, rita.clone())],
        None,
    )
    .await;
    assert!(!page.contains("seen in phishing"), "{page}");
    assert!(!page.contains("tags?q=x1"), "{page}");
    assert!(page.contains("id=\"no-tags\""), "{page}");
    // Removing it again: 404 naming it.
    let (status, _, body) = send(
        &app,
        "POST",
        "/tags/remove",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, form(&alice_csrf, "x1"))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("has no tag x1"), "{body}");
    // A bad tag: 400 naming it.
    let (status, _, body) = send(
        &app,
        "POST",
        "/tags/add",
        &[(header::COOKIE, alice.clone())],
        Some((FORM, form(&alice_csrf, "%3Cb%3E"))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid parameter `tag`"), "{body}");
    assert!(
        body.contains("&#34;&#60;b&#62;&#34; is not a valid tag"),
        "{body}"
    );
    assert!(!body.contains("<b>"), "{body}");

    // Multipart: the CSRF token must be the first part.
    let list = format!("{url}\n");
    let b = "----certhistTestBoundary";
    let ctype = format!("multipart/form-data; boundary={b}");
    let upload = |parts: Vec<u8>, cookie: &str| {
        let app = app.clone();
        let ctype = ctype.clone();
        let cookie = cookie.to_owned();
        async move {
            send(
                &app,
                "POST",
                "/cryptnet/upload",
                &[(header::COOKIE, cookie)],
                Some((ctype.as_str(), parts)),
            )
            .await
        }
    };
    let late = multipart(
        b,
        &[
            ("label", None, b""),
            ("csrf", None, alice_csrf.as_bytes()),
            ("file", Some("urls.txt"), list.as_bytes()),
        ],
    );
    assert_eq!(upload(late, &alice).await.0, StatusCode::FORBIDDEN);
    let by_reader = multipart(
        b,
        &[
            ("csrf", None, rita_csrf.as_bytes()),
            ("label", None, b""),
            ("file", Some("urls.txt"), list.as_bytes()),
        ],
    );
    let (status, _, body) = upload(by_reader, &rita).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("needs the analyst role"), "{body}");
    let ok = multipart(
        b,
        &[
            ("csrf", None, alice_csrf.as_bytes()),
            ("label", None, b""),
            ("file", Some("urls.txt"), list.as_bytes()),
        ],
    );
    let (status, _, body) = upload(ok, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("title=\"{LEAF_SHA1}\"")), "{body}");
    assert!(body.contains("analysed, not stored"), "{body}");
    // Pasting is a reader's right.
    let paste = format!(
        "csrf={rita_csrf}&urls={}",
        form_urlencoded::byte_serialize(list.as_bytes()).collect::<String>()
    );
    let (status, _, body) = send(
        &app,
        "POST",
        "/cryptnet",
        &[(header::COOKIE, rita.clone())],
        Some((FORM, paste.into_bytes())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("title=\"{LEAF_SHA1}\"")), "{body}");
    assert!(body.contains("nothing stored"), "{body}");
    // Nothing was stored by either: no cache entry names the leaf.
    let (client, connection) = db.pg_config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let n: i64 = client
        .query_one("SELECT count(*) FROM cache_entries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

/// The browser, signed in: sign-in errors, session cookie, sign-out; an analyst tags and notes
/// (hostile text shown literally) what a reader then sees without the forms; the search box
/// reading tags; the cryptnet page resolving an uploaded cache and pasted URLs to the
/// certificate, its names and the addresses that served it.
#[tokio::test]
async fn browser_accounts_tags_and_cryptnet() {
    let Some(d) = driver().await else { return };
    let db = seeded().await;
    let ocsp_url = add_ocsp_leaf(&db).await;
    add_accounts(&db).await;
    let (base, _stop) = serve(&db).await;
    let c = browser(&d).await;

    // Not signed in: the sign-in page, remembering the page.
    c.goto(&format!("{base}/ip/192.0.2.10")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-user"))
        .await
        .unwrap();
    assert_eq!(path_of(&c).await, "/login?next=%2Fip%2F192.0.2.10");
    shot(&c, "login").await;
    let sign_in = |user: &'static str, password: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Id("login-user"))
                .await
                .unwrap()
                .send_keys(user)
                .await
                .unwrap();
            c.find(Locator::Id("login-password"))
                .await
                .unwrap()
                .send_keys(password)
                .await
                .unwrap();
            leave(&c).await;
            c.find(Locator::Id("login-submit"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            arrive(&c).await;
            if c.wait().for_element(Locator::Css("main")).await.is_err() {
                panic!(
                    "after signing in: {} {}",
                    c.current_url().await.unwrap(),
                    c.source().await.unwrap()
                );
            }
        }
    };
    sign_in("alice", "not the password").await;
    assert_eq!(
        texts(&c, "#login-error").await,
        vec!["wrong user name or password".to_owned()]
    );
    assert!(c.get_named_cookie("certhist_session").await.is_err());
    // The name stays filled in; the password does not.
    let user = c.find(Locator::Id("login-user")).await.unwrap();
    assert_eq!(user.prop("value").await.unwrap().as_deref(), Some("alice"));
    user.clear().await.unwrap();
    sign_in("alice", PASSWORD).await;
    c.wait().for_element(Locator::Id("history")).await.unwrap();
    assert_eq!(path_of(&c).await, "/ip/192.0.2.10");
    let cookie = c.get_named_cookie("certhist_session").await.unwrap();
    let session = cookie.value().to_owned();
    assert!(!session.is_empty());
    assert_eq!(texts(&c, "#user-name").await, vec!["alice".to_owned()]);
    assert_eq!(texts(&c, "#user-role").await, vec!["analyst".to_owned()]);
    // Export buttons: STIX and MISP for this address.
    let href = |css: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Css(css))
                .await
                .unwrap()
                .attr("href")
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(
        href("#stix").await,
        "/api/v1/export?format=stix&ip=192.0.2.10"
    );
    assert_eq!(
        href("#misp").await,
        "/api/v1/export?format=misp&ip=192.0.2.10"
    );

    // The analyst tags the address and the certificate.
    let add_tag = |tag: &'static str| {
        let c = c.clone();
        async move {
            c.find(Locator::Id("tag-input"))
                .await
                .unwrap()
                .send_keys(tag)
                .await
                .unwrap();
            leave(&c).await;
            c.find(Locator::Id("tag-submit"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            arrive(&c).await;
            c.wait().for_element(Locator::Css("main")).await.unwrap();
        }
    };
    add_tag("Campaign-X").await;
    assert_eq!(path_of(&c).await, "/ip/192.0.2.10");
    assert_eq!(
        texts(&c, "#tag-list .tag-name").await,
        vec!["campaign-x".to_owned()]
    );
    assert_eq!(
        texts(&c, "#tag-list .tag-author").await,
        vec!["alice".to_owned()]
    );
    let cert_page = format!("{base}/certificate/{}", GITHUB.sha1);
    c.goto(&cert_page).await.unwrap();
    add_tag("campaign-x").await;
    assert_eq!(path_of(&c).await, format!("/certificate/{}", GITHUB.sha1));
    assert_eq!(
        texts(&c, "#tag-list .tag-name").await,
        vec!["campaign-x".to_owned()]
    );
    // A note with hostile text: shown as typed, nothing runs.
    let hostile_note = format!("{SCRIPT} {IMG}\nsecond line");
    c.find(Locator::Id("note-input"))
        .await
        .unwrap()
        .send_keys(&hostile_note)
        .await
        .unwrap();
    leave(&c).await;
    c.find(Locator::Id("note-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("note-list"))
        .await
        .unwrap();
    assert_no_dialog(&c, "note").await;
    assert!(c
        .find_all(Locator::Css("main img"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        texts(&c, "#note-list .note-body").await,
        vec![hostile_note.clone()]
    );
    assert_eq!(
        texts(&c, "#note-list .note-author").await,
        vec!["alice".to_owned()]
    );
    let year = Utc::now().format("%Y-").to_string();
    assert!(texts(&c, "#note-list .note-time").await[0].starts_with(&year));
    assert_fits(&c, "certificate with tags").await;
    shot(&c, "certificate-tags").await;
    // A tag breaking the syntax: an error page naming it, shown literally.
    add_tag("<script>").await;
    assert_no_dialog(&c, "bad tag").await;
    let detail = texts(&c, "#error-detail").await.join("");
    assert!(
        detail.contains("\"<script>\" is not a valid tag"),
        "{detail}"
    );

    // The search box reads tags: `tag:…`, `#…`, and a bare word offers the tag.
    for typed in ["tag:campaign-x", "#campaign-x"] {
        c.goto(&format!("{base}/")).await.unwrap();
        c.find(Locator::Id("q"))
            .await
            .unwrap()
            .send_keys(&format!("{typed}\n"))
            .await
            .unwrap();
        c.wait().for_element(Locator::Id("tagged")).await.unwrap();
        assert_eq!(path_of(&c).await, "/tags?q=campaign-x", "{typed}");
        let mut targets = texts(&c, "#tagged td.target").await;
        targets.sort();
        assert_eq!(
            targets,
            vec!["192.0.2.10".to_owned(), GITHUB.sha1.to_owned()],
            "{typed}"
        );
    }
    assert_eq!(
        href("#stix").await,
        "/api/v1/export?format=stix&tag=campaign-x"
    );
    assert_eq!(
        href("#misp").await,
        "/api/v1/export?format=misp&tag=campaign-x"
    );
    shot(&c, "tags").await;
    c.goto(&format!("{base}/search?q=campaign-x"))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("readings")).await.unwrap();
    let readings = c.find_all(Locator::Css("#readings a")).await.unwrap();
    let mut hrefs = Vec::new();
    for r in readings {
        hrefs.push(r.attr("href").await.unwrap().unwrap());
    }
    assert!(
        hrefs.contains(&"/tags?q=campaign-x".to_owned()),
        "{hrefs:?}"
    );
    assert!(
        hrefs.contains(&"/names?field=name&q=campaign-x".to_owned()),
        "{hrefs:?}"
    );
    // Export buttons of the name search.
    c.goto(&format!("{base}/names?field=name&q=github.com"))
        .await
        .unwrap();
    assert_eq!(
        href("#stix").await,
        "/api/v1/export?format=stix&field=name&q=github.com"
    );

    // Cryptnet: upload a collected cache (a fixture cache plus the entry asking about the leaf).
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("cache.zip");
    std::fs::write(&zip_path, cache_zip(&ocsp_url)).unwrap();
    c.goto(&format!("{base}/cryptnet")).await.unwrap();
    c.find(Locator::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(zip_path.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Id("upload-label"))
        .await
        .unwrap()
        .send_keys("case-17")
        .await
        .unwrap();
    leave(&c).await;
    c.find(Locator::Id("upload-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("cryptnet-report"))
        .await
        .unwrap();
    let (fixture_url, fixture_serial) = fixture_ocsp("mohdan/codingTest");
    let check_leaf_row = |what: &'static str| {
        let c = c.clone();
        let ocsp_url = ocsp_url.clone();
        async move {
            let rows = c
                .find_all(Locator::Css("#cryptnet-report tr.matched"))
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "{what}: one row resolves");
            let row = &rows[0];
            let cell = |css: &'static str| {
                let row = row.clone();
                async move {
                    let mut v = Vec::new();
                    for e in row.find_all(Locator::Css(css)).await.unwrap() {
                        v.push(e.text().await.unwrap());
                    }
                    v
                }
            };
            assert_eq!(cell("td.url").await, vec![ocsp_url.clone()], "{what}");
            assert_eq!(
                cell("a.serial").await,
                vec![LEAF_SERIAL.to_owned()],
                "{what}"
            );
            assert_eq!(cell("a.match").await, vec![LEAF_SHA1.to_owned()], "{what}");
            assert!(cell("a.name").await.contains(&LEAF_CN.to_owned()), "{what}");
            let ips = cell("a.host").await;
            let ports = cell("span.port").await;
            let periods = cell("span.period").await;
            let mut shown: Vec<(String, String, String)> = ips
                .into_iter()
                .zip(ports)
                .zip(periods)
                .map(|((a, b), c)| (a, b, c))
                .collect();
            shown.sort();
            assert_eq!(shown, leaf_hosts(), "{what}");
            let link = row
                .find(Locator::Css("a.match"))
                .await
                .unwrap()
                .attr("href")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(link, format!("/certificate/{LEAF_SHA1}"));
        }
    };
    check_leaf_row("upload").await;
    assert!(texts(&c, "#cryptnet-report td.date")
        .await
        .contains(&"2024-05-01 12:00:00".to_owned()));
    let urls = texts(&c, "#cryptnet-report td.url").await;
    assert!(urls.iter().any(|u| u.starts_with(&fixture_url)), "{urls:?}");
    assert!(texts(&c, "#cryptnet-report a.serial")
        .await
        .contains(&fixture_serial));
    let what = texts(&c, "#report-what").await.join("");
    assert!(what.contains("stored under label case-17"), "{what}");
    shot(&c, "cryptnet-upload").await;
    assert_fits(&c, "cryptnet upload").await;
    // The stored entries name the leaf on its certificate page.
    c.goto(&format!("{base}/certificate/{LEAF_SHA1}"))
        .await
        .unwrap();
    assert!(texts(&c, "#cache td.url").await.contains(&ocsp_url));

    // Paste: the leaf's URL, a fixture URL and a hostile one.
    let hostile_url = format!("http://evil.example/{SCRIPT}");
    c.goto(&format!("{base}/cryptnet")).await.unwrap();
    c.find(Locator::Id("urls"))
        .await
        .unwrap()
        .send_keys(&format!("{ocsp_url}\n{fixture_url}\n{hostile_url}"))
        .await
        .unwrap();
    leave(&c).await;
    c.find(Locator::Id("paste-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("cryptnet-report"))
        .await
        .unwrap();
    check_leaf_row("paste").await;
    let urls = texts(&c, "#cryptnet-report td.url").await;
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert_eq!(urls[2], hostile_url);
    assert_no_dialog(&c, "pasted hostile URL").await;
    assert_fits(&c, "cryptnet paste").await;
    shot(&c, "cryptnet").await;

    // Sign out: the session ends (its cookie no longer works anywhere).
    leave(&c).await;
    c.find(Locator::Id("logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrive(&c).await;
    c.wait()
        .for_element(Locator::Id("login-user"))
        .await
        .unwrap();
    assert_eq!(path_of(&c).await, "/login");
    assert!(c.get_named_cookie("certhist_session").await.is_err());
    let old = reqwest::Client::new()
        .get(format!("{base}/api/v1/session"))
        .header("cookie", format!("certhist_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), reqwest::StatusCode::UNAUTHORIZED);
    c.goto(&cert_page).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-user"))
        .await
        .unwrap();
    assert!(path_of(&c).await.starts_with("/login?next="));

    // The reader sees the analyst's tag and note, and no forms.
    sign_in("rita", PASSWORD).await;
    c.wait().for_element(Locator::Id("tags")).await.unwrap();
    assert_eq!(path_of(&c).await, format!("/certificate/{}", GITHUB.sha1));
    assert_eq!(texts(&c, "#user-role").await, vec!["reader".to_owned()]);
    assert_eq!(
        texts(&c, "#tag-list .tag-name").await,
        vec!["campaign-x".to_owned()]
    );
    assert_eq!(
        texts(&c, "#tag-list .tag-author").await,
        vec!["alice".to_owned()]
    );
    assert_eq!(
        texts(&c, "#note-list .note-body").await,
        vec![hostile_note.clone()]
    );
    assert_no_dialog(&c, "reader's certificate page").await;
    for css in ["#tag-add", ".tag-remove", "#note-add", ".note-delete"] {
        assert!(
            c.find_all(Locator::Css(css)).await.unwrap().is_empty(),
            "a reader sees {css}"
        );
    }
    shot(&c, "certificate-reader").await;
    c.goto(&format!("{base}/ip/192.0.2.10")).await.unwrap();
    assert_eq!(
        texts(&c, "#tag-list .tag-name").await,
        vec!["campaign-x".to_owned()]
    );
    assert!(c
        .find_all(Locator::Css("#tag-add"))
        .await
        .unwrap()
        .is_empty());
    c.goto(&format!("{base}/cryptnet")).await.unwrap();
    assert!(c
        .find_all(Locator::Id("upload-form"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        c.find_all(Locator::Id("upload-needs-analyst"))
            .await
            .unwrap()
            .len(),
        1
    );
    c.close().await.unwrap();
}

// ------------------------------------------------------------------------------ sensor stubs

/// The address page lists the sightings of certificates known only by SHA-256 (a Zeek >= 4.1
/// log, tests/data/passive): after the history, each hash a link to the stub's record and each
/// CN a link to the certificates of that name, the log's text shown literally. Values from the
/// fixture's EXPECTED.tsv (times, counts, CN) and its x509.log (issuer, validity).
#[tokio::test]
async fn browser_shows_stub_sightings_on_the_ip_page() {
    /// Per (port, sha256): CN, first and last seen, count.
    type Expected = (String, DateTime<Utc>, DateTime<Utc>, i64);
    let Some(d) = driver().await else { return };
    let db = seeded().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/passive/logs");
    let report = certhist_files::import_files(
        &db.store(),
        std::sync::Arc::new(certhist_sensors::ZeekSsl {
            source: "zeek".to_owned(),
        }),
        &[root.join("Kavya-Ilangovan__tls_metadata_ids/zeek_logs")],
        &certhist_files::ImportOptions {
            follow_cursors: false,
            ..certhist_files::ImportOptions::default()
        },
        &certhist_files::NoProgress,
    )
    .await
    .unwrap();
    assert!(report.totals.sightings > 0);
    // EXPECTED.tsv: the records of 54.187.159.182, all naming their leaf by SHA-256 only.
    let ip = "54.187.159.182";
    let tsv = std::fs::read_to_string(root.join("EXPECTED.tsv")).unwrap();
    let mut want: std::collections::BTreeMap<(u16, String), Expected> =
        std::collections::BTreeMap::new();
    for l in tsv.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        if !f[0].starts_with("Kavya-Ilangovan__tls_metadata_ids/zeek_logs/ssl.log") || f[3] != ip {
            continue;
        }
        if f[6].is_empty() {
            continue; // no certificate in clear
        }
        assert!(f[5].is_empty(), "a SHA-256-only record: {l}");
        let t: DateTime<Utc> = f[2].parse().unwrap();
        let e = want
            .entry((f[4].parse().unwrap(), f[6].to_owned()))
            .or_insert((f[7].to_owned(), t, t, 0));
        e.1 = e.1.min(t);
        e.2 = e.2.max(t);
        e.3 += 1;
    }
    let stripe = "27452fa6a1be17c9738151ed60b066827196d3726dbdf0835d7d3cb053de9c19";
    assert!(want.contains_key(&(443, stripe.to_owned())));

    // A stub with hostile text on another address, written as a sensor would.
    let hostile_sha256 = [0x5a_u8; 32];
    {
        let mut conn = db.store().conn().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.write_passive_batch(
            &[certhist_model::PassiveSighting {
                time: day(2025, 1, 2),
                ip: "192.0.2.77".parse().unwrap(),
                port: 443,
                leaf: Some(certhist_model::CertRef::Sha256(hostile_sha256)),
                stub: Some(certhist_model::CertStub {
                    subject_dn: Some(format!("CN={SCRIPT}")),
                    subject_cn: Some(SCRIPT.to_owned()),
                    issuer_dn: Some(IMG.to_owned()),
                    ..certhist_model::CertStub::default()
                }),
                sni: None,
            }],
            "zeek",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    let (base, _stop) = serve(&db).await;
    let c = browser(&d).await;
    c.goto(&format!("{base}/ip/{ip}")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("stub-table"))
        .await
        .unwrap();
    shot(&c, "ip-stubs").await;
    assert_fits(&c, "stub sightings").await;
    // No certificate of this address has its DER: no history rows, only the stubs.
    assert!(c.find(Locator::Id("history")).await.is_err());
    let rows = c
        .find_all(Locator::Css("#stub-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), want.len());
    for (row, ((port, sha256), (cn, first, last, count))) in rows.iter().zip(&want) {
        let cells: Vec<String> = {
            let mut v = Vec::new();
            for td in row.find_all(Locator::Css("td")).await.unwrap() {
                v.push(td.text().await.unwrap());
            }
            v
        };
        // Port, SHA-256 (short), CN, issuer, not before, not after, first, last, period, seen,
        // sources.
        assert_eq!(cells[0], port.to_string());
        assert_eq!(cells[1], sha256[..12]);
        assert_eq!(cells[2], *cn);
        assert_eq!(cells[6], ymd(*first));
        assert_eq!(cells[7], ymd(*last));
        assert_eq!(cells[9], count.to_string());
        assert_eq!(cells[10], "zeek");
        let link = row.find(Locator::Css("a.sha256")).await.unwrap();
        assert_eq!(
            link.attr("title").await.unwrap().as_deref(),
            Some(&sha256[..])
        );
        assert_eq!(
            link.attr("href").await.unwrap().as_deref(),
            Some(&format!("/api/v1/certificates/{sha256}")[..])
        );
        let name = row.find(Locator::Css("a.stub-cn")).await.unwrap();
        let enc = form_urlencoded::byte_serialize(cn.as_bytes()).collect::<String>();
        assert_eq!(
            name.attr("href").await.unwrap().as_deref(),
            Some(&format!("/names?field=name&q={enc}&match=exact")[..])
        );
        if sha256 == stripe {
            // The x509.log row of this fingerprint (fixture text).
            assert_eq!(
                cells[3],
                "CN=DigiCert TLS Hybrid ECC SHA384 2020 CA1,O=DigiCert Inc,C=US"
            );
            assert_eq!(cells[4], "2025-06-10");
            assert_eq!(cells[5], "2025-10-02");
        }
    }
    // The hash is a pivot to the stub's record (the log's text, as the API answers it).
    leave(&c).await;
    c.find(Locator::Css(&format!(
        "#stub-table a.sha256[title='{stripe}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    arrive(&c).await;
    let at = path_of(&c).await;
    assert_eq!(at, format!("/api/v1/certificates/{stripe}"));
    let app = certhist_api::router(db.store(), ServeConfig::default());
    let (status, _, body) = get(&app, &at).await;
    assert_eq!(status, StatusCode::OK);
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["stub"], true);
    assert_eq!(record["sha256"], stripe);
    assert_eq!(record["subject_cn"], "*.stripe.com");

    // Hostile text from a log: literal, no dialog, no injected element.
    c.goto(&format!("{base}/ip/192.0.2.77")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("stub-table"))
        .await
        .unwrap();
    assert_no_dialog(&c, "hostile stub").await;
    assert_eq!(
        texts(&c, "#stub-table a.stub-cn").await,
        vec![SCRIPT.to_owned()]
    );
    assert_eq!(
        texts(&c, "#stub-table td.name").await,
        vec![SCRIPT.to_owned(), IMG.to_owned()]
    );
    assert!(c.find(Locator::Css("#stub-table img")).await.is_err());
    assert!(c.find(Locator::Css("#stub-table script")).await.is_err());
    assert_eq!(
        texts(&c, "#stub-table a.sha256").await,
        vec!["5a".repeat(6)]
    );
    c.close().await.unwrap();
}
