//! `certhist demo`: starts the database, loads the bundled sample data and runs example queries.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use certhist_model::views::{Commonness, MatchMode};
use clap::Args;
use sha2::Digest;

use super::import::ImportObservationsArgs;
use super::query::{CertArgs, IpArgs, SearchArgs, WindowArgs};
use super::{import, query, Failure};
use crate::cli::Cli;
use crate::exit;

/// `certhist demo`
#[derive(Debug, Args)]
pub struct DemoArgs {}

/// A checkpoint for the bundled navigli tiles (see tests/data/demo/README.md).
const DEMO_CHECKPOINT: &[u8] = include_bytes!("../../tests/data/demo/navigli-checkpoint");

/// Lays out a static-CT log directory (checkpoint, tile/, issuer/<sha256 hex>) from the fixture
/// tiles and issuer certificates.
fn build_ct_mirror(tiles: &Path, issuers: &Path, log_dir: &Path) -> Result<(), Failure> {
    fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy_tree(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), target)?;
            }
        }
        Ok(())
    }
    fn issuer_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let p = entry?.path();
            if p.is_dir() {
                issuer_files(&p, out)?;
            } else if p.extension().is_some_and(|e| e == "der") {
                out.push(p);
            }
        }
        Ok(())
    }
    copy_tree(&tiles.join("tile"), &log_dir.join("tile")).context("cannot copy the demo tiles")?;
    std::fs::write(log_dir.join("checkpoint"), DEMO_CHECKPOINT)
        .context("cannot write the demo checkpoint")?;
    let issuer_dir = log_dir.join("issuer");
    std::fs::create_dir_all(&issuer_dir).context("cannot create issuer/")?;
    let mut files = Vec::new();
    issuer_files(issuers, &mut files).context("cannot list the demo issuers")?;
    for f in files {
        let der = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        std::fs::write(
            issuer_dir.join(hex::encode(sha2::Sha256::digest(&der))),
            der,
        )
        .context("cannot write an issuer")?;
    }
    Ok(())
}

/// Real certificates (see tests/data/demo/README.md).
const DEMO_CERTS: &[u8] = include_bytes!("../../tests/data/demo/certs.pem");
/// Synthetic sightings of those certificates on documentation addresses.
const DEMO_OBSERVATIONS: &[u8] = include_bytes!("../../tests/data/demo/observations.csv");

