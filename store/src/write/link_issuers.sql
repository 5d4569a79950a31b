-- Stored certificates issued by CA certificates that arrived in this batch ($1: their sha1s) get
-- their issuer_key_hash (the OCSP CertID issuerKeyHash): the CA's subject Name hashes to the
-- child's issuer_name_hash and, when both carry key identifiers, its subjectKeyIdentifier equals
-- the child's AKI. Children written in the same batch were resolved before the insert
-- (write.rs, resolve_issuer_keys); this finds the ones stored before their issuer, through the
-- partial index over children whose issuer key is still unknown.
UPDATE certificates c
SET issuer_key_hash = ca.key_sha1
FROM certificates ca
WHERE ca.sha1 = ANY($1)
  AND ca.is_ca
  AND ca.key_sha1 IS NOT NULL
  AND c.issuer_key_hash IS NULL
  AND c.issuer_name_hash = ca.subject_name_hash
  AND (c.authority_key_id IS NULL OR ca.subject_key_id IS NULL OR c.authority_key_id = ca.subject_key_id)
