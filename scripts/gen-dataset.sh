#!/usr/bin/env bash
# Synthetic certhist dataset for the API benchmark, generated inside PostgreSQL with
# generate_series (no client round trips). Realistic skew:
#   - CERTS stored certificates (64-byte stand-in DER, 2 names each: CN + DNS SAN under one of
#     CERTS/5 registered domains, 20 issuers, 2018–2026 validity);
#   - HASHONLY hash-only certificates (Sonar-style sightings, no DER) each on exactly 1 address;
#   - every stored certificate on 1 address;
#   - the first 1000 stored certificates on Zipf-many addresses (cert c on 100000/c addresses:
#     #1 on 100k, #10 on 10k, #100 on 1k) — CDN defaults / appliance certificates;
#   - 1000 addresses with long histories (2000 certificates each);
#   - addresses drawn from 4M (10.0.0.0/10), periods spread over 2016–2026.
# Usage: scripts/gen-dataset.sh [BENCH_HOME]   (SCALE=0.1 for a tenth of the rows)
# Each part can also be sized on its own (scripts/bench-scale.sh does): CERTS, HASHONLY, HOT_IPS,
# ZIPF (certificate c of the first 1000 on ZIPF/c addresses; default 100000), and NAME_SKEW=1
# spreads the certificates over registered domains with a Zipf law (domain of rank k holds
# ∝ 1/k of them: a few domains with thousands of certificates, most with one or two) instead of
# 5 per domain. BIN=path: a built certhist binary (default: build target/release/certhist).
# Uses the managed cluster in BENCH_HOME (default /tmp/certhist-bench), never the system server.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
SCALE=${SCALE:-1}
CERTS=${CERTS:-$(awk "BEGIN{printf \"%d\", 1000000*$SCALE}")}
HASHONLY=${HASHONLY:-$(awk "BEGIN{printf \"%d\", 16500000*$SCALE}")}
HOT_IPS=${HOT_IPS:-$(awk "BEGIN{printf \"%d\", 1000*$SCALE}")}
ZIPF=${ZIPF:-100000}
NAME_SKEW=${NAME_SKEW:-0}
CHUNK=1000000

if [[ -z ${BIN:-} ]]; then
  cargo build --release -q --bin certhist
  BIN=target/release/certhist
fi
$BIN --home "$BENCH_HOME" db start >/dev/null   # starts the cluster, creates and migrates the database
URL=$($BIN --home "$BENCH_HOME" db url)
echo "database: $URL"
PSQL=(psql "$URL" -v ON_ERROR_STOP=1 -q -X)
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

say "dropping indexes for the bulk load"
"${PSQL[@]}" <<'SQL'
TRUNCATE sightings, cert_keys, names, certificate_names, certificates CASCADE;
ALTER TABLE sightings DROP CONSTRAINT IF EXISTS sightings_pkey;
DROP INDEX IF EXISTS sightings_cert_id_idx;
-- Sightings are generated in the old row shape, then given their certificate keys and source
-- sets and copied into `sightings` in one pass (schema V7).
DROP TABLE IF EXISTS gen_observations;
CREATE UNLOGGED TABLE gen_observations (ip inet, port integer, sha1 bytea, first_seen timestamptz,
  last_seen timestamptz, times_seen bigint, sources text[]);
DROP INDEX IF EXISTS certificate_names_name_idx, names_reverse_idx, names_trgm_idx;
ALTER TABLE certificate_names DROP CONSTRAINT IF EXISTS certificate_names_pkey;
ALTER TABLE names DROP CONSTRAINT IF EXISTS names_pkey;
SET synchronous_commit = off;
SQL

# Key of certificate i: 20 bytes from md5 (the same expression everywhere below).
SHA1_OF="decode(md5('c'||i) || substr(md5('s'||i), 1, 8), 'hex')"
# Registered domain number of certificate i: 5 per domain, or Zipf (log-uniform rank).
if [[ $NAME_SKEW == 1 ]]; then
  DOM="(floor(exp(((i * 2654435761) % 1000003) / 1000003.0 * ln(greatest($CERTS / 5, 2))))::bigint - 1)"
else
  DOM="(i % ($CERTS/5))"
fi
for ((lo = 1; lo <= CERTS; lo += CHUNK)); do
  hi=$(( lo + CHUNK - 1 < CERTS ? lo + CHUNK - 1 : CERTS ))
  "${PSQL[@]}" -c "
    INSERT INTO certificates (sha1, sha256, der, serial, subject_dn, subject_cn, issuer_dn, issuer_cn, issuer_o,
                              not_before, not_after, key_algorithm, key_bits, signature_algorithm, issuer_name_hash)
    SELECT $SHA1_OF, decode(md5('a'||i) || md5('b'||i), 'hex'), decode(md5('x'||i) || md5('y'||i) || md5('z'||i) || md5('w'||i), 'hex'),
           decode(md5('n'||i), 'hex'), 'CN=h' || i || '.d' || $DOM || '.com', 'h' || i || '.d' || $DOM || '.com',
           'CN=Issuer ' || (i % 20), 'Issuer ' || (i % 20), 'Bench CA ' || (i % 20),
           timestamptz '2018-01-01' + (i % 2900) * interval '1 day', timestamptz '2018-04-01' + (i % 2900) * interval '1 day',
           'ec', 256, 'ecdsa-with-SHA256', decode(md5('issuer' || (i % 20)) || '00000000', 'hex')
    FROM generate_series($lo, $hi) AS i;
    -- One row per name: the CN that is also a SAN dNSName (kinds 1 | 2), as the ingester writes it.
    INSERT INTO certificate_names (sha1, name, kinds, registered_domain)
    SELECT $SHA1_OF, 'h' || i || '.d' || $DOM || '.com', 3, 'd' || $DOM || '.com'
    FROM generate_series($lo, $hi) AS i;"
  say "certificates $hi / $CERTS"
