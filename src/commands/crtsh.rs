//! `certhist ingest crtsh` (crate certhist-crtsh).

use certhist_crtsh::{CrtshConfig, FetchConfig, IngestError, IngestRequest, IngestSummary};

use super::Failure;
use crate::cli::{Cli, CrtshArgs};
use crate::exit;
use crate::output::Table;

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
