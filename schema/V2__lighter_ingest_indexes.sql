-- certhist schema v2: cheaper certificate writes, same queries.
--
-- Measured on the CT benchmark (200k entries; docs/benchmarks/ct.md): name rows cost more than
-- the certificates themselves. The foreign key certificate_names.sha1 → certificates cost a
-- row-locking lookup per name row (~37% of the names COPY); names are written only by the
-- certificate merge, with their certificate, and certificates are never deleted, so the new
-- table has none. Indexes over values that are NULL for most certificates still took an entry
-- per row.

-- 1. issuer_name_hash alone is only looked up to link stored children to a newly arrived CA
--    certificate, i.e. children whose issuer_key_hash is still unknown. Lookups by CertID use
--    certificates_serial_idx (serial, issuer_name_hash).
DROP INDEX certificates_issuer_name_hash_idx;
CREATE INDEX certificates_unlinked_issuer_idx ON certificates (issuer_name_hash)
    WHERE issuer_key_hash IS NULL;

-- 2. Subject organisation fields are absent from domain-validated certificates (most of CT);
--    a search on them always implies IS NOT NULL, so the planner uses these partial indexes.
DROP INDEX certificates_subject_o_idx;
DROP INDEX certificates_subject_ou_idx;
CREATE INDEX certificates_subject_o_idx ON certificates (lower(subject_o) text_pattern_ops)
    WHERE subject_o IS NOT NULL;
CREATE INDEX certificates_subject_ou_idx ON certificates (lower(subject_ou) text_pattern_ops)
    WHERE subject_ou IS NOT NULL;

-- 3. One row per (certificate, name) with the kinds it appears as (bits: 1 cn, 2 dns, 4 ip,
--    8 email, 16 uri): a certificate's CN nearly always repeats one of its SAN dNSNames, and the
--    second row cost a full set of name-index entries (a third of them on the CT benchmark).
--    The registered_domain index goes too: registered_domain = 'example.com' is answered through
--    the reverse-name index (every such name ends with example.com), then filtered exactly.
CREATE TABLE certificate_names_v2 (
    sha1              bytea NOT NULL CHECK (length(sha1) = 20),
    name              text NOT NULL,
    kinds             smallint NOT NULL CHECK (kinds BETWEEN 1 AND 31),
    -- eTLD+1 of DNS-like names; NULL for IPs, URIs, non-DNS text.
    registered_domain text,
    PRIMARY KEY (sha1, name)
);
INSERT INTO certificate_names_v2 (sha1, name, kinds, registered_domain)
SELECT sha1, name,
       bit_or(CASE kind WHEN 'cn' THEN 1 WHEN 'dns' THEN 2 WHEN 'ip' THEN 4 WHEN 'email' THEN 8 ELSE 16 END)::smallint,
       max(registered_domain)
FROM certificate_names
GROUP BY sha1, name;
DROP TABLE certificate_names;
ALTER TABLE certificate_names_v2 RENAME TO certificate_names;
ALTER TABLE certificate_names RENAME CONSTRAINT certificate_names_v2_pkey TO certificate_names_pkey;
ALTER TABLE certificate_names RENAME CONSTRAINT certificate_names_v2_sha1_check TO certificate_names_sha1_check;
ALTER TABLE certificate_names RENAME CONSTRAINT certificate_names_v2_kinds_check TO certificate_names_kinds_check;
-- exact and prefix ("www.example.*")
CREATE INDEX certificate_names_name_idx ON certificate_names (name text_pattern_ops);
-- suffix ("*.example.com") and registered domain, as a prefix of the reversed name
CREATE INDEX certificate_names_reverse_idx ON certificate_names (reverse(name) text_pattern_ops);
-- substring ("*paypal*") and regex. New entries collect in the GIN pending list and are merged
-- into the index when it exceeds gin_pending_list_limit: 16 MB (the default is 4 MB) merges four
-- times as many names per pass (−20% of the names COPY time with distinct names), and a search
-- scans at most 16 MB of pending entries until autovacuum or the next merge empties it.
CREATE INDEX certificate_names_trgm_idx ON certificate_names USING gin (name gin_trgm_ops)
    WITH (gin_pending_list_limit = 16384);

-- One row per (certificate, kind, name), as v1 stored them: for display, not for searching.
CREATE VIEW certificate_name_kinds AS
SELECT n.sha1, k.kind, n.name, n.registered_domain
FROM certificate_names n
JOIN (VALUES ('cn', 1), ('dns', 2), ('ip', 4), ('email', 8), ('uri', 16)) AS k (kind, bit)
  ON n.kinds & k.bit <> 0;

-- 4. ct_entries.log_id → ct_logs: entries are written only by the CT ingester, for a log it
--    registered first, and logs are never deleted; the foreign key's per-row check (a key-share
--    lookup of the ct_logs row) was half of the ct_entries COPY time.
ALTER TABLE ct_entries DROP CONSTRAINT ct_entries_log_id_fkey;
