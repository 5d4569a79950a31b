-- The tags touching a page of rows, in one statement (issue 12). Column 0 says which list a
-- row answers:
-- 0: tags on the addresses $1 themselves (kind ip: `net = ANY`, the (net, tag) btree index);
-- 1: tag blocks (kind cidr) overlapping $4 / $5, the blocks covering the page's IPv4 / IPv6
--    addresses (tags_net_gist_idx); which address each contains is decided by the caller, so a
--    page costs two index scans however many addresses it has;
-- 2: tags on the certificates $2 (sha1); 3: tags on the names $3.
SELECT 0::int2, text(t.net), NULL::bytea, NULL::text, t.tag
FROM tags t
WHERE t.net = ANY($1::inet[])
UNION ALL
SELECT 1::int2, text(t.net), NULL::bytea, NULL::text, t.tag
FROM tags t
WHERE t.kind = 'cidr' AND (t.net && $4::inet OR t.net && $5::inet)
UNION ALL
SELECT 2::int2, NULL::text, t.sha1, NULL::text, t.tag
FROM tags t
WHERE t.sha1 = ANY($2::bytea[])
UNION ALL
SELECT 3::int2, NULL::text, NULL::bytea, t.name, t.tag
FROM tags t
WHERE t.name = ANY($3::text[])
