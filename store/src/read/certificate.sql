-- The full record of the certificate whose `sha1` or `sha256` (named by the caller in place of
-- {column}) is $1: the summary columns, then the DER and the other parsed fields, then the
-- number of distinct addresses that served it.
SELECT c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error,
       c.der, c.serial_negative,
       c.subject_dn, c.subject_cn, c.subject_o, c.subject_ou, c.subject_c, c.subject_l, c.subject_st, c.subject_email,
       c.issuer_dn, c.issuer_cn, c.issuer_o, c.issuer_ou, c.issuer_c, c.issuer_l, c.issuer_st, c.issuer_email,
       c.spki_sha256, c.key_sha1, c.key_algorithm, c.key_bits, c.signature_algorithm,
       c.issuer_name_hash, c.issuer_key_hash, c.authority_key_id, c.subject_key_id, c.tbs_noct_sha256,
       c.added_at,
       (SELECT count(DISTINCT o.ip) FROM cert_keys k JOIN sightings o ON o.cert_id = k.id
        WHERE k.sha1 = c.sha1)
FROM certificates c
WHERE c.{column} = $1
