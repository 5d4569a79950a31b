-- Certificates served by an address or block ($1, cidr as text), overlapping the window
-- [$2 since, $3 until], in (ip, port, sha1) order after the key ($4, $5, $6); at most $7 rows.
-- `ip <<= $1::text::cidr` becomes a range on the primary key of `sightings` (ip, port, cert_id)
-- when planned with the value, and so does the page key's (ip, port); the SHA-1 order within
-- one ip:port is a sort of that address's few rows (incremental sort).
SELECT o.ip, o.port + 32768, k.sha1, s2k_time(o.first_seen), s2k_time(o.last_seen),
       o.times_seen::bigint, ss.names,
       c.sha1 IS NOT NULL,
       c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error,
       ARRAY(SELECT s.name FROM sni_names s WHERE s.ip = o.ip AND s.port = o.port + 32768
             ORDER BY s.name LIMIT 1000) AS names_seen
FROM sightings o
JOIN cert_keys k ON k.id = o.cert_id
JOIN source_sets ss ON ss.id = o.sources
LEFT JOIN certificates c ON c.sha1 = k.sha1
WHERE o.ip <<= $1::text::cidr
  AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
  AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
  AND ($4::inet IS NULL OR (o.ip, o.port) >= ($4, ($5 - 32768)::smallint))
  AND ($4::inet IS NULL OR (o.ip, o.port + 32768, k.sha1) > ($4, $5, $6))
ORDER BY o.ip, o.port, k.sha1
LIMIT $7
