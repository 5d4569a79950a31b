//! Slow and hostile peers (issue 16): servers that trickle their answer one byte a second, that
//! send a 16 MB Certificate message, or that start the handshake and never finish it. Each
//! target ends in bounded time with an error result — the per-target timeout (`Timeout`) or a
//! handshake failure — and the scanner stops reading a message it will never accept instead of
//! buffering it (the server cannot push the 16 MB through).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certhist_scan::scanner::{client_config, grab_chain, FailureKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{server_hello, u24};

/// The per-target timeout of these scans.
const TIMEOUT: Duration = Duration::from_secs(2);

/// What one hostile server does after reading the ClientHello.
#[derive(Clone, Copy)]
enum Hostile {
    /// The ServerHello, one byte a second, forever.
    Trickle,
    /// A Certificate message (§7.4.2) declaring 16 MB, then 16 MB of it in full records.
    Huge,
    /// ServerHello and nothing else: the handshake never finishes.
    NeverFinish,
}

/// Serves one connection as `how`; counts the bytes the client accepted.
async fn hostile(how: Hostile, written: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut hello = [0u8; 4096];
        let _ = s.read(&mut hello).await;
        match how {
            Hostile::Trickle => {
                for b in server_hello().iter().cycle() {
                    if s.write_all(&[*b]).await.is_err() {
                        return;
                    }
                    written.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Hostile::Huge => {
                const TOTAL: usize = 16 * 1024 * 1024;
                let mut out = server_hello();
                // The Certificate message header: type 11, length 16 MB (u24 maximum is 16 MiB - 1).
                let mut first = vec![11];
                first.extend(u24(TOTAL - 1));
                first.extend(u24(TOTAL - 4));
                let mut rec = vec![22, 3, 3];
                rec.extend(u16::try_from(first.len()).unwrap().to_be_bytes());
                rec.extend(first);
                out.extend(rec);
                if s.write_all(&out).await.is_err() {
                    return;
                }
                written.fetch_add(out.len(), Ordering::Relaxed);
                // The rest of the message in 16 KiB records of arbitrary bytes.
                let mut chunk = vec![22, 3, 3, 0x40, 0x00];
                chunk.extend(vec![0x30; 0x4000]);
                let mut sent = 0;
                while sent < TOTAL {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                    written.fetch_add(chunk.len(), Ordering::Relaxed);
                    sent += 0x4000;
                }
                // Keep the connection open: only the client may end it.
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            Hostile::NeverFinish => {
                let hello = server_hello();
                if s.write_all(&hello).await.is_ok() {
                    written.fetch_add(hello.len(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn hostile_servers_end_in_bounded_time_with_an_error() {
    let connector = tokio_rustls::TlsConnector::from(client_config().unwrap());
    for (how, name, want) in [
        (Hostile::Trickle, "trickle", FailureKind::Timeout),
        (Hostile::NeverFinish, "never-finish", FailureKind::Timeout),
        (Hostile::Huge, "16 MB certificate", FailureKind::Handshake),
    ] {
        let written = Arc::new(AtomicUsize::new(0));
        let addr = hostile(how, written.clone()).await;
        let started = Instant::now();
        // A generous outer bound: the scanner's own deadline must end the target first.
        let got = tokio::time::timeout(TIMEOUT * 10, grab_chain(&connector, addr, None, TIMEOUT))
            .await
            .unwrap_or_else(|_| panic!("{name}: the scan of one target did not end"));
        let took = started.elapsed();
        eprintln!(
            "{name}: {got:?} after {took:?}, {} bytes accepted",
            written.load(Ordering::Relaxed)
        );
        assert_eq!(got.map(|c| c.len()), Err(want), "{name}");
        if want == FailureKind::Timeout {
            assert!(took >= TIMEOUT, "{name}: ended before its timeout");
        }
        if matches!(how, Hostile::Huge) {
            // Give the server a moment to notice the closed connection, then check it could
            // not push the whole message: the client stopped reading at the header.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let accepted = written.load(Ordering::Relaxed);
            assert!(
                accepted < 16 * 1024 * 1024,
                "the client accepted {accepted} bytes of a message it cannot use"
            );
        }
    }
}
