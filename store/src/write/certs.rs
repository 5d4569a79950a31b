//! Certificates: new ones COPYed (straight into the tables, or merged through staging when a
//! concurrent writer got there first), their names, and the OCSP issuer key hash linked in both
//! directions.

use std::pin::pin;

use certhist_model::{CertRecord, Sha1};
use postgres_types::{ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use super::StoreTx;
use crate::StoreError;

/// What [`StoreTx::write_certs`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CertWriteStats {
    /// Certificates that were not in the database before.
    pub new: u64,
    /// Certificates already stored (or repeated within the batch).
    pub known: u64,
    /// Of the new ones, how many are stored with a parse error.
    pub unparsable: u64,
}

/// Certificate columns written by COPY, in order.
const CERT_COLUMNS: &str = "sha1, sha256, der, parse_error, serial, serial_negative, \
    subject_dn, subject_cn, subject_o, subject_ou, subject_c, subject_l, subject_st, subject_email, \
    issuer_dn, issuer_cn, issuer_o, issuer_ou, issuer_c, issuer_l, issuer_st, issuer_email, \
    not_before, not_after, spki_sha256, key_sha1, key_algorithm, key_bits, signature_algorithm, \
    is_ca, is_precert, issuer_name_hash, subject_name_hash, issuer_key_hash, \
    authority_key_id, subject_key_id, tbs_noct_sha256";

/// Staged certificates and names into the tables: counts and the sha1s of the new CA certificates.
const MERGE_CERTS: &str = include_str!("merge_certs.sql");
/// Stored children of the batch's new CA certificates get their issuer key hash.
const LINK_ISSUERS: &str = include_str!("link_issuers.sql");

/// The first record of each sha1, in sha1 order (the primary key's order).
fn dedup_by_sha1(certs: &[CertRecord]) -> Vec<&CertRecord> {
    let mut batch: Vec<&CertRecord> = certs.iter().collect();
    // Stable, so the first copy of a repeated certificate is the one kept.
    batch.sort_by_key(|a| a.sha1);
    batch.dedup_by(|b, a| a.sha1 == b.sha1);
    batch
}

/// A CA certificate that may have issued certificates of a batch.
#[derive(Debug)]
struct IssuerCandidate {
    name_hash: Sha1,
    subject_key_id: Option<Vec<u8>>,
    key_sha1: Sha1,
}

/// Resolves each certificate's issuer key hash from `stored` CA certificates and the CA
/// certificates of the batch itself: kept when the record has one, else the one distinct key
/// among the matching candidates, else unknown (no candidate, or an ambiguous name).
fn resolve_issuer_keys(batch: &[&CertRecord], stored: Vec<IssuerCandidate>) -> Vec<Option<Sha1>> {
    let mut by_name: std::collections::HashMap<Sha1, Vec<IssuerCandidate>> =
        std::collections::HashMap::new();
    let in_batch = batch.iter().filter(|c| c.is_ca).filter_map(|c| {
        Some(IssuerCandidate {
            name_hash: c.subject_name_hash?,
            subject_key_id: c.subject_key_id.clone(),
            key_sha1: c.key_sha1?,
        })
    });
    for cand in stored.into_iter().chain(in_batch) {
        by_name.entry(cand.name_hash).or_default().push(cand);
    }
    batch
        .iter()
        .map(|c| {
            if c.issuer_key_hash.is_some() {
                return c.issuer_key_hash;
            }
            let cands = by_name.get(c.issuer_name_hash.as_ref()?)?;
            let mut keys = cands
                .iter()
                .filter(|i| match (&c.authority_key_id, &i.subject_key_id) {
                    (Some(aki), Some(ski)) => aki == ski,
                    _ => true,
                })
                .map(|i| i.key_sha1);
            let first = keys.next()?;
            keys.all(|k| k == first).then_some(first)
        })
        .collect()
}

