-- Register a CT log by URL, or return the stored one. Identity fields the stored row lacks (log
-- id, public key, static-CT origin) are filled in; ones it has are never overwritten.
-- $1 url, $2 kind ('rfc6962' | 'static'), $3 log_id, $4 public_key, $5 origin.
INSERT INTO ct_logs (url, kind, log_id, public_key, origin)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (url) DO UPDATE SET
    log_id     = coalesce(ct_logs.log_id, excluded.log_id),
    public_key = coalesce(ct_logs.public_key, excluded.public_key),
    origin     = coalesce(ct_logs.origin, excluded.origin)
RETURNING id, url, kind, log_id, public_key, origin, tree_size, root_hash,
          downloaded_position, verified_position
