#!/usr/bin/env bash
# Bytes per observation of candidate layouts (issue 15, "lean observations"), on scratch tables
# in a scratch database: the production schema is not touched.
#   ROWS observations (default 2,000,000) over ROWS/2 certificates (the 10 B / 5 B target ratio),
#   addresses spread over 10.0.0.0/8, written in random key order in batches of 100k rows with
#   the indexes in place ("grown", as imports write them), then the same rows with the indexes
#   built after the load ("fresh", the floor of a dense btree).
# Usage: scripts/bench-lean.sh [BENCH_HOME]   (ROWS=N to change the size)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
ROWS=${ROWS:-2000000}
BIN=${CERTHIST_BIN:-target/release/certhist}
[ -x "$BIN" ] || cargo build --release -q --bin certhist
"$BIN" --home "$BENCH_HOME" db start >/dev/null
URL=$("$BIN" --home "$BENCH_HOME" db url)
ADMIN=${URL/\/certhist\?//postgres?}
psql "$ADMIN" -qX -c "DROP DATABASE IF EXISTS certhist_lean" -c "CREATE DATABASE certhist_lean"
LEAN=${URL/\/certhist\?//certhist_lean?}
PSQL=(psql "$LEAN" -v ON_ERROR_STOP=1 -qX)
echo "rows: $ROWS, certificates: $((ROWS / 2)); $(uptime)"

# Row i: certificate c = (i * 7919) % (ROWS/2) (two sightings per certificate), address from a
# multiplicative hash of i, port 443 or 8443; the batch order is a permutation of i.
ROW="i, (i * 7919) % ($ROWS / 2) AS c, '10.0.0.0'::inet + ((i * 2654435761) % 16777216) AS ip,
     CASE WHEN i % 10 = 0 THEN 8443 ELSE 443 END AS port,
     timestamptz '2016-01-01' + ((i * 7) % 3650) * interval '1 day' AS first_seen"

declare -A DDL INS IDX
# The production layout (schema/V1__init.sql).
DDL[current]="CREATE TABLE t (ip inet NOT NULL, port integer NOT NULL, sha1 bytea NOT NULL,
  first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL, times_seen bigint NOT NULL,
  sources text[] NOT NULL DEFAULT '{}');"
IDX[current]="ALTER TABLE t ADD PRIMARY KEY (ip, port, sha1); CREATE INDEX ON t (sha1, ip, port);"
INS[current]="SELECT ip, port, decode(md5('c'||c) || substr(md5('s'||c), 1, 8), 'hex'), first_seen,
  first_seen + (i % 400) * interval '1 day', 1 + i % 30, '{sonar}'"
# Narrower types, the SHA-1 kept: port smallint, times as int4 seconds since 2000, count int4,
# sources as a bitmask; columns ordered for alignment.
DDL[narrow]="CREATE TABLE t (first_seen integer NOT NULL, last_seen integer NOT NULL,
  times_seen integer NOT NULL, port smallint NOT NULL, sources smallint NOT NULL,
  ip inet NOT NULL, sha1 bytea NOT NULL);"
IDX[narrow]="ALTER TABLE t ADD PRIMARY KEY (ip, port, sha1); CREATE INDEX ON t (sha1, ip, port);"
INS[narrow]="SELECT extract(epoch FROM first_seen - timestamptz '2000-01-01')::int,
  extract(epoch FROM first_seen - timestamptz '2000-01-01')::int + (i % 400) * 86400, 1 + i % 30,
  port, 1, ip, decode(md5('c'||c) || substr(md5('s'||c), 1, 8), 'hex')"
# Compact certificate key: a bigint id (from an identity row per certificate) instead of the SHA-1.
DDL[compact]="CREATE TABLE t (cert_id bigint NOT NULL, first_seen integer NOT NULL,
  last_seen integer NOT NULL, times_seen integer NOT NULL, port smallint NOT NULL,
  sources smallint NOT NULL, ip inet NOT NULL);"
IDX[compact]="ALTER TABLE t ADD PRIMARY KEY (ip, port, cert_id); CREATE INDEX ON t (cert_id, ip, port);"
INS[compact]="SELECT c, extract(epoch FROM first_seen - timestamptz '2000-01-01')::int,
  extract(epoch FROM first_seen - timestamptz '2000-01-01')::int + (i % 400) * 86400, 1 + i % 30,
  port, 1, ip"
# compact, the reverse index on the certificate key only (rows of a certificate are then
# fetched and ordered by address from the heap).
DDL[compact_rev1]=${DDL[compact]}
IDX[compact_rev1]="ALTER TABLE t ADD PRIMARY KEY (ip, port, cert_id); CREATE INDEX ON t (cert_id);"
INS[compact_rev1]=${INS[compact]}
# The identity row a compact key needs per certificate seen only by hash.
DDL[identity]="CREATE TABLE t (id bigint NOT NULL, sha1 bytea NOT NULL);"
IDX[identity]="ALTER TABLE t ADD PRIMARY KEY (sha1); CREATE UNIQUE INDEX ON t (id);"
INS[identity]="SELECT i, decode(md5('c'||i) || substr(md5('s'||i), 1, 8), 'hex')"

BATCH=100000
for v in current narrow compact compact_rev1 identity; do
  n=$ROWS; [ "$v" = identity ] && n=$((ROWS / 2))
  for mode in grown fresh; do
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS t" -c "${DDL[$v]}"
    [ "$mode" = grown ] && "${PSQL[@]}" -c "${IDX[$v]}"
    t0=$(date +%s.%N)
    for ((lo = 0; lo < n; lo += BATCH)); do
      # batch b of a permutation of 0..n-1 (i = (k * 1000003) % n, n not a multiple of 1000003)
      "${PSQL[@]}" -c "SET synchronous_commit = off; INSERT INTO t ${INS[$v]}
        FROM (SELECT $ROW FROM (SELECT (k * 1000003) % $n AS i FROM generate_series(${lo}::bigint, $((lo + BATCH - 1))) k) s) x"
    done
    [ "$mode" = fresh ] && "${PSQL[@]}" -c "${IDX[$v]}"
    "${PSQL[@]}" -c "VACUUM ANALYZE t"
    psql "$LEAN" -AtX -F' ' -c "SELECT '$v', '$mode', count(*), pg_relation_size('t'),
        pg_indexes_size('t'), round(pg_relation_size('t')::numeric / count(*), 1),
        round(pg_indexes_size('t')::numeric / count(*), 1),
        round(pg_total_relation_size('t')::numeric / count(*), 1) FROM t" |
      awk -v s="$(echo "$(date +%s.%N) - $t0" | bc)" '{printf "%-13s %-6s rows %9d  heap %5.1f B/row  indexes %5.1f B/row  total %6.1f B/row  (%.0f s)\n", $1, $2, $3, $6, $7, $8, s}'
  done
done
echo "goal: <= 150 B per observation, both access paths included"
