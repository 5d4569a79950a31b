//! Exports of a lookup — an address's or block's history, a reverse search, a field search, an
//! expansion graph, a tag — as NDJSON (the passive-SSL common output format), CSV, a STIX 2.1
//! bundle or a MISP event. `GET /api/v1/export` and `certhist export` both run [`prepare`] then
//! [`spawn`], so they write the same bytes.
//!
//! Streamed, no row cap: the rows are read page by page with the keyset key through the same
//! `certhist_store::read` functions as the API routes (one pooled connection per page, under
//! the API's statement timeout when the API runs it), and each page is serialised and sent
//! down a bounded channel before the next is read. The STIX bundle and the MISP event are
//! written incrementally (envelope, then objects, then the closing brackets). Memory stays
//! bounded by the page, plus: the certificates already written (STIX, MISP: 20 bytes each),
//! for MISP exports of an address, block, graph or tag the `seen-by` references of each
//! certificate (16 bytes per row) until the `x509` objects are written after the attributes (a
//! reverse or field search reads each certificate's hosts again instead), and for a tag export
//! the rows written (targets may overlap).

mod ids;
mod misp;
mod rows;
mod stix;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use certhist_model::views::{CofRow, ExportFormat, SearchField};
use certhist_model::{CertHash, Sha1};
use certhist_store::read::{self, CertDetails, ExpandRequest, MatchPattern, TimeWindow};
use certhist_store::{Store, StoreError};
use ipnet::IpNet;
use tokio::sync::mpsc;

pub use rows::Sighting;
use rows::{Job, Rows};

/// Rows read per statement.
pub const PAGE: i64 = 1000;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;

/// What to export.
#[derive(Clone, Debug)]
pub enum Selector {
    /// The history of an address or block.
    Ip(IpNet),
    /// The hosts of a certificate (reverse search), by SHA-1 or SHA-256.
    Cert(CertHash),
    /// The hosts of every certificate whose field matches.
    Search {
        /// The field.
        field: SearchField,
        /// The value as given.
        value: String,
        /// The value read under its match mode.
        pattern: MatchPattern,
    },
    /// The sightings on the edges of the bounded graph around a seed.
    Expand(ExpandRequest),
    /// Everything carrying a tag: addresses and blocks (their history), certificates (their
    /// hosts), names (the hosts of the certificates with the name).
    Tag(String),
}

impl Selector {
    /// The selector's kind, for file names (never user text).
    pub fn kind(&self) -> &'static str {
        match self {
            Selector::Ip(_) => "ip",
            Selector::Cert(_) => "cert",
            Selector::Search { .. } => "search",
            Selector::Expand(_) => "expand",
            Selector::Tag(_) => "tag",
        }
    }

    /// The selector in words (`ip 203.0.113.5`, `search name *.example.com`): the MISP event's
    /// `info`, and a seed of the bundle / event ids (the CLI and the API describe a selector
    /// the same way).
    pub fn describe(&self) -> String {
        match self {
            Selector::Ip(net) => {
                if net.prefix_len() == net.max_prefix_len() {
                    format!("ip {}", net.addr())
                } else {
                    format!("ip {net}")
                }
            }
            Selector::Cert(hash) => match hash {
                CertHash::Sha1(h) => format!("cert {}", certhist_model::hex_lower(h)),
                CertHash::Sha256(h) => format!("cert {}", certhist_model::hex_lower(h)),
            },
            Selector::Search { field, value, .. } => format!("search {field} {value}"),
            Selector::Expand(req) => format!("expand {}", req.seed_text),
            Selector::Tag(tag) => format!("tag {tag}"),
        }
    }
}

/// An export request.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// What.
    pub selector: Selector,
    /// Only sightings overlapping this window.
    pub window: TimeWindow,
    /// How.
    pub format: ExportFormat,
}

/// A request checked against the database: ready to stream.
#[derive(Debug)]
pub struct Prepared {
    request: ExportRequest,
    rows: Rows,
}

impl Prepared {
    /// The format.
    pub fn format(&self) -> ExportFormat {
        self.request.format
    }

    /// A file name for the export (`certhist-ip.stix.json`).
    pub fn file_name(&self) -> String {
        format!(
            "certhist-{}.{}",
            self.request.selector.kind(),
            self.request.format.extension()
        )
    }
}

