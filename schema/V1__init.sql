-- certhist schema v1: certificates, their names, the passive IP history, CT provenance,
-- CryptnetUrlCache artifacts and import bookkeeping.
--
-- Conventions: hashes are bytea of their exact length (checked); times are timestamptz (UTC);
-- names are lower-cased by the ingester. Never edit this file once applied: add V<n+1>.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per distinct DER. `sha1` is the passive-SSL world's key; `sha256` is unique too.
-- A certificate that does not parse is still stored: DER, hashes and `parse_error`.
CREATE TABLE certificates (
    sha1                bytea PRIMARY KEY CHECK (length(sha1) = 20),
    sha256              bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
    der                 bytea NOT NULL,
    parse_error         text,
    -- Big-endian magnitude, no leading zero bytes (see certhist_model::Serial).
    serial              bytea,
    serial_negative     boolean NOT NULL DEFAULT false,
    subject_dn          text,
    subject_cn          text,
    subject_o           text,
    subject_ou          text,
    subject_c           text,
    subject_l           text,
    subject_st          text,
    subject_email       text,
    issuer_dn           text,
    issuer_cn           text,
    issuer_o            text,
    issuer_ou           text,
    issuer_c            text,
    issuer_l            text,
    issuer_st           text,
    issuer_email        text,
    not_before          timestamptz,
    not_after           timestamptz,
    spki_sha256         bytea CHECK (length(spki_sha256) = 32),
    -- SHA-1 of this certificate's subjectPublicKey bits: the OCSP issuerKeyHash of its children.
    key_sha1            bytea CHECK (length(key_sha1) = 20),
    key_algorithm       text,
    key_bits            integer,
    signature_algorithm text,
    is_ca               boolean NOT NULL DEFAULT false,
    is_precert          boolean NOT NULL DEFAULT false,
    -- OCSP CertID parts (RFC 6960 §4.1.1): SHA-1 of the issuer Name DER and of the issuer key.
    issuer_name_hash    bytea CHECK (length(issuer_name_hash) = 20),
    subject_name_hash   bytea CHECK (length(subject_name_hash) = 20),
    issuer_key_hash     bytea CHECK (length(issuer_key_hash) = 20),
    authority_key_id    bytea,
    subject_key_id      bytea,
    -- SHA-256 of the TBS without CT poison / SCT list: links a precertificate to its final cert.
    tbs_noct_sha256     bytea CHECK (length(tbs_noct_sha256) = 32),
    added_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX certificates_serial_idx ON certificates (serial, issuer_name_hash);
CREATE INDEX certificates_issuer_name_hash_idx ON certificates (issuer_name_hash);
CREATE INDEX certificates_subject_name_hash_idx ON certificates (subject_name_hash) WHERE is_ca;
CREATE INDEX certificates_spki_idx ON certificates (spki_sha256);
CREATE INDEX certificates_tbs_noct_idx ON certificates (tbs_noct_sha256);
-- Exact and prefix search on issuer / subject organisation fields (lower-cased).
CREATE INDEX certificates_issuer_cn_idx ON certificates (lower(issuer_cn) text_pattern_ops);
CREATE INDEX certificates_issuer_o_idx ON certificates (lower(issuer_o) text_pattern_ops);
CREATE INDEX certificates_subject_o_idx ON certificates (lower(subject_o) text_pattern_ops);
CREATE INDEX certificates_subject_ou_idx ON certificates (lower(subject_ou) text_pattern_ops);

-- Names a certificate is for: subject CN / email and SAN entries, lower-cased.
CREATE TABLE certificate_names (
    sha1              bytea NOT NULL REFERENCES certificates (sha1) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('cn', 'dns', 'ip', 'email', 'uri')),
    name              text NOT NULL,
    -- eTLD+1 of DNS-like names ("everything under example.com"); NULL for IPs, URIs, non-DNS text.
    registered_domain text,
    PRIMARY KEY (sha1, kind, name)
);

