-- Edges from the addresses $1 (inet[]) to the certificates they served within the window
-- [$2 since, $3 until], over all ports, in (ip, sha1) order; at most $4.
SELECT o.ip, k.sha1, array_agg(o.port + 32768 ORDER BY o.port), s2k_time(min(o.first_seen)),
       s2k_time(max(o.last_seen)), sum(o.times_seen)::bigint
FROM sightings o
JOIN cert_keys k ON k.id = o.cert_id
WHERE o.ip = ANY($1::inet[])
  AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
  AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
GROUP BY o.ip, k.sha1
ORDER BY o.ip, k.sha1
LIMIT $4
