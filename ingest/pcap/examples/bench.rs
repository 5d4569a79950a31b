//! Capture-reading benchmark (scripts/bench-pcap.sh).
//!
//! `bench make SOURCE.pcap OUT.pcap MEGABYTES`: writes a classic pcap of about MEGABYTES by
//! repeating SOURCE's packets (Ethernet, IPv4), each copy shifted in time past the previous one and
//! with the higher (client) TCP port of every packet moved, so every copy's connections are new.
//! `bench read FILE`: reads FILE with the reader and prints bytes, seconds, MB/s and counters.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("make") if args.len() == 5 => make(&args[2], &args[3], args[4].parse()?),
        Some("read") if args.len() == 3 => read(&args[2]),
        _ => Err("usage: bench make SOURCE.pcap OUT.pcap MEGABYTES | bench read FILE".into()),
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn make(source: &str, out: &str, megabytes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = Vec::new();
    std::fs::File::open(source)?.read_to_end(&mut bytes)?;
    if bytes.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]) || le32(&bytes, 20) != 1 {
        return Err("source must be a little-endian microsecond Ethernet pcap".into());
    }
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = le32(&bytes, at + 8) as usize;
        let Some(record) = bytes.get(at..at + 16 + caplen) else {
            break;
        };
        packets.push(record.to_vec());
        at += 16 + caplen;
    }
    let first = packets.first().map_or(0, |p| le32(p, 0));
    let last = packets.last().map_or(0, |p| le32(p, 0));
    let span = last - first + 10;
    let target = megabytes * 1_000_000;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    w.write_all(&bytes[..24])?;
    let mut written = 24u64;
    let mut copy = 0u32;
    while written < target {
        for p in &packets {
            let mut p = p.clone();
            let ts = le32(&p, 0) + copy * span;
            p[..4].copy_from_slice(&ts.to_le_bytes());
            shift_client_port(&mut p[16..], copy);
            w.write_all(&p)?;
            written += p.len() as u64;
        }
        copy += 1;
    }
    w.flush()?;
    println!("wrote {out}: {written} bytes, {copy} copies of {source}");
    Ok(())
}

/// Moves the higher TCP port of an Ethernet/IPv4 frame into a range of its own per copy.
fn shift_client_port(frame: &mut [u8], copy: u32) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[23] != 6 {
        return;
    }
    let tcp = 14 + usize::from(frame[14] & 0x0f) * 4;
    if frame.len() < tcp + 4 {
        return;
    }
    let sport = u16::from_be_bytes([frame[tcp], frame[tcp + 1]]);
    let dport = u16::from_be_bytes([frame[tcp + 2], frame[tcp + 3]]);
    let at = if sport > dport { tcp } else { tcp + 2 };
    let port = sport.max(dport);
    let moved = 1024 + ((u32::from(port) + copy * 97) % 64000) as u16;
    frame[at..at + 2].copy_from_slice(&moved.to_be_bytes());
}

fn read(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut reader = certhist_pcap::Reader::new(std::fs::File::open(path)?)?;
    let mut observations = 0u64;
    let mut chain_bytes = 0u64;
    for event in reader.by_ref() {
        if let certhist_pcap::Event::ServerCertificate(o) = event {
            observations += 1;
            chain_bytes += o.chain.iter().map(|c| c.len() as u64).sum::<u64>();
        }
    }
    let (flows, buffered) = reader.footprint();
    let elapsed = start.elapsed().as_secs_f64();
    let stats = reader.finish();
    println!(
        "bytes={} seconds={elapsed:.3} mb_per_s={:.1} packets={} observations={observations} chain_bytes={chain_bytes} tls13={} flows_left={flows} buffered_bytes={buffered}",
        stats.bytes,
        stats.bytes as f64 / 1e6 / elapsed,
        stats.packets,
        stats.tls13_handshakes,
    );
    Ok(())
}
