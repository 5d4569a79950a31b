//! `GET /api/v1/export?format=…&ip=…|sha1=…|field=…&q=…|seed=…|tag=…`: an export of a lookup,
//! streamed (`crate::export` does the work; `certhist export` runs the same code).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use certhist_model::views::{ExportFormat, MatchMode, SearchField};
use certhist_store::read::{self, ExpandRequest, MatchPattern, Seed};
use futures_util::stream;

use crate::error::{bad_request, shorten, ApiError};
use crate::export::{self, ExportRequest, Selector};
use crate::params::{cert_hash, ip_or_cidr, Params};
use crate::AppState;

/// Default hops of an `expand` export (as `/expand`).
const DEFAULT_HOPS: i64 = 2;
/// Default node budget of an `expand` export (as `/expand`).
const DEFAULT_MAX_NODES: i64 = 200;

/// The selector parameters, in the order errors name them.
const SELECTORS: [&str; 5] = ["ip", "sha1", "field", "seed", "tag"];

/// Exports every sighting of a lookup — give exactly one of `ip` (an address or CIDR block:
/// its history), `sha1` (a certificate, SHA-1 or SHA-256: every host that served it), `field`
/// with `q` (the hosts of every certificate whose field matches), `seed` (the sightings on the
/// edges of the expansion graph), `tag` (everything carrying the tag) — as `ndjson` (one
/// passive-SSL common-output-format object per (ip, port, certificate) sighting), `csv` (the
/// same fields with a header), `stix` (a STIX 2.1 bundle) or `misp` (a MISP event with `x509`
/// objects). Streamed without a row cap; an error after the first byte ends the stream early
/// (the body is then incomplete).
#[utoipa::path(
    get,
    path = "/api/v1/export",
    tag = "certhist",
    params(
        ("format" = crate::params::ExportFormatName, Query, description = "ndjson | csv | stix | misp"),
        ("ip" = Option<crate::params::IpOrCidrText>, Query, description = "Selector: an IP address or CIDR block"),
        ("sha1" = Option<crate::params::CertHashText>, Query, description = "Selector: a certificate SHA-1 (or SHA-256)"),
        ("field" = Option<crate::params::SearchFieldName>, Query, description = "Selector (with `q`): name | cn | san | email | registered-domain | serial | issuer-cn | issuer-o | subject-o | subject-ou | spki"),
        ("q" = Option<String>, Query, min_length = 1, max_length = 2048, description = "The value of `field`"),
        ("match" = Option<crate::params::MatchModeName>, Query, description = "How `q` is read: auto (default) | exact | prefix | suffix | contains | regex"),
        ("seed" = Option<String>, Query, min_length = 1, max_length = 2048, description = "Selector: an expansion seed (IP, CIDR, hash or name)"),
        ("hops" = Option<u32>, Query, minimum = 1, maximum = 6, description = "Hops of the expansion (default 2)"),
        ("max_nodes" = Option<u32>, Query, minimum = 1, maximum = 2000, description = "Node budget of the expansion (default 200)"),
        ("include_shared" = Option<bool>, Query, description = "Expand shared certificates too (default false)"),
        ("tag" = Option<crate::params::TagText>, Query, description = "Selector: a tag"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep sightings last seen at or after this time"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep sightings first seen at or before this time"),
    ),
    responses(
        (status = 200, description = "The export, with `Content-Disposition: attachment`", content(
            (Vec<certhist_model::views::CofRow> = "application/x-ndjson"),
            (String = "text/csv"),
            (Object = "application/stix+json;version=2.1"),
            (Object = "application/json"),
        )),
        (status = 400, description = "Bad parameter (named in the message); not exactly one selector", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown certificate or expansion seed", body = crate::error::ErrorBody),
        (status = 503, description = "Statement timeout", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let config = &state.config;
    let mut p = Params::parse(raw.as_deref())?;
    let format_text = p.required("format")?;
    let format = ExportFormat::from_name(&format_text).ok_or_else(|| {
        bad_request(
            "format",
            format!(
                "{:?} is not one of ndjson, csv, stix, misp",
                shorten(&format_text)
            ),
        )
    })?;
    let ip = p.one("ip")?;
    let sha1 = p.one("sha1")?;
    let field = p.one("field")?;
    let q = p.one("q")?;
    let mode = p.one("match")?;
    let seed = p.one("seed")?;
    let hops = p.int("hops", 1, i64::from(config.max_expand_hops))?;
    let max_nodes = p.int(
        "max_nodes",
        1,
        i64::try_from(config.max_expand_nodes).unwrap_or(i64::MAX),
    )?;
    let include_shared = p.boolean("include_shared")?;
    let tag = p.one("tag")?;
    let window = p.window()?;
    p.finish()?;
    let given: Vec<&str> = SELECTORS
        .into_iter()
        .zip([&ip, &sha1, &field, &seed, &tag])
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| n)
        .collect();
    match given.as_slice() {
        [] => {
            return Err(bad_request(
                "ip",
                "no selector: give exactly one of ip, sha1, field (with q), seed, tag",
            ))
        }
        [_] => {}
        [_, second, ..] => {
            return Err(bad_request(
                second,
                format!(
                    "give exactly one of ip, sha1, field (with q), seed, tag (got {})",
                    given.join(", ")
                ),
            ))
        }
    }
    if q.is_some() && field.is_none() {
        return Err(bad_request("q", "only with `field`"));
    }
    if mode.is_some() && field.is_none() {
        return Err(bad_request("match", "only with `field`"));
    }
    if seed.is_none() {
        for (name, v) in [
            ("hops", hops.is_some()),
            ("max_nodes", max_nodes.is_some()),
            ("include_shared", include_shared.is_some()),
        ] {
            if v {
                return Err(bad_request(name, "only with `seed`"));
            }
        }
    }
    let selector = if let Some(ip) = ip {
        Selector::Ip(ip_or_cidr("ip", &ip, config)?)
    } else if let Some(sha1) = sha1 {
        Selector::Cert(cert_hash("sha1", &sha1)?)
    } else if let Some(field_text) = field {
        let field = read::search::parse_field(&field_text).map_err(|e| bad_request("field", e))?;
        let q = q.ok_or_else(|| bad_request("q", "missing (required with `field`)"))?;
        let mode = match mode {
            None => MatchMode::Auto,
            Some(m) => MatchMode::from_name(&m).ok_or_else(|| {
                bad_request(
                    "match",
                    format!(
                        "{:?} is not one of auto, exact, prefix, suffix, contains, regex",
                        shorten(&m)
                    ),
                )
            })?,
        };
        let pattern = MatchPattern::with_mode(mode, &q).map_err(|e| bad_request("q", e))?;
        search_selector(field, q, pattern)
    } else if let Some(seed_text) = seed {
        let seed = match Seed::parse(&seed_text) {
            Seed::Net(_) => Seed::Net(ip_or_cidr("seed", &seed_text, config)?),
            other => other,
        };
        Selector::Expand(ExpandRequest {
            seed_text,
            seed,
            hops: u32::try_from(
                hops.unwrap_or(DEFAULT_HOPS.min(i64::from(config.max_expand_hops))),
            )
            .unwrap_or(1),
            max_nodes: usize::try_from(max_nodes.unwrap_or(DEFAULT_MAX_NODES)).unwrap_or(1),
            shared_threshold: config.shared_threshold,
            include_shared: include_shared.unwrap_or(false),
            window,
        })
    } else {
        let tag = tag.unwrap_or_default();
        let tag = certhist_model::views::parse_tag(&tag).map_err(|e| bad_request("tag", e))?;
        Selector::Tag(tag)
    };
    let prepared = export::prepare(
        &state.store,
        ExportRequest {
            selector,
            window,
            format,
        },
    )
    .await?;
    let disposition = format!("attachment; filename=\"{}\"", prepared.file_name());
    let rx = export::spawn(state.store.clone(), prepared);
    let body = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn search_selector(field: SearchField, value: String, pattern: MatchPattern) -> Selector {
    Selector::Search {
        field,
        value,
        pattern,
    }
}
