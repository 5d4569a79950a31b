//! `certhist scan`: flags become [`ScanOptions`], the scanner of certhist-scan does the work, and
//! this module draws its progress and prints the summary (every text from a certificate or a
//! target through [`clean`]).

use std::io::Write;
use std::time::Duration;

use certhist_scan::scanner::{scan_with_progress, ScanEvent, ScanOptions, ScanSummary, SniMode};
use certhist_scan::ScanError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Failure;
use crate::cli::{Cli, ScanArgs};
use crate::exit;
use crate::output::{clean, ndjson, Table};

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
