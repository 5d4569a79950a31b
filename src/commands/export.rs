//! `certhist export --format ndjson|csv|stix|misp ip|cert|search|expand|tag …`: the same
//! streamed export as `GET /api/v1/export` (`certhist_api::export`), byte for byte, to stdout or
//! to a file (`-o`, written beside it as `FILE.partial` and renamed when complete, so a failed
//! export never leaves a truncated file under the name asked for).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use certhist_api::export::{self, ExportRequest, Selector};
use certhist_model::views::{parse_tag, ExportFormat, MatchMode};
use certhist_model::{parse_cert_hash, views::Commonness};
use certhist_store::read::{self, ExpandRequest, MatchPattern, Seed};
use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::query::{parse_window, WindowArgs};
use super::Failure;
use crate::cli::Cli;
use crate::exit;

/// `certhist export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// ndjson (passive-SSL common output format: ip, port, cert_sha1, time_first, time_last,
    /// count, source), csv (the same with a header), stix (STIX 2.1 bundle), misp (MISP event).
    #[arg(long, default_value = "ndjson", value_parser = parse_format)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub window: WindowArgs,
    /// What to export.
    #[command(subcommand)]
    pub what: ExportWhat,
}

/// What an export covers.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// The certificate history of an address or CIDR block.
    Ip {
        /// An IPv4/IPv6 address or a CIDR block.
        target: String,
    },
    /// Every host that served a certificate (reverse search).
    Cert {
        /// SHA-1 or SHA-256 (colons allowed).
        hash: String,
    },
    /// The hosts of every certificate whose field matches (fields as `query search`).
    Search {
        /// Field.
        field: String,
        /// Value: exact, `*.example.com`, `prefix*` or `*contains*`.
        value: String,
        /// How VALUE is read: auto, exact, prefix, suffix, contains, regex.
        #[arg(long = "match", default_value = "auto")]
        match_mode: String,
    },
    /// The sightings on the edges of the bounded graph around a seed (as `query expand`).
    Expand {
        /// An address, CIDR block, certificate hash or name.
        seed: String,
        /// Edges to follow from the seed.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=6))]
        hops: u32,
        /// Node budget.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=2000))]
        max_nodes: u32,
        /// Expand shared certificates too.
        #[arg(long)]
        include_shared: bool,
    },
    /// Everything carrying a tag (addresses, blocks, certificates, names).
    Tag {
        /// The tag.
        tag: String,
    },
}

fn parse_format(text: &str) -> Result<ExportFormat, String> {
    ExportFormat::from_name(text).ok_or_else(|| "use one of ndjson, csv, stix, misp".to_owned())
}

fn selector(what: &ExportWhat, window: read::TimeWindow) -> Result<Selector, Failure> {
    Ok(match what {
        ExportWhat::Ip { target } => {
            let t = target.trim();
            let net = match t.parse::<std::net::IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => t.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
                    Failure::Usage(format!("{t:?} is not an IP address or CIDR block"))
                })?,
            };
            Selector::Ip(net)
        }
        ExportWhat::Cert { hash } => {
            Selector::Cert(parse_cert_hash(hash).map_err(|e| Failure::Usage(e.to_string()))?)
        }
        ExportWhat::Search {
            field,
            value,
            match_mode,
        } => {
            let field = read::search::parse_field(field)?;
            let mode = MatchMode::from_name(match_mode).ok_or_else(|| {
                Failure::Usage(
                    "--match: use one of auto, exact, prefix, suffix, contains, regex".to_owned(),
                )
            })?;
            let pattern = MatchPattern::with_mode(mode, value)?;
            Selector::Search {
                field,
                value: value.clone(),
                pattern,
            }
        }
        ExportWhat::Expand {
            seed,
            hops,
            max_nodes,
            include_shared,
        } => Selector::Expand(ExpandRequest {
            seed_text: seed.clone(),
            seed: Seed::parse(seed),
            hops: *hops,
            max_nodes: usize::try_from(*max_nodes).unwrap_or(1),
            shared_threshold: Commonness::DEFAULT_THRESHOLD,
            include_shared: *include_shared,
            window,
        }),
        ExportWhat::Tag { tag } => {
            Selector::Tag(parse_tag(tag).map_err(|e| Failure::Usage(e.to_string()))?)
        }
    })
}

pub(crate) async fn run(cli: &Cli, args: &ExportArgs) -> Result<u8, Failure> {
    let window = parse_window(&args.window)?;
    let selector = selector(&args.what, window)?;
    let store = crate::open_store(cli).await?;
    let prepared = export::prepare(
        &store,
        ExportRequest {
            selector,
            window,
            format: args.format,
        },
    )
    .await?;
    let mut rx = export::spawn(store, prepared);
    let (mut sink, partial): (Box<dyn Write + Send>, Option<(PathBuf, PathBuf)>) =
        match &args.output {
            None => (
                Box::new(std::io::BufWriter::with_capacity(
                    1 << 16,
                    std::io::stdout(),
                )),
                None,
            ),
            Some(path) => {
                let mut tmp = path.clone().into_os_string();
                tmp.push(".partial");
                let tmp = PathBuf::from(tmp);
                let file = std::fs::File::create(&tmp).map_err(|e| {
                    Failure::Other(anyhow::anyhow!("cannot create {}: {e}", tmp.display()))
                })?;
                (
                    Box::new(std::io::BufWriter::new(file)),
                    Some((tmp, path.clone())),
                )
            }
        };
    // Progress on stderr when writing a file from a terminal.
    let bar = (partial.is_some() && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {binary_bytes} written ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let mut failed = None;
    while let Some(item) = rx.recv().await {
        match item {
            Ok(chunk) => {
                if let Err(e) = sink.write_all(&chunk) {
                    failed = Some(Failure::from(e));
                    break;
                }
                if let Some(b) = &bar {
                    b.inc(u64::try_from(chunk.len()).unwrap_or(0));
                }
            }
            Err(e) => {
                failed = Some(Failure::from(e));
                break;
            }
        }
    }
    drop(rx);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let flushed = sink.flush();
    drop(sink);
    if let Some(f) = failed {
        if let Some((tmp, _)) = &partial {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(f);
    }
    flushed?;
    if let Some((tmp, path)) = partial {
        std::fs::rename(&tmp, &path)?;
    }
    Ok(exit::OK)
}
