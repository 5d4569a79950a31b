-- Reverse search: every ip:port that served certificate $1, overlapping the window
-- [$2 since, $3 until], in (ip, port) order after ($4, $5); at most $6 rows. The certificate's
-- compact key (a scalar subquery, so the planner sees one `cert_id` value), then its sightings
-- in address order from the (cert_id, ip) index, the ports of one address sorted from its few
-- rows (incremental sort): a page reads about `$6` index entries however many addresses served
-- the certificate (schema V7).
SELECT o.ip, o.port + 32768, s2k_time(o.first_seen), s2k_time(o.last_seen),
       o.times_seen::bigint, ss.names
FROM sightings o
JOIN source_sets ss ON ss.id = o.sources
WHERE o.cert_id = (SELECT id FROM cert_keys WHERE sha1 = $1)
  AND ($2::timestamptz IS NULL OR s2k_time(o.last_seen) >= $2)
  AND ($3::timestamptz IS NULL OR s2k_time(o.first_seen) <= $3)
  AND ($4::inet IS NULL OR (o.ip, o.port) > ($4, ($5 - 32768)::smallint))
ORDER BY o.ip, o.port
LIMIT $6
