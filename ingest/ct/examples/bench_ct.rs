//! Benchmark: generates a local static-CT log (N entries of templated certificates: the Icarus
//! leaf with its serial varied), ingests it end to end with verification (file:// tiles), then
//! measures raw binary COPY of the same rows into the same tables. Run via scripts/bench-ct.sh.
//! Database: a fresh managed cluster in a temporary directory, with certhist's default server
//! settings (what `certhist` runs on by default); or `CERTHIST_BENCH_URL`, a server of your own.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use base64::Engine as _;
use certhist_ct::checkpoint::encode_checkpoint;
use certhist_ct::client::StaticClient;
use certhist_ct::ingest::{ingest_log, IngestOptions};
use certhist_ct::leaf::encode_tile_leaf;
use certhist_ct::merkle::root_of_leaves;
use certhist_ct::sig::{tree_head_signature_input, PublicKey};
use certhist_ct::tile::{data_tile_path, hash_tile_path, TILE_WIDTH};
use certhist_ct::FetchConfig;
use certhist_ct::Hash;
use futures_util::{SinkExt as _, StreamExt as _};
use p256::ecdsa::signature::Signer as _;
use sha2::Digest as _;

/// The allocator of the `certhist` binary, so the client side costs what it costs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/ct/hash-tree/icarus.get-entry-and-proof.leaf_index=120000000.tree_size=129721434.json"
);

fn write(dir: &std::path::Path, rel: &str, data: &[u8]) -> Result<()> {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().context("path")?)?;
    std::fs::write(p, data)?;
    Ok(())
}

