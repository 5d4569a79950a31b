-- Addresses that served every certificate of $1 (bytea[], distinct; $4 = how many) within the
-- window [$2 since, $3 until], in address order after $5; at most $6. For each address: the
-- certificates in sha1 order, each with its first/last sighting and count over all ports.
WITH per AS (
    SELECT o.ip, k.sha1, s2k_time(min(o.first_seen)) AS f, s2k_time(max(o.last_seen)) AS l,
           sum(o.times_seen)::bigint AS t
    FROM cert_keys k
    JOIN sightings o ON o.cert_id = k.id
    WHERE k.sha1 = ANY($1::bytea[])
      AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
      AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
      AND ($5::inet IS NULL OR o.ip > $5)
    GROUP BY o.ip, k.sha1
)
SELECT ip, array_agg(sha1 ORDER BY sha1), array_agg(f ORDER BY sha1),
       array_agg(l ORDER BY sha1), array_agg(t ORDER BY sha1)
FROM per
GROUP BY ip
HAVING count(*) = $4
ORDER BY ip
LIMIT $6
