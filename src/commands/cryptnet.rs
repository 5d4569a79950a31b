//! `certhist cryptnet`, `certhist ingest crtsh` (crate certhist-cryptnet) and `certhist ingest ct`
//! (crate certhist-ct).

use certhist_cryptnet::cli::{run_crtsh, run_cryptnet, CryptnetArgs};
use certhist_cryptnet::CryptnetError;

use super::Failure;
use crate::cli::{Cli, IngestCommand};
use crate::exit;

impl From<CryptnetError> for Failure {
    fn from(e: CryptnetError) -> Self {
        match e {
            CryptnetError::Usage(m) => Failure::Usage(m),
            other => Failure::Other(anyhow::Error::new(other)),
        }
    }
}

pub(crate) async fn cryptnet(cli: &Cli, args: &CryptnetArgs) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let rows = run_cryptnet(args, &store, cli.json).await?;
    Ok(if rows == 0 { exit::NOT_FOUND } else { exit::OK })
}

pub(crate) async fn ingest(cli: &Cli, command: &IngestCommand) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    match command {
        IngestCommand::Ct(args) => {
            let stats = certhist_ct::cli::run(args.clone(), &store, cli.json)
                .await
                .map_err(|e| Failure::Other(anyhow::Error::new(e)))?;
            Ok(if stats.is_empty() {
                exit::NOT_FOUND
            } else {
                exit::OK
            })
        }
        IngestCommand::Crtsh(args) => {
            let summary = run_crtsh(args, &store, cli.json).await?;
            Ok(if summary.failed > 0 && summary.downloaded == 0 {
                exit::FAILURE
            } else {
                exit::OK
            })
        }
    }
}
