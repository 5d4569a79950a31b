-- Certificates served by every address of $1 (inet[], distinct; $4 = how many) within the
-- window [$2 since, $3 until], in sha1 order after $5; at most $6. For each certificate: the
-- addresses in order, each with its first/last sighting and count over all ports, then the
-- certificate's summary when it is stored.
WITH per AS (
    SELECT k.sha1, o.ip, s2k_time(min(o.first_seen)) AS f, s2k_time(max(o.last_seen)) AS l,
           sum(o.times_seen)::bigint AS t
    FROM sightings o
    JOIN cert_keys k ON k.id = o.cert_id
    WHERE o.ip = ANY($1::inet[])
      AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
      AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
      AND ($5::bytea IS NULL OR k.sha1 > $5)
    GROUP BY k.sha1, o.ip
), shared AS (
    SELECT sha1, array_agg(ip ORDER BY ip) AS ips, array_agg(f ORDER BY ip) AS fs,
           array_agg(l ORDER BY ip) AS ls, array_agg(t ORDER BY ip) AS ts
    FROM per
    GROUP BY sha1
    HAVING count(*) = $4
    ORDER BY sha1
    LIMIT $6
)
SELECT s.sha1, s.ips, s.fs, s.ls, s.ts, c.sha1 IS NOT NULL,
       c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error
FROM shared s
LEFT JOIN certificates c ON c.sha1 = s.sha1
ORDER BY s.sha1
