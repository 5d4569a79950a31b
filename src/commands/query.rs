//! `certhist query ip|clients|cert|hosts|search|serial|overlap|expand`.
//!
//! Every subcommand calls the same `certhist_store::read` function as the matching API route
//! and prints the same view types: with `--json`, a record is one JSON object and a list is one
//! object per line (NDJSON) — byte for byte what `/api/v1` answers (a list's `items`, in the
//! same order). Human output is tables through [`crate::output`].

use std::io::Write;
use std::net::IpAddr;

use certhist_model::views::{
    CertStubRecord, CertSummary, CertificateRecord, ClientContactItem, Commonness, ExpandGraph,
    HostItem, IpHistoryItem, MatchMode, OverlapCertItem, OverlapIpItem, Period, SearchItem,
    StubSightingItem, Target, TargetKind,
};
use certhist_model::{parse_cert_hash, parse_timestamp, CertHash, Serial, Sha1};
use certhist_store::read::{self, ExpandRequest, MatchPattern, Seed, TimeWindow, ValidityFilter};
use certhist_store::{Conn, Store, StoreError};
use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson, opt, opt_time, time, Table};

/// Rows fetched per database round trip when a command wants more.
const PAGE: i64 = 1000;

/// `certhist query …`
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Certificate history of an address or CIDR block.
    Ip(IpArgs),
    /// Clients seen contacting a server address or CIDR block, with the certificate each
    /// presented (stored only by `import pcap --keep-clients`).
    Clients(IpArgs),
    /// A certificate's record and every IP:port that served it.
    Cert(CertArgs),
    /// Every IP:port that served a certificate (reverse search), with periods.
    Hosts(HostsArgs),
    /// Certificates by field: name, cn, san, email, registered-domain, serial, issuer-cn,
    /// issuer-o, subject-o, subject-ou, spki; or `tag`: the tagged targets. VALUE is exact,
    /// `*.suffix`, `prefix*` or `*contains*`.
    Search(SearchArgs),
    /// Certificates by serial number (any notation), optionally narrowed to an OCSP CertID.
    Serial(SerialArgs),
    /// Certificates every given address served, and when (or with --sha1: addresses every
    /// given certificate was on).
    Overlap(OverlapArgs),
    /// The bounded IP ↔ certificate graph around a seed (address, block, hash or name).
    Expand(ExpandArgs),
}

/// Time-window flags shared by the history commands.
#[derive(Debug, Default, Args)]
pub struct WindowArgs {
    /// Only sightings last seen at or after this time (RFC 3339, date or epoch seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Only sightings first seen at or before this time.
    #[arg(long)]
    pub until: Option<String>,
}

