//! Measures `parse_many` throughput (certificates per second, all cores) on real certificates.
//!
//! Usage: `cargo run --release -p certhist-ingest --example parse_throughput [PATH...] [--total N]`
//! (default PATH: the workspace's tests/data/certs, default N: 200000). The certificates found
//! are repeated up to N (parsing cost does not depend on duplicates); the timing covers
//! `parse_many` only, reading is done before.

use std::path::PathBuf;
use std::time::Instant;

use certhist_files::certfile::CertReader;
use certhist_x509::parse_many;

fn main() {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut total: usize = 200_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--total" {
            total = args.next().and_then(|n| n.parse().ok()).unwrap_or(total);
        } else {
            paths.push(arg.into());
        }
    }
    if paths.is_empty() {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/certs"));
    }
    let sample: Vec<Vec<u8>> = CertReader::new(paths)
        .filter_map(Result::ok)
        .map(|c| c.der)
        .collect();
    if sample.is_empty() {
        eprintln!("no certificates found");
        std::process::exit(1);
    }
    let ders: Vec<Vec<u8>> = sample.iter().cycle().take(total).cloned().collect();
    let bytes: usize = ders.iter().map(Vec::len).sum();
    // Warm-up (thread pool start, page faults).
    let _ = parse_many(&ders[..ders.len().min(5_000)]);
    let start = Instant::now();
    let records = parse_many(&ders);
    let secs = start.elapsed().as_secs_f64();
    let unparsed = records.iter().filter(|r| r.parse_error.is_some()).count();
    println!(
        "parse_many: {} certificates ({} distinct, {:.1} MB, {} unparsable) in {:.3} s on {} threads: {:.0} certs/s",
        ders.len(),
        sample.len(),
        bytes as f64 / 1e6,
        unparsed,
        secs,
        rayon::current_num_threads(),
        ders.len() as f64 / secs
    );
}
