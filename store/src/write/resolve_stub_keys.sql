-- The identity (`cert_keys`) of the certificates whose stubs resolve_stubs.sql is about to join
-- (same filter as its first step), added when missing; run just before it.
INSERT INTO cert_keys (sha1)
SELECT DISTINCT c.sha1
FROM certificate_stubs s
JOIN certificates c ON c.sha256 = s.sha256
WHERE EXISTS (SELECT 1 FROM certificate_stubs) AND s.sha256 = ANY($1::bytea[])
  AND NOT EXISTS (SELECT 1 FROM cert_keys k WHERE k.sha1 = c.sha1)
ORDER BY c.sha1
ON CONFLICT (sha1) DO NOTHING
