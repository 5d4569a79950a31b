//! `certhist query ip|cert|search`.

use std::io::Write;
use std::net::IpAddr;

use certhist_model::{parse_cert_hash, parse_timestamp, CertHash};
use certhist_store::read::{self, MatchPattern, SearchField, TimeWindow};
use certhist_store::Store;
use ipnet::IpNet;
use serde::Serialize;

use super::Failure;
use crate::cli::{Cli, QueryCertArgs, QueryCommand, QueryIpArgs, QuerySearchArgs};
use crate::exit;
use crate::output::{clean, ndjson, opt, opt_time, time, Table};

/// Rows fetched per database round trip when a command wants more.
const PAGE: i64 = 1000;

pub(crate) async fn run(cli: &Cli, command: &QueryCommand) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let mut out = std::io::stdout().lock();
    match command {
        QueryCommand::Ip(a) => ip(&store, a, cli.json, &mut out).await,
        QueryCommand::Cert(a) => cert(&store, a, cli.json, &mut out).await,
        QueryCommand::Search(a) => search(&store, a, cli.json, &mut out).await,
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

pub(crate) fn parse_window(
    since: &Option<String>,
    until: &Option<String>,
) -> Result<TimeWindow, Failure> {
    let p = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| parse_timestamp(t).map_err(|e| Failure::Usage(format!("--{name}: {e}"))))
            .transpose()
    };
    Ok(TimeWindow {
        since: p("since", since)?,
        until: p("until", until)?,
    })
}

pub(crate) async fn ip(
    store: &Store,
    a: &QueryIpArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let net = parse_target(&a.target)?;
    let window = parse_window(&a.since, &a.until)?;
    let conn = store.conn().await?;
    let mut rows = Vec::new();
    let mut after = None;
    while (rows.len() as i64) < a.limit {
        let want = PAGE.min(a.limit - rows.len() as i64);
        let page = read::ip_history(&conn, &net, &window, after.as_ref(), want).await?;
        let done = (page.len() as i64) < want;
        after = page.last().map(|r| (r.ip, r.port, r.sha1));
        rows.extend(page);
        if done {
            break;
        }
    }
    rows.sort_by_key(|r| (r.ip, r.first_seen, r.port));
    if json {
        for r in &rows {
            ndjson(out, r)?;
        }
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        writeln!(out, "no certificates seen on {net}")?;
        return Ok(exit::NOT_FOUND);
    }
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
        ]);
    }
    t.print(out)?;
    if rows.len() as i64 >= a.limit {
        writeln!(out, "(first {} rows; raise --limit for more)", a.limit)?;
    }
    Ok(exit::OK)
}

pub(crate) fn port_text(port: u16) -> String {
    if port == certhist_model::PORT_UNKNOWN {
        "?".to_owned()
    } else {
        port.to_string()
    }
}

#[derive(Serialize)]
struct CertOutput<'a> {
    #[serde(flatten)]
    record: &'a read::CertDetail,
    hosts: &'a [read::HostRow],
}

pub(crate) async fn cert(
    store: &Store,
    a: &QueryCertArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let hash = parse_cert_hash(&a.hash).map_err(|e| Failure::Usage(e.to_string()))?;
    let conn = store.conn().await?;
    let record = read::cert_by_hash(&conn, &hash).await?;
    let sha1 = match (&record, hash) {
        (Some(r), _) => r.summary.sha1,
        (None, CertHash::Sha1(h)) => h,
        (None, CertHash::Sha256(_)) => {
            return Err(Failure::NotFound(format!(
                "no certificate with SHA-256 {hash}"
            )));
        }
    };
    let mut hosts = Vec::new();
    let mut after = None;
    while (hosts.len() as i64) < a.limit {
        let want = PAGE.min(a.limit - hosts.len() as i64);
        let page = read::cert_hosts(&conn, &sha1, &TimeWindow::default(), after, want).await?;
        let done = (page.len() as i64) < want;
        after = page.last().map(|h| (h.ip, h.port));
        hosts.extend(page);
        if done {
            break;
        }
    }
    let Some(record) = record else {
        // Sightings may exist for a certificate whose DER we do not have (Sonar hosts files).
        if hosts.is_empty() {
            return Err(Failure::NotFound(format!(
                "no certificate or sighting with SHA-1 {hash}"
            )));
        }
        if json {
            for h in &hosts {
                ndjson(out, h)?;
            }
        } else {
            writeln!(
                out,
                "certificate {hash} is not stored, but was seen on {} host(s):",
                hosts.len()
            )?;
            print_hosts(&hosts, out)?;
        }
        return Ok(exit::OK);
    };
    if json {
        ndjson(
            out,
            &CertOutput {
                record: &record,
                hosts: &hosts,
            },
        )?;
        return Ok(exit::OK);
    }
    print_record(&record, out)?;
    writeln!(out)?;
    if hosts.is_empty() {
        writeln!(out, "never seen on any host")?;
    } else {
        writeln!(out, "seen on {} host(s):", hosts.len())?;
        print_hosts(&hosts, out)?;
    }
    Ok(exit::OK)
}

fn print_hosts(hosts: &[read::HostRow], out: &mut impl Write) -> Result<(), Failure> {
    let mut t = Table::new(&["IP", "PORT", "FIRST SEEN", "LAST SEEN", "TIMES", "SOURCES"]);
    for h in hosts {
        t.row(vec![
            h.ip.to_string(),
            port_text(h.port),
            time(&h.first_seen),
            time(&h.last_seen),
            h.times_seen.to_string(),
            h.sources.join(","),
        ]);
    }
    t.print(out)?;
    Ok(())
}

fn print_record(r: &read::CertDetail, out: &mut impl Write) -> Result<(), Failure> {
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
        ("distinct IPs", r.distinct_ips.to_string()),
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
            e.entry_type,
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
    Ok(())
}

pub(crate) async fn search(
    store: &Store,
    a: &QuerySearchArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let field = SearchField::parse(&a.field)?;
    let pattern = MatchPattern::parse(&a.value)?;
    let conn = store.conn().await?;
    let mut hits = Vec::new();
    let mut after: Option<read::SearchKey> = None;
    while (hits.len() as i64) < a.limit {
        let want = PAGE.min(a.limit - hits.len() as i64);
        let page = read::search(&conn, field, &pattern, after.as_ref(), want).await?;
        let done = (page.len() as i64) < want;
        after = page.last().map(|h| (h.matched.clone(), h.cert.sha1));
        hits.extend(page);
        if done {
            break;
        }
    }
    if json {
        for h in &hits {
            ndjson(out, h)?;
        }
        return Ok(exit::OK);
    }
    if hits.is_empty() {
        writeln!(
            out,
            "no certificate matches {} {}",
            a.field,
            clean(&a.value)
        )?;
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
    ]);
    for h in &hits {
        let c = &h.cert;
        t.row(vec![
            hex::encode(c.sha1),
            h.matched.clone(),
            opt(&c.subject_cn),
            opt(&c.issuer_cn),
            c.serial
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "-".to_owned()),
            opt_time(&c.not_before),
            opt_time(&c.not_after),
        ]);
    }
    t.print(out)?;
    if hits.len() as i64 >= a.limit {
        writeln!(out, "(first {} matches; raise --limit for more)", a.limit)?;
    }
    Ok(exit::OK)
}
