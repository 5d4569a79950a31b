-- V4 — the team server (issue 12): accounts, API keys, web sessions, the audit log, and tags and
-- notes shared between analysts.
--
-- Secrets are never stored: an API key or a session token is random (≥ 128 bits) and kept only
-- as its SHA-256; a password is kept as an argon2id PHC string. Nothing here holds a key, a
-- password or a token in the clear.

-- An account. Roles: reader (every read), analyst (reader + tags, notes, uploads, exports),
-- admin (analyst + accounts and the audit log).
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    role          text NOT NULL CHECK (role IN ('reader', 'analyst', 'admin')),
    -- argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash); NULL = no password (keys only).
    password_hash text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- An API key of a user (Bearer KEY, or Basic user:KEY). `key_hash` = SHA-256 of the key;
-- `prefix` = its first characters, shown in lists so a user can tell keys apart.
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix       text NOT NULL,
    label        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

-- A web session (login form → cookie). `token_hash` = SHA-256 of the cookie's token;
-- `csrf_hash` = SHA-256 of the session's CSRF token (state-changing forms must carry it).
CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_hash    bytea NOT NULL CHECK (length(csrf_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Every write, login, failed login and account change: who, when, what, from where. `actor` is
-- the account name (NULL for the local, unauthenticated user of a loopback server with no
-- accounts); `detail` never holds a key, a password or a token.
CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text,
    action text NOT NULL,
    target text,
    source text,
    detail jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);

-- A tag on an address, a CIDR block, a certificate or a name. Exactly one target column is set,
-- as `kind` says: `net` for ip (a host address, /32 or /128) and cidr (a block, stored truncated);
-- `sha1` for certificate; `name` (lower-cased) for name. A tag is shared by the team: one row per
-- (target, tag), with the analyst who added it first.
CREATE TABLE tags (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('ip', 'cidr', 'certificate', 'name')),
    net        inet,
    sha1       bytea CHECK (length(sha1) = 20),
    name       text,
    tag        text NOT NULL CHECK (tag ~ '^[a-z0-9][a-z0-9._:/@+-]{0,63}$'),
    author     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind IN ('ip', 'cidr') AND net IS NOT NULL AND sha1 IS NULL AND name IS NULL)
        OR (kind = 'certificate' AND sha1 IS NOT NULL AND net IS NULL AND name IS NULL)
        OR (kind = 'name' AND name IS NOT NULL AND net IS NULL AND sha1 IS NULL)
    )
);
CREATE UNIQUE INDEX tags_net_tag_idx ON tags (net, tag) WHERE net IS NOT NULL;
CREATE UNIQUE INDEX tags_sha1_tag_idx ON tags (sha1, tag) WHERE sha1 IS NOT NULL;
CREATE UNIQUE INDEX tags_name_tag_idx ON tags (name, tag) WHERE name IS NOT NULL;
-- "everything tagged apt28"
CREATE INDEX tags_tag_idx ON tags (tag);
-- addresses inside tagged blocks (`o.ip <<= t.net`)
CREATE INDEX tags_net_gist_idx ON tags USING gist (net inet_ops) WHERE net IS NOT NULL;

-- A note on the same kinds of targets, with its author and time; notes are never edited, only
-- added (and deleted by their author or an admin).
CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('ip', 'cidr', 'certificate', 'name')),
    net        inet,
    sha1       bytea CHECK (length(sha1) = 20),
    name       text,
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    author     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (kind IN ('ip', 'cidr') AND net IS NOT NULL AND sha1 IS NULL AND name IS NULL)
        OR (kind = 'certificate' AND sha1 IS NOT NULL AND net IS NULL AND name IS NULL)
        OR (kind = 'name' AND name IS NOT NULL AND net IS NULL AND sha1 IS NULL)
    )
);
CREATE INDEX notes_net_idx ON notes (net) WHERE net IS NOT NULL;
CREATE INDEX notes_sha1_idx ON notes (sha1) WHERE sha1 IS NOT NULL;
CREATE INDEX notes_name_idx ON notes (name) WHERE name IS NOT NULL;
