-- New certificates and their names. The writer deduplicates the batch by sha1 and COPYs it in
-- sha1 order with issuer_key_hash already resolved (write.rs, resolve_issuer_keys), so this is a
-- plain insert: no sort, and no second version of each new row. Known certificates are left
-- unchanged. Returns (inserted, inserted with a parse error, sha1s of inserted CA certificates).
WITH inserted AS (
    INSERT INTO certificates (
        sha1, sha256, der, parse_error, serial, serial_negative,
        subject_dn, subject_cn, subject_o, subject_ou, subject_c, subject_l, subject_st, subject_email,
        issuer_dn, issuer_cn, issuer_o, issuer_ou, issuer_c, issuer_l, issuer_st, issuer_email,
        not_before, not_after, spki_sha256, key_sha1, key_algorithm, key_bits, signature_algorithm,
        is_ca, is_precert, issuer_name_hash, subject_name_hash, issuer_key_hash,
        authority_key_id, subject_key_id, tbs_noct_sha256)
    SELECT
        sha1, sha256, der, parse_error, serial, serial_negative,
        subject_dn, subject_cn, subject_o, subject_ou, subject_c, subject_l, subject_st, subject_email,
        issuer_dn, issuer_cn, issuer_o, issuer_ou, issuer_c, issuer_l, issuer_st, issuer_email,
        not_before, not_after, spki_sha256, key_sha1, key_algorithm, key_bits, signature_algorithm,
        is_ca, is_precert, issuer_name_hash, subject_name_hash, issuer_key_hash,
        authority_key_id, subject_key_id, tbs_noct_sha256
    FROM stage_certificates
    ON CONFLICT DO NOTHING
    RETURNING sha1, is_ca, parse_error IS NOT NULL AS unparsable
), inserted_names AS (
    -- Names are unique per certificate in the staging table (deduplicated by the writer).
    INSERT INTO certificate_names (sha1, name, kinds, registered_domain)
    SELECT n.sha1, n.name, n.kinds, n.registered_domain
    FROM stage_names n
    JOIN inserted USING (sha1)
    ON CONFLICT DO NOTHING
)
SELECT count(*), count(*) FILTER (WHERE unparsable), array_agg(sha1) FILTER (WHERE is_ca)
FROM inserted;
