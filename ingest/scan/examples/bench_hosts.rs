//! Benchmark for `scripts/bench-hosts.sh`:
//! (a) scan throughput against N local TLS servers on 127.0.0.x (handshakes/s);
//! (b) importing a generated Sonar hosts file (rows/s) next to the ceiling: raw binary COPY of the
//!     same rows into the same `observations` table, in the same run.
//!
//! Database: `TEST_DATABASE_URL` if set, else a managed cluster under a temporary home (stopped at
//! the end). Never the system Postgres.

use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use certhist_scan::localtls::{bind_same_port, serve, server_config, Behaviour, TestCa};
use certhist_scan::scanner::{scan, ScanOptions};
use certhist_scan::ImportOptions;
use chrono::{TimeZone, Utc};
use postgres_types::{ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let servers_n = env_usize("BENCH_SERVERS", 64);
    let rounds = env_usize("BENCH_ROUNDS", 40);
    let lines = env_usize("BENCH_LINES", 5_000_000);
    let tmp = tempfile::tempdir()?;
    let (pg_config, managed_home) = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => {
            let mut c: tokio_postgres::Config = url.parse()?;
            c.dbname("certhist_bench_hosts");
            (c, None)
        }
        Err(_) => {
            let home = tmp.path().join("pg");
            let h = home.clone();
            let info =
                tokio::task::spawn_blocking(move || certhist_store::cluster::ensure_running(&h))
                    .await??;
            (info.pg_config("certhist_bench_hosts"), Some(home))
        }
    };
    certhist_store::ensure_database(&pg_config).await?;
    let store = certhist_store::Store::open_with(pg_config.clone(), 8).await?;
    let (client, conn) = pg_config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "TRUNCATE sightings, cert_keys, imported_files; TRUNCATE certificates CASCADE",
        )
        .await?;

    // (a) scan throughput
    let ca = TestCa::new("bench CA")?;
    let ips: Vec<IpAddr> = (0..servers_n)
        .map(|i| IpAddr::from([127, 0, 1 + (i / 250) as u8, 2 + (i % 250) as u8]))
        .collect();
    let listeners = bind_same_port(&ips)
        .await
        .context("binding local servers")?;
    let mut servers = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = ca.issue(&[&format!("s{i}.bench.test")])?;
        servers.push(serve(l, Behaviour::Tls(server_config(&id, i % 4 == 3)?))?);
    }
    let port = servers.first().map(|s| s.addr.port()).unwrap_or(0);
    let targets: Vec<String> = (0..rounds)
        .flat_map(|_| ips.iter().map(|ip| ip.to_string()))
        .collect();
    let options = ScanOptions {
        ports: vec![port],
        concurrency: env_usize("BENCH_CONCURRENCY", 128),
        timeout: Duration::from_secs(10),
        ..ScanOptions::default()
    };
    let s = scan(&store, targets, &options).await?;
    drop(servers);
    println!(
        "scan: {} servers x {} rounds: {} handshakes ok, {} failures in {:.2} s = {:.0} handshakes/s (concurrency {})",
        servers_n,
        rounds,
        s.handshakes_ok,
        s.failures.total(),
        s.elapsed_ms as f64 / 1000.0,
        s.handshakes_per_s,
        options.concurrency
    );

    // (b) Sonar hosts import vs raw COPY
    let path = tmp.path().join("20200101_ssl_hosts.csv");
    let gen = Instant::now();
    {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        for i in 0..lines {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000u32 + i as u32);
            let sha = sha1_for(i);
            writeln!(w, "{ip},{}", hex::encode(sha))?;
        }
        w.flush()?;
    }
    let size = std::fs::metadata(&path)?.len();
    eprintln!(
        "generated {lines} lines ({size} bytes) in {:.1} s",
        gen.elapsed().as_secs_f64()
    );
    client
        .batch_execute("TRUNCATE sightings, cert_keys, imported_files")
        .await?;
    let t = Instant::now();
    let sums = certhist_scan::import_sonar(
        &store,
        None,
        Some(&path),
        None,
        None,
        "sonar",
        &ImportOptions::default(),
    )
    .await?;
    let import_s = t.elapsed().as_secs_f64();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM sightings", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        rows == lines as i64,
        "imported {rows} rows, expected {lines}"
    );
    let import_rate = lines as f64 / import_s;
    println!("import: {lines} Sonar hosts lines in {import_s:.2} s = {import_rate:.0} rows/s ({} sightings)", sums[0].sightings);

    client
        .batch_execute("TRUNCATE sightings, cert_keys")
        .await?;
    let date = Utc
        .with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .context("date")?;
    let t = Instant::now();
    let mut client = client;
    let tx = client.transaction().await?;
    // The layout's raw path (schema V7): the certificate keys (one COPY), then the sightings
    // with the keys' ids (one COPY; ids read back in the same transaction).
    let sink = tx
        .copy_in("COPY cert_keys (sha1) FROM STDIN (FORMAT binary)")
        .await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &[Type::BYTEA]));
    for i in 0..lines {
        let sha = sha1_for(i);
        let row: [&(dyn ToSql + Sync); 1] = [&&sha[..]];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    let first_id: i64 = tx
        .query_one("SELECT min(id) FROM cert_keys", &[])
        .await?
        .get(0);
    let sources: i16 = tx
        .query_one("SELECT source_set_id('{sonar}')", &[])
        .await?
        .get(0);
    let seconds =
        i32::try_from((date - Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()).num_seconds())?;
    let sink = tx.copy_in("COPY sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip) FROM STDIN (FORMAT binary)").await?;
    let types = [
        Type::INT8,
        Type::INT4,
        Type::INT4,
        Type::INT4,
        Type::INT2,
        Type::INT2,
        Type::INET,
    ];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    let port = (443 - 32768) as i16;
    for i in 0..lines {
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + i as u32));
        let id = first_id + i as i64;
        let row: [&(dyn ToSql + Sync); 7] = [&id, &seconds, &seconds, &1i32, &port, &sources, &ip];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    tx.commit().await?;
    let copy_s = t.elapsed().as_secs_f64();
    let copy_rate = lines as f64 / copy_s;
    println!("ceiling: raw binary COPY of the same {lines} rows into cert_keys and sightings in {copy_s:.2} s = {copy_rate:.0} rows/s");
    println!("import / ceiling = {:.0}%", 100.0 * import_rate / copy_rate);

    drop(store);
    if let Some(home) = managed_home {
        let _ = tokio::task::spawn_blocking(move || certhist_store::cluster::stop(&home)).await;
    }
    Ok(())
}

/// A SHA-1-sized value from a pool of 500k distinct ones (certificates shared by many hosts).
fn sha1_for(i: usize) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(((i % 500_000) as u64).to_be_bytes()).into()
}
