//! Scan targets: IP addresses, CIDR blocks, ranges (`a-b`, both ends included), host names
//! (resolved; the name becomes the SNI) and files of targets (`@file`, or a path that exists),
//! one per line with `#` comments. Expanded lazily so huge ranges use bounded memory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::ScanError;

/// One target as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// A single address.
    Ip(IpAddr),
    /// A CIDR block (every address in it, network and broadcast included).
    Net(IpNet),
    /// An inclusive range of addresses of one family.
    Range(IpAddr, IpAddr),
    /// A host name to resolve; its addresses are scanned with the name as SNI.
    Host(String),
    /// A file with one target per line.
    File(PathBuf),
}

/// An address to connect to, with the SNI name to send (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Address.
    pub ip: IpAddr,
    /// Name to send as SNI (RFC 6066 §3).
    pub sni: Option<String>,
}

/// Parses one target.
pub fn parse_target(text: &str) -> Result<TargetSpec, ScanError> {
    let t = text.trim();
    let bad = |reason: &str| ScanError::BadTarget {
        target: t.to_owned(),
        reason: reason.to_owned(),
    };
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(file) = t.strip_prefix('@') {
        return Ok(TargetSpec::File(PathBuf::from(file)));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(TargetSpec::Ip(ip));
    }
    if t.contains('/') {
        return t
            .parse::<IpNet>()
            .map(TargetSpec::Net)
            .map_err(|_| bad("not a CIDR block"));
    }
    if let Some((a, b)) = t.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) {
            if a.is_ipv4() != b.is_ipv4() {
                return Err(bad("range ends are of different address families"));
            }
            if to_u128(a) > to_u128(b) {
                return Err(bad("range start is after its end"));
            }
            return Ok(TargetSpec::Range(a, b));
        }
    }
    if Path::new(t).is_file() {
        return Ok(TargetSpec::File(PathBuf::from(t)));
    }
    let host = t.strip_suffix('.').unwrap_or(t);
    let valid_host = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid_host {
        Ok(TargetSpec::Host(host.to_ascii_lowercase()))
    } else {
        Err(bad(
            "not an IP address, CIDR block, range, host name or file",
        ))
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(u32::try_from(v).unwrap_or(u32::MAX).into())
    } else {
        IpAddr::V6(v.into())
    }
}

/// Reads an exclusion file: addresses and CIDR blocks, one per line, `#` comments.
pub fn read_excludes(path: &Path) -> Result<Vec<IpNet>, ScanError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScanError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or_default().trim();
        if l.is_empty() {
            continue;
        }
        let net = l
            .parse::<IpNet>()
            .or_else(|_| l.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                ScanError::InvalidArgument(format!(
                    "{}:{}: {l:?} is not an address or CIDR block",
                    path.display(),
                    i + 1
                ))
            })?;
        out.push(net);
    }
    Ok(out)
}

/// Counters of target expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpandStats {
    /// Addresses skipped because an exclusion covers them.
    pub excluded: u64,
    /// Targets (or file lines) that could not be used, with the reason.
    pub bad_targets: Vec<String>,
}

/// Expands targets into endpoints sent to `out` (bounded: waits while the scanner is busy).
/// `fixed_sni` overrides every name.
pub async fn expand(
    targets: Vec<String>,
    excludes: Vec<IpNet>,
    fixed_sni: Option<String>,
    out: mpsc::Sender<Endpoint>,
) -> ExpandStats {
    let mut stats = ExpandStats::default();
    let mut x = Expander {
        excludes,
        fixed_sni,
        out,
        stats: &mut stats,
    };
    for t in targets {
        if !x.target(&t, 0).await {
            break;
        }
    }
    stats
}

struct Expander<'a> {
    excludes: Vec<IpNet>,
    fixed_sni: Option<String>,
    out: mpsc::Sender<Endpoint>,
    stats: &'a mut ExpandStats,
}

