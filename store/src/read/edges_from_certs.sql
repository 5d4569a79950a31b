-- Edges from the certificates $1 (bytea[]) to the addresses that served them within the
-- window [$2 since, $3 until], over all ports, in (sha1, ip) order; at most $4.
SELECT ip, sha1, array_agg(port ORDER BY port), min(first_seen), max(last_seen), sum(times_seen)::bigint
FROM observations
WHERE sha1 = ANY($1::bytea[])
  AND ($2::timestamptz IS NULL OR last_seen >= $2)
  AND ($3::timestamptz IS NULL OR first_seen <= $3)
GROUP BY sha1, ip
ORDER BY sha1, ip
LIMIT $4
