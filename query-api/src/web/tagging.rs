//! Tags and notes in the UI: the panel shown on the certificate, address/block and name pages
//! (tags and notes with author and time; add/remove forms for analysts and admins), the web
//! routes those forms post to (`/tags/add`, `/tags/remove`, `/notes/add`, `/notes/delete`:
//! the same store functions and role checks as `/api/v1/tags` and `/api/v1/notes`), and the tag
//! search page `/tags?q=…`.
//!
//! Forms are plain HTML posting `application/x-www-form-urlencoded` with the session's CSRF
//! token (checked by the authentication layer); a handler answers `303` back to the page the
//! form was on (a local path only, else the target's page) or an error page naming the field.
//! Tag and note text is attacker-controlled: the template engine escapes it.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certhist_model::views::{
    parse_note_body, parse_tag, MatchMode, Note, Role, Tag, TagInputError, Target, TargetKind,
};
use certhist_store::read::{self, MatchPattern, TaggedKey};
use certhist_store::{Author, Conn, NoteDeletion};

use super::{html, links, safe_next, visible, Chrome, PageError, Viewer};
use crate::error::{bad_request, not_found, ApiError};
use crate::params::{encode_cursor, Params};
use crate::routes::tags::LOCAL_AUTHOR;
use crate::AppState;

type PageResult = Result<Response, PageError>;

/// A tag as the panel shows it.
#[derive(Debug, Clone)]
pub(crate) struct TagView {
    pub tag: String,
    pub href: String,
    pub kind: &'static str,
    pub value: String,
    /// The target it is on, when that is not the page's (a block containing the address).
    pub on: Option<super::pages::Link>,
    pub author: String,
    pub at: String,
}

/// A note as the panel shows it.
#[derive(Debug, Clone)]
pub(crate) struct NoteView {
    pub id: i64,
    /// Lines of the body (each made visible; shown with line breaks).
    pub lines: Vec<String>,
    pub on: Option<super::pages::Link>,
    pub author: String,
    pub at: String,
    /// The viewer may delete it (its author, or an admin).
    pub deletable: bool,
}

/// The tags and notes of one page's target.
#[derive(Debug, Clone)]
pub(crate) struct TagPanel {
    pub kind: &'static str,
    pub value: String,
    /// The page the forms come back to.
    pub back: String,
    pub tags: Vec<TagView>,
    pub notes: Vec<NoteView>,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{} UTC", certhist_model::ymd_hm(t))
}

/// The page of a target.
pub(crate) fn target_href(target: &Target) -> String {
    match target {
        Target::Ip(ip) => links::ip(*ip),
        Target::Cidr(net) => links::net(net),
        Target::Certificate(sha1) => links::cert(sha1),
        Target::Name(name) => links::exact("name", name),
    }
}

fn other_target(kind: TargetKind, value: &str, page: &Target) -> Option<super::pages::Link> {
    let t = Target::parse_kind(kind, value).ok()?;
    (t != *page)
        .then(|| super::pages::Link::to(format!("{} {}", kind.as_str(), value), target_href(&t)))
}

/// The viewer's author name (as the API records it).
fn author(viewer: &Viewer) -> Author {
    Author {
        name: viewer.actor().unwrap_or_else(|| LOCAL_AUTHOR.to_owned()),
        actor: viewer.actor(),
        source: viewer.source_text(),
    }
}

/// Reads the tags and notes of `target` for a page at `back`.
pub(crate) async fn panel(
    conn: &Conn,
    target: &Target,
    viewer: &Viewer,
    back: String,
) -> Result<TagPanel, ApiError> {
    let tt = read::target_tags(conn, target).await?;
    let me = author(viewer).name;
    let admin = viewer.role >= Role::Admin;
    let analyst = viewer.role >= Role::Analyst;
    Ok(TagPanel {
        kind: target.kind().as_str(),
        value: target.value(),
        back,
        tags: tt
            .tags
            .iter()
            .map(|t: &Tag| TagView {
                tag: visible(&t.tag),
                href: links::tag(&t.tag),
                kind: t.kind.as_str(),
                value: t.value.clone(),
                on: other_target(t.kind, &t.value, target),
                author: visible(&t.author),
                at: when(t.created_at),
            })
            .collect(),
        notes: tt
            .notes
            .iter()
            .map(|n: &Note| NoteView {
                id: n.id,
                lines: n.body.lines().map(visible).collect(),
                on: other_target(n.kind, &n.value, target),
                author: visible(&n.author),
                at: when(n.created_at),
                deletable: analyst && (admin || n.author == me),
            })
            .collect(),
    })
}

fn form(body: &Bytes) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

fn input_error(e: TagInputError) -> ApiError {
    bad_request(e.parameter(), e)
}

fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    f.get(name)
        .map(String::as_str)
        .ok_or_else(|| bad_request(name, "missing (required)"))
}

/// The fields of a tag or note form posted by an analyst (or admin), and the target it names.
fn analyst_form(
    viewer: &Viewer,
    body: &Bytes,
) -> Result<(HashMap<String, String>, Target), ApiError> {
    viewer.require(Role::Analyst)?;
    let f = form(body);
    let target = Target::parse(field(&f, "kind")?, field(&f, "value")?).map_err(input_error)?;
    Ok((f, target))
}

