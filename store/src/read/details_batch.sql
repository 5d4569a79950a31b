-- Details of the stored certificates among $1 (an array of SHA-1s), for the compatibility APIs:
-- the summary columns, the serial sign, subject and issuer fields, the key, and, when $2, the
-- certificate's sightings across every address (NULLs when it was never observed, or when not
-- asked for: a false $2 is a one-time filter, so no observation is read).
SELECT c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error,
       c.serial_negative,
       c.subject_dn, c.subject_cn, c.subject_o, c.subject_ou, c.subject_c, c.subject_l, c.subject_st, c.subject_email,
       c.issuer_dn, c.issuer_cn, c.issuer_o, c.issuer_ou, c.issuer_c, c.issuer_l, c.issuer_st, c.issuer_email,
       c.key_algorithm, c.key_bits,
       s.first_seen, s.last_seen, s.times_seen
FROM certificates c
CROSS JOIN LATERAL (
    SELECT s2k_time(min(o.first_seen)) AS first_seen, s2k_time(max(o.last_seen)) AS last_seen,
           sum(o.times_seen)::int8 AS times_seen
    FROM cert_keys k
    JOIN sightings o ON o.cert_id = k.id
    WHERE $2::bool AND k.sha1 = c.sha1
) s
WHERE c.sha1 = ANY($1)
ORDER BY c.sha1
