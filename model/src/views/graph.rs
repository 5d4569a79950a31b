//! Infrastructure overlap and graph expansion: which certificates addresses shared and when,
//! and the bounded IP ↔ certificate graph around a seed.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::views::CertSummary;
use crate::{serde_hex, Sha1};

/// A period [start, end], both inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Period {
    /// Start.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub start: DateTime<Utc>,
    /// End.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub end: DateTime<Utc>,
}

impl Period {
    /// The intersection of periods given as (first seen, last seen); `None` when they do not
    /// all overlap (or there are none).
    pub fn intersection(
        periods: impl IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
    ) -> Option<Period> {
        let mut out: Option<Period> = None;
        for (first, last) in periods {
            out = Some(match out {
                None => Period {
                    start: first,
                    end: last,
                },
                Some(acc) => Period {
                    start: acc.start.max(first),
                    end: acc.end.min(last),
                },
            });
        }
        out.filter(|p| p.start <= p.end)
    }
}

/// An address's period with a shared certificate (over all ports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct IpPeriod {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// First sighting (all ports).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting (all ports).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Sightings (all ports).
    pub times_seen: i64,
}

/// A certificate shared by every requested address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct OverlapCertItem {
    /// Certificate SHA-1 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
    /// The certificate, when stored.
    pub cert: Option<CertSummary>,
    /// Each address's period, in address order.
    pub periods: Vec<IpPeriod>,
    /// When every address served it at the same time; `null` if never simultaneously.
    pub intersection: Option<Period>,
    /// Tags on the certificate (names only, sorted; always present, also when the certificate
    /// is not stored).
    pub tags: Vec<String>,
}

/// A certificate's period on a shared address (over all ports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct CertPeriod {
    /// Certificate SHA-1 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
    /// First sighting (all ports).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting (all ports).
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Sightings (all ports).
    pub times_seen: i64,
}

/// An address that served every requested certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct OverlapIpItem {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// Each certificate's period on it, in sha1 order.
    pub periods: Vec<CertPeriod>,
    /// When it served all of them; `null` if never all at once.
    pub intersection: Option<Period>,
    /// Tags on the address and on blocks containing it (names only, sorted; always present).
    pub tags: Vec<String>,
}

/// What a graph node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// An address.
    Ip,
    /// A certificate.
    Certificate,
}

/// A node of the expansion graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct GraphNode {
    /// `ip` or `certificate`.
    pub kind: NodeKind,
    /// The address, or the certificate SHA-1 in hex.
    pub id: String,
    /// Certificates: the subject CN, when the certificate is stored.
    pub label: Option<String>,
    /// Hops from the seed (0 = seed).
    pub hop: u32,
    /// Whether its neighbours were fetched.
    pub expanded: bool,
    /// Certificates: distinct addresses (counted up to the threshold + 1).
    pub distinct_ips: Option<i64>,
    /// Certificates: served by more than the threshold of addresses.
    pub shared: Option<bool>,
    /// Tags on the address (and blocks containing it) or on the certificate (names only,
    /// sorted; always present).
    pub tags: Vec<String>,
}

/// An IP ↔ certificate edge: the certificate was served by the address (over all ports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct GraphEdge {
    /// The address.
    #[schema(value_type = String, example = "192.0.2.10")]
    pub ip: IpAddr,
    /// Certificate SHA-1 (hex).
    #[serde(with = "serde_hex")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{40}$")]
    pub sha1: Sha1,
    /// Ports (0 = unknown).
    pub ports: Vec<u16>,
    /// First sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub first_seen: DateTime<Utc>,
    /// Last sighting.
    #[serde(serialize_with = "crate::serde_time::utc")]
    pub last_seen: DateTime<Utc>,
    /// Sightings summed over ports.
    pub times_seen: i64,
}

/// What the expansion left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Pruned {
    /// Shared certificates not expanded (SHA-1 hex).
    pub shared_certificates: Vec<String>,
    /// True when `max_nodes` (or the per-hop edge budget) stopped the expansion.
    pub node_limit_reached: bool,
    /// Nodes discovered at the last hop or cut by the limit, whose neighbours were not fetched.
    pub unexpanded_nodes: usize,
}

/// The bounded graph around a seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExpandGraph {
    /// The seed as given.
    pub seed: String,
    /// Hops asked for.
    pub hops: u32,
    /// Node budget.
    pub max_nodes: usize,
    /// Certificates above this many addresses are shared.
    pub shared_threshold: i64,
    /// Whether shared certificates were expanded.
    pub include_shared: bool,
    /// Nodes, in discovery order.
    pub nodes: Vec<GraphNode>,
    /// Edges.
    pub edges: Vec<GraphEdge>,
    /// What was left out.
    pub pruned: Pruned,
}
