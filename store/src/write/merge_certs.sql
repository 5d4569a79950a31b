-- New certificates (first copy of each sha1 in the batch) and their names. Known certificates are
-- left unchanged. Returns (inserted, inserted with a parse error).
WITH inserted AS (
    INSERT INTO certificates (
        sha1, sha256, der, parse_error, serial, serial_negative,
        subject_dn, subject_cn, subject_o, subject_ou, subject_c, subject_l, subject_st, subject_email,
        issuer_dn, issuer_cn, issuer_o, issuer_ou, issuer_c, issuer_l, issuer_st, issuer_email,
        not_before, not_after, spki_sha256, key_sha1, key_algorithm, key_bits, signature_algorithm,
        is_ca, is_precert, issuer_name_hash, subject_name_hash, issuer_key_hash,
        authority_key_id, subject_key_id, tbs_noct_sha256)
    SELECT DISTINCT ON (sha1)
        sha1, sha256, der, parse_error, serial, serial_negative,
        subject_dn, subject_cn, subject_o, subject_ou, subject_c, subject_l, subject_st, subject_email,
        issuer_dn, issuer_cn, issuer_o, issuer_ou, issuer_c, issuer_l, issuer_st, issuer_email,
        not_before, not_after, spki_sha256, key_sha1, key_algorithm, key_bits, signature_algorithm,
        is_ca, is_precert, issuer_name_hash, subject_name_hash, issuer_key_hash,
        authority_key_id, subject_key_id, tbs_noct_sha256
    FROM stage_certificates
    ORDER BY sha1
    ON CONFLICT DO NOTHING
    RETURNING sha1, parse_error IS NOT NULL AS unparsable
), names AS (
    INSERT INTO certificate_names (sha1, kind, name, registered_domain)
    SELECT DISTINCT ON (n.sha1, n.kind, n.name) n.sha1, n.kind, n.name, n.registered_domain
    FROM stage_names n
    JOIN inserted USING (sha1)
    ORDER BY n.sha1, n.kind, n.name
    ON CONFLICT DO NOTHING
)
SELECT count(*), count(*) FILTER (WHERE unparsable) FROM inserted;
