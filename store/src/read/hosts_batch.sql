-- Observations of the certificates $1 (bytea[]), at most $2 per certificate, the most recently
-- seen first.
SELECT sha1, ip, port, first_seen, last_seen, times_seen FROM (
    SELECT o.*, row_number() OVER (PARTITION BY sha1 ORDER BY last_seen DESC, ip, port) AS rn
    FROM observations o
    WHERE sha1 = ANY($1)
) t
WHERE rn <= $2
ORDER BY sha1, last_seen DESC, ip, port