-- exact and prefix ("www.example.*")
CREATE INDEX certificate_names_name_idx ON certificate_names (name text_pattern_ops);
-- suffix ("*.example.com") as a prefix of the reversed name
CREATE INDEX certificate_names_reverse_idx ON certificate_names (reverse(name) text_pattern_ops);
-- substring ("*paypal*") and regex
CREATE INDEX certificate_names_trgm_idx ON certificate_names USING gin (name gin_trgm_ops);
CREATE INDEX certificate_names_registered_domain_idx ON certificate_names (registered_domain);

-- The passive history: this IP served this certificate on this port between first and last seen.
-- No foreign key to certificates: a sighting may arrive before (or without) its DER.
CREATE TABLE observations (
    ip          inet NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 0 AND 65535), -- 0 = unknown port
    sha1        bytea NOT NULL CHECK (length(sha1) = 20),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    times_seen  bigint NOT NULL CHECK (times_seen > 0),
    sources     text[] NOT NULL DEFAULT '{}',
    CHECK (first_seen <= last_seen),
    PRIMARY KEY (ip, port, sha1)
);

-- Reverse search: every address that served a certificate. The primary key serves IP and CIDR
-- lookups (the planner turns `ip <<= cidr` into a btree range).
CREATE INDEX observations_sha1_idx ON observations (sha1, ip, port);

-- Certificate Transparency logs we read, with download and verification cursors.
CREATE TABLE ct_logs (
    id                  serial PRIMARY KEY,
    url                 text NOT NULL UNIQUE,
    kind                text NOT NULL CHECK (kind IN ('rfc6962', 'static')),
    log_id              bytea CHECK (length(log_id) = 32),
    public_key          bytea,
    origin              text,
    description         text,
    -- Latest tree head we verified (signature checked when the key is known).
    tree_size           bigint,
    root_hash           bytea CHECK (length(root_hash) = 32),
    tree_head_timestamp timestamptz,
    tree_head_signature bytea,
    -- Entries [0, downloaded_position) are stored; [0, verified_position) checked against a tree head.
    downloaded_position bigint NOT NULL DEFAULT 0,
    verified_position   bigint NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (verified_position <= downloaded_position)
);

CREATE TABLE ct_entries (
    log_id          integer NOT NULL REFERENCES ct_logs (id) ON DELETE CASCADE,
    entry_index     bigint NOT NULL CHECK (entry_index >= 0),
    sha1            bytea NOT NULL CHECK (length(sha1) = 20),
    entry_timestamp timestamptz NOT NULL,
    entry_type      text NOT NULL CHECK (entry_type IN ('x509', 'precert')),
    leaf_hash       bytea CHECK (length(leaf_hash) = 32),
    PRIMARY KEY (log_id, entry_index)
);

CREATE INDEX ct_entries_sha1_idx ON ct_entries (sha1);

-- Artifacts from CryptnetUrlCache folders, certutil dumps and URL lists, labelled by collection.
-- An OCSP request with several CertIDs gives one row per CertID (cert_index 0, 1, …).
CREATE TABLE cache_entries (
    id                bigserial PRIMARY KEY,
    collection        text NOT NULL,
    source_path       text,
    url               text NOT NULL,
    cert_index        integer NOT NULL DEFAULT 0,
    kind              text NOT NULL CHECK (kind IN ('ocsp', 'crl', 'cert', 'cab', 'other')),
    downloaded_at     timestamptz,
    last_modified     timestamptz,
    etag              text,
    size_bytes        bigint,
    content_sha256    bytea CHECK (length(content_sha256) = 32),
    content_kind      text,
    hash_algorithm    text,
    issuer_name_hash  bytea,
    issuer_key_hash   bytea,
    serial            bytea,
    ocsp_status       text,
    this_update       timestamptz,
    next_update       timestamptz,
    added_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection, url, cert_index)
);

CREATE INDEX cache_entries_serial_idx ON cache_entries (serial, issuer_name_hash);

-- Files imported, by content hash: a re-import of the same bytes is detected and skipped, and an
-- interrupted import resumes after the last committed row (the cursor commits with its batch).
CREATE TABLE imported_files (
    content_sha256 bytea NOT NULL CHECK (length(content_sha256) = 32),
    kind           text NOT NULL,
    path           text NOT NULL,
    rows_done      bigint NOT NULL DEFAULT 0,
    complete       boolean NOT NULL DEFAULT false,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    PRIMARY KEY (content_sha256, kind)
);
