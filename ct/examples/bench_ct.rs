//! Benchmark: generates a local static-CT log (N entries of templated certificates: the Icarus
//! leaf with its serial varied), ingests it end to end with verification (file:// tiles), then
//! measures raw binary COPY of the same rows into the same tables. Run via scripts/bench-ct.sh.
//! Uses `certhist_store::testing::TestDb` (the managed test cluster or TEST_DATABASE_URL).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine as _;
use certhist_ct::checkpoint::encode_checkpoint;
use certhist_ct::client::StaticClient;
use certhist_ct::http::FetchConfig;
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::leaf::encode_tile_leaf;
use certhist_ct::merkle::root_of_leaves;
use certhist_ct::sig::{tree_head_signature_input, PublicKey};
use certhist_ct::tile::{data_tile_path, hash_tile_path, TILE_WIDTH};
use certhist_ct::Hash;
use futures_util::{SinkExt as _, StreamExt as _};
use p256::ecdsa::signature::Signer as _;
use sha2::Digest as _;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/ct/hash-tree/icarus.get-entry-and-proof.leaf_index=120000000.tree_size=129721434.json"
);

fn write(dir: &std::path::Path, rel: &str, data: &[u8]) -> Result<()> {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().context("path")?)?;
    std::fs::write(p, data)?;
    Ok(())
}

fn generate(dir: &std::path::Path, n: u64) -> Result<PublicKey> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(FIXTURE)?)?;
    let b = base64::engine::general_purpose::STANDARD;
    let li = b.decode(v["leaf_input"].as_str().context("leaf_input")?)?;
    let extra = b.decode(v["extra_data"].as_str().context("extra_data")?)?;
    let template = li.get(15..li.len() - 2).context("cert")?.to_vec();
    let chain = certhist_ct::leaf::parse_cert_chain(&extra)?;
    let mut fps = Vec::new();
    for c in &chain {
        let fp: Hash = sha2::Sha256::digest(c).into();
        write(dir, &format!("issuer/{}", hex::encode(fp)), c)?;
        fps.push(fp);
    }
    let mut level0: Vec<Hash> = Vec::with_capacity(n as usize);
    let mut t = 0u64;
    while t * TILE_WIDTH < n {
        let width = (n - t * TILE_WIDTH).min(TILE_WIDTH);
        let mut tile = Vec::with_capacity(width as usize * (template.len() + 80));
        let mut hashes = Vec::with_capacity(width as usize * 32);
        for i in t * TILE_WIDTH..t * TILE_WIDTH + width {
            let mut cert = template.clone();
            // Serial: 18 bytes at offset 15; keep the first byte, vary the last eight.
            cert[25..33].copy_from_slice(&i.to_be_bytes());
            let h = encode_tile_leaf(&mut tile, 1_700_000_000_000 + i, &cert, i, &fps);
            hashes.extend_from_slice(&h);
            level0.push(h);
        }
        write(dir, &data_tile_path(t, width), &tile)?;
        write(dir, &hash_tile_path(0, t, width), &hashes)?;
        t += 1;
    }
    // Level-1 tiles (nodes at height 8), full subtrees only.
    let level1: Vec<Hash> = level0.chunks_exact(256).map(root_of_leaves).collect();
    for (t, c) in level1.chunks(256).enumerate() {
        let data: Vec<u8> = c.iter().flatten().copied().collect();
        write(dir, &hash_tile_path(1, t as u64, c.len() as u64), &data)?;
    }
    let root = root_of_leaves(&level0);
    let sk = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into())?;
    let mut spki = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200")?;
    spki.extend_from_slice(sk.verifying_key().to_encoded_point(false).as_bytes());
    let key = PublicKey::from_spki_der(&spki)?;
    let ts = 1_700_000_100_000u64;
    let sig: p256::ecdsa::DerSignature = sk.sign(&tree_head_signature_input(ts, n, &root));
    let mut ds = vec![4u8, 3];
    ds.extend_from_slice(&(sig.as_bytes().len() as u16).to_be_bytes());
    ds.extend_from_slice(sig.as_bytes());
    write(
        dir,
        "checkpoint",
        encode_checkpoint("bench.example/log", n, &root, &key.log_id(), ts, &ds).as_bytes(),
    )?;
    Ok(key)
}

async fn copy_out(c: &tokio_postgres::Client, table: &str) -> Result<Vec<bytes::Bytes>> {
    let s = c
        .copy_out(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
        .await?;
    s.map(|r| r.map_err(anyhow::Error::from))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    // Per-batch timings (fetch wait, verify, parse, write) with RUST_LOG=certhist_ct=debug.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let t0 = Instant::now();
    let key = generate(dir.path(), n)?;
    eprintln!(
        "generated {n} entries in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let db = certhist_store::testing::TestDb::new().await;
    let store = db.store();
    let url = format!("file://{}", dir.path().display());
    let client = Arc::new(StaticClient::new(&url, Some(key), FetchConfig::default())?);
    let opts = IngestOptions {
        batch_entries: 16_384,
        concurrency: 4,
        progress: false,
        ..IngestOptions::default()
    };
    let t = Instant::now();
    let stats = ingest_log(client, &store, &opts).await?;
    let ingest_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        stats.verified_position == n,
        "verified {} of {n}",
        stats.verified_position
    );

    // Ceiling: raw binary COPY of the same rows into the same tables (indexes and constraints
    // in place), in one transaction.
    let (c, conn) = db.pg_config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let tables = ["certificates", "certificate_names", "ct_entries"];
    let mut dumps = Vec::new();
    for t in tables {
        dumps.push(copy_out(&c, t).await?);
    }
    c.batch_execute("TRUNCATE ct_entries, certificate_names, certificates CASCADE")
        .await?;
    let t = Instant::now();
    c.batch_execute("BEGIN").await?;
    for (table, chunks) in tables.iter().zip(dumps) {
        let sink = c
            .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
            .await?;
        let mut sink = std::pin::pin!(sink);
        for ch in chunks {
            sink.send(ch).await?;
        }
        sink.finish().await?;
    }
    c.batch_execute("COMMIT").await?;
    let copy_s = t.elapsed().as_secs_f64();
    let ingest_rate = n as f64 / ingest_s;
    let copy_rate = n as f64 / copy_s;
    println!("entries            {n}");
    println!("ingest (verified)  {ingest_s:.2} s  {ingest_rate:.0} entries/s");
    println!("raw COPY ceiling   {copy_s:.2} s  {copy_rate:.0} entries/s");
    println!(
        "ratio              {:.0}% of COPY",
        100.0 * ingest_rate / copy_rate
    );
    Ok(())
}
