-- Edges from the certificates $1 (bytea[]) to the addresses that served them within the
-- window [$2 since, $3 until], over all ports, in (sha1, ip) order; at most $4.
SELECT o.ip, k.sha1, array_agg(o.port + 32768 ORDER BY o.port), s2k_time(min(o.first_seen)),
       s2k_time(max(o.last_seen)), sum(o.times_seen)::bigint
FROM cert_keys k
JOIN sightings o ON o.cert_id = k.id
WHERE k.sha1 = ANY($1::bytea[])
  AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
  AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
GROUP BY k.sha1, o.ip
ORDER BY k.sha1, o.ip
LIMIT $4
