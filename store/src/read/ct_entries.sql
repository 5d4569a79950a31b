-- CT log entries of the certificates $1 (bytea[]: a certificate and its siblings), oldest first.
SELECT l.url, e.entry_index, e.entry_timestamp, e.entry_type, e.sha1
FROM ct_entries e
JOIN ct_logs l ON l.id = e.log_id
WHERE e.sha1 = ANY($1)
ORDER BY e.entry_timestamp, l.url, e.entry_index
LIMIT 1000
