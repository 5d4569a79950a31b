//! Command-line arguments and runners for `certhist scan …` and `certhist import
//! zgrab2|sonar|nmap|masscan …`. Summaries go to stdout (a table, or one JSON object with
//! `--json`); progress bars and warnings go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use certhist_store::Store;
use chrono::{DateTime, NaiveDate, Utc};

use crate::scanner::{ScanOptions, ScanSummary, SniMode};
use crate::{ImportOptions, ImportSummary, ScanError};

/// `certhist scan TARGET...`
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// IP addresses, CIDR blocks, ranges (a-b), host names, or files of targets (`@FILE` or a path).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Ports to scan on every address.
    #[arg(long, value_delimiter = ',', default_value = "443")]
    pub ports: Vec<u16>,
    /// SNI name to send to every target (default: the host name for host-name targets, none for addresses).
    #[arg(long, conflicts_with = "sni_from_names")]
    pub sni: Option<String>,
    /// After each handshake, handshake again with each DNS name of the certificate received (virtual hosts).
    #[arg(long)]
    pub sni_from_names: bool,
    /// Handshakes in flight at most.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// New connections per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Per-connection timeout (`5s`, `500ms`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// File of addresses / CIDR blocks never to connect to.
    #[arg(long)]
    pub exclude: Option<PathBuf>,
    /// Source label stored with the sightings (default `scan`).
    #[arg(long)]
    pub label: Option<String>,
}

/// `certhist import <format> …`
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Format of the scan data.
    #[command(subcommand)]
    pub format: ImportFormat,
}

/// Scan-data formats.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImportFormat {
    /// ZGrab2 JSON (tls, http over TLS, other modules with a tls block), pretty-printed JSON, 2015 ZGrab logs.
    Zgrab2(Zgrab2Args),
    /// Rapid7 Project Sonar SSL certs (`sha1,base64-DER`) and hosts (`ip,sha1`) files.
    Sonar(SonarArgs),
    /// nmap XML with the ssl-cert script.
    Nmap(FilesArgs),
    /// masscan -oX / -oJ / -oD / -oL output with X509 banners.
    Masscan(FilesArgs),
}

/// Options shared by every import.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonImportArgs {
    /// Source label stored with the sightings (default: the format name).
    #[arg(long)]
    pub label: Option<String>,
    /// Records per batch (one transaction each, with the file's resume cursor).
    #[arg(long, default_value_t = 50_000)]
    pub batch: usize,
}

