-- Observations of the certificates $1 (bytea[]), at most $2 per certificate, the most recently
-- seen first.
SELECT sha1, ip, port, first_seen, last_seen, times_seen FROM (
    SELECT k.sha1, o.ip, o.port + 32768 AS port, s2k_time(o.first_seen) AS first_seen,
           s2k_time(o.last_seen) AS last_seen, o.times_seen::bigint AS times_seen,
           row_number() OVER (PARTITION BY k.sha1 ORDER BY o.last_seen DESC, o.ip, o.port) AS rn
    FROM cert_keys k
    JOIN sightings o ON o.cert_id = k.id
    WHERE k.sha1 = ANY($1::bytea[])
) t
WHERE rn <= $2
ORDER BY sha1, last_seen DESC, ip, port
