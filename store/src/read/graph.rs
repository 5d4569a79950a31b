//! Infrastructure overlap and graph expansion.
//!
//! - [`overlap_by_ips`]: which certificates every given address served, and when their periods
//!   overlapped; [`overlap_by_certs`]: which addresses served every given certificate.
//! - [`expand`]: a bounded breadth-first expansion IP ↔ certificate from a seed. Certificates
//!   served by more than the shared threshold of addresses (CDN defaults, appliance
//!   certificates) are marked `shared` and not expanded unless asked; what was left out is
//!   listed. Commonness is computed at query time, never stored: the distinct addresses of one
//!   certificate, counted up to `cap` from the reverse index (`sightings_cert_id_idx`
//!   (cert_id, ip), schema V7: addresses in order, so the count stops at `cap` however common
//!   the certificate).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use certhist_model::views::{
    CertPeriod, ExpandGraph, GraphEdge, GraphNode, IpPeriod, NodeKind, OverlapCertItem,
    OverlapIpItem, Period, Pruned,
};
use certhist_model::{parse_cert_hash, CertHash, Sha1};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use tokio_postgres::types::Type;

use super::search::{search, MatchPattern};
use super::{
    check_limit, fixed, ip::ips_in_net, port_from, resolve_hash, shorten, summary_from,
    SearchField, TimeWindow, MAX_LIMIT,
};
use crate::stage::{timed, timed_sync, Stage};
use crate::{Conn, StoreError};

pub(crate) const OVERLAP_BY_IPS: &str = include_str!("overlap_by_ips.sql");
const OVERLAP_BY_CERTS: &str = include_str!("overlap_by_certs.sql");
const EDGES_FROM_IPS: &str = include_str!("edges_from_ips.sql");
const EDGES_FROM_CERTS: &str = include_str!("edges_from_certs.sql");

