//! `GET /api/v1/expand?seed=…&hops=N&max_nodes=M`: a bounded IP ↔ certificate graph around a
//! seed, with periods on the edges. Certificates served by more than the shared threshold of
//! addresses (CDN defaults, appliance certificates) are marked `shared` and not expanded unless
//! `include_shared=true`; the response lists what was pruned.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use certhist_model::{parse_cert_hash, Sha1};
use certhist_store::read::{self, MatchPattern, SearchField, MAX_LIMIT};
use certhist_store::read_api::{self, Edge};
use certhist_store::Conn;
use ipnet::IpNet;

use crate::dto::{EdgeDto, ExpandDoc, NodeDto, Pruned};
use crate::error::{not_found, shorten, ApiError};
use crate::params::{ip_or_cidr, Params};
use crate::{json, AppState};

/// Default hops.
const DEFAULT_HOPS: i64 = 2;
/// Default node budget.
const DEFAULT_MAX_NODES: i64 = 200;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    Ip(IpAddr),
    Cert(Sha1),
}

struct Node {
    key: Key,
    hop: u32,
    expanded: bool,
    distinct_ips: Option<i64>,
    shared: Option<bool>,
}

struct Graph {
    nodes: Vec<Node>,
    index: HashMap<Key, usize>,
    edges: Vec<Edge>,
    edge_keys: HashSet<(IpAddr, Sha1)>,
    max_nodes: usize,
    pruned: Pruned,
}

impl Graph {
    /// Adds a node; false when the budget is exhausted (and says so in `pruned`).
    fn add(&mut self, key: Key, hop: u32) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        if self.nodes.len() >= self.max_nodes {
            self.pruned.node_limit_reached = true;
            return false;
        }
        self.index.insert(key, self.nodes.len());
        self.nodes.push(Node {
            key,
            hop,
            expanded: false,
            distinct_ips: None,
            shared: None,
        });
        true
    }

    fn add_edge(&mut self, e: &Edge) {
        let both =
            self.index.contains_key(&Key::Ip(e.ip)) && self.index.contains_key(&Key::Cert(e.sha1));
        if both && self.edge_keys.insert((e.ip, e.sha1)) {
            self.edges.push(e.clone());
        }
    }

    fn mark_expanded(&mut self, key: Key) {
        if let Some(&i) = self.index.get(&key) {
            if let Some(n) = self.nodes.get_mut(i) {
                n.expanded = true;
            }
        }
    }
}

/// Bounded graph expansion from a seed: an address, a CIDR block, a certificate hash, or a
/// name (exact match on CN / SAN). One hop goes IP → certificate or certificate → IP.
#[utoipa::path(
    get,
    path = "/api/v1/expand",
    tag = "certhist",
    params(
        ("seed" = String, Query, description = "IP, CIDR block, SHA-1 / SHA-256, or a name"),
        ("hops" = Option<u32>, Query, description = "Edges to follow from the seed (default 2)"),
        ("max_nodes" = Option<u32>, Query, description = "Node budget (default 200)"),
        ("include_shared" = Option<bool>, Query, description = "Expand shared certificates too (default false)"),
        ("since" = Option<String>, Query, description = "Keep sightings last seen at or after this time"),
        ("until" = Option<String>, Query, description = "Keep sightings first seen at or before this time"),
    ),
    responses(
        (status = 200, description = "The graph", body = ExpandDoc),
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
    let seed = p.required("seed")?;
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
    let hops = u32::try_from(hops).unwrap_or(1);
    let max_nodes = usize::try_from(max_nodes).unwrap_or(1);
    let threshold = config.shared_threshold;
    let conn = state.conn().await?;

    let mut g = Graph {
        nodes: Vec::new(),
        index: HashMap::new(),
        edges: Vec::new(),
        edge_keys: HashSet::new(),
        max_nodes,
        pruned: Pruned::default(),
    };
    let (mut frontier_ips, seed_certs) = seeds(&conn, &seed, &state, max_nodes, &mut g).await?;
    let mut frontier_certs = classify(&conn, &mut g, seed_certs, threshold, include_shared).await?;
    let edge_budget = i64::try_from(max_nodes.saturating_mul(4))
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);

    for hop in 1..=hops {
        let mut next_ips = Vec::new();
        let mut new_certs = Vec::new();
        if !frontier_ips.is_empty() {
            let edges =
                read_api::edges_from_ips(&conn, &frontier_ips, &window, edge_budget).await?;
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
                g.mark_expanded(Key::Ip(*ip));
            }
        }
        if !frontier_certs.is_empty() {
            let edges =
                read_api::edges_from_certs(&conn, &frontier_certs, &window, edge_budget).await?;
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
                g.mark_expanded(Key::Cert(*sha1));
            }
        }
        frontier_certs = classify(&conn, &mut g, new_certs, threshold, include_shared).await?;
        frontier_ips = next_ips;
        if frontier_ips.is_empty() && frontier_certs.is_empty() {
            break;
        }
    }
    let shared: HashSet<&String> = g.pruned.shared_certificates.iter().collect();
    let unexpanded = g
        .nodes
        .iter()
        .filter(|n| !n.expanded)
        .filter(|n| match n.key {
            Key::Cert(s) => !shared.contains(&hex::encode(s)),
            Key::Ip(_) => true,
        })
        .count();
    let nodes = g
        .nodes
        .iter()
        .map(|n| NodeDto {
            kind: match n.key {
                Key::Ip(_) => "ip".to_owned(),
                Key::Cert(_) => "certificate".to_owned(),
            },
            id: match n.key {
                Key::Ip(ip) => ip.to_string(),
                Key::Cert(s) => hex::encode(s),
            },
            hop: n.hop,
            expanded: n.expanded,
            distinct_ips: n.distinct_ips,
            shared: n.shared,
        })
        .collect();
    let mut pruned = std::mem::take(&mut g.pruned);
    pruned.unexpanded_nodes = unexpanded;
    Ok(json(&ExpandDoc {
        seed,
        hops,
        max_nodes,
        shared_threshold: threshold,
        include_shared,
        nodes,
        edges: g.edges.iter().map(EdgeDto::from).collect(),
        pruned,
    }))
}

