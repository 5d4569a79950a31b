//! `certhist cryptnet` (crate certhist-cryptnet).

use certhist_cryptnet::cli::{run_cryptnet, CryptnetArgs};
use certhist_cryptnet::CryptnetError;

use super::Failure;
use crate::cli::Cli;
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