/// Adds to `names` (one row per distinct name, with the suffix and substring indexes) the names
/// of `certs` it does not have yet; a name it has costs one primary-key probe. In sorted order,
/// so that writers adding the same new names at once wait for each other in the same order
/// rather than deadlock.
async fn add_names(
    client: &impl tokio_postgres::GenericClient,
    certs: &[CertRecord],
) -> Result<u64, StoreError> {
    let mut all: Vec<&str> = certs
        .iter()
        .flat_map(|c| c.names.iter().map(|n| n.name.as_str()))
        .collect();
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return Ok(0);
    }
    Ok(client
        .execute_typed(
            "INSERT INTO names (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[(&all, Type::TEXT_ARRAY)],
        )
        .await?)
}

/// The OCSP issuerKeyHash of each certificate of the batch: its own when known, else the
/// key of its issuer when exactly one candidate key is stored or in the batch (a CA
/// certificate whose subject Name hash is the child's issuer Name hash and whose subject key
/// identifier, when both are present, is the child's authority key identifier). One indexed
/// query per batch, for the distinct issuer names still unresolved.
async fn stored_issuer_keys(
    client: &impl tokio_postgres::GenericClient,
    batch: &[&CertRecord],
) -> Result<Vec<Option<Sha1>>, StoreError> {
    let mut wanted: Vec<&[u8]> = batch
        .iter()
        .filter(|c| c.issuer_key_hash.is_none())
        .filter_map(|c| c.issuer_name_hash.as_ref().map(|h| &h[..]))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut candidates: Vec<IssuerCandidate> = Vec::new();
    if !wanted.is_empty() {
        let rows = client
            .query_typed(
                "SELECT subject_name_hash, subject_key_id, key_sha1 FROM certificates
                 WHERE is_ca AND key_sha1 IS NOT NULL AND subject_name_hash = ANY($1)",
                &[(&wanted, Type::BYTEA_ARRAY)],
            )
            .await?;
        for r in rows {
            let name: Vec<u8> = r.get(0);
            let key: Vec<u8> = r.get(2);
            if let (Ok(name_hash), Ok(key_sha1)) = (name.try_into(), key.try_into()) {
                candidates.push(IssuerCandidate {
                    name_hash,
                    subject_key_id: r.get(1),
                    key_sha1,
                });
            }
        }
    }
    Ok(resolve_issuer_keys(batch, candidates))
}

/// The end of every certificate write, once its rows are stored: links stored children of the
/// batch's new CA certificates (`new_cas`) to them, then adds all names of the batch to `names`
/// — not only those of new certificates: a batch re-run after a failure may find its
/// certificates stored (by a part of [`crate::Store::write_certs_parallel`]) and must still add
/// their names.
async fn link_and_add_names(
    client: &impl tokio_postgres::GenericClient,
    new_cas: &[Vec<u8>],
    certs: &[CertRecord],
) -> Result<(), StoreError> {
    if !new_cas.is_empty() {
        client
            .execute_typed(LINK_ISSUERS, &[(&new_cas, Type::BYTEA_ARRAY)])
            .await?;
    }
    add_names(client, certs).await?;
    // Stubs (certificates known only by SHA-256 from sensor logs) join their certificate.
    let sha256s: Vec<&[u8]> = certs.iter().map(|c| &c.sha256[..]).collect();
    super::resolve_stubs(client, &sha256s).await?;
    Ok(())
}

