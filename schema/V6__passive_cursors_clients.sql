-- certhist schema v6: one cursor per sensor-log file, whoever read it; client contacts kept on
-- request.
--
-- A plain `certhist import zeek|suricata FILE` and `--follow` of the same file now share the
-- file's cursor, so following a file after importing it (or importing a file that was followed)
-- never counts a record twice. The cursor is keyed by the file's identity (kind, device, inode)
-- instead of the path it was reached by (a rotated file keeps its cursor under its new name), and
-- holds the lines consumed (the import driver resumes by lines) and the SHA-256 of the file's
-- first bytes (up to 4 KiB, at most the bytes consumed), so a new file that reuses the inode of a
-- deleted one is not taken for it.
ALTER TABLE followed_files
    ADD COLUMN lines bigint CHECK (lines >= 0),
    ADD COLUMN head_len integer NOT NULL DEFAULT 0 CHECK (head_len BETWEEN 0 AND 4096),
    ADD COLUMN head_sha256 bytea CHECK (length(head_sha256) = 32);

-- Cursors of the same file reached by two paths: keep the one furthest on.
DELETE FROM followed_files f
USING followed_files g
WHERE f.kind = g.kind AND f.dev = g.dev AND f.inode = g.inode
  AND (f.byte_offset, f.path) < (g.byte_offset, g.path);

ALTER TABLE followed_files DROP CONSTRAINT followed_files_pkey;
ALTER TABLE followed_files ADD PRIMARY KEY (kind, dev, inode);

-- Client contacts seen in packet captures, kept only when asked (`import pcap --keep-clients`;
-- client addresses are not stored by default): client address → server address:port, and the
-- SHA-1 of the certificate the client presented (its DER goes to `certificates`; empty when it
-- presented none). A table of its own is the role marker: a client and its certificate are never
-- an observation of a server.
CREATE TABLE client_contacts (
    client_ip        inet NOT NULL,
    server_ip        inet NOT NULL,
    server_port      integer NOT NULL CHECK (server_port BETWEEN 0 AND 65535),
    client_cert_sha1 bytea NOT NULL DEFAULT '\x'::bytea
                     CHECK (length(client_cert_sha1) = 20 OR length(client_cert_sha1) = 0),
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    times_seen       bigint NOT NULL CHECK (times_seen > 0),
    sources          text[] NOT NULL DEFAULT '{}',
    CHECK (first_seen <= last_seen),
    PRIMARY KEY (client_ip, server_ip, server_port, client_cert_sha1)
);
CREATE INDEX client_contacts_server_idx ON client_contacts (server_ip, server_port);