/// `certhist import zgrab2 FILE...`
#[derive(Debug, Clone, clap::Args)]
pub struct Zgrab2Args {
    /// Files (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Port for records that do not state one and whose file name does not end in `_<port>`.
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// `certhist import sonar --certs FILE --hosts FILE`
#[derive(Debug, Clone, clap::Args)]
pub struct SonarArgs {
    /// Certificates file (`sha1,base64-DER` lines).
    #[arg(long, required_unless_present = "hosts")]
    pub certs: Option<PathBuf>,
    /// Hosts file (`ip,sha1` lines).
    #[arg(long)]
    pub hosts: Option<PathBuf>,
    /// Scan date YYYYMMDD (or YYYY-MM-DD); default: from the hosts file name.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<DateTime<Utc>>,
    /// Port of the sightings (default: from the file name, else 443).
    #[arg(long)]
    pub port: Option<u16>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// Files to import.
#[derive(Debug, Clone, clap::Args)]
pub struct FilesArgs {
    /// Files (gzip / bzip2 read transparently).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Shared import options.
    #[command(flatten)]
    pub common: CommonImportArgs,
}

/// Parses `5s`, `500ms`, `2m`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (5s, 500ms, 1m)"))?;
    if !(v.is_finite() && v > 0.0 && v * mult < 86_400.0) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Parses `YYYYMMDD` or `YYYY-MM-DD` as midnight UTC.
pub fn parse_date(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let d = NaiveDate::parse_from_str(t, "%Y%m%d")
        .or_else(|_| NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .map_err(|_| format!("{text:?} is not a date (YYYYMMDD)"))?;
    d.and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date"))
}

/// Runs `certhist scan`.
pub async fn run_scan(args: ScanArgs, store: &Store, json: bool) -> Result<ScanSummary, ScanError> {
    let exclude = match &args.exclude {
        Some(p) => crate::targets::read_excludes(p)?,
        None => Vec::new(),
    };
    let sni = match (&args.sni, args.sni_from_names) {
        (Some(n), _) => SniMode::Fixed(n.clone()),
        (None, true) => SniMode::FromNames,
        (None, false) => SniMode::Auto,
    };
    let options = ScanOptions {
        ports: args.ports.clone(),
        sni,
        concurrency: args.concurrency.max(1),
        rate_per_s: args.rate,
        timeout: args.timeout,
        exclude,
        source: args.label.clone().unwrap_or_else(|| "scan".to_owned()),
        progress: !json,
        ..ScanOptions::default()
    };
    let summary = crate::scanner::scan(store, args.targets, &options).await?;
    print_scan(&summary, json);
    Ok(summary)
}

fn print_scan(s: &ScanSummary, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string(s).unwrap_or_default());
        return;
    }
    let f = &s.failures;
    let _ = writeln!(out, "connections   {}", s.attempts);
    let _ = writeln!(
        out,
        "handshakes    {} ({:.1}/s)",
        s.handshakes_ok, s.handshakes_per_s
    );
    let _ = writeln!(
        out,
        "certificates  {} received, {} new",
        s.certs_seen, s.certs_new
    );
    let _ = writeln!(out, "sightings     {}", s.sightings);
    let _ = writeln!(
        out,
        "failures      {} (refused {}, timeout {}, reset {}, closed {}, not TLS {}, handshake {}, no certificate {}, network {})",
        f.total(),
        f.refused,
        f.timeout,
        f.reset,
        f.closed,
        f.not_tls,
        f.handshake,
        f.no_certificate,
        f.network
    );
    if s.excluded > 0 {
        let _ = writeln!(out, "excluded      {}", s.excluded);
    }
    for b in &s.bad_targets {
        let _ = writeln!(out, "bad target    {}", sanitize(b));
    }
}

/// Runs `certhist import …`; returns one summary per file.
pub async fn run_import(
    args: ImportArgs,
    store: &Store,
    json: bool,
) -> Result<Vec<ImportSummary>, ScanError> {
    let mut all = Vec::new();
    match args.format {
        ImportFormat::Zgrab2(a) => {
            let opts = options(&a.common, json);
            let label = a
                .common
                .label
                .clone()
                .unwrap_or_else(|| "zgrab2".to_owned());
            for f in &a.files {
                all.push(crate::import_zgrab2(store, f, a.port, &label, &opts).await?);
            }
        }
        ImportFormat::Sonar(a) => {
            let opts = options(&a.common, json);
            let label = a.common.label.clone().unwrap_or_else(|| "sonar".to_owned());
            all = crate::import_sonar(
                store,
                a.certs.as_deref(),
                a.hosts.as_deref(),
                a.date,
                a.port,
                &label,
                &opts,
            )
            .await?;
        }
        ImportFormat::Nmap(a) => {
            let opts = options(&a.common, json);
            let label = a.common.label.clone().unwrap_or_else(|| "nmap".to_owned());
            for f in &a.files {
                all.push(crate::import_nmap(store, f, &label, &opts).await?);
            }
        }
        ImportFormat::Masscan(a) => {
            let opts = options(&a.common, json);
            let label = a
                .common
                .label
                .clone()
                .unwrap_or_else(|| "masscan".to_owned());
            for f in &a.files {
                all.push(crate::import_masscan(store, f, &label, &opts).await?);
            }
        }
    }
    print_imports(&all, json);
    Ok(all)
}

fn options(common: &CommonImportArgs, json: bool) -> ImportOptions {
    ImportOptions {
        batch_items: common.batch.max(1),
        max_batches: None,
        progress: !json,
    }
}

/// Strips control characters from file-derived text before printing to a terminal.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn print_imports(all: &[ImportSummary], json: bool) {
    let mut out = std::io::stdout().lock();
    for s in all {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(s).unwrap_or_default());
            continue;
        }
        let _ = writeln!(out, "{} ({})", sanitize(&s.file), s.kind);
        if s.already_imported {
            let _ = writeln!(
                out,
                "  already imported (sha256 {}): nothing changed",
                s.content_sha256
            );
            continue;
        }
        if s.resumed_after_items > 0 {
            let _ = writeln!(
                out,
                "  resumed after {} records of an interrupted import",
                s.resumed_after_items
            );
        }
        let _ = writeln!(
            out,
            "  records {} ({} without certificate), certificates {} seen / {} new / {} known ({} unparsable), sightings {}, problems {}, {} ms",
            s.records,
            s.records_without_certificate,
            s.certs_seen,
            s.certs_new,
            s.certs_known,
            s.certs_unparsable,
            s.sightings,
            s.problems_total,
            s.elapsed_ms
        );
        for p in &s.problems {
            let _ = writeln!(out, "  line {}: {}", p.line, sanitize(&p.message));
        }
        if s.problems_total > s.problems.len() as u64 {
            let _ = writeln!(
                out,
                "  … {} more problems",
                s.problems_total - s.problems.len() as u64
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
        assert_eq!(
            parse_date("20170102").unwrap().to_rfc3339(),
            "2017-01-02T00:00:00+00:00"
        );
        assert!(parse_date("20171302").is_err());
    }
}