impl crate::Store {
    /// Stores certificates (as [`StoreTx::write_certs`]) split by sha1 over `parts` connections,
    /// each part in a transaction of its own that commits as soon as its rows are written, so no
    /// transaction of the batch holds rows while it waits for anything but its own statements.
    /// Every part is committed when this returns. For callers whose own transaction (e.g. CT
    /// provenance and its cursor) must only commit after the certificates it refers to, and can
    /// do its own writes meanwhile. Certificates are content-addressed facts: if the caller then
    /// fails, a re-run finds the parts stored and changes nothing. Parts never touch the same
    /// rows: a certificate and its names go to one part, and issuer keys are resolved for the
    /// whole batch before it is split.
    pub async fn write_certs_parallel(
        &self,
        certs: &[CertRecord],
        parts: usize,
    ) -> Result<CertWriteStats, StoreError> {
        if certs.is_empty() {
            return Ok(CertWriteStats::default());
        }
        let mut conn = self.conn().await?;
        let batch = dedup_by_sha1(certs);
        let issuer_keys = stored_issuer_keys(conn.client(), &batch).await?;
        let parts = parts.max(1);
        let mut split: Vec<Vec<(&CertRecord, Option<Sha1>)>> = vec![Vec::new(); parts];
        for r in batch.into_iter().zip(issuer_keys) {
            split[usize::from(r.0.sha1[0]) % parts].push(r);
        }
        // Parts without a free connection now go with the first (a pool shared by several
        // writers must not deadlock waiting for itself).
        let mut first = split.remove(0);
        let mut others = Vec::new();
        for part in split {
            match self.try_conn().await? {
                Some(c) => others.push((c, part)),
                None => first.extend(part),
            }
        }
        first.sort_unstable_by_key(|a| a.0.sha1);
        let written = futures_util::future::try_join_all(
            std::iter::once((&mut conn, &first[..]))
                .chain(others.iter_mut().map(|(c, p)| (c, &p[..])))
                .map(|(conn, part)| async move {
                    let mut tx = conn.begin().await?;
                    let r = tx.merge_resolved(part).await?;
                    tx.commit().await?;
                    Ok::<_, StoreError>(r)
                }),
        )
        .await?;
        let mut done = CertWriteStats::default();
        let mut new_cas = Vec::new();
        for (part, part_cas) in written {
            done.new += part.new;
            done.unparsable += part.unparsable;
            new_cas.extend(part_cas);
        }
        // Once every part committed, so all new CA certificates' stored children are found, and
        // as statements of their own: adding names may wait for another writer adding the same
        // new names, and no transaction of this batch holds rows meanwhile.
        link_and_add_names(conn.client(), &new_cas, certs).await?;
        done.known = certs.len() as u64 - done.new;
        Ok(done)
    }
}

