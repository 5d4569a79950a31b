//! The live TLS scanner: connects to every endpoint × port, completes a TLS 1.2 / 1.3 handshake
//! with a verifier that accepts any chain (we record certificates, we do not trust them), and
//! stores the chain the server sent plus a sighting `(ip, port, leaf SHA-1, now)`.
//!
//! Failures are counted by kind and never stop the scan. Memory is bounded: targets are expanded
//! lazily into a small channel, at most `concurrency` handshakes run at once, and results are
//! written in batches. Progress is reported as [`ScanEvent`]s; nothing is printed here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certhist_model::{CertRecord, NameKind, ObservationRow, Sha1};
use certhist_store::Store;
use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::TlsConnector;

use crate::record::sha1_of;
use crate::targets::{self, Endpoint};
use crate::ScanError;

/// Accepts every certificate chain and signature: the scanner records what servers send, it does
/// not authenticate them. The handshake is still a real TLS handshake (RFC 8446 / RFC 5246).
#[derive(Debug)]
struct AcceptAnyChain {
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// A TLS client configuration for scanning: ring provider, TLS 1.2 and 1.3, no session
/// resumption (every handshake must carry the certificates), any chain accepted.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, ScanError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ScanError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyChain { schemes }))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Why a handshake gave no certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// TCP connection refused (RST to SYN).
    Refused,
    /// No answer within the timeout (connect or handshake).
    Timeout,
    /// The connection was reset or aborted during the handshake.
    Reset,
    /// The server closed the connection without completing the handshake.
    Closed,
    /// The peer does not speak TLS (bytes that are not TLS records, e.g. an HTTP response).
    NotTls,
    /// TLS was spoken but the handshake failed (alert, no common version or cipher suite, a
    /// malformed handshake message such as a Certificate message whose lengths do not add up, …).
    Handshake,
    /// The server completed the handshake without sending a certificate.
    NoCertificate,
    /// Another network error (unreachable, no route, …).
    Network,
}

impl FailureKind {
    /// Name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Timeout => "timeout",
            FailureKind::Reset => "reset",
            FailureKind::Closed => "closed",
            FailureKind::NotTls => "not_tls",
            FailureKind::Handshake => "handshake",
            FailureKind::NoCertificate => "no_certificate",
            FailureKind::Network => "network",
        }
    }
}

fn classify_connect(e: &std::io::Error) -> FailureKind {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => FailureKind::Refused,
        K::TimedOut => FailureKind::Timeout,
        K::ConnectionReset | K::ConnectionAborted => FailureKind::Reset,
        _ => FailureKind::Network,
    }
}

fn classify_handshake(e: &std::io::Error) -> FailureKind {
    use std::io::ErrorKind as K;
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        use rustls::InvalidMessage as M;
        return match tls {
            // The record layer (RFC 5246 §6.2.1, RFC 8446 §5.1) rejected the bytes: no TLS here.
            rustls::Error::InvalidMessage(
                M::InvalidContentType
                | M::UnknownProtocolVersion
                | M::MessageTooLarge
                | M::InvalidEmptyPayload,
            )
            | rustls::Error::InappropriateMessage { .. } => FailureKind::NotTls,
            // Well-framed records carrying a malformed handshake message (e.g. a Certificate
            // message whose lengths do not add up): TLS, but broken.
            _ => FailureKind::Handshake,
        };
    }
    match e.kind() {
        K::UnexpectedEof => FailureKind::Closed,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => FailureKind::Reset,
        K::TimedOut => FailureKind::Timeout,
        K::InvalidData => FailureKind::NotTls,
        _ => FailureKind::Handshake,
    }
}

