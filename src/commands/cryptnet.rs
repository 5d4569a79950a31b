//! `certhist cryptnet` (crate certhist-cryptnet): flags, progress, and the report printer (human
//! table, CSV, NDJSON) that `certhist demo` shares.

use std::io::Write;
use std::path::{Path, PathBuf};

use certhist_crtsh::CrtshConfig;
use certhist_cryptnet::{
    analyze_paths, Analysis, AnalyzeOptions, CryptnetError, CryptnetRow, Progress, ResolveMode,
};
use certhist_store::Store;
use chrono::{DateTime, Utc};

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson, opt_time, time, Table};

/// `certhist cryptnet PATH...`
#[derive(Clone, Debug, clap::Args)]
pub struct CryptnetArgs {
    /// CryptnetUrlCache folder, MetaData folder, collected disk/profile tree, .zip of one,
    /// `certutil -urlcache` dump or URL list.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Collection label (host or case) for `--store`.
    #[arg(long, default_value = "unlabelled")]
    pub label: String,
    /// Where to resolve CertIDs.
    #[arg(long, value_enum, default_value = "local")]
    pub resolve: ResolveArg,
    /// Keep every entry in the database (cache_entries) and import cached certificates.
    #[arg(long)]
    pub store: bool,
    /// CSV output (the global `--json` gives NDJSON, one row per line).
    #[arg(long)]
    pub csv: bool,
    /// crt.sh base URL (mirrors, tests).
    #[arg(long, default_value = "https://crt.sh/")]
    pub crtsh_url: String,
    /// crt.sh requests in flight.
    #[arg(long, default_value_t = 4)]
    pub crtsh_concurrency: usize,
}

/// `--resolve`: where CertIDs are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ResolveArg {
    /// The local database.
    Local,
    /// crt.sh only.
    Crtsh,
    /// The database, then crt.sh for what it cannot resolve.
    Both,
    /// Parse and decode only.
    None,
}

impl From<ResolveArg> for ResolveMode {
    fn from(r: ResolveArg) -> Self {
        match r {
            ResolveArg::Local => ResolveMode::Local,
            ResolveArg::Crtsh => ResolveMode::Crtsh,
            ResolveArg::Both => ResolveMode::Both,
            ResolveArg::None => ResolveMode::None,
        }
    }
}

/// How the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// A table, with detail lines under each row.
    Human,
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header.
    Csv,
}

