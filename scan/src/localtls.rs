//! Local servers on loopback addresses for the demo, the tests and the benchmark: real TLS servers
//! (rustls, certificates generated with rcgen) and misbehaving ones (closing, stalling, resetting,
//! speaking plain HTTP).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::ScanError;

/// A generated CA that signs leaf certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate with its key and the chain a server sends (leaf, CA).
#[derive(Clone, Debug)]
pub struct Identity {
    /// DER chain, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 private key of the leaf.
    pub key_pkcs8: Vec<u8>,
}

fn tls_err(e: impl std::fmt::Display) -> ScanError {
    ScanError::Tls(e.to_string())
}

impl TestCa {
    /// A new self-signed CA with common name `cn`.
    pub fn new(cn: &str) -> Result<TestCa, ScanError> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.self_signed(&key).map_err(tls_err)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate's DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for `names` (first name is also the subject CN), signed by this CA.
    pub fn issue(&self, names: &[&str]) -> Result<Identity, ScanError> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .map_err(tls_err)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(tls_err)?;
        Ok(Identity {
            chain: vec![cert.der().to_vec(), self.der()],
            key_pkcs8: key.serialize_der(),
        })
    }
}

/// What a local server does with a connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Completes TLS handshakes with this configuration.
    Tls(Arc<rustls::ServerConfig>),
    /// Reads the ClientHello, then closes the connection.
    Close,
    /// Accepts and never answers.
    Stall,
    /// Answers the ClientHello with an HTTP/1.1 400 response.
    PlainHttp,
    /// Accepts and resets the connection (RST via SO_LINGER 0).
    Reset,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behaviour::Tls(_) => "Tls",
            Behaviour::Close => "Close",
            Behaviour::Stall => "Stall",
            Behaviour::PlainHttp => "PlainHttp",
            Behaviour::Reset => "Reset",
        })
    }
}

/// A TLS server configuration serving `identity`; `tls12_only` restricts it to TLS 1.2.
pub fn server_config(
    identity: &Identity,
    tls12_only: bool,
) -> Result<Arc<rustls::ServerConfig>, ScanError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let chain: Vec<CertificateDer<'static>> = identity
        .chain
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8.clone()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}

/// A running local server; stops when dropped.
#[derive(Debug)]
pub struct LocalServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LocalServer {
    /// Stops accepting (the listener closes once the task has ended).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server on a bound listener.
pub fn serve(listener: TcpListener, behaviour: Behaviour) -> std::io::Result<LocalServer> {
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let acceptor = match &behaviour {
            Behaviour::Tls(c) => Some(tokio_rustls::TlsAcceptor::from(c.clone())),
            _ => None,
        };
        let mut stalled = Vec::new();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            match &behaviour {
                Behaviour::Tls(_) => {
                    if let Some(acc) = acceptor.clone() {
                        tokio::spawn(async move {
                            if let Ok(mut s) = acc.accept(sock).await {
                                let mut buf = [0u8; 64];
                                let _ = tokio::time::timeout(
                                    std::time::Duration::from_secs(5),
                                    s.read(&mut buf),
                                )
                                .await;
                                let _ = s.shutdown().await;
                            }
                        });
                    }
                }
                Behaviour::Close => {
                    // Read the ClientHello first so the close is a clean FIN, not an RST.
                    tokio::spawn(async move {
                        let mut buf = [0u8; 16 * 1024];
                        let _ = sock.read(&mut buf).await;
                        drop(sock);
                    });
                }
                Behaviour::Stall => {
                    if stalled.len() > 1024 {
                        stalled.clear();
                    }
                    stalled.push(sock);
                }
                Behaviour::PlainHttp => {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 16 * 1024];
                        let _ = sock.read(&mut buf).await;
                        let _ = sock
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        let _ = sock.shutdown().await;
                    });
                }
                Behaviour::Reset => reset(sock),
            }
        }
    });
    Ok(LocalServer { addr, task })
}

#[expect(
    deprecated,
    reason = "a zero linger time resets at once; it never blocks the thread on drop"
)]
fn reset(sock: tokio::net::TcpStream) {
    let _ = sock.set_linger(Some(std::time::Duration::ZERO));
    drop(sock);
}

/// Binds one listener per address, all on the same port (so one `--ports` value covers them).
pub async fn bind_same_port(ips: &[IpAddr]) -> std::io::Result<Vec<TcpListener>> {
    let first = ips
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("no addresses"))?;
    let mut last_err = None;
    for _ in 0..50 {
        let l0 = TcpListener::bind(SocketAddr::new(first, 0)).await?;
        let port = l0.local_addr()?.port();
        let mut all = vec![l0];
        let mut ok = true;
        for ip in ips.iter().skip(1) {
            match TcpListener::bind(SocketAddr::new(*ip, port)).await {
                Ok(l) => all.push(l),
                Err(e) => {
                    last_err = Some(e);
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(all);
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no common free port")))
}
