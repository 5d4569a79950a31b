//! A small HTTP/1.1 server on 127.0.0.1 for tests: routes to a handler, and injects faults
//! (429 with Retry-After, 5xx, truncated bodies, connection resets, gzip) from a queue.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One injected fault (consumed by the next request).
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `Retry-After: <value>`.
    TooMany(String),
    /// This status, no Retry-After.
    Status(u16),
    /// The right headers, half the body, then close.
    Truncate,
    /// Close the connection without answering.
    Reset,
}

/// A handler: path (with query) → (status, body). `None` = 404.
pub type Handler = Arc<dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync>;

/// The running server.
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:1234`.
    pub url: String,
    /// Faults to inject, in order.
    pub faults: Arc<Mutex<VecDeque<Fault>>>,
    /// Gzip every body (Content-Encoding: gzip).
    pub gzip: Arc<std::sync::atomic::AtomicBool>,
    /// Paths requested.
    pub log: Arc<Mutex<Vec<String>>>,
    /// When each request arrived (its head fully read), in arrival order.
    pub times: Arc<Mutex<Vec<Instant>>>,
}

pub async fn start(handler: Handler) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let faults = Arc::new(Mutex::new(VecDeque::new()));
    let requests = Arc::new(AtomicU64::new(0));
    let gzip = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let times = Arc::new(Mutex::new(Vec::new()));
    let (f, r, g, l, tm) = (
        faults.clone(),
        requests,
        gzip.clone(),
        log.clone(),
        times.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, f, r, g, l, tm) = (
                handler.clone(),
                f.clone(),
                r.clone(),
                g.clone(),
                l.clone(),
                tm.clone(),
            );
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                r.fetch_add(1, Ordering::SeqCst);
                tm.lock().unwrap().push(Instant::now());
                l.lock().unwrap().push(path.clone());
                let fault = f.lock().unwrap().pop_front();
                let (status, extra, body) = match fault.clone() {
                    Some(Fault::Reset) => {
                        // Close without answering: the client sees the connection end.
                        drop(sock);
                        return;
                    }
                    Some(Fault::TooMany(v)) => {
                        (429, format!("Retry-After: {v}\r\n"), b"slow down".to_vec())
                    }
                    Some(Fault::Status(s)) => (s, String::new(), b"oops".to_vec()),
                    Some(Fault::Truncate) | None => match handler(&path) {
                        Some(b) => (200, String::new(), b),
                        None => (404, String::new(), b"not found".to_vec()),
                    },
                };
                let (body, extra) = if status == 200 && g.load(Ordering::SeqCst) {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    std::io::Write::write_all(&mut e, &body).unwrap();
                    (
                        e.finish().unwrap(),
                        format!("{extra}Content-Encoding: gzip\r\n"),
                    )
                } else {
                    (body, extra)
                };
                let hdr = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                    body.len()
                );
                let _ = sock.write_all(hdr.as_bytes()).await;
                let send = if matches!(fault, Some(Fault::Truncate)) {
                    &body[..body.len() / 2]
                } else {
                    &body[..]
                };
                let _ = sock.write_all(send).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server {
        url: format!("http://{addr}"),
        faults,
        gzip,
        log,
        times,
    }
}
