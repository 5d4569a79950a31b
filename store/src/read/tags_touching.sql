-- The tags touching a page of rows, in one statement (issue 12): tags on the addresses $1
-- (kind ip, and every cidr block containing one: `net >>= ip`, through tags_net_gist_idx), on the
-- certificates $2 (sha1) and on the names $3. Column 0 says which list the row answers.
SELECT 0::int2, u.ip, NULL::bytea, NULL::text, t.tag
FROM unnest($1::inet[]) AS u(ip)
JOIN tags t ON t.net >>= u.ip
UNION ALL
SELECT 1::int2, NULL::inet, t.sha1, NULL::text, t.tag
FROM tags t
WHERE t.sha1 = ANY($2::bytea[])
UNION ALL
SELECT 2::int2, NULL::inet, NULL::bytea, t.name, t.tag
FROM tags t
WHERE t.name = ANY($3::text[])
