-- Per-connection staging tables for COPY (FORMAT binary). No constraints, no indexes: the merge
-- statements check and deduplicate. Created once per pooled connection.
CREATE TEMP TABLE IF NOT EXISTS stage_certificates (
    sha1 bytea, sha256 bytea, der bytea, parse_error text, serial bytea, serial_negative boolean,
    subject_dn text, subject_cn text, subject_o text, subject_ou text, subject_c text, subject_l text,
    subject_st text, subject_email text,
    issuer_dn text, issuer_cn text, issuer_o text, issuer_ou text, issuer_c text, issuer_l text,
    issuer_st text, issuer_email text,
    not_before timestamptz, not_after timestamptz, spki_sha256 bytea, key_sha1 bytea,
    key_algorithm text, key_bits integer, signature_algorithm text, is_ca boolean, is_precert boolean,
    issuer_name_hash bytea, subject_name_hash bytea, issuer_key_hash bytea,
    authority_key_id bytea, subject_key_id bytea, tbs_noct_sha256 bytea
);
CREATE TEMP TABLE IF NOT EXISTS stage_names (
    sha1 bytea, name text, kinds smallint, registered_domain text
);
CREATE TEMP TABLE IF NOT EXISTS stage_observations (
    ip inet, port integer, sha1 bytea, first_seen timestamptz, last_seen timestamptz,
    times_seen bigint, sources text[]
);
CREATE TEMP TABLE IF NOT EXISTS stage_ct_entries (
    log_id integer, entry_index bigint, sha1 bytea, entry_timestamp timestamptz, entry_type text,
    leaf_hash bytea
);
CREATE TEMP TABLE IF NOT EXISTS stage_observations_sha256 (
    ip inet, port integer, sha256 bytea, first_seen timestamptz, last_seen timestamptz,
    times_seen bigint, sources text[]
);
CREATE TEMP TABLE IF NOT EXISTS stage_sni_names (
    ip inet, port integer, name text, first_seen timestamptz, last_seen timestamptz,
    times_seen bigint, sources text[]
);
