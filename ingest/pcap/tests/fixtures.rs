//! The reader against the real captures of tests/data/passive/pcap: every capture row of its
//! EXPECTED.tsv (values computed by an independent reader and cross-checked with tshark and Zeek,
//! see that folder's README) and every certificate of CHAIN.tsv.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use certhist_pcap::{Event, Observation, Reader, Stats};
use sha1::Digest;
use x509_parser::prelude::FromDer;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/passive/pcap")
}

fn tsv(name: &str) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(data_dir().join(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn sha1_hex(der: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(der))
}

fn cn(der: &[u8]) -> String {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        // T61String (tag 20) is taken byte for byte, as Latin-1.
        .map(|a| match a.as_str() {
            Ok(s) => s.to_owned(),
            Err(_) => a.attr_value().data.iter().map(|&b| char::from(b)).collect(),
        })
        .unwrap_or_default();
    name
}

fn ts(o: &Observation) -> String {
    o.ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn read_bytes(bytes: Vec<u8>) -> (Vec<Event>, Stats) {
    let mut reader = match Reader::new(std::io::Cursor::new(bytes)) {
        Ok(reader) => reader,
        // A file cut inside its first header is not recognisable as a capture.
        Err(_) => return (Vec::new(), Stats::default()),
    };
    let events: Vec<Event> = reader.by_ref().collect();
    (events, reader.stats().clone())
}

fn read(file: &str) -> (Vec<Event>, Stats) {
    let mut reader = Reader::open(data_dir().join(file)).unwrap();
    let events: Vec<Event> = reader.by_ref().collect();
    (events, reader.stats().clone())
}

fn servers(events: &[Event]) -> Vec<&Observation> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ServerCertificate(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn capture_files() -> Vec<String> {
    tsv("FILES.tsv")
        .into_iter()
        .map(|r| r["path"].clone())
        .collect()
}

#[test]
fn every_expected_row() {
    let expected = tsv("EXPECTED.tsv");
    let files = capture_files();
    assert_eq!(files.len(), 23);
    let mut rows_checked = 0;
    for file in &files {
        let rows: Vec<_> = expected.iter().filter(|r| &r["file"] == file).collect();
        assert!(!rows.is_empty(), "{file} has rows");
        let (events, stats) = read(file);
        assert!(stats.packets > 0, "{file}: {stats:?}");
        let got = servers(&events);
        let obs: Vec<_> = rows
            .iter()
            .filter(|r| r["record"].parse::<usize>().is_ok())
            .collect();
        assert_eq!(
            got.len(),
            obs.len(),
            "{file}: server observations {got:#?}, expected {} rows",
            obs.len()
        );
        assert_eq!(stats.certificate_messages, obs.len() as u64, "{file}");
        for (i, (row, o)) in obs.iter().zip(&got).enumerate() {
            let at = format!("{file} record {}", row["record"]);
            assert_eq!(row["record"], (i + 1).to_string(), "rows in capture order");
            assert_eq!(o.server.ip().to_string(), row["server_ip"], "{at}");
            assert_eq!(o.server.port().to_string(), row["server_port"], "{at}");
            assert_eq!(sha1_hex(&o.chain[0]), row["leaf_sha1"], "{at}");
            assert_eq!(ts(o), row["ts_utc"], "{at}");
            assert_eq!(cn(&o.chain[0]), row["subject_cn"], "{at}");
            // The note names the client and the chain length.
            let note = &row["note"];
            assert!(
                note.contains(&format!("client {}", endpoint(&o.client))),
                "{at}: client {} not in {note}",
                o.client
            );
            assert!(note.contains(&format!("chain={};", o.chain.len())), "{at}");
            let version = certhist_pcap::version_name(o.version);
            assert!(note.starts_with(&format!("{version};")), "{at}: {version}");
            rows_checked += 1;
        }
        // Client certificates: reported, never as server observations.
        let client_rows: Vec<_> = rows
            .iter()
            .filter(|r| r["record"].starts_with("-c"))
            .collect();
        let clients: Vec<&Observation> = events
            .iter()
            .filter_map(|e| match e {
                Event::ClientCertificate(o) => Some(o),
                _ => None,
            })
            .collect();
        assert_eq!(clients.len(), client_rows.len(), "{file}: {clients:?}");
        assert_eq!(stats.client_certificates, client_rows.len() as u64);
        for (row, c) in client_rows.iter().zip(&clients) {
            assert_eq!(c.client.ip().to_string(), row["server_ip"], "{file}");
            assert_eq!(c.client.port().to_string(), row["server_port"], "{file}");
            assert_eq!(ts(c), row["ts_utc"], "{file}");
            match c.chain.first() {
                Some(leaf) => {
                    assert_eq!(sha1_hex(leaf), row["leaf_sha1"]);
                    assert_eq!(cn(leaf), row["subject_cn"]);
                    assert!(got
                        .iter()
                        .all(|o| sha1_hex(&o.chain[0]) != row["leaf_sha1"]));
                }
                None => assert_eq!(row["leaf_sha1"], "", "{file}: empty client Certificate"),
            }
            rows_checked += 1;
        }
        for row in &rows {
            match row["record"].as_str() {
                "-none" => {
                    assert!(got.is_empty(), "{file}");
                    assert!(stats.tls13_handshakes > 0, "{file}: {stats:?}");
                    let snis: Vec<_> = events
                        .iter()
                        .filter_map(|e| match e {
                            Event::Tls13Handshake(h) => Some(h),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(snis.len() as u64, stats.tls13_handshakes);
                    assert!(snis
                        .iter()
                        .all(|h| h.sni.as_deref().is_some_and(|s| !s.is_empty())));
                    rows_checked += 1;
                }
                "-malformed" => {
                    let bad: Vec<_> = events
                        .iter()
                        .filter_map(|e| match e {
                            Event::Malformed(m) => Some(m),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(bad.len(), 1, "{file}: {events:?}");
                    let m = bad[0];
                    assert!(m.from_server);
                    assert_eq!(m.observation.server.ip().to_string(), row["server_ip"]);
                    assert_eq!(m.observation.server.port().to_string(), row["server_port"]);
                    assert_eq!(sha1_hex(&m.observation.chain[0]), row["leaf_sha1"]);
                    assert_eq!(ts(&m.observation), row["ts_utc"]);
                    assert_eq!(stats.malformed, 1);
                    rows_checked += 1;
                }
                "-truncated" => {
                    let why = stats.truncated.as_deref().unwrap_or_default();
                    // "partial packet data at 5035 (frame 7); 6 complete packets before it"
                    assert!(why.contains("at byte 5035"), "{file}: {why}");
                    assert_eq!(stats.packets, 6);
                    rows_checked += 1;
                }
                _ => {}
            }
        }
        if !rows.iter().any(|r| r["record"] == "-truncated") {
            assert_eq!(stats.truncated, None, "{file}");
        }
    }
    assert_eq!(rows_checked, expected.len(), "every row asserted");
}

fn endpoint(a: &std::net::SocketAddr) -> String {
    format!("{}:{}", a.ip(), a.port())
}

#[test]
fn every_chain_certificate_in_order() {
    let chains = tsv("CHAIN.tsv");
    let mut checked = 0;
    for file in capture_files() {
        let rows: Vec<_> = chains.iter().filter(|r| r["file"] == file).collect();
        if rows.is_empty() {
            continue;
        }
        let (events, _) = read(&file);
        let got = servers(&events);
        for row in rows {
            let record: usize = row["record"].parse().unwrap();
            let pos: usize = row["pos"].parse().unwrap();
            let o = got[record - 1];
            assert_eq!(
                sha1_hex(&o.chain[pos]),
                row["sha1"],
                "{file} {record} {pos}"
            );
            let chain_len = chains
                .iter()
                .filter(|r| r["file"] == file && r["record"] == row["record"])
                .count();
            assert_eq!(o.chain.len(), chain_len);
            checked += 1;
        }
    }
    assert_eq!(checked, chains.len());
}

/// The fixtures' observations as comparable tuples.
fn summary(events: &[Event]) -> Vec<(String, String, String)> {
    servers(events)
        .iter()
        .map(|o| (o.server.to_string(), sha1_hex(&o.chain[0]), ts(o)))
        .collect()
}

#[test]
fn compressed_captures_read_the_same() {
    let file = "Papertrailhack__zeek-intrusion-project/pcaps/capture.pcap";
    let plain = std::fs::read(data_dir().join(file)).unwrap();
    let (want, _) = read_bytes(plain.clone());
    assert_eq!(summary(&want).len(), 6);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let (got, stats) = read_bytes(gz.finish().unwrap());
    assert_eq!(summary(&got), summary(&want));
    assert_eq!(stats.format, "pcap+gzip");
    assert_eq!(stats.bytes, plain.len() as u64);

    // Made with `xz -k` from tls1.2.pcap (see the README).
    let (got, stats) = read("zeek__zeek/testing/btest/Traces/tls/tls1.2.pcap.xz");
    let (want, _) = read("zeek__zeek/testing/btest/Traces/tls/tls1.2.pcap");
    assert_eq!(summary(&got), summary(&want));
    assert_eq!(stats.format, "pcap+xz");
}

/// Packet records of a classic little-endian µs pcap: (header bytes, records).
fn split_pcap(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    let mut at = 24;
    let mut records = Vec::new();
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push(bytes[at..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    (bytes[..24].to_vec(), records)
}

#[test]
fn reordered_and_duplicated_segments_give_the_same_observations() {
    let mut out_of_order = 0;
    for file in [
        "zeek__zeek/testing/btest/Traces/tls/tls1.2.pcap",
        "zeek__zeek/testing/btest/Traces/tls/google-cert-repeat.pcap",
        "zeek__zeek/testing/btest/Traces/tls/ocsp-stapling.pcap",
        "chad314159__infectedPCAP/infected.pcap",
    ] {
        let bytes = std::fs::read(data_dir().join(file)).unwrap();
        let (want, _) = read_bytes(bytes.clone());
        let want: Vec<_> = summary(&want).into_iter().map(|(s, h, _)| (s, h)).collect();
        let (header, records) = split_pcap(&bytes);
        // Every packet sent twice (retransmissions), then every adjacent pair swapped.
        let mut doubled = header.clone();
        for r in &records {
            doubled.extend_from_slice(r);
            doubled.extend_from_slice(r);
        }
        let (got, stats) = read_bytes(doubled);
        assert_eq!(
            summary(&got),
            summary(&read_bytes(bytes.clone()).0),
            "{file}"
        );
        assert!(stats.retransmissions > 0);
        let mut swapped = header.clone();
        for pair in records.chunks(2) {
            for r in pair.iter().rev() {
                swapped.extend_from_slice(r);
            }
        }
        let (got, stats) = read_bytes(swapped);
        let got: Vec<_> = summary(&got).into_iter().map(|(s, h, _)| (s, h)).collect();
        assert_eq!(got, want, "{file}");
        out_of_order += stats.out_of_order;
    }
    // tls1.2.pcap's Certificate spans frames 7 and 8: swapped, they arrive out of order.
    assert!(out_of_order > 0);
}

#[test]
fn truncated_and_corrupted_captures_keep_what_is_intact() {
    for file in capture_files() {
        let bytes = std::fs::read(data_dir().join(&file)).unwrap();
        let (full, _) = read_bytes(bytes.clone());
        let full = summary(&full);
        // Fewer cuts and corruptions for the 2.9 MB capture (debug builds are slow).
        let tries = if bytes.len() > 1_000_000 { 7 } else { 97 };
        let step = (bytes.len() / tries).max(1);
        for cut in (25..bytes.len()).step_by(step) {
            let (got, stats) = read_bytes(bytes[..cut].to_vec());
            let got = summary(&got);
            // What was read from a prefix is a prefix of what the whole file gives.
            assert_eq!(got[..], full[..got.len()], "{file} cut at {cut}");
            if cut < bytes.len() && stats.packets > 0 {
                // Cut inside a block: said so (a cut on a block boundary reads as a shorter file).
                assert!(
                    stats.truncated.is_some() || stats.bytes == cut as u64,
                    "{file} cut at {cut}: {stats:?}"
                );
            }
        }
        // Flipped bytes: no panic, whatever comes out.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..(tries / 2) {
            let mut corrupt = bytes.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = 24 + (state as usize) % (corrupt.len() - 24);
                corrupt[at] ^= (state >> 32) as u8 | 1;
            }
            let _ = read_bytes(corrupt);
        }
    }
}

#[test]
fn not_a_capture_is_an_error() {
    assert!(Reader::new(std::io::Cursor::new(b"hello world, not pcap".to_vec())).is_err());
    assert!(Reader::new(std::io::Cursor::new(Vec::new())).is_err());
}

/// Rewrites every Ethernet frame of a classic pcap with `relink` and sets the header's link type.
fn relink(bytes: &[u8], link: u32, relink: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (mut header, records) = split_pcap(bytes);
    header[20..24].copy_from_slice(&link.to_le_bytes());
    for r in records {
        let frame = relink(&r[16..]);
        let mut head = r[..16].to_vec();
        head[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        head[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        header.extend_from_slice(&head);
        header.extend_from_slice(&frame);
    }
    header
}

#[test]
fn every_link_type_gives_the_same_observations() {
    let file = "zeek__zeek/testing/btest/Traces/tls/missing-intermediate.pcap";
    let bytes = std::fs::read(data_dir().join(file)).unwrap();
    let (want, want_stats) = read_bytes(bytes.clone());
    assert_eq!(summary(&want).len(), 3);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "802.1Q + 802.1ad VLAN tags",
            relink(&bytes, 1, |f| {
                [&f[..12], &[0x88, 0xa8, 0, 7, 0x81, 0x00, 0, 5], &f[12..]].concat()
            }),
        ),
        ("raw IP", relink(&bytes, 101, |f| f[14..].to_vec())),
        (
            "Linux SLL",
            relink(&bytes, 113, |f| {
                [&[0, 0, 0, 1, 0, 6][..], &f[6..12], &[0, 0], &f[12..]].concat()
            }),
        ),
        (
            "Linux SLL2",
            relink(&bytes, 276, |f| {
                [
                    &f[12..14],
                    &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6][..],
                    &f[6..12],
                    &[0, 0],
                    &f[14..],
                ]
                .concat()
            }),
        ),
        (
            "BSD loopback (NULL)",
            relink(&bytes, 0, |f| [&[2, 0, 0, 0][..], &f[14..]].concat()),
        ),
    ];
    for (what, capture) in cases {
        let (got, stats) = read_bytes(capture);
        assert_eq!(summary(&got), summary(&want), "{what}");
        assert_eq!(stats.packets, want_stats.packets, "{what}");
        assert_eq!(stats.unknown_link + stats.short_frames, 0, "{what}");
    }
}

#[test]
fn sni_of_every_connection_as_tshark_decodes_it() {
    let snis = tsv("SNI.tsv");
    let mut checked = 0;
    for file in capture_files() {
        let (events, _) = read(&file);
        for event in &events {
            let (client, server, sni) = match event {
                Event::ServerCertificate(o) | Event::ClientCertificate(o) => {
                    (o.client, o.server, &o.sni)
                }
                Event::Malformed(m) => (
                    m.observation.client,
                    m.observation.server,
                    &m.observation.sni,
                ),
                Event::Tls13Handshake(h) => (h.client, h.server, &h.sni),
            };
            let row = snis
                .iter()
                .find(|r| {
                    r["file"] == file
                        && r["client"] == endpoint(&client)
                        && r["server"] == endpoint(&server)
                })
                .unwrap_or_else(|| panic!("{file}: no ClientHello {client} -> {server}"));
            assert_eq!(sni.as_deref().unwrap_or(""), row["sni"], "{file} {client}");
            checked += 1;
        }
    }
    // 36 server observations, 3 client certificates, 2 malformed, 3 TLS 1.3 handshakes.
    assert_eq!(checked, 44);
}

#[test]
fn finished_handshakes_hold_no_memory_and_a_lost_segment_gives_no_observation() {
    for file in capture_files() {
        let bytes = std::fs::read(data_dir().join(&file)).unwrap();
        let mut reader = Reader::new(std::io::Cursor::new(bytes)).unwrap();
        reader.by_ref().for_each(drop);
        let (_, buffered) = reader.footprint();
        // Only connections cut off mid-handshake by the end of the capture keep a partial record.
        assert!(
            buffered <= 64 * 1024,
            "{file}: {buffered} bytes still buffered"
        );
    }
    // tls1.2.pcap without frame 6, the middle one of the three segments carrying the Certificate
    // message (frames 5, 6, 8): the gap is never filled, so no observation.
    let file = "zeek__zeek/testing/btest/Traces/tls/tls1.2.pcap";
    let bytes = std::fs::read(data_dir().join(file)).unwrap();
    let (mut capture, records) = split_pcap(&bytes);
    for (i, r) in records.iter().enumerate() {
        if i != 5 {
            capture.extend_from_slice(r);
        }
    }
    let (events, stats) = read_bytes(capture);
    assert!(servers(&events).is_empty(), "{events:?}");
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(stats.packets, records.len() as u64 - 1);
    assert!(stats.out_of_order > 0);
}

#[test]
fn a_reader_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let file = "zeek__zeek/testing/btest/Traces/tls/ecdsa-cert.pcap";
    let reader = Reader::open(data_dir().join(file)).unwrap();
    send(&reader);
    let count = std::thread::spawn(move || reader.count()).join().unwrap();
    assert_eq!(count, 1);
}
