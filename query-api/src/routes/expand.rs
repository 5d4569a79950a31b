//! `GET /api/v1/expand?seed=…&hops=N&max_nodes=M`: a bounded IP ↔ certificate graph around a
//! seed, with periods on the edges (`certhist_store::read::expand` does the work; the CLI's
//! `certhist query expand` calls the same function).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use certhist_model::views::ExpandGraph;
use certhist_store::read::{self, ExpandRequest, Seed};

use crate::error::ApiError;
use crate::params::{ip_or_cidr, Params};
use crate::{json, AppState};

/// Default hops.
const DEFAULT_HOPS: i64 = 2;
/// Default node budget.
const DEFAULT_MAX_NODES: i64 = 200;

/// Bounded graph expansion from a seed: an address, a CIDR block, a certificate hash, or a
/// name (exact match on CN / SAN). One hop goes IP → certificate or certificate → IP.
/// Certificates served by more than the shared threshold of addresses (CDN defaults, appliance
/// certificates) are marked `shared` and not expanded unless `include_shared=true`; the
/// response lists what was pruned.
#[utoipa::path(
    get,
    path = "/api/v1/expand",
    tag = "certhist",
    params(
        ("seed" = String, Query, min_length = 1, max_length = 2048, description = "IP, CIDR block, SHA-1 / SHA-256, or a name"),
        ("hops" = Option<u32>, Query, minimum = 1, maximum = 6, description = "Edges to follow from the seed (default 2)"),
        ("max_nodes" = Option<u32>, Query, minimum = 1, maximum = 2000, description = "Node budget (default 200)"),
        ("include_shared" = Option<bool>, Query, description = "Expand shared certificates too (default false)"),
        ("since" = Option<crate::params::Timestamp>, Query, description = "Keep sightings last seen at or after this time"),
        ("until" = Option<crate::params::Timestamp>, Query, description = "Keep sightings first seen at or before this time"),
    ),
    responses(
        (status = 200, description = "The graph", body = ExpandGraph),
        (status = 400, description = "Bad parameter", body = crate::error::ErrorBody),
        (status = 404, description = "The seed is unknown", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn expand(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let config = &state.config;
    let mut p = Params::parse(raw.as_deref())?;
    let seed_text = p.required("seed")?;
    let hops = p
        .int("hops", 1, i64::from(config.max_expand_hops))?
        .unwrap_or(DEFAULT_HOPS.min(i64::from(config.max_expand_hops)));
    let max_nodes = p
        .int(
            "max_nodes",
            1,
            i64::try_from(config.max_expand_nodes).unwrap_or(i64::MAX),
        )?
        .unwrap_or(DEFAULT_MAX_NODES);
    let include_shared = p.boolean("include_shared")?.unwrap_or(false);
    let window = p.window()?;
    p.finish()?;
    let seed = match Seed::parse(&seed_text) {
        // The server's bound on block sizes applies to seeds too.
        Seed::Net(_) => Seed::Net(ip_or_cidr("seed", &seed_text, config)?),
        other => other,
    };
    let request = ExpandRequest {
        seed_text,
        seed,
        hops: u32::try_from(hops).unwrap_or(1),
        max_nodes: usize::try_from(max_nodes).unwrap_or(1),
        shared_threshold: config.shared_threshold,
        include_shared,
        window,
    };
    let conn = state.read_conn().await?;
    Ok(json(&read::expand(&conn, &request).await?))
}
