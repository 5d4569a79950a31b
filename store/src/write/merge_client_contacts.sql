-- Merge a batch of client contacts (combined per key by the writer, sorted by key) into
-- client_contacts: least first seen, greatest last seen, summed count, united sources ($8 = the
-- label).
INSERT INTO client_contacts (client_ip, server_ip, server_port, client_cert_sha1, first_seen, last_seen, times_seen, sources)
SELECT client_ip, server_ip, server_port, client_cert_sha1, first_seen, last_seen, times_seen, ARRAY[$8::text]
FROM unnest($1::inet[], $2::inet[], $3::int4[], $4::bytea[], $5::timestamptz[], $6::timestamptz[], $7::int8[])
    AS u (client_ip, server_ip, server_port, client_cert_sha1, first_seen, last_seen, times_seen)
ON CONFLICT (client_ip, server_ip, server_port, client_cert_sha1) DO UPDATE SET
    first_seen = least(client_contacts.first_seen, excluded.first_seen),
    last_seen  = greatest(client_contacts.last_seen, excluded.last_seen),
    times_seen = client_contacts.times_seen + excluded.times_seen,
    sources    = CASE
                   WHEN excluded.sources <@ client_contacts.sources THEN client_contacts.sources
                   ELSE ARRAY(SELECT DISTINCT s FROM unnest(client_contacts.sources || excluded.sources) AS x(s) ORDER BY s)
                 END;
