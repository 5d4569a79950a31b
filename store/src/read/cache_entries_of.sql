-- Cache artifacts whose OCSP CertID (serial + issuer name hash) is the certificate $1's; at
-- most $2.
SELECT e.collection, e.url, e.kind, e.downloaded_at, e.last_modified, e.ocsp_status,
       e.this_update, e.next_update
FROM certificates c
JOIN cache_entries e ON e.serial = c.serial AND e.issuer_name_hash = c.issuer_name_hash
WHERE c.sha1 = $1
ORDER BY e.collection, e.url, e.cert_index
LIMIT $2
