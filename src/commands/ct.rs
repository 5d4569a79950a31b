//! `certhist ingest ct` (crate certhist-ct).

use super::Failure;
use crate::cli::Cli;
use crate::exit;

pub(crate) async fn run(cli: &Cli, args: &certhist_ct::cli::CtArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let stats = certhist_ct::cli::run(args.clone(), &store, cli.json)
        .await
        .map_err(|e| Failure::Other(anyhow::Error::new(e)))?;
    Ok(if stats.is_empty() {
        exit::NOT_FOUND
    } else {
        exit::OK
    })
}
