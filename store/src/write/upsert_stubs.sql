-- Certificate stubs of a batch (one per sha256, sorted): new ones inserted; known ones keep
-- their text and fill what they lacked; sources united ($9 = the label).
INSERT INTO certificate_stubs (sha256, subject_dn, subject_cn, issuer_dn, serial_text,
                               not_before, not_after, san_dns, sources)
SELECT sha256, subject_dn, subject_cn, issuer_dn, serial_text, not_before, not_after,
       coalesce(string_to_array(san_dns, E'\n'), '{}'), ARRAY[$9::text]
FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::timestamptz[], $8::text[])
    AS u (sha256, subject_dn, subject_cn, issuer_dn, serial_text, not_before, not_after, san_dns)
ON CONFLICT (sha256) DO UPDATE SET
    subject_dn  = coalesce(certificate_stubs.subject_dn, excluded.subject_dn),
    subject_cn  = coalesce(certificate_stubs.subject_cn, excluded.subject_cn),
    issuer_dn   = coalesce(certificate_stubs.issuer_dn, excluded.issuer_dn),
    serial_text = coalesce(certificate_stubs.serial_text, excluded.serial_text),
    not_before  = coalesce(certificate_stubs.not_before, excluded.not_before),
    not_after   = coalesce(certificate_stubs.not_after, excluded.not_after),
    san_dns     = CASE WHEN certificate_stubs.san_dns = '{}' THEN excluded.san_dns
                       ELSE certificate_stubs.san_dns END,
    sources     = CASE
                    WHEN excluded.sources <@ certificate_stubs.sources THEN certificate_stubs.sources
                    ELSE ARRAY(SELECT DISTINCT s FROM unnest(certificate_stubs.sources || excluded.sources) AS x(s) ORDER BY s)
                  END;