/// Connects to `addr`, performs a TLS handshake (sending `sni` when given; no SNI for bare
/// addresses, RFC 6066 §3) and returns the certificates the server sent, leaf first.
pub async fn grab_chain(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, FailureKind> {
    let deadline = tokio::time::Instant::now() + timeout;
    let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err(FailureKind::Timeout),
        Ok(Err(e)) => return Err(classify_connect(&e)),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let name = match sni.and_then(|n| ServerName::try_from(n.to_owned()).ok()) {
        Some(n) => n,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let stream = match tokio::time::timeout_at(deadline, connector.connect(name, tcp)).await {
        Err(_) => return Err(FailureKind::Timeout),
        Ok(Err(e)) => return Err(classify_handshake(&e)),
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    let chain: Vec<Vec<u8>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
        .unwrap_or_default();
    if chain.is_empty() {
        return Err(FailureKind::NoCertificate);
    }
    Ok(chain)
}

/// How SNI is chosen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SniMode {
    /// Host-name targets send their name; addresses send none.
    #[default]
    Auto,
    /// Send this name to every target.
    Fixed(String),
    /// As `Auto`, then handshake again with each DNS name (up to 8, no wildcards) of the leaf
    /// served, to find certificates of other virtual hosts on the same address.
    FromNames,
}

/// Scan settings.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Ports to connect to on every address.
    pub ports: Vec<u16>,
    /// SNI choice.
    pub sni: SniMode,
    /// Handshakes in flight at most.
    pub concurrency: usize,
    /// New connections per second at most (`None` = unlimited).
    pub rate_per_s: Option<f64>,
    /// Per-connection timeout (connect and handshake together).
    pub timeout: Duration,
    /// Addresses never connected to.
    pub exclude: Vec<ipnet::IpNet>,
    /// Source label stored with the sightings.
    pub source: String,
    /// Sightings per database transaction.
    pub batch_rows: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            ports: vec![443],
            sni: SniMode::Auto,
            concurrency: 256,
            rate_per_s: None,
            timeout: Duration::from_secs(5),
            exclude: Vec::new(),
            source: "scan".to_owned(),
            batch_rows: 5_000,
        }
    }
}

/// Failure counts by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    /// Connection refused.
    pub refused: u64,
    /// Timed out.
    pub timeout: u64,
    /// Reset.
    pub reset: u64,
    /// Closed by the server mid-handshake.
    pub closed: u64,
    /// Not TLS (garbage / other protocol).
    pub not_tls: u64,
    /// TLS handshake error.
    pub handshake: u64,
    /// Handshake without certificate.
    pub no_certificate: u64,
    /// Other network errors.
    pub network: u64,
}

impl FailureCounts {
    fn add(&mut self, k: FailureKind) {
        let slot = match k {
            FailureKind::Refused => &mut self.refused,
            FailureKind::Timeout => &mut self.timeout,
            FailureKind::Reset => &mut self.reset,
            FailureKind::Closed => &mut self.closed,
            FailureKind::NotTls => &mut self.not_tls,
            FailureKind::Handshake => &mut self.handshake,
            FailureKind::NoCertificate => &mut self.no_certificate,
            FailureKind::Network => &mut self.network,
        };
        *slot += 1;
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.refused
            + self.timeout
            + self.reset
            + self.closed
            + self.not_tls
            + self.handshake
            + self.no_certificate
            + self.network
    }
}

/// Distinct leaf certificates kept in a [`ScanSummary`] (all are stored).
pub const MAX_CERTIFICATES_KEPT: usize = 1000;

/// A leaf certificate a scan received, where it was first served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScannedCertificate {
    /// SHA-1 of the DER, hex.
    pub sha1: String,
    /// Address that first served it in this scan.
    pub ip: IpAddr,
    /// Port it was served on.
    pub port: u16,
    /// Subject commonName (attacker-controlled text).
    pub subject_cn: Option<String>,
    /// Subject organizationName (attacker-controlled text).
    pub subject_o: Option<String>,
    /// Subject alternative names: DNS names, addresses, emails, URIs (attacker-controlled text).
    pub san: Vec<String>,
    /// The certificate did not parse (stored with its parse error).
    pub unparsable: bool,
}

impl ScannedCertificate {
    fn new(record: &CertRecord, ip: IpAddr, port: u16) -> Self {
        ScannedCertificate {
            sha1: hex::encode(record.sha1),
            ip,
            port,
            subject_cn: record.subject.cn.clone(),
            subject_o: record.subject.o.clone(),
            san: record
                .names
                .iter()
                .filter(|n| n.kind != NameKind::Cn)
                .map(|n| n.name.clone())
                .collect(),
            unparsable: record.parse_error.is_some(),
        }
    }
}

/// Progress of a scan, for a display drawn by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanEvent {
    /// Another connection is being opened.
    Connecting {
        /// Connections started so far.
        attempts: u64,
    },
}

