-- Merge staged sightings into the history (`sightings`, schema V7). The writer has already
-- combined duplicate keys of the batch and sorted them by (ip, port, sha1), and
-- merge_observation_keys.sql has given every SHA-1 of the batch its `cert_keys` row, so this is
-- one insert-or-update per key: least first seen, greatest last seen, count summed (saturating
-- at the int4 maximum), sources united (`source_set_union`). Each distinct set of labels of the
-- batch is looked up (or added) once; certificate ids by a primary-key probe per row.
WITH sets AS MATERIALIZED (
    SELECT d.sources, source_set_id(d.sources) AS id
    FROM (SELECT DISTINCT sources FROM stage_observations) d
)
INSERT INTO sightings AS s (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
SELECT (SELECT k.id FROM cert_keys k WHERE k.sha1 = o.sha1),
       s2k(o.first_seen), s2k(o.last_seen), least(o.times_seen, 2147483647)::integer,
       (o.port - 32768)::smallint,
       (SELECT sets.id FROM sets WHERE sets.sources = o.sources),
       o.ip
FROM stage_observations o
ON CONFLICT (ip, port, cert_id) DO UPDATE SET
    first_seen = least(s.first_seen, excluded.first_seen),
    last_seen  = greatest(s.last_seen, excluded.last_seen),
    times_seen = least(s.times_seen::bigint + excluded.times_seen, 2147483647)::integer,
    sources    = CASE
                   WHEN excluded.sources = s.sources THEN s.sources
                   ELSE source_set_union(s.sources, excluded.sources)
                 END