impl Expander<'_> {
    /// Returns false when the receiver is gone.
    async fn send(&mut self, ip: IpAddr, sni: Option<String>) -> bool {
        if self.excludes.iter().any(|n| n.contains(&ip)) {
            self.stats.excluded += 1;
            return true;
        }
        let sni = self.fixed_sni.clone().or(sni);
        self.out.send(Endpoint { ip, sni }).await.is_ok()
    }

    async fn target(&mut self, text: &str, depth: u32) -> bool {
        let spec = match parse_target(text) {
            Ok(s) => s,
            Err(e) => {
                self.stats.bad_targets.push(e.to_string());
                return true;
            }
        };
        match spec {
            TargetSpec::Ip(ip) => self.send(ip, None).await,
            TargetSpec::Net(net) => {
                let (a, b) = (net.network(), net.broadcast());
                self.range(a, b).await
            }
            TargetSpec::Range(a, b) => self.range(a, b).await,
            TargetSpec::Host(name) => match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(addrs) => {
                    let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                    ips.sort();
                    ips.dedup();
                    for ip in ips {
                        if !self.send(ip, Some(name.clone())).await {
                            return false;
                        }
                    }
                    true
                }
                Err(e) => {
                    self.stats
                        .bad_targets
                        .push(format!("target {name:?}: cannot resolve: {e}"));
                    true
                }
            },
            TargetSpec::File(path) => {
                if depth > 0 {
                    self.stats.bad_targets.push(format!(
                        "{}: target files cannot include files",
                        path.display()
                    ));
                    return true;
                }
                let file = match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => {
                        self.stats
                            .bad_targets
                            .push(format!("{}: {e}", path.display()));
                        return true;
                    }
                };
                let mut lines = tokio::io::BufReader::new(file).lines();
                let mut n = 0u64;
                loop {
                    let line = match lines.next_line().await {
                        Ok(Some(l)) => l,
                        Ok(None) => break,
                        Err(e) => {
                            self.stats.bad_targets.push(format!(
                                "{}:{}: {e}",
                                path.display(),
                                n + 1
                            ));
                            break;
                        }
                    };
                    n += 1;
                    let l = line.split('#').next().unwrap_or_default().trim();
                    if l.is_empty() {
                        continue;
                    }
                    if l.starts_with('@') {
                        self.stats.bad_targets.push(format!(
                            "{}:{n}: target files cannot include files",
                            path.display()
                        ));
                        continue;
                    }
                    if !Box::pin(self.target(l, depth + 1)).await {
                        return false;
                    }
                }
                true
            }
        }
    }

    async fn range(&mut self, a: IpAddr, b: IpAddr) -> bool {
        let v4 = a.is_ipv4();
        let (mut cur, end) = (to_u128(a), to_u128(b));
        loop {
            if !self.send(from_u128(cur, v4), None).await {
                return false;
            }
            if cur >= end {
                return true;
            }
            cur += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            parse_target("192.0.2.1").unwrap(),
            TargetSpec::Ip("192.0.2.1".parse().unwrap())
        );
        assert!(matches!(
            parse_target("192.0.2.0/30").unwrap(),
            TargetSpec::Net(_)
        ));
        assert!(matches!(
            parse_target("192.0.2.1-192.0.2.9").unwrap(),
            TargetSpec::Range(_, _)
        ));
        assert_eq!(
            parse_target("WWW.Example.com.").unwrap(),
            TargetSpec::Host("www.example.com".into())
        );
        assert!(parse_target("192.0.2.9-192.0.2.1").is_err());
        assert!(parse_target("::1-192.0.2.1").is_err());
        assert!(parse_target("a b").is_err());
        assert!(parse_target("10.0.0.0/33").is_err());
    }

    #[tokio::test]
    async fn expands_with_excludes() {
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(expand(
            vec![
                "192.0.2.0/30".into(),
                "198.51.100.7-198.51.100.8".into(),
                "bad target".into(),
            ],
            vec!["192.0.2.2/32".parse().unwrap()],
            None,
            tx,
        ));
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(e.ip.to_string());
        }
        let stats = task.await.unwrap();
        assert_eq!(
            got,
            [
                "192.0.2.0",
                "192.0.2.1",
                "192.0.2.3",
                "198.51.100.7",
                "198.51.100.8"
            ]
        );
        assert_eq!(stats.excluded, 1);
        assert_eq!(stats.bad_targets.len(), 1);
    }
}
