-- Joins stubs to their certificates once the DER is stored: for the SHA-256s in $1 that are now
-- in `certificates` AND still in `certificate_stubs`, the stub's sightings move into
-- `sightings` under the certificate's key (merged like any sighting; resolve_stub_keys.sql has
-- added the key) and the stub goes.
-- Run by every certificate write (after its certificates are visible) and by the passive writer
-- (after its stubs are written), so whichever arrives second joins them. Returns the number of
-- sightings moved.
-- Cost for writers of certificates when there are no stubs (CT, scans): the uncorrelated EXISTS
-- is a one-time filter, so the stub scan, and with it every probe, is skipped.
WITH st AS MATERIALIZED (
    SELECT s.sha256
    FROM certificate_stubs s
    WHERE EXISTS (SELECT 1 FROM certificate_stubs) AND s.sha256 = ANY($1::bytea[])
), hit AS (
    SELECT k.id AS cert_id, c.sha256
    FROM st
    JOIN certificates c ON c.sha256 = st.sha256
    JOIN cert_keys k ON k.sha1 = c.sha1
), moved AS (
    DELETE FROM observations_sha256 o
    USING hit
    WHERE o.sha256 = hit.sha256
    RETURNING o.ip, o.port, hit.cert_id, o.first_seen, o.last_seen, o.times_seen, o.sources
), merged AS (
    INSERT INTO sightings AS s (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
    SELECT cert_id, s2k(first_seen), s2k(last_seen), least(times_seen, 2147483647)::integer,
           (port - 32768)::smallint, source_set_id(sources), ip
    FROM moved
    ON CONFLICT (ip, port, cert_id) DO UPDATE SET
        first_seen = least(s.first_seen, excluded.first_seen),
        last_seen  = greatest(s.last_seen, excluded.last_seen),
        times_seen = least(s.times_seen::bigint + excluded.times_seen, 2147483647)::integer,
        sources    = CASE
                       WHEN excluded.sources = s.sources THEN s.sources
                       ELSE source_set_union(s.sources, excluded.sources)
                     END
), gone AS (
    DELETE FROM certificate_stubs s USING hit WHERE s.sha256 = hit.sha256
)
SELECT count(*) FROM moved;