pub(crate) async fn run(cli: &Cli, _args: &DemoArgs) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "== certhist demo")?;
    match &cli.database_url {
        Some(_) => writeln!(out, "using the server given by DATABASE_URL")?,
        None => writeln!(
            out,
            "starting the managed PostgreSQL in {} …",
            cli.home.display()
        )?,
    }
    let store = crate::open_store(cli).await?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let certs_path = dir.path().join("demo-certs.pem");
    let obs_path = dir.path().join("demo-observations.csv");
    std::fs::write(&certs_path, DEMO_CERTS).context("cannot write demo certificates")?;
    std::fs::write(&obs_path, DEMO_OBSERVATIONS).context("cannot write demo observations")?;

    writeln!(out, "\n$ certhist import certs demo-certs.pem")?;
    out.flush()?;
    let progress = import::ImportProgress::new();
    let options = certhist_files::ImportOptions {
        batch_items: 5000,
        writers: 2,
        ..certhist_files::ImportOptions::default()
    };
    let s = import::import_certs(&store, &[certs_path], &options, &progress).await?;
    progress.finish();
    writeln!(
        out,
        "read {} certificates: {} new, {} already known, {} unparsable (stored with their parse error)",
        s.read, s.new, s.known, s.unparsable
    )?;

    writeln!(
        out,
        "\n$ certhist import observations demo-observations.csv"
    )?;
    out.flush()?;
    let s = import::import_observations(
        &store,
        &ImportObservationsArgs {
            file: obs_path,
            source: Some("demo".to_owned()),
            batch_size: 50_000,
            force: false,
        },
        &progress,
    )
    .await?;
    progress.finish();
    if s.already_imported {
        writeln!(out, "already imported (same content): nothing changed")?;
    } else {
        writeln!(
            out,
            "{} rows stored, {} invalid row(s) skipped (reported above)",
            s.rows, s.invalid
        )?;
    }

    let limit = 1000;
    writeln!(out, "\n$ certhist query ip 198.51.100.0/24")?;
    query::ip(
        &store,
        &IpArgs {
            target: "198.51.100.0/24".into(),
            window: WindowArgs::default(),
            limit,
        },
        false,
        &mut out,
    )
    .await?;
    writeln!(
        out,
        "\n$ certhist query ip 198.51.100.21 --since 2026-03-02"
    )?;
    query::ip(
        &store,
        &IpArgs {
            target: "198.51.100.21".into(),
            window: WindowArgs {
                since: Some("2026-03-02".into()),
                until: None,
            },
            limit,
        },
        false,
        &mut out,
    )
    .await?;
    writeln!(
        out,
        "\n$ certhist query cert 390917308a9acfd9af6fbe16586c31eaf62a3bd5   # reverse search"
    )?;
    query::cert(
        &store,
        &CertArgs {
            hash: "390917308a9acfd9af6fbe16586c31eaf62a3bd5".into(),
            limit,
            shared_threshold: Commonness::DEFAULT_THRESHOLD,
        },
        false,
        &mut out,
    )
    .await?;
    for (field, value) in [
        ("name", "*.wikipedia.org"),
        ("issuer-cn", "E8"),
        ("name", "*google*"),
        ("subject-o", "duck*"),
    ] {
        writeln!(out, "\n$ certhist query search {field} '{value}'")?;
        query::search(
            &store,
            &SearchArgs {
                field: field.into(),
                value: value.into(),
                match_mode: MatchMode::Auto,
                valid_at: None,
                limit,
            },
            false,
            &mut out,
        )
        .await?;
    }
    writeln!(out, "\n$ certhist scan 127.0.0.2-127.0.0.6   # TLS servers the demo starts on 127.0.0.2-6 (two rounds, one rotation)")?;
    out.flush()?;
    drop(out);
    let rounds = certhist_scan::demo::demo(&store).await?;
    out = std::io::stdout().lock();
    for (i, r) in rounds.iter().enumerate() {
        writeln!(
            out,
            "round {}: {} handshakes ok of {} attempts, {} sightings, {} new certificates",
            i + 1,
            r.handshakes_ok,
            r.attempts,
            r.sightings,
            r.certs_new
        )?;
    }
    writeln!(out, "\n$ certhist query ip 127.0.0.0/29")?;
    query::ip(
        &store,
        &IpArgs {
            target: "127.0.0.0/29".into(),
            window: WindowArgs::default(),
            limit,
        },
        false,
        &mut out,
    )
    .await?;

    // CT: the first 1024 entries of a real static-CT log, served from disk.
    let tiles = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ct/sunlight/testdata/navigli2025h2"
    ));
    let issuers = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ct/letsencrypt-website/static/certs/staging"
    ));
    if tiles.is_dir() && issuers.is_dir() {
        // A stable path: the log is registered by it, so a second demo run resumes at 1024.
        let log_dir = std::path::absolute(cli.home.join("demo-ct").join("navigli2025h2"))
            .context("cannot resolve the demo CT directory")?;
        build_ct_mirror(tiles, issuers, &log_dir)?;
        writeln!(out, "\n$ certhist ingest ct --log file://…/navigli2025h2   # static-CT tiles on disk, every leaf verified against the tree head")?;
        out.flush()?;
        drop(out);
        let stats = certhist_ct::ingest_static_dir(&store, &log_dir)
            .await
            .map_err(|e| Failure::Other(anyhow::Error::new(e)))?;
        out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(&stats).unwrap_or_default())?;
        writeln!(out, "\n$ certhist query cert 7cf01be9117755a7268ddc2dbf2bace7752488a4   # entry 0: a precertificate")?;
        query::cert(
            &store,
            &CertArgs {
                hash: "7cf01be9117755a7268ddc2dbf2bace7752488a4".into(),
                limit,
                shared_threshold: Commonness::DEFAULT_THRESHOLD,
            },
            false,
            &mut out,
        )
        .await?;
    }

    // Cryptnet: a real CryptnetUrlCache folder from the source tree (present when run from a
    // checkout, as README.md does).
    let cache = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cryptnet/mohdan__codingTest/7de46a191103"
    ));
    if cache.is_dir() {
        writeln!(out, "\n$ certhist cryptnet tests/data/cryptnet/mohdan__codingTest/7de46a191103 --store --label demo")?;
        out.flush()?;
        super::cryptnet::demo(&store, cache, Some("demo"), &mut out).await?;
        // The cache above is from 2017 and checked certificates the demo does not hold; this URL
        // is what a machine that visited the bundled github.com certificate's server keeps in its
        // cache (tests/data/demo/README.md): the report resolves it to the certificate, its
        // names and the address that served it.
        let urls = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/demo/cryptnet-urls.txt"
        ));
        if urls.is_file() {
            writeln!(
                out,
                "\n$ certhist cryptnet tests/data/demo/cryptnet-urls.txt   # an OCSP URL from a suspect machine's cache"
            )?;
            out.flush()?;
            super::cryptnet::demo(&store, urls, None, &mut out).await?;
        }
    } else {
        writeln!(
            out,
            "\n(cryptnet example skipped: {} not found; run the demo from a checkout)",
            cache.display()
        )?;
    }
    writeln!(out, "\nTry: certhist query ip 2001:db8::/32 · certhist query search serial <hex or decimal> · add --json for NDJSON")?;
    writeln!(
        out,
        "Web UI on this data: certhist serve, then open http://127.0.0.1:8080/ and search 127.0.0.2 (history and timeline), a certificate's SHA-1 or a host name; paste the OCSP URL of tests/data/demo/cryptnet-urls.txt at /cryptnet"
    )?;
    Ok(exit::OK)
}