done

# Address n (0-based) in 10.0.0.0/10.
IP_OF() { echo "('10.0.0.0'::inet + (($1) % 4194304))"; }
obs_chunks() { # name total select-template(with __LO__ __HI__)
  local name=$1 total=$2 tpl=$3
  for ((lo = 1; lo <= total; lo += CHUNK)); do
    hi=$(( lo + CHUNK - 1 < total ? lo + CHUNK - 1 : total ))
    sql=${tpl//__LO__/$lo}; sql=${sql//__HI__/$hi}
    "${PSQL[@]}" -c "SET synchronous_commit = off; INSERT INTO gen_observations (ip, port, sha1, first_seen, last_seen, times_seen, sources) $sql"
    say "$name $hi / $total"
  done
}
SPAN="timestamptz '2016-01-01' + ((i * 7) % 3650) * interval '1 day'"
obs_chunks "hash-only sightings" "$HASHONLY" "
  SELECT $(IP_OF 'i * 7919'), CASE WHEN i % 10 = 0 THEN 8443 ELSE 443 END,
         decode(md5('h'||i) || '00000000', 'hex'), $SPAN, $SPAN + (i % 400) * interval '1 day', 1 + i % 30, '{sonar}'
  FROM generate_series(__LO__::bigint, __HI__) AS i"
obs_chunks "stored certificates on one address" "$CERTS" "
  SELECT $(IP_OF 'i * 104729'), 443, $SHA1_OF, $SPAN, $SPAN + (i % 90) * interval '1 day', 1 + i % 12, '{scan}'
  FROM generate_series(__LO__::bigint, __HI__) AS i"
say "Zipf-shared certificates (10.64.0.0/10, certificate c on $ZIPF/c addresses)"
"${PSQL[@]}" -c "
  INSERT INTO gen_observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
  SELECT DISTINCT ON (1, 3) '10.64.0.0'::inet + ((c * 1000003 + j * 7) % 4194304), 443, decode(md5('c'||c) || substr(md5('s'||c), 1, 8), 'hex'),
         timestamptz '2020-01-01' + (j % 1000) * interval '1 day', timestamptz '2021-01-01' + (j % 1000) * interval '1 day', 1 + j % 50, '{scan}'
  FROM generate_series(1, 1000) AS c, LATERAL generate_series(1, $ZIPF / c) AS j"
say "long-history addresses ($HOT_IPS × 2000 certificates)"
"${PSQL[@]}" -c "
  INSERT INTO gen_observations (ip, port, sha1, first_seen, last_seen, times_seen, sources)
  SELECT '172.16.0.0'::inet + a, 443, decode(md5('c'||i) || substr(md5('s'||i), 1, 8), 'hex'),
         timestamptz '2016-01-01' + k * interval '1 day', timestamptz '2016-01-01' + (k + 30) * interval '1 day', 1 + k % 5, '{scan}'
  FROM generate_series(0, $HOT_IPS - 1) AS a, generate_series(1, 2000) AS k, LATERAL (SELECT 1 + ((a * 2000 + k) * 31) % $CERTS AS i) x"

# Keys are unique by construction (distinct address ranges / sha1 per part), so the primary key
# can be rebuilt directly.
say "certificate keys, source sets, sightings (schema V7)"
"${PSQL[@]}" <<'SQL'
SET synchronous_commit = off;
INSERT INTO cert_keys (sha1) SELECT DISTINCT sha1 FROM gen_observations ORDER BY sha1;
SELECT count(source_set_id(sources)) FROM (SELECT DISTINCT sources FROM gen_observations) d;
INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
SELECT k.id, s2k(o.first_seen), s2k(o.last_seen), least(o.times_seen, 2147483647)::integer,
       (o.port - 32768)::smallint, ss.id, o.ip
FROM gen_observations o
JOIN cert_keys k ON k.sha1 = o.sha1
JOIN source_sets ss ON ss.names = o.sources
ORDER BY o.ip, o.port, k.id;
DROP TABLE gen_observations;
SQL
say "rebuilding indexes (the schema's definitions, V1 to V7)"
while IFS= read -r stmt; do
  [[ -z $stmt ]] && continue
  PGOPTIONS="-c maintenance_work_mem=512MB" "${PSQL[@]}" -c "$stmt"
  say "  ${stmt:0:90}"
done <<'SQL'
ALTER TABLE sightings ADD PRIMARY KEY (ip, port, cert_id)
CREATE INDEX sightings_cert_id_idx ON sightings (cert_id, ip)
ALTER TABLE certificate_names ADD PRIMARY KEY (sha1, name)
CREATE INDEX certificate_names_name_idx ON certificate_names (name text_pattern_ops)
INSERT INTO names (name) SELECT DISTINCT name FROM certificate_names
ALTER TABLE names ADD PRIMARY KEY (name)
CREATE INDEX names_reverse_idx ON names (reverse(name) text_pattern_ops)
CREATE INDEX names_trgm_idx ON names USING gin (name gin_trgm_ops) WITH (gin_pending_list_limit = 16384)
VACUUM ANALYZE certificates, certificate_names, names, sightings, cert_keys, source_sets
SQL
"${PSQL[@]}" -c "SELECT (SELECT count(*) FROM certificates) AS certificates, (SELECT count(*) FROM certificate_names) AS names,
                        (SELECT count(*) FROM sightings) AS observations,
                        pg_size_pretty(pg_total_relation_size('sightings')) AS sightings_size,
                        pg_size_pretty(pg_total_relation_size('cert_keys')) AS cert_keys_size"
say "done"