/// `certhist query ip`
#[derive(Debug, Args)]
pub struct IpArgs {
    /// An IPv4/IPv6 address or a CIDR block (192.0.2.0/24).
    pub target: String,
    #[command(flatten)]
    pub window: WindowArgs,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query cert`
#[derive(Debug, Args)]
pub struct CertArgs {
    /// SHA-1 (40 hex digits) or SHA-256 (64), colons allowed.
    pub hash: String,
    /// At most this many hosts in the human output.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
    /// Certificates served by more than this many addresses are marked shared.
    #[arg(long, default_value_t = Commonness::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(i64).range(1..))]
    pub shared_threshold: i64,
}

/// `certhist query hosts`
#[derive(Debug, Args)]
pub struct HostsArgs {
    /// SHA-1 or SHA-256 of the certificate.
    pub hash: String,
    #[command(flatten)]
    pub window: WindowArgs,
    /// At most this many hosts.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query search`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Field to search.
    pub field: String,
    /// Value: exact, `*.example.com`, `prefix*` or `*contains*`. Serials in hex (colons, leading
    /// zeros allowed) or decimal.
    pub value: String,
    /// How VALUE is read: auto (the `*` notation), exact, prefix, suffix, contains, regex.
    #[arg(long = "match", default_value = "auto", value_parser = parse_match_mode)]
    pub match_mode: MatchMode,
    /// Only certificates valid at this time.
    #[arg(long)]
    pub valid_at: Option<String>,
    /// At most this many certificates.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query serial`
#[derive(Debug, Args)]
pub struct SerialArgs {
    /// Serial number: hex (colons, `0x`, leading zeros allowed) or decimal; every reading is tried.
    pub serial: String,
    /// SHA-1 of the issuer Name DER (OCSP issuerNameHash, hex).
    #[arg(long)]
    pub issuer_name_hash: Option<String>,
    /// SHA-1 of the issuer public key bits (OCSP issuerKeyHash, hex).
    #[arg(long)]
    pub issuer_key_hash: Option<String>,
    /// At most this many certificates.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query overlap`
#[derive(Debug, Args)]
pub struct OverlapArgs {
    /// Two to twenty addresses (or, with --sha1, certificate hashes).
    #[arg(required = true, num_args = 2..=20)]
    pub members: Vec<String>,
    /// The members are certificates (SHA-1 or SHA-256): list the addresses they shared.
    #[arg(long)]
    pub sha1: bool,
    #[command(flatten)]
    pub window: WindowArgs,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
}

/// `certhist query expand`
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// An address, CIDR block, certificate SHA-1 / SHA-256, or a name (exact CN / SAN).
    pub seed: String,
    /// Edges to follow from the seed.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=6))]
    pub hops: u32,
    /// Node budget.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub max_nodes: u32,
    /// Expand certificates served by more than the shared threshold of addresses too.
    #[arg(long)]
    pub include_shared: bool,
    /// Certificates served by more than this many addresses are shared.
    #[arg(long, default_value_t = Commonness::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(i64).range(1..))]
    pub shared_threshold: i64,
    #[command(flatten)]
    pub window: WindowArgs,
}

fn parse_match_mode(text: &str) -> Result<MatchMode, String> {
    MatchMode::from_name(text)
        .ok_or_else(|| "use one of auto, exact, prefix, suffix, contains, regex".to_owned())
}

pub(crate) async fn run(cli: &Cli, command: &QueryCommand) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let mut out = std::io::stdout().lock();
    let json = cli.json;
    match command {
        QueryCommand::Ip(a) => ip(&store, a, json, &mut out).await,
        QueryCommand::Clients(a) => clients(&store, a, json, &mut out).await,
        QueryCommand::Cert(a) => cert(&store, a, json, &mut out).await,
        QueryCommand::Hosts(a) => hosts(&store, a, json, &mut out).await,
        QueryCommand::Search(a) => search(&store, a, json, &mut out).await,
        QueryCommand::Serial(a) => serial(&store, a, json, &mut out).await,
        QueryCommand::Overlap(a) => overlap(&store, a, json, &mut out).await,
        QueryCommand::Expand(a) => expand(&store, a, json, &mut out).await,
    }
}

/// Parses an address or CIDR block.
pub(crate) fn parse_target(text: &str) -> Result<IpNet, Failure> {
    let t = text.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(Failure::Usage(format!(
        "{:?} is not an IP address or CIDR block (e.g. 192.0.2.7, 192.0.2.0/24, 2001:db8::/32)",
        clean(&t.chars().take(60).collect::<String>())
    )))
}

fn parse_hash(text: &str) -> Result<CertHash, Failure> {
    parse_cert_hash(text).map_err(|e| Failure::Usage(e.to_string()))
}

fn parse_time(
    flag: &str,
    text: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
    text.as_deref()
        .map(|t| parse_timestamp(t).map_err(|e| Failure::Usage(format!("--{flag}: {e}"))))
        .transpose()
}

pub(crate) fn parse_window(w: &WindowArgs) -> Result<TimeWindow, Failure> {
    let window = TimeWindow {
        since: parse_time("since", &w.since)?,
        until: parse_time("until", &w.until)?,
    };
    if let (Some(s), Some(u)) = (window.since, window.until) {
        if s > u {
            return Err(Failure::Usage("--until is before --since".to_owned()));
        }
    }
    Ok(window)
}

/// Fetches up to `limit` rows page by page: `fetch(after, want)` returns one page, `key` the
/// paging key of a row.
async fn collect<T, K, F, Fut>(
    limit: i64,
    key: impl Fn(&T) -> K,
    fetch: F,
) -> Result<Vec<T>, Failure>
where
    F: Fn(Option<K>, i64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut rows: Vec<T> = Vec::new();
    let mut after: Option<K> = None;
    while (rows.len() as i64) < limit {
        let want = PAGE.min(limit - rows.len() as i64);
        let page = fetch(after.take(), want).await?;
        let done = (page.len() as i64) < want;
        after = page.last().map(&key);
        rows.extend(page);
        if done {
            break;
        }
    }
    Ok(rows)
}

fn ndjson_all<T: serde::Serialize>(out: &mut impl Write, rows: &[T]) -> Result<(), Failure> {
    for r in rows {
        ndjson(out, r)?;
    }
    Ok(())
}

pub(crate) fn port_text(port: u16) -> String {
    if port == certhist_model::PORT_UNKNOWN {
        "?".to_owned()
    } else {
        port.to_string()
    }
}

fn serial_text(s: &Option<Serial>) -> String {
    s.as_ref()
        .map(Serial::to_hex)
        .unwrap_or_else(|| "-".to_owned())
}