/// `303` to the form's `back` page when it is a local path, else to the target's page.
fn back_to(f: &HashMap<String, String>, target: Option<&Target>, anchor: &str) -> Response {
    let back = match f.get("back") {
        Some(b) => safe_next(Some(b)),
        None => target.map_or_else(|| "/".to_owned(), target_href),
    };
    let location = format!("{}#{anchor}", back.split('#').next().unwrap_or("/"));
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `POST /tags/add` (kind, value, tag, back): tags the target (analyst).
pub(crate) async fn add_tag(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let (f, target) = analyst_form(&viewer, &body)?;
    let tag = parse_tag(field(&f, "tag")?).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    tx.add_tag(&target, &tag, &author(&viewer)).await?;
    tx.commit().await?;
    Ok(back_to(&f, Some(&target), "tags"))
}

/// `POST /tags/remove` (kind, value, tag, back): removes a tag (analyst).
pub(crate) async fn remove_tag(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let (f, target) = analyst_form(&viewer, &body)?;
    let tag = parse_tag(field(&f, "tag")?).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let removed = tx.remove_tag(&target, &tag, &author(&viewer)).await?;
    tx.commit().await?;
    if removed.is_none() {
        return Err(not_found(format!("{target} has no tag {tag}")).into());
    }
    Ok(back_to(&f, Some(&target), "tags"))
}

/// `POST /notes/add` (kind, value, body, back): adds a note (analyst).
pub(crate) async fn add_note(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let (f, target) = analyst_form(&viewer, &body)?;
    let text = parse_note_body(field(&f, "body")?).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    tx.add_note(&target, &text, &author(&viewer)).await?;
    tx.commit().await?;
    Ok(back_to(&f, Some(&target), "notes"))
}

/// `POST /notes/delete` (id, back): deletes a note (its author, or an admin).
pub(crate) async fn delete_note(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    viewer.require(Role::Analyst)?;
    let f = form(&body);
    let id: i64 = field(&f, "id")?
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad_request("id", "not a note id (a positive integer)"))?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let outcome = tx
        .delete_note(id, &author(&viewer), viewer.role >= Role::Admin)
        .await?;
    tx.commit().await?;
    match outcome {
        NoteDeletion::Deleted(_) => Ok(back_to(&f, None, "notes")),
        NoteDeletion::NotFound => Err(not_found(format!("no note with id {id}")).into()),
        NoteDeletion::NotAuthor { author } => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            detail: format!(
                "note {id} was written by {author}; only its author or an admin may delete it"
            ),
        }
        .into()),
        _ => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: "internal error".to_owned(),
        }
        .into()),
    }
}

// ---------------------------------------------------------------- tag search page

#[derive(Debug)]
pub(crate) struct TaggedRow {
    pub tag: String,
    pub tag_href: String,
    pub kind: &'static str,
    pub target: super::pages::Link,
    pub cn: String,
    pub author: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "tags.html")]
struct TagsPage {
    chrome: Chrome,
    title: String,
    q_shown: String,
    rows: Vec<TaggedRow>,
    next: Option<String>,
    first_page: Option<String>,
    ndjson: String,
    api: String,
    stix: String,
    misp: String,
}

/// `/tags?q=…[&cursor=…]`: the targets carrying a tag (`*` patterns as in the other searches).
pub(crate) async fn tags_page(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    viewer.require(Role::Reader)?;
    let mut p = Params::parse(raw.as_deref())?;
    let q = p.required("q")?;
    let q = q.trim().trim_start_matches('#').to_lowercase();
    let pattern = MatchPattern::with_mode(MatchMode::Auto, &q).map_err(|e| bad_request("q", e))?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<(String, TargetKind, String)> = p.cursor()?;
    p.finish()?;
    let after: Option<TaggedKey> = cursor;
    let conn = state.conn().await?;
    let mut rows = read::tagged(&conn, &pattern, after.as_ref(), limit + 1).await?;
    drop(conn);
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let base = links::tag(&q);
    let next = if more {
        rows.last().map(|t| {
            links::with_cursor(
                &base,
                &encode_cursor(&(t.tag.tag.clone(), t.tag.kind, t.tag.value.clone())),
            )
        })
    } else {
        None
    };
    let rows = rows
        .iter()
        .map(|t| {
            let target = Target::parse_kind(t.tag.kind, &t.tag.value)
                .map(|target| super::pages::Link::to(&t.tag.value, target_href(&target)))
                .unwrap_or_else(|_| super::pages::Link::plain(&t.tag.value));
            TaggedRow {
                tag: visible(&t.tag.tag),
                tag_href: links::tag(&t.tag.tag),
                kind: t.tag.kind.as_str(),
                target,
                cn: t
                    .cert
                    .as_ref()
                    .and_then(|c| c.subject_cn.as_deref())
                    .map(visible)
                    .unwrap_or_default(),
                author: visible(&t.tag.author),
                at: when(t.tag.created_at),
            }
        })
        .collect();
    let qs = links::query(&[("field", "tag"), ("q", &q)]);
    Ok(html(
        StatusCode::OK,
        &TagsPage {
            chrome: Chrome::new(&viewer, format!("tag:{q}")),
            title: format!("tag {} · search", super::pages::truncate(&q, 80)),
            q_shown: visible(&q),
            rows,
            first_page: after_first(raw.as_deref(), &base),
            next,
            ndjson: format!("/export/search.ndjson?{qs}"),
            api: format!("/api/v1/search?{qs}"),
            stix: links::export("stix", &[("tag", &q)]),
            misp: links::export("misp", &[("tag", &q)]),
        },
    ))
}

/// The first-page link when the request carried a cursor.
fn after_first(raw: Option<&str>, base: &str) -> Option<String> {
    raw.is_some_and(|r| form_urlencoded::parse(r.as_bytes()).any(|(k, _)| k == "cursor"))
        .then(|| base.to_owned())
}