/// A pseudo-random lower-case label for entry `i` (splitmix64 of `i`, 12 letters).
fn entry_label(i: u64) -> [u8; 12] {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let mut out = [0u8; 12];
    for b in &mut out {
        *b = b'a' + (z % 26) as u8;
        z /= 26;
        if z == 0 {
            z = i.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
        }
    }
    out
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
    let name_at: Vec<usize> = (0..template.len())
        .filter(|&i| template[i..].starts_with(b"gem-jewelers"))
        .collect();
    anyhow::ensure!(name_at.len() == 3, "template names: {name_at:?}");
    // CERTHIST_BENCH_SAME_NAMES=1: every entry keeps the template's names (the benchmark's data
    // before 2026-11-22 evening, for comparison with older figures).
    let same_names = std::env::var_os("CERTHIST_BENCH_SAME_NAMES").is_some();
    // CERTHIST_BENCH_NAME_GROUP=k: k consecutive entries share their names (2: as a
    // precertificate and its certificate do). Default 1: every entry has names of its own.
    let group: u64 = std::env::var("CERTHIST_BENCH_NAME_GROUP")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    // CERTHIST_BENCH_OFFSET=k: entry i gets the serial and names of entry i + k, so two logs
    // generated with different offsets hold different certificates (scripts/bench-load-ingest.sh).
    let offset: u64 = std::env::var("CERTHIST_BENCH_OFFSET")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0);
    let mut level0: Vec<Hash> = Vec::with_capacity(n as usize);
    let mut t = 0u64;
    while t * TILE_WIDTH < n {
        let width = (n - t * TILE_WIDTH).min(TILE_WIDTH);
        let mut tile = Vec::with_capacity(width as usize * (template.len() + 80));
        let mut hashes = Vec::with_capacity(width as usize * 32);
        for i in t * TILE_WIDTH..t * TILE_WIDTH + width {
            let mut cert = template.clone();
            // Serial: 18 bytes at offset 15; keep the first byte, vary the last eight.
            cert[25..33].copy_from_slice(&(i + offset).to_be_bytes());
            // Names: the template's "gem-jewelers" (subject CN, SANs gem-jewelers.com and
            // www.gem-jewelers.com) becomes a pseudo-random 12-letter label of its own per
            // entry (or group of entries), so every entry has new names (the signature no
            // longer matches; leaf signatures are not checked by the ingest).
            if !same_names {
                let label = entry_label((i + offset) / group);
                for at in &name_at {
                    cert[*at..*at + 12].copy_from_slice(&label);
                }
            }
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

/// Binary COPY of the rows of `table` matching `cond`.
async fn copy_out(
    c: &tokio_postgres::Client,
    table: &str,
    cond: &str,
) -> Result<Vec<bytes::Bytes>> {
    let s = c
        .copy_out(&format!(
            "COPY (SELECT * FROM {table} WHERE {cond}) TO STDOUT (FORMAT binary)"
        ))
        .await?;
    s.map(|r| r.map_err(anyhow::Error::from))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Binary COPY of `dumps` into `tables`, in one transaction.
async fn copy_in(
    c: &tokio_postgres::Client,
    tables: &[&str],
    dumps: &[Vec<bytes::Bytes>],
) -> Result<()> {
    c.batch_execute("BEGIN").await?;
    for (table, chunks) in tables.iter().zip(dumps) {
        let sink = c
            .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
            .await?;
        let mut sink = std::pin::pin!(sink);
        // One CopyData message per ~1 MB, not per row (`send` flushes each message).
        let mut buf = bytes::BytesMut::with_capacity(1 << 20);
        for ch in chunks {
            buf.extend_from_slice(ch);
            if buf.len() >= 1 << 20 {
                sink.send(buf.split().freeze()).await?;
            }
        }
        if !buf.is_empty() {
            sink.send(buf.freeze()).await?;
        }
        sink.finish().await?;
    }
    c.batch_execute("COMMIT").await?;
    Ok(())
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
    let writers: usize = std::env::var("CERTHIST_BENCH_WRITERS")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2);
    // CERTHIST_BENCH_GENERATE_ONLY=DIR: write the log into DIR (to be served over HTTP), print
    // its public key (base64 SubjectPublicKeyInfo) on stdout, and stop.
    if let Some(out) = std::env::var_os("CERTHIST_BENCH_GENERATE_ONLY") {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out)?;
        let key = generate(&out, n)?;
        println!(
            "{}",
            base64::engine::general_purpose::STANDARD.encode(key.spki_der())
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    if std::env::var_os("CERTHIST_BENCH_KEEP").is_some() {
        eprintln!("keeping the generated log in {}", dir.path().display());
    }
    let t0 = Instant::now();
    let key = generate(dir.path(), n)?;
    eprintln!(
        "generated {n} entries in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let (pg_config, cluster_home) = bench_database().await?;
    let store = certhist_store::Store::open_with(pg_config.clone(), 16).await?;
    let url = format!("file://{}", dir.path().display());
    let client = Arc::new(StaticClient::new(&url, Some(key), FetchConfig::default())?);
    let opts = IngestOptions {
        batch_entries: std::env::var("CERTHIST_BENCH_BATCH")
            .ok()
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(16_384),
        concurrency: 4,
        writers,
        ..IngestOptions::default()
    };
    // Every measurement starts with a checkpoint, so none pays for an earlier one's dirty pages.
    let (c, conn) = pg_config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    c.batch_execute("CHECKPOINT").await?;
    let t = Instant::now();
    let stats = ingest_log(client, &store, &opts).await?;
    let ingest_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        stats.verified_position == n,
        "verified {} of {n}",
        stats.verified_position
    );

    // Ceilings: raw binary COPY of the same rows into the same tables (indexes and constraints
    // in place): on one connection in one transaction, and split by sha1 over `writers`
    // connections (one transaction each), as the ingest writes.
    let tables = ["certificates", "certificate_names", "names", "ct_entries"];
    let mut dumps = Vec::new();
    for t in tables {
        dumps.push(copy_out(&c, t, "true").await?);
    }
    let reset = "TRUNCATE ct_entries, names, certificate_names, certificates; CHECKPOINT";
    c.batch_execute(reset).await?;
    let t = Instant::now();
    copy_in(&c, &tables, &dumps).await?;
    let copy_s = t.elapsed().as_secs_f64();

    let mut parts = Vec::new();
    for w in 0..writers {
        let cond = format!("get_byte(sha1, 0) % {writers} = {w}");
        let mut d = Vec::new();
        for t in &tables[..2] {
            d.push(copy_out(&c, t, &cond).await?);
        }
        parts.push(d);
    }
    c.batch_execute(reset).await?;
    let mut clients = Vec::new();
    for _ in 0..writers {
        let (c, conn) = pg_config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        clients.push(c);
    }
    let t = Instant::now();
    futures_util::future::try_join_all(clients.iter().zip(&parts).map(|(c, d)| async move {
        copy_in(c, &tables[..2], d).await?;
        Ok::<_, anyhow::Error>(())
    }))
    .await?;
    // Distinct names and ct_entries rows are not split by sha1: written after the
    // certificates, as the ingest commits them.
    copy_in(&clients[0], &tables[2..], &dumps[2..]).await?;
    let par_s = t.elapsed().as_secs_f64();

    let ingest_rate = n as f64 / ingest_s;
    let copy_rate = n as f64 / copy_s;
    let par_rate = n as f64 / par_s;
    let best = copy_rate.max(par_rate);
    println!("entries            {n}");
    println!("ingest (verified)  {ingest_s:.2} s  {ingest_rate:.0} entries/s  ({writers} writers)");
    println!("raw COPY, 1 conn   {copy_s:.2} s  {copy_rate:.0} entries/s");
    println!("raw COPY, {writers} conns  {par_s:.2} s  {par_rate:.0} entries/s");
    println!(
        "ratio              {:.0}% of the faster COPY",
        100.0 * ingest_rate / best
    );
    drop(store);
    if let Some(home) = cluster_home {
        tokio::task::spawn_blocking(move || certhist_store::cluster::stop(home.path())).await??;
    }
    if std::env::var_os("CERTHIST_BENCH_KEEP").is_some() {
        let _ = dir.keep();
    }
    Ok(())
}

/// The database to measure on: `CERTHIST_BENCH_URL` (emptied of certhist tables is up to you:
/// use a new database), or a new managed cluster with certhist's default settings, stopped and
/// removed at the end.
async fn bench_database() -> Result<(tokio_postgres::Config, Option<tempfile::TempDir>)> {
    if let Ok(url) = std::env::var("CERTHIST_BENCH_URL") {
        return Ok((url.parse()?, None));
    }
    let home = tempfile::tempdir()?;
    let path = home.path().to_owned();
    let t = Instant::now();
    let info = tokio::task::spawn_blocking(move || certhist_store::cluster::ensure_running(&path))
        .await??;
    let cfg = info.pg_config("certhist");
    certhist_store::ensure_database(&cfg).await?;
    eprintln!(
        "managed cluster (default settings) started in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok((cfg, Some(home)))
}
