-- Fill certificates.issuer_key_hash (the OCSP CertID issuerKeyHash) where the issuer is known:
-- the issuer is a CA certificate whose subject Name hashes to the child's issuer_name_hash and,
-- when both carry key identifiers, whose subjectKeyIdentifier equals the child's AKI. Only
-- unambiguous matches (one distinct issuer key) are used.

-- 1. Children in this batch whose issuer is stored.
UPDATE certificates c
SET issuer_key_hash = x.key_sha1
FROM (
    SELECT s.sha1, (array_agg(i.key_sha1))[1] AS key_sha1
    FROM stage_certificates s
    JOIN certificates i
      ON i.is_ca
     AND i.subject_name_hash = s.issuer_name_hash
     AND i.key_sha1 IS NOT NULL
     AND (s.authority_key_id IS NULL OR i.subject_key_id IS NULL OR i.subject_key_id = s.authority_key_id)
    WHERE s.issuer_key_hash IS NULL AND s.issuer_name_hash IS NOT NULL
    GROUP BY s.sha1
    HAVING count(DISTINCT i.key_sha1) = 1
) x
WHERE c.sha1 = x.sha1 AND c.issuer_key_hash IS NULL;

-- 2. Stored children of CA certificates in this batch.
UPDATE certificates c
SET issuer_key_hash = s.key_sha1
FROM stage_certificates s
WHERE s.is_ca
  AND s.key_sha1 IS NOT NULL
  AND c.issuer_name_hash = s.subject_name_hash
  AND c.issuer_key_hash IS NULL
  AND (c.authority_key_id IS NULL OR s.subject_key_id IS NULL OR c.authority_key_id = s.subject_key_id);
