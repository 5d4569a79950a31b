//! Parse-only throughput of the eve.json reader: `eve_parse FILE` reads every line through the
//! same reader `certhist import suricata` uses and prints TLS records/s (scripts/bench-sensors.sh).

use std::time::Instant;

use certhist_files::{FileFormat, Item};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or("usage: eve_parse EVE.json")?;
    let path = std::path::PathBuf::from(path);
    let bytes = std::fs::metadata(&path)?.len();
    let format = certhist_sensors::SuricataEve {
        source: "bench".into(),
    };
    let started = Instant::now();
    let mut reader = format.reader(&path, certhist_files::input::open(&path)?)?;
    let (mut tls, mut problems) = (0u64, 0u64);
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Passive { .. } => tls += 1,
            Item::Problem(..) => problems += 1,
            _ => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{tls} tls records ({problems} problems) in {secs:.3} s: {:.0} records/s, {:.1} MB/s",
        tls as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
