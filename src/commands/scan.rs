//! `certhist scan` and `certhist import zgrab2|sonar|nmap|masscan` (crate certhist-scan).

use certhist_scan::cli::{run_import, run_scan, ImportArgs, ImportFormat, ScanArgs};
use certhist_scan::ScanError;

use super::Failure;
use crate::cli::Cli;
use crate::exit;

impl From<ScanError> for Failure {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::InvalidArgument(m) => Failure::Usage(m),
            e @ ScanError::BadTarget { .. } => Failure::Usage(e.to_string()),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

pub(crate) async fn scan(cli: &Cli, args: &ScanArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let summary = run_scan(args.clone(), &store, cli.json).await?;
    Ok(if summary.attempts > 0 && summary.handshakes_ok == 0 {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}

pub(crate) async fn import(cli: &Cli, format: &ImportFormat) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    run_import(
        ImportArgs {
            format: format.clone(),
        },
        &store,
        cli.json,
    )
    .await?;
    Ok(exit::OK)
}
