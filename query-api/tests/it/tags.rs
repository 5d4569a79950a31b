//! Tags and notes (issue 12): PUT/DELETE /api/v1/tags/{kind}/{value}/{tag},
//! GET /api/v1/tags/{kind}/{value}, POST /api/v1/notes/{kind}/{value}, DELETE
//! /api/v1/notes/{id}; tags in the certificate record, IP history, hosts, search and serial
//! results; `/search?field=tag`. Two analysts are two principals put on the requests (what the
//! authentication layer does).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use certhist_api::auth::Principal;
use certhist_model::views::Role;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::*;

fn who(name: &str, role: Role) -> Principal {
    Principal {
        user: Some(name.to_owned()),
        role,
        source: Some("203.0.113.5".parse().unwrap()),
    }
}

/// A request through the router as `principal` (none: the open server's local user).
async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<&str>,
    principal: Option<Principal>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    if let Some(p) = principal {
        req.extensions_mut().insert(p);
    }
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri}: not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, value)
}

fn alice() -> Option<Principal> {
    Some(who("alice", Role::Analyst))
}

fn bob() -> Option<Principal> {
    Some(who("bob", Role::Analyst))
}

fn tag_names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn put_is_idempotent_keeps_the_first_author_and_delete_removes() {
    let db = seeded().await;
    let app = app(&db);
    let uri = format!("/api/v1/tags/certificate/{}/APT28", GITHUB.sha1);
    let (status, body) = send(&app, Method::PUT, &uri, None, alice()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tag"], "apt28");
    assert_eq!(body["kind"], "certificate");
    assert_eq!(body["value"], GITHUB.sha1);
    assert_eq!(body["author"], "alice");
    let created_at = body["created_at"].as_str().unwrap().to_owned();

    let (status, again) = send(&app, Method::PUT, &uri, None, bob()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["author"], "alice");
    assert_eq!(again["created_at"].as_str().unwrap(), created_at);

    let (status, _) = send(
        &app,
        Method::PUT,
        &format!(
            "/api/v1/tags/certificate/{}/phishing",
            GITHUB.sha1.to_uppercase()
        ),
        None,
        bob(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, target) = get(&app, &format!("/api/v1/tags/certificate/{}", GITHUB.sha1)).await;
    assert_eq!(status, StatusCode::OK, "{target}");
    assert_eq!(target["kind"], "certificate");
    assert_eq!(target["value"], GITHUB.sha1);
    let tags: Vec<(&str, &str)> = target["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tag"].as_str().unwrap(), t["author"].as_str().unwrap()))
        .collect();
    assert_eq!(tags, vec![("apt28", "alice"), ("phishing", "bob")]);
    assert_eq!(target["notes"], json!([]));

    let (status, body) = send(&app, Method::DELETE, &uri, None, bob()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(&app, Method::DELETE, &uri, None, bob()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_detail(&body).contains("apt28"), "{body}");
    let (_, target) = get(&app, &format!("/api/v1/tags/certificate/{}", GITHUB.sha1)).await;
    assert_eq!(target["tags"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_open_server_writes_as_local_and_readers_may_not_write() {
    let db = seeded().await;
    let app = app(&db);
    let (status, body) = send(
        &app,
        Method::PUT,
        "/api/v1/tags/ip/192.0.2.10/c2",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["author"], "local");

    let reader = Some(who("rita", Role::Reader));
    for (method, uri, body) in [
        (Method::PUT, "/api/v1/tags/ip/192.0.2.10/x", None),
        (Method::DELETE, "/api/v1/tags/ip/192.0.2.10/c2", None),
        (
            Method::POST,
            "/api/v1/notes/ip/192.0.2.10",
            Some(r#"{"body":"hi"}"#),
        ),
        (Method::DELETE, "/api/v1/notes/1", None),
    ] {
        let (status, resp) = send(&app, method.clone(), uri, body, reader.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {resp}");
        assert!(error_detail(&resp).contains("analyst"), "{resp}");
    }
    // Readers read.
    let (status, _) = send(
        &app,
        Method::GET,
        "/api/v1/tags/ip/192.0.2.10",
        None,
        reader,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_kind_value_tag_body_and_id_are_400s_naming_the_parameter() {
    let db = seeded().await;
    let app = app(&db);
    for (method, uri, body, parameter) in [
        (Method::PUT, "/api/v1/tags/host/192.0.2.10/x", None, "kind"),
        (Method::PUT, "/api/v1/tags/ip/192.0.2.300/x", None, "value"),
        (Method::PUT, "/api/v1/tags/ip/10.0.0.0%2F8/x", None, "value"),
        (Method::PUT, "/api/v1/tags/cidr/banana/x", None, "value"),
        (
            Method::PUT,
            "/api/v1/tags/certificate/abcd/x",
            None,
            "value",
        ),
        (Method::PUT, "/api/v1/tags/name/a..b/x", None, "value"),
        (
            Method::PUT,
            "/api/v1/tags/name/example.com/bad%20tag",
            None,
            "tag",
        ),
        (Method::PUT, "/api/v1/tags/name/example.com/-x", None, "tag"),
        (
            Method::DELETE,
            "/api/v1/tags/name/example.com/%E2%80%AE",
            None,
            "tag",
        ),
        (Method::GET, "/api/v1/tags/nope/x", None, "kind"),
        (
            Method::POST,
            "/api/v1/notes/ip/192.0.2.10",
            Some(r#"{"body":"   "}"#),
            "body",
        ),
        (
            Method::POST,
            "/api/v1/notes/ip/192.0.2.10",
            Some("not json"),
            "body",
        ),
        (
            Method::POST,
            "/api/v1/notes/ip/192.0.2.10",
            Some(r#"{"text":"x"}"#),
            "body",
        ),
        (
            Method::POST,
            "/api/v1/notes/ip/x",
            Some(r#"{"body":"x"}"#),
            "value",
        ),
        (Method::DELETE, "/api/v1/notes/abc", None, "id"),
    ] {
        let (status, resp) = send(&app, method.clone(), uri, body, alice()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {resp}");
        let detail = error_detail(&resp);
        assert!(
            detail.contains(&format!("`{parameter}`")),
            "{method} {uri}: {detail}"
        );
    }
    // A block with a literal `/` in the path (docs/API.md § Tags and notes).
    let (status, _) = send(
        &app,
        Method::PUT,
        "/api/v1/tags/cidr/10.0.0.0/24/x",
        None,
        alice(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = send(
        &app,
        Method::PUT,
        "/api/v1/tags/cidr/10.0.0.0/24",
        None,
        alice(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_detail(&body).contains("`value`"), "{body}");
    let (status, _) = send(
        &app,
        Method::GET,
        "/api/v1/tags/cidr/10.0.0.0/24",
        None,
        alice(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing was written.
    let (_, t) = get(&app, "/api/v1/tags/name/example.com").await;
    assert_eq!(t["tags"], json!([]));
}

#[tokio::test]
async fn tags_appear_in_records_histories_hosts_search_and_serials() {
    let db = seeded().await;
    let app = app(&db);
    // alice tags the certificate; bob tags the block two ways of writing it in a path.
    for (uri, who) in [
        (
            format!("/api/v1/tags/certificate/{}/apt28", GITHUB.sha1),
            alice(),
        ),
        (
            "/api/v1/tags/cidr/192.0.2.0%2F28/bulletproof".to_owned(),
            bob(),
        ),
        ("/api/v1/tags/cidr/192.0.2.0_28/hosting".to_owned(), bob()),
        ("/api/v1/tags/ip/192.0.2.11/c2".to_owned(), bob()),
        ("/api/v1/tags/name/github.com/watched".to_owned(), bob()),
    ] {
        let (status, body) = send(&app, Method::PUT, &uri, None, who).await;
        assert_eq!(status, StatusCode::CREATED, "{uri}: {body}");
    }
    let (_, block) = get(&app, "/api/v1/tags/cidr/192.0.2.0%2F28").await;
    assert_eq!(block["value"], "192.0.2.0/28");
    assert_eq!(block["tags"].as_array().unwrap().len(), 2);

    // The record: every tag touching it, with details.
    let (_, record) = get(&app, &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    assert_eq!(tag_names(&record["tags"]), vec!["apt28", "watched"]);
    let details: Vec<(&str, &str, &str)> = record["tag_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap(),
                t["kind"].as_str().unwrap(),
                t["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        details,
        vec![
            ("apt28", "certificate", "alice"),
            ("watched", "name", "bob")
        ]
    );
    // An untagged record has the same shape, with empty lists.
    let (_, plain) = get(&app, &format!("/api/v1/certificates/{}", RUSTLANG.sha1)).await;
    assert_eq!(plain["tags"], json!([]));
    assert_eq!(plain["tag_details"], json!([]));
    assert_eq!(plain["notes"], json!([]));

    // IP history: a row carries the address's tags (its own and its blocks') and the
    // certificate's; the summary carries the certificate's.
    let (_, hist) = get(&app, "/api/v1/ip/192.0.2.11").await;
    let rows = hist["items"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{hist}");
    for row in rows {
        let expected: Vec<&str> = if row["sha1"] == GITHUB.sha1 {
            vec!["apt28", "bulletproof", "c2", "hosting"]
        } else {
            vec!["bulletproof", "c2", "hosting"]
        };
        assert_eq!(tag_names(&row["tags"]), expected, "{row}");
        let cert_tags = if row["sha1"] == GITHUB.sha1 {
            vec!["apt28"]
        } else {
            vec![]
        };
        assert_eq!(tag_names(&row["cert"]["tags"]), cert_tags, "{row}");
    }
    // Outside the block: nothing.
    let (_, far) = get(&app, "/api/v1/ip/192.0.2.100").await;
    assert_eq!(far["items"][0]["tags"], json!([]));

    // Hosts of the certificate: the addresses' tags.
    let (_, hosts) = get(&app, &format!("/api/v1/certificates/{}/hosts", GITHUB.sha1)).await;
    let got: Vec<(String, Vec<String>)> = hosts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["ip"].as_str().unwrap().to_owned(), tag_names(&h["tags"])))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "192.0.2.10".to_owned(),
                vec!["bulletproof".to_owned(), "hosting".to_owned()]
            ),
            (
                "192.0.2.11".to_owned(),
                vec![
                    "bulletproof".to_owned(),
                    "c2".to_owned(),
                    "hosting".to_owned()
                ]
            ),
        ]
    );

    // Search and serial results carry the certificate's tags.
    let (_, hits) = get(&app, "/api/v1/search?field=name&q=github.com").await;
    assert_eq!(hits["items"][0]["cert"]["sha1"], GITHUB.sha1);
    assert_eq!(tag_names(&hits["items"][0]["cert"]["tags"]), vec!["apt28"]);
    let (_, serials) = get(&app, &format!("/api/v1/serials/{}", GITHUB.serial)).await;
    assert_eq!(
        tag_names(&serials["items"][0]["tags"]),
        vec!["apt28"],
        "{serials}"
    );
}

#[tokio::test]
async fn two_analysts_tag_one_certificate_and_a_tag_search_finds_what_is_tagged() {
    let db = seeded().await;
    let app = app(&db);
    let cert = format!("/api/v1/tags/certificate/{}", GITHUB.sha1);
    send(&app, Method::PUT, &format!("{cert}/apt28"), None, alice()).await;
    send(
        &app,
        Method::PUT,
        &format!("{cert}/fancy-bear"),
        None,
        bob(),
    )
    .await;
    send(
        &app,
        Method::PUT,
        "/api/v1/tags/ip/2001:db8::1/apt28",
        None,
        bob(),
    )
    .await;
    send(
        &app,
        Method::PUT,
        "/api/v1/tags/name/evil.example/apt28",
        None,
        alice(),
    )
    .await;
    send(
        &app,
        Method::PUT,
        "/api/v1/tags/name/evil.example/apt29",
        None,
        alice(),
    )
    .await;

    let (_, record) = get(&app, &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    assert_eq!(tag_names(&record["tags"]), vec!["apt28", "fancy-bear"]);
    let authors: Vec<&str> = record["tag_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, vec!["alice", "bob"]);

    let (status, found) = get(&app, "/api/v1/search?field=tag&q=APT28").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let got: Vec<(&str, &str, &str)> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap(),
                i["value"].as_str().unwrap(),
                i["author"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("certificate", GITHUB.sha1, "alice"),
            ("ip", "2001:db8::1", "bob"),
            ("name", "evil.example", "alice"),
        ]
    );
    assert_eq!(found["items"][0]["cert"]["subject_cn"], GITHUB.cn);
    assert_eq!(
        tag_names(&found["items"][0]["cert"]["tags"]),
        vec!["apt28", "fancy-bear"]
    );
    assert_eq!(found["items"][1]["cert"], Value::Null);

    // Prefix, paging with a cursor, and NDJSON give the same items.
    let (items, pages) = all_pages(&app, "/api/v1/search?field=tag&q=apt*&limit=2").await;
    assert_eq!(items.len(), 4);
    assert_eq!(pages, 2);
    let (status, _, ndjson) = get_raw(
        &app,
        "/api/v1/search?field=tag&q=apt*",
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<Value> = String::from_utf8(ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, items);
    // Validity filters do not apply to tags.
    let (status, body) = get(&app, "/api/v1/search?field=tag&q=apt28&valid_at=2024-01-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn notes_have_author_and_time_and_only_their_author_or_an_admin_deletes_them() {
    let db = seeded().await;
    let app = app(&db);
    let before = chrono::Utc::now();
    let (status, note) = send(
        &app,
        Method::POST,
        "/api/v1/notes/cidr/192.0.2.0_24",
        Some(r#"{"body":"  hosting provider ignores abuse mail \u001b[31m "}"#),
        alice(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["author"], "alice");
    assert_eq!(note["kind"], "cidr");
    assert_eq!(note["value"], "192.0.2.0/24");
    assert_eq!(
        note["body"],
        "hosting provider ignores abuse mail \u{1b}[31m"
    );
    let at = t(note["created_at"].as_str().unwrap());
    assert!(at >= before - chrono::Duration::seconds(5), "{at}");
    let id = note["id"].as_i64().unwrap();

    // An address in the block sees it.
    let (_, ip) = get(&app, "/api/v1/tags/ip/192.0.2.10").await;
    assert_eq!(ip["notes"][0]["id"], id);

    let (status, body) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/notes/{id}"),
        None,
        bob(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_detail(&body).contains("alice"), "{body}");
    let admin = Some(who("root", Role::Admin));
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/notes/{id}"),
        None,
        admin.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/notes/{id}"),
        None,
        admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A note on the certificate is in its record.
    let (status, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/notes/certificate/{}", GITHUB.sha1),
        Some(r#"{"body":"pivot from the March report"}"#),
        bob(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, record) = get(&app, &format!("/api/v1/certificates/{}", GITHUB.sha1)).await;
    assert_eq!(record["notes"][0]["body"], "pivot from the March report");
    assert_eq!(record["notes"][0]["author"], "bob");
}
