//! `certhist scan`: flags become [`ScanOptions`], the scanner of certhist-scan does the work, and
//! this module draws its progress and prints the summary (every text from a certificate or a
//! target through [`clean`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use certhist_scan::scanner::{scan_with_progress, ScanEvent, ScanOptions, ScanSummary, SniMode};
use certhist_scan::ScanError;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson, Table};

/// `certhist scan TARGET...`
#[derive(Debug, Clone, Args)]
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

/// Leaf certificates listed in the human summary (`--json` lists up to
/// [`certhist_scan::scanner::MAX_CERTIFICATES_KEPT`]).
const MAX_CERTIFICATES_SHOWN: usize = 100;

impl From<ScanError> for Failure {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::InvalidArgument(m) => Failure::Usage(m),
            e @ ScanError::BadTarget { .. } => Failure::Usage(e.to_string()),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

/// The scan settings the flags ask for.
fn options(args: &ScanArgs) -> Result<ScanOptions, Failure> {
    let exclude = match &args.exclude {
        Some(p) => certhist_scan::targets::read_excludes(p)?,
        None => Vec::new(),
    };
    let sni = match (&args.sni, args.sni_from_names) {
        (Some(n), _) => SniMode::Fixed(n.clone()),
        (None, true) => SniMode::FromNames,
        (None, false) => SniMode::Auto,
    };
    Ok(ScanOptions {
        ports: args.ports.clone(),
        sni,
        concurrency: args.concurrency.max(1),
        rate_per_s: args.rate,
        timeout: args.timeout,
        exclude,
        source: args.label.clone().unwrap_or_else(|| "scan".to_owned()),
        ..ScanOptions::default()
    })
}

pub(crate) async fn scan(cli: &Cli, args: &ScanArgs) -> Result<u8, Failure> {
    let options = options(args)?;
    let store = crate::open_store(cli).await?;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} scanning: {pos} connections ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let progress = |event: &ScanEvent| {
        if let ScanEvent::Connecting { attempts } = event {
            bar.set_position(*attempts);
        }
    };
    let result = scan_with_progress(&store, args.targets.clone(), &options, &progress).await;
    bar.finish_and_clear();
    let summary = result?;
    let mut out = std::io::stdout().lock();
    if cli.json {
        ndjson(&mut out, &summary)?;
    } else {
        print_summary(&mut out, &summary)?;
    }
    Ok(if summary.attempts > 0 && summary.handshakes_ok == 0 {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}

/// The human summary: counts, then the leaf certificates received.
pub(crate) fn print_summary(out: &mut impl Write, s: &ScanSummary) -> std::io::Result<()> {
    let f = &s.failures;
    writeln!(out, "connections   {}", s.attempts)?;
    writeln!(
        out,
        "handshakes    {} ({:.1}/s)",
        s.handshakes_ok, s.handshakes_per_s
    )?;
    writeln!(
        out,
        "certificates  {} received, {} new",
        s.certs_seen, s.certs_new
    )?;
    writeln!(out, "sightings     {}", s.sightings)?;
    writeln!(
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
    )?;
    if s.excluded > 0 {
        writeln!(out, "excluded      {}", s.excluded)?;
    }
    for b in &s.bad_targets {
        writeln!(out, "bad target    {}", clean(b))?;
    }
    if s.certificates.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let mut table = Table::new(&["SHA1", "SERVED BY", "SUBJECT CN", "SUBJECT O", "SAN"]);
    for c in s.certificates.iter().take(MAX_CERTIFICATES_SHOWN) {
        table.row(vec![
            c.sha1.clone(),
            std::net::SocketAddr::new(c.ip, c.port).to_string(),
            c.subject_cn
                .clone()
                .unwrap_or_else(|| if c.unparsable { "(unparsable)" } else { "-" }.to_owned()),
            c.subject_o.clone().unwrap_or_else(|| "-".to_owned()),
            if c.san.is_empty() {
                "-".to_owned()
            } else {
                c.san.join(", ")
            },
        ]);
    }
    table.print(out)?;
    if s.certificates.len() > MAX_CERTIFICATES_SHOWN {
        writeln!(
            out,
            "… {} more leaf certificates (--json lists them)",
            s.certificates.len() - MAX_CERTIFICATES_SHOWN
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