/// What a scan did.
#[derive(Clone, Debug, Serialize)]
pub struct ScanSummary {
    /// Connections attempted (address × port, plus SNI re-handshakes).
    pub attempts: u64,
    /// Handshakes that returned certificates.
    pub handshakes_ok: u64,
    /// Failures by kind.
    pub failures: FailureCounts,
    /// Certificate occurrences received.
    pub certs_seen: u64,
    /// Certificates new to the database.
    pub certs_new: u64,
    /// Sightings written.
    pub sightings: u64,
    /// Addresses skipped by `--exclude`.
    pub excluded: u64,
    /// Targets that could not be used.
    pub bad_targets: Vec<String>,
    /// The first [`MAX_CERTIFICATES_KEPT`] distinct leaf certificates received, in the order
    /// their batches were written.
    pub certificates: Vec<ScannedCertificate>,
    /// Scan start.
    pub started_at: DateTime<Utc>,
    /// Scan end.
    pub finished_at: DateTime<Utc>,
    /// Wall time.
    pub elapsed_ms: u64,
    /// Completed handshakes (successful ones) per second of wall time.
    pub handshakes_per_s: f64,
}

struct Outcome {
    ip: IpAddr,
    port: u16,
    time: DateTime<Utc>,
    result: Result<Vec<Vec<u8>>, FailureKind>,
}

/// Scans `targets` (see [`crate::targets`]) and stores what it finds.
pub async fn scan(
    store: &Store,
    targets: Vec<String>,
    options: &ScanOptions,
) -> Result<ScanSummary, ScanError> {
    scan_with_progress(store, targets, options, &|_: &ScanEvent| {}).await
}

