//! `certhist demo` scan source: starts TLS servers on 127.0.0.2–127.0.0.5 with certificates
//! generated on the spot (one certificate shared by two addresses, one TLS 1.2-only server) plus a
//! server that closes connections, scans them twice with a rotation in between, and stores what it
//! saw, so the history queries have something to show.

use std::net::IpAddr;

use certhist_store::Store;

use crate::localtls::{bind_same_port, serve, server_config, Behaviour, TestCa};
use crate::scanner::{scan, ScanOptions, ScanSummary};
use crate::ScanError;

/// Runs the demo scan (two rounds) and returns both summaries.
pub async fn demo(store: &Store) -> Result<Vec<ScanSummary>, ScanError> {
    let ips: Vec<IpAddr> = (2..=6).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let ca = TestCa::new("certhist demo CA")?;
    let shared = ca.issue(&["www.demo.test", "demo.test"])?;
    let old = ca.issue(&["mail.demo.test"])?;
    let new = ca.issue(&["mail.demo.test", "smtp.demo.test"])?;
    let legacy = ca.issue(&["legacy.demo.test"])?;
    let io = |e: std::io::Error| ScanError::Tls(format!("cannot start demo servers: {e}"));
    let round = |mail: crate::localtls::Identity| {
        let ips = ips.clone();
        let shared = shared.clone();
        let legacy = legacy.clone();
        async move {
            let mut listeners = bind_same_port(&ips).await.map_err(io)?.into_iter();
            let port = listeners.next().map(|l| {
                let p = l.local_addr().map(|a| a.port()).unwrap_or(0);
                (l, p)
            });
            let Some((first, port)) = port else {
                return Err(ScanError::Tls("no listener".to_owned()));
            };
            let behaviours = [
                Behaviour::Tls(server_config(&shared, false)?),
                Behaviour::Tls(server_config(&mail, false)?),
                Behaviour::Tls(server_config(&legacy, true)?),
                Behaviour::Close,
            ];
            let mut servers =
                vec![serve(first, Behaviour::Tls(server_config(&shared, false)?)).map_err(io)?];
            for (l, b) in listeners.zip(behaviours) {
                servers.push(serve(l, b).map_err(io)?);
            }
            let options = ScanOptions {
                ports: vec![port],
                source: "demo-scan".to_owned(),
                timeout: std::time::Duration::from_secs(3),
                ..ScanOptions::default()
            };
            let summary = scan(store, vec!["127.0.0.2-127.0.0.6".to_owned()], &options).await;
            drop(servers);
            summary
        }
    };
    let first = round(old).await?;
    let second = round(new).await?;
    Ok(vec![first, second])
}
