-- Edges from the addresses $1 (inet[]) to the certificates they served within the window
-- [$2 since, $3 until], over all ports, in (ip, sha1) order; at most $4.
SELECT ip, sha1, array_agg(port ORDER BY port), min(first_seen), max(last_seen), sum(times_seen)::bigint
FROM observations
WHERE ip = ANY($1::inet[])
  AND ($2::timestamptz IS NULL OR last_seen >= $2)
  AND ($3::timestamptz IS NULL OR first_seen <= $3)
GROUP BY ip, sha1
ORDER BY ip, sha1
LIMIT $4
