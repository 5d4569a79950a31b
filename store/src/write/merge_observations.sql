-- Merge staged sightings into the history. Duplicate keys within the batch are combined first
-- (ON CONFLICT may touch a row only once per statement).
INSERT INTO observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
SELECT ip, port, sha1, min(first_seen), max(last_seen), sum(times_seen)::bigint,
       array_agg(DISTINCT source ORDER BY source)
FROM stage_observations
GROUP BY ip, port, sha1
ORDER BY ip, port, sha1
ON CONFLICT (ip, port, sha1) DO UPDATE SET
    first_seen = least(observations.first_seen, excluded.first_seen),
    last_seen  = greatest(observations.last_seen, excluded.last_seen),
    times_seen = observations.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ observations.sources THEN observations.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(observations.sources || excluded.sources) AS u(s) ORDER BY s)
                 END;
