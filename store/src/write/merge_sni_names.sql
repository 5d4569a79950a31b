-- Merge staged SNI names (combined per (ip, port, name) by the writer, sorted by key, COPYed into
-- stage_sni_names) into sni_names: least first seen, greatest last seen, summed count, united
-- sources.
INSERT INTO sni_names (ip, port, name, first_seen, last_seen, times_seen, sources)
SELECT ip, port, name, first_seen, last_seen, times_seen, sources
FROM stage_sni_names
ON CONFLICT (ip, port, name) DO UPDATE SET
    first_seen = least(sni_names.first_seen, excluded.first_seen),
    last_seen  = greatest(sni_names.last_seen, excluded.last_seen),
    times_seen = sni_names.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ sni_names.sources THEN sni_names.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(sni_names.sources || excluded.sources) AS x(s) ORDER BY s)
                 END;