/// Certificates served by every address in `ips` (distinct; at least 2) within `window`, in
/// sha1 order after `after`, each with every address's period and their intersection.
pub async fn overlap_by_ips(
    conn: &Conn,
    ips: &[IpAddr],
    window: &TimeWindow,
    after: Option<&Sha1>,
    limit: i64,
) -> Result<Vec<OverlapCertItem>, StoreError> {
    let limit = check_limit(limit)?;
    let n = i64::try_from(ips.len()).unwrap_or(i64::MAX);
    let after = after.map(|s| s.to_vec());
    let rows = timed(
        Stage::Query,
        conn.client().query_typed(
            OVERLAP_BY_IPS,
            &[
                (&ips, Type::INET_ARRAY),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&n, Type::INT8),
                (&after, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        ),
    )
    .await?;
    let mut items = timed_sync(Stage::Decode, || {
        rows.iter()
            .map(|r| {
                let ips: Vec<IpAddr> = r.get(1);
                let periods: Vec<IpPeriod> = member_periods(ips, r.get(2), r.get(3), r.get(4))
                    .map(|(ip, first_seen, last_seen, times_seen)| IpPeriod {
                        ip,
                        first_seen,
                        last_seen,
                        times_seen,
                    })
                    .collect();
                Ok(OverlapCertItem {
                    sha1: fixed(r.get::<_, Vec<u8>>(0))?,
                    intersection: Period::intersection(
                        periods.iter().map(|p| (p.first_seen, p.last_seen)),
                    ),
                    periods,
                    cert: if r.get::<_, bool>(5) {
                        Some(summary_from(r, 6)?)
                    } else {
                        None
                    },
                    tags: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    let sha1s: Vec<Sha1> = items.iter().map(|i| i.sha1).collect();
    let index = super::tags::tags_touching(conn, &[], &sha1s, &[]).await?;
    if !index.is_empty() {
        for item in &mut items {
            item.tags = index.cert(&item.sha1);
            if let Some(c) = item.cert.as_mut() {
                c.tags = item.tags.clone();
            }
        }
    }
    Ok(items)
}

/// Addresses that served every certificate in `sha1s` (distinct; at least 2) within `window`,
/// in address order after `after`, each with every certificate's period and their
/// intersection.
pub async fn overlap_by_certs(
    conn: &Conn,
    sha1s: &[Sha1],
    window: &TimeWindow,
    after: Option<IpAddr>,
    limit: i64,
) -> Result<Vec<OverlapIpItem>, StoreError> {
    let limit = check_limit(limit)?;
    let n = i64::try_from(sha1s.len()).unwrap_or(i64::MAX);
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = timed(
        Stage::Query,
        conn.client().query_typed(
            OVERLAP_BY_CERTS,
            &[
                (&keys, Type::BYTEA_ARRAY),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&n, Type::INT8),
                (&after, Type::INET),
                (&limit, Type::INT8),
            ],
        ),
    )
    .await?;
    let mut items = timed_sync(Stage::Decode, || {
        rows.iter()
            .map(|r| {
                let sha1s = r
                    .get::<_, Vec<Vec<u8>>>(1)
                    .into_iter()
                    .map(fixed)
                    .collect::<Result<Vec<Sha1>, _>>()?;
                let periods: Vec<CertPeriod> = member_periods(sha1s, r.get(2), r.get(3), r.get(4))
                    .map(|(sha1, first_seen, last_seen, times_seen)| CertPeriod {
                        sha1,
                        first_seen,
                        last_seen,
                        times_seen,
                    })
                    .collect();
                Ok(OverlapIpItem {
                    ip: r.get(0),
                    intersection: Period::intersection(
                        periods.iter().map(|p| (p.first_seen, p.last_seen)),
                    ),
                    periods,
                    tags: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    let ips: Vec<IpAddr> = items.iter().map(|i| i.ip).collect();
    let index = super::tags::tags_touching(conn, &ips, &[], &[]).await?;
    if !index.is_empty() {
        for item in &mut items {
            item.tags = index.ip(&item.ip);
        }
    }
    Ok(items)
}

fn member_periods<K>(
    keys: Vec<K>,
    firsts: Vec<DateTime<Utc>>,
    lasts: Vec<DateTime<Utc>>,
    counts: Vec<i64>,
) -> impl Iterator<Item = (K, DateTime<Utc>, DateTime<Utc>, i64)> {
    keys.into_iter()
        .zip(firsts)
        .zip(lasts)
        .zip(counts)
        .map(|(((k, first), last), count)| (k, first, last, count))
}

/// Resolves overlap members given as SHA-1 or SHA-256 to their SHA-1 keys, sorted and without
/// duplicates. [`StoreError::NotFound`] names the first hash neither stored nor observed.
pub async fn resolve_members(conn: &Conn, hashes: &[CertHash]) -> Result<Vec<Sha1>, StoreError> {
    let mut keys = Vec::with_capacity(hashes.len());
    for hash in hashes {
        let Some(resolved) = resolve_hash(conn, hash).await? else {
            return Err(StoreError::NotFound(format!(
                "no certificate with hash {hash} is stored or observed"
            )));
        };
        keys.push(resolved.sha1);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

fn edge_from(r: &tokio_postgres::Row) -> Result<GraphEdge, StoreError> {
    let ports: Vec<i32> = r.get(2);
    Ok(GraphEdge {
        ip: r.get(0),
        sha1: fixed(r.get::<_, Vec<u8>>(1))?,
        ports: ports.into_iter().map(port_from).collect(),
        first_seen: r.get(3),
        last_seen: r.get(4),
        times_seen: r.get(5),
    })
}

/// Edges from these addresses to the certificates they served, in (ip, sha1) order; at most
/// `limit` rows.
pub async fn edges_from_ips(
    conn: &Conn,
    ips: &[IpAddr],
    window: &TimeWindow,
    limit: i64,
) -> Result<Vec<GraphEdge>, StoreError> {
    let limit = check_limit(limit)?;
    let rows = conn
        .client()
        .query_typed(
            EDGES_FROM_IPS,
            &[
                (&ips, Type::INET_ARRAY),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(edge_from).collect()
}

/// Edges from these certificates to the addresses that served them, in (sha1, ip) order; at
/// most `limit` rows.
pub async fn edges_from_certs(
    conn: &Conn,
    sha1s: &[Sha1],
    window: &TimeWindow,
    limit: i64,
) -> Result<Vec<GraphEdge>, StoreError> {
    let limit = check_limit(limit)?;
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            EDGES_FROM_CERTS,
            &[
                (&keys, Type::BYTEA_ARRAY),
                (&window.since, Type::TIMESTAMPTZ),
                (&window.until, Type::TIMESTAMPTZ),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(edge_from).collect()
}

/// Distinct addresses that served each certificate, counting at most `cap` per certificate (a
/// result equal to `cap` means "at least `cap`"). Certificates never observed count 0.
pub async fn distinct_ip_counts(
    conn: &Conn,
    sha1s: &[Sha1],
    cap: i64,
) -> Result<HashMap<Sha1, i64>, StoreError> {
    if sha1s.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = timed(
        Stage::Query,
        conn.client().query_typed(
            "SELECT s.sha1,
                    (SELECT count(*) FROM (SELECT DISTINCT o.ip FROM sightings o
                                           WHERE o.cert_id = (SELECT k.id FROM cert_keys k
                                                              WHERE k.sha1 = s.sha1)
                                           LIMIT $2) d)
             FROM unnest($1::bytea[]) AS s(sha1)",
            &[(&keys, Type::BYTEA_ARRAY), (&cap.max(1), Type::INT8)],
        ),
    )
    .await?;
    rows.iter()
        .map(|r| Ok((fixed(r.get::<_, Vec<u8>>(0))?, r.get::<_, i64>(1))))
        .collect()
}

/// Subject CNs of those of `sha1s` that are stored.
async fn subject_cns(
    conn: &Conn,
    sha1s: &[Sha1],
) -> Result<Vec<(Sha1, Option<String>)>, StoreError> {
    if sha1s.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<Vec<u8>> = sha1s.iter().map(|s| s.to_vec()).collect();
    let rows = conn
        .client()
        .query_typed(
            "SELECT sha1, subject_cn FROM certificates WHERE sha1 = ANY($1)",
            &[(&keys, Type::BYTEA_ARRAY)],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((fixed(r.get::<_, Vec<u8>>(0))?, r.get(1))))
        .collect()
}

/// Where an expansion starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seed {
    /// An address (a /32 or /128) or a block: its observed addresses.
    Net(IpNet),
    /// A certificate by SHA-1 or SHA-256.
    Hash(CertHash),
    /// The certificates having this name (exact match on CN or SAN).
    Name(String),
}

impl Seed {
    /// Reads a seed: an address or CIDR block, else a SHA-1 / SHA-256 in hex, else a name.
    pub fn parse(text: &str) -> Seed {
        let t = text.trim();
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Seed::Net(IpNet::from(ip));
        }
        if let Ok(net) = t.parse::<IpNet>() {
            return Seed::Net(net.trunc());
        }
        match parse_cert_hash(t) {
            Ok(hash) => Seed::Hash(hash),
            Err(_) => Seed::Name(t.to_owned()),
        }
    }
}

/// What [`expand`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandRequest {
    /// The seed as the user gave it (echoed in the graph).
    pub seed_text: String,
    /// The seed.
    pub seed: Seed,
    /// Edges to follow from the seed.
    pub hops: u32,
    /// Node budget.
    pub max_nodes: usize,
    /// Certificates served by more than this many addresses are shared.
    pub shared_threshold: i64,
    /// Expand shared certificates too.
    pub include_shared: bool,
    /// Only sightings overlapping this window.
    pub window: TimeWindow,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    Ip(IpAddr),
    Cert(Sha1),
}

/// The graph being built: nodes in discovery order, edges between known nodes only.
struct Graph {
    nodes: Vec<GraphNode>,
    index: HashMap<Key, usize>,
    edges: Vec<GraphEdge>,
    edge_keys: HashSet<(IpAddr, Sha1)>,
    max_nodes: usize,
    pruned: Pruned,
}

impl Graph {
    /// Adds a node; false when it is known or the budget is exhausted (and says so in `pruned`).
    fn add(&mut self, key: Key, hop: u32) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        if self.nodes.len() >= self.max_nodes {
            self.pruned.node_limit_reached = true;
            return false;
        }
        self.index.insert(key, self.nodes.len());
        self.nodes.push(GraphNode {
            kind: match key {
                Key::Ip(_) => NodeKind::Ip,
                Key::Cert(_) => NodeKind::Certificate,
            },
            id: match key {
                Key::Ip(ip) => ip.to_string(),
                Key::Cert(s) => hex::encode(s),
            },
            label: None,
            hop,
            expanded: false,
            distinct_ips: None,
            shared: None,
            tags: Vec::new(),
        });
        true
    }

    fn node_mut(&mut self, key: Key) -> Option<&mut GraphNode> {
        let i = *self.index.get(&key)?;
        self.nodes.get_mut(i)
    }

    fn add_edge(&mut self, e: &GraphEdge) {
        let both =
            self.index.contains_key(&Key::Ip(e.ip)) && self.index.contains_key(&Key::Cert(e.sha1));
        if both && self.edge_keys.insert((e.ip, e.sha1)) {
            self.edges.push(e.clone());
        }
    }
}

/// Bounded graph expansion from a seed. One hop goes IP → certificate or certificate → IP;
/// each hop fetches the edges of the whole frontier in one statement (at most 4 × `max_nodes`
/// edges; reaching that budget counts as reaching the node limit). [`StoreError::NotFound`]
/// when the seed is unknown.
pub async fn expand(conn: &Conn, req: &ExpandRequest) -> Result<ExpandGraph, StoreError> {
    let max_nodes = req.max_nodes.max(1);
    let mut g = Graph {
        nodes: Vec::new(),
        index: HashMap::new(),
        edges: Vec::new(),
        edge_keys: HashSet::new(),
        max_nodes,
        pruned: Pruned::default(),
    };
    let (mut frontier_ips, seed_certs) = seeds(conn, &req.seed, max_nodes, &mut g).await?;
    let mut frontier_certs = classify(conn, &mut g, seed_certs, req).await?;
    let edge_budget = i64::try_from(max_nodes.saturating_mul(4))
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    for hop in 1..=req.hops {
        let mut next_ips = Vec::new();
        let mut new_certs = Vec::new();
        if !frontier_ips.is_empty() {
            let edges = edges_from_ips(conn, &frontier_ips, &req.window, edge_budget).await?;
            if i64::try_from(edges.len()).unwrap_or(i64::MAX) >= edge_budget {
                g.pruned.node_limit_reached = true;
            }
            for e in &edges {
                if g.add(Key::Cert(e.sha1), hop) {
                    new_certs.push(e.sha1);
                }
                g.add_edge(e);
            }
            for ip in &frontier_ips {
                if let Some(n) = g.node_mut(Key::Ip(*ip)) {
                    n.expanded = true;
                }
            }
        }
        if !frontier_certs.is_empty() {
            let edges = edges_from_certs(conn, &frontier_certs, &req.window, edge_budget).await?;
            if i64::try_from(edges.len()).unwrap_or(i64::MAX) >= edge_budget {
                g.pruned.node_limit_reached = true;
            }
            for e in &edges {
                if g.add(Key::Ip(e.ip), hop) {
                    next_ips.push(e.ip);
                }
                g.add_edge(e);
            }
            for sha1 in &frontier_certs {
                if let Some(n) = g.node_mut(Key::Cert(*sha1)) {
                    n.expanded = true;
                }
            }
        }
        frontier_certs = classify(conn, &mut g, new_certs, req).await?;
        frontier_ips = next_ips;
        if frontier_ips.is_empty() && frontier_certs.is_empty() {
            break;
        }
    }
    let shared: HashSet<&str> = g
        .pruned
        .shared_certificates
        .iter()
        .map(String::as_str)
        .collect();
    let unexpanded = g
        .nodes
        .iter()
        .filter(|n| !n.expanded)
        .filter(|n| n.kind == NodeKind::Ip || !shared.contains(n.id.as_str()))
        .count();
    // The nodes' tags: one statement for the whole graph.
    let mut node_ips = Vec::new();
    let mut node_certs = Vec::new();
    for key in g.index.keys() {
        match key {
            Key::Ip(ip) => node_ips.push(*ip),
            Key::Cert(sha1) => node_certs.push(*sha1),
        }
    }
    let index = super::tags::tags_touching(conn, &node_ips, &node_certs, &[]).await?;
    if !index.is_empty() {
        for (key, at) in &g.index {
            if let Some(node) = g.nodes.get_mut(*at) {
                node.tags = match key {
                    Key::Ip(ip) => index.ip(ip),
                    Key::Cert(sha1) => index.cert(sha1),
                };
            }
        }
    }
    let mut pruned = std::mem::take(&mut g.pruned);
    pruned.unexpanded_nodes = unexpanded;
    Ok(ExpandGraph {
        seed: req.seed_text.clone(),
        hops: req.hops,
        max_nodes,
        shared_threshold: req.shared_threshold,
        include_shared: req.include_shared,
        nodes: g.nodes,
        edges: g.edges,
        pruned,
    })
}

/// Reads the seed into starting addresses and certificates (added to the graph at hop 0).
async fn seeds(
    conn: &Conn,
    seed: &Seed,
    max_nodes: usize,
    g: &mut Graph,
) -> Result<(Vec<IpAddr>, Vec<Sha1>), StoreError> {
    let limit = i64::try_from(max_nodes)
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    match seed {
        Seed::Net(net) => {
            let ips = if net.prefix_len() == net.max_prefix_len() {
                vec![net.addr()]
            } else {
                let ips = ips_in_net(conn, net, limit).await?;
                if ips.is_empty() {
                    return Err(StoreError::NotFound(format!(
                        "no address in {net} was observed"
                    )));
                }
                ips
            };
            let ips = ips
                .into_iter()
                .filter(|ip| g.add(Key::Ip(*ip), 0))
                .collect();
            Ok((ips, Vec::new()))
        }
        Seed::Hash(hash) => {
            let Some(resolved) = resolve_hash(conn, hash).await? else {
                return Err(StoreError::NotFound(format!(
                    "no certificate with hash {hash} is stored or observed"
                )));
            };
            g.add(Key::Cert(resolved.sha1), 0);
            Ok((Vec::new(), vec![resolved.sha1]))
        }
        Seed::Name(name) => {
            let hits = search(
                conn,
                SearchField::Name,
                &MatchPattern::Exact(name.clone()),
                None,
                limit,
            )
            .await?;
            if hits.is_empty() {
                return Err(StoreError::NotFound(format!(
                    "no certificate has the name {:?}",
                    shorten(name)
                )));
            }
            let certs = hits
                .iter()
                .map(|h| h.cert.sha1)
                .filter(|s| g.add(Key::Cert(*s), 0))
                .collect();
            Ok((Vec::new(), certs))
        }
    }
}

/// Counts the addresses of new certificate nodes (up to threshold + 1), marks the shared ones
/// and returns those to expand next.
async fn classify(
    conn: &Conn,
    g: &mut Graph,
    certs: Vec<Sha1>,
    req: &ExpandRequest,
) -> Result<Vec<Sha1>, StoreError> {
    let threshold = req.shared_threshold;
    let counts = distinct_ip_counts(conn, &certs, threshold.saturating_add(1)).await?;
    for (sha1, cn) in subject_cns(conn, &certs).await? {
        if let Some(node) = g.node_mut(Key::Cert(sha1)) {
            node.label = cn;
        }
    }
    let mut next = Vec::with_capacity(certs.len());
    for sha1 in certs {
        let n = counts.get(&sha1).copied().unwrap_or(0);
        let shared = n > threshold;
        if let Some(node) = g.node_mut(Key::Cert(sha1)) {
            node.distinct_ips = Some(n);
            node.shared = Some(shared);
        }
        if shared && !req.include_shared {
            g.pruned.shared_certificates.push(hex::encode(sha1));
        } else {
            next.push(sha1);
        }
    }
    Ok(next)
}