/// Checks the request: resolves a certificate hash ([`StoreError::NotFound`] when unknown) and
/// runs a graph expansion (bounded by its node budget; [`StoreError::NotFound`] for an unknown
/// seed), so that these errors come before any byte is written.
pub async fn prepare(store: &Store, request: ExportRequest) -> Result<Prepared, StoreError> {
    let conn = store.conn().await?;
    let (jobs, remember) = match &request.selector {
        Selector::Ip(net) => (
            vec![Job::Net {
                net: *net,
                only: None,
                after: None,
            }],
            false,
        ),
        Selector::Cert(hash) => {
            let resolved = read::resolve_hash(&conn, hash)
                .await?
                .ok_or_else(|| StoreError::NotFound("no certificate with this hash".to_owned()))?;
            (
                vec![Job::Hosts {
                    sha1: resolved.sha1,
                    cert_tags: None,
                    after: None,
                }],
                false,
            )
        }
        Selector::Search { field, pattern, .. } => (
            vec![Job::Search {
                field: *field,
                pattern: pattern.clone(),
                after: None,
            }],
            false,
        ),
        Selector::Expand(req) => {
            let graph = read::expand(&conn, req).await?;
            let certs: HashSet<Sha1> = graph.edges.iter().map(|e| e.sha1).collect();
            let certs = std::sync::Arc::new(certs);
            // Each address of an edge, in address order: its history restricted to the
            // graph's certificates.
            let ips: std::collections::BTreeSet<std::net::IpAddr> =
                graph.edges.iter().map(|e| e.ip).collect();
            let jobs = ips
                .into_iter()
                .rev()
                .map(|ip| Job::Net {
                    net: IpNet::from(ip),
                    only: Some(certs.clone()),
                    after: None,
                })
                .collect();
            (jobs, false)
        }
        Selector::Tag(tag) => {
            let pattern = MatchPattern::with_mode(certhist_model::views::MatchMode::Exact, tag)?;
            (
                vec![Job::Tagged {
                    pattern,
                    after: None,
                }],
                true,
            )
        }
    };
    let rows = Rows::new(jobs, request.window, remember);
    Ok(Prepared { request, rows })
}

/// Streams the export: chunks of the output in order, then the end of the channel. An error
/// is the last item. Dropping the receiver stops the export at its next chunk.
pub fn spawn(store: Store, prepared: Prepared) -> mpsc::Receiver<Result<Bytes, StoreError>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let err_tx = tx.clone();
        if let Err(e) = run(store, prepared, tx).await {
            let _ = err_tx.send(Err(e)).await;
        }
    });
    rx
}

/// The receiver went away.
struct Gone;

/// Sends `out` when it holds at least `min` bytes.
async fn flush(
    tx: &mpsc::Sender<Result<Bytes, StoreError>>,
    out: &mut Vec<u8>,
    min: usize,
) -> Result<(), Gone> {
    if out.len() >= min && !out.is_empty() {
        let chunk = Bytes::from(std::mem::take(out));
        tx.send(Ok(chunk)).await.map_err(|_| Gone)?;
    }
    Ok(())
}

/// A certificate as the STIX and MISP writers need it.
#[derive(Clone, Debug)]
pub(crate) struct CertInfo {
    pub(crate) details: Option<CertDetails>,
    pub(crate) der: Option<Vec<u8>>,
    pub(crate) dns_names: Vec<String>,
}

/// Reads the details, DER and DNS names of `sha1s` (missing certificates get an empty
/// [`CertInfo`]: only their SHA-1 is known).
async fn cert_infos(
    store: &Store,
    sha1s: &[Sha1],
    with_names: bool,
) -> Result<HashMap<Sha1, CertInfo>, StoreError> {
    let mut out: HashMap<Sha1, CertInfo> = sha1s
        .iter()
        .map(|s| {
            (
                *s,
                CertInfo {
                    details: None,
                    der: None,
                    dns_names: Vec::new(),
                },
            )
        })
        .collect();
    if sha1s.is_empty() {
        return Ok(out);
    }
    let conn = store.conn().await?;
    for d in read::details_batch(&conn, sha1s, false).await? {
        if let Some(i) = out.get_mut(&d.summary.sha1) {
            i.details = Some(d);
        }
    }
    for c in read::certs_batch(&conn, sha1s).await? {
        if let Some(i) = out.get_mut(&c.sha1) {
            i.der = Some(c.der);
        }
    }
    if with_names {
        for n in read::names_batch(&conn, sha1s).await? {
            if n.kind == certhist_model::NameKind::Dns {
                if let Some(i) = out.get_mut(&n.sha1) {
                    i.dns_names.push(n.name);
                }
            }
        }
    }
    Ok(out)
}

/// The passive-SSL common output format row of a sighting.
pub fn cof_row(s: &Sighting) -> CofRow {
    CofRow {
        ip: s.ip,
        port: s.port,
        cert_sha1: certhist_model::hex_lower(s.sha1),
        time_first: s.first_seen.timestamp(),
        time_last: s.last_seen.timestamp(),
        count: s.times_seen,
        source: s.sources.clone(),
    }
}

/// The CSV header of the NDJSON fields.
const CSV_HEADER: [&str; 7] = [
    "ip",
    "port",
    "cert_sha1",
    "time_first",
    "time_last",
    "count",
    "source",
];

