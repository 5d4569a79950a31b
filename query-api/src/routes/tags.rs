//! Tags and notes shared between analysts (issue 12):
//! `PUT|DELETE /api/v1/tags/{kind}/{value}/{tag}`, `GET /api/v1/tags/{kind}/{value}`,
//! `POST /api/v1/notes/{kind}/{value}`, `DELETE /api/v1/notes/{id}`; and the tag search behind
//! `/api/v1/search?field=tag`.
//!
//! A CIDR block in the path is one segment: percent-encode the `/` (`10.0.0.0%2F24`) or write it
//! as `_` (`10.0.0.0_24`). A tag holding `/` is percent-encoded the same way.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use certhist_model::views::{
    parse_note_body, parse_tag, Note, Role, Tag, TagInputError, TaggedItem, Target, TargetKind,
    TargetTags,
};
use certhist_store::read::{self, MatchPattern, TaggedKey};
use certhist_store::{Author, NoteDeletion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{bad_request, not_found, ApiError};
use crate::ndjson::{self, STREAM_PAGE};
use crate::params::Params;
use crate::routes::{page, stream_next};
use crate::{json, AppState};

/// The author recorded for the local user of an open server (no accounts).
pub(crate) const LOCAL_AUTHOR: &str = "local";

fn input_error(e: TagInputError) -> ApiError {
    bad_request(e.parameter(), e)
}

fn target(kind: &str, value: &str) -> Result<Target, ApiError> {
    Target::parse(kind, value).map_err(input_error)
}

fn author(principal: &Principal) -> Author {
    Author {
        name: principal.actor().unwrap_or_else(|| LOCAL_AUTHOR.to_owned()),
        actor: principal.actor(),
        source: principal.source_text(),
    }
}

fn with_status(status: StatusCode, value: &impl Serialize) -> Response {
    let mut resp = json(value);
    *resp.status_mut() = status;
    resp
}

/// Tags a target. Idempotent: tagging again keeps the first author and time and answers 200.
#[utoipa::path(
    put,
    path = "/api/v1/tags/{kind}/{value}/{tag}",
    tag = "certhist",
    params(
        ("kind" = crate::params::TargetKindName, Path, description = "ip | cidr | certificate | name"),
        ("value" = String, Path, min_length = 1, description = "An address; a block with `/` percent-encoded (`10.0.0.0%2F24`) or written `_` (`10.0.0.0_24`); a certificate SHA-1 (40 hex digits); a DNS name"),
        ("tag" = crate::params::TagText, Path, description = "1–64 characters a-z 0-9 . _ : / @ + - starting with a letter or digit (upper case is lower-cased; `/` percent-encoded)"),
    ),
    responses(
        (status = 201, description = "Tag added", body = Tag),
        (status = 200, description = "The target already had the tag (first author and time kept)", body = Tag),
        (status = 400, description = "Bad kind, value or tag (named in the message)", body = crate::error::ErrorBody),
        (status = 403, description = "The account is not an analyst", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn put_tag(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, value, tag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let target = target(&kind, &value)?;
    let tag = parse_tag(&tag).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let (tag, created) = tx.add_tag(&target, &tag, &author(&principal)).await?;
    tx.commit().await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_status(status, &tag))
}

/// Removes a tag from a target.
#[utoipa::path(
    delete,
    path = "/api/v1/tags/{kind}/{value}/{tag}",
    tag = "certhist",
    params(
        ("kind" = crate::params::TargetKindName, Path, description = "ip | cidr | certificate | name"),
        ("value" = String, Path, min_length = 1, description = "The target, as for PUT"),
        ("tag" = crate::params::TagText, Path, description = "The tag"),
    ),
    responses(
        (status = 204, description = "Tag removed"),
        (status = 400, description = "Bad kind, value or tag", body = crate::error::ErrorBody),
        (status = 403, description = "The account is not an analyst", body = crate::error::ErrorBody),
        (status = 404, description = "The target does not have this tag", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn delete_tag(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, value, tag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let target = target(&kind, &value)?;
    let tag = parse_tag(&tag).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let removed = tx.remove_tag(&target, &tag, &author(&principal)).await?;
    tx.commit().await?;
    match removed {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(not_found(format!("{target} has no tag {tag}"))),
    }
}

/// The tags and notes of a target, with authors and times. An address or block includes those
/// of the blocks containing it (each tag and note names its own target).
#[utoipa::path(
    get,
    path = "/api/v1/tags/{kind}/{value}",
    tag = "certhist",
    params(
        ("kind" = crate::params::TargetKindName, Path, description = "ip | cidr | certificate | name"),
        ("value" = String, Path, min_length = 1, description = "The target, as for PUT"),
    ),
    responses(
        (status = 200, description = "Tags and notes (empty lists when there are none)", body = TargetTags),
        (status = 400, description = "Bad kind or value", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn get_target(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, value)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    principal.require(Role::Reader)?;
    let target = target(&kind, &value)?;
    let conn = state.conn().await?;
    Ok(json(&read::target_tags(&conn, &target).await?))
}

/// The body of a new note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewNote {
    /// The text (1–10,000 characters; surrounding whitespace is removed).
    body: String,
}

/// Adds a note to a target.
#[utoipa::path(
    post,
    path = "/api/v1/notes/{kind}/{value}",
    tag = "certhist",
    params(
        ("kind" = crate::params::TargetKindName, Path, description = "ip | cidr | certificate | name"),
        ("value" = String, Path, min_length = 1, description = "The target, as for PUT /tags"),
    ),
    request_body(content = NewNote, content_type = "application/json"),
    responses(
        (status = 201, description = "The note, with its id, author and time", body = Note),
        (status = 400, description = "Bad kind, value or body", body = crate::error::ErrorBody),
        (status = 403, description = "The account is not an analyst", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn post_note(
    State(state): State<AppState>,
    principal: Principal,
    Path((kind, value)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let target = target(&kind, &value)?;
    let new: NewNote = serde_json::from_slice(&body).map_err(|e| {
        bad_request(
            "body",
            format!("expected a JSON object {{\"body\": \"…\"}} ({e})"),
        )
    })?;
    let text = parse_note_body(&new.body).map_err(input_error)?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let note = tx.add_note(&target, &text, &author(&principal)).await?;
    tx.commit().await?;
    Ok(with_status(StatusCode::CREATED, &note))
}

/// Deletes a note: its author may, and an admin may delete anyone's.
#[utoipa::path(
    delete,
    path = "/api/v1/notes/{id}",
    tag = "certhist",
    params(("id" = i64, Path, minimum = 1, description = "The note's id")),
    responses(
        (status = 204, description = "Note deleted"),
        (status = 400, description = "Bad id", body = crate::error::ErrorBody),
        (status = 403, description = "Not the note's author (nor an admin), or not an analyst", body = crate::error::ErrorBody),
        (status = 404, description = "No note with this id", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn delete_note(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require(Role::Analyst)?;
    let id: i64 = id
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad_request("id", "not a note id (a positive integer)"))?;
    let mut conn = state.conn().await?;
    let mut tx = conn.begin().await?;
    let outcome = tx
        .delete_note(id, &author(&principal), principal.role >= Role::Admin)
        .await?;
    tx.commit().await?;
    match outcome {
        NoteDeletion::Deleted(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        NoteDeletion::NotFound => Err(not_found(format!("no note with id {id}"))),
        NoteDeletion::NotAuthor { author } => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            detail: format!(
                "note {id} was written by {author}; only its author or an admin may delete it"
            ),
        }),
        _ => Err(ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: "internal error".to_owned(),
        }),
    }
}

/// Keyset cursor of a tag search: (tag, kind, value).
#[derive(Serialize, Deserialize)]
struct Cursor(String, TargetKind, String);

/// `/api/v1/search?field=tag&q=…`: the tagged targets (items are [`TaggedItem`]s). `q` takes the
/// `*` notation of the other fields (`apt*`) or `match=`; `valid_*` filters do not apply.
pub(crate) async fn search_tags(
    state: AppState,
    mut p: Params,
    headers: &axum::http::HeaderMap,
    pattern: impl FnOnce(&mut Params, &str) -> Result<MatchPattern, ApiError>,
) -> Result<Response, ApiError> {
    let q = p.required("q")?;
    let pattern = pattern(&mut p, &q)?;
    let limit = p.limit(&state.config)?;
    let cursor: Option<Cursor> = p.cursor()?;
    p.finish()?;
    let after: Option<TaggedKey> = cursor.map(|c| (c.0, c.1, c.2));
    let key = |t: &TaggedItem| (t.tag.tag.clone(), t.tag.kind, t.tag.value.clone());
    if ndjson::wanted(headers) {
        return Ok(ndjson::stream(
            state,
            after,
            move |state: AppState, after: Option<TaggedKey>| {
                let pattern = pattern.clone();
                async move {
                    let conn = state.conn().await?;
                    let rows = read::tagged(&conn, &pattern, after.as_ref(), STREAM_PAGE).await?;
                    let mut out = Vec::new();
                    for r in &rows {
                        ndjson::push_line(&mut out, r);
                    }
                    Ok((out, stream_next(&rows, key)))
                }
            },
        ));
    }
    let conn = state.conn().await?;
    let rows = read::tagged(&conn, &pattern, after.as_ref(), limit + 1).await?;
    Ok(json(&page(rows, limit, |t: &TaggedItem| {
        Cursor(t.tag.tag.clone(), t.tag.kind, t.tag.value.clone())
    })))
}
