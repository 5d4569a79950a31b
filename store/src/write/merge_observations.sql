-- Merge staged sightings into the history. The writer has already combined duplicate keys of
-- the batch and sorted them by (ip, port, sha1), so this is one insert-or-update per key.
INSERT INTO observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
SELECT ip, port, sha1, first_seen, last_seen, times_seen, sources
FROM stage_observations
ON CONFLICT (ip, port, sha1) DO UPDATE SET
    first_seen = least(observations.first_seen, excluded.first_seen),
    last_seen  = greatest(observations.last_seen, excluded.last_seen),
    times_seen = observations.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ observations.sources THEN observations.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(observations.sources || excluded.sources) AS u(s) ORDER BY s)
                 END;
