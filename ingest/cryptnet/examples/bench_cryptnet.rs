//! Benchmark: a generated CryptnetUrlCache of ENTRIES entries (variations of the fixture OCSP
//! entries) parsed, decoded and resolved against CERTS synthetic certificates.
//! Usage: bench_cryptnet HOME ENTRIES CERTS (HOME: managed-cluster directory, a temp dir).

use std::time::Instant;

use certhist_crtsh::CrtshConfig;
use certhist_cryptnet::metadata::{build_metadata, url_md5_name, Metadata};
use certhist_cryptnet::ocsp::build_get_url;
use certhist_cryptnet::{analyze, AnalyzeOptions, ResolveMode};
use certhist_cryptnet::{CertId, HashAlgorithm};
use certhist_model::{CertRecord, Serial};
use sha2::Digest;

fn serial_for(i: u64) -> Vec<u8> {
    let mut s = vec![0x4a];
    s.extend_from_slice(&i.to_be_bytes());
    s.extend_from_slice(&[0x5c; 7]);
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let home = args.get(1).ok_or("HOME missing")?;
    let entries: u64 = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    let certs: u64 = args.get(3).map_or(Ok(1_000_000), |s| s.parse())?;
    let store = certhist_store::Store::open(&certhist_store::DbConfig::managed(home)).await?;
    let issuer_name_hash: [u8; 20] = sha1::Sha1::digest(b"bench issuer").into();
    let issuer_key_hash: [u8; 20] = sha1::Sha1::digest(b"bench key").into();

    // 1. certificates: synthetic records (hash fields only, DER = 64 unique bytes)
    let t = Instant::now();
    let mut conn = store.conn().await?;
    let mut done = 0u64;
    while done < certs {
        let n = (certs - done).min(50_000);
        let batch: Vec<CertRecord> = (done..done + n)
            .map(|i| {
                let der: Vec<u8> = sha2::Sha512::digest(i.to_be_bytes()).to_vec();
                CertRecord {
                    sha1: sha1::Sha1::digest(&der).into(),
                    sha256: sha2::Sha256::digest(&der).into(),
                    serial: Some(Serial::from_be_bytes(&serial_for(i))),
                    issuer_name_hash: Some(issuer_name_hash),
                    issuer_key_hash: Some(issuer_key_hash),
                    subject: certhist_model::DistinguishedName {
                        dn: Some(format!("CN=host{i}.bench.example")),
                        cn: Some(format!("host{i}.bench.example")),
                        ..Default::default()
                    },
                    names: vec![certhist_model::CertName {
                        name: format!("host{i}.bench.example"),
                        kind: certhist_model::NameKind::Dns,
                        registered_domain: Some("bench.example".into()),
                    }],
                    der,
                    ..Default::default()
                }
            })
            .collect();
        let mut tx = conn.begin().await?;
        tx.write_certs(&batch).await?;
        tx.commit().await?;
        done += n;
    }
    let load_s = t.elapsed().as_secs_f64();
    eprintln!(
        "db: {certs} certificates written in {load_s:.1}s ({:.0}/s)",
        certs as f64 / load_s
    );

    // 2. cache tree: fixture OCSP MetaData/Content varied by CertID (3/4 resolvable)
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cryptnet/32204232__portfolio/81b48a9be9c1/Content/035E52AEDA0CBD41F7A1EE1F14E33688");
    let content = std::fs::read(fixture)?;
    let tmp = tempfile::tempdir()?;
    let root = tmp
        .path()
        .join("Users/u/AppData/LocalLow/Microsoft/CryptnetUrlCache");
    std::fs::create_dir_all(root.join("MetaData"))?;
    std::fs::create_dir_all(root.join("Content"))?;
    let t = Instant::now();
    for i in 0..entries {
        let serial_i = if i % 4 == 3 {
            certs + i
        } else {
            (i * 7919) % certs
        };
        let id = CertId {
            hash_algorithm: HashAlgorithm::Sha1,
            issuer_name_hash: issuer_name_hash.to_vec(),
            issuer_key_hash: issuer_key_hash.to_vec(),
            serial: Serial::from_be_bytes(&serial_for(serial_i)),
        };
        let url = build_get_url("http://ocsp.bench.example", &[id]).ok_or("url")?;
        let name = url_md5_name(&url);
        let m = Metadata {
            url,
            last_download: chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0),
            object_type: 3,
            this_update: None,
            next_update: None,
            expiry: None,
            last_modified: None,
            etag: (i % 2 == 0).then(|| format!("\"{i:x}\"")),
            content_size_bytes: content.len() as u32,
            trailing_bytes: 0,
        };
        std::fs::write(root.join("MetaData").join(&name), build_metadata(&m))?;
        std::fs::write(root.join("Content").join(&name), &content)?;
    }
    eprintln!(
        "cache: {entries} entries generated in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // 3. parse + decode
    let t = Instant::now();
    let loaded = certhist_cryptnet::load_path(tmp.path())?;
    let parse_s = t.elapsed().as_secs_f64();
    // 4. resolve
    let t = Instant::now();
    let opts = AnalyzeOptions {
        resolve: ResolveMode::Local,
        store_label: None,
        crtsh: CrtshConfig::default(),
    };
    let rows = analyze(&loaded.entries, &opts, &store, &|_| {}).await?.rows;
    let resolve_s = t.elapsed().as_secs_f64();
    let resolved = rows
        .iter()
        .filter(|r| r.resolution.as_ref().is_some_and(|x| x.resolved()))
        .count();
    let n = loaded.entries.len() as f64;
    println!(
        "entries={} certs={certs} resolved={resolved}",
        loaded.entries.len()
    );
    println!("parse+decode: {parse_s:.2}s = {:.0} entries/s", n / parse_s);
    println!(
        "resolve:      {resolve_s:.2}s = {:.0} entries/s",
        n / resolve_s
    );
    println!(
        "total:        {:.2}s = {:.0} entries/s",
        parse_s + resolve_s,
        n / (parse_s + resolve_s)
    );
    drop(store);
    let home = std::path::PathBuf::from(home);
    tokio::task::spawn_blocking(move || certhist_store::cluster::stop(&home)).await??;
    Ok(())
}
