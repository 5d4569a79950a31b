//! Local servers on loopback addresses for the demo, the tests and the benchmark: real TLS servers
//! (rustls, certificates generated with rcgen) and misbehaving ones (closing, stalling, resetting,
//! speaking plain HTTP).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

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
    /// Completes TLS handshakes choosing the configuration by the ClientHello's SNI, and records
    /// every SNI received.
    TlsBySni(Arc<SniServer>),
    /// Reads the ClientHello, answers with these bytes as they are (e.g. hand-built TLS records),
    /// then closes.
    Raw(Arc<Vec<u8>>),
}

/// One ClientHello as a [`Behaviour::TlsBySni`] server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniSeen {
    /// The server's address the connection came to.
    pub local: SocketAddr,
    /// The `server_name` extension's host name (RFC 6066 §3), `None` when absent.
    pub server_name: Option<String>,
}

/// The SNI names received by [`Behaviour::TlsBySni`] servers, in arrival order (shareable
/// between servers).
#[derive(Clone, Debug, Default)]
pub struct SniLog(Arc<Mutex<Vec<SniSeen>>>);

impl SniLog {
    /// A new empty log.
    pub fn new() -> SniLog {
        SniLog::default()
    }

    fn push(&self, seen: SniSeen) {
        if let Ok(mut v) = self.0.lock() {
            v.push(seen);
        }
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<SniSeen> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The names received on `local`, in arrival order.
    pub fn names_at(&self, local: SocketAddr) -> Vec<Option<String>> {
        self.entries()
            .into_iter()
            .filter(|s| s.local == local)
            .map(|s| s.server_name)
            .collect()
    }
}

/// A virtual-hosting TLS server: a default configuration, configurations for given SNI names,
/// and a log of the names received.
#[derive(Debug)]
pub struct SniServer {
    /// Used when the ClientHello has no SNI or an unknown one.
    pub default: Arc<rustls::ServerConfig>,
    /// Used when the SNI equals the name (ASCII case-insensitive).
    pub by_name: Vec<(String, Arc<rustls::ServerConfig>)>,
    /// Where received names are recorded.
    pub log: SniLog,
}

impl SniServer {
    fn config_for(&self, name: Option<&str>) -> Arc<rustls::ServerConfig> {
        name.and_then(|n| {
            self.by_name
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, c)| c.clone())
        })
        .unwrap_or_else(|| self.default.clone())
    }
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behaviour::Tls(_) => "Tls",
            Behaviour::Close => "Close",
            Behaviour::Stall => "Stall",
            Behaviour::PlainHttp => "PlainHttp",
            Behaviour::Reset => "Reset",
            Behaviour::TlsBySni(_) => "TlsBySni",
            Behaviour::Raw(_) => "Raw",
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

/// Always presents one certified key, whatever the ClientHello says.
#[derive(Debug)]
struct FixedKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedKey {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A TLS server configuration that sends `chain` exactly as given, even bytes that are not
/// certificates (empty, garbage DER), and signs the handshake with `key_pkcs8`. For robustness
/// tests: a scanner must cope with whatever a server sends.
pub fn server_config_any_chain(
    chain: &[Vec<u8>],
    key_pkcs8: &[u8],
    tls12_only: bool,
) -> Result<Arc<rustls::ServerConfig>, ScanError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(tls_err)?;
    let certs = chain
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(certs, signer));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedKey(certified)));
    Ok(Arc::new(config))
}

async fn finish_tls<IO>(accept: tokio_rustls::Accept<IO>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Ok(mut s) = accept.await {
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
        let _ = s.shutdown().await;
    }
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
                        tokio::spawn(finish_tls(acc.accept(sock)));
                    }
                }
                Behaviour::TlsBySni(server) => {
                    let server = server.clone();
                    tokio::spawn(async move {
                        let Ok(local) = sock.local_addr() else {
                            return;
                        };
                        let lazy = tokio_rustls::LazyConfigAcceptor::new(
                            rustls::server::Acceptor::default(),
                            sock,
                        );
                        let Ok(start) = lazy.await else {
                            return;
                        };
                        let server_name = start.client_hello().server_name().map(str::to_owned);
                        let config = server.config_for(server_name.as_deref());
                        server.log.push(SniSeen { local, server_name });
                        finish_tls(start.into_stream(config)).await;
                    });
                }
                Behaviour::Raw(bytes) => {
                    let bytes = bytes.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 16 * 1024];
                        let _ = sock.read(&mut buf).await;
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                        // Let the client read everything before the socket closes.
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            sock.read(&mut buf),
                        )
                        .await;
                    });
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