impl StoreTx<'_> {
    /// Stores certificates (new ones inserted with their names; known ones left as they are) and
    /// fills `issuer_key_hash` where the issuer is now known, in both directions.
    pub async fn write_certs(
        &mut self,
        certs: &[CertRecord],
    ) -> Result<CertWriteStats, StoreError> {
        if certs.is_empty() {
            return Ok(CertWriteStats::default());
        }
        let batch = dedup_by_sha1(certs);
        let issuer_keys = stored_issuer_keys(&*self.tx, &batch).await?;
        let rows: Vec<(&CertRecord, Option<Sha1>)> = batch.into_iter().zip(issuer_keys).collect();
        let (mut done, new_cas) = self.merge_resolved(&rows).await?;
        link_and_add_names(&*self.tx, &new_cas, certs).await?;
        done.known = certs.len() as u64 - done.new;
        Ok(done)
    }

    /// Writes deduplicated, issuer-resolved rows (in sha1 order); returns the counts and the
    /// sha1s of the new CA certificates. The certificates not stored yet (in CT, nearly all)
    /// are COPYed straight into `certificates` and `certificate_names` under a savepoint; if
    /// another writer stored one of them in between (a unique violation), the savepoint is
    /// rolled back and they are merged through the staging tables instead.
    async fn merge_resolved(
        &mut self,
        rows: &[(&CertRecord, Option<Sha1>)],
    ) -> Result<(CertWriteStats, Vec<Vec<u8>>), StoreError> {
        if rows.is_empty() {
            return Ok(Default::default());
        }
        let t0 = std::time::Instant::now();
        let sha1s: Vec<&[u8]> = rows.iter().map(|r| &r.0.sha1[..]).collect();
        let known: std::collections::HashSet<Vec<u8>> = self
            .tx
            .query_typed(
                "SELECT sha1 FROM certificates WHERE sha1 = ANY($1)",
                &[(&sha1s, Type::BYTEA_ARRAY)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let fresh: Vec<(&CertRecord, Option<Sha1>)> = rows
            .iter()
            .filter(|r| !known.contains(&r.0.sha1[..]))
            .copied()
            .collect();
        if fresh.is_empty() {
            return Ok(Default::default());
        }
        self.tx.batch_execute("SAVEPOINT certhist_copy").await?;
        let copied = self
            .copy_rows(&fresh, "certificates", "certificate_names")
            .await;
        let result = if self.end_copy_savepoint(copied).await? {
            let stats = CertWriteStats {
                new: fresh.len() as u64,
                known: 0,
                unparsable: fresh.iter().filter(|r| r.0.parse_error.is_some()).count() as u64,
            };
            let new_cas = fresh
                .iter()
                .filter(|r| r.0.is_ca)
                .map(|r| r.0.sha1.to_vec())
                .collect();
            Ok((stats, new_cas))
        } else {
            self.merge_staged(&fresh).await
        };
        tracing::debug!(
            rows = rows.len(),
            new = fresh.len(),
            ms = t0.elapsed().as_millis() as u64,
            "certificates written"
        );
        result
    }

    /// COPYs certificate rows and their names into `certs_table` and `names_table` (the tables
    /// themselves for certificates not stored yet, or the staging tables).
    async fn copy_rows(
        &mut self,
        rows: &[(&CertRecord, Option<Sha1>)],
        certs_table: &str,
        names_table: &str,
    ) -> Result<(), StoreError> {
        self.copy_cert_rows(rows.iter().map(|(c, k)| (*c, k.as_ref())), certs_table)
            .await?;
        let certs: Vec<&CertRecord> = rows.iter().map(|r| r.0).collect();
        self.copy_name_rows(&certs, names_table).await
    }

    /// Merges rows through the staging tables (insert if new, names of the inserted ones).
    async fn merge_staged(
        &mut self,
        rows: &[(&CertRecord, Option<Sha1>)],
    ) -> Result<(CertWriteStats, Vec<Vec<u8>>), StoreError> {
        self.ensure_staging().await?;
        self.copy_rows(rows, "stage_certificates", "stage_names")
            .await?;
        let row = self.tx.query_one(MERGE_CERTS, &[]).await?;
        let new: i64 = row.get(0);
        let unparsable: i64 = row.get(1);
        let new_cas: Option<Vec<Vec<u8>>> = row.get(2);
        self.tx
            .batch_execute("TRUNCATE stage_certificates, stage_names")
            .await?;
        Ok((
            CertWriteStats {
                new: new as u64,
                known: 0,
                unparsable: unparsable as u64,
            },
            new_cas.unwrap_or_default(),
        ))
    }

    /// COPYs certificate rows into `target` (the staging table, or `certificates` itself for
    /// the benchmark ceiling); columns in [`CERT_COLUMNS`] order.
    async fn copy_cert_rows<'c>(
        &mut self,
        certs: impl Iterator<Item = (&'c CertRecord, Option<&'c Sha1>)>,
        target: &str,
    ) -> Result<(), StoreError> {
        let types = [
            Type::BYTEA,       // sha1
            Type::BYTEA,       // sha256
            Type::BYTEA,       // der
            Type::TEXT,        // parse_error
            Type::BYTEA,       // serial
            Type::BOOL,        // serial_negative
            Type::TEXT,        // subject_dn
            Type::TEXT,        // subject_cn
            Type::TEXT,        // subject_o
            Type::TEXT,        // subject_ou
            Type::TEXT,        // subject_c
            Type::TEXT,        // subject_l
            Type::TEXT,        // subject_st
            Type::TEXT,        // subject_email
            Type::TEXT,        // issuer_dn
            Type::TEXT,        // issuer_cn
            Type::TEXT,        // issuer_o
            Type::TEXT,        // issuer_ou
            Type::TEXT,        // issuer_c
            Type::TEXT,        // issuer_l
            Type::TEXT,        // issuer_st
            Type::TEXT,        // issuer_email
            Type::TIMESTAMPTZ, // not_before
            Type::TIMESTAMPTZ, // not_after
            Type::BYTEA,       // spki_sha256
            Type::BYTEA,       // key_sha1
            Type::TEXT,        // key_algorithm
            Type::INT4,        // key_bits
            Type::TEXT,        // signature_algorithm
            Type::BOOL,        // is_ca
            Type::BOOL,        // is_precert
            Type::BYTEA,       // issuer_name_hash
            Type::BYTEA,       // subject_name_hash
            Type::BYTEA,       // issuer_key_hash
            Type::BYTEA,       // authority_key_id
            Type::BYTEA,       // subject_key_id
            Type::BYTEA,       // tbs_noct_sha256
        ];
        let sink = self
            .tx
            .copy_in(&format!(
                "COPY {target} ({CERT_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for (c, issuer_key_hash) in certs {
            let s = &c.subject;
            let i = &c.issuer;
            let serial = c.serial.as_ref().map(|s| s.as_bytes());
            let spki = c.spki_sha256.as_ref().map(|h| &h[..]);
            let key_sha1 = c.key_sha1.as_ref().map(|h| &h[..]);
            let inh = c.issuer_name_hash.as_ref().map(|h| &h[..]);
            let snh = c.subject_name_hash.as_ref().map(|h| &h[..]);
            let ikh = issuer_key_hash.map(|h| &h[..]);
            let tbs = c.tbs_noct_sha256.as_ref().map(|h| &h[..]);
            let row: [&(dyn ToSql + Sync); 37] = [
                &&c.sha1[..],
                &&c.sha256[..],
                &c.der.as_slice(),
                &c.parse_error,
                &serial,
                &c.serial_negative,
                &s.dn,
                &s.cn,
                &s.o,
                &s.ou,
                &s.c,
                &s.l,
                &s.st,
                &s.email,
                &i.dn,
                &i.cn,
                &i.o,
                &i.ou,
                &i.c,
                &i.l,
                &i.st,
                &i.email,
                &c.not_before,
                &c.not_after,
                &spki,
                &key_sha1,
                &c.key_algorithm,
                &c.key_bits,
                &c.signature_algorithm,
                &c.is_ca,
                &c.is_precert,
                &inh,
                &snh,
                &ikh,
                &c.authority_key_id,
                &c.subject_key_id,
                &tbs,
            ];
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await?;
        Ok(())
    }

    /// COPYs name rows into `target`: one row per (sha1, name) with the bits of every kind the
    /// name appears as.
    async fn copy_name_rows(
        &mut self,
        certs: &[&CertRecord],
        target: &str,
    ) -> Result<(), StoreError> {
        let types = [Type::BYTEA, Type::TEXT, Type::INT2, Type::TEXT];
        let sink = self
            .tx
            .copy_in(&format!(
                "COPY {target} (sha1, name, kinds, registered_domain) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        let mut merged: Vec<(&str, i16, Option<&str>)> = Vec::new();
        for c in certs {
            merged.clear();
            for n in &c.names {
                match merged.iter_mut().find(|m| m.0 == n.name) {
                    Some(m) => {
                        m.1 |= n.kind.bit();
                        m.2 = m.2.or(n.registered_domain.as_deref());
                    }
                    None => merged.push((&n.name, n.kind.bit(), n.registered_domain.as_deref())),
                }
            }
            for (name, kinds, registered_domain) in &merged {
                let row: [&(dyn ToSql + Sync); 4] = [&&c.sha1[..], name, kinds, registered_domain];
                writer.as_mut().write(&row).await?;
            }
        }
        writer.finish().await?;
        Ok(())
    }

    /// Benchmark ceiling: COPY the certificates and their names straight into `certificates`
    /// and `certificate_names` (no staging, no deduplication, no merge; the distinct names go to
    /// `names` with [`StoreTx::copy_names_raw`]). Fails on a duplicate;
    /// only for empty tables in `scripts/bench-import.sh`.
    pub async fn copy_certs_raw(&mut self, certs: &[CertRecord]) -> Result<(), StoreError> {
        let rows: Vec<(&CertRecord, Option<Sha1>)> =
            certs.iter().map(|c| (c, c.issuer_key_hash)).collect();
        self.copy_rows(&rows, "certificates", "certificate_names")
            .await
    }

    /// Benchmark ceiling: COPY names straight into `names` (they must be distinct and new).
    /// Only for `scripts/bench-import.sh`.
    pub async fn copy_names_raw(&mut self, names: &[&str]) -> Result<(), StoreError> {
        let sink = self
            .tx
            .copy_in("COPY names (name) FROM STDIN (FORMAT binary)")
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &[Type::TEXT]));
        for name in names {
            writer.as_mut().write(&[name]).await?;
        }
        writer.finish().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: u8, key: u8, ski: Option<u8>) -> CertRecord {
        CertRecord {
            sha1: [key; 20],
            is_ca: true,
            subject_name_hash: Some([name; 20]),
            key_sha1: Some([key; 20]),
            subject_key_id: ski.map(|s| vec![s]),
            ..CertRecord::default()
        }
    }

    fn leaf(sha1: u8, issuer: u8, aki: Option<u8>) -> CertRecord {
        CertRecord {
            sha1: [sha1; 20],
            issuer_name_hash: Some([issuer; 20]),
            authority_key_id: aki.map(|a| vec![a]),
            ..CertRecord::default()
        }
    }

    #[test]
    fn issuer_keys_resolve_only_when_unambiguous() {
        // Two CA certificates named 1 with keys 10 and 11 (SKIs 100 and 101), one named 2.
        let batch = [
            ca(1, 10, Some(100)),
            ca(2, 12, None),
            leaf(50, 1, Some(101)), // AKI picks key 11
            leaf(51, 1, None),      // no AKI: two keys, ambiguous
            leaf(52, 2, Some(7)),   // the CA has no SKI: its key
            leaf(53, 3, None),      // unknown issuer
        ];
        let stored = vec![IssuerCandidate {
            name_hash: [1; 20],
            subject_key_id: Some(vec![101]),
            key_sha1: [11; 20],
        }];
        let refs: Vec<&CertRecord> = batch.iter().collect();
        let got = resolve_issuer_keys(&refs, stored);
        assert_eq!(
            got,
            vec![None, None, Some([11; 20]), None, Some([12; 20]), None]
        );
        // A record that already knows its issuer key keeps it.
        let mut known = leaf(54, 3, None);
        known.issuer_key_hash = Some([9; 20]);
        assert_eq!(
            resolve_issuer_keys(&[&known], Vec::new()),
            vec![Some([9; 20])]
        );
    }

    #[test]
    fn batches_are_deduplicated_in_sha1_order_keeping_the_first() {
        let mut a = leaf(3, 1, None);
        a.parse_error = Some("first".into());
        let b = leaf(3, 1, None);
        let c = leaf(1, 1, None);
        let batch = [a, b, c];
        let got: Vec<(u8, Option<&str>)> = dedup_by_sha1(&batch)
            .iter()
            .map(|r| (r.sha1[0], r.parse_error.as_deref()))
            .collect();
        assert_eq!(got, vec![(1, None), (3, Some("first"))]);
    }
}
