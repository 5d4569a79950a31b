//! A loopback HTTP/1.1 server (tokio TcpListener) answering each request from a script: the
//! handler gets the request's number (0-based) and returns the reply. It records every request
//! head and when it arrived (head fully read), so tests can check what was sent and lower bounds
//! on waits measured on the server's side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra header lines (`Name: value`), body (with Content-Length).
    Full(u16, Vec<String>, Vec<u8>),
    /// 200 with no Content-Length: `chunk` written again and again until the client hangs up
    /// (a body without end, delimited by the connection close that never comes).
    Endless(Vec<u8>),
    /// Wait this long, then answer 200 with this body.
    Slow(Duration, Vec<u8>),
    /// Close the connection without answering.
    Reset,
    /// 200 with no Content-Length, the head at once, then the body one byte a second, forever
    /// (below any size limit: only the whole-attempt timeout can end it).
    Trickle,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When its head had been read.
    pub at: Instant,
    /// Request line and headers.
    pub head: String,
}

impl Seen {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Requests in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub async fn start(handler: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let handler = Arc::new(handler);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (handler, log) = (handler.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        at: Instant::now(),
                        head: String::from_utf8_lossy(&buf).into_owned(),
                    });
                    log.len() - 1
                };
                let (status, headers, body) = match handler(n) {
                    Reply::Reset => return,
                    Reply::Endless(chunk) => {
                        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        while sock.write_all(&chunk).await.is_ok() {}
                        return;
                    }
                    Reply::Trickle => {
                        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        while sock.write_all(b"z").await.is_ok() {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        return;
                    }
                    Reply::Slow(wait, body) => {
                        tokio::time::sleep(wait).await;
                        (200, Vec::new(), body)
                    }
                    Reply::Full(status, headers, body) => (status, headers, body),
                };
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for h in headers {
                    head.push_str(&h);
                    head.push_str("\r\n");
                }
                head.push_str("\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { url, seen }
}

/// `Full(status, [], body)`.
pub fn status(code: u16, body: &[u8]) -> Reply {
    Reply::Full(code, Vec::new(), body.to_vec())
}