/// [`scan`], reporting progress to `progress` (called on the scanning task, in order).
pub async fn scan_with_progress(
    store: &Store,
    targets: Vec<String>,
    options: &ScanOptions,
    progress: &(dyn Fn(&ScanEvent) + Sync),
) -> Result<ScanSummary, ScanError> {
    if options.ports.is_empty() {
        return Err(ScanError::InvalidArgument("no ports to scan".to_owned()));
    }
    if options
        .rate_per_s
        .is_some_and(|r| !(r.is_finite() && r > 0.0))
    {
        return Err(ScanError::InvalidArgument(
            "--rate must be a positive number".to_owned(),
        ));
    }
    let started_at = Utc::now();
    let started = Instant::now();
    let connector = TlsConnector::from(client_config()?);
    let fixed_sni = match &options.sni {
        SniMode::Fixed(n) => Some(n.clone()),
        _ => None,
    };
    let (ep_tx, mut ep_rx) = mpsc::channel::<Endpoint>(1024);
    let expander = tokio::spawn(targets::expand(
        targets,
        options.exclude.clone(),
        fixed_sni,
        ep_tx,
    ));
    let (res_tx, res_rx) = mpsc::channel::<Outcome>(options.concurrency.max(1) * 2);
    let writer = {
        let store = store.clone();
        let opts = options.clone();
        tokio::spawn(async move { write_results(&store, res_rx, &opts).await })
    };
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut ticker = options.rate_per_s.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut attempts = 0u64;
    while let Some(ep) = ep_rx.recv().await {
        for &port in &options.ports {
            if let Some(t) = ticker.as_mut() {
                t.tick().await;
            }
            let Ok(permit) = semaphore.clone().acquire_owned().await else {
                break;
            };
            attempts += 1;
            progress(&ScanEvent::Connecting { attempts });
            let connector = connector.clone();
            let res_tx = res_tx.clone();
            let sni = ep.sni.clone();
            let ip = ep.ip;
            let timeout = options.timeout;
            let from_names = options.sni == SniMode::FromNames;
            tokio::spawn(async move {
                let addr = SocketAddr::new(ip, port);
                let result = grab_chain(&connector, addr, sni.as_deref(), timeout).await;
                let extra_names = match (&result, from_names) {
                    (Ok(chain), true) => leaf_dns_names(chain, sni.as_deref()),
                    _ => Vec::new(),
                };
                let _ = res_tx
                    .send(Outcome {
                        ip,
                        port,
                        time: Utc::now(),
                        result,
                    })
                    .await;
                for name in extra_names {
                    let result = grab_chain(&connector, addr, Some(&name), timeout).await;
                    let _ = res_tx
                        .send(Outcome {
                            ip,
                            port,
                            time: Utc::now(),
                            result,
                        })
                        .await;
                }
                drop(permit);
            });
        }
    }
    drop(res_tx);
    let expand_stats = expander.await.map_err(|e| ScanError::Task(e.to_string()))?;
    let written = writer.await.map_err(|e| ScanError::Task(e.to_string()))??;
    let elapsed = started.elapsed();
    Ok(ScanSummary {
        attempts: written.outcomes.max(attempts),
        handshakes_ok: written.ok,
        failures: written.failures,
        certs_seen: written.certs_seen,
        certs_new: written.certs_new,
        sightings: written.sightings,
        excluded: expand_stats.excluded,
        bad_targets: expand_stats.bad_targets,
        certificates: written.certificates,
        started_at,
        finished_at: Utc::now(),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        handshakes_per_s: written.ok as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

/// DNS names of the leaf (SAN dNSName, else subject CN), without wildcards and without `skip`.
fn leaf_dns_names(chain: &[Vec<u8>], skip: Option<&str>) -> Vec<String> {
    const MAX_NAMES: usize = 8;
    let Some(leaf) = chain.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = gn {
                names.insert(n.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.insert(s.to_ascii_lowercase());
            }
        }
    }
    names
        .into_iter()
        .filter(|n| {
            !n.contains('*') && Some(n.as_str()) != skip && ServerName::try_from(n.clone()).is_ok()
        })
        .take(MAX_NAMES)
        .collect()
}

#[derive(Default)]
struct Written {
    outcomes: u64,
    ok: u64,
    failures: FailureCounts,
    certs_seen: u64,
    certs_new: u64,
    sightings: u64,
    certificates: Vec<ScannedCertificate>,
}

async fn write_results(
    store: &Store,
    mut rx: mpsc::Receiver<Outcome>,
    options: &ScanOptions,
) -> Result<Written, ScanError> {
    let mut w = Written::default();
    let mut seen: HashSet<Sha1> = HashSet::new();
    let mut ders: Vec<Vec<u8>> = Vec::new();
    let mut rows: Vec<ObservationRow> = Vec::new();
    // New leaves of the batch being gathered, with the endpoint that served them first.
    let mut leaves: HashMap<Sha1, (IpAddr, u16)> = HashMap::new();
    let mut conn = store.conn().await?;
    let flush_every = Duration::from_secs(2);
    let mut last_flush = Instant::now();
    loop {
        let next = tokio::time::timeout(flush_every, rx.recv()).await;
        let done = matches!(next, Ok(None));
        if let Ok(Some(o)) = next {
            w.outcomes += 1;
            match o.result {
                Err(kind) => {
                    tracing::debug!(scan.ip = %o.ip, scan.port = o.port, scan.failure = kind.as_str(), "handshake failed");
                    w.failures.add(kind);
                }
                Ok(chain) => {
                    w.ok += 1;
                    if let Some(leaf) = chain.first() {
                        let sha1 = sha1_of(leaf);
                        if !seen.contains(&sha1)
                            && w.certificates.len() + leaves.len() < MAX_CERTIFICATES_KEPT
                        {
                            leaves.entry(sha1).or_insert((o.ip, o.port));
                        }
                        rows.push(ObservationRow {
                            ip: o.ip,
                            port: o.port,
                            sha1,
                            first_seen: o.time,
                            last_seen: o.time,
                            times_seen: 1,
                            source: options.source.clone(),
                        });
                    }
                    for der in chain {
                        w.certs_seen += 1;
                        if seen.len() > 1_000_000 {
                            seen.clear();
                        }
                        if seen.insert(sha1_of(&der)) {
                            ders.push(der);
                        }
                    }
                }
            }
        }
        let due = rows.len() >= options.batch_rows.max(1) || last_flush.elapsed() >= flush_every;
        if (due || done) && (!rows.is_empty() || !ders.is_empty()) {
            let batch_ders = std::mem::take(&mut ders);
            let certs = tokio::task::spawn_blocking(move || certhist_x509::parse_many(&batch_ders))
                .await
                .map_err(|e| ScanError::Task(e.to_string()))?;
            let mut tx = conn.begin().await?;
            let stats = tx.write_certs(&certs).await?;
            tx.write_observations(&rows).await?;
            tx.commit().await?;
            w.certs_new += stats.new;
            w.sightings += rows.len() as u64;
            for record in &certs {
                if let Some((ip, port)) = leaves.remove(&record.sha1) {
                    w.certificates
                        .push(ScannedCertificate::new(record, ip, port));
                }
            }
            leaves.clear();
            rows.clear();
            last_flush = Instant::now();
        } else if due {
            last_flush = Instant::now();
        }
        if done {
            return Ok(w);
        }
    }
}
