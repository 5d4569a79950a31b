//! CertID → certificates → names → IPs, against the certhist store.

use std::collections::{BTreeMap, HashMap};

use certhist_model::views::cryptnet::{
    CertIdMatch, CertIdMatchKind, CertIdResolution, ResolutionSource, ServingHost,
};
use certhist_model::{Serial, Sha1};
use certhist_store::read::{self, CertHost, Issuer, SerialCandidate};
use certhist_store::{Conn, StoreError};

use crate::ocsp::{issuer_name_hash_of, CertId, HashAlgorithm};

/// Rows per query round.
pub const CHUNK: usize = 2000;
/// Hosts listed per certificate.
pub const HOSTS_PER_CERT: i64 = 50;

/// Resolves CertIDs against the store, in order (one [`CertIdResolution`] per id).
pub async fn resolve_local(
    conn: &Conn,
    ids: &[&CertId],
) -> Result<Vec<CertIdResolution>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        out.extend(resolve_chunk(conn, chunk).await?);
    }
    Ok(out)
}

async fn resolve_chunk(conn: &Conn, ids: &[&CertId]) -> Result<Vec<CertIdResolution>, StoreError> {
    let mut serials: Vec<Serial> = ids.iter().map(|i| i.serial.clone()).collect();
    serials.sort();
    serials.dedup();
    let cands = read::certs_by_serials(conn, &serials).await?;
    let mut by_serial: HashMap<&[u8], Vec<&SerialCandidate>> = HashMap::new();
    for c in &cands {
        by_serial.entry(c.serial.as_bytes()).or_default().push(c);
    }
    // DER only for candidates of non-SHA-1 CertIDs (the store keeps SHA-1 name hashes).
    let need_der: Vec<Sha1> = ids
        .iter()
        .filter(|i| i.hash_algorithm != HashAlgorithm::Sha1)
        .flat_map(|i| by_serial.get(i.serial.as_bytes()).into_iter().flatten())
        .map(|c| c.sha1)
        .collect();
    let ders: HashMap<Sha1, Vec<u8>> = if need_der.is_empty() {
        HashMap::new()
    } else {
        read::certs_batch(conn, &need_der)
            .await?
            .into_iter()
            .map(|c| (c.sha1, c.der))
            .collect()
    };
    let mut name_hashes: Vec<Sha1> = ids
        .iter()
        .filter(|i| i.hash_algorithm == HashAlgorithm::Sha1)
        .filter_map(|i| Sha1::try_from(i.issuer_name_hash.as_slice()).ok())
        .collect();
    name_hashes.sort();
    name_hashes.dedup();
    let issuers = read::issuers_by_name_hash(conn, &name_hashes).await?;
    let mut issuer_by_hash: HashMap<&[u8], Vec<&Issuer>> = HashMap::new();
    for i in &issuers {
        issuer_by_hash
            .entry(i.subject_name_hash.as_slice())
            .or_default()
            .push(i);
    }
    let key_is = |i: &Issuer, key: &[u8]| i.key_sha1.as_ref().is_some_and(|k| k[..] == *key);

    let mut results: Vec<CertIdResolution> = Vec::with_capacity(ids.len());
    for id in ids {
        let mut res = CertIdResolution::default();
        if let Some(list) = issuer_by_hash.get(id.issuer_name_hash.as_slice()) {
            // prefer the CA whose key hash is the CertID's
            let best = list
                .iter()
                .find(|i| key_is(i, &id.issuer_key_hash))
                .or(list.first());
            res.issuer = best.and_then(|i| i.subject_dn.clone());
        }
        for c in by_serial.get(id.serial.as_bytes()).into_iter().flatten() {
            let kind = if id.hash_algorithm == HashAlgorithm::Sha1 {
                if c.issuer_name_hash.as_ref().map(|h| &h[..]) != Some(&id.issuer_name_hash[..]) {
                    CertIdMatchKind::SerialOnly
                } else {
                    match c.issuer_key_hash.as_ref().map(|h| &h[..]) {
                        Some(k) if k == &id.issuer_key_hash[..] => CertIdMatchKind::Exact,
                        Some(_) => CertIdMatchKind::SerialOnly,
                        None => {
                            // the issuer key may be known from the CA certificate itself
                            let key_known = issuer_by_hash
                                .get(id.issuer_name_hash.as_slice())
                                .is_some_and(|l| l.iter().any(|i| key_is(i, &id.issuer_key_hash)));
                            if key_known {
                                CertIdMatchKind::Exact
                            } else {
                                CertIdMatchKind::SerialAndIssuerName
                            }
                        }
                    }
                }
            } else {
                let h = ders
                    .get(&c.sha1)
                    .and_then(|d| issuer_name_hash_of(d, &id.hash_algorithm));
                if h.as_deref() == Some(&id.issuer_name_hash[..]) {
                    CertIdMatchKind::SerialAndIssuerName
                } else {
                    CertIdMatchKind::SerialOnly
                }
            };
            res.certs.push(CertIdMatch {
                sha1: hex::encode(c.sha1),
                match_kind: kind,
                subject: c.subject_dn.clone(),
                issuer: c.issuer_dn.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                names: Vec::new(),
                hosts: Vec::new(),
            });
        }
        res.certs
            .sort_by(|a, b| a.match_kind.cmp(&b.match_kind).then(a.sha1.cmp(&b.sha1)));
        if res
            .certs
            .iter()
            .any(|c| c.match_kind != CertIdMatchKind::SerialOnly)
        {
            res.certs
                .retain(|c| c.match_kind != CertIdMatchKind::SerialOnly);
        }
        if !res.certs.is_empty() {
            res.source = Some(ResolutionSource::Local);
        }
        results.push(res);
    }
    fill_names_hosts(conn, &mut results).await?;
    Ok(results)
}

/// Fills names and hosts of every matched certificate.
pub async fn fill_names_hosts(
    conn: &Conn,
    results: &mut [CertIdResolution],
) -> Result<(), StoreError> {
    let mut sha1s: Vec<Sha1> = results
        .iter()
        .flat_map(|r| r.certs.iter())
        .filter_map(|c| hex::decode(&c.sha1).ok())
        .filter_map(|b| Sha1::try_from(b.as_slice()).ok())
        .collect();
    sha1s.sort();
    sha1s.dedup();
    if sha1s.is_empty() {
        return Ok(());
    }
    let mut names: BTreeMap<Sha1, Vec<String>> = BTreeMap::new();
    for row in read::names_batch(conn, &sha1s).await? {
        let v = names.entry(row.sha1).or_default();
        if !v.contains(&row.name) {
            v.push(row.name);
        }
    }
    let mut hosts: BTreeMap<Sha1, Vec<CertHost>> = BTreeMap::new();
    for h in read::hosts_batch(conn, &sha1s, HOSTS_PER_CERT).await? {
        hosts.entry(h.sha1).or_default().push(h);
    }
    for c in results.iter_mut().flat_map(|r| r.certs.iter_mut()) {
        let Some(key) = hex::decode(&c.sha1)
            .ok()
            .and_then(|b| Sha1::try_from(b.as_slice()).ok())
        else {
            continue;
        };
        c.names = names.get(&key).cloned().unwrap_or_default();
        c.hosts = hosts
            .get(&key)
            .map(|v| {
                v.iter()
                    .map(|h| ServingHost {
                        ip: h.ip,
                        port: h.port,
                        first_seen: h.first_seen,
                        last_seen: h.last_seen,
                        times_seen: h.times_seen,
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(())
}