fn csv_rows(rows: &[Sighting], out: &mut Vec<u8>) {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for s in rows {
        let _ = w.write_record([
            s.ip.to_string(),
            s.port.to_string(),
            certhist_model::hex_lower(s.sha1),
            ids::time(&s.first_seen),
            ids::time(&s.last_seen),
            s.times_seen.to_string(),
            s.sources.join(";"),
        ]);
    }
    if let Ok(bytes) = w.into_inner() {
        out.extend_from_slice(&bytes);
    }
}

async fn run(
    store: Store,
    prepared: Prepared,
    tx: mpsc::Sender<Result<Bytes, StoreError>>,
) -> Result<(), StoreError> {
    match go(&store, prepared, &tx).await {
        Ok(Ok(())) | Ok(Err(Gone)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn go(
    store: &Store,
    prepared: Prepared,
    tx: &mpsc::Sender<Result<Bytes, StoreError>>,
) -> Result<Result<(), Gone>, StoreError> {
    let Prepared { request, mut rows } = prepared;
    let mut out = Vec::with_capacity(CHUNK);
    let label = request.selector.describe();
    let mut stix = stix::Writer::new(&label);
    // A reverse search or a field search writes all the hosts of each certificate (in the
    // window): the references are written by reading them again instead of keeping them.
    let reread = matches!(
        request.selector,
        Selector::Cert(_) | Selector::Search { .. }
    );
    let mut misp = misp::Writer::new(&label, !reread);
    let mut written_certs: HashSet<Sha1> = HashSet::new();
    match request.format {
        ExportFormat::Ndjson => {}
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(CSV_HEADER);
            if let Ok(b) = w.into_inner() {
                out.extend_from_slice(&b);
            }
        }
        ExportFormat::Stix => stix.begin(&mut out),
        ExportFormat::Misp => misp.begin(&mut out),
    }
    while let Some(batch) = rows.next(store).await? {
        match request.format {
            ExportFormat::Ndjson => {
                for s in &batch {
                    if serde_json::to_writer(&mut out, &cof_row(s)).is_ok() {
                        out.push(b'\n');
                    }
                }
            }
            ExportFormat::Csv => csv_rows(&batch, &mut out),
            ExportFormat::Stix => {
                let mut new: Vec<Sha1> = Vec::new();
                for s in &batch {
                    if written_certs.insert(s.sha1) {
                        new.push(s.sha1);
                    }
                }
                let mut infos = cert_infos(store, &new, false).await?;
                for s in &batch {
                    stix.row(s, infos.remove(&s.sha1).as_ref(), &mut out);
                }
            }
            ExportFormat::Misp => {
                for s in &batch {
                    misp.row(s, &mut out);
                }
            }
        }
        if let Err(g) = flush(tx, &mut out, CHUNK).await {
            return Ok(Err(g));
        }
    }
    match request.format {
        ExportFormat::Ndjson | ExportFormat::Csv => {}
        ExportFormat::Stix => stix.end(&mut out),
        ExportFormat::Misp => {
            misp.attributes_done(&mut out);
            let certs = misp.certificates();
            for group in certs.chunks(500) {
                let infos = cert_infos(store, group, true).await?;
                for sha1 in group {
                    let refs = misp.take_refs(sha1);
                    let Some(refs) = refs else { continue };
                    misp.object_head(sha1, infos.get(sha1), &refs, &mut out);
                    if reread {
                        let mut after = None;
                        let mut first = true;
                        loop {
                            let conn = store.conn().await?;
                            let hosts =
                                read::cert_hosts(&conn, sha1, &request.window, after, PAGE).await?;
                            drop(conn);
                            for h in &hosts {
                                let attr = misp::attribute_uuid(&h.ip, h.port, sha1);
                                misp.reference(sha1, &attr, first, &mut out);
                                first = false;
                            }
                            if let Err(g) = flush(tx, &mut out, CHUNK).await {
                                return Ok(Err(g));
                            }
                            match hosts.last() {
                                Some(l) if i64::try_from(hosts.len()).unwrap_or(0) >= PAGE => {
                                    after = Some((l.ip, l.port));
                                }
                                _ => break,
                            }
                        }
                    } else {
                        for (i, r) in refs.attrs.iter().enumerate() {
                            misp.reference(sha1, r, i == 0, &mut out);
                            if let Err(g) = flush(tx, &mut out, CHUNK).await {
                                return Ok(Err(g));
                            }
                        }
                    }
                    misp.object_tail(&mut out);
                }
                if let Err(g) = flush(tx, &mut out, CHUNK).await {
                    return Ok(Err(g));
                }
            }
            misp.end(&mut out);
        }
    }
    Ok(flush(tx, &mut out, 1).await)
}