fn more_note(out: &mut impl Write, shown: usize, limit: i64, what: &str) -> Result<(), Failure> {
    if shown as i64 >= limit {
        writeln!(out, "(first {limit} {what}; raise --limit for more)")?;
    }
    Ok(())
}

pub(crate) async fn ip(
    store: &Store,
    a: &IpArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let net = parse_target(&a.target)?;
    let window = parse_window(&a.window)?;
    let conn = store.conn().await?;
    let mut rows = collect(
        a.limit,
        |r: &IpHistoryItem| (r.ip, r.port, r.sha1),
        |after, want| {
            let conn = &conn;
            async move { read::ip_history(conn, &net, &window, after.as_ref(), want).await }
        },
    )
    .await?;
    // Sightings of certificates known only by SHA-256 (sensor logs), listed after the history
    // (in NDJSON as lines with `"stub": true`, as the API's stream has them).
    let stubs = collect(
        a.limit,
        |r: &StubSightingItem| (r.ip, r.port, r.sha256),
        |after, want| {
            let conn = &conn;
            async move { read::stub_sightings(conn, &net, &window, after.as_ref(), want).await }
        },
    )
    .await?;
    if json {
        ndjson_all(out, &rows)?;
        ndjson_all(out, &stubs)?;
        return Ok(exit::OK);
    }
    // Clients seen contacting it (only when a capture was imported with --keep-clients; not
    // in the JSON output, which is the API's `/ip` stream: see `query clients`).
    let contacts = all_clients(&conn, net, window, a.limit).await?;
    if rows.is_empty() && stubs.is_empty() && contacts.is_empty() {
        writeln!(out, "no certificates seen on {net}")?;
        return Ok(exit::NOT_FOUND);
    }
    if rows.is_empty() {
        if !stubs.is_empty() {
            print_stub_sightings(&stubs, out)?;
        }
        print_contacts_section(&contacts, a.limit, out)?;
        return Ok(exit::OK);
    }
    // Humans read a history in time order.
    rows.sort_by_key(|r| (r.ip, r.first_seen, r.port));
    let mut t = Table::new(&[
        "IP",
        "PORT",
        "SHA1",
        "FIRST SEEN",
        "LAST SEEN",
        "TIMES",
        "SUBJECT CN",
        "ISSUER CN",
        "NOT BEFORE",
        "NOT AFTER",
        "TAGS",
    ]);
    for r in &rows {
        let c = r.cert.as_ref();
        t.row(vec![
            r.ip.to_string(),
            port_text(r.port),
            hex::encode(r.sha1),
            time(&r.first_seen),
            time(&r.last_seen),
            r.times_seen.to_string(),
            c.map(|c| opt(&c.subject_cn))
                .unwrap_or_else(|| "(certificate not stored)".to_owned()),
            c.map(|c| opt(&c.issuer_cn)).unwrap_or_default(),
            c.map(|c| opt_time(&c.not_before)).unwrap_or_default(),
            c.map(|c| opt_time(&c.not_after)).unwrap_or_default(),
            r.tags.join(","),
        ]);
    }
    t.print(out)?;
    more_note(out, rows.len(), a.limit, "rows")?;
    // Host names clients asked these servers for (SNI seen by sensors), once per address:port.
    let mut named: Vec<(std::net::IpAddr, u16, &[String])> = rows
        .iter()
        .filter(|r| !r.names_seen.is_empty())
        .map(|r| (r.ip, r.port, &r.names_seen[..]))
        .collect();
    named.sort_unstable_by_key(|n| (n.0, n.1));
    named.dedup_by_key(|n| (n.0, n.1));
    if !stubs.is_empty() {
        writeln!(out)?;
        print_stub_sightings(&stubs, out)?;
    }
    if !named.is_empty() {
        writeln!(out, "\nnames seen (SNI):")?;
        for (ip, port, names) in named {
            writeln!(
                out,
                "  {}:{}  {}",
                ip,
                port_text(port),
                clean(&names.join(", "))
            )?;
        }
    }
    print_contacts_section(&contacts, a.limit, out)?;
    // Tags and notes of the address or block asked about (and of blocks containing it).
    let target = if net.prefix_len() == net.max_prefix_len() {
        Target::Ip(net.addr())
    } else {
        Target::Cidr(net)
    };
    let tags = read::target_tags(&conn, &target).await?;
    if !tags.tags.is_empty() || !tags.notes.is_empty() {
        writeln!(out)?;
        super::tag::print_target_tags(&tags, out)?;
    }
    Ok(exit::OK)
}

