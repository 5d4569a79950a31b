-- Joins stubs to their certificates once the DER is stored: for the SHA-256s in $1 that are now
-- in `certificates` AND still in `certificate_stubs`, the stub's sightings move into
-- `observations` under the certificate's SHA-1 (merged like any sighting) and the stub goes.
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
    SELECT c.sha1, c.sha256
    FROM st
    JOIN certificates c ON c.sha256 = st.sha256
), moved AS (
    DELETE FROM observations_sha256 o
    USING hit
    WHERE o.sha256 = hit.sha256
    RETURNING o.ip, o.port, hit.sha1, o.first_seen, o.last_seen, o.times_seen, o.sources
), merged AS (
    INSERT INTO observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
    SELECT ip, port, sha1, first_seen, last_seen, times_seen, sources FROM moved
    ON CONFLICT (ip, port, sha1) DO UPDATE SET
        first_seen = least(observations.first_seen, excluded.first_seen),
        last_seen  = greatest(observations.last_seen, excluded.last_seen),
        times_seen = observations.times_seen + excluded.times_seen,
        sources    = CASE
                       WHEN excluded.sources <@ observations.sources THEN observations.sources
                       ELSE ARRAY(SELECT DISTINCT s FROM unnest(observations.sources || excluded.sources) AS x(s) ORDER BY s)
                     END
), gone AS (
    DELETE FROM certificate_stubs s USING hit WHERE s.sha256 = hit.sha256
)
SELECT count(*) FROM moved;
