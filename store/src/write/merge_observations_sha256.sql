-- Merge staged sightings of certificates known only by SHA-256 (combined per (ip, port, sha256)
-- by the writer, COPYed into stage_observations_sha256) into observations_sha256, as
-- merge_observations.sql does for observations.
INSERT INTO observations_sha256 (ip, port, sha256, first_seen, last_seen, times_seen, sources)
SELECT ip, port, sha256, first_seen, last_seen, times_seen, sources
FROM stage_observations_sha256
ON CONFLICT (ip, port, sha256) DO UPDATE SET
    first_seen = least(observations_sha256.first_seen, excluded.first_seen),
    last_seen  = greatest(observations_sha256.last_seen, excluded.last_seen),
    times_seen = observations_sha256.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ observations_sha256.sources THEN observations_sha256.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(observations_sha256.sources || excluded.sources) AS x(s) ORDER BY s)
                 END;
