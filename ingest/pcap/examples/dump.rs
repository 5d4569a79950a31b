//! Prints the events and counters of captures: `cargo run -p certhist-pcap --example dump FILE…`.

use sha1::Digest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let mut reader = certhist_pcap::Reader::new(std::fs::File::open(&path)?)?;
        println!("{path}");
        for event in reader.by_ref() {
            match &event {
                certhist_pcap::Event::ServerCertificate(o)
                | certhist_pcap::Event::ClientCertificate(o) => {
                    let leaf = o.chain.first().map(|d| hex::encode(sha1::Sha1::digest(d)));
                    println!("  {event:?}\n    leaf sha1 {leaf:?}");
                }
                certhist_pcap::Event::Malformed(m) => {
                    let leaf = m
                        .observation
                        .chain
                        .first()
                        .map(|d| hex::encode(sha1::Sha1::digest(d)));
                    println!("  {event:?}\n    leaf sha1 {leaf:?}");
                }
                _ => println!("  {event:?}"),
            }
        }
        println!("  {:?}", reader.stats());
    }
    Ok(())
}