impl From<CryptnetError> for Failure {
    fn from(e: CryptnetError) -> Self {
        match e {
            CryptnetError::NoEntries { .. } => Failure::Usage(e.to_string()),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

pub(crate) async fn run(cli: &Cli, args: &CryptnetArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let opts = AnalyzeOptions {
        resolve: args.resolve.into(),
        store_label: args.store.then(|| args.label.clone()),
        crtsh: CrtshConfig {
            base_url: args.crtsh_url.clone(),
            fetch: certhist_crtsh::FetchConfig {
                concurrency: args.crtsh_concurrency,
                ..CrtshConfig::default().fetch
            },
        },
    };
    let format = if cli.json {
        Format::Ndjson
    } else if args.csv {
        Format::Csv
    } else {
        Format::Human
    };
    let analysis = analyze_with_spinner(&args.paths, &opts, &store).await?;
    print_warnings(&analysis.warnings);
    write_report(&analysis.rows, format, &mut std::io::stdout().lock())?;
    Ok(if analysis.rows.is_empty() {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}

/// The cryptnet part of `certhist demo`: analyses the cache folder `cache_dir`, stores it under
/// the label `demo` and prints the human report to `out`.
pub(crate) async fn demo(
    store: &Store,
    input: &Path,
    store_label: Option<&str>,
    out: &mut impl Write,
) -> Result<usize, Failure> {
    let opts = AnalyzeOptions {
        resolve: ResolveMode::Local,
        store_label: store_label.map(str::to_owned),
        crtsh: CrtshConfig::default(),
    };
    let analysis = analyze_with_spinner(&[input.to_path_buf()], &opts, store).await?;
    print_warnings(&analysis.warnings);
    write_report(&analysis.rows, Format::Human, out)?;
    Ok(analysis.rows.len())
}

/// Runs the analysis with a spinner on stderr (hidden when stderr is not a terminal). When no
/// input held an entry, prints why (the read warnings) and fails with exit code 2.
async fn analyze_with_spinner(
    paths: &[PathBuf],
    opts: &AnalyzeOptions,
    store: &Store,
) -> Result<Analysis, Failure> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner.set_message("reading caches");
    let shown = spinner.clone();
    let result = analyze_paths(paths, opts, store, move |p| {
        shown.set_message(progress_text(&p));
    })
    .await;
    spinner.finish_and_clear();
    match result {
        Err(CryptnetError::NoEntries { warnings }) => {
            print_warnings(&warnings);
            Err(Failure::Usage("no cache entries found".into()))
        }
        other => Ok(other?),
    }
}

/// A progress event as a spinner message (paths cleaned: they come from the suspect machine).
fn progress_text(p: &Progress) -> String {
    match p {
        Progress::Reading { path } => format!("reading {}", clean(&path.display().to_string())),
        Progress::Loaded { entries } => format!("{entries} cache entries read"),
        Progress::Storing { rows, certs } => {
            format!("storing {rows} cache entries and {certs} certificates")
        }
        Progress::ResolvingLocal { cert_ids } => {
            format!("resolving {cert_ids} CertIDs in the database")
        }
        Progress::QueryingCrtsh { cert_ids } => format!("asking crt.sh about {cert_ids} CertIDs"),
        Progress::CrtshDone { done, total } => format!("crt.sh: {done}/{total} CertIDs"),
        _ => "analysing".to_owned(),
    }
}

/// Prints warnings to stderr, cleaned.
fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {}", clean(w));
    }
}

/// CSV columns, in order.
const CSV_HEADER: [&str; 14] = [
    "time",
    "url",
    "kind",
    "content",
    "serial",
    "issuer",
    "status",
    "this_update",
    "next_update",
    "matched_cert",
    "names",
    "ips",
    "errors",
    "source",
];

/// Writes the report rows in `format`. Every text cell passes [`clean`]: URLs, names and errors
/// come from the suspect machine's cache and from certificates.
pub(crate) fn write_report(
    rows: &[CryptnetRow],
    format: Format,
    out: &mut impl Write,
) -> Result<(), Failure> {
    match format {
        Format::Ndjson => {
            for row in rows {
                ndjson(out, row)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let csv_err = |e: csv::Error| Failure::Other(anyhow::Error::new(e));
            w.write_record(CSV_HEADER).map_err(csv_err)?;
            for row in rows {
                w.write_record(csv_cells(row).iter().map(|c| clean(c)))
                    .map_err(csv_err)?;
            }
            w.flush()?;
        }
        Format::Human => {
            let mut t = Table::new(&["TIME", "KIND", "CONTENT", "SERIAL", "STATUS", "URL"]);
            for row in rows {
                t.row(vec![
                    opt_time(&row.time),
                    row.kind.as_str().to_owned(),
                    dash(row.content_kind.map(|k| k.as_str())),
                    dash(row.serial.as_deref()),
                    dash(row.status.map(|s| s.as_str())),
                    dash(row.url.as_deref()),
                ]);
                let cells = Cells::of(row, time);
                for (label, text) in [
                    ("issuer", row.issuer.clone().unwrap_or_default()),
                    ("cert", cells.matched),
                    ("names", cells.names),
                    ("ips", cells.ips),
                    ("errors", row.errors.join("; ")),
                ] {
                    if !text.is_empty() {
                        t.detail(label, &text);
                    }
                }
            }
            t.print(out)?;
        }
    }
    Ok(())
}

fn dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

/// The multi-valued parts of a row as text: matched certificates, the best match's names and
/// hosts.
struct Cells {
    matched: String,
    names: String,
    ips: String,
}

impl Cells {
    fn of(row: &CryptnetRow, time: fn(&DateTime<Utc>) -> String) -> Self {
        let certs = row.resolution.as_ref().map(|r| r.certs.as_slice());
        let best = certs.and_then(|c| c.first());
        Cells {
            matched: certs
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{} ({})", c.sha1, c.match_kind.as_str()))
                .collect::<Vec<_>>()
                .join(" "),
            names: best.map(|c| c.names.join(" ")).unwrap_or_default(),
            ips: best
                .map(|c| {
                    c.hosts
                        .iter()
                        .map(|h| {
                            format!(
                                "{}:{} {}..{}",
                                h.ip,
                                h.port,
                                time(&h.first_seen),
                                time(&h.last_seen)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
        }
    }
}

/// A CSV time: `2024-02-29 07:14:00` (UTC).
fn csv_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional CSV time, empty when absent.
fn csv_opt_time(t: Option<DateTime<Utc>>) -> String {
    t.as_ref().map(csv_time).unwrap_or_default()
}

/// The CSV cells of a row (before cleaning), in [`CSV_HEADER`] order.
fn csv_cells(row: &CryptnetRow) -> [String; 14] {
    let cells = Cells::of(row, csv_time);
    [
        csv_opt_time(row.time),
        row.url.clone().unwrap_or_default(),
        row.kind.as_str().to_owned(),
        row.content_kind
            .map(|k| k.as_str().to_owned())
            .unwrap_or_default(),
        row.serial.clone().unwrap_or_default(),
        row.issuer.clone().unwrap_or_default(),
        row.status
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        csv_opt_time(row.this_update),
        csv_opt_time(row.next_update),
        cells.matched,
        cells.names,
        cells.ips,
        row.errors.join("; "),
        row.source.clone(),
    ]
}