pub(crate) async fn clients(
    store: &Store,
    a: &IpArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let net = parse_target(&a.target)?;
    let window = parse_window(&a.window)?;
    let conn = store.conn().await?;
    let rows = all_clients(&conn, net, window, a.limit).await?;
    if json {
        ndjson_all(out, &rows)?;
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        writeln!(
            out,
            "no clients seen contacting {net} (client addresses are stored only by `import pcap --keep-clients`)"
        )?;
        return Ok(exit::NOT_FOUND);
    }
    print_clients(&rows, out)?;
    more_note(out, rows.len(), a.limit, "client contacts")?;
    Ok(exit::OK)
}

async fn all_clients(
    conn: &Conn,
    net: IpNet,
    window: TimeWindow,
    limit: i64,
) -> Result<Vec<ClientContactItem>, Failure> {
    collect(
        limit,
        |r: &ClientContactItem| (r.server_ip, r.server_port, r.client_ip, r.client_cert_sha1),
        |after, want| async move {
            read::client_contacts(conn, &net, &window, after.as_ref(), want).await
        },
    )
    .await
}

/// The clients of `query ip`'s human output, after a blank line (nothing when there are none).
fn print_contacts_section(
    contacts: &[ClientContactItem],
    limit: i64,
    out: &mut impl Write,
) -> Result<(), Failure> {
    if contacts.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nclients seen contacting it (import pcap --keep-clients):"
    )?;
    print_clients(contacts, out)?;
    more_note(out, contacts.len(), limit, "client contacts")
}

fn print_clients(rows: &[ClientContactItem], out: &mut impl Write) -> Result<(), Failure> {
    let mut t = Table::new(&[
        "SERVER",
        "PORT",
        "CLIENT",
        "CLIENT CERT SHA1",
        "FIRST SEEN",
        "LAST SEEN",
        "TIMES",
        "SOURCES",
    ]);
    for r in rows {
        t.row(vec![
            r.server_ip.to_string(),
            port_text(r.server_port),
            r.client_ip.to_string(),
            r.client_cert_sha1
                .map(hex::encode)
                .unwrap_or_else(|| "-".to_owned()),
            time(&r.first_seen),
            time(&r.last_seen),
            r.times_seen.to_string(),
            clean(&r.sources.join(",")),
        ]);
    }
    t.print(out)?;
    Ok(())
}

async fn all_hosts(
    conn: &Conn,
    sha1: Sha1,
    window: TimeWindow,
    limit: i64,
) -> Result<Vec<HostItem>, Failure> {
    collect(
        limit,
        |h: &HostItem| (h.ip, h.port),
        |after, want| async move { read::cert_hosts(conn, &sha1, &window, after, want).await },
    )
    .await
}

pub(crate) async fn cert(
    store: &Store,
    a: &CertArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let hash = parse_hash(&a.hash)?;
    let conn = store.conn().await?;
    let record = read::certificate(&conn, &hash, a.shared_threshold).await?;
    let Some(record) = record else {
        // A certificate known only by SHA-256 from a sensor log (Zeek >= 4.1): the log's text.
        if let CertHash::Sha256(sha256) = hash {
            if let Some(stub) = read::cert_stub(&conn, &sha256).await? {
                if json {
                    ndjson(out, &stub)?;
                    return Ok(exit::OK);
                }
                let hosts =
                    read::stub_hosts(&conn, &sha256, &TimeWindow::default(), None, a.limit).await?;
                print_stub(&stub, out)?;
                writeln!(out)?;
                writeln!(out, "seen on {} host(s):", hosts.len())?;
                print_hosts(&hosts, out)?;
                more_note(out, hosts.len(), a.limit, "hosts")?;
                return Ok(exit::OK);
            }
        }
        // Sightings may exist for a certificate whose DER is not stored (Sonar hosts files).
        let hosts = match hash {
            CertHash::Sha1(sha1) => all_hosts(&conn, sha1, TimeWindow::default(), a.limit).await?,
            CertHash::Sha256(_) => Vec::new(),
        };
        if hosts.is_empty() {
            return Err(Failure::NotFound(format!(
                "no certificate or sighting with hash {hash}"
            )));
        }
        if json {
            // The API has no record either (404); the hosts are `certhist query hosts`.
            return Err(Failure::NotFound(format!(
                "certificate {hash} is not stored, but was seen on {} host(s): certhist query hosts {hash}",
                hosts.len()
            )));
        }
        writeln!(
            out,
            "certificate {hash} is not stored, but was seen on {} host(s):",
            hosts.len()
        )?;
        print_hosts(&hosts, out)?;
        return Ok(exit::OK);
    };
    if json {
        ndjson(out, &record)?;
        return Ok(exit::OK);
    }
    let hosts = all_hosts(&conn, record.summary.sha1, TimeWindow::default(), a.limit).await?;
    print_record(&record, out)?;
    let own_hex = hex::encode(record.summary.sha1);
    let own = Some((TargetKind::Certificate, own_hex.as_str()));
    if !record.tag_details.is_empty() {
        super::tag::print_tag_lines(&record.tag_details, own, out)?;
    }
    if !record.notes.is_empty() {
        super::tag::print_notes(&record.notes, own, out)?;
    }
    writeln!(out)?;
    if hosts.is_empty() {
        writeln!(out, "never seen on any host")?;
    } else {
        writeln!(out, "seen on {} host(s):", hosts.len())?;
        print_hosts(&hosts, out)?;
        more_note(out, hosts.len(), a.limit, "hosts")?;
    }
    Ok(exit::OK)
}

