-- Tagged targets whose tag meets {cond} (on `t.tag`, parameter $1), in (tag, kind, value) order
-- after the key ($2 tag, $3 kind, $4 value); at most $5 rows. A certificate target brings its
-- summary when the DER is stored.
SELECT t.tag, t.kind, {value} AS value, t.author, t.created_at,
       c.sha1 IS NOT NULL,
       c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o,
       c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error
FROM tags t
LEFT JOIN certificates c ON c.sha1 = t.sha1
WHERE {cond}
  AND ($2::text IS NULL OR (t.tag, t.kind, {value}) > ($2, $3, $4))
ORDER BY t.tag, t.kind, 3
LIMIT $5
