//! Data generator and raw-COPY ceiling for `scripts/bench-import.sh`.
//!
//! `gen DIR CERTS OBSERVATIONS` writes DIR/certs.pem (distinct generated certificates, one
//! signing key) and DIR/observations.csv (unique (ip, port, sha1) keys with a skew: a few
//! certificates on many IPs, most on one). `ceiling DIR` reads and parses the same files (not
//! timed) and times COPY (FORMAT binary) of the same rows straight into the same tables
//! (DATABASE_URL), in the same batch sizes as the importers.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use certhist_files::certfile::CertReader;
use certhist_files::observations::{maybe_gunzip, ObservationReader};
use certhist_model::CertRecord;
use certhist_store::Store;
use certhist_x509::parse_many;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 4 => {
            generate(&PathBuf::from(&args[1]), args[2].parse()?, args[3].parse()?)
        }
        Some("ceiling") if args.len() == 2 || args.len() == 3 => {
            let certs_only = args.get(2).is_some_and(|a| a == "certs-only");
            tokio::runtime::Runtime::new()?.block_on(ceiling(PathBuf::from(&args[1]), certs_only))
        }
        _ => bail!("usage: bench_import gen DIR CERTS OBSERVATIONS | bench_import ceiling DIR [certs-only]"),
    }
}

fn generate(dir: &PathBuf, certs: u64, observations: u64) -> Result<()> {
    use sha1::Digest;
    std::fs::create_dir_all(dir)?;
    let key = rcgen::KeyPair::generate()?;
    let mut pem = BufWriter::new(std::fs::File::create(dir.join("certs.pem"))?);
    let mut sha1s = Vec::with_capacity(certs as usize);
    let started = Instant::now();
    for i in 0..certs {
        let names = vec![
            format!("host{i}.bench{}.example.com", i % 1000),
            format!("www{i}.example.net"),
        ];
        let mut params = rcgen::CertificateParams::new(names)?;
        params.serial_number = Some(rcgen::SerialNumber::from((i + 1).to_be_bytes().to_vec()));
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("host{i}.bench{}.example.com", i % 1000),
        );
        params.distinguished_name.push(
            rcgen::DnType::OrganizationName,
            format!("Bench Org {}", i % 97),
        );
        let cert = params.self_signed(&key)?;
        sha1s.push(hex::encode(sha1::Sha1::digest(cert.der())));
        pem.write_all(cert.pem().as_bytes())?;
        if i % 50_000 == 0 && i > 0 {
            eprintln!(
                "  {i} certificates ({:.0}/s)",
                i as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    pem.flush()?;
    let mut csv = BufWriter::new(std::fs::File::create(dir.join("observations.csv"))?);
    writeln!(csv, "ip,port,sha1,first_seen,last_seen,count,source")?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..observations {
        // xorshift: skewed certificate choice (1% of rows on 10 "shared" certificates).
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let cert = if state % 100 == 0 {
            state % 10
        } else {
            state % certs
        };
        let ip = 0x0a00_0000u32 | (i as u32 & 0x00ff_ffff);
        let port = [443, 8443, 993, 4443][(i >> 24) as usize % 4];
        let first = 1_600_000_000 + (state % 100_000_000);
        let last = first + (state >> 40) % 10_000_000;
        let ip = std::net::Ipv4Addr::from(ip);
        writeln!(
            csv,
            "{ip},{port},{},{first},{last},{},bench",
            sha1s[cert as usize],
            1 + state % 5
        )?;
    }
    csv.flush()?;
    eprintln!(
        "wrote {certs} certificates and {observations} observations to {}",
        dir.display()
    );
    Ok(())
}

/// One part of a split batch, in a transaction of its own.
async fn copy_part(conn: &mut certhist_store::Conn, rows: &[CertRecord]) -> Result<()> {
    let mut tx = conn.begin().await?;
    tx.copy_certs_raw(rows).await?;
    tx.commit().await?;
    Ok(())
}

async fn ceiling(dir: PathBuf, certs_only: bool) -> Result<()> {
    let url = std::env::var("DATABASE_URL").context("set DATABASE_URL")?;
    let store = Store::open_with(url.parse()?, 3).await?;
    let mut conn = store.conn().await?;

    let mut reader = CertReader::new([dir.join("certs.pem")]);
    let mut batches = Vec::new();
    loop {
        let (found, problems) = reader.next_batch(5000);
        if !problems.is_empty() {
            bail!(
                "generated certificates should read cleanly: {}",
                problems[0]
            );
        }
        if found.is_empty() {
            break;
        }
        let ders: Vec<Vec<u8>> = found.into_iter().map(|f| f.der).collect();
        batches.push(parse_many(&ders));
    }
    let n: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    for b in &batches {
        let mut tx = conn.begin().await?;
        tx.copy_certs_raw(b).await?;
        tx.commit().await?;
    }
    // The distinct names, once (schema v3), as the import adds them.
    let names: std::collections::BTreeSet<&str> = batches
        .iter()
        .flatten()
        .flat_map(|c| c.names.iter().map(|n| n.name.as_str()))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let mut tx = conn.begin().await?;
    tx.copy_names_raw(&names).await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ceiling_certs_rows={n} ceiling_certs_seconds={secs:.3} ceiling_certs_per_s={:.0}",
        n as f64 / secs
    );

    // The same, each batch split by sha1 over two connections as `import certs --writers 2`
    // writes it (the names once, after).
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("TRUNCATE certificates, certificate_names, names; CHECKPOINT")
        .await?;
    let halves: Vec<[Vec<CertRecord>; 2]> = batches
        .iter()
        .map(|b| {
            let (even, odd) = b.iter().cloned().partition(|c| c.sha1[0] % 2 == 0);
            [even, odd]
        })
        .collect();
    let mut conns = [store.conn().await?, store.conn().await?];
    let started = Instant::now();
    for [even, odd] in &halves {
        let [c0, c1] = &mut conns;
        tokio::try_join!(copy_part(c0, even), copy_part(c1, odd))?;
    }
    let mut tx = conns[0].begin().await?;
    tx.copy_names_raw(&names).await?;
    tx.commit().await?;
    let secs = started.elapsed().as_secs_f64();
    println!("ceiling_certs2_per_s={:.0}", n as f64 / secs);
    drop(batches);
    if certs_only {
        return Ok(());
    }

    let file = std::fs::File::open(dir.join("observations.csv"))?;
    let rows: Vec<_> =
        ObservationReader::new(maybe_gunzip(file)?, "bench").collect::<Result<_, _>>()?;
    let started = Instant::now();
    for chunk in rows.chunks(50_000) {
        let mut tx = conn.begin().await?;
        tx.copy_observations_raw(chunk).await?;
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ceiling_obs_rows={} ceiling_obs_seconds={secs:.3} ceiling_obs_per_s={:.0}",
        rows.len(),
        rows.len() as f64 / secs
    );
    Ok(())
}
