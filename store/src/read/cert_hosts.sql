-- Reverse search: every ip:port that served certificate $1, overlapping the window
-- [$2 since, $3 until], in (ip, port) order after ($4, $5); at most $6 rows.
SELECT ip, port, first_seen, last_seen, times_seen, sources
FROM observations
WHERE sha1 = $1
  AND ($2::timestamptz IS NULL OR last_seen >= $2)
  AND ($3::timestamptz IS NULL OR first_seen <= $3)
  AND ($4::inet IS NULL OR (ip, port) > ($4, $5))
ORDER BY ip, port
LIMIT $6
