-- certhist schema v5: passive sensors (Zeek, Suricata, packet captures).
--
-- 1. Host names a server address was contacted for (TLS ClientHello SNI, Zeek `server_name`,
--    Suricata `tls.sni`): a pivot from an address to the names clients asked it for. One row per
--    (ip, port, name), merged like observations (least first seen, greatest last seen, summed
--    count, united sources). Client addresses are never stored.
CREATE TABLE sni_names (
    ip          inet NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
    name        text NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    times_seen  bigint NOT NULL CHECK (times_seen > 0),
    sources     text[] NOT NULL DEFAULT '{}',
    CHECK (first_seen <= last_seen),
    PRIMARY KEY (ip, port, name)
);

-- 2. Certificates known only by their SHA-256 (Zeek >= 4.1 logs carry SHA-256 fingerprints and
--    the text fields of x509.log, no DER and no SHA-1). `certificates` is keyed by SHA-1 and
--    holds a DER; a stub holds what the log said until the DER arrives from any source (import
--    certs, CT, scan, pcap, Suricata `tls.certificate`). The certificate writer then moves the
--    stub's sightings into `observations` (by the real SHA-1) and deletes the stub, in the same
--    statement (store/src/write/passive.rs, resolve_stubs.sql). A SHA-256 is never in both
--    `certificates` and `certificate_stubs` once a write has resolved it.
CREATE TABLE certificate_stubs (
    sha256      bytea PRIMARY KEY CHECK (length(sha256) = 32),
    -- The log's text, as written by the sensor (not parsed from DER; attacker-controlled).
    subject_dn  text,
    subject_cn  text,
    issuer_dn   text,
    -- Upper-case hex as the log wrote it (Zeek may write a leading '-' for negative serials).
    serial_text text,
    not_before  timestamptz,
    not_after   timestamptz,
    -- SAN dNSNames the log gave (x509.log san.dns).
    san_dns     text[] NOT NULL DEFAULT '{}',
    sources     text[] NOT NULL DEFAULT '{}',
    added_at    timestamptz NOT NULL DEFAULT now()
);

-- Sightings of stub certificates: as `observations`, keyed by SHA-256.
CREATE TABLE observations_sha256 (
    ip          inet NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 0 AND 65535),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    times_seen  bigint NOT NULL CHECK (times_seen > 0),
    sources     text[] NOT NULL DEFAULT '{}',
    CHECK (first_seen <= last_seen),
    PRIMARY KEY (ip, port, sha256)
);
CREATE INDEX observations_sha256_sha256_idx ON observations_sha256 (sha256, ip, port);

-- 3. Followed logs (`import zeek|suricata --follow`): where reading stopped in a growing file,
--    committed in the same transaction as the batch read before it. Keyed by the path and the
--    file's identity (device, inode), so a rotated file and its successor have cursors of their own.
CREATE TABLE followed_files (
    path        text NOT NULL,
    kind        text NOT NULL,
    dev         bigint NOT NULL,
    inode       bigint NOT NULL,
    byte_offset bigint NOT NULL CHECK (byte_offset >= 0),
    records     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (path, kind, dev, inode)
);
