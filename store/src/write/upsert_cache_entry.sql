-- One cache entry; a re-run of the same collection updates it in place.
INSERT INTO cache_entries (
    collection, source_path, url, cert_index, kind, downloaded_at, last_modified, etag, size_bytes,
    content_sha256, content_kind, hash_algorithm, issuer_name_hash, issuer_key_hash, serial,
    ocsp_status, this_update, next_update)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (collection, url, cert_index) DO UPDATE SET
    source_path = excluded.source_path, kind = excluded.kind, downloaded_at = excluded.downloaded_at,
    last_modified = excluded.last_modified, etag = excluded.etag, size_bytes = excluded.size_bytes,
    content_sha256 = excluded.content_sha256, content_kind = excluded.content_kind,
    hash_algorithm = excluded.hash_algorithm, issuer_name_hash = excluded.issuer_name_hash,
    issuer_key_hash = excluded.issuer_key_hash, serial = excluded.serial,
    ocsp_status = excluded.ocsp_status, this_update = excluded.this_update,
    next_update = excluded.next_update;
