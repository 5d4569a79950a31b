//! `certhist ingest crtsh` (crate certhist-crtsh).

use certhist_crtsh::{CrtshConfig, FetchConfig, IngestError, IngestRequest, IngestSummary};
use clap::Args;

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::Table;

/// `certhist ingest crtsh …`
#[derive(Clone, Debug, Args)]
pub struct CrtshArgs {
    /// Identity (domain, name) search.
    #[arg(long)]
    pub query: Option<String>,
    /// Match mode for --query.
    #[arg(long = "match", value_enum)]
    pub match_mode: Option<CrtshMatch>,
    /// Leave out expired certificates.
    #[arg(long)]
    pub exclude_expired: bool,
    /// Serial number (hex).
    #[arg(long)]
    pub serial: Option<String>,
    /// Certificate SHA-1.
    #[arg(long)]
    pub sha1: Option<String>,
    /// Certificate SHA-256.
    #[arg(long)]
    pub sha256: Option<String>,
    /// crt.sh certificate ids to download.
    #[arg(long)]
    pub id: Vec<u64>,
    /// crt.sh base URL.
    #[arg(long, default_value = "https://crt.sh/")]
    pub crtsh_url: String,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// crt.sh identity match mode (`--match`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CrtshMatch {
    /// Exact (`=`).
    #[value(name = "=")]
    Exact,
    /// Case-insensitive LIKE.
    #[value(name = "ILIKE")]
    Ilike,
    /// LIKE.
    #[value(name = "LIKE")]
    Like,
}

impl From<CrtshMatch> for certhist_crtsh::MatchMode {
    fn from(m: CrtshMatch) -> Self {
        match m {
            CrtshMatch::Exact => certhist_crtsh::MatchMode::Exact,
            CrtshMatch::Ilike => certhist_crtsh::MatchMode::Ilike,
            CrtshMatch::Like => certhist_crtsh::MatchMode::Like,
        }
    }
}

impl From<IngestError> for Failure {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::NothingAsked => {
                Failure::Usage("give --query, --serial, --sha1, --sha256 or --id".into())
            }
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

pub(crate) async fn run(cli: &Cli, args: &CrtshArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let summary = ingest(args, &store, cli.json).await?;
    Ok(if summary.failed > 0 && summary.downloaded == 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// Searches, downloads, checks and stores; prints the summary as `ingest ct` does: one NDJSON
/// object, or a table.
async fn ingest(
    args: &CrtshArgs,
    store: &certhist_store::Store,
    json: bool,
) -> Result<IngestSummary, Failure> {
    let defaults = CrtshConfig::default();
    let config = CrtshConfig {
        base_url: args.crtsh_url.clone(),
        fetch: FetchConfig {
            concurrency: args.concurrency.max(1),
            ..defaults.fetch
        },
    };
    let request = IngestRequest {
        name: args.query.clone(),
        match_mode: args.match_mode.map(Into::into),
        exclude_expired: args.exclude_expired,
        serial: args.serial.clone(),
        sha1: args.sha1.clone(),
        sha256: args.sha256.clone(),
        ids: args.id.clone(),
    };
    let s = certhist_crtsh::ingest(&request, store, config).await?;
    let mut out = std::io::stdout().lock();
    if json {
        crate::output::ndjson(&mut out, &s)?;
    } else {
        if s.capped {
            eprintln!("warning: crt.sh returned 10,000 rows: results are cut; narrow the query");
        }
        let mut t = Table::new(&[
            "SOURCE",
            "ROWS",
            "CAPPED",
            "DOWNLOADED",
            "NEW",
            "KNOWN",
            "MISMATCHED",
            "FAILED",
        ]);
        t.row(vec![
            args.crtsh_url.clone(),
            s.rows.to_string(),
            if s.capped { "yes" } else { "no" }.to_owned(),
            s.downloaded.to_string(),
            s.new.to_string(),
            s.known.to_string(),
            s.mismatched.to_string(),
            s.failed.to_string(),
        ]);
        t.print(&mut out)?;
    }
    Ok(s)
}