async fn hosts(
    store: &Store,
    a: &HostsArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let hash = parse_hash(&a.hash)?;
    let window = parse_window(&a.window)?;
    let conn = store.conn().await?;
    let hosts = match (read::resolve_hash(&conn, &hash).await?, hash) {
        (Some(resolved), _) => all_hosts(&conn, resolved.sha1, window, a.limit).await?,
        // Known only by SHA-256 from a sensor log.
        (None, CertHash::Sha256(sha256)) if read::cert_stub(&conn, &sha256).await?.is_some() => {
            read::stub_hosts(&conn, &sha256, &window, None, a.limit).await?
        }
        _ => {
            return Err(Failure::NotFound(format!(
                "no certificate with hash {hash} is stored or observed"
            )))
        }
    };
    if json {
        ndjson_all(out, &hosts)?;
        return Ok(exit::OK);
    }
    if hosts.is_empty() {
        writeln!(out, "certificate {hash} was not seen in that period")?;
        return Ok(exit::NOT_FOUND);
    }
    print_hosts(&hosts, out)?;
    more_note(out, hosts.len(), a.limit, "hosts")?;
    Ok(exit::OK)
}

/// Sightings of certificates known only by SHA-256, in time order.
fn print_stub_sightings(stubs: &[StubSightingItem], out: &mut impl Write) -> Result<(), Failure> {
    writeln!(
        out,
        "certificates known only by SHA-256 (sensor logs; no DER stored yet):"
    )?;
    let mut sorted: Vec<&StubSightingItem> = stubs.iter().collect();
    sorted.sort_by_key(|r| (r.ip, r.first_seen, r.port));
    let mut t = Table::new(&[
        "IP",
        "PORT",
        "SHA256",
        "FIRST SEEN",
        "LAST SEEN",
        "TIMES",
        "SUBJECT CN (LOG)",
    ]);
    for r in sorted {
        t.row(vec![
            r.ip.to_string(),
            port_text(r.port),
            hex::encode(r.sha256),
            time(&r.first_seen),
            time(&r.last_seen),
            r.times_seen.to_string(),
            opt(&r.subject_cn),
        ]);
    }
    t.print(out)?;
    Ok(())
}

/// A certificate known only by SHA-256: the sensor log's text, escaped.
fn print_stub(s: &CertStubRecord, out: &mut impl Write) -> Result<(), Failure> {
    let o = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "-".to_owned());
    let lines = [
        ("sha256", hex::encode(s.sha256)),
        (
            "stored",
            "only the SHA-256 and a sensor log's text (no DER yet)".to_owned(),
        ),
        ("subject", o(&s.subject_dn)),
        ("subject CN", o(&s.subject_cn)),
        ("issuer", o(&s.issuer_dn)),
        ("serial", o(&s.serial)),
        ("not before", opt_time(&s.not_before)),
        ("not after", opt_time(&s.not_after)),
        ("SAN dNSNames", clean(&s.san_dns.join(", "))),
        ("sources", clean(&s.sources.join(","))),
    ];
    for (k, v) in lines {
        writeln!(out, "{k:<12} {v}")?;
    }
    Ok(())
}

fn print_hosts(hosts: &[HostItem], out: &mut impl Write) -> Result<(), Failure> {
    let mut t = Table::new(&[
        "IP",
        "PORT",
        "FIRST SEEN",
        "LAST SEEN",
        "TIMES",
        "SOURCES",
        "TAGS",
    ]);
    for h in hosts {
        t.row(vec![
            h.ip.to_string(),
            port_text(h.port),
            time(&h.first_seen),
            time(&h.last_seen),
            h.times_seen.to_string(),
            h.sources.join(","),
            h.tags.join(","),
        ]);
    }
    t.print(out)?;
    Ok(())
}

