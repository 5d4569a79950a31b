-- Certificates whose serial is one of $1 (bytea[]: every reading of what the user typed),
-- narrowed to an exact OCSP CertID by issuer name hash $2 and issuer key hash $3 (a certificate
-- whose issuer is not stored has no issuer key hash and still matches), in sha1 order after
-- $4; at most $5.
SELECT c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error
FROM certificates c
WHERE c.serial = ANY($1)
  AND ($2::bytea IS NULL OR c.issuer_name_hash = $2)
  AND ($3::bytea IS NULL OR c.issuer_key_hash = $3 OR c.issuer_key_hash IS NULL)
  AND ($4::bytea IS NULL OR c.sha1 > $4)
ORDER BY c.sha1
LIMIT $5
