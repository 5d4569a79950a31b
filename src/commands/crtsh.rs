//! `certhist ingest crtsh` (crate certhist-crtsh).

use std::io::Write;

use certhist_crtsh::{CrtshConfig, IngestError, IngestRequest, IngestSummary};

use super::Failure;
use crate::cli::{Cli, CrtshArgs};
use crate::exit;

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

/// Searches, downloads, checks and stores; prints the summary.
async fn ingest(
    args: &CrtshArgs,
    store: &certhist_store::Store,
    json: bool,
) -> Result<IngestSummary, Failure> {
    let config = CrtshConfig {
        base_url: args.crtsh_url.clone(),
        concurrency: args.concurrency,
        ..CrtshConfig::default()
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
        writeln!(
            out,
            "crt.sh: {} rows{}, {} downloaded ({} new, {} known), {} mismatched, {} failed",
            s.rows,
            if s.capped {
                " (10,000-row cap hit)"
            } else {
                ""
            },
            s.downloaded,
            s.new,
            s.known,
            s.mismatched,
            s.failed
        )?;
    }
    Ok(s)
}