fn print_record(r: &CertificateRecord, out: &mut impl Write) -> Result<(), Failure> {
    let s = &r.summary;
    let hexo = |v: &Option<Vec<u8>>| {
        v.as_ref()
            .map(hex::encode)
            .unwrap_or_else(|| "-".to_owned())
    };
    let mut lines: Vec<(&str, String)> = vec![
        ("sha1", hex::encode(s.sha1)),
        ("sha256", hex::encode(s.sha256)),
    ];
    if let Some(e) = &s.parse_error {
        lines.push(("parse error", clean(e)));
    }
    let c = &r.commonness;
    lines.extend([
        (
            "serial",
            s.serial
                .as_ref()
                .map(|x| format!("{}{x}", if r.serial_negative { "-" } else { "" }))
                .unwrap_or_else(|| "-".to_owned()),
        ),
        ("subject", opt(&r.subject.dn)),
        ("issuer", opt(&r.issuer.dn)),
        ("not before", opt_time(&s.not_before)),
        ("not after", opt_time(&s.not_after)),
        (
            "key",
            format!(
                "{} {}",
                opt(&r.key_algorithm),
                r.key_bits.map(|b| format!("{b} bits")).unwrap_or_default()
            ),
        ),
        ("signature", opt(&r.signature_algorithm)),
        (
            "flags",
            [
                s.is_ca.then_some("CA"),
                s.is_precert.then_some("precertificate"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        ),
        ("spki sha256", hexo(&r.spki_sha256)),
        ("issuer name hash", hexo(&r.issuer_name_hash)),
        ("issuer key hash", hexo(&r.issuer_key_hash)),
        ("authority key id", hexo(&r.authority_key_id)),
        ("subject key id", hexo(&r.subject_key_id)),
        (
            "distinct IPs",
            format!(
                "{}{}",
                c.distinct_ips,
                if c.shared {
                    format!(" (shared: more than {})", c.shared_threshold)
                } else {
                    String::new()
                }
            ),
        ),
        ("stored since", time(&r.added_at)),
    ]);
    for (k, v) in lines {
        writeln!(out, "{k:>17}: {v}")?;
    }
    if !r.names.is_empty() {
        writeln!(out, "{:>17}:", "names")?;
        for n in &r.names {
            writeln!(out, "{:>17}  {:<5} {}", "", n.kind.as_str(), clean(&n.name))?;
        }
    }
    if let Some(t) = &r.first_seen_in_ct {
        writeln!(out, "{:>17}: {}", "first seen in CT", time(t))?;
    }
    for e in &r.ct_entries {
        writeln!(
            out,
            "{:>17}  {} #{} at {} ({}{})",
            "",
            clean(&e.log_url),
            e.entry_index,
            time(&e.entry_timestamp),
            e.entry_type.as_str(),
            if e.sha1 == s.sha1 {
                String::new()
            } else {
                format!(", as {}", hex::encode(e.sha1))
            }
        )?;
    }
    for sib in &r.ct_siblings {
        let what = if sib.is_precert {
            "precertificate"
        } else {
            "final certificate"
        };
        writeln!(
            out,
            "{:>17}: {} {}",
            "same TBS as",
            what,
            hex::encode(sib.sha1)
        )?;
    }
    if !r.cache_entries.is_empty() {
        writeln!(out, "{:>17}:", "in caches")?;
        for e in &r.cache_entries {
            writeln!(
                out,
                "{:>17}  {} {} {} {}",
                "",
                clean(&e.collection),
                e.kind.as_str(),
                opt_time(&e.downloaded_at),
                clean(&e.url)
            )?;
        }
    }
    Ok(())
}

pub(crate) async fn search(
    store: &Store,
    a: &SearchArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    if a.field.trim().eq_ignore_ascii_case("tag") {
        // The tagged targets (addresses, blocks, certificates, names), as `tag list`.
        let pattern = MatchPattern::with_mode(a.match_mode, &a.value)?;
        return super::tag::list_tagged(store, &pattern, &a.value, a.limit, json, out).await;
    }
    let field = read::search::parse_field(&a.field)?;
    let pattern = MatchPattern::with_mode(a.match_mode, &a.value)?;
    let validity = ValidityFilter {
        valid_at: parse_time("valid-at", &a.valid_at)?,
        ..ValidityFilter::default()
    };
    let conn = store.conn().await?;
    let hits = collect(
        a.limit,
        |h: &SearchItem| (h.matched.clone(), h.cert.sha1),
        |after, want| {
            let (conn, pattern) = (&conn, &pattern);
            async move {
                read::search_filtered(conn, field, pattern, &validity, after.as_ref(), want).await
            }
        },
    )
    .await?;
    if json {
        ndjson_all(out, &hits)?;
        return Ok(exit::OK);
    }
    if hits.is_empty() {
        writeln!(out, "no certificate matches {} {}", field, clean(&a.value))?;
        return Ok(exit::NOT_FOUND);
    }
    let mut t = Table::new(&[
        "SHA1",
        "MATCHED",
        "SUBJECT CN",
        "ISSUER CN",
        "SERIAL",
        "NOT BEFORE",
        "NOT AFTER",
        "TAGS",
    ]);
    for h in &hits {
        let c = &h.cert;
        t.row(vec![
            hex::encode(c.sha1),
            h.matched.clone(),
            opt(&c.subject_cn),
            opt(&c.issuer_cn),
            serial_text(&c.serial),
            opt_time(&c.not_before),
            opt_time(&c.not_after),
            c.tags.join(","),
        ]);
    }
    t.print(out)?;
    more_note(out, hits.len(), a.limit, "matches")?;
    Ok(exit::OK)
}

fn hash20(flag: &str, text: &Option<String>) -> Result<Option<Sha1>, Failure> {
    text.as_deref()
        .map(|t| {
            let cleaned: String = t.trim().chars().filter(|c| *c != ':').collect();
            hex::decode(&cleaned)
                .ok()
                .and_then(|b| Sha1::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    Failure::Usage(format!("--{flag}: expected a SHA-1 in hex (40 digits)"))
                })
        })
        .transpose()
}

async fn serial(
    store: &Store,
    a: &SerialArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let serials = Serial::parse_candidates(&a.serial).map_err(|e| Failure::Usage(e.to_string()))?;
    let name_hash = hash20("issuer-name-hash", &a.issuer_name_hash)?;
    let key_hash = hash20("issuer-key-hash", &a.issuer_key_hash)?;
    let conn = store.conn().await?;
    let certs = collect(
        a.limit,
        |c: &CertSummary| c.sha1,
        |after, want| {
            let (conn, serials) = (&conn, &serials);
            async move {
                read::certs_by_serial(
                    conn,
                    serials,
                    name_hash.as_ref().map(|h| h.as_slice()),
                    key_hash.as_ref().map(|h| h.as_slice()),
                    after.as_ref(),
                    want,
                )
                .await
            }
        },
    )
    .await?;
    if json {
        ndjson_all(out, &certs)?;
        return Ok(exit::OK);
    }
    if certs.is_empty() {
        writeln!(out, "no certificate with serial {}", clean(&a.serial))?;
        return Ok(exit::NOT_FOUND);
    }
    let mut t = Table::new(&[
        "SHA1",
        "SERIAL",
        "SUBJECT CN",
        "ISSUER CN",
        "NOT BEFORE",
        "NOT AFTER",
    ]);
    for c in &certs {
        t.row(vec![
            hex::encode(c.sha1),
            serial_text(&c.serial),
            opt(&c.subject_cn),
            opt(&c.issuer_cn),
            opt_time(&c.not_before),
            opt_time(&c.not_after),
        ]);
    }
    t.print(out)?;
    more_note(out, certs.len(), a.limit, "certificates")?;
    Ok(exit::OK)
}

fn period_text(p: &Option<Period>) -> String {
    match p {
        Some(p) => format!("{} – {}", time(&p.start), time(&p.end)),
        None => "never at the same time".to_owned(),
    }
}

async fn overlap(
    store: &Store,
    a: &OverlapArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let window = parse_window(&a.window)?;
    let conn = store.conn().await?;
    if a.sha1 {
        let hashes = a
            .members
            .iter()
            .map(|m| parse_hash(m))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = read::resolve_members(&conn, &hashes).await?;
        if keys.len() < 2 {
            return Err(Failure::Usage(
                "give at least two distinct certificates".to_owned(),
            ));
        }
        let rows = collect(
            a.limit,
            |r: &OverlapIpItem| r.ip,
            |after, want| {
                let (conn, keys) = (&conn, &keys);
                async move { read::overlap_by_certs(conn, keys, &window, after, want).await }
            },
        )
        .await?;
        if json {
            ndjson_all(out, &rows)?;
            return Ok(exit::OK);
        }
        if rows.is_empty() {
            writeln!(out, "no address served all {} certificates", keys.len())?;
            return Ok(exit::NOT_FOUND);
        }
        let mut t = Table::new(&[
            "IP",
            "SHA1",
            "FIRST SEEN",
            "LAST SEEN",
            "TIMES",
            "ALL AT ONCE",
        ]);
        for r in &rows {
            for p in &r.periods {
                t.row(vec![
                    r.ip.to_string(),
                    hex::encode(p.sha1),
                    time(&p.first_seen),
                    time(&p.last_seen),
                    p.times_seen.to_string(),
                    period_text(&r.intersection),
                ]);
            }
        }
        t.print(out)?;
        more_note(out, rows.len(), a.limit, "addresses")?;
        return Ok(exit::OK);
    }
    let mut ips = a
        .members
        .iter()
        .map(|m| {
            m.trim().parse::<IpAddr>().map_err(|_| {
                Failure::Usage(format!(
                    "{:?} is not an IP address (give --sha1 for certificates)",
                    clean(&m.chars().take(60).collect::<String>())
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ips.sort_unstable();
    ips.dedup();
    if ips.len() < 2 {
        return Err(Failure::Usage(
            "give at least two distinct addresses".to_owned(),
        ));
    }
    let rows = collect(
        a.limit,
        |r: &OverlapCertItem| r.sha1,
        |after, want| {
            let (conn, ips) = (&conn, &ips);
            async move { read::overlap_by_ips(conn, ips, &window, after.as_ref(), want).await }
        },
    )
    .await?;
    if json {
        ndjson_all(out, &rows)?;
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        writeln!(
            out,
            "the {} addresses never served the same certificate",
            ips.len()
        )?;
        return Ok(exit::NOT_FOUND);
    }
    let mut t = Table::new(&[
        "SHA1",
        "SUBJECT CN",
        "IP",
        "FIRST SEEN",
        "LAST SEEN",
        "TIMES",
        "ALL AT ONCE",
    ]);
    for r in &rows {
        let cn = r
            .cert
            .as_ref()
            .map(|c| opt(&c.subject_cn))
            .unwrap_or_else(|| "(certificate not stored)".to_owned());
        for p in &r.periods {
            t.row(vec![
                hex::encode(r.sha1),
                cn.clone(),
                p.ip.to_string(),
                time(&p.first_seen),
                time(&p.last_seen),
                p.times_seen.to_string(),
                period_text(&r.intersection),
            ]);
        }
    }
    t.print(out)?;
    more_note(out, rows.len(), a.limit, "certificates")?;
    Ok(exit::OK)
}

async fn expand(
    store: &Store,
    a: &ExpandArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let window = parse_window(&a.window)?;
    let request = ExpandRequest {
        seed_text: a.seed.clone(),
        seed: Seed::parse(&a.seed),
        hops: a.hops,
        max_nodes: a.max_nodes as usize,
        shared_threshold: a.shared_threshold,
        include_shared: a.include_shared,
        window,
    };
    let conn = store.conn().await?;
    let graph = read::expand(&conn, &request).await?;
    if json {
        ndjson(out, &graph)?;
        return Ok(exit::OK);
    }
    print_graph(&graph, out)?;
    Ok(exit::OK)
}

fn print_graph(g: &ExpandGraph, out: &mut impl Write) -> Result<(), Failure> {
    let mut t = Table::new(&[
        "HOP",
        "KIND",
        "NODE",
        "SUBJECT CN",
        "DISTINCT IPS",
        "SHARED",
        "EXPANDED",
    ]);
    for n in &g.nodes {
        t.row(vec![
            n.hop.to_string(),
            match n.kind {
                certhist_model::views::NodeKind::Ip => "ip".to_owned(),
                certhist_model::views::NodeKind::Certificate => "certificate".to_owned(),
            },
            n.id.clone(),
            opt(&n.label),
            n.distinct_ips.map(|d| d.to_string()).unwrap_or_default(),
            n.shared
                .map(|s| if s { "yes" } else { "no" }.to_owned())
                .unwrap_or_default(),
            if n.expanded { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t.print(out)?;
    writeln!(out)?;
    let mut e = Table::new(&["IP", "SHA1", "PORTS", "FIRST SEEN", "LAST SEEN", "TIMES"]);
    for edge in &g.edges {
        e.row(vec![
            edge.ip.to_string(),
            hex::encode(edge.sha1),
            edge.ports
                .iter()
                .map(|p| port_text(*p))
                .collect::<Vec<_>>()
                .join(","),
            time(&edge.first_seen),
            time(&edge.last_seen),
            edge.times_seen.to_string(),
        ]);
    }
    e.print(out)?;
    let p = &g.pruned;
    writeln!(
        out,
        "\n{} nodes, {} edges; {} shared certificate(s) not expanded{}; {} node(s) not expanded",
        g.nodes.len(),
        g.edges.len(),
        p.shared_certificates.len(),
        if p.node_limit_reached {
            format!(", node budget of {} reached", g.max_nodes)
        } else {
            String::new()
        },
        p.unexpanded_nodes
    )?;
    Ok(())
}
