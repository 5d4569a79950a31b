-- The identity (`cert_keys`) of every SHA-1 of the staged sightings that has none yet, added in
-- SHA-1 order (the unique index grows at its right edge for new keys in order). Run before
-- merge_observations.sql, in the same transaction.
INSERT INTO cert_keys (sha1)
SELECT DISTINCT o.sha1
FROM stage_observations o
WHERE NOT EXISTS (SELECT 1 FROM cert_keys k WHERE k.sha1 = o.sha1)
ORDER BY o.sha1
ON CONFLICT (sha1) DO NOTHING
