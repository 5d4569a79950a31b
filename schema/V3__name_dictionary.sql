-- certhist schema v3: the substring and suffix indexes cover each distinct name once.
--
-- Measured on the CT benchmark (docs/benchmarks/ct.md): the trigram index on certificate_names
-- was the largest single cost of a certificate write (dropping it took the ingest from ~16k to
-- ~27k entries/s), and it grew with every (certificate, name) row although most names recur:
-- a precertificate and its certificate carry the same names, renewals repeat them every few
-- months, and a CA's test or wildcard names appear on thousands of certificates. The trigram
-- and reverse-name indexes now live on `names`, one row per distinct name, written by the
-- certificate writer for every name of a batch not stored yet (a primary-key probe for the
-- names it has). Searches by suffix, substring, regex and registered domain find the distinct
-- names there and then their certificates through certificate_names_name_idx; exact and prefix
-- searches go to certificate_names_name_idx directly, as before.

CREATE TABLE names (
    name text PRIMARY KEY
);
INSERT INTO names (name) SELECT DISTINCT name FROM certificate_names;
-- suffix ("*.example.com") and registered domain, as a prefix of the reversed name
CREATE INDEX names_reverse_idx ON names (reverse(name) text_pattern_ops);
-- substring ("*paypal*") and regex; a 16 MB pending list, as certificate_names_trgm_idx had
CREATE INDEX names_trgm_idx ON names USING gin (name gin_trgm_ops)
    WITH (gin_pending_list_limit = 16384);

DROP INDEX certificate_names_trgm_idx;
DROP INDEX certificate_names_reverse_idx;