/// Reads the seed into starting addresses and certificates (added to the graph at hop 0).
async fn seeds(
    conn: &Conn,
    seed: &str,
    state: &AppState,
    max_nodes: usize,
    g: &mut Graph,
) -> Result<(Vec<IpAddr>, Vec<Sha1>), ApiError> {
    let t = seed.trim();
    let looks_ip = t.parse::<IpAddr>().is_ok() || t.parse::<IpNet>().is_ok();
    if looks_ip {
        let net = ip_or_cidr("seed", t, &state.config)?;
        let ips = if net.prefix_len() == net.max_prefix_len() {
            vec![net.addr()]
        } else {
            let limit = i64::try_from(max_nodes)
                .unwrap_or(MAX_LIMIT)
                .clamp(1, MAX_LIMIT);
            let ips = read_api::ips_in_net(conn, &net, limit).await?;
            if ips.is_empty() {
                return Err(not_found(format!("no address in {net} was observed")));
            }
            ips
        };
        let ips: Vec<IpAddr> = ips
            .into_iter()
            .filter(|ip| g.add(Key::Ip(*ip), 0))
            .collect();
        return Ok((ips, Vec::new()));
    }
    if let Ok(hash) = parse_cert_hash(t) {
        let Some(resolved) = read_api::resolve_hash(conn, &hash).await? else {
            return Err(not_found(format!(
                "no certificate with hash {hash} is stored or observed"
            )));
        };
        g.add(Key::Cert(resolved.sha1), 0);
        return Ok((Vec::new(), vec![resolved.sha1]));
    }
    let limit = i64::try_from(max_nodes)
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    let hits = read::search(
        conn,
        SearchField::Name,
        &MatchPattern::Exact(t.to_owned()),
        None,
        limit,
    )
    .await?;
    if hits.is_empty() {
        return Err(not_found(format!(
            "no certificate has the name {:?}",
            shorten(t)
        )));
    }
    let certs: Vec<Sha1> = hits
        .iter()
        .map(|h| h.cert.sha1)
        .filter(|s| g.add(Key::Cert(*s), 0))
        .collect();
    Ok((Vec::new(), certs))
}

/// Counts the addresses of new certificate nodes (up to threshold + 1), marks the shared ones
/// and returns those to expand next.
async fn classify(
    conn: &Conn,
    g: &mut Graph,
    certs: Vec<Sha1>,
    threshold: i64,
    include_shared: bool,
) -> Result<Vec<Sha1>, ApiError> {
    let counts = read_api::distinct_ip_counts(conn, &certs, threshold.saturating_add(1)).await?;
    let mut next = Vec::with_capacity(certs.len());
    for sha1 in certs {
        let n = counts.get(&sha1).copied().unwrap_or(0);
        let shared = n > threshold;
        if let Some(&i) = g.index.get(&Key::Cert(sha1)) {
            if let Some(node) = g.nodes.get_mut(i) {
                node.distinct_ips = Some(n);
                node.shared = Some(shared);
            }
        }
        if shared && !include_shared {
            g.pruned.shared_certificates.push(hex::encode(sha1));
        } else {
            next.push(sha1);
        }
    }
    Ok(next)
}
