//! GET /api/v1/search: every field family, every match mode, validity filters, paging.

use std::collections::{BTreeSet, HashSet};

use axum::http::StatusCode;
use serde_json::Value;

use crate::*;

async fn hits(app: &axum::Router, query: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/api/v1/search?{query}&limit=1000")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    assert_eq!(body["next_cursor"], Value::Null);
    body["items"].as_array().unwrap().clone()
}

fn sha1s(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|h| h["cert"]["sha1"].as_str().unwrap().to_owned())
        .collect()
}

fn set(fixtures: &[&Fixture]) -> BTreeSet<String> {
    fixtures.iter().map(|f| f.sha1.to_owned()).collect()
}

#[tokio::test]
async fn every_match_mode_on_names() {
    let db = seeded().await;
    let app = app(&db);
    // exact (case-insensitive)
    let h = hits(&app, "field=name&q=GitHub.com").await;
    assert_eq!(sha1s(&h), set(&[&GITHUB]));
    assert!(h.iter().all(|x| x["matched"] == "github.com"));
    // *.suffix
    let h = hits(&app, "field=name&q=*.wikipedia.org").await;
    assert_eq!(sha1s(&h), set(&[&WIKIPEDIA]));
    assert!(h
        .iter()
        .all(|x| x["matched"].as_str().unwrap().ends_with(".wikipedia.org")));
    assert!(h.iter().any(|x| x["matched"] == "*.wikipedia.org"));
    // prefix*
    let h = hits(&app, "field=name&q=news.*").await;
    assert_eq!(sha1s(&h), set(&[&HN]));
    // *contains*
    let h = hits(&app, "field=name&q=*ycombinator*").await;
    assert_eq!(sha1s(&h), set(&[&HN]));
    // explicit modes take the value literally
    let h = hits(&app, "field=name&q=servo.or&match=prefix").await;
    assert_eq!(sha1s(&h), set(&[&SERVO]));
    let h = hits(&app, "field=name&q=lang.org&match=suffix").await;
    assert_eq!(sha1s(&h), set(&[&RUSTLANG]));
    let h = hits(&app, "field=name&q=ust-la&match=contains").await;
    assert_eq!(sha1s(&h), set(&[&RUSTLANG]));
    let h = hits(&app, "field=name&q=github.com&match=exact").await;
    assert_eq!(sha1s(&h), set(&[&GITHUB]));
    // regex (POSIX, case-insensitive)
    let h = hits(&app, "field=name&q=%5Erust-lang%5C.org%24&match=regex").await;
    assert_eq!(sha1s(&h), set(&[&RUSTLANG]));
    let h = hits(
        &app,
        "field=cn&q=%5E(servo%7Cgithub)%5C.(org%7Ccom)%24&match=regex",
    )
    .await;
    assert_eq!(sha1s(&h), set(&[&SERVO, &GITHUB]));
    // LIKE metacharacters are literal
    assert!(hits(&app, "field=name&q=%25&match=exact").await.is_empty());
    assert!(hits(&app, "field=name&q=g_thub.com").await.is_empty());
}

#[tokio::test]
async fn other_fields() {
    let db = seeded().await;
    let app = app(&db);
    assert_eq!(
        sha1s(&hits(&app, "field=cn&q=news.ycombinator.com").await),
        set(&[&HN])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=san&q=servo.org").await),
        set(&[&SERVO])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=registered-domain&q=google.com").await),
        set(&[&GOOGLE_WWW, &GOOGLE_2013])
    );
    // Issuer fields (values from the inventory's issuer DN); the apostrophe is just a character.
    assert_eq!(
        sha1s(&hits(&app, "field=issuer-o&q=let's%20encrypt").await),
        set(&[&HN, &WIKIPEDIA, &RUSTLANG, &LISTS])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=issuer-cn&q=e8").await),
        set(&[&HN, &WIKIPEDIA])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=issuer-o&q=google*").await),
        set(&[&GOOGLE_WWW, &SERVO, &GOOGLE_2013])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=issuer-o&q=google%20trust%20services").await),
        set(&[&GOOGLE_WWW, &SERVO])
    );
    assert_eq!(
        sha1s(&hits(&app, "field=subject-o&q=google%20inc").await),
        set(&[&GOOGLE_2013])
    );
    // Serial in two notations.
    let h = hits(&app, &format!("field=serial&q={}", GITHUB.serial)).await;
    assert_eq!(sha1s(&h), set(&[&GITHUB]));
    let colons: Vec<String> = format!("0{}", GITHUB.serial)
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_lowercase())
        .collect();
    let h = hits(&app, &format!("field=serial&q={}", colons.join(":"))).await;
    assert_eq!(sha1s(&h), set(&[&GITHUB]));
    // SPKI from the record.
    let (_, rec) = get(&app, &format!("/api/v1/certificates/{}", SERVO.sha1)).await;
    let spki = rec["spki_sha256"].as_str().unwrap();
    assert_eq!(
        sha1s(&hits(&app, &format!("field=spki&q={spki}")).await),
        set(&[&SERVO])
    );
}

#[tokio::test]
async fn validity_filters() {
    let db = seeded().await;
    let app = app(&db);
    let q = "field=registered-domain&q=google.com";
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&valid_at=2013-07-01")).await),
        set(&[&GOOGLE_2013])
    );
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&valid_at=2026-02-01T00:00:00Z")).await),
        set(&[&GOOGLE_WWW])
    );
    assert!(hits(&app, &format!("{q}&valid_at=2020-01-01"))
        .await
        .is_empty());
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&not_after_before=2014-01-01")).await),
        set(&[&GOOGLE_2013])
    );
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&not_before_after=2020-01-01")).await),
        set(&[&GOOGLE_WWW])
    );
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&not_before_before=2020-01-01")).await),
        set(&[&GOOGLE_2013])
    );
    assert_eq!(
        sha1s(&hits(&app, &format!("{q}&not_after_after=2026-04-06T08:38:40Z")).await),
        set(&[&GOOGLE_WWW])
    );
    assert!(
        hits(&app, &format!("{q}&not_after_after=2026-04-06T08:38:41Z"))
            .await
            .is_empty()
    );
    // On certificate-table fields too.
    assert_eq!(
        sha1s(
            &hits(
                &app,
                "field=issuer-o&q=let's%20encrypt&not_before_after=2026-01-20"
            )
            .await
        ),
        set(&[&RUSTLANG])
    );
}

#[tokio::test]
async fn search_pages_lose_and_repeat_nothing() {
    let db = seeded().await;
    let app = app(&db);
    let all = hits(&app, "field=name&q=*google*").await;
    // google_cert.der alone has 44 DNS SANs (inventory), many with "google".
    assert!(all.len() > 20, "{}", all.len());
    let want: Vec<(String, String)> = all
        .iter()
        .map(|h| {
            (
                h["matched"].as_str().unwrap().to_owned(),
                h["cert"]["sha1"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for limit in [1, 6, 13] {
        let (items, _) = all_pages(
            &app,
            &format!("/api/v1/search?field=name&q=*google*&limit={limit}"),
        )
        .await;
        let got: Vec<(String, String)> = items
            .iter()
            .map(|h| {
                (
                    h["matched"].as_str().unwrap().to_owned(),
                    h["cert"]["sha1"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want, "limit {limit}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
    }
    let (_, _, body) = get_raw(
        &app,
        "/api/v1/search?field=name&q=*google*",
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), want.len());
}
