//! `certhist demo` scan source: starts TLS servers on 127.0.0.2–127.0.0.5 with certificates
//! generated on the spot (one certificate shared by .2 and .3, a TLS 1.2-only server on .5) and a
//! server on .6 that closes connections, scans them, rotates the certificate of .4, and scans
//! again, so the history queries have sightings, a shared certificate and a rotation to show.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use certhist_store::Store;

use crate::localtls::{bind_same_port, serve, server_config, Behaviour, TestCa};
use crate::scanner::{scan, ScanOptions, ScanSummary};
use crate::ScanError;

fn io(e: std::io::Error) -> ScanError {
    ScanError::Tls(format!(
        "cannot start demo servers on 127.0.0.2-127.0.0.6: {e}"
    ))
}

/// Runs the demo scan (two rounds, the certificate of 127.0.0.4 rotated in between) and returns
/// both summaries.
pub async fn demo(store: &Store) -> Result<Vec<ScanSummary>, ScanError> {
    let ips: Vec<IpAddr> = (2..=6).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let ca = TestCa::new("certhist demo CA")?;
    let shared = ca.issue(&["www.demo.test", "demo.test"])?;
    let old = ca.issue(&["mail.demo.test"])?;
    let new = ca.issue(&["mail.demo.test", "smtp.demo.test"])?;
    let legacy = ca.issue(&["legacy.demo.test"])?;
    let behaviours = [
        Behaviour::Tls(server_config(&shared, false)?),
        Behaviour::Tls(server_config(&shared, false)?),
        Behaviour::Tls(server_config(&old, false)?),
        Behaviour::Tls(server_config(&legacy, true)?),
        Behaviour::Close,
    ];
    let mut servers = Vec::new();
    for (l, b) in bind_same_port(&ips)
        .await
        .map_err(io)?
        .into_iter()
        .zip(behaviours)
    {
        servers.push(serve(l, b).map_err(io)?);
    }
    let port = servers.first().map(|s| s.addr.port()).unwrap_or(0);
    let options = ScanOptions {
        ports: vec![port],
        source: "demo-scan".to_owned(),
        timeout: Duration::from_secs(3),
        ..ScanOptions::default()
    };
    let targets = vec!["127.0.0.2-127.0.0.6".to_owned()];
    let first = scan(store, targets.clone(), &options).await?;
    // Rotate .4: stop its server and serve the new certificate on the same address and port.
    let addr4 = SocketAddr::new(IpAddr::from([127, 0, 0, 4]), port);
    if let Some(slot) = servers.get_mut(2) {
        let config = server_config(&new, false)?;
        let listener = rebind(addr4, slot).await?;
        *slot = serve(listener, Behaviour::Tls(config)).map_err(io)?;
    }
    let second = scan(store, targets, &options).await?;
    drop(servers);
    Ok(vec![first, second])
}

async fn rebind(
    addr: SocketAddr,
    old: &mut crate::localtls::LocalServer,
) -> Result<tokio::net::TcpListener, ScanError> {
    old.stop();
    let mut last = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(io(
        last.unwrap_or_else(|| std::io::Error::other("rebind failed"))
    ))
}
