-- Certificates served by an address or block ($1, cidr as text), overlapping the window
-- [$2 since, $3 until], in (ip, port, cert_id) order after the row of the key ($4, $5, $6 the
-- SHA-1 of the last row seen); at most $7 rows. That is the primary key's order (ip, port,
-- cert_id) of `sightings` (schema V7), so a page reads its `$7` rows from the index and stops,
-- however long the address's history: `ip <<= $1::text::cidr` and the page key become a range
-- on the primary key when planned with the values. Within one ip:port the order is that of the
-- compact keys (the order in which certhist first saw the certificates; SHA-1 order for those
-- converted from schema V6).
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
  AND ($4::inet IS NULL
       OR (o.ip, o.port, o.cert_id) > ($4, ($5 - 32768)::smallint,
                                       coalesce((SELECT id FROM cert_keys WHERE sha1 = $6), 0)))
ORDER BY o.ip, o.port, o.cert_id
LIMIT $7
